"""What the family modules of :mod:`posref.golden.cases` share.

Not a family: the collector skips modules whose name starts with ``_``.
"""

from __future__ import annotations

__all__ = ["HARD_POSITIONS", "grid"]

#: Positions where implementations are known to break (the last is near 2**20).
HARD_POSITIONS = [0, 1, 4095, 4096, 8191, 8192, 32768, 131071, 999_999, 1_048_575]


def grid(height: int, width: int, *, start: int = 0) -> list[list[int]]:
    """Row and column of every token of a row-major ``height x width`` grid, shape (2, H*W)."""
    rows = [start + n // width for n in range(height * width)]
    cols = [start + n % width for n in range(height * width)]
    return [rows, cols]
