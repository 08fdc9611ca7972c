"""Shaw relative position golden cases.

Clipped relative indices, the gathered embeddings, and the relative key and
value terms of the logits and the output.
"""

from __future__ import annotations

from posref.golden.registry import Arange, CaseSpec, Normal, Uniform
from posref.golden.strategies import MAX_POSITION, lead_shape, positions_1d, query_key_positions, st, strategy

__all__ = ["CASES"]

CASES: list[CaseSpec] = []


def _add(*specs: CaseSpec) -> None:
    CASES.extend(specs)


_add(
    CaseSpec(id="shaw_relative_index.square", function="shaw_relative_index",
             inputs={"query_positions": Arange(0, 12), "key_positions": Arange(0, 12)},
             params={"max_relative_position": 4}, tolerance="exact", description="clipping at +-4"),
    CaseSpec(id="shaw_relative_index.decoding", function="shaw_relative_index",
             inputs={"query_positions": Arange(9, 10), "key_positions": Arange(0, 10)},
             params={"max_relative_position": 3}, tolerance="exact", description="one query at the end"),
    CaseSpec(id="shaw_relative_index.invalid.k", function="shaw_relative_index",
             inputs={"query_positions": Arange(0, 2), "key_positions": Arange(0, 2)},
             params={"max_relative_position": -1}, expect_error="ValueError", error_match="max_relative_position",
             description="negative clipping distance"),
    CaseSpec(id="shaw_relative_embeddings.basic", function="shaw_relative_embeddings",
             inputs={"table": Normal((7, 5)), "query_positions": Arange(0, 6), "key_positions": Arange(0, 6)},
             params={"max_relative_position": 3}, tolerance="gather", description="gather a^K_ij"),
    CaseSpec(id="shaw_relative_embeddings.invalid.table", function="shaw_relative_embeddings",
             inputs={"table": Normal((6, 5)), "query_positions": Arange(0, 3), "key_positions": Arange(0, 3)},
             params={"max_relative_position": 3}, expect_error="ValueError", error_match="table",
             description="table must have 2k + 1 rows"),
    CaseSpec(id="shaw_relative_logits.basic", function="shaw_relative_logits",
             inputs={"q": Normal((2, 5, 8)), "k": Normal((2, 6, 8)), "relative_keys": Normal((5, 6, 8))},
             tolerance="contraction", description="q.k + q.a^K"),
    CaseSpec(id="shaw_relative_logits.invalid.shapes", function="shaw_relative_logits",
             inputs={"q": Normal((2, 5, 8)), "k": Normal((2, 6, 8)), "relative_keys": Normal((5, 5, 8))},
             expect_error="ValueError", error_match="relative_keys", description="a^K of the wrong shape"),
    CaseSpec(id="shaw_relative_values.basic", function="shaw_relative_values",
             inputs={"weights": Uniform((2, 5, 6)), "v": Normal((2, 6, 8)), "relative_values": Normal((5, 6, 8))},
             tolerance="contraction", description="sum_j w_ij (v_j + a^V_ij)"),
    CaseSpec(id="shaw_relative_values.invalid.shapes", function="shaw_relative_values",
             inputs={"weights": Uniform((2, 5, 6)), "v": Normal((2, 7, 8)), "relative_values": Normal((5, 6, 8))},
             expect_error="ValueError", error_match="v", description="values of the wrong length"),
)


# -- fuzz strategies -------------------------------------------------------------------------


@strategy("shaw_relative_index", tolerance="exact")
def shaw_relative_index_case(draw, ctx):
    inputs = {"query_positions": draw(positions_1d(draw(st.integers(1, 8)))),
              "key_positions": draw(positions_1d(draw(st.integers(1, 12))))}
    params = {"max_relative_position": draw(st.one_of(st.integers(1, 64), st.integers(1, MAX_POSITION)))}
    return ctx.case(draw, inputs, params)


@strategy("shaw_relative_embeddings", tolerance="gather")
def shaw_relative_embeddings_case(draw, ctx):
    k = draw(st.one_of(st.integers(1, 8), st.integers(1, 64)))
    inputs = {"table": Normal((2 * k + 1, draw(st.integers(1, 16)))), **draw(query_key_positions())}
    return ctx.case(draw, inputs, {"max_relative_position": k})


@strategy("shaw_relative_logits", tolerance="contraction")
def shaw_relative_logits_case(draw, ctx):
    lead, tq, tk, d = draw(lead_shape()), draw(st.integers(1, 8)), draw(st.integers(1, 8)), draw(st.integers(1, 32))
    inputs = {"q": Normal(lead + (tq, d)), "k": Normal(lead + (tk, d)), "relative_keys": Normal((tq, tk, d))}
    return ctx.case(draw, inputs, {})


@strategy("shaw_relative_values", tolerance="contraction")
def shaw_relative_values_case(draw, ctx):
    lead, tq, tk, d = draw(lead_shape()), draw(st.integers(1, 8)), draw(st.integers(1, 8)), draw(st.integers(1, 32))
    inputs = {"weights": Uniform(lead + (tq, tk), 0.0, 1.0), "v": Normal(lead + (tk, d)),
              "relative_values": Normal((tq, tk, d))}
    return ctx.case(draw, inputs, {})
