"""A RoPE that caches its inverse frequencies under the width only (the base is left out of the key)."""

import numpy as np

ADAPTER_NAME = "cached-rope"
ADAPTER_DTYPES = ("float32", "bfloat16")
ADAPTER_FUNCTIONS = ("rope_frequencies",)
_CACHE = {}


def rope_frequencies(dim, /, *, base=10_000.0):
    dim = int(dim)
    if dim not in _CACHE:  # the bug: a second base with the same width gets the first one's table
        _CACHE[dim] = (base ** (-np.arange(0, dim, 2, dtype=np.float64) / dim)).astype(np.float32)
    return _CACHE[dim]
