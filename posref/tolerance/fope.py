"""FoPE: the ``fope`` model (``fope_frequencies`` uses the ``frequency`` model of RoPE)."""

from __future__ import annotations

import numpy as np

from posref import _arith
from posref.fope import fope_frequencies
from posref.tolerance import (
    UNIT_ROUNDOFF,
    CaseView,
    angle_error_factor,
    angle_roundoff,
    error_model,
    input_array,
    spec_param,
)

__all__: list[str] = []


@error_model("fope")
def _fope(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    u, ua = UNIT_ROUNDOFF[dtype], angle_roundoff(dtype)
    x = input_array(view, "x")
    head_dim, half = x.shape[-1], x.shape[-1] // 2
    theta = fope_frequencies(int(spec_param(view, "fourier_dim") or head_dim), base=float(spec_param(view, "base")),
                             max_sequence_length=int(view.params["max_sequence_length"]),
                             floor_ratio=float(spec_param(view, "floor_ratio")))
    theta = theta[theta > 0]  # the kept frequencies
    p = np.broadcast_to(input_array(view, "positions") + float(spec_param(view, "position_offset")), x.shape[:-1])
    phi = p[..., None] * theta  # (..., K)
    sin_coef, cos_coef = input_array(view, "sin_coef"), input_array(view, "cos_coef")
    per_angle = angle_error_factor(theta, ua) * np.abs(phi) + (theta.shape[0] + 1) * ua  # (..., K)
    if sin_coef.ndim == 2:
        sums = [_arith.einsum("...k,km->...m", f(phi), c) for f, c in ((_arith.sin, sin_coef), (_arith.cos, cos_coef))]
        errors = [_arith.einsum("...k,km->...m", per_angle, np.abs(c)) for c in (sin_coef, cos_coef)]
    else:
        sums = [_arith.einsum("...htk,hkm->...htm", f(phi), c) for f, c in ((_arith.sin, sin_coef), (_arith.cos, cos_coef))]
        errors = [_arith.einsum("...htk,hkm->...htm", per_angle, np.abs(c)) for c in (sin_coef, cos_coef)]
    pad = x.shape[:-1] + (half - sin_coef.shape[-1],)
    sin_f = np.concatenate([sums[0], np.full(pad, float(spec_param(view, "pad_sin")))], axis=-1)
    cos_f = np.concatenate([sums[1], np.ones(pad)], axis=-1)
    d_sin = np.concatenate([errors[0], np.zeros(pad)], axis=-1)
    d_cos = np.concatenate([errors[1], np.zeros(pad)], axis=-1)
    x_a, x_b = np.abs(x[..., :half]), np.abs(x[..., half:])
    by_cos = d_cos + 2 * u * np.abs(cos_f)
    by_sin = d_sin + 2 * u * np.abs(sin_f)
    y = np.abs(np.asarray(view.expected["output"], dtype=np.float64))
    return {"output": np.concatenate([x_a * by_cos + x_b * by_sin, x_b * by_cos + x_a * by_sin], axis=-1) + u * y}
