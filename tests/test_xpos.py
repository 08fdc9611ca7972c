"""xPos: scale vector, centring conventions, the relative score property, errors."""

import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from posref import apply_rotary, apply_xpos, rope_angles, rope_frequencies, spec_functions, xpos_scales
from posref.xpos import xpos_exponents, xpos_zeta

dims = st.integers(1, 16).map(lambda k: 2 * k)
centerings = st.sampled_from(["ceil_half", "floor_half", "none"])
layouts = st.sampled_from(["half", "interleaved"])


def test_catalogue_family():
    assert {f.name for f in spec_functions("xpos")} == {"xpos_scales", "apply_xpos"}


class TestXposScales:
    def test_zeta_and_hand_values(self):
        # dim = 4: zeta = (2i + 1.6) / 5.6 = (2/7, 9/14); the centred positions of
        # L = 5 are -3..1 (torchscale) and -2..2 (rotary-embedding-torch, flash-attn)
        out = xpos_scales(np.arange(5), 4, scale_base=1.0)
        zeta = np.array([2 / 7, 9 / 14])
        np.testing.assert_allclose(out, zeta[None, :] ** np.arange(-3, 2)[:, None], rtol=1e-15)
        out = xpos_scales(np.arange(5), 4, scale_base=1.0, centering="floor_half")
        np.testing.assert_allclose(out, zeta[None, :] ** np.arange(-2, 3)[:, None], rtol=1e-15)
        # a single position 3: N = 4, c = 3 - 2 = 1
        np.testing.assert_allclose(xpos_scales([3], 2, scale_base=1.0)[0], [2 / 7], rtol=1e-15)

    def test_even_length_centrings_agree(self):
        a = xpos_scales(np.arange(6), 8)
        b = xpos_scales(np.arange(6), 8, centering="floor_half")
        np.testing.assert_array_equal(a, b)

    def test_shape_dtype_and_empty(self):
        out = xpos_scales(np.zeros((2, 3), dtype=np.int32), 8)
        assert out.shape == (2, 3, 4) and out.dtype == np.float64
        assert xpos_scales([], 8).shape == (0, 4)

    @given(dims, st.lists(st.integers(0, 40), min_size=1, max_size=6), centerings, st.integers(0, 10))
    def test_exact_rationals_with_unit_base(self, dim, positions, centering, extra):
        # with B = 1 and integer exponents, zeta^c is a rational: compare with Fractions
        n = max(positions) + 1 + extra
        shift = {"ceil_half": -(-n // 2), "floor_half": n // 2, "none": 0}[centering]
        got = xpos_scales(positions, dim, scale_base=1.0, centering=centering, sequence_length=n)
        for row, p in zip(got, positions):
            for i, value in enumerate(row):
                zeta = Fraction(10 * i + 2 * dim, 7 * dim)  # (2i + 0.4 d) / (1.4 d)
                assert value == pytest.approx(float(zeta ** (p - shift)), rel=1e-13)

    @given(dims, st.lists(st.integers(0, 100_000), min_size=1, max_size=5), st.floats(256.0, 4096.0))
    def test_mpmath_fractional_exponents(self, dim, positions, scale_base):
        n = max(positions) + 1
        got = xpos_scales(positions, dim, scale_base=scale_base)
        with mpmath.workdps(30):
            for row, p in zip(got, positions):
                c = p - (n + 1) // 2
                expected = [mpmath.mpf(2 * i * 5 + 2 * dim) / (7 * dim) for i in range(dim // 2)]
                expected = [float(z ** (mpmath.mpf(c) / scale_base)) for z in expected]
                np.testing.assert_allclose(row, expected, rtol=1e-12)

    @given(dims, st.lists(st.integers(0, 5000), min_size=1, max_size=5), centerings)
    def test_downscale_is_reciprocal(self, dim, positions, centering):
        up = xpos_scales(positions, dim, centering=centering)
        down = xpos_scales(positions, dim, centering=centering, downscale=True)
        np.testing.assert_allclose(up * down, 1.0, rtol=1e-15)

    @given(dims, st.integers(1, 40), st.integers(0, 40))
    def test_torchscale_indexing(self, dim, length, offset):
        # torchscale XPOS.forward: positions arange(min_pos, max_pos), min_pos = -(length + offset) // 2,
        # last `length` rows kept; the tokens sit at absolute positions offset .. offset + length - 1
        min_pos = -(length + offset) // 2
        max_pos = length + offset + min_pos
        zeta = (np.arange(0, dim, 2) + 0.4 * dim) / (1.4 * dim)
        table = zeta ** (np.arange(min_pos, max_pos)[:, None] / 512)
        expected = table[-length:]
        got = xpos_scales(np.arange(offset, offset + length), dim, sequence_length=length + offset)
        np.testing.assert_allclose(got, expected, rtol=1e-15)

    @given(dims, st.integers(1, 40))
    def test_rotary_embedding_torch_indexing(self, dim, length):
        # rotary-embedding-torch / x-transformers: power = (t - len(t) // 2) / scale_base
        t = np.arange(length)
        zeta = (np.arange(0, dim, 2) + 0.4 * dim) / (1.4 * dim)
        expected = zeta ** ((t - length // 2)[:, None] / 512)
        np.testing.assert_allclose(xpos_scales(t, dim, centering="floor_half"), expected, rtol=1e-15)

    def test_no_centring(self):
        np.testing.assert_allclose(xpos_scales([0, 2], 2, scale_base=2.0, centering="none")[:, 0], [1.0, 2 / 7])

    def test_largest_representable_offset(self):
        limit = math.floor(700 / math.log(3.5) * 512)
        assert np.all(np.isfinite(xpos_scales([limit], 8, centering="none", downscale=True)))
        with pytest.raises(ValueError, match=r"^positions are too far from the centre for scale_base=512.0"):
            xpos_scales([limit + 1], 8, centering="none")


def pair_complex(x, layout):
    d = x.shape[-1]
    if layout == "half":
        return x[..., : d // 2] + 1j * x[..., d // 2 :]
    return x[..., 0::2] + 1j * x[..., 1::2]


finite = st.floats(-10, 10, allow_nan=False, allow_infinity=False)


class TestApplyXpos:
    def test_hand_value(self):
        q = apply_xpos([[1.0, 0.0]], [3], scale_base=1.0, sequence_length=5)
        k = apply_xpos([[1.0, 0.0]], [1], scale_base=1.0, sequence_length=5, downscale=True)
        # q: rotated by 3 rad, scaled by 3.5^0 (c = 3 - 3); k: rotated by 1 rad, scaled by 3.5^-2 (c = -2)
        np.testing.assert_allclose(q[0], [math.cos(3), math.sin(3)], rtol=1e-15)
        np.testing.assert_allclose(k[0], [math.cos(1) / 12.25, math.sin(1) / 12.25], rtol=1e-15)
        assert q[0] @ k[0] == pytest.approx((2 / 7) ** 2 * math.cos(2.0), rel=1e-14)

    @given(
        st.data(),
        dims,
        st.integers(0, 3000),
        st.integers(0, 3000),
        layouts,
        centerings,
        st.floats(64.0, 4096.0),
    )
    def test_score_is_zeta_weighted_relative_rope(self, data, dim, m, n, layout, centering, scale_base):
        q = data.draw(hnp.arrays(np.float64, (dim,), elements=finite))
        k = data.draw(hnp.arrays(np.float64, (dim,), elements=finite))
        n_len = max(m, n) + 1 + data.draw(st.integers(0, 50))
        kw = dict(scale_base=scale_base, layout=layout, centering=centering, sequence_length=n_len)
        qx = apply_xpos(q[None], [m], **kw)[0]
        kx = apply_xpos(k[None], [n], downscale=True, **kw)[0]
        zeta = (2 * np.arange(dim // 2) + 0.4 * dim) / (1.4 * dim)
        theta = rope_frequencies(dim)
        expected = np.sum(
            zeta ** ((m - n) / scale_base)
            * np.real(pair_complex(q, layout) * np.conj(pair_complex(k, layout)) * np.exp(1j * (m - n) * theta))
        )
        # the terms are weighted by zeta**((m - n) / scale_base), which can be far from 1
        scale = 1 + np.max(zeta ** ((m - n) / scale_base)) * np.sum(np.abs(q)) * np.sum(np.abs(k))
        assert qx @ kx == pytest.approx(expected, abs=1e-9 * scale)

    @given(st.data(), dims, st.integers(0, 500), st.integers(0, 500), st.integers(0, 500), layouts)
    def test_centrings_agree_on_scores_and_shift_invariance(self, data, dim, m, n, t, layout):
        q = data.draw(hnp.arrays(np.float64, (dim,), elements=finite))
        k = data.draw(hnp.arrays(np.float64, (dim,), elements=finite))
        n_len = max(m, n) + t + 1

        def score(a, b, centering):
            kw = dict(layout=layout, centering=centering, sequence_length=n_len)
            return apply_xpos(q[None], [a], **kw)[0] @ apply_xpos(k[None], [b], downscale=True, **kw)[0]

        ref = score(m, n, "none")
        tol = 1e-9 * (1 + np.sum(np.abs(q)) * np.sum(np.abs(k)))
        assert score(m, n, "ceil_half") == pytest.approx(ref, abs=tol)
        assert score(m, n, "floor_half") == pytest.approx(ref, abs=tol)
        assert score(m + t, n + t, "ceil_half") == pytest.approx(ref, abs=tol)

    def test_odd_length_centrings_differ_per_tensor(self):
        x = np.ones((5, 8))
        a = apply_xpos(x, np.arange(5), scale_base=8.0)
        b = apply_xpos(x, np.arange(5), scale_base=8.0, centering="floor_half")
        assert not np.allclose(a, b)

    @given(dims, st.integers(1, 12), st.integers(0, 12), st.booleans())
    def test_torchscale_formula(self, dim, length, offset, downscale):
        # torchscale: x * cos * s + rotate_every_two(x) * sin * s, with duplicate_interleave'd tables
        rng = np.random.default_rng(dim * 1000 + length * 10 + offset)
        x = rng.standard_normal((length, dim))
        positions = np.arange(offset, offset + length)
        min_pos = -(length + offset) // 2
        zeta = (np.arange(0, dim, 2) + 0.4 * dim) / (1.4 * dim)
        scale = (zeta ** (np.arange(min_pos, length + offset + min_pos)[:, None] / 512))[-length:]
        if downscale:
            scale = 1 / scale
        inv_freq = 1.0 / 10000 ** (np.arange(dim // 2) / (dim // 2))
        angles = positions[:, None] * inv_freq
        sin, cos = (np.repeat(f * scale, 2, axis=-1) for f in (np.sin(angles), np.cos(angles)))
        rotated_every_two = np.stack([-x[:, 1::2], x[:, 0::2]], axis=-1).reshape(x.shape)
        expected = x * cos + rotated_every_two * sin
        got = apply_xpos(x, positions, downscale=downscale, sequence_length=length + offset)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)

    @given(st.data(), dims, layouts)
    def test_is_scaled_rope(self, data, dim, layout):
        x = data.draw(hnp.arrays(np.float64, (3, dim), elements=finite))
        positions = np.array([0, 4, 9])
        got = apply_xpos(x, positions, layout=layout)
        rotated = apply_rotary(x, rope_angles(positions, dim), layout=layout)
        scale = xpos_scales(positions, dim)
        per_channel = np.concatenate([scale, scale], -1) if layout == "half" else np.repeat(scale, 2, -1)
        np.testing.assert_allclose(got, rotated * per_channel, rtol=1e-14, atol=1e-300)
        # the norm of each pair is multiplied by its scale
        np.testing.assert_allclose(
            np.abs(pair_complex(got, layout)), np.abs(pair_complex(x, layout)) * scale, rtol=1e-12, atol=1e-300
        )

    def test_layouts_are_channel_permutations(self):
        rng = np.random.default_rng(0)
        x = rng.standard_normal((4, 8))
        perm = np.array([0, 2, 4, 6, 1, 3, 5, 7])  # interleaved channel order -> half order
        a = apply_xpos(x, np.arange(4), layout="interleaved")
        b = apply_xpos(x[:, perm], np.arange(4), layout="half")
        np.testing.assert_allclose(b, a[:, perm], rtol=1e-14)

    def test_broadcasts_positions_over_batch_and_heads(self):
        rng = np.random.default_rng(1)
        x = rng.standard_normal((2, 3, 5, 8))  # (B, H, T, D)
        got = apply_xpos(x, np.arange(5))
        for b in range(2):
            for h in range(3):
                np.testing.assert_allclose(got[b, h], apply_xpos(x[b, h], np.arange(5)), rtol=1e-15)


def case(function, *args, raises, match, **kwargs):
    """One error case: call ``function(*args, **kwargs)``, expect ``raises`` matching ``match``."""
    return function, args, kwargs, raises, match


ERRORS = [
    case(xpos_scales, [0, 1], 7,
         raises=ValueError, match=r"^dim must be a positive even integer, got dim=7$"),
    case(xpos_scales, [0, 1], 8.0,
         raises=TypeError, match=r"^dim must be a positive even integer"),
    case(xpos_scales, [-1, 1], 8,
         raises=ValueError, match=r"^positions must hold non-negative integers, got minimum"),
    case(xpos_scales, [0.5], 8,
         raises=ValueError, match=r"^positions must hold non-negative integers, got a non-integer value 0.5$"),
    case(xpos_scales, "ab", 8,
         raises=TypeError, match=r"^positions must be a numeric array"),
    case(xpos_scales, [0, 1], 8, scale_base=0.0,
         raises=ValueError, match=r"^scale_base must be a finite real number > 0.0, got scale_base=0.0$"),
    case(xpos_scales, [0, 1], 8, centering="center",
         raises=ValueError, match=r"^centering must be one of 'ceil_half', 'floor_half', 'none', got centering='center'$"),
    case(xpos_scales, [0, 5], 8, sequence_length=5,
         raises=ValueError, match=r"^sequence_length must be greater than every position \(largest position 5\), got sequence_length=5$"),
    case(xpos_scales, [0, 1], 8, sequence_length=0,
         raises=ValueError, match=r"^sequence_length must be a positive integer, got sequence_length=0$"),
    case(xpos_scales, [0, 1], 8, sequence_length=4.0,
         raises=TypeError, match=r"^sequence_length must be a positive integer"),
    case(xpos_scales, [0, 1], 8, downscale="no",
         raises=TypeError, match=r"^downscale must be True or False, got downscale='no'"),
    case(xpos_scales, [10**6], 8, centering="none",
         raises=ValueError, match=r"^positions are too far from the centre for scale_base=512.0: .* need \|centred position\| <= 286087$"),
    case(apply_xpos, np.ones((2, 7)), [0, 1],
         raises=ValueError, match=r"^x must have an even, non-zero last dimension \(D\), got shape \(2, 7\)$"),
    case(apply_xpos, np.ones((2, 8)), [0, 1, 2],
         raises=ValueError, match=r"^positions must broadcast to x.shape\[:-1\] = \(2,\), got positions of shape \(3,\) for x of shape \(2, 8\)$"),
    case(apply_xpos, np.ones((2, 8)), [[0, 1]],
         raises=ValueError, match=r"^positions must broadcast to x.shape\[:-1\]"),
    case(apply_xpos, np.ones((2, 8)), [0, 1], layout="neox",
         raises=ValueError, match=r"^layout must be one of 'half', 'interleaved', got layout='neox'$"),
    case(apply_xpos, np.ones((2, 8)), [0, 1], base=1.0,
         raises=ValueError, match=r"^base must be a finite real number > 1.0, got base=1.0$"),
    case(apply_xpos, np.ones((2, 8)), [0, 1], scale_base=-1.0,
         raises=ValueError, match=r"^scale_base must be a finite real number > 0.0"),
    case(apply_xpos, np.ones((2, 8)), [0, 1], downscale=None,
         raises=TypeError, match=r"^downscale must be True or False"),
    case(apply_xpos, np.ones((2, 8)), [0, 1], sequence_length=1,
         raises=ValueError, match=r"^sequence_length must be greater than every position"),
    case(apply_xpos, np.ones((2, 8)), [0, -1],
         raises=ValueError, match=r"^positions must hold non-negative integers"),
    case(apply_xpos, [[1.0, np.inf]], [0],
         raises=ValueError, match=r"^x must contain only finite values"),
    case(apply_xpos, "x", [0],
         raises=TypeError, match=r"^x must be a numeric array"),
    case(apply_xpos, 5.0, [0],
         raises=ValueError, match=r"^x must be an array with at least 1 dimension, got shape \(\)$"),
]


@pytest.mark.parametrize(
    "function, args, kwargs, exception, pattern", ERRORS, ids=[f"{e[0].__name__}-{i}" for i, e in enumerate(ERRORS)]
)
def test_error_messages(function, args, kwargs, exception, pattern):
    with pytest.raises(exception, match=pattern):
        function(*args, **kwargs)


# -- helpers: xpos_zeta and xpos_exponents (not spec functions) ------------------------------------


class TestXposHelpers:
    @given(dim=dims)
    def test_zeta_is_the_exact_ratio_rounded(self, dim):
        # zeta_i = (2i + 0.4 d) / (1.4 d) = (5i + d) / (3.5 d) = (10 i + 2 d) / (7 d), exactly in rationals
        expected = [float(Fraction(10 * i + 2 * dim, 7 * dim)) for i in range(dim // 2)]
        np.testing.assert_allclose(xpos_zeta(dim), expected, rtol=2 * np.finfo(np.float64).eps, atol=0)
        zeta = xpos_zeta(dim)
        assert zeta.shape == (dim // 2,) and np.all(np.diff(zeta) > 0) and zeta[-1] < 1.0

    @pytest.mark.parametrize(
        "positions,centering,length,centred",
        [
            ([0, 1, 2, 3, 4], "ceil_half", None, [-3, -2, -1, 0, 1]),  # torchscale: min_pos = -5 // 2
            ([0, 1, 2, 3, 4], "floor_half", None, [-2, -1, 0, 1, 2]),  # t - len(t) // 2
            ([0, 1, 2, 3, 4], "none", None, [0, 1, 2, 3, 4]),
            ([3], "ceil_half", None, [1]),  # N = 4, c = 3 - 2
            ([0, 1], "ceil_half", 7, [-4, -3]),  # N = 7: ceil(7/2) = 4
            ([0, 1], "floor_half", 7, [-3, -2]),
        ],
    )
    def test_exponents_hand_values(self, positions, centering, length, centred):
        got = xpos_exponents(positions, scale_base=4.0, centering=centering, sequence_length=length)
        assert got.dtype == np.float64 and got.shape == (len(positions),)
        np.testing.assert_array_equal(got, np.array(centred) / 4.0)

    def test_exponents_keep_the_shape(self):
        assert xpos_exponents(np.zeros((2, 3), dtype=np.int64)).shape == (2, 3)
        assert xpos_exponents(3).shape == ()

    @given(dim=dims, positions=hnp.arrays(np.int64, st.integers(1, 12), elements=st.integers(0, 3000)),
           centering=centerings, scale_base=st.floats(8.0, 4096.0))
    def test_scales_are_zeta_to_the_exponents(self, dim, positions, centering, scale_base):
        e = xpos_exponents(positions, scale_base=scale_base, centering=centering)
        zeta = xpos_zeta(dim)
        up = xpos_scales(positions, dim, scale_base=scale_base, centering=centering)
        down = xpos_scales(positions, dim, scale_base=scale_base, centering=centering, downscale=True)
        np.testing.assert_allclose(up, zeta ** e[:, None], rtol=1e-13)
        np.testing.assert_allclose(down, zeta ** -e[:, None], rtol=1e-13)

    @pytest.mark.parametrize(
        "function,args,kwargs,error,match",
        [
            (xpos_zeta, (7,), {}, ValueError, r"^dim must be a positive even integer, got dim=7$"),
            (xpos_zeta, (4.0,), {}, TypeError, r"^dim must be a positive even integer, got dim=4.0 of type float$"),
            (xpos_exponents, ([0, -1],), {}, ValueError, r"^positions must hold non-negative integers"),
            (xpos_exponents, ([0.5],), {}, ValueError, r"^positions must hold non-negative integers"),
            (xpos_exponents, ([0, 1],), {"scale_base": 0.0}, ValueError,
             r"^scale_base must be a finite real number > 0.0, got scale_base=0.0$"),
            (xpos_exponents, ([0, 1],), {"centering": "middle"}, ValueError,
             r"^centering must be one of 'ceil_half', 'floor_half', 'none', got centering='middle'$"),
            (xpos_exponents, ([0, 5],), {"sequence_length": 5}, ValueError,
             r"^sequence_length must be greater than every position"),
            (xpos_exponents, ([10**6],), {"centering": "none"}, ValueError,
             r"^positions are too far from the centre for scale_base=512.0"),
        ],
    )
    def test_errors(self, function, args, kwargs, error, match):
        with pytest.raises(error, match=match):
            function(*args, **kwargs)

    def test_options_are_keyword_only(self):
        with pytest.raises(TypeError):
            xpos_exponents([0, 1], 512.0)
