r"""NoPE: no position encoding, as a case like any other, and the query temperature of NoPE layers.

Shape letters used throughout posref: ``B`` batch, ``H`` heads, ``T``
query positions, ``S`` key positions, ``D`` features per head.
"""

from __future__ import annotations

import numpy as np

from posref import _arith
from posref._spec import spec
from posref._validate import ensure_array, ensure_int, ensure_positions, ensure_real

__all__ = ["nope", "nope_attention_temperature"]

NOPE_REFERENCE = (
    "A. Kazemnejad, I. Padhi, K. Natesan Ramamurthy, P. Das, S. Reddy, 'The Impact of "
    "Positional Encoding on Length Generalization in Transformers', 2023, arXiv:2305.19466"
)


@spec(family="nope", reference=NOPE_REFERENCE)
def nope(x, positions, /):
    r"""No position encoding: return the features unchanged (as float64).

    .. math::

        x'_p = x_p

    NoPE is a causal decoder without any explicit position signal; causal
    masking alone lets it recover position.  This function exists so that
    "no encoding" is a case like any other: an implementation under test
    must leave ``x`` untouched whatever the positions.

    Parameters
    ----------
    x : array_like of real, shape ``(..., T, D)``
        Features (queries or keys).
    positions : array_like of int, shape broadcastable to ``x.shape[:-1]``
        Token positions, non-negative integers; checked, then ignored.

    Returns
    -------
    numpy.ndarray
        float64 copy of ``x``, same shape.

    Raises
    ------
    TypeError
        If ``x`` or ``positions`` is not a real numeric array.
    ValueError
        If ``x`` is 0-D or not finite, or ``positions`` are negative, not
        integers, or do not broadcast against ``x.shape[:-1]``.

    References
    ----------
    .. [1] A. Kazemnejad et al., "The Impact of Positional Encoding on
       Length Generalization in Transformers", 2023, arXiv:2305.19466.

    Examples
    --------
    >>> from posref import nope
    >>> nope([[1, 2], [3, 4]], [0, 1])
    array([[1., 2.],
           [3., 4.]])
    """
    x = ensure_array("x", x, min_ndim=1)
    positions = ensure_positions("positions", positions)
    try:
        shape = np.broadcast_shapes(x.shape[:-1], positions.shape)
    except ValueError:
        shape = None
    if shape != x.shape[:-1]:
        raise ValueError(
            f"positions of shape {positions.shape} does not broadcast to x.shape[:-1] = {x.shape[:-1]}"
        )
    return x.copy()


LLAMA4_REFERENCE = (
    "Meta AI, Llama 4 (attention temperature tuning of the NoPE layers), 2025; "
    "after K. M. Nakanishi, Scalable-Softmax Is Superior for Attention, 2025, arXiv:2501.19399"
)


@spec(family="nope", reference=LLAMA4_REFERENCE)
def nope_attention_temperature(positions, /, *, floor_scale=8192, attn_scale=0.1):
    r"""Llama 4's query temperature for the layers without position encoding.

    .. math::

        \tau_p = 1 + \alpha \, \ln\!\left(1 + \left\lfloor \frac{p + 1}{F} \right\rfloor\right)

    Llama 4 interleaves RoPE layers with NoPE layers (no position signal at
    all); in the NoPE layers every query is multiplied by :math:`\tau_p`
    before the logits, so attention sharpens as the context grows, in steps
    of :math:`F` tokens: :math:`\tau_p = 1` for the first :math:`F - 1`
    positions, :math:`1 + \alpha \ln 2` from position :math:`F - 1` on, and
    so on.  This is the stepped form of the :math:`\log n` scaling that
    Scalable-Softmax [2]_ argues for.

    Parameters
    ----------
    positions : array_like of int, any shape
        Token positions :math:`p`, non-negative integers (the query's
        absolute position, past tokens of the cache included).
    floor_scale : int, keyword-only
        Step length :math:`F` in tokens, a positive integer (Llama 4:
        8192, ``floor_scale`` in its configuration).
    attn_scale : float, keyword-only
        Strength :math:`\alpha`, a finite real (Llama 4: 0.1,
        ``attn_scale``).

    Returns
    -------
    numpy.ndarray
        float64 temperatures, the shape of ``positions``.

    Raises
    ------
    TypeError
        If ``positions`` is not a numeric array, ``floor_scale`` is not an
        integer or ``attn_scale`` is not a real number.
    ValueError
        If ``positions`` are negative or not integers, ``floor_scale < 1``
        or ``attn_scale`` is not finite.

    Notes
    -----
    The step index :math:`\lfloor (p + 1)/F \rfloor` is computed in exact
    integer arithmetic.  Hugging Face (``Llama4TextAttention``) computes it
    as ``floor((positions.float() + 1) / floor_scale)`` in float32, which
    is exact for :math:`p + 1 < 2^{24}` when :math:`F` is a power of two,
    and takes ``log1p`` of it; the temperature then multiplies the queries
    in their dtype.

    References
    ----------
    .. [1] Meta AI, Llama 4 model code: ``attn_temperature_tuning``,
       ``floor_scale`` and ``attn_scale`` of ``Llama4TextConfig``, 2025.
    .. [2] K. M. Nakanishi, "Scalable-Softmax Is Superior for Attention",
       2025, arXiv:2501.19399.

    Examples
    --------
    >>> from posref import nope_attention_temperature
    >>> nope_attention_temperature([0, 8190, 8191, 16383, 1_000_000]).round(6)
    array([1.      , 1.      , 1.069315, 1.109861, 1.481218])
    """
    positions = ensure_positions("positions", positions)
    floor_scale = ensure_int("floor_scale", floor_scale, minimum=1)
    attn_scale = ensure_real("attn_scale", attn_scale)
    steps = (positions + 1) // floor_scale  # exact: int64
    return 1.0 + attn_scale * _arith.log1p(steps.astype(np.float64))
