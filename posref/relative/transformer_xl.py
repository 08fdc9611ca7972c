r"""Transformer-XL: a sinusoid of the query-to-key distance and attention logits with two global biases.

Transformer-XL writes the query-minus-key *distance* :math:`i - j \ge 0`,
the negative of posref's ``relative_position`` (key minus query).

Shape letters used throughout posref: ``B`` batch, ``H`` heads, ``T``
query positions, ``S`` key positions, ``D`` features per head.
"""

from __future__ import annotations

import math

import numpy as np

from posref import _arith
from posref._spec import spec
from posref._validate import ensure_array, ensure_choice, ensure_int, ensure_positions, ensure_real

__all__ = ["transformer_xl_relative_encoding", "transformer_xl_scores"]

TRANSFORMER_XL_REFERENCE = (
    "Z. Dai, Z. Yang, Y. Yang, J. Carbonell, Q. V. Le, R. Salakhutdinov, 'Transformer-XL: "
    "Attentive Language Models Beyond a Fixed-Length Context', 2019, arXiv:1901.02860"
)

#: Values of ``future_keys`` in :func:`transformer_xl_scores`.
FUTURE_KEYS = ("mask", "zero")


@spec(family="transformer_xl", reference=TRANSFORMER_XL_REFERENCE)
def transformer_xl_relative_encoding(distances, dim, /, *, base=10_000.0, max_distance=None):
    r"""Sinusoid of a query-to-key distance, sines first (Transformer-XL R).

    Transformer-XL encodes the distance :math:`\delta = i - j \ge 0`
    between query :math:`i` and key :math:`j` (the *negative* of posref's
    ``relative_position``) with a fixed sinusoid whose sines fill the first
    half of the vector and cosines the second half.

    .. math::

        R_\delta = \bigl[\sin(\delta\omega_0), \dots,
        \sin(\delta\omega_{d/2-1}),\ \cos(\delta\omega_0), \dots,
        \cos(\delta\omega_{d/2-1})\bigr], \qquad
        \omega_k = \text{base}^{-2k/d}

    Parameters
    ----------
    distances : array_like of real, shape ``(...)``
        Query-minus-key distances :math:`\delta`, non-negative and finite.
        The original code builds them in descending order,
        ``klen-1, ..., 1, 0``; pass them in whatever order the rows are
        wanted.
    dim : int
        Width :math:`d` of the encoding (``d_model`` in the original
        code), positive and even.
    base : float, keyword-only
        Frequency base, greater than 1 (10000 in the paper).
    max_distance : int or None, keyword-only
        If given, distances above it are replaced by it before encoding
        (``clamp_len`` of the original code, where ``clamp_len <= 0``
        means no clamping).  ``None`` (default) clamps nothing.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``distances.shape + (dim,)``.

    Raises
    ------
    TypeError
        If ``distances`` is not a real array, ``dim`` or ``max_distance``
        not an integer, or ``base`` not a real number.
    ValueError
        If ``distances`` holds negative or non-finite values, ``dim`` is not
        positive and even, ``base <= 1`` or ``max_distance < 0``.

    Notes
    -----
    The frequencies are those of the sinusoidal encoding of Vaswani et al.
    (2017); only the layout differs: ``[sin | cos]`` concatenated rather
    than interleaved.  Multiplying by the learned projection
    :math:`W_{k,R}` is left to the caller; :func:`transformer_xl_scores`
    takes the projected rows.

    References
    ----------
    .. [1] Z. Dai et al., "Transformer-XL: Attentive Language Models Beyond
       a Fixed-Length Context", 2019, arXiv:1901.02860, Section 3.3.

    Examples
    --------
    >>> from posref import transformer_xl_relative_encoding
    >>> transformer_xl_relative_encoding([0, 1], 4, base=100.0).round(4)
    array([[0.    , 0.    , 1.    , 1.    ],
           [0.8415, 0.0998, 0.5403, 0.995 ]])
    """
    distances = ensure_positions("distances", distances, integer=False)
    dim = ensure_int("dim", dim, minimum=1, even=True)
    base = ensure_real("base", base, exclusive_minimum=1.0)
    if max_distance is not None:
        max_distance = ensure_int("max_distance", max_distance, minimum=0)
        distances = np.minimum(distances, float(max_distance))
    omega = _arith.power(base, -2.0 * np.arange(dim // 2, dtype=np.float64) / dim)
    angle = distances[..., None] * omega  # (..., d/2)
    return np.concatenate([_arith.sin(angle), _arith.cos(angle)], axis=-1)


@spec(family="transformer_xl", reference=TRANSFORMER_XL_REFERENCE)
def transformer_xl_scores(q, k, r, u, v, /, *, scale=None, future_keys="mask"):
    r"""Transformer-XL attention logits with its two global bias vectors.

    For query row :math:`i` and key :math:`j` of one head, with a memory of
    :math:`M = S - T` cached keys in front of the :math:`T` current ones
    (query :math:`i` sits at absolute position :math:`i + M` and sees keys
    :math:`0, \dots, i + M`):

    .. math::

        A_{ij} = \text{scale}\,\bigl[(q_i + u)\cdot k_j
        + (q_i + v)\cdot r_{\,i + M - j}\bigr], \qquad j \le i + M

    The four terms (a)-(d) of the paper are :math:`q_i\cdot k_j`,
    :math:`q_i\cdot r_{i+M-j}`, :math:`u\cdot k_j` and
    :math:`v\cdot r_{i+M-j}`.

    Parameters
    ----------
    q : array_like of real, shape ``(..., H, T, D)``
        Queries of the current segment.
    k : array_like of real, shape ``(..., H, S, D)``
        Keys of memory and current segment together, ``S >= T``; the
        leading dimensions must equal those of ``q``.
    r : array_like of real, shape ``(H, S, D)``
        Projected relative encodings indexed by distance: ``r[h, n]`` is
        head ``h``'s projection :math:`W_{k,R} R_n` of the encoding of
        distance ``n = 0 .. S-1`` (see
        :func:`transformer_xl_relative_encoding`).  The original code
        stores the same rows in descending order (``pos_seq = klen-1 ...
        0``), so its tensor is ``r[:, ::-1]``.
    u, v : array_like of real, shape ``(H, D)``
        The global content bias (``r_w_bias``) and position bias
        (``r_r_bias``) of every head.
    scale : float or None, keyword-only
        Factor applied to the sum.  ``None`` (default) means
        :math:`1/\sqrt{D}`, as the original code does; pass ``1.0`` for
        unscaled logits.
    future_keys : {"mask", "zero"}, keyword-only
        What the entries with :math:`j > i + M` hold.  ``"mask"`` (default):
        ``-inf``, the causal mask the original model applies.
        ``"zero"``: the position terms are dropped and only the scaled
        content terms remain, as the original ``_rel_shift(...,
        zero_triu=True)`` gives.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(..., H, T, S)``.

    Raises
    ------
    TypeError
        If an array argument is not a real numeric array or ``scale`` is not
        a real number.
    ValueError
        If shapes disagree (as listed above), ``S < T``, values are not
        finite, or ``future_keys`` is unknown.

    Notes
    -----
    The original code computes :math:`(q_i + v)\cdot r` for every row of
    ``r`` and aligns the result with a pad-and-reshape "relative shift";
    that is an implementation device.  The specification is the gather by
    distance :math:`i + M - j` above; the shift reproduces it on the causal
    entries and leaves other values above the diagonal band.

    References
    ----------
    .. [1] Z. Dai et al., "Transformer-XL: Attentive Language Models Beyond
       a Fixed-Length Context", 2019, arXiv:1901.02860, Section 3.3.

    Examples
    --------
    One query at absolute position 1 (one memory key), ``D = 1``, no global
    biases: key 0 is at distance 1, key 1 at distance 0.

    >>> from posref import transformer_xl_scores
    >>> q, k = [[[1.0]]], [[[1.0], [2.0]]]
    >>> r = [[[0.5], [0.25]]]          # distance 0 -> 0.5, 1 -> 0.25
    >>> u = v = [[0.0]]
    >>> transformer_xl_scores(q, k, r, u, v, scale=1.0)
    array([[[1.25, 2.5 ]]])
    """
    q = ensure_array("q", q, min_ndim=3)
    k = ensure_array("k", k, min_ndim=3)
    r = ensure_array("r", r, ndim=3)
    u = ensure_array("u", u, ndim=2)
    v = ensure_array("v", v, ndim=2)
    if scale is not None:
        scale = ensure_real("scale", scale)
    future_keys = ensure_choice("future_keys", future_keys, FUTURE_KEYS)
    *lead, num_heads, t, d = q.shape
    if d == 0:
        raise ValueError(f"q must have a non-zero last dimension (D), got shape {q.shape}")
    if k.ndim != q.ndim or k.shape[:-2] != q.shape[:-2] or k.shape[-1] != d:
        expected = ", ".join(str(n) for n in (*lead, num_heads)) + f", S, {d}"
        raise ValueError(f"k must have shape (..., H, S, D) = ({expected}) to match q of shape {q.shape}, got shape {k.shape}")
    s = k.shape[-2]
    if s < t:
        raise ValueError(f"k must have at least as many positions as q (S >= T), got S={s} and T={t}")
    if r.shape != (num_heads, s, d):
        raise ValueError(f"r must have shape (H, S, D) = {(num_heads, s, d)}, got shape {r.shape}")
    for name, bias in (("u", u), ("v", v)):
        if bias.shape != (num_heads, d):
            raise ValueError(f"{name} must have shape (H, D) = {(num_heads, d)}, got shape {bias.shape}")
    if scale is None:
        scale = 1.0 / math.sqrt(d)
    memory = s - t
    content = _arith.einsum("...htd,...hsd->...hts", q + u[:, None, :], k)  # terms (a) + (c)
    by_row = _arith.einsum("...htd,hrd->...htr", q + v[:, None, :], r)  # (..., H, T, S): one column per distance
    delta = memory + np.arange(t)[:, None] - np.arange(s)[None, :]  # (T, S), i + M - j
    causal = delta >= 0
    index = np.broadcast_to(np.where(causal, delta, 0), by_row.shape)
    position = np.take_along_axis(by_row, index, axis=-1)  # terms (b) + (d)
    scores = scale * (content + np.where(causal, position, 0.0))
    if future_keys == "mask":
        scores = np.where(causal, scores, -np.inf)
    return scores
