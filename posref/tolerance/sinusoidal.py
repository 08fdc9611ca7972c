"""Sinusoidal tables: the ``sinusoidal`` model, and the channels of ``sinusoidal_encoding``.

Other families' sinusoidal tables (2-D sin-cos, Transformer-XL's relative
encoding) are judged by the same model and register the angle and
frequency of their channels with
:func:`~posref.tolerance.sinusoid_channels`.
"""

from __future__ import annotations

import numpy as np

from posref import _arith
from posref.tolerance import (
    SINUSOID_CHANNELS,
    UNIT_ROUNDOFF,
    CaseView,
    angle_error_factor,
    angle_roundoff,
    channel_frequencies,
    error_model,
    sinusoid_channels,
)

__all__: list[str] = []


@sinusoid_channels("sinusoidal_encoding")
def _sinusoidal_channels(view: CaseView) -> tuple[np.ndarray, np.ndarray]:
    """``sinusoidal_encoding``: angle and frequency of every channel, in the case's layout."""
    dim = int(view.params["dim"])
    base = float(view.params.get("base", 1e4))
    i = np.arange(dim // 2, dtype=np.float64)
    if view.params.get("freq_denominator", "dim") == "dim":
        omega = _arith.power(base, -2.0 * i / dim)
    else:
        omega = _arith.power(base, -i / max(dim // 2 - 1, 1))
    layout = view.params.get("layout", "interleaved")
    omega = channel_frequencies(omega, "half" if layout == "concat" else "interleaved")
    p = np.asarray(view.inputs["positions"], dtype=np.float64) + float(view.params.get("position_offset", 0))
    return p[..., None] * omega, omega


@error_model("sinusoidal")
def _sinusoidal(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    u, ua = UNIT_ROUNDOFF[dtype], angle_roundoff(dtype)
    phi, omega = SINUSOID_CHANNELS.get(view.function, _sinusoidal_channels)(view)
    y = np.abs(np.asarray(view.expected["output"], dtype=np.float64))
    budget = angle_error_factor(omega, ua) * np.abs(phi) + ua + u * y
    return {"output": np.where(omega == 0, 0.0, budget)}  # omega 0 only on an all-zero row
