"""Tests of posref.t5: bucket rule against exact arithmetic, the survey table, float32 behaviour."""

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from posref import _arith, t5_relative_bias, t5_relative_bucket

# ---------------------------------------------------------------------------
# Independent formulations of the bucket rule
# ---------------------------------------------------------------------------


def brute_bucket(r, bidirectional, num_buckets, max_distance):
    """The rule for one relative position, by a linear scan in Python integers.

    floor(L * ln(n/e) / ln(M/e)) >= j  <=>  (n/e)**L >= (M/e)**j  <=>  n**L * e**j >= M**j * e**L.
    """
    if bidirectional:
        per_side = num_buckets // 2
        offset = per_side if r > 0 else 0
        n = abs(r)
    else:
        per_side = num_buckets
        offset = 0
        n = max(-r, 0)
    e = per_side // 2
    L = per_side - e
    if n < e:
        return offset + n
    j = 0
    while j + 1 <= L - 1 and n**L * e ** (j + 1) >= max_distance ** (j + 1) * e**L:
        j += 1
    return offset + e + j


def _float32_log(v):
    """Correctly rounded float32 natural logarithm of float32 values."""
    with _arith.precise():
        return np.asarray(_arith.log(v.astype(np.float64))).astype(np.float32)


def float32_bucket(relative_position, bidirectional, num_buckets, max_distance):
    """Hugging Face's float32 evaluation, emulated with NumPy float32 (truncating cast).

    The float32 log is the correctly rounded one (posref's precise log, rounded
    to float32), so the emulation gives the same buckets on every CPU; NumPy's
    own float32 log rounds differently with and without AVX2, which moves a
    few of the disagreements below.
    """
    r = np.asarray(relative_position, dtype=np.int64)
    if bidirectional:
        num_buckets //= 2
        offset = np.where(r > 0, num_buckets, 0)
        n = np.abs(r)
    else:
        offset = np.zeros_like(r)
        n = -np.minimum(r, 0)
    e = num_buckets // 2
    with np.errstate(divide="ignore"):
        x = (
            _float32_log(n.astype(np.float32) / np.float32(e))
            / np.float32(math.log(max_distance / e))
            * np.float32(num_buckets - e)
        )
    large = e + np.where(n < e, np.float32(0), x).astype(np.int64)
    large = np.minimum(large, num_buckets - 1)
    return offset + np.where(n < e, n, large)


CONFIGS = [
    (True, 32, 128),
    (False, 32, 128),
    (True, 64, 128),
    (False, 8, 16),
    (True, 4, 2),
    (False, 2, 2),
    (False, 17, 27),
    (True, 18, 128),
    (False, 9, 128),
    (True, 320, 800),
    (False, 5, 7),
]


# ---------------------------------------------------------------------------
# t5_relative_bucket: known values
# ---------------------------------------------------------------------------


class TestBucketKnownValues:
    def test_docstring_examples_by_hand(self):
        # bidirectional: 16 buckets per side, 8 exact; log buckets 8..15 up to 128.
        # -16: 8 + floor(8 ln 2 / ln 16) = 8 + 2 = 10; +16: 16 + 10 = 26.
        r = [-128, -16, -8, -1, 0, 1, 16, 128]
        assert t5_relative_bucket(r).tolist() == [15, 10, 8, 1, 0, 17, 26, 31]
        # causal: 32 buckets, 16 exact; -16 -> 16 + floor(16 ln 1 / ln 8) = 16.
        assert t5_relative_bucket(r, bidirectional=False).tolist() == [31, 16, 8, 1, 0, 0, 0, 0]

    def test_survey_table_bucket_starts(self):
        # conventions.md section 6 [computed]: relative positions that open a new bucket.
        r = np.arange(0, 300)
        b = t5_relative_bucket(r)
        opens = r[1:][np.diff(b) > 0]
        assert opens.tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 23, 32, 46, 64, 91]
        assert b[0] == 0 and b[1] == 17 and b[-1] == 31
        d = np.arange(0, 300)
        c = t5_relative_bucket(-d, bidirectional=False)
        opens = d[1:][np.diff(c) > 0]
        assert opens.tolist() == list(range(1, 17)) + [19, 21, 24, 27, 31, 35, 40, 46, 52, 59, 67, 77, 87, 99, 113]

    def test_survey_table_examples(self):
        rel = [-128, -16, -8, -1, 0, 1, 16, 128]
        assert t5_relative_bucket(rel).tolist() == [15, 10, 8, 1, 0, 17, 26, 31]
        assert t5_relative_bucket(rel, bidirectional=False).tolist() == [31, 16, 8, 1, 0, 0, 0, 0]

    def test_exact_boundary_hand_value(self):
        # 9 log buckets, e = 8, M = 27: n = 12 gives 9 ln(1.5) / ln(3.375) = 3 exactly -> bucket 8 + 3.
        assert t5_relative_bucket(-12, bidirectional=False, num_buckets=17, max_distance=27) == 11
        assert t5_relative_bucket(-11, bidirectional=False, num_buckets=17, max_distance=27) == 10

    def test_powers_of_two_boundaries(self):
        # e = 4, L = 5, M/e = 32: bucket 4 + k starts at 4 * 2**k exactly.
        d = np.array([7, 8, 15, 16, 31, 32, 63, 64, 127, 128])
        got = t5_relative_bucket(-d, bidirectional=False, num_buckets=9, max_distance=128)
        assert got.tolist() == [4, 5, 5, 6, 6, 7, 7, 8, 8, 8]

    def test_scalar_and_shape(self):
        out = t5_relative_bucket(5)
        assert out.shape == () and out.dtype == np.int64 and out == 21
        grid = np.arange(-6, 6).reshape(3, 4)
        out = t5_relative_bucket(grid)
        assert out.shape == (3, 4) and out.dtype == np.int64
        assert t5_relative_bucket(np.array([2.0, -3.0])).tolist() == [18, 3]
        assert t5_relative_bucket(np.zeros((0, 2), dtype=np.int64)).shape == (0, 2)

    def test_extreme_integers_do_not_overflow(self):
        info = np.iinfo(np.int64)
        r = np.array([info.min, info.min + 1, info.max], dtype=np.int64)
        assert t5_relative_bucket(r).tolist() == [15, 15, 31]
        assert t5_relative_bucket(r, bidirectional=False).tolist() == [31, 31, 0]


# ---------------------------------------------------------------------------
# t5_relative_bucket: independent re-derivations
# ---------------------------------------------------------------------------


class TestBucketExact:
    @pytest.mark.parametrize("bidirectional, num_buckets, max_distance", CONFIGS)
    def test_matches_integer_brute_force(self, bidirectional, num_buckets, max_distance):
        r = np.arange(-2 * max_distance - 5, 2 * max_distance + 6)
        got = t5_relative_bucket(r, bidirectional=bidirectional, num_buckets=num_buckets, max_distance=max_distance)
        expected = [brute_bucket(int(x), bidirectional, num_buckets, max_distance) for x in r]
        assert got.tolist() == expected

    @given(
        nb_half=st.integers(2, 40),
        extra=st.integers(1, 400),
        bidirectional=st.booleans(),
        r=st.lists(st.integers(-2000, 2000), min_size=1, max_size=20),
    )
    def test_matches_brute_force_random_configs(self, nb_half, extra, bidirectional, r):
        num_buckets = 2 * nb_half if bidirectional else nb_half
        max_distance = nb_half // 2 + extra
        got = t5_relative_bucket(r, bidirectional=bidirectional, num_buckets=num_buckets, max_distance=max_distance)
        assert got.tolist() == [brute_bucket(x, bidirectional, num_buckets, max_distance) for x in r]

    @pytest.mark.parametrize("bidirectional, num_buckets, max_distance", CONFIGS[:4] + CONFIGS[-2:])
    def test_matches_mpmath_away_from_integers(self, bidirectional, num_buckets, max_distance):
        per_side = num_buckets // 2 if bidirectional else num_buckets
        e = per_side // 2
        L = per_side - e
        distances = np.arange(e, 3 * max_distance)
        got = t5_relative_bucket(-distances, bidirectional=bidirectional, num_buckets=num_buckets, max_distance=max_distance)
        checked = 0
        with mpmath.workdps(60):
            for n, b in zip(distances.tolist(), got.tolist()):
                x = L * mpmath.log(mpmath.mpf(n) / e) / mpmath.log(mpmath.mpf(max_distance) / e)
                if abs(x - mpmath.nint(x)) < mpmath.mpf(10) ** -40:
                    continue  # exact integer: covered by the integer brute force
                assert b == e + min(int(mpmath.floor(x)), L - 1)
                checked += 1
        assert checked >= len(distances) // 2

    def test_largest_max_distance(self):
        md = 2**53
        r = [-(2**53), -(2**40) - 1, 2**52 + 1]
        got = t5_relative_bucket(r, num_buckets=64, max_distance=md)
        assert got.tolist() == [brute_bucket(x, True, 64, md) for x in r]

    def test_huge_max_distance_and_many_buckets(self):
        # Stress the exact threshold search far from the float64 comfort zone.
        md = 10**15 + 7
        r = [-(10**15), -(10**12) - 3, -999, -1]
        got = t5_relative_bucket(r, bidirectional=False, num_buckets=300, max_distance=md)
        assert got.tolist() == [brute_bucket(x, False, 300, md) for x in r]


# ---------------------------------------------------------------------------
# Hugging Face's float32 evaluation
# ---------------------------------------------------------------------------

# (bidirectional, num_buckets, max_distance) -> relative positions in [-100000, 100000]
# where the float32 truncation differs from the exact rule.
FLOAT32_DISAGREEMENTS = {
    (True, 32, 128): [],
    (False, 32, 128): [],
    (True, 64, 128): [],
    (False, 64, 128): [],
    (True, 128, 128): [],
    (False, 128, 128): [],
    (True, 320, 800): [],
    (False, 320, 800): [],
    (True, 256, 2048): [],
    (False, 256, 2048): [],
    # exact bucket starts, where float32 lands one bucket low
    (False, 17, 27): [-18, -12],
    (True, 34, 27): [-18, -12, 12, 18],
    # an exact bucket start (21) that a correctly rounded float32 log still hits
    (True, 38, 49): [],
    # 16 ln(218/15) / ln(532/15) = 11.99999953...: float32 rounds up to 12, one bucket high
    (False, 31, 532): [-218],
}


@pytest.mark.parametrize("config", sorted(FLOAT32_DISAGREEMENTS))
def test_float32_evaluation_disagreements(config):
    bidirectional, num_buckets, max_distance = config
    r = np.arange(-100_000, 100_001)
    exact = t5_relative_bucket(r, bidirectional=bidirectional, num_buckets=num_buckets, max_distance=max_distance)
    f32 = float32_bucket(r, bidirectional, num_buckets, max_distance)
    assert r[exact != f32].tolist() == FLOAT32_DISAGREEMENTS[config]
    # where they disagree, float32 is off by one bucket
    assert np.all(np.abs(exact - f32) <= 1)


def test_float64_truncation_misses_exact_bucket_starts():
    # e = 4, L = 5, M/e = 32: buckets open at 8, 16, 32, 64; float64 log-ratio-and-truncate misses three
    d = np.arange(0, 200)
    exact = t5_relative_bucket(-d, bidirectional=False, num_buckets=9, max_distance=128)
    e, L = 4, 5
    with np.errstate(divide="ignore"):
        x = np.log(d / e) / math.log(128 / e) * L
    f64 = np.where(d < e, d, np.minimum(e + np.where(d < e, 0.0, x).astype(np.int64), 8))
    assert d[exact != f64].tolist() == [8, 16, 64]
    assert (exact - f64)[exact != f64].tolist() == [1, 1, 1]


def test_float32_bucket_emulation_reproduces_survey_examples():
    rel = np.array([-128, -16, -8, -1, 0, 1, 16, 128])
    assert float32_bucket(rel, True, 32, 128).tolist() == [15, 10, 8, 1, 0, 17, 26, 31]


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------

configs = st.tuples(st.integers(2, 64), st.integers(1, 300), st.booleans()).map(
    lambda c: (c[2], 2 * c[0] if c[2] else c[0], c[0] // 2 + c[1])
)


class TestBucketProperties:
    @given(config=configs)
    def test_monotone_in_distance_and_in_range(self, config):
        bidirectional, num_buckets, max_distance = config
        kw = dict(bidirectional=bidirectional, num_buckets=num_buckets, max_distance=max_distance)
        d = np.arange(0, 2 * max_distance + 3)
        before = t5_relative_bucket(-d, **kw)
        assert np.all(np.diff(before) >= 0)
        assert before.min() >= 0 and before.max() < num_buckets
        per_side = num_buckets // 2 if bidirectional else num_buckets
        e = per_side // 2
        assert before[:e].tolist() == list(range(e))  # exact buckets
        assert np.all(before[max_distance:] == per_side - 1)  # saturation
        assert before.max() == per_side - 1
        if bidirectional:
            after = t5_relative_bucket(d[1:], **kw)
            assert np.all(np.diff(after) >= 0)
            assert np.array_equal(after, before[1:] + per_side)  # mirror image, shifted by num_buckets/2
            assert np.all(after > per_side)  # bucket num_buckets/2 is never used
        else:
            assert np.all(t5_relative_bucket(d, **kw) == 0)

    @given(nb=st.integers(2, 64), extra=st.integers(1, 300), r=st.lists(st.integers(-5000, 0), min_size=1, max_size=30))
    def test_causal_side_is_bidirectional_side_with_twice_the_buckets(self, nb, extra, r):
        md = nb // 2 + extra
        causal = t5_relative_bucket(r, bidirectional=False, num_buckets=nb, max_distance=md)
        both = t5_relative_bucket(r, bidirectional=True, num_buckets=2 * nb, max_distance=md)
        assert np.array_equal(causal, both)

    @given(r=hnp.arrays(np.int64, hnp.array_shapes(max_dims=3, max_side=5), elements=st.integers(-(2**40), 2**40)))
    def test_elementwise_and_shape_preserving(self, r):
        out = t5_relative_bucket(r)
        assert out.shape == r.shape
        flat = [t5_relative_bucket(int(x)) for x in r.ravel()]
        assert out.ravel().tolist() == [int(x) for x in flat]


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


class TestBucketErrors:
    def test_num_buckets(self):
        with pytest.raises(ValueError, match=r"^num_buckets must be an even integer >= 4 when bidirectional=True, got num_buckets=7"):
            t5_relative_bucket([1], num_buckets=7)
        with pytest.raises(ValueError, match=r"^num_buckets must be an even integer >= 4 when bidirectional=True, got num_buckets=2"):
            t5_relative_bucket([1], num_buckets=2)
        with pytest.raises(ValueError, match=r"^num_buckets must be an integer >= 2 when bidirectional=False, got num_buckets=1"):
            t5_relative_bucket([1], num_buckets=1, bidirectional=False)
        with pytest.raises(TypeError, match=r"^num_buckets must be an integer, got num_buckets=32.0"):
            t5_relative_bucket([1], num_buckets=32.0)

    def test_max_distance(self):
        with pytest.raises(ValueError, match=r"^max_distance must be an integer > max_exact = 8 .*got max_distance=8"):
            t5_relative_bucket([1], max_distance=8)
        with pytest.raises(ValueError, match=r"^max_distance must be an integer > max_exact = 16 .*bidirectional=False.*got max_distance=3"):
            t5_relative_bucket([1], bidirectional=False, max_distance=3)
        with pytest.raises(ValueError, match=r"^max_distance must be an integer <= 2\*\*53, got max_distance=9007199254740993"):
            t5_relative_bucket([1], max_distance=2**53 + 1)
        with pytest.raises(TypeError, match=r"^max_distance must be an integer, got max_distance=128.5"):
            t5_relative_bucket([1], max_distance=128.5)

    def test_bidirectional(self):
        with pytest.raises(TypeError, match=r"^bidirectional must be True or False, got bidirectional=1"):
            t5_relative_bucket([1], bidirectional=1)

    def test_relative_position(self):
        with pytest.raises(ValueError, match=r"^relative_position must hold integers, got a non-integer value 1.5"):
            t5_relative_bucket([1.5])
        with pytest.raises(TypeError, match=r"^relative_position must be a numeric array"):
            t5_relative_bucket("3")
        with pytest.raises(ValueError, match=r"^relative_position must contain only finite values"):
            t5_relative_bucket([np.nan])


# ---------------------------------------------------------------------------
# t5_relative_bias
# ---------------------------------------------------------------------------


class TestBias:
    def test_hand_values(self):
        table = np.array([[0.0], [-1.0], [10.0], [20.0]])
        got = t5_relative_bias(table, [0, 1, 2], [0, 1, 2], num_buckets=4, max_distance=2)
        assert got.tolist() == [[[0.0, 20.0, 20.0], [-1.0, 0.0, 20.0], [-1.0, -1.0, 0.0]]]

    def test_against_loops(self):
        rng = np.random.default_rng(5)
        table = rng.standard_normal((32, 3))
        q = [0, 3, 40, 200]
        k = [0, 1, 2, 17, 50, 199, 400]
        for bidirectional in (True, False):
            got = t5_relative_bias(table, q, k, bidirectional=bidirectional)
            assert got.shape == (3, 4, 7) and got.dtype == np.float64
            for h in range(3):
                for t, qp in enumerate(q):
                    for s, kp in enumerate(k):
                        assert got[h, t, s] == table[brute_bucket(kp - qp, bidirectional, 32, 128), h]

    @given(
        shift=st.integers(0, 10_000),
        q=st.lists(st.integers(0, 500), min_size=1, max_size=6),
        k=st.lists(st.integers(0, 500), min_size=1, max_size=6),
    )
    def test_depends_on_key_minus_query_only(self, shift, q, k):
        table = np.arange(64.0).reshape(32, 2)
        a = t5_relative_bias(table, q, k)
        b = t5_relative_bias(table, np.array(q) + shift, np.array(k) + shift)
        assert np.array_equal(a, b)

    def test_empty_positions(self):
        assert t5_relative_bias(np.zeros((32, 4)), [], [0, 1]).shape == (4, 0, 2)

    def test_errors(self):
        with pytest.raises(ValueError, match=r"^table must have shape \(num_buckets, H\) with num_buckets=32 rows, got shape \(31, 8\)"):
            t5_relative_bias(np.zeros((31, 8)), [0], [0])
        with pytest.raises(ValueError, match=r"^table must be a 2-D array, got shape \(32,\)"):
            t5_relative_bias(np.zeros(32), [0], [0])
        with pytest.raises(ValueError, match=r"^query_positions must be a 1-D array, got shape \(1, 1\)"):
            t5_relative_bias(np.zeros((32, 1)), [[0]], [0])
        with pytest.raises(ValueError, match=r"^key_positions must hold non-negative integers, got minimum -1"):
            t5_relative_bias(np.zeros((32, 1)), [0], [-1])
        with pytest.raises(ValueError, match=r"^table must contain only finite values"):
            t5_relative_bias(np.full((32, 1), np.inf), [0], [0])
        with pytest.raises(ValueError, match=r"^num_buckets must be an even integer >= 4"):
            t5_relative_bias(np.zeros((5, 1)), [0], [0], num_buckets=5)
