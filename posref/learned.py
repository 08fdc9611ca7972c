r"""Learned absolute position embeddings: a row lookup in a trained table.

Shape letters used throughout posref: ``B`` batch, ``H`` heads, ``T`` query
positions, ``S`` key positions, ``D`` features per head.
"""

from __future__ import annotations

import numpy as np

from posref._spec import spec
from posref._validate import ensure_array, ensure_int, ensure_positions

__all__ = ["learned_position_embedding"]

LEARNED_REFERENCE = (
    "J. Devlin, M.-W. Chang, K. Lee, K. Toutanova, 'BERT: Pre-training of Deep Bidirectional "
    "Transformers for Language Understanding', 2019, arXiv:1810.04805; J. Gehring, M. Auli, "
    "D. Grangier, D. Yarats, Y. N. Dauphin, 'Convolutional Sequence to Sequence Learning', "
    "2017, arXiv:1705.03122"
)


def _check_rows_in_range(positions, position_offset, num_rows):
    """Raise a ValueError naming the offending position if a row falls outside the table."""
    if positions.size == 0:
        return
    largest, smallest = positions.max().item(), positions.min().item()
    if largest + position_offset >= num_rows:
        raise ValueError(
            f"positions + position_offset must be a row of table, in [0, {num_rows - 1}] "
            f"(table length {num_rows}), got largest position {largest} + "
            f"position_offset {position_offset} = {largest + position_offset}"
        )
    if smallest + position_offset < 0:
        raise ValueError(
            f"positions + position_offset must be a row of table, in [0, {num_rows - 1}] "
            f"(table length {num_rows}), got smallest position {smallest} + "
            f"position_offset {position_offset} = {smallest + position_offset}"
        )


@spec(family="learned", reference=LEARNED_REFERENCE)
def learned_position_embedding(table, positions, /, *, position_offset=0, padding_idx=None):
    r"""Learned absolute position embedding: row ``position + offset`` of a table.

    A model with learned absolute positions stores one trained vector per
    position in a table of ``P`` rows and adds the vector of each token's
    position to the token embedding.  This function is the lookup, with the
    two conventions that differ between models: the row that position 0
    reads (``position_offset``) and a padding row that reads as zeros
    (``padding_idx``).

    Parameters
    ----------
    table : array_like of real, shape ``(P, D)``
        The embedding table: ``P`` rows (positions) of ``D`` features;
        finite and not empty.
    positions : array_like of int, shape ``(...)``
        Integer positions (integer dtype, or floats holding whole numbers).
        Negative values are allowed as long as the row
        ``positions + position_offset`` is inside the table, so that a
        padding marker such as -1 can be expressed.
    position_offset : int, keyword-only
        Added to every position to obtain the row index (default 0: BERT,
        GPT-2, whose position ``p`` reads row ``p``).  RoBERTa and other
        fairseq-trained models reserve the first ``padding_idx + 1`` rows,
        so position 0 reads row ``padding_idx + 1`` (2 for RoBERTa); OPT
        and BART in Hugging Face ``transformers`` use a fixed offset of 2.
    padding_idx : int or None, keyword-only
        A row index in ``[0, P)`` whose lookup gives a zero vector, whatever
        the table holds in that row; ``None`` (default) for no padding row.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``positions.shape + (D,)``.

    Raises
    ------
    TypeError
        If ``table`` is not a real numeric array, ``positions`` is not a
        real numeric array, or ``position_offset``/``padding_idx`` is not an
        integer.
    ValueError
        If ``table`` is not 2-D, is empty or holds NaN or infinity;
        ``positions`` holds non-integer or non-finite values;
        ``padding_idx`` is outside ``[0, P)``; or some row
        ``positions + position_offset`` is outside ``[0, P)``: the message
        names the offending position, the offset and the table length.
        Frameworks differ on such indices (an error, a clamped index or a
        filled value); the specification refuses them.

    Notes
    -----
    .. math::

        E(p) = \begin{cases}
            0 & \text{if } p + o = \text{padding\_idx}, \\
            W_{p + o} & \text{otherwise,}
        \end{cases}
        \qquad 0 \le p + o < P,

    where :math:`W` is ``table`` and :math:`o` is ``position_offset``.

    Padding convention.  fairseq (``make_positions``) and Hugging Face
    RoBERTa (``create_position_ids_from_input_ids``) give padding tokens the
    row ``padding_idx`` and the :math:`n`-th non-padding token of a sequence
    (:math:`n = 1, 2, \dots`) the row ``padding_idx + n``; the row
    ``padding_idx`` is set to zero when the table is created and, as the
    ``padding_idx`` of ``torch.nn.Embedding``, receives no gradient.  In
    posref terms: number the non-padding tokens from position 0, give
    padding tokens position -1, and call this function with
    ``position_offset=padding_idx + 1, padding_idx=padding_idx``.  Hugging
    Face OPT computes the same positions (a cumulative sum of the
    attention mask minus one, so -1 on padding) and adds its offset 2; its
    table has no declared padding row, so reproduce it with
    ``position_offset=2`` and ``padding_idx=None``.  Zeroing the row here,
    rather than reading it, makes the result independent of what a
    checkpoint happens to store there.

    The table itself is learned, so there is no closed form to check; the
    specification fixes which row each position reads and how the range is
    enforced.  Learned position tables appear in convolutional
    sequence-to-sequence models [2]_ and in BERT [1]_.

    References
    ----------
    .. [1] J. Devlin, M.-W. Chang, K. Lee, K. Toutanova, "BERT: Pre-training
       of Deep Bidirectional Transformers for Language Understanding", 2019,
       arXiv:1810.04805, section 3 (input representation).
    .. [2] J. Gehring, M. Auli, D. Grangier, D. Yarats, Y. N. Dauphin,
       "Convolutional Sequence to Sequence Learning", 2017,
       arXiv:1705.03122, section 3.1.

    Examples
    --------
    >>> import numpy as np
    >>> from posref import learned_position_embedding
    >>> table = np.arange(8.0).reshape(4, 2)  # row r holds [2r, 2r + 1]
    >>> learned_position_embedding(table, [0, 1])
    array([[0., 1.],
           [2., 3.]])

    RoBERTa-style numbering with ``padding_idx=1``: position -1 marks a
    padding token, position 0 reads row 2.

    >>> learned_position_embedding(
    ...     table, [0, 1, -1], position_offset=2, padding_idx=1
    ... )
    array([[4., 5.],
           [6., 7.],
           [0., 0.]])
    """
    table = ensure_array("table", table, ndim=2, allow_empty=False)
    positions = ensure_positions("positions", positions, integer=True, nonnegative=False)
    position_offset = ensure_int("position_offset", position_offset)
    num_rows = table.shape[0]
    if padding_idx is not None:
        padding_idx = ensure_int("padding_idx", padding_idx)
        if not 0 <= padding_idx < num_rows:
            raise ValueError(
                f"padding_idx must be None or a row of table, an integer in [0, {num_rows - 1}], "
                f"got padding_idx={padding_idx} for a table of {num_rows} rows"
            )
    _check_rows_in_range(positions, position_offset, num_rows)

    rows = positions + position_offset  # (...), each in [0, P)
    embedding = table[rows]  # (..., D)
    if padding_idx is not None:
        embedding[rows == padding_idx] = 0.0
    return embedding
