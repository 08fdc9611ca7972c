r"""Fixed sinusoidal absolute position encodings.

:func:`sinusoidal_encoding`, the sine/cosine table of "Attention Is All You
Need", with the conventions in which libraries differ (frequency exponent,
channel layout, first position) as named parameters.  The harmonics of one
base period, :func:`~posref.fourier_features`, are the family ``fourier``
and live in :mod:`posref.fourier`.

Shape letters used throughout posref: ``B`` batch, ``H`` heads, ``T`` query
positions, ``S`` key positions, ``D`` features per head.
"""

from __future__ import annotations

import numpy as np

from posref import _arith
from posref._spec import spec
from posref._validate import ensure_choice, ensure_int, ensure_positions, ensure_real

__all__ = ["sinusoidal_encoding"]

LAYOUTS = ("interleaved", "concat")
FREQ_DENOMINATORS = ("dim", "half_dim_minus_one")

SINUSOIDAL_REFERENCE = (
    "A. Vaswani, N. Shazeer, N. Parmar, J. Uszkoreit, L. Jones, A. N. Gomez, L. Kaiser, "
    "I. Polosukhin, 'Attention Is All You Need', 2017, arXiv:1706.03762, section 3.5"
)


def _sinusoidal_frequencies(dim, base, freq_denominator):
    """Angular frequencies omega_i, i = 0 .. dim/2 - 1 (arguments already checked)."""
    half = dim // 2
    i = np.arange(half, dtype=np.float64)
    if freq_denominator == "dim":
        exponent = 2.0 * i / dim
    else:
        # tensor2tensor guards the single-frequency case (dim == 2) with
        # max(., 1); the numerator is then 0, so omega_0 = 1 either way.
        exponent = i / max(half - 1, 1)
    return _arith.power(base, -exponent)


@spec(family="sinusoidal", reference=SINUSOIDAL_REFERENCE)
def sinusoidal_encoding(
    positions,
    dim,
    /,
    *,
    base=10_000.0,
    layout="interleaved",
    freq_denominator="dim",
    position_offset=0,
):
    r"""Sinusoidal absolute position encoding of "Attention Is All You Need".

    Each position :math:`p` is mapped to ``dim`` features: the sine and the
    cosine of :math:`p` times ``dim/2`` frequencies that fall geometrically
    from 1 to about ``1/base``.  The encoding of :math:`p + k` is a fixed
    rotation of the encoding of :math:`p`, whatever :math:`p` is.

    Parameters
    ----------
    positions : array_like of real, shape ``(...)``
        Token positions, finite.  Fractional and negative values are
        accepted: the formula is defined for every real position
        (Transformer-XL feeds relative distances to the same table).
    dim : int
        Number of features :math:`d` per position; positive and even.
        Odd widths are rejected, see Notes.
    base : float, keyword-only
        The base :math:`b` (``max_timescale`` in tensor2tensor,
        ``max_wavelength`` in keras-hub), greater than 1.  The paper uses
        10000.
    layout : {"interleaved", "concat"}, keyword-only
        Where the sine and cosine of frequency :math:`i` are stored.
        ``"interleaved"`` (the paper; Hugging Face DistilBERT and XLM;
        keras-hub ``SinePositionEncoding``): channels :math:`2i` and
        :math:`2i+1`.  ``"concat"`` (tensor2tensor
        ``get_timing_signal_1d``, fairseq ``SinusoidalPositionalEmbedding``,
        Hugging Face Marian, Transformer-XL, x-transformers): channels
        :math:`i` and :math:`d/2 + i`, that is ``[sin | cos]``.  The two
        layouts are channel permutations of each other.
    freq_denominator : {"dim", "half_dim_minus_one"}, keyword-only
        The denominator of the frequency exponent.  ``"dim"`` (the paper,
        DistilBERT/XLM, Marian, keras-hub, Transformer-XL, x-transformers):
        :math:`\omega_i = b^{-2i/d}`.  ``"half_dim_minus_one"``
        (tensor2tensor, fairseq and its ports such as Hugging Face FSMT):
        :math:`\omega_i = b^{-i/(d/2-1)}`, so that the lowest frequency is
        exactly :math:`1/b`.
    position_offset : int, keyword-only
        Integer added to every position before encoding.  fairseq numbers
        the first non-padding token ``padding_idx + 1``
        (``position_offset=padding_idx + 1`` reproduces it); tensor2tensor
        calls it ``start_index``; a decoder with a cache of ``L`` earlier
        tokens uses ``L``.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``positions.shape + (dim,)``.

    Raises
    ------
    TypeError
        If ``positions`` is not a real numeric array, ``dim`` or
        ``position_offset`` is not an integer, or ``base`` is not a real
        number.
    ValueError
        If ``positions`` holds NaN or infinity, ``dim`` is not positive and
        even, ``base <= 1``, or ``layout`` or ``freq_denominator`` is not
        one of the listed values.

    See Also
    --------
    fourier_features : Harmonics of one base period.
    rope_frequencies : The same frequencies (``freq_denominator="dim"``)
        used as rotation speeds.

    Notes
    -----
    With :math:`q = p + \text{position\_offset}` and the ``"interleaved"``
    layout,

    .. math::

        \mathrm{PE}(q, 2i) = \sin(q\,\omega_i), \qquad
        \mathrm{PE}(q, 2i+1) = \cos(q\,\omega_i), \qquad
        i = 0, \dots, d/2 - 1,

    where

    .. math::

        \omega_i = b^{-2i/d} \quad (\texttt{"dim"}), \qquad
        \omega_i = b^{-i/\max(d/2-1,\,1)} \quad
        (\texttt{"half\_dim\_minus\_one"}).

    The ``"concat"`` layout stores :math:`\sin(q\,\omega_i)` in channel
    :math:`i` and :math:`\cos(q\,\omega_i)` in channel :math:`d/2 + i`.

    Convention for small widths: with ``"half_dim_minus_one"`` and
    ``dim == 2`` the only frequency is :math:`\omega_0 = 1`, as in
    tensor2tensor (which divides by :math:`\max(d/2-1, 1)`); fairseq's
    ``get_embedding`` divides by :math:`d/2 - 1 = 0` there and fails.

    Convention for odd widths: posref rejects an odd ``dim``.  Libraries
    disagree: tensor2tensor and fairseq compute ``dim // 2`` frequencies
    and append one zero channel, which equals
    ``sinusoidal_encoding(p, dim - 1, layout="concat",
    freq_denominator="half_dim_minus_one")`` followed by a zero column;
    DistilBERT/XLM and Marian instead evaluate the paper's formula for every
    channel below ``dim``, which leaves one extra sine channel with
    frequency :math:`b^{-(d-1)/d}`.

    Not modelled here: fairseq also zeroes the table row of its padding
    index (mask padded tokens outside this function), and keras-hub casts
    positions to the layer's compute dtype before multiplying.

    Precision: :math:`\omega_i` and the angle :math:`q\,\omega_i` are
    each rounded in float64, so the absolute error grows with the angle,
    to about :math:`10^{-10}` at :math:`q = 10^6` (measured against
    40-digit arithmetic for ``dim=512``).

    References
    ----------
    .. [1] A. Vaswani et al., "Attention Is All You Need", 2017,
       arXiv:1706.03762, section 3.5.

    Examples
    --------
    With ``base=100`` the two frequencies of ``dim=4`` are 1 and 0.1:

    >>> from posref import sinusoidal_encoding
    >>> sinusoidal_encoding([0, 1], 4, base=100.0).round(4)
    array([[0.    , 1.    , 0.    , 1.    ],
           [0.8415, 0.5403, 0.0998, 0.995 ]])
    >>> sinusoidal_encoding([1], 4, base=100.0, layout="concat").round(4)
    array([[0.8415, 0.0998, 0.5403, 0.995 ]])
    """
    positions = ensure_positions("positions", positions, integer=False, nonnegative=False)
    dim = ensure_int("dim", dim, minimum=1, even=True)
    base = ensure_real("base", base, exclusive_minimum=1.0)
    layout = ensure_choice("layout", layout, LAYOUTS)
    freq_denominator = ensure_choice("freq_denominator", freq_denominator, FREQ_DENOMINATORS)
    position_offset = ensure_int("position_offset", position_offset)

    omega = _sinusoidal_frequencies(dim, base, freq_denominator)  # (dim/2,)
    q = positions + float(position_offset)
    angle = q[..., None] * omega  # (..., dim/2)
    sin, cos = _arith.sin(angle), _arith.cos(angle)
    if layout == "concat":
        return np.concatenate([sin, cos], axis=-1)  # (..., dim)
    pe = np.empty(angle.shape[:-1] + (dim,), dtype=np.float64)
    pe[..., 0::2] = sin
    pe[..., 1::2] = cos
    return pe


# fourier_features lived here before the family had its own module; the import keeps
# posref.sinusoidal.fourier_features working.  It comes after sinusoidal_encoding so that the
# catalogue (posref.SPEC_FUNCTIONS) keeps its order.
from posref.fourier import FOURIER_REFERENCE, fourier_features  # noqa: E402, F401
