"""DeBERTa: the hook of the ``contraction`` model, and the fuzz strategies (log buckets are ``exact``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from posref.conformance.families._draw import MAX_POSITION, composite, lead_shape, positions_1d, st, strategy
from posref.conformance.tolerance import CaseView, contraction_terms
from posref.golden.registry import Normal, Values

__all__: list[str] = []


@contraction_terms("deberta_relative_scores")
def _deberta_relative_scores_terms(view: CaseView) -> tuple[int, int]:
    """Content, c2p and p2c dot products and the division by sqrt(f D)."""
    return (3 * np.shape(view.inputs["q"])[-1] + 1, 0)


@composite
def deberta_options(draw):
    """Valid ``bucket_size`` and ``max_position``."""
    bucket_size = draw(st.one_of(st.sampled_from((4, 256)), st.integers(2, 512)))
    max_position = draw(st.one_of(st.just(512), st.integers(bucket_size // 2 + 2, 4096))
                        .filter(lambda m: m > bucket_size // 2 + 1))
    return {"bucket_size": bucket_size, "max_position": max_position}


@strategy("deberta_log_bucket", tolerance="exact")
def deberta_log_bucket_case(draw, ctx):
    count = draw(st.integers(1, 32))
    signed = st.one_of(st.integers(-64, 64), st.integers(-4096, 4096), st.integers(-MAX_POSITION, MAX_POSITION))
    relative = Values(draw(st.lists(signed, min_size=count, max_size=count)), "int64")
    return ctx.case(draw, {"relative_position": relative}, draw(deberta_options()))


@strategy("deberta_relative_scores", tolerance="contraction")
def deberta_relative_scores_case(draw, ctx):
    if draw(st.booleans()):
        params: dict[str, Any] = draw(deberta_options())
        span = params["bucket_size"]
    else:
        span = draw(st.integers(1, 32))
        params = {"bucket_size": None, "max_position": span}
    c2p, p2c = draw(st.sampled_from(((True, True), (True, False), (False, True))))
    params.update(c2p=c2p, p2c=p2c)
    lead, heads, d = draw(lead_shape()), draw(st.integers(1, 3)), draw(st.integers(1, 16))
    tq, tk = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    table = Normal((heads, 2 * span, d))
    inputs = {"q": Normal(lead + (heads, tq, d)), "k": Normal(lead + (heads, tk, d)),
              "pos_key": table if c2p else None, "pos_query": table if p2c else None,
              "query_positions": draw(positions_1d(tq, 4096)), "key_positions": draw(positions_1d(tk, 4096))}
    inputs = {name: value for name, value in inputs.items() if value is not None}
    if not c2p:
        params["pos_key"] = None
    if not p2c:
        params["pos_query"] = None
    return ctx.case(draw, inputs, params)
