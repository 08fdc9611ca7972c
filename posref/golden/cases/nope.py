"""NoPE golden cases (no position encoding), and Llama 4's NoPE-layer temperature.

Features pass through unchanged at any position; negative positions and
positions that do not broadcast are still rejected.  The temperature is
checked on both sides of its first steps and at far positions up to
10,000,000 tokens.
"""

from __future__ import annotations

from posref.golden.registry import Arange, CaseSpec, Integers, Normal, Values
from posref.golden.strategies import lead_shape, positions_1d, st, strategy

__all__ = ["CASES"]

CASES: list[CaseSpec] = []


def _add(*specs: CaseSpec) -> None:
    CASES.extend(specs)


_add(
    CaseSpec(id="nope.prefill", function="nope", inputs={"x": Normal((2, 4, 7, 16)), "positions": Arange(0, 7)},
             tolerance="gather", description="features pass through unchanged"),
    CaseSpec(id="nope.cache_offset", function="nope",
             inputs={"x": Normal((3, 32)), "positions": Values([0, 131071, 1_048_575], "int64")},
             tolerance="gather", description="far positions change nothing"),
    CaseSpec(id="nope.invalid.negative_position", function="nope",
             inputs={"x": Normal((2, 4)), "positions": Values([-1, 0], "int64")}, expect_error="ValueError",
             error_match="positions", description="negative positions are still rejected"),
    CaseSpec(id="nope.invalid.broadcast", function="nope", inputs={"x": Normal((3, 4)), "positions": Arange(0, 4)},
             expect_error="ValueError", error_match="positions", description="4 positions for 3 tokens"),
)


# -- Llama 4's NoPE-layer attention temperature --------------------------------------------------

#: Positions around the first steps of F = 8192 (a step starts at p = kF - 1), and far ones.
_STEP_POSITIONS = [0, 1, 8190, 8191, 8192, 16382, 16383, 16384, 24575, 32767, 65535, 131071]
#: Far positions, all with p + 1 < 2**24, where a float32 (p + 1) / F is still exact.
_FAR_POSITIONS = [100_000, 1_000_000, 4_194_303, 10_000_000, 16_777_214]
_add(
    CaseSpec(id="nope_attention_temperature.llama4.steps", function="nope_attention_temperature",
             inputs={"positions": Values(_STEP_POSITIONS, "int64")}, tolerance="elementwise",
             description="Llama 4 defaults (F = 8192, alpha = 0.1): 1 below p = 8191, then a step every 8192"),
    CaseSpec(id="nope_attention_temperature.llama4.far", function="nope_attention_temperature",
             inputs={"positions": Values(_FAR_POSITIONS, "int64")}, tolerance="elementwise",
             description="far positions, up to 10M-token contexts and just below 2**24"),
    CaseSpec(id="nope_attention_temperature.batch", function="nope_attention_temperature",
             inputs={"positions": Integers((2, 64), 0, 10_000_000, sort=True)},
             params={"floor_scale": 4096, "attn_scale": 0.2}, tolerance="elementwise",
             description="per-sequence position ids (B, T), another step and strength"),
    CaseSpec(id="nope_attention_temperature.every_token", function="nope_attention_temperature",
             inputs={"positions": Arange(0, 48)}, params={"floor_scale": 1, "attn_scale": 1.0},
             tolerance="elementwise",
             description="F = 1, alpha = 1: 1 + ln(p + 2) grows with every token, in steps bfloat16 resolves"),
    CaseSpec(id="nope_attention_temperature.invalid.negative_position", function="nope_attention_temperature",
             inputs={"positions": Values([-1, 0], "int64")}, expect_error="ValueError", error_match="positions",
             description="positions are non-negative"),
    CaseSpec(id="nope_attention_temperature.invalid.zero_floor_scale", function="nope_attention_temperature",
             inputs={"positions": Arange(0, 4)}, params={"floor_scale": 0}, expect_error="ValueError",
             error_match="floor_scale", description="a step of zero tokens"),
    CaseSpec(id="nope_attention_temperature.invalid.fractional_floor_scale", function="nope_attention_temperature",
             inputs={"positions": Arange(0, 4)}, params={"floor_scale": 8192.5}, expect_error="TypeError",
             error_match="floor_scale", description="the step is a whole number of tokens"),
)

# -- fuzz strategies -------------------------------------------------------------------------


@strategy("nope", tolerance="gather")
def nope_case(draw, ctx):
    lead, length = draw(lead_shape()), draw(st.integers(1, 8))
    inputs = {"x": Normal(lead + (length, draw(st.integers(1, 64)))), "positions": draw(positions_1d(length))}
    return ctx.case(draw, inputs, {})


@strategy("nope_attention_temperature", tolerance="elementwise")
def nope_attention_temperature_case(draw, ctx):
    # F a power of two and p + 1 < 2**24: the float32 step index libraries form is then exact,
    # as in every released configuration (Llama 4: F = 8192)
    length = draw(st.integers(1, 64))
    positions = draw(positions_1d(length, high=2**24 - 2))
    params = {"floor_scale": 2 ** draw(st.integers(0, 15)), "attn_scale": draw(st.sampled_from((0.1, 0.05, 0.2, 1.0)))}
    return ctx.case(draw, {"positions": positions}, params)
