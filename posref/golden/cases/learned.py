"""Learned position embedding golden cases.

Row lookup, OPT's offset of 2 and RoBERTa's padding row.
"""

from __future__ import annotations

from posref.golden.registry import Arange, CaseSpec, Integers, Normal, Values
from posref.golden.strategies import st, strategy

__all__ = ["CASES"]

CASES: list[CaseSpec] = []


def _add(*specs: CaseSpec) -> None:
    CASES.extend(specs)


_add(
    CaseSpec(id="learned_position_embedding.basic", function="learned_position_embedding",
             inputs={"table": Normal((16, 8)), "positions": Integers((2, 5), 0, 16)}, tolerance="gather",
             description="row lookup"),
    CaseSpec(id="learned_position_embedding.offset_padding", function="learned_position_embedding",
             inputs={"table": Normal((12, 4)), "positions": Values([[0, 1, 2, 3], [0, 1, 2, 3]], "int64")},
             params={"position_offset": 2, "padding_idx": 1}, tolerance="gather",
             description="OPT-style offset 2 with a padding row"),
    CaseSpec(id="learned_position_embedding.roberta_padding", function="learned_position_embedding",
             inputs={"table": Normal((10, 4)), "positions": Values([[0, 1, 2, -1, -1], [0, 1, 2, 3, 4]], "int64")},
             params={"position_offset": 2, "padding_idx": 1}, tolerance="gather",
             description="RoBERTa: padding tokens at position -1 land on the zeroed padding row 1"),
    CaseSpec(id="learned_position_embedding.invalid.out_of_range", function="learned_position_embedding",
             inputs={"table": Normal((8, 4)), "positions": Arange(0, 9)}, expect_error="ValueError",
             error_match="positions", description="a position beyond the table"),
)


# -- fuzz strategies -------------------------------------------------------------------------


@strategy("learned_position_embedding", tolerance="gather")
def learned_position_embedding_case(draw, ctx):
    rows, width = draw(st.integers(1, 64)), draw(st.integers(1, 16))
    offset = draw(st.integers(0, min(3, rows - 1)))
    count = draw(st.integers(1, 8))
    positions = draw(st.lists(st.integers(-offset, rows - 1 - offset), min_size=count, max_size=count))
    params = {"position_offset": offset, "padding_idx": draw(st.one_of(st.none(), st.integers(0, rows - 1)))}
    inputs = {"table": Normal((rows, width)), "positions": Values(positions, "int64")}
    return ctx.case(draw, inputs, params)
