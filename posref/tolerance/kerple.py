"""KERPLE: the ``kerple`` model."""

from __future__ import annotations

import numpy as np

from posref import _arith
from posref.tolerance import (
    UNIT_ROUNDOFF,
    CaseView,
    angle_roundoff,
    error_model,
    input_array,
    query_key,
    spec_param,
)

__all__: list[str] = []


@error_model("kerple")
def _kerple(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    from posref.relative import relative_distance

    u, ua = UNIT_ROUNDOFF[dtype], angle_roundoff(dtype)
    bidirectional = bool(spec_param(view, "bidirectional"))
    distance = relative_distance(*query_key(view), bidirectional=bidirectional)[None]  # (1, T, S)
    y = np.abs(np.asarray(view.expected["output"], dtype=np.float64))
    if view.function == "kerple_log_bias":
        r1, r2 = (np.abs(input_array(view, name))[:, None, None] for name in ("r1", "r2"))
        t = r2 * distance
        return {"output": r1 * ua * (t / (1 + t) + 1) + (2 * ua + u) * y}
    p = np.abs(input_array(view, "p"))[:, None, None]
    log_distance = np.abs(_arith.log(np.where(distance > 0, distance, 1.0)))
    return {"output": ((2 * p * log_distance + 3) * ua + u) * y}
