r"""DeBERTa: disentangled attention logits over log-bucketed relative positions.

posref's ``relative_position`` is key minus query; DeBERTa's code passes
query minus key.  The bucket map is odd, so the two differ by a sign.

Shape letters used throughout posref: ``B`` batch, ``H`` heads, ``T``
query positions, ``S`` key positions, ``D`` features per head.
"""

from __future__ import annotations

import math

import numpy as np

from posref import _arith, _difference
from posref._spec import spec
from posref._validate import ensure_array, ensure_bool, ensure_int, ensure_positions
from posref.relative._common import _query_key_positions
from posref.rope import _in_threads

__all__ = ["deberta_log_bucket", "deberta_relative_scores"]

DEBERTA_REFERENCE = (
    "P. He, X. Liu, J. Gao, W. Chen, 'DeBERTa: Decoding-enhanced BERT with Disentangled "
    "Attention', 2021, arXiv:2006.03654"
)


def _exact_log_ceil(a, mid, top):
    r"""Smallest integer n >= 0 with (top/mid)**n >= (a/mid)**(mid-1), in integers."""

    def reached(n):
        return top**n * mid ** (mid - 1) >= a ** (mid - 1) * mid**n

    x = (mid - 1) * math.log(a / mid) / math.log(top / mid)
    n = max(int(round(x)) - 1, 0)
    while n > 0 and reached(n - 1):
        n -= 1
    while not reached(n):
        n += 1
    return n


def _log_bucket_magnitude(magnitude, mid, top):
    """mid + ceil((mid-1) ln(a/mid) / ln(top/mid)) for int64 magnitudes a > mid, exactly."""
    a = magnitude.astype(np.float64)
    x = (mid - 1) * (_arith.log(a / mid) / _arith.log(float(top / mid)))
    n = np.ceil(x)
    # Float evaluation is off by less than 1e-12 relative; only where x lies that
    # close to an integer can the ceiling be wrong, and there it is decided exactly.
    near = np.abs(x - np.rint(x)) <= 1e-9 * np.maximum(1.0, np.abs(x))
    if np.any(near):
        for value in np.unique(magnitude[near]):
            n[magnitude == value] = _exact_log_ceil(int(value), mid, top)
    return n.astype(np.int64) + mid


def _deberta_buckets(relative_position, bucket_size, max_position):
    mid = bucket_size // 2
    magnitude = np.abs(relative_position)
    far = magnitude > mid
    bucket = relative_position.copy()
    if np.any(far):
        bucket[far] = np.sign(relative_position[far]) * _log_bucket_magnitude(magnitude[far], mid, max_position - 1)
    return bucket


def _check_deberta_buckets(bucket_size, max_position):
    bucket_size = ensure_int("bucket_size", bucket_size, minimum=2)
    max_position = ensure_int("max_position", max_position)
    mid = bucket_size // 2
    if max_position <= mid + 1:
        raise ValueError(
            f"max_position must be greater than bucket_size // 2 + 1 = {mid + 1}, got max_position={max_position}"
        )
    return bucket_size, max_position


@spec(family="deberta", reference=DEBERTA_REFERENCE)
def deberta_log_bucket(relative_position, /, *, bucket_size, max_position):
    r"""DeBERTa-v2 log-bucketed relative position (odd in its argument).

    Relative positions up to ``bucket_size // 2`` in magnitude are kept;
    larger ones are compressed logarithmically, so that magnitude
    ``max_position - 1`` maps to ``bucket_size - 1``.

    .. math::

        b(r) = \begin{cases}
        r & |r| \le m \\
        \operatorname{sign}(r)\left(m + \left\lceil (m-1)\,
        \dfrac{\ln(|r|/m)}{\ln((P-1)/m)} \right\rceil\right) & |r| > m
        \end{cases}
        \qquad m = \lfloor \text{bucket\_size}/2 \rfloor,\ P = \text{max\_position}

    Parameters
    ----------
    relative_position : array_like of int, shape ``(...)``
        Relative positions, integers of either sign.  posref's convention is
        key minus query; DeBERTa's own code passes query minus key.  The map
        is odd, :math:`b(-r) = -b(r)`, so the bucket of DeBERTa's
        ``q - k`` is the negative of the bucket of posref's ``k - q``.
    bucket_size : int, keyword-only
        ``position_buckets`` of the model config (256 for the released
        DeBERTa-v2/v3 models); at least 2.
    max_position : int, keyword-only
        ``max_relative_positions`` of the config (which falls back to
        ``max_position_embeddings``, 512, when it is below 1); greater than
        ``bucket_size // 2 + 1``.

    Returns
    -------
    numpy.ndarray
        int64 array of the same shape.  Values are not capped: magnitudes
        beyond ``max_position - 1`` give buckets beyond ``bucket_size - 1``,
        which the attention clamps (see :func:`deberta_relative_scores`).

    Raises
    ------
    TypeError
        If ``relative_position`` is not an integer-valued array, or
        ``bucket_size``/``max_position`` not integers.
    ValueError
        If ``bucket_size < 2`` or ``max_position <= bucket_size // 2 + 1``.

    Notes
    -----
    The ceiling is exact.  Hugging Face ``make_log_bucket_position``
    evaluates the logarithms in float32 (and a float64 evaluation is no
    better); where the real quotient is an integer, rounding can push the
    ceiling one too high.  With ``bucket_size=4, max_position=11`` the
    quotient at ``|r| = 250`` is exactly :math:`\ln 125/\ln 5 = 3`, so the
    bucket is 5, while ``ceil`` of the float64 expression gives 6.  For the
    released configuration (256, 512) the only such point is
    :math:`|r| = 511`, where float evaluation happens to be exact, and the
    float32 and float64 evaluations agree with the exact buckets.

    References
    ----------
    .. [1] P. He et al., "DeBERTa: Decoding-enhanced BERT with Disentangled
       Attention", 2021, arXiv:2006.03654 (relative distance, Section 3.1).
    .. [2] Hugging Face ``transformers``,
       ``models/deberta_v2/modeling_deberta_v2.py``,
       ``make_log_bucket_position`` (the log buckets of DeBERTa-v2, which
       the paper does not describe).

    Examples
    --------
    >>> from posref import deberta_log_bucket
    >>> deberta_log_bucket([-512, -200, 0, 128, 129, 511, 1000],
    ...                    bucket_size=256, max_position=512)
    array([-256, -169,    0,  128,  129,  255,  317])
    """
    if type(relative_position) is np.ndarray and relative_position.dtype == np.int64:
        pass  # what ensure_positions(..., nonnegative=False) returns for it, without its copy
    else:
        relative_position = ensure_positions("relative_position", relative_position, nonnegative=False)
    bucket_size, max_position = _check_deberta_buckets(bucket_size, max_position)
    return _deberta_buckets_by_table(relative_position, bucket_size, max_position)


def _deberta_buckets_by_table(relative_position, bucket_size, max_position, *, window=True):
    """:func:`_deberta_buckets` of an int64 array, through a table of ``min .. max`` when that is shorter.

    With ``window`` a table of ``-W .. W`` (:func:`posref._difference.gather_in_window`) is tried
    first, with ``W`` from the first chunk of the array.
    """
    if relative_position.size == 0:
        return _deberta_buckets(relative_position, bucket_size, max_position)
    flat = relative_position.reshape(-1)
    radius = _difference.window_radius(flat, bucket_size // 2, flat.size) if window else None
    if radius is not None:
        # chunks within -W .. W (W from the first chunk) gather from a table of -W .. W without
        # a pass over the whole array for its range; any other chunk is bucketed on its own
        table = _difference.wrapped_table(lambda r: _deberta_buckets(r, bucket_size, max_position), radius)
        bucket = np.empty(relative_position.shape, dtype=np.int64)
        flat_bucket = bucket.reshape(-1)
        for part in _difference.gather_in_window(flat, flat_bucket, table, radius, _in_threads):
            flat_bucket[part] = _deberta_buckets_by_table(flat[part], bucket_size, max_position, window=False)
        return bucket
    halves = [flat[: flat.size // 2], flat[flat.size // 2:]] if flat.size > 1 else [flat]
    ranges = _in_threads([lambda half=half: (int(half.min()), int(half.max())) for half in halves], flat.size)
    low, high = min(r[0] for r in ranges), max(r[1] for r in ranges)
    if high - low + 1 > relative_position.size:
        return _deberta_buckets(relative_position, bucket_size, max_position)
    table = _deberta_buckets(np.arange(low, high + 1, dtype=np.int64), bucket_size, max_position)
    bucket = np.empty(relative_position.shape, dtype=np.int64)
    flat_bucket = bucket.reshape(-1)
    starts = range(0, flat.size, 1 << 15)

    def gather(some):
        index = np.empty(min(flat.size, 1 << 15), dtype=np.int64)
        for start in some:
            part = slice(start, start + (1 << 15))
            block = index[: len(range(*part.indices(flat.size)))]
            np.subtract(flat[part], low, out=block)  # in [0, high - low]: no overflow
            np.take(table, block, out=flat_bucket[part], mode="wrap")  # in range: nothing wraps

    halves = [starts[: len(starts) // 2], starts[len(starts) // 2:]] if len(starts) > 1 else [starts]
    _in_threads([lambda some=some: gather(some) for some in halves], flat.size)
    return bucket


@spec(family="deberta", reference=DEBERTA_REFERENCE)
def deberta_relative_scores(
    q, k, pos_key, pos_query, query_positions, key_positions, /, *, bucket_size, max_position, c2p=True, p2c=True
):
    r"""DeBERTa disentangled attention logits: content, c2p and p2c terms.

    With :math:`\delta_{ij}` the bucketed *query-minus-key* distance and
    :math:`\kappa` the attention span,

    .. math::

        A_{ij} = \frac{q_i\cdot k_j
        + [\text{c2p}]\; q_i\cdot K^r_{\,c(\delta_{ij})}
        + [\text{p2c}]\; k_j\cdot Q^r_{\,c(\delta_{ij})}}{\sqrt{D f}},
        \qquad f = 1 + [\text{c2p}] + [\text{p2c}]

    .. math::

        \delta_{ij} = -b(p^k_j - p^q_i), \qquad
        c(\delta) = \min(\max(\delta + \kappa, 0), 2\kappa - 1)

    where :math:`b` is :func:`deberta_log_bucket` (or the identity when
    ``bucket_size`` is None), :math:`\kappa` is ``bucket_size`` (or
    ``max_position`` without buckets) and :math:`p^q, p^k` are the query and
    key positions.

    Parameters
    ----------
    q : array_like of real, shape ``(..., H, T, D)``
        Content queries.
    k : array_like of real, shape ``(..., H, S, D)``
        Content keys; leading dimensions equal to those of ``q``.
    pos_key : array_like of real, shape ``(H, 2*span, D)``, or None
        Relative embeddings projected by the key projection,
        :math:`K^r` (``pos_key_layer``; with ``share_att_key`` this is
        ``key_proj`` applied to the table).  Row ``span + delta`` belongs
        to query-minus-key distance ``delta``.  May be None when
        ``c2p=False``.
    pos_query : array_like of real, shape ``(H, 2*span, D)``, or None
        The same table projected by the query projection, :math:`Q^r`.
        May be None when ``p2c=False``.
    query_positions : array_like of int, shape ``(T,)``
        Positions of the queries, non-negative (``arange(T)`` in DeBERTa).
    key_positions : array_like of int, shape ``(S,)``
        Positions of the keys, non-negative (``arange(S)`` in DeBERTa).
    bucket_size : int or None, keyword-only
        ``position_buckets``; None (a config value below 1) disables log
        bucketing, as in DeBERTa (v1) and DeBERTa-v2 without buckets.
    max_position : int, keyword-only
        ``max_relative_positions``; the span when ``bucket_size`` is None.
    c2p, p2c : bool, keyword-only
        Whether the content-to-position and position-to-content terms are
        present (``"c2p"``/``"p2c"`` in ``pos_att_type``; both in the
        released models).

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(..., H, T, S)``, before masking and
        softmax.

    Raises
    ------
    TypeError
        If an array argument is not a real numeric array (or is None while
        its term is enabled), positions are not integers, ``bucket_size``/
        ``max_position`` are not integers or ``c2p``/``p2c`` not booleans.
    ValueError
        If shapes disagree as listed above, values are not finite,
        positions are negative, or the bucket parameters are out of range.

    Notes
    -----
    Conventions, as in the released code of the authors and in Hugging Face
    ``DisentangledSelfAttention``:

    * Both position terms index the table with the same
      :math:`c(\delta_{ij})`.  The paper writes :math:`\delta(j, i)` for
      p2c; the code gathers at ``clamp(-r_pos + span)`` on the transposed
      product, which is :math:`c(\delta_{ij})`.
    * All three terms share the divisor :math:`\sqrt{D f}`.
    * Out-of-range buckets are clamped to the first and last row.
    * Hugging Face builds the p2c index from a key-by-key matrix when
      ``T != S`` (its shapes then only combine for ``T == S``); here p2c
      uses the query and key positions for every shape.

    References
    ----------
    .. [1] P. He et al., "DeBERTa: Decoding-enhanced BERT with Disentangled
       Attention", 2021, arXiv:2006.03654, Section 3.1.
    .. [2] Hugging Face ``transformers``,
       ``models/deberta_v2/modeling_deberta_v2.py``,
       ``DisentangledSelfAttention.disentangled_attention_bias``.

    Examples
    --------
    Span 2 without buckets, ``D = 1``, c2p only (so :math:`f = 2`); table
    row ``n`` holds ``n``, queries and keys are 1:

    >>> import numpy as np
    >>> from posref import deberta_relative_scores
    >>> ones = np.ones((1, 2, 1))
    >>> table = np.arange(4.0).reshape(1, 4, 1)
    >>> deberta_relative_scores(ones, ones, table, None, [0, 1], [0, 1],
    ...                         bucket_size=None, max_position=2, p2c=False)
    array([[[2.1213, 1.4142],
            [2.8284, 2.1213]]])
    """
    q = ensure_array("q", q, min_ndim=3)
    k = ensure_array("k", k, min_ndim=3)
    c2p = ensure_bool("c2p", c2p)
    p2c = ensure_bool("p2c", p2c)
    if pos_key is None and c2p:
        raise TypeError("pos_key must be a numeric array when c2p=True, got pos_key=None")
    if pos_query is None and p2c:
        raise TypeError("pos_query must be a numeric array when p2c=True, got pos_query=None")
    pos_key = None if pos_key is None else ensure_array("pos_key", pos_key, ndim=3)
    pos_query = None if pos_query is None else ensure_array("pos_query", pos_query, ndim=3)
    query_positions, key_positions = _query_key_positions(query_positions, key_positions, integer=True)
    if bucket_size is None:
        max_position = ensure_int("max_position", max_position, minimum=1)
        span = max_position
    else:
        bucket_size, max_position = _check_deberta_buckets(bucket_size, max_position)
        span = bucket_size
    *lead, num_heads, t, d = q.shape
    if k.ndim != q.ndim or k.shape[:-2] != q.shape[:-2] or k.shape[-1] != d:
        expected = ", ".join(str(n) for n in (*lead, num_heads)) + f", S, {d}"
        raise ValueError(f"k must have shape (..., H, S, D) = ({expected}) to match q of shape {q.shape}, got shape {k.shape}")
    s = k.shape[-2]
    for name, table in (("pos_key", pos_key), ("pos_query", pos_query)):
        if table is not None and table.shape != (num_heads, 2 * span, d):
            raise ValueError(
                f"{name} must have shape (H, 2*span, D) = {(num_heads, 2 * span, d)}, got shape {table.shape}"
            )
    if query_positions.shape != (t,):
        raise ValueError(f"query_positions must have shape (T,) = ({t},), got shape {query_positions.shape}")
    if key_positions.shape != (s,):
        raise ValueError(f"key_positions must have shape (S,) = ({s},), got shape {key_positions.shape}")

    f = 1 + int(c2p) + int(p2c)
    divisor = math.sqrt(d * f)
    found = _difference.offsets(query_positions, key_positions)
    if found is None:
        relative_position = key_positions[None, :] - query_positions[:, None]  # (T, S), key - query
    else:  # the formula below, once per offset r = p^k - p^q, then gathered
        relative_position = found.values()
    if bucket_size is not None:
        relative_position = _deberta_buckets(relative_position, bucket_size, max_position)
    delta = -relative_position  # query - key, DeBERTa's sign
    row = np.clip(delta + span, 0, 2 * span - 1)  # (T, S)
    if found is not None:
        row = found.fill(row, np.empty((t, s), dtype=np.int64))
    scores = _arith.einsum("...htd,...hsd->...hts", q, k)
    if c2p:
        c2p_all = _arith.einsum("...htd,hrd->...htr", q, pos_key)  # (..., H, T, 2*span)
        scores = scores + np.take_along_axis(c2p_all, np.broadcast_to(row, scores.shape), axis=-1)
    if p2c:
        p2c_all = _arith.einsum("...hsd,hrd->...hsr", k, pos_query)  # (..., H, S, 2*span)
        index = np.broadcast_to(row.T, (*scores.shape[:-2], s, t))
        scores = scores + np.swapaxes(np.take_along_axis(p2c_all, index, axis=-1), -1, -2)
    return scores / divisor
