"""FIRE golden cases (functional interpolation).

The normalised distance below and beyond the threshold, with trained values
of ``c`` and the threshold, and the MLP bias of the paper's width, a query
far beyond the threshold included.
"""

from __future__ import annotations

from posref.golden.registry import Arange, CaseSpec, Normal, Values
from posref.golden.strategies import query_key_positions, st, strategy

__all__ = ["CASES"]

CASES: list[CaseSpec] = []


def _add(*specs: CaseSpec) -> None:
    CASES.extend(specs)


_add(
    CaseSpec(id="fire_normalized_distance.below_threshold", function="fire_normalized_distance",
             inputs={"query_positions": Arange(0, 16), "key_positions": Arange(0, 16)}, tolerance="fire",
             description="16 tokens, all before the threshold 512: normalised by psi(512)"),
    CaseSpec(id="fire_normalized_distance.beyond_threshold", function="fire_normalized_distance",
             inputs={"query_positions": Values([511, 512, 513, 600, 4096], "int64"),
                     "key_positions": Values([0, 1, 511, 590, 600, 4096], "int64")},
             tolerance="fire", description="queries around and beyond L = 512, future keys included"),
    CaseSpec(id="fire_normalized_distance.learned", function="fire_normalized_distance",
             inputs={"query_positions": Arange(100, 108), "key_positions": Arange(0, 108)},
             params={"c": -0.37, "threshold": 64.0}, tolerance="fire",
             description="trained values: negative c (only |c| counts), threshold 64"),
    CaseSpec(id="fire_normalized_distance.invalid.eps", function="fire_normalized_distance",
             inputs={"query_positions": Arange(0, 3), "key_positions": Arange(0, 3)}, params={"eps": 0.0},
             expect_error="ValueError", error_match="eps", description="eps must be positive"),
    CaseSpec(id="fire_bias.k32.h4", function="fire_bias",
             inputs={"query_positions": Arange(0, 12), "key_positions": Arange(0, 12),
                     "w1": Normal((1, 32)), "b1": Normal((32,), 0.1), "w2": Normal((32, 4), 0.2),
                     "b2": Normal((4,), 0.1)},
             tolerance="fire_mlp", description="the paper's MLP width 32, 4 heads, 12 tokens"),
    CaseSpec(id="fire_bias.decoding_long", function="fire_bias",
             inputs={"query_positions": Values([2047], "int64"), "key_positions": Arange(2000, 2048),
                     "w1": Normal((1, 32)), "b1": Normal((32,), 0.1), "w2": Normal((32, 2), 0.2),
                     "b2": Normal((2,), 0.1)},
             params={"threshold": 256.0}, tolerance="fire_mlp",
             description="a query at 2047 beyond the threshold, its 48 nearest keys"),
    CaseSpec(id="fire_bias.invalid.w2", function="fire_bias",
             inputs={"query_positions": Arange(0, 3), "key_positions": Arange(0, 3), "w1": Normal((1, 32)),
                     "b1": Normal((32,)), "w2": Normal((16, 4)), "b2": Normal((4,))},
             expect_error="ValueError", error_match="w2", description="second layer with 16 inputs for 32 units"),
)


# -- fuzz strategies -------------------------------------------------------------------------


def fire_options():
    """Strategies of FIRE's ``c``, ``threshold`` and ``eps``."""
    return {"c": st.one_of(st.just(0.1), st.floats(-0.5, 2.0)),
            "threshold": st.one_of(st.just(512.0), st.floats(1.0, 4096.0)),
            "eps": st.one_of(st.just(1e-6), st.floats(1e-8, 1e-2))}


@strategy("fire_normalized_distance", tolerance="fire")
def fire_normalized_distance_case(draw, ctx):
    params = {name: draw(values) for name, values in fire_options().items()}
    return ctx.case(draw, draw(query_key_positions(65_536)), params)


@strategy("fire_bias", tolerance="fire_mlp")
def fire_bias_case(draw, ctx):
    hidden, heads = draw(st.integers(1, 32)), draw(st.integers(1, 8))
    inputs = {**draw(query_key_positions(65_536)), "w1": Normal((1, hidden)), "b1": Normal((hidden,), 0.1),
              "w2": Normal((hidden, heads), 0.2), "b2": Normal((heads,), 0.1)}
    params = {name: draw(values) for name, values in fire_options().items()}
    return ctx.case(draw, inputs, params)
