"""ALiBi golden cases.

Slopes for head counts that are not powers of two (the paper's rule, which
MPT's derivation reproduces bit for bit), and the bias in each of its forms (distance, key index, last-key
anchored, symmetric), causal and bidirectional, with Falcon's scale and at
distances up to 8191 where a bfloat16 product shows.
"""

from __future__ import annotations

import math

from posref.alibi import alibi_slopes
from posref.golden.registry import Arange, CaseSpec, Values
from posref.golden.strategies import positions_1d, st, strategy

__all__ = ["CASES"]

CASES: list[CaseSpec] = []


def _add(*specs: CaseSpec) -> None:
    CASES.extend(specs)


for heads in (1, 8, 12, 20, 40, 64, 6, 3):
    _add(CaseSpec(
        id=f"alibi_slopes.h{heads}", function="alibi_slopes", inputs={},
        params={"num_heads": heads}, tolerance="linear_bias",
        description=f"slopes for {heads} heads",
    ))
_add(CaseSpec(id="alibi_slopes.invalid.zero_heads", function="alibi_slopes", inputs={}, params={"num_heads": 0},
              expect_error="ValueError", error_match="num_heads", description="zero heads"))
_SLOPES12 = [2.0 ** (-8 * k / 8) for k in range(1, 9)] + [2.0 ** (-(2 * k - 1) * 0.5) for k in range(1, 5)]
for form in ("distance", "key_index", "last_key_anchored", "symmetric"):
    _add(CaseSpec(
        id=f"alibi_bias.{form}.causal", function="alibi_bias",
        inputs={"slopes": Values(_SLOPES12), "query_positions": Arange(0, 24), "key_positions": Arange(0, 24)},
        params={"form": form, "causal": True}, tolerance="linear_bias",
        description=f"{form} form, 12 heads (not a power of two), causal",
    ))
_add(
    CaseSpec(id="alibi_bias.symmetric.bidirectional_long", function="alibi_bias",
             inputs={"slopes": Values(_SLOPES12[:4]), "query_positions": Values([0, 2047, 8191], "int64"),
                     "key_positions": Arange(0, 8192)},
             params={"form": "symmetric", "causal": False}, tolerance="linear_bias",
             description="bidirectional -m|i-j| up to distance 8191 (bf16 spacing there is 32 x slope)"),
    CaseSpec(id="alibi_bias.distance.causal_long", function="alibi_bias",
             inputs={"slopes": Values(_SLOPES12), "query_positions": Values([300, 1000, 4095], "int64"),
                     "key_positions": Arange(0, 4096)},
             params={}, tolerance="linear_bias",
             description="non-power-of-two slopes at distances up to 4095, where a bf16 product shows"),
    CaseSpec(id="alibi_bias.distance.falcon_scale", function="alibi_bias",
             inputs={"slopes": Values(_SLOPES12[:8]), "query_positions": Arange(0, 10), "key_positions": Arange(0, 10)},
             params={"scale": 0.125}, tolerance="linear_bias", description="Falcon divides the bias by sqrt(64)"),
    CaseSpec(id="alibi_bias.key_index.falcon_scale", function="alibi_bias",
             inputs={"slopes": Values([2.0 ** -k for k in range(1, 9)]), "query_positions": Values([299], "int64"),
                     "key_positions": Arange(0, 300)},
             params={"form": "key_index", "scale": 0.125}, tolerance="linear_bias",
             description="Falcon's form and scale (1/sqrt(64)), keys up to 299"),
    CaseSpec(id="alibi_bias.invalid.form", function="alibi_bias",
             inputs={"slopes": Values([0.5]), "query_positions": Arange(0, 2), "key_positions": Arange(0, 2)},
             params={"form": "bloom"}, expect_error="ValueError", error_match="form", description="unknown form"),
)


# -- fuzz strategies -------------------------------------------------------------------------


@strategy("alibi_slopes", tolerance="linear_bias")
def alibi_slopes_case(draw, ctx):
    params = {"num_heads": draw(st.integers(1, 64)), "max_bias": draw(st.one_of(st.just(8.0), st.floats(1.0, 16.0)))}
    return ctx.case(draw, {}, params)


@strategy("alibi_bias", tolerance="linear_bias")
def alibi_bias_case(draw, ctx):
    heads = draw(st.integers(1, 64))
    slopes = alibi_slopes(heads, max_bias=draw(st.one_of(st.just(8.0), st.floats(1.0, 16.0))))
    inputs = {"slopes": Values(slopes.tolist()),
              "query_positions": draw(positions_1d(draw(st.integers(1, 8)))),
              "key_positions": draw(positions_1d(draw(st.integers(1, 12))))}
    params = {"form": draw(st.sampled_from(("distance", "symmetric", "key_index", "last_key_anchored"))),
              "causal": draw(st.booleans()),
              "scale": draw(st.one_of(st.just(1.0), st.sampled_from((0.125, 1 / math.sqrt(128))),
                                      st.floats(0.01, 2.0)))}
    return ctx.case(draw, inputs, params)
