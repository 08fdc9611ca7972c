"""RoPE scaling rules: hand values, independent re-derivations, properties, errors."""

import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from posref import (
    deepseek_softmax_scale,
    dynamic_linear_frequencies,
    dynamic_ntk_frequencies,
    dynamic_ntk_sequence_length,
    linear_scaled_frequencies,
    llama3_scaled_frequencies,
    longrope_attention_factor,
    longrope_frequencies,
    ntk_fixed_frequencies,
    ntk_scaled_frequencies,
    qwen_dynamic_ntk_frequencies,
    rope_angles,
    rope_frequencies,
    spec_functions,
    yarn_attention_factor,
    yarn_correction_range,
    yarn_frequencies,
)

dims = st.integers(1, 64).map(lambda k: 2 * k)
ntk_dims = st.integers(2, 64).map(lambda k: 2 * k)
bases = st.floats(2.0, 1e7)
factors = st.floats(1.0, 64.0)
lengths = st.integers(1, 1_000_000)


def mp_theta(dim, base, dps=40):
    """RoPE inverse frequencies in mpmath, for an independent high-precision reference."""
    with mpmath.workdps(dps):
        b = mpmath.mpf(base)
        return [b ** (-mpmath.mpf(2 * i) / dim) for i in range(dim // 2)]


def as_float(values):
    return np.array([float(v) for v in values])


def recovered_base(theta, dim):
    """The base b' with theta_1 = b'^(-2/d)."""
    return theta[1] ** (-dim / 2)


def test_catalogue_family():
    names = {f.name for f in spec_functions("rope_scaling")}
    assert {
        "linear_scaled_frequencies",
        "dynamic_linear_frequencies",
        "ntk_scaled_frequencies",
        "ntk_fixed_frequencies",
        "dynamic_ntk_frequencies",
        "dynamic_ntk_sequence_length",
        "qwen_dynamic_ntk_frequencies",
        "yarn_correction_range",
        "yarn_frequencies",
        "yarn_attention_factor",
        "deepseek_softmax_scale",
        "longrope_frequencies",
        "longrope_attention_factor",
        "llama3_scaled_frequencies",
    } <= names


# --------------------------------------------------------------------------- linear


class TestLinearScaled:
    def test_hand_values(self):
        out = linear_scaled_frequencies(8, base=10_000.0, scaling_factor=4.0)
        np.testing.assert_allclose(out, [0.25, 0.025, 0.0025, 0.00025], rtol=1e-15)
        assert out.dtype == np.float64 and out.shape == (4,)

    def test_factor_one_is_plain_rope(self):
        np.testing.assert_array_equal(linear_scaled_frequencies(64, scaling_factor=1.0), rope_frequencies(64))

    @given(dims, bases, factors)
    def test_mpmath(self, dim, base, s):
        expected = as_float(t / mpmath.mpf(s) for t in mp_theta(dim, base))
        np.testing.assert_allclose(linear_scaled_frequencies(dim, base=base, scaling_factor=s), expected, rtol=1e-13)

    @given(dims, factors, st.lists(st.integers(0, 100_000), min_size=1, max_size=8))
    def test_same_as_dividing_positions(self, dim, s, positions):
        positions = np.array(positions)
        by_positions = rope_angles(positions / s, dim)
        by_frequencies = positions[:, None] * linear_scaled_frequencies(dim, scaling_factor=s)
        np.testing.assert_allclose(by_frequencies, by_positions, rtol=1e-13, atol=1e-300)


class TestDynamicLinear:
    def test_hand_values(self):
        kw = dict(base=100.0, original_max_position_embeddings=1024)
        # fixed factor 2 covers up to 2048; beyond, the factor is L / L0
        got = dynamic_linear_frequencies(4, scaling_factor=2.0, sequence_length=2048, **kw)
        np.testing.assert_allclose(got, [0.5, 0.05])
        got = dynamic_linear_frequencies(4, scaling_factor=2.0, sequence_length=4096, **kw)
        np.testing.assert_allclose(got, [0.25, 0.025])
        # default factor 1: plain RoPE up to L0
        np.testing.assert_array_equal(dynamic_linear_frequencies(4, sequence_length=1000, **kw), [1.0, 0.1])
        np.testing.assert_allclose(dynamic_linear_frequencies(4, sequence_length=3072, **kw), [1 / 3, 1 / 30])

    @given(dims, factors, st.integers(1, 100_000), st.integers(1, 1_000_000))
    def test_transformer_engine_position_rule(self, dim, s, l0, length):
        # TransformerEngine: positions * (L0 / L) if L > L0 * s else positions / s
        position_multiplier = l0 / length if length > l0 * s else 1.0 / s
        expected = rope_frequencies(dim) * position_multiplier
        got = dynamic_linear_frequencies(
            dim, scaling_factor=s, original_max_position_embeddings=l0, sequence_length=length
        )
        np.testing.assert_allclose(got, expected, rtol=1e-14)

    @given(dims, st.integers(1, 10_000), st.integers(1, 100_000))
    def test_last_position_stays_in_trained_range(self, dim, l0, length):
        theta = dynamic_linear_frequencies(dim, original_max_position_embeddings=l0, sequence_length=length)
        # the largest angle of the sequence never exceeds the largest trained one
        assert np.all((length - 1) * theta <= max(l0, length) * rope_frequencies(dim) * (1 + 1e-14))


# --------------------------------------------------------------------------- NTK


class TestNtkScaled:
    def test_hand_values(self):
        # d = 4: exponent d/(d-2) = 2, base' = 100 * 16
        np.testing.assert_allclose(ntk_scaled_frequencies(4, base=100.0, scaling_factor=4.0), [1.0, 0.025], rtol=1e-15)

    def test_survey_ratios(self):
        # conventions.md 11.2 [computed]: d=128, b=1e4, s=4 -> (1.000, 0.250)
        ratio = ntk_scaled_frequencies(128, scaling_factor=4.0) / rope_frequencies(128)
        assert ratio[0] == 1.0
        assert ratio[-1] == pytest.approx(0.25, rel=1e-12)

    @given(ntk_dims, bases, factors)
    def test_closed_form_without_the_base(self, dim, base, s):
        # b'^(-2i/d) = b^(-2i/d) * s^(-2i/(d-2)), evaluated in mpmath
        with mpmath.workdps(40):
            expected = as_float(
                t * mpmath.mpf(s) ** (-mpmath.mpf(2 * i) / (dim - 2)) for i, t in enumerate(mp_theta(dim, base))
            )
        np.testing.assert_allclose(ntk_scaled_frequencies(dim, base=base, scaling_factor=s), expected, rtol=1e-12)

    @given(ntk_dims, bases, factors)
    def test_keeps_highest_divides_lowest(self, dim, base, s):
        theta = rope_frequencies(dim, base=base)
        scaled = ntk_scaled_frequencies(dim, base=base, scaling_factor=s)
        assert scaled[0] == 1.0
        assert scaled[-1] == pytest.approx(theta[-1] / s, rel=1e-11)
        assert np.all(np.diff(scaled / theta) <= 1e-15)


class TestNtkFixed:
    def test_hand_values(self):
        np.testing.assert_allclose(ntk_fixed_frequencies(4, base=100.0, scaling_factor=4.0), [0.5, 0.025], rtol=1e-15)
        np.testing.assert_allclose(
            ntk_fixed_frequencies(4, base=100.0, scaling_factor=4.0, mixed_b=2.0), [2**-0.5, 0.025], rtol=1e-15
        )

    def test_survey_ratios(self):
        # conventions.md 11.2 [computed]: vLLM ntk, d=128, b=1e4, s=4 -> (0.979, 0.250)
        ratio = ntk_fixed_frequencies(128, scaling_factor=4.0) / rope_frequencies(128)
        assert ratio[0] == pytest.approx(4 ** (-2 / 128), rel=1e-14)
        assert round(ratio[0], 3) == 0.979
        assert ratio[-1] == pytest.approx(0.25, rel=1e-12)

    @given(dims, st.integers(2, 100_000), st.integers(1, 64))
    def test_exact_powers(self, dim, base, s):
        # theta_i' = b^(-2i/d) s^(-2(i+1)/d); for integer b and s, raise to the power d/2
        # to compare exact rationals: (theta_i')^(d/2) = 1 / (b^i s^(i+1))
        got = ntk_fixed_frequencies(dim, base=float(base), scaling_factor=float(s))
        for i, value in enumerate(got):
            exact = Fraction(1, base**i * s ** (i + 1))
            assert value ** (dim / 2) == pytest.approx(float(exact), rel=1e-11 * dim)

    @given(dims, bases, factors)
    def test_mixed_one_is_fixed(self, dim, base, s):
        fixed = ntk_fixed_frequencies(dim, base=base, scaling_factor=s)
        mixed = ntk_fixed_frequencies(dim, base=base, scaling_factor=s, mixed_b=1.0)
        np.testing.assert_allclose(mixed, fixed, rtol=1e-12)

    @given(dims, bases, factors, st.floats(0.1, 4.0))
    def test_mixed_mpmath_and_lowest(self, dim, base, s, b):
        with mpmath.workdps(40):
            a = mpmath.log(s) / mpmath.mpf(dim // 2) ** b
            expected = as_float(t / mpmath.exp(a * mpmath.mpf(i + 1) ** b) for i, t in enumerate(mp_theta(dim, base)))
        got = ntk_fixed_frequencies(dim, base=base, scaling_factor=s, mixed_b=b)
        np.testing.assert_allclose(got, expected, rtol=1e-12)
        assert got[-1] == pytest.approx(rope_frequencies(dim, base=base)[-1] / s, rel=1e-12)


class TestDynamicNtk:
    KW = dict(base=10_000.0, scaling_factor=4.0, original_max_position_embeddings=4096)

    @pytest.mark.parametrize("length, expected_base", [(4096, 10_000.0), (8192, 51_294), (16384, 135_402)])
    def test_survey_bases(self, length, expected_base):
        # conventions.md 11.3 [computed]: b=1e4, d=128, s=4, L0=4096
        theta = dynamic_ntk_frequencies(128, sequence_length=length, **self.KW)
        assert round(recovered_base(theta, 128)) == pytest.approx(expected_base, abs=1)

    def test_hand_values(self):
        # s = 2 at twice L0: alpha = 3, base' = 100 * 3^2
        got = dynamic_ntk_frequencies(
            4, base=100.0, scaling_factor=2.0, original_max_position_embeddings=1024, sequence_length=2048
        )
        np.testing.assert_allclose(got, [1.0, 1 / 30], rtol=1e-15)

    def test_at_full_extension_alpha_is_s_squared_minus_s_plus_one(self):
        # evaluated at L = L0 * s (what a static one-shot table uses), alpha = s^2 - s + 1
        theta = dynamic_ntk_frequencies(128, sequence_length=4096 * 4, **self.KW)
        alpha = 4.0**2 - 4.0 + 1.0
        assert recovered_base(theta, 128) == pytest.approx(10_000.0 * alpha ** (128 / 126), rel=1e-11)

    @given(ntk_dims, factors, st.integers(1, 100_000), st.integers(1, 100_000))
    def test_plain_up_to_l0_and_composition(self, dim, s, l0, length):
        kw = dict(scaling_factor=s, original_max_position_embeddings=l0)
        got = dynamic_ntk_frequencies(dim, sequence_length=length, **kw)
        if length <= l0:
            np.testing.assert_array_equal(got, rope_frequencies(dim))
        alpha = Fraction(s) * Fraction(max(length, l0), l0) - (Fraction(s) - 1)
        np.testing.assert_allclose(got, ntk_scaled_frequencies(dim, scaling_factor=float(alpha)), rtol=1e-12)

    @given(ntk_dims, factors, st.integers(1, 10_000), st.integers(1, 100_000), st.integers(1, 100_000))
    def test_lowest_frequency_decreases_with_length(self, dim, s, l0, a, b):
        short, long = sorted((a, b))
        kw = dict(scaling_factor=s, original_max_position_embeddings=l0)
        assert dynamic_ntk_frequencies(dim, sequence_length=long, **kw)[-1] <= (
            dynamic_ntk_frequencies(dim, sequence_length=short, **kw)[-1] * (1 + 1e-14)
        )


class TestDynamicNtkSequenceLength:
    def test_history_of_passes(self):
        l0 = 4096
        cached = None
        steps = [
            (np.arange(100), 4096),  # short pass, initial table
            (np.arange(6000), 6000),  # growth
            (np.arange(5000), 6000),  # between L0 and cached: stale larger table stays
            (np.array([[0, 7999], [0, 3]]), 8000),  # batch maximum decides
            (np.arange(4096), 8000),  # L == L0 is not below L0: no reset
            (np.arange(4095), 4096),  # reset
            (np.arange(4095), 4096),
        ]
        for positions, expected in steps:
            cached = dynamic_ntk_sequence_length(positions, original_max_position_embeddings=l0, cached_length=cached)
            assert cached == expected
            assert type(cached) is int

    def test_no_reset(self):
        kw = dict(original_max_position_embeddings=4096, reset=False)
        assert dynamic_ntk_sequence_length(np.arange(10), cached_length=9000, **kw) == 9000
        assert dynamic_ntk_sequence_length(np.arange(9001), cached_length=9000, **kw) == 9001

    @given(st.integers(1, 10_000), st.integers(0, 30_000), st.integers(0, 20_000), st.booleans())
    def test_rule(self, l0, top, extra, reset):
        cached = l0 + extra
        got = dynamic_ntk_sequence_length([top], original_max_position_embeddings=l0, cached_length=cached, reset=reset)
        length = top + 1
        assert got >= l0
        assert got == length or got in (cached, l0)
        if length > cached:
            assert got == length
        elif length < l0 and reset:
            assert got == l0
        else:
            assert got == cached


class TestQwenDynamicNtk:
    @pytest.mark.parametrize(
        "length, alpha",
        [(1, 1), (1024, 1), (1025, 3), (2048, 3), (2049, 7), (4096, 7), (4097, 15), (1024 * 64, 127)],
    )
    def test_alpha_steps(self, length, alpha):
        # d = 4, b = 100: base' = 100 alpha^2, theta_1 = 1 / (10 alpha)
        got = qwen_dynamic_ntk_frequencies(4, base=100.0, original_max_position_embeddings=1024, sequence_length=length)
        np.testing.assert_allclose(got, [1.0, 1 / (10 * alpha)], rtol=1e-15)

    @given(ntk_dims, st.integers(1, 100_000), st.integers(1, 10_000_000))
    def test_matches_floating_point_formula(self, dim, l0, length):
        # Qwen's own expression; exact here because log2 of a power of two is exact
        alpha = max(2 ** math.ceil(math.log2(length / l0) + 1) - 1, 1)
        expected = ntk_scaled_frequencies(dim, scaling_factor=float(alpha))
        got = qwen_dynamic_ntk_frequencies(dim, original_max_position_embeddings=l0, sequence_length=length)
        np.testing.assert_allclose(got, expected, rtol=1e-14)


# --------------------------------------------------------------------------- YaRN

# conventions.md 11.4 [computed] table: (d, b, L0, s) -> truncated, exact, old-HF (L0 * s)
YARN_TABLE = [
    (128, 1e4, 4096, 4, (20, 46), (20.944, 45.027), (30, 55)),
    (128, 1e6, 32768, 4, (23, 40), (23.596, 39.651), (30, 47)),
    (64, 1e4, 4096, 40, (10, 23), (10.472, 22.513), (23, 36)),
    (128, 1e4, 131072, 8, (45, 70), (45.027, 69.109), (59, 84)),
]


def bisect_index(dim, base, l0, rotations):
    """Pair index (real) where L0 * b^(-2i/d) / (2 pi) equals ``rotations``, by bisection in mpmath."""
    with mpmath.workdps(30):
        b, target = mpmath.mpf(base), mpmath.mpf(rotations)
        lo, hi = mpmath.mpf(-40 * dim), mpmath.mpf(40 * dim)  # turns(i) is decreasing in i
        for _ in range(90):
            mid = (lo + hi) / 2
            if l0 * b ** (-2 * mid / dim) / (2 * mpmath.pi) > target:
                lo = mid
            else:
                hi = mid
        return float((lo + hi) / 2)


class TestYarnCorrectionRange:
    @pytest.mark.parametrize("dim, base, l0, s, truncated, exact, old", YARN_TABLE)
    def test_survey_table(self, dim, base, l0, s, truncated, exact, old):
        assert yarn_correction_range(dim, base=base, original_max_position_embeddings=l0) == truncated
        low, high = yarn_correction_range(dim, base=base, original_max_position_embeddings=l0, truncate=False)
        assert (round(low, 3), round(high, 3)) == exact
        assert yarn_correction_range(dim, base=base, original_max_position_embeddings=l0 * s) == old

    def test_half_dim_clamp(self):
        # conventions.md: keras-hub's old clamp gives (45.027, 63) for the last row
        low, high = yarn_correction_range(
            128, base=1e4, original_max_position_embeddings=131072, truncate=False, high_limit="half_dim"
        )
        assert (round(low, 3), high) == (45.027, 63.0)

    @given(dims, bases, st.integers(1, 10_000_000), st.floats(1.5, 64.0), st.floats(0.1, 1.0))
    def test_against_bisection(self, dim, base, l0, beta_fast, beta_slow):
        low, high = yarn_correction_range(
            dim,
            base=base,
            original_max_position_embeddings=l0,
            beta_fast=beta_fast,
            beta_slow=beta_slow,
            truncate=False,
        )
        expected_low = max(bisect_index(dim, base, l0, beta_fast), 0.0)
        expected_high = min(bisect_index(dim, base, l0, beta_slow), dim - 1)
        assert low == pytest.approx(expected_low, abs=1e-8 * max(1.0, abs(expected_low)))
        assert high == pytest.approx(expected_high, abs=1e-8 * max(1.0, abs(expected_high)))

    @given(dims, bases, st.integers(1, 10_000_000))
    def test_truncation_widens(self, dim, base, l0):
        exact = yarn_correction_range(dim, base=base, original_max_position_embeddings=l0, truncate=False)
        truncated = yarn_correction_range(dim, base=base, original_max_position_embeddings=l0)
        assert truncated[0] <= exact[0] and truncated[1] >= exact[1]
        assert truncated[0] == int(truncated[0]) and truncated[1] == int(truncated[1])
        assert exact[0] >= 0 and truncated[0] >= 0


def yarn_mpmath(dim, base, s, l0, beta_fast=32, beta_slow=1, truncate=True, e=1):
    """YaRN in mpmath, written from the paper's definitions and the reference code's ramp."""
    with mpmath.workdps(40):
        b = mpmath.mpf(base)

        def index(r):
            return dim * mpmath.log(l0 / (r * 2 * mpmath.pi)) / (2 * mpmath.log(b))

        low, high = index(beta_fast), index(beta_slow)
        if truncate:
            low, high = mpmath.floor(low), mpmath.ceil(high)
        low, high = max(low, 0), min(high, dim - 1)
        if low == high:
            high += mpmath.mpf("0.001")
        out = []
        for i, t in enumerate(mp_theta(dim, base)):
            ramp = min(max((i - low) / (high - low), 0), 1)
            keep = (1 - ramp) * e
            out.append(t / s * (1 - keep) + t * keep)
        return as_float(out)


class TestYarnFrequencies:
    def test_hand_values(self):
        ratio = yarn_frequencies(128, scaling_factor=4.0, original_max_position_embeddings=4096) / rope_frequencies(128)
        np.testing.assert_allclose(ratio[[0, 20, 33, 46, 63]], [1.0, 1.0, 0.625, 0.25, 0.25], rtol=1e-14)
        # pair 21 is 1/26 up the ramp
        assert ratio[21] == pytest.approx(1 - (1 / 26) * 0.75, rel=1e-14)

    @pytest.mark.parametrize("dim, base, l0, s", [row[:4] for row in YARN_TABLE])
    @pytest.mark.parametrize("truncate", [True, False])
    def test_mpmath(self, dim, base, l0, s, truncate):
        got = yarn_frequencies(dim, base=base, scaling_factor=s, original_max_position_embeddings=l0, truncate=truncate)
        np.testing.assert_allclose(got, yarn_mpmath(dim, base, s, l0, truncate=truncate), rtol=1e-13)

    @given(dims, bases, factors, st.integers(7, 10_000_000), st.booleans())
    def test_wavelength_formulation_outside_the_ramp(self, dim, base, s, l0, truncate):
        # pairs turning at least beta_fast times keep theta; at most beta_slow times get theta / s
        # (L0 >= 7 > 2 pi beta_slow, and low <= high: see test_degenerate_range_uses_the_formula_as_written)
        low, high = yarn_correction_range(dim, base=base, original_max_position_embeddings=l0, truncate=truncate)
        assume(low <= high)
        theta = rope_frequencies(dim, base=base)
        turns = l0 * theta / (2 * math.pi)
        got = yarn_frequencies(dim, base=base, scaling_factor=s, original_max_position_embeddings=l0, truncate=truncate)
        fast, slow = turns >= 32.0 * (1 + 1e-12), turns <= 1.0 * (1 - 1e-12)
        np.testing.assert_allclose(got[fast], theta[fast], rtol=1e-14)
        np.testing.assert_allclose(got[slow], theta[slow] / s, rtol=1e-14)

    @given(dims, bases, factors, st.integers(1, 10_000_000), st.booleans(), st.sampled_from(["dim", "half_dim"]))
    def test_ramp_monotone_between_bounds(self, dim, base, s, l0, truncate, high_limit):
        theta = rope_frequencies(dim, base=base)
        ratio = (
            yarn_frequencies(
                dim,
                base=base,
                scaling_factor=s,
                original_max_position_embeddings=l0,
                truncate=truncate,
                high_limit=high_limit,
            )
            / theta
        )
        assert np.all(np.diff(ratio) <= 1e-14)
        assert np.all(ratio <= 1 + 1e-14) and np.all(ratio >= 1 / s - 1e-14)

    def test_paper_ramp_in_rotations_differs_inside_the_range(self):
        # the paper writes gamma(r) = (r - 1) / (32 - 1); the implemented ramp is linear in i
        theta = rope_frequencies(128)
        turns = 4096 * theta / (2 * math.pi)
        gamma = np.clip((turns - 1.0) / 31.0, 0.0, 1.0)
        paper = theta / 4 * (1 - gamma) + theta * gamma
        got = yarn_frequencies(128, scaling_factor=4.0, original_max_position_embeddings=4096, truncate=False)
        outside = (turns >= 32) | (turns <= 1)
        np.testing.assert_allclose(got[outside], paper[outside], rtol=1e-14)
        assert np.max(np.abs(got / paper - 1)) > 0.1

    def test_special_settings(self):
        kw = dict(scaling_factor=8.0, original_max_position_embeddings=2048)
        np.testing.assert_allclose(
            yarn_frequencies(64, extrapolation_factor=0.0, **kw), linear_scaled_frequencies(64, scaling_factor=8.0)
        )
        np.testing.assert_array_equal(
            yarn_frequencies(64, scaling_factor=1.0, original_max_position_embeddings=2048), rope_frequencies(64)
        )

    def test_degenerate_range_uses_the_formula_as_written(self):
        # d = 2, b = 2, L0 = 1000: low = floor(2.31) = 2 but high is clamped to d - 1 = 1, so the
        # ramp (0 - 2) / (1 - 2) = 2 clips to 1 and the single pair is interpolated although it
        # turns 159 times (the reference code and Hugging Face do the same)
        assert yarn_correction_range(2, base=2.0, original_max_position_embeddings=1000) == (2.0, 1.0)
        got = yarn_frequencies(2, base=2.0, scaling_factor=4.0, original_max_position_embeddings=1000)
        assert got[0] == 0.25

    def test_equal_bounds_guard(self):
        # L0 = 6, d = 8, b = 10: both ends truncate to 0; the range becomes (0, 0.001)
        assert yarn_correction_range(8, base=10.0, original_max_position_embeddings=6) == (0.0, 0.0)
        got = yarn_frequencies(8, base=10.0, scaling_factor=2.0, original_max_position_embeddings=6)
        theta = rope_frequencies(8, base=10.0)
        np.testing.assert_allclose(got, np.r_[theta[0], theta[1:] / 2], rtol=1e-15)


class TestYarnAttentionFactor:
    def test_hand_values(self):
        assert yarn_attention_factor(4.0) == pytest.approx(0.1 * math.log(4.0) + 1.0, rel=1e-15)
        assert yarn_attention_factor(1.0) == 1.0
        assert yarn_attention_factor(0.5) == 1.0
        assert yarn_attention_factor(math.e) == pytest.approx(1.1, rel=1e-15)

    def test_deepseek_configs(self):
        assert yarn_attention_factor(40.0, mscale=1.0, mscale_all_dim=1.0) == 1.0  # DeepSeek-V3
        assert yarn_attention_factor(40.0, mscale=0.707, mscale_all_dim=0.707) == 1.0  # DeepSeek-V2
        # vLLM DeepseekScalingRotaryEmbedding with mscale alone
        assert yarn_attention_factor(math.e**2, mscale=0.707) == pytest.approx(1.1414, rel=1e-12)

    def test_override(self):
        assert yarn_attention_factor(4.0, attention_factor=0.5) == 0.5

    def test_zero_mscale_keeps_the_denominator(self):
        # g(s, 0) = 1 exactly; the denominator stays: at s = e^4, 1 / (0.1 * 0.5 * 4 + 1) = 1 / 1.2
        assert yarn_attention_factor(math.e**4, mscale=0.0, mscale_all_dim=0.5) == pytest.approx(1 / 1.2, rel=1e-15)

    @given(st.floats(0.01, 1e4), st.floats(0.0, 5.0), st.floats(0.0, 5.0))
    def test_mpmath_ratio(self, s, m1, m2):
        with mpmath.workdps(30):

            def g(m):
                return 0.1 * m * mpmath.log(s) + 1 if s > 1 else mpmath.mpf(1)

            expected = float(g(m1) / g(m2))
        got = yarn_attention_factor(s, mscale=m1, mscale_all_dim=m2)
        assert got == pytest.approx(expected, rel=1e-14)
        if m1 >= m2:
            assert got >= 1.0


class TestDeepseekSoftmaxScale:
    def test_deepseek_v3_value(self):
        scale = deepseek_softmax_scale(192, 40.0, mscale_all_dim=1.0)
        factor = scale * math.sqrt(192)
        assert round(factor, 4) == 1.8739
        assert factor == pytest.approx((1 + 0.1 * math.log(40.0)) ** 2, rel=1e-15)

    def test_plain_when_no_mscale(self):
        assert deepseek_softmax_scale(64, 40.0, mscale_all_dim=0.0) == 1 / 8
        assert deepseek_softmax_scale(64, 1.0, mscale_all_dim=1.0) == 1 / 8

    @given(st.integers(1, 1024), st.floats(0.01, 1e4), st.floats(0.0, 5.0))
    def test_mpmath(self, head_dim, s, m):
        with mpmath.workdps(30):
            g = 0.1 * m * mpmath.log(s) + 1 if s > 1 else mpmath.mpf(1)
            expected = float(g**2 / mpmath.sqrt(head_dim))
        assert deepseek_softmax_scale(head_dim, s, mscale_all_dim=m) == pytest.approx(expected, rel=1e-14)


# --------------------------------------------------------------------------- LongRoPE


class TestLongrope:
    KW = dict(base=100.0, short_factor=[1.0, 2.0], long_factor=[1.0, 4.0], original_max_position_embeddings=4096)

    def test_boundary(self):
        np.testing.assert_allclose(longrope_frequencies(4, sequence_length=1, **self.KW), [1.0, 0.05], rtol=1e-15)
        np.testing.assert_allclose(longrope_frequencies(4, sequence_length=4096, **self.KW), [1.0, 0.05], rtol=1e-15)
        np.testing.assert_allclose(longrope_frequencies(4, sequence_length=4097, **self.KW), [1.0, 0.025], rtol=1e-15)

    @given(dims, bases, st.integers(1, 100_000), st.integers(1, 200_000), st.data())
    def test_divides_by_selected_factors(self, dim, base, l0, length, data):
        factor_lists = st.lists(st.floats(0.5, 100.0), min_size=dim // 2, max_size=dim // 2)
        short, long = data.draw(factor_lists), data.draw(factor_lists)
        got = longrope_frequencies(
            dim,
            base=base,
            short_factor=short,
            long_factor=long,
            original_max_position_embeddings=l0,
            sequence_length=length,
        )
        chosen = np.array(long if length > l0 else short)
        with mpmath.workdps(30):
            expected = as_float(t / mpmath.mpf(f) for t, f in zip(mp_theta(dim, base), chosen))
        np.testing.assert_allclose(got, expected, rtol=1e-13)


class TestLongropeAttentionFactor:
    def test_hand_values(self):
        # Phi-3-mini-128k: 131072 / 4096 = 32, ln 32 / ln 4096 = 5 / 12
        assert longrope_attention_factor(32.0, original_max_position_embeddings=4096) == pytest.approx(
            math.sqrt(17 / 12), rel=1e-15
        )
        assert longrope_attention_factor(1.0, original_max_position_embeddings=4096) == 1.0
        assert longrope_attention_factor(0.5, original_max_position_embeddings=4096) == 1.0
        # s = L0 gives sqrt(2)
        assert longrope_attention_factor(1024.0, original_max_position_embeddings=1024) == pytest.approx(math.sqrt(2))

    @given(st.floats(1.0, 1e6), st.integers(2, 10_000_000))
    def test_mpmath(self, s, l0):
        with mpmath.workdps(30):
            expected = float(mpmath.sqrt(1 + mpmath.log(s) / mpmath.log(l0))) if s > 1 else 1.0
        assert longrope_attention_factor(s, original_max_position_embeddings=l0) == pytest.approx(expected, rel=1e-14)


# --------------------------------------------------------------------------- Llama 3


def llama3_loop(dim, base, s, f_low, f_high, l0):
    """Meta's scalar loop (llama-models apply_scaling), in plain Python floats."""
    out = []
    for i in range(dim // 2):
        freq = 1.0 / base ** (2 * i / dim)
        wavelen = 2 * math.pi / freq
        if wavelen < l0 / f_high:
            out.append(freq)
        elif wavelen > l0 / f_low:
            out.append(freq / s)
        else:
            smooth = (l0 / wavelen - f_low) / (f_high - f_low)
            out.append((1 - smooth) * freq / s + smooth * freq)
    return np.array(out)


class TestLlama3:
    def test_defaults_are_llama31(self):
        got = llama3_scaled_frequencies(128)
        np.testing.assert_allclose(got, llama3_loop(128, 500_000.0, 8.0, 1.0, 4.0, 8192), rtol=1e-14)
        theta = rope_frequencies(128, base=500_000.0)
        wavelength = 2 * math.pi / theta
        np.testing.assert_array_equal(got[wavelength < 2048], theta[wavelength < 2048])
        np.testing.assert_allclose(got[wavelength > 8192], theta[wavelength > 8192] / 8, rtol=1e-15)
        assert (wavelength < 2048).sum() > 0 and (wavelength > 8192).sum() > 0
        assert ((wavelength >= 2048) & (wavelength <= 8192)).sum() > 0

    def test_hand_value_in_the_blend(self):
        gamma = (100 / (20 * math.pi) - 1) / 3
        got = llama3_scaled_frequencies(8, base=10_000.0, original_max_position_embeddings=100)
        np.testing.assert_allclose(got, [1.0, 0.1 * ((1 - gamma) / 8 + gamma), 0.01 / 8, 0.001 / 8], rtol=1e-14)

    @given(
        dims,
        bases,
        factors,
        st.floats(0.1, 8.0),
        st.floats(0.0, 8.0),
        st.integers(1, 1_000_000),
    )
    def test_scalar_loop(self, dim, base, s, f_low, extra, l0):
        f_high = f_low + extra
        if f_high == f_low:
            f_high = f_low + 1.0  # the loop divides by zero there; covered in test_equal_factors
        got = llama3_scaled_frequencies(
            dim,
            base=base,
            scaling_factor=s,
            low_freq_factor=f_low,
            high_freq_factor=f_high,
            original_max_position_embeddings=l0,
        )
        np.testing.assert_allclose(got, llama3_loop(dim, base, s, f_low, f_high, l0), rtol=1e-13)

    def test_continuous_across_the_branch_edges(self):
        dim, base = 4096, 500_000.0
        theta = rope_frequencies(dim, base=base)
        ratio = llama3_scaled_frequencies(dim, base=base) / theta
        wavelength = 2 * math.pi / theta
        assert ratio[0] == 1.0 and ratio[-1] == pytest.approx(1 / 8)
        assert np.all(np.diff(ratio) <= 1e-15)  # monotone
        # a jump at either edge would be of order 1 - 1/8; grid steps are ~0.0075 at most
        assert np.max(np.abs(np.diff(ratio))) < 0.01
        assert ((wavelength >= 2048) & (wavelength <= 8192)).sum() > 100

    def test_edge_wavelength_lands_in_blend_with_matching_value(self):
        # choose f_high so that L0 / f_high is exactly the wavelength 2 pi of pair 0
        l0 = 8192
        f_high = l0 / (2 * math.pi)
        assert l0 / f_high == 2 * math.pi
        got = llama3_scaled_frequencies(8, base=10_000.0, low_freq_factor=1.0, high_freq_factor=f_high)
        assert got[0] == pytest.approx(1.0, rel=1e-15)  # gamma = 1 at the high edge

    def test_equal_factors(self):
        # Llama 4 Scout: s = 16, low = high = 1 -> two branches only, no NaN
        got = llama3_scaled_frequencies(128, scaling_factor=16.0, low_freq_factor=1.0, high_freq_factor=1.0)
        theta = rope_frequencies(128, base=500_000.0)
        wavelength = 2 * math.pi / theta
        expected = np.where(wavelength < 8192, theta, theta / 16)
        np.testing.assert_array_equal(got, expected)
        # a wavelength exactly on the single edge is divided by the factor
        l0 = 8192
        f = l0 / (2 * math.pi)
        assert l0 / f == 2 * math.pi
        at_edge = llama3_scaled_frequencies(8, base=10_000.0, low_freq_factor=f, high_freq_factor=f, scaling_factor=4.0)
        assert at_edge[0] == 0.25 and np.all(np.isfinite(at_edge))


# --------------------------------------------------------------------------- errors

def case(function, *args, raises, match, **kwargs):
    """One error case: call ``function(*args, **kwargs)``, expect ``raises`` matching ``match``."""
    return function, args, kwargs, raises, match


ERRORS = [
    case(linear_scaled_frequencies, 7, scaling_factor=2.0,
         raises=ValueError, match=r"^dim must be a positive even integer, got dim=7$"),
    case(linear_scaled_frequencies, 8.0, scaling_factor=2.0,
         raises=TypeError, match=r"^dim must be a positive even integer"),
    case(linear_scaled_frequencies, 8, base=1.0, scaling_factor=2.0,
         raises=ValueError, match=r"^base must be a finite real number > 1.0, got base=1.0$"),
    case(linear_scaled_frequencies, 8, scaling_factor=0.5,
         raises=ValueError, match=r"^scaling_factor must be a finite real number >= 1.0, got scaling_factor=0.5$"),
    case(linear_scaled_frequencies, 8, scaling_factor="2",
         raises=TypeError, match=r"^scaling_factor must be a finite real number"),
    case(linear_scaled_frequencies, 8, scaling_factor=float("inf"),
         raises=ValueError, match=r"^scaling_factor must be a finite"),
    case(dynamic_linear_frequencies, 8, original_max_position_embeddings=0, sequence_length=5,
         raises=ValueError, match=r"^original_max_position_embeddings must be a positive integer, got original_max_position_embeddings=0$"),
    case(dynamic_linear_frequencies, 8, original_max_position_embeddings=10, sequence_length=0,
         raises=ValueError, match=r"^sequence_length must be a positive integer, got sequence_length=0$"),
    case(dynamic_linear_frequencies, 8, original_max_position_embeddings=10, sequence_length=5.0,
         raises=TypeError, match=r"^sequence_length must be a positive integer"),
    case(ntk_scaled_frequencies, 2, scaling_factor=2.0,
         raises=ValueError, match=r"^dim must be an even integer >= 4 \(NTK exponent dim/\(dim-2\)\), got dim=2$"),
    case(ntk_scaled_frequencies, 8, scaling_factor=0.0,
         raises=ValueError, match=r"^scaling_factor must be"),
    case(ntk_fixed_frequencies, 8, scaling_factor=2.0, mixed_b=0.0,
         raises=ValueError, match=r"^mixed_b must be a finite real number > 0.0, got mixed_b=0.0$"),
    case(ntk_fixed_frequencies, 8, scaling_factor=2.0, mixed_b="1",
         raises=TypeError, match=r"^mixed_b must be a finite real number"),
    case(ntk_fixed_frequencies, 9, scaling_factor=2.0,
         raises=ValueError, match=r"^dim must be a positive even integer, got dim=9$"),
    case(dynamic_ntk_frequencies, 2, scaling_factor=2.0, original_max_position_embeddings=4, sequence_length=8,
         raises=ValueError, match=r"^dim must be an even integer >= 4"),
    case(dynamic_ntk_frequencies, 8, scaling_factor=2.0, original_max_position_embeddings=4, sequence_length=-1,
         raises=ValueError, match=r"^sequence_length must be a positive integer, got sequence_length=-1$"),
    case(dynamic_ntk_frequencies, 8,
         base=-3.0, scaling_factor=2.0, original_max_position_embeddings=4, sequence_length=8,
         raises=ValueError, match=r"^base must be"),
    case(dynamic_ntk_sequence_length, [], original_max_position_embeddings=4,
         raises=ValueError, match=r"^positions must not be empty, got shape \(0,\)$"),
    case(dynamic_ntk_sequence_length, [-1, 3], original_max_position_embeddings=4,
         raises=ValueError, match=r"^positions must hold non-negative integers"),
    case(dynamic_ntk_sequence_length, [0.5], original_max_position_embeddings=4,
         raises=ValueError, match=r"^positions must hold non-negative integers, got a non-integer value"),
    case(dynamic_ntk_sequence_length, "abc", original_max_position_embeddings=4,
         raises=TypeError, match=r"^positions must be a numeric array"),
    case(dynamic_ntk_sequence_length, [3], original_max_position_embeddings=4, cached_length=3,
         raises=ValueError, match=r"^cached_length must be an integer in \[4, inf\], got cached_length=3$"),
    case(dynamic_ntk_sequence_length, [3], original_max_position_embeddings=4, reset=1,
         raises=TypeError, match=r"^reset must be True or False, got reset=1"),
    case(qwen_dynamic_ntk_frequencies, 6, original_max_position_embeddings=0, sequence_length=3,
         raises=ValueError, match=r"^original_max_position_embeddings must be a positive integer"),
    case(qwen_dynamic_ntk_frequencies, 2, original_max_position_embeddings=4, sequence_length=3,
         raises=ValueError, match=r"^dim must be an even integer >= 4"),
    case(yarn_correction_range, 8, original_max_position_embeddings=4096, beta_fast=1.0, beta_slow=32.0,
         raises=ValueError, match=r"^beta_fast must be greater than beta_slow, got beta_fast=1.0, beta_slow=32.0$"),
    case(yarn_correction_range, 8, original_max_position_embeddings=4096, beta_slow=0.0,
         raises=ValueError, match=r"^beta_slow must be a finite real number > 0.0, got beta_slow=0.0$"),
    case(yarn_correction_range, 8, original_max_position_embeddings=4096, truncate="yes",
         raises=TypeError, match=r"^truncate must be True or False, got truncate='yes'"),
    case(yarn_correction_range, 8, original_max_position_embeddings=4096, high_limit="d",
         raises=ValueError, match=r"^high_limit must be one of 'dim', 'half_dim', got high_limit='d'$"),
    case(yarn_correction_range, 8, original_max_position_embeddings=0,
         raises=ValueError, match=r"^original_max_position_embeddings must be a positive integer"),
    case(yarn_frequencies, 8, scaling_factor=0.9, original_max_position_embeddings=4096,
         raises=ValueError, match=r"^scaling_factor must be a finite real number >= 1.0, got scaling_factor=0.9$"),
    case(yarn_frequencies, 8, scaling_factor=2.0, original_max_position_embeddings=4096, extrapolation_factor=-1.0,
         raises=ValueError, match=r"^extrapolation_factor must be a finite real number >= 0.0, got extrapolation_factor=-1.0$"),
    case(yarn_frequencies, 8, scaling_factor=2.0, original_max_position_embeddings=4096, beta_fast=None,
         raises=TypeError, match=r"^beta_fast must be a finite real number"),
    case(yarn_frequencies, 0, scaling_factor=2.0, original_max_position_embeddings=4096,
         raises=ValueError, match=r"^dim must be a positive even integer, got dim=0$"),
    case(yarn_attention_factor, 0.0,
         raises=ValueError, match=r"^scaling_factor must be a finite real number > 0.0, got scaling_factor=0.0$"),
    case(yarn_attention_factor, 2.0, mscale=-1.0,
         raises=ValueError, match=r"^mscale must be a finite real number >= 0.0, got mscale=-1.0$"),
    case(yarn_attention_factor, 2.0, mscale_all_dim=-0.5,
         raises=ValueError, match=r"^mscale_all_dim must be a finite real number >= 0.0"),
    case(yarn_attention_factor, 2.0, attention_factor=0.0,
         raises=ValueError, match=r"^attention_factor must be a finite real number > 0.0, got attention_factor=0.0$"),
    case(yarn_attention_factor, 2.0, attention_factor="1",
         raises=TypeError, match=r"^attention_factor must be a finite real number"),
    case(deepseek_softmax_scale, 0, 40.0, mscale_all_dim=1.0,
         raises=ValueError, match=r"^head_dim must be a positive integer, got head_dim=0$"),
    case(deepseek_softmax_scale, 192, -1.0, mscale_all_dim=1.0,
         raises=ValueError, match=r"^scaling_factor must be a finite real number > 0.0"),
    case(deepseek_softmax_scale, 192, 40.0, mscale_all_dim=-1.0,
         raises=ValueError, match=r"^mscale_all_dim must be a finite real number >= 0.0"),
    case(longrope_frequencies, 4,
         short_factor=[1.0], long_factor=[1.0, 2.0], original_max_position_embeddings=4, sequence_length=3,
         raises=ValueError, match=r"^short_factor must have shape \(2,\) \(dim // 2\), got shape \(1,\)$"),
    case(longrope_frequencies, 4,
         short_factor=[1.0, 1.0], long_factor=[1.0, 0.0], original_max_position_embeddings=4, sequence_length=3,
         raises=ValueError, match=r"^long_factor must contain only positive values, got minimum 0.0$"),
    case(longrope_frequencies, 4,
         short_factor=[[1.0, 1.0]], long_factor=[1.0, 1.0], original_max_position_embeddings=4, sequence_length=3,
         raises=ValueError, match=r"^short_factor must be a 1-D array, got shape \(1, 2\)$"),
    case(longrope_frequencies, 4,
         short_factor=[1.0, np.nan], long_factor=[1.0, 1.0], original_max_position_embeddings=4, sequence_length=3,
         raises=ValueError, match=r"^short_factor must contain only finite values"),
    case(longrope_frequencies, 4,
         short_factor=None, long_factor=[1.0, 1.0], original_max_position_embeddings=4, sequence_length=3,
         raises=TypeError, match=r"^short_factor must be a numeric array"),
    case(longrope_frequencies, 4,
         short_factor=[1.0, 1.0], long_factor=[1.0, 1.0], original_max_position_embeddings=4, sequence_length=0,
         raises=ValueError, match=r"^sequence_length must be a positive integer"),
    case(longrope_attention_factor, 2.0, original_max_position_embeddings=1,
         raises=ValueError, match=r"^original_max_position_embeddings must be an integer in \[2, inf\], got original_max_position_embeddings=1$"),
    case(longrope_attention_factor, -2.0, original_max_position_embeddings=4096,
         raises=ValueError, match=r"^scaling_factor must be a finite real number > 0.0"),
    case(llama3_scaled_frequencies, 8, low_freq_factor=4.0, high_freq_factor=1.0,
         raises=ValueError, match=r"^high_freq_factor must be >= low_freq_factor, got high_freq_factor=1.0, low_freq_factor=4.0$"),
    case(llama3_scaled_frequencies, 8, low_freq_factor=0.0,
         raises=ValueError, match=r"^low_freq_factor must be a finite real number > 0.0, got low_freq_factor=0.0$"),
    case(llama3_scaled_frequencies, 8, high_freq_factor=None,
         raises=TypeError, match=r"^high_freq_factor must be a finite real number"),
    case(llama3_scaled_frequencies, 8, scaling_factor=0.5,
         raises=ValueError, match=r"^scaling_factor must be a finite real number >= 1.0"),
    case(llama3_scaled_frequencies, 8, original_max_position_embeddings=8192.0,
         raises=TypeError, match=r"^original_max_position_embeddings must be a positive integer"),
    case(llama3_scaled_frequencies, 3,
         raises=ValueError, match=r"^dim must be a positive even integer, got dim=3$"),
]


@pytest.mark.parametrize(
    "function, args, kwargs, exception, pattern",
    ERRORS,
    ids=[f"{e[0].__name__}-{i}" for i, e in enumerate(ERRORS)],
)
def test_error_messages(function, args, kwargs, exception, pattern):
    with pytest.raises(exception, match=pattern):
        function(*args, **kwargs)


def test_options_are_keyword_only_and_data_positional_only():
    with pytest.raises(TypeError):
        linear_scaled_frequencies(8, 10_000.0, 2.0)  # type: ignore[misc]
    with pytest.raises(TypeError):
        linear_scaled_frequencies(dim=8, scaling_factor=2.0)  # type: ignore[call-arg]
