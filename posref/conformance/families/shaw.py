"""Shaw et al.: the hooks of the ``contraction`` model, and the fuzz strategies.

The index and embedding lookups are judged by the ``exact`` and
``gather`` models of :mod:`posref.conformance.tolerance`.
"""

from __future__ import annotations

import numpy as np

from posref.conformance.families._draw import (
    MAX_POSITION,
    lead_shape,
    positions_1d,
    query_key_positions,
    st,
    strategy,
)
from posref.conformance.tolerance import CaseView, contraction_terms
from posref.golden.registry import Normal, Uniform

__all__: list[str] = []


# -- error-model hooks -----------------------------------------------------------------------


@contraction_terms("shaw_relative_logits")
def _shaw_relative_logits_terms(view: CaseView) -> tuple[int, int]:
    """q . k + q . a^K: 2D terms, no sum in the activation dtype."""
    return (2 * np.shape(view.inputs["q"])[-1], 0)


@contraction_terms("shaw_relative_values")
def _shaw_relative_values_terms(view: CaseView) -> tuple[int, int]:
    """2S terms; v_j + a^V_ij summed in the activation dtype."""
    return (2 * np.shape(view.inputs["v"])[-2], 1)


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
