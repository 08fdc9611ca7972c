r"""Fourier features: the harmonics of one base period.

:func:`fourier_features` maps a position :math:`p` to
:math:`\cos(2\pi k p / N)`, :math:`k = 1, \dots, K`, with an optional sine
companion.  Unlike :func:`~posref.sinusoidal_encoding`, whose frequencies
are geometrically spaced, every feature here is periodic with the one period
:math:`N`.

Shape letters used throughout posref: ``B`` batch, ``H`` heads, ``T`` query
positions, ``S`` key positions, ``D`` features per head.
"""

from __future__ import annotations

import numpy as np

from posref import _arith
from posref._spec import spec
from posref._validate import ensure_bool, ensure_int, ensure_positions, ensure_real

__all__ = ["fourier_features"]

FOURIER_REFERENCE = (
    "M. Tancik, P. P. Srinivasan, B. Mildenhall, S. Fridovich-Keil, N. Raghavan, U. Singhal, "
    "R. Ramamoorthi, J. T. Barron, R. Ng, 'Fourier Features Let Networks Learn High Frequency "
    "Functions in Low Dimensional Domains', 2020, arXiv:2006.10739"
)


def _cos_sin_of_turns(numerator, period):
    r"""Return :math:`\cos` and :math:`\sin` of :math:`2\pi\,\text{numerator}/\text{period}`.

    The angle is reduced before any trigonometric call: ``np.fmod`` is exact
    in floating point, and a negative remainder is moved into ``[0, period]``
    by one addition of ``period`` (exact for integers), so values one period
    apart reduce to the same remainder.  The remainder is split into whole
    quarter turns (handled by swapping and negating) and a residual of at
    most an eighth of a turn; whole quarter turns therefore give exactly 0
    and +-1.
    """
    remainder = np.fmod(numerator, period)  # exact, |remainder| < period
    remainder = np.where(remainder < 0, remainder + period, remainder)  # in [0, period]
    quarter_turns = (remainder / period) * 4.0  # in [0, 4]; * 4 is exact
    quadrant = np.rint(quarter_turns)
    residual = (quarter_turns - quadrant) * (np.pi / 2.0)  # |residual| <= pi/4
    c, s = _arith.cos(residual), _arith.sin(residual)
    quadrant = np.mod(quadrant.astype(np.int64), 4)
    cos = np.choose(quadrant, [c, -s, -c, s])
    sin = np.choose(quadrant, [s, c, -s, -c])
    return cos + 0.0, sin + 0.0  # + 0.0 turns -0.0 into 0.0


@spec(family="fourier", reference=FOURIER_REFERENCE)
def fourier_features(positions, num_frequencies, /, *, period, include_sine=True):
    r"""Fourier features: the harmonics of one base period.

    Each position :math:`p` is mapped to :math:`\cos(2\pi k p / N)` for the
    harmonics :math:`k = 1, \dots, K` of the period :math:`N`, followed by
    the matching sines when ``include_sine`` is true.  Every feature is
    periodic in :math:`p` with period :math:`N`.

    Parameters
    ----------
    positions : array_like of real, shape ``(...)``
        Positions or coordinates :math:`p`, finite; fractional and negative
        values are accepted.
    num_frequencies : int
        Number of harmonics :math:`K`, positive.
    period : float, keyword-only
        The base period :math:`N`, a finite number greater than 0 (required,
        no default).
    include_sine : bool, keyword-only
        Append :math:`\sin(2\pi k p / N)` after the cosines (default
        ``True``).  With ``False`` only the cosines, the seed formula, are
        returned.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``positions.shape + (2 * num_frequencies,)``
        laid out ``[cos | sin]``, or ``positions.shape +
        (num_frequencies,)`` when ``include_sine`` is false.

    Raises
    ------
    TypeError
        If ``positions`` is not a real numeric array, ``num_frequencies``
        is not an integer, ``period`` is not a real number, or
        ``include_sine`` is not a bool.
    ValueError
        If ``positions`` holds NaN or infinity, ``num_frequencies < 1``, or
        ``period <= 0``.

    See Also
    --------
    sinusoidal_encoding : Geometrically spaced frequencies instead of
        harmonics.

    Notes
    -----
    .. math::

        \mathrm{FF}(p, k-1) = \cos\!\left(\frac{2\pi k p}{N}\right), \qquad
        \mathrm{FF}(p, K+k-1) = \sin\!\left(\frac{2\pi k p}{N}\right), \qquad
        k = 1, \dots, K,

    where :math:`N` is ``period`` and :math:`K` is ``num_frequencies``.

    Convention: the harmonics start at :math:`k = 1`.  The term
    :math:`k = 0` is the constant :math:`\cos 0 = 1` (and :math:`\sin 0 =
    0`); it carries no information about the position, and the Fourier
    feature mappings of [1]_ likewise start from a non-zero frequency.

    Naming: some write-ups of position encodings call the cosines
    :math:`\cos(2\pi k\,\mathrm{pos}/N)` "FoPE"; that formula is this
    function (with ``include_sine=False``).  It is not Fourier Position
    Embedding (E. Hua et al., 2024, arXiv:2412.17739), the RoPE variant
    posref implements as :func:`posref.apply_fope`.

    Layout: ``[cos | sin]``, all cosines first.  [1]_ writes the mapping as
    (cos, sin) pairs per frequency; code derived from its released
    notebooks often concatenates ``[sin | cos]``.  Both are channel
    permutations of this output.

    Precision: :math:`k p` is reduced modulo :math:`N` before the angle is
    formed (exactly, for integer :math:`k p` and :math:`N`), and whole
    quarter turns are taken out exactly, so integer positions give
    bit-identical results one period apart, positions that are multiples
    of :math:`N/4` give exactly 0 and :math:`\pm 1`, and the error does not
    grow with the position beyond the rounding of :math:`k p` itself.

    References
    ----------
    .. [1] M. Tancik et al., "Fourier Features Let Networks Learn High
       Frequency Functions in Low Dimensional Domains", 2020,
       arXiv:2006.10739, section 4.

    Examples
    --------
    Quarter periods give exact values (period 8, positions 0, 2, 4):

    >>> from posref import fourier_features
    >>> fourier_features([0, 2, 4], 2, period=8.0)
    array([[ 1.,  1.,  0.,  0.],
           [ 0., -1.,  1.,  0.],
           [-1.,  1.,  0.,  0.]])
    >>> fourier_features([1], 2, period=8.0, include_sine=False).round(4)
    array([[0.7071, 0.    ]])
    """
    positions = ensure_positions("positions", positions, integer=False, nonnegative=False)
    num_frequencies = ensure_int("num_frequencies", num_frequencies, minimum=1)
    period = ensure_real("period", period, exclusive_minimum=0.0)
    include_sine = ensure_bool("include_sine", include_sine)

    k = np.arange(1, num_frequencies + 1, dtype=np.float64)  # harmonics 1..K
    cos, sin = _cos_sin_of_turns(positions[..., None] * k, period)  # each (..., K)
    if not include_sine:
        return cos
    return np.concatenate([cos, sin], axis=-1)  # (..., 2K)
