r"""CoPE: contextual positions that count gated tokens, and the logit term they index.

Shape letters used throughout posref: ``B`` batch, ``H`` heads, ``T``
query positions, ``S`` key positions, ``D`` features per head.
"""

from __future__ import annotations

import numpy as np

from posref import _arith
from posref._spec import helper, spec
from posref._validate import ensure_array, ensure_int

__all__ = ["cope_positions", "cope_bias"]

COPE_REFERENCE = (
    "O. Golovneva, T. Wang, J. Weston, S. Sukhbaatar, 'Contextual Position Encoding: "
    "Learning to Count What's Important', 2024, arXiv:2405.18719"
)


def _cope_causal(t, s):
    """(T, S) mask of the pairs a query sees; queries are the last T of S positions."""
    return np.arange(s)[None, :] <= (s - t) + np.arange(t)[:, None]


@helper(family="cope")
def cope_causal_mask(num_queries, num_keys, /):
    r"""The pairs whose gates CoPE sums: key at or before its query.

    Queries are the last :math:`T` of the :math:`S` positions, as in
    :func:`posref.cope_positions`: query row :math:`i` sits at position
    :math:`S - T + i` and sees keys :math:`j \le S - T + i`.  Entry
    ``[i, j]`` is true for those pairs; the number of true entries from
    ``j`` to the end of row ``i`` is the number of gates summed into
    :math:`p_{ij}`.  A helper, not a spec function: it has no golden
    cases.

    .. math::

        M_{ij} = [\,j \le S - T + i\,]

    Parameters
    ----------
    num_queries : int
        Number of queries :math:`T`, non-negative and at most ``num_keys``.
    num_keys : int
        Number of keys :math:`S`, non-negative.

    Returns
    -------
    numpy.ndarray
        bool array of shape ``(T, S)``.

    Raises
    ------
    TypeError
        If ``num_queries`` or ``num_keys`` is not an integer.
    ValueError
        If either is negative or ``num_queries > num_keys``.

    Examples
    --------
    >>> from posref.relative import cope_causal_mask
    >>> cope_causal_mask(2, 3)
    array([[ True,  True, False],
           [ True,  True,  True]])
    """
    num_queries = ensure_int("num_queries", num_queries, minimum=0)
    num_keys = ensure_int("num_keys", num_keys, minimum=0)
    if num_queries > num_keys:
        raise ValueError(
            f"num_queries must be at most num_keys = {num_keys} (queries are the last T of S positions), "
            f"got num_queries={num_queries}"
        )
    return _cope_causal(num_queries, num_keys)


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
