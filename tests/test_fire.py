"""FIRE: the normalised distance and the MLP bias.

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
from _relative_helpers import seeded_rng

from posref import fire_bias, fire_normalized_distance, spec_functions


def test_catalogue_family_and_module():
    entries = spec_functions("fire")
    assert sorted(e.name for e in entries) == sorted(["fire_normalized_distance", "fire_bias"])
    assert {e.module for e in entries} == {"posref.relative.fire"}


def _psi(x, c=0.1):
    return math.log(abs(c * x) + 1)


class TestFire:
    def test_survey_values(self):
        # conventions.md section 16: c = 0.1, L = 512
        assert fire_normalized_distance([10], [0])[0, 0] == pytest.approx(0.1753, abs=5e-5)
        assert fire_normalized_distance([600], [0])[0, 0] == pytest.approx(1.0, abs=5e-5)
        assert fire_normalized_distance([600], [590])[0, 0] == pytest.approx(0.1686, abs=5e-5)

    def test_by_loops(self):
        qpos, kpos = [0, 10, 511, 512, 900], [0, 3, 10, 600]
        for c, threshold, eps in [(0.1, 512.0, 1e-6), (-2.0, 0.0, 1e-3), (0.5, 20.0, 1e-6)]:
            out = fire_normalized_distance(qpos, kpos, c=c, threshold=threshold, eps=eps)
            for i, m in enumerate(qpos):
                for j, n in enumerate(kpos):
                    expected = _psi(m - n, c) / (_psi(max(m, threshold), c) + eps)
                    assert out[i, j] == pytest.approx(expected, rel=1e-14, abs=0)

    def test_mlp_by_loops(self):
        rng = seeded_rng(8)
        w1, b1 = rng.standard_normal((1, 5)), rng.standard_normal(5)
        w2, b2 = rng.standard_normal((5, 3)), rng.standard_normal(3)
        qpos, kpos = [0, 7, 700], [0, 7, 650]
        out = fire_bias(qpos, kpos, w1, b1, w2, b2, c=0.3, threshold=50.0)
        for i, m in enumerate(qpos):
            for j, n in enumerate(kpos):
                z = _psi(m - n, 0.3) / (_psi(max(m, 50.0), 0.3) + 1e-6)
                hidden = [max(0.0, z * w1[0, u] + b1[u]) for u in range(5)]
                for h in range(3):
                    expected = sum(hidden[u] * w2[u, h] for u in range(5)) + b2[h]
                    assert out[h, i, j] == pytest.approx(expected, rel=1e-12, abs=1e-14)

    def test_bias_hand_value(self):
        z = math.log(2) / (math.log(52.2) + 1e-6)
        assert fire_bias([10], [0], [[1.0]], [0.0], [[2.0]], [0.5])[0, 0, 0] == pytest.approx(2 * z + 0.5, rel=1e-15)
        # ReLU: a negative pre-activation contributes nothing
        assert fire_bias([10], [0], [[-1.0]], [0.0], [[2.0]], [0.5])[0, 0, 0] == 0.5

    @given(
        st.lists(st.floats(0, 5000), min_size=1, max_size=6),
        st.floats(1e-3, 10),
        st.floats(0, 2000),
    )
    def test_causal_ratio_in_unit_interval(self, positions, c, threshold):
        positions = np.array(positions)
        out = fire_normalized_distance(positions, positions, c=c, threshold=threshold)
        causal = np.subtract.outer(positions, positions) >= 0
        assert np.all(out[causal] >= 0) and np.all(out[causal] < 1)
        np.testing.assert_array_equal(np.diagonal(out), 0.0)
        beyond = positions >= threshold  # queries past L are normalised by their own position
        for i in np.flatnonzero(beyond):
            expected = np.log1p(np.abs(c * (positions[i] - positions))) / (np.log1p(abs(c * positions[i])) + 1e-6)
            np.testing.assert_allclose(out[i], expected, rtol=1e-13)

    def test_errors(self):
        with pytest.raises(ValueError, match=r"^threshold must be a finite real number >= 0.0, got threshold=-1.0$"):
            fire_normalized_distance([0], [0], threshold=-1.0)
        with pytest.raises(ValueError, match=r"^eps must be a finite real number > 0.0, got eps=0.0$"):
            fire_normalized_distance([0], [0], eps=0.0)
        with pytest.raises(TypeError, match=r"^c must be a finite real number"):
            fire_normalized_distance([0], [0], c=None)
        with pytest.raises(ValueError, match=r"^c must be a finite real number, got c=nan$"):
            fire_bias([0], [0], [[1.0]], [0.0], [[1.0]], [0.0], c=float("nan"))
        w1, b1, w2, b2 = np.ones((1, 4)), np.zeros(4), np.ones((4, 2)), np.zeros(2)
        with pytest.raises(ValueError, match=r"^w1 must have shape \(1, K\) with K >= 1, got shape \(2, 4\)$"):
            fire_bias([0], [0], np.ones((2, 4)), b1, w2, b2)
        with pytest.raises(ValueError, match=r"^w1 must have shape \(1, K\) with K >= 1, got shape \(1, 0\)$"):
            fire_bias([0], [0], np.ones((1, 0)), b1[:0], w2[:0], b2)
        with pytest.raises(ValueError, match=r"^b1 must have shape \(K,\) = \(4,\), got shape \(3,\)$"):
            fire_bias([0], [0], w1, b1[:3], w2, b2)
        with pytest.raises(ValueError, match=r"^w2 must have shape \(K, H\) with K = 4 and H >= 1, got shape \(3, 2\)$"):
            fire_bias([0], [0], w1, b1, w2[:3], b2)
        with pytest.raises(ValueError, match=r"^b2 must have shape \(H,\) = \(2,\), got shape \(1,\)$"):
            fire_bias([0], [0], w1, b1, w2, b2[:1])
        with pytest.raises(ValueError, match=r"^b2 must be a 1-D array"):
            fire_bias([0], [0], w1, b1, w2, 0.0)
        with pytest.raises(ValueError, match=r"^w2 must contain only finite values"):
            fire_bias([0], [0], w1, b1, w2 * np.inf, b2)
        with pytest.raises(ValueError, match=r"^query_positions must hold non-negative values"):
            fire_bias([-3], [0], w1, b1, w2, b2)
