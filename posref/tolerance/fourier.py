"""Fourier features: the ``fourier`` model."""

from __future__ import annotations

import math

import numpy as np

from posref.tolerance import (
    UNIT_ROUNDOFF,
    CaseView,
    angle_roundoff,
    error_model,
    input_array,
    spec_param,
)

__all__: list[str] = []


@error_model("fourier")
def _fourier(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    u, ua = UNIT_ROUNDOFF[dtype], angle_roundoff(dtype)
    harmonics = np.arange(1, int(view.params["num_frequencies"]) + 1, dtype=np.float64)
    if spec_param(view, "include_sine"):
        harmonics = np.concatenate([harmonics, harmonics])  # cosines, then sines
    phi = 2 * math.pi * input_array(view, "positions")[..., None] * harmonics / float(view.params["period"])
    y = np.abs(np.asarray(view.expected["output"], dtype=np.float64))
    return {"output": 5 * ua * np.abs(phi) + ua + u * y}
