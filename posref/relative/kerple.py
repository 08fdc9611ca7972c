r"""KERPLE: kernelised relative position biases, logarithmic and power.

The bias is a function of the query-minus-key distance :math:`\Delta`
(:func:`posref.relative.relative_distance`), one kernel per head.

Shape letters used throughout posref: ``B`` batch, ``H`` heads, ``T``
query positions, ``S`` key positions, ``D`` features per head.
"""

from __future__ import annotations

from posref import _arith, _difference
from posref._spec import spec
from posref._validate import ensure_bool
from posref.relative._common import (
    _causal_distance,
    _check_heads_match,
    _head_matrix,
    _head_vector,
    _offset_distance,
    _query_key_positions,
)

__all__ = ["kerple_log_bias", "kerple_power_bias"]

KERPLE_REFERENCE = (
    "T.-C. Chi, T.-H. Fan, P. J. Ramadge, A. I. Rudnicky, 'KERPLE: Kernelized Relative "
    "Positional Embedding for Length Extrapolation', 2022, arXiv:2205.09921"
)


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
