"""CoPE golden cases (contextual position encoding).

Gate-count positions of square and decoding logits, and the interpolated
bias with a table short enough that counts are clamped (x-transformers'
default ``max_pos`` of 16 over 20 tokens).
"""

from __future__ import annotations

from posref.golden.registry import CaseSpec, Normal
from posref.golden.strategies import lead_shape, st, strategy

__all__ = ["CASES"]

CASES: list[CaseSpec] = []


def _add(*specs: CaseSpec) -> None:
    CASES.extend(specs)


_add(
    CaseSpec(id="cope_positions.square", function="cope_positions", inputs={"logits": Normal((2, 3, 6, 6), 2.0)},
             tolerance="cope", description="(B, H, T, T) gate logits"),
    CaseSpec(id="cope_positions.decoding", function="cope_positions", inputs={"logits": Normal((2, 4, 9), 2.0)},
             tolerance="cope", description="the last 4 of 9 positions as queries, future logits ignored"),
    CaseSpec(id="cope_positions.invalid.more_queries", function="cope_positions",
             inputs={"logits": Normal((5, 3))}, expect_error="ValueError", error_match="logits",
             description="T > S"),
    CaseSpec(id="cope_bias.clamped", function="cope_bias",
             inputs={"q": Normal((2, 3, 8, 16)), "position_embeddings": Normal((4, 16)),
                     "logits": Normal((2, 3, 8, 8), 2.0)},
             tolerance="cope", description="a 4-row table: counts beyond 3 are clamped"),
    CaseSpec(id="cope_bias.x_transformers_default", function="cope_bias",
             inputs={"q": Normal((1, 2, 20, 8)), "position_embeddings": Normal((16, 8)),
                     "logits": Normal((1, 2, 20, 20), 2.0)},
             tolerance="cope", description="x-transformers' max_pos 16 over 20 tokens"),
    CaseSpec(id="cope_bias.decoding", function="cope_bias",
             inputs={"q": Normal((2, 3, 8)), "position_embeddings": Normal((12, 8)),
                     "logits": Normal((2, 3, 10), 2.0)},
             tolerance="cope", description="3 queries at the end of 10 positions"),
    CaseSpec(id="cope_bias.invalid.width", function="cope_bias",
             inputs={"q": Normal((3, 8)), "position_embeddings": Normal((4, 6)), "logits": Normal((3, 3))},
             expect_error="ValueError", error_match="q", description="query width differs from the table's"),
    CaseSpec(id="cope_bias.invalid.logits_shape", function="cope_bias",
             inputs={"q": Normal((3, 8)), "position_embeddings": Normal((4, 8)), "logits": Normal((2, 3))},
             expect_error="ValueError", error_match="logits", description="logits for 2 queries, q has 3"),
)


# -- fuzz strategies -------------------------------------------------------------------------


@strategy("cope_positions", tolerance="cope")
def cope_positions_case(draw, ctx):
    lead, tq = draw(lead_shape()), draw(st.integers(1, 8))
    return ctx.case(draw, {"logits": Normal(lead + (tq, tq + draw(st.integers(0, 8))), 2.0)}, {})


@strategy("cope_bias", tolerance="cope")
def cope_bias_case(draw, ctx):
    lead, tq, d = draw(lead_shape()), draw(st.integers(1, 8)), draw(st.integers(1, 16))
    inputs = {"q": Normal(lead + (tq, d)), "position_embeddings": Normal((draw(st.integers(1, 16)), d)),
              "logits": Normal(lead + (tq, tq + draw(st.integers(0, 8))), 2.0)}
    return ctx.case(draw, inputs, {})
