"""DeBERTa: the hook of the ``contraction`` model (log buckets are ``exact``)."""

from __future__ import annotations

import numpy as np

from posref.tolerance import CaseView, contraction_terms

__all__: list[str] = []


@contraction_terms("deberta_relative_scores")
def _deberta_relative_scores_terms(view: CaseView) -> tuple[int, int]:
    """Content, c2p and p2c dot products and the division by sqrt(f D)."""
    return (3 * np.shape(view.inputs["q"])[-1] + 1, 0)
