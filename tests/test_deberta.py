"""DeBERTa: log buckets and disentangled attention logits.

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

from posref import deberta_log_bucket, deberta_relative_scores, spec_functions


def test_catalogue_family_and_module():
    entries = spec_functions("deberta")
    assert sorted(e.name for e in entries) == sorted(["deberta_log_bucket", "deberta_relative_scores"])
    assert {e.module for e in entries} == {"posref.relative.deberta"}


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
        rng = seeded_rng(5)
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
        rng = seeded_rng(6)
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
        rng = seeded_rng(7)
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
