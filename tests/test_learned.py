"""Learned absolute position embedding: which row each position reads.

Expected values come from hand-built tables whose rows encode their own
index, from a per-element Python loop, and from the position-id recipes of
fairseq/RoBERTa, OPT and BART written out here with plain lists.
"""

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from posref import learned_position_embedding


def _table(num_rows, dim):
    """Row r holds r + c / 10 in column c, so every value names its row."""
    return np.arange(num_rows)[:, None] + np.arange(dim)[None, :] / 10.0


def _loop_reference(table, positions, position_offset, padding_idx):
    """One element at a time, with Python lists."""
    rows = table.tolist()
    flat = [
        [0.0] * len(rows[0]) if p + position_offset == padding_idx else rows[p + position_offset]
        for p in np.ravel(positions).tolist()
    ]
    return np.array(flat, dtype=np.float64).reshape(np.shape(positions) + (len(rows[0]),))


class TestKnownValues:
    def test_identity_offset(self):
        got = learned_position_embedding(_table(5, 3), [0, 4, 2])
        np.testing.assert_array_equal(got, [[0, 0.1, 0.2], [4, 4.1, 4.2], [2, 2.1, 2.2]])

    def test_offset_two(self):
        got = learned_position_embedding(_table(6, 2), [0, 1, 3], position_offset=2)
        np.testing.assert_array_equal(got, [[2, 2.1], [3, 3.1], [5, 5.1]])

    def test_padding_row_reads_zero_even_if_table_is_not(self):
        table = _table(5, 2)
        got = learned_position_embedding(table, [-1, 0, 1, -1], position_offset=2, padding_idx=1)
        np.testing.assert_array_equal(got, [[0, 0], [2, 2.1], [3, 3.1], [0, 0]])
        np.testing.assert_array_equal(table, _table(5, 2))  # input untouched

    def test_padding_idx_without_padding_tokens_changes_nothing(self):
        table = _table(6, 2)
        plain = learned_position_embedding(table, [0, 1, 2, 3], position_offset=2)
        padded = learned_position_embedding(table, [0, 1, 2, 3], position_offset=2, padding_idx=1)
        np.testing.assert_array_equal(plain, padded)

    def test_last_row_and_negative_offset(self):
        np.testing.assert_array_equal(learned_position_embedding(_table(4, 1), [3]), [[3]])
        np.testing.assert_array_equal(learned_position_embedding(_table(4, 1), [1, 4], position_offset=-1), [[0], [3]])

    def test_shapes_and_dtype(self):
        table = np.arange(12, dtype=np.int32).reshape(4, 3)
        out = learned_position_embedding(table, np.zeros((2, 5), dtype=np.int64))
        assert out.shape == (2, 5, 3) and out.dtype == np.float64
        assert learned_position_embedding(table, 2).shape == (3,)
        assert learned_position_embedding(table, np.zeros((0, 7), dtype=int)).shape == (0, 7, 3)

    def test_whole_floats_accepted_as_positions(self):
        got = learned_position_embedding(_table(4, 2), np.array([1.0, 3.0]))
        np.testing.assert_array_equal(got, [[1, 1.1], [3, 3.1]])

    def test_output_does_not_alias_table(self):
        table = _table(3, 2)
        out = learned_position_embedding(table, [0])
        out[...] = -1.0
        np.testing.assert_array_equal(table, _table(3, 2))


class TestLibraryRecipes:
    """The position-id recipes of real models, written out with lists."""

    PAD = 1
    input_ids = [
        [0, 31414, 232, 2, 1, 1],  # right padding
        [1, 1, 0, 713, 16, 2],  # left padding
    ]

    def _mask(self):
        return [[int(token != self.PAD) for token in row] for row in self.input_ids]

    def test_roberta_create_position_ids(self):
        # fairseq make_positions / HF create_position_ids_from_input_ids:
        # row = padding_idx + (running count of non-pad tokens) on non-pad tokens, padding_idx on pads.
        table = _table(10, 4)
        hf_rows = []
        for row in self._mask():
            count, ids = 0, []
            for m in row:
                count += m
                ids.append(self.PAD + count * m)
            hf_rows.append(ids)
        expected = np.array([[table[r] if r != self.PAD else np.zeros(4) for r in ids] for ids in hf_rows])
        # posref: non-pad tokens numbered from 0, pads at -1.
        positions = [[-1 if m == 0 else sum(row[: j + 1]) - 1 for j, m in enumerate(row)] for row in self._mask()]
        got = learned_position_embedding(table, positions, position_offset=self.PAD + 1, padding_idx=self.PAD)
        np.testing.assert_array_equal(got, expected)
        assert positions == [[0, 1, 2, 3, -1, -1], [-1, -1, 0, 1, 2, 3]]

    def test_opt_cumsum_minus_one_plus_two(self):
        # OPT: positions = cumsum(mask) * mask - 1, row = positions + 2, no padding row.
        table = _table(10, 3)
        positions = []
        for row in self._mask():
            running, out = 0, []
            for m in row:
                running += m
                out.append(running * m - 1)
            positions.append(out)
        expected = np.array([[table[p + 2] for p in row] for row in positions])
        got = learned_position_embedding(table, positions, position_offset=2)
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(got[0, 4], table[1])  # a pad token reads row 1 as stored

    def test_bart_arange_with_cache(self):
        # BART: row = arange(past, past + T) + 2.
        table, past, length = _table(12, 2), 3, 4
        expected = np.array([table[p + 2] for p in range(past, past + length)])
        got = learned_position_embedding(table, np.arange(past, past + length), position_offset=2)
        np.testing.assert_array_equal(got, expected)


@st.composite
def _cases(draw):
    num_rows = draw(st.integers(1, 16))
    dim = draw(st.integers(1, 5))
    offset = draw(st.integers(-5, 5))
    positions = draw(
        hnp.arrays(
            np.int64,
            hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
            elements=st.integers(-offset, num_rows - 1 - offset),
        )
    )
    padding_idx = draw(st.none() | st.integers(0, num_rows - 1))
    table = draw(hnp.arrays(np.float64, (num_rows, dim), elements=st.floats(-1e6, 1e6)))
    return table, positions, offset, padding_idx


class TestProperties:
    @given(_cases())
    def test_matches_loop_reference(self, case):
        table, positions, offset, padding_idx = case
        got = learned_position_embedding(table, positions, position_offset=offset, padding_idx=padding_idx)
        np.testing.assert_array_equal(got, _loop_reference(table, positions, offset, padding_idx))
        assert got.shape == positions.shape + (table.shape[1],)

    @given(_cases(), st.integers(-3, 3))
    def test_offset_shifts_positions(self, case, shift):
        table, positions, offset, padding_idx = case
        a = learned_position_embedding(table, positions, position_offset=offset, padding_idx=padding_idx)
        b = learned_position_embedding(
            table, positions - shift, position_offset=offset + shift, padding_idx=padding_idx
        )
        np.testing.assert_array_equal(a, b)


class TestErrors:
    def test_largest_position_out_of_range(self):
        msg = (
            r"^positions \+ position_offset must be a row of table, in \[0, 511\] \(table length 512\), "
            r"got largest position 511 \+ position_offset 2 = 513$"
        )
        with pytest.raises(ValueError, match=msg):
            learned_position_embedding(np.zeros((512, 4)), np.arange(512), position_offset=2)

    def test_position_equal_to_table_length(self):
        with pytest.raises(ValueError, match=r"table length 4\), got largest position 4 \+ position_offset 0 = 4$"):
            learned_position_embedding(np.zeros((4, 2)), [0, 4])

    def test_negative_row(self):
        msg = r"in \[0, 3\] \(table length 4\), got smallest position -2 \+ position_offset 1 = -1$"
        with pytest.raises(ValueError, match=msg):
            learned_position_embedding(np.zeros((4, 2)), [-2, 0], position_offset=1)

    def test_padding_idx_out_of_range(self):
        msg = (
            r"^padding_idx must be None or a row of table, an integer in \[0, 3\], "
            r"got padding_idx=4 for a table of 4 rows$"
        )
        with pytest.raises(ValueError, match=msg):
            learned_position_embedding(np.zeros((4, 2)), [0], padding_idx=4)
        with pytest.raises(ValueError, match=r"got padding_idx=-1 for a table of 4 rows$"):
            learned_position_embedding(np.zeros((4, 2)), [0], padding_idx=-1)

    @pytest.mark.parametrize("value", [1.0, "1", True])
    def test_padding_idx_type(self, value):
        with pytest.raises(TypeError, match=r"^padding_idx must be an integer, got padding_idx="):
            learned_position_embedding(np.zeros((4, 2)), [0], padding_idx=value)

    @pytest.mark.parametrize("value", [2.0, "2", None])
    def test_position_offset_type(self, value):
        with pytest.raises(TypeError, match=r"^position_offset must be an integer, got position_offset="):
            learned_position_embedding(np.zeros((4, 2)), [0], position_offset=value)

    @pytest.mark.parametrize("shape", [(4,), (2, 3, 4), ()])
    def test_table_rank(self, shape):
        with pytest.raises(ValueError, match=rf"^table must be a 2-D array, got shape {re.escape(str(shape))}$"):
            learned_position_embedding(np.zeros(shape), [0])

    @pytest.mark.parametrize("shape", [(0, 4), (4, 0)])
    def test_empty_table(self, shape):
        with pytest.raises(ValueError, match=r"^table must not be empty, got shape"):
            learned_position_embedding(np.zeros(shape), [0])

    def test_non_finite_table(self):
        table = np.zeros((4, 2))
        table[2, 1] = np.nan
        with pytest.raises(ValueError, match=r"^table must contain only finite values"):
            learned_position_embedding(table, [0])

    @pytest.mark.parametrize("table", ["table", None, [[True, False]]])
    def test_table_type(self, table):
        with pytest.raises(TypeError, match=r"^table must be a (real )?numeric array"):
            learned_position_embedding(table, [0])

    def test_fractional_position(self):
        with pytest.raises(ValueError, match=r"^positions must hold integers, got a non-integer value 1.5$"):
            learned_position_embedding(np.zeros((4, 2)), [0, 1.5])

    def test_non_finite_position(self):
        with pytest.raises(ValueError, match=r"^positions must contain only finite values"):
            learned_position_embedding(np.zeros((4, 2)), [0, np.inf])

    @pytest.mark.parametrize("positions", ["0 1", None, [True]])
    def test_positions_type(self, positions):
        with pytest.raises(TypeError, match=r"^positions must be a (real )?numeric array"):
            learned_position_embedding(np.zeros((4, 2)), positions)

    def test_options_are_keyword_only(self):
        with pytest.raises(TypeError):
            learned_position_embedding(np.zeros((4, 2)), [0], 2)
