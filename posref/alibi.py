r"""ALiBi: attention with linear biases.

Each head adds to its attention logits a penalty proportional to the
query-key distance, with a fixed per-head slope.

Shape letters used throughout posref: ``B`` batch, ``H`` heads, ``T`` query
positions, ``S`` key positions, ``D`` features per head.
"""

from __future__ import annotations

import numpy as np

from posref import _arith, _difference
from posref._spec import spec, warn_deprecated_option
from posref._validate import ensure_array, ensure_bool, ensure_choice, ensure_int, ensure_positions, ensure_real

__all__ = ["alibi_slopes", "alibi_bias"]

#: Values the deprecated ``rule`` option of :func:`alibi_slopes` accepts (both give the same slopes).
SLOPE_RULES = ("paper", "mpt")
BIAS_FORMS = ("distance", "symmetric", "key_index", "last_key_anchored")

ALIBI_REFERENCE = (
    "O. Press, N. A. Smith, M. Lewis, 'Train Short, Test Long: Attention with Linear Biases "
    "Enables Input Length Extrapolation', ICLR 2022, arXiv:2108.12409"
)


def _power_of_two_slopes(count, max_bias):
    """Slopes 2**(-max_bias * k / count) for k = 1 .. count."""
    k = np.arange(1, count + 1, dtype=np.float64)
    return _arith.power(2.0, -max_bias * k / count)


@spec(family="alibi", reference=ALIBI_REFERENCE)
def alibi_slopes(num_heads, /, *, max_bias=8.0, rule=None):
    r"""Per-head ALiBi slopes.

    For a power-of-two head count :math:`n` the slopes form the geometric
    sequence :math:`2^{-8/n}, 2^{-16/n}, \dots, 2^{-8}`.  Other head counts
    take the slopes of the largest power of two below :math:`n` and fill
    the remaining heads with every other slope of the next power of two.

    Parameters
    ----------
    num_heads : int
        Number of attention heads :math:`n`, positive.
    max_bias : float, keyword-only
        The exponent :math:`B` at the last slope of a power-of-two head
        count, :math:`2^{-B}`; positive.  8 in the paper and by default in
        MPT (``alibi_bias_max``) and keras-hub.
    rule : {"paper", "mpt"} or None, keyword-only
        Deprecated, without effect: the paper's ``get_slopes`` and MPT's
        ``gen_slopes`` give the same slopes, bit for bit (see Notes).
        Passing either value warns with :class:`DeprecationWarning`;
        another value raises :class:`ValueError`.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(num_heads,)``.  For non-power-of-two
        counts it is not sorted (see the example).

    Raises
    ------
    TypeError
        If ``num_heads`` is not an integer or ``max_bias`` not a real.
    ValueError
        If ``num_heads < 1``, ``max_bias <= 0`` or ``rule`` is neither
        ``"paper"`` nor ``"mpt"``.

    Notes
    -----
    The paper's ``get_slopes`` (also BLOOM, keras-hub, x-transformers,
    NeMo, KERPLE): with :math:`c = 2^{\lfloor \log_2 n \rfloor}`,

    .. math::

        m_h = \begin{cases}
            2^{-B h / c}, & h = 1, \dots, c, \\
            2^{-B (2(h - c) - 1) / (2c)}, & h = c + 1, \dots, n.
        \end{cases}

    MPT's ``gen_slopes`` derives the same slopes another way: with
    :math:`N = 2^{\lceil \log_2 n \rceil}` and :math:`s_k = 2^{-k B / N}`,
    :math:`k = 1, \dots, N`, the slopes are :math:`s` itself when
    :math:`N = n`, else the first :math:`n` of
    :math:`(s_2, s_4, \dots, s_N, s_1, s_3, \dots)`.  With :math:`N = 2c`
    the even-indexed :math:`s_{2h} = 2^{-Bh/c}` are the paper's first
    :math:`c` slopes and the odd-indexed ones its extra slopes, so the two
    derivations agree for every :math:`n`.  Because scaling by a power of
    two is exact, each exponent is one rounding of the same real number in
    both, and the float64 results are bitwise identical as well (tested for
    every :math:`n \le 128` and several :math:`B`); a port of either can
    be checked against this function.  BLOOM's ``build_alibi_tensor``
    follows the paper rule in float32.  The order is part of the
    convention: head :math:`c + 1` gets a larger slope than head
    :math:`c`.

    References
    ----------
    .. [1] O. Press, N. A. Smith, M. Lewis, "Train Short, Test Long:
       Attention with Linear Biases Enables Input Length Extrapolation",
       ICLR 2022, arXiv:2108.12409, section 3.

    Examples
    --------
    >>> from posref import alibi_slopes
    >>> alibi_slopes(8)
    array([0.5       , 0.25      , 0.125     , 0.0625    , 0.03125   ,
           0.015625  , 0.0078125 , 0.00390625])
    >>> alibi_slopes(6)
    array([0.25      , 0.0625    , 0.015625  , 0.00390625, 0.5       ,
           0.125     ])
    """
    num_heads = ensure_int("num_heads", num_heads, minimum=1)
    if rule is not None:
        ensure_choice("rule", rule, SLOPE_RULES)
        warn_deprecated_option("alibi_slopes", "rule", None)
    max_bias = ensure_real("max_bias", max_bias, exclusive_minimum=0.0)
    closest = 1 << (num_heads.bit_length() - 1)  # c = 2**floor(log2 n)
    slopes = _power_of_two_slopes(closest, max_bias)
    if closest < num_heads:
        extra = _power_of_two_slopes(2 * closest, max_bias)[0::2][: num_heads - closest]
        slopes = np.concatenate([slopes, extra])
    return slopes


def _sorted(positions):
    """Whether a 1-D array is non-decreasing."""
    return positions.size < 2 or bool(np.all(positions[1:] >= positions[:-1]))


def _query_blocks(num_queries, num_keys, block_bytes=2**16):
    """Slices of query rows such that one ``(t, S)`` float64 plane is at most about ``block_bytes``.

    Filling the bias block by block keeps the temporaries (relative
    positions, the causal mask) small enough to stay in cache and to be
    recycled by the allocator, so the result is the only full-size
    allocation; elementwise arithmetic gives the same bits in any blocking.
    """
    step = max(1, block_bytes // (8 * max(num_keys, 1)))
    return [slice(t, t + step) for t in range(0, num_queries, step)]


@spec(family="alibi", reference=ALIBI_REFERENCE)
def alibi_bias(slopes, query_positions, key_positions, /, *, form="distance", causal=True, scale=1.0):
    r"""ALiBi bias added to the attention logits, per head.

    Parameters
    ----------
    slopes : array_like of real, shape ``(H,)``
        One slope per head (for example from :func:`alibi_slopes`); finite.
        A zero slope turns the bias off for that head, as NeMo does for
        heads beyond ``num_attention_heads_alibi``.
    query_positions : array_like of real, shape ``(T,)``
        Non-negative query positions.
    key_positions : array_like of real, shape ``(S,)``
        Non-negative key positions.
    form : {"distance", "symmetric", "key_index", "last_key_anchored"}, keyword-only
        How the linear bias is written (below, :math:`r = p^k - p^q` is
        the relative position, key minus query):

        * ``"distance"``: :math:`m\,r`, i.e. :math:`-m\,(i - j)`, the
          paper's formula, meant for causal attention.
        * ``"symmetric"``: :math:`-m\,|r|`; NeMo (bidirectional),
          x-transformers, flash-attn ``alibi_slopes`` (whose bottom-right
          alignment is obtained by passing query positions
          ``S - T, ..., S - 1``).
        * ``"key_index"``: :math:`m\,p^k`; the paper's fairseq code and
          BLOOM/Falcon, relying on the causal mask and on softmax being
          unchanged by a per-row constant.
        * ``"last_key_anchored"``: :math:`m\,(p^k - \max_s p^k_s)`; MPT
          and keras-hub (there ``j - (S - 1)``).

        On the keys a causal mask allows, all four differ only by a
        constant per query row, so they give the same causal attention
        weights; as raw tensors, or without the mask, they differ.
    causal : bool, keyword-only
        If true, entries whose key position exceeds the query position are
        ``-inf`` (the paper's decoder).  Use ``False`` for bidirectional
        attention (then only ``"symmetric"`` is a distance penalty).
    scale : float, keyword-only
        Positive factor multiplying the bias.  1 in the paper, BLOOM, MPT;
        Falcon adds the bias before its :math:`1/\sqrt{D}` logit scale,
        which is ``scale = 1 / sqrt(head_dim)`` here (equivalently, slopes
        divided by :math:`\sqrt{D}`).

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(H, T, S)``; masked entries are ``-inf``.

    Raises
    ------
    TypeError
        If an array is not numeric, or ``causal``/``scale`` have the wrong
        type.
    ValueError
        If ``slopes`` is not 1-D or is empty (no heads), values are not
        finite, positions are negative or not 1-D, ``form`` is unknown, or
        ``scale <= 0``.

    Notes
    -----
    The paper's bias for query :math:`i` and key :math:`j \le i` is

    .. math::

        b_{h,i,j} = -m_h\,(i - j),

    added to :math:`q_i \cdot k_j` (after the usual :math:`1/\sqrt{D}`
    scaling of the dot product), with keys :math:`j > i` masked.  Here
    :math:`i, j` are the given positions, so offsets (a KV cache, left
    padding) are expressed by the caller's positions.

    References
    ----------
    .. [1] O. Press, N. A. Smith, M. Lewis, "Train Short, Test Long:
       Attention with Linear Biases Enables Input Length Extrapolation",
       ICLR 2022, arXiv:2108.12409, section 3.

    Examples
    --------
    >>> from posref import alibi_bias
    >>> alibi_bias([0.5], [0, 1, 2], [0, 1, 2])
    array([[[ 0. , -inf, -inf],
            [-0.5,  0. , -inf],
            [-1. , -0.5,  0. ]]])
    >>> alibi_bias([0.5], [0, 1, 2], [0, 1, 2], form="key_index")
    array([[[ 0. , -inf, -inf],
            [ 0. ,  0.5, -inf],
            [ 0. ,  0.5,  1. ]]])
    """
    slopes = ensure_array("slopes", slopes, ndim=1, allow_empty=False)
    query_positions = ensure_positions("query_positions", query_positions, integer=False, ndim=1)
    key_positions = ensure_positions("key_positions", key_positions, integer=False, ndim=1)
    form = ensure_choice("form", form, BIAS_FORMS)
    causal = ensure_bool("causal", causal)
    scale = ensure_real("scale", scale, exclusive_minimum=0.0)
    anchor = key_positions.max() if key_positions.size else 0.0
    bias = np.empty((slopes.size, query_positions.size, key_positions.size))  # (H, T, S)
    if form in ("distance", "symmetric"):
        found = _difference.offsets(query_positions, key_positions)
        if found is not None:  # integer positions: one value per offset r, gathered into the matrix
            relative_position = found.values().astype(np.float64)  # the exact r = p^k - p^q of those pairs
            linear = relative_position if form == "distance" else -np.abs(relative_position)
            table = scale * slopes[:, None] * linear + 0.0  # (H, hi - lo + 1); + 0.0 turns -0.0 into 0.0
            if causal:
                table[:, relative_position > 0] = -np.inf
            return found.fill(table, bias, lead=1)
    elif causal and _sorted(key_positions):  # a row is the key vector, masked from the first later key on
        linear = key_positions if form == "key_index" else key_positions - anchor
        row = np.multiply(scale * slopes[:, None], linear) + 0.0  # (H, S)
        ends = np.searchsorted(key_positions, query_positions, side="right")  # keys j < end have r <= 0
        for t, end in enumerate(ends.tolist()):
            bias[:, t, :end] = row[:, :end]
            bias[:, t, end:] = -np.inf
        return bias
    for rows in _query_blocks(query_positions.size, key_positions.size):
        relative_position = key_positions[None, :] - query_positions[rows, None]  # (t, S)
        if form == "distance":
            linear = relative_position
        elif form == "symmetric":
            linear = -np.abs(relative_position)
        elif form == "key_index":
            linear = key_positions[None, :]
        else:
            linear = key_positions[None, :] - anchor
        block = bias[:, rows]  # (H, t, S), a view
        np.multiply(scale * slopes[:, None, None], linear, out=block)
        block += 0.0  # turns -0.0 into 0.0
        if causal:
            np.copyto(block, -np.inf, where=relative_position > 0)
    return bias
