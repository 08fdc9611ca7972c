"""Sinusoidal encoding golden cases.

Both layouts (interleaved, concatenated) with both exponent denominators at
the hard positions, and fairseq's position offset.
"""

from __future__ import annotations

from posref.golden.cases._common import HARD_POSITIONS
from posref.golden.registry import Arange, CaseSpec, Values
from posref.golden.strategies import bases, even, positions_nd, st, strategy

__all__ = ["CASES"]

CASES: list[CaseSpec] = []


def _add(*specs: CaseSpec) -> None:
    CASES.extend(specs)


for layout in ("interleaved", "concat"):
    for denominator in ("dim", "half_dim_minus_one"):
        _add(CaseSpec(
            id=f"sinusoidal_encoding.{layout}.{denominator}", function="sinusoidal_encoding",
            inputs={"positions": Values(HARD_POSITIONS[:8], "int64")}, params={
                "dim": 64, "layout": layout, "freq_denominator": denominator},
            tolerance="sinusoidal", description=f"{layout} layout, exponent denominator {denominator}",
        ))
_add(
    CaseSpec(id="sinusoidal_encoding.concat.fairseq_offset", function="sinusoidal_encoding",
             inputs={"positions": Arange(0, 20)}, params={"dim": 32, "layout": "concat",
             "freq_denominator": "half_dim_minus_one", "position_offset": 2}, tolerance="sinusoidal",
             description="fairseq: positions start at padding_idx + 1 = 2"),
    CaseSpec(id="sinusoidal_encoding.invalid.odd_dim", function="sinusoidal_encoding",
             inputs={"positions": Arange(0, 3)}, params={"dim": 7}, expect_error="ValueError", error_match="dim",
             description="odd width"),
)


# -- fuzz strategies -------------------------------------------------------------------------


@strategy("sinusoidal_encoding", tolerance="sinusoidal")
def sinusoidal_encoding_case(draw, ctx):
    inputs = {"positions": draw(positions_nd())}
    params = {"dim": draw(even(2, 128)), "base": draw(bases()),
              "layout": draw(st.sampled_from(("interleaved", "concat"))),
              "freq_denominator": draw(st.sampled_from(("dim", "half_dim_minus_one"))),
              "position_offset": draw(st.one_of(st.just(0), st.integers(0, 1024)))}
    return ctx.case(draw, inputs, params)
