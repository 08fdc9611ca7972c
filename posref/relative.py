r"""Relative position schemes beyond Shaw, T5 and ALiBi.

Transformer-XL, DeBERTa, KERPLE, Sandwich, FIRE, CoPE and NoPE.  Each one
either adds a bias to the attention logits or builds the logits itself;
every function here returns float64 arrays (DeBERTa buckets: int64).

Sign convention: wherever posref speaks of a ``relative_position`` it
means *key position minus query position*.  Schemes that are naturally
written with the query-minus-key *distance* (Transformer-XL, KERPLE,
Sandwich, FIRE) say so where they use it.

Shape letters used throughout posref: ``B`` batch, ``H`` heads, ``T``
query positions, ``S`` key positions, ``D`` features per head.
"""

from __future__ import annotations

import math

import numpy as np

from posref import _arith, _difference
from posref._spec import spec
from posref._validate import (
    ensure_array,
    ensure_bool,
    ensure_choice,
    ensure_int,
    ensure_positions,
    ensure_real,
    ensure_same_shape,
)
from posref.rope import _in_threads

__all__ = [
    "transformer_xl_relative_encoding",
    "transformer_xl_scores",
    "deberta_log_bucket",
    "deberta_relative_scores",
    "kerple_log_bias",
    "kerple_power_bias",
    "sandwich_bias",
    "fire_normalized_distance",
    "fire_bias",
    "cope_positions",
    "cope_bias",
    "nope",
]

TRANSFORMER_XL_REFERENCE = (
    "Z. Dai, Z. Yang, Y. Yang, J. Carbonell, Q. V. Le, R. Salakhutdinov, 'Transformer-XL: "
    "Attentive Language Models Beyond a Fixed-Length Context', 2019, arXiv:1901.02860"
)
DEBERTA_REFERENCE = (
    "P. He, X. Liu, J. Gao, W. Chen, 'DeBERTa: Decoding-enhanced BERT with Disentangled "
    "Attention', 2021, arXiv:2006.03654"
)
KERPLE_REFERENCE = (
    "T.-C. Chi, T.-H. Fan, P. J. Ramadge, A. I. Rudnicky, 'KERPLE: Kernelized Relative "
    "Positional Embedding for Length Extrapolation', 2022, arXiv:2205.09921"
)
SANDWICH_REFERENCE = (
    "T.-C. Chi, T.-H. Fan, A. I. Rudnicky, P. J. Ramadge, 'Dissecting Transformer Length "
    "Extrapolation via the Lens of Receptive Field Analysis', 2023, arXiv:2212.10356"
)
FIRE_REFERENCE = (
    "S. Li, C. You, G. Guruganesh, J. Ainslie, S. Ontanon, M. Zaheer, S. Sanghai, Y. Yang, "
    "S. Kumar, S. Bhojanapalli, 'Functional Interpolation for Relative Positions Improves "
    "Long Context Transformers', 2023, arXiv:2310.04418"
)
COPE_REFERENCE = (
    "O. Golovneva, T. Wang, J. Weston, S. Sukhbaatar, 'Contextual Position Encoding: "
    "Learning to Count What's Important', 2024, arXiv:2405.18719"
)
NOPE_REFERENCE = (
    "A. Kazemnejad, I. Padhi, K. Natesan Ramamurthy, P. Das, S. Reddy, 'The Impact of "
    "Positional Encoding on Length Generalization in Transformers', 2023, arXiv:2305.19466"
)

FUTURE_KEYS = ("mask", "zero")


# --------------------------------------------------------------------------
# private checks and helpers
# --------------------------------------------------------------------------


def _head_vector(name, value, *, minimum=None, exclusive_minimum=None, maximum=None):
    """A per-head parameter: a non-empty 1-D float64 array with bounded values."""
    array = ensure_array(name, value, ndim=1, allow_empty=False)
    low_bad = (minimum is not None and np.any(array < minimum)) or (
        exclusive_minimum is not None and np.any(array <= exclusive_minimum)
    )
    high_bad = maximum is not None and np.any(array > maximum)
    if low_bad or high_bad:
        low = f"[{minimum}" if minimum is not None else f"({exclusive_minimum}"
        high = f"{maximum}]" if maximum is not None else "inf)"
        raise ValueError(
            f"{name} must hold values in {low}, {high}, got minimum {float(array.min())!r} and maximum {float(array.max())!r}"
        )
    return array


def _query_key_positions(query_positions, key_positions, *, integer):
    """Validate a pair of 1-D position vectors; return them as arrays."""
    query_positions = ensure_positions("query_positions", query_positions, integer=integer, ndim=1)
    key_positions = ensure_positions("key_positions", key_positions, integer=integer, ndim=1)
    return query_positions, key_positions


def _causal_distance(query_positions, key_positions, bidirectional):
    """Query-minus-key distance, shape (T, S); future keys give 0 unless bidirectional."""
    distance = query_positions[:, None].astype(np.float64) - key_positions[None, :].astype(np.float64)
    if bidirectional:
        return np.abs(distance)
    return np.maximum(distance, 0.0)


def _offset_distance(found, bidirectional):
    """:func:`_causal_distance` of every offset ``r = p^k - p^q`` of a difference table, in table order.

    For whole-number positions the float difference ``p^q - p^k`` is exactly ``-r`` (``+0.0`` when
    equal), which is what the float64 value of the integer ``-r`` is.
    """
    distance = (-found.values()).astype(np.float64)
    if bidirectional:
        return np.abs(distance)
    return np.maximum(distance, 0.0)


def _head_matrix(found, table):
    """The (H, T, S) bias whose entry [h, t, s] is table[h, r_ts - lo]."""
    out = np.empty((table.shape[0], found.query.size, found.key.size))
    return found.fill(table, out, lead=1)


def _check_heads_match(names, arrays):
    """Per-head parameter vectors must all have length H."""
    ensure_same_shape(names, arrays)


# --------------------------------------------------------------------------
# Transformer-XL
# --------------------------------------------------------------------------


@spec(family="transformer_xl", reference=TRANSFORMER_XL_REFERENCE)
def transformer_xl_relative_encoding(distances, dim, /, *, base=10_000.0, max_distance=None):
    r"""Sinusoid of a query-to-key distance, sines first (Transformer-XL R).

    Transformer-XL encodes the distance :math:`\delta = i - j \ge 0`
    between query :math:`i` and key :math:`j` (the *negative* of posref's
    ``relative_position``) with a fixed sinusoid whose sines fill the first
    half of the vector and cosines the second half.

    .. math::

        R_\delta = \bigl[\sin(\delta\omega_0), \dots,
        \sin(\delta\omega_{d/2-1}),\ \cos(\delta\omega_0), \dots,
        \cos(\delta\omega_{d/2-1})\bigr], \qquad
        \omega_k = \text{base}^{-2k/d}

    Parameters
    ----------
    distances : array_like of real, shape ``(...)``
        Query-minus-key distances :math:`\delta`, non-negative and finite.
        The original code builds them in descending order,
        ``klen-1, ..., 1, 0``; pass them in whatever order the rows are
        wanted.
    dim : int
        Width :math:`d` of the encoding (``d_model`` in the original
        code), positive and even.
    base : float, keyword-only
        Frequency base, greater than 1 (10000 in the paper).
    max_distance : int or None, keyword-only
        If given, distances above it are replaced by it before encoding
        (``clamp_len`` of the original code, where ``clamp_len <= 0``
        means no clamping).  ``None`` (default) clamps nothing.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``distances.shape + (dim,)``.

    Raises
    ------
    TypeError
        If ``distances`` is not a real array, ``dim`` or ``max_distance``
        not an integer, or ``base`` not a real number.
    ValueError
        If ``distances`` holds negative or non-finite values, ``dim`` is not
        positive and even, ``base <= 1`` or ``max_distance < 0``.

    Notes
    -----
    The frequencies are those of the sinusoidal encoding of Vaswani et al.
    (2017); only the layout differs: ``[sin | cos]`` concatenated rather
    than interleaved.  Multiplying by the learned projection
    :math:`W_{k,R}` is left to the caller; :func:`transformer_xl_scores`
    takes the projected rows.

    References
    ----------
    .. [1] Z. Dai et al., "Transformer-XL: Attentive Language Models Beyond
       a Fixed-Length Context", 2019, arXiv:1901.02860, Section 3.3.

    Examples
    --------
    >>> from posref import transformer_xl_relative_encoding
    >>> transformer_xl_relative_encoding([0, 1], 4, base=100.0).round(4)
    array([[0.    , 0.    , 1.    , 1.    ],
           [0.8415, 0.0998, 0.5403, 0.995 ]])
    """
    distances = ensure_positions("distances", distances, integer=False)
    dim = ensure_int("dim", dim, minimum=1, even=True)
    base = ensure_real("base", base, exclusive_minimum=1.0)
    if max_distance is not None:
        max_distance = ensure_int("max_distance", max_distance, minimum=0)
        distances = np.minimum(distances, float(max_distance))
    omega = _arith.power(base, -2.0 * np.arange(dim // 2, dtype=np.float64) / dim)
    angle = distances[..., None] * omega  # (..., d/2)
    return np.concatenate([_arith.sin(angle), _arith.cos(angle)], axis=-1)


@spec(family="transformer_xl", reference=TRANSFORMER_XL_REFERENCE)
def transformer_xl_scores(q, k, r, u, v, /, *, scale=None, future_keys="mask"):
    r"""Transformer-XL attention logits with its two global bias vectors.

    For query row :math:`i` and key :math:`j` of one head, with a memory of
    :math:`M = S - T` cached keys in front of the :math:`T` current ones
    (query :math:`i` sits at absolute position :math:`i + M` and sees keys
    :math:`0, \dots, i + M`):

    .. math::

        A_{ij} = \text{scale}\,\bigl[(q_i + u)\cdot k_j
        + (q_i + v)\cdot r_{\,i + M - j}\bigr], \qquad j \le i + M

    The four terms (a)-(d) of the paper are :math:`q_i\cdot k_j`,
    :math:`q_i\cdot r_{i+M-j}`, :math:`u\cdot k_j` and
    :math:`v\cdot r_{i+M-j}`.

    Parameters
    ----------
    q : array_like of real, shape ``(..., H, T, D)``
        Queries of the current segment.
    k : array_like of real, shape ``(..., H, S, D)``
        Keys of memory and current segment together, ``S >= T``; the
        leading dimensions must equal those of ``q``.
    r : array_like of real, shape ``(H, S, D)``
        Projected relative encodings indexed by distance: ``r[h, n]`` is
        head ``h``'s projection :math:`W_{k,R} R_n` of the encoding of
        distance ``n = 0 .. S-1`` (see
        :func:`transformer_xl_relative_encoding`).  The original code
        stores the same rows in descending order (``pos_seq = klen-1 ...
        0``), so its tensor is ``r[:, ::-1]``.
    u, v : array_like of real, shape ``(H, D)``
        The global content bias (``r_w_bias``) and position bias
        (``r_r_bias``) of every head.
    scale : float or None, keyword-only
        Factor applied to the sum.  ``None`` (default) means
        :math:`1/\sqrt{D}`, as the original code does; pass ``1.0`` for
        unscaled logits.
    future_keys : {"mask", "zero"}, keyword-only
        What the entries with :math:`j > i + M` hold.  ``"mask"`` (default):
        ``-inf``, the causal mask the original model applies.
        ``"zero"``: the position terms are dropped and only the scaled
        content terms remain, as the original ``_rel_shift(...,
        zero_triu=True)`` gives.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(..., H, T, S)``.

    Raises
    ------
    TypeError
        If an array argument is not a real numeric array or ``scale`` is not
        a real number.
    ValueError
        If shapes disagree (as listed above), ``S < T``, values are not
        finite, or ``future_keys`` is unknown.

    Notes
    -----
    The original code computes :math:`(q_i + v)\cdot r` for every row of
    ``r`` and aligns the result with a pad-and-reshape "relative shift";
    that is an implementation device.  The specification is the gather by
    distance :math:`i + M - j` above; the shift reproduces it on the causal
    entries and leaves other values above the diagonal band.

    References
    ----------
    .. [1] Z. Dai et al., "Transformer-XL: Attentive Language Models Beyond
       a Fixed-Length Context", 2019, arXiv:1901.02860, Section 3.3.

    Examples
    --------
    One query at absolute position 1 (one memory key), ``D = 1``, no global
    biases: key 0 is at distance 1, key 1 at distance 0.

    >>> from posref import transformer_xl_scores
    >>> q, k = [[[1.0]]], [[[1.0], [2.0]]]
    >>> r = [[[0.5], [0.25]]]          # distance 0 -> 0.5, 1 -> 0.25
    >>> u = v = [[0.0]]
    >>> transformer_xl_scores(q, k, r, u, v, scale=1.0)
    array([[[1.25, 2.5 ]]])
    """
    q = ensure_array("q", q, min_ndim=3)
    k = ensure_array("k", k, min_ndim=3)
    r = ensure_array("r", r, ndim=3)
    u = ensure_array("u", u, ndim=2)
    v = ensure_array("v", v, ndim=2)
    if scale is not None:
        scale = ensure_real("scale", scale)
    future_keys = ensure_choice("future_keys", future_keys, FUTURE_KEYS)
    *lead, num_heads, t, d = q.shape
    if d == 0:
        raise ValueError(f"q must have a non-zero last dimension (D), got shape {q.shape}")
    if k.ndim != q.ndim or k.shape[:-2] != q.shape[:-2] or k.shape[-1] != d:
        expected = ", ".join(str(n) for n in (*lead, num_heads)) + f", S, {d}"
        raise ValueError(f"k must have shape (..., H, S, D) = ({expected}) to match q of shape {q.shape}, got shape {k.shape}")
    s = k.shape[-2]
    if s < t:
        raise ValueError(f"k must have at least as many positions as q (S >= T), got S={s} and T={t}")
    if r.shape != (num_heads, s, d):
        raise ValueError(f"r must have shape (H, S, D) = {(num_heads, s, d)}, got shape {r.shape}")
    for name, bias in (("u", u), ("v", v)):
        if bias.shape != (num_heads, d):
            raise ValueError(f"{name} must have shape (H, D) = {(num_heads, d)}, got shape {bias.shape}")
    if scale is None:
        scale = 1.0 / math.sqrt(d)
    memory = s - t
    content = _arith.einsum("...htd,...hsd->...hts", q + u[:, None, :], k)  # terms (a) + (c)
    by_row = _arith.einsum("...htd,hrd->...htr", q + v[:, None, :], r)  # (..., H, T, S): one column per distance
    delta = memory + np.arange(t)[:, None] - np.arange(s)[None, :]  # (T, S), i + M - j
    causal = delta >= 0
    index = np.broadcast_to(np.where(causal, delta, 0), by_row.shape)
    position = np.take_along_axis(by_row, index, axis=-1)  # terms (b) + (d)
    scores = scale * (content + np.where(causal, position, 0.0))
    if future_keys == "mask":
        scores = np.where(causal, scores, -np.inf)
    return scores


# --------------------------------------------------------------------------
# DeBERTa
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# KERPLE
# --------------------------------------------------------------------------


@spec(family="kerple", reference=KERPLE_REFERENCE)
def kerple_log_bias(query_positions, key_positions, /, *, r1, r2, bidirectional=False):
    r"""KERPLE logarithmic bias, one kernel per head.

    .. math::

        B_{h,ij} = -r_{1,h}\,\ln\!\bigl(1 + r_{2,h}\,\Delta_{ij}\bigr),
        \qquad \Delta_{ij} = \begin{cases}
        \max(p^q_i - p^k_j, 0) & \text{causal (default)} \\
        |p^q_i - p^k_j| & \text{bidirectional}
        \end{cases}

    Parameters
    ----------
    query_positions : array_like of real, shape ``(T,)``
        Query positions, non-negative (integers in practice).
    key_positions : array_like of real, shape ``(S,)``
        Key positions, non-negative.
    r1, r2 : array_like of real, shape ``(H,)``, keyword-only
        Per-head parameters, non-negative (``bias_p`` and ``bias_a`` of the
        original code, which clamps both to at least 0.01 before use).
    bidirectional : bool, keyword-only
        False (default): future keys (key after query) get distance 0 and
        bias 0, as the original code's ``tril`` distance matrix gives; they
        are masked in causal attention anyway.  True: the symmetric
        distance :math:`|p^q_i - p^k_j|`.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(H, T, S)``, all values :math:`\le 0`,
        added to the attention logits (after the :math:`1/\sqrt{D}` scale).

    Raises
    ------
    TypeError
        If positions, ``r1`` or ``r2`` are not real arrays, or
        ``bidirectional`` is not a bool.
    ValueError
        If positions are negative, not finite or not 1-D, ``r1``/``r2`` are
        not non-empty 1-D arrays of the same length with values >= 0.

    Notes
    -----
    The original code computes the distance in the activation dtype
    (``diff.to(x.dtype)``); in bfloat16 distances above 256 are rounded.

    References
    ----------
    .. [1] T.-C. Chi et al., "KERPLE: Kernelized Relative Positional
       Embedding for Length Extrapolation", 2022, arXiv:2205.09921
       (logarithmic variant).

    Examples
    --------
    >>> from posref import kerple_log_bias
    >>> kerple_log_bias([4], [4, 3, 2, 1, 0], r1=[1.0], r2=[0.5]).round(4)
    array([[[ 0.    , -0.4055, -0.6931, -0.9163, -1.0986]]])
    """
    query_positions, key_positions = _query_key_positions(query_positions, key_positions, integer=False)
    r1 = _head_vector("r1", r1, minimum=0.0)
    r2 = _head_vector("r2", r2, minimum=0.0)
    _check_heads_match(["r1", "r2"], [r1, r2])
    bidirectional = ensure_bool("bidirectional", bidirectional)
    found = _difference.offsets(query_positions, key_positions)
    if found is not None:  # whole-number positions: the formula once per offset, gathered
        distance = _offset_distance(found, bidirectional)  # (hi - lo + 1,)
        return _head_matrix(found, 0.0 - r1[:, None] * _arith.log1p(r2[:, None] * distance))
    distance = _causal_distance(query_positions, key_positions, bidirectional)  # (T, S)
    return 0.0 - r1[:, None, None] * _arith.log1p(r2[:, None, None] * distance)  # 0.0 - x: no -0.0


@spec(family="kerple", reference=KERPLE_REFERENCE)
def kerple_power_bias(query_positions, key_positions, /, *, a, p, bidirectional=False):
    r"""KERPLE power bias: minus a per-head power of the distance.

    .. math::

        B_{h,ij} = -a_h\,\Delta_{ij}^{\,p_h}, \qquad 0 < p_h \le 2

    with :math:`\Delta_{ij}` as in :func:`kerple_log_bias` (causal:
    :math:`\max(p^q_i - p^k_j, 0)`; bidirectional: the absolute
    difference).  With :math:`p_h = 1` and ALiBi's slopes as :math:`a_h`
    this is ALiBi.

    Parameters
    ----------
    query_positions : array_like of real, shape ``(T,)``
        Query positions, non-negative.
    key_positions : array_like of real, shape ``(S,)``
        Key positions, non-negative.
    a : array_like of real, shape ``(H,)``, keyword-only
        Per-head scale, non-negative (``bias_a``; clamped to at least 0.01
        by the original code).
    p : array_like of real, shape ``(H,)``, keyword-only
        Per-head exponent in ``(0, 2]`` (``bias_p``; clamped to
        ``[0.01, 2]`` by the original code).
    bidirectional : bool, keyword-only
        As in :func:`kerple_log_bias`; default False (future keys get 0).

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(H, T, S)``, all values :math:`\le 0`.

    Raises
    ------
    TypeError
        If positions, ``a`` or ``p`` are not real arrays, or
        ``bidirectional`` is not a bool.
    ValueError
        If positions are negative, not finite or not 1-D, ``a`` has a
        negative value, ``p`` a value outside ``(0, 2]``, or ``a`` and ``p``
        are not non-empty 1-D arrays of the same length.

    Notes
    -----
    The original code also offers a multiplicative weight kernel
    :math:`\exp(-a'\Delta^{p'})`; it multiplies the attention weights rather
    than adding a bias and is not part of this function.

    References
    ----------
    .. [1] T.-C. Chi et al., "KERPLE: Kernelized Relative Positional
       Embedding for Length Extrapolation", 2022, arXiv:2205.09921
       (power variant).

    Examples
    --------
    >>> from posref import kerple_power_bias
    >>> kerple_power_bias([3], [0, 1, 2, 3, 4], a=[0.5], p=[2.0])
    array([[[-4.5, -2. , -0.5,  0. ,  0. ]]])
    """
    query_positions, key_positions = _query_key_positions(query_positions, key_positions, integer=False)
    a = _head_vector("a", a, minimum=0.0)
    p = _head_vector("p", p, exclusive_minimum=0.0, maximum=2.0)
    _check_heads_match(["a", "p"], [a, p])
    bidirectional = ensure_bool("bidirectional", bidirectional)
    found = _difference.offsets(query_positions, key_positions)
    if found is not None:  # whole-number positions: the formula once per offset, gathered
        distance = _offset_distance(found, bidirectional)  # (hi - lo + 1,)
        return _head_matrix(found, 0.0 - a[:, None] * _arith.power(distance, p[:, None]))
    distance = _causal_distance(query_positions, key_positions, bidirectional)  # (T, S)
    return 0.0 - a[:, None, None] * _arith.power(distance, p[:, None, None])  # 0.0 - x: no -0.0


# --------------------------------------------------------------------------
# Sandwich
# --------------------------------------------------------------------------


@spec(family="sandwich", reference=SANDWICH_REFERENCE)
def sandwich_bias(
    query_positions, key_positions, /, *, dim, num_heads, base=10_000.0, first_frequency=1, bidirectional=False
):
    r"""Sandwich bias: a shifted inner product of sinusoids, scaled per head.

    .. math::

        B_{h,ij} = \frac{\sum_{k=k_0}^{k_0 + d/2 - 1}
        \cos\!\bigl(\Delta_{ij}\,\text{base}^{-2k/d}\bigr) - d/2}
        {8h/H}, \qquad h = 1, \dots, H

    where :math:`\Delta_{ij}` is the query-minus-key distance (causal:
    :math:`\max(p^q_i - p^k_j, 0)`; bidirectional: the absolute
    difference), :math:`d` is ``dim`` and :math:`k_0` is
    ``first_frequency``.  The sum is the dot product of two sinusoidal
    position vectors, which depends only on the distance.

    Parameters
    ----------
    query_positions : array_like of real, shape ``(T,)``
        Query positions, non-negative.
    key_positions : array_like of real, shape ``(S,)``
        Key positions, non-negative.
    dim : int, keyword-only
        Width :math:`d` of the sinusoids, positive and even (NeMo's
        ``hidden_size``, documented there as the per-head size).
    num_heads : int, keyword-only
        Number of heads :math:`H`, positive.
    base : float, keyword-only
        Frequency base, greater than 1 (10000).
    first_frequency : int, keyword-only
        Index :math:`k_0` of the first frequency.  1 (default) as in the
        paper's formula and NeMo's ``arange(1, d/2 + 1)``; 0 gives the
        frequencies of the sinusoidal encoding of Vaswani et al.
    bidirectional : bool, keyword-only
        False (default): future keys get distance 0 and bias 0 (NeMo's
        ``tril``).  True: the symmetric distance.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(H, T, S)``; every value is :math:`\le 0`
        and equals 0 at distance 0.

    Raises
    ------
    TypeError
        If positions are not real arrays, ``dim``/``num_heads``/
        ``first_frequency`` are not integers, ``base`` is not real or
        ``bidirectional`` not a bool.
    ValueError
        If positions are negative, not finite or not 1-D, ``dim`` is not
        positive and even, ``num_heads < 1``, ``base <= 1`` or
        ``first_frequency < 0``.

    Notes
    -----
    NeMo aligns queries with the last ``T`` keys and applies ``tril`` to the
    ``(T, S)`` block; for ``T < S`` that also zeroes past keys to the right
    of the block's diagonal.  posref compares positions instead, which is
    the same when ``T == S``.

    References
    ----------
    .. [1] T.-C. Chi et al., "Dissecting Transformer Length Extrapolation
       via the Lens of Receptive Field Analysis", 2023, arXiv:2212.10356.
    .. [2] NVIDIA NeMo, ``SandwichRelativePositionEmbedding``
       (``position_embedding/sandwich_relative_position_embedding.py``).

    Examples
    --------
    With ``dim=2`` and ``base=2`` the only frequency is 1/2, so head 1 of
    2 gives :math:`(\cos(\Delta/2) - 1)/4`:

    >>> from posref import sandwich_bias
    >>> sandwich_bias([0, 1, 2], [0], dim=2, num_heads=2, base=2.0).round(4)
    array([[[ 0.    ],
            [-0.0306],
            [-0.1149]],
    <BLANKLINE>
           [[ 0.    ],
            [-0.0153],
            [-0.0575]]])
    """
    query_positions, key_positions = _query_key_positions(query_positions, key_positions, integer=False)
    dim = ensure_int("dim", dim, minimum=1, even=True)
    num_heads = ensure_int("num_heads", num_heads, minimum=1)
    base = ensure_real("base", base, exclusive_minimum=1.0)
    first_frequency = ensure_int("first_frequency", first_frequency, minimum=0)
    bidirectional = ensure_bool("bidirectional", bidirectional)
    k = np.arange(first_frequency, first_frequency + dim // 2, dtype=np.float64)
    inv_freq = _arith.power(base, -2.0 * k / dim)
    h = np.arange(1, num_heads + 1, dtype=np.float64)
    found = _difference.offsets(query_positions, key_positions)
    if found is not None:  # whole-number positions: the formula once per offset, gathered
        distance = _offset_distance(found, bidirectional)  # (hi - lo + 1,)
        kernel = _arith.cos(distance[..., None] * inv_freq).sum(axis=-1) - dim / 2
        return _head_matrix(found, kernel[None, :] / (h * 8.0 / num_heads)[:, None])
    distance = _causal_distance(query_positions, key_positions, bidirectional)  # (T, S)
    kernel = _arith.cos(distance[..., None] * inv_freq).sum(axis=-1) - dim / 2  # (T, S)
    return kernel[None, :, :] / (h * 8.0 / num_heads)[:, None, None]


# --------------------------------------------------------------------------
# FIRE
# --------------------------------------------------------------------------


def _check_fire_options(c, threshold, eps):
    c = ensure_real("c", c)
    threshold = ensure_real("threshold", threshold, minimum=0.0)
    eps = ensure_real("eps", eps, exclusive_minimum=0.0)
    return c, threshold, eps


def _fire_psi(x, c):
    return _arith.log1p(np.abs(c * x))


def _fire_ratio(query_positions, key_positions, c, threshold, eps):
    distance = query_positions[:, None] - key_positions[None, :]  # (T, S), query - key
    normalizer = _fire_psi(np.maximum(query_positions, threshold), c)[:, None]  # (T, 1)
    return _fire_psi(distance, c) / (normalizer + eps)


def _fire_ratio_parts(query_positions, key_positions, c, threshold, eps):
    """FIRE's ratio as (found, numerator table, denominators) for whole-number positions, else None.

    ``z[t, s] = numerator[r_ts - lo] / denominator[t]``: the logarithm of the distance is taken
    once per offset ``r = p^k - p^q`` (the float ``p^q - p^k`` is exactly ``-r``), the normaliser
    once per query, as in :func:`_fire_ratio`.
    """
    found = _difference.offsets(query_positions, key_positions)
    if found is None:
        return None
    numerator = _fire_psi((-found.values()).astype(np.float64), c)  # (hi - lo + 1,)
    denominator = _fire_psi(np.maximum(query_positions, threshold), c) + eps  # (T,)
    return found, numerator, denominator


def _fire_ratio_fast(query_positions, key_positions, c, threshold, eps):
    """:func:`_fire_ratio`, through a difference table where one applies."""
    parts = _fire_ratio_parts(query_positions, key_positions, c, threshold, eps)
    if parts is None:
        return _fire_ratio(query_positions, key_positions, c, threshold, eps)
    found, numerator, denominator = parts
    z = found.fill(numerator, np.empty((query_positions.size, key_positions.size)))
    return np.divide(z, denominator[:, None], out=z)


@spec(family="fire", reference=FIRE_REFERENCE)
def fire_normalized_distance(query_positions, key_positions, /, *, c=0.1, threshold=512.0, eps=1e-6):
    r"""FIRE's normalised distance, the input of its MLP.

    .. math::

        z_{ij} = \frac{\psi(p^q_i - p^k_j)}{\psi(\max(p^q_i, L)) + \epsilon},
        \qquad \psi(x) = \ln(1 + |c\,x|)

    Parameters
    ----------
    query_positions : array_like of real, shape ``(T,)``
        Query positions :math:`p^q_i`, non-negative.
    key_positions : array_like of real, shape ``(S,)``
        Key positions :math:`p^k_j`, non-negative.
    c : float, keyword-only
        Log-transform slope (learned; initialised to 0.1).  Only
        :math:`|c|` matters.
    threshold : float, keyword-only
        The threshold :math:`L` (learned as ``|multiplier * 512|``; 512
        initially), non-negative.  Queries before it are normalised as if
        they were at :math:`L`.
    eps : float, keyword-only
        Added to the normaliser, positive (:math:`10^{-6}`).

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(T, S)``.  For :math:`c \ne 0` and causal
        pairs (:math:`p^k_j \le p^q_i`) the values lie in :math:`[0, 1)`.

    Raises
    ------
    TypeError
        If positions are not real arrays or ``c``/``threshold``/``eps`` are
        not real numbers.
    ValueError
        If positions are negative, not finite or not 1-D,
        ``threshold < 0`` or ``eps <= 0``.

    Notes
    -----
    The paper defines the bias for causal pairs only.  The public
    implementation read (``FIRE`` in mcleish7/arithmetic, with the same
    initial :math:`c`, :math:`L` and :math:`\epsilon`) takes the absolute
    value of the distance, so a future key gets the value of the past key
    at the same distance; causal attention masks it.

    References
    ----------
    .. [1] S. Li et al., "Functional Interpolation for Relative Positions
       Improves Long Context Transformers", 2023, arXiv:2310.04418.

    Examples
    --------
    >>> from posref import fire_normalized_distance
    >>> fire_normalized_distance([600], [0, 590, 600]).round(4)
    array([[1.    , 0.1686, 0.    ]])

    A query before the threshold is normalised as if it were at 512:

    >>> fire_normalized_distance([10], [0]).round(4)
    array([[0.1753]])
    """
    query_positions, key_positions = _query_key_positions(query_positions, key_positions, integer=False)
    c, threshold, eps = _check_fire_options(c, threshold, eps)
    return _fire_ratio_fast(query_positions, key_positions, c, threshold, eps)


@spec(family="fire", reference=FIRE_REFERENCE)
def fire_bias(query_positions, key_positions, w1, b1, w2, b2, /, *, c=0.1, threshold=512.0, eps=1e-6):
    r"""FIRE attention bias: a ReLU MLP of the normalised distance.

    .. math::

        B_{h,ij} = \sum_{m=1}^{K} W^{(2)}_{mh}\,
        \max\!\bigl(0,\ z_{ij} W^{(1)}_{1m} + b^{(1)}_m\bigr) + b^{(2)}_h

    with :math:`z_{ij}` from :func:`fire_normalized_distance`.

    Parameters
    ----------
    query_positions : array_like of real, shape ``(T,)``
        Query positions, non-negative.
    key_positions : array_like of real, shape ``(S,)``
        Key positions, non-negative.
    w1 : array_like of real, shape ``(1, K)``
        First layer weight, input-by-output (PyTorch ``Linear.weight`` is
        the transpose).  The paper and the code read use ``K = 32``.
    b1 : array_like of real, shape ``(K,)``
        First layer bias.
    w2 : array_like of real, shape ``(K, H)``
        Second layer weight, input-by-output.
    b2 : array_like of real, shape ``(H,)``
        Second layer bias.
    c, threshold, eps : float, keyword-only
        As in :func:`fire_normalized_distance`.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(H, T, S)``.

    Raises
    ------
    TypeError
        If an array argument is not a real numeric array, or
        ``c``/``threshold``/``eps`` are not real numbers.
    ValueError
        If positions are invalid (see :func:`fire_normalized_distance`),
        weight shapes disagree, values are not finite, ``threshold < 0`` or
        ``eps <= 0``.

    References
    ----------
    .. [1] S. Li et al., "Functional Interpolation for Relative Positions
       Improves Long Context Transformers", 2023, arXiv:2310.04418.

    Examples
    --------
    One hidden unit and one head, bias :math:`= 2\max(0, z) + 0.5`:

    >>> from posref import fire_bias
    >>> fire_bias([10], [0], [[1.0]], [0.0], [[2.0]], [0.5]).round(4)
    array([[[0.8505]]])
    """
    query_positions, key_positions = _query_key_positions(query_positions, key_positions, integer=False)
    w1 = ensure_array("w1", w1, ndim=2)
    b1 = ensure_array("b1", b1, ndim=1)
    w2 = ensure_array("w2", w2, ndim=2)
    b2 = ensure_array("b2", b2, ndim=1)
    c, threshold, eps = _check_fire_options(c, threshold, eps)
    hidden = w1.shape[1]
    if w1.shape[0] != 1 or hidden == 0:
        raise ValueError(f"w1 must have shape (1, K) with K >= 1, got shape {w1.shape}")
    if b1.shape != (hidden,):
        raise ValueError(f"b1 must have shape (K,) = ({hidden},), got shape {b1.shape}")
    if w2.shape[0] != hidden or w2.shape[1] == 0:
        raise ValueError(f"w2 must have shape (K, H) with K = {hidden} and H >= 1, got shape {w2.shape}")
    num_heads = w2.shape[1]
    if b2.shape != (num_heads,):
        raise ValueError(f"b2 must have shape (H,) = ({num_heads},), got shape {b2.shape}")
    # The plain formula: z = _fire_ratio(...) (T, S), activation = max(z[..., None] * w1[0] + b1, 0)
    # (T, S, K), out = _arith.matmul(activation, w2) + b2 (T, S, H), moved to (H, T, S).
    parts = _fire_ratio_parts(query_positions, key_positions, c, threshold, eps)
    if parts is not None and _arith.is_precise() and np.all(parts[2] == parts[2][:1]):
        # One normaliser for every query (all queries at or before the threshold): z, and so the
        # bias, depends on the offset only.  Inside precise() a contraction is a correctly rounded
        # sum whatever the shape, so the MLP runs once per offset.  (NumPy's BLAS rounds a row
        # differently depending on the shape of the matrix it sits in, so the default mode keeps
        # the plain matrix products, below.)
        found, numerator, denominator = parts
        z = numerator / denominator[:1]  # (hi - lo + 1,)
        activation = np.maximum(z[..., None] * w1[0] + b1, 0.0)
        table = _arith.matmul(activation, w2) + b2  # (hi - lo + 1, H)
        return _head_matrix(found, np.ascontiguousarray(table.T))
    z = _fire_ratio_fast(query_positions, key_positions, c, threshold, eps)  # (T, S)
    t, s = z.shape
    bias = np.empty((num_heads, t, s))
    step = max(1, (1 << 18) // max(s * hidden, 1))  # rows whose (t, S, K) activation is about 2 MiB
    for start in range(0, t, step):
        rows = slice(start, start + step)
        activation = np.maximum(z[rows, :, None] * w1[0] + b1, 0.0)  # (t, S, K)
        out = _arith.matmul(activation, w2) + b2  # (t, S, H): the same per-row products as the whole
        bias[:, rows] = np.moveaxis(out, -1, 0)
    return bias


# --------------------------------------------------------------------------
# CoPE
# --------------------------------------------------------------------------


def _cope_causal(t, s):
    """(T, S) mask of the pairs a query sees; queries are the last T of S positions."""
    return np.arange(s)[None, :] <= (s - t) + np.arange(t)[:, None]


def _check_cope_logits(logits):
    logits = ensure_array("logits", logits, min_ndim=2, finite=False)
    t, s = logits.shape[-2:]
    if t > s:
        raise ValueError(f"logits must have T <= S (queries are the last T of S positions), got shape {logits.shape}")
    causal = _cope_causal(t, s)
    if np.isnan(logits).any() or not np.all(np.isfinite(logits[..., causal])):
        raise ValueError("logits must be finite on the causal pairs (key at or before the query) and never NaN")
    return logits, causal


def _cope_positions(logits, causal):
    gates = np.where(causal, _arith.expit(np.where(causal, logits, 0.0)), 0.0)  # sigma(logit), 0 for future keys
    # reverse cumulative sum over keys: p_ij = sum_{t >= j} g_it
    return np.flip(np.cumsum(np.flip(gates, axis=-1), axis=-1), axis=-1)


@spec(family="cope", reference=COPE_REFERENCE)
def cope_positions(logits, /):
    r"""CoPE contextual positions: the sum of the gates from key to query.

    .. math::

        g_{it} = \sigma(\ell_{it}), \qquad
        p_{ij} = \sum_{t=j}^{i} g_{it}

    for causal pairs (key :math:`j` at or before query :math:`i`); future
    pairs get 0, the empty sum.

    Parameters
    ----------
    logits : array_like of real, shape ``(..., T, S)``
        Gate logits :math:`\ell_{it}`, in the paper the attention logits
        :math:`q_i\cdot k_t`.  Queries are the last ``T`` of the ``S``
        positions (query row ``i`` sits at position ``S - T + i``), so
        ``T <= S``.  Entries of future pairs are ignored and may be
        ``-inf`` (a masked logit); causal entries must be finite.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(..., T, S)``; values in
        ``[0, i + S - T - j + 1]``, decreasing along each row.

    Raises
    ------
    TypeError
        If ``logits`` is not a real numeric array.
    ValueError
        If ``logits`` has fewer than 2 dimensions, ``T > S``, a causal entry
        is not finite, or any entry is NaN.

    References
    ----------
    .. [1] O. Golovneva et al., "Contextual Position Encoding: Learning to
       Count What's Important", 2024, arXiv:2405.18719.

    Examples
    --------
    All logits 0 open every gate halfway:

    >>> import numpy as np
    >>> from posref import cope_positions
    >>> cope_positions(np.zeros((3, 3)))
    array([[0.5, 0. , 0. ],
           [1. , 0.5, 0. ],
           [1.5, 1. , 0.5]])
    """
    logits, causal = _check_cope_logits(logits)
    return _cope_positions(logits, causal)


@spec(family="cope", reference=COPE_REFERENCE)
def cope_bias(q, position_embeddings, logits, /):
    r"""CoPE logit term: query times an interpolated position embedding.

    .. math::

        e_{ij} = (1 - w_{ij})\; q_i\cdot E_{\lfloor \hat p_{ij} \rfloor}
        + w_{ij}\; q_i\cdot E_{\lceil \hat p_{ij} \rceil}, \qquad
        w_{ij} = \hat p_{ij} - \lfloor \hat p_{ij} \rfloor

    with :math:`\hat p_{ij} = \min(p_{ij}, P - 1)`, :math:`p_{ij}` from
    :func:`cope_positions` and :math:`P` the number of rows of the table.
    The result is added to the attention logits :math:`q_i\cdot k_j`.

    Parameters
    ----------
    q : array_like of real, shape ``(..., T, D)``
        Queries.
    position_embeddings : array_like of real, shape ``(P, D)``
        The table :math:`E` of integer positions ``0 .. P-1`` (x-transformers
        ``pos_emb``, ``P = max_pos``), shared by all heads.
    logits : array_like of real, shape ``(..., T, S)``
        Gate logits, as in :func:`cope_positions`; leading dimensions and
        ``T`` equal to those of ``q``.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(..., T, S)``.  Future pairs hold the value
        at position 0 (they are masked by causal attention).

    Raises
    ------
    TypeError
        If an argument is not a real numeric array.
    ValueError
        If shapes disagree, the table is empty, values are not finite (see
        :func:`cope_positions` for ``logits``), or ``T > S``.

    Notes
    -----
    Convention: positions beyond the table are clamped to :math:`P - 1`, as
    in the paper's reference code (Appendix B) and x-transformers
    (``pos.clamp(max=max_pos - 1)``).  x-transformers also offers a
    soft one-hot variant (``soft_onehot=True``), not covered here.

    References
    ----------
    .. [1] O. Golovneva et al., "Contextual Position Encoding: Learning to
       Count What's Important", 2024, arXiv:2405.18719, Appendix B
       (reference code).

    Examples
    --------
    A table whose value grows by 10 per position turns positions into
    ``10 * p``; with two rows, positions above 1 are clamped to 1:

    >>> import numpy as np
    >>> from posref import cope_bias
    >>> q, logits = np.ones((3, 1)), np.zeros((3, 3))
    >>> cope_bias(q, [[0.0], [10.0]], logits)
    array([[ 5.,  0.,  0.],
           [10.,  5.,  0.],
           [10., 10.,  5.]])
    """
    q = ensure_array("q", q, min_ndim=2)
    position_embeddings = ensure_array("position_embeddings", position_embeddings, ndim=2)
    logits, causal = _check_cope_logits(logits)
    num_positions, d = position_embeddings.shape
    if num_positions == 0:
        raise ValueError(f"position_embeddings must have at least one row, got shape {position_embeddings.shape}")
    if q.shape[-1] != d:
        raise ValueError(f"q must have last dimension {d} (D of position_embeddings), got shape {q.shape}")
    if logits.shape[:-1] != q.shape[:-1]:
        raise ValueError(
            f"logits must have shape (..., T, S) with (..., T) = {q.shape[:-1]} from q, got shape {logits.shape}"
        )
    p = np.minimum(_cope_positions(logits, causal), num_positions - 1)  # (..., T, S)
    by_position = _arith.matmul(q, position_embeddings.T)  # (..., T, P)
    floor = np.floor(p)
    w = p - floor
    low = np.take_along_axis(by_position, floor.astype(np.int64), axis=-1)
    high = np.take_along_axis(by_position, np.ceil(p).astype(np.int64), axis=-1)
    return (1.0 - w) * low + w * high


# --------------------------------------------------------------------------
# NoPE
# --------------------------------------------------------------------------


@spec(family="nope", reference=NOPE_REFERENCE)
def nope(x, positions, /):
    r"""No position encoding: return the features unchanged (as float64).

    .. math::

        x'_p = x_p

    NoPE is a causal decoder without any explicit position signal; causal
    masking alone lets it recover position.  This function exists so that
    "no encoding" is a case like any other: an implementation under test
    must leave ``x`` untouched whatever the positions.

    Parameters
    ----------
    x : array_like of real, shape ``(..., T, D)``
        Features (queries or keys).
    positions : array_like of int, shape broadcastable to ``x.shape[:-1]``
        Token positions, non-negative integers; checked, then ignored.

    Returns
    -------
    numpy.ndarray
        float64 copy of ``x``, same shape.

    Raises
    ------
    TypeError
        If ``x`` or ``positions`` is not a real numeric array.
    ValueError
        If ``x`` is 0-D or not finite, or ``positions`` are negative, not
        integers, or do not broadcast against ``x.shape[:-1]``.

    References
    ----------
    .. [1] A. Kazemnejad et al., "The Impact of Positional Encoding on
       Length Generalization in Transformers", 2023, arXiv:2305.19466.

    Examples
    --------
    >>> from posref import nope
    >>> nope([[1, 2], [3, 4]], [0, 1])
    array([[1., 2.],
           [3., 4.]])
    """
    x = ensure_array("x", x, min_ndim=1)
    positions = ensure_positions("positions", positions)
    try:
        shape = np.broadcast_shapes(x.shape[:-1], positions.shape)
    except ValueError:
        shape = None
    if shape != x.shape[:-1]:
        raise ValueError(
            f"positions of shape {positions.shape} does not broadcast to x.shape[:-1] = {x.shape[:-1]}"
        )
    return x.copy()
