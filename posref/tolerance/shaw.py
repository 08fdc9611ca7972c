"""Shaw et al.: the hooks of the ``contraction`` model.

The index and embedding lookups are judged by the ``exact`` and
``gather`` models of :mod:`posref.tolerance`.
"""

from __future__ import annotations

import numpy as np

from posref.tolerance import CaseView, contraction_terms

__all__: list[str] = []


@contraction_terms("shaw_relative_logits")
def _shaw_relative_logits_terms(view: CaseView) -> tuple[int, int]:
    """q . k + q . a^K: 2D terms, no sum in the activation dtype."""
    return (2 * np.shape(view.inputs["q"])[-1], 0)


@contraction_terms("shaw_relative_values")
def _shaw_relative_values_terms(view: CaseView) -> tuple[int, int]:
    """2S terms; v_j + a^V_ij summed in the activation dtype."""
    return (2 * np.shape(view.inputs["v"])[-2], 1)
