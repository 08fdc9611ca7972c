"""What the tests of the relative families (``tests/test_<family>.py``) share.

Imported as ``from _relative_helpers import ...`` (``tests/`` is on the path).
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

__all__ = ["RTOL", "finite_floats", "seeded_rng"]

#: Relative tolerance of comparisons with re-derivations that round differently.
RTOL = 1e-12

#: Finite feature values for property tests.
finite_floats = st.floats(-4.0, 4.0, allow_nan=False, allow_infinity=False)


def seeded_rng(seed):
    """A fresh generator for test data (never the global NumPy state)."""
    return np.random.default_rng(seed)
