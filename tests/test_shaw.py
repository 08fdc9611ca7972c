"""Tests of posref.shaw: clipped relative indices, gathers, and the two attention terms."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from posref import shaw_relative_embeddings, shaw_relative_index, shaw_relative_logits, shaw_relative_values

positions = st.lists(st.integers(0, 40), min_size=0, max_size=7)


def loop_index(q, k, clip):
    return [[max(-clip, min(clip, j - i)) + clip for j in k] for i in q]


class TestIndex:
    def test_hand_values(self):
        got = shaw_relative_index([0, 1, 2, 3], [0, 1, 2, 3], max_relative_position=2)
        assert got.tolist() == [[2, 3, 4, 4], [1, 2, 3, 4], [0, 1, 2, 3], [0, 0, 1, 2]]
        assert got.dtype == np.int64

    def test_clipping_boundary(self):
        k = 3
        q = [10]
        keys = [10 - 4, 10 - 3, 10 - 2, 10, 10 + 2, 10 + 3, 10 + 4]
        assert shaw_relative_index(q, keys, max_relative_position=k).tolist() == [[0, 0, 1, 3, 5, 6, 6]]

    def test_sign_is_key_minus_query(self):
        # a key one step after the query uses w_{+1}, at row k + 1
        assert shaw_relative_index([0], [1], max_relative_position=4).tolist() == [[5]]

    @given(q=positions, k=positions, clip=st.integers(1, 12))
    def test_against_loops(self, q, k, clip):
        got = shaw_relative_index(q, k, max_relative_position=clip)
        assert got.shape == (len(q), len(k))
        assert got.tolist() == loop_index(q, k, clip)

    @given(q=positions, k=positions, clip=st.integers(1, 12), shift=st.integers(0, 1000))
    def test_shift_invariant(self, q, k, clip, shift):
        a = shaw_relative_index(q, k, max_relative_position=clip)
        b = shaw_relative_index(
            np.array(q, dtype=np.int64) + shift, np.array(k, dtype=np.int64) + shift, max_relative_position=clip
        )
        assert np.array_equal(a, b)

    def test_errors(self):
        with pytest.raises(ValueError, match=r"^max_relative_position must be a positive integer, got max_relative_position=0"):
            shaw_relative_index([0], [0], max_relative_position=0)
        with pytest.raises(TypeError, match=r"^max_relative_position must be a positive integer, got max_relative_position=2.0"):
            shaw_relative_index([0], [0], max_relative_position=2.0)
        with pytest.raises(TypeError, match=r"max_relative_position"):
            shaw_relative_index([0], [0])
        with pytest.raises(ValueError, match=r"^query_positions must be a 1-D array, got shape \(1, 1\)"):
            shaw_relative_index([[0]], [0], max_relative_position=2)
        with pytest.raises(ValueError, match=r"^key_positions must hold non-negative integers, got a non-integer value 0.5"):
            shaw_relative_index([0], [0.5], max_relative_position=2)
        with pytest.raises(ValueError, match=r"^key_positions must hold non-negative integers, got minimum -3"):
            shaw_relative_index([0], [-3], max_relative_position=2)


class TestEmbeddings:
    def test_hand_values(self):
        table = np.array([[-1.0, 10.0], [0.0, 20.0], [1.0, 30.0]])
        got = shaw_relative_embeddings(table, [0, 1, 2], [0, 1, 2], max_relative_position=1)
        assert got.shape == (3, 3, 2)
        assert got[..., 0].tolist() == [[0.0, 1.0, 1.0], [-1.0, 0.0, 1.0], [-1.0, -1.0, 0.0]]
        assert got[0, 2].tolist() == [1.0, 30.0]

    @given(q=positions, k=positions, clip=st.integers(1, 6), d=st.integers(1, 4))
    def test_against_loops(self, q, k, clip, d):
        table = np.arange((2 * clip + 1) * d, dtype=np.float64).reshape(2 * clip + 1, d) * 0.5 - 1
        got = shaw_relative_embeddings(table, q, k, max_relative_position=clip)
        assert got.shape == (len(q), len(k), d) and got.dtype == np.float64
        for t, i in enumerate(q):
            for s, j in enumerate(k):
                r = max(-clip, min(clip, j - i))
                assert got[t, s].tolist() == table[r + clip].tolist()

    def test_errors(self):
        with pytest.raises(
            ValueError,
            match=r"^table must have shape \(2 \* max_relative_position \+ 1, D\) with 9 rows for max_relative_position=4, got shape \(8, 3\)",
        ):
            shaw_relative_embeddings(np.zeros((8, 3)), [0], [0], max_relative_position=4)
        with pytest.raises(ValueError, match=r"^table must be a 2-D array, got shape \(9,\)"):
            shaw_relative_embeddings(np.zeros(9), [0], [0], max_relative_position=4)
        with pytest.raises(ValueError, match=r"^table must contain only finite values"):
            shaw_relative_embeddings(np.full((3, 1), np.nan), [0], [0], max_relative_position=1)
        with pytest.raises(ValueError, match=r"^max_relative_position must be a positive integer"):
            shaw_relative_embeddings(np.zeros((1, 1)), [0], [0], max_relative_position=0)


def loop_logits(q, k, a):
    lead = np.broadcast_shapes(q.shape[:-2], k.shape[:-2])
    qb = np.broadcast_to(q, lead + q.shape[-2:])
    kb = np.broadcast_to(k, lead + k.shape[-2:])
    out = np.zeros(lead + (q.shape[-2], k.shape[-2]))
    for idx in np.ndindex(*lead):
        for i in range(q.shape[-2]):
            for j in range(k.shape[-2]):
                out[idx + (i, j)] = sum(qb[idx + (i, c)] * (kb[idx + (j, c)] + a[i, j, c]) for c in range(q.shape[-1]))
    return out


def loop_values(w, v, a):
    lead = np.broadcast_shapes(w.shape[:-2], v.shape[:-2])
    wb = np.broadcast_to(w, lead + w.shape[-2:])
    vb = np.broadcast_to(v, lead + v.shape[-2:])
    out = np.zeros(lead + (w.shape[-2], v.shape[-1]))
    for idx in np.ndindex(*lead):
        for i in range(w.shape[-2]):
            for c in range(v.shape[-1]):
                out[idx + (i, c)] = sum(wb[idx + (i, j)] * (vb[idx + (j, c)] + a[i, j, c]) for j in range(w.shape[-1]))
    return out


small = st.floats(-4, 4, allow_nan=False)


@st.composite
def logit_inputs(draw):
    t, s, d = draw(st.integers(0, 4)), draw(st.integers(0, 4)), draw(st.integers(1, 3))
    lead_q = draw(st.sampled_from([(), (2,), (2, 3), (1, 3)]))
    lead_k = draw(st.sampled_from([(), (3,), (2, 1)]).filter(lambda sh: _broadcasts(lead_q, sh)))
    q = draw(hnp.arrays(np.float64, lead_q + (t, d), elements=small))
    k = draw(hnp.arrays(np.float64, lead_k + (s, d), elements=small))
    a = draw(hnp.arrays(np.float64, (t, s, d), elements=small))
    return q, k, a


def _broadcasts(a, b):
    try:
        np.broadcast_shapes(a, b)
    except ValueError:
        return False
    return True


class TestLogits:
    def test_hand_values(self):
        got = shaw_relative_logits([[1.0, 0.0]], [[1.0, 1.0], [2.0, 0.0]], [[[0.0, 5.0], [10.0, 0.0]]])
        assert got.tolist() == [[1.0, 12.0]]

    def test_zero_relative_keys_is_plain_attention(self):
        rng = np.random.default_rng(1)
        q, k = rng.standard_normal((2, 3, 5, 4))
        got = shaw_relative_logits(q, k[:, :4], np.zeros((5, 4, 4)))
        np.testing.assert_allclose(got, q @ np.swapaxes(k[:, :4], -1, -2), rtol=1e-14)

    @given(inputs=logit_inputs())
    def test_against_loops(self, inputs):
        q, k, a = inputs
        got = shaw_relative_logits(q, k, a)
        np.testing.assert_allclose(got, loop_logits(q, k, a), rtol=1e-12, atol=1e-12)

    def test_with_gathered_table_matches_single_dot_product(self):
        # eq. (4) written as one product: e_ij = q_i . (k_j + a_ij)
        rng = np.random.default_rng(2)
        q, k = rng.standard_normal((2, 6, 3))
        table = rng.standard_normal((5, 3))
        a = shaw_relative_embeddings(table, np.arange(6), np.arange(6), max_relative_position=2)
        got = shaw_relative_logits(q, k, a)
        expected = np.einsum("id,ijd->ij", q, k[None, :, :] + a)
        np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-14)

    def test_errors(self):
        q, k, a = np.zeros((3, 4)), np.zeros((5, 4)), np.zeros((3, 5, 4))
        with pytest.raises(ValueError, match=r"^q and k must have the same last dimension \(D\), got q shape \(3, 4\) and k shape \(5, 3\)"):
            shaw_relative_logits(q, np.zeros((5, 3)), a)
        with pytest.raises(ValueError, match=r"^relative_keys must have shape \(T, S, D\) = \(3, 5, 4\), got shape \(5, 3, 4\)"):
            shaw_relative_logits(q, k, np.zeros((5, 3, 4)))
        with pytest.raises(ValueError, match=r"^relative_keys must be a 3-D array, got shape \(5, 4\)"):
            shaw_relative_logits(q, k, np.zeros((5, 4)))
        with pytest.raises(ValueError, match=r"^q must be an array with at least 2 dimensions, got shape \(4,\)"):
            shaw_relative_logits(np.zeros(4), k, a)
        with pytest.raises(ValueError, match=r"^q of shape \(2, 3, 4\) and k of shape \(3, 5, 4\) have leading \(batch/head\) dimensions \(2,\) and \(3,\) that do not broadcast"):
            shaw_relative_logits(np.zeros((2, 3, 4)), np.zeros((3, 5, 4)), a)
        with pytest.raises(ValueError, match=r"^k must contain only finite values"):
            shaw_relative_logits(q, np.full((5, 4), np.nan), a)
        with pytest.raises(TypeError, match=r"^q must be a numeric array"):
            shaw_relative_logits(None, k, a)


@st.composite
def value_inputs(draw):
    t, s, d = draw(st.integers(0, 4)), draw(st.integers(0, 4)), draw(st.integers(1, 3))
    lead_w = draw(st.sampled_from([(), (2,), (2, 3)]))
    lead_v = draw(st.sampled_from([(), (3,), (2, 1)]).filter(lambda sh: _broadcasts(lead_w, sh)))
    w = draw(hnp.arrays(np.float64, lead_w + (t, s), elements=st.floats(0, 1)))
    v = draw(hnp.arrays(np.float64, lead_v + (s, d), elements=small))
    a = draw(hnp.arrays(np.float64, (t, s, d), elements=small))
    return w, v, a


class TestValues:
    def test_hand_values(self):
        got = shaw_relative_values([[0.5, 0.5]], [[2.0, 0.0], [0.0, 2.0]], [[[10.0, 0.0], [0.0, 20.0]]])
        assert got.tolist() == [[6.0, 11.0]]

    @given(inputs=value_inputs())
    def test_against_loops(self, inputs):
        w, v, a = inputs
        got = shaw_relative_values(w, v, a)
        np.testing.assert_allclose(got, loop_values(w, v, a), rtol=1e-12, atol=1e-12)

    def test_one_hot_weights_pick_value_plus_relative_vector(self):
        rng = np.random.default_rng(3)
        v = rng.standard_normal((5, 2))
        a = rng.standard_normal((3, 5, 2))
        w = np.zeros((3, 5))
        w[[0, 1, 2], [4, 0, 2]] = 1.0
        got = shaw_relative_values(w, v, a)
        np.testing.assert_array_equal(got, np.stack([v[4] + a[0, 4], v[0] + a[1, 0], v[2] + a[2, 2]]))

    def test_errors(self):
        w, v, a = np.zeros((3, 5)), np.zeros((5, 2)), np.zeros((3, 5, 2))
        with pytest.raises(ValueError, match=r"^v must have S = 5 rows \(the last dimension of weights\), got weights shape \(3, 5\) and v shape \(4, 2\)"):
            shaw_relative_values(w, np.zeros((4, 2)), a)
        with pytest.raises(ValueError, match=r"^relative_values must have shape \(T, S, D\) = \(3, 5, 2\), got shape \(3, 5, 3\)"):
            shaw_relative_values(w, v, np.zeros((3, 5, 3)))
        with pytest.raises(ValueError, match=r"^relative_values must be a 3-D array, got shape \(3, 5, 2, 1\)"):
            shaw_relative_values(w, v, np.zeros((3, 5, 2, 1)))
        with pytest.raises(ValueError, match=r"^weights must be an array with at least 2 dimensions, got shape \(5,\)"):
            shaw_relative_values(np.zeros(5), v, a)
        with pytest.raises(ValueError, match=r"^weights of shape \(2, 3, 5\) and v of shape \(4, 5, 2\) have leading"):
            shaw_relative_values(np.zeros((2, 3, 5)), np.zeros((4, 5, 2)), a)
        with pytest.raises(ValueError, match=r"^weights must contain only finite values"):
            shaw_relative_values(np.full((3, 5), np.inf), v, a)
        with pytest.raises(TypeError, match=r"^v must be a real numeric array, got dtype bool"):
            shaw_relative_values(w, np.zeros((5, 2), dtype=bool), a)
