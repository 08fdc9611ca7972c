r"""Rotary position embedding (RoPE).

Shape letters used throughout posref: ``B`` batch, ``H`` heads, ``T`` query
positions, ``S`` key positions, ``D`` features per head.
"""

from __future__ import annotations

import numpy as np

from posref import _arith
from posref._spec import spec
from posref._validate import ensure_array, ensure_choice, ensure_int, ensure_positions, ensure_real

__all__ = ["rope_frequencies", "rope_angles", "rope_cos_sin", "apply_rotary", "apply_rope"]

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
    theta = _arith.power(base, -2.0 * i / dim)
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
    dim = ensure_int("dim", dim, minimum=1, even=True)
    base = ensure_real("base", base, exclusive_minimum=1.0)
    theta = rope_frequencies(dim, base=base)
    return positions[..., None] * theta  # (..., dim/2)


@spec(family="rope", reference=ROPE_REFERENCE)
def rope_cos_sin(positions, dim, /, *, base=10_000.0, layout="half"):
    r"""Cosine and sine tables of RoPE, expanded to one entry per channel.

    Every pair angle :math:`\phi_{p,i} = p\,\theta_i` (see
    :func:`rope_angles`) appears once for each of the two channels of
    pair :math:`i`, in the order the layout gives those channels.  This
    is the form the rotary modules of Hugging Face ``transformers``
    return and ``apply_rotary_pos_emb`` consumes; vLLM
    (``cos_sin_cache``) and flash-attn cache only the ``dim/2`` distinct
    values and pair them with the channel halves directly, which is
    :func:`apply_rotary`.  With these tables a rotation is

    .. math::

        x' = x \odot \cos + \operatorname{rot}(x) \odot \sin

    where :math:`\operatorname{rot}` is ``rotate_half``
    (:math:`(x_a, x_b) \mapsto (-x_b, x_a)` on the two halves) for the
    half layout and ``rotate_every_two`` (the same map on channels
    :math:`2i, 2i+1`) for the interleaved layout.

    Parameters
    ----------
    positions : array_like of real, shape ``(...)``
        Token positions; non-negative, finite; fractional values allowed.
    dim : int
        Number of rotated channels, positive and even.
    base : float, keyword-only
        The base of :func:`rope_frequencies`, greater than 1.
    layout : {"half", "interleaved"}, keyword-only
        ``"half"``: channel ``j`` and ``j + dim/2`` hold pair ``j``, so the
        tables are ``concat(c, c)`` (GPT-NeoX, Hugging Face ``rotate_half``
        models, vLLM ``is_neox_style=True``).  ``"interleaved"``: channels
        ``2i`` and ``2i + 1`` hold pair ``i``, so every entry is repeated
        twice in place (GPT-J, Meta's complex form, torchtune).  Default
        ``"half"``, as in :func:`apply_rotary`.

    Returns
    -------
    cos, sin : tuple of numpy.ndarray
        Two float64 arrays, each of shape ``positions.shape + (dim,)``.

    Raises
    ------
    TypeError
        If ``positions`` is not a real array, or ``dim``/``base`` have the
        wrong type.
    ValueError
        If ``positions`` holds negative or non-finite values, ``dim`` is
        not positive and even, ``base <= 1``, or ``layout`` is unknown.

    See Also
    --------
    rope_angles : The angles these tables are the cosine and sine of.
    apply_rope : Rotate queries or keys with these angles.

    References
    ----------
    .. [1] J. Su et al., "RoFormer: Enhanced Transformer with Rotary
       Position Embedding", 2021, arXiv:2104.09864, eq. (34).

    Examples
    --------
    Position 1 with ``dim=4``, ``base=100``: the pair angles are 1 and 0.1.

    >>> from posref import rope_cos_sin
    >>> cos, sin = rope_cos_sin([1], 4, base=100.0)
    >>> cos.round(4)
    array([[0.5403, 0.995 , 0.5403, 0.995 ]])
    >>> cos, sin = rope_cos_sin([1], 4, base=100.0, layout="interleaved")
    >>> sin.round(4)
    array([[0.8415, 0.8415, 0.0998, 0.0998]])
    """
    positions = ensure_positions("positions", positions, integer=False)
    dim = ensure_int("dim", dim, minimum=1, even=True)
    base = ensure_real("base", base, exclusive_minimum=1.0)
    layout = ensure_choice("layout", layout, LAYOUTS)
    angles = rope_angles(positions, dim, base=base)  # (..., dim/2)
    if layout == "half":
        phi = np.concatenate([angles, angles], axis=-1)  # (..., dim): [c, c]
    else:
        phi = np.repeat(angles, 2, axis=-1)  # (..., dim): [c0, c0, c1, c1, ...]
    return _arith.cos(phi), _arith.sin(phi)


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
    cos, sin = _arith.cos(angles), _arith.sin(angles)
    x_a, x_b = _pair_views(x, layout)  # each (..., D/2)
    rotated_a = x_a * cos - x_b * sin
    rotated_b = x_b * cos + x_a * sin
    return _merge_pairs(rotated_a, rotated_b, layout)


ROTATED_SLICES = ("first", "last", "first_pairs")
FREQ_DENOMINATORS = ("rotary_dim", "head_dim")


def _check_positions_against(positions, x):
    """Raise unless ``positions`` broadcasts to ``x.shape[:-1]`` without growing it."""
    target = x.shape[:-1]
    try:
        ok = np.broadcast_shapes(positions.shape, target) == target
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"positions must broadcast to x.shape[:-1] = {target}, got positions of shape "
            f"{positions.shape} for x of shape {x.shape}; for x of shape (B, H, T, D) pass "
            "positions of shape (T,) or (B, 1, T)"
        )


def _rotated_channels(head_dim, rotary_dim, rotated_slice, layout):
    """Indices of the rotated channels, in the order the layout reads them."""
    if rotated_slice == "first":
        return np.arange(rotary_dim)
    if rotated_slice == "last":
        return np.arange(head_dim - rotary_dim, head_dim)
    if layout == "interleaved":  # the first rotary_dim/2 pairs are channels 0..rotary_dim-1
        return np.arange(rotary_dim)
    half = np.arange(rotary_dim // 2)
    return np.concatenate([half, head_dim // 2 + half])  # pairs (j, j + D/2), j < rotary_dim/2


def _pair_slices(head_dim, rotary_dim, rotated_slice, layout):
    """First and second channel of every rotated pair, as two slices of the head."""
    start = head_dim - rotary_dim if rotated_slice == "last" else 0
    if layout == "interleaved":  # pairs (2i, 2i + 1); "first_pairs" is "first" here
        return slice(start, start + rotary_dim, 2), slice(start + 1, start + rotary_dim, 2)
    half = rotary_dim // 2
    second = head_dim // 2 if rotated_slice == "first_pairs" else start + half
    return slice(start, start + half), slice(second, second + half)


def _row_blocks(shape, block_bytes=2**17):
    """Index tuples cutting a float64 array of ``shape`` into blocks of whole rows (last axis).

    Each block is a run of at most about ``block_bytes`` along axis -2 at
    one index of the axes before it.  Working block by block keeps every
    temporary small enough to stay in cache and to be recycled by the
    allocator, so the result is the only full-size allocation; elementwise
    arithmetic gives the same bits in any blocking.
    """
    if len(shape) < 2:
        yield ()
        return
    step = max(1, block_bytes // (8 * max(shape[-1], 1)))
    for lead in np.ndindex(shape[:-2]):
        for start in range(0, shape[-2], step):
            yield lead + (slice(start, start + step),)


@spec(family="rope", reference=ROPE_REFERENCE)
def apply_rope(
    x,
    positions,
    /,
    *,
    base=10_000.0,
    layout="half",
    rotary_dim=None,
    rotated_slice="first",
    freq_denominator="rotary_dim",
    position_offset=0,
):
    r"""Apply rotary position embedding to queries or keys.

    Every rotated channel pair :math:`(x_a, x_b)` of the token at position
    :math:`p` is turned by the angle :math:`(p + p_0)\,\theta_i`; channels
    outside the rotated set pass through unchanged (partial rotary).  The
    same function serves queries and keys: the attention score
    :math:`\langle R(m) q, R(n) k \rangle` then depends on the positions
    only through :math:`n - m`.

    Parameters
    ----------
    x : array_like of real, shape ``(..., D)``
        Features per head, for example ``(B, H, T, D)`` or ``(T, D)``;
        ``D`` (the head dimension) positive and even.  Any leading axes.
    positions : array_like of real
        Position of every token; non-negative, finite, fractional values
        allowed.  Its shape must broadcast to ``x.shape[:-1]`` (NumPy
        rules, aligned on the right) without enlarging it: for ``x`` of
        shape ``(B, H, T, D)`` pass ``(T,)`` (same positions everywhere)
        or ``(B, 1, T)`` (per sequence, shared by the heads); for
        ``(B, T, H, D)`` pass ``(B, T, 1)``.
    base : float, keyword-only
        The base of :func:`rope_frequencies`, greater than 1
        (``rope_theta`` in model configs).
    layout : {"half", "interleaved"}, keyword-only
        How channels form pairs inside the rotated set; see
        :func:`apply_rotary`.  Default ``"half"`` (GPT-NeoX, Hugging Face
        ``rotate_half``, vLLM ``is_neox_style=True``, ONNX
        ``interleaved=0``); ``"interleaved"`` is the paper's pairing
        (GPT-J, Meta's complex form, torchtune, ONNX ``interleaved=1``).
    rotary_dim : int or None, keyword-only
        Number of rotated channels :math:`r`, positive, even and at most
        ``D``; ``None`` (default) rotates all ``D`` channels.  Hugging
        Face derives it as ``int(head_dim * partial_rotary_factor)``,
        GPT-NeoX from ``rotary_pct``, GPT-J passes ``rotary_dim``.
    rotated_slice : {"first", "last", "first_pairs"}, keyword-only
        Which channels are rotated when :math:`r < D`.  ``"first"``
        (default): channels ``0 .. r-1``, paired among themselves by
        ``layout`` (Hugging Face, vLLM, ONNX ``rotary_embedding_dim``,
        GPT-J, GPT-NeoX, flash-attn, x-transformers).  ``"last"``:
        channels ``D-r .. D-1`` (DeepSeek MLA, whose heads concatenate
        the pass-through part and then the rotary part).
        ``"first_pairs"``: the first :math:`r/2` pairs of the layout
        applied to the whole head, i.e. channels ``j`` and ``j + D/2``
        for :math:`j < r/2` in the half layout (Hugging Face
        ``rope_type="proportional"``, which pads the frequency table
        with zeros up to ``D/2``); identical to ``"first"`` for the
        interleaved layout.
    freq_denominator : {"rotary_dim", "head_dim"}, keyword-only
        The :math:`d'` in :math:`\theta_i = \text{base}^{-2i/d'}`.
        ``"rotary_dim"`` (default; Hugging Face default, linear, dynamic,
        YaRN, LongRoPE and Llama 3 types, vLLM, GPT-NeoX):
        :math:`d' = r`.  ``"head_dim"`` (Hugging Face
        ``"proportional"``): :math:`d' = D`, so the rotated pairs keep the
        slowest-decaying part of the full-head spectrum.  No difference
        when :math:`r = D`.
    position_offset : float, keyword-only
        Non-negative :math:`p_0` added to every position, default 0: the
        number of tokens already in a KV cache during incremental
        decoding (flash-attn ``seqlen_offsets``, ONNX Runtime's scalar
        ``position_ids``).  Same result as passing ``positions + p_0``.

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
        If ``D`` is odd or zero, ``positions`` is negative, non-finite or
        does not broadcast to ``x.shape[:-1]``, ``x`` is not finite,
        ``rotary_dim`` is not a positive even integer at most ``D``,
        ``base <= 1``, ``position_offset < 0``, or ``layout``,
        ``rotated_slice`` or ``freq_denominator`` is not one of its
        values.

    See Also
    --------
    rope_angles, rope_cos_sin, apply_rotary : The layers this composes.

    Notes
    -----
    With :math:`\mathcal{R}` the rotated channels and
    :math:`(a_i, b_i)` the channels of pair :math:`i` in
    :math:`\mathcal{R}`:

    .. math::

        \begin{pmatrix} y_{a_i} \\ y_{b_i} \end{pmatrix} =
        \begin{pmatrix} \cos\phi_i & -\sin\phi_i \\
                        \sin\phi_i & \cos\phi_i \end{pmatrix}
        \begin{pmatrix} x_{a_i} \\ x_{b_i} \end{pmatrix},
        \qquad \phi_i = (p + p_0)\,\text{base}^{-2i/d'},
        \qquad i = 0, \dots, r/2 - 1,

    and :math:`y_c = x_c` for every channel :math:`c \notin \mathcal{R}`.
    The rotation is by :math:`+\phi` (the sign of every implementation
    surveyed), which is the complex product
    :math:`(x_a + i x_b)\,e^{i\phi}` of [1]_.

    References
    ----------
    .. [1] J. Su et al., "RoFormer: Enhanced Transformer with Rotary
       Position Embedding", 2021, arXiv:2104.09864, eqs. (15), (34).

    Examples
    --------
    One token at position 1 with ``D = 4``: the pair angles are 1 and
    0.01.  The half layout pairs channels (0, 2) and (1, 3), the
    interleaved layout (0, 1) and (2, 3).

    >>> import numpy as np
    >>> from posref import apply_rope
    >>> apply_rope(np.ones((1, 4)), [1]).round(4)
    array([[-0.3012,  0.99  ,  1.3818,  1.0099]])
    >>> apply_rope(np.ones((1, 4)), [1], layout="interleaved").round(4)
    array([[-0.3012,  1.3818,  0.99  ,  1.0099]])

    Only the first two channels turn with ``rotary_dim=2``:

    >>> apply_rope(np.ones((1, 4)), [1], rotary_dim=2).round(4)
    array([[-0.3012,  1.3818,  1.    ,  1.    ]])

    The score depends only on the offset between the two positions:

    >>> q = np.array([0.3, -1.2, 0.5, 2.0])
    >>> k = np.array([1.1, 0.4, -0.7, 0.9])
    >>> def score(m, n):
    ...     return apply_rope(q, m) @ apply_rope(k, n)
    >>> bool(np.isclose(score(5, 2), score(13, 10)))
    True
    """
    x = ensure_array("x", x, min_ndim=1)
    positions = ensure_positions("positions", positions, integer=False)
    base = ensure_real("base", base, exclusive_minimum=1.0)
    layout = ensure_choice("layout", layout, LAYOUTS)
    rotated_slice = ensure_choice("rotated_slice", rotated_slice, ROTATED_SLICES)
    freq_denominator = ensure_choice("freq_denominator", freq_denominator, FREQ_DENOMINATORS)
    position_offset = ensure_real("position_offset", position_offset, minimum=0.0)
    head_dim = x.shape[-1]
    if head_dim == 0 or head_dim % 2:
        raise ValueError(f"x must have an even, non-zero last dimension (head_dim D), got shape {x.shape}")
    if rotary_dim is None:
        rotary_dim = head_dim
    else:
        rotary_dim = ensure_int("rotary_dim", rotary_dim, minimum=1, even=True)
        if rotary_dim > head_dim:
            raise ValueError(
                f"rotary_dim must be a positive even integer <= {head_dim} (head_dim, the last "
                f"dimension of x), got rotary_dim={rotary_dim}"
            )
    _check_positions_against(positions, x)

    denominator = rotary_dim if freq_denominator == "rotary_dim" else head_dim
    angles = rope_angles(positions + position_offset, denominator, base=base)[..., : rotary_dim // 2]  # (..., r/2)
    cos = np.broadcast_to(_arith.cos(angles), x.shape[:-1] + angles.shape[-1:])  # (..., r/2), a view
    sin = np.broadcast_to(_arith.sin(angles), cos.shape)
    first, second = _pair_slices(head_dim, rotary_dim, rotated_slice, layout)
    out = x.copy() if rotary_dim < head_dim else np.empty(x.shape)  # unrotated channels pass through
    for block in _row_blocks(x.shape):
        x_a, x_b = x[block][..., first], x[block][..., second]
        y_a, y_b = out[block][..., first], out[block][..., second]
        c, s = cos[block], sin[block]
        np.subtract(x_a * c, x_b * s, out=y_a)  # y_a = x_a cos(phi) - x_b sin(phi)
        np.add(x_b * c, x_a * s, out=y_b)  # y_b = x_b cos(phi) + x_a sin(phi)
    return out
