r"""Relative position representations with clipping (Shaw et al.).

Each query/key pair gets two learned vectors, one added to the key
(:math:`a^K_{ij}`) and one to the value (:math:`a^V_{ij}`), chosen by the
clipped relative position ``key - query``.

Shape letters used throughout posref: ``B`` batch, ``H`` heads, ``T`` query
positions, ``S`` key positions, ``D`` features per head.
"""

from __future__ import annotations

import numpy as np

from posref import _arith, _difference
from posref._spec import spec
from posref._validate import ensure_array, ensure_int, ensure_positions

__all__ = ["shaw_relative_index", "shaw_relative_embeddings", "shaw_relative_logits", "shaw_relative_values"]

SHAW_REFERENCE = (
    "P. Shaw, J. Uszkoreit, A. Vaswani, 'Self-Attention with Relative Position "
    "Representations', NAACL 2018, arXiv:1803.02155"
)


def _leading_shape(first_name, first, second_name, second):
    """Broadcast the batch/head dimensions (all but the last two) of two arrays."""
    try:
        return np.broadcast_shapes(first.shape[:-2], second.shape[:-2])
    except ValueError:
        raise ValueError(
            f"{first_name} of shape {first.shape} and {second_name} of shape {second.shape} have leading "
            f"(batch/head) dimensions {first.shape[:-2]} and {second.shape[:-2]} that do not broadcast"
        ) from None


@spec(family="shaw", reference=SHAW_REFERENCE)
def shaw_relative_index(query_positions, key_positions, /, *, max_relative_position):
    r"""Row of the relative-embedding table used by each query/key pair.

    Parameters
    ----------
    query_positions : array_like of int, shape ``(T,)``
        Non-negative query positions.
    key_positions : array_like of int, shape ``(S,)``
        Non-negative key positions.
    max_relative_position : int, keyword-only
        Clipping distance :math:`k`, positive (the paper's :math:`k`;
        ``max_relative_position`` in tensor2tensor).

    Returns
    -------
    numpy.ndarray
        int64 array of shape ``(T, S)`` with values in ``[0, 2k]``.

    Raises
    ------
    TypeError
        If positions are not numeric or ``max_relative_position`` is not an
        integer.
    ValueError
        If positions are not 1-D non-negative integers or
        ``max_relative_position < 1``.

    Notes
    -----
    .. math::

        \text{index}_{ij} = \operatorname{clip}(p^k_j - p^q_i,\, -k,\, k) + k

    The relative position is key minus query, as in the paper's
    :math:`w_{\operatorname{clip}(j - i, k)}` and in tensor2tensor's
    ``_generate_relative_positions_matrix``; index :math:`k` is distance 0.
    tensor2tensor aligns queries with the last keys when the lengths
    differ; here the caller says so through the positions.

    References
    ----------
    .. [1] P. Shaw, J. Uszkoreit, A. Vaswani, "Self-Attention with
       Relative Position Representations", NAACL 2018, arXiv:1803.02155,
       section 3.2.

    Examples
    --------
    >>> from posref import shaw_relative_index
    >>> shaw_relative_index([0, 1, 2, 3], [0, 1, 2, 3], max_relative_position=2)
    array([[2, 3, 4, 4],
           [1, 2, 3, 4],
           [0, 1, 2, 3],
           [0, 0, 1, 2]])
    """
    query_positions = ensure_positions("query_positions", query_positions, ndim=1)
    key_positions = ensure_positions("key_positions", key_positions, ndim=1)
    max_relative_position = ensure_int("max_relative_position", max_relative_position, minimum=1)
    return _relative_index(query_positions, key_positions, max_relative_position)


def _relative_index(query_positions, key_positions, k):
    """:func:`shaw_relative_index` of validated arguments.

    The plain formula is ``clip(key[None, :] - query[:, None], -k, k) + k`` on the whole (T, S)
    matrix; for positions whose offsets span a short range it is evaluated once per offset and
    gathered (:mod:`posref._difference`).
    """
    found = _difference.offsets(query_positions, key_positions)
    if found is None:
        relative_position = key_positions[None, :] - query_positions[:, None]  # (T, S)
        return (np.clip(relative_position, -k, k) + k).astype(np.int64)
    table = (np.clip(found.values(), -k, k) + k).astype(np.int64)  # one index per offset r = p^k - p^q
    return found.fill(table, np.empty((query_positions.size, key_positions.size), dtype=np.int64))


@spec(family="shaw", reference=SHAW_REFERENCE)
def shaw_relative_embeddings(table, query_positions, key_positions, /, *, max_relative_position):
    r"""Relative position vector of every query/key pair, gathered from a table.

    The same gather serves the key-side :math:`a^K` and value-side
    :math:`a^V` representations, each from its own table.

    Parameters
    ----------
    table : array_like of real, shape ``(2 * max_relative_position + 1, D)``
        Learned vectors :math:`w_{-k}, \dots, w_k` (row :math:`r + k` holds
        :math:`w_r`).
    query_positions : array_like of int, shape ``(T,)``
        Non-negative query positions.
    key_positions : array_like of int, shape ``(S,)``
        Non-negative key positions.
    max_relative_position : int, keyword-only
        Clipping distance :math:`k`, positive.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(T, S, D)``.

    Raises
    ------
    TypeError
        If an array is not numeric or ``max_relative_position`` is not an
        integer.
    ValueError
        If ``table`` is not 2-D with ``2k + 1`` rows or holds non-finite
        values, positions are not 1-D non-negative integers, or
        ``max_relative_position < 1``.

    Notes
    -----
    .. math::

        a_{ij} = w_{\operatorname{clip}(p^k_j - p^q_i,\, -k,\, k)}

    References
    ----------
    .. [1] P. Shaw, J. Uszkoreit, A. Vaswani, "Self-Attention with
       Relative Position Representations", NAACL 2018, arXiv:1803.02155,
       section 3.2.

    Examples
    --------
    >>> import numpy as np
    >>> from posref import shaw_relative_embeddings
    >>> table = np.array([[-1.0], [0.0], [1.0]])  # w_-1, w_0, w_1
    >>> shaw_relative_embeddings(table, [0, 1, 2], [0, 1, 2], max_relative_position=1)[..., 0]
    array([[ 0.,  1.,  1.],
           [-1.,  0.,  1.],
           [-1., -1.,  0.]])
    """
    table = ensure_array("table", table, ndim=2)
    query_positions = ensure_positions("query_positions", query_positions, ndim=1)
    key_positions = ensure_positions("key_positions", key_positions, ndim=1)
    max_relative_position = ensure_int("max_relative_position", max_relative_position, minimum=1)
    rows = 2 * max_relative_position + 1
    if table.shape[0] != rows:
        raise ValueError(
            f"table must have shape (2 * max_relative_position + 1, D) with {rows} rows for "
            f"max_relative_position={max_relative_position}, got shape {table.shape}"
        )
    k = max_relative_position
    found = _difference.offsets(query_positions, key_positions)
    if found is not None:  # the row of every offset r = p^k - p^q, gathered: a[t, s] = w[clip(r, -k, k)]
        rows_of_offsets = table[np.clip(found.values(), -k, k) + k]  # (hi - lo + 1, D)
        return found.fill(rows_of_offsets, np.empty((query_positions.size, key_positions.size, table.shape[1])))
    index = shaw_relative_index(query_positions, key_positions, max_relative_position=max_relative_position)
    return table[index]  # (T, S, D)


@spec(family="shaw", reference=SHAW_REFERENCE)
def shaw_relative_logits(q, k, relative_keys, /):
    r"""Attention logits with relative key representations.

    Parameters
    ----------
    q : array_like of real, shape ``(..., T, D)``
        Queries, already multiplied by any logit scale.
    k : array_like of real, shape ``(..., S, D)``
        Keys; the leading dimensions broadcast against those of ``q``.
    relative_keys : array_like of real, shape ``(T, S, D)``
        :math:`a^K_{ij}`, e.g. from :func:`shaw_relative_embeddings`;
        shared by every batch entry and head, as in the paper.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``broadcast(q.shape[:-2], k.shape[:-2]) + (T, S)``.

    Raises
    ------
    TypeError
        If an argument is not a real numeric array.
    ValueError
        If ``q`` or ``k`` has fewer than 2 dimensions, ``relative_keys``
        is not 3-D, the feature sizes differ, ``relative_keys`` is not
        ``(T, S, D)``, leading dimensions do not broadcast, or values are
        not finite.

    Notes
    -----
    .. math::

        e_{ij} = q_i \cdot k_j + q_i \cdot a^K_{ij}

    The paper's eq. (4) divides by :math:`\sqrt{D}`; this primitive does
    not, so the caller scales ``q`` (as tensor2tensor's
    ``dot_product_attention_relative`` does) or the result.

    References
    ----------
    .. [1] P. Shaw, J. Uszkoreit, A. Vaswani, "Self-Attention with
       Relative Position Representations", NAACL 2018, arXiv:1803.02155,
       eq. (4) and section 3.3.

    Examples
    --------
    >>> from posref import shaw_relative_logits
    >>> q = [[1.0, 0.0]]                     # T = 1, D = 2
    >>> k = [[1.0, 1.0], [2.0, 0.0]]         # S = 2
    >>> a_k = [[[0.0, 5.0], [10.0, 0.0]]]    # (T, S, D)
    >>> shaw_relative_logits(q, k, a_k)
    array([[ 1., 12.]])
    """
    q = ensure_array("q", q, min_ndim=2)
    k = ensure_array("k", k, min_ndim=2)
    relative_keys = ensure_array("relative_keys", relative_keys, ndim=3)
    t, d = q.shape[-2:]
    s = k.shape[-2]
    if k.shape[-1] != d:
        raise ValueError(f"q and k must have the same last dimension (D), got q shape {q.shape} and k shape {k.shape}")
    if relative_keys.shape != (t, s, d):
        raise ValueError(f"relative_keys must have shape (T, S, D) = {(t, s, d)}, got shape {relative_keys.shape}")
    _leading_shape("q", q, "k", k)
    content = _arith.matmul(q, np.swapaxes(k, -1, -2))  # (..., T, S)
    position = _arith.einsum("...td,tsd->...ts", q, relative_keys)  # (..., T, S)
    return content + position


@spec(family="shaw", reference=SHAW_REFERENCE)
def shaw_relative_values(weights, v, relative_values, /):
    r"""Attention output with relative value representations.

    Parameters
    ----------
    weights : array_like of real, shape ``(..., T, S)``
        Attention weights :math:`\alpha_{ij}` (normally a softmax over
        ``S``; any finite values are accepted).
    v : array_like of real, shape ``(..., S, D)``
        Values; the leading dimensions broadcast against those of
        ``weights``.
    relative_values : array_like of real, shape ``(T, S, D)``
        :math:`a^V_{ij}`, e.g. from :func:`shaw_relative_embeddings`.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``broadcast(weights.shape[:-2], v.shape[:-2]) + (T, D)``.

    Raises
    ------
    TypeError
        If an argument is not a real numeric array.
    ValueError
        If ``weights`` or ``v`` has fewer than 2 dimensions,
        ``relative_values`` is not 3-D, the key counts differ,
        ``relative_values`` is not ``(T, S, D)``, leading dimensions do not
        broadcast, or values are not finite.

    Notes
    -----
    .. math::

        z_i = \sum_j \alpha_{ij} \left(v_j + a^V_{ij}\right)

    References
    ----------
    .. [1] P. Shaw, J. Uszkoreit, A. Vaswani, "Self-Attention with
       Relative Position Representations", NAACL 2018, arXiv:1803.02155,
       eq. (3).

    Examples
    --------
    >>> from posref import shaw_relative_values
    >>> w = [[0.5, 0.5]]                       # T = 1, S = 2
    >>> v = [[2.0, 0.0], [0.0, 2.0]]           # D = 2
    >>> a_v = [[[10.0, 0.0], [0.0, 20.0]]]     # (T, S, D)
    >>> shaw_relative_values(w, v, a_v)
    array([[ 6., 11.]])
    """
    weights = ensure_array("weights", weights, min_ndim=2)
    v = ensure_array("v", v, min_ndim=2)
    relative_values = ensure_array("relative_values", relative_values, ndim=3)
    t, s = weights.shape[-2:]
    d = v.shape[-1]
    if v.shape[-2] != s:
        raise ValueError(
            f"v must have S = {s} rows (the last dimension of weights), got weights shape {weights.shape} "
            f"and v shape {v.shape}"
        )
    if relative_values.shape != (t, s, d):
        raise ValueError(
            f"relative_values must have shape (T, S, D) = {(t, s, d)}, got shape {relative_values.shape}"
        )
    _leading_shape("weights", weights, "v", v)
    content = _arith.matmul(weights, v)  # (..., T, D)
    position = _arith.einsum("...ts,tsd->...td", weights, relative_values)  # (..., T, D)
    return content + position
