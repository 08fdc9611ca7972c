"""Sandwich golden cases.

The bias of sinusoid dot products, causal and bidirectional, with NeMo's
and Vaswani's first frequency, and at distances up to 100000, where each
float32 cosine carries its angle error.
"""

from __future__ import annotations

from posref.golden.registry import Arange, CaseSpec, Values
from posref.golden.strategies import even, model_bases, query_key_positions, st, strategy

__all__ = ["CASES"]

CASES: list[CaseSpec] = []


def _add(*specs: CaseSpec) -> None:
    CASES.extend(specs)


for bidirectional in (False, True):
    word = "bidirectional" if bidirectional else "causal"
    _add(CaseSpec(
        id=f"sandwich_bias.{word}", function="sandwich_bias",
        inputs={"query_positions": Arange(0, 24), "key_positions": Arange(0, 24)},
        params={"dim": 64, "num_heads": 8, "bidirectional": bidirectional}, tolerance="sandwich",
        description=f"head width 64, 8 heads, frequencies from k = 1 (NeMo), {word}",
    ))
_add(
    CaseSpec(id="sandwich_bias.vaswani_frequencies", function="sandwich_bias",
             inputs={"query_positions": Arange(0, 12), "key_positions": Arange(0, 12)},
             params={"dim": 32, "num_heads": 12, "first_frequency": 0}, tolerance="sandwich",
             description="frequencies from k = 0, 12 heads"),
    CaseSpec(id="sandwich_bias.decoding", function="sandwich_bias",
             inputs={"query_positions": Values([255], "int64"),
                     "key_positions": Values([0, 1, 128, 254, 255], "int64")},
             params={"dim": 128, "num_heads": 4}, tolerance="sandwich",
             description="one query at 255 and five of its keys, head width 128"),
    CaseSpec(id="sandwich_bias.long_distance", function="sandwich_bias",
             inputs={"query_positions": Values([100_000], "int64"),
                     "key_positions": Values([0, 1, 50_000, 99_743, 99_999, 100_000], "int64")},
             params={"dim": 64, "num_heads": 4}, tolerance="sandwich",
             description="distances up to 100000: each of the 32 float32 cosines carries its angle error"),
    CaseSpec(id="sandwich_bias.invalid.heads", function="sandwich_bias",
             inputs={"query_positions": Arange(0, 3), "key_positions": Arange(0, 3)},
             params={"dim": 8, "num_heads": 0}, expect_error="ValueError", error_match="num_heads",
             description="zero heads"),
    CaseSpec(id="sandwich_bias.invalid.odd_dim", function="sandwich_bias",
             inputs={"query_positions": Arange(0, 3), "key_positions": Arange(0, 3)},
             params={"dim": 7, "num_heads": 2}, expect_error="ValueError", error_match="dim",
             description="odd sinusoid width"),
)


# -- fuzz strategies -------------------------------------------------------------------------


@strategy("sandwich_bias", tolerance="sandwich")
def sandwich_bias_case(draw, ctx):
    params = {"dim": draw(even(2, 128)), "num_heads": draw(st.integers(1, 16)), "base": draw(model_bases()),
              "first_frequency": draw(st.sampled_from((1, 0))), "bidirectional": draw(st.booleans())}
    return ctx.case(draw, draw(query_key_positions(131_072)), params)
