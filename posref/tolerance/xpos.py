"""xPos: the ``xpos_scale`` and ``xpos`` models."""

from __future__ import annotations

import numpy as np

from posref import _arith
from posref.tolerance import (
    UNIT_ROUNDOFF,
    CaseView,
    angle_error_factor,
    angle_roundoff,
    error_model,
    pair_sum,
    per_channel,
    rotary_pairs,
    spec_param,
)
from posref.tolerance.rope import rope_pairs

__all__: list[str] = []


@rotary_pairs("apply_xpos")
def _xpos_pairs(view: CaseView) -> tuple[np.ndarray, np.ndarray]:
    """xPos rotates pair i by the uncentred position times theta_i, as 1-D RoPE does."""
    return rope_pairs(view)


def _xpos_exponents(view: CaseView, dim: int) -> tuple[np.ndarray, np.ndarray]:
    r""":math:`|e| = |c|/B` per position, shape ``positions.shape + (1,)``, and :math:`|\ln\zeta_i|`, shape (dim/2,)."""
    from posref.xpos import xpos_exponents, xpos_zeta

    positions = np.asarray(view.inputs["positions"], dtype=np.int64)
    e = xpos_exponents(positions, **{name: spec_param(view, name) for name in
                                     ("scale_base", "centering", "sequence_length")})  # c / B
    return np.abs(e)[..., None], np.abs(_arith.log(xpos_zeta(dim)))


def _xpos_scale_error(e: np.ndarray, log_zeta: np.ndarray, ua: float) -> np.ndarray:
    r"""Relative error of a scale :math:`\zeta_i^{\pm c/B}` computed in the angle precision."""
    return (2 * e * log_zeta + 4 * e + 4) * ua


@error_model("xpos_scale")
def _xpos_scale(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    ua = angle_roundoff(dtype)  # a table from integer positions: computed and returned in the angle precision
    e, log_zeta = _xpos_exponents(view, int(view.params["dim"]))
    y = np.abs(np.asarray(view.expected["output"], dtype=np.float64))
    return {"output": _xpos_scale_error(e, log_zeta, ua) * y}


@error_model("xpos")
def _xpos(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    from posref.xpos import xpos_scales

    u, ua = UNIT_ROUNDOFF[dtype], angle_roundoff(dtype)
    x = np.abs(np.asarray(view.inputs["x"], dtype=np.float64))
    y = np.abs(np.asarray(view.expected["output"], dtype=np.float64))
    d, layout = x.shape[-1], spec_param(view, "layout")
    phi, theta = _xpos_pairs(view)  # rotation by the uncentred position
    e, log_zeta = _xpos_exponents(view, d)
    scale = xpos_scales(view.inputs["positions"], d, **{name: spec_param(view, name) for name in
                        ("scale_base", "centering", "sequence_length", "downscale")})  # (..., D/2)
    pair = pair_sum(x, layout) * per_channel(scale, layout)  # s (|x_a| + |x_b|)
    dphi = per_channel(angle_error_factor(theta, ua) * np.abs(phi), layout)
    ds = per_channel(_xpos_scale_error(e, log_zeta, ua), layout)
    return {"output": pair * (2 * ua + 2 * u + dphi) + (ds + u) * y}
