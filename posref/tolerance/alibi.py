"""ALiBi: the ``linear_bias`` model."""

from __future__ import annotations

import math

import numpy as np

from posref import _arith
from posref.tolerance import UNIT_ROUNDOFF, CaseView, angle_roundoff, each_output, error_model

__all__: list[str] = []

_LOG2E = 1.0 / math.log(2.0)  # log2(x) = log(x) / ln 2


@error_model("linear_bias")
def _linear_bias(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    u, ua = UNIT_ROUNDOFF[dtype], angle_roundoff(dtype)
    if "slopes" in view.inputs:  # given slopes: a product with the distance, one with the scale, one cast
        return each_output(view, lambda b: (2 * ua + u) * np.abs(np.where(np.isfinite(b), b, 0.0)))
    # slopes computed from the head count: a configuration table in the angle precision
    heads = int(view.params.get("num_heads", 1))
    max_bias = float(view.params.get("max_bias", 8.0))
    series = 2.0 ** math.ceil(math.log2(max(heads, 1)))  # N, at least the N' of either series

    def rule(m):
        magnitude = np.abs(np.where(np.isfinite(m), m, 0.0))
        log2_m = np.abs(_LOG2E * _arith.log(np.where(magnitude > 0, magnitude, 1.0)))
        power = series * log2_m / max_bias  # k of the integer power base**k
        return (power + float(_arith.log(2.0)) * log2_m + 3) * ua * magnitude

    return each_output(view, rule)
