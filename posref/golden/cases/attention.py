"""Attention golden cases.

Causal attention with an additive bias and with Shaw's relative key and
value terms.  ``decode_incrementally`` takes Python callables,
not arrays, and so has no golden case (``NOT_GOLDEN``).
"""

from __future__ import annotations

from posref.golden.registry import CaseSpec, Normal, Values
from posref.golden.strategies import lead_shape, st, strategy

__all__ = ["CASES", "NOT_GOLDEN"]

#: Functions that take Python callables and so have no golden case.
NOT_GOLDEN: dict[str, str] = {"decode_incrementally": "takes Python callables (the position method), not arrays"}

CASES: list[CaseSpec] = []


def _add(*specs: CaseSpec) -> None:
    CASES.extend(specs)


_add(
    CaseSpec(id="attention.causal_bias", function="attention",
             inputs={"q": Normal((2, 3, 9, 16)), "k": Normal((2, 3, 9, 16)), "v": Normal((2, 3, 9, 16)),
                     "bias": Normal((3, 9, 9))},
             params={"causal": True}, tolerance="softmax", description="causal attention with an additive bias"),
    CaseSpec(id="attention.shaw_terms", function="attention",
             inputs={"q": Normal((1, 2, 5, 8)), "k": Normal((1, 2, 7, 8)), "v": Normal((1, 2, 7, 8)),
                     "relative_keys": Normal((5, 7, 8), 0.5), "relative_values": Normal((5, 7, 8), 0.5)},
             params={}, tolerance="softmax", description="relative key and value terms, T < S"),
    CaseSpec(id="attention.invalid.shapes", function="attention",
             inputs={"q": Normal((1, 2, 5, 8)), "k": Normal((1, 2, 7, 4)), "v": Normal((1, 2, 7, 8))},
             expect_error="ValueError", error_match="k", description="query and key widths differ"),
)


# -- fuzz strategies -------------------------------------------------------------------------


@strategy("attention", tolerance="softmax")
def attention_case(draw, ctx):
    causal = draw(st.booleans())
    lead, tq = draw(lead_shape()), draw(st.integers(1, 8))
    tk = tq + draw(st.integers(0, 4)) if causal else draw(st.integers(1, 8))  # no query without a key
    heads, d, dv = draw(st.integers(1, 3)), draw(st.integers(1, 32)), draw(st.integers(1, 32))
    inputs = {"q": Normal(lead + (heads, tq, d)), "k": Normal(lead + (heads, tk, d)),
              "v": Normal(lead + (heads, tk, dv))}
    if draw(st.booleans()):
        inputs["bias"] = Normal((heads, tq, tk), draw(st.sampled_from((1.0, 4.0))))
    if causal and draw(st.booleans()):  # explicit positions: every query sees at least key 0
        inputs["query_positions"] = Values(sorted(draw(st.lists(st.integers(0, 64), min_size=tq,
                                                                max_size=tq))), "int64")
        inputs["key_positions"] = Values([0] + sorted(draw(st.lists(st.integers(0, 64), min_size=tk - 1,
                                                                    max_size=tk - 1))), "int64")
    if draw(st.booleans()):
        inputs["relative_keys"] = Normal((tq, tk, d), 0.5)
    if draw(st.booleans()):
        inputs["relative_values"] = Normal((tq, tk, dv), 0.5)
    params = {"causal": causal, "scale": draw(st.one_of(st.none(), st.floats(0.01, 2.0)))}
    return ctx.case(draw, inputs, params)
