"""KERPLE: logarithmic and power biases, and the distance they share.

Expected values come from hand arithmetic, from the survey's computed
tables (conventions.md sections 8 and 16), from element-by-element loops
written with the ``math`` module, from exact integer arithmetic and from
mpmath; never from running the functions under test.
"""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from posref import kerple_log_bias, kerple_power_bias, sandwich_bias, spec_functions
from posref.relative import relative_distance


def test_catalogue_family_and_module():
    entries = spec_functions("kerple")
    assert sorted(e.name for e in entries) == sorted(["kerple_log_bias", "kerple_power_bias"])
    assert {e.module for e in entries} == {"posref.relative.kerple"}


class TestKerple:
    def test_log_survey_values(self):
        # conventions.md section 16: r1 = 1, r2 = 0.5, distances 0..4
        out = kerple_log_bias([0, 1, 2, 3, 4], [0], r1=[1.0], r2=[0.5])
        np.testing.assert_allclose(out[0, :, 0], [0, -0.4055, -0.6931, -0.9163, -1.0986], atol=5e-5)
        np.testing.assert_allclose(out[0, :, 0], [-math.log(1 + 0.5 * n) for n in range(5)], rtol=1e-15)

    def test_log_by_loops(self):
        qpos, kpos = [0, 3, 7, 20], [0, 1, 5, 7, 30]
        r1, r2 = [0.3, 1.7], [0.01, 2.5]
        for bidirectional in (False, True):
            out = kerple_log_bias(qpos, kpos, r1=r1, r2=r2, bidirectional=bidirectional)
            for h in range(2):
                for i, m in enumerate(qpos):
                    for j, n in enumerate(kpos):
                        dist = abs(m - n) if bidirectional else max(m - n, 0)
                        assert out[h, i, j] == pytest.approx(-r1[h] * math.log(1 + r2[h] * dist), rel=1e-14, abs=0)

    def test_power_hand_values(self):
        out = kerple_power_bias([4], [0, 1, 3, 4, 9], a=[2.0, 1.0], p=[0.5, 2.0])
        np.testing.assert_allclose(out[0, 0], [-4.0, -2 * math.sqrt(3), -2.0, 0.0, 0.0], rtol=1e-15)
        np.testing.assert_allclose(out[1, 0], [-16.0, -9.0, -1.0, 0.0, 0.0], rtol=1e-15)
        bi = kerple_power_bias([4], [9], a=[1.0], p=[2.0], bidirectional=True)
        assert bi[0, 0, 0] == -25.0

    def test_power_one_is_alibi(self):
        slopes = np.array([0.5, 0.25, 0.125])
        out = kerple_power_bias(np.arange(6), np.arange(6), a=slopes, p=np.ones(3), bidirectional=True)
        expected = -slopes[:, None, None] * np.abs(np.arange(6)[:, None] - np.arange(6)[None, :])
        np.testing.assert_array_equal(out, expected)

    @given(
        hnp.arrays(np.float64, st.integers(1, 4), elements=st.floats(0, 3)),
        st.lists(st.integers(0, 500), min_size=1, max_size=6),
        st.booleans(),
    )
    def test_log_properties(self, r, positions, bidirectional):
        out = kerple_log_bias(positions, positions, r1=r, r2=r[::-1].copy(), bidirectional=bidirectional)
        assert np.all(out <= 0)
        dist = np.abs(np.subtract.outer(positions, positions)) if bidirectional else np.maximum(np.subtract.outer(positions, positions), 0)
        order = np.argsort(dist.ravel())
        assert np.all(np.diff(out.reshape(len(r), -1)[:, order], axis=1) <= 1e-15)
        np.testing.assert_array_equal(np.diagonal(out, axis1=1, axis2=2), 0.0)

    @given(
        hnp.arrays(np.float64, 3, elements=st.floats(0, 3)),
        hnp.arrays(np.float64, 3, elements=st.floats(0.01, 2)),
        st.integers(0, 1000),
        st.integers(0, 1000),
        st.integers(0, 1000),
    )
    def test_power_properties(self, a, p, m, n, shift):
        out = kerple_power_bias([m, m + shift], [n, n + shift], a=a, p=p)
        assert np.all(out <= 0)
        np.testing.assert_allclose(out[:, 0, 0], out[:, 1, 1], rtol=1e-12)  # translation invariant
        if n < m:
            far = kerple_power_bias([m], [n - 1 if n else 0], a=a, p=p)
            assert np.all(far[:, 0, 0] <= out[:, 0, 0] + 1e-12)

    def test_errors(self):
        with pytest.raises(ValueError, match=r"^r1 must hold values in \[0.0, inf\), got minimum -1.0 and maximum 1.0$"):
            kerple_log_bias([0], [0], r1=[-1.0, 1.0], r2=[1.0, 1.0])
        with pytest.raises(ValueError, match=r"^r2 must hold values in \[0.0, inf\)"):
            kerple_log_bias([0], [0], r1=[1.0], r2=[-0.5])
        with pytest.raises(ValueError, match=r"^r1 and r2 must have the same shape, got r1\(2,\), r2\(1,\)$"):
            kerple_log_bias([0], [0], r1=[1.0, 1.0], r2=[1.0])
        with pytest.raises(ValueError, match=r"^r1 must be a 1-D array, got shape \(\)$"):
            kerple_log_bias([0], [0], r1=1.0, r2=[1.0])
        with pytest.raises(ValueError, match=r"^r2 must not be empty, got shape \(0,\)$"):
            kerple_log_bias([0], [0], r1=[1.0], r2=[])
        with pytest.raises(ValueError, match=r"^r1 must contain only finite values"):
            kerple_log_bias([0], [0], r1=[np.inf], r2=[1.0])
        with pytest.raises(ValueError, match=r"^p must hold values in \(0.0, 2.0\], got minimum 0.0"):
            kerple_power_bias([0], [0], a=[1.0], p=[0.0])
        with pytest.raises(ValueError, match=r"^p must hold values in \(0.0, 2.0\], got minimum 2.5 and maximum 2.5$"):
            kerple_power_bias([0], [0], a=[1.0], p=[2.5])
        with pytest.raises(ValueError, match=r"^a must hold values in \[0.0, inf\)"):
            kerple_power_bias([0], [0], a=[-1.0], p=[1.0])
        with pytest.raises(ValueError, match=r"^a and p must have the same shape"):
            kerple_power_bias([0], [0], a=[1.0], p=[1.0, 1.0])
        with pytest.raises(TypeError, match=r"^bidirectional must be True or False, got bidirectional=0"):
            kerple_power_bias([0], [0], a=[1.0], p=[1.0], bidirectional=0)
        with pytest.raises(ValueError, match=r"^query_positions must hold non-negative values, got minimum"):
            kerple_log_bias([-1], [0], r1=[1.0], r2=[1.0])
        with pytest.raises(ValueError, match=r"^key_positions must be a 1-D array, got shape \(1, 1\)$"):
            kerple_log_bias([0], [[0]], r1=[1.0], r2=[1.0])
        with pytest.raises(TypeError, match=r"^query_positions must be a numeric array"):
            kerple_power_bias(None, [0], a=[1.0], p=[1.0])


# -- relative_distance: the distance of KERPLE and Sandwich (a helper, not a spec function) ----------


def _distance_by_loops(query_positions, key_positions, bidirectional):
    out = np.empty((len(query_positions), len(key_positions)))
    for i, pq in enumerate(query_positions):
        for j, pk in enumerate(key_positions):
            d = float(pq) - float(pk)
            out[i, j] = abs(d) if bidirectional else max(d, 0.0)
    return out


class TestRelativeDistance:
    def test_hand_values(self):
        np.testing.assert_array_equal(relative_distance([2], [0, 1, 2, 3]), [[2.0, 1.0, 0.0, 0.0]])
        np.testing.assert_array_equal(relative_distance([2], [0, 1, 2, 3], bidirectional=True), [[2.0, 1.0, 0.0, 1.0]])
        np.testing.assert_array_equal(relative_distance([0.5, 3], [1.25]), [[0.0], [1.75]])

    @given(
        q=hnp.arrays(np.float64, st.integers(0, 6), elements=st.floats(0, 1e6)),
        k=hnp.arrays(np.float64, st.integers(0, 6), elements=st.floats(0, 1e6)),
        bidirectional=st.booleans(),
    )
    def test_matches_loops(self, q, k, bidirectional):
        got = relative_distance(q, k, bidirectional=bidirectional)
        assert got.shape == (q.size, k.size) and got.dtype == np.float64
        np.testing.assert_array_equal(got, _distance_by_loops(q, k, bidirectional))
        assert not np.any(np.signbit(got))

    @pytest.mark.parametrize("bidirectional", [False, True])
    def test_is_the_distance_of_kerple_and_sandwich(self, bidirectional):
        q, k = np.arange(6), np.arange(9)
        distance = relative_distance(q, k, bidirectional=bidirectional)
        np.testing.assert_allclose(
            kerple_log_bias(q, k, r1=[0.7], r2=[1.3], bidirectional=bidirectional)[0],
            -0.7 * np.log1p(1.3 * distance), rtol=1e-15, atol=0,
        )
        np.testing.assert_allclose(
            kerple_power_bias(q, k, a=[0.5], p=[1.5], bidirectional=bidirectional)[0],
            -0.5 * distance**1.5, rtol=1e-15, atol=0,
        )
        # Sandwich with one frequency (dim 2, k0 = 0: omega = 1) and one head: (cos(distance) - 1) / 8
        np.testing.assert_allclose(
            sandwich_bias(q, k, dim=2, num_heads=1, first_frequency=0, bidirectional=bidirectional)[0],
            (np.cos(distance) - 1.0) / 8.0, rtol=1e-14, atol=1e-16,
        )

    @pytest.mark.parametrize(
        "args,kwargs,error,match",
        [
            (([0, -1], [0]), {}, ValueError, r"^query_positions must hold non-negative values"),
            (([0], [np.nan]), {}, ValueError, r"^key_positions must contain only finite values"),
            (([[0]], [0]), {}, ValueError, r"^query_positions must be a 1-D array"),
            ((["a"], [0]), {}, TypeError, r"^query_positions must be a"),
            (([0], [0]), {"bidirectional": 1}, TypeError, r"^bidirectional must be True or False, got bidirectional=1"),
        ],
    )
    def test_errors(self, args, kwargs, error, match):
        with pytest.raises(error, match=match):
            relative_distance(*args, **kwargs)

    def test_options_are_keyword_only(self):
        with pytest.raises(TypeError):
            relative_distance([0], [0], True)
