"""Conditional positional encodings (PEG): the hook of the ``contraction`` model."""

from __future__ import annotations

import numpy as np

from posref.tolerance import CaseView, contraction_terms

__all__: list[str] = []


@contraction_terms("peg")
def _peg_terms(view: CaseView) -> tuple[int, int]:
    """The depthwise kernel and the bias; the convolution cast before the residual sum."""
    return (np.shape(view.inputs["weight"])[-1] ** 2 + 1, 1)
