"""Transformer-XL: its hooks of the ``sinusoidal`` and ``contraction`` models."""

from __future__ import annotations

import numpy as np

from posref.tolerance import (
    CaseView,
    channel_frequencies,
    contraction_terms,
    input_array,
    sinusoid_channels,
    spec_param,
)

__all__: list[str] = []


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
