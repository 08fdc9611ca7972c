"""Sandwich: the ``sandwich`` model."""

from __future__ import annotations

import numpy as np

from posref import _arith
from posref.tolerance import (
    UNIT_ROUNDOFF,
    CaseView,
    angle_error_factor,
    angle_roundoff,
    error_model,
    query_key,
    spec_param,
)

__all__: list[str] = []


@error_model("sandwich")
def _sandwich(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    from posref.relative import relative_distance

    u, ua = UNIT_ROUNDOFF[dtype], angle_roundoff(dtype)
    dim, heads = int(view.params["dim"]), int(view.params["num_heads"])
    base, k0 = float(spec_param(view, "base")), int(spec_param(view, "first_frequency"))
    distance = relative_distance(*query_key(view), bidirectional=bool(spec_param(view, "bidirectional")))  # (T, S)
    n = dim // 2
    omega = _arith.power(base, -2.0 * np.arange(k0, k0 + n, dtype=np.float64) / dim)
    phi = distance[..., None] * omega  # (T, S, n)
    cosines = _arith.cos(phi)
    kernel = cosines.sum(axis=-1) - n
    kernel_error = ((angle_error_factor(omega, ua) * np.abs(phi) + ua).sum(axis=-1)  # each angle and cosine
                    + (n - 1) * ua * np.abs(cosines).sum(axis=-1)  # the sum, in any order
                    + ua * np.abs(kernel))  # minus d/2
    divisor = 8.0 * np.arange(1, heads + 1, dtype=np.float64) / heads  # 8h/H
    y = np.abs(np.asarray(view.expected["output"], dtype=np.float64))
    return {"output": kernel_error[None] / divisor[:, None, None] + (2 * ua + u) * y}
