"""Independent re-derivations shared by the tests: formulas written another way than the spec's.

Imported by the test modules as ``from oracles import ...`` (``tests/`` is on the path).
"""

from __future__ import annotations

import numpy as np

__all__ = ["rotate_pairs_complex"]


def rotate_pairs_complex(x, angles, layout):
    r"""Rotate the feature pairs of ``x`` by ``angles`` as the complex product :math:`(x_a + i x_b) e^{i\phi}`.

    A second formulation of ``apply_rotary``: the pairs are ``(x[2i], x[2i+1])`` for
    ``layout="interleaved"`` and ``(x[i], x[i + D/2])`` for ``layout="half"``; ``angles`` has D/2
    entries on its last axis (broadcast against ``x``'s leading axes).
    """
    x = np.asarray(x, dtype=np.float64)
    half = x.shape[-1] // 2
    if layout == "interleaved":
        z = x[..., 0::2] + 1j * x[..., 1::2]
    else:
        z = x[..., :half] + 1j * x[..., half:]
    w = z * np.exp(1j * np.asarray(angles))
    out = np.empty(w.shape[:-1] + (2 * half,))
    if layout == "interleaved":
        out[..., 0::2], out[..., 1::2] = w.real, w.imag
    else:
        out[..., :half], out[..., half:] = w.real, w.imag
    return out
