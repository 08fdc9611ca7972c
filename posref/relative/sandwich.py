r"""Sandwich: the inner product of two sinusoids as a relative bias, scaled per head.

The bias is a function of the query-minus-key distance :math:`\Delta`
(:func:`posref.relative.relative_distance`).

Shape letters used throughout posref: ``B`` batch, ``H`` heads, ``T``
query positions, ``S`` key positions, ``D`` features per head.
"""

from __future__ import annotations

import numpy as np

from posref import _arith, _difference
from posref._spec import spec
from posref._validate import ensure_bool, ensure_int, ensure_real
from posref.relative._common import _causal_distance, _head_matrix, _offset_distance, _query_key_positions

__all__ = ["sandwich_bias"]

SANDWICH_REFERENCE = (
    "T.-C. Chi, T.-H. Fan, A. I. Rudnicky, P. J. Ramadge, 'Dissecting Transformer Length "
    "Extrapolation via the Lens of Receptive Field Analysis', 2023, arXiv:2212.10356"
)


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
