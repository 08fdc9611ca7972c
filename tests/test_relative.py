"""Transformer-XL, DeBERTa, KERPLE, Sandwich, FIRE, CoPE and NoPE.

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
from hypothesis.extra import numpy as hnp

from posref import (
    cope_bias,
    cope_positions,
    deberta_log_bucket,
    deberta_relative_scores,
    fire_bias,
    fire_normalized_distance,
    kerple_log_bias,
    kerple_power_bias,
    nope,
    sandwich_bias,
    spec_functions,
    transformer_xl_relative_encoding,
    transformer_xl_scores,
)

RTOL = 1e-12
finite_floats = st.floats(-4.0, 4.0, allow_nan=False, allow_infinity=False)


def _rng(seed):
    return np.random.default_rng(seed)


def test_catalogue_families():
    families = {f.name: f.family for f in spec_functions()}
    assert families["transformer_xl_scores"] == "transformer_xl"
    assert families["deberta_log_bucket"] == "deberta"
    assert families["kerple_power_bias"] == "kerple"
    assert families["sandwich_bias"] == "sandwich"
    assert families["fire_bias"] == "fire"
    assert families["cope_bias"] == "cope"
    assert families["nope"] == "nope"


# ---------------------------------------------------------------------------
# Transformer-XL
# ---------------------------------------------------------------------------


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
    rng = _rng(seed)
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


# ---------------------------------------------------------------------------
# DeBERTa
# ---------------------------------------------------------------------------


def _bucket_by_thresholds(r, bucket_size, max_position):
    """Brute force: count the integer thresholds n the real quotient exceeds, in exact integers."""
    mid = bucket_size // 2
    a, top = abs(r), max_position - 1
    if a <= mid:
        return r
    # quotient x = (mid-1) ln(a/mid) / ln(top/mid) exceeds n  <=>  a^(mid-1) mid^n > top^n mid^(mid-1)
    n = 0
    while a ** (mid - 1) * mid**n > top**n * mid ** (mid - 1):
        n += 1
    return int(math.copysign(mid + n, r))


def _bucket_mpmath(r, bucket_size, max_position):
    mid = bucket_size // 2
    if abs(r) <= mid:
        return r
    with mpmath.workdps(60):
        x = (mid - 1) * mpmath.log(mpmath.mpf(abs(r)) / mid) / mpmath.log(mpmath.mpf(max_position - 1) / mid)
        assert abs(x - mpmath.nint(x)) > mpmath.mpf(10) ** -40  # not a boundary: mpmath decides
        return int(math.copysign(mid + int(mpmath.ceil(x)), r))


def _bucket_hf_float(rel, bucket_size, max_position, dtype):
    """Hugging Face make_log_bucket_position transcribed to NumPy in the given float dtype."""
    rel = np.asarray(rel, dtype=np.int64)
    sign = np.sign(rel)
    mid = bucket_size // 2
    abs_pos = np.where((rel < mid) & (rel > -mid), mid - 1, np.abs(rel))
    log_pos = (
        np.ceil(
            np.log(abs_pos.astype(dtype) / dtype(mid)) / np.log(dtype((max_position - 1) / mid)) * dtype(mid - 1)
        )
        + mid
    )
    return np.where(abs_pos <= mid, rel, log_pos * sign).astype(np.int64)


class TestDebertaLogBucket:
    def test_survey_values(self):
        # conventions.md section 8, bucket 256 / max 512
        rel = [129, 200, 256, 511, 512, 1000, 4000]
        expected = [129, 169, 192, 255, 256, 317, 444]
        np.testing.assert_array_equal(deberta_log_bucket(rel, bucket_size=256, max_position=512), expected)
        np.testing.assert_array_equal(
            deberta_log_bucket(np.negative(rel), bucket_size=256, max_position=512), np.negative(expected)
        )

    def test_hand_values(self):
        # mid 128: ln(129/128)/ln(511/128)*127 = 0.714 -> ceil 1 -> 129; ln 4/ln(511/128)*127 = 127.18 -> 256
        out = deberta_log_bucket([0, -1, 127, 128, -128, 129], bucket_size=256, max_position=512)
        np.testing.assert_array_equal(out, [0, -1, 127, 128, -128, 129])
        assert out.dtype == np.int64

    def test_exact_at_integer_quotient(self):
        # bucket 4, max 11: mid 2, top 10; |r| = 250 gives (mid-1) ln(125)/ln(5) = 3 exactly
        assert deberta_log_bucket([250], bucket_size=4, max_position=11)[0] == 2 + 3
        assert deberta_log_bucket([251], bucket_size=4, max_position=11)[0] == 2 + 4
        # the float64 expression overshoots, which is why the spec decides exactly
        x = math.log(250 / 2) / math.log(10 / 2) * 1
        assert math.ceil(x) == 4
        # bucket 8, max 33: (a/4)^3 = 8^n at a = 8, 16, ..., 512 (x = 1 .. 7), all exact
        a = [8, 16, 32, 64, 128, 256, 512, 2048]
        np.testing.assert_array_equal(
            deberta_log_bucket(a, bucket_size=8, max_position=33), [4 + n for n in (1, 2, 3, 4, 5, 6, 7, 9)]
        )

    @pytest.mark.parametrize("bucket_size,max_position", [(256, 512), (4, 11), (8, 7), (6, 16), (7, 40), (2, 5)])
    def test_brute_force_thresholds(self, bucket_size, max_position):
        rel = np.arange(-700, 701)
        out = deberta_log_bucket(rel, bucket_size=bucket_size, max_position=max_position)
        expected = [_bucket_by_thresholds(int(x), bucket_size, max_position) for x in rel]
        np.testing.assert_array_equal(out, expected)

    def test_mpmath_away_from_boundaries(self):
        rel = [129, 130, 200, 300, 400, 600, 5000, 123456, -777]
        expected = [_bucket_mpmath(x, 256, 512) for x in rel]
        np.testing.assert_array_equal(deberta_log_bucket(rel, bucket_size=256, max_position=512), expected)

    def test_float_evaluations_agree_for_released_config(self):
        rel = np.arange(-5000, 5001)
        out = deberta_log_bucket(rel, bucket_size=256, max_position=512)
        np.testing.assert_array_equal(out, _bucket_hf_float(rel, 256, 512, np.float64))
        np.testing.assert_array_equal(out, _bucket_hf_float(rel, 256, 512, np.float32))

    def test_huge_magnitudes(self):
        big = 2**52
        out = deberta_log_bucket([big, -big], bucket_size=256, max_position=512)
        assert out[0] == -out[1] == _bucket_mpmath(big, 256, 512)

    @given(
        st.integers(2, 64),
        st.integers(0, 200),
        st.lists(st.integers(-3000, 3000), min_size=1, max_size=20),
    )
    def test_properties(self, bucket_size, extra, rel):
        mid = bucket_size // 2
        max_position = mid + 2 + extra
        rel = np.array(rel)
        out = deberta_log_bucket(rel, bucket_size=bucket_size, max_position=max_position)
        np.testing.assert_array_equal(deberta_log_bucket(-rel, bucket_size=bucket_size, max_position=max_position), -out)
        small = np.abs(rel) <= mid
        np.testing.assert_array_equal(out[small], rel[small])
        order = np.argsort(rel, kind="stable")
        assert np.all(np.diff(out[order]) >= 0)
        top = deberta_log_bucket([max_position - 1], bucket_size=bucket_size, max_position=max_position)[0]
        assert top == (max_position - 1 if max_position - 1 <= mid else 2 * mid - 1)

    def test_errors(self):
        with pytest.raises(ValueError, match=r"^bucket_size must be an integer in \[2, inf\], got bucket_size=1$"):
            deberta_log_bucket([0], bucket_size=1, max_position=512)
        with pytest.raises(TypeError, match=r"^bucket_size must be an integer in \[2, inf\]"):
            deberta_log_bucket([0], bucket_size=256.0, max_position=512)
        with pytest.raises(TypeError, match=r"^max_position must be an integer"):
            deberta_log_bucket([0], bucket_size=256, max_position="512")
        with pytest.raises(
            ValueError, match=r"^max_position must be greater than bucket_size // 2 \+ 1 = 129, got max_position=129$"
        ):
            deberta_log_bucket([0], bucket_size=256, max_position=129)
        with pytest.raises(ValueError, match=r"^relative_position must hold integers, got a non-integer value 0.5$"):
            deberta_log_bucket([0.5], bucket_size=256, max_position=512)
        with pytest.raises(TypeError, match=r"^relative_position must be a real numeric array"):
            deberta_log_bucket([True], bucket_size=256, max_position=512)
        with pytest.raises(TypeError):
            deberta_log_bucket([0], 256, 512)  # options are keyword-only


def _deberta_by_loops(q, k, pos_key, pos_query, qpos, kpos, bucket_size, max_position, c2p, p2c):
    span = bucket_size if bucket_size is not None else max_position
    f = 1 + c2p + p2c
    heads, t, d = q.shape
    s = k.shape[1]
    out = np.zeros((heads, t, s))
    for h in range(heads):
        for i in range(t):
            for j in range(s):
                delta = int(qpos[i]) - int(kpos[j])  # DeBERTa's query - key
                if bucket_size is not None:
                    delta = _bucket_by_thresholds(delta, bucket_size, max_position)
                row = min(max(delta + span, 0), 2 * span - 1)
                total = sum(q[h, i, x] * k[h, j, x] for x in range(d))
                if c2p:
                    total += sum(q[h, i, x] * pos_key[h, row, x] for x in range(d))
                if p2c:
                    total += sum(k[h, j, x] * pos_query[h, row, x] for x in range(d))
                out[h, i, j] = total / math.sqrt(d * f)
    return out


def _deberta_hf_structure(q, k, pos_key, pos_query, span, rel):
    """The gather/transpose structure of DisentangledSelfAttention for T == S, in NumPy."""
    d = q.shape[-1]
    scale = math.sqrt(d * 3)
    score = q @ np.swapaxes(k, -1, -2) / scale
    c2p_att = q @ np.swapaxes(pos_key, -1, -2)
    c2p_pos = np.clip(rel + span, 0, 2 * span - 1)
    score = score + np.take_along_axis(c2p_att, np.broadcast_to(c2p_pos, score.shape), axis=-1) / scale
    p2c_pos = np.clip(-rel + span, 0, 2 * span - 1)
    p2c_att = k @ np.swapaxes(pos_query, -1, -2)
    p2c = np.take_along_axis(p2c_att, np.broadcast_to(p2c_pos, score.shape), axis=-1)
    return score + np.swapaxes(p2c, -1, -2) / scale


class TestDebertaRelativeScores:
    def test_hand_values(self):
        ones = np.ones((1, 2, 1))
        table = np.arange(4.0).reshape(1, 4, 1)
        # span 2: row = clamp(i - j + 2); content 1; c2p adds the row number; divisor sqrt(1 * 2)
        out = deberta_relative_scores(ones, ones, table, None, [0, 1], [0, 1], bucket_size=None, max_position=2, p2c=False)
        np.testing.assert_allclose(out, [[[3 / math.sqrt(2), 2 / math.sqrt(2)], [4 / math.sqrt(2), 3 / math.sqrt(2)]]])
        # p2c alone with k = 2: 2 * row, plus content 2, divisor sqrt(2)
        out = deberta_relative_scores(
            ones, 2 * ones, None, table, [0, 1], [0, 1], bucket_size=None, max_position=2, c2p=False
        )
        np.testing.assert_allclose(out, [[[6 / math.sqrt(2), 4 / math.sqrt(2)], [8 / math.sqrt(2), 6 / math.sqrt(2)]]])
        # neither term: content over sqrt(D)
        out = deberta_relative_scores(ones, ones, None, None, [0, 1], [0, 1], bucket_size=None, max_position=2, c2p=False, p2c=False)
        np.testing.assert_array_equal(out, np.ones((1, 2, 2)))

    def test_clamping_to_table_edges(self):
        one = np.ones((1, 1, 1))
        table = np.arange(4.0).reshape(1, 4, 1)
        # query at 0, key at 9: delta = -9, row clamps to 0; query 9 key 0: row clamps to 3
        assert deberta_relative_scores(one, 0 * one, table, None, [0], [9], bucket_size=None, max_position=2, p2c=False)[0, 0, 0] == 0.0
        assert deberta_relative_scores(one, 0 * one, table, None, [9], [0], bucket_size=None, max_position=2, p2c=False)[0, 0, 0] == pytest.approx(3 / math.sqrt(2))

    @pytest.mark.parametrize(
        "bucket_size,max_position,c2p,p2c",
        [(8, 12, True, True), (None, 3, True, True), (6, 9, True, False), (4, 7, False, True)],
    )
    def test_against_loops(self, bucket_size, max_position, c2p, p2c):
        rng = _rng(5)
        span = bucket_size if bucket_size is not None else max_position
        q = rng.standard_normal((2, 3, 4))
        k = rng.standard_normal((2, 5, 4))
        pos_key = rng.standard_normal((2, 2 * span, 4))
        pos_query = rng.standard_normal((2, 2 * span, 4))
        qpos, kpos = [10, 3, 30], [0, 2, 9, 11, 40]
        out = deberta_relative_scores(
            q, k, pos_key, pos_query, qpos, kpos, bucket_size=bucket_size, max_position=max_position, c2p=c2p, p2c=p2c
        )
        expected = _deberta_by_loops(q, k, pos_key, pos_query, qpos, kpos, bucket_size, max_position, c2p, p2c)
        np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-13)

    def test_matches_hugging_face_gather_structure(self):
        rng = _rng(6)
        n, span = 20, 4
        q = rng.standard_normal((2, 2, n, 8))
        k = rng.standard_normal((2, 2, n, 8))
        pos_key = rng.standard_normal((2, 2 * span, 8))
        pos_query = rng.standard_normal((2, 2 * span, 8))
        positions = np.arange(n)
        rel = _bucket_hf_float(positions[:, None] - positions[None, :], span, 12, np.float64)  # query - key
        expected = _deberta_hf_structure(q, k, pos_key, pos_query, span, rel)
        out = deberta_relative_scores(q, k, pos_key, pos_query, positions, positions, bucket_size=span, max_position=12)
        np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-13)

    def test_shift_invariance(self):
        rng = _rng(7)
        q, k = rng.standard_normal((1, 3, 4)), rng.standard_normal((1, 4, 4))
        tables = rng.standard_normal((2, 1, 16, 4))
        a = deberta_relative_scores(q, k, *tables, [0, 1, 2], [0, 1, 2, 3], bucket_size=8, max_position=20)
        b = deberta_relative_scores(q, k, *tables, [100, 101, 102], [100, 101, 102, 103], bucket_size=8, max_position=20)
        np.testing.assert_allclose(a, b, rtol=RTOL)

    def test_errors(self):
        q = np.zeros((2, 3, 4))
        k = np.zeros((2, 5, 4))
        table = np.zeros((2, 8, 4))
        qp, kp = [0, 1, 2], [0, 1, 2, 3, 4]
        kw = dict(bucket_size=4, max_position=10)
        with pytest.raises(TypeError, match=r"^pos_key must be a numeric array when c2p=True, got pos_key=None$"):
            deberta_relative_scores(q, k, None, table, qp, kp, **kw)
        with pytest.raises(TypeError, match=r"^pos_query must be a numeric array when p2c=True, got pos_query=None$"):
            deberta_relative_scores(q, k, table, None, qp, kp, **kw)
        with pytest.raises(ValueError, match=r"^pos_key must have shape \(H, 2\*span, D\) = \(2, 8, 4\), got shape \(2, 6, 4\)$"):
            deberta_relative_scores(q, k, table[:, :6], table, qp, kp, **kw)
        with pytest.raises(ValueError, match=r"^pos_query must have shape \(H, 2\*span, D\) = \(2, 8, 4\)"):
            deberta_relative_scores(q, k, table, table[:1], qp, kp, **kw)
        with pytest.raises(ValueError, match=r"^pos_key must be a 3-D array"):
            deberta_relative_scores(q, k, table[0], table, qp, kp, **kw)
        with pytest.raises(ValueError, match=r"^k must have shape \(\.\.\., H, S, D\) = \(2, S, 4\)"):
            deberta_relative_scores(q, k[..., :2], table, table, qp, kp, **kw)
        with pytest.raises(ValueError, match=r"^q must be an array with at least 3 dimensions"):
            deberta_relative_scores(q[0], k, table, table, qp, kp, **kw)
        with pytest.raises(ValueError, match=r"^query_positions must have shape \(T,\) = \(3,\), got shape \(2,\)$"):
            deberta_relative_scores(q, k, table, table, [0, 1], kp, **kw)
        with pytest.raises(ValueError, match=r"^key_positions must have shape \(S,\) = \(5,\), got shape \(4,\)$"):
            deberta_relative_scores(q, k, table, table, qp, kp[:4], **kw)
        with pytest.raises(ValueError, match=r"^query_positions must be a 1-D array"):
            deberta_relative_scores(q, k, table, table, [qp], kp, **kw)
        with pytest.raises(ValueError, match=r"^key_positions must hold non-negative integers"):
            deberta_relative_scores(q, k, table, table, qp, [-1, 0, 1, 2, 3], **kw)
        with pytest.raises(ValueError, match=r"^max_position must be greater than bucket_size // 2 \+ 1"):
            deberta_relative_scores(q, k, table, table, qp, kp, bucket_size=4, max_position=3)
        with pytest.raises(ValueError, match=r"^max_position must be a positive integer, got max_position=0$"):
            deberta_relative_scores(q, k, table, table, qp, kp, bucket_size=None, max_position=0)
        with pytest.raises(TypeError, match=r"^c2p must be True or False, got c2p=1"):
            deberta_relative_scores(q, k, table, table, qp, kp, c2p=1, **kw)
        with pytest.raises(TypeError, match=r"^p2c must be True or False"):
            deberta_relative_scores(q, k, table, table, qp, kp, p2c="yes", **kw)


# ---------------------------------------------------------------------------
# KERPLE
# ---------------------------------------------------------------------------


class TestKerple:
    def test_log_survey_values(self):
        # conventions.md section 16: r1 = 1, r2 = 0.5, distances 0..4
        out = kerple_log_bias([0, 1, 2, 3, 4], [0], r1=[1.0], r2=[0.5])
        np.testing.assert_allclose(out[0, :, 0], [0, -0.4055, -0.6931, -0.9163, -1.0986], atol=5e-5)
        np.testing.assert_allclose(out[0, :, 0], [-math.log(1 + 0.5 * n) for n in range(5)], rtol=1e-15)

    def test_log_by_loops(self):
        qpos, kpos = [0, 3, 7, 20], [0, 1, 5, 7, 30]
        r1, r2 = [0.3, 1.7], [0.01, 2.5]
        for bidirectional in (False, True):
            out = kerple_log_bias(qpos, kpos, r1=r1, r2=r2, bidirectional=bidirectional)
            for h in range(2):
                for i, m in enumerate(qpos):
                    for j, n in enumerate(kpos):
                        dist = abs(m - n) if bidirectional else max(m - n, 0)
                        assert out[h, i, j] == pytest.approx(-r1[h] * math.log(1 + r2[h] * dist), rel=1e-14, abs=0)

    def test_power_hand_values(self):
        out = kerple_power_bias([4], [0, 1, 3, 4, 9], a=[2.0, 1.0], p=[0.5, 2.0])
        np.testing.assert_allclose(out[0, 0], [-4.0, -2 * math.sqrt(3), -2.0, 0.0, 0.0], rtol=1e-15)
        np.testing.assert_allclose(out[1, 0], [-16.0, -9.0, -1.0, 0.0, 0.0], rtol=1e-15)
        bi = kerple_power_bias([4], [9], a=[1.0], p=[2.0], bidirectional=True)
        assert bi[0, 0, 0] == -25.0

    def test_power_one_is_alibi(self):
        slopes = np.array([0.5, 0.25, 0.125])
        out = kerple_power_bias(np.arange(6), np.arange(6), a=slopes, p=np.ones(3), bidirectional=True)
        expected = -slopes[:, None, None] * np.abs(np.arange(6)[:, None] - np.arange(6)[None, :])
        np.testing.assert_array_equal(out, expected)

    @given(
        hnp.arrays(np.float64, st.integers(1, 4), elements=st.floats(0, 3)),
        st.lists(st.integers(0, 500), min_size=1, max_size=6),
        st.booleans(),
    )
    def test_log_properties(self, r, positions, bidirectional):
        out = kerple_log_bias(positions, positions, r1=r, r2=r[::-1].copy(), bidirectional=bidirectional)
        assert np.all(out <= 0)
        dist = np.abs(np.subtract.outer(positions, positions)) if bidirectional else np.maximum(np.subtract.outer(positions, positions), 0)
        order = np.argsort(dist.ravel())
        assert np.all(np.diff(out.reshape(len(r), -1)[:, order], axis=1) <= 1e-15)
        np.testing.assert_array_equal(np.diagonal(out, axis1=1, axis2=2), 0.0)

    @given(
        hnp.arrays(np.float64, 3, elements=st.floats(0, 3)),
        hnp.arrays(np.float64, 3, elements=st.floats(0.01, 2)),
        st.integers(0, 1000),
        st.integers(0, 1000),
        st.integers(0, 1000),
    )
    def test_power_properties(self, a, p, m, n, shift):
        out = kerple_power_bias([m, m + shift], [n, n + shift], a=a, p=p)
        assert np.all(out <= 0)
        np.testing.assert_allclose(out[:, 0, 0], out[:, 1, 1], rtol=1e-12)  # translation invariant
        if n < m:
            far = kerple_power_bias([m], [n - 1 if n else 0], a=a, p=p)
            assert np.all(far[:, 0, 0] <= out[:, 0, 0] + 1e-12)

    def test_errors(self):
        with pytest.raises(ValueError, match=r"^r1 must hold values in \[0.0, inf\), got minimum -1.0 and maximum 1.0$"):
            kerple_log_bias([0], [0], r1=[-1.0, 1.0], r2=[1.0, 1.0])
        with pytest.raises(ValueError, match=r"^r2 must hold values in \[0.0, inf\)"):
            kerple_log_bias([0], [0], r1=[1.0], r2=[-0.5])
        with pytest.raises(ValueError, match=r"^r1 and r2 must have the same shape, got r1\(2,\), r2\(1,\)$"):
            kerple_log_bias([0], [0], r1=[1.0, 1.0], r2=[1.0])
        with pytest.raises(ValueError, match=r"^r1 must be a 1-D array, got shape \(\)$"):
            kerple_log_bias([0], [0], r1=1.0, r2=[1.0])
        with pytest.raises(ValueError, match=r"^r2 must not be empty, got shape \(0,\)$"):
            kerple_log_bias([0], [0], r1=[1.0], r2=[])
        with pytest.raises(ValueError, match=r"^r1 must contain only finite values"):
            kerple_log_bias([0], [0], r1=[np.inf], r2=[1.0])
        with pytest.raises(ValueError, match=r"^p must hold values in \(0.0, 2.0\], got minimum 0.0"):
            kerple_power_bias([0], [0], a=[1.0], p=[0.0])
        with pytest.raises(ValueError, match=r"^p must hold values in \(0.0, 2.0\], got minimum 2.5 and maximum 2.5$"):
            kerple_power_bias([0], [0], a=[1.0], p=[2.5])
        with pytest.raises(ValueError, match=r"^a must hold values in \[0.0, inf\)"):
            kerple_power_bias([0], [0], a=[-1.0], p=[1.0])
        with pytest.raises(ValueError, match=r"^a and p must have the same shape"):
            kerple_power_bias([0], [0], a=[1.0], p=[1.0, 1.0])
        with pytest.raises(TypeError, match=r"^bidirectional must be True or False, got bidirectional=0"):
            kerple_power_bias([0], [0], a=[1.0], p=[1.0], bidirectional=0)
        with pytest.raises(ValueError, match=r"^query_positions must hold non-negative values, got minimum"):
            kerple_log_bias([-1], [0], r1=[1.0], r2=[1.0])
        with pytest.raises(ValueError, match=r"^key_positions must be a 1-D array, got shape \(1, 1\)$"):
            kerple_log_bias([0], [[0]], r1=[1.0], r2=[1.0])
        with pytest.raises(TypeError, match=r"^query_positions must be a numeric array"):
            kerple_power_bias(None, [0], a=[1.0], p=[1.0])


# ---------------------------------------------------------------------------
# Sandwich
# ---------------------------------------------------------------------------


class TestSandwich:
    def test_hand_values(self):
        # dim 2, base 2: one frequency 2^-1; head h of 2 divides by 4h
        out = sandwich_bias([0, 1, 2], [0], dim=2, num_heads=2, base=2.0)
        for h in (1, 2):
            np.testing.assert_allclose(
                out[h - 1, :, 0], [(math.cos(n / 2) - 1) / (4 * h) for n in range(3)], rtol=1e-15, atol=0
            )

    def test_by_loops_against_nemo_formula(self):
        dim, heads = 8, 3
        qpos, kpos = [0, 5, 100], [0, 4, 5, 90, 120]
        for bidirectional in (False, True):
            out = sandwich_bias(qpos, kpos, dim=dim, num_heads=heads, bidirectional=bidirectional)
            for h in range(1, heads + 1):
                for i, m in enumerate(qpos):
                    for j, n in enumerate(kpos):
                        dist = abs(m - n) if bidirectional else max(m - n, 0)
                        total = sum(math.cos(dist / 10000 ** (2 * k / dim)) for k in range(1, dim // 2 + 1))
                        expected = (total - dim / 2) / (h * 8 / heads)
                        assert out[h - 1, i, j] == pytest.approx(expected, rel=1e-12, abs=1e-15)

    @pytest.mark.parametrize("first_frequency", [0, 1])
    def test_is_a_shifted_dot_product_of_sinusoids(self, first_frequency):
        dim, positions = 16, np.array([0, 3, 10, 77])
        k = np.arange(first_frequency, first_frequency + dim // 2)
        omega = 10000.0 ** (-2 * k / dim)
        pe = np.concatenate([np.sin(positions[:, None] * omega), np.cos(positions[:, None] * omega)], axis=1)
        expected = (pe @ pe.T - dim / 2) / 8  # one head: divisor 8
        out = sandwich_bias(positions, positions, dim=dim, num_heads=1, first_frequency=first_frequency, bidirectional=True)
        np.testing.assert_allclose(out[0], expected, rtol=1e-12, atol=1e-12)

    @given(st.lists(st.integers(0, 5000), min_size=1, max_size=5), st.integers(1, 8), st.sampled_from([2, 4, 16, 64]))
    def test_properties(self, positions, heads, dim):
        out = sandwich_bias(positions, positions, dim=dim, num_heads=heads)
        assert np.all(out <= 1e-12)
        np.testing.assert_array_equal(np.diagonal(out, axis1=1, axis2=2), 0.0)
        # future keys get bias 0 in the causal form
        future = np.subtract.outer(positions, positions) < 0
        assert np.all(out[:, future] == 0.0)
        # h * bias_h is the same for every head
        scaled = out * np.arange(1, heads + 1)[:, None, None]
        np.testing.assert_allclose(scaled, np.broadcast_to(scaled[0], scaled.shape), rtol=1e-12, atol=1e-12)

    def test_errors(self):
        with pytest.raises(ValueError, match=r"^dim must be a positive even integer, got dim=3$"):
            sandwich_bias([0], [0], dim=3, num_heads=1)
        with pytest.raises(ValueError, match=r"^num_heads must be a positive integer, got num_heads=0$"):
            sandwich_bias([0], [0], dim=2, num_heads=0)
        with pytest.raises(ValueError, match=r"^base must be a finite real number > 1.0"):
            sandwich_bias([0], [0], dim=2, num_heads=1, base=0.5)
        with pytest.raises(ValueError, match=r"^first_frequency must be a non-negative integer, got first_frequency=-1$"):
            sandwich_bias([0], [0], dim=2, num_heads=1, first_frequency=-1)
        with pytest.raises(TypeError, match=r"^bidirectional must be True or False"):
            sandwich_bias([0], [0], dim=2, num_heads=1, bidirectional="no")
        with pytest.raises(ValueError, match=r"^key_positions must contain only finite values"):
            sandwich_bias([0], [np.nan], dim=2, num_heads=1)


# ---------------------------------------------------------------------------
# FIRE
# ---------------------------------------------------------------------------


def _psi(x, c=0.1):
    return math.log(abs(c * x) + 1)


class TestFire:
    def test_survey_values(self):
        # conventions.md section 16: c = 0.1, L = 512
        assert fire_normalized_distance([10], [0])[0, 0] == pytest.approx(0.1753, abs=5e-5)
        assert fire_normalized_distance([600], [0])[0, 0] == pytest.approx(1.0, abs=5e-5)
        assert fire_normalized_distance([600], [590])[0, 0] == pytest.approx(0.1686, abs=5e-5)

    def test_by_loops(self):
        qpos, kpos = [0, 10, 511, 512, 900], [0, 3, 10, 600]
        for c, threshold, eps in [(0.1, 512.0, 1e-6), (-2.0, 0.0, 1e-3), (0.5, 20.0, 1e-6)]:
            out = fire_normalized_distance(qpos, kpos, c=c, threshold=threshold, eps=eps)
            for i, m in enumerate(qpos):
                for j, n in enumerate(kpos):
                    expected = _psi(m - n, c) / (_psi(max(m, threshold), c) + eps)
                    assert out[i, j] == pytest.approx(expected, rel=1e-14, abs=0)

    def test_mlp_by_loops(self):
        rng = _rng(8)
        w1, b1 = rng.standard_normal((1, 5)), rng.standard_normal(5)
        w2, b2 = rng.standard_normal((5, 3)), rng.standard_normal(3)
        qpos, kpos = [0, 7, 700], [0, 7, 650]
        out = fire_bias(qpos, kpos, w1, b1, w2, b2, c=0.3, threshold=50.0)
        for i, m in enumerate(qpos):
            for j, n in enumerate(kpos):
                z = _psi(m - n, 0.3) / (_psi(max(m, 50.0), 0.3) + 1e-6)
                hidden = [max(0.0, z * w1[0, u] + b1[u]) for u in range(5)]
                for h in range(3):
                    expected = sum(hidden[u] * w2[u, h] for u in range(5)) + b2[h]
                    assert out[h, i, j] == pytest.approx(expected, rel=1e-12, abs=1e-14)

    def test_bias_hand_value(self):
        z = math.log(2) / (math.log(52.2) + 1e-6)
        assert fire_bias([10], [0], [[1.0]], [0.0], [[2.0]], [0.5])[0, 0, 0] == pytest.approx(2 * z + 0.5, rel=1e-15)
        # ReLU: a negative pre-activation contributes nothing
        assert fire_bias([10], [0], [[-1.0]], [0.0], [[2.0]], [0.5])[0, 0, 0] == 0.5

    @given(
        st.lists(st.floats(0, 5000), min_size=1, max_size=6),
        st.floats(1e-3, 10),
        st.floats(0, 2000),
    )
    def test_causal_ratio_in_unit_interval(self, positions, c, threshold):
        positions = np.array(positions)
        out = fire_normalized_distance(positions, positions, c=c, threshold=threshold)
        causal = np.subtract.outer(positions, positions) >= 0
        assert np.all(out[causal] >= 0) and np.all(out[causal] < 1)
        np.testing.assert_array_equal(np.diagonal(out), 0.0)
        beyond = positions >= threshold  # queries past L are normalised by their own position
        for i in np.flatnonzero(beyond):
            expected = np.log1p(np.abs(c * (positions[i] - positions))) / (np.log1p(abs(c * positions[i])) + 1e-6)
            np.testing.assert_allclose(out[i], expected, rtol=1e-13)

    def test_errors(self):
        with pytest.raises(ValueError, match=r"^threshold must be a finite real number >= 0.0, got threshold=-1.0$"):
            fire_normalized_distance([0], [0], threshold=-1.0)
        with pytest.raises(ValueError, match=r"^eps must be a finite real number > 0.0, got eps=0.0$"):
            fire_normalized_distance([0], [0], eps=0.0)
        with pytest.raises(TypeError, match=r"^c must be a finite real number"):
            fire_normalized_distance([0], [0], c=None)
        with pytest.raises(ValueError, match=r"^c must be a finite real number, got c=nan$"):
            fire_bias([0], [0], [[1.0]], [0.0], [[1.0]], [0.0], c=float("nan"))
        w1, b1, w2, b2 = np.ones((1, 4)), np.zeros(4), np.ones((4, 2)), np.zeros(2)
        with pytest.raises(ValueError, match=r"^w1 must have shape \(1, K\) with K >= 1, got shape \(2, 4\)$"):
            fire_bias([0], [0], np.ones((2, 4)), b1, w2, b2)
        with pytest.raises(ValueError, match=r"^w1 must have shape \(1, K\) with K >= 1, got shape \(1, 0\)$"):
            fire_bias([0], [0], np.ones((1, 0)), b1[:0], w2[:0], b2)
        with pytest.raises(ValueError, match=r"^b1 must have shape \(K,\) = \(4,\), got shape \(3,\)$"):
            fire_bias([0], [0], w1, b1[:3], w2, b2)
        with pytest.raises(ValueError, match=r"^w2 must have shape \(K, H\) with K = 4 and H >= 1, got shape \(3, 2\)$"):
            fire_bias([0], [0], w1, b1, w2[:3], b2)
        with pytest.raises(ValueError, match=r"^b2 must have shape \(H,\) = \(2,\), got shape \(1,\)$"):
            fire_bias([0], [0], w1, b1, w2, b2[:1])
        with pytest.raises(ValueError, match=r"^b2 must be a 1-D array"):
            fire_bias([0], [0], w1, b1, w2, 0.0)
        with pytest.raises(ValueError, match=r"^w2 must contain only finite values"):
            fire_bias([0], [0], w1, b1, w2 * np.inf, b2)
        with pytest.raises(ValueError, match=r"^query_positions must hold non-negative values"):
            fire_bias([-3], [0], w1, b1, w2, b2)


# ---------------------------------------------------------------------------
# CoPE
# ---------------------------------------------------------------------------


def _sigmoid(x):
    return 1 / (1 + math.exp(-x))


def _cope_positions_by_loops(logits):
    t, s = logits.shape
    out = np.zeros((t, s))
    for i in range(t):
        last = s - t + i  # absolute position of query row i
        for j in range(last + 1):
            out[i, j] = sum(_sigmoid(logits[i, c]) for c in range(j, last + 1))
    return out


class TestCopePositions:
    def test_hand_values(self):
        np.testing.assert_array_equal(
            cope_positions(np.zeros((3, 3))), [[0.5, 0, 0], [1, 0.5, 0], [1.5, 1, 0.5]]
        )
        # very open and very closed gates count (nearly) one and zero
        # (a masked future logit may be -inf)
        logits = np.array([[50.0, -np.inf], [-50.0, 50.0]])
        np.testing.assert_allclose(cope_positions(logits), [[1.0, 0.0], [1.0, 1.0]], atol=1e-20)

    def test_by_loops_with_memory(self):
        logits = _rng(9).standard_normal((3, 6))
        np.testing.assert_allclose(cope_positions(logits), _cope_positions_by_loops(logits), rtol=1e-14)

    @given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=3, max_side=5), elements=finite_floats))
    def test_properties(self, logits):
        t, s = logits.shape[-2:]
        if t > s:
            logits = np.swapaxes(logits, -1, -2)
            t, s = s, t
        p = cope_positions(logits)
        assert np.all(p >= 0)
        assert np.all(np.diff(p, axis=-1) <= 1e-15)  # non-increasing along keys
        causal = np.arange(s)[None, :] <= (s - t) + np.arange(t)[:, None]
        assert np.all(p[..., ~causal] == 0)
        # future logits are ignored
        changed = np.where(causal, logits, -np.inf)
        np.testing.assert_array_equal(cope_positions(changed), p)

    def test_errors(self):
        with pytest.raises(ValueError, match=r"^logits must have T <= S \(queries are the last T of S positions\), got shape \(3, 2\)$"):
            cope_positions(np.zeros((3, 2)))
        with pytest.raises(ValueError, match=r"^logits must be an array with at least 2 dimensions, got shape \(3,\)$"):
            cope_positions(np.zeros(3))
        with pytest.raises(ValueError, match=r"^logits must be finite on the causal pairs"):
            cope_positions([[np.inf, 0.0], [0.0, 0.0]])
        with pytest.raises(ValueError, match=r"^logits must be finite on the causal pairs .* and never NaN$"):
            cope_positions([[0.0, np.nan], [0.0, 0.0]])
        with pytest.raises(TypeError, match=r"^logits must be a real numeric array"):
            cope_positions(np.zeros((2, 2), dtype=complex))


class TestCopeBias:
    def test_hand_values(self):
        q, logits = np.ones((3, 1)), np.zeros((3, 3))
        table = [[0.0], [10.0], [20.0]]
        np.testing.assert_allclose(cope_bias(q, table, logits), [[5, 0, 0], [10, 5, 0], [15, 10, 5]], rtol=1e-15)
        # two rows: positions above 1 clamp to 1
        np.testing.assert_allclose(cope_bias(q, table[:2], logits), [[5, 0, 0], [10, 5, 0], [10, 10, 5]], rtol=1e-15)

    def test_by_loops(self):
        rng = _rng(10)
        q = rng.standard_normal((2, 3, 4))
        table = rng.standard_normal((3, 4))
        logits = 3 * rng.standard_normal((2, 3, 5))
        out = cope_bias(q, table, logits)
        for b in range(2):
            p = _cope_positions_by_loops(logits[b])
            for i in range(3):
                for j in range(5):
                    pos = min(p[i, j], 2.0)
                    lo, hi = math.floor(pos), math.ceil(pos)
                    low = sum(q[b, i, x] * table[lo, x] for x in range(4))
                    high = sum(q[b, i, x] * table[hi, x] for x in range(4))
                    expected = low + (pos - lo) * (high - low)
                    assert out[b, i, j] == pytest.approx(expected, rel=1e-12, abs=1e-13)

    @given(hnp.arrays(np.float64, (4, 4), elements=finite_floats), st.floats(-3, 3), st.integers(1, 6))
    def test_linear_table_gives_scaled_positions(self, logits, slope, rows):
        table = slope * np.arange(rows, dtype=np.float64)[:, None]
        out = cope_bias(np.ones((4, 1)), table, logits)
        expected = slope * np.minimum(cope_positions(logits), rows - 1)
        np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)

    def test_errors(self):
        q, table, logits = np.ones((3, 2)), np.ones((4, 2)), np.zeros((3, 3))
        with pytest.raises(ValueError, match=r"^q must have last dimension 2 \(D of position_embeddings\), got shape \(3, 3\)$"):
            cope_bias(np.ones((3, 3)), table, logits)
        with pytest.raises(ValueError, match=r"^logits must have shape \(\.\.\., T, S\) with \(\.\.\., T\) = \(3,\) from q, got shape \(2, 3\)$"):
            cope_bias(q, table, np.zeros((2, 3)))
        with pytest.raises(ValueError, match=r"^position_embeddings must have at least one row, got shape \(0, 2\)$"):
            cope_bias(q, np.ones((0, 2)), logits)
        with pytest.raises(ValueError, match=r"^position_embeddings must be a 2-D array"):
            cope_bias(q, np.ones(2), logits)
        with pytest.raises(ValueError, match=r"^q must be an array with at least 2 dimensions"):
            cope_bias(np.ones(2), table, logits)
        with pytest.raises(ValueError, match=r"^q must contain only finite values"):
            cope_bias(q * np.nan, table, logits)


# ---------------------------------------------------------------------------
# NoPE
# ---------------------------------------------------------------------------


class TestNope:
    def test_identity_copy(self):
        x = np.arange(6, dtype=np.float32).reshape(3, 2)
        out = nope(x, [0, 1, 2])
        assert out.dtype == np.float64
        np.testing.assert_array_equal(out, x)
        out[0, 0] = 99.0
        assert x[0, 0] == 0.0

    @given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=4, max_side=4), elements=finite_floats))
    def test_positions_do_not_matter(self, x):
        t = x.shape[-2]
        np.testing.assert_array_equal(nope(x, np.arange(t)), nope(x, np.arange(t) + 1000))

    def test_errors(self):
        with pytest.raises(ValueError, match=r"^positions must hold non-negative integers"):
            nope(np.ones((2, 4)), [0, -1])
        with pytest.raises(ValueError, match=r"^positions must hold non-negative integers, got a non-integer value 0.5$"):
            nope(np.ones((2, 4)), [0, 0.5])
        with pytest.raises(ValueError, match=r"^positions of shape \(3,\) does not broadcast to x.shape\[:-1\] = \(2,\)$"):
            nope(np.ones((2, 4)), [0, 1, 2])
        with pytest.raises(ValueError, match=r"^positions of shape \(2, 2\) does not broadcast"):
            nope(np.ones((2, 4)), [[0, 1], [0, 1]])
        with pytest.raises(ValueError, match=r"^x must be an array with at least 1 dimension, got shape \(\)$"):
            nope(1.0, [0])
        with pytest.raises(TypeError, match=r"^x must be a numeric array"):
            nope("x", [0])
        with pytest.raises(ValueError, match=r"^x must contain only finite values"):
            nope([np.nan], [0])
