"""Tests of posref.alibi: the slopes (and their MPT derivation), bias forms, causal equivalence."""

import inspect
import math
import warnings
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from posref import alibi_bias, alibi_slopes

# ---------------------------------------------------------------------------
# Independent constructions of the slopes
# ---------------------------------------------------------------------------


def fairseq_slopes_mpmath(n):
    """The paper's ``get_slopes`` transcribed literally (geometric sequence), in 50-digit mpmath."""

    def power_of_2(m):
        start = mpmath.mpf(2) ** (-(mpmath.mpf(2) ** (-(mpmath.log(m, 2) - 3))))
        ratio = start
        return [start * ratio**i for i in range(m)]

    if math.log2(n).is_integer():
        return power_of_2(n)
    closest = 2 ** math.floor(math.log2(n))
    return power_of_2(closest) + fairseq_slopes_mpmath(2 * closest)[0::2][: n - closest]


def mpt_exponents(n, max_bias):
    """MPT's ``gen_slopes`` on exact rational exponents: slope = 2**(-exponent)."""
    padded = 2 ** math.ceil(math.log2(n))
    m = [Fraction(k) * Fraction(max_bias) / padded for k in range(1, padded + 1)]
    if padded != n:
        m = (m[1::2] + m[0::2])[:n]
    return m


def mpt_gen_slopes(n, max_bias):
    """MPT's ``gen_slopes`` transcribed in float64 NumPy: exponents ``k * (B / N)``, then reordered."""
    padded = 2 ** math.ceil(math.log2(n))
    m = np.arange(1, padded + 1, dtype=np.float64) * (max_bias / padded)
    slopes = np.power(2.0, -m)
    if padded != n:
        slopes = np.concatenate([slopes[1::2], slopes[0::2]])[:n]
    return slopes


def slope_from_exponent(e):
    with mpmath.workdps(50):
        return float(mpmath.mpf(2) ** (-mpmath.mpf(e.numerator) / e.denominator))


TWELVE_HEADS = [
    0.5,
    0.25,
    0.125,
    0.0625,
    0.03125,
    0.015625,
    0.0078125,
    0.00390625,
    0.70710678,
    0.35355339,
    0.1767767,
    0.08838835,
]


class TestSlopes:
    def test_eight_heads_by_hand(self):
        assert alibi_slopes(8).tolist() == [2.0**-k for k in range(1, 9)]
        assert alibi_slopes(1).tolist() == [2.0**-8]
        assert alibi_slopes(2).tolist() == [2.0**-4, 2.0**-8]

    def test_six_heads_interleaved_order(self):
        # c = 4: 2^-2, 2^-4, 2^-6, 2^-8, then 2^-1, 2^-3 from the 8-head sequence.
        assert alibi_slopes(6).tolist() == [0.25, 0.0625, 0.015625, 0.00390625, 0.5, 0.125]

    def test_twelve_heads_survey_values(self):
        np.testing.assert_allclose(alibi_slopes(12), TWELVE_HEADS, rtol=1e-7)
        assert alibi_slopes(12)[8] == math.sqrt(0.5)  # 2^(-8/16), correctly rounded

    def test_max_bias(self):
        assert alibi_slopes(4, max_bias=4.0).tolist() == [0.5, 0.25, 0.125, 0.0625]
        assert alibi_slopes(3, max_bias=4.0).tolist() == [0.25, 0.0625, 0.5]

    @pytest.mark.parametrize("max_bias", [8.0, 4.0, 6.5, 16.0, 0.3])
    def test_mpt_construction_is_bitwise_identical(self, max_bias):
        # the equivalent derivation of the Notes: a port of MPT's code gives the same bits
        for n in range(1, 129):
            assert np.array_equal(alibi_slopes(n, max_bias=max_bias), mpt_gen_slopes(n, max_bias)), n

    def test_paper_rule_against_literal_fairseq_in_mpmath(self):
        with mpmath.workdps(50):
            for n in range(1, 129):
                expected = [float(x) for x in fairseq_slopes_mpmath(n)]
                np.testing.assert_allclose(alibi_slopes(n), expected, rtol=4e-16, atol=0)

    @pytest.mark.parametrize("max_bias", [8, Fraction(13, 2), 3])
    def test_mpt_derivation_against_exact_exponents(self, max_bias):
        for n in range(1, 129):
            expected = [slope_from_exponent(e) for e in mpt_exponents(n, max_bias)]
            np.testing.assert_allclose(alibi_slopes(n, max_bias=float(max_bias)), expected, rtol=4e-16)

    @given(n=st.integers(1, 300))
    def test_structure(self, n):
        slopes = alibi_slopes(n)
        assert slopes.shape == (n,) and slopes.dtype == np.float64
        assert np.all((slopes > 0) & (slopes < 1))
        c = 2 ** (n.bit_length() - 1)
        assert np.array_equal(slopes[:c], alibi_slopes(c))
        assert set(slopes.tolist()) <= set(alibi_slopes(2 * c).tolist())
        assert len(set(slopes.tolist())) == n
        assert np.all(np.diff(slopes[:c]) < 0) and np.all(np.diff(slopes[c:]) < 0)
        if c == n:  # a geometric sequence ending at 2^-8
            np.testing.assert_allclose(slopes[1:] / slopes[:-1], slopes[0], rtol=1e-14)
            assert slopes[-1] == 2.0**-8

    def test_errors(self):
        with pytest.raises(ValueError, match=r"^num_heads must be a positive integer, got num_heads=0"):
            alibi_slopes(0)
        with pytest.raises(TypeError, match=r"^num_heads must be a positive integer, got num_heads=8.0"):
            alibi_slopes(8.0)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # an unknown value raises before any deprecation warning
            with pytest.raises(ValueError, match=r"^rule must be one of 'paper', 'mpt', got rule='bloom'"):
                alibi_slopes(8, rule="bloom")
        with pytest.raises(ValueError, match=r"^max_bias must be a finite real number > 0.0, got max_bias=0.0"):
            alibi_slopes(8, max_bias=0)
        with pytest.raises(TypeError, match=r"^max_bias must be a finite real number"):
            alibi_slopes(8, max_bias="8")


class TestDeprecatedRule:
    """``rule=`` is deprecated: both values give the slopes of the default call, and warn."""

    @pytest.mark.parametrize("rule", ["paper", "mpt"])
    @pytest.mark.parametrize("max_bias", [8.0, 6.5])
    def test_warns_and_gives_the_same_bits(self, rule, max_bias):
        for n in (1, 6, 8, 12, 100):
            with pytest.warns(DeprecationWarning, match=r"^alibi_slopes\(\): rule= is deprecated; it has no "
                                                        r"effect and will be removed; leave it out$") as record:
                old = alibi_slopes(n, rule=rule, max_bias=max_bias)
            assert record[0].filename == __file__  # points at the caller
            assert np.array_equal(old, alibi_slopes(n, max_bias=max_bias)), n

    def test_not_passing_it_does_not_warn(self):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            alibi_slopes(12)
        assert inspect.signature(alibi_slopes).parameters["rule"].default is None


# ---------------------------------------------------------------------------
# alibi_bias
# ---------------------------------------------------------------------------


def loop_bias(slopes, q, k, form, causal, scale):
    out = np.empty((len(slopes), len(q), len(k)))
    for h, m in enumerate(slopes):
        for t, i in enumerate(q):
            for s, j in enumerate(k):
                if causal and j > i:
                    out[h, t, s] = -np.inf
                    continue
                value = {
                    "distance": -(i - j),
                    "symmetric": -abs(i - j),
                    "key_index": j,
                    "last_key_anchored": j - max(k),
                }[form]
                out[h, t, s] = scale * m * value
    return out


FORMS = ["distance", "symmetric", "key_index", "last_key_anchored"]


def softmax(x):
    z = x - np.max(x, axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class TestBias:
    def test_paper_hand_values(self):
        # softmax(q_i K^T + m [-(i-1), ..., -2, -1, 0]) for query 3 (0-based 2), m = 1/2
        got = alibi_bias([0.5], [0, 1, 2], [0, 1, 2])
        assert got[0, 2].tolist() == [-1.0, -0.5, 0.0]
        assert got[0, 0].tolist() == [0.0, -np.inf, -np.inf]

    def test_each_form_by_hand(self):
        q, k = [1, 3], [0, 1, 2, 3]
        m = [0.25]
        assert alibi_bias(m, q, k, form="distance", causal=False)[0].tolist() == [
            [-0.25, 0.0, 0.25, 0.5],
            [-0.75, -0.5, -0.25, 0.0],
        ]
        assert alibi_bias(m, q, k, form="symmetric", causal=False)[0].tolist() == [
            [-0.25, 0.0, -0.25, -0.5],
            [-0.75, -0.5, -0.25, 0.0],
        ]
        assert alibi_bias(m, q, k, form="key_index", causal=False)[0].tolist() == [[0.0, 0.25, 0.5, 0.75]] * 2
        assert alibi_bias(m, q, k, form="last_key_anchored", causal=False)[0].tolist() == [
            [-0.75, -0.5, -0.25, 0.0]
        ] * 2
        causal = alibi_bias(m, q, k, form="last_key_anchored")[0]
        assert causal.tolist() == [[-0.75, -0.5, -np.inf, -np.inf], [-0.75, -0.5, -0.25, 0.0]]

    @pytest.mark.parametrize("form", FORMS)
    @pytest.mark.parametrize("causal", [True, False])
    def test_against_loops(self, form, causal):
        slopes = alibi_slopes(6)
        q = [0, 2, 5, 9]
        k = [0, 1, 2, 3, 4, 5, 6, 9, 11]
        got = alibi_bias(slopes, q, k, form=form, causal=causal, scale=0.125)
        assert got.shape == (6, 4, 9) and got.dtype == np.float64
        np.testing.assert_array_equal(got, loop_bias(slopes, q, k, form, causal, 0.125))

    def test_no_negative_zeros(self):
        got = alibi_bias([0.5, 0.0, -0.5], [0, 1, 2], [0, 1, 2], form="symmetric", causal=False)
        assert not np.any(np.signbit(got[got == 0]))

    def test_falcon_scale_equals_scaled_slopes(self):
        slopes = alibi_slopes(8)
        a = alibi_bias(slopes, [0, 1, 2, 3], [0, 1, 2, 3], form="key_index", scale=1 / math.sqrt(64))
        b = alibi_bias(slopes / 8.0, [0, 1, 2, 3], [0, 1, 2, 3], form="key_index")
        np.testing.assert_array_equal(a, b)
        assert a[0, 3, 3] == 0.0625 * 3  # effective slope 0.5 / 8

    def test_causal_mask_exactly_future_keys(self):
        q = np.array([0, 4, 4, 7])
        k = np.array([0, 3, 4, 5, 8])
        got = alibi_bias([1.0, 0.0], q, k, form="symmetric")
        assert np.array_equal(np.isneginf(got), np.broadcast_to(k[None, :] > q[:, None], got.shape))

    def test_fractional_positions(self):
        got = alibi_bias([2.0], [1.5], [0.25, 1.5], causal=False)
        assert got.tolist() == [[[-2.5, 0.0]]]

    def test_empty(self):
        assert alibi_bias([1.0], [], [0, 1]).shape == (1, 0, 2)
        assert alibi_bias([1.0, 0.5], [0, 1], [], form="last_key_anchored").shape == (2, 2, 0)

    @given(
        slopes=hnp.arrays(np.float64, st.integers(1, 4), elements=st.floats(0, 2)),
        q=st.lists(st.integers(0, 50), min_size=1, max_size=6),
        k=st.lists(st.integers(0, 50), min_size=1, max_size=8),
        first=st.sampled_from(FORMS),
        second=st.sampled_from(FORMS),
    )
    def test_forms_agree_after_causal_softmax(self, slopes, q, k, first, second):
        k = [0] + k  # every query sees at least one key
        a = alibi_bias(slopes, q, k, form=first)
        b = alibi_bias(slopes, q, k, form=second)
        allowed = np.isfinite(a)
        assert np.array_equal(allowed, np.isfinite(b))
        # on allowed keys the difference is one constant per (head, query)
        diff = np.where(allowed, a - np.where(allowed, b, 0.0), np.nan)
        spread = np.nanmax(diff, axis=-1) - np.nanmin(diff, axis=-1)
        assert np.all(spread <= 1e-12 * (1 + np.nanmax(np.abs(diff))))
        rng = np.random.default_rng(len(q) * 100 + len(k))
        logits = rng.standard_normal((len(q), len(k)))
        np.testing.assert_allclose(softmax(logits + a), softmax(logits + b), rtol=1e-12, atol=1e-15)

    def test_forms_differ_without_mask(self):
        slopes, pos = [0.5], [0, 1, 2, 3]
        key_index = alibi_bias(slopes, pos, pos, form="key_index", causal=False)
        symmetric = alibi_bias(slopes, pos, pos, form="symmetric", causal=False)
        # query 0: key_index rewards later keys, symmetric penalises them
        assert key_index[0, 0].tolist() == [0.0, 0.5, 1.0, 1.5]
        assert symmetric[0, 0].tolist() == [0.0, -0.5, -1.0, -1.5]
        p_key, p_sym = softmax(key_index[0]), softmax(symmetric[0])
        assert np.argmax(p_key[0]) == 3 and np.argmax(p_sym[0]) == 0
        assert np.max(np.abs(p_key - p_sym)) > 0.3
        # only the last query, which sees no later key, agrees
        np.testing.assert_allclose(p_key[3], p_sym[3], rtol=1e-15)
        assert np.all(np.max(np.abs(p_key[:3] - p_sym[:3]), axis=-1) > 0.1)

    def test_errors(self):
        with pytest.raises(ValueError, match=r"^slopes must not be empty, got shape \(0,\)"):
            alibi_bias([], [0], [0])
        with pytest.raises(ValueError, match=r"^slopes must be a 1-D array, got shape \(2, 1\)"):
            alibi_bias([[0.5], [0.25]], [0], [0])
        with pytest.raises(ValueError, match=r"^slopes must contain only finite values"):
            alibi_bias([np.inf], [0], [0])
        with pytest.raises(ValueError, match=r"^query_positions must be a 1-D array, got shape \(\)"):
            alibi_bias([0.5], 3, [0])
        with pytest.raises(ValueError, match=r"^key_positions must hold non-negative values, got minimum -1.0"):
            alibi_bias([0.5], [0], [-1])
        with pytest.raises(ValueError, match=r"^form must be one of 'distance', 'symmetric', 'key_index', 'last_key_anchored', got form='bottom_right'"):
            alibi_bias([0.5], [0], [0], form="bottom_right")
        with pytest.raises(TypeError, match=r"^causal must be True or False, got causal=None"):
            alibi_bias([0.5], [0], [0], causal=None)
        with pytest.raises(ValueError, match=r"^scale must be a finite real number > 0.0, got scale=0.0"):
            alibi_bias([0.5], [0], [0], scale=0.0)
        with pytest.raises(TypeError, match=r"^slopes must be a real numeric array, got dtype complex128"):
            alibi_bias(np.array([1j]), [0], [0])
