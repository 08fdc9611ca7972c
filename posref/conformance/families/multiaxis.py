"""Multi-axis encodings (M-RoPE, axial RoPE, 2-D sin-cos): their hooks of the shared models, the fuzz strategies.

M-RoPE and axial RoPE are judged by the ``angle`` and ``rope`` models of
:mod:`posref.conformance.families.rope`, 2-D sin-cos tables by the
``sinusoidal`` model of :mod:`posref.conformance.families.sinusoidal`;
this module says which coordinate drives each pair or channel.
"""

from __future__ import annotations

import numpy as np

from posref.conformance.families._draw import (
    MAX_POSITION,
    composite,
    even,
    lead_shape,
    model_bases,
    position,
    st,
    strategy,
)
from posref.conformance.families.rope import rotary_width
from posref.conformance.tolerance import CaseView, input_array, rotary_pairs, sinusoid_channels, spec_param
from posref.golden.registry import Integers, Normal, Uniform, Values

__all__: list[str] = []


# -- error-model hooks -----------------------------------------------------------------------


@rotary_pairs("mrope_angles")
@rotary_pairs("apply_mrope")
def _mrope_pairs(view: CaseView) -> tuple[np.ndarray, np.ndarray]:
    """M-RoPE: pair i turns by p_a(i) * theta_i, with a(i) the coordinate its section assigns."""
    from posref.multiaxis import mrope_angles
    from posref.rope import rope_frequencies

    dim, base = rotary_width(view), float(spec_param(view, "base"))
    section = [int(s) for s in view.params["mrope_section"]]
    phi = mrope_angles(input_array(view, "positions"), dim, base=base, mrope_section=section,
                       section_order=_section_order(view))
    return phi, rope_frequencies(dim, base=base)


def _section_order(view: CaseView) -> str:
    """``section_order`` of an M-RoPE case, or the one its deprecated ``interleaved`` flag names."""
    interleaved = view.params.get("interleaved")
    if interleaved is not None:
        return "round_robin" if interleaved else "blocks"
    return spec_param(view, "section_order")


@rotary_pairs("axial_rope_angles")
@rotary_pairs("apply_axial_rope")
def _axial_pairs(view: CaseView) -> tuple[np.ndarray, np.ndarray]:
    """Axial RoPE: the first dim/4 pairs turn with one coordinate, the last dim/4 with the other."""
    from posref.multiaxis import axial_rope_angles

    dim = rotary_width(view)
    options = {name: spec_param(view, name) for name in ("axis_order", "frequencies")}
    options["base"] = float(spec_param(view, "base"))
    theta = axial_rope_angles(np.ones(2), dim, **options)  # the angles at coordinates (1, 1) are the frequencies
    return axial_rope_angles(input_array(view, "positions_2d"), dim, **options), theta


@sinusoid_channels("sincos_2d_encoding")
def _sincos_2d_channels(view: CaseView) -> tuple[np.ndarray, np.ndarray]:
    """``sincos_2d_encoding``: each channel block reads the grid coordinate the spec gives it.

    The class-token row (all zeros in the spec) gets angle 0 and frequency 0,
    which the ``sinusoidal`` model turns into a budget of 0.
    """
    from posref.rope import rope_frequencies

    height, width = (int(v) for v in view.params["grid_shape"])
    dim = int(view.params["dim"])
    omega = rope_frequencies(dim // 2, base=float(spec_param(view, "base")))  # (dim/4,)
    rows, cols = np.divmod(np.arange(height * width, dtype=np.float64), width)  # row-major tokens
    a, b = (cols, rows) if spec_param(view, "axis_order") == "xy" else (rows, cols)
    blocks = (a, a, b, b) if spec_param(view, "grouping") == "axis" else (a, b, a, b)
    phi = np.concatenate([c[:, None] * omega for c in blocks], axis=1)  # (H*W, dim)
    theta = np.broadcast_to(np.tile(omega, 4), phi.shape)
    if spec_param(view, "class_token"):
        phi = np.concatenate([np.zeros((1, dim)), phi])
        theta = np.concatenate([np.zeros((1, dim)), theta])
    return phi, theta


# -- fuzz strategies -------------------------------------------------------------------------


@strategy("apply_mrope", tolerance="rope")
def apply_mrope_case(draw, ctx):
    d = draw(even(2, 128))
    half = d // 2
    lead, length = draw(lead_shape()), draw(st.integers(1, 8))
    round_robin = draw(st.booleans())
    if round_robin:  # height takes pairs 1, 4, 7, ... and width 2, 5, 8, ... below half
        height, width = draw(st.integers(0, (half + 1) // 3)), draw(st.integers(0, half // 3))
    else:
        height = draw(st.integers(0, half))
        width = draw(st.integers(0, half - height))
    row = st.lists(position(MAX_POSITION), min_size=length, max_size=length)
    positions = Values(draw(st.lists(row, min_size=3, max_size=3)), "int64")  # (3, T)
    params = {"base": draw(model_bases()), "mrope_section": [half - height - width, height, width],
              "section_order": "round_robin" if round_robin else "blocks",
              "layout": draw(st.sampled_from(("half", "interleaved")))}
    return ctx.case(draw, {"x": Normal(lead + (length, d)), "positions": positions}, params)


@strategy("sincos_2d_encoding", tolerance="sinusoidal")
def sincos_2d_encoding_case(draw, ctx):
    params = {"grid_shape": [draw(st.integers(1, 16)), draw(st.integers(1, 16))],
              "dim": 4 * draw(st.integers(1, 64)), "base": draw(model_bases()),
              "axis_order": draw(st.sampled_from(("xy", "yx"))),
              "grouping": draw(st.sampled_from(("axis", "sin_cos"))), "class_token": draw(st.booleans())}
    return ctx.case(draw, {}, params)


@composite
def coordinates(draw, lead: tuple = ()):
    """Row and column coordinates of shape ``(2,) + lead + (T,)``: a grid, integers or fractions."""
    length = draw(st.integers(1, 16))
    kind = draw(st.sampled_from(("grid", "integers", "fractions")))
    if kind == "grid" and not lead:
        cols = draw(st.integers(1, 4))
        rows = max(1, length // cols)
        start = draw(st.one_of(st.just(0), st.integers(0, 65_536)))
        cells = [(start + r, start + c) for r in range(rows) for c in range(cols)]
        return Values([[y for y, _ in cells], [x for _, x in cells]], "int64")
    high = draw(st.sampled_from((16, 1024, 100_000)))
    if kind == "fractions":
        return Uniform((2,) + lead + (length,), 0.0, float(high))
    return Integers((2,) + lead + (length,), 0, high)


@strategy("axial_rope_angles", tolerance="angle")
def axial_rope_angles_case(draw, ctx):
    params = {"dim": 4 * draw(st.integers(1, 32)), "base": draw(st.one_of(st.just(100.0), model_bases())),
              "axis_order": draw(st.sampled_from(("xy", "yx"))),
              "frequencies": draw(st.sampled_from(("per_axis", "even_odd")))}
    return ctx.case(draw, {"positions_2d": draw(coordinates())}, params)


@strategy("apply_axial_rope", tolerance="rope")
def apply_axial_rope_case(draw, ctx):
    positions = draw(coordinates())
    length = int(np.asarray(positions.draw(np.random.default_rng(0))).shape[-1])
    d = 4 * draw(st.integers(1, 32))
    params = {"base": draw(st.one_of(st.just(100.0), model_bases())),
              "axis_order": draw(st.sampled_from(("xy", "yx"))),
              "frequencies": draw(st.sampled_from(("per_axis", "even_odd"))),
              "layout": draw(st.sampled_from(("interleaved", "half")))}
    inputs = {"x": Normal(draw(lead_shape()) + (length, d)), "positions_2d": positions}
    return ctx.case(draw, inputs, params)


@composite
def mrope_options(draw, d: int):
    """``base``, ``mrope_section`` and ``section_order`` of an M-RoPE of width ``d``."""
    half = d // 2
    round_robin = draw(st.booleans())
    if round_robin:
        height, width = draw(st.integers(0, (half + 1) // 3)), draw(st.integers(0, half // 3))
    else:
        height = draw(st.integers(0, half))
        width = draw(st.integers(0, half - height))
    return {"base": draw(model_bases()), "mrope_section": [half - height - width, height, width],
            "section_order": "round_robin" if round_robin else "blocks"}


@strategy("mrope_angles", tolerance="angle")
def mrope_angles_case(draw, ctx):
    d, length = draw(even(2, 128)), draw(st.integers(1, 8))
    row = st.lists(position(MAX_POSITION), min_size=length, max_size=length)
    positions = Values(draw(st.lists(row, min_size=3, max_size=3)), "int64")
    return ctx.case(draw, {"positions": positions}, {"dim": d, **draw(mrope_options(d))})


@strategy("mrope_position_ids", tolerance="exact")
def mrope_position_ids_case(draw, ctx):
    merge = draw(st.sampled_from((1, 2, 2, 3)))
    text = st.integers(0, 6)
    vision = st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4)).map(
        lambda thw: [thw[0], thw[1] * merge, thw[2] * merge])
    segments = draw(st.lists(st.one_of(text, vision), min_size=1, max_size=4))
    return ctx.case(draw, {}, {"segments": segments, "spatial_merge_size": merge})
