r"""Fourier position embedding (FoPE).

FoPE replaces the single cosine and sine of each RoPE pair by a Fourier
series over the RoPE frequencies, and zeroes the frequencies too low to
complete one period within the training length.  Shape letters: ``B``
batch, ``H`` heads, ``T`` query positions, ``D`` features per head.
"""

from __future__ import annotations

import numpy as np

from posref import _arith
from posref._spec import spec
from posref._validate import ensure_array, ensure_int, ensure_positions, ensure_real, ensure_same_shape
from posref.rope import (
    _array_tables,
    _check_positions_against,
    _float_view,
    _in_threads,
    _rotate,
    _x_error_first,
    rope_frequencies,
)

__all__ = ["fope_frequencies", "apply_fope"]

FOPE_REFERENCE = (
    "E. Hua, C. Jiang, X. Lv, K. Zhang, Y. Sun, Y. Fan, X. Zhu, B. Qi, N. Ding, B. Zhou, "
    "'Fourier Position Embedding: Enhancing Attention's Periodic Extension for Length "
    "Generalization', 2024, arXiv:2412.17739 (ICML 2025)"
)


@spec(family="fope", reference=FOPE_REFERENCE)
def fope_frequencies(dim, /, *, base=10_000.0, max_sequence_length, floor_ratio=1.0):
    r"""RoPE frequencies with those below the floor frequency set to zero.

    A frequency whose period is longer than the training length is never
    seen through a full turn during training; FoPE clamps every such
    :math:`\theta_i` to zero (the "clamp floor to zero" of the paper).
    The frequencies FoPE keeps are exactly the non-zero entries of the
    result (every RoPE frequency is positive): ``theta > 0`` is the mask
    and ``np.count_nonzero(theta)`` their number :math:`K`; they are the
    first :math:`K` entries, since :math:`\theta_i` decreases with
    :math:`i`.

    Parameters
    ----------
    dim : int
        Number of channels the RoPE frequencies are computed for (the
        exponent's denominator); positive and even.  Usually the head
        dimension; the paper's code uses ``max(fourier_dim, head_dim)``.
    base : float, keyword-only
        The base of :func:`~posref.rope_frequencies`, greater than 1.
    max_sequence_length : int, keyword-only, required
        The training length :math:`L` (``max_sequence_length`` in the
        paper's code, ``max_position_embeddings`` in vLLM); positive.
    floor_ratio : float, keyword-only
        Non-negative multiplier :math:`\rho` of the floor frequency
        (``rope_floor_freq_ratio`` in the paper's code), default 1.0;
        0 keeps every frequency.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(dim // 2,)``: :math:`\theta_i`, or 0
        where it is clamped.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If ``dim`` is not positive and even, ``base <= 1``,
        ``max_sequence_length < 1`` or ``floor_ratio < 0``.

    See Also
    --------
    apply_fope : The Fourier series built on the kept frequencies.

    Notes
    -----
    .. math::

        \theta_i' = \begin{cases}
            \theta_i & \text{if } \theta_i \ge 2\pi\rho / L \\
            0 & \text{otherwise}
        \end{cases}
        \qquad \theta_i = \text{base}^{-2i/\text{dim}},
        \quad i = 0, \dots, \text{dim}/2 - 1

    The paper's code (``rope_clamp_floor_freq``,
    ``rope_clamp_floor_to_zero``) zeroes :math:`\theta_i < 2\pi\rho/L`;
    vLLM's ``FourierRotaryEmbedding`` keeps :math:`\theta_i > 2\pi/L`
    (no ratio).  The two differ only for a frequency exactly equal to
    the floor.  vLLM can instead keep the first ``num_inv_freq``
    frequencies; that count is not expressible through a floor.

    References
    ----------
    .. [1] E. Hua et al., "Fourier Position Embedding: Enhancing
       Attention's Periodic Extension for Length Generalization", 2024,
       arXiv:2412.17739 (ICML 2025).

    Examples
    --------
    With :math:`L = 1000` the floor is :math:`2\pi/1000 \approx 0.00628`,
    so 0.001 is clamped:

    >>> from posref import fope_frequencies
    >>> fope_frequencies(8, base=10_000.0, max_sequence_length=1000)
    array([1.  , 0.1 , 0.01, 0.  ])
    """
    dim = ensure_int("dim", dim, minimum=1, even=True)
    base = ensure_real("base", base, exclusive_minimum=1.0)
    max_sequence_length = ensure_int("max_sequence_length", max_sequence_length, minimum=1)
    floor_ratio = ensure_real("floor_ratio", floor_ratio, minimum=0.0)
    theta = rope_frequencies(dim, base=base)
    floor = 2.0 * np.pi / max_sequence_length * floor_ratio
    return np.where(theta < floor, 0.0, theta)


def _kept_frequencies(dim, base, max_sequence_length, floor_ratio):
    theta = fope_frequencies(dim, base=base, max_sequence_length=max_sequence_length, floor_ratio=floor_ratio)
    return theta[theta > 0]


@spec(family="fope", reference=FOPE_REFERENCE)
def apply_fope(
    x,
    positions,
    sin_coef,
    cos_coef,
    /,
    *,
    base=10_000.0,
    max_sequence_length,
    floor_ratio=1.0,
    pad_sin=1.0,
    fourier_dim=None,
    position_offset=0,
):
    r"""Apply Fourier position embedding to queries or keys.

    Each of the first :math:`M` pairs of the half layout is rotated by a
    cosine and a sine that are no longer those of one angle but linear
    combinations (Fourier series) of the cosines and sines of all
    :math:`K` kept frequencies (:func:`fope_frequencies`), with the
    coefficients given.  The remaining :math:`D/2 - M` pairs use the
    padding values :math:`\cos = 1`, :math:`\sin = s_{\text{pad}}`.
    Nothing here is random: the coefficients, which the paper initialises
    randomly and may train, are inputs.

    Parameters
    ----------
    x : array_like of real, shape ``(..., D)``
        Features per head; ``D`` positive and even.  With per-head (3-D)
        coefficients the shape must be ``(..., H, T, D)``.
    positions : array_like of real
        Position of every token; non-negative, finite, fractional values
        allowed.  Its shape must broadcast to ``x.shape[:-1]`` without
        enlarging it: for ``x`` of shape ``(B, H, T, D)`` pass ``(T,)``
        or ``(B, 1, T)``.
    sin_coef, cos_coef : array_like of real, shape ``(K, M)`` or ``(H, K, M)``
        Coefficients :math:`S` and :math:`C` of the sine and cosine
        series; the same shape.  ``K`` must equal the number of kept
        frequencies, ``M`` (the number of output pairs) is between 0 and
        ``D/2``.  A 2-D array is shared by every head (the paper's
        ``fourier_separate_head=False``); a 3-D array holds one matrix per
        head and requires ``H == x.shape[-3]``.  For grouped-query
        attention, where vLLM stores one matrix per key/value head,
        expand them for the query heads with
        ``np.repeat(coef, H // H_kv, axis=0)`` (query head ``h`` uses
        key/value head ``h // (H // H_kv)``).  The paper's code uses
        ``M = min(K, D // 4)``, vLLM ``M = K``.
    base : float, keyword-only
        The base of :func:`~posref.rope_frequencies`, greater than 1.
    max_sequence_length : int, keyword-only, required
        The training length :math:`L` of :func:`fope_frequencies`.
    floor_ratio : float, keyword-only
        The floor multiplier of :func:`fope_frequencies`, default 1.0.
    pad_sin : float, keyword-only
        The sine :math:`s_{\text{pad}}` of the padded pairs ``M .. D/2-1``
        (their cosine is 1).  Default 1.0, the paper's code (which pads
        both series with ones, so a padded pair becomes
        :math:`(x_a - x_b, x_b + x_a)`); vLLM pads the sine with 0.0, so
        padded pairs pass through unchanged.
    fourier_dim : int or None, keyword-only
        The ``dim`` of :func:`fope_frequencies`, positive and even; it may
        exceed ``D``.  ``None`` (default) means ``D``.  The paper's code
        uses ``max(fourier_dim, head_dim)``; vLLM uses ``rotary_dim``.
    position_offset : float, keyword-only
        Non-negative offset added to every position (tokens already in a
        KV cache), default 0; see :func:`~posref.apply_rope`.

    Returns
    -------
    numpy.ndarray
        float64 array of the same shape as ``x``.

    Raises
    ------
    TypeError
        If an array argument is not real and numeric, or an option has the
        wrong type.
    ValueError
        If ``D`` is odd or zero; ``positions`` is negative, non-finite or
        does not broadcast to ``x.shape[:-1]``; the coefficients are not
        2-D or 3-D, differ in shape, have a ``K`` other than the number of
        kept frequencies, more than ``D/2`` columns, or (3-D) a head count
        other than ``x.shape[-3]``; or an option is out of range.

    See Also
    --------
    fope_frequencies : Which frequencies are kept.
    posref.apply_rope : The special case of identity coefficients.

    Notes
    -----
    With :math:`\theta_k` the kept frequencies, :math:`\phi_k = (p + p_0)
    \theta_k` and :math:`j = 0, \dots, D/2 - 1`:

    .. math::

        c_j = \begin{cases} \sum_{k=0}^{K-1} C_{kj} \cos\phi_k & j < M \\
              1 & j \ge M \end{cases}
        \qquad
        s_j = \begin{cases} \sum_{k=0}^{K-1} S_{kj} \sin\phi_k & j < M \\
              s_{\text{pad}} & j \ge M \end{cases}

    .. math::

        y = x \odot [c, c] + \operatorname{rotate\_half}(x) \odot [s, s],
        \qquad \operatorname{rotate\_half}(x_a, x_b) = (-x_b, x_a)

    so pair :math:`j` (channels :math:`j` and :math:`j + D/2`) becomes
    :math:`(c_j x_j - s_j x_{j+D/2},\ c_j x_{j+D/2} + s_j x_j)`.  With
    :math:`K = M = D/2` (nothing clamped, ``fourier_dim = D``) and
    :math:`C = S = I` this is RoPE in the half layout, the only layout
    FoPE is defined in.  The paper's code computes in float32 with
    autocast disabled.  Only the paper's default
    ``fourier_ignore_zero=True`` (clamped frequencies dropped from the
    series) is covered.

    References
    ----------
    .. [1] E. Hua et al., "Fourier Position Embedding: Enhancing
       Attention's Periodic Extension for Length Generalization", 2024,
       arXiv:2412.17739 (ICML 2025).

    Examples
    --------
    ``D = 4`` and :math:`L = 100`: the frequencies are 1 and 0.01, the
    floor is :math:`2\pi/100`, so one frequency is kept (``K = 1``).  At
    position 0 with a 1 x 1 identity series, pair 0 does not turn and the
    padded pair 1 (channels 1 and 3) shows the padding convention:

    >>> import numpy as np
    >>> from posref import apply_fope
    >>> x = np.array([1.0, 2.0, 3.0, 4.0])
    >>> eye = np.eye(1)
    >>> apply_fope(x, 0, eye, eye, max_sequence_length=100)
    array([ 1., -2.,  3.,  6.])
    >>> apply_fope(x, 0, eye, eye, max_sequence_length=100, pad_sin=0.0)
    array([1., 2., 3., 4.])
    """
    x, x_checked = _float_view("x", x)
    with _x_error_first("x", x, x_checked):
        positions = ensure_positions("positions", positions, integer=False)
        sin_coef = ensure_array("sin_coef", sin_coef, ndim=(2, 3))
        cos_coef = ensure_array("cos_coef", cos_coef, ndim=(2, 3))
        ensure_same_shape(("sin_coef", "cos_coef"), (sin_coef, cos_coef))
        base = ensure_real("base", base, exclusive_minimum=1.0)
        max_sequence_length = ensure_int("max_sequence_length", max_sequence_length, minimum=1)
        floor_ratio = ensure_real("floor_ratio", floor_ratio, minimum=0.0)
        pad_sin = ensure_real("pad_sin", pad_sin)
        position_offset = ensure_real("position_offset", position_offset, minimum=0.0)
        head_dim = x.shape[-1]
        if head_dim == 0 or head_dim % 2:
            raise ValueError(f"x must have an even, non-zero last dimension (head_dim D), got shape {x.shape}")
        if fourier_dim is None:
            fourier_dim = head_dim
        else:
            fourier_dim = ensure_int("fourier_dim", fourier_dim, minimum=1, even=True)
        _check_positions_against(positions, x)
        theta = _kept_frequencies(fourier_dim, base, max_sequence_length, floor_ratio)  # (K,)
        num_kept, num_out = theta.shape[0], sin_coef.shape[-1]
        if sin_coef.shape[-2] != num_kept:
            raise ValueError(
                f"sin_coef and cos_coef must have K = {num_kept} rows, the number of frequencies "
                f"fope_frequencies({fourier_dim}, base={base}, max_sequence_length={max_sequence_length}, "
                f"floor_ratio={floor_ratio}) keeps, got shape {sin_coef.shape}"
            )
        if num_out > head_dim // 2:
            raise ValueError(
                f"sin_coef and cos_coef must have at most {head_dim // 2} columns (M <= D/2 output pairs "
                f"for x of shape {x.shape}), got shape {sin_coef.shape}"
            )
        if sin_coef.ndim == 3:
            if x.ndim < 3:
                raise ValueError(
                    f"x must have shape (..., H, T, D) when the coefficients are per head (3-D), got shape {x.shape}"
                )
            if sin_coef.shape[0] != x.shape[-3]:
                raise ValueError(
                    f"sin_coef and cos_coef must have one matrix per head, H = x.shape[-3] = {x.shape[-3]}, "
                    f"got shape {sin_coef.shape} for x of shape {x.shape}"
                )

    # The plain formula evaluates the series at positions broadcast to x.shape[:-1]; the values depend on
    # the position (and, with per-head coefficients, the head) only, so they are evaluated once per
    # distinct (position, head) and broadcast by _rotate.
    rows = positions.shape if sin_coef.ndim == 2 else np.broadcast_shapes(positions.shape, (x.shape[-3], 1))
    p = np.broadcast_to(positions + position_offset, rows)  # (..., [H,] T)
    phi = p[..., None] * theta  # (..., K)

    def series(some):  # the sums at the angles ``some`` of some rows, each row on its own
        if sin_coef.ndim == 2:
            return (_arith.einsum("...k,km->...m", _arith.sin(some), sin_coef),  # (..., M)
                    _arith.einsum("...k,km->...m", _arith.cos(some), cos_coef))
        return (_arith.einsum("...htk,hkm->...htm", _arith.sin(some), sin_coef),  # (..., H, T, M)
                _arith.einsum("...htk,hkm->...htm", _arith.cos(some), cos_coef))

    length = rows[-1] if rows else 0
    if length >= 4:  # two halves of the last row axis in two threads, each with at least two rows
        halves = _in_threads([lambda part=part: series(phi[..., part, :]) for part in
                              (slice(0, length // 2), slice(length // 2, length))], x.size)
        sin_f, cos_f = (np.concatenate([half[i] for half in halves], axis=-2) for i in (0, 1))
    else:
        sin_f, cos_f = series(phi)
    pad_shape = rows + (head_dim // 2 - num_out,)
    sin_f = np.concatenate([sin_f, np.full(pad_shape, pad_sin)], axis=-1)  # (..., D/2)
    cos_f = np.concatenate([cos_f, np.ones(pad_shape)], axis=-1)
    half = head_dim // 2
    # x * [c, c] + rotate_half(x) * [s, s], rotate_half(x) = [-x_b, x_a]: pair j turns into
    # (x_a c - x_b s, x_b c + x_a s), the rotation of apply_rope's half layout
    return _rotate(x, _array_tables(cos_f, sin_f), "half", slice(0, half), slice(half, head_dim),
                   check_x=None if x_checked else "x")
