r"""Rotary position embedding (RoPE).

Shape letters used throughout posref: ``B`` batch, ``H`` heads, ``T`` query
positions, ``S`` key positions, ``D`` features per head.
"""

from __future__ import annotations

import numpy as np

from posref._spec import spec
from posref._validate import ensure_int, ensure_real

__all__ = ["rope_frequencies"]

ROPE_REFERENCE = (
    "J. Su, Y. Lu, S. Pan, A. Murtadha, B. Wen, Y. Liu, 'RoFormer: Enhanced Transformer "
    "with Rotary Position Embedding', 2021, arXiv:2104.09864"
)


@spec(family="rope", reference=ROPE_REFERENCE)
def rope_frequencies(dim, /, *, base=10_000.0):
    r"""Angular frequencies of the rotary pairs.

    .. math::

        \theta_i = \text{base}^{-2i/\text{dim}}, \qquad i = 0, \dots, \text{dim}/2 - 1

    Parameters
    ----------
    dim : int
        Number of rotated channels (the exponent's denominator); positive
        and even.  With partial rotary this is the rotated width, as in
        Hugging Face ``transformers`` and vLLM.
    base : float, keyword-only
        The base :math:`b` (``rope_theta`` in model configs), greater than 1.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(dim // 2,)``, decreasing from 1.

    Raises
    ------
    TypeError
        If ``dim`` is not an integer or ``base`` not a real number.
    ValueError
        If ``dim`` is not positive and even, or ``base <= 1``.

    References
    ----------
    .. [1] J. Su et al., "RoFormer: Enhanced Transformer with Rotary Position
       Embedding", 2021, arXiv:2104.09864, eq. (15).

    Examples
    --------
    >>> from posref import rope_frequencies
    >>> rope_frequencies(8, base=10_000.0)
    array([1.   , 0.1  , 0.01 , 0.001])
    """
    dim = ensure_int("dim", dim, minimum=1, even=True)
    base = ensure_real("base", base, exclusive_minimum=1.0)
    i = np.arange(dim // 2, dtype=np.float64)
    theta = base ** (-2.0 * i / dim)
    return theta
