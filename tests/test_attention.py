"""Tests of posref.attention: reference attention and incremental decoding."""

import math

import numpy as np
import pytest
import scipy.special
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import posref
from posref import (
    apply_rope,
    attention,
    decode_incrementally,
    shaw_relative_embeddings,
    shaw_relative_logits,
    shaw_relative_values,
    t5_relative_bias,
)


def loop_attention(
    q,
    k,
    v,
    *,
    bias=None,
    causal=False,
    query_positions=None,
    key_positions=None,
    relative_keys=None,
    relative_values=None,
    scale=None,
):
    """Scalar loops with math.fsum and math.exp, written from the formula."""
    q, k, v = (np.asarray(a, dtype=np.float64) for a in (q, k, v))
    t_len, s_len, d, d_v = q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1]
    lead = q.shape[:-2]
    qf = q.reshape(-1, t_len, d)
    kf = k.reshape(-1, s_len, d)
    vf = v.reshape(-1, s_len, d_v)
    b = None if bias is None else np.broadcast_to(bias, lead + (t_len, s_len)).reshape(-1, t_len, s_len)
    qp = list(range(s_len - t_len, s_len)) if query_positions is None else list(query_positions)
    kp = list(range(s_len)) if key_positions is None else list(key_positions)
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    out = np.zeros((qf.shape[0], t_len, d_v))
    for n in range(qf.shape[0]):
        for i in range(t_len):
            logits = {}
            for j in range(s_len):
                if causal and kp[j] > qp[i]:
                    continue
                if b is not None and b[n, i, j] == -math.inf:
                    continue
                content = math.fsum(qf[n, i, c] * kf[n, j, c] for c in range(d))
                if relative_keys is not None:
                    content += math.fsum(qf[n, i, c] * relative_keys[i, j, c] for c in range(d))
                logits[j] = scale * content + (0.0 if b is None else b[n, i, j])
            top = max(logits.values())
            e = {j: math.exp(x - top) for j, x in logits.items()}
            z = math.fsum(e.values())
            for c in range(d_v):
                terms = []
                for j, ej in e.items():
                    value = vf[n, j, c] + (0.0 if relative_values is None else relative_values[i, j, c])
                    terms.append(ej / z * value)
                out[n, i, c] = math.fsum(terms)
    return out.reshape(lead + (t_len, d_v))


def random_qkv(seed, lead=(2, 3), t=4, s=6, d=5, d_v=None):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal(lead + (t, d))
    k = rng.standard_normal(lead + (s, d))
    v = rng.standard_normal(lead + (s, d if d_v is None else d_v))
    return q, k, v


finite = st.floats(-5, 5, allow_nan=False, allow_infinity=False)


class TestAttentionKnownValues:
    def test_two_keys_weights_by_hand(self):
        # logits [1, 0] with scale 1: weights e/(e+1) and 1/(e+1).
        q = np.array([[[1.0, 0.0]]])
        k = np.array([[[1.0, 0.0], [0.0, 0.0]]])
        v = np.array([[[1.0], [0.0]]])
        out, w = attention(q, k, v, scale=1.0, return_weights=True)
        e = math.e
        np.testing.assert_allclose(w, [[[e / (e + 1), 1 / (e + 1)]]], rtol=1e-15)
        np.testing.assert_allclose(out, [[[e / (e + 1)]]], rtol=1e-15)

    def test_default_scale_is_inverse_sqrt_d(self):
        # D = 4: logits q.k / 2 = [2, 0] -> weights e^2/(e^2+1), 1/(e^2+1).
        q = np.array([[[1.0, 1.0, 1.0, 1.0]]])
        k = np.array([[[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]]])
        v = np.array([[[2.0], [0.0]]])
        e2 = math.exp(2.0)
        np.testing.assert_allclose(attention(q, k, v), [[[2.0 * e2 / (e2 + 1)]]], rtol=1e-15)

    def test_doctest_values(self):
        q, k = np.zeros((1, 2, 2)), np.ones((1, 2, 2))
        v = np.array([[[1.0, 0.0], [3.0, 2.0]]])
        np.testing.assert_array_equal(attention(q, k, v), [[[2.0, 1.0], [2.0, 1.0]]])
        np.testing.assert_array_equal(attention(q, k, v, causal=True), [[[1.0, 0.0], [2.0, 1.0]]])
        np.testing.assert_allclose(attention(q, k, v, bias=[0.0, np.log(3.0)]), [[[2.5, 1.5]] * 2], rtol=1e-15)

    def test_relative_value_term_by_hand(self):
        # Uniform weights over two keys; a^V adds the mean of its row.
        q, k = np.zeros((1, 1, 1)), np.zeros((1, 2, 1))
        v = np.array([[[1.0], [3.0]]])
        a_v = np.array([[[10.0], [20.0]]])  # (T=1, S=2, D_v=1)
        np.testing.assert_allclose(attention(q, k, v, relative_values=a_v), [[[2.0 + 15.0]]], rtol=1e-15)

    def test_relative_key_term_by_hand(self):
        # q = [1], k = 0, a^K = [[0], [ln 3]], scale 1 -> weights 1/4, 3/4.
        q, k = np.ones((1, 1, 1)), np.zeros((1, 2, 1))
        v = np.array([[[4.0], [8.0]]])
        a_k = np.array([[[0.0], [np.log(3.0)]]])
        np.testing.assert_allclose(attention(q, k, v, relative_keys=a_k, scale=1.0), [[[7.0]]], rtol=1e-15)

    def test_causal_mask_matrix_bottom_right(self):
        # T = 2 queries at positions 2, 3 of S = 4 keys.
        q, k = np.zeros((1, 2, 1)), np.zeros((1, 4, 1))
        v = np.eye(4)[None]
        _, w = attention(q, k, v, causal=True, return_weights=True)
        np.testing.assert_allclose(w[0], [[1 / 3, 1 / 3, 1 / 3, 0.0], [0.25, 0.25, 0.25, 0.25]], rtol=1e-15)

    def test_top_left_alignment_via_positions(self):
        q, k = np.zeros((1, 2, 1)), np.zeros((1, 4, 1))
        _, w = attention(q, k, np.ones((1, 4, 1)), causal=True, query_positions=[0, 1], return_weights=True)
        np.testing.assert_allclose(w[0], [[1.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0]], rtol=1e-15)


class TestAttentionAgainstLoops:
    @pytest.mark.parametrize("causal", [False, True])
    def test_plain(self, causal):
        q, k, v = random_qkv(0, d_v=3)
        np.testing.assert_allclose(
            attention(q, k, v, causal=causal), loop_attention(q, k, v, causal=causal), rtol=1e-12, atol=1e-13
        )

    def test_everything_at_once(self):
        q, k, v = random_qkv(1, lead=(2, 2), t=3, s=5, d=4, d_v=2)
        rng = np.random.default_rng(11)
        bias = rng.standard_normal((2, 1, 3, 5))
        bias[1, 0, 2, 0] = -np.inf
        a_k = rng.standard_normal((3, 5, 4))
        a_v = rng.standard_normal((3, 5, 2))
        kwargs = dict(
            bias=bias,
            causal=True,
            query_positions=[4, 6, 9],
            key_positions=[0, 3, 5, 6, 9],
            relative_keys=a_k,
            relative_values=a_v,
            scale=0.7,
        )
        np.testing.assert_allclose(
            attention(q, k, v, **kwargs), loop_attention(q, k, v, **kwargs), rtol=1e-12, atol=1e-13
        )

    def test_against_shaw_primitives(self):
        # Scaled Shaw logits, a SciPy softmax, then Shaw's value sum.
        q, k, v = random_qkv(18, t=4, s=4, d=5, d_v=3)
        rng = np.random.default_rng(19)
        table_k, table_v = rng.standard_normal((5, 5)), rng.standard_normal((5, 3))
        p = np.arange(4)
        a_k = shaw_relative_embeddings(table_k, p, p, max_relative_position=2)
        a_v = shaw_relative_embeddings(table_v, p, p, max_relative_position=2)
        weights = scipy.special.softmax(shaw_relative_logits(q / np.sqrt(5.0), k, a_k), axis=-1)
        expected = shaw_relative_values(weights, v, a_v)
        np.testing.assert_allclose(
            attention(q, k, v, relative_keys=a_k, relative_values=a_v), expected, rtol=1e-12, atol=1e-13
        )

    def test_against_scipy_softmax(self):
        q, k, v = random_qkv(2)
        logits = np.einsum("...td,...sd->...ts", q, k) / np.sqrt(q.shape[-1])
        expected = scipy.special.softmax(logits, axis=-1) @ v
        np.testing.assert_allclose(attention(q, k, v), expected, rtol=1e-13, atol=1e-14)

    @given(
        t=st.integers(1, 4),
        s=st.integers(1, 5),
        d=st.integers(1, 4),
        causal=st.booleans(),
        data=st.data(),
    )
    def test_loops_property(self, t, s, d, causal, data):
        q = data.draw(hnp.arrays(np.float64, (2, t, d), elements=finite))
        k = data.draw(hnp.arrays(np.float64, (2, s, d), elements=finite))
        v = data.draw(hnp.arrays(np.float64, (2, s, d), elements=finite))
        bias = data.draw(hnp.arrays(np.float64, (t, s), elements=finite))
        query_positions = s - t + np.arange(t) if s >= t else s + np.arange(t)
        kwargs = dict(bias=bias, causal=causal, query_positions=query_positions)
        np.testing.assert_allclose(
            attention(q, k, v, **kwargs), loop_attention(q, k, v, **kwargs), rtol=1e-10, atol=1e-10
        )


class TestAttentionProperties:
    @given(
        t=st.integers(1, 5),
        s=st.integers(1, 6),
        causal=st.booleans(),
        data=st.data(),
    )
    def test_weights_rows_sum_to_one(self, t, s, causal, data):
        q = data.draw(hnp.arrays(np.float64, (3, t, 4), elements=finite))
        k = data.draw(hnp.arrays(np.float64, (3, s, 4), elements=finite))
        query_positions = np.arange(t) + s  # every key is in the past
        _, w = attention(
            q, k, np.zeros((3, s, 1)), causal=causal, query_positions=query_positions, return_weights=True
        )
        np.testing.assert_allclose(w.sum(axis=-1), 1.0, rtol=0, atol=1e-14)
        assert np.all(w >= 0)

    @given(
        length=st.integers(2, 6),
        changed=st.integers(0, 5),
        data=st.data(),
    )
    def test_causal_rows_ignore_future_keys(self, length, changed, data):
        changed = changed % length
        q = data.draw(hnp.arrays(np.float64, (2, length, 3), elements=finite))
        k = data.draw(hnp.arrays(np.float64, (2, length, 3), elements=finite))
        v = data.draw(hnp.arrays(np.float64, (2, length, 3), elements=finite))
        k2, v2 = k.copy(), v.copy()
        k2[:, changed] = data.draw(hnp.arrays(np.float64, (2, 3), elements=finite))
        v2[:, changed] = data.draw(hnp.arrays(np.float64, (2, 3), elements=finite))
        before = attention(q, k, v, causal=True)
        after = attention(q, k2, v2, causal=True)
        # Rows whose position is before the changed key are bit-for-bit unchanged.
        np.testing.assert_array_equal(before[:, :changed], after[:, :changed])

    @given(data=st.data())
    def test_bias_shift_per_row_changes_nothing(self, data):
        q, k, v = random_qkv(3, lead=(2,), t=3, s=4, d=2)
        bias = data.draw(hnp.arrays(np.float64, (2, 3, 4), elements=finite))
        shift = data.draw(hnp.arrays(np.float64, (2, 3, 1), elements=st.floats(-50, 50)))
        np.testing.assert_allclose(
            attention(q, k, v, bias=bias + shift), attention(q, k, v, bias=bias), rtol=1e-12, atol=1e-12
        )

    def test_constant_relative_key_equals_shifted_keys(self):
        q, k, v = random_qkv(4, t=3, s=3)
        c = np.random.default_rng(5).standard_normal(5)
        a_k = np.broadcast_to(c, (3, 3, 5))
        np.testing.assert_allclose(
            attention(q, k, v, relative_keys=a_k), attention(q, k + c, v), rtol=1e-12, atol=1e-13
        )

    def test_constant_relative_value_adds_to_output(self):
        q, k, v = random_qkv(6, t=3, s=4)
        u = np.array([1.0, -2.0, 0.5, 3.0, 0.0])
        a_v = np.broadcast_to(u, (3, 4, 5))
        np.testing.assert_allclose(
            attention(q, k, v, relative_values=a_v, causal=True),
            attention(q, k, v, causal=True) + u,
            rtol=1e-12,
            atol=1e-13,
        )

    def test_scale_equals_scaling_queries(self):
        q, k, v = random_qkv(7)
        np.testing.assert_allclose(attention(q, k, v, scale=0.3), attention(0.3 * q, k, v, scale=1.0), rtol=1e-12)

    def test_minus_inf_bias_equals_dropping_the_key(self):
        q, k, v = random_qkv(8, t=2, s=4)
        bias = np.zeros((2, 4))
        bias[:, 1] = -np.inf
        keep = [0, 2, 3]
        np.testing.assert_allclose(
            attention(q, k, v, bias=bias),
            attention(q, k[..., keep, :], v[..., keep, :], query_positions=[2, 3]),
            rtol=1e-13,
            atol=1e-14,
        )

    def test_single_decoding_query_sees_every_key(self):
        q, k, v = random_qkv(9, t=1, s=7)
        np.testing.assert_array_equal(attention(q, k, v, causal=True), attention(q, k, v))

    def test_huge_logits_do_not_overflow(self):
        # Logits near 1e6: a naive exp overflows; the max-subtracted softmax does not.
        q = np.array([[[1000.0, 0.0]]])
        k = np.array([[[1000.0, 0.0], [999.0, 0.0]]])
        v = np.array([[[1.0], [0.0]]])
        out, w = attention(q, k, v, scale=1.0, return_weights=True)
        # logits 1e6 and 999000: the second weight is exp(-1000) = 0 in float64.
        np.testing.assert_array_equal(w, [[[1.0, 0.0]]])
        np.testing.assert_array_equal(out, [[[1.0]]])

    def test_batch_entries_are_independent(self):
        q, k, v = random_qkv(10)
        full = attention(q, k, v, causal=True)
        for b in range(2):
            for h in range(3):
                single = attention(q[b, h][None], k[b, h][None], v[b, h][None], causal=True)[0]
                np.testing.assert_array_equal(full[b, h], single)

    def test_output_dtype_and_shape(self):
        q, k, v = random_qkv(11, d_v=2)
        out = attention(q.astype(np.float32), k, v)
        assert out.dtype == np.float64 and out.shape == (2, 3, 4, 2)

    def test_empty_query_axis(self):
        q, k, v = random_qkv(12, t=0)
        out, w = attention(q, k, v, causal=True, return_weights=True)
        assert out.shape == (2, 3, 0, 5) and w.shape == (2, 3, 0, 6)


class TestFullyMasked:
    def test_more_queries_than_keys_raises_by_default(self):
        q, k, v = random_qkv(13, lead=(1,), t=3, s=2)
        with pytest.raises(ValueError, match=r"^query row 0 \(query position -1, index \(0, 0\) .*no visible key"):
            attention(q, k, v, causal=True)

    def test_more_queries_than_keys_zeros(self):
        # flash-attn's example: seqlen_q = 5, seqlen_k = 2, masks rows 0-2 entirely.
        q, k, v = random_qkv(14, lead=(1,), t=5, s=2)
        out, w = attention(q, k, v, causal=True, fully_masked="zeros", return_weights=True)
        np.testing.assert_array_equal(out[:, :3], 0.0)
        np.testing.assert_array_equal(w[:, :3], 0.0)
        np.testing.assert_array_equal(w[0, 3], [1.0, 0.0])
        np.testing.assert_allclose(w[0, 4].sum(), 1.0, rtol=1e-15)

    def test_minus_inf_row_raises(self):
        q, k, v = random_qkv(15, t=2, s=3)
        bias = np.zeros((2, 3, 2, 3))
        bias[1, 2, 1, :] = -np.inf
        with pytest.raises(ValueError, match=r"^query row 1 \(query position 2, index \(1, 2, 1\)"):
            attention(q, k, v, bias=bias)

    def test_minus_inf_row_zeros_leaves_other_rows(self):
        q, k, v = random_qkv(16, t=2, s=3)
        bias = np.zeros((2, 3, 2, 3))
        bias[1, 2, 1, :] = -np.inf
        out = attention(q, k, v, bias=bias, fully_masked="zeros")
        np.testing.assert_array_equal(out[1, 2, 1], 0.0)
        reference = attention(q, k, v)
        reference[1, 2, 1] = 0.0
        np.testing.assert_allclose(out, reference, rtol=1e-15)

    def test_no_keys_at_all(self):
        q, k, v = random_qkv(17, t=2, s=0)
        with pytest.raises(ValueError, match=r"no visible key"):
            attention(q, k, v)
        np.testing.assert_array_equal(attention(q, k, v, fully_masked="zeros"), np.zeros((2, 3, 2, 5)))


class TestAttentionErrors:
    @pytest.mark.parametrize("name", ["q", "k", "v"])
    def test_rank(self, name):
        args = dict(zip("qkv", random_qkv(0)))
        args[name] = np.ones((4, 5))
        message = rf"^{name} must be an array with at least 3 dimensions, got shape \(4, 5\)"
        with pytest.raises(ValueError, match=message):
            attention(args["q"], args["k"], args["v"])

    def test_not_numeric(self):
        _, k, v = random_qkv(0)
        with pytest.raises(TypeError, match=r"^q must be a"):
            attention(None, k, v)

    def test_not_finite(self):
        q, k, v = random_qkv(0)
        k[0, 0, 0, 0] = np.inf
        with pytest.raises(ValueError, match=r"^k must contain only finite values"):
            attention(q, k, v)

    def test_zero_feature_dim(self):
        q, k, v = random_qkv(0, d=0)
        with pytest.raises(ValueError, match=r"^q must have a non-zero last dimension \(D\), got shape \(2, 3, 4, 0\)"):
            attention(q, k, v)

    def test_k_feature_mismatch_names_both(self):
        q, k, v = random_qkv(0)
        with pytest.raises(
            ValueError,
            match=r"^k must have shape \(\.\.\., H, S, D\) with \(\.\.\., H\) = \(2, 3\) and D = 5 to match q of "
            r"shape \(2, 3, 4, 5\), got k of shape \(2, 3, 6, 4\)",
        ):
            attention(q, k[..., :4], v)

    def test_k_heads_mismatch(self):
        q, k, v = random_qkv(0)
        with pytest.raises(ValueError, match=r"^k must have shape .*got k of shape \(2, 1, 6, 5\)"):
            attention(q, k[:, :1], v[:, :1])

    def test_v_length_mismatch_names_both(self):
        q, k, v = random_qkv(0)
        with pytest.raises(
            ValueError,
            match=r"^v must have shape \(\.\.\., H, S, D_v\) with \(\.\.\., H, S\) = \(2, 3, 6\) to match k of "
            r"shape \(2, 3, 6, 5\), got v of shape \(2, 3, 5, 5\)",
        ):
            attention(q, k, v[..., :5, :])

    @pytest.mark.parametrize("shape", [(4, 5), (2, 3, 4, 6, 1), (2, 4, 6), (1, 2, 3, 4, 6)])
    def test_bias_shape(self, shape):
        q, k, v = random_qkv(0)
        with pytest.raises(
            ValueError,
            match=r"^bias must be broadcastable to \(\.\.\., H, T, S\) = \(2, 3, 4, 6\) \(from q of shape "
            r"\(2, 3, 4, 5\) and k of shape \(2, 3, 6, 5\)\), got shape",
        ):
            attention(q, k, v, bias=np.zeros(shape))

    @pytest.mark.parametrize("bad", [np.nan, np.inf])
    def test_bias_values(self, bad):
        q, k, v = random_qkv(0)
        bias = np.zeros((4, 6))
        bias[0, 0] = bad
        with pytest.raises(ValueError, match=r"^bias must hold finite values or -inf \(a masked entry\)"):
            attention(q, k, v, bias=bias)

    def test_bias_type(self):
        q, k, v = random_qkv(0)
        with pytest.raises(TypeError, match=r"^bias must be a real numeric array"):
            attention(q, k, v, bias=np.zeros((4, 6), dtype=bool))

    def test_causal_type(self):
        q, k, v = random_qkv(0)
        with pytest.raises(TypeError, match=r"^causal must be True or False, got causal='yes'"):
            attention(q, k, v, causal="yes")

    def test_query_positions_shape(self):
        q, k, v = random_qkv(0)
        with pytest.raises(
            ValueError,
            match=r"^query_positions must have shape \(T,\) = \(4,\) to match q of shape \(2, 3, 4, 5\), "
            r"got shape \(3,\)",
        ):
            attention(q, k, v, query_positions=[0, 1, 2])

    def test_query_positions_rank(self):
        q, k, v = random_qkv(0)
        with pytest.raises(ValueError, match=r"^query_positions must be a 1-D array, got shape \(1, 4\)"):
            attention(q, k, v, query_positions=[[0, 1, 2, 3]])

    def test_key_positions_shape(self):
        q, k, v = random_qkv(0)
        with pytest.raises(
            ValueError,
            match=r"^key_positions must have shape \(S,\) = \(6,\) to match k of shape \(2, 3, 6, 5\), "
            r"got shape \(2,\)",
        ):
            attention(q, k, v, key_positions=[0, 1])

    def test_negative_positions(self):
        q, k, v = random_qkv(0)
        with pytest.raises(ValueError, match=r"^key_positions must hold non-negative integers, got minimum -1"):
            attention(q, k, v, key_positions=[-1, 0, 1, 2, 3, 4])

    def test_fractional_positions(self):
        q, k, v = random_qkv(0)
        with pytest.raises(ValueError, match=r"^query_positions must hold non-negative integers, got a non-integer"):
            attention(q, k, v, query_positions=[0.5, 1, 2, 3])

    def test_relative_keys_shape(self):
        q, k, v = random_qkv(0)
        with pytest.raises(
            ValueError, match=r"^relative_keys must have shape \(T, S, D\) = \(4, 6, 5\), got shape \(6, 4, 5\)"
        ):
            attention(q, k, v, relative_keys=np.zeros((6, 4, 5)))

    def test_relative_keys_rank(self):
        q, k, v = random_qkv(0)
        with pytest.raises(ValueError, match=r"^relative_keys must be a 3-D array, got shape \(2, 4, 6, 5\)"):
            attention(q, k, v, relative_keys=np.zeros((2, 4, 6, 5)))

    def test_relative_values_shape(self):
        q, k, v = random_qkv(0, d_v=2)
        with pytest.raises(
            ValueError, match=r"^relative_values must have shape \(T, S, D_v\) = \(4, 6, 2\), got shape \(4, 6, 5\)"
        ):
            attention(q, k, v, relative_values=np.zeros((4, 6, 5)))

    @pytest.mark.parametrize("scale", [0.0, -1.0])
    def test_scale_value(self, scale):
        q, k, v = random_qkv(0)
        with pytest.raises(ValueError, match=r"^scale must be a finite real number > 0.0"):
            attention(q, k, v, scale=scale)

    def test_scale_type(self):
        q, k, v = random_qkv(0)
        with pytest.raises(TypeError, match=r"^scale must be a finite real number"):
            attention(q, k, v, scale="1")

    def test_fully_masked_choice(self):
        q, k, v = random_qkv(0)
        with pytest.raises(ValueError, match=r"^fully_masked must be one of 'raise', 'zeros', got fully_masked='nan'"):
            attention(q, k, v, fully_masked="nan")

    def test_return_weights_type(self):
        q, k, v = random_qkv(0)
        with pytest.raises(TypeError, match=r"^return_weights must be True or False"):
            attention(q, k, v, return_weights=None)

    def test_options_are_keyword_only(self):
        q, k, v = random_qkv(0)
        with pytest.raises(TypeError):
            attention(q, k, v, None)


# ---------------------------------------------------------------- decoding


def rope_transform(layout, base=10_000.0):
    return lambda x, positions: apply_rope(x, positions, base=base, layout=layout)


def full_causal(
    q,
    k,
    v,
    *,
    positions=None,
    query_transform=None,
    key_transform=None,
    bias_fn=None,
    relative_keys_fn=None,
    relative_values_fn=None,
    scale=None,
):
    """The full-sequence result the incremental one must equal."""
    length = q.shape[-2]
    p = np.arange(length) if positions is None else np.asarray(positions)
    if query_transform is not None:
        q = query_transform(q, p)
    if key_transform is not None:
        k = key_transform(k, p)
    return attention(
        q,
        k,
        v,
        causal=True,
        query_positions=p,
        key_positions=p,
        scale=scale,
        bias=None if bias_fn is None else bias_fn(p, p),
        relative_keys=None if relative_keys_fn is None else relative_keys_fn(p, p),
        relative_values=None if relative_values_fn is None else relative_values_fn(p, p),
    )


CHUNKINGS = [[9], [5, 1, 1, 1, 1], [1] * 9, [2, 3, 4], [4, 1, 4]]


def decode_qkv(seed, d=8, d_v=None):
    return random_qkv(seed, lead=(2, 2), t=9, s=9, d=d, d_v=d_v)


class TestDecodeIncrementally:
    @pytest.mark.parametrize("chunks", CHUNKINGS)
    def test_no_position_method(self, chunks):
        q, k, v = decode_qkv(20, d_v=3)
        np.testing.assert_allclose(
            decode_incrementally(q, k, v, chunk_sizes=chunks), full_causal(q, k, v), rtol=0, atol=1e-12
        )

    @pytest.mark.parametrize("layout", ["half", "interleaved"])
    @pytest.mark.parametrize("chunks", CHUNKINGS)
    def test_rope(self, layout, chunks):
        q, k, v = decode_qkv(21)
        kw = dict(query_transform=rope_transform(layout), key_transform=rope_transform(layout))
        np.testing.assert_allclose(
            decode_incrementally(q, k, v, chunk_sizes=chunks, **kw), full_causal(q, k, v, **kw), rtol=0, atol=1e-12
        )

    def test_rope_with_position_gaps(self):
        q, k, v = decode_qkv(22)
        positions = [3, 4, 7, 8, 20, 21, 22, 40, 1000]
        kw = dict(query_transform=rope_transform("half", 500.0), key_transform=rope_transform("half", 500.0))
        np.testing.assert_allclose(
            decode_incrementally(q, k, v, chunk_sizes=[5, 1, 1, 1, 1], positions=positions, **kw),
            full_causal(q, k, v, positions=positions, **kw),
            rtol=0,
            atol=1e-12,
        )

    def test_rope_without_offset_is_caught(self):
        # A buggy cache that rotates every new token as if it were at position 0.
        q, k, v = decode_qkv(23)
        rope = rope_transform("half")
        buggy = lambda x, positions: rope(x, positions - positions[0])  # noqa: E731
        good = full_causal(q, k, v, query_transform=rope, key_transform=rope)
        bad = decode_incrementally(q, k, v, chunk_sizes=[5, 1, 1, 1, 1], query_transform=buggy, key_transform=buggy)
        np.testing.assert_allclose(bad[..., :5, :], good[..., :5, :], rtol=0, atol=1e-12)
        assert np.max(np.abs(bad[..., 5:, :] - good[..., 5:, :])) > 1e-3

    @pytest.mark.parametrize("bidirectional", [False, True])
    @pytest.mark.parametrize("chunks", CHUNKINGS)
    def test_t5_bias(self, bidirectional, chunks):
        q, k, v = decode_qkv(24)
        table = np.random.default_rng(25).standard_normal((8, 2))  # (num_buckets, H)

        def bias_fn(query_positions, key_positions):
            return t5_relative_bias(
                table, query_positions, key_positions, bidirectional=bidirectional, num_buckets=8, max_distance=16
            )

        np.testing.assert_allclose(
            decode_incrementally(q, k, v, chunk_sizes=chunks, bias_fn=bias_fn, scale=1.0),
            full_causal(q, k, v, bias_fn=bias_fn, scale=1.0),
            rtol=0,
            atol=1e-12,
        )

    @pytest.mark.parametrize("form", ["distance", "symmetric", "key_index", "last_key_anchored"])
    @pytest.mark.parametrize("chunks", CHUNKINGS)
    def test_alibi_bias(self, form, chunks):
        # The forms differ by a per-row constant, which softmax ignores; the
        # last-key-anchored form even changes its anchor as the cache grows.
        q, k, v = decode_qkv(26)
        slopes = posref.alibi_slopes(2)

        def bias_fn(query_positions, key_positions):
            return posref.alibi_bias(slopes, query_positions, key_positions, form=form)

        np.testing.assert_allclose(
            decode_incrementally(q, k, v, chunk_sizes=chunks, bias_fn=bias_fn),
            full_causal(q, k, v, bias_fn=bias_fn),
            rtol=0,
            atol=1e-12,
        )

    @pytest.mark.parametrize("chunks", CHUNKINGS)
    def test_rope_and_bias_together(self, chunks):
        q, k, v = decode_qkv(27)
        rope = rope_transform("interleaved")
        bias_fn = lambda qp, kp: -0.25 * np.abs(kp[None, :] - qp[:, None])  # noqa: E731
        kw = dict(query_transform=rope, key_transform=rope, bias_fn=bias_fn)
        np.testing.assert_allclose(
            decode_incrementally(q, k, v, chunk_sizes=chunks, **kw), full_causal(q, k, v, **kw), rtol=0, atol=1e-12
        )

    @pytest.mark.parametrize("chunks", CHUNKINGS)
    def test_shaw_relative_keys_and_values(self, chunks):
        q, k, v = decode_qkv(28, d_v=3)
        rng = np.random.default_rng(29)
        clip = 3
        table_k = rng.standard_normal((2 * clip + 1, 8))
        table_v = rng.standard_normal((2 * clip + 1, 3))
        kw = dict(
            relative_keys_fn=lambda qp, kp: shaw_relative_embeddings(table_k, qp, kp, max_relative_position=clip),
            relative_values_fn=lambda qp, kp: shaw_relative_embeddings(table_v, qp, kp, max_relative_position=clip),
        )
        np.testing.assert_allclose(
            decode_incrementally(q, k, v, chunk_sizes=chunks, **kw), full_causal(q, k, v, **kw), rtol=0, atol=1e-12
        )

    @given(data=st.data())
    def test_random_chunkings(self, data):
        length = data.draw(st.integers(1, 8))
        sizes, left = [], length
        while left:
            size = data.draw(st.integers(1, left))
            sizes.append(size)
            left -= size
        q, k, v = random_qkv(30, lead=(2,), t=length, s=length, d=4)
        rope = rope_transform("half")
        kw = dict(query_transform=rope, key_transform=rope, bias_fn=lambda qp, kp: 0.1 * (kp[None, :] - qp[:, None]))
        np.testing.assert_allclose(
            decode_incrementally(q, k, v, chunk_sizes=sizes, **kw), full_causal(q, k, v, **kw), rtol=0, atol=1e-12
        )

    def test_empty_sequence(self):
        q, k, v = random_qkv(31, t=0, s=0, d_v=2)
        assert decode_incrementally(q, k, v, chunk_sizes=[]).shape == (2, 3, 0, 2)

    def test_transforms_see_chunk_positions(self):
        seen = []

        def record(x, positions):
            seen.append(positions.tolist())
            return x

        q, k, v = random_qkv(32, lead=(1,), t=5, s=5)
        decode_incrementally(q, k, v, chunk_sizes=[3, 2], positions=[1, 2, 5, 6, 9], query_transform=record)
        assert seen == [[1, 2, 5], [6, 9]]

    def test_bias_fn_sees_cached_positions(self):
        seen = []

        def bias_fn(query_positions, key_positions):
            seen.append((query_positions.tolist(), key_positions.tolist()))
            return np.zeros((len(query_positions), len(key_positions)))

        q, k, v = random_qkv(33, lead=(1,), t=4, s=4)
        decode_incrementally(q, k, v, chunk_sizes=[2, 1, 1], bias_fn=bias_fn)
        assert seen == [([0, 1], [0, 1]), ([2], [0, 1, 2]), ([3], [0, 1, 2, 3])]


class TestDecodeIncrementallyErrors:
    def qkv(self):
        return random_qkv(0, lead=(1,), t=4, s=4)

    def test_length_mismatch(self):
        q, k, v = random_qkv(0, lead=(1,), t=3, s=4)
        with pytest.raises(
            ValueError,
            match=r"^q and k must have the same sequence length L for self-attention, got q of shape \(1, 3, 5\) "
            r"and k of shape \(1, 4, 5\)",
        ):
            decode_incrementally(q, k, v, chunk_sizes=[3])

    def test_qkv_mismatch(self):
        q, k, v = self.qkv()
        with pytest.raises(ValueError, match=r"^v must have shape \(\.\.\., H, S, D_v\)"):
            decode_incrementally(q, k, v[:, :3], chunk_sizes=[4])

    def test_chunk_sizes_sum(self):
        q, k, v = self.qkv()
        with pytest.raises(
            ValueError,
            match=r"^chunk_sizes must sum to the sequence length L = 4 \(q.shape\[-2\]\), got sum 3 from "
            r"chunk_sizes=\[2, 1\]",
        ):
            decode_incrementally(q, k, v, chunk_sizes=[2, 1])

    def test_chunk_sizes_entry(self):
        q, k, v = self.qkv()
        with pytest.raises(ValueError, match=r"^chunk_sizes\[1\] must be a positive integer, got chunk_sizes\[1\]=0"):
            decode_incrementally(q, k, v, chunk_sizes=[4, 0])

    def test_chunk_sizes_entry_type(self):
        q, k, v = self.qkv()
        with pytest.raises(TypeError, match=r"^chunk_sizes\[0\] must be a positive integer, got chunk_sizes\[0\]=2.0"):
            decode_incrementally(q, k, v, chunk_sizes=[2.0, 2])

    @pytest.mark.parametrize("chunk_sizes", [4, "4", None])
    def test_chunk_sizes_type(self, chunk_sizes):
        q, k, v = self.qkv()
        with pytest.raises(TypeError, match=r"^chunk_sizes must be a sequence of positive integers"):
            decode_incrementally(q, k, v, chunk_sizes=chunk_sizes)

    def test_chunk_sizes_required(self):
        q, k, v = self.qkv()
        with pytest.raises(TypeError, match="chunk_sizes"):
            decode_incrementally(q, k, v)

    def test_positions_not_increasing(self):
        q, k, v = self.qkv()
        with pytest.raises(
            ValueError, match=r"^positions must be strictly increasing, got positions=\[0, 2, 2, 3\]"
        ):
            decode_incrementally(q, k, v, chunk_sizes=[4], positions=[0, 2, 2, 3])

    def test_positions_shape(self):
        q, k, v = self.qkv()
        with pytest.raises(
            ValueError,
            match=r"^positions must have shape \(L,\) = \(4,\) to match q of shape \(1, 4, 5\), got shape \(3,\)",
        ):
            decode_incrementally(q, k, v, chunk_sizes=[4], positions=[0, 1, 2])

    def test_positions_negative(self):
        q, k, v = self.qkv()
        with pytest.raises(ValueError, match=r"^positions must hold non-negative integers"):
            decode_incrementally(q, k, v, chunk_sizes=[4], positions=[-1, 0, 1, 2])

    @pytest.mark.parametrize(
        "name", ["query_transform", "key_transform", "bias_fn", "relative_keys_fn", "relative_values_fn"]
    )
    def test_not_callable(self, name):
        q, k, v = self.qkv()
        with pytest.raises(TypeError, match=rf"^{name} must be a callable or None, got {name}=3 of type int"):
            decode_incrementally(q, k, v, chunk_sizes=[4], **{name: 3})

    def test_transform_wrong_shape(self):
        q, k, v = self.qkv()
        with pytest.raises(
            ValueError,
            match=r"^key_transform must return an array of the shape it was given, \(1, 2, 5\), got shape \(1, 2, 4\)",
        ):
            decode_incrementally(q, k, v, chunk_sizes=[2, 2], key_transform=lambda x, p: x[..., :4])

    def test_transform_not_finite(self):
        q, k, v = self.qkv()
        with pytest.raises(ValueError, match=r"^the output of query_transform must contain only finite values"):
            decode_incrementally(q, k, v, chunk_sizes=[4], query_transform=lambda x, p: x * np.nan)

    def test_bias_fn_wrong_shape(self):
        q, k, v = self.qkv()
        with pytest.raises(
            ValueError,
            match=r"^the output of bias_fn must be broadcastable to \(\.\.\., H, T, S\) = \(1, 2, 2\) "
            r"\(for 2 query and 2 key positions\), got shape \(2, 3\)",
        ):
            decode_incrementally(q, k, v, chunk_sizes=[2, 2], bias_fn=lambda qp, kp: np.zeros((2, 3)))

    def test_relative_keys_fn_wrong_shape(self):
        q, k, v = self.qkv()
        with pytest.raises(
            ValueError,
            match=r"^the output of relative_keys_fn must have shape \(t, s, D\) = \(1, 4, 5\) \(for 1 query and 4 key "
            r"positions\), got shape \(4, 4, 5\)",
        ):
            decode_incrementally(
                q, k, v, chunk_sizes=[3, 1], relative_keys_fn=lambda qp, kp: np.zeros((len(kp), len(kp), 5))
            )

    def test_relative_values_fn_wrong_shape(self):
        q, k, v = self.qkv()
        with pytest.raises(
            ValueError,
            match=r"^the output of relative_values_fn must have shape \(t, s, D_v\) = \(4, 4, 5\) \(for 4 query",
        ):
            decode_incrementally(q, k, v, chunk_sizes=[4], relative_values_fn=lambda qp, kp: np.zeros((4, 4, 1)))

    def test_relative_values_fn_wrong_rank(self):
        q, k, v = self.qkv()
        message = r"^the output of relative_values_fn must be a 3-D array, got shape \(4, 4\)"
        with pytest.raises(ValueError, match=message):
            decode_incrementally(q, k, v, chunk_sizes=[4], relative_values_fn=lambda qp, kp: np.zeros((4, 4)))

    def test_scale(self):
        q, k, v = self.qkv()
        with pytest.raises(ValueError, match=r"^scale must be a finite real number > 0.0"):
            decode_incrementally(q, k, v, chunk_sizes=[4], scale=-2.0)
