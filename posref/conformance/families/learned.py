"""Learned absolute positions: the fuzz strategy (the lookup is judged by the core's ``gather`` model)."""

from __future__ import annotations

from posref.conformance.families._draw import st, strategy
from posref.golden.registry import Normal, Values

__all__: list[str] = []


@strategy("learned_position_embedding", tolerance="gather")
def learned_position_embedding_case(draw, ctx):
    rows, width = draw(st.integers(1, 64)), draw(st.integers(1, 16))
    offset = draw(st.integers(0, min(3, rows - 1)))
    count = draw(st.integers(1, 8))
    positions = draw(st.lists(st.integers(-offset, rows - 1 - offset), min_size=count, max_size=count))
    params = {"position_offset": offset, "padding_idx": draw(st.one_of(st.none(), st.integers(0, rows - 1)))}
    inputs = {"table": Normal((rows, width)), "positions": Values(positions, "int64")}
    return ctx.case(draw, inputs, params)
