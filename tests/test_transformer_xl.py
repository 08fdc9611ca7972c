"""Transformer-XL: the relative sinusoid and the attention logits with two global biases.

Expected values come from hand arithmetic, from the survey's computed
tables (conventions.md sections 8 and 16), from element-by-element loops
written with the ``math`` module, from exact integer arithmetic and from
mpmath; never from running the functions under test.
"""

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from _relative_helpers import RTOL, seeded_rng

from posref import spec_functions, transformer_xl_relative_encoding, transformer_xl_scores


def test_catalogue_family_and_module():
    entries = spec_functions("transformer_xl")
    assert sorted(e.name for e in entries) == sorted(["transformer_xl_relative_encoding", "transformer_xl_scores"])
    assert {e.module for e in entries} == {"posref.relative.transformer_xl"}


class TestTransformerXLRelativeEncoding:
    def test_hand_values(self):
        # dim 4, base 100: frequencies 1 and 0.1
        out = transformer_xl_relative_encoding([0, 2], 4, base=100.0)
        expected = [[0, 0, 1, 1], [math.sin(2), math.sin(0.2), math.cos(2), math.cos(0.2)]]
        np.testing.assert_allclose(out, expected, rtol=1e-15, atol=0)
        assert out.dtype == np.float64

    def test_against_mpmath(self):
        dim, distances = 16, [0, 1, 7, 511, 4095]
        out = transformer_xl_relative_encoding(distances, dim)
        mpmath.mp.dps = 40
        for row, delta in zip(out, distances):
            for i in range(dim // 2):
                omega = mpmath.mpf(10000) ** (-mpmath.mpf(2 * i) / dim)
                assert row[i] == pytest.approx(float(mpmath.sin(delta * omega)), rel=1e-13, abs=1e-13)
                assert row[dim // 2 + i] == pytest.approx(float(mpmath.cos(delta * omega)), rel=1e-13, abs=1e-13)

    def test_max_distance_clamps(self):
        clamped = transformer_xl_relative_encoding([3, 10, 50], 8, max_distance=10)
        plain = transformer_xl_relative_encoding([3, 10, 10], 8)
        np.testing.assert_array_equal(clamped, plain)

    def test_shape_and_fractional_distances(self):
        assert transformer_xl_relative_encoding(np.zeros((2, 3)), 6).shape == (2, 3, 6)
        assert transformer_xl_relative_encoding([0.5], 2)[0, 0] == pytest.approx(math.sin(0.5))

    @given(st.integers(0, 2000), st.integers(0, 2000))
    def test_dot_product_depends_on_difference_only(self, m, n):
        r_m, r_n = transformer_xl_relative_encoding([m, n], 32)
        omega = 10000.0 ** (-np.arange(16) * 2 / 32)
        assert r_m @ r_n == pytest.approx(np.cos((m - n) * omega).sum(), abs=1e-9)

    def test_errors(self):
        with pytest.raises(ValueError, match=r"^dim must be a positive even integer, got dim=7$"):
            transformer_xl_relative_encoding([0], 7)
        with pytest.raises(TypeError, match=r"^dim must be a positive even integer"):
            transformer_xl_relative_encoding([0], 4.0)
        with pytest.raises(ValueError, match=r"^base must be a finite real number > 1.0"):
            transformer_xl_relative_encoding([0], 4, base=1.0)
        with pytest.raises(ValueError, match=r"^distances must hold non-negative values"):
            transformer_xl_relative_encoding([-1], 4)
        with pytest.raises(ValueError, match=r"^distances must contain only finite values"):
            transformer_xl_relative_encoding([np.inf], 4)
        with pytest.raises(TypeError, match=r"^distances must be a numeric array"):
            transformer_xl_relative_encoding("0", 4)
        with pytest.raises(ValueError, match=r"^max_distance must be a non-negative integer, got max_distance=-1$"):
            transformer_xl_relative_encoding([0], 4, max_distance=-1)
        with pytest.raises(TypeError, match=r"^max_distance must be a non-negative integer"):
            transformer_xl_relative_encoding([0], 4, max_distance=2.5)


def _rel_shift(x, zero_triu=False):
    """The pad-and-reshape relative shift of the original code, in NumPy, on (T, S) blocks."""
    t, s = x.shape[-2:]
    padded = np.concatenate([np.zeros(x.shape[:-1] + (1,)), x], axis=-1)  # (..., T, S+1)
    padded = padded.reshape(x.shape[:-2] + (s + 1, t))
    out = padded[..., 1:, :].reshape(x.shape)
    if zero_triu:
        out = out * np.tril(np.ones((t, s)), s - t)
    return out


def _txl_inputs(seed, batch=(), heads=2, t=3, s=5, d=4):
    rng = seeded_rng(seed)
    q = rng.standard_normal(batch + (heads, t, d))
    k = rng.standard_normal(batch + (heads, s, d))
    r = rng.standard_normal((heads, s, d))
    u = rng.standard_normal((heads, d))
    v = rng.standard_normal((heads, d))
    return q, k, r, u, v


class TestTransformerXLScores:
    def test_hand_values_with_mask(self):
        q = [[[1.0], [1.0]]]
        k = [[[1.0], [2.0]]]
        r = [[[0.5], [0.25]]]
        zero = [[0.0]]
        out = transformer_xl_scores(q, k, r, zero, zero, scale=1.0)
        # row 0: key 0 at distance 0 -> 1 + 0.5; key 1 in the future
        # row 1: key 0 at distance 1 -> 1 + 0.25; key 1 at distance 0 -> 2 + 0.5
        np.testing.assert_array_equal(out, [[[1.5, -np.inf], [1.25, 2.5]]])
        zeroed = transformer_xl_scores(q, k, r, zero, zero, scale=1.0, future_keys="zero")
        np.testing.assert_array_equal(zeroed, [[[1.5, 2.0], [1.25, 2.5]]])

    def test_global_biases_hand_values(self):
        # u adds u.k_j, v adds v.r_delta
        out = transformer_xl_scores([[[0.0]]], [[[3.0]]], [[[5.0]]], [[2.0]], [[10.0]], scale=1.0)
        assert out[0, 0, 0] == 2.0 * 3.0 + 10.0 * 5.0

    def test_default_scale_is_inverse_sqrt_d(self):
        args = _txl_inputs(1, d=9)
        np.testing.assert_allclose(
            transformer_xl_scores(*args), transformer_xl_scores(*args, scale=1.0) / 3.0, rtol=RTOL
        )

    @pytest.mark.parametrize("t,s", [(4, 4), (3, 5), (1, 6)])
    def test_four_terms_by_loops(self, t, s):
        q, k, r, u, v = _txl_inputs(2, t=t, s=s)
        out = transformer_xl_scores(q, k, r, u, v, scale=0.7)
        m = s - t
        for h in range(q.shape[0]):
            for i in range(t):
                for j in range(s):
                    if j > i + m:
                        assert out[h, i, j] == -np.inf
                        continue
                    rel = r[h, i + m - j]
                    a = sum(q[h, i, x] * k[h, j, x] for x in range(4))
                    b = sum(q[h, i, x] * rel[x] for x in range(4))
                    c = sum(u[h, x] * k[h, j, x] for x in range(4))
                    dd = sum(v[h, x] * rel[x] for x in range(4))
                    assert out[h, i, j] == pytest.approx(0.7 * (a + b + c + dd), rel=1e-12)

    @pytest.mark.parametrize("t,s", [(4, 4), (3, 7), (1, 3)])
    def test_rel_shift_trick_equals_gather(self, t, s):
        q, k, r, u, v = _txl_inputs(3, batch=(2,), t=t, s=s)
        r_code = r[:, ::-1]  # original order: row c holds distance S-1-c
        ac = np.einsum("bhtd,bhsd->bhts", q + u[:, None], k)
        bd = np.einsum("bhtd,hsd->bhts", q + v[:, None], r_code)
        causal = np.tril(np.ones((t, s), dtype=bool), s - t)
        shifted = (ac + _rel_shift(bd)) * 0.5
        out = transformer_xl_scores(q, k, r, u, v, scale=0.5)
        np.testing.assert_allclose(out[..., causal], shifted[..., causal], rtol=RTOL, atol=1e-14)
        assert np.all(out[..., ~causal] == -np.inf)
        zeroed = (ac + _rel_shift(bd, zero_triu=True)) * 0.5
        np.testing.assert_allclose(
            transformer_xl_scores(q, k, r, u, v, scale=0.5, future_keys="zero"), zeroed, rtol=RTOL, atol=1e-14
        )

    def test_with_sinusoid_depends_on_distance_only(self):
        # one head, projection = identity: position term for (i, j) is (q_i + v).R_{i+M-j}
        d, t, s = 8, 2, 6
        r = transformer_xl_relative_encoding(np.arange(s), d)[None]
        q = np.ones((1, t, d))
        k = np.zeros((1, s, d))
        zero = np.zeros((1, d))
        out = transformer_xl_scores(q, k, r, zero, zero, scale=1.0)
        m = s - t
        for i in range(t):
            for j in range(i + m + 1):
                assert out[0, i, j] == pytest.approx(r[0, i + m - j].sum(), rel=1e-12)

    def test_errors(self):
        q, k, r, u, v = _txl_inputs(4)
        with pytest.raises(ValueError, match=r"^q must be an array with at least 3 dimensions, got shape \(3, 4\)$"):
            transformer_xl_scores(q[0], k, r, u, v)
        with pytest.raises(ValueError, match=r"^q must have a non-zero last dimension \(D\)"):
            transformer_xl_scores(q[..., :0], k[..., :0], r[..., :0], u[:, :0], v[:, :0])
        with pytest.raises(ValueError, match=r"^k must have shape \(\.\.\., H, S, D\) = \(2, S, 4\) to match q"):
            transformer_xl_scores(q, k[..., :3], r, u, v)
        with pytest.raises(ValueError, match=r"^k must have shape"):
            transformer_xl_scores(q, k[None], r, u, v)
        with pytest.raises(ValueError, match=r"^k must have at least as many positions as q \(S >= T\), got S=2 and T=3$"):
            transformer_xl_scores(q, k[:, :2], r[:, :2], u, v)
        with pytest.raises(ValueError, match=r"^r must have shape \(H, S, D\) = \(2, 5, 4\), got shape \(2, 4, 4\)$"):
            transformer_xl_scores(q, k, r[:, :4], u, v)
        with pytest.raises(ValueError, match=r"^r must be a 3-D array"):
            transformer_xl_scores(q, k, r[0], u, v)
        with pytest.raises(ValueError, match=r"^u must have shape \(H, D\) = \(2, 4\), got shape \(1, 4\)$"):
            transformer_xl_scores(q, k, r, u[:1], v)
        with pytest.raises(ValueError, match=r"^v must have shape \(H, D\) = \(2, 4\), got shape \(2, 3\)$"):
            transformer_xl_scores(q, k, r, u, v[:, :3])
        with pytest.raises(ValueError, match=r"^v must be a 2-D array"):
            transformer_xl_scores(q, k, r, u, v[0])
        with pytest.raises(ValueError, match=r"^future_keys must be one of 'mask', 'zero', got future_keys='none'$"):
            transformer_xl_scores(q, k, r, u, v, future_keys="none")
        with pytest.raises(TypeError, match=r"^scale must be a finite real number"):
            transformer_xl_scores(q, k, r, u, v, scale="1")
        with pytest.raises(ValueError, match=r"^q must contain only finite values"):
            transformer_xl_scores(np.full_like(q, np.nan), k, r, u, v)
        with pytest.raises(TypeError, match=r"^u must be a numeric array"):
            transformer_xl_scores(q, k, r, None, v)
