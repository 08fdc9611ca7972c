"""Fourier features: the ``fourier`` model and the fuzz strategy."""

from __future__ import annotations

import math

import numpy as np

from posref.conformance.families._draw import st, strategy
from posref.conformance.tolerance import (
    UNIT_ROUNDOFF,
    CaseView,
    angle_roundoff,
    error_model,
    input_array,
    spec_param,
)
from posref.golden.registry import Integers

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


@strategy("fourier_features", tolerance="fourier")
def fourier_features_case(draw, ctx):
    positions = Integers((draw(st.integers(1, 8)),), 0, draw(st.sampled_from((16, 1024, 65_536))))
    params = {"num_frequencies": draw(st.integers(1, 16)),
              "period": draw(st.one_of(st.sampled_from((32.0, 100.0)), st.floats(1.0, 1e5))),
              "include_sine": draw(st.booleans())}
    return ctx.case(draw, {"positions": positions}, params)
