r"""Difference tables: relative-position matrices filled from their distinct values.

Many biases (ALiBi, T5, KERPLE, Sandwich, FIRE's distance term, Shaw's index,
DeBERTa's buckets) depend on a query position :math:`p^q_t` and a key
position :math:`p^k_s` only through the offset :math:`r = p^k_s - p^q_t`.
For integer positions the offsets lie in ``lo .. hi`` with
``lo = min(p^k) - max(p^q)`` and ``hi = max(p^k) - min(p^q)``, at most
``(max(p^k) - min(p^k)) + (max(p^q) - min(p^q)) + 1`` values (``T + S - 1``
for ``arange`` positions), so a spec function evaluates its formula once
per offset (a *table*) and fills the ``(T, S)`` matrix, or ``(H, T, S)``,
or ``(T, S, D)``, by gathering from the table:

    ``out[..., t, s, ...] = table[..., r_ts - lo, ...]``

The formula is elementwise in the offset, so every entry is the number the
whole-matrix evaluation gives, bit for bit (``tests/test_fast_paths.py``
proves it for every function that uses this module).  The gather takes the
cheapest form the positions allow: when both position vectors are runs of
consecutive integers the matrix is a Toeplitz view of the table and is
copied in one call; when the keys are consecutive each row is a contiguous
slice of the table; otherwise each block of rows is an index gather.

Functions of an arbitrary integer array (``t5_relative_bucket``,
``deberta_log_bucket``) use a table of a window ``-W .. W`` instead, with
``W`` taken from the first chunk of the array (:func:`window_radius`), and
gather chunk by chunk (:func:`gather_in_window`): a chunk whose minimum and
maximum lie in the window is one ``take`` from the table (the chunk is read
from memory once and stays in cache for the gather); any other chunk is
left to the caller's general path.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

#: Integer-valued float positions are used as integers up to this magnitude (exact differences).
_EXACT = 2.0**53

#: Elements per block of the general gather (index and result blocks stay in cache).
_BLOCK_ITEMS = 1 << 15


def integer_valued(positions):
    """``positions`` (a validated int64 or float64 array) as int64 if every value is a whole number
    of magnitude at most 2**53 (so that differences are exact in float64), else ``None``."""
    if positions.dtype.kind in "iu":
        return positions.astype(np.int64, copy=False)
    if positions.size and not (np.all(np.floor(positions) == positions) and np.max(np.abs(positions)) <= _EXACT):
        return None
    return positions.astype(np.int64)


def _unit_step(positions):
    """Whether ``positions`` is ``p0, p0 + 1, p0 + 2, ...`` (a run of consecutive integers)."""
    n = positions.size
    return n > 0 and int(positions[-1]) - int(positions[0]) == n - 1 and (n < 3 or bool(np.all(np.diff(positions) == 1)))


class Offsets:
    """The offsets ``r[t, s] = key[s] - query[t]`` of two 1-D integer position vectors.

    ``lo``, ``hi``: the smallest and largest offset (Python ints); ``size``:
    ``hi - lo + 1``, the length of a table indexed by ``r - lo``.
    """

    def __init__(self, query, key):
        self.query = query
        self.key = key
        if query.size and key.size:
            self.lo = int(key.min()) - int(query.max())
            self.hi = int(key.max()) - int(query.min())
        else:
            self.lo, self.hi = 0, -1
        self.size = self.hi - self.lo + 1
        self.query_unit = _unit_step(query)
        self.key_unit = _unit_step(key)

    def values(self):
        """The offsets ``lo, lo + 1, ..., hi`` as int64, in table order."""
        return np.arange(self.lo, self.hi + 1, dtype=np.int64)

    def fill(self, table, out, *, lead=0, low=None):
        """Write ``table[..., r_ts - lo, ...]`` into ``out[..., t, s, ...]`` and return ``out``.

        ``table`` has shape ``A + (size,) + B`` and ``out`` shape ``A + (T, S) + B``, where
        ``A`` has ``lead`` axes.  Every element of ``out`` is a copy of a table element.

        With ``low`` the table starts at offset ``low`` instead and may be shorter than
        ``size``: offsets outside it take its first or last entry (a table of a function that
        is constant beyond a clipping distance).  The caller makes sure that ``hi - low`` and
        ``lo - low`` fit in int64.
        """
        num_queries, num_keys = self.query.size, self.key.size
        if out.size == 0:
            return out
        table = np.ascontiguousarray(table)
        step = table.strides[lead]
        direct = low is None or (low == self.lo and table.shape[lead] == self.size)
        if direct and self.query_unit and self.key_unit:  # Toeplitz: out[t, s] = table[(k0 - q0 - lo) + s - t]
            start = int(self.key[0]) - int(self.query[0]) - self.lo
            origin = table[(slice(None),) * lead + (slice(start, None),)]
            view = as_strided(origin, table.shape[:lead] + (num_queries, num_keys) + table.shape[lead + 1:],
                              table.strides[:lead] + (-step, step) + table.strides[lead + 1:], writeable=False)
            np.copyto(out, view)
            return out
        if direct and self.key_unit:  # each row is a contiguous slice of the table
            starts = (int(self.key[0]) - self.lo) - self.query
            index = (slice(None),) * lead
            for t, start in enumerate(starts.tolist()):
                np.copyto(out[index + (t,)], table[index + (slice(start, start + num_keys),)])
            return out
        shifted = self.key - (self.lo if low is None else low)  # r - low = (key - low) - query
        rows_per_block = max(1, _BLOCK_ITEMS // num_keys)
        index = np.empty((min(rows_per_block, num_queries), num_keys), dtype=np.int64)
        heads = list(np.ndindex(table.shape[:lead]))
        for start in range(0, num_queries, rows_per_block):
            rows = slice(start, start + rows_per_block)
            block = index[: len(range(*rows.indices(num_queries)))]
            np.subtract(shifted[None, :], self.query[rows, None], out=block)
            for head in heads:
                np.take(table[head], block, axis=0, out=out[head + (rows,)], mode="clip")
        return out


def offsets(query_positions, key_positions, *, max_size=None):
    """:class:`Offsets` of two validated 1-D position vectors, or ``None`` when a table does not apply.

    ``None`` when a position is not a whole number (or beyond 2**53), or when the table would have
    more than ``max_size`` entries (default: the ``T * S`` entries of the matrix itself, so that the
    table never costs more evaluations than the matrix).
    """
    query = integer_valued(query_positions)
    key = integer_valued(key_positions)
    if query is None or key is None:
        return None
    found = Offsets(query, key)
    limit = max(query.size * key.size, 1) if max_size is None else max_size
    if found.size > limit:
        return None
    return found


#: Elements per chunk of :func:`gather_in_window` (1 MiB of int64: read once from memory, then from cache).
_CHUNK_ITEMS = 1 << 17


def window_radius(values, floor, limit):
    """Radius ``W >= floor`` of a window ``-W .. W`` for :func:`gather_in_window`, from the first chunk.

    The smallest power of two (at least ``floor``) that holds every value of the first chunk of the
    flat int64 array ``values``; ``None`` when that would be more than ``limit`` (or ``values`` is empty).
    """
    if values.size == 0:
        return None
    first = values[:_CHUNK_ITEMS]
    reach = max(int(floor), -int(first.min()), int(first.max()), 1)
    radius = 1 << (reach - 1).bit_length()
    return radius if 2 * radius + 1 <= limit else None


def wrapped_table(values_at, radius):
    """``values_at(r)`` for ``r = -W .. W`` stored so that entry ``r mod (2W + 1)`` is the one of ``r``.

    ``np.take(table, r, mode="wrap")`` then reads the value of ``r`` for every ``-W <= r <= W``.
    """
    return np.roll(values_at(np.arange(-radius, radius + 1, dtype=np.int64)), -radius)


def gather_in_window(values, out, table, radius, run):
    """``out[i] = table[values[i] mod len(table)]`` chunk by chunk where a chunk lies in ``-W .. W``.

    ``values`` and ``out`` are flat int64 arrays of one size, ``table`` a :func:`wrapped_table` of
    radius ``W``.  A chunk is gathered when its minimum and maximum (one read of the chunk, which
    then stays in cache for the gather) lie in the window; the slices of the other chunks are
    returned in order for the caller to fill.  ``run(calls, size)`` runs the two halves of the work
    (:func:`posref.rope._in_threads`).  Every element written is a copy of a table element.
    """
    chunks = [slice(i, i + _CHUNK_ITEMS) for i in range(0, values.size, _CHUNK_ITEMS)]

    def gather(some):
        missed = []
        for part in some:
            chunk = values[part]
            if -radius <= int(chunk.min()) and int(chunk.max()) <= radius:
                np.take(table, chunk, out=out[part], mode="wrap")  # in the window: one wrap at most
            else:
                missed.append(part)
        return missed

    halves = [chunks[: len(chunks) // 2], chunks[len(chunks) // 2:]] if len(chunks) > 1 else [chunks]
    return [part for missed in run([lambda some=some: gather(some) for some in halves], values.size)
            for part in missed]
