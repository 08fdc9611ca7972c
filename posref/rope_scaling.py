r"""Context-extension rules for rotary position embedding (RoPE scaling).

Each rule maps the rotary inverse frequencies
:math:`\theta_i = b^{-2i/d}` of :func:`posref.rope_frequencies` to new
ones, :math:`\theta_i'`, so that a model trained on sequences of length
:math:`L_0` can read longer ones.  The functions named ``*_frequencies``
return :math:`\theta'` as a float64 array of shape ``(dim // 2,)``; feed
it to the angles :math:`p\,\theta_i'` exactly as the unscaled table.
Rules that also rescale attention have separate functions returning a
Python float: :func:`yarn_attention_factor` and
:func:`longrope_attention_factor` (the factor by which libraries multiply
cos and sin, hence each query and each key) and
:func:`deepseek_softmax_scale` (the softmax temperature DeepSeek uses
instead of :math:`1/\sqrt{D}`).

Names used throughout: ``dim`` is the number of rotated channels :math:`d`
(``rotary_dim``; the exponent's denominator), ``base`` is :math:`b`
(``rope_theta``), ``scaling_factor`` is :math:`s` (``factor`` in
Hugging Face configs), and ``original_max_position_embeddings`` is the
pre-training context length :math:`L_0`.  Libraries name the last one
differently per rule (Hugging Face reads ``max_position_embeddings`` for
the dynamic rule and ``original_max_position_embeddings`` for YaRN,
LongRoPE and Llama 3); the idea is the same, so posref uses one name.
"""

from __future__ import annotations

import math

import numpy as np

from posref import _arith
from posref._spec import spec
from posref._validate import ensure_array, ensure_bool, ensure_choice, ensure_int, ensure_positions, ensure_real
from posref.rope import rope_frequencies

__all__ = [
    "linear_scaled_frequencies",
    "dynamic_linear_frequencies",
    "ntk_scaled_frequencies",
    "ntk_fixed_frequencies",
    "dynamic_ntk_frequencies",
    "dynamic_ntk_sequence_length",
    "qwen_dynamic_ntk_frequencies",
    "yarn_correction_range",
    "yarn_frequencies",
    "yarn_attention_factor",
    "deepseek_softmax_scale",
    "longrope_frequencies",
    "longrope_attention_factor",
    "llama3_scaled_frequencies",
]

YARN_HIGH_LIMITS = ("dim", "half_dim")

PI_REFERENCE = (
    "S. Chen, S. Wong, L. Chen, Y. Tian, 'Extending Context Window of Large Language Models "
    "via Positional Interpolation', 2023, arXiv:2306.15595"
)
DYNAMIC_REFERENCE = (
    "emozilla, 'Dynamically Scaled RoPE further increases performance of long context LLaMA "
    "with zero fine-tuning', r/LocalLLaMA, 2023; described in B. Peng et al., 'YaRN', 2023, "
    "arXiv:2309.00071, section 3.3"
)
NTK_REFERENCE = (
    "bloc97, 'NTK-Aware Scaled RoPE allows LLaMA models to have extended (8k+) context size "
    "without any fine-tuning and minimal perplexity degradation', r/LocalLLaMA, 2023; "
    "described in B. Peng et al., 'YaRN', 2023, arXiv:2309.00071, section 3.1"
)
NTK_FIXED_REFERENCE = "J. Su, NTK-RoPE-fixed and NTK-RoPE-mixed, 2023, https://kexue.fm/archives/9706"
QWEN_REFERENCE = "J. Bai et al., 'Qwen Technical Report', 2023, arXiv:2309.16609"
YARN_REFERENCE = (
    "B. Peng, J. Quesnelle, H. Fan, E. Shippole, 'YaRN: Efficient Context Window Extension "
    "of Large Language Models', 2023, arXiv:2309.00071"
)
DEEPSEEK_REFERENCE = (
    "DeepSeek-AI, 'DeepSeek-V2: A Strong, Economical, and Efficient Mixture-of-Experts "
    "Language Model', 2024, arXiv:2405.04434"
)
LONGROPE_REFERENCE = (
    "Y. Ding, L. L. Zhang, C. Zhang, Y. Xu, N. Shang, J. Xu, F. Yang, M. Yang, 'LongRoPE: "
    "Extending LLM Context Window Beyond 2 Million Tokens', 2024, arXiv:2402.13753"
)
LLAMA3_REFERENCE = "Llama Team, AI @ Meta, 'The Llama 3 Herd of Models', 2024, arXiv:2407.21783"


# ---------------------------------------------------------------------------
# private helpers (arguments already validated)


def _check_dim(dim, *, ntk=False):
    """``dim`` as an int; the NTK rules need ``dim >= 4`` (exponent d/(d-2))."""
    dim = ensure_int("dim", dim, minimum=1, even=True)
    if ntk and dim < 4:
        raise ValueError(f"dim must be an even integer >= 4 (NTK exponent dim/(dim-2)), got dim={dim}")
    return dim


def _check_base(base):
    return ensure_real("base", base, exclusive_minimum=1.0)


def _check_scaling_factor(scaling_factor):
    return ensure_real("scaling_factor", scaling_factor, minimum=1.0)


def _check_length(name, value, *, minimum=1):
    return ensure_int(name, value, minimum=minimum)


def _get_mscale(scaling_factor, mscale):
    r""":math:`0.1\,m\ln s + 1` for :math:`s > 1`, else 1 (YaRN ``get_mscale``)."""
    if scaling_factor <= 1.0:
        return 1.0
    return 0.1 * mscale * float(_arith.log(scaling_factor)) + 1.0


# ---------------------------------------------------------------------------
# linear


@spec(family="rope_scaling", reference=PI_REFERENCE)
def linear_scaled_frequencies(dim, /, *, base=10_000.0, scaling_factor):
    r"""Inverse frequencies under linear position interpolation (PI).

    Every frequency is divided by the scaling factor, which is the same as
    dividing every position by it: position :math:`L_0 s` of the long
    sequence is rotated like position :math:`L_0` was in training.

    Parameters
    ----------
    dim : int
        Number of rotated channels :math:`d`; positive and even.
    base : float, keyword-only
        RoPE base :math:`b` (``rope_theta``), greater than 1.
    scaling_factor : float, keyword-only
        Interpolation factor :math:`s \ge 1` (Hugging Face
        ``rope_type="linear"`` ``factor``, rotary-embedding-torch
        ``interpolate_factor``, x-transformers ``interpolation_factor``,
        TransformerEngine ``seq_len_interpolation_factor``, keras-hub
        ``scaling_factor``).  1 gives plain RoPE.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(dim // 2,)``: :math:`\theta_i / s`.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If ``dim`` is not positive and even, ``base <= 1`` or
        ``scaling_factor < 1``.

    See Also
    --------
    dynamic_linear_frequencies : The factor grows with the sequence.

    Notes
    -----
    .. math::

        \theta_i' = \frac{b^{-2i/d}}{s}, \qquad i = 0, \dots, d/2 - 1

    Hugging Face divides ``inv_freq`` by ``factor``;
    rotary-embedding-torch, TransformerEngine and the paper divide the
    positions instead.  The angles :math:`p\,\theta_i'` agree exactly in
    real arithmetic and to rounding in floating point.

    References
    ----------
    .. [1] S. Chen, S. Wong, L. Chen, Y. Tian, "Extending Context Window of
       Large Language Models via Positional Interpolation", 2023,
       arXiv:2306.15595.

    Examples
    --------
    >>> from posref import linear_scaled_frequencies
    >>> linear_scaled_frequencies(8, base=10_000.0, scaling_factor=4.0)
    array([0.25   , 0.025  , 0.0025 , 0.00025])
    """
    dim = _check_dim(dim)
    base = _check_base(base)
    s = _check_scaling_factor(scaling_factor)
    return rope_frequencies(dim, base=base) / s


@spec(family="rope_scaling", reference=DYNAMIC_REFERENCE)
def dynamic_linear_frequencies(
    dim, /, *, base=10_000.0, scaling_factor=1.0, original_max_position_embeddings, sequence_length
):
    r"""Inverse frequencies under dynamic linear interpolation.

    Linear interpolation whose factor grows with the sequence once the
    fixed factor no longer covers it: a sequence of length :math:`L` is
    always squeezed into the trained range :math:`[0, L_0)`.

    Parameters
    ----------
    dim : int
        Number of rotated channels :math:`d`; positive and even.
    base : float, keyword-only
        RoPE base :math:`b`, greater than 1.
    scaling_factor : float, keyword-only
        Fixed interpolation factor :math:`s \ge 1` used while
        :math:`L \le L_0 s`.  Default 1: no interpolation until the
        sequence outgrows :math:`L_0` (the rule of the reddit post and of
        the ``LlamaDynamicScaledRotaryEmbedding(ntk=False)`` reference
        code).  TransformerEngine passes its
        ``seq_len_interpolation_factor``.
    original_max_position_embeddings : int, keyword-only
        Pre-training length :math:`L_0` (TransformerEngine
        ``pretrained_max_position_embeddings``); positive.
    sequence_length : int, keyword-only
        Current length :math:`L` (TransformerEngine ``max_seq_len``, the
        length of the table it builds); positive.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(dim // 2,)``: :math:`\theta_i / s_L`.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If ``dim`` is not positive and even, ``base <= 1``,
        ``scaling_factor < 1`` or a length is not positive.

    See Also
    --------
    linear_scaled_frequencies : The fixed-factor rule.
    dynamic_ntk_sequence_length : When libraries recompute :math:`L`.

    Notes
    -----
    .. math::

        \theta_i' = \frac{b^{-2i/d}}{s_L}, \qquad
        s_L = \max\!\left(s, \frac{L}{L_0}\right)

    TransformerEngine ``RotaryPositionEmbedding`` multiplies positions by
    :math:`L_0 / L` when :math:`L > L_0 s` and by :math:`1/s` otherwise,
    which is this rule.  The reference code of the reddit post recomputes
    only when the sequence grows past the cached length and never shrinks
    it (``reset=False`` in :func:`dynamic_ntk_sequence_length`).

    References
    ----------
    .. [1] emozilla, "Dynamically Scaled RoPE further increases performance
       of long context LLaMA with zero fine-tuning", r/LocalLLaMA, 2023.
    .. [2] S. Chen, S. Wong, L. Chen, Y. Tian, "Extending Context Window of
       Large Language Models via Positional Interpolation", 2023,
       arXiv:2306.15595.

    Examples
    --------
    A fixed factor of 2 is outgrown at :math:`L = 4 L_0`:

    >>> from posref import dynamic_linear_frequencies
    >>> dynamic_linear_frequencies(4, base=100.0, scaling_factor=2.0,
    ...     original_max_position_embeddings=1024, sequence_length=4096)
    array([0.25 , 0.025])
    """
    dim = _check_dim(dim)
    base = _check_base(base)
    s = _check_scaling_factor(scaling_factor)
    l0 = _check_length("original_max_position_embeddings", original_max_position_embeddings)
    length = _check_length("sequence_length", sequence_length)
    s_l = max(s, length / l0)
    return rope_frequencies(dim, base=base) / s_l


# ---------------------------------------------------------------------------
# NTK family


@spec(family="rope_scaling", reference=NTK_REFERENCE)
def ntk_scaled_frequencies(dim, /, *, base=10_000.0, scaling_factor):
    r"""Inverse frequencies under NTK-aware scaling (a larger base).

    The base is raised so that the highest frequency is unchanged and the
    lowest one is divided by the scaling factor; the frequencies between
    are interpolated geometrically.

    Parameters
    ----------
    dim : int
        Number of rotated channels :math:`d`; even and at least 4 (the
        exponent :math:`d/(d-2)` is undefined for :math:`d = 2`).
    base : float, keyword-only
        RoPE base :math:`b`, greater than 1.
    scaling_factor : float, keyword-only
        :math:`s \ge 1` (``alpha`` in the reddit post and exllama,
        rotary-embedding-torch ``theta_rescale_factor``, x-transformers
        ``base_rescale_factor``, Hugging Face ``rope_type="ntk"`` in the
        releases that had it).

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(dim // 2,)``.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If ``dim`` is not even and at least 4, ``base <= 1`` or
        ``scaling_factor < 1``.

    See Also
    --------
    ntk_fixed_frequencies : vLLM's ``NTKScalingRotaryEmbedding``, a
        different formula under a similar name.
    dynamic_ntk_frequencies : :math:`s` chosen from the sequence length.

    Notes
    -----
    .. math::

        b' = b\,s^{d/(d-2)}, \qquad \theta_i' = b'^{-2i/d}
           = b^{-2i/d}\, s^{-2i/(d-2)}

    so :math:`\theta_0' = \theta_0 = 1` and
    :math:`\theta_{d/2-1}' = \theta_{d/2-1} / s`.

    Three static rules go by "NTK" in libraries: this one (the reddit
    post, rotary-embedding-torch, x-transformers, exllama, old Hugging
    Face ``"ntk"``); :func:`ntk_fixed_frequencies` (vLLM); and keras-hub's
    ``rope_type="dynamic"``, which divides *every* frequency by
    :math:`s^{d/(d-2)}` -- that is
    ``linear_scaled_frequencies(dim, scaling_factor=s ** (dim / (dim - 2)))``,
    not this function.

    References
    ----------
    .. [1] bloc97, "NTK-Aware Scaled RoPE allows LLaMA models to have
       extended (8k+) context size without any fine-tuning and minimal
       perplexity degradation", r/LocalLLaMA, 2023.
    .. [2] B. Peng, J. Quesnelle, H. Fan, E. Shippole, "YaRN: Efficient
       Context Window Extension of Large Language Models", 2023,
       arXiv:2309.00071, section 3.1.

    Examples
    --------
    With :math:`d = 4` the exponent is 2, so :math:`b' = 100 \cdot 4^2`:

    >>> from posref import ntk_scaled_frequencies
    >>> ntk_scaled_frequencies(4, base=100.0, scaling_factor=4.0)
    array([1.   , 0.025])
    """
    dim = _check_dim(dim, ntk=True)
    base = _check_base(base)
    s = _check_scaling_factor(scaling_factor)
    scaled_base = base * float(_arith.power(s, dim / (dim - 2)))
    return rope_frequencies(dim, base=scaled_base)


@spec(family="rope_scaling", reference=NTK_FIXED_REFERENCE)
def ntk_fixed_frequencies(dim, /, *, base=10_000.0, scaling_factor, mixed_b=None):
    r"""Inverse frequencies under vLLM's fixed or mixed NTK scaling.

    Without ``mixed_b`` ("NTK-RoPE-fixed"): the base is multiplied by
    :math:`s` and every frequency is then divided by :math:`s^{2/d}`, so
    the lowest frequency is divided by :math:`s` and the highest by
    :math:`s^{2/d}` (not left unchanged, unlike
    :func:`ntk_scaled_frequencies`).  With ``mixed_b``
    ("NTK-RoPE-mixed"): the base is kept and frequency :math:`i` is
    divided by :math:`\lambda_{i+1} = \exp(a (i+1)^{\beta})`.

    Parameters
    ----------
    dim : int
        Number of rotated channels :math:`d`; positive and even.
    base : float, keyword-only
        RoPE base :math:`b`, greater than 1.
    scaling_factor : float, keyword-only
        :math:`s \ge 1`.
    mixed_b : float or None, keyword-only
        Exponent :math:`\beta > 0` of the mixed rule, or ``None``
        (default) for the fixed rule.  ``mixed_b=1`` gives the fixed rule
        again.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(dim // 2,)``.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If ``dim`` is not positive and even, ``base <= 1``,
        ``scaling_factor < 1`` or ``mixed_b <= 0``.

    See Also
    --------
    ntk_scaled_frequencies : The NTK-aware rule of the reddit post.

    Notes
    -----
    Fixed:

    .. math::

        \theta_i' = \frac{(b s)^{-2i/d}}{s^{2/d}} = b^{-2i/d}\, s^{-2(i+1)/d}

    Mixed, with :math:`k = i + 1 = 1, \dots, d/2`:

    .. math::

        \theta_i' = \frac{b^{-2i/d}}{\lambda_k}, \qquad
        \lambda_k = \exp\!\left(a\,k^{\beta}\right), \qquad
        a = \frac{\ln s}{(d/2)^{\beta}}

    This is vLLM ``NTKScalingRotaryEmbedding`` (``rope_type="ntk"`` with
    optional ``mixed_b``).

    References
    ----------
    .. [1] J. Su, blog post introducing NTK-RoPE-fixed and NTK-RoPE-mixed,
       2023, https://kexue.fm/archives/9706.

    Examples
    --------
    >>> from posref import ntk_fixed_frequencies
    >>> ntk_fixed_frequencies(4, base=100.0, scaling_factor=4.0)
    array([0.5  , 0.025])
    >>> ntk_fixed_frequencies(4, base=100.0, scaling_factor=4.0, mixed_b=2.0)
    array([0.70710678, 0.025     ])
    """
    dim = _check_dim(dim)
    base = _check_base(base)
    s = _check_scaling_factor(scaling_factor)
    if mixed_b is not None:
        mixed_b = ensure_real("mixed_b", mixed_b, exclusive_minimum=0.0)
    if mixed_b is None:
        return rope_frequencies(dim, base=base * s) / float(_arith.power(s, 2.0 / dim))
    k = np.arange(1, dim // 2 + 1, dtype=np.float64)
    a = float(_arith.log(s)) / float(_arith.power(dim / 2, mixed_b))
    lam = _arith.exp(a * _arith.power(k, mixed_b))  # (dim/2,)
    return rope_frequencies(dim, base=base) / lam


@spec(family="rope_scaling", reference=DYNAMIC_REFERENCE)
def dynamic_ntk_frequencies(
    dim, /, *, base=10_000.0, scaling_factor, original_max_position_embeddings, sequence_length
):
    r"""Inverse frequencies under dynamic NTK scaling.

    NTK-aware scaling (:func:`ntk_scaled_frequencies`) whose factor is
    chosen from the current sequence length: no change up to the
    pre-training length, then a base that grows with the sequence.

    Parameters
    ----------
    dim : int
        Number of rotated channels :math:`d`; even and at least 4.
    base : float, keyword-only
        RoPE base :math:`b`, greater than 1.
    scaling_factor : float, keyword-only
        :math:`s \ge 1` (Hugging Face ``rope_type="dynamic"``
        ``factor``; ``ntk`` in the reference code).
    original_max_position_embeddings : int, keyword-only
        Pre-training length :math:`L_0`; positive.  Hugging Face reads it
        from ``config.max_position_embeddings`` for this rule.
    sequence_length : int, keyword-only
        The length :math:`L` the table is computed for; positive.  See
        :func:`dynamic_ntk_sequence_length` for how libraries pick it.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(dim // 2,)``.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If ``dim`` is not even and at least 4, ``base <= 1``,
        ``scaling_factor < 1`` or a length is not positive.

    See Also
    --------
    dynamic_ntk_sequence_length : Recompute and reset rule.
    qwen_dynamic_ntk_frequencies : Qwen's stepwise variant.

    Notes
    -----
    .. math::

        \bar L = \max(L, L_0), \qquad
        \alpha = \frac{s \bar L}{L_0} - (s - 1), \qquad
        b' = b\,\alpha^{d/(d-2)}, \qquad
        \theta_i' = b'^{-2i/d}

    For :math:`L \le L_0`, :math:`\alpha = 1` and the table is plain
    RoPE (posref evaluates :math:`\alpha` as
    :math:`1 + s(\bar L - L_0)/L_0`, exact there; Hugging Face's
    expression can be off by a few ulp).  This is Hugging Face ``_compute_dynamic_ntk_parameters`` and
    the ``LlamaDynamicScaledRotaryEmbedding(ntk=s)`` reference code.
    vLLM ``DynamicNTKScalingRotaryEmbedding`` instead builds one static
    table of length :math:`L_0 s`; depending on the release its base is
    :math:`b` (the inner term evaluates to 1) or this function at
    :math:`L = L_0 s` (:math:`\alpha = s^2 - s + 1`, vllm#41236).
    Neither follows the length of the sequence being served.

    References
    ----------
    .. [1] emozilla, "Dynamically Scaled RoPE further increases performance
       of long context LLaMA with zero fine-tuning", r/LocalLLaMA, 2023.
    .. [2] B. Peng, J. Quesnelle, H. Fan, E. Shippole, "YaRN: Efficient
       Context Window Extension of Large Language Models", 2023,
       arXiv:2309.00071, section 3.3.

    Examples
    --------
    Twice the trained length with :math:`s = 2` gives :math:`\alpha = 3`,
    and with :math:`d = 4`, :math:`b' = 100 \cdot 3^2 = 900`:

    >>> from posref import dynamic_ntk_frequencies
    >>> dynamic_ntk_frequencies(4, base=100.0, scaling_factor=2.0,
    ...     original_max_position_embeddings=1024, sequence_length=2048)
    array([1.        , 0.03333333])
    """
    dim = _check_dim(dim, ntk=True)
    base = _check_base(base)
    s = _check_scaling_factor(scaling_factor)
    l0 = _check_length("original_max_position_embeddings", original_max_position_embeddings)
    length = _check_length("sequence_length", sequence_length)
    length = max(length, l0)
    alpha = 1.0 + s * (length - l0) / l0  # = s L / L0 - (s - 1), exactly 1 at L = L0
    scaled_base = base * float(_arith.power(alpha, dim / (dim - 2)))
    return rope_frequencies(dim, base=scaled_base)


@spec(family="rope_scaling", reference=DYNAMIC_REFERENCE)
def dynamic_ntk_sequence_length(positions, /, *, original_max_position_embeddings, cached_length=None, reset=True):
    r"""The sequence length a dynamic RoPE table is computed for.

    Dynamic rules (:func:`dynamic_ntk_frequencies`,
    :func:`dynamic_linear_frequencies`) depend on a length that libraries
    keep as state across forward passes.  This function is that state
    update: given the positions of the current forward pass and the
    length of the table in use, it returns the length of the table to
    use now.

    Parameters
    ----------
    positions : array_like of int
        Position ids of the current forward pass, any shape (the whole
        batch), non-negative, not empty.
    original_max_position_embeddings : int, keyword-only
        Pre-training length :math:`L_0`; positive.
    cached_length : int or None, keyword-only
        Length :math:`L_c` of the table in use, at least :math:`L_0`;
        ``None`` (default) means the initial table, :math:`L_c = L_0`.
    reset : bool, keyword-only
        Whether a pass shorter than :math:`L_0` returns to the original
        table.  ``True`` (default): Hugging Face ``dynamic_rope_update``.
        ``False``: the table never shrinks (the reddit post's reference
        code, ``LlamaDynamicScaledRotaryEmbedding``).

    Returns
    -------
    int
        The new :math:`L_c`.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If ``positions`` is empty, negative or not integral, or a length
        is out of range.

    Notes
    -----
    With :math:`L = \max(\text{positions}) + 1`:

    .. math::

        L_c' = \begin{cases}
            L   & L > L_c \quad \text{(growth)} \\
            L_0 & \text{reset and } L < L_0 < L_c \\
            L_c & \text{otherwise}
        \end{cases}

    Hugging Face takes the maximum over the whole batch, so one long
    sequence rescales every sequence in the batch, and a table grown by
    an earlier long pass stays in use for later passes of length between
    :math:`L_0` and :math:`L_c`: the frequencies depend on history, not
    only on the current sequence.  Golden cases must therefore state the
    length explicitly (``sequence_length`` of the frequency functions).

    References
    ----------
    .. [1] emozilla, "Dynamically Scaled RoPE further increases performance
       of long context LLaMA with zero fine-tuning", r/LocalLLaMA, 2023.

    Examples
    --------
    >>> from posref import dynamic_ntk_sequence_length
    >>> dynamic_ntk_sequence_length([0, 9999], original_max_position_embeddings=4096)
    10000
    >>> dynamic_ntk_sequence_length([0, 4999], original_max_position_embeddings=4096,
    ...     cached_length=10000)
    10000
    >>> dynamic_ntk_sequence_length([0, 99], original_max_position_embeddings=4096,
    ...     cached_length=10000)
    4096
    """
    positions = ensure_positions("positions", positions, integer=True)
    l0 = _check_length("original_max_position_embeddings", original_max_position_embeddings)
    if cached_length is not None:
        cached_length = ensure_int("cached_length", cached_length, minimum=l0)
    reset = ensure_bool("reset", reset)
    if positions.size == 0:
        raise ValueError(f"positions must not be empty, got shape {positions.shape}")
    cached = l0 if cached_length is None else cached_length
    length = int(positions.max()) + 1
    if length > cached:
        return length
    if reset and length < l0 and cached > l0:
        return l0
    return cached


@spec(family="rope_scaling", reference=QWEN_REFERENCE)
def qwen_dynamic_ntk_frequencies(dim, /, *, base=10_000.0, original_max_position_embeddings, sequence_length):
    r"""Inverse frequencies under Qwen's stepwise dynamic NTK scaling.

    NTK-aware scaling with a factor :math:`\alpha` that doubles (plus
    one) each time the sequence doubles beyond the trained length:
    :math:`\alpha = 1, 3, 7, 15, \dots`.

    Parameters
    ----------
    dim : int
        Number of rotated channels :math:`d`; even and at least 4.
    base : float, keyword-only
        RoPE base :math:`b`, greater than 1.
    original_max_position_embeddings : int, keyword-only
        Pre-training length :math:`L_0` (``seq_length`` in Qwen's
        config); positive.
    sequence_length : int, keyword-only
        :math:`L`, positive.  Qwen (first generation, ``use_dynamic_ntk``)
        uses the key length of the prefill pass and keeps the resulting
        :math:`\alpha` while decoding; lmdeploy uses the same rule.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(dim // 2,)``.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If ``dim`` is not even and at least 4, ``base <= 1`` or a length
        is not positive.

    See Also
    --------
    dynamic_ntk_frequencies : The continuous rule of Hugging Face.

    Notes
    -----
    .. math::

        \alpha = \max\!\left(2^{\lceil \log_2(L/L_0) \rceil + 1} - 1,\ 1\right),
        \qquad b' = b\,\alpha^{d/(d-2)}, \qquad \theta_i' = b'^{-2i/d}

    The ceiling is evaluated exactly here (the smallest integer :math:`k`
    with :math:`L_0 2^k \ge L`); Qwen's code evaluates it as
    ``math.ceil(math.log(L / L0, 2) + 1)`` in floating point, which can
    differ only when :math:`L / L_0` is a very large power of two.

    References
    ----------
    .. [1] J. Bai et al., "Qwen Technical Report", 2023, arXiv:2309.16609.

    Examples
    --------
    :math:`L_0 < L \le 2L_0` gives :math:`\alpha = 3`, so with
    :math:`d = 4`, :math:`b' = 100 \cdot 3^2`:

    >>> from posref import qwen_dynamic_ntk_frequencies
    >>> qwen_dynamic_ntk_frequencies(4, base=100.0,
    ...     original_max_position_embeddings=1024, sequence_length=1500)
    array([1.        , 0.03333333])
    """
    dim = _check_dim(dim, ntk=True)
    base = _check_base(base)
    l0 = _check_length("original_max_position_embeddings", original_max_position_embeddings)
    length = _check_length("sequence_length", sequence_length)
    if length <= l0:
        alpha = 1
    else:
        k = (-(-length // l0) - 1).bit_length()  # smallest k with l0 * 2**k >= length
        alpha = 2 ** (k + 1) - 1
    scaled_base = base * float(_arith.power(float(alpha), dim / (dim - 2)))
    return rope_frequencies(dim, base=scaled_base)


# ---------------------------------------------------------------------------
# YaRN


def _check_yarn_options(base, original_max_position_embeddings, beta_fast, beta_slow, truncate, high_limit):
    base = _check_base(base)
    l0 = _check_length("original_max_position_embeddings", original_max_position_embeddings)
    beta_fast = ensure_real("beta_fast", beta_fast, exclusive_minimum=0.0)
    beta_slow = ensure_real("beta_slow", beta_slow, exclusive_minimum=0.0)
    if not beta_fast > beta_slow:
        raise ValueError(f"beta_fast must be greater than beta_slow, got beta_fast={beta_fast}, beta_slow={beta_slow}")
    truncate = ensure_bool("truncate", truncate)
    high_limit = ensure_choice("high_limit", high_limit, YARN_HIGH_LIMITS)
    return base, l0, beta_fast, beta_slow, truncate, high_limit


def _correction_range(dim, base, l0, beta_fast, beta_slow, truncate, high_limit):
    def correction_dim(num_rotations):
        return dim * float(_arith.log(l0 / (num_rotations * 2.0 * math.pi))) / (2.0 * float(_arith.log(base)))

    low, high = correction_dim(beta_fast), correction_dim(beta_slow)
    if truncate:
        low, high = math.floor(low), math.ceil(high)
    limit = dim - 1 if high_limit == "dim" else dim // 2 - 1
    return float(max(low, 0)), float(min(high, limit))


@spec(family="rope_scaling", reference=YARN_REFERENCE)
def yarn_correction_range(
    dim,
    /,
    *,
    base=10_000.0,
    original_max_position_embeddings,
    beta_fast=32.0,
    beta_slow=1.0,
    truncate=True,
    high_limit="dim",
):
    r"""Frequency-index range over which YaRN blends interpolation in.

    Pair :math:`i` turns :math:`r_i = L_0 \theta_i / (2\pi)` times over the
    trained context.  Pairs that turn at least ``beta_fast`` times keep
    their frequency; pairs that turn at most ``beta_slow`` times are
    interpolated like :func:`linear_scaled_frequencies`.  This function
    returns the (fractional) pair indices where :math:`r_i` equals
    ``beta_fast`` and ``beta_slow``.

    Parameters
    ----------
    dim : int
        Number of rotated channels :math:`d`; positive and even.
    base : float, keyword-only
        RoPE base :math:`b`, greater than 1.
    original_max_position_embeddings : int, keyword-only
        Pre-training length :math:`L_0`; positive.  Older Hugging Face
        releases passed ``config.max_position_embeddings`` (often
        :math:`L_0 s`) here; pass that value to reproduce them.
    beta_fast : float, keyword-only
        :math:`\beta` (paper), rotations above which a pair is left alone;
        default 32.  Must exceed ``beta_slow``.
    beta_slow : float, keyword-only
        :math:`\alpha` (paper), rotations below which a pair is fully
        interpolated; default 1, positive.
    truncate : bool, keyword-only
        Round the range outwards to integers (floor of the low end,
        ceiling of the high end).  ``True`` (default): reference code,
        Hugging Face (``rope_parameters["truncate"]``, default True),
        vLLM.  ``False``: the exact range (configs may set it; it was
        keras-hub's default before keras-hub#2981).
    high_limit : {"dim", "half_dim"}, keyword-only
        Upper clamp of the high end: ``"dim"`` (default) clamps to
        :math:`d - 1` (reference code, Hugging Face, vLLM); ``"half_dim"``
        clamps to :math:`d/2 - 1`, the last pair index (keras-hub before
        keras-hub#2981).  The two differ only when the high end exceeds
        :math:`d/2 - 1`, which happens for long :math:`L_0` (for
        example :math:`d = 128`, :math:`b = 10^4`, :math:`L_0 = 131072`).

    Returns
    -------
    tuple of float
        ``(low, high)``, with ``low`` clamped below at 0.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If ``dim`` is not positive and even, ``base <= 1``,
        ``original_max_position_embeddings`` is not positive, a beta is
        not positive, ``beta_fast <= beta_slow`` or ``high_limit`` is
        unknown.

    Notes
    -----
    .. math::

        i(r) = \frac{d\,\ln\!\big(L_0 / (2\pi r)\big)}{2 \ln b}, \qquad
        \text{low} = \max\big(\lfloor i(\beta_\text{fast}) \rfloor, 0\big),
        \qquad
        \text{high} = \min\big(\lceil i(\beta_\text{slow}) \rceil, d - 1\big)

    (floor and ceiling only with ``truncate``; :math:`d/2 - 1` instead of
    :math:`d - 1` with ``high_limit="half_dim"``).  :math:`i(r)` solves
    :math:`L_0 b^{-2i/d} / (2\pi) = r` for :math:`i`.

    References
    ----------
    .. [1] B. Peng, J. Quesnelle, H. Fan, E. Shippole, "YaRN: Efficient
       Context Window Extension of Large Language Models", 2023,
       arXiv:2309.00071, section 3.2 ("NTK-by-parts").

    Examples
    --------
    >>> from posref import yarn_correction_range
    >>> yarn_correction_range(128, base=10_000.0, original_max_position_embeddings=4096)
    (20.0, 46.0)
    >>> low, high = yarn_correction_range(128, base=10_000.0,
    ...     original_max_position_embeddings=4096, truncate=False)
    >>> round(low, 3), round(high, 3)
    (20.944, 45.027)
    """
    dim = _check_dim(dim)
    options = _check_yarn_options(base, original_max_position_embeddings, beta_fast, beta_slow, truncate, high_limit)
    return _correction_range(dim, *options)


@spec(family="rope_scaling", reference=YARN_REFERENCE)
def yarn_frequencies(
    dim,
    /,
    *,
    base=10_000.0,
    scaling_factor,
    original_max_position_embeddings,
    beta_fast=32.0,
    beta_slow=1.0,
    truncate=True,
    extrapolation_factor=1.0,
    high_limit="dim",
):
    r"""Inverse frequencies under YaRN ("NTK-by-parts") scaling.

    High frequencies (many turns over the trained context) are kept, low
    frequencies are divided by the scaling factor as in position
    interpolation, and the pairs in between (the
    :func:`yarn_correction_range`) blend the two with a ramp that is
    linear in the pair index.  The attention factor that goes with it is
    :func:`yarn_attention_factor`.

    Parameters
    ----------
    dim : int
        Number of rotated channels :math:`d`; positive and even.
    base : float, keyword-only
        RoPE base :math:`b`, greater than 1.
    scaling_factor : float, keyword-only
        :math:`s \ge 1`.  Hugging Face falls back to
        ``max_position_embeddings / original_max_position_embeddings``
        when ``factor`` is missing.
    original_max_position_embeddings : int, keyword-only
        Pre-training length :math:`L_0`; see
        :func:`yarn_correction_range`.
    beta_fast, beta_slow : float, keyword-only
        Rotation thresholds, defaults 32 and 1; see
        :func:`yarn_correction_range`.  (Hugging Face reads them with
        ``or``, so a configured 0 silently becomes the default; posref
        rejects 0.)
    truncate : bool, keyword-only
        Round the correction range outwards; default ``True``.
    extrapolation_factor : float, keyword-only
        Non-negative weight :math:`e` of the kept (extrapolated) part,
        default 1 (reference code, vLLM ``DeepseekScalingRotaryEmbedding``
        and ``YaRNScalingRotaryEmbedding``; Hugging Face has no such
        option, i.e. 1).  0 gives plain linear interpolation.
    high_limit : {"dim", "half_dim"}, keyword-only
        Upper clamp of the correction range; see
        :func:`yarn_correction_range`.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(dim // 2,)``.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        For any value :func:`yarn_correction_range` rejects, for
        ``scaling_factor < 1``, or for a negative
        ``extrapolation_factor``.

    See Also
    --------
    yarn_correction_range, yarn_attention_factor

    Notes
    -----
    With ``(low, high)`` from :func:`yarn_correction_range` (and
    ``high`` increased by 0.001 when it equals ``low``):

    .. math::

        \rho_i = \operatorname{clip}\!\left(
            \frac{i - \text{low}}{\text{high} - \text{low}}, 0, 1\right),
        \qquad
        \mu_i = (1 - \rho_i)\, e,
        \qquad
        \theta_i' = \frac{\theta_i}{s}(1 - \mu_i) + \theta_i\,\mu_i

    for :math:`i = 0, \dots, d/2 - 1`, :math:`\theta_i = b^{-2i/d}`.
    Pairs with :math:`r_i \ge \beta_\text{fast}` keep :math:`\theta_i`
    and pairs with :math:`r_i \le \beta_\text{slow}` get
    :math:`\theta_i / s` (for :math:`e = 1`), as long as
    :math:`\text{low} \le \text{high}`.  Clamping can leave
    :math:`\text{high} < \text{low}` in degenerate settings
    (:math:`L_0 < 2\pi\beta_\text{slow}`, or a correction index beyond
    the upper clamp); the formula is then used as written, as in the
    reference code and Hugging Face (keras-hub instead guards the
    denominator with :math:`\max(\text{high} - \text{low}, 0.001)`).

    Convention: the ramp :math:`\rho` is linear in the pair index
    :math:`i`, as in the authors' reference code and in every library
    surveyed (Hugging Face, vLLM, keras-hub).  The paper's text writes it
    as linear in the rotation count, :math:`\gamma(r) = (r - \alpha) /
    (\beta - \alpha)`; the two agree outside the correction range and
    differ inside it.

    References
    ----------
    .. [1] B. Peng, J. Quesnelle, H. Fan, E. Shippole, "YaRN: Efficient
       Context Window Extension of Large Language Models", 2023,
       arXiv:2309.00071, sections 3.2 and 3.4.

    Examples
    --------
    For :math:`d = 128`, :math:`L_0 = 4096` the range is (20, 46); pair 33
    sits half-way up the ramp, so its ratio to plain RoPE is
    :math:`(1 + 1/4) / 2`:

    >>> from posref import rope_frequencies, yarn_frequencies
    >>> ratio = yarn_frequencies(128, base=10_000.0, scaling_factor=4.0,
    ...     original_max_position_embeddings=4096) / rope_frequencies(128)
    >>> ratio[[0, 20, 33, 46, 63]]
    array([1.   , 1.   , 0.625, 0.25 , 0.25 ])
    """
    dim = _check_dim(dim)
    options = _check_yarn_options(base, original_max_position_embeddings, beta_fast, beta_slow, truncate, high_limit)
    s = _check_scaling_factor(scaling_factor)
    e = ensure_real("extrapolation_factor", extrapolation_factor, minimum=0.0)
    low, high = _correction_range(dim, *options)
    if low == high:
        high += 0.001  # the reference code's guard against 0/0
    i = np.arange(dim // 2, dtype=np.float64)
    ramp = np.clip((i - low) / (high - low), 0.0, 1.0)
    mask = (1.0 - ramp) * e  # weight of the unchanged (extrapolated) frequency
    theta = rope_frequencies(dim, base=options[0])
    return (theta / s) * (1.0 - mask) + theta * mask


@spec(family="rope_scaling", reference=YARN_REFERENCE)
def yarn_attention_factor(scaling_factor, /, *, mscale=1.0, mscale_all_dim=0.0, attention_factor=None):
    r"""YaRN's attention factor (the "mscale" multiplying cos and sin).

    YaRN sharpens attention at long context by scaling every query and
    key by :math:`\sqrt{1/t} = 0.1 \ln s + 1`; libraries fold this into
    the cos/sin tables.  DeepSeek configs split it into a numerator and a
    denominator (``mscale``, ``mscale_all_dim``); a configured
    ``attention_factor`` overrides everything.

    Parameters
    ----------
    scaling_factor : float
        :math:`s > 0`.  For :math:`s \le 1` the factor is 1.
    mscale : float, keyword-only
        Non-negative :math:`m_1` of the numerator, default 1.
    mscale_all_dim : float, keyword-only
        Non-negative :math:`m_2` of the denominator, default 0 (which
        makes the denominator 1).
    attention_factor : float or None, keyword-only
        If not ``None``, returned as is (positive); Hugging Face and vLLM
        ``rope_parameters["attention_factor"]``.

    Returns
    -------
    float

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If ``scaling_factor <= 0``, an mscale is negative or
        ``attention_factor <= 0``.

    See Also
    --------
    yarn_frequencies, deepseek_softmax_scale

    Notes
    -----
    .. math::

        g(s, m) = \begin{cases} 0.1\,m \ln s + 1 & s > 1 \\ 1 & s \le 1
        \end{cases}, \qquad
        \text{factor} = \frac{g(s, m_1)}{g(s, m_2)}

    The defaults give the paper's :math:`0.1 \ln s + 1` (reference code
    ``get_mscale``; vLLM ``DeepseekScalingRotaryEmbedding`` uses this
    ratio with the same defaults).  Library differences:

    * Hugging Face ``_compute_yarn_parameters`` uses the ratio only when
      *both* ``mscale`` and ``mscale_all_dim`` are set and non-zero, and
      :math:`g(s, 1)` otherwise; to reproduce a config that sets only
      one of them, pass ``mscale=1.0, mscale_all_dim=0.0``.
    * Hugging Face releases before the ``rope_parameters`` rewrite used
      :math:`0.1 \ln s + 1` without the :math:`s \le 1` guard (the same
      for :math:`s \ge 1`).
    * The reference code and vLLM multiply the result by their
      ``attn_factor`` (default 1); multiply the returned value by it.

    With DeepSeek-V3's ``mscale = mscale_all_dim = 1`` the factor is 1
    and the whole correction moves into :func:`deepseek_softmax_scale`.

    References
    ----------
    .. [1] B. Peng, J. Quesnelle, H. Fan, E. Shippole, "YaRN: Efficient
       Context Window Extension of Large Language Models", 2023,
       arXiv:2309.00071, section 3.4.
    .. [2] DeepSeek-AI, "DeepSeek-V2: A Strong, Economical, and Efficient
       Mixture-of-Experts Language Model", 2024, arXiv:2405.04434.

    Examples
    --------
    >>> from posref import yarn_attention_factor
    >>> round(yarn_attention_factor(4.0), 6)     # 0.1 * ln 4 + 1
    1.138629
    >>> yarn_attention_factor(40.0, mscale=1.0, mscale_all_dim=1.0)
    1.0
    """
    s = ensure_real("scaling_factor", scaling_factor, exclusive_minimum=0.0)
    m1 = ensure_real("mscale", mscale, minimum=0.0)
    m2 = ensure_real("mscale_all_dim", mscale_all_dim, minimum=0.0)
    if attention_factor is not None:
        attention_factor = ensure_real("attention_factor", attention_factor, exclusive_minimum=0.0)
        return attention_factor
    return _get_mscale(s, m1) / _get_mscale(s, m2)


@spec(family="rope_scaling", reference=DEEPSEEK_REFERENCE)
def deepseek_softmax_scale(head_dim, scaling_factor, /, *, mscale_all_dim):
    r"""Softmax scale of DeepSeek attention under YaRN scaling.

    DeepSeek-V2/V3 replace the usual :math:`1/\sqrt{D}` by
    :math:`g(s, m_2)^2/\sqrt{D}`, putting YaRN's attention sharpening
    into the softmax temperature instead of (or in addition to) the
    cos/sin tables.

    Parameters
    ----------
    head_dim : int
        Query/key head dimension :math:`D` (``qk_nope_head_dim +
        qk_rope_head_dim``, 192 in DeepSeek-V3); positive.
    scaling_factor : float
        :math:`s > 0` (``rope_scaling["factor"]``, 40 in DeepSeek-V3).
    mscale_all_dim : float, keyword-only
        Non-negative :math:`m_2` (``rope_scaling["mscale_all_dim"]``;
        1.0 in DeepSeek-V3, 0.707 in DeepSeek-V2).  0, or a config
        without the key, gives the plain :math:`1/\sqrt{D}`.

    Returns
    -------
    float

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If ``head_dim`` is not positive, ``scaling_factor <= 0`` or
        ``mscale_all_dim < 0``.

    See Also
    --------
    yarn_attention_factor : The factor applied to cos and sin.

    Notes
    -----
    .. math::

        \text{scale} = \frac{g(s, m_2)^2}{\sqrt{D}}, \qquad
        g(s, m) = 0.1\,m \ln s + 1 \ (s > 1), \quad 1 \ (s \le 1)

    As in Hugging Face ``DeepseekV2Attention`` and
    ``DeepseekV3Attention``.  With :math:`s = 40` and :math:`m_2 = 1`,
    :math:`g^2 = 1.8739`.

    References
    ----------
    .. [1] DeepSeek-AI, "DeepSeek-V2: A Strong, Economical, and Efficient
       Mixture-of-Experts Language Model", 2024, arXiv:2405.04434.
    .. [2] DeepSeek-AI, "DeepSeek-V3 Technical Report", 2024,
       arXiv:2412.19437.

    Examples
    --------
    >>> import math
    >>> from posref import deepseek_softmax_scale
    >>> scale = deepseek_softmax_scale(192, 40.0, mscale_all_dim=1.0)
    >>> round(scale * math.sqrt(192), 4)
    1.8739
    """
    d = ensure_int("head_dim", head_dim, minimum=1)
    s = ensure_real("scaling_factor", scaling_factor, exclusive_minimum=0.0)
    m2 = ensure_real("mscale_all_dim", mscale_all_dim, minimum=0.0)
    g = _get_mscale(s, m2)
    return g * g / math.sqrt(d)


# ---------------------------------------------------------------------------
# LongRoPE


def _check_factor_list(name, value, half):
    array = ensure_array(name, value, ndim=1)
    if array.shape != (half,):
        raise ValueError(f"{name} must have shape ({half},) (dim // 2), got shape {array.shape}")
    if np.any(array <= 0.0):
        raise ValueError(f"{name} must contain only positive values, got minimum {float(array.min())!r}")
    return array


@spec(family="rope_scaling", reference=LONGROPE_REFERENCE)
def longrope_frequencies(
    dim, /, *, base=10_000.0, short_factor, long_factor, original_max_position_embeddings, sequence_length
):
    r"""Inverse frequencies under LongRoPE (Phi-3 family) scaling.

    Each frequency is divided by its own searched rescale factor; one
    list of factors is used for sequences within the pre-training length
    and another beyond it.

    Parameters
    ----------
    dim : int
        Number of rotated channels :math:`d`; positive and even.
    base : float, keyword-only
        RoPE base :math:`b`, greater than 1.
    short_factor, long_factor : array_like of float, shape ``(dim // 2,)``, keyword-only
        Positive per-pair rescale factors :math:`\lambda_i` (config
        ``rope_scaling["short_factor"]`` / ``["long_factor"]``).
    original_max_position_embeddings : int, keyword-only
        Pre-training length :math:`L_0`; positive.
    sequence_length : int, keyword-only
        The length :math:`L` deciding the table; positive.  The long
        factors are used iff :math:`L > L_0` (strictly: :math:`L = L_0`
        uses the short ones).  Which :math:`L` is the selection rule that
        libraries disagree on: Hugging Face passes
        :math:`\max(\text{position\_ids}) + 1` of every forward pass (so a
        sequence switches tables when it crosses :math:`L_0`, and Phi-3
        drops its KV cache there); vLLM and Hugging Face releases before
        the dynamic update pass the configured maximum length
        (``max_model_len`` / ``max_position_embeddings``) once, i.e. a
        static choice for all positions.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(dim // 2,)``.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If ``dim`` is not positive and even, ``base <= 1``, a factor list
        has the wrong shape or a non-positive entry, or a length is not
        positive.

    See Also
    --------
    longrope_attention_factor : The factor multiplying cos and sin.

    Notes
    -----
    .. math::

        \theta_i' = \frac{b^{-2i/d}}{\lambda_i}, \qquad
        \lambda = \begin{cases} \text{long\_factor} & L > L_0 \\
                                \text{short\_factor} & L \le L_0
                  \end{cases}

    References
    ----------
    .. [1] Y. Ding, L. L. Zhang, C. Zhang, Y. Xu, N. Shang, J. Xu, F. Yang,
       M. Yang, "LongRoPE: Extending LLM Context Window Beyond 2 Million
       Tokens", 2024, arXiv:2402.13753.
    .. [2] M. Abdin et al., "Phi-3 Technical Report", 2024,
       arXiv:2404.14219.

    Examples
    --------
    >>> from posref import longrope_frequencies
    >>> kw = dict(base=100.0, short_factor=[1.0, 2.0], long_factor=[1.0, 4.0],
    ...           original_max_position_embeddings=4096)
    >>> longrope_frequencies(4, sequence_length=4096, **kw)
    array([1.  , 0.05])
    >>> longrope_frequencies(4, sequence_length=4097, **kw)
    array([1.   , 0.025])
    """
    dim = _check_dim(dim)
    base = _check_base(base)
    short = _check_factor_list("short_factor", short_factor, dim // 2)
    long = _check_factor_list("long_factor", long_factor, dim // 2)
    l0 = _check_length("original_max_position_embeddings", original_max_position_embeddings)
    length = _check_length("sequence_length", sequence_length)
    ext = long if length > l0 else short
    return rope_frequencies(dim, base=base) / ext


@spec(family="rope_scaling", reference=LONGROPE_REFERENCE)
def longrope_attention_factor(scaling_factor, /, *, original_max_position_embeddings):
    r"""LongRoPE's attention factor (multiplying cos and sin).

    Parameters
    ----------
    scaling_factor : float
        :math:`s > 0`.  Hugging Face and vLLM use
        ``max_position_embeddings / original_max_position_embeddings``
        unless the config sets ``factor``.
    original_max_position_embeddings : int, keyword-only
        Pre-training length :math:`L_0`; at least 2 (:math:`\ln L_0` is a
        divisor).

    Returns
    -------
    float

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If ``scaling_factor <= 0`` or ``original_max_position_embeddings
        < 2``.

    Notes
    -----
    .. math::

        \text{factor} = \begin{cases}
            \sqrt{1 + \ln s / \ln L_0} & s > 1 \\ 1 & s \le 1 \end{cases}

    Hugging Face ``_compute_longrope_parameters`` and vLLM
    ``Phi3LongRoPEScaledRotaryEmbedding`` use this default; a configured
    ``attention_factor`` (Hugging Face) or ``short_mscale`` /
    ``long_mscale`` (vLLM) replaces it.

    References
    ----------
    .. [1] Y. Ding et al., "LongRoPE: Extending LLM Context Window Beyond
       2 Million Tokens", 2024, arXiv:2402.13753.
    .. [2] M. Abdin et al., "Phi-3 Technical Report", 2024,
       arXiv:2404.14219.

    Examples
    --------
    :math:`\ln 32 / \ln 4096 = 5/12`:

    >>> from posref import longrope_attention_factor
    >>> round(longrope_attention_factor(32.0, original_max_position_embeddings=4096), 6)
    1.190238
    """
    s = ensure_real("scaling_factor", scaling_factor, exclusive_minimum=0.0)
    l0 = _check_length("original_max_position_embeddings", original_max_position_embeddings, minimum=2)
    if s <= 1.0:
        return 1.0
    return math.sqrt(1.0 + float(_arith.log(s)) / float(_arith.log(l0)))


# ---------------------------------------------------------------------------
# Llama 3


@spec(family="rope_scaling", reference=LLAMA3_REFERENCE)
def llama3_scaled_frequencies(
    dim,
    /,
    *,
    base=500_000.0,
    scaling_factor=8.0,
    low_freq_factor=1.0,
    high_freq_factor=4.0,
    original_max_position_embeddings=8192,
):
    r"""Inverse frequencies under Llama 3.1 (and Llama 4) RoPE scaling.

    By wavelength :math:`\lambda_i = 2\pi/\theta_i`: short wavelengths are
    kept, long ones are divided by the scaling factor, and those in
    between are blended with a weight linear in :math:`L_0/\lambda_i`.
    The defaults are Llama 3.1's (``rope_theta = 500000``).

    Parameters
    ----------
    dim : int
        Number of rotated channels :math:`d`; positive and even.
    base : float, keyword-only
        RoPE base :math:`b`, greater than 1; default 500000 (Llama 3.1).
    scaling_factor : float, keyword-only
        :math:`s \ge 1`; default 8 (Llama 3.1; Llama 4 Scout uses 16).
    low_freq_factor : float, keyword-only
        :math:`f_\text{low} > 0`; default 1.  Wavelengths above
        :math:`L_0 / f_\text{low}` are fully interpolated.
    high_freq_factor : float, keyword-only
        :math:`f_\text{high} \ge f_\text{low}`; default 4 (Llama 4 Scout
        uses 1).  Wavelengths below :math:`L_0 / f_\text{high}` are kept.
    original_max_position_embeddings : int, keyword-only
        Pre-training length :math:`L_0`; default 8192.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(dim // 2,)``.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If ``dim`` is not positive and even, ``base <= 1``,
        ``scaling_factor < 1``, ``low_freq_factor <= 0``,
        ``high_freq_factor < low_freq_factor`` or
        ``original_max_position_embeddings`` is not positive.

    Notes
    -----
    With :math:`\lambda_\text{high} = L_0 / f_\text{high}` and
    :math:`\lambda_\text{low} = L_0 / f_\text{low}`:

    .. math::

        \theta_i' = \begin{cases}
            \theta_i & \lambda_i < \lambda_\text{high} \\
            \theta_i / s & \lambda_i > \lambda_\text{low} \\
            (1 - \gamma_i)\,\theta_i / s + \gamma_i\,\theta_i & \text{otherwise}
        \end{cases}, \qquad
        \gamma_i = \frac{L_0/\lambda_i - f_\text{low}}{f_\text{high} - f_\text{low}}

    Both ends belong to the blended branch, where :math:`\gamma` is 1 at
    :math:`\lambda_\text{high}` and 0 at :math:`\lambda_\text{low}`, so
    :math:`\theta'` is continuous in :math:`\lambda`.  This is Meta's
    ``apply_scaling`` (llama-models), Hugging Face
    ``_compute_llama3_parameters``, torchtune ``Llama3ScaledRoPE`` and
    vLLM ``Llama3RotaryEmbedding``.

    Convention for :math:`f_\text{low} = f_\text{high}` (Llama 4 Scout):
    the blended branch shrinks to the single wavelength
    :math:`\lambda = L_0/f_\text{low}`, where :math:`\gamma` is 0/0.
    posref gives it :math:`\theta/s` (the limit from above; vLLM sets the
    weight to 0, which is the same).  Meta's and torchtune's code
    ``assert`` there, and Hugging Face evaluates the weight for every
    entry, producing NaN at that one wavelength.  Every other wavelength
    is the same in all four.

    References
    ----------
    .. [1] Llama Team, AI @ Meta, "The Llama 3 Herd of Models", 2024,
       arXiv:2407.21783; the rule is in ``apply_scaling`` of
       meta-llama/llama-models ``models/llama3/model.py``.

    Examples
    --------
    With :math:`L_0 = 100`: wavelength :math:`2\pi` is kept,
    :math:`20\pi` is blended (:math:`\gamma = (100/(20\pi) - 1)/3`), and
    :math:`200\pi`, :math:`2000\pi` are divided by 8:

    >>> from posref import llama3_scaled_frequencies
    >>> llama3_scaled_frequencies(8, base=10_000.0, original_max_position_embeddings=100)
    array([1.00000000e+00, 2.97535251e-02, 1.25000000e-03, 1.25000000e-04])
    """
    dim = _check_dim(dim)
    base = _check_base(base)
    s = _check_scaling_factor(scaling_factor)
    f_low = ensure_real("low_freq_factor", low_freq_factor, exclusive_minimum=0.0)
    f_high = ensure_real("high_freq_factor", high_freq_factor, exclusive_minimum=0.0)
    if f_high < f_low:
        raise ValueError(
            "high_freq_factor must be >= low_freq_factor, "
            f"got high_freq_factor={f_high}, low_freq_factor={f_low}"
        )
    l0 = _check_length("original_max_position_embeddings", original_max_position_embeddings)
    theta = rope_frequencies(dim, base=base)
    wavelength = 2.0 * math.pi / theta
    wavelength_high = l0 / f_high  # shorter than this: kept
    wavelength_low = l0 / f_low  # longer than this: divided by s
    keep = wavelength < wavelength_high
    blend = ~keep & ~(wavelength > wavelength_low)
    out = np.where(keep, theta, theta / s)
    if f_high > f_low:
        gamma = (l0 / wavelength[blend] - f_low) / (f_high - f_low)
        out[blend] = (1.0 - gamma) * theta[blend] / s + gamma * theta[blend]
    return out
