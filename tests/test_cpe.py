"""Tests of posref.cpe: the PEG of CPVT."""

import inspect

import numpy as np
import pytest
import scipy.ndimage
import scipy.signal
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from posref import peg, sincos_2d_encoding


def brute_force_peg(tokens, weight, bias, rows, cols, class_token):
    """Six nested loops over (b, c, r, s, u, v), written from the formula."""
    batch, n, channels = tokens.shape
    k = weight.shape[-1]
    p = k // 2
    start = 1 if class_token else 0
    out = [[list(map(float, tokens[b, i])) for i in range(n)] for b in range(batch)]
    for b in range(batch):
        for c in range(channels):
            for r in range(rows):
                for s in range(cols):
                    acc = float(tokens[b, start + r * cols + s, c]) + float(bias[c])
                    for u in range(k):
                        for v in range(k):
                            rr, ss = r + u - p, s + v - p
                            if 0 <= rr < rows and 0 <= ss < cols:
                                acc += float(weight[c, 0, u, v]) * float(tokens[b, start + rr * cols + ss, c])
                    out[b][start + r * cols + s][c] = acc
    return np.array(out, dtype=np.float64).reshape(tokens.shape)


def scipy_peg(tokens, weight, bias, rows, cols, class_token, *, via="ndimage"):
    """Per-channel zero-padded cross-correlation from SciPy, plus residual and bias."""
    start = 1 if class_token else 0
    out = tokens.astype(np.float64).copy()
    for b in range(tokens.shape[0]):
        for c in range(tokens.shape[2]):
            grid = tokens[b, start:, c].reshape(rows, cols)
            if via == "ndimage":
                conv = scipy.ndimage.correlate(grid, weight[c, 0], mode="constant", cval=0.0)
            else:
                conv = scipy.signal.correlate2d(grid, weight[c, 0], mode="same", boundary="fill", fillvalue=0)
            out[b, start:, c] = (grid + conv + bias[c]).ravel()
    return out


class TestPegKnownValues:
    def test_identity_kernel_doubles_the_grid(self):
        tokens = np.arange(2 * 6 * 3, dtype=np.float64).reshape(2, 6, 3)
        weight = np.zeros((3, 1, 3, 3))
        weight[:, 0, 1, 1] = 1.0
        out = peg(tokens, weight, np.zeros(3), grid_shape=(2, 3))
        np.testing.assert_array_equal(out, 2 * tokens)

    def test_identity_kernel_with_bias(self):
        tokens = np.ones((1, 4, 2))
        weight = np.zeros((2, 1, 1, 1))
        weight[:, 0, 0, 0] = 1.0
        out = peg(tokens, weight, [0.5, -1.0], grid_shape=(2, 2))
        np.testing.assert_array_equal(out[0], [[2.5, 1.0]] * 4)

    def test_ones_kernel_on_constant_grid(self):
        # 4 x 5 grid of the value 3: corners see 4 cells, edges 6, interior 9;
        # the residual adds one more copy of the value.
        value = 3.0
        tokens = np.full((1, 20, 1), value)
        out = peg(tokens, np.ones((1, 1, 3, 3)), [0.0], grid_shape=(4, 5))[0, :, 0].reshape(4, 5)
        expected = np.array(
            [
                [5, 7, 7, 7, 5],
                [7, 10, 10, 10, 7],
                [7, 10, 10, 10, 7],
                [5, 7, 7, 7, 5],
            ]
        ) * value
        np.testing.assert_array_equal(out, expected)

    def test_cross_correlation_not_convolution(self):
        # A kernel whose only 1 is at (u, v) = (0, 0) reads the cell up-left:
        # y(r, s) = x(r, s) + x(r - 1, s - 1).  A flipped kernel (true
        # convolution) would read the cell down-right instead.
        grid = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
        weight = np.zeros((1, 1, 3, 3))
        weight[0, 0, 0, 0] = 1.0
        out = peg(grid.reshape(1, 9, 1), weight, [0.0], grid_shape=(3, 3)).reshape(3, 3)
        expected = np.array([[1.0, 2.0, 3.0], [4.0, 5.0 + 1.0, 6.0 + 2.0], [7.0, 8.0 + 4.0, 9.0 + 5.0]])
        np.testing.assert_array_equal(out, expected)

    def test_class_token_passes_through(self):
        tokens = np.arange(1 * 5 * 2, dtype=np.float64).reshape(1, 5, 2) + 1.0
        out = peg(tokens, np.ones((2, 1, 3, 3)), [7.0, 7.0], grid_shape=(2, 2), class_token=True)
        np.testing.assert_array_equal(out[:, 0], tokens[:, 0])
        # 2 x 2 grid with a 3 x 3 kernel: every cell sees the whole grid.
        grid_sum = tokens[0, 1:].sum(axis=0)
        np.testing.assert_array_equal(out[0, 1:], tokens[0, 1:] + grid_sum + 7.0)

    def test_row_major_token_order(self):
        # Kernel reading the right neighbour: y(r, s) = x(r, s) + x(r, s + 1).
        weight = np.zeros((1, 1, 3, 3))
        weight[0, 0, 1, 2] = 1.0
        tokens = np.array([1.0, 2.0, 3.0, 10.0, 20.0, 30.0]).reshape(1, 6, 1)  # 2 rows x 3 cols
        out = peg(tokens, weight, [0.0], grid_shape=(2, 3))[0, :, 0]
        np.testing.assert_array_equal(out, [3.0, 5.0, 3.0, 30.0, 50.0, 30.0])

    def test_kernel_larger_than_grid(self):
        # 5 x 5 ones kernel on a 1 x 2 grid: both cells see both cells.
        out = peg(np.array([[[1.0], [2.0]]]), np.ones((1, 1, 5, 5)), [0.0], grid_shape=(1, 2))
        np.testing.assert_array_equal(out[0, :, 0], [4.0, 5.0])

    def test_input_is_not_modified_and_output_is_float64(self):
        tokens = np.ones((1, 4, 1), dtype=np.float32)
        out = peg(tokens, np.ones((1, 1, 3, 3)), [0.0], grid_shape=(2, 2))
        assert out.dtype == np.float64
        np.testing.assert_array_equal(tokens, 1.0)


class TestPegIndependent:
    @pytest.mark.parametrize("class_token", [False, True])
    @pytest.mark.parametrize("k", [1, 3, 5])
    def test_matches_brute_force_exactly_on_integers(self, k, class_token):
        rng = np.random.default_rng(k + 10 * class_token)
        rows, cols, channels = 4, 3, 2
        n = rows * cols + class_token
        tokens = rng.integers(-8, 9, size=(2, n, channels)).astype(np.float64)
        weight = rng.integers(-4, 5, size=(channels, 1, k, k)).astype(np.float64)
        bias = rng.integers(-3, 4, size=channels).astype(np.float64)
        out = peg(tokens, weight, bias, grid_shape=(rows, cols), class_token=class_token)
        # Small integers: every sum is exact, so equality is exact.
        np.testing.assert_array_equal(out, brute_force_peg(tokens, weight, bias, rows, cols, class_token))

    @pytest.mark.parametrize("via", ["ndimage", "signal"])
    def test_matches_scipy_correlation(self, via):
        rng = np.random.default_rng(7)
        rows, cols, channels = 5, 6, 3
        tokens = rng.standard_normal((2, 1 + rows * cols, channels))
        weight = rng.standard_normal((channels, 1, 3, 3))
        bias = rng.standard_normal(channels)
        out = peg(tokens, weight, bias, grid_shape=(rows, cols), class_token=True)
        expected = scipy_peg(tokens, weight, bias, rows, cols, True, via=via)
        np.testing.assert_allclose(out, expected, rtol=1e-13, atol=1e-13)

    @given(
        rows=st.integers(1, 5),
        cols=st.integers(1, 5),
        channels=st.integers(1, 3),
        half_k=st.integers(0, 2),
        class_token=st.booleans(),
        data=st.data(),
    )
    def test_matches_scipy_property(self, rows, cols, channels, half_k, class_token, data):
        k = 2 * half_k + 1
        n = rows * cols + class_token
        floats = st.floats(-10, 10, allow_nan=False, allow_infinity=False)
        tokens = data.draw(hnp.arrays(np.float64, (1, n, channels), elements=floats))
        weight = data.draw(hnp.arrays(np.float64, (channels, 1, k, k), elements=floats))
        bias = data.draw(hnp.arrays(np.float64, (channels,), elements=floats))
        out = peg(tokens, weight, bias, grid_shape=(rows, cols), class_token=class_token)
        expected = scipy_peg(tokens, weight, bias, rows, cols, class_token)
        np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-10)


class TestPegProperties:
    @given(
        rows=st.integers(3, 6),
        cols=st.integers(3, 6),
        shift=st.tuples(st.integers(0, 1), st.integers(0, 1)),
    )
    def test_translation_equivariance_away_from_the_border(self, rows, cols, shift):
        # Shifting the content inside a zero border shifts the output the same way.
        rng = np.random.default_rng(rows * 10 + cols)
        weight = rng.standard_normal((1, 1, 3, 3))
        inner = rng.standard_normal((rows, cols))
        big = (rows + 4, cols + 4)
        a = np.zeros(big)
        a[1 : 1 + rows, 1 : 1 + cols] = inner
        b = np.zeros(big)
        b[1 + shift[0] : 1 + shift[0] + rows, 1 + shift[1] : 1 + shift[1] + cols] = inner
        out_a = peg(a.reshape(1, -1, 1), weight, [0.0], grid_shape=big).reshape(big)
        out_b = peg(b.reshape(1, -1, 1), weight, [0.0], grid_shape=big).reshape(big)
        np.testing.assert_allclose(
            np.roll(out_a, shift, axis=(0, 1)), out_b, rtol=0, atol=1e-12
        )

    def test_linear_in_tokens_without_bias(self):
        rng = np.random.default_rng(3)
        weight = rng.standard_normal((2, 1, 3, 3))
        x, y = rng.standard_normal((2, 1, 12, 2))
        kw = dict(grid_shape=(3, 4))
        combo = peg(2.0 * x + 3.0 * y, weight, np.zeros(2), **kw)
        np.testing.assert_allclose(
            combo, 2.0 * peg(x, weight, np.zeros(2), **kw) + 3.0 * peg(y, weight, np.zeros(2), **kw), atol=1e-12
        )

    def test_channels_are_independent(self):
        rng = np.random.default_rng(4)
        tokens = rng.standard_normal((1, 9, 3))
        weight = rng.standard_normal((3, 1, 3, 3))
        bias = rng.standard_normal(3)
        out = peg(tokens, weight, bias, grid_shape=(3, 3))
        for c in range(3):
            single = peg(tokens[:, :, c : c + 1], weight[c : c + 1], bias[c : c + 1], grid_shape=(3, 3))
            np.testing.assert_array_equal(out[:, :, c : c + 1], single)


class TestPegErrors:
    def args(self):
        return np.ones((1, 4, 2)), np.ones((2, 1, 3, 3)), np.zeros(2)

    def test_tokens_rank(self):
        _, w, b = self.args()
        with pytest.raises(ValueError, match=r"^tokens must be a 3-D array, got shape \(4, 2\)"):
            peg(np.ones((4, 2)), w, b, grid_shape=(2, 2))

    def test_tokens_not_numeric(self):
        _, w, b = self.args()
        with pytest.raises(TypeError, match=r"^tokens must be a"):
            peg("abc", w, b, grid_shape=(2, 2))

    def test_tokens_not_finite(self):
        x, w, b = self.args()
        x[0, 0, 0] = np.nan
        with pytest.raises(ValueError, match=r"^tokens must contain only finite values"):
            peg(x, w, b, grid_shape=(2, 2))

    def test_weight_rank(self):
        x, _, b = self.args()
        with pytest.raises(ValueError, match=r"^weight must be a 4-D array, got shape \(2, 3, 3\)"):
            peg(x, np.ones((2, 3, 3)), b, grid_shape=(2, 2))

    @pytest.mark.parametrize("shape", [(3, 1, 3, 3), (2, 2, 3, 3), (2, 1, 3, 5), (2, 1, 2, 2)])
    def test_weight_shape(self, shape):
        x, _, b = self.args()
        message = r"^weight must have shape \(C, 1, k, k\) = \(2, 1, k, k\) with k odd .*got shape " + (
            r"\(" + ", ".join(map(str, shape)) + r"\)"
        )
        with pytest.raises(ValueError, match=message):
            peg(x, np.ones(shape), b, grid_shape=(2, 2))

    def test_bias_shape(self):
        x, w, _ = self.args()
        with pytest.raises(ValueError, match=r"^bias must have shape \(C,\) = \(2,\) .*got shape \(3,\)"):
            peg(x, w, np.zeros(3), grid_shape=(2, 2))

    def test_bias_rank(self):
        x, w, _ = self.args()
        with pytest.raises(ValueError, match=r"^bias must be a 1-D array, got shape \(\)"):
            peg(x, w, 0.0, grid_shape=(2, 2))

    @pytest.mark.parametrize("grid_shape", [4, (2, 2, 1), "22", (2.0, 2), (True, 2), None])
    def test_grid_shape_type(self, grid_shape):
        x, w, b = self.args()
        with pytest.raises(TypeError, match=r"^grid_shape must be a pair \(rows, cols\) of positive integers"):
            peg(x, w, b, grid_shape=grid_shape)

    @pytest.mark.parametrize("grid_shape", [(0, 4), (4, -1)])
    def test_grid_shape_value(self, grid_shape):
        x, w, b = self.args()
        with pytest.raises(ValueError, match=r"^grid_shape must be a pair \(rows, cols\) of positive integers"):
            peg(x, w, b, grid_shape=grid_shape)

    def test_token_count_without_class_token(self):
        x, w, b = self.args()
        with pytest.raises(
            ValueError, match=r"^tokens must have N = rows \* cols = 6 tokens for grid_shape=\(2, 3\), got shape"
        ):
            peg(x, w, b, grid_shape=(2, 3))

    def test_token_count_with_class_token(self):
        x, w, b = self.args()
        with pytest.raises(
            ValueError,
            match=r"^tokens must have N = rows \* cols \+ 1 \(class token\) = 5 tokens for grid_shape=\(2, 2\)",
        ):
            peg(x, w, b, grid_shape=(2, 2), class_token=True)

    def test_class_token_type(self):
        x, w, b = self.args()
        with pytest.raises(TypeError, match=r"^class_token must be True or False, got class_token=1"):
            peg(x, w, b, grid_shape=(2, 2), class_token=1)

    def test_grid_shape_is_required(self):
        x, w, b = self.args()
        with pytest.raises(TypeError, match="grid_shape"):
            peg(x, w, b)


class TestPegDeprecatedHasClassToken:
    """``has_class_token=`` is the former name of ``class_token=``: it warns and gives the same bits."""

    @pytest.mark.parametrize("class_token", [False, True])
    def test_old_name_warns_and_gives_the_same_result(self, class_token):
        rng = np.random.default_rng(31)
        tokens = rng.standard_normal((2, 6 + class_token, 3))
        weight, bias = rng.standard_normal((3, 1, 3, 3)), rng.standard_normal(3)
        with pytest.warns(DeprecationWarning, match=r"^peg\(\): has_class_token= is deprecated; use class_token= "
                                                    r"instead$") as record:
            old = peg(tokens, weight, bias, grid_shape=(2, 3), has_class_token=class_token)
        assert record[0].filename == __file__  # points at the caller
        np.testing.assert_array_equal(old, peg(tokens, weight, bias, grid_shape=(2, 3), class_token=class_token))

    def test_both_names_are_refused(self):
        tokens = np.ones((1, 5, 1))
        with pytest.raises(TypeError, match=r"^peg\(\) got both class_token= and its deprecated name "
                                            r"has_class_token=; pass class_token= only$"):
            peg(tokens, np.ones((1, 1, 3, 3)), [0.0], grid_shape=(2, 2), class_token=True, has_class_token=True)

    def test_old_name_is_still_checked(self):
        x, w, b = np.ones((1, 4, 2)), np.ones((2, 1, 3, 3)), np.zeros(2)
        with pytest.warns(DeprecationWarning), pytest.raises(
            TypeError, match=r"^has_class_token must be True or False, got has_class_token=1"
        ):
            peg(x, w, b, grid_shape=(2, 2), has_class_token=1)

    def test_same_name_as_sincos_2d_encoding(self):
        assert inspect.signature(peg).parameters["class_token"].default is False
        assert inspect.signature(sincos_2d_encoding).parameters["class_token"].default is False
