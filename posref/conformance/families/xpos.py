"""xPos: the ``xpos_scale`` and ``xpos`` models, and the fuzz strategies."""

from __future__ import annotations

import numpy as np

from posref import _arith
from posref.conformance.families._draw import (
    SHORT_POSITION,
    even,
    lead_shape,
    model_bases,
    positions_1d,
    positions_nd,
    st,
    strategy,
)
from posref.conformance.families.rope import rope_pairs
from posref.conformance.tolerance import (
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
from posref.golden.registry import Normal

__all__: list[str] = []


# -- error models ----------------------------------------------------------------------------


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


# -- fuzz strategies -------------------------------------------------------------------------


@strategy("apply_xpos", tolerance="xpos")
def apply_xpos_case(draw, ctx):
    d = draw(even(2, 128))
    lead, length = draw(lead_shape()), draw(st.integers(1, 8))
    positions = draw(positions_1d(length, SHORT_POSITION))
    largest = int(np.max(positions.draw(np.random.default_rng(0))))
    params = {"base": draw(model_bases()), "scale_base": draw(st.one_of(st.just(512.0), st.floats(8.0, 4096.0))),
              "layout": draw(st.sampled_from(("interleaved", "half"))), "downscale": draw(st.booleans()),
              "centering": draw(st.sampled_from(("ceil_half", "floor_half", "none"))),
              "sequence_length": draw(st.one_of(st.none(), st.integers(largest + 1, 2 * SHORT_POSITION)))}
    return ctx.case(draw, {"x": Normal(lead + (length, d)), "positions": positions}, params)


@strategy("xpos_scales", tolerance="xpos_scale")
def xpos_scales_case(draw, ctx):
    positions = draw(positions_nd(SHORT_POSITION))
    largest = int(np.max(positions.draw(np.random.default_rng(0))))
    params = {"dim": draw(even(2, 128)),
              "scale_base": draw(st.one_of(st.just(512.0), st.floats(8.0, 4096.0))),
              "centering": draw(st.sampled_from(("ceil_half", "floor_half", "none"))),
              "downscale": draw(st.booleans()),
              "sequence_length": draw(st.one_of(st.none(), st.integers(largest + 1, 2 * SHORT_POSITION)))}
    return ctx.case(draw, {"positions": positions}, params)
