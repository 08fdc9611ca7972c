"""Conditional position encoding golden cases.

The depthwise-convolution PEG on grids with and without a class token, and a
kernel larger than the grid's border.
"""

from __future__ import annotations

from posref.golden.registry import CaseSpec, Normal
from posref.golden.strategies import st, strategy

__all__ = ["CASES"]

CASES: list[CaseSpec] = []


def _add(*specs: CaseSpec) -> None:
    CASES.extend(specs)


_add(
    CaseSpec(id="peg.k3.class_token", function="peg",
             inputs={"tokens": Normal((2, 1 + 5 * 7, 6)), "weight": Normal((6, 1, 3, 3), 0.3), "bias": Normal((6,), 0.1)},
             params={"grid_shape": [5, 7], "class_token": True}, tolerance="contraction",
             description="3 x 3 depthwise PEG on a 5 x 7 grid with a class token"),
    CaseSpec(id="peg.k5.no_class_token", function="peg",
             inputs={"tokens": Normal((1, 16, 4)), "weight": Normal((4, 1, 5, 5), 0.2), "bias": Normal((4,), 0.1)},
             params={"grid_shape": [4, 4]}, tolerance="contraction", description="kernel larger than the border"),
    CaseSpec(id="peg.invalid.even_kernel", function="peg",
             inputs={"tokens": Normal((1, 16, 4)), "weight": Normal((4, 1, 2, 2)), "bias": Normal((4,))},
             params={"grid_shape": [4, 4]}, expect_error="ValueError", error_match="weight",
             description="even kernels have no centre"),
)


# -- fuzz strategies -------------------------------------------------------------------------


@strategy("peg", tolerance="contraction")
def peg_case(draw, ctx):
    rows, cols, channels = draw(st.integers(1, 6)), draw(st.integers(1, 6)), draw(st.integers(1, 8))
    kernel = draw(st.sampled_from((1, 3, 5, 7)))
    class_token = draw(st.booleans())
    inputs = {"tokens": Normal((draw(st.integers(1, 2)), rows * cols + class_token, channels)),
              "weight": Normal((channels, 1, kernel, kernel), 0.3), "bias": Normal((channels,), 0.1)}
    return ctx.case(draw, inputs, {"grid_shape": [rows, cols], "class_token": class_token})
