"""NoPE: the identity, whatever the positions.

Expected values come from hand arithmetic, from the survey's computed
tables (conventions.md sections 8 and 16), from element-by-element loops
written with the ``math`` module, from exact integer arithmetic and from
mpmath; never from running the functions under test.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis.extra import numpy as hnp
from _relative_helpers import finite_floats

from posref import nope, nope_attention_temperature, spec_functions


def test_catalogue_family_and_module():
    entries = spec_functions("nope")
    assert sorted(e.name for e in entries) == sorted(["nope", "nope_attention_temperature"])
    assert {e.module for e in entries} == {"posref.relative.nope"}


class TestNope:
    def test_identity_copy(self):
        x = np.arange(6, dtype=np.float32).reshape(3, 2)
        out = nope(x, [0, 1, 2])
        assert out.dtype == np.float64
        np.testing.assert_array_equal(out, x)
        out[0, 0] = 99.0
        assert x[0, 0] == 0.0

    @given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=4, max_side=4), elements=finite_floats))
    def test_positions_do_not_matter(self, x):
        t = x.shape[-2]
        np.testing.assert_array_equal(nope(x, np.arange(t)), nope(x, np.arange(t) + 1000))

    def test_errors(self):
        with pytest.raises(ValueError, match=r"^positions must hold non-negative integers"):
            nope(np.ones((2, 4)), [0, -1])
        with pytest.raises(ValueError, match=r"^positions must hold non-negative integers, got a non-integer value 0.5$"):
            nope(np.ones((2, 4)), [0, 0.5])
        with pytest.raises(ValueError, match=r"^positions of shape \(3,\) does not broadcast to x.shape\[:-1\] = \(2,\)$"):
            nope(np.ones((2, 4)), [0, 1, 2])
        with pytest.raises(ValueError, match=r"^positions of shape \(2, 2\) does not broadcast"):
            nope(np.ones((2, 4)), [[0, 1], [0, 1]])
        with pytest.raises(ValueError, match=r"^x must be an array with at least 1 dimension, got shape \(\)$"):
            nope(1.0, [0])
        with pytest.raises(TypeError, match=r"^x must be a numeric array"):
            nope("x", [0])
        with pytest.raises(ValueError, match=r"^x must contain only finite values"):
            nope([np.nan], [0])


class TestNopeAttentionTemperature:
    """Llama 4's query temperature; expectations from integer steps and mpmath, not from posref."""

    @staticmethod
    def expected(position, floor_scale=8192, attn_scale=0.1):
        import mpmath

        steps = (int(position) + 1) // int(floor_scale)  # exact Python integers
        with mpmath.workdps(40):
            return float(1 + mpmath.mpf(attn_scale) * mpmath.log(1 + steps))

    def test_steps_start_at_multiples_of_the_floor_scale_minus_one(self):
        positions = [0, 1, 8190, 8191, 16382, 16383, 24575, 1_000_000, 10_000_000]
        got = nope_attention_temperature(positions)
        assert got[:3].tolist() == [1.0, 1.0, 1.0]  # below the first step the queries are untouched
        for p, value in zip(positions, got):
            assert value == pytest.approx(self.expected(p), rel=2**-52, abs=0), p

    @pytest.mark.parametrize("floor_scale, attn_scale", [(1, 0.1), (4096, 0.2), (3, 1.5), (8192, 0.0), (10, -0.5)])
    def test_other_settings(self, floor_scale, attn_scale):
        positions = np.array([[0, 2, 3, 4095, 4096], [8191, 9000, 12287, 2**30, 2**40]])
        got = nope_attention_temperature(positions, floor_scale=floor_scale, attn_scale=attn_scale)
        assert got.shape == positions.shape and got.dtype == np.float64
        for p, value in zip(positions.ravel(), got.ravel()):
            assert value == pytest.approx(self.expected(p, floor_scale, attn_scale), rel=2**-51, abs=2**-52), p

    def test_hugging_face_float32_formula_agrees_to_float32_rounding(self):
        # Llama4TextAttention: log1p(floor((positions.float() + 1) / floor_scale)) * attn_scale + 1 in float32
        p = np.arange(0, 5_000_000, 997, dtype=np.int64)
        f32 = np.float32
        hf = np.log1p(np.floor((p.astype(f32) + f32(1)) / f32(8192))) * f32(0.1) + f32(1)
        np.testing.assert_allclose(hf.astype(np.float64), nope_attention_temperature(p), rtol=4 * 2.0**-24, atol=0)

    def test_monotone_and_scale_free_steps(self):
        got = nope_attention_temperature(np.arange(0, 200_000))
        assert np.all(np.diff(got) >= 0)
        assert len(np.unique(got)) == (200_000 + 1) // 8192 + 1

    @pytest.mark.parametrize("kwargs, error, match", [
        ({"positions": [-1, 0]}, ValueError, "positions"),
        ({"positions": [0.5]}, ValueError, "positions"),
        ({"positions": ["a"]}, TypeError, "positions"),
        ({"positions": [0], "floor_scale": 0}, ValueError, "floor_scale"),
        ({"positions": [0], "floor_scale": 8192.5}, TypeError, "floor_scale"),
        ({"positions": [0], "attn_scale": float("nan")}, ValueError, "attn_scale"),
        ({"positions": [0], "attn_scale": "0.1"}, TypeError, "attn_scale"),
    ])
    def test_rejects_bad_input(self, kwargs, error, match):
        positions = kwargs.pop("positions")
        with pytest.raises(error, match=match):
            nope_attention_temperature(positions, **kwargs)
