r"""xPos: rotary position embedding with an exponential decay per pair.

xPos multiplies the rotary pair :math:`i` of a query at position
:math:`m` by :math:`\zeta_i^{m/B}` and of a key at position :math:`n` by
:math:`\zeta_i^{-n/B}`, with :math:`0 < \zeta_i < 1`.  The score of the
pair then carries :math:`\zeta_i^{(m - n)/B}`, which decays with the
distance for :math:`m > n` and depends on the positions only through
:math:`m - n`.

Implementations centre the positions used in the *scale* (not in the
rotation) to keep :math:`\zeta^{\pm p/B}` within floating-point range;
they centre differently, which changes every rotated query and key but
not their dot products.  ``centering`` names the choice.
"""

from __future__ import annotations

import math

import numpy as np

from posref import _arith
from posref._spec import helper, spec
from posref._validate import ensure_bool, ensure_choice, ensure_int, ensure_positions, ensure_real
from posref.rope import LAYOUTS, _all_pairs, _angle_tables, _float_view, _rotate, _x_error_first, rope_frequencies

__all__ = ["xpos_scales", "apply_xpos"]

CENTERINGS = ("ceil_half", "floor_half", "none")

XPOS_REFERENCE = (
    "Y. Sun, L. Dong, B. Patra, S. Ma, S. Huang, A. Benhaim, V. Chaudhary, X. Song, F. Wei, "
    "'A Length-Extrapolatable Transformer', 2022, arXiv:2212.10554"
)

#: Largest |exponent| of exp() allowed for the scale; exp(700) ~ 1e304.
_MAX_LOG_SCALE = 700.0


def _zeta(dim):
    """Per-pair decay base (2i + 0.4 d) / (1.4 d), shape (dim/2,)."""
    i = np.arange(dim // 2, dtype=np.float64)
    return (2.0 * i + 0.4 * dim) / (1.4 * dim)


@helper(family="xpos")
def xpos_zeta(dim, /):
    r"""Per-pair decay bases :math:`\zeta_i` of xPos.

    .. math::

        \zeta_i = \frac{2i + 0.4\,d}{1.4\,d}, \qquad i = 0, \dots, d/2 - 1

    They rise from :math:`2/7` towards 1.  :func:`xpos_scales` is
    :math:`\zeta_i` raised to :func:`xpos_exponents`.  A helper, not a spec
    function: it has no golden cases.

    Parameters
    ----------
    dim : int
        Number of rotated channels :math:`d`, positive and even.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(dim // 2,)``.

    Raises
    ------
    TypeError
        If ``dim`` is not an integer.
    ValueError
        If ``dim`` is not positive and even.

    See Also
    --------
    xpos_scales, xpos_exponents

    Examples
    --------
    >>> from posref.xpos import xpos_zeta
    >>> xpos_zeta(4)  # 1.6 / 5.6 and 3.6 / 5.6
    array([0.28571429, 0.64285714])
    """
    dim = ensure_int("dim", dim, minimum=1, even=True)
    return _zeta(dim)


@helper(family="xpos")
def xpos_exponents(positions, /, *, scale_base=512.0, centering="ceil_half", sequence_length=None):
    r"""Exponents :math:`c(p)/B` of the xPos query scale at the given positions.

    :math:`c(p)` is the centred position of :func:`xpos_scales` and
    :math:`B` the ``scale_base``.  The query scale of pair :math:`i` is
    :math:`\zeta_i^{\,c(p)/B}` (:func:`xpos_zeta`), the key scale its
    reciprocal:

    .. math::

        e(p) = \frac{c(p)}{B}, \qquad
        \text{scale}_{p,i} = \zeta_i^{\,\pm e(p)}

    A helper, not a spec function: it has no golden cases.

    Parameters
    ----------
    positions : array_like of int, shape ``(...)``
        Token positions; non-negative integers.
    scale_base, centering, sequence_length : keyword-only
        As in :func:`xpos_scales`.

    Returns
    -------
    numpy.ndarray
        float64 array of the shape of ``positions``.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        Where :func:`xpos_scales` raises: ``positions`` negative or not
        integers, ``scale_base <= 0``, ``centering`` unknown,
        ``sequence_length`` not above every position, or a scale that
        would overflow float64.

    See Also
    --------
    xpos_scales, xpos_zeta

    Examples
    --------
    Five positions centre on ``-3 .. 1`` (``"ceil_half"``) or ``-2 .. 2``:

    >>> from posref.xpos import xpos_exponents
    >>> xpos_exponents([0, 1, 2, 3, 4], scale_base=2.0)
    array([-1.5, -1. , -0.5,  0. ,  0.5])
    >>> xpos_exponents([0, 1, 2, 3, 4], scale_base=2.0, centering="floor_half")
    array([-1. , -0.5,  0. ,  0.5,  1. ])
    """
    positions = ensure_positions("positions", positions, integer=True)
    scale_base, centred, _ = _check_xpos_options(positions, scale_base, centering, sequence_length, False)
    return np.asarray(centred / scale_base)  # a 0-D array, not a scalar, for 0-D positions


def _check_xpos_options(positions, scale_base, centering, sequence_length, downscale):
    scale_base = ensure_real("scale_base", scale_base, exclusive_minimum=0.0)
    centering = ensure_choice("centering", centering, CENTERINGS)
    if sequence_length is not None:
        sequence_length = ensure_int("sequence_length", sequence_length, minimum=1)
    downscale = ensure_bool("downscale", downscale)
    largest = int(positions.max()) if positions.size else -1
    if sequence_length is None:
        sequence_length = largest + 1
    elif largest >= sequence_length:
        raise ValueError(
            f"sequence_length must be greater than every position (largest position {largest}), "
            f"got sequence_length={sequence_length}"
        )
    if centering == "ceil_half":
        shift = -(-sequence_length // 2)
    elif centering == "floor_half":
        shift = sequence_length // 2
    else:
        shift = 0
    centred = positions - shift
    if centred.size:
        worst = int(np.abs(centred).max())
        # |ln zeta_i| is largest for i = 0, where zeta_0 = 2/7 for every dim
        if worst / scale_base * math.log(3.5) > _MAX_LOG_SCALE:
            raise ValueError(
                f"positions are too far from the centre for scale_base={scale_base}: the scale "
                f"(2/7)**({worst}/scale_base) is not representable in float64; need "
                f"|centred position| <= {math.floor(_MAX_LOG_SCALE / math.log(3.5) * scale_base)}"
            )
    return scale_base, centred, downscale


@spec(family="xpos", reference=XPOS_REFERENCE)
def xpos_scales(positions, dim, /, *, scale_base=512.0, centering="ceil_half", sequence_length=None, downscale=False):
    r"""Per-pair xPos scale factors at the given positions.

    Parameters
    ----------
    positions : array_like of int, shape ``(...)``
        Token positions; non-negative integers.
    dim : int
        Number of rotated channels :math:`d` (the head dimension in every
        implementation surveyed); positive and even.
    scale_base : float, keyword-only
        :math:`B > 0`, default 512 (torchscale, rotary-embedding-torch
        ``xpos_scale_base``, x-transformers ``scale_base``; flash-attn
        ``scale_base`` has no default and disables xPos when ``None``).
    centering : {"ceil_half", "floor_half", "none"}, keyword-only
        How a position :math:`p` becomes the exponent position :math:`c`,
        with :math:`N` the ``sequence_length``:

        * ``"ceil_half"`` (default): :math:`c = p - \lceil N/2 \rceil`,
          torchscale ``XPOS`` (the authors' code), whose scale positions
          start at ``min_pos = -N // 2`` (Python floor division of
          :math:`-N`).  For :math:`N = 5`: ``-3 .. 1``.
        * ``"floor_half"``: :math:`c = p - \lfloor N/2 \rfloor`,
          rotary-embedding-torch (``t - len(t) // 2``), x-transformers
          (``t - max_pos // 2``) and flash-attn (``arange(seqlen) -
          seqlen // 2``, with ``seqlen`` the length of its cos/sin cache).
          For :math:`N = 5`: ``-2 .. 2``.
        * ``"none"``: :math:`c = p`, the formula as the paper writes it.

        All three give the same query-key products; the two halves agree
        for even :math:`N`.
    sequence_length : int or None, keyword-only
        :math:`N`, greater than every position; ``None`` (default) means
        ``max(positions) + 1`` (0 for empty positions).  torchscale uses
        the key length including the cached prefix (``length + offset``),
        flash-attn the length of its cache.
    downscale : bool, keyword-only
        Return the key scale :math:`\zeta^{-c/B}` instead of the query
        scale :math:`\zeta^{c/B}` (torchscale ``downscale=True``).

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``positions.shape + (dim // 2,)``; entry
        ``[..., i]`` scales both channels of rotary pair :math:`i`.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If ``positions`` holds negative or non-integer values, ``dim`` is
        not positive and even, ``scale_base <= 0``, ``centering`` is
        unknown, ``sequence_length`` does not exceed every position, or a
        centred position is so far out that the scale overflows float64
        (:math:`|c| / B > 558` or so).

    See Also
    --------
    apply_xpos : Rotate and scale queries or keys.

    Notes
    -----
    .. math::

        \zeta_i = \frac{2i + 0.4\,d}{1.4\,d} = \frac{2i/d + \gamma}{1 + \gamma},
        \quad \gamma = 0.4, \qquad
        \text{scale}_{p,i} = \zeta_i^{\,c(p)/B}

    :math:`\zeta_i` rises from :math:`2/7` (fastest decay, highest
    frequency) towards 1 (slowest).

    References
    ----------
    .. [1] Y. Sun, L. Dong, B. Patra, S. Ma, S. Huang, A. Benhaim,
       V. Chaudhary, X. Song, F. Wei, "A Length-Extrapolatable
       Transformer", 2022, arXiv:2212.10554, section 3.

    Examples
    --------
    With :math:`d = 2` (:math:`\zeta_0 = 2/7`) and :math:`B = 1` the
    scales are powers of :math:`3.5`; five positions centre on
    ``-3 .. 1`` or ``-2 .. 2``:

    >>> from posref import xpos_scales
    >>> xpos_scales([0, 1, 2, 3, 4], 2, scale_base=1.0)[:, 0]
    array([42.875     , 12.25      ,  3.5       ,  1.        ,  0.28571429])
    >>> xpos_scales([0, 1, 2, 3, 4], 2, scale_base=1.0, centering="floor_half")[:, 0]
    array([12.25      ,  3.5       ,  1.        ,  0.28571429,  0.08163265])
    """
    positions = ensure_positions("positions", positions, integer=True)
    dim = ensure_int("dim", dim, minimum=1, even=True)
    scale_base, centred, downscale = _check_xpos_options(positions, scale_base, centering, sequence_length, downscale)
    return _scales(centred, _zeta(dim), scale_base, downscale)


def _scales(centred, zeta, scale_base, downscale):
    """The xPos factors of centred positions: zeta ** (c / B), or its reciprocal for keys."""
    scale = _arith.power(zeta, centred[..., None] / scale_base)  # (..., dim/2)
    return 1.0 / scale if downscale else scale


@spec(family="xpos", reference=XPOS_REFERENCE)
def apply_xpos(
    x,
    positions,
    /,
    *,
    base=10_000.0,
    scale_base=512.0,
    layout="interleaved",
    downscale=False,
    centering="ceil_half",
    sequence_length=None,
):
    r"""Apply xPos to queries (``downscale=False``) or keys (``downscale=True``).

    Each rotary pair is rotated by :math:`p\,\theta_i` as in RoPE, with the
    *uncentred* position :math:`p`, and then multiplied by the
    :func:`xpos_scales` factor of that pair.

    Parameters
    ----------
    x : array_like of real, shape ``(..., D)``
        Queries or keys, for example ``(B, H, T, D)``; ``D`` positive and
        even.  All ``D`` channels are rotated.
    positions : array_like of int
        Non-negative integer positions; the shape must broadcast to
        ``x.shape[:-1]`` without enlarging it (``(T,)`` for ``x`` of shape
        ``(B, H, T, D)``).
    base : float, keyword-only
        RoPE base, greater than 1; default 10000 (fixed in torchscale).
    scale_base : float, keyword-only
        :math:`B > 0`, default 512; see :func:`xpos_scales`.
    layout : {"half", "interleaved"}, keyword-only
        Channel pairing; see :func:`posref.apply_rotary`.  Default
        ``"interleaved"``: torchscale, rotary-embedding-torch and
        x-transformers pair channels ``2i, 2i+1``; flash-attn takes either
        (``interleaved=False`` is ``"half"``).  Both members of a pair get
        the pair's scale.
    downscale : bool, keyword-only
        ``False`` (default) multiplies by :math:`\zeta^{c/B}` (queries);
        ``True`` by :math:`\zeta^{-c/B}` (keys).
    centering : {"ceil_half", "floor_half", "none"}, keyword-only
        Centring of the scale positions; see :func:`xpos_scales`.
    sequence_length : int or None, keyword-only
        :math:`N` for the centring; ``None`` means ``max(positions) + 1``.
        Queries and keys must use the same :math:`N` for their product to
        depend only on :math:`m - n`.

    Returns
    -------
    numpy.ndarray
        float64 array of the same shape as ``x``.

    Raises
    ------
    TypeError
        If ``x`` or ``positions`` is not a real numeric array, or an
        option has the wrong type.
    ValueError
        If ``D`` is odd or zero, ``positions`` does not broadcast to
        ``x.shape[:-1]``, values are out of range, or an option is
        invalid (see :func:`xpos_scales`).

    See Also
    --------
    xpos_scales, posref.apply_rotary

    Notes
    -----
    For a query :math:`q` at :math:`m` and a key :math:`k` at :math:`n`,
    with pairs written as complex numbers :math:`q_i, k_i`:

    .. math::

        \tilde q_i = q_i\, e^{\mathrm{i} m \theta_i}\, \zeta_i^{c(m)/B},
        \qquad
        \tilde k_i = k_i\, e^{\mathrm{i} n \theta_i}\, \zeta_i^{-c(n)/B},
        \qquad
        \langle \tilde q, \tilde k \rangle = \sum_i \zeta_i^{(m - n)/B}\,
        \operatorname{Re}\!\big(q_i \bar k_i\, e^{\mathrm{i}(m - n)\theta_i}\big)

    since :math:`c(m) - c(n) = m - n` for every centring.

    References
    ----------
    .. [1] Y. Sun, L. Dong, B. Patra, S. Ma, S. Huang, A. Benhaim,
       V. Chaudhary, X. Song, F. Wei, "A Length-Extrapolatable
       Transformer", 2022, arXiv:2212.10554, section 3.

    Examples
    --------
    One pair (:math:`\theta_0 = 1`), query at 3 and key at 1, :math:`B = 1`:
    the score is :math:`(2/7)^2 \cos 2`, whatever the centring.

    >>> import math
    >>> from posref import apply_xpos
    >>> q = apply_xpos([[1.0, 0.0]], [3], scale_base=1.0, sequence_length=5)
    >>> k = apply_xpos([[1.0, 0.0]], [1], scale_base=1.0, sequence_length=5, downscale=True)
    >>> round(float(q[0] @ k[0]), 6), round((2 / 7) ** 2 * math.cos(2.0), 6)
    (-0.033971, -0.033971)
    """
    x, x_checked = _float_view("x", x)
    with _x_error_first("x", x, x_checked):
        positions = ensure_positions("positions", positions, integer=True)
        base = ensure_real("base", base, exclusive_minimum=1.0)
        layout = ensure_choice("layout", layout, LAYOUTS)
        d = x.shape[-1]
        if d == 0 or d % 2:
            raise ValueError(f"x must have an even, non-zero last dimension (D), got shape {x.shape}")
        target = x.shape[:-1]
        try:
            fits = np.broadcast_shapes(positions.shape, target) == target
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(
                f"positions must broadcast to x.shape[:-1] = {target}, got positions of shape "
                f"{positions.shape} for x of shape {x.shape}"
            )
        scale_base, centred, downscale = _check_xpos_options(positions, scale_base, centering, sequence_length,
                                                             downscale)
    theta, zeta = rope_frequencies(d, base=base), _zeta(d)

    def angles(index):  # rope_angles(positions, d) of some rows
        return positions[index].astype(np.float64)[..., None] * theta

    def scales(index):  # xpos_scales(positions, d, ...) of the same rows
        return _scales(centred[index], zeta, scale_base, downscale)

    # apply_rotary(x, rope_angles(positions, d), layout=layout) times xpos_scales(positions, d, ...)
    # repeated over both channels of each pair, block by block of rows
    tables = _angle_tables(angles, positions.shape, scales)
    return _rotate(x, tables, layout, *_all_pairs(d, layout), check_x=None if x_checked else "x")
