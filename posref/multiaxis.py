r"""Position encodings for tokens that live on a grid: images, video, mixed text and images.

Three formulas share this module:

* the fixed 2-D sine-cosine table of MoCo v3 / MAE vision transformers
  (:func:`sincos_2d_encoding`);
* 2-D axial RoPE, where half of the rotary pairs turn with the row
  coordinate and half with the column coordinate
  (:func:`axial_rope_angles`, :func:`apply_axial_rope`);
* multimodal RoPE (M-RoPE) of Qwen2-VL and Qwen3-VL, where every rotary
  frequency is driven by one of three coordinates (temporal, height, width)
  (:func:`mrope_angles`, :func:`apply_mrope`, :func:`mrope_position_ids`).

Coordinates are named ``y`` (row, height, first index of an ``(H, W)`` grid)
and ``x`` (column, width, second index).  A flattened grid is always in
row-major order: token ``n = r * W + c`` sits in row ``r``, column ``c``,
which is how a ViT patch embedding flattens its ``(H, W)`` feature map.

Shape letters used throughout posref: ``B`` batch, ``H`` heads, ``T`` query
positions, ``S`` key positions, ``D`` features per head.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

from posref import _arith, _difference
from posref._spec import refuse_both_options, spec, warn_deprecated_option
from posref._validate import (
    ensure_bool,
    ensure_choice,
    ensure_int,
    ensure_positions,
    ensure_real,
)
from posref.rope import _all_pairs, _float_view, _rotate, _rotate_by_angles, _x_error_first, rope_frequencies

__all__ = [
    "sincos_2d_encoding",
    "axial_rope_angles",
    "apply_axial_rope",
    "mrope_angles",
    "apply_mrope",
    "mrope_position_ids",
]

AXIS_ORDERS = ("xy", "yx")
SINCOS_GROUPINGS = ("axis", "sin_cos")
AXIAL_FREQUENCIES = ("per_axis", "even_odd")
ROTARY_LAYOUTS = ("half", "interleaved")
#: How M-RoPE assigns rotary pairs to its three coordinates (``section_order``).
SECTION_ORDERS = ("blocks", "round_robin")

SINCOS_2D_REFERENCE = (
    "X. Chen, S. Xie, K. He, 'An Empirical Study of Training Self-Supervised Vision "
    "Transformers' (MoCo v3), 2021, arXiv:2104.02057; K. He, X. Chen, S. Xie, Y. Li, "
    "P. Dollar, R. Girshick, 'Masked Autoencoders Are Scalable Vision Learners', 2022, "
    "arXiv:2111.06377; A. Dosovitskiy et al., 'An Image is Worth 16x16 Words', 2021, "
    "arXiv:2010.11929"
)
AXIAL_ROPE_REFERENCE = (
    "B. Heo, S. Park, D. Han, S. Yun, 'Rotary Position Embedding for Vision Transformer', "
    "2024, arXiv:2403.13298 (RoPE-Axial)"
)
MROPE_REFERENCE = (
    "P. Wang et al., 'Qwen2-VL: Enhancing Vision-Language Model's Perception of the World "
    "at Any Resolution', 2024, arXiv:2409.12191 (M-RoPE)"
)


# -- private checks -------------------------------------------------------------------------


def _ensure_multiple_of_four(name, value):
    """Return ``value`` as an int that is a positive multiple of 4."""
    value = ensure_int(name, value)
    if value < 4 or value % 4:
        raise ValueError(f"{name} must be a positive multiple of 4, got {name}={value}")
    return value


def _ensure_int_sequence(name, value, length, what):
    """Return ``value`` as a tuple of ``length`` items; the caller checks each item."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be {what}, got {name}={value!r} of type {type(value).__name__}")
    if len(value) != length:
        raise ValueError(f"{name} must be {what}, got {name}={list(value)!r} of length {len(value)}")
    return tuple(value)


def _ensure_grid_shape(grid_shape):
    what = "a pair of positive integers (H, W)"
    pair = _ensure_int_sequence("grid_shape", grid_shape, 2, what)
    return tuple(ensure_int(f"grid_shape[{i}]", v, minimum=1) for i, v in enumerate(pair))


def _ensure_mrope_section(mrope_section):
    what = "a sequence of 3 non-negative integers (temporal, height, width)"
    triple = _ensure_int_sequence("mrope_section", mrope_section, 3, what)
    return tuple(ensure_int(f"mrope_section[{i}]", v, minimum=0) for i, v in enumerate(triple))


def _mrope_axis_of_pair(section, half, round_robin):
    """Coordinate (0 = temporal, 1 = height, 2 = width) that drives each rotary pair, shape (half,)."""
    if not round_robin:
        return np.repeat(np.arange(3), section)  # [T]*s0 + [H]*s1 + [W]*s2
    axis = np.zeros(half, dtype=np.int64)  # temporal unless overwritten
    i = np.arange(half)
    axis[(i % 3 == 1) & (i < 3 * section[1])] = 1
    axis[(i % 3 == 2) & (i < 3 * section[2])] = 2
    return axis


def _check_mrope_fit(section, half, round_robin, what):
    """Raise unless ``section`` assigns exactly ``half`` rotary pairs with the given counts.

    ``what`` describes ``half`` for the message, e.g. ``"dim/2 = 4"``.
    """
    if sum(section) != half:
        raise ValueError(f"mrope_section must sum to {what}, got mrope_section={list(section)} (sum {sum(section)})")
    if round_robin:
        counts = np.bincount(_mrope_axis_of_pair(section, half, True), minlength=3)
        if tuple(int(c) for c in counts) != section:
            raise ValueError(
                f"mrope_section={list(section)} does not fit section_order='round_robin': height takes "
                f"pair indices 1, 4, 7, ... below 3*mrope_section[1] and width 2, 5, 8, ... below "
                f"3*mrope_section[2], and all of them must be below {what}"
            )


def _round_robin(function, section_order, interleaved):
    """Whether the sections go round robin, from ``section_order`` or its deprecated name ``interleaved``."""
    if interleaved is None:
        return ensure_choice("section_order", section_order, SECTION_ORDERS) == "round_robin"
    if section_order != "blocks":
        refuse_both_options(function, "interleaved", "section_order")
    warn_deprecated_option(function, "interleaved", "section_order", stacklevel=4)
    return ensure_bool("interleaved", interleaved)


def _check_broadcast(x, positions, name):
    try:
        np.broadcast_shapes(x.shape[:-1], positions.shape[1:])
    except ValueError:
        raise ValueError(
            f"{name} of shape {positions.shape} (coordinates first) does not broadcast against "
            f"x of shape {x.shape}: {name}.shape[1:] = {positions.shape[1:]} must broadcast "
            f"against x.shape[:-1] = {x.shape[:-1]}"
        ) from None


# -- 2-D sine-cosine table ------------------------------------------------------------------


@spec(family="multiaxis", reference=SINCOS_2D_REFERENCE)
def sincos_2d_encoding(grid_shape, dim, /, *, base=10_000.0, axis_order="xy", grouping="axis", class_token=False):
    r"""Fixed 2-D sine-cosine position table of vision transformers (MoCo v3, MAE).

    Each token of an ``H x W`` patch grid gets a ``dim``-vector: half of
    the channels are the 1-D sinusoidal code of one coordinate, half of the
    other, with the same frequencies for both axes.  The table is added to
    the patch embeddings, as the learned table of ViT is.

    Parameters
    ----------
    grid_shape : pair of int
        ``(H, W)``: rows and columns of the patch grid, both positive.
    dim : int
        Width of the table (the model width); a positive multiple of 4.
    base : float, keyword-only
        The base :math:`b` (``temperature`` in MoCo v3 and timm), greater
        than 1.
    axis_order : {"xy", "yx"}, keyword-only
        Which coordinate fills the first channel block :math:`a`.
        ``"xy"``: the column ``x`` (MAE ``get_2d_sincos_pos_embed``, also
        used by DiT and diffusers; the code names that block ``emb_h`` but
        feeds it the first output of ``meshgrid(grid_w, grid_h)``, which is
        the column).  ``"yx"``: the row ``y`` (timm
        ``build_sincos2d_pos_embed``; MoCo v3 on square grids, see Notes).
    grouping : {"axis", "sin_cos"}, keyword-only
        ``"axis"``: :math:`[\sin a, \cos a, \sin b, \cos b]` (MAE, MoCo v3,
        timm with ``interleave_sin_cos=True``).  ``"sin_cos"``:
        :math:`[\sin a, \sin b, \cos a, \cos b]` (timm's default).  The two
        are column permutations of each other.
    class_token : bool, keyword-only
        If true, prepend one all-zero row for a class token (MAE
        ``cls_token=True``; MoCo v3 prepends the same zero row).

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(H * W, dim)``, or ``(1 + H * W, dim)``
        with ``class_token``; patch rows in row-major order (token
        ``r * W + c`` is row ``r``, column ``c``).

    Raises
    ------
    TypeError
        If ``grid_shape`` is not a pair of integers, ``dim`` is not an
        integer, ``base`` is not a real number or ``class_token`` is not a
        bool.
    ValueError
        If a grid side is not positive, ``dim`` is not a positive multiple
        of 4, ``base <= 1``, or ``axis_order``/``grouping`` is unknown.

    Notes
    -----
    For the token in row :math:`y`, column :math:`x`, with :math:`(a, b) =
    (x, y)` for ``axis_order="xy"`` and :math:`(y, x)` for ``"yx"``:

    .. math::

        \omega_k = b^{-k/(\text{dim}/4)}, \quad k = 0, \dots, \text{dim}/4 - 1

        E(y, x) = [\sin(a\,\omega),\ \cos(a\,\omega),\ \sin(b\,\omega),\ \cos(b\,\omega)]

    (``grouping="axis"``), each block ``dim/4`` wide.  Every library
    surveyed uses these frequencies; they differ only in channel order and
    token order.  Every row (but the class token's) has squared norm
    ``dim/2``.

    MoCo v3 builds its grid with ``torch.meshgrid(grid_w, grid_h)`` in
    ``"ij"`` indexing and flattens it column by column, while the patch
    tokens are flattened row by row; on a square grid its table is this one
    with ``axis_order="yx"``, ``grouping="axis"``.  timm's
    ``reverse_coord=True`` gives ``axis_order="xy"`` with the tokens in
    column-major order.  ViT [1]_ itself uses a learned table; the fixed
    2-D table comes from MoCo v3 [2]_ and MAE [3]_.

    References
    ----------
    .. [1] A. Dosovitskiy et al., "An Image is Worth 16x16 Words:
       Transformers for Image Recognition at Scale", 2021,
       arXiv:2010.11929, appendix D.4.
    .. [2] X. Chen, S. Xie, K. He, "An Empirical Study of Training
       Self-Supervised Vision Transformers", 2021, arXiv:2104.02057.
    .. [3] K. He, X. Chen, S. Xie, Y. Li, P. Dollar, R. Girshick, "Masked
       Autoencoders Are Scalable Vision Learners", 2022, arXiv:2111.06377.

    Examples
    --------
    With ``dim=4`` there is one frequency, :math:`\omega_0 = 1`.  Row 0 of
    a 1 x 2 grid: the second token is column 1, so its first block is
    :math:`(\sin 1, \cos 1)`:

    >>> from posref import sincos_2d_encoding
    >>> sincos_2d_encoding((1, 2), 4).round(4)
    array([[0.    , 1.    , 0.    , 1.    ],
           [0.8415, 0.5403, 0.    , 1.    ]])

    timm's default order puts the row first and all sines before the cosines:

    >>> sincos_2d_encoding((1, 2), 4, axis_order="yx", grouping="sin_cos").round(4)
    array([[0.    , 0.    , 1.    , 1.    ],
           [0.    , 0.8415, 1.    , 0.5403]])
    """
    height, width = _ensure_grid_shape(grid_shape)
    dim = _ensure_multiple_of_four("dim", dim)
    base = ensure_real("base", base, exclusive_minimum=1.0)
    axis_order = ensure_choice("axis_order", axis_order, AXIS_ORDERS)
    grouping = ensure_choice("grouping", grouping, SINCOS_GROUPINGS)
    class_token = ensure_bool("class_token", class_token)

    omega = rope_frequencies(dim // 2, base=base)  # (dim/4,) = b^(-k/(dim/4))
    y, x = np.meshgrid(np.arange(height, dtype=np.float64), np.arange(width, dtype=np.float64), indexing="ij")
    y, x = y.reshape(-1), x.reshape(-1)  # (H*W,), row-major
    first, second = (x, y) if axis_order == "xy" else (y, x)
    phase_a = first[:, None] * omega  # (H*W, dim/4)
    phase_b = second[:, None] * omega
    if grouping == "axis":
        blocks = [(_arith.sin, phase_a), (_arith.cos, phase_a), (_arith.sin, phase_b), (_arith.cos, phase_b)]
    else:
        blocks = [(_arith.sin, phase_a), (_arith.sin, phase_b), (_arith.cos, phase_a), (_arith.cos, phase_b)]
    table = np.zeros((int(class_token) + height * width, dim))  # the class token's row, if any, stays zero
    patches = table[int(class_token) :]  # (H*W, dim), a view
    quarter = dim // 4
    for k, (wave, phase) in enumerate(blocks):  # one dim/4-wide block at a time
        patches[:, k * quarter : (k + 1) * quarter] = wave(phase)
    return table


# -- 2-D axial RoPE -------------------------------------------------------------------------


def _axial_angles(positions_2d, dim, base, axis_order, frequencies):
    """Angles of validated arguments, shape positions_2d.shape[1:] + (dim/2,)."""
    y, x = positions_2d[0], positions_2d[1]
    first, second = (x, y) if axis_order == "xy" else (y, x)
    if frequencies == "per_axis":
        omega_a = omega_b = rope_frequencies(dim // 2, base=base)  # b^(-4k/dim)
    else:
        theta = rope_frequencies(dim, base=base)  # 1-D ladder b^(-2j/dim)
        omega_a, omega_b = theta[0::2], theta[1::2]
    return np.concatenate([first[..., None] * omega_a, second[..., None] * omega_b], axis=-1)


@spec(family="multiaxis", reference=AXIAL_ROPE_REFERENCE)
def axial_rope_angles(positions_2d, dim, /, *, base=10_000.0, axis_order="xy", frequencies="per_axis"):
    r"""Rotation angles of 2-D axial RoPE: half the pairs turn with one coordinate, half with the other.

    The first ``dim/4`` rotary pairs are a 1-D RoPE of the first coordinate
    (in ``axis_order``), the last ``dim/4`` pairs a 1-D RoPE of the second.
    A query-key score then depends on the 2-D offset between the two tokens
    only.  Feed the result to :func:`posref.apply_rotary`, or use
    :func:`apply_axial_rope`.

    Parameters
    ----------
    positions_2d : array_like of real, shape ``(2, ...)``
        ``positions_2d[0]`` is the row (``y``) and ``positions_2d[1]`` the
        column (``x``) coordinate of each token; non-negative, finite.
        Fractional coordinates are allowed (EVA-02 and timm rescale the grid
        to a reference shape, ``ref_feat_shape``).
    dim : int
        Number of rotated channels (the head width); a positive multiple
        of 4.
    base : float, keyword-only
        The base :math:`b`, greater than 1.  10000 in EVA-02/timm,
        torchtune and Qwen2-VL's vision tower; the RoPE-Axial ViTs of [1]_
        use 100.
    axis_order : {"xy", "yx"}, keyword-only
        Which coordinate drives the first ``dim/4`` pairs.  ``"xy"``: the
        column (naver-ai ``rope-vit`` ``compute_axial_cis``, torchtune
        ``VisionRotaryPositionalEmbeddings``).  ``"yx"``: the row (timm
        ``RotaryEmbeddingCat`` used by EVA-02, Hugging Face Qwen2-VL vision
        ``rot_pos_emb``, Pixtral).
    frequencies : {"per_axis", "even_odd"}, keyword-only
        ``"per_axis"``: each axis uses the full ladder of a ``dim/2``-wide
        RoPE, :math:`\omega_k = b^{-4k/\text{dim}}` (every library above
        except Pixtral).  ``"even_odd"``: the first axis takes the even
        entries and the second the odd entries of the ``dim``-wide ladder
        :math:`\theta_j = b^{-2j/\text{dim}}`, so the second axis turns
        :math:`b^{-2/\text{dim}}` times slower (Pixtral,
        ``precompute_freqs_cis_2d``, with ``axis_order="yx"``).

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``positions_2d.shape[1:] + (dim // 2,)``.

    Raises
    ------
    TypeError
        If ``positions_2d`` is not a real array, ``dim`` is not an integer
        or ``base`` not a real number.
    ValueError
        If ``positions_2d`` does not have first dimension 2, holds negative
        or non-finite values, ``dim`` is not a positive multiple of 4,
        ``base <= 1``, or ``axis_order``/``frequencies`` is unknown.

    Notes
    -----
    With :math:`(a, b) = (x, y)` for ``axis_order="xy"`` and :math:`(y, x)`
    for ``"yx"``, and ``frequencies="per_axis"``:

    .. math::

        \phi_i = \begin{cases}
            a\,\omega_i & 0 \le i < \text{dim}/4 \\
            b\,\omega_{i - \text{dim}/4} & \text{dim}/4 \le i < \text{dim}/2
        \end{cases}, \qquad \omega_k = \text{base}^{-4k/\text{dim}}

    With ``"even_odd"`` the two blocks use :math:`\theta_{2k}` and
    :math:`\theta_{2k+1}`, :math:`\theta_j = \text{base}^{-2j/\text{dim}}`.

    Position conventions the caller supplies: torchtune counts patches from
    1 (``x + 1``, ``y + 1``) and gives its class token angle 0; rope-vit
    leaves the class token unrotated.  Position ``(0, 0)`` gives angle 0,
    which leaves a vector unchanged.  timm's default "pixel" mode (grid in
    :math:`[-1, 1]`, bands :math:`\pi\,2^k`) is a different formula and is
    not covered here.

    References
    ----------
    .. [1] B. Heo, S. Park, D. Han, S. Yun, "Rotary Position Embedding for
       Vision Transformer", 2024, arXiv:2403.13298, sec. 3 (RoPE-Axial).
    .. [2] Y. Fang et al., "EVA-02: A Visual Representation for Neon
       Genesis", 2023, arXiv:2303.11331.

    Examples
    --------
    ``dim=8``, ``base=100``: each axis has frequencies ``[1, 0.1]``.  Token
    0 is at row 0, column 1; token 1 at row 2, column 3:

    >>> from posref import axial_rope_angles
    >>> axial_rope_angles([[0, 2], [1, 3]], 8, base=100.0)
    array([[1. , 0.1, 0. , 0. ],
           [3. , 0.3, 2. , 0.2]])
    >>> axial_rope_angles([[0, 2], [1, 3]], 8, base=100.0, axis_order="yx")
    array([[0. , 0. , 1. , 0.1],
           [2. , 0.2, 3. , 0.3]])
    """
    positions_2d = ensure_positions("positions_2d", positions_2d, integer=False, min_ndim=1)
    dim = _ensure_multiple_of_four("dim", dim)
    base = ensure_real("base", base, exclusive_minimum=1.0)
    axis_order = ensure_choice("axis_order", axis_order, AXIS_ORDERS)
    frequencies = ensure_choice("frequencies", frequencies, AXIAL_FREQUENCIES)
    if positions_2d.shape[0] != 2:
        raise ValueError(f"positions_2d must have first dimension 2 (row, column), got shape {positions_2d.shape}")
    return _axial_angles(positions_2d, dim, base, axis_order, frequencies)


@spec(family="multiaxis", reference=AXIAL_ROPE_REFERENCE)
def apply_axial_rope(
    x, positions_2d, /, *, base=10_000.0, axis_order="xy", frequencies="per_axis", layout="interleaved"
):
    r"""Rotate queries or keys by 2-D axial RoPE.

    :func:`axial_rope_angles` of the token coordinates, applied with
    :func:`posref.apply_rotary`.

    Parameters
    ----------
    x : array_like of real, shape ``(..., D)``
        Features to rotate; ``D`` a positive multiple of 4.
    positions_2d : array_like of real, shape ``(2, ...)``
        Row and column of each token; ``positions_2d.shape[1:]`` must
        broadcast against ``x.shape[:-1]``.  For ``x`` of shape
        ``(B, H, T, D)`` pass coordinates of shape ``(2, B, 1, T)`` or
        ``(2, T)``.
    base, axis_order, frequencies : keyword-only
        As in :func:`axial_rope_angles`.
    layout : {"half", "interleaved"}, keyword-only
        Which channels form rotary pair ``i`` (see
        :func:`posref.apply_rotary`).  ``"interleaved"`` (channels ``2i``,
        ``2i+1``): rope-vit and Pixtral (complex multiply), timm
        ``RotaryEmbeddingCat`` (default), torchtune.  ``"half"`` (channels
        ``i``, ``i + D/2``): Hugging Face Qwen2-VL vision and Pixtral ports,
        timm with ``half=True``.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``broadcast(x.shape[:-1],
        positions_2d.shape[1:]) + (D,)``.

    Raises
    ------
    TypeError
        If ``x`` or ``positions_2d`` is not a real array, or ``base`` not a
        real number.
    ValueError
        If ``D`` is not a positive multiple of 4, ``positions_2d`` does not
        have first dimension 2, holds negative or non-finite values, or does
        not broadcast against ``x``, ``base <= 1``, or an option is unknown.

    Notes
    -----
    For pair :math:`i` with members :math:`(u_i, v_i)` in the chosen layout
    and angle :math:`\phi_i` from :func:`axial_rope_angles`:

    .. math::

        u_i' + \mathrm{i}\,v_i' = (u_i + \mathrm{i}\,v_i)\,e^{\mathrm{i}\phi_i}

    so the score of a query at :math:`(y, x)` and a key at
    :math:`(y', x')` depends on :math:`(y' - y, x' - x)` only.

    References
    ----------
    .. [1] B. Heo, S. Park, D. Han, S. Yun, "Rotary Position Embedding for
       Vision Transformer", 2024, arXiv:2403.13298, sec. 3 (RoPE-Axial).

    Examples
    --------
    ``D=4``: pair ``(0, 1)`` turns with the column, pair ``(2, 3)`` with
    the row.  At row 1, column 0 only the second pair turns, by 1 radian:

    >>> from posref import apply_axial_rope
    >>> apply_axial_rope([1.0, 0.0, 1.0, 0.0], [1, 0]).round(4)
    array([1.    , 0.    , 0.5403, 0.8415])

    Scores depend on the 2-D offset only:

    >>> import numpy as np
    >>> q, k = np.random.default_rng(0).standard_normal((2, 8))
    >>> def score(p, r):
    ...     return apply_axial_rope(q, p) @ apply_axial_rope(k, r)
    >>> bool(np.isclose(score([1, 2], [4, 3]), score([5, 7], [8, 8])))
    True
    """
    x, x_checked = _float_view("x", x)
    with _x_error_first("x", x, x_checked):
        positions_2d = ensure_positions("positions_2d", positions_2d, integer=False, min_ndim=1)
        base = ensure_real("base", base, exclusive_minimum=1.0)
        axis_order = ensure_choice("axis_order", axis_order, AXIS_ORDERS)
        frequencies = ensure_choice("frequencies", frequencies, AXIAL_FREQUENCIES)
        layout = ensure_choice("layout", layout, ROTARY_LAYOUTS)
        d = x.shape[-1]
        if d == 0 or d % 4:
            raise ValueError(f"x must have a last dimension (D) that is a positive multiple of 4, got shape {x.shape}")
        if positions_2d.shape[0] != 2:
            raise ValueError(f"positions_2d must have first dimension 2 (row, column), got shape {positions_2d.shape}")
        _check_broadcast(x, positions_2d, "positions_2d")
    tables = _axial_cos_sin_tables(positions_2d, d, base, axis_order, frequencies)
    if tables is not None:
        return _rotate(x, tables, layout, *_all_pairs(d, layout), check_x=None if x_checked else "x")
    angles = _axial_angles(positions_2d, d, base, axis_order, frequencies)  # (..., D/2)
    # apply_rotary(x, angles, layout=layout), without checking x twice
    return _rotate_by_angles(x, angles, layout, check_x=None if x_checked else "x")


def _axial_cos_sin_tables(positions_2d, dim, base, axis_order, frequencies):
    """Cosines and sines of :func:`_axial_angles` read from one table per coordinate, for ``_rotate``.

    Half the pairs of a token turn with one integer coordinate, half with the other, and a
    patch grid has few distinct coordinates per axis: ``cos`` and ``sin`` of ``c * omega`` are
    evaluated once per coordinate value ``c`` of ``lo .. hi`` (the same products, so the same
    numbers) and gathered per block of rows.  ``None`` (the plain path) for fractional or
    negatively signed (``-0.0``) coordinates, or when a range holds more values than there are
    tokens.
    """
    if positions_2d[0].size == 0 or np.signbit(positions_2d).any():  # -0.0 turns by -0.0: the plain path
        return None
    whole = _difference.integer_valued(positions_2d)  # int64 if every coordinate is a whole number
    if whole is None:
        return None
    y, x = whole[0], whole[1]
    first, second = (x, y) if axis_order == "xy" else (y, x)
    if frequencies == "per_axis":
        omega_a = omega_b = rope_frequencies(dim // 2, base=base)
    else:
        theta = rope_frequencies(dim, base=base)
        omega_a, omega_b = theta[0::2], theta[1::2]
    axes = []
    for coordinate, omega in ((first, omega_a), (second, omega_b)):
        lo, hi = int(coordinate.min()), int(coordinate.max())
        if hi - lo + 1 > coordinate.size:
            return None
        angles = np.arange(lo, hi + 1, dtype=np.float64)[:, None] * omega  # as c[..., None] * omega
        axes.append((coordinate, lo, _arith.cos(angles), _arith.sin(angles)))

    def lookup(index):
        rows = [(coordinate[index] - lo, cos, sin) for coordinate, lo, cos, sin in axes]
        return (np.concatenate([cos[r] for r, cos, _ in rows], axis=-1),
                np.concatenate([sin[r] for r, _, sin in rows], axis=-1), None)

    return lookup, first.shape


# -- M-RoPE ---------------------------------------------------------------------------------


def _mrope_angles(positions, dim, base, section, round_robin):
    """Angles of validated arguments, shape positions.shape[1:] + (dim/2,)."""
    theta = rope_frequencies(dim, base=base)  # (dim/2,)
    axis = _mrope_axis_of_pair(section, dim // 2, round_robin)  # (dim/2,) in {0, 1, 2}
    angles = np.empty(positions.shape[1:] + (dim // 2,), dtype=np.float64)
    for a in range(3):
        pairs = axis == a
        angles[..., pairs] = positions[a][..., None] * theta[pairs]
    return angles


@spec(family="multiaxis", reference=MROPE_REFERENCE)
def mrope_angles(positions, dim, /, *, base=10_000.0, mrope_section, section_order="blocks", interleaved=None):
    r"""Rotation angles of multimodal RoPE (M-RoPE): each frequency follows one of three coordinates.

    Every token carries three coordinates (temporal, height, width).  Rotary
    pair :math:`i` keeps the frequency :math:`\theta_i` of 1-D RoPE but is
    driven by one coordinate chosen by ``mrope_section``.  Text tokens,
    whose three coordinates are equal, get exactly the 1-D RoPE angles.

    Parameters
    ----------
    positions : array_like of real, shape ``(3, ...)``
        ``positions[0]``, ``positions[1]``, ``positions[2]``: temporal,
        height and width coordinate of each token (the ``(3, B, S)``
        ``position_ids`` of Qwen2-VL); non-negative, finite.
    dim : int
        Number of rotated channels (the head width), positive and even.
    base : float, keyword-only
        The base :math:`b` of :func:`posref.rope_frequencies`, greater than
        1.  Released Qwen2-VL checkpoints set ``rope_theta`` to 1000000.
    mrope_section : sequence of 3 int, keyword-only
        Number of rotary pairs given to the temporal, height and width
        coordinate; non-negative and summing to ``dim/2``.  Qwen2-VL:
        ``[16, 24, 24]`` for ``dim=128``; Qwen3-VL: ``[24, 20, 20]``.
    section_order : {"blocks", "round_robin"}, keyword-only
        How the sections are laid over the pairs.  ``"blocks"`` (default):
        contiguous sections, all temporal pairs, then height, then width
        (Qwen2-VL, Qwen2.5-VL; Hugging Face
        ``apply_multimodal_rotary_pos_emb``, vLLM ``MRotaryEmbedding``,
        Liger).  ``"round_robin"``: the T/H/W pattern of Qwen3-VL, pair
        :math:`i` going to coordinate :math:`i \bmod 3` while that
        coordinate has pairs left (Hugging Face ``apply_interleaved_mrope``,
        vLLM ``mrope_interleaved``, which call it *interleaved*).  Not to be
        confused with the channel ``layout="interleaved"`` of
        :func:`apply_mrope`, which says which channels form a pair.
    interleaved : bool or None, keyword-only
        Deprecated name of ``section_order``: ``True`` is
        ``"round_robin"``, ``False`` is ``"blocks"``; passing it warns with
        :class:`DeprecationWarning`.  Giving it together with a
        ``section_order`` other than ``"blocks"`` raises :class:`TypeError`.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``positions.shape[1:] + (dim // 2,)``.

    Raises
    ------
    TypeError
        If ``positions`` is not a real array, ``dim`` is not an integer,
        ``base`` not a real number, ``mrope_section`` not a sequence of
        integers, ``interleaved`` not a bool, or ``section_order`` and
        ``interleaved`` are both given.
    ValueError
        If ``positions`` does not have first dimension 3 or holds negative
        or non-finite values, ``dim`` is not positive and even,
        ``base <= 1``, ``mrope_section`` has a negative entry, does not sum
        to ``dim/2``, or (round robin) does not fit the pattern, or
        ``section_order`` is unknown.

    Notes
    -----
    .. math::

        \phi_i = p_{a(i)}\,\theta_i, \qquad
        \theta_i = \text{base}^{-2i/\text{dim}}, \qquad
        i = 0, \dots, \text{dim}/2 - 1

    With :math:`(s_0, s_1, s_2)` = ``mrope_section`` the driving coordinate
    :math:`a(i)` is, for contiguous sections,

    .. math::

        a(i) = \begin{cases} 0 \ (\text{temporal}) & i < s_0 \\
        1 \ (\text{height}) & s_0 \le i < s_0 + s_1 \\
        2 \ (\text{width}) & \text{otherwise} \end{cases}

    and round robin :math:`a(i) = 1` if :math:`i \equiv 1
    \pmod 3` and :math:`i < 3 s_1`, :math:`a(i) = 2` if :math:`i \equiv 2
    \pmod 3` and :math:`i < 3 s_2`, otherwise :math:`a(i) = 0`: the pattern
    ``T H W T H W ... T T``.  Both orders equal 1-D RoPE when the three
    coordinates are equal.  In the half layout Hugging Face applies the
    same sections to both halves of the channels (``mrope_section * 2``),
    which is what :func:`apply_mrope` does with ``layout="half"``.

    References
    ----------
    .. [1] P. Wang et al., "Qwen2-VL: Enhancing Vision-Language Model's
       Perception of the World at Any Resolution", 2024, arXiv:2409.12191,
       sec. 2.1 (Multimodal Rotary Position Embedding).
    .. [2] S. Bai et al., "Qwen3-VL Technical Report", 2025,
       arXiv:2511.21631 (interleaved MRoPE, here ``section_order="round_robin"``).

    Examples
    --------
    ``dim=8``: :math:`\theta = [1, 0.1, 0.01, 0.001]`.  A token at
    temporal 1, height 2, width 3 with sections ``[2, 1, 1]``:

    >>> from posref import mrope_angles
    >>> mrope_angles([1, 2, 3], 8, mrope_section=[2, 1, 1])
    array([1.   , 0.1  , 0.02 , 0.003])
    >>> mrope_angles([1, 2, 3], 8, mrope_section=[2, 1, 1], section_order="round_robin")
    array([1.   , 0.2  , 0.03 , 0.001])
    """
    positions = ensure_positions("positions", positions, integer=False, min_ndim=1)
    dim = ensure_int("dim", dim, minimum=1, even=True)
    base = ensure_real("base", base, exclusive_minimum=1.0)
    section = _ensure_mrope_section(mrope_section)
    round_robin = _round_robin("mrope_angles", section_order, interleaved)
    if positions.shape[0] != 3:
        raise ValueError(
            f"positions must have first dimension 3 (temporal, height, width), got shape {positions.shape}"
        )
    _check_mrope_fit(section, dim // 2, round_robin, f"dim/2 = {dim // 2}")
    return _mrope_angles(positions, dim, base, section, round_robin)


@spec(family="multiaxis", reference=MROPE_REFERENCE)
def apply_mrope(
    x, positions, /, *, base=10_000.0, mrope_section, section_order="blocks", layout="half", interleaved=None
):
    r"""Rotate queries or keys by multimodal RoPE (M-RoPE).

    :func:`mrope_angles` of the three coordinates, applied with
    :func:`posref.apply_rotary`.

    Parameters
    ----------
    x : array_like of real, shape ``(..., D)``
        Features to rotate; ``D`` even and non-zero.
    positions : array_like of real, shape ``(3, ...)``
        Temporal, height and width coordinate of each token;
        ``positions.shape[1:]`` must broadcast against ``x.shape[:-1]``.
        For ``x`` of shape ``(B, H, S, D)`` pass ``(3, B, 1, S)``.
    base, mrope_section, section_order : keyword-only
        As in :func:`mrope_angles`, with ``dim = D``.
    layout : {"half", "interleaved"}, keyword-only
        Which channels form rotary pair ``i`` (see
        :func:`posref.apply_rotary`).  ``"half"`` is what Qwen2-VL and
        Qwen3-VL use (``rotate_half``; vLLM ``is_neox_style=True``).
        Independent of ``section_order``, which says which coordinate
        drives pair ``i``.
    interleaved : bool or None, keyword-only
        Deprecated name of ``section_order``, as in :func:`mrope_angles`.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``broadcast(x.shape[:-1],
        positions.shape[1:]) + (D,)``.

    Raises
    ------
    TypeError
        If ``x`` or ``positions`` is not a real array, ``base`` not a real
        number, ``mrope_section`` not a sequence of integers,
        ``interleaved`` not a bool, or ``section_order`` and ``interleaved``
        are both given.
    ValueError
        If ``D`` is odd or zero, ``positions`` does not have first dimension
        3, holds negative or non-finite values, or does not broadcast
        against ``x``, ``mrope_section`` does not sum to ``D/2`` or does not
        fit the round-robin pattern, ``base <= 1``, or ``section_order`` or
        ``layout`` is unknown.

    Notes
    -----
    .. math::

        u_i' + \mathrm{i}\,v_i' = (u_i + \mathrm{i}\,v_i)\,e^{\mathrm{i}\,p_{a(i)}\theta_i}

    with :math:`(u_i, v_i)` the members of pair :math:`i` in ``layout`` and
    :math:`a(i)` the coordinate chosen by ``mrope_section`` (see
    :func:`mrope_angles`).

    References
    ----------
    .. [1] P. Wang et al., "Qwen2-VL: Enhancing Vision-Language Model's
       Perception of the World at Any Resolution", 2024, arXiv:2409.12191,
       sec. 2.1.

    Examples
    --------
    With three equal coordinates M-RoPE is 1-D RoPE:

    >>> import numpy as np
    >>> from posref import apply_mrope, apply_rotary, rope_angles
    >>> x = np.arange(8.0)
    >>> m = apply_mrope(x, [5, 5, 5], mrope_section=[2, 1, 1])
    >>> bool(np.allclose(m, apply_rotary(x, rope_angles(5, 8))))
    True
    """
    x, x_checked = _float_view("x", x)
    with _x_error_first("x", x, x_checked):
        positions = ensure_positions("positions", positions, integer=False, min_ndim=1)
        base = ensure_real("base", base, exclusive_minimum=1.0)
        section = _ensure_mrope_section(mrope_section)
        round_robin = _round_robin("apply_mrope", section_order, interleaved)
        layout = ensure_choice("layout", layout, ROTARY_LAYOUTS)
        d = x.shape[-1]
        if d == 0 or d % 2:
            raise ValueError(f"x must have an even, non-zero last dimension (D), got shape {x.shape}")
        if positions.shape[0] != 3:
            raise ValueError(
                f"positions must have first dimension 3 (temporal, height, width), got shape {positions.shape}"
            )
        _check_mrope_fit(section, d // 2, round_robin, f"D/2 = {d // 2} (x has shape {x.shape})")
        _check_broadcast(x, positions, "positions")
    angles = _mrope_angles(positions, d, base, section, round_robin)  # (..., D/2)
    # apply_rotary(x, angles, layout=layout), without checking x twice
    return _rotate_by_angles(x, angles, layout, check_x=None if x_checked else "x")


def _ensure_segment(i, segment, merge):
    """Return ("text", n) or ("grid", (t, h, w)) in merged units for one validated segment."""
    what = "a non-negative integer (text tokens) or a (t, h, w) triple of positive integers (a vision grid)"
    if isinstance(segment, (numbers.Integral, np.integer)) and not isinstance(segment, (bool, np.bool_)):
        return "text", ensure_int(f"segments[{i}]", segment, minimum=0)
    if isinstance(segment, np.ndarray):
        segment = segment.tolist()
    if isinstance(segment, (str, bytes)) or not isinstance(segment, Sequence):
        raise TypeError(f"segments[{i}] must be {what}, got {segment!r} of type {type(segment).__name__}")
    if len(segment) != 3:
        raise ValueError(f"segments[{i}] must be {what}, got {list(segment)!r} of length {len(segment)}")
    t, h, w = (ensure_int(f"segments[{i}][{j}]", v, minimum=1) for j, v in enumerate(segment))
    for name, side in (("h", h), ("w", w)):
        if side % merge:
            raise ValueError(f"segments[{i}] has {name}={side}, which is not divisible by spatial_merge_size={merge}")
    return "grid", (t, h // merge, w // merge)


@spec(family="multiaxis", reference=MROPE_REFERENCE)
def mrope_position_ids(segments, /, *, spatial_merge_size=2):
    r"""Three-coordinate position ids of a sequence of text runs and vision grids (Qwen2-VL).

    Text tokens get the same index on all three coordinates, counting on
    from the previous segment; the tokens of a vision grid get their
    (temporal, row, column) index in the merged grid, all offset by the
    first free index.  This is the rule of Qwen2-VL's ``get_rope_index``
    for one sequence without padding.

    Parameters
    ----------
    segments : sequence
        The sequence in order.  An integer ``n >= 0`` is a run of ``n``
        text tokens (include the vision start/end marker tokens here); a
        triple ``(t, h, w)`` of positive integers is a vision grid in
        patches before merging, as in ``image_grid_thw`` /
        ``video_grid_thw``, contributing ``t * (h/m) * (w/m)`` tokens with
        ``m`` = ``spatial_merge_size``.
    spatial_merge_size : int, keyword-only
        Side ``m`` of the square of patches merged into one token; ``h`` and
        ``w`` must be multiples of it.  Qwen2-VL merges 2 x 2 patches.

    Returns
    -------
    numpy.ndarray
        int64 array of shape ``(3, S)``: temporal, height and width
        coordinate of each of the ``S`` tokens, ready for
        :func:`mrope_angles`.

    Raises
    ------
    TypeError
        If ``segments`` is not a sequence, a segment is neither an integer
        nor a triple of integers, or ``spatial_merge_size`` is not an
        integer.
    ValueError
        If a text run is negative, a grid side is not positive, a grid has
        the wrong length, ``h`` or ``w`` is not divisible by
        ``spatial_merge_size``, or ``spatial_merge_size`` is not positive.

    Notes
    -----
    Let :math:`s` be one more than the largest coordinate so far (0 at the
    start).  A text run of length :math:`n` gets :math:`(s + j, s + j, s +
    j)`, :math:`j = 0, \dots, n - 1`; a merged grid :math:`(t, h', w')`
    gets, for each frame :math:`f`, row :math:`r` and column :math:`c` in
    that order,

    .. math::

        (s + f,\ s + r,\ s + c)

    The index after a grid is :math:`s + \max(t, h', w')`.  The decoding
    offset Qwen2-VL caches (``rope_deltas``) is the largest coordinate plus
    one minus :math:`S`.  Qwen2.5-VL scales the temporal index of video
    frames by ``second_per_grid_t * tokens_per_second``, and Qwen3-VL
    writes frame timestamps as text tokens; those video rules are not
    covered here.

    References
    ----------
    .. [1] P. Wang et al., "Qwen2-VL: Enhancing Vision-Language Model's
       Perception of the World at Any Resolution", 2024, arXiv:2409.12191,
       sec. 2.1.

    Examples
    --------
    Two text tokens, a 4 x 6 patch image (2 x 3 tokens after merging), then
    three text tokens, which continue from the largest coordinate (4) plus
    one:

    >>> from posref import mrope_position_ids
    >>> mrope_position_ids([2, (1, 4, 6), 3])
    array([[0, 1, 2, 2, 2, 2, 2, 2, 5, 6, 7],
           [0, 1, 2, 2, 2, 3, 3, 3, 5, 6, 7],
           [0, 1, 2, 3, 4, 2, 3, 4, 5, 6, 7]])
    """
    merge = ensure_int("spatial_merge_size", spatial_merge_size, minimum=1)
    if isinstance(segments, np.ndarray):
        segments = segments.tolist()
    if isinstance(segments, (str, bytes)) or not isinstance(segments, Sequence):
        raise TypeError(
            f"segments must be a sequence of text lengths and (t, h, w) grids, got "
            f"segments={segments!r} of type {type(segments).__name__}"
        )
    parsed = [_ensure_segment(i, segment, merge) for i, segment in enumerate(segments)]

    blocks = []
    start = 0  # one more than the largest coordinate so far
    for kind, value in parsed:
        if kind == "text":
            block = np.broadcast_to(start + np.arange(value, dtype=np.int64), (3, value))
            start += value
        else:
            t, h, w = value
            f, r, c = np.meshgrid(np.arange(t), np.arange(h), np.arange(w), indexing="ij")  # (t, h, w)
            block = start + np.stack([f.reshape(-1), r.reshape(-1), c.reshape(-1)]).astype(np.int64)
            start += max(t, h, w)
        blocks.append(block)
    if not blocks:
        return np.zeros((3, 0), dtype=np.int64)
    return np.concatenate(blocks, axis=1)
