"""Transformer-XL golden cases.

The relative sinusoidal encoding in the original code's descending order,
clamped, as a (T, S) matrix and for the oldest keys of a 128k memory, and
the scores with memory, both ways of treating future keys.
"""

from __future__ import annotations

from posref.golden.registry import Arange, CaseSpec, Integers, Normal, Values
from posref.golden.strategies import even, lead_shape, st, strategy

__all__ = ["CASES"]

CASES: list[CaseSpec] = []


def _add(*specs: CaseSpec) -> None:
    CASES.extend(specs)


_add(
    CaseSpec(id="transformer_xl_relative_encoding.descending", function="transformer_xl_relative_encoding",
             inputs={"distances": Values(list(range(15, -1, -1)), "int64")}, params={"dim": 32},
             tolerance="sinusoidal",
             description="distances 15..0 as the original code orders them, sines then cosines"),
    CaseSpec(id="transformer_xl_relative_encoding.clamp", function="transformer_xl_relative_encoding",
             inputs={"distances": Arange(0, 12)}, params={"dim": 16, "max_distance": 8}, tolerance="sinusoidal",
             description="clamp_len = 8: distances 8..11 share the row of 8"),
    CaseSpec(id="transformer_xl_relative_encoding.matrix", function="transformer_xl_relative_encoding",
             inputs={"distances": Values([[2, 1, 0, 0], [3, 2, 1, 0], [4, 3, 2, 1]], "int64")},
             params={"dim": 64, "base": 500.0}, tolerance="sinusoidal",
             description="a (T, S) matrix of distances gives a (T, S, dim) table"),
    CaseSpec(id="transformer_xl_relative_encoding.long_memory", function="transformer_xl_relative_encoding",
             inputs={"distances": Values(list(range(131_071, 131_055, -1)), "int64")}, params={"dim": 64},
             tolerance="sinusoidal", description="the oldest 16 keys of a 128k memory, descending"),
    CaseSpec(id="transformer_xl_relative_encoding.invalid.odd_dim", function="transformer_xl_relative_encoding",
             inputs={"distances": Arange(0, 3)}, params={"dim": 7}, expect_error="ValueError", error_match="dim",
             description="odd width"),
    CaseSpec(id="transformer_xl_relative_encoding.invalid.negative", function="transformer_xl_relative_encoding",
             inputs={"distances": Values([-1, 0], "int64")}, params={"dim": 8}, expect_error="ValueError",
             error_match="distances", description="a negative distance"),
)
_add(
    CaseSpec(id="transformer_xl_scores.memory", function="transformer_xl_scores",
             inputs={"q": Normal((2, 3, 4, 8)), "k": Normal((2, 3, 7, 8)), "r": Normal((3, 7, 8)),
                     "u": Normal((3, 8), 0.5), "v": Normal((3, 8), 0.5)},
             tolerance="contraction", description="4 queries after 3 cached keys, future keys -inf"),
    CaseSpec(id="transformer_xl_scores.no_memory_zero", function="transformer_xl_scores",
             inputs={"q": Normal((1, 2, 5, 16)), "k": Normal((1, 2, 5, 16)), "r": Normal((2, 5, 16)),
                     "u": Normal((2, 16), 0.5), "v": Normal((2, 16), 0.5)},
             params={"future_keys": "zero", "scale": 1.0}, tolerance="contraction",
             description="T = S, unscaled, future entries keep only the content terms (zero_triu)"),
    CaseSpec(id="transformer_xl_scores.invalid.r_shape", function="transformer_xl_scores",
             inputs={"q": Normal((1, 2, 3, 4)), "k": Normal((1, 2, 3, 4)), "r": Normal((2, 2, 4)),
                     "u": Normal((2, 4)), "v": Normal((2, 4))},
             expect_error="ValueError", error_match="r", description="r needs one row per key"),
    CaseSpec(id="transformer_xl_scores.invalid.future_keys", function="transformer_xl_scores",
             inputs={"q": Normal((1, 2, 3, 4)), "k": Normal((1, 2, 3, 4)), "r": Normal((2, 3, 4)),
                     "u": Normal((2, 4)), "v": Normal((2, 4))},
             params={"future_keys": "drop"}, expect_error="ValueError", error_match="future_keys",
             description="unknown option"),
)


# -- fuzz strategies -------------------------------------------------------------------------


@strategy("transformer_xl_relative_encoding", tolerance="sinusoidal")
def transformer_xl_relative_encoding_case(draw, ctx):
    shape = draw(st.sampled_from(((8,), (3, 4), (1,))))
    high = draw(st.sampled_from((16, 4096, 131_072)))
    params = {"dim": draw(even(2, 128)), "base": draw(st.one_of(st.just(10_000.0), st.floats(100.0, 1e6))),
              "max_distance": draw(st.one_of(st.none(), st.integers(1, high)))}
    return ctx.case(draw, {"distances": Integers(shape, 0, high)}, params)


@strategy("transformer_xl_scores", tolerance="contraction")
def transformer_xl_scores_case(draw, ctx):
    lead, heads, d = draw(lead_shape()), draw(st.integers(1, 3)), draw(st.integers(1, 32))
    tq = draw(st.integers(1, 6))
    tk = tq + draw(st.integers(0, 6))
    inputs = {"q": Normal(lead + (heads, tq, d)), "k": Normal(lead + (heads, tk, d)), "r": Normal((heads, tk, d)),
              "u": Normal((heads, d), 0.5), "v": Normal((heads, d), 0.5)}
    params = {"scale": draw(st.one_of(st.none(), st.just(1.0), st.floats(0.01, 2.0))),
              "future_keys": draw(st.sampled_from(("mask", "zero")))}
    return ctx.case(draw, inputs, params)
