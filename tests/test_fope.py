"""Tests of posref.fope: clamped frequencies and the Fourier-series rotation.

Expected values come from hand arithmetic, from a plain Python loop over
every element (math.cos/math.sin, no NumPy vectorisation), from mpmath, or
from the RoPE functions FoPE reduces to for identity coefficients.
"""

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from posref import apply_fope, apply_rope, fope_frequencies, rope_frequencies

finite = st.one_of(st.just(0.0), st.floats(1e-6, 100.0), st.floats(-100.0, -1e-6))
even_dims = st.integers(1, 12).map(lambda k: 2 * k)


def _fope_loop(x, positions, sin_coef, cos_coef, *, base, max_sequence_length, floor_ratio=1.0, pad_sin=1.0,
               fourier_dim=None, position_offset=0.0):
    """FoPE element by element, in Python floats."""
    x = np.asarray(x, dtype=np.float64)
    d = x.shape[-1]
    h = d // 2
    fdim = d if fourier_dim is None else fourier_dim
    floor = 2.0 * math.pi / max_sequence_length * floor_ratio
    theta = [math.pow(base, -2.0 * i / fdim) for i in range(fdim // 2)]
    kept = [t for t in theta if not t < floor]
    sin_coef, cos_coef = np.asarray(sin_coef, float), np.asarray(cos_coef, float)
    per_head = sin_coef.ndim == 3
    m_out = sin_coef.shape[-1]
    p_full = np.broadcast_to(np.asarray(positions, dtype=np.float64), x.shape[:-1])
    out = np.empty_like(x)
    for idx in np.ndindex(*x.shape[:-1]):
        p = float(p_full[idx]) + position_offset
        s_mat = sin_coef[idx[-2]] if per_head else sin_coef
        c_mat = cos_coef[idx[-2]] if per_head else cos_coef
        row = x[idx]
        for j in range(h):
            if j < m_out:
                c = sum(float(c_mat[k, j]) * math.cos(p * t) for k, t in enumerate(kept))
                s = sum(float(s_mat[k, j]) * math.sin(p * t) for k, t in enumerate(kept))
            else:
                c, s = 1.0, pad_sin
            out[idx + (j,)] = c * row[j] - s * row[j + h]
            out[idx + (j + h,)] = c * row[j + h] + s * row[j]
    return out


class TestFopeFrequencies:
    def test_hand_values(self):
        # floor 2*pi/1000 = 0.00628...: 0.001 is below it
        np.testing.assert_allclose(
            fope_frequencies(8, max_sequence_length=1000), [1.0, 0.1, 0.01, 0.0], rtol=1e-15, atol=0
        )

    def test_count_at_4096(self):
        # theta_i = 10^(-i/16); floor = 2*pi/4096 = 0.0015340.  i = 45: 10^(-2.8125) = 0.0015399 (kept),
        # i = 46: 10^(-2.875) = 0.0013335 (zeroed): 46 of 64 kept.
        theta = fope_frequencies(128, base=10_000.0, max_sequence_length=4096)
        assert np.count_nonzero(theta) == 46
        np.testing.assert_array_equal(theta[:46], rope_frequencies(128)[:46])
        np.testing.assert_array_equal(theta[46:], 0.0)

    def test_floor_ratio(self):
        # floor = 2 * 2*pi/4096 = 0.0030680; i = 40: 10^(-2.5) = 0.0031623 (kept), i = 41: 0.0027384 (zeroed)
        theta = fope_frequencies(128, max_sequence_length=4096, floor_ratio=2.0)
        assert np.count_nonzero(theta) == 41
        unclamped = fope_frequencies(64, max_sequence_length=8, floor_ratio=0.0)
        np.testing.assert_array_equal(unclamped, rope_frequencies(64))

    def test_frequency_equal_to_floor_is_kept(self):
        # dim = 2 has the single frequency 1.0; choose the ratio that puts the floor exactly on it
        length = 6
        ratio = 1.0 / (2.0 * np.pi / length)
        assert 2.0 * np.pi / length * ratio == 1.0  # the floor is exactly 1.0 for this ratio
        np.testing.assert_array_equal(fope_frequencies(2, max_sequence_length=length, floor_ratio=ratio), [1.0])
        above = np.nextafter(ratio, np.inf)
        np.testing.assert_array_equal(fope_frequencies(2, max_sequence_length=length, floor_ratio=above), [0.0])

    @given(
        dim=st.integers(1, 64).map(lambda k: 2 * k),
        base=st.sampled_from([10.0, 10_000.0, 500_000.0]),
        length=st.integers(1, 1_000_000),
        ratio=st.floats(0.0, 10.0),
    )
    def test_mask_against_mpmath(self, dim, base, length, ratio):
        theta = fope_frequencies(dim, base=base, max_sequence_length=length, floor_ratio=ratio)
        full = rope_frequencies(dim, base=base)
        kept = theta > 0
        np.testing.assert_array_equal(theta[kept], full[kept])
        # the kept frequencies are a prefix: theta decreases with i
        assert not np.any(np.diff(kept.astype(int)) > 0)
        with mpmath.workdps(40):
            floor = 2 * mpmath.pi / length * mpmath.mpf(ratio)
            for i in range(dim // 2):
                exact = mpmath.power(base, -mpmath.mpf(2 * i) / dim)
                if abs(exact - floor) > 1e-12 * exact:  # away from the rounding-sensitive boundary
                    assert bool(kept[i]) == bool(exact >= floor)

    @pytest.mark.parametrize(
        "args,kwargs,error,match",
        [
            ((7,), {"max_sequence_length": 10}, ValueError, r"^dim must be a positive even integer, got dim=7$"),
            ((8,), {"max_sequence_length": 10, "base": 1}, ValueError,
             r"^base must be a finite real number > 1.0, got base=1.0$"),
            ((8,), {"max_sequence_length": 0}, ValueError,
             r"^max_sequence_length must be a positive integer, got max_sequence_length=0$"),
            ((8,), {"max_sequence_length": 4096.0}, TypeError,
             r"^max_sequence_length must be a positive integer, got max_sequence_length=4096.0 of type float$"),
            ((8,), {"max_sequence_length": 10, "floor_ratio": -0.5}, ValueError,
             r"^floor_ratio must be a finite real number >= 0.0, got floor_ratio=-0.5$"),
            ((8,), {"max_sequence_length": 10, "floor_ratio": math.inf}, ValueError,
             r"^floor_ratio must be a finite real number >= 0.0, got floor_ratio=inf$"),
        ],
    )
    def test_errors(self, args, kwargs, error, match):
        with pytest.raises(error, match=match):
            fope_frequencies(*args, **kwargs)

    def test_max_sequence_length_is_required(self):
        with pytest.raises(TypeError, match="max_sequence_length"):
            fope_frequencies(8)


class TestApplyFope:
    # ---- hand-checkable values

    def test_padding_at_position_zero(self):
        # D = 4, L = 100: frequencies (1, 0.01), floor 0.0628, so K = 1; pair 1 (channels 1, 3) is padded.
        # Pair 0 at p = 0: cos 1, sin 0, unchanged.  Pair 1 with sin = 1: (x1 - x3, x3 + x1) = (-2, 6).
        x = np.array([1.0, 2.0, 3.0, 4.0])
        eye = np.eye(1)
        np.testing.assert_array_equal(apply_fope(x, 0, eye, eye, max_sequence_length=100), [1.0, -2.0, 3.0, 6.0])
        np.testing.assert_array_equal(
            apply_fope(x, 0, eye, eye, max_sequence_length=100, pad_sin=0.0), [1.0, 2.0, 3.0, 4.0]
        )

    def test_scaled_coefficients(self):
        # K = M = 1 with C = 2, S = 0.5 at p = 1: pair 0 becomes (2 cos 1 * x0 - 0.5 sin 1 * x2, ...)
        x = np.array([1.0, 0.0, 0.0, 0.0])
        out = apply_fope(x, 1, [[0.5]], [[2.0]], max_sequence_length=100, pad_sin=0.0)
        np.testing.assert_allclose(out, [2 * math.cos(1.0), 0.0, 0.5 * math.sin(1.0), 0.0], rtol=1e-15)

    # ---- reductions to RoPE

    @pytest.mark.parametrize("d", [2, 8, 64])
    def test_identity_is_rope_half(self, d):
        rng = np.random.default_rng(d)
        x = rng.standard_normal((2, 3, 5, d))
        positions = np.array([0, 1, 17, 4_096, 100_000])
        eye = np.eye(d // 2)
        fope = apply_fope(x, positions, eye, eye, max_sequence_length=8, floor_ratio=0.0)
        rope = apply_rope(x, positions, layout="half")
        # a series with identity coefficients adds only exact zeros: the results are bit-identical
        np.testing.assert_array_equal(fope, rope)
        per_head = np.broadcast_to(eye, (3,) + eye.shape)
        np.testing.assert_array_equal(
            apply_fope(x, positions, per_head, per_head, max_sequence_length=8, floor_ratio=0.0), rope
        )

    def test_identity_on_kept_with_zero_pad_is_proportional_rope(self):
        # vLLM padding (sin 0): the clamped pairs pass through, the kept ones are RoPE with theta over D,
        # which is the Hugging Face "proportional" arrangement with rotary_dim = 2K.
        d, length = 32, 64
        num_kept = np.count_nonzero(fope_frequencies(d, max_sequence_length=length))
        assert 0 < num_kept < d // 2
        rng = np.random.default_rng(41)
        x = rng.standard_normal((2, 7, d))
        positions = np.arange(7) * 9
        eye = np.eye(num_kept)
        fope = apply_fope(x, positions, eye, eye, max_sequence_length=length, pad_sin=0.0)
        rope = apply_rope(
            x, positions, rotary_dim=2 * num_kept, rotated_slice="first_pairs", freq_denominator="head_dim"
        )
        np.testing.assert_allclose(fope, rope, rtol=0, atol=1e-14)

    def test_pad_sin_changes_only_padded_pairs(self):
        d, length = 16, 64
        num_kept = np.count_nonzero(fope_frequencies(d, max_sequence_length=length))
        rng = np.random.default_rng(43)
        x = rng.standard_normal((4, d))
        s, c = rng.standard_normal((2, num_kept, num_kept))
        paper = apply_fope(x, np.arange(4), s, c, max_sequence_length=length)
        vllm = apply_fope(x, np.arange(4), s, c, max_sequence_length=length, pad_sin=0.0)
        h = d // 2
        padded = np.r_[num_kept:h, h + num_kept : d]
        live = np.r_[0:num_kept, h : h + num_kept]
        np.testing.assert_array_equal(paper[:, live], vllm[:, live])
        np.testing.assert_array_equal(vllm[:, padded], x[:, padded])
        j = np.arange(num_kept, h)
        np.testing.assert_allclose(paper[:, j], x[:, j] - x[:, j + h], rtol=1e-15)
        np.testing.assert_allclose(paper[:, j + h], x[:, j + h] + x[:, j], rtol=1e-15)

    # ---- brute-force re-derivation

    @pytest.mark.parametrize("per_head", [False, True])
    @pytest.mark.parametrize(
        "d,fourier_dim,length,ratio,m_out",
        [(8, None, 1_000, 1.0, 2), (8, 16, 64, 1.0, 4), (12, None, 200, 0.5, 3), (16, None, 4_096, 1.0, 0)],
    )
    def test_against_loop(self, per_head, d, fourier_dim, length, ratio, m_out):
        rng = np.random.default_rng(d + m_out)
        b, heads, t = 2, 3, 4
        x = rng.standard_normal((b, heads, t, d))
        positions = rng.integers(0, 5_000, size=(b, 1, t))
        kwargs = dict(base=10_000.0, max_sequence_length=length, floor_ratio=ratio, fourier_dim=fourier_dim)
        num_kept = np.count_nonzero(fope_frequencies(fourier_dim or d, max_sequence_length=length, floor_ratio=ratio))
        shape = (heads, num_kept, m_out) if per_head else (num_kept, m_out)
        s, c = rng.standard_normal((2,) + shape)
        for pad_sin in (1.0, 0.0):
            got = apply_fope(x, positions, s, c, pad_sin=pad_sin, position_offset=3, **kwargs)
            expected = _fope_loop(x, positions, s, c, pad_sin=pad_sin, position_offset=3.0, **kwargs)
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)

    def test_long_context_against_mpmath(self):
        d, length = 8, 16
        theta = fope_frequencies(d, max_sequence_length=length)
        num_kept = np.count_nonzero(theta)
        rng = np.random.default_rng(47)
        s, c = rng.standard_normal((2, num_kept, num_kept))
        p = 1_000_000
        x = np.eye(d)
        got = apply_fope(x, p, s, c, max_sequence_length=length, pad_sin=0.0)
        eps = np.finfo(np.float64).eps
        with mpmath.workdps(50):
            kept = [mpmath.power(10_000, -mpmath.mpf(2 * k) / d) for k in range(num_kept)]
            for j in range(num_kept):
                c_exact = sum(mpmath.mpf(c[k, j]) * mpmath.cos(p * kept[k]) for k in range(num_kept))
                s_exact = sum(mpmath.mpf(s[k, j]) * mpmath.sin(p * kept[k]) for k in range(num_kept))
                tol = 20 * eps * p * float(np.abs(c[:, j]).sum() + np.abs(s[:, j]).sum())
                # e_j -> c_j e_j + s_j e_{j + D/2}
                assert abs(mpmath.mpf(got[j, j]) - c_exact) <= tol
                assert abs(mpmath.mpf(got[j, j + d // 2]) - s_exact) <= tol

    # ---- properties

    def test_shared_equals_repeated_per_head(self):
        rng = np.random.default_rng(53)
        x = rng.standard_normal((2, 3, 4, 8))
        num_kept = np.count_nonzero(fope_frequencies(8, max_sequence_length=100))
        s, c = rng.standard_normal((2, num_kept, 2))
        shared = apply_fope(x, np.arange(4), s, c, max_sequence_length=100)
        per_head = apply_fope(x, np.arange(4), np.stack([s] * 3), np.stack([c] * 3), max_sequence_length=100)
        np.testing.assert_allclose(shared, per_head, rtol=1e-15, atol=1e-15)

    def test_heads_use_their_own_coefficients(self):
        rng = np.random.default_rng(59)
        x = rng.standard_normal((1, 2, 3, 8))
        num_kept = np.count_nonzero(fope_frequencies(8, max_sequence_length=100))
        s, c = rng.standard_normal((2, 2, num_kept, 3))
        out = apply_fope(x, np.arange(3), s, c, max_sequence_length=100)
        for h in range(2):
            np.testing.assert_allclose(
                out[:, h], apply_fope(x[:, h], np.arange(3), s[h], c[h], max_sequence_length=100), rtol=1e-15
            )

    def test_position_offset(self):
        rng = np.random.default_rng(61)
        x = rng.standard_normal((5, 8))
        s, c = rng.standard_normal((2, 2, 2))
        kwargs = {"max_sequence_length": 100}
        np.testing.assert_array_equal(
            apply_fope(x, np.arange(5), s, c, position_offset=7, **kwargs),
            apply_fope(x, np.arange(5) + 7, s, c, **kwargs),
        )

    @given(data=st.data(), dim=even_dims, positions=hnp.arrays(np.float64, (3,), elements=st.floats(0, 1e5)))
    def test_identity_reduces_to_rope_property(self, data, dim, positions):
        x = data.draw(hnp.arrays(np.float64, (3, dim), elements=finite))
        eye = np.eye(dim // 2)
        fope = apply_fope(x, positions, eye, eye, max_sequence_length=1, floor_ratio=0.0)
        np.testing.assert_allclose(fope, apply_rope(x, positions), rtol=0, atol=1e-15 * np.abs(x).max())

    @given(data=st.data(), a=st.floats(-3, 3), b=st.floats(-3, 3))
    def test_linear_in_x(self, data, a, b):
        x = data.draw(hnp.arrays(np.float64, (2, 8), elements=finite))
        y = data.draw(hnp.arrays(np.float64, (2, 8), elements=finite))
        s = data.draw(hnp.arrays(np.float64, (3, 2), elements=st.floats(-2, 2)))
        c = data.draw(hnp.arrays(np.float64, (3, 2), elements=st.floats(-2, 2)))
        kwargs = {"max_sequence_length": 1_000}
        lhs = apply_fope(a * x + b * y, [3, 40], s, c, **kwargs)
        rhs = a * apply_fope(x, [3, 40], s, c, **kwargs) + b * apply_fope(y, [3, 40], s, c, **kwargs)
        scale = 1 + np.abs(x).max() + np.abs(y).max()
        np.testing.assert_allclose(lhs, rhs, rtol=0, atol=1e-12 * scale)

    # ---- errors

    @pytest.mark.parametrize(
        "x,positions,s,c,kwargs,error,match",
        [
            (np.ones(3), 0, np.eye(1), np.eye(1), {}, ValueError,
             r"^x must have an even, non-zero last dimension \(head_dim D\), got shape \(3,\)$"),
            (np.ones((2, 4)), [0, 1, 2], np.eye(1), np.eye(1), {}, ValueError,
             r"^positions must broadcast to x.shape\[:-1\] = \(2,\)"),
            (np.ones((2, 4)), [0, -2], np.eye(1), np.eye(1), {}, ValueError, r"^positions must hold non-negative"),
            (np.ones(4), 0, np.ones(1), np.ones(1), {}, ValueError,
             r"^sin_coef must be an array with 2 or 3 dimensions, got shape \(1,\)$"),
            (np.ones(4), 0, np.eye(1), np.ones((1, 1, 1, 1)), {}, ValueError,
             r"^cos_coef must be an array with 2 or 3 dimensions, got shape \(1, 1, 1, 1\)$"),
            (np.ones(4), 0, np.eye(1), np.ones((1, 2)), {}, ValueError,
             r"^sin_coef and cos_coef must have the same shape, got sin_coef\(1, 1\), cos_coef\(1, 2\)$"),
            (np.ones(4), 0, np.full((1, 1), np.nan), np.eye(1), {}, ValueError,
             r"^sin_coef must contain only finite values"),
            (np.ones(4), 0, "eye", np.eye(1), {}, TypeError, r"^sin_coef must be a numeric array"),
            (np.ones(4), 0, np.eye(2), np.eye(2), {}, ValueError,
             r"^sin_coef and cos_coef must have K = 1 rows, the number of frequencies fope_frequencies\(4, "
             r"base=10000.0, max_sequence_length=100, floor_ratio=1.0\) keeps, got shape \(2, 2\)$"),
            (np.ones(4), 0, np.ones((1, 3)), np.ones((1, 3)), {}, ValueError,
             r"^sin_coef and cos_coef must have at most 2 columns \(M <= D/2 output pairs for x of shape "
             r"\(4,\)\), got shape \(1, 3\)$"),
            (np.ones((3, 4)), 0, np.ones((1, 1, 1)), np.ones((1, 1, 1)), {}, ValueError,
             r"^x must have shape \(\.\.\., H, T, D\) when the coefficients are per head \(3-D\), "
             r"got shape \(3, 4\)$"),
            (np.ones((1, 2, 3, 4)), 0, np.ones((3, 1, 1)), np.ones((3, 1, 1)), {}, ValueError,
             r"^sin_coef and cos_coef must have one matrix per head, H = x.shape\[-3\] = 2, got shape "
             r"\(3, 1, 1\) for x of shape \(1, 2, 3, 4\)$"),
            (np.ones(4), 0, np.eye(1), np.eye(1), {"base": 0.0}, ValueError,
             r"^base must be a finite real number > 1.0, got base=0.0$"),
            (np.ones(4), 0, np.eye(1), np.eye(1), {"max_sequence_length": -1}, ValueError,
             r"^max_sequence_length must be a positive integer, got max_sequence_length=-1$"),
            (np.ones(4), 0, np.eye(1), np.eye(1), {"floor_ratio": -1.0}, ValueError,
             r"^floor_ratio must be a finite real number >= 0.0, got floor_ratio=-1.0$"),
            (np.ones(4), 0, np.eye(1), np.eye(1), {"pad_sin": math.nan}, ValueError,
             r"^pad_sin must be a finite real number, got pad_sin=nan$"),
            (np.ones(4), 0, np.eye(1), np.eye(1), {"pad_sin": "zero"}, TypeError,
             r"^pad_sin must be a finite real number, got pad_sin='zero' of type str$"),
            (np.ones(4), 0, np.eye(1), np.eye(1), {"fourier_dim": 5}, ValueError,
             r"^fourier_dim must be a positive even integer, got fourier_dim=5$"),
            (np.ones(4), 0, np.eye(1), np.eye(1), {"position_offset": -3}, ValueError,
             r"^position_offset must be a finite real number >= 0.0, got position_offset=-3.0$"),
        ],
    )
    def test_errors(self, x, positions, s, c, kwargs, error, match):
        kwargs.setdefault("max_sequence_length", 100)
        with pytest.raises(error, match=match):
            apply_fope(x, positions, s, c, **kwargs)

    def test_max_sequence_length_is_required(self):
        with pytest.raises(TypeError, match="max_sequence_length"):
            apply_fope(np.ones(4), 0, np.eye(1), np.eye(1))
