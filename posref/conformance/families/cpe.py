"""Conditional positional encodings (PEG): the hook of the ``contraction`` model, and the fuzz strategy."""

from __future__ import annotations

import numpy as np

from posref.conformance.families._draw import st, strategy
from posref.conformance.tolerance import CaseView, contraction_terms
from posref.golden.registry import Normal

__all__: list[str] = []


@contraction_terms("peg")
def _peg_terms(view: CaseView) -> tuple[int, int]:
    """The depthwise kernel and the bias; the convolution cast before the residual sum."""
    return (np.shape(view.inputs["weight"])[-1] ** 2 + 1, 1)


@strategy("peg", tolerance="contraction")
def peg_case(draw, ctx):
    rows, cols, channels = draw(st.integers(1, 6)), draw(st.integers(1, 6)), draw(st.integers(1, 8))
    kernel = draw(st.sampled_from((1, 3, 5, 7)))
    class_token = draw(st.booleans())
    inputs = {"tokens": Normal((draw(st.integers(1, 2)), rows * cols + class_token, channels)),
              "weight": Normal((channels, 1, kernel, kernel), 0.3), "bias": Normal((channels,), 0.1)}
    return ctx.case(draw, inputs, {"grid_shape": [rows, cols], "class_token": class_token})
