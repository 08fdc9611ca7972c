r"""Reference scaled dot-product attention that composes position encodings.

:func:`attention` takes queries, keys and values that are already rotated
(RoPE and its variants), an additive bias (ALiBi, T5, KERPLE, ...) and Shaw
relative key/value embeddings as plain arrays, so that an implementation can
be checked end to end with any position method.  :func:`decode_incrementally`
replays a sequence through a key/value cache in chunks, so that incremental
decoding can be checked against the full-sequence result.

Shape letters used throughout posref: ``B`` batch, ``H`` heads, ``T`` query
positions, ``S`` key positions, ``D`` features per head (``D_v`` for values
when it differs).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from posref import _arith
from posref._spec import spec
from posref._validate import ensure_array, ensure_bool, ensure_choice, ensure_int, ensure_positions, ensure_real

__all__ = ["attention", "decode_incrementally"]

ATTENTION_REFERENCE = (
    "A. Vaswani, N. Shazeer, N. Parmar, J. Uszkoreit, L. Jones, A. N. Gomez, L. Kaiser, "
    "I. Polosukhin, 'Attention Is All You Need', 2017, arXiv:1706.03762; relative terms: "
    "P. Shaw, J. Uszkoreit, A. Vaswani, 'Self-Attention with Relative Position "
    "Representations', 2018, arXiv:1803.02155"
)

FULLY_MASKED = ("raise", "zeros")


def _check_qkv(q, k, v, *, q_name="q", k_name="k", v_name="v"):
    """Check the shapes of q (..., H, T, D), k (..., H, S, D), v (..., H, S, D_v)."""
    if q.shape[-1] == 0:
        raise ValueError(f"{q_name} must have a non-zero last dimension (D), got shape {q.shape}")
    if k.shape[:-2] != q.shape[:-2] or k.shape[-1] != q.shape[-1]:
        raise ValueError(
            f"{k_name} must have shape (..., H, S, D) with (..., H) = {q.shape[:-2]} and D = {q.shape[-1]} "
            f"to match {q_name} of shape {q.shape}, got {k_name} of shape {k.shape}"
        )
    if v.shape[:-1] != k.shape[:-1]:
        raise ValueError(
            f"{v_name} must have shape (..., H, S, D_v) with (..., H, S) = {k.shape[:-1]} "
            f"to match {k_name} of shape {k.shape}, got {v_name} of shape {v.shape}"
        )


def _check_bias(name, bias, target, context):
    """Validate an additive bias: no NaN or +inf, broadcastable to ``target``."""
    bias = ensure_array(name, bias, finite=False)
    if np.any(np.isnan(bias)) or np.any(bias == np.inf):
        raise ValueError(f"{name} must hold finite values or -inf (a masked entry), got NaN or +inf")
    try:
        ok = np.broadcast_shapes(bias.shape, target) == target
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"{name} must be broadcastable to (..., H, T, S) = {target} ({context}), got shape {bias.shape}"
        )
    return bias


def _check_relative(name, table, expected, letters, context=""):
    """Validate a relative embedding array of the ``expected`` shape (T, S, D or D_v)."""
    table = ensure_array(name, table, ndim=3)
    if table.shape != expected:
        raise ValueError(f"{name} must have shape {letters} = {expected}{context}, got shape {table.shape}")
    return table


def _softmax_rows(logits, visible):
    """Softmax over the last axis restricted to ``visible``; rows with nothing visible give zeros."""
    masked = np.where(visible, logits, -np.inf)
    row_max = np.max(masked, axis=-1, keepdims=True, initial=-np.inf)
    row_max = np.where(np.isfinite(row_max), row_max, 0.0)  # fully masked rows
    e = np.where(visible, _arith.exp(masked - row_max), 0.0)
    total = np.sum(e, axis=-1, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


@spec(family="attention", reference=ATTENTION_REFERENCE)
def attention(
    q,
    k,
    v,
    /,
    *,
    bias=None,
    causal=False,
    query_positions=None,
    key_positions=None,
    relative_keys=None,
    relative_values=None,
    scale=None,
    fully_masked="raise",
    return_weights=False,
):
    r"""Scaled dot-product attention with additive bias and relative terms.

    Computes softmax attention of every query over the keys, in float64,
    with the position terms a method may add: an additive bias on the
    logits (ALiBi, T5 and similar), Shaw's relative key embeddings on the
    logits and relative value embeddings on the output, and a causal mask
    by position.  Rotary methods are applied to ``q`` and ``k`` beforehand.

    Parameters
    ----------
    q : array_like of real, shape ``(..., H, T, D)``
        Queries, head-major as in PyTorch ``scaled_dot_product_attention``
        (flash-attn takes ``(B, T, H, D)``; swap the axes first).  ``D > 0``.
    k : array_like of real, shape ``(..., H, S, D)``
        Keys; the leading dimensions must equal those of ``q`` (repeat the
        key/value heads first for grouped-query attention).
    v : array_like of real, shape ``(..., H, S, D_v)``
        Values; ``D_v`` may differ from ``D``.
    bias : array_like of real, broadcastable to ``(..., H, T, S)``, optional
        Added to the scaled logits.  ``-inf`` marks a masked entry; NaN and
        ``+inf`` are rejected.  Default: no bias.
    causal : bool, keyword-only
        Mask key ``j`` for query ``i`` when
        ``key_positions[j] > query_positions[i]``.  Default ``False``.
    query_positions : array_like of int, shape ``(T,)``, optional
        Positions of the queries for the causal mask; non-negative.
        Default ``arange(S - T, S)`` whatever ``key_positions`` is: with
        the default key positions the queries are the last ``T`` keys
        (bottom-right alignment, as in flash-attn 2.1 and later), so a
        single decoding query sees every key.  PyTorch
        ``scaled_dot_product_attention(is_causal=True)`` aligns top-left;
        pass ``arange(T)`` to reproduce it.
    key_positions : array_like of int, shape ``(S,)``, optional
        Positions of the keys for the causal mask; non-negative.
        Default ``arange(S)``.  Positions only affect the causal mask.
    relative_keys : array_like of real, shape ``(T, S, D)``, optional
        Shaw's :math:`a^K_{ij}`, shared by all heads and batch entries;
        usually an embedding of the clipped relative position
        :math:`j - i` (key minus query, posref's sign).  Default: none.
    relative_values : array_like of real, shape ``(T, S, D_v)``, optional
        Shaw's :math:`a^V_{ij}`.  Default: none.
    scale : float, keyword-only, optional
        Positive factor on the dot products.  Default
        :math:`1/\sqrt{D}` (the paper).  T5 uses no scaling: pass ``1.0``.
    fully_masked : {"raise", "zeros"}, keyword-only
        What a query row whose every key is masked gets.  ``"raise"``
        (default) raises :class:`ValueError`, since softmax over no keys is
        undefined.  ``"zeros"`` returns zero weights and a zero output row,
        as flash-attn and PyTorch ``scaled_dot_product_attention`` (2.5 and
        later) do; older PyTorch returned NaN.
    return_weights : bool, keyword-only
        Also return the attention weights.  Default ``False``.

    Returns
    -------
    out : numpy.ndarray
        float64 array of shape ``(..., H, T, D_v)``.
    weights : numpy.ndarray
        float64 array of shape ``(..., H, T, S)``, each row summing to 1
        (0 for a fully masked row); only with ``return_weights=True``.

    Raises
    ------
    TypeError
        If an array is not real and numeric, or an option has the wrong
        type.
    ValueError
        If ranks or shapes do not match (the message names both arrays and
        their shapes), values are not finite (``bias`` may hold ``-inf``),
        positions are negative, ``scale <= 0``, ``fully_masked`` is
        unknown, or a query row has no visible key and
        ``fully_masked="raise"``.

    Notes
    -----
    For query :math:`i` and key :math:`j` of one head:

    .. math::

        \ell_{ij} = s\,\bigl(q_i \cdot k_j + q_i \cdot a^K_{ij}\bigr) + b_{ij},
        \qquad
        w_{ij} = \frac{\exp(\ell_{ij} - m_i)}
                      {\sum_{j' \in V_i} \exp(\ell_{ij'} - m_i)},
        \qquad
        o_i = \sum_{j \in V_i} w_{ij}\,\bigl(v_j + a^V_{ij}\bigr)

    where :math:`s` is ``scale``, :math:`b` is ``bias``, :math:`V_i` is the
    set of visible keys (not causally masked, bias not :math:`-\infty`),
    :math:`m_i = \max_{j \in V_i} \ell_{ij}` and :math:`w_{ij} = 0` for
    :math:`j \notin V_i`.  Subtracting :math:`m_i` changes nothing in exact
    arithmetic and keeps the exponentials from overflowing.

    Convention: the bias is added after scaling, as in the ALiBi paper's
    code, BLOOM, MPT and flash-attn.  Falcon adds ALiBi before the
    :math:`1/\sqrt{D}` (pass ``scale * bias``); x-transformers multiplies its
    T5 bias by :math:`\sqrt{D}` for the same reason.  Shaw's relative key
    term is scaled with the content term, as in eq. (4) of [2]_.

    References
    ----------
    .. [1] A. Vaswani et al., "Attention Is All You Need", 2017,
       arXiv:1706.03762, eq. (1).
    .. [2] P. Shaw, J. Uszkoreit, A. Vaswani, "Self-Attention with Relative
       Position Representations", 2018, arXiv:1803.02155, eqs. (3), (4).
    .. [3] O. Press, N. A. Smith, M. Lewis, "Train Short, Test Long:
       Attention with Linear Biases Enables Input Length Extrapolation",
       2022, arXiv:2108.12409.

    Examples
    --------
    Zero queries attend uniformly, so each output row is the mean of the
    visible values; causally, the first query sees only the first key:

    >>> import numpy as np
    >>> from posref import attention
    >>> q = np.zeros((1, 2, 2))  # (H=1, T=2, D=2)
    >>> k = np.ones((1, 2, 2))
    >>> v = np.array([[[1.0, 0.0], [3.0, 2.0]]])
    >>> attention(q, k, v)
    array([[[2., 1.],
            [2., 1.]]])
    >>> attention(q, k, v, causal=True)
    array([[[1., 0.],
            [2., 1.]]])

    A bias of :math:`\ln 3` on the second key gives weights 1/4 and 3/4:

    >>> attention(q, k, v, bias=[0.0, np.log(3.0)])
    array([[[2.5, 1.5],
            [2.5, 1.5]]])
    """
    q = ensure_array("q", q, min_ndim=3)
    k = ensure_array("k", k, min_ndim=3)
    v = ensure_array("v", v, min_ndim=3)
    _check_qkv(q, k, v)
    t, s, d, d_v = q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1]
    target = q.shape[:-2] + (t, s)
    if bias is not None:
        bias = _check_bias("bias", bias, target, f"from q of shape {q.shape} and k of shape {k.shape}")
    causal = ensure_bool("causal", causal)
    if query_positions is None:
        query_positions = np.arange(s - t, s, dtype=np.int64)
    else:
        query_positions = ensure_positions("query_positions", query_positions, ndim=1)
        if query_positions.shape != (t,):
            raise ValueError(
                f"query_positions must have shape (T,) = ({t},) to match q of shape {q.shape}, "
                f"got shape {query_positions.shape}"
            )
    if key_positions is None:
        key_positions = np.arange(s, dtype=np.int64)
    else:
        key_positions = ensure_positions("key_positions", key_positions, ndim=1)
        if key_positions.shape != (s,):
            raise ValueError(
                f"key_positions must have shape (S,) = ({s},) to match k of shape {k.shape}, "
                f"got shape {key_positions.shape}"
            )
    if relative_keys is not None:
        relative_keys = _check_relative("relative_keys", relative_keys, (t, s, d), "(T, S, D)")
    if relative_values is not None:
        relative_values = _check_relative("relative_values", relative_values, (t, s, d_v), "(T, S, D_v)")
    scale = 1.0 / np.sqrt(d) if scale is None else ensure_real("scale", scale, exclusive_minimum=0.0)
    fully_masked = ensure_choice("fully_masked", fully_masked, FULLY_MASKED)
    return_weights = ensure_bool("return_weights", return_weights)

    visible = np.ones((t, s), dtype=bool)
    if causal:
        visible = key_positions[None, :] <= query_positions[:, None]  # (T, S)
    if bias is not None:
        visible = visible & ~np.isneginf(bias)
    visible = np.broadcast_to(visible, target)  # (..., H, T, S)
    if fully_masked == "raise" and t > 0:
        empty = ~np.any(visible, axis=-1)  # (..., H, T)
        if np.any(empty):
            where = tuple(int(i) for i in np.argwhere(empty)[0])
            row = where[-1]
            raise ValueError(
                f"query row {row} (query position {int(query_positions[row])}, index {where} of the "
                f"(..., H, T) axes) has no visible key: every key is masked by the causal mask or by "
                f"-inf in bias; pass fully_masked='zeros' for a zero output row"
            )

    logits = _arith.einsum("...td,...sd->...ts", q, k)  # (..., H, T, S)
    if relative_keys is not None:
        logits = logits + _arith.einsum("...td,tsd->...ts", q, relative_keys)
    logits = scale * logits
    if bias is not None:
        logits = logits + np.where(np.isneginf(bias), 0.0, bias)
    weights = _softmax_rows(logits, visible)  # (..., H, T, S)
    out = _arith.einsum("...ts,...sd->...td", weights, v)  # (..., H, T, D_v)
    if relative_values is not None:
        out = out + _arith.einsum("...ts,tsd->...td", weights, relative_values)
    if return_weights:
        return out, weights
    return out


def _ensure_callable(name, value):
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be a callable or None, got {name}={value!r} of type {type(value).__name__}")
    return value


def _ensure_chunk_sizes(chunk_sizes, length):
    if isinstance(chunk_sizes, (str, bytes)) or not isinstance(chunk_sizes, (Sequence, np.ndarray)):
        raise TypeError(
            f"chunk_sizes must be a sequence of positive integers, got chunk_sizes={chunk_sizes!r} "
            f"of type {type(chunk_sizes).__name__}"
        )
    sizes = [ensure_int(f"chunk_sizes[{i}]", size, minimum=1) for i, size in enumerate(chunk_sizes)]
    if sum(sizes) != length:
        raise ValueError(
            f"chunk_sizes must sum to the sequence length L = {length} (q.shape[-2]), "
            f"got sum {sum(sizes)} from chunk_sizes={sizes}"
        )
    return sizes


def _transformed(name, function, x, positions):
    out = ensure_array(f"the output of {name}", function(x, positions))
    if out.shape != x.shape:
        raise ValueError(
            f"{name} must return an array of the shape it was given, {x.shape}, got shape {out.shape}"
        )
    return out


@spec(family="attention", reference=ATTENTION_REFERENCE)
def decode_incrementally(
    q,
    k,
    v,
    /,
    *,
    chunk_sizes,
    positions=None,
    query_transform=None,
    key_transform=None,
    bias_fn=None,
    relative_keys_fn=None,
    relative_values_fn=None,
    scale=None,
):
    r"""Causal self-attention computed chunk by chunk through a key/value cache.

    Replays autoregressive decoding: the sequence is split into chunks
    (for example a prefill of 5 tokens, then one token per step).  At each
    step only the new queries and keys are transformed (rotated) at their
    own positions, the new keys and values are appended to the cache, and
    :func:`attention` runs the new queries against the whole cache with the
    bias and relative embeddings computed for (new query positions, cached
    key positions).  The outputs of the steps are concatenated.

    A correct cache with correct position offsets gives the same result as
    full-sequence causal attention with the same transforms and bias; an
    implementation that, say, rotates a decoded token at position 0 instead
    of its true position does not.

    Parameters
    ----------
    q : array_like of real, shape ``(..., H, L, D)``
        Queries of the whole sequence before any position transform.
    k : array_like of real, shape ``(..., H, L, D)``
        Keys of the whole sequence before any position transform.
    v : array_like of real, shape ``(..., H, L, D_v)``
        Values of the whole sequence.
    chunk_sizes : sequence of int, keyword-only
        Number of new tokens at each step; positive, summing to ``L``.
    positions : array_like of int, shape ``(L,)``, optional
        Token positions, non-negative and strictly increasing.  Default
        ``arange(L)``.
    query_transform, key_transform : callable or None, keyword-only
        ``f(x, positions) -> array`` with ``x`` of shape ``(..., H, t, D)``
        and ``positions`` int64 of shape ``(t,)``; returns an array of the
        shape of ``x``.  For RoPE pass the same rotation for both, e.g.
        ``lambda x, p: apply_rotary(x, rope_angles(p, D), layout="half")``.
        Default: identity.
    bias_fn : callable or None, keyword-only
        ``f(query_positions, key_positions) -> bias`` broadcastable to
        ``(..., H, t, s)``, e.g. an ALiBi or T5 bias.  Default: no bias.
    relative_keys_fn, relative_values_fn : callable or None, keyword-only
        ``f(query_positions, key_positions) -> array`` of shape
        ``(t, s, D)`` (``(t, s, D_v)`` for values): Shaw's relative
        embeddings.  Default: none.
    scale : float, keyword-only, optional
        As in :func:`attention`; default :math:`1/\sqrt{D}`.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(..., H, L, D_v)``.

    Raises
    ------
    TypeError
        If an array is not real and numeric, ``chunk_sizes`` is not a
        sequence of integers, or a ``*_transform``/``*_fn`` argument is not
        callable.
    ValueError
        If shapes do not match, ``chunk_sizes`` has a non-positive entry or
        does not sum to ``L``, ``positions`` is not strictly increasing or
        has negative entries, a callable returns an array of the wrong
        shape, or ``scale <= 0``.

    Notes
    -----
    With chunk :math:`c` covering tokens :math:`[a_c, e_c)`, transforms
    :math:`f_Q, f_K` and positions :math:`p`:

    .. math::

        O_{[a_c, e_c)} = \operatorname{attention}\bigl(
            f_Q(Q_{[a_c, e_c)}, p_{[a_c, e_c)}),\;
            [\,f_K(K_{[a_{c'}, e_{c'})}, p_{[a_{c'}, e_{c'})})\,]_{c' \le c},\;
            V_{[0, e_c)},\;
            \text{bias} = \beta(p_{[a_c, e_c)}, p_{[0, e_c)}),\;
            \text{causal}\bigr)

    Keys are transformed once, when they enter the cache, and never again,
    which is what a real key/value cache stores.  When the transform of a
    token depends only on its own position (RoPE and its scaled variants at
    a fixed scaling, xPos), this equals full-sequence causal attention.

    References
    ----------
    .. [1] A. Vaswani et al., "Attention Is All You Need", 2017,
       arXiv:1706.03762, section 3.2.

    Examples
    --------
    A prefill of 2 tokens and then one token at a time gives the
    full-sequence causal result:

    >>> import numpy as np
    >>> from posref import attention, decode_incrementally
    >>> x = np.sin(np.arange(16.0)).reshape(1, 4, 4)  # (H=1, L=4, D=4)
    >>> out = decode_incrementally(x, x, x, chunk_sizes=[2, 1, 1])
    >>> bool(np.allclose(out, attention(x, x, x, causal=True), rtol=0, atol=1e-14))
    True
    """
    q = ensure_array("q", q, min_ndim=3)
    k = ensure_array("k", k, min_ndim=3)
    v = ensure_array("v", v, min_ndim=3)
    _check_qkv(q, k, v)
    length = q.shape[-2]
    if k.shape[-2] != length:
        raise ValueError(
            f"q and k must have the same sequence length L for self-attention, got q of shape {q.shape} "
            f"and k of shape {k.shape}"
        )
    chunk_sizes = _ensure_chunk_sizes(chunk_sizes, length)
    if positions is None:
        positions = np.arange(length, dtype=np.int64)
    else:
        positions = ensure_positions("positions", positions, ndim=1)
        if positions.shape != (length,):
            raise ValueError(
                f"positions must have shape (L,) = ({length},) to match q of shape {q.shape}, "
                f"got shape {positions.shape}"
            )
        if np.any(np.diff(positions) <= 0):
            raise ValueError(f"positions must be strictly increasing, got positions={positions.tolist()}")
    query_transform = _ensure_callable("query_transform", query_transform)
    key_transform = _ensure_callable("key_transform", key_transform)
    bias_fn = _ensure_callable("bias_fn", bias_fn)
    relative_keys_fn = _ensure_callable("relative_keys_fn", relative_keys_fn)
    relative_values_fn = _ensure_callable("relative_values_fn", relative_values_fn)
    if scale is not None:
        scale = ensure_real("scale", scale, exclusive_minimum=0.0)

    d, d_v = q.shape[-1], v.shape[-1]
    if length == 0:
        return np.zeros(q.shape[:-1] + (d_v,))
    cached_k, outputs = [], []
    start = 0
    for size in chunk_sizes:
        stop = start + size
        new_positions = positions[start:stop]  # (t,)
        cache_positions = positions[:stop]  # (s,)
        q_new = q[..., start:stop, :]  # (..., H, t, D)
        k_new = k[..., start:stop, :]
        if query_transform is not None:
            q_new = _transformed("query_transform", query_transform, q_new, new_positions)
        if key_transform is not None:
            k_new = _transformed("key_transform", key_transform, k_new, new_positions)
        cached_k.append(k_new)
        k_cache = np.concatenate(cached_k, axis=-2)  # (..., H, s, D)
        v_cache = v[..., :stop, :]  # (..., H, s, D_v)
        context = f"for {size} query and {stop} key positions"
        bias = relative_keys = relative_values = None
        if bias_fn is not None:
            target = q.shape[:-2] + (size, stop)
            bias = _check_bias("the output of bias_fn", bias_fn(new_positions, cache_positions), target, context)
        if relative_keys_fn is not None:
            relative_keys = _check_relative(
                "the output of relative_keys_fn",
                relative_keys_fn(new_positions, cache_positions),
                (size, stop, d),
                "(t, s, D)",
                f" ({context})",
            )
        if relative_values_fn is not None:
            relative_values = _check_relative(
                "the output of relative_values_fn",
                relative_values_fn(new_positions, cache_positions),
                (size, stop, d_v),
                "(t, s, D_v)",
                f" ({context})",
            )
        outputs.append(
            attention(
                q_new,
                k_cache,
                v_cache,
                bias=bias,
                causal=True,
                query_positions=new_positions,
                key_positions=cache_positions,
                relative_keys=relative_keys,
                relative_values=relative_values,
                scale=scale,
            )
        )
        start = stop
    return np.concatenate(outputs, axis=-2)
