r"""Rotary position embedding (RoPE).

Shape letters used throughout posref: ``B`` batch, ``H`` heads, ``T`` query
positions, ``S`` key positions, ``D`` features per head.
"""

from __future__ import annotations

import numpy as np

from posref._spec import spec
from posref._validate import ensure_array, ensure_choice, ensure_int, ensure_positions, ensure_real

__all__ = ["rope_frequencies", "rope_angles", "apply_rotary"]

LAYOUTS = ("half", "interleaved")

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


@spec(family="rope", reference=ROPE_REFERENCE)
def rope_angles(positions, dim, /, *, base=10_000.0):
    r"""Rotation angle of every rotary pair at every position.

    .. math::

        \phi_{p,i} = p\,\theta_i = p\,\text{base}^{-2i/\text{dim}}

    Parameters
    ----------
    positions : array_like of real, shape ``(...)``
        Token positions; non-negative, finite.  Fractional positions are
        allowed (position interpolation produces them).
    dim : int
        Number of rotated channels, positive and even.
    base : float, keyword-only
        The base of :func:`rope_frequencies`, greater than 1.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``positions.shape + (dim // 2,)``.

    Raises
    ------
    TypeError
        If ``positions`` is not a real array, or ``dim``/``base`` have the wrong type.
    ValueError
        If ``positions`` holds negative or non-finite values, ``dim`` is not
        positive and even, or ``base <= 1``.

    References
    ----------
    .. [1] J. Su et al., "RoFormer: Enhanced Transformer with Rotary Position
       Embedding", 2021, arXiv:2104.09864, eq. (15).

    Examples
    --------
    >>> from posref import rope_angles
    >>> rope_angles([0, 1, 2], 4, base=100.0)
    array([[0. , 0. ],
           [1. , 0.1],
           [2. , 0.2]])
    """
    positions = ensure_positions("positions", positions, integer=False)
    theta = rope_frequencies(dim, base=base)
    return positions[..., None] * theta  # (..., dim/2)


def _pair_views(x, layout):
    """Return the first and second member of every rotary pair, shape (..., D/2)."""
    half = x.shape[-1] // 2
    if layout == "half":
        return x[..., :half], x[..., half:]
    return x[..., 0::2], x[..., 1::2]


def _merge_pairs(first, second, layout):
    if layout == "half":
        return np.concatenate([first, second], axis=-1)
    out = np.empty(first.shape[:-1] + (2 * first.shape[-1],), dtype=np.float64)
    out[..., 0::2] = first
    out[..., 1::2] = second
    return out


@spec(family="rope", reference=ROPE_REFERENCE)
def apply_rotary(x, angles, /, *, layout="half"):
    r"""Rotate every channel pair of ``x`` by the given angles.

    For a pair :math:`(x_a, x_b)` and its angle :math:`\phi`:

    .. math::

        \begin{pmatrix} x_a' \\ x_b' \end{pmatrix} =
        \begin{pmatrix} \cos\phi & -\sin\phi \\ \sin\phi & \cos\phi \end{pmatrix}
        \begin{pmatrix} x_a \\ x_b \end{pmatrix}

    which is the complex product :math:`(x_a + i x_b)\,e^{i\phi}`.  The sign
    (rotation by :math:`+\phi`) is the one every implementation surveyed uses.

    Parameters
    ----------
    x : array_like of real, shape ``(..., D)``
        Features to rotate; ``D`` even.
    angles : array_like of real, shape broadcastable to ``x.shape[:-1] + (D // 2,)``
        Angle of pair ``i`` (for example from :func:`rope_angles`).
    layout : {"half", "interleaved"}, keyword-only
        Which channels form pair ``i``.  ``"half"`` pairs channel ``i`` with
        ``i + D/2`` (GPT-NeoX, Hugging Face Llama ``rotate_half``, vLLM
        ``is_neox_style=True``, ONNX ``interleaved=0``).  ``"interleaved"``
        pairs channels ``2i`` and ``2i+1`` (the paper, Meta's complex
        implementation, GPT-J, torchtune, rotary-embedding-torch,
        x-transformers, ONNX ``interleaved=1``).  The default is ``"half"``,
        the most common layout in deployed models; the two layouts are
        channel permutations of each other.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``broadcast(x.shape[:-1], angles.shape[:-1]) + (D,)``.

    Raises
    ------
    TypeError
        If ``x`` or ``angles`` is not a real numeric array.
    ValueError
        If ``D`` is odd or zero, ``angles`` has the wrong last dimension or
        does not broadcast against ``x``, values are not finite, or
        ``layout`` is unknown.

    References
    ----------
    .. [1] J. Su et al., "RoFormer: Enhanced Transformer with Rotary Position
       Embedding", 2021, arXiv:2104.09864, eq. (34).

    Examples
    --------
    A quarter turn of the pair (channel 0, channel 1):

    >>> import numpy as np
    >>> from posref import apply_rotary
    >>> apply_rotary([1.0, 0.0], [np.pi / 2], layout="half").round(12)
    array([0., 1.])
    """
    x = ensure_array("x", x, min_ndim=1)
    angles = ensure_array("angles", angles, min_ndim=1)
    layout = ensure_choice("layout", layout, LAYOUTS)
    d = x.shape[-1]
    if d == 0 or d % 2:
        raise ValueError(f"x must have an even, non-zero last dimension (D), got shape {x.shape}")
    if angles.shape[-1] != d // 2:
        raise ValueError(
            f"angles must have last dimension D/2 = {d // 2} to match x of shape {x.shape}, got shape {angles.shape}"
        )
    try:
        np.broadcast_shapes(x.shape[:-1], angles.shape[:-1])
    except ValueError:
        raise ValueError(
            f"angles of shape {angles.shape} does not broadcast against x of shape {x.shape}"
        ) from None
    cos, sin = np.cos(angles), np.sin(angles)
    x_a, x_b = _pair_views(x, layout)  # each (..., D/2)
    rotated_a = x_a * cos - x_b * sin
    rotated_b = x_b * cos + x_a * sin
    return _merge_pairs(rotated_a, rotated_b, layout)
