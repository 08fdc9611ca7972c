r"""T5 bucketed relative position bias.

T5 adds to every attention logit a learned scalar per head that depends
only on the bucket of the relative position ``key - query``: small
distances get one bucket each, larger ones share logarithmically wider
buckets, and everything beyond ``max_distance`` shares the last bucket.

Shape letters used throughout posref: ``B`` batch, ``H`` heads, ``T`` query
positions, ``S`` key positions, ``D`` features per head.
"""

from __future__ import annotations

import math

import numpy as np

from posref import _difference
from posref._spec import spec
from posref._validate import ensure_array, ensure_bool, ensure_int, ensure_positions
from posref.rope import _in_threads

__all__ = ["t5_relative_bucket", "t5_relative_bias"]

T5_REFERENCE = (
    "C. Raffel, N. Shazeer, A. Roberts, K. Lee, S. Narang, M. Matena, Y. Zhou, W. Li, "
    "P. J. Liu, 'Exploring the Limits of Transfer Learning with a Unified Text-to-Text "
    "Transformer', JMLR 21(140), 2020, arXiv:1910.10683"
)


def _check_bucket_options(bidirectional, num_buckets, max_distance):
    """Validate the three bucketing options; return them with ``max_exact``."""
    bidirectional = ensure_bool("bidirectional", bidirectional)
    num_buckets = ensure_int("num_buckets", num_buckets)
    if bidirectional and (num_buckets < 4 or num_buckets % 2):
        raise ValueError(
            f"num_buckets must be an even integer >= 4 when bidirectional=True, got num_buckets={num_buckets}"
        )
    if not bidirectional and num_buckets < 2:
        raise ValueError(
            f"num_buckets must be an integer >= 2 when bidirectional=False, got num_buckets={num_buckets}"
        )
    per_side = num_buckets // 2 if bidirectional else num_buckets
    max_exact = per_side // 2
    max_distance = ensure_int("max_distance", max_distance)
    if max_distance <= max_exact:
        raise ValueError(
            f"max_distance must be an integer > max_exact = {max_exact} (the exact buckets for "
            f"num_buckets={num_buckets}, bidirectional={bidirectional}), got max_distance={max_distance}"
        )
    if max_distance > 2**53:
        raise ValueError(f"max_distance must be an integer <= 2**53, got max_distance={max_distance}")
    return bidirectional, num_buckets, max_distance, max_exact


def _log_bucket_starts(max_exact, num_log, max_distance):
    r"""Smallest distance of each logarithmic bucket after the first, exactly.

    Entry ``k - 1`` (``k = 1 .. num_log - 1``) is the least integer ``n``
    with :math:`\lfloor L \ln(n/e) / \ln(M/e) \rfloor \ge k`, that is
    :math:`n^L \ge M^k e^{L-k}`, or :math:`\lceil e (M/e)^{k/L} \rceil`
    (``e = max_exact``, ``L = num_log``, ``M = max_distance``); each lies
    in ``(max_exact, max_distance]``.  The float64 value of
    :math:`e (M/e)^{k/L}` is within a relative 1e-13 of the real one, so
    when it sits farther than a relative 1e-9 from every integer its
    ceiling is the answer; otherwise Python integers decide.
    """
    starts = []
    for k in range(1, num_log):
        guess = max_exact * (max_distance / max_exact) ** (k / num_log)
        ceiling = math.ceil(guess)
        margin = 1e-9 * guess
        if ceiling - guess > margin and guess - (ceiling - 1) > margin:
            starts.append(ceiling)
            continue
        rhs = max_distance**k * max_exact ** (num_log - k)
        lo = max(max_exact + 1, math.floor(guess - margin) - 1)
        hi = min(max_distance, math.ceil(guess + margin) + 1)
        if not (hi**num_log >= rhs and (lo == max_exact + 1 or (lo - 1) ** num_log < rhs)):
            lo, hi = max_exact + 1, max_distance  # never expected; keeps the search exact regardless
        while lo < hi:
            mid = (lo + hi) // 2
            if mid**num_log >= rhs:
                hi = mid
            else:
                lo = mid + 1
        starts.append(lo)
    return np.array(starts, dtype=np.int64)


def _bucket_of(r, bidirectional, num_buckets, max_distance, max_exact, starts):
    """The bucket formula of :func:`t5_relative_bucket` on validated int64 ``r``."""
    # Every distance >= max_distance lands in the last bucket, so clipping
    # first changes nothing and keeps |r| away from int64 overflow.
    r = np.clip(r, -max_distance, max_distance)
    if bidirectional:
        offset = np.where(r > 0, num_buckets // 2, 0)
        n = np.abs(r)
    else:
        offset = 0
        n = np.maximum(-r, 0)
    large = max_exact + np.searchsorted(starts, n, side="right")
    return offset + np.where(n < max_exact, n, large)


_BLOCK_ITEMS = 2**13


def _blocks(size, block_items=_BLOCK_ITEMS):
    """Slices cutting ``range(size)`` into blocks of ``block_items``.

    Working block by block keeps every temporary small enough to stay in
    cache and to be recycled by the allocator, so the result is the only
    full-size allocation.
    """
    return [slice(i, i + block_items) for i in range(0, size, block_items)]


def _blocks_of(part, size, block_items):
    """Slices cutting the slice ``part`` of ``range(size)`` into blocks of ``block_items``."""
    start, stop, _ = part.indices(size)
    return [slice(i, min(i + block_items, stop)) for i in range(start, stop, block_items)]


@spec(family="t5", reference=T5_REFERENCE)
def t5_relative_bucket(relative_position, /, *, bidirectional=True, num_buckets=32, max_distance=128):
    r"""Bucket index of each relative position, as in T5.

    The relative position is ``key_position - query_position`` (positive
    when the key comes after the query).  With ``bidirectional=True`` the
    buckets are split in two halves, one per direction; with
    ``bidirectional=False`` (T5's decoder self-attention) keys after the
    query all fall in bucket 0.  With ``bidirectional=True`` bucket
    ``num_buckets // 2`` is never produced: it would hold distance 0 on
    the "key after query" side.

    Parameters
    ----------
    relative_position : array_like of int, shape ``(...)``
        ``key - query``; any sign.  Floating input must hold whole numbers.
    bidirectional : bool, keyword-only
        ``True`` for encoder (and cross) attention, ``False`` for causal
        decoder self-attention.
    num_buckets : int, keyword-only
        Total number of buckets :math:`N` (``relative_attention_num_buckets``
        in T5 configs; 32 in T5, mT5, LongT5).  Even and at least 4 when
        bidirectional, at least 2 otherwise.
    max_distance : int, keyword-only
        Distance :math:`M` from which on every distance shares the last
        bucket of its direction (``relative_attention_max_distance``, 128
        in T5).  Must exceed :math:`e` defined below and be at most
        :math:`2^{53}`.

    Returns
    -------
    numpy.ndarray
        int64 array of the same shape, values in ``[0, num_buckets)``.

    Raises
    ------
    TypeError
        If ``relative_position`` is not an integer array or an option has
        the wrong type.
    ValueError
        If ``relative_position`` holds non-integers or non-finite values,
        ``num_buckets`` is too small (or odd when bidirectional), or
        ``max_distance <= max_exact`` or ``max_distance > 2**53``.

    Notes
    -----
    Let :math:`r` be the relative position.  With ``bidirectional=True``
    take :math:`N' = N/2`, offset :math:`o = N'` if :math:`r > 0` else 0,
    and :math:`n = |r|`; otherwise :math:`N' = N`, :math:`o = 0` and
    :math:`n = \max(-r, 0)`.  With :math:`e = \lfloor N'/2 \rfloor`
    (``max_exact``) and :math:`L = N' - e` logarithmic buckets:

    .. math::

        \text{bucket}(r) = o + \begin{cases}
            n, & n < e, \\
            e + \min\!\left(\left\lfloor L\,
                \dfrac{\ln(n/e)}{\ln(M/e)} \right\rfloor,\; L - 1\right),
                & n \ge e.
        \end{cases}

    The floor is of the exact real number: bucket :math:`e + k` starts at
    the least integer :math:`n` with :math:`n^L e^k \ge M^k e^L`, which
    this function decides in integer arithmetic.

    This is the rule of ``_relative_position_bucket`` in the T5 code and
    in Hugging Face ``T5Attention`` (also LongT5, mT5, UMT5, x-transformers
    ``RelativePositionBias``), which evaluate the logarithm in float32 and
    truncate.  Where the real number is an integer (a distance that opens
    a bucket exactly) such a float evaluation can land just below it, and
    just below an integer it can round up.  A NumPy float32 evaluation in
    Hugging Face's order of operations agrees with this exact rule for
    every :math:`|r| \le 100000` with :math:`(N, M)` = (32, 128),
    (64, 128), (128, 128), (320, 800) and (256, 2048) in both directions,
    but not for, e.g., ``num_buckets=17, max_distance=27,
    bidirectional=False``, where :math:`r = -12` gives
    :math:`9 \ln 1.5 / \ln 3.375 = 3` exactly (bucket 11) and float32
    gives 10, nor for ``num_buckets=31, max_distance=532,
    bidirectional=False``, where :math:`r = -218` gives
    :math:`11.9999995\ldots` (bucket 26) and float32 gives 27.  Even
    float64 truncation misses exact points (``num_buckets=9,
    max_distance=128, bidirectional=False`` at :math:`r = -8`).  Other
    float32 logarithms (PyTorch's vectorised CPU or CUDA ones) may move
    these rare disagreements.

    References
    ----------
    .. [1] C. Raffel et al., "Exploring the Limits of Transfer Learning
       with a Unified Text-to-Text Transformer", JMLR 21(140), 2020,
       arXiv:1910.10683, section 2.1.

    Examples
    --------
    >>> from posref import t5_relative_bucket
    >>> t5_relative_bucket([-128, -16, -8, -1, 0, 1, 16, 128])
    array([15, 10,  8,  1,  0, 17, 26, 31])
    >>> t5_relative_bucket([-128, -16, -8, -1, 0, 1, 16, 128], bidirectional=False)
    array([31, 16,  8,  1,  0,  0,  0,  0])
    """
    if type(relative_position) is np.ndarray and relative_position.dtype == np.int64:
        pass  # what ensure_positions(..., nonnegative=False) returns for it, without its copy
    else:
        relative_position = ensure_positions("relative_position", relative_position, nonnegative=False)
    bidirectional, num_buckets, max_distance, max_exact = _check_bucket_options(
        bidirectional, num_buckets, max_distance
    )
    per_side = num_buckets // 2 if bidirectional else num_buckets
    starts = _log_bucket_starts(max_exact, per_side - max_exact, max_distance)
    bucket = np.empty(relative_position.shape, dtype=np.int64)
    flat_r, flat_bucket = relative_position.reshape(-1), bucket.reshape(-1)  # flat_bucket is a view of bucket
    if 2 * max_distance + 1 <= max(flat_r.size, 1 << 12):
        # The bucket of r is the bucket of clip(r, -M, M): a table of the 2M + 1 clipped values,
        # stored so that index i (negative for r < 0) is entry i mod (2M + 1), and a gather.
        clipped = np.arange(-max_distance, max_distance + 1, dtype=np.int64)
        edge = _bucket_of(clipped, bidirectional, num_buckets, max_distance, max_exact, starts)
        table = np.roll(edge, -max_distance)
        radius = _difference.window_radius(flat_r, max_distance, max(flat_r.size, 1 << 12))
        parts = _blocks(flat_r.size, 1 << 15)
        if radius is not None:
            # Chunks within -W .. W (W >= M) skip the clip: a table of the clipped buckets of -W .. W
            # (those beyond +-M repeat the edge buckets); the other chunks take the clip below.
            def padded(r):
                return edge[np.clip(r, -max_distance, max_distance) + max_distance]

            wide = _difference.wrapped_table(padded, radius)
            parts = _difference.gather_in_window(flat_r, flat_bucket, wide, radius, _in_threads)
            parts = [block for part in parts for block in _blocks_of(part, flat_r.size, 1 << 15)]
            if not parts:
                return bucket

        def gather(some):
            index = np.empty(min(flat_r.size, 1 << 15), dtype=np.int64)
            for part in some:
                block = index[: len(range(*part.indices(flat_r.size)))]
                np.clip(flat_r[part], -max_distance, max_distance, out=block)
                np.take(table, block, out=flat_bucket[part], mode="wrap")

        halves = [parts[: len(parts) // 2], parts[len(parts) // 2:]] if len(parts) > 1 else [parts]
        _in_threads([lambda some=some: gather(some) for some in halves], flat_r.size)
        return bucket
    for part in _blocks(flat_r.size):
        flat_bucket[part] = _bucket_of(flat_r[part], bidirectional, num_buckets, max_distance, max_exact, starts)
    return bucket


@spec(family="t5", reference=T5_REFERENCE)
def t5_relative_bias(
    table, query_positions, key_positions, /, *, bidirectional=True, num_buckets=32, max_distance=128
):
    r"""T5 attention bias: a learned value per head and relative-position bucket.

    Looks up, for every query/key pair, the row of ``table`` at the bucket
    of ``key - query`` (:func:`t5_relative_bucket`) and returns it head
    first, ready to be added to the attention logits.

    Parameters
    ----------
    table : array_like of real, shape ``(num_buckets, H)``
        Learned bias per bucket and head (the weight of Hugging Face's
        ``relative_attention_bias = nn.Embedding(num_buckets, n_heads)``).
    query_positions : array_like of int, shape ``(T,)``
        Non-negative query positions.
    key_positions : array_like of int, shape ``(S,)``
        Non-negative key positions.
    bidirectional, num_buckets, max_distance : keyword-only
        As in :func:`t5_relative_bucket`.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(H, T, S)``.

    Raises
    ------
    TypeError
        If an array has a non-numeric dtype or an option the wrong type.
    ValueError
        If ``table`` is not 2-D with ``num_buckets`` rows, positions are
        not 1-D non-negative integers, or an option is out of range (see
        :func:`t5_relative_bucket`).

    Notes
    -----
    .. math::

        b_{h,t,s} = W[\text{bucket}(p^k_s - p^q_t),\, h]

    T5 adds this bias to unscaled logits: its attention has no
    :math:`1/\sqrt{D}` factor (the query initialisation absorbs it), so
    the logits are :math:`q_t \cdot k_s + b_{h,t,s}`.  An implementation
    that scales before adding the bias must multiply the bias by
    :math:`\sqrt{D}` to match (x-transformers does).  In T5 only the first
    layer owns a table; the same bias is reused by every layer.

    References
    ----------
    .. [1] C. Raffel et al., "Exploring the Limits of Transfer Learning
       with a Unified Text-to-Text Transformer", JMLR 21(140), 2020,
       arXiv:1910.10683, section 2.1.

    Examples
    --------
    One head, four buckets, bidirectional: bucket 0 for the diagonal, 1
    for keys before the query, 3 for keys after it (bucket 2 would be
    distance 0 on the "after" side, which no pair has).

    >>> import numpy as np
    >>> from posref import t5_relative_bias
    >>> table = np.array([[0.0], [-1.0], [10.0], [20.0]])
    >>> t5_relative_bias(table, [0, 1, 2], [0, 1, 2], num_buckets=4, max_distance=2)
    array([[[ 0., 20., 20.],
            [-1.,  0., 20.],
            [-1., -1.,  0.]]])
    """
    table = ensure_array("table", table, ndim=2)
    query_positions = ensure_positions("query_positions", query_positions, ndim=1)
    key_positions = ensure_positions("key_positions", key_positions, ndim=1)
    bidirectional, num_buckets, max_distance, max_exact = _check_bucket_options(
        bidirectional, num_buckets, max_distance
    )
    if table.shape[0] != num_buckets:
        raise ValueError(
            f"table must have shape (num_buckets, H) with num_buckets={num_buckets} rows, got shape {table.shape}"
        )
    per_side = num_buckets // 2 if bidirectional else num_buckets
    starts = _log_bucket_starts(max_exact, per_side - max_exact, max_distance)
    bias = np.empty((table.shape[1], query_positions.size, key_positions.size))  # (H, T, S)
    found = _difference.Offsets(query_positions, key_positions)
    if 0 < found.size <= max(query_positions.size * key_positions.size, 1):
        # one bucket per offset r = p^k - p^q, then b[h, t, s] = W[bucket(r), h] by gather
        values = table[_bucket_of(found.values(), bidirectional, num_buckets, max_distance, max_exact, starts)]
        return found.fill(np.ascontiguousarray(values.T), bias, lead=1)
    low, high = max(found.lo, -max_distance), min(found.hi, max_distance)
    if 0 < high - low + 1 <= max(query_positions.size * key_positions.size, 1) and found.hi - low < 2**63:
        # the buckets are constant beyond +-max_distance: a table of the offsets in between, clipped gather
        clipped = np.arange(low, high + 1, dtype=np.int64)
        values = table[_bucket_of(clipped, bidirectional, num_buckets, max_distance, max_exact, starts)]
        return found.fill(np.ascontiguousarray(values.T), bias, lead=1, low=low)
    for rows in _blocks(query_positions.size, max(1, 2**13 // max(key_positions.size, 1))):
        relative_position = key_positions[None, :] - query_positions[rows, None]  # (t, S)
        bucket = _bucket_of(relative_position, bidirectional, num_buckets, max_distance, max_exact, starts)
        for head in range(table.shape[1]):
            bias[head, rows] = table[bucket, head]  # b[h, t, s] = W[bucket(p^k_s - p^q_t), h]
    return bias
