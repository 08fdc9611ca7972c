"""Transformer-XL: its hooks of the ``sinusoidal`` and ``contraction`` models, and the fuzz strategies."""

from __future__ import annotations

import numpy as np

from posref.conformance.families._draw import even, lead_shape, st, strategy
from posref.conformance.tolerance import (
    CaseView,
    channel_frequencies,
    contraction_terms,
    input_array,
    sinusoid_channels,
    spec_param,
)
from posref.golden.registry import Integers, Normal

__all__: list[str] = []


# -- error-model hooks -----------------------------------------------------------------------


@sinusoid_channels("transformer_xl_relative_encoding")
def _transformer_xl_channels(view: CaseView) -> tuple[np.ndarray, np.ndarray]:
    """``transformer_xl_relative_encoding``: the (clamped) distances, sines then cosines."""
    from posref.rope import rope_frequencies

    distances = input_array(view, "distances")
    max_distance = spec_param(view, "max_distance")
    if max_distance is not None:
        distances = np.minimum(distances, float(max_distance))
    omega = channel_frequencies(rope_frequencies(int(view.params["dim"]), base=float(spec_param(view, "base"))),
                                "concat")
    return distances[..., None] * omega, omega


@contraction_terms("transformer_xl_scores")
def _transformer_xl_scores_terms(view: CaseView) -> tuple[int, int]:
    """Both dot products and the scale; the sums q + u and q + v in the activation dtype."""
    return (2 * np.shape(view.inputs["q"])[-1] + 1, 1)


# -- fuzz strategies -------------------------------------------------------------------------


@strategy("transformer_xl_relative_encoding", tolerance="sinusoidal")
def transformer_xl_relative_encoding_case(draw, ctx):
    shape = draw(st.sampled_from(((8,), (3, 4), (1,))))
    high = draw(st.sampled_from((16, 4096, 131_072)))
    params = {"dim": draw(even(2, 128)), "base": draw(st.one_of(st.just(10_000.0), st.floats(100.0, 1e6))),
              "max_distance": draw(st.one_of(st.none(), st.integers(1, high)))}
    return ctx.case(draw, {"distances": Integers(shape, 0, high)}, params)


@strategy("transformer_xl_scores", tolerance="contraction")
def transformer_xl_scores_case(draw, ctx):
    lead, heads, d = draw(lead_shape()), draw(st.integers(1, 3)), draw(st.integers(1, 32))
    tq = draw(st.integers(1, 6))
    tk = tq + draw(st.integers(0, 6))
    inputs = {"q": Normal(lead + (heads, tq, d)), "k": Normal(lead + (heads, tk, d)), "r": Normal((heads, tk, d)),
              "u": Normal((heads, d), 0.5), "v": Normal((heads, d), 0.5)}
    params = {"scale": draw(st.one_of(st.none(), st.just(1.0), st.floats(0.01, 2.0))),
              "future_keys": draw(st.sampled_from(("mask", "zero")))}
    return ctx.case(draw, inputs, params)
