"""Fourier features: the harmonics of one base period.

Expected values come from hand arithmetic (quarter periods), from the naive
formula, from mpmath at 40 significant digits and from exact rational
arithmetic; never from running the function under test.
"""

import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from posref import fourier_features, spec_functions

EPS = np.finfo(np.float64).eps


def test_catalogue_family_and_module():
    entries = spec_functions("fourier")
    assert [e.name for e in entries] == ["fourier_features"]
    assert {e.module for e in entries} == {"posref.fourier"}


def test_sinusoidal_module_still_exports_it():
    import posref.sinusoidal

    assert posref.sinusoidal.fourier_features is fourier_features


QUARTER_COS = (1, 0, -1, 0)
QUARTER_SIN = (0, 1, 0, -1)


class TestFourierKnownValues:
    def test_period_four_one_harmonic(self):
        got = fourier_features([0, 1, 2, 3], 1, period=4.0)
        np.testing.assert_array_equal(got, [[1, 0], [0, 1], [-1, 0], [0, -1]])

    def test_eighth_period(self):
        r = math.sqrt(0.5)
        got = fourier_features([1], 3, period=8.0)
        # k = 1, 2, 3 at 1/8 turn: angles pi/4, pi/2, 3pi/4
        np.testing.assert_allclose(got, [[r, 0, -r, r, 1, r]], rtol=0, atol=2e-16)

    def test_cosine_only_is_the_first_half(self):
        full = fourier_features([0.3, 7.0, 123.25], 5, period=10.0)
        cos = fourier_features([0.3, 7.0, 123.25], 5, period=10.0, include_sine=False)
        np.testing.assert_array_equal(cos, full[..., :5])

    def test_shape_and_dtype(self):
        assert fourier_features(2, 3, period=5.0).shape == (6,)
        out = fourier_features(np.zeros((2, 4), dtype=np.int16), 3, period=5, include_sine=False)
        assert out.shape == (2, 4, 3) and out.dtype == np.float64

    def test_no_negative_zeros(self):
        got = fourier_features([-2, 2, -4], 4, period=8.0)
        assert not np.any(np.signbit(got) & (got == 0))

    def test_matches_naive_formula_for_small_positions(self):
        positions = np.array([0.0, 0.1, 1.0, 2.5, 9.75, 33.0])
        k = np.arange(1, 7)
        angle = 2 * np.pi * k * positions[:, None] / 7.5
        expected = np.concatenate([np.cos(angle), np.sin(angle)], axis=-1)
        np.testing.assert_allclose(fourier_features(positions, 6, period=7.5), expected, rtol=0, atol=1e-13)


class TestFourierIndependent:
    @pytest.mark.parametrize("period", [8.0, 10.0, 7.5, 4096.0, 0.3])
    def test_mpmath(self, period):
        positions = [0, 1, 2.5, 3.3, -3.3, -1000, 1000, 65_537, 999_999.5, 1_000_000]
        num_frequencies = 5
        got = fourier_features(positions, num_frequencies, period=period)
        with mpmath.workdps(40):
            for row, pos in zip(got, positions):
                for k in range(1, num_frequencies + 1):
                    turns = Fraction(pos) * k / Fraction(period)  # exact rational turns
                    angle = 2 * mpmath.pi * mpmath.mpf(turns.numerator) / turns.denominator
                    # k * pos is rounded once (relative EPS/2), the remainder / period once.
                    bound = 2 * EPS * (8 + 2 * math.pi * abs(k * pos) / period)
                    assert abs(row[k - 1] - float(mpmath.cos(angle))) <= bound, (pos, k)
                    assert abs(row[num_frequencies + k - 1] - float(mpmath.sin(angle))) <= bound, (pos, k)

    def test_integer_positions_are_exactly_reduced(self):
        # With integer k * pos and integer period the angle is exact before the trig call,
        # so the error does not grow with the position.
        positions = [1, 10**6 + 1, 10**12 + 1]
        got = fourier_features(positions, 3, period=8.0)
        for row in got:
            np.testing.assert_allclose(row, got[0], rtol=0, atol=0)


class TestFourierProperties:
    @given(
        a=st.integers(1, 10**6),
        scale=st.sampled_from([1.0, 0.5, 0.25, 2.0**-10, 4.0]),
        quarters=hnp.arrays(np.int64, st.integers(1, 8), elements=st.integers(-10**6, 10**6)),
        num_frequencies=st.integers(1, 8),
    )
    def test_quarter_period_multiples_are_exact(self, a, scale, quarters, num_frequencies):
        period = a * scale  # N; positions m * N / 4 are exactly representable
        positions = quarters * (period / 4)
        got = fourier_features(positions, num_frequencies, period=period)
        for row, m in zip(got, quarters.tolist()):
            expected_cos = [QUARTER_COS[(k * m) % 4] for k in range(1, num_frequencies + 1)]
            expected_sin = [QUARTER_SIN[(k * m) % 4] for k in range(1, num_frequencies + 1)]
            np.testing.assert_array_equal(row, expected_cos + expected_sin)

    @given(
        period=st.integers(1, 10**5),
        positions=hnp.arrays(np.int64, st.integers(1, 6), elements=st.integers(-10**7, 10**7)),
        cycles=st.integers(-50, 50),
        num_frequencies=st.integers(1, 6),
    )
    def test_periodic_exactly_for_integers(self, period, positions, cycles, num_frequencies):
        base = fourier_features(positions, num_frequencies, period=float(period))
        moved = fourier_features(positions + cycles * period, num_frequencies, period=float(period))
        np.testing.assert_array_equal(moved, base)

    @given(
        period=st.floats(0.1, 1000.0),
        positions=hnp.arrays(np.float64, st.integers(1, 6), elements=st.floats(-1000, 1000)),
        num_frequencies=st.integers(1, 6),
    )
    def test_periodic_for_real_positions(self, period, positions, num_frequencies):
        base = fourier_features(positions, num_frequencies, period=period)
        moved = fourier_features(positions + period, num_frequencies, period=period)
        # positions + period is rounded: |error| <= |pos + N| * EPS / 2, times 2 pi k / N.
        tol = 2 * math.pi * num_frequencies * (np.max(np.abs(positions)) + period) / period * EPS * 4 + 1e-14
        np.testing.assert_allclose(moved, base, rtol=0, atol=tol)

    @given(
        period=st.floats(0.1, 1000.0),
        positions=hnp.arrays(np.float64, st.integers(1, 6), elements=st.floats(-1e6, 1e6)),
        num_frequencies=st.integers(1, 6),
    )
    def test_cos_sin_pairs_on_the_unit_circle(self, period, positions, num_frequencies):
        ff = fourier_features(positions, num_frequencies, period=period)
        cos, sin = ff[..., :num_frequencies], ff[..., num_frequencies:]
        np.testing.assert_allclose(cos**2 + sin**2, 1.0, rtol=0, atol=8 * EPS)

    @given(
        period=st.floats(0.1, 1000.0),
        positions=hnp.arrays(np.float64, st.integers(1, 6), elements=st.floats(-1e4, 1e4)),
    )
    def test_cosine_even_sine_odd(self, period, positions):
        ff = fourier_features(positions, 4, period=period)
        mirrored = fourier_features(-positions, 4, period=period)
        # -p reduces to N - (p mod N): one more rounding of at most EPS per turn.
        tol = 4 * 2 * math.pi * 4 * (np.max(np.abs(positions)) / period + 1) * EPS
        np.testing.assert_allclose(mirrored[..., :4], ff[..., :4], rtol=0, atol=tol)
        np.testing.assert_allclose(mirrored[..., 4:], -ff[..., 4:], rtol=0, atol=tol)


class TestFourierErrors:
    @pytest.mark.parametrize("n", [0, -3])
    def test_num_frequencies_value(self, n):
        with pytest.raises(ValueError, match=rf"^num_frequencies must be a positive integer, got num_frequencies={n}$"):
            fourier_features([0], n, period=8.0)

    @pytest.mark.parametrize("n", [2.0, "2", None])
    def test_num_frequencies_type(self, n):
        with pytest.raises(TypeError, match=r"^num_frequencies must be a positive integer, got num_frequencies="):
            fourier_features([0], n, period=8.0)

    @pytest.mark.parametrize("period", [0.0, -8.0, float("inf"), float("nan")])
    def test_period_value(self, period):
        with pytest.raises(ValueError, match=r"^period must be a finite real number > 0.0, got period="):
            fourier_features([0], 2, period=period)

    @pytest.mark.parametrize("period", ["8", None, False])
    def test_period_type(self, period):
        with pytest.raises(TypeError, match=r"^period must be a finite real number > 0.0, got period="):
            fourier_features([0], 2, period=period)

    def test_period_is_required(self):
        with pytest.raises(TypeError, match="period"):
            fourier_features([0], 2)

    @pytest.mark.parametrize("flag", [1, "yes", None])
    def test_include_sine_type(self, flag):
        with pytest.raises(TypeError, match=r"^include_sine must be True or False, got include_sine="):
            fourier_features([0], 2, period=8.0, include_sine=flag)

    def test_non_finite_positions(self):
        with pytest.raises(ValueError, match=r"^positions must contain only finite values"):
            fourier_features([0.0, float("inf")], 2, period=8.0)

    def test_positions_type(self):
        with pytest.raises(TypeError, match=r"^positions must be a numeric array"):
            fourier_features("0 1 2", 2, period=8.0)
