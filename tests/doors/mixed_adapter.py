"""An adapter whose answers cover the statuses: right, wrong, crashing, lenient, not implemented.

rope_frequencies is correct except for dims 80 and 64 (base 1000, base / 10: wrong numbers)
and dim 2 (raises on valid input); it accepts base = 1 (lenient) and
rejects an odd dim with RuntimeError (wrong_error).  alibi_slopes is not
implemented for some head counts.
"""

import numpy as np

ADAPTER_NAME = "mixed"
ADAPTER_VERSION = "1"
ADAPTER_DTYPES = ("float64",)
ADAPTER_FUNCTIONS = ("rope_frequencies", "alibi_slopes")


def rope_frequencies(dim, /, *, base=10_000.0):
    dim = int(dim)
    if dim % 2:
        raise RuntimeError("odd dim")
    if dim == 2:
        raise ZeroDivisionError("dim 2 is not handled")
    if dim == 80:
        base = 1000.0
    if dim == 64:
        base = base / 10
    return base ** (-np.arange(0, dim, 2, dtype=np.float64) / dim)


def alibi_slopes(num_heads, /, **options):
    n = int(num_heads)
    if n & (n - 1):
        raise NotImplementedError("powers of two only")
    if n <= 0:
        raise ValueError("num_heads must be positive")
    return 2.0 ** (-8.0 * np.arange(1, n + 1) / n)
