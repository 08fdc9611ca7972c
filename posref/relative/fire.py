r"""FIRE: functional interpolation for relative positions, an MLP of a normalised distance.

FIRE writes the query-minus-key distance :math:`p^q_i - p^k_j`.

Shape letters used throughout posref: ``B`` batch, ``H`` heads, ``T``
query positions, ``S`` key positions, ``D`` features per head.
"""

from __future__ import annotations

import numpy as np

from posref import _arith, _difference
from posref._spec import spec
from posref._validate import ensure_array, ensure_real
from posref.relative._common import _head_matrix, _query_key_positions

__all__ = ["fire_normalized_distance", "fire_bias"]

FIRE_REFERENCE = (
    "S. Li, C. You, G. Guruganesh, J. Ainslie, S. Ontanon, M. Zaheer, S. Sanghai, Y. Yang, "
    "S. Kumar, S. Bhojanapalli, 'Functional Interpolation for Relative Positions Improves "
    "Long Context Transformers', 2023, arXiv:2310.04418"
)


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
