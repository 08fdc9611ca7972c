r"""Rotary position embedding (RoPE).

Shape letters used throughout posref: ``B`` batch, ``H`` heads, ``T`` query
positions, ``S`` key positions, ``D`` features per head.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading

import numpy as np
from numpy.lib.stride_tricks import as_strided

from posref import _arith
from posref._spec import helper, spec
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


# -- the rotation kernel shared by every rotary function ------------------------------------
#
# Every rotary function (apply_rotary, apply_rope, apply_xpos, apply_axial_rope, apply_mrope,
# apply_fope) ends in the same elementwise formula: for each rotated pair (x_a, x_b) with the
# cosine c and sine s of its angle,
#
#     y_a = x_a c - x_b s,    y_b = x_b c + x_a s    (each product rounded, then one sum)
#
# optionally times a per-pair factor (xPos).  _rotate evaluates exactly these roundings, block by
# block of rows into a preallocated output with out= ufuncs, so that no temporary is larger than a
# block: y_a is computed as fl(x_a c) + fl(x_b (-s)), which is the same number because negation is
# exact and a - b is a + (-b) in IEEE arithmetic.  No fused multiply-add, no reassociation.  The
# cosines and sines come from _arith, once per (position, pair) and block of rows, and are shared
# by every row of x that has the same position (the heads, usually).  tests/test_fast_paths.py
# proves the results bit-identical to the plain whole-array formula.

#: Threads the rotations may use on large inputs in the default (fast) mode: the blocks of rows
#: are split between them, which changes no bit (every value is elementwise).  1 turns it off;
#: inside ``_arith.precise()`` one thread is always used.
_THREADS = max(1, min(2, os.cpu_count() or 1))
#: Output elements from which a second thread is worth starting.
_THREAD_MIN_ELEMENTS = 1 << 21


def _use_threads(size):
    return _THREADS > 1 and size >= _THREAD_MIN_ELEMENTS and not _arith.is_precise()


def _in_threads(calls, size):
    """Run the zero-argument ``calls`` (in two threads when worthwhile) and return their results in order.

    The first half of the calls runs in this thread, the rest in a helper thread (in a copy of
    this thread's context); an exception of any call is raised here, the earliest call's first.
    """
    if len(calls) == 1 or not _use_threads(size):
        return [call() for call in calls]
    results = [None] * len(calls)
    errors = [None] * len(calls)

    def run(i, call):
        try:
            results[i] = call()
        except BaseException as exc:  # re-raised below, in the caller's thread
            errors[i] = exc

    half = (len(calls) + 1) // 2
    context = contextvars.copy_context()
    helper = threading.Thread(target=lambda: [context.run(run, i, c) for i, c in list(enumerate(calls))[half:]])
    helper.start()
    try:
        for i, call in list(enumerate(calls))[:half]:
            run(i, call)
    finally:
        helper.join()
    for error in errors:
        if error is not None:
            raise error
    return results


def _float_view(name, value, *, min_ndim=1):
    """``value`` as a float64 array to read from, and whether its finiteness is already checked.

    A float64 ndarray is used as it is, without the copy ``ensure_array`` makes; :func:`_rotate`
    checks its values while it reads them (``check_x``).  Anything else goes through
    ``ensure_array`` (a checked float64 copy).
    """
    if type(value) is np.ndarray and value.dtype == np.float64 and value.ndim >= min_ndim:
        return value, False
    return ensure_array(name, value, min_ndim=min_ndim), True


def _require_finite(name, array):
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must contain only finite values (no NaN or inf)")


@contextlib.contextmanager
def _x_error_first(name, array, checked):
    """Run argument checks; if one fails, report a non-finite ``array`` first, as ensure_array would have."""
    try:
        yield
    except (TypeError, ValueError):
        if not checked:
            _require_finite(name, array)
        raise


def _passthrough_runs(d, first, second):
    """Slices of the channels in no rotated pair (copied unchanged)."""
    keep = np.ones(d, dtype=bool)
    keep[first] = False
    keep[second] = False
    edges = np.flatnonzero(np.diff(np.concatenate([[False], keep, [False]]).astype(np.int8)))
    return [slice(int(a), int(b)) for a, b in zip(edges[0::2], edges[1::2])]


def _array_tables(cos, sin, scale=None):
    """Tables already evaluated: ``(lookup, shape)`` for :func:`_rotate`."""
    def lookup(index):
        return cos[index], sin[index], None if scale is None else scale[index]

    return lookup, cos.shape[:-1]


def _angle_tables(angles_of, shape, *more):
    """Tables evaluated block by block: ``angles_of(index)`` gives the angles of the rows at
    ``index`` (into ``shape``); ``more`` are functions of ``index`` giving extra per-pair tables."""
    def lookup(index):
        angles = angles_of(index)
        extra = [f(index) for f in more]
        return (_arith.cos(angles), _arith.sin(angles), *(extra or [None]))

    return lookup, shape


def _rotate(x, tables, layout, first, second, *, check_x=None, block_bytes=2**18):
    """Rotate the channel pairs ``(first[i], second[i])`` of ``x``; copy every other channel.

    ``x`` is float64 of shape ``(..., D)``.  ``tables`` is ``(lookup, shape)``: ``shape``
    broadcasts with ``x.shape[:-1]`` (together they give the rows of the result) and
    ``lookup(index)``, for an index into an array of that shape (a block of rows along its last
    axis), returns the cosines, sines and per-pair factors (or ``None``) of those rows, each of
    shape ``(..., P)``.  ``first`` and ``second`` are slices of P channels: step 1 for the half
    layout, step 2 with ``second.start == first.start + 1`` for the interleaved layout.
    ``check_x``: the name under which a non-finite ``x`` is reported, when ``x`` is not checked yet.
    """
    lookup, table_shape = tables
    rows_shape = np.broadcast_shapes(x.shape[:-1], table_shape)
    if not rows_shape:  # a single vector: one row of a 2-D problem
        return _rotate(x[None], (lambda index: lookup(index[1:]), (1,)), layout, first, second,
                       check_x=check_x, block_bytes=block_bytes)[0]
    d = x.shape[-1]
    p = len(range(*first.indices(d)))
    shape = rows_shape + (d,)
    out = np.empty(shape)
    xb = np.broadcast_to(x, shape)
    if check_x is not None and xb.shape != x.shape:  # x is repeated: check the smaller array once
        _require_finite(check_x, x)
        check_x = None
    if out.size == 0:
        return out
    # where the tables of a row of the result are: table axes of length 1 broadcast
    table_axes = (1,) * (len(rows_shape) - len(table_shape)) + tuple(table_shape)
    skipped = len(rows_shape) - len(table_shape)
    if layout == "half":
        a0, gap = first.start, second.start - first.start
        unit = xb.strides[-1]
        pair_shape = rows_shape + (2, p)  # [..., 0, i] is x_a of pair i, [..., 1, i] is x_b
        x_pairs = as_strided(xb[..., a0:], pair_shape, xb.strides[:-1] + (gap * unit, unit), writeable=False)
        x_swapped = as_strided(xb[..., a0 + gap:], pair_shape, xb.strides[:-1] + (-gap * unit, unit),
                               writeable=False)
        y_pairs = as_strided(out[..., a0:], pair_shape, out.strides[:-1] + (gap * 8, 8))
        views = (x_pairs, x_swapped, y_pairs)
    else:
        region = slice(first.start, first.start + 2 * p)
        views = (xb[..., region], out[..., region])
    passthrough = _passthrough_runs(d, first, second)
    leads = []
    for lead in np.ndindex(rows_shape[:-1]):
        at = tuple(i if n > 1 else 0 for i, n in zip(lead, table_axes[:-1]))
        leads.append((at, xb[lead], out[lead], tuple(v[lead] for v in views)))
    num_rows = rows_shape[-1]
    step = max(1, block_bytes // (8 * d))
    table_rows = table_axes[-1]

    def tables_for(at, rows, n):
        """(c, s, k) of a block in the layout's channel order: (t, 2, P) or (t, 2P), t = n or 1."""
        index = (at + (rows if table_rows > 1 else slice(0, 1),))[skipped:]  # into an array of table_shape
        cos, sin, scale = (None if a is None else np.asarray(a).reshape(-1, p) for a in lookup(index))
        if layout == "half":
            c_tab = np.stack([cos, cos], axis=-2)  # (t, 2, P)
            s_tab = np.stack([np.negative(sin), sin], axis=-2)
            k_tab = None if scale is None else np.stack([scale, scale], axis=-2)
        else:
            c_tab = np.repeat(cos, 2, axis=-1)  # (t, 2P): c0, c0, c1, c1, ...
            s_tab = np.ascontiguousarray(sin)
            k_tab = None if scale is None else np.repeat(scale, 2, axis=-1)
        return c_tab, s_tab, k_tab

    def rotate_block(x_l, y_l, views, rows, n, tabs, tmp):
        c_tab, s_tab, k_tab = tabs
        for run in passthrough:
            np.copyto(y_l[rows, run], x_l[rows, run])
        if layout == "half":
            x_pairs, x_swapped, y_pairs = views
            y = y_pairs[rows]
            t = tmp[: n * 2 * p].reshape(n, 2, p)
            np.multiply(x_pairs[rows], c_tab, out=y)  # (x_a c, x_b c)
            np.multiply(x_swapped[rows], s_tab, out=t)  # (x_b (-s), x_a s)
            np.add(y, t, out=y)  # (x_a c - x_b s, x_b c + x_a s)
        else:
            x_r, y_r = views
            xr, y, s = x_r[rows], y_r[rows], s_tab
            np.multiply(xr, c_tab, out=y)  # x_a c, x_b c, pair after pair
            yr = y
            if xr.flags.c_contiguous and y.flags.c_contiguous and s.shape[0] == n:
                xr, yr, s, t = xr.reshape(-1), y.reshape(-1), s.reshape(-1), tmp[: n * p]
            else:
                t = tmp[: n * p].reshape(n, p)
            x_a, x_b, y_a, y_b = xr[..., 0::2], xr[..., 1::2], yr[..., 0::2], yr[..., 1::2]
            np.multiply(x_b, s, out=t)
            np.subtract(y_a, t, out=y_a)  # x_a c - x_b s
            np.multiply(x_a, s, out=t)
            np.add(y_b, t, out=y_b)  # x_b c + x_a s
        if k_tab is not None:
            np.multiply(y, k_tab, out=y)  # xPos: both members times the pair's factor

    settings = np.geterr()  # the caller's, for blocks looked at again

    def work(part):
        tmp = np.empty(step * 2 * p)
        flags = None if check_x is None else np.empty((step, d), dtype=bool)
        for start in part:
            rows, n = slice(start, start + step), min(step, num_rows - start)
            made = {}
            for at, x_l, y_l, views in leads:
                if at not in made:  # once per block of rows and distinct table (the heads share it)
                    made = {at: tables_for(at, rows, n)}
                if check_x is None:
                    rotate_block(x_l, y_l, views, rows, n, made[at], tmp)
                    continue
                # x is checked here rather than by a pass of its own: a block whose result is
                # finite had finite inputs (an infinite or NaN input makes its pair infinite or
                # NaN) and raised no floating-point warning (they are off meanwhile).  A block
                # whose result is not finite is looked at again under the caller's settings: a
                # non-finite x is reported, otherwise (an overflow) the block is recomputed, so
                # that its warnings are the plain formula's.
                rotate_block(x_l, y_l, views, rows, n, made[at], tmp)
                if not np.isfinite(y_l[rows], out=flags[:n]).all():
                    with np.errstate(**settings):
                        if not np.isfinite(x_l[rows], out=flags[:n]).all():
                            raise ValueError(f"{check_x} must contain only finite values (no NaN or inf)")
                        rotate_block(x_l, y_l, views, rows, n, made[at], tmp)

    def checked_work(part):
        with np.errstate(all="ignore"):
            work(part)

    starts = range(0, num_rows, step)
    middle = (len(starts) + 1) // 2
    parts = [starts[:middle], starts[middle:]] if _use_threads(out.size) and len(starts) > 1 else [starts]
    run = work if check_x is None else checked_work
    _in_threads([lambda part=part: run(part) for part in parts], out.size)
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
    x, x_checked = _float_view("x", x)
    with _x_error_first("x", x, x_checked):
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
    return _rotate_by_angles(x, angles, layout, check_x=None if x_checked else "x")


def _rotate_by_angles(x, angles, layout, *, check_x=None):
    """:func:`apply_rotary` of validated arguments (every channel in a pair).

    The plain formula: ``cos, sin = _arith.cos(angles), _arith.sin(angles)``, then
    ``x_a * cos - x_b * sin`` and ``x_b * cos + x_a * sin`` on the pair views of the layout,
    merged back into the layout's channel order; :func:`_rotate` evaluates it block by block.
    """
    tables = _angle_tables(lambda index: angles[index], angles.shape[:-1])
    return _rotate(x, tables, layout, *_all_pairs(x.shape[-1], layout), check_x=check_x)


def _all_pairs(d, layout):
    """First and second channel of every pair of a ``d``-channel head, as two slices."""
    if layout == "half":
        return slice(0, d // 2), slice(d // 2, d)
    return slice(0, d, 2), slice(1, d, 2)


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


@helper(family="rope")
def rotated_channels(head_dim, /, *, rotary_dim=None, rotated_slice="first", layout="half"):
    r"""Indices of the channels that partial RoPE rotates, in increasing order.

    :func:`apply_rope` with ``rotary_dim`` :math:`r < D` rotates :math:`r`
    of the :math:`D` channels of a head and passes the others through;
    this returns which ones.  Taken in this order they form an
    :math:`r`-wide head that the same ``layout`` pairs as
    :func:`apply_rotary` does.  A helper, not a spec function: it has no
    golden cases.

    .. math::

        \mathcal{R} = \begin{cases}
        \{0, \dots, r - 1\} & \texttt{"first"} \\
        \{D - r, \dots, D - 1\} & \texttt{"last"} \\
        \{j,\ j + D/2 : j < r/2\} & \texttt{"first\_pairs"}, \text{ half layout}
        \end{cases}

    (``"first_pairs"`` in the interleaved layout is ``"first"``.)

    Parameters
    ----------
    head_dim : int
        The head dimension :math:`D`, positive and even.
    rotary_dim : int or None, keyword-only
        Number of rotated channels :math:`r`, positive, even and at most
        ``head_dim``; ``None`` (default) means all of them.
    rotated_slice : {"first", "last", "first_pairs"}, keyword-only
        As in :func:`apply_rope`.
    layout : {"half", "interleaved"}, keyword-only
        As in :func:`apply_rope`.

    Returns
    -------
    numpy.ndarray
        int64 array of shape ``(rotary_dim,)``.

    Raises
    ------
    TypeError
        If ``head_dim`` or ``rotary_dim`` is not an integer.
    ValueError
        If ``head_dim`` is not positive and even, ``rotary_dim`` is not a
        positive even integer at most ``head_dim``, or ``rotated_slice`` or
        ``layout`` is not one of its values.

    See Also
    --------
    apply_rope : The rotation whose channels these are.

    Examples
    --------
    >>> from posref.rope import rotated_channels
    >>> rotated_channels(8, rotary_dim=4)
    array([0, 1, 2, 3])
    >>> rotated_channels(8, rotary_dim=4, rotated_slice="last")
    array([4, 5, 6, 7])
    >>> rotated_channels(8, rotary_dim=4, rotated_slice="first_pairs")
    array([0, 1, 4, 5])
    """
    head_dim = ensure_int("head_dim", head_dim, minimum=1, even=True)
    if rotary_dim is None:
        rotary_dim = head_dim
    else:
        rotary_dim = ensure_int("rotary_dim", rotary_dim, minimum=1, even=True)
        if rotary_dim > head_dim:
            raise ValueError(
                f"rotary_dim must be a positive even integer <= {head_dim} (head_dim), got rotary_dim={rotary_dim}"
            )
    rotated_slice = ensure_choice("rotated_slice", rotated_slice, ROTATED_SLICES)
    layout = ensure_choice("layout", layout, LAYOUTS)
    return np.asarray(_rotated_channels(head_dim, rotary_dim, rotated_slice, layout), dtype=np.int64)


def _pair_slices(head_dim, rotary_dim, rotated_slice, layout):
    """First and second channel of every rotated pair, as two slices of the head."""
    start = head_dim - rotary_dim if rotated_slice == "last" else 0
    if layout == "interleaved":  # pairs (2i, 2i + 1); "first_pairs" is "first" here
        return slice(start, start + rotary_dim, 2), slice(start + 1, start + rotary_dim, 2)
    half = rotary_dim // 2
    second = head_dim // 2 if rotated_slice == "first_pairs" else start + half
    return slice(start, start + half), slice(second, second + half)


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

        \begin{aligned}
        \begin{pmatrix} y_{a_i} \\ y_{b_i} \end{pmatrix}
        &= \begin{pmatrix} \cos\phi_i & -\sin\phi_i \\
                           \sin\phi_i & \cos\phi_i \end{pmatrix}
           \begin{pmatrix} x_{a_i} \\ x_{b_i} \end{pmatrix}, \\
        \phi_i &= (p + p_0)\,\text{base}^{-2i/d'}, \qquad i = 0, \dots, r/2 - 1,
        \end{aligned}

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
    x, x_checked = _float_view("x", x)
    with _x_error_first("x", x, x_checked):
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
    theta = rope_frequencies(denominator, base=base)

    def angles(index):  # rope_angles(positions + position_offset, denominator)[..., : r/2] of some rows
        return ((positions[index] + position_offset)[..., None] * theta)[..., : rotary_dim // 2]

    # cos and sin once per (position, pair), shared by the other axes of x (the heads)
    first, second = _pair_slices(head_dim, rotary_dim, rotated_slice, layout)
    # y_a = x_a cos(phi) - x_b sin(phi), y_b = x_b cos(phi) + x_a sin(phi); other channels pass through
    return _rotate(x, _angle_tables(angles, positions.shape), layout, first, second,
                   check_x=None if x_checked else "x")
