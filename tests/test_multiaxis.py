"""Tests of posref.multiaxis: 2-D sin-cos tables, 2-D axial RoPE and M-RoPE.

Expected values come from hand arithmetic, from per-channel loops written
with :mod:`math`, from mpmath, and from NumPy restatements of the way the
libraries named in the docstrings build their tables (written for these
tests; they share no code with posref).
"""

from __future__ import annotations

import inspect
import math

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from oracles import rotate_pairs_complex  # apply_rotary as a complex product

from posref import (
    apply_axial_rope,
    apply_mrope,
    apply_rotary,
    axial_rope_angles,
    mrope_angles,
    mrope_position_ids,
    rope_angles,
    sincos_2d_encoding,
)

SIN1, COS1 = math.sin(1.0), math.cos(1.0)

finite_floats = st.floats(-10.0, 10.0, allow_nan=False, allow_infinity=False)


def vectors(d):
    return hnp.arrays(np.float64, (d,), elements=finite_floats)


# =========================================================================================
# sincos_2d_encoding
# =========================================================================================


def sincos_loop(height, width, dim, base, axis_order, grouping):
    """One token, one channel at a time, with math.sin/cos and the MAE form of the exponent."""
    q = dim // 4
    rows = []
    for r in range(height):
        for c in range(width):
            a, b = (c, r) if axis_order == "xy" else (r, c)
            omega = [base ** (-k / (dim / 4)) for k in range(q)]
            sa = [math.sin(a * w) for w in omega]
            ca = [math.cos(a * w) for w in omega]
            sb = [math.sin(b * w) for w in omega]
            cb = [math.cos(b * w) for w in omega]
            rows.append(sa + ca + sb + cb if grouping == "axis" else sa + sb + ca + cb)
    return np.array(rows).reshape(height * width, dim)


def mae_table(height, width, dim, base):
    """The MAE recipe: meshgrid(w, h) in 'xy' indexing, first half from grid[0]."""

    def one_d(d, pos):
        omega = 1.0 / base ** (np.arange(d // 2, dtype=np.float64) / (d / 2.0))
        out = np.outer(pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    grid = np.stack(np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64)))
    return np.concatenate([one_d(dim // 2, grid[0]), one_d(dim // 2, grid[1])], axis=1)


def timm_table(height, width, dim, base, reverse_coord=False, interleave_sin_cos=False):
    """The timm recipe: 'ij' grid over feat_shape stacked as (N, 2), sin/cos stacked then flattened."""
    shape = (width, height) if reverse_coord else (height, width)
    bands = 1.0 / base ** (np.arange(dim // 4, dtype=np.float64) / (dim // 4))
    grid = np.stack(np.meshgrid(*[np.arange(s, dtype=np.float64) for s in shape], indexing="ij"))
    grid = grid.reshape(2, -1).T  # (N, 2)
    pos2 = grid[:, :, None] * bands  # (N, 2, dim/4)
    axis = 2 if interleave_sin_cos else 1
    return np.stack([np.sin(pos2), np.cos(pos2)], axis=axis).reshape(grid.shape[0], dim)


def mocov3_table(height, width, dim, base):
    """The MoCo v3 recipe: torch-style meshgrid(grid_w, grid_h) ('ij'), [sin w, cos w, sin h, cos h]."""
    grid_w, grid_h = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64), indexing="ij")
    omega = 1.0 / base ** (np.arange(dim // 4) / (dim // 4))
    out_w = np.outer(grid_w.reshape(-1), omega)
    out_h = np.outer(grid_h.reshape(-1), omega)
    table = np.concatenate([np.sin(out_w), np.cos(out_w), np.sin(out_h), np.cos(out_h)], axis=1)
    return np.concatenate([np.zeros((1, dim)), table])


class TestSincos2dEncoding:
    def test_known_values_dim4(self):
        # one frequency, omega_0 = 1; tokens (0,0), (0,1), (1,0), (1,1) in row-major order
        expected = np.array(
            [
                [0.0, 1.0, 0.0, 1.0],
                [SIN1, COS1, 0.0, 1.0],
                [0.0, 1.0, SIN1, COS1],
                [SIN1, COS1, SIN1, COS1],
            ]
        )
        np.testing.assert_allclose(sincos_2d_encoding((2, 2), 4), expected, rtol=0, atol=1e-16)

    def test_known_values_dim8_base100(self):
        # omega = [1, 100**-0.5] = [1, 0.1]; token at row 2, column 3 (grid 3 x 4, index 2*4 + 3)
        row = sincos_2d_encoding((3, 4), 8, base=100.0)[11]
        expected = [
            math.sin(3),
            math.sin(0.3),
            math.cos(3),
            math.cos(0.3),
            math.sin(2),
            math.sin(0.2),
            math.cos(2),
            math.cos(0.2),
        ]
        np.testing.assert_allclose(row, expected, rtol=1e-15, atol=1e-16)

    def test_timm_default_known_values(self):
        row = sincos_2d_encoding((3, 4), 8, base=100.0, axis_order="yx", grouping="sin_cos")[11]
        expected = [
            math.sin(2),
            math.sin(0.2),
            math.sin(3),
            math.sin(0.3),
            math.cos(2),
            math.cos(0.2),
            math.cos(3),
            math.cos(0.3),
        ]
        np.testing.assert_allclose(row, expected, rtol=1e-15, atol=1e-16)

    def test_class_token_row_is_zero(self):
        table = sincos_2d_encoding((2, 3), 8, class_token=True)
        assert table.shape == (7, 8)
        np.testing.assert_array_equal(table[0], np.zeros(8))
        np.testing.assert_array_equal(table[1:], sincos_2d_encoding((2, 3), 8))

    def test_dtype_and_shape(self):
        table = sincos_2d_encoding((5, 7), 16)
        assert table.dtype == np.float64 and table.shape == (35, 16)

    @pytest.mark.parametrize("axis_order", ["xy", "yx"])
    @pytest.mark.parametrize("grouping", ["axis", "sin_cos"])
    @pytest.mark.parametrize("shape,dim,base", [((3, 5), 8, 10_000.0), ((4, 2), 12, 100.0), ((1, 6), 32, 1e4)])
    def test_matches_per_channel_loop(self, axis_order, grouping, shape, dim, base):
        got = sincos_2d_encoding(shape, dim, base=base, axis_order=axis_order, grouping=grouping)
        np.testing.assert_allclose(got, sincos_loop(*shape, dim, base, axis_order, grouping), rtol=1e-13, atol=1e-14)

    def test_mpmath(self):
        mpmath.mp.dps = 40
        dim, base = 16, 10_000.0
        table = sincos_2d_encoding((6, 9), dim, base=base)
        r, c = 5, 7
        row = table[r * 9 + c]
        for k in range(dim // 4):
            omega = mpmath.power(mpmath.mpf(base), -mpmath.mpf(k) / (dim // 4))
            assert abs(row[k] - float(mpmath.sin(c * omega))) < 1e-15
            assert abs(row[dim // 4 + k] - float(mpmath.cos(c * omega))) < 1e-15
            assert abs(row[dim // 2 + k] - float(mpmath.sin(r * omega))) < 1e-15
            assert abs(row[3 * dim // 4 + k] - float(mpmath.cos(r * omega))) < 1e-15

    @pytest.mark.parametrize("shape", [(4, 4), (3, 5), (6, 2)])
    def test_mae_recipe(self, shape):
        np.testing.assert_allclose(
            sincos_2d_encoding(shape, 16), mae_table(*shape, 16, 10_000.0), rtol=1e-13, atol=1e-14
        )

    @pytest.mark.parametrize("shape", [(4, 4), (3, 5)])
    def test_timm_recipe(self, shape):
        h, w = shape
        np.testing.assert_allclose(
            sincos_2d_encoding(shape, 16, axis_order="yx", grouping="sin_cos"),
            timm_table(h, w, 16, 10_000.0),
            rtol=1e-13,
            atol=1e-14,
        )
        np.testing.assert_allclose(
            sincos_2d_encoding(shape, 16, axis_order="yx", grouping="axis"),
            timm_table(h, w, 16, 10_000.0, interleave_sin_cos=True),
            rtol=1e-13,
            atol=1e-14,
        )
        # reverse_coord: x first, tokens in column-major order
        ours = sincos_2d_encoding(shape, 16, axis_order="xy", grouping="sin_cos")
        column_major = ours.reshape(h, w, 16).transpose(1, 0, 2).reshape(h * w, 16)
        np.testing.assert_allclose(
            column_major, timm_table(h, w, 16, 10_000.0, reverse_coord=True), rtol=1e-13, atol=1e-14
        )

    def test_mocov3_recipe_on_square_grid(self):
        np.testing.assert_allclose(
            sincos_2d_encoding((5, 5), 16, axis_order="yx", class_token=True),
            mocov3_table(5, 5, 16, 10_000.0),
            rtol=1e-13,
            atol=1e-14,
        )

    def test_mocov3_differs_from_mae(self):
        mae = sincos_2d_encoding((5, 5), 16, class_token=True)
        assert np.max(np.abs(mae - mocov3_table(5, 5, 16, 10_000.0))) > 0.1

    @given(
        h=st.integers(1, 6),
        w=st.integers(1, 6),
        dim=st.sampled_from([4, 8, 12, 24]),
        base=st.floats(1.5, 1e6),
        axis_order=st.sampled_from(["xy", "yx"]),
        grouping=st.sampled_from(["axis", "sin_cos"]),
    )
    def test_row_norm(self, h, w, dim, base, axis_order, grouping):
        table = sincos_2d_encoding((h, w), dim, base=base, axis_order=axis_order, grouping=grouping)
        np.testing.assert_allclose(np.sum(table**2, axis=1), dim / 2, rtol=1e-13)

    @given(
        h=st.integers(1, 6),
        w=st.integers(1, 6),
        dim=st.sampled_from([4, 8, 20]),
        axis_order=st.sampled_from(["xy", "yx"]),
    )
    def test_groupings_are_column_permutations(self, h, w, dim, axis_order):
        q = dim // 4
        by_axis = sincos_2d_encoding((h, w), dim, axis_order=axis_order, grouping="axis")
        by_fn = sincos_2d_encoding((h, w), dim, axis_order=axis_order, grouping="sin_cos")
        # axis: [sa, ca, sb, cb]; sin_cos: [sa, sb, ca, cb]
        perm = np.concatenate([np.arange(0, q), np.arange(2 * q, 3 * q), np.arange(q, 2 * q), np.arange(3 * q, 4 * q)])
        np.testing.assert_array_equal(by_axis[:, perm], by_fn)

    @given(
        h=st.integers(1, 6),
        w=st.integers(1, 6),
        dim=st.sampled_from([4, 8, 16]),
        grouping=st.sampled_from(["axis", "sin_cos"]),
    )
    def test_axis_order_is_a_transpose(self, h, w, dim, grouping):
        xy = sincos_2d_encoding((h, w), dim, axis_order="xy", grouping=grouping).reshape(h, w, dim)
        yx = sincos_2d_encoding((w, h), dim, axis_order="yx", grouping=grouping).reshape(w, h, dim)
        np.testing.assert_array_equal(xy, yx.transpose(1, 0, 2))

    @given(w=st.integers(1, 12), dim=st.sampled_from([4, 8, 16]))
    def test_single_row_reduces_to_1d_sinusoid(self, w, dim):
        table = sincos_2d_encoding((1, w), dim)
        c = np.arange(w)[:, None]
        omega = 10_000.0 ** (-np.arange(dim // 4) / (dim // 4))
        np.testing.assert_allclose(
            table[:, : dim // 2], np.hstack([np.sin(c * omega), np.cos(c * omega)]), rtol=1e-13, atol=1e-14
        )
        np.testing.assert_array_equal(table[:, dim // 2 :], np.tile(np.repeat([0.0, 1.0], dim // 4), (w, 1)))

    @pytest.mark.parametrize(
        "args,kwargs,exc,match",
        [
            ((5, 8), {}, TypeError, r"^grid_shape must be a pair of positive integers \(H, W\), got grid_shape=5"),
            (("ab", 8), {}, TypeError, r"^grid_shape must be a pair"),
            (
                ((2, 3, 4), 8),
                {},
                ValueError,
                r"^grid_shape must be a pair of positive integers \(H, W\), got grid_shape=\[2, 3, 4\] of length 3",
            ),
            (((0, 3), 8), {}, ValueError, r"^grid_shape\[0\] must be a positive integer, got grid_shape\[0\]=0"),
            (((2, 2.5), 8), {}, TypeError, r"^grid_shape\[1\] must be a positive integer"),
            (((2, 3), 6), {}, ValueError, r"^dim must be a positive multiple of 4, got dim=6"),
            (((2, 3), 0), {}, ValueError, r"^dim must be a positive multiple of 4, got dim=0"),
            (((2, 3), 8.0), {}, TypeError, r"^dim must be an integer, got dim=8.0 of type float"),
            (((2, 3), 8), {"base": 1.0}, ValueError, r"^base must be a finite real number > 1.0"),
            (((2, 3), 8), {"base": "10"}, TypeError, r"^base must be"),
            (
                ((2, 3), 8),
                {"axis_order": "ij"},
                ValueError,
                r"^axis_order must be one of 'xy', 'yx', got axis_order='ij'",
            ),
            (((2, 3), 8), {"grouping": "interleaved"}, ValueError, r"^grouping must be one of 'axis', 'sin_cos'"),
            (((2, 3), 8), {"class_token": 1}, TypeError, r"^class_token must be True or False"),
        ],
    )
    def test_errors(self, args, kwargs, exc, match):
        with pytest.raises(exc, match=match):
            sincos_2d_encoding(*args, **kwargs)

    def test_arguments_positional_and_keyword_only(self):
        with pytest.raises(TypeError):
            sincos_2d_encoding(grid_shape=(2, 2), dim=4)
        with pytest.raises(TypeError):
            sincos_2d_encoding((2, 2), 4, 100.0)


# =========================================================================================
# axial_rope_angles / apply_axial_rope
# =========================================================================================


def axial_loop(rows, cols, dim, base, axis_order, frequencies):
    """Per-token, per-pair angles with math.pow, straight from the Notes formula."""
    q = dim // 4
    out = np.empty((len(rows), dim // 2))
    for n, (y, x) in enumerate(zip(rows, cols)):
        a, b = (x, y) if axis_order == "xy" else (y, x)
        for i in range(dim // 2):
            k = i if i < q else i - q
            coord = a if i < q else b
            if frequencies == "per_axis":
                out[n, i] = coord * math.pow(base, -4.0 * k / dim)
            else:
                j = 2 * k if i < q else 2 * k + 1
                out[n, i] = coord * math.pow(base, -2.0 * j / dim)
    return out


def grid_coordinates(height, width):
    rows, cols = np.divmod(np.arange(height * width), width)
    return np.stack([rows, cols]).astype(np.float64)


class TestAxialRopeAngles:
    def test_known_values_per_axis(self):
        got = axial_rope_angles([[0, 2], [1, 3]], 8, base=100.0)
        np.testing.assert_allclose(got, [[1.0, 0.1, 0.0, 0.0], [3.0, 0.3, 2.0, 0.2]], rtol=1e-15)

    def test_known_values_even_odd(self):
        # 1-D ladder for dim 8: [1, 0.1, 0.01, 0.001]; first axis takes [1, 0.01], second [0.1, 0.001]
        got = axial_rope_angles([[2.0], [3.0]], 8, frequencies="even_odd", axis_order="yx")
        np.testing.assert_allclose(got, [[2.0, 0.02, 0.3, 0.003]], rtol=1e-14)

    def test_shape_and_dtype(self):
        got = axial_rope_angles(np.zeros((2, 3, 5), dtype=np.int64), 16)
        assert got.shape == (3, 5, 8) and got.dtype == np.float64

    @pytest.mark.parametrize("axis_order", ["xy", "yx"])
    @pytest.mark.parametrize("frequencies", ["per_axis", "even_odd"])
    @pytest.mark.parametrize("dim,base", [(8, 10_000.0), (64, 10_000.0), (24, 100.0)])
    def test_matches_per_pair_loop(self, axis_order, frequencies, dim, base):
        pos = grid_coordinates(5, 7)
        got = axial_rope_angles(pos, dim, base=base, axis_order=axis_order, frequencies=frequencies)
        np.testing.assert_allclose(
            got, axial_loop(pos[0], pos[1], dim, base, axis_order, frequencies), rtol=1e-13, atol=1e-15
        )

    def test_pixtral_recipe(self):
        # precompute_freqs_cis_2d: ladder over head_dim, h on even entries, w on odd, [h | w]
        dim, base, height, width = 16, 10_000.0, 3, 4
        freqs = 1.0 / base ** (np.arange(0, dim, 2) / dim)
        h = np.arange(height)[:, None, None] * freqs[::2]
        w = np.arange(width)[None, :, None] * freqs[1::2]
        table = np.concatenate(
            [np.broadcast_to(h, (height, width, dim // 4)), np.broadcast_to(w, (height, width, dim // 4))], axis=-1
        )
        got = axial_rope_angles(grid_coordinates(height, width), dim, axis_order="yx", frequencies="even_odd")
        np.testing.assert_allclose(got, table.reshape(-1, dim // 2), rtol=1e-14, atol=1e-15)

    @given(
        y=st.integers(0, 500),
        x=st.integers(0, 500),
        dim=st.sampled_from([4, 8, 32, 64]),
        base=st.floats(1.5, 1e6),
        frequencies=st.sampled_from(["per_axis", "even_odd"]),
    )
    def test_swapping_axis_order_swaps_coordinates(self, y, x, dim, base, frequencies):
        a = axial_rope_angles([y, x], dim, base=base, axis_order="xy", frequencies=frequencies)
        b = axial_rope_angles([x, y], dim, base=base, axis_order="yx", frequencies=frequencies)
        np.testing.assert_array_equal(a, b)

    @given(y=st.integers(0, 10_000), x=st.integers(0, 10_000), dim=st.sampled_from([4, 16, 64]))
    def test_per_axis_blocks_are_1d_rope(self, y, x, dim):
        got = axial_rope_angles([y, x], dim)
        np.testing.assert_array_equal(got[: dim // 4], rope_angles(x, dim // 2))
        np.testing.assert_array_equal(got[dim // 4 :], rope_angles(y, dim // 2))

    @given(p=st.integers(0, 10_000), dim=st.sampled_from([4, 16, 64]))
    def test_even_odd_with_equal_coordinates_is_a_permutation_of_1d_rope(self, p, dim):
        got = axial_rope_angles([p, p], dim, frequencies="even_odd")
        one_d = rope_angles(p, dim)
        np.testing.assert_array_equal(got, np.concatenate([one_d[0::2], one_d[1::2]]))

    @pytest.mark.parametrize(
        "args,kwargs,exc,match",
        [
            (
                ([[0, 1], [0, 1], [0, 1]], 8),
                {},
                ValueError,
                r"^positions_2d must have first dimension 2 \(row, column\), got shape \(3, 2\)",
            ),
            (([[0, -1], [0, 1]], 8), {}, ValueError, r"^positions_2d must hold non-negative values"),
            (([[0, np.nan], [0, 1]], 8), {}, ValueError, r"^positions_2d must contain only finite values"),
            ((["a", "b"], 8), {}, TypeError, r"^positions_2d must be a real numeric array"),
            (([1, 2], 6), {}, ValueError, r"^dim must be a positive multiple of 4, got dim=6"),
            (([1, 2], -4), {}, ValueError, r"^dim must be a positive multiple of 4, got dim=-4"),
            (([1, 2], "8"), {}, TypeError, r"^dim must be an integer"),
            (([1, 2], 8), {"base": 0.5}, ValueError, r"^base must be a finite real number > 1.0"),
            (
                ([1, 2], 8),
                {"axis_order": "hw"},
                ValueError,
                r"^axis_order must be one of 'xy', 'yx', got axis_order='hw'",
            ),
            (
                ([1, 2], 8),
                {"frequencies": "pixel"},
                ValueError,
                r"^frequencies must be one of 'per_axis', 'even_odd', got frequencies='pixel'",
            ),
        ],
    )
    def test_errors(self, args, kwargs, exc, match):
        with pytest.raises(exc, match=match):
            axial_rope_angles(*args, **kwargs)


class TestApplyAxialRope:
    def test_known_value(self):
        got = apply_axial_rope([1.0, 0.0, 1.0, 0.0], [1, 0])
        np.testing.assert_allclose(got, [1.0, 0.0, COS1, SIN1], rtol=1e-15, atol=1e-16)

    def test_known_value_half_layout(self):
        # half layout, D=4: pairs (0, 2) [column] and (1, 3) [row]; row 1 turns pair (1, 3) by 1 rad
        got = apply_axial_rope([0.0, 1.0, 0.0, 0.0], [1, 0], layout="half")
        np.testing.assert_allclose(got, [0.0, COS1, 0.0, SIN1], rtol=1e-15, atol=1e-16)

    def test_rope_vit_recipe(self):
        # compute_axial_cis: t_x = t % W, t_y = t // W, [x | y] bands theta**(-4k/D), complex multiply
        dim, theta, width, height = 16, 100.0, 5, 3
        rng = np.random.default_rng(1)
        x = rng.standard_normal((height * width, dim))
        t = np.arange(width * height)
        t_x, t_y = t % width, t // width
        f = 1.0 / theta ** (np.arange(0, dim, 4)[: dim // 4] / dim)
        cis = np.concatenate([np.exp(1j * np.outer(t_x, f)), np.exp(1j * np.outer(t_y, f))], axis=-1)
        z = (x[:, 0::2] + 1j * x[:, 1::2]) * cis
        expected = np.stack([z.real, z.imag], axis=-1).reshape(height * width, dim)
        got = apply_axial_rope(x, np.stack([t_y, t_x]), base=theta)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-13)

    def test_torchtune_recipe(self):
        # VisionRotaryPositionalEmbeddings: per-axis dim D/2, 1-based patch coordinates, [x | y], pairs (2i, 2i+1)
        dim, grid = 8, 3
        half = dim // 2
        theta = 1.0 / 10_000.0 ** (np.arange(0, half, 2)[: half // 2] / half)
        idx = np.arange(grid * grid)
        freqs = np.concatenate([np.outer(idx % grid + 1, theta), np.outer(idx // grid + 1, theta)], axis=-1)
        cos, sin = np.cos(freqs), np.sin(freqs)
        x = np.random.default_rng(2).standard_normal((grid * grid, dim))
        x0, x1 = x[:, 0::2], x[:, 1::2]
        expected = np.stack([x0 * cos - x1 * sin, x1 * cos + x0 * sin], axis=-1).reshape(grid * grid, dim)
        got = apply_axial_rope(x, np.stack([idx // grid + 1, idx % grid + 1]))
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-13)

    def test_qwen2_vl_vision_recipe(self):
        # rot_pos_emb: (h, w) ids into a D/2-wide ladder, [h | w], then cat(freqs, freqs) with rotate_half
        dim, height, width = 16, 2, 3
        inv = 1.0 / 10_000.0 ** (np.arange(0, dim // 2, 2) / (dim // 2))
        hpos, wpos = np.divmod(np.arange(height * width), width)
        freqs = np.concatenate([np.outer(hpos, inv), np.outer(wpos, inv)], axis=-1)
        emb = np.concatenate([freqs, freqs], axis=-1)
        x = np.random.default_rng(3).standard_normal((height * width, dim))
        rotate_half = np.concatenate([-x[:, dim // 2 :], x[:, : dim // 2]], axis=-1)
        expected = x * np.cos(emb) + rotate_half * np.sin(emb)
        got = apply_axial_rope(x, np.stack([hpos, wpos]), axis_order="yx", layout="half")
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-13)

    @pytest.mark.parametrize("layout", ["half", "interleaved"])
    @pytest.mark.parametrize("frequencies", ["per_axis", "even_odd"])
    def test_matches_complex_rotation_of_loop_angles(self, layout, frequencies):
        pos = grid_coordinates(4, 3)
        x = np.random.default_rng(4).standard_normal((12, 2, 24))
        angles = axial_loop(pos[0], pos[1], 24, 10_000.0, "yx", frequencies)[:, None, :]
        got = apply_axial_rope(x, pos[:, :, None], axis_order="yx", frequencies=frequencies, layout=layout)
        np.testing.assert_allclose(got, rotate_pairs_complex(x, angles, layout), rtol=1e-12, atol=1e-13)

    @given(
        q=vectors(16),
        k=vectors(16),
        p=st.tuples(st.integers(0, 60), st.integers(0, 60)),
        r=st.tuples(st.integers(0, 60), st.integers(0, 60)),
        shift=st.tuples(st.integers(0, 60), st.integers(0, 60)),
        layout=st.sampled_from(["half", "interleaved"]),
        frequencies=st.sampled_from(["per_axis", "even_odd"]),
    )
    def test_score_depends_on_2d_offset_only(self, q, k, p, r, shift, layout, frequencies):
        def score(pq, pk):
            opts = {"layout": layout, "frequencies": frequencies, "base": 100.0}
            return apply_axial_rope(q, list(pq), **opts) @ apply_axial_rope(k, list(pk), **opts)

        moved_p = (p[0] + shift[0], p[1] + shift[1])
        moved_r = (r[0] + shift[0], r[1] + shift[1])
        scale = 1.0 + np.linalg.norm(q) * np.linalg.norm(k)
        assert abs(score(p, r) - score(moved_p, moved_r)) <= 1e-11 * scale

    @given(x=vectors(32), y=st.floats(0, 1e4), c=st.floats(0, 1e4), layout=st.sampled_from(["half", "interleaved"]))
    def test_norm_preserved(self, x, y, c, layout):
        out = apply_axial_rope(x, [y, c], layout=layout)
        np.testing.assert_allclose(np.linalg.norm(out), np.linalg.norm(x), rtol=1e-12, atol=1e-12)

    def test_origin_is_identity(self):
        x = np.random.default_rng(5).standard_normal((3, 8))
        np.testing.assert_array_equal(apply_axial_rope(x, np.zeros((2, 3))), x)

    def test_broadcast_over_heads(self):
        x = np.random.default_rng(6).standard_normal((2, 3, 5, 8))  # (B, H, T, D)
        pos = np.random.default_rng(7).integers(0, 9, size=(2, 2, 1, 5))  # (2, B, 1, T)
        got = apply_axial_rope(x, pos)
        for b in range(2):
            for h in range(3):
                np.testing.assert_array_equal(got[b, h], apply_axial_rope(x[b, h], pos[:, b, 0]))

    @pytest.mark.parametrize(
        "args,kwargs,exc,match",
        [
            (
                (np.ones(6), [0, 0]),
                {},
                ValueError,
                r"^x must have a last dimension \(D\) that is a positive multiple of 4, got shape \(6,\)",
            ),
            (
                (np.ones((2, 0)), [0, 0]),
                {},
                ValueError,
                r"^x must have a last dimension \(D\) that is a positive multiple of 4",
            ),
            (
                (np.ones((3, 8)), [[0, 0], [0, 0]]),
                {},
                ValueError,
                r"^positions_2d of shape \(2, 2\) \(coordinates first\) does not broadcast against x of shape \(3, 8\)",
            ),
            (
                (np.ones(8), [0, 0, 0]),
                {},
                ValueError,
                r"^positions_2d must have first dimension 2 \(row, column\), got shape \(3,\)",
            ),
            ((np.ones(8), [0, -2]), {}, ValueError, r"^positions_2d must hold non-negative values"),
            (
                (np.ones(8), [0, 0]),
                {"layout": "neox"},
                ValueError,
                r"^layout must be one of 'half', 'interleaved', got layout='neox'",
            ),
            ((np.ones(8), [0, 0]), {"axis_order": "XY"}, ValueError, r"^axis_order must be one of"),
            ((np.ones(8), [0, 0]), {"frequencies": "ladder"}, ValueError, r"^frequencies must be one of"),
            ((np.ones(8), [0, 0]), {"base": 1}, ValueError, r"^base must be a finite real number > 1.0"),
            (("abc", [0, 0]), {}, TypeError, r"^x must be a numeric array"),
            ((5.0, [0, 0]), {}, ValueError, r"^x must be an array with at least 1 dimension"),
        ],
    )
    def test_errors(self, args, kwargs, exc, match):
        with pytest.raises(exc, match=match):
            apply_axial_rope(*args, **kwargs)


# =========================================================================================
# mrope_angles / apply_mrope
# =========================================================================================


#: ``section_order`` by whether the sections go round robin (the oracles below take the bool).
ORDERS = {False: "blocks", True: "round_robin"}


def mrope_axis_loop(section, half, round_robin):
    """Which coordinate drives each pair, one pair at a time from the rules in the docstring."""
    axes = []
    for i in range(half):
        if not round_robin:
            if i < section[0]:
                axes.append(0)
            elif i < section[0] + section[1]:
                axes.append(1)
            else:
                axes.append(2)
        elif i % 3 == 1 and i < 3 * section[1]:
            axes.append(1)
        elif i % 3 == 2 and i < 3 * section[2]:
            axes.append(2)
        else:
            axes.append(0)
    return axes


def mrope_loop(positions, dim, base, section, round_robin):
    positions = np.asarray(positions, dtype=np.float64).reshape(3, -1)
    axes = mrope_axis_loop(section, dim // 2, round_robin)
    out = np.empty((positions.shape[1], dim // 2))
    for n in range(positions.shape[1]):
        for i, a in enumerate(axes):
            out[n, i] = positions[a, n] * math.pow(base, -2.0 * i / dim)
    return out


def hf_mrope_cos_sin(positions, dim, base, section, round_robin):
    """Hugging Face style: per-axis freqs (3, N, D/2); contiguous split of cat(f, f) or interleaved overwrite."""
    inv = 1.0 / base ** (np.arange(0, dim, 2) / dim)
    freqs = np.asarray(positions, dtype=np.float64)[:, :, None] * inv  # (3, N, D/2)
    if round_robin:  # Hugging Face apply_interleaved_mrope
        f = freqs[0].copy()
        for axis, offset in ((1, 1), (2, 2)):
            idx = slice(offset, section[axis] * 3, 3)
            f[..., idx] = freqs[axis][..., idx]
        emb = np.concatenate([f, f], axis=-1)
        return np.cos(emb), np.sin(emb)
    emb = np.concatenate([freqs, freqs], axis=-1)  # (3, N, D)
    bounds = np.cumsum(list(section) * 2)[:-1]
    cos_chunks = np.split(np.cos(emb), bounds, axis=-1)
    sin_chunks = np.split(np.sin(emb), bounds, axis=-1)
    cos = np.concatenate([c[i % 3] for i, c in enumerate(cos_chunks)], axis=-1)
    sin = np.concatenate([s[i % 3] for i, s in enumerate(sin_chunks)], axis=-1)
    return cos, sin


def _section(dim, cuts):
    a, b = sorted(cuts)
    return (a, b - a, dim // 2 - b)


contiguous_cases = st.sampled_from([8, 16, 32, 128]).flatmap(
    lambda d: st.tuples(
        st.just(d), st.lists(st.integers(0, d // 2), min_size=2, max_size=2).map(lambda c: _section(d, c))
    )
)
# sections that fit the round-robin pattern: (dim, section)
round_robin_cases = st.sampled_from(
    [
        (8, (2, 1, 1)),
        (16, (4, 2, 2)),
        (16, (3, 3, 2)),
        (32, (6, 5, 5)),
        (128, (24, 20, 20)),
        (128, (32, 16, 16)),
        (12, (2, 2, 2)),
    ]
)


class TestMropeAngles:
    def test_known_values(self):
        np.testing.assert_allclose(
            mrope_angles([1, 2, 3], 8, mrope_section=[2, 1, 1]), [1.0, 0.1, 0.02, 0.003], rtol=1e-15
        )
        np.testing.assert_allclose(
            mrope_angles([1, 2, 3], 8, mrope_section=[2, 1, 1], section_order="round_robin"), [1.0, 0.2, 0.03, 0.001], rtol=1e-15
        )

    @pytest.mark.parametrize("axis", [0, 1, 2])
    def test_qwen2_vl_sections(self, axis):
        # [16, 24, 24] for head_dim 128: T pairs 0..15, H 16..39, W 40..63
        pos = np.zeros(3)
        pos[axis] = 1.0
        driven = np.flatnonzero(mrope_angles(pos, 128, mrope_section=[16, 24, 24], base=1e6))
        expected = {0: range(0, 16), 1: range(16, 40), 2: range(40, 64)}[axis]
        np.testing.assert_array_equal(driven, list(expected))

    @pytest.mark.parametrize("axis", [0, 1, 2])
    def test_qwen3_vl_sections(self, axis):
        # [24, 20, 20], round robin: H pairs 1, 4, ..., 58; W 2, 5, ..., 59; T the rest (0, 3, ..., 57, 60..63)
        pos = np.zeros(3)
        pos[axis] = 1.0
        driven = np.flatnonzero(mrope_angles(pos, 128, mrope_section=[24, 20, 20], section_order="round_robin"))
        expected = {
            0: list(range(0, 60, 3)) + [60, 61, 62, 63],
            1: list(range(1, 60, 3)),
            2: list(range(2, 60, 3)),
        }[axis]
        np.testing.assert_array_equal(driven, expected)
        assert len(expected) == [24, 20, 20][axis]

    @pytest.mark.parametrize(
        "round_robin,dim,section",
        [
            (False, 8, (2, 1, 1)),
            (False, 128, (16, 24, 24)),
            (False, 128, (24, 20, 20)),
            (False, 20, (0, 10, 0)),
            (True, 8, (2, 1, 1)),
            (True, 32, (6, 5, 5)),
            (True, 128, (24, 20, 20)),
            (True, 64, (11, 11, 10)),
        ],
    )
    def test_matches_per_pair_loop(self, round_robin, dim, section):
        pos = np.random.default_rng(8).integers(0, 5000, size=(3, 7))
        got = mrope_angles(pos, dim, mrope_section=section, section_order=ORDERS[round_robin], base=1e6)
        np.testing.assert_allclose(got, mrope_loop(pos, dim, 1e6, section, round_robin), rtol=1e-13, atol=1e-15)

    def test_mpmath(self):
        mpmath.mp.dps = 40
        pos = [123_456, 789, 1011]
        got = mrope_angles(pos, 128, mrope_section=[24, 20, 20], section_order="round_robin", base=5e6)
        axes = mrope_axis_loop((24, 20, 20), 64, True)
        for i in (0, 1, 2, 33, 60, 63):
            exact = pos[axes[i]] * mpmath.power(mpmath.mpf(5e6), -mpmath.mpf(2 * i) / 128)
            assert abs(got[i] - float(exact)) <= 4e-16 * max(1.0, abs(float(exact)))

    @given(case=contiguous_cases, p=st.integers(0, 1_000_000), base=st.floats(1.5, 1e7))
    def test_equal_rows_give_1d_rope_contiguous(self, case, p, base):
        dim, section = case
        np.testing.assert_array_equal(
            mrope_angles([p, p, p], dim, mrope_section=section, base=base), rope_angles(p, dim, base=base)
        )

    @given(case=round_robin_cases, p=st.integers(0, 1_000_000), base=st.floats(1.5, 1e7))
    def test_equal_rows_give_1d_rope_round_robin(self, case, p, base):
        dim, section = case
        got = mrope_angles([p, p, p], dim, mrope_section=section, base=base, section_order="round_robin")
        np.testing.assert_array_equal(got, rope_angles(p, dim, base=base))

    @given(case=st.one_of(contiguous_cases.map(lambda c: c + (False,)), round_robin_cases.map(lambda c: c + (True,))))
    def test_each_coordinate_drives_its_section_size(self, case):
        dim, section, round_robin = case
        for axis in range(3):
            pos = np.zeros(3)
            pos[axis] = 7.0
            driven = np.count_nonzero(mrope_angles(pos, dim, mrope_section=section, section_order=ORDERS[round_robin]))
            assert driven == section[axis]

    def test_shape(self):
        got = mrope_angles(np.zeros((3, 2, 5)), 16, mrope_section=[4, 2, 2])
        assert got.shape == (2, 5, 8) and got.dtype == np.float64

    @pytest.mark.parametrize(
        "args,kwargs,exc,match",
        [
            (
                ([1, 2], 8),
                {"mrope_section": [2, 1, 1]},
                ValueError,
                r"^positions must have first dimension 3 \(temporal, height, width\), got shape \(2,\)",
            ),
            (([1, -2, 3], 8), {"mrope_section": [2, 1, 1]}, ValueError, r"^positions must hold non-negative values"),
            (
                ([1, 2, np.inf], 8),
                {"mrope_section": [2, 1, 1]},
                ValueError,
                r"^positions must contain only finite values",
            ),
            (
                ([1, 2, 3], 7),
                {"mrope_section": [2, 1, 1]},
                ValueError,
                r"^dim must be a positive even integer, got dim=7",
            ),
            (([1, 2, 3], 8.0), {"mrope_section": [2, 1, 1]}, TypeError, r"^dim must be a positive even integer"),
            (
                ([1, 2, 3], 8),
                {"mrope_section": [2, 1, 2]},
                ValueError,
                r"^mrope_section must sum to dim/2 = 4, got mrope_section=\[2, 1, 2\] \(sum 5\)",
            ),
            (
                ([1, 2, 3], 8),
                {"mrope_section": [2, 2]},
                ValueError,
                r"^mrope_section must be a sequence of 3 non-negative integers \(temporal, height, width\), "
                r"got mrope_section=\[2, 2\] of length 2",
            ),
            (
                ([1, 2, 3], 8),
                {"mrope_section": 4},
                TypeError,
                r"^mrope_section must be a sequence of 3 non-negative integers",
            ),
            (
                ([1, 2, 3], 8),
                {"mrope_section": [5, -1, 0]},
                ValueError,
                r"^mrope_section\[1\] must be a non-negative integer, got mrope_section\[1\]=-1",
            ),
            (
                ([1, 2, 3], 8),
                {"mrope_section": [2, 1.0, 1]},
                TypeError,
                r"^mrope_section\[1\] must be a non-negative integer",
            ),
            (
                ([1, 2, 3], 4),
                {"mrope_section": [0, 1, 1], "section_order": "round_robin"},
                ValueError,
                r"^mrope_section=\[0, 1, 1\] does not fit section_order='round_robin': .* below dim/2 = 2",
            ),
            (
                ([1, 2, 3], 128),
                {"mrope_section": [16, 24, 24], "section_order": "round_robin"},
                ValueError,
                r"^mrope_section=\[16, 24, 24\] does not fit section_order='round_robin': .* below dim/2 = 64",
            ),
            (
                ([1, 2, 3], 8),
                {"mrope_section": [2, 1, 1], "section_order": "interleaved"},
                ValueError,
                r"^section_order must be one of 'blocks', 'round_robin', got section_order='interleaved'$",
            ),
            (
                ([1, 2, 3], 8),
                {"mrope_section": [2, 1, 1], "base": -3.0},
                ValueError,
                r"^base must be a finite real number > 1.0",
            ),
        ],
    )
    def test_errors(self, args, kwargs, exc, match):
        with pytest.raises(exc, match=match):
            mrope_angles(*args, **kwargs)

    def test_mrope_section_is_required(self):
        with pytest.raises(TypeError):
            mrope_angles([1, 2, 3], 8)

    def test_numpy_section_accepted(self):
        np.testing.assert_array_equal(
            mrope_angles([1, 2, 3], 8, mrope_section=np.array([2, 1, 1])),
            mrope_angles([1, 2, 3], 8, mrope_section=(2, 1, 1)),
        )


class TestApplyMrope:
    @pytest.mark.parametrize(
        "round_robin,dim,section",
        [(False, 32, (4, 6, 6)), (False, 128, (16, 24, 24)), (True, 128, (24, 20, 20)), (True, 16, (4, 2, 2))],
    )
    def test_hugging_face_recipe(self, round_robin, dim, section):
        rng = np.random.default_rng(9)
        pos = rng.integers(0, 3000, size=(3, 6))
        x = rng.standard_normal((6, dim))
        cos, sin = hf_mrope_cos_sin(pos, dim, 1e6, section, round_robin)
        rotate_half = np.concatenate([-x[:, dim // 2 :], x[:, : dim // 2]], axis=-1)
        expected = x * cos + rotate_half * sin
        got = apply_mrope(x, pos, base=1e6, mrope_section=section, section_order=ORDERS[round_robin])
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)

    @pytest.mark.parametrize("layout", ["half", "interleaved"])
    @pytest.mark.parametrize("round_robin", [False, True])
    def test_matches_complex_rotation_of_loop_angles(self, layout, round_robin):
        rng = np.random.default_rng(10)
        pos = rng.integers(0, 100, size=(3, 4))
        x = rng.standard_normal((4, 32))
        angles = mrope_loop(pos, 32, 10_000.0, (6, 5, 5), round_robin)
        got = apply_mrope(x, pos, mrope_section=(6, 5, 5), section_order=ORDERS[round_robin], layout=layout)
        np.testing.assert_allclose(got, rotate_pairs_complex(x, angles, layout), rtol=1e-12, atol=1e-13)

    @given(
        x=vectors(16),
        p=st.integers(0, 100_000),
        layout=st.sampled_from(["half", "interleaved"]),
        case=st.sampled_from([((4, 2, 2), False), ((4, 2, 2), True), ((0, 0, 8), False), ((8, 0, 0), True)]),
    )
    def test_equal_rows_give_1d_rope(self, x, p, layout, case):
        section, round_robin = case
        got = apply_mrope(x, [p, p, p], mrope_section=section, section_order=ORDERS[round_robin], layout=layout)
        np.testing.assert_array_equal(got, apply_rotary(x, rope_angles(p, 16), layout=layout))

    @given(
        q=vectors(16),
        k=vectors(16),
        pq=st.lists(st.integers(0, 500), min_size=3, max_size=3),
        pk=st.lists(st.integers(0, 500), min_size=3, max_size=3),
        shift=st.lists(st.integers(0, 500), min_size=3, max_size=3),
        round_robin=st.booleans(),
    )
    def test_score_depends_on_coordinate_offsets_only(self, q, k, pq, pk, shift, round_robin):
        def score(a, b):
            opts = {"mrope_section": (4, 2, 2), "section_order": ORDERS[round_robin], "base": 100.0}
            return apply_mrope(q, a, **opts) @ apply_mrope(k, b, **opts)

        moved_q = [a + s for a, s in zip(pq, shift)]
        moved_k = [b + s for b, s in zip(pk, shift)]
        scale = 1.0 + np.linalg.norm(q) * np.linalg.norm(k)
        assert abs(score(pq, pk) - score(moved_q, moved_k)) <= 1e-11 * scale

    def test_broadcast_over_heads(self):
        rng = np.random.default_rng(11)
        x = rng.standard_normal((2, 3, 4, 16))  # (B, H, S, D)
        pos = rng.integers(0, 50, size=(3, 2, 1, 4))  # (3, B, 1, S)
        got = apply_mrope(x, pos, mrope_section=[4, 2, 2])
        for b in range(2):
            for h in range(3):
                np.testing.assert_array_equal(got[b, h], apply_mrope(x[b, h], pos[:, b, 0], mrope_section=[4, 2, 2]))

    @pytest.mark.parametrize(
        "args,kwargs,exc,match",
        [
            (
                (np.ones(7), [0, 0, 0]),
                {"mrope_section": [2, 1, 1]},
                ValueError,
                r"^x must have an even, non-zero last dimension \(D\), got shape \(7,\)",
            ),
            (
                (np.ones(8), [0, 0, 0]),
                {"mrope_section": [2, 2, 1]},
                ValueError,
                r"^mrope_section must sum to D/2 = 4 \(x has shape \(8,\)\), got mrope_section=\[2, 2, 1\] \(sum 5\)",
            ),
            (
                (np.ones(4), [0, 0, 0]),
                {"mrope_section": [0, 1, 1], "section_order": "round_robin"},
                ValueError,
                r"^mrope_section=\[0, 1, 1\] does not fit section_order='round_robin'",
            ),
            (
                (np.ones((3, 8)), np.zeros((3, 2))),
                {"mrope_section": [2, 1, 1]},
                ValueError,
                r"^positions of shape \(3, 2\) \(coordinates first\) does not broadcast against x of shape \(3, 8\)",
            ),
            ((np.ones(8), [0, 0]), {"mrope_section": [2, 1, 1]}, ValueError, r"^positions must have first dimension 3"),
            (
                (np.ones(8), [0, 0, 0]),
                {"mrope_section": [2, 1, 1], "layout": "gptj"},
                ValueError,
                r"^layout must be one of 'half', 'interleaved', got layout='gptj'",
            ),
            (
                (np.ones(8), [0, 0, 0]),
                {"mrope_section": "211"},
                TypeError,
                r"^mrope_section must be a sequence of 3 non-negative integers",
            ),
            (
                (np.ones(8), [0, 0, 0]),
                {"mrope_section": [2, 1, 1], "section_order": True},
                ValueError,
                r"^section_order must be one of 'blocks', 'round_robin', got section_order=True$",
            ),
            (
                (np.ones(8), [0, 0, 0]),
                {"mrope_section": [2, 1, 1], "base": 1.0},
                ValueError,
                r"^base must be a finite real number > 1.0",
            ),
            (
                (np.array([1.0, np.nan]), [0, 0, 0]),
                {"mrope_section": [1, 0, 0]},
                ValueError,
                r"^x must contain only finite values",
            ),
        ],
    )
    def test_errors(self, args, kwargs, exc, match):
        with pytest.raises(exc, match=match):
            apply_mrope(*args, **kwargs)


class TestMropeDeprecatedInterleaved:
    """``interleaved=`` is the former name of ``section_order=``: it warns and gives the same bits."""

    @pytest.mark.parametrize("function", ["mrope_angles", "apply_mrope"])
    @pytest.mark.parametrize("round_robin", [False, True])
    def test_old_name_warns_and_gives_the_same_result(self, function, round_robin):
        pos = np.random.default_rng(12).integers(0, 1000, size=(3, 5))
        if function == "mrope_angles":
            def call(**order):
                return mrope_angles(pos, 16, mrope_section=(4, 2, 2), base=1e6, **order)
        else:
            x = np.random.default_rng(13).standard_normal((5, 16))

            def call(**order):
                return apply_mrope(x, pos, mrope_section=(4, 2, 2), base=1e6, **order)

        with pytest.warns(DeprecationWarning, match=rf"^{function}\(\): interleaved= is deprecated; "
                                                    r"use section_order= instead$") as record:
            old = call(interleaved=round_robin)
        assert record[0].filename == __file__  # points at the caller
        np.testing.assert_array_equal(old, call(section_order=ORDERS[round_robin]))

    @pytest.mark.parametrize("function", [mrope_angles, apply_mrope])
    def test_both_names_are_refused(self, function):
        args = ([1, 2, 3], 8) if function is mrope_angles else (np.ones(8), [1, 2, 3])
        name = function.__name__
        with pytest.raises(TypeError, match=rf"^{name}\(\) got both section_order= and its deprecated name "
                                            r"interleaved=; pass section_order= only$"):
            function(*args, mrope_section=[2, 1, 1], section_order="round_robin", interleaved=True)

    def test_old_name_is_still_checked(self):
        with pytest.warns(DeprecationWarning), pytest.raises(TypeError, match=r"^interleaved must be True or False"):
            mrope_angles([1, 2, 3], 8, mrope_section=[2, 1, 1], interleaved=1)

    def test_new_name_is_the_documented_default(self):
        for function in (mrope_angles, apply_mrope):
            parameters = inspect.signature(function).parameters
            assert parameters["section_order"].default == "blocks"
            assert parameters["interleaved"].default is None


# =========================================================================================
# mrope_position_ids
# =========================================================================================

TEXT, VISION = 0, 1


def get_rope_index_restated(token_kinds, grids, merge):
    """The Qwen2-VL get_rope_index loop over one unpadded sequence, written over token kinds."""
    tokens = list(token_kinds)
    pieces = []
    st_ = 0
    for t, h, w in grids:
        ed = tokens.index(VISION, st_)
        gt, gh, gw = t, h // merge, w // merge
        text_len = ed - st_
        st_idx = pieces[-1].max() + 1 if pieces else 0
        pieces.append(np.tile(np.arange(text_len), (3, 1)) + st_idx)
        t_index = np.repeat(np.arange(gt), gh * gw)
        h_index = np.tile(np.repeat(np.arange(gh), gw), gt)
        w_index = np.tile(np.arange(gw), gt * gh)
        pieces.append(np.stack([t_index, h_index, w_index]) + text_len + st_idx)
        st_ = ed + gt * gh * gw
    if st_ < len(tokens):
        st_idx = pieces[-1].max() + 1 if pieces else 0
        pieces.append(np.tile(np.arange(len(tokens) - st_), (3, 1)) + st_idx)
    return np.concatenate(pieces, axis=1) if pieces else np.zeros((3, 0), dtype=np.int64)


def kinds_of(segments, merge):
    kinds, grids = [], []
    for s in segments:
        if isinstance(s, int):
            kinds += [TEXT] * s
        else:
            kinds += [VISION] * (s[0] * (s[1] // merge) * (s[2] // merge))
            grids.append(s)
    return kinds, grids


segment_lists = st.lists(
    st.one_of(
        st.integers(0, 6),
        st.tuples(st.integers(1, 3), st.integers(1, 4).map(lambda v: 2 * v), st.integers(1, 4).map(lambda v: 2 * v)),
    ),
    max_size=6,
)


class TestMropePositionIds:
    def test_known_values(self):
        expected = np.array(
            [
                [0, 1, 2, 2, 2, 2, 2, 2, 5, 6, 7],
                [0, 1, 2, 2, 2, 3, 3, 3, 5, 6, 7],
                [0, 1, 2, 3, 4, 2, 3, 4, 5, 6, 7],
            ]
        )
        got = mrope_position_ids([2, (1, 4, 6), 3])
        np.testing.assert_array_equal(got, expected)
        assert got.dtype == np.int64

    def test_video_known_values(self):
        # 2 frames of a 2 x 2 patch grid, no merging: t = 0, 0, 0, 0, 1, 1, 1, 1; then text at max(2, 2, 2) = 2
        got = mrope_position_ids([(2, 2, 2), 1], spatial_merge_size=1)
        np.testing.assert_array_equal(
            got, [[0, 0, 0, 0, 1, 1, 1, 1, 2], [0, 0, 1, 1, 0, 0, 1, 1, 2], [0, 1, 0, 1, 0, 1, 0, 1, 2]]
        )

    def test_text_only_is_arange(self):
        np.testing.assert_array_equal(mrope_position_ids([5]), np.tile(np.arange(5), (3, 1)))
        np.testing.assert_array_equal(mrope_position_ids([2, 3]), np.tile(np.arange(5), (3, 1)))

    def test_empty(self):
        assert mrope_position_ids([]).shape == (3, 0)
        assert mrope_position_ids([0, 0]).shape == (3, 0)

    def test_two_images_back_to_back(self):
        # first grid (1, 1, 2) after merging covers 0..1; the second starts at 2
        got = mrope_position_ids([(1, 2, 4), (1, 2, 2)])
        np.testing.assert_array_equal(got, [[0, 0, 2], [0, 0, 2], [0, 1, 2]])

    @given(segments=segment_lists, merge=st.sampled_from([1, 2]))
    def test_matches_get_rope_index_loop(self, segments, merge):
        kinds, grids = kinds_of(segments, merge)
        expected = get_rope_index_restated(kinds, grids, merge)
        np.testing.assert_array_equal(mrope_position_ids(segments, spatial_merge_size=merge), expected)

    @given(segments=segment_lists)
    def test_length_and_monotone_temporal(self, segments):
        got = mrope_position_ids(segments)
        length = sum(s if isinstance(s, int) else s[0] * (s[1] // 2) * (s[2] // 2) for s in segments)
        assert got.shape == (3, length)
        assert np.all(np.diff(got[0]) >= 0)

    def test_feeds_mrope_angles(self):
        pos = mrope_position_ids([3, (1, 4, 4), 2])
        angles = mrope_angles(pos, 16, mrope_section=[4, 2, 2])
        assert angles.shape == (pos.shape[1], 8)
        np.testing.assert_array_equal(angles[:3], rope_angles(np.arange(3), 16))

    @pytest.mark.parametrize(
        "args,kwargs,exc,match",
        [
            (
                (5,),
                {},
                TypeError,
                r"^segments must be a sequence of text lengths and \(t, h, w\) grids, got segments=5",
            ),
            (("abc",), {}, TypeError, r"^segments must be a sequence"),
            (
                ([2, "x"],),
                {},
                TypeError,
                r"^segments\[1\] must be a non-negative integer \(text tokens\) or a \(t, h, w\) triple",
            ),
            (([2, (1, 4)],), {}, ValueError, r"^segments\[1\] must be .* of length 2"),
            (([-1],), {}, ValueError, r"^segments\[0\] must be a non-negative integer, got segments\[0\]=-1"),
            (
                ([(0, 2, 2)],),
                {},
                ValueError,
                r"^segments\[0\]\[0\] must be a positive integer, got segments\[0\]\[0\]=0",
            ),
            (([(1, 2.0, 2)],), {}, TypeError, r"^segments\[0\]\[1\] must be a positive integer"),
            (([(1, 3, 4)],), {}, ValueError, r"^segments\[0\] has h=3, which is not divisible by spatial_merge_size=2"),
            (([(1, 4, 5)],), {}, ValueError, r"^segments\[0\] has w=5, which is not divisible by spatial_merge_size=2"),
            (
                ([2],),
                {"spatial_merge_size": 0},
                ValueError,
                r"^spatial_merge_size must be a positive integer, got spatial_merge_size=0",
            ),
            (([2],), {"spatial_merge_size": 2.0}, TypeError, r"^spatial_merge_size must be a positive integer"),
            (([True],), {}, TypeError, r"^segments\[0\] must be a non-negative integer"),
        ],
    )
    def test_errors(self, args, kwargs, exc, match):
        with pytest.raises(exc, match=match):
            mrope_position_ids(*args, **kwargs)
