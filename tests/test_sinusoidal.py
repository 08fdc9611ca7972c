"""Sinusoidal absolute encoding.

Expected values come from hand arithmetic, from second formulations written
here (the paper's literal division form, tensor2tensor's exp/log form, the
shift-as-rotation identity) and from mpmath at 40 significant digits.
"""

import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from posref import sinusoidal_encoding

EPS = np.finfo(np.float64).eps

even_dims = st.integers(1, 24).map(lambda h: 2 * h)
bases = st.floats(1.5, 1e5)
layouts = st.sampled_from(["interleaved", "concat"])
denominators = st.sampled_from(["dim", "half_dim_minus_one"])


def _omega(dim, base, freq_denominator):
    """Frequencies written out with Python floats, one at a time."""
    half = dim // 2
    if freq_denominator == "dim":
        return [math.pow(base, -2 * i / dim) for i in range(half)]
    return [math.pow(base, -i / max(half - 1, 1)) for i in range(half)]


def _interleaved_from_concat(dim):
    """Channel order that turns the concat layout into the interleaved one."""
    half = dim // 2
    return [c for i in range(half) for c in (i, half + i)]


# --------------------------------------------------------------------------
# sinusoidal_encoding: values checked by hand
# --------------------------------------------------------------------------


class TestSinusoidalKnownValues:
    @pytest.mark.parametrize("layout", ["interleaved", "concat"])
    @pytest.mark.parametrize("freq_denominator", ["dim", "half_dim_minus_one"])
    def test_position_zero_is_sin_zero_cos_one(self, layout, freq_denominator):
        pe = sinusoidal_encoding([0], 8, layout=layout, freq_denominator=freq_denominator)
        expected = [0, 1, 0, 1, 0, 1, 0, 1] if layout == "interleaved" else [0, 0, 0, 0, 1, 1, 1, 1]
        np.testing.assert_array_equal(pe, [expected])

    def test_dim4_base100_position1(self):
        # omega = [1, 100**(-1/2)] = [1, 0.1]; sin/cos values from tables.
        sin1, cos1 = 0.8414709848078965, 0.5403023058681398
        sin01, cos01 = 0.09983341664682815, 0.9950041652780258
        pe = sinusoidal_encoding(1, 4, base=100.0)
        np.testing.assert_allclose(pe, [sin1, cos1, sin01, cos01], rtol=0, atol=1e-15)
        pe = sinusoidal_encoding(1, 4, base=100.0, layout="concat")
        np.testing.assert_allclose(pe, [sin1, sin01, cos1, cos01], rtol=0, atol=1e-15)

    @staticmethod
    def _recovered_frequencies(dim, **options):
        # At position 1 the angle of pair i is omega_i itself (all < pi).
        pe = sinusoidal_encoding(1, dim, layout="concat", **options)
        return np.arctan2(pe[: dim // 2], pe[dim // 2 :])

    def test_frequencies_paper_denominator(self):
        # 10000 ** (-2i/8) = 10 ** (-i)
        omega = self._recovered_frequencies(8, base=10_000.0, freq_denominator="dim")
        np.testing.assert_allclose(omega, [1, 0.1, 0.01, 0.001], rtol=1e-14)

    def test_frequencies_t2t_denominator(self):
        # 1000 ** (-i/(4-1)) = 10 ** (-i)
        omega = self._recovered_frequencies(8, base=1000.0, freq_denominator="half_dim_minus_one")
        np.testing.assert_allclose(omega, [1, 0.1, 0.01, 0.001], rtol=1e-14)

    def test_lowest_frequency_dim512(self):
        # Paper: 10000 ** (-510/512) = 10 ** (-3.984375); t2t/fairseq: exactly 1e-4.
        paper = self._recovered_frequencies(512, freq_denominator="dim")[-1]
        t2t = self._recovered_frequencies(512, freq_denominator="half_dim_minus_one")[-1]
        assert paper == pytest.approx(10**-3.984375, rel=1e-12)
        assert paper == pytest.approx(1.0366e-4, rel=1e-4)
        assert t2t == pytest.approx(1e-4, rel=1e-12)

    def test_dim2_single_frequency_is_one_in_both_conventions(self):
        for freq_denominator in ("dim", "half_dim_minus_one"):
            pe = sinusoidal_encoding([0.5, 3.0], 2, freq_denominator=freq_denominator)
            expected = [[math.sin(0.5), math.cos(0.5)], [math.sin(3.0), math.cos(3.0)]]
            np.testing.assert_allclose(pe, expected, rtol=0, atol=2e-16)

    def test_position_offset_fairseq(self):
        # fairseq with padding_idx=1 encodes the first token at position 2.
        fairseq = dict(layout="concat", freq_denominator="half_dim_minus_one")
        pe = sinusoidal_encoding([0, 1, 2], 16, position_offset=2, **fairseq)
        ref = sinusoidal_encoding([2, 3, 4], 16, **fairseq)
        np.testing.assert_array_equal(pe, ref)

    def test_shape_and_dtype(self):
        assert sinusoidal_encoding(3, 6).shape == (6,)
        out = sinusoidal_encoding(np.zeros((2, 3), dtype=np.int32), 6)
        assert out.shape == (2, 3, 6) and out.dtype == np.float64
        assert sinusoidal_encoding(np.zeros((0,)), 4).shape == (0, 4)

    def test_negative_and_fractional_positions(self):
        pe = sinusoidal_encoding([-2.5], 4, base=100.0)
        np.testing.assert_allclose(
            pe, [[math.sin(-2.5), math.cos(-2.5), math.sin(-0.25), math.cos(-0.25)]], rtol=0, atol=1e-15
        )


# --------------------------------------------------------------------------
# sinusoidal_encoding: independent formulations
# --------------------------------------------------------------------------


def _paper_literal(positions, dim, base):
    """PE(pos, 2i) = sin(pos / base^(2i/d)), PE(pos, 2i+1) = cos(pos / base^(2i/d)), channel by channel."""
    rows = []
    for pos in positions:
        row = []
        for j in range(dim):
            wavelength = base ** ((j - j % 2) / dim)
            row.append(math.sin(pos / wavelength) if j % 2 == 0 else math.cos(pos / wavelength))
        rows.append(row)
    return np.array(rows)


def _t2t_form(positions, dim, base):
    """tensor2tensor get_timing_signal_1d: inverse timescales through exp and log, [sin | cos]."""
    half = dim // 2
    increment = math.log(base / 1.0) / max(half - 1, 1)
    inv_timescales = [math.exp(-i * increment) for i in range(half)]
    return np.array(
        [[math.sin(p * w) for w in inv_timescales] + [math.cos(p * w) for w in inv_timescales] for p in positions]
    )


class TestSinusoidalIndependent:
    positions = [0, 1, 2, 5, 17, 100, 511, 999]

    @pytest.mark.parametrize("dim, base", [(4, 100.0), (8, 10_000.0), (64, 10_000.0), (512, 10_000.0), (10, 500.0)])
    def test_paper_literal_division_form(self, dim, base):
        expected = _paper_literal(self.positions, dim, base)
        np.testing.assert_allclose(sinusoidal_encoding(self.positions, dim, base=base), expected, rtol=0, atol=1e-12)

    @pytest.mark.parametrize("dim, base", [(4, 100.0), (8, 10_000.0), (64, 10_000.0), (512, 10_000.0), (2, 10.0)])
    def test_tensor2tensor_form(self, dim, base):
        expected = _t2t_form(self.positions, dim, base)
        options = dict(base=base, layout="concat", freq_denominator="half_dim_minus_one")
        got = sinusoidal_encoding(self.positions, dim, **options)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-11)

    @pytest.mark.parametrize("freq_denominator", ["dim", "half_dim_minus_one"])
    @pytest.mark.parametrize("dim", [8, 64])
    def test_mpmath_up_to_one_million(self, dim, freq_denominator):
        base = 10_000.0
        positions = [0, 1, 3, 1000, 12_345.75, 65_537, 999_999, 1_000_000]
        got = sinusoidal_encoding(positions, dim, base=base, layout="concat", freq_denominator=freq_denominator)
        half = dim // 2
        denominator = Fraction(dim, 2) if freq_denominator == "dim" else Fraction(max(half - 1, 1))
        with mpmath.workdps(40):
            for row, pos in zip(got, positions):
                for i in range(half):
                    exponent = Fraction(i) / denominator
                    omega = mpmath.power(mpmath.mpf(base), -mpmath.mpf(exponent.numerator) / exponent.denominator)
                    angle = mpmath.mpf(pos) * omega
                    # float64 error model: omega and the product are each rounded
                    # (the exponent's rounding is amplified by ln(base)), then sin/cos.
                    bound = 2 * EPS * (1 + float(angle) * (2 + math.log(base)))
                    assert abs(row[i] - float(mpmath.sin(angle))) <= bound, (pos, i)
                    assert abs(row[half + i] - float(mpmath.cos(angle))) <= bound, (pos, i)


# --------------------------------------------------------------------------
# sinusoidal_encoding: properties
# --------------------------------------------------------------------------


class TestSinusoidalProperties:
    @given(
        dim=even_dims,
        base=bases,
        layout=layouts,
        freq_denominator=denominators,
        shift=st.integers(-500, 500),
        positions=hnp.arrays(np.float64, st.integers(1, 6), elements=st.floats(0, 5000)),
    )
    def test_shift_is_a_fixed_block_rotation(self, dim, base, layout, freq_denominator, shift, positions):
        # sin(a + b) = sin a cos b + cos a sin b ; cos(a + b) = cos a cos b - sin a sin b
        half = dim // 2
        rotation = np.zeros((dim, dim))
        for i, w in enumerate(_omega(dim, base, freq_denominator)):
            s, c = (2 * i, 2 * i + 1) if layout == "interleaved" else (i, half + i)
            cb, sb = math.cos(shift * w), math.sin(shift * w)
            rotation[s, s], rotation[s, c] = cb, sb  # new sin from (sin, cos)
            rotation[c, s], rotation[c, c] = -sb, cb  # new cos from (sin, cos)
        options = dict(base=base, layout=layout, freq_denominator=freq_denominator)
        pe = sinusoidal_encoding(positions, dim, **options)
        shifted = sinusoidal_encoding(positions + shift, dim, **options)
        np.testing.assert_allclose(shifted, pe @ rotation.T, rtol=0, atol=1e-9)

    @given(
        dim=even_dims,
        base=bases,
        freq_denominator=denominators,
        positions=hnp.arrays(np.float64, hnp.array_shapes(max_dims=3, max_side=4), elements=st.floats(-1e6, 1e6)),
    )
    def test_layouts_are_a_channel_permutation(self, dim, base, freq_denominator, positions):
        options = dict(base=base, freq_denominator=freq_denominator)
        concat = sinusoidal_encoding(positions, dim, layout="concat", **options)
        interleaved = sinusoidal_encoding(positions, dim, layout="interleaved", **options)
        np.testing.assert_array_equal(concat[..., _interleaved_from_concat(dim)], interleaved)

    @given(
        dim=even_dims,
        layout=layouts,
        offset=st.integers(-1000, 1000),
        positions=hnp.arrays(np.int64, st.integers(0, 5), elements=st.integers(0, 10**6)),
    )
    def test_position_offset_adds_to_positions(self, dim, layout, offset, positions):
        got = sinusoidal_encoding(positions, dim, layout=layout, position_offset=offset)
        np.testing.assert_array_equal(got, sinusoidal_encoding(positions + offset, dim, layout=layout))

    @given(dim=even_dims, base=bases, positions=hnp.arrays(np.float64, 4, elements=st.floats(-1e5, 1e5)))
    def test_every_pair_on_the_unit_circle(self, dim, base, positions):
        pe = sinusoidal_encoding(positions, dim, base=base)
        np.testing.assert_allclose(pe[..., 0::2] ** 2 + pe[..., 1::2] ** 2, 1.0, rtol=0, atol=8 * EPS)


class TestSinusoidalErrors:
    def test_odd_dim(self):
        with pytest.raises(ValueError, match=r"^dim must be a positive even integer, got dim=7$"):
            sinusoidal_encoding([0], 7)

    @pytest.mark.parametrize("dim", [0, -2])
    def test_non_positive_dim(self, dim):
        with pytest.raises(ValueError, match=rf"^dim must be a positive even integer, got dim={dim}$"):
            sinusoidal_encoding([0], dim)

    @pytest.mark.parametrize("dim", [8.0, "8", None, True])
    def test_dim_type(self, dim):
        with pytest.raises(TypeError, match=r"^dim must be a positive even integer, got dim="):
            sinusoidal_encoding([0], dim)

    @pytest.mark.parametrize("base", [1.0, 0.5, -10.0, float("inf"), float("nan")])
    def test_base_value(self, base):
        with pytest.raises(ValueError, match=r"^base must be a finite real number > 1.0, got base="):
            sinusoidal_encoding([0], 4, base=base)

    @pytest.mark.parametrize("base", ["10000", None, True])
    def test_base_type(self, base):
        with pytest.raises(TypeError, match=r"^base must be a finite real number > 1.0, got base="):
            sinusoidal_encoding([0], 4, base=base)

    def test_layout(self):
        with pytest.raises(ValueError, match=r"^layout must be one of 'interleaved', 'concat', got layout='half'$"):
            sinusoidal_encoding([0], 4, layout="half")

    def test_freq_denominator(self):
        with pytest.raises(
            ValueError, match=r"^freq_denominator must be one of 'dim', 'half_dim_minus_one', got freq_denominator=2$"
        ):
            sinusoidal_encoding([0], 4, freq_denominator=2)

    @pytest.mark.parametrize("offset", [1.5, "2", None])
    def test_position_offset_type(self, offset):
        with pytest.raises(TypeError, match=r"^position_offset must be an integer, got position_offset="):
            sinusoidal_encoding([0], 4, position_offset=offset)

    @pytest.mark.parametrize("bad", [float("nan"), float("inf")])
    def test_non_finite_positions(self, bad):
        with pytest.raises(ValueError, match=r"^positions must contain only finite values"):
            sinusoidal_encoding([0.0, bad], 4)

    @pytest.mark.parametrize("positions", ["0, 1", None, [True, False], [1j]])
    def test_positions_type(self, positions):
        with pytest.raises(TypeError, match=r"^positions must be a (real )?numeric array"):
            sinusoidal_encoding(positions, 4)

    def test_options_are_keyword_only(self):
        with pytest.raises(TypeError):
            sinusoidal_encoding([0], 4, 100.0)
