"""RoPE golden cases.

The hard positions (0, 1, 4095, 8191, 32768, 131071 and about 1,000,000,
where float32 angles lose precision), odd sizes, partial rotary (first or
last slice, Hugging Face's "proportional"), per-sequence positions, a
KV-cache offset, and both pair layouts, at every layer: frequencies,
angles, cos/sin caches, pair rotation and ``apply_rope``.
"""

from __future__ import annotations

from typing import Any

from posref.golden.cases._common import HARD_POSITIONS
from posref.golden.registry import Arange, CaseSpec, Integers, Normal, Values
from posref.golden.strategies import (
    MAX_POSITION,
    bases,
    even,
    lead_shape,
    position,
    positions_1d,
    positions_nd,
    st,
    strategy,
)

__all__ = ["CASES"]

CASES: list[CaseSpec] = []


def _add(*specs: CaseSpec) -> None:
    CASES.extend(specs)


for dim, base in [(128, 10_000.0), (64, 500_000.0), (96, 1_000_000.0), (2, 10_000.0), (80, 10_000.0)]:
    _add(CaseSpec(
        id=f"rope_frequencies.d{dim}.b{int(base)}", function="rope_frequencies",
        inputs={}, params={"dim": dim, "base": base}, tolerance="frequency",
        description=f"inverse frequencies for dim={dim}, base={base:g}",
    ))
_add(
    CaseSpec(id="rope_frequencies.invalid.odd_dim", function="rope_frequencies", inputs={},
             params={"dim": 63}, expect_error="ValueError", error_match="dim",
             description="an odd rotary width must be rejected"),
    CaseSpec(id="rope_frequencies.invalid.base_one", function="rope_frequencies", inputs={},
             params={"dim": 64, "base": 1.0}, expect_error="ValueError", error_match="base",
             description="base 1 gives constant angles and must be rejected"),
)
for dim, base in [(128, 10_000.0), (128, 500_000.0)]:
    _add(CaseSpec(
        id=f"rope_angles.hard_positions.d{dim}.b{int(base)}", function="rope_angles",
        inputs={"positions": Values(HARD_POSITIONS, "int64")},
        params={"dim": dim, "base": base}, tolerance="angle",
        description="angles at the positions where float32 loses precision",
    ))
_add(CaseSpec(
    id="rope_angles.invalid.fractional_dim", function="rope_angles", inputs={"positions": Arange(0, 3)},
    params={"dim": 8.5}, expect_error="TypeError", error_match="dim", description="dim must be an integer",
))
_add(CaseSpec(
    id="rope_angles.batch_positions", function="rope_angles",
    inputs={"positions": Integers((2, 7), 0, 40_000, sort=True)}, params={"dim": 64}, tolerance="angle",
    description="per-sequence position ids of shape (B, T)",
))
for layout in ("half", "interleaved"):
    _add(
        CaseSpec(
            id=f"apply_rotary.{layout}.small", function="apply_rotary",
            inputs={"x": Normal((2, 3, 5, 8)), "angles": Normal((5, 4), 3.0)},
            params={"layout": layout}, tolerance="rotation",
            description=f"pair rotation in the {layout} layout, angles broadcast over batch and heads",
        ),
    )
_add(CaseSpec(
    id="apply_rotary.invalid.odd_width", function="apply_rotary",
    inputs={"x": Normal((3, 7)), "angles": Normal((3, 3))}, expect_error="ValueError", error_match="x",
    description="an odd feature width has no pairs",
))

_P = Values(HARD_POSITIONS, "int64")

for layout in ("half", "interleaved"):
    _add(CaseSpec(
        id=f"rope_cos_sin.{layout}.hard_positions", function="rope_cos_sin",
        inputs={"positions": _P}, params={"dim": 128, "base": 10_000.0, "layout": layout}, tolerance="cos_sin",
        description="cos/sin caches as Hugging Face (half) and GPT-J (interleaved) build them",
    ))
_add(CaseSpec(id="rope_cos_sin.invalid.layout", function="rope_cos_sin", inputs={"positions": Arange(0, 4)},
              params={"dim": 8, "layout": "neox"}, expect_error="ValueError", error_match="layout",
              description="layout names are 'half' and 'interleaved'"))

for layout in ("half", "interleaved"):
    _add(
        CaseSpec(id=f"apply_rope.{layout}.short", function="apply_rope",
                 inputs={"x": Normal((2, 4, 16, 64)), "positions": Arange(0, 16)},
                 params={"layout": layout}, tolerance="rope",
                 description="(B, H, T, D) queries at positions 0..15"),
        CaseSpec(id=f"apply_rope.{layout}.hard_positions", function="apply_rope",
                 inputs={"x": Normal((2, len(HARD_POSITIONS), 128)), "positions": _P},
                 params={"layout": layout, "base": 500_000.0}, tolerance="rope",
                 description="positions up to 2**20 - 1 where float32 angles lose precision"),
        CaseSpec(id=f"apply_rope.{layout}.partial_first", function="apply_rope",
                 inputs={"x": Normal((3, 9, 80)), "positions": Integers((9,), 0, 5000, sort=True)},
                 params={"layout": layout, "rotary_dim": 20}, tolerance="rope",
                 description="partial rotary: the first 20 of 80 channels rotate (GPT-NeoX, Phi)"),
    )
_add(
    CaseSpec(id="apply_rope.half.partial_last", function="apply_rope",
             inputs={"x": Normal((2, 6, 96)), "positions": Arange(100, 106)},
             params={"rotary_dim": 32, "rotated_slice": "last"}, tolerance="rope",
             description="the rotated slice is the last 32 channels (DeepSeek MLA)"),
    CaseSpec(id="apply_rope.half.partial_head_dim_denominator", function="apply_rope",
             inputs={"x": Normal((2, 6, 64)), "positions": Arange(0, 6)},
             params={"rotary_dim": 16, "freq_denominator": "head_dim"}, tolerance="rope",
             description="frequencies with the head width as exponent denominator"),
    CaseSpec(id="apply_rope.half.proportional", function="apply_rope",
             inputs={"x": Normal((2, 5, 64)), "positions": Arange(0, 5)},
             params={"rotary_dim": 16, "rotated_slice": "first_pairs", "freq_denominator": "head_dim"},
             tolerance="rope", description="Hugging Face 'proportional': zero-padded frequencies over the whole head"),
    CaseSpec(id="apply_rope.half.batch_positions", function="apply_rope",
             inputs={"x": Normal((2, 1, 7, 32)), "positions": Integers((2, 1, 7), 0, 140_000, sort=True)},
             params={}, tolerance="rope", description="per-sequence positions (B, 1, T)"),
    CaseSpec(id="apply_rope.half.position_offset", function="apply_rope",
             inputs={"x": Normal((3, 1, 32)), "positions": Arange(0, 1)},
             params={"position_offset": 131_071}, tolerance="rope",
             description="one decoding step with a KV-cache offset"),
    CaseSpec(id="apply_rope.half.odd_sequence", function="apply_rope",
             inputs={"x": Normal((1, 3, 13, 8)), "positions": Arange(0, 13)},
             params={"base": 10.0}, tolerance="rope", description="odd sequence length, tiny head, small base"),
    CaseSpec(id="apply_rope.invalid.odd_head_dim", function="apply_rope",
             inputs={"x": Normal((2, 63)), "positions": Arange(0, 2)}, expect_error="ValueError",
             error_match="x", description="odd head width with full rotary"),
    CaseSpec(id="apply_rope.invalid.rotary_dim_too_large", function="apply_rope",
             inputs={"x": Normal((2, 8)), "positions": Arange(0, 2)}, params={"rotary_dim": 10},
             expect_error="ValueError", error_match="rotary_dim", description="rotary_dim wider than the head"),
    CaseSpec(id="apply_rope.invalid.negative_position", function="apply_rope",
             inputs={"x": Normal((2, 8)), "positions": Values([-1, 0], "int64")}, expect_error="ValueError",
             error_match="positions", description="negative positions"),
)


# -- fuzz strategies -------------------------------------------------------------------------


@strategy("rope_frequencies", tolerance="frequency")
def rope_frequencies_case(draw, ctx):
    params = {"dim": draw(even(2, 256)), "base": draw(bases())}
    return ctx.case(draw, {}, params)


@strategy("rope_angles", tolerance="angle")
def rope_angles_case(draw, ctx):
    inputs = {"positions": draw(positions_nd())}
    params = {"dim": draw(even(2, 128)), "base": draw(bases())}
    return ctx.case(draw, inputs, params)


@strategy("rope_cos_sin", tolerance="cos_sin")
def rope_cos_sin_case(draw, ctx):
    inputs = {"positions": draw(positions_nd())}
    params = {"dim": draw(even(2, 128)), "base": draw(bases()),
              "layout": draw(st.sampled_from(("half", "interleaved")))}
    return ctx.case(draw, inputs, params)


@strategy("apply_rotary", tolerance="rotation")
def apply_rotary_case(draw, ctx):
    d = draw(even(2, 128))
    lead, length = draw(lead_shape()), draw(st.integers(1, 8))
    angle_lead = lead if draw(st.booleans()) else ()
    inputs = {"x": Normal(lead + (length, d)),
              "angles": Normal(angle_lead + (length, d // 2), draw(st.sampled_from((1.0, 3.0, 30.0))))}
    return ctx.case(draw, inputs, {"layout": draw(st.sampled_from(("half", "interleaved")))})


@strategy("apply_rope", tolerance="rope")
def apply_rope_case(draw, ctx):
    d = draw(even(2, 128))
    lead, length = draw(lead_shape()), draw(st.integers(1, 8))
    if len(lead) == 2 and draw(st.booleans()):  # per-sequence positions (B, 1, T)
        row = st.lists(position(MAX_POSITION), min_size=length, max_size=length)
        positions = Values([[r] for r in draw(st.lists(row, min_size=lead[0], max_size=lead[0]))], "int64")
    else:
        positions = draw(positions_1d(length))
    params: dict[str, Any] = {"base": draw(bases()), "layout": draw(st.sampled_from(("half", "interleaved")))}
    if draw(st.booleans()):  # partial rotary
        params["rotary_dim"] = draw(even(2, d))
        params["rotated_slice"] = draw(st.sampled_from(("first", "last", "first_pairs")))
        params["freq_denominator"] = draw(st.sampled_from(("rotary_dim", "head_dim")))
    params["position_offset"] = draw(st.one_of(st.just(0), st.integers(0, MAX_POSITION)))
    return ctx.case(draw, {"x": Normal(lead + (length, d)), "positions": positions}, params)
