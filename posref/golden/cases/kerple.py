"""KERPLE golden cases.

The logarithmic and power kernels, causal and bidirectional, with the
code's initial parameter ranges; a query at 4096 (bfloat16 distances round
above 256), and ``p = 1`` with ALiBi's slopes, which is causal ALiBi.
"""

from __future__ import annotations

from posref.golden.registry import Arange, CaseSpec, Uniform, Values
from posref.golden.strategies import query_key_positions, st, strategy

__all__ = ["CASES"]

CASES: list[CaseSpec] = []


def _add(*specs: CaseSpec) -> None:
    CASES.extend(specs)


for bidirectional in (False, True):
    word = "bidirectional" if bidirectional else "causal"
    _add(
        CaseSpec(id=f"kerple_log_bias.{word}", function="kerple_log_bias",
                 inputs={"query_positions": Arange(0, 16), "key_positions": Arange(0, 16),
                         "r1": Uniform((4,), 0.01, 2.0), "r2": Uniform((4,), 0.01, 1.0)},
                 params={"bidirectional": bidirectional}, tolerance="kerple",
                 description=f"log kernel, 4 heads with the code's initial ranges, {word}"),
        CaseSpec(id=f"kerple_power_bias.{word}", function="kerple_power_bias",
                 inputs={"query_positions": Arange(0, 16), "key_positions": Arange(0, 16),
                         "a": Uniform((4,), 0.01, 2.0), "p": Values([0.01, 0.5, 1.0, 2.0])},
                 params={"bidirectional": bidirectional}, tolerance="kerple",
                 description=f"power kernel with exponents 0.01, 0.5, 1, 2, {word}"),
    )
_add(
    CaseSpec(id="kerple_log_bias.decoding_long", function="kerple_log_bias",
             inputs={"query_positions": Values([4096], "int64"), "key_positions": Values([0, 1, 255, 256, 257, 4095,
                                                                                           4096], "int64"),
                     "r1": Values([1.0, 0.5]), "r2": Values([0.5, 0.01])},
             tolerance="kerple", description="one query at 4096 (bfloat16 distances round above 256)"),
    CaseSpec(id="kerple_log_bias.invalid.head_mismatch", function="kerple_log_bias",
             inputs={"query_positions": Arange(0, 3), "key_positions": Arange(0, 3), "r1": Values([1.0, 1.0]),
                     "r2": Values([0.5])}, expect_error="ValueError", error_match="r1",
             description="r1 and r2 with different head counts"),
    CaseSpec(id="kerple_power_bias.alibi", function="kerple_power_bias",
             inputs={"query_positions": Arange(0, 10), "key_positions": Arange(0, 10),
                     "a": Values([0.5, 0.25, 0.125, 0.0625]), "p": Values([1.0, 1.0, 1.0, 1.0])},
             tolerance="kerple", description="p = 1 with ALiBi's 4-head slopes is causal ALiBi"),
    CaseSpec(id="kerple_power_bias.invalid.exponent", function="kerple_power_bias",
             inputs={"query_positions": Arange(0, 3), "key_positions": Arange(0, 3), "a": Values([1.0]),
                     "p": Values([2.5])}, expect_error="ValueError", error_match="p",
             description="an exponent above 2"),
)


# -- fuzz strategies -------------------------------------------------------------------------


@strategy("kerple_log_bias", tolerance="kerple")
def kerple_log_bias_case(draw, ctx):
    heads = draw(st.integers(1, 8))
    inputs = {**draw(query_key_positions(131_072)), "r1": Uniform((heads,), 0.01, 2.0),
              "r2": Uniform((heads,), 0.01, 1.0)}
    return ctx.case(draw, inputs, {"bidirectional": draw(st.booleans())})


@strategy("kerple_power_bias", tolerance="kerple")
def kerple_power_bias_case(draw, ctx):
    heads = draw(st.integers(1, 8))
    inputs = {**draw(query_key_positions(131_072)), "a": Uniform((heads,), 0.01, 2.0),
              "p": Values(draw(st.lists(st.one_of(st.sampled_from((0.5, 1.0, 2.0)), st.floats(0.01, 2.0)),
                                        min_size=heads, max_size=heads)))}
    return ctx.case(draw, inputs, {"bidirectional": draw(st.booleans())})
