"""NoPE: the fuzz strategy (the identity is judged by the core's ``gather`` model)."""

from __future__ import annotations

from posref.conformance.families._draw import lead_shape, positions_1d, st, strategy
from posref.golden.registry import Normal

__all__: list[str] = []


@strategy("nope", tolerance="gather")
def nope_case(draw, ctx):
    lead, length = draw(lead_shape()), draw(st.integers(1, 8))
    inputs = {"x": Normal(lead + (length, draw(st.integers(1, 64)))), "positions": draw(positions_1d(length))}
    return ctx.case(draw, inputs, {})
