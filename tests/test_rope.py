"""Tests of posref.rope: frequencies, angles, cos/sin tables and rotations.

Expected values come from hand arithmetic, from a second formulation of the
same formula (complex multiplication, explicit rotation matrices, plain
Python loops), or from mpmath at 50 significant digits; never from running
the function under test.
"""

import math

import mpmath
import numpy as np
import pytest
import scipy.linalg
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from oracles import rotate_pairs_complex as _rope_complex  # RoPE as the complex product (x_a + i x_b) exp(i phi)

from posref import apply_rope, apply_rotary, rope_angles, rope_cos_sin, rope_frequencies
from posref.rope import rotated_channels

EPS = np.finfo(np.float64).eps

# zero or moderate magnitudes: keeps squared norms away from underflow
finite = st.one_of(st.just(0.0), st.floats(1e-6, 100.0), st.floats(-100.0, -1e-6))
even_dims = st.integers(1, 12).map(lambda k: 2 * k)
bases = st.sampled_from([10.0, 100.0, 10_000.0, 500_000.0, 1_000_000.0])


# --------------------------------------------------------------------------
# independent formulations


def _theta(dim, base):
    """theta_i = base^(-2i/dim), one Python float at a time."""
    return [math.pow(base, -2.0 * i / dim) for i in range(dim // 2)]


def _rotation_matrix(angles, layout):
    """The D x D matrix that rotates every pair by its angle (D = 2 len(angles))."""
    half = len(angles)
    if layout == "interleaved":
        blocks = [np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]) for a in angles]
        return scipy.linalg.block_diag(*blocks)
    r = np.zeros((2 * half, 2 * half))
    for i, a in enumerate(angles):
        c, s = math.cos(a), math.sin(a)
        r[i, i], r[i, i + half] = c, -s
        r[i + half, i], r[i + half, i + half] = s, c
    return r


def _rotate_half(x):
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def _rotate_every_two(x):
    out = np.empty_like(x)
    out[..., 0::2], out[..., 1::2] = -x[..., 1::2], x[..., 0::2]
    return out


def _interleaved_to_half(dim):
    """Channel order that turns an interleaved vector into its half-layout form."""
    return np.concatenate([np.arange(0, dim, 2), np.arange(1, dim, 2)])


def _mp_theta(i, dim, base):
    return mpmath.power(mpmath.mpf(base), -mpmath.mpf(2 * i) / dim)


# --------------------------------------------------------------------------


class TestRopeFrequencies:
    def test_hand_values(self):
        np.testing.assert_allclose(rope_frequencies(8), [1.0, 0.1, 0.01, 0.001], rtol=1e-15)
        np.testing.assert_array_equal(rope_frequencies(2, base=3.0), [1.0])

    def test_exact_powers_of_two(self):
        # 16^(-2i/8) = 2^(-i): every value is a binary fraction, exact in float64
        np.testing.assert_array_equal(rope_frequencies(8, base=16.0), [1.0, 0.5, 0.25, 0.125])

    def test_dtype_and_shape(self):
        theta = rope_frequencies(128, base=500_000.0)
        assert theta.dtype == np.float64 and theta.shape == (64,)
        assert np.all(np.diff(theta) < 0)

    @pytest.mark.parametrize("dim,base", [(64, 10_000.0), (128, 500_000.0), (6, 1e6)])
    def test_against_mpmath(self, dim, base):
        with mpmath.workdps(50):
            expected = [_mp_theta(i, dim, base) for i in range(dim // 2)]
            got = rope_frequencies(dim, base=base)
            rel = max(abs((mpmath.mpf(g) - e) / e) for g, e in zip(got, expected))
        # the exponent -2i/dim is rounded before pow: error <= ln(base) * eps + pow's own
        assert rel <= (math.log(base) + 2) * EPS

    @pytest.mark.parametrize(
        "kwargs,error,match",
        [
            ({"dim": 7}, ValueError, r"^dim must be a positive even integer, got dim=7$"),
            ({"dim": 0}, ValueError, r"^dim must be a positive even integer, got dim=0$"),
            ({"dim": 8.0}, TypeError, r"^dim must be a positive even integer, got dim=8.0 of type float$"),
            ({"dim": 8, "base": 1.0}, ValueError, r"^base must be a finite real number > 1.0, got base=1.0$"),
            ({"dim": 8, "base": "1e4"}, TypeError, r"^base must be a finite real number > 1.0, got base='1e4'"),
        ],
    )
    def test_errors(self, kwargs, error, match):
        dim = kwargs.pop("dim")
        with pytest.raises(error, match=match):
            rope_frequencies(dim, **kwargs)


class TestRopeAngles:
    def test_hand_values(self):
        np.testing.assert_allclose(
            rope_angles([0, 1, 2], 4, base=100.0), [[0.0, 0.0], [1.0, 0.1], [2.0, 0.2]], rtol=1e-15
        )

    def test_shape_and_fractional_positions(self):
        out = rope_angles(np.full((2, 3), 0.5), 6)
        assert out.shape == (2, 3, 3) and out.dtype == np.float64
        np.testing.assert_allclose(out[..., 0], 0.5, rtol=0)
        assert rope_angles(np.zeros((0,)), 4).shape == (0, 2)

    @pytest.mark.parametrize("base", [10_000.0, 500_000.0])
    def test_against_mpmath_long_context(self, base):
        dim = 128
        positions = [1, 4_095, 65_537, 131_071, 999_999, 1_000_000]
        got = rope_angles(positions, dim, base=base)
        with mpmath.workdps(50):
            for row, p in zip(got, positions):
                for i in range(dim // 2):
                    exact = p * _mp_theta(i, dim, base)
                    assert abs(mpmath.mpf(row[i]) - exact) <= (math.log(base) + 3) * EPS * exact

    @pytest.mark.parametrize(
        "args,error,match",
        [
            (([-1, 2], 4), ValueError, r"^positions must hold non-negative values, got minimum -1.0$"),
            (([np.nan], 4), ValueError, r"^positions must contain only finite values"),
            ((["a"], 4), TypeError, r"^positions must be a real numeric array"),
            (([1], 5), ValueError, r"^dim must be a positive even integer, got dim=5$"),
        ],
    )
    def test_errors(self, args, error, match):
        with pytest.raises(error, match=match):
            rope_angles(*args)


class TestRopeCosSin:
    def test_hand_values_half(self):
        cos, sin = rope_cos_sin([1], 4, base=100.0)
        c1, c2, s1, s2 = math.cos(1.0), math.cos(0.1), math.sin(1.0), math.sin(0.1)
        np.testing.assert_allclose(cos, [[c1, c2, c1, c2]], rtol=1e-15)
        np.testing.assert_allclose(sin, [[s1, s2, s1, s2]], rtol=1e-15)

    def test_hand_values_interleaved(self):
        cos, sin = rope_cos_sin([0, 1], 4, base=100.0, layout="interleaved")
        c1, c2, s1, s2 = math.cos(1.0), math.cos(0.1), math.sin(1.0), math.sin(0.1)
        np.testing.assert_allclose(cos, [[1, 1, 1, 1], [c1, c1, c2, c2]], rtol=1e-15)
        np.testing.assert_allclose(sin, [[0, 0, 0, 0], [s1, s1, s2, s2]], rtol=1e-15, atol=0)

    def test_shape(self):
        cos, sin = rope_cos_sin(np.arange(6).reshape(2, 3), 8)
        assert cos.shape == sin.shape == (2, 3, 8)
        assert cos.dtype == sin.dtype == np.float64

    @pytest.mark.parametrize("layout", ["half", "interleaved"])
    def test_layouts_are_permutations(self, layout):
        cos_h, sin_h = rope_cos_sin(np.arange(5), 8, layout="half")
        cos_i, sin_i = rope_cos_sin(np.arange(5), 8, layout="interleaved")
        perm = _interleaved_to_half(8)
        np.testing.assert_array_equal(cos_i[..., perm], cos_h)
        np.testing.assert_array_equal(sin_i[..., perm], sin_h)

    def test_against_mpmath_long_context(self):
        dim, base = 64, 10_000.0
        positions = [65_536, 500_001, 1_000_000]
        cos, sin = rope_cos_sin(positions, dim, base=base)
        with mpmath.workdps(50):
            for p, c_row, s_row in zip(positions, cos, sin):
                for i in range(dim // 2):
                    phi = p * _mp_theta(i, dim, base)
                    # the float64 angle is off by a few ulp of phi; cos/sin inherit that absolute error
                    tol = (math.log(base) + 3) * EPS * float(phi) + 2 * EPS
                    for j in (i, i + dim // 2):
                        assert abs(mpmath.mpf(c_row[j]) - mpmath.cos(phi)) <= tol
                        assert abs(mpmath.mpf(s_row[j]) - mpmath.sin(phi)) <= tol

    @given(positions=hnp.arrays(np.float64, st.integers(0, 6), elements=st.floats(0, 1e5)), dim=even_dims)
    def test_pythagoras(self, positions, dim):
        cos, sin = rope_cos_sin(positions, dim)
        np.testing.assert_allclose(cos**2 + sin**2, 1.0, rtol=0, atol=4 * EPS)

    @pytest.mark.parametrize(
        "kwargs,error,match",
        [
            ({"layout": "neox"}, ValueError, r"^layout must be one of 'half', 'interleaved', got layout='neox'$"),
            ({"base": 0.5}, ValueError, r"^base must be a finite real number > 1.0, got base=0.5$"),
        ],
    )
    def test_errors(self, kwargs, error, match):
        with pytest.raises(error, match=match):
            rope_cos_sin([0, 1], 4, **kwargs)

    def test_error_positions(self):
        with pytest.raises(ValueError, match=r"^positions must hold non-negative values"):
            rope_cos_sin([-3], 4)

    def test_error_dim(self):
        with pytest.raises(ValueError, match=r"^dim must be a positive even integer, got dim=3$"):
            rope_cos_sin([0], 3)


class TestApplyRotary:
    def test_quarter_turn(self):
        np.testing.assert_allclose(apply_rotary([1.0, 0.0], [np.pi / 2]), [0.0, 1.0], atol=1e-16)

    @pytest.mark.parametrize("layout", ["half", "interleaved"])
    def test_against_rotation_matrix(self, layout):
        rng = np.random.default_rng(11)
        x = rng.standard_normal(8)
        angles = rng.uniform(-10, 10, 4)
        expected = _rotation_matrix(angles, layout) @ x
        np.testing.assert_allclose(apply_rotary(x, angles, layout=layout), expected, rtol=1e-14, atol=1e-14)

    def test_broadcasts_angles(self):
        x = np.ones((3, 2, 4))
        out = apply_rotary(x, np.zeros(2))
        np.testing.assert_array_equal(out, x)

    @pytest.mark.parametrize(
        "x,angles,match",
        [
            (np.ones(3), [0.0], r"^x must have an even, non-zero last dimension \(D\), got shape \(3,\)$"),
            (np.ones(4), [0.0], r"^angles must have last dimension D/2 = 2 to match x of shape \(4,\)"),
            (np.ones((3, 4)), np.zeros((2, 2)), r"^angles of shape \(2, 2\) does not broadcast against x"),
        ],
    )
    def test_errors(self, x, angles, match):
        with pytest.raises(ValueError, match=match):
            apply_rotary(x, angles)

    def test_error_layout(self):
        with pytest.raises(ValueError, match=r"^layout must be one of 'half', 'interleaved'"):
            apply_rotary(np.ones(2), [0.0], layout="gptj")


class TestApplyRope:
    # ---- hand-checkable values

    def test_one_radian(self):
        # D = 2: one pair, theta_0 = 1, so position 1 is a turn by exactly 1 rad
        np.testing.assert_allclose(apply_rope([1.0, 0.0], 1), [math.cos(1.0), math.sin(1.0)], rtol=1e-15)
        np.testing.assert_allclose(apply_rope([0.0, 1.0], 2), [-math.sin(2.0), math.cos(2.0)], rtol=1e-15)

    def test_position_zero_is_identity(self):
        x = np.arange(1.0, 9.0)
        np.testing.assert_array_equal(apply_rope(x, 0), x)

    def test_hand_values_both_layouts(self):
        # theta = (1, 0.01) for D = 4, base 10000; x = ones
        c1, s1, c2, s2 = math.cos(1.0), math.sin(1.0), math.cos(0.01), math.sin(0.01)
        half = apply_rope(np.ones((1, 4)), [1], layout="half")
        inter = apply_rope(np.ones((1, 4)), [1], layout="interleaved")
        np.testing.assert_allclose(half, [[c1 - s1, c2 - s2, c1 + s1, c2 + s2]], rtol=1e-15)
        np.testing.assert_allclose(inter, [[c1 - s1, c1 + s1, c2 - s2, c2 + s2]], rtol=1e-15)

    # ---- independent re-derivations

    @pytest.mark.parametrize("layout", ["half", "interleaved"])
    @pytest.mark.parametrize("base", [10_000.0, 500_000.0])
    def test_against_complex_product(self, layout, base):
        rng = np.random.default_rng(3)
        x = rng.standard_normal((2, 3, 7, 16))
        positions = np.array([0, 1, 2, 100, 4_096, 70_000, 1_000_000])
        angles = np.array([[p * t for t in _theta(16, base)] for p in positions])
        expected = _rope_complex(x, angles, layout)
        got = apply_rope(x, positions, base=base, layout=layout)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-13 * np.abs(x).max())

    @pytest.mark.parametrize("layout", ["half", "interleaved"])
    def test_against_rotation_matrix(self, layout):
        rng = np.random.default_rng(5)
        dim = 12
        x = rng.standard_normal((9, dim))
        positions = rng.integers(0, 50_000, size=9)
        for row, p, got in zip(x, positions, apply_rope(x, positions, layout=layout)):
            expected = _rotation_matrix([p * t for t in _theta(dim, 10_000.0)], layout) @ row
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-11)

    @pytest.mark.parametrize("layout", ["half", "interleaved"])
    def test_hf_cos_sin_form(self, layout):
        rng = np.random.default_rng(7)
        x = rng.standard_normal((2, 4, 5, 8))
        positions = np.arange(5) + 1_000
        cos, sin = rope_cos_sin(positions, 8, layout=layout)
        rot = _rotate_half if layout == "half" else _rotate_every_two
        np.testing.assert_allclose(
            apply_rope(x, positions, layout=layout), x * cos + rot(x) * sin, rtol=0, atol=1e-14
        )

    def test_unit_vectors_against_mpmath(self):
        dim, base = 8, 10_000.0
        positions = [123_457, 1_000_000]
        x = np.eye(dim)  # row k is the unit vector e_k
        with mpmath.workdps(50):
            for p in positions:
                got = apply_rope(x, [p], layout="interleaved")
                for i in range(dim // 2):
                    phi = p * _mp_theta(i, dim, base)
                    tol = (math.log(base) + 3) * EPS * float(phi) + 2 * EPS
                    # e_{2i} -> (cos, sin) on channels (2i, 2i+1)
                    assert abs(mpmath.mpf(got[2 * i, 2 * i]) - mpmath.cos(phi)) <= tol
                    assert abs(mpmath.mpf(got[2 * i, 2 * i + 1]) - mpmath.sin(phi)) <= tol

    # ---- properties

    @given(data=st.data(), dim=even_dims, base=bases, layout=st.sampled_from(["half", "interleaved"]))
    def test_norm_preserved(self, data, dim, base, layout):
        x = data.draw(hnp.arrays(np.float64, (3, dim), elements=finite))
        positions = data.draw(hnp.arrays(np.float64, (3,), elements=st.floats(0, 1e6)))
        out = apply_rope(x, positions, base=base, layout=layout)
        np.testing.assert_allclose(
            np.linalg.norm(out, axis=-1), np.linalg.norm(x, axis=-1), rtol=1e-13
        )

    @given(
        data=st.data(),
        dim=even_dims,
        layout=st.sampled_from(["half", "interleaved"]),
        m=st.integers(0, 20_000),
        n=st.integers(0, 20_000),
        shift=st.integers(0, 20_000),
    )
    def test_score_depends_only_on_offset(self, data, dim, layout, m, n, shift):
        q = data.draw(hnp.arrays(np.float64, dim, elements=finite))
        k = data.draw(hnp.arrays(np.float64, dim, elements=finite))
        score = apply_rope(q, m, layout=layout) @ apply_rope(k, n, layout=layout)
        shifted = apply_rope(q, m + shift, layout=layout) @ apply_rope(k, n + shift, layout=layout)
        # angles reach 4e4 rad; each carries an error of a few ulp of its size
        tol = 1e-10 * dim * np.abs(q).max() * np.abs(k).max()
        assert abs(score - shifted) <= tol

    @given(data=st.data(), dim=even_dims, base=bases)
    def test_interleaved_is_permuted_half(self, data, dim, base):
        x = data.draw(hnp.arrays(np.float64, (2, dim), elements=finite))
        positions = data.draw(hnp.arrays(np.float64, (2,), elements=st.floats(0, 1e6)))
        perm = _interleaved_to_half(dim)
        inter = apply_rope(x, positions, base=base, layout="interleaved")
        half = apply_rope(x[..., perm], positions, base=base, layout="half")
        np.testing.assert_array_equal(inter[..., perm], half)

    @given(data=st.data(), dim=even_dims, layout=st.sampled_from(["half", "interleaved"]))
    def test_inverse_rotation(self, data, dim, layout):
        # R(m) then R(-m): turning by the offset n - m = -m brings x back
        x = data.draw(hnp.arrays(np.float64, dim, elements=finite))
        m = data.draw(st.integers(0, 10_000))
        angles = -np.asarray(rope_angles(m, dim))
        back = apply_rotary(apply_rope(x, m, layout=layout), angles, layout=layout)
        np.testing.assert_allclose(back, x, rtol=0, atol=1e-11 * np.abs(x).max())

    # ---- shapes, broadcasting, offsets

    def test_broadcasting_rule(self):
        rng = np.random.default_rng(13)
        x = rng.standard_normal((2, 3, 4, 8))  # (B, H, T, D)
        per_batch = np.array([[[0, 1, 2, 3]], [[10, 11, 12, 13]]])  # (B, 1, T)
        out = apply_rope(x, per_batch)
        for b in range(2):
            for h in range(3):
                np.testing.assert_array_equal(out[b, h], apply_rope(x[b, h], per_batch[b, 0]))
        shared = apply_rope(x, np.arange(4))  # (T,)
        np.testing.assert_array_equal(shared[1, 2], apply_rope(x[1, 2], np.arange(4)))

    def test_empty_sequence(self):
        out = apply_rope(np.zeros((2, 0, 8)), np.zeros((0,)))
        assert out.shape == (2, 0, 8) and out.dtype == np.float64

    def test_position_offset(self):
        rng = np.random.default_rng(17)
        x = rng.standard_normal((2, 9, 8))
        positions = np.arange(9)
        full = apply_rope(x, positions)
        prefix = apply_rope(x[:, :6], positions[:6])
        suffix = apply_rope(x[:, 6:], np.arange(3), position_offset=6)  # decoding with 6 cached tokens
        np.testing.assert_array_equal(np.concatenate([prefix, suffix], axis=1), full)
        np.testing.assert_array_equal(
            apply_rope(x, positions, position_offset=2.5), apply_rope(x, positions + 2.5)
        )

    def test_integer_input_gives_float64(self):
        out = apply_rope(np.ones((2, 4), dtype=np.int32), np.array([0, 1], dtype=np.uint8))
        assert out.dtype == np.float64

    # ---- partial rotary

    @pytest.mark.parametrize("layout", ["half", "interleaved"])
    def test_partial_first(self, layout):
        rng = np.random.default_rng(19)
        x = rng.standard_normal((5, 16))
        positions = np.arange(5) * 1_000
        out = apply_rope(x, positions, rotary_dim=6, layout=layout)
        np.testing.assert_array_equal(out[:, 6:], x[:, 6:])
        np.testing.assert_array_equal(out[:, :6], apply_rope(x[:, :6], positions, layout=layout))

    @pytest.mark.parametrize("layout", ["half", "interleaved"])
    def test_partial_last(self, layout):
        rng = np.random.default_rng(23)
        x = rng.standard_normal((5, 16))
        positions = np.arange(5) * 1_000
        out = apply_rope(x, positions, rotary_dim=4, rotated_slice="last", layout=layout)
        np.testing.assert_array_equal(out[:, :12], x[:, :12])
        np.testing.assert_array_equal(out[:, 12:], apply_rope(x[:, 12:], positions, layout=layout))

    def test_partial_head_dim_denominator(self):
        # base^(-2i/D) = (base^(r/D))^(-2i/r): the rotated part is RoPE of width r with base^(r/D)
        rng = np.random.default_rng(29)
        x = rng.standard_normal((5, 16))
        positions = np.arange(5) * 7
        out = apply_rope(x, positions, rotary_dim=4, freq_denominator="head_dim")
        np.testing.assert_array_equal(out[:, 4:], x[:, 4:])
        np.testing.assert_allclose(
            out[:, :4], apply_rope(x[:, :4], positions, base=10_000.0 ** (4 / 16)), rtol=0, atol=1e-12
        )

    def test_first_pairs_is_hf_proportional(self):
        # HF "proportional": theta over head_dim for r/2 pairs, zeros for the rest, half layout on the whole head
        rng = np.random.default_rng(31)
        d, r = 16, 6
        x = rng.standard_normal((4, d))
        positions = np.array([0, 3, 500, 90_000])
        theta = _theta(d, 10_000.0)[: r // 2] + [0.0] * ((d - r) // 2)
        angles = np.outer(positions, theta)
        expected = _rope_complex(x, angles, "half")
        out = apply_rope(x, positions, rotary_dim=r, rotated_slice="first_pairs", freq_denominator="head_dim")
        np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)
        untouched = np.r_[r // 2 : d // 2, d // 2 + r // 2 : d]
        np.testing.assert_array_equal(out[:, untouched], x[:, untouched])

    def test_first_pairs_equals_first_when_interleaved(self):
        rng = np.random.default_rng(37)
        x = rng.standard_normal((3, 8))
        kwargs = {"rotary_dim": 4, "layout": "interleaved"}
        np.testing.assert_array_equal(
            apply_rope(x, [1, 2, 3], rotated_slice="first_pairs", **kwargs),
            apply_rope(x, [1, 2, 3], rotated_slice="first", **kwargs),
        )

    def test_full_rotary_dim_is_default(self):
        x = np.arange(8.0)
        for kwargs in ({"rotated_slice": "last"}, {"freq_denominator": "head_dim"}, {"rotary_dim": 8}):
            np.testing.assert_array_equal(apply_rope(x, 77, **kwargs), apply_rope(x, 77))

    # ---- errors

    @pytest.mark.parametrize(
        "x,positions,kwargs,error,match",
        [
            (np.ones((2, 3)), [0, 1], {}, ValueError,
             r"^x must have an even, non-zero last dimension \(head_dim D\), got shape \(2, 3\)$"),
            (np.ones((2, 0)), [0, 1], {}, ValueError, r"^x must have an even, non-zero last dimension"),
            ("abc", [0], {}, TypeError, r"^x must be a numeric array"),
            (np.array([[np.inf, 0.0]]), [0], {}, ValueError, r"^x must contain only finite values"),
            (np.ones((2, 4)), [0, -1], {}, ValueError, r"^positions must hold non-negative values, got minimum -1.0$"),
            (np.ones((2, 4)), [0, 1, 2], {}, ValueError,
             r"^positions must broadcast to x.shape\[:-1\] = \(2,\), got positions of shape \(3,\) for x of shape "
             r"\(2, 4\); for x of shape \(B, H, T, D\) pass positions of shape \(T,\) or \(B, 1, T\)$"),
            (np.ones((2, 4)), np.zeros((3, 2)), {}, ValueError, r"^positions must broadcast to x.shape\[:-1\]"),
            (np.ones((2, 4)), [0, 1], {"base": 1.0}, ValueError,
             r"^base must be a finite real number > 1.0, got base=1.0$"),
            (np.ones((2, 4)), [0, 1], {"layout": "neox"}, ValueError,
             r"^layout must be one of 'half', 'interleaved', got layout='neox'$"),
            (np.ones((2, 4)), [0, 1], {"rotary_dim": 3}, ValueError,
             r"^rotary_dim must be a positive even integer, got rotary_dim=3$"),
            (np.ones((2, 4)), [0, 1], {"rotary_dim": 0}, ValueError,
             r"^rotary_dim must be a positive even integer, got rotary_dim=0$"),
            (np.ones((2, 4)), [0, 1], {"rotary_dim": 2.0}, TypeError,
             r"^rotary_dim must be a positive even integer, got rotary_dim=2.0 of type float$"),
            (np.ones((2, 4)), [0, 1], {"rotary_dim": 6}, ValueError,
             r"^rotary_dim must be a positive even integer <= 4 \(head_dim, the last dimension of x\), "
             r"got rotary_dim=6$"),
            (np.ones((2, 4)), [0, 1], {"rotated_slice": "middle"}, ValueError,
             r"^rotated_slice must be one of 'first', 'last', 'first_pairs', got rotated_slice='middle'$"),
            (np.ones((2, 4)), [0, 1], {"freq_denominator": "dim"}, ValueError,
             r"^freq_denominator must be one of 'rotary_dim', 'head_dim', got freq_denominator='dim'$"),
            (np.ones((2, 4)), [0, 1], {"position_offset": -1}, ValueError,
             r"^position_offset must be a finite real number >= 0.0, got position_offset=-1.0$"),
            (np.ones((2, 4)), [0, 1], {"position_offset": True}, TypeError,
             r"^position_offset must be a finite real number >= 0.0, got position_offset=True of type bool$"),
        ],
    )
    def test_errors(self, x, positions, kwargs, error, match):
        with pytest.raises(error, match=match):
            apply_rope(x, positions, **kwargs)


# --------------------------------------------------------------------------
# rotated_channels (a helper, not a spec function)


class TestRotatedChannels:
    # the sets written out from apply_rope's docstring, one case at a time
    @pytest.mark.parametrize(
        "head_dim,rotary_dim,rotated_slice,layout,expected",
        [
            (8, 4, "first", "half", [0, 1, 2, 3]),
            (8, 4, "first", "interleaved", [0, 1, 2, 3]),
            (8, 4, "last", "half", [4, 5, 6, 7]),
            (8, 2, "last", "interleaved", [6, 7]),
            (8, 4, "first_pairs", "half", [0, 1, 4, 5]),
            (12, 4, "first_pairs", "half", [0, 1, 6, 7]),
            (8, 4, "first_pairs", "interleaved", [0, 1, 2, 3]),
            (6, None, "last", "half", [0, 1, 2, 3, 4, 5]),
            (6, 6, "first_pairs", "half", [0, 1, 2, 3, 4, 5]),
        ],
    )
    def test_hand_values(self, head_dim, rotary_dim, rotated_slice, layout, expected):
        got = rotated_channels(head_dim, rotary_dim=rotary_dim, rotated_slice=rotated_slice, layout=layout)
        assert got.dtype == np.int64
        assert got.tolist() == expected

    @given(
        half=st.integers(1, 8),
        data=st.data(),
        rotated_slice=st.sampled_from(["first", "last", "first_pairs"]),
        layout=st.sampled_from(["half", "interleaved"]),
        freq_denominator=st.sampled_from(["rotary_dim", "head_dim"]),
    )
    def test_are_the_channels_apply_rope_turns(self, half, data, rotated_slice, layout, freq_denominator):
        # the listed channels, taken in order, are turned as one rotary_dim-wide head by apply_rotary;
        # every other channel passes through bit for bit
        head_dim = 2 * half
        rotary_dim = 2 * data.draw(st.integers(1, half))
        x = np.random.default_rng(head_dim * 100 + rotary_dim).standard_normal((3, head_dim))
        positions = np.array([1.0, 7.0, 40.0])
        options = {"rotary_dim": rotary_dim, "rotated_slice": rotated_slice, "layout": layout}
        y = apply_rope(x, positions, freq_denominator=freq_denominator, **options)
        channels = rotated_channels(head_dim, **options)
        others = np.setdiff1d(np.arange(head_dim), channels)
        np.testing.assert_array_equal(y[:, others], x[:, others])
        denominator = rotary_dim if freq_denominator == "rotary_dim" else head_dim
        angles = positions[:, None] * np.array(_theta(denominator, 10_000.0))[: rotary_dim // 2]
        np.testing.assert_allclose(y[:, channels], _rope_complex(x[:, channels], angles, layout), rtol=1e-13,
                                   atol=1e-13)

    @pytest.mark.parametrize(
        "args,kwargs,error,match",
        [
            ((7,), {}, ValueError, r"^head_dim must be a positive even integer, got head_dim=7$"),
            ((8.0,), {}, TypeError, r"^head_dim must be a positive even integer, got head_dim=8.0 of type float$"),
            ((8,), {"rotary_dim": 10}, ValueError,
             r"^rotary_dim must be a positive even integer <= 8 \(head_dim\), got rotary_dim=10$"),
            ((8,), {"rotary_dim": 3}, ValueError, r"^rotary_dim must be a positive even integer, got rotary_dim=3$"),
            ((8,), {"rotated_slice": "middle"}, ValueError,
             r"^rotated_slice must be one of 'first', 'last', 'first_pairs', got rotated_slice='middle'$"),
            ((8,), {"layout": "neox"}, ValueError, r"^layout must be one of 'half', 'interleaved', got layout='neox'$"),
        ],
    )
    def test_errors(self, args, kwargs, error, match):
        with pytest.raises(error, match=match):
            rotated_channels(*args, **kwargs)

    def test_options_are_keyword_only(self):
        with pytest.raises(TypeError):
            rotated_channels(8, 4)
