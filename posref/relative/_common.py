r"""Private checks and helpers shared by the relative families, and their public distance.

:func:`relative_distance` is public (re-exported as
``posref.relative.relative_distance``); everything else here is private to
``posref.relative``.
"""

from __future__ import annotations

import numpy as np

from posref._spec import helper
from posref._validate import ensure_array, ensure_bool, ensure_positions, ensure_same_shape

__all__ = ["relative_distance"]


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


@helper(family="kerple")
def relative_distance(query_positions, key_positions, /, *, bidirectional=False):
    r"""Query-minus-key distance of every pair, with future keys at 0 unless bidirectional.

    The distance :math:`\Delta` of KERPLE (:func:`posref.kerple_log_bias`,
    :func:`posref.kerple_power_bias`) and Sandwich
    (:func:`posref.sandwich_bias`):

    .. math::

        \Delta_{ij} = \begin{cases}
        \max(p^q_i - p^k_j, 0) & \text{causal (default)} \\
        |p^q_i - p^k_j| & \text{bidirectional}
        \end{cases}

    Its sign is the opposite of posref's ``relative_position`` (key minus
    query).  A helper, not a spec function: it has no golden cases.

    Parameters
    ----------
    query_positions : array_like of real, shape ``(T,)``
        Query positions :math:`p^q`, non-negative and finite.
    key_positions : array_like of real, shape ``(S,)``
        Key positions :math:`p^k`, non-negative and finite.
    bidirectional : bool, keyword-only
        False (default): a key after its query gets distance 0.  True: the
        absolute difference.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(T, S)``, all values :math:`\ge 0`.

    Raises
    ------
    TypeError
        If positions are not real arrays or ``bidirectional`` is not a bool.
    ValueError
        If positions are negative, not finite or not 1-D.

    Examples
    --------
    >>> from posref.relative import relative_distance
    >>> relative_distance([2], [0, 1, 2, 3])
    array([[2., 1., 0., 0.]])
    >>> relative_distance([2], [0, 1, 2, 3], bidirectional=True)
    array([[2., 1., 0., 1.]])
    """
    query_positions, key_positions = _query_key_positions(query_positions, key_positions, integer=False)
    bidirectional = ensure_bool("bidirectional", bidirectional)
    return _causal_distance(query_positions, key_positions, bidirectional)
