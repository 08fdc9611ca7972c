"""Sandwich: the shifted inner product of sinusoids as a bias.

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

from posref import sandwich_bias, spec_functions


def test_catalogue_family_and_module():
    entries = spec_functions("sandwich")
    assert sorted(e.name for e in entries) == sorted(["sandwich_bias"])
    assert {e.module for e in entries} == {"posref.relative.sandwich"}


class TestSandwich:
    def test_hand_values(self):
        # dim 2, base 2: one frequency 2^-1; head h of 2 divides by 4h
        out = sandwich_bias([0, 1, 2], [0], dim=2, num_heads=2, base=2.0)
        for h in (1, 2):
            np.testing.assert_allclose(
                out[h - 1, :, 0], [(math.cos(n / 2) - 1) / (4 * h) for n in range(3)], rtol=1e-15, atol=0
            )

    def test_by_loops_against_nemo_formula(self):
        dim, heads = 8, 3
        qpos, kpos = [0, 5, 100], [0, 4, 5, 90, 120]
        for bidirectional in (False, True):
            out = sandwich_bias(qpos, kpos, dim=dim, num_heads=heads, bidirectional=bidirectional)
            for h in range(1, heads + 1):
                for i, m in enumerate(qpos):
                    for j, n in enumerate(kpos):
                        dist = abs(m - n) if bidirectional else max(m - n, 0)
                        total = sum(math.cos(dist / 10000 ** (2 * k / dim)) for k in range(1, dim // 2 + 1))
                        expected = (total - dim / 2) / (h * 8 / heads)
                        assert out[h - 1, i, j] == pytest.approx(expected, rel=1e-12, abs=1e-15)

    @pytest.mark.parametrize("first_frequency", [0, 1])
    def test_is_a_shifted_dot_product_of_sinusoids(self, first_frequency):
        dim, positions = 16, np.array([0, 3, 10, 77])
        k = np.arange(first_frequency, first_frequency + dim // 2)
        omega = 10000.0 ** (-2 * k / dim)
        pe = np.concatenate([np.sin(positions[:, None] * omega), np.cos(positions[:, None] * omega)], axis=1)
        expected = (pe @ pe.T - dim / 2) / 8  # one head: divisor 8
        out = sandwich_bias(positions, positions, dim=dim, num_heads=1, first_frequency=first_frequency, bidirectional=True)
        np.testing.assert_allclose(out[0], expected, rtol=1e-12, atol=1e-12)

    @given(st.lists(st.integers(0, 5000), min_size=1, max_size=5), st.integers(1, 8), st.sampled_from([2, 4, 16, 64]))
    def test_properties(self, positions, heads, dim):
        out = sandwich_bias(positions, positions, dim=dim, num_heads=heads)
        assert np.all(out <= 1e-12)
        np.testing.assert_array_equal(np.diagonal(out, axis1=1, axis2=2), 0.0)
        # future keys get bias 0 in the causal form
        future = np.subtract.outer(positions, positions) < 0
        assert np.all(out[:, future] == 0.0)
        # h * bias_h is the same for every head
        scaled = out * np.arange(1, heads + 1)[:, None, None]
        np.testing.assert_allclose(scaled, np.broadcast_to(scaled[0], scaled.shape), rtol=1e-12, atol=1e-12)

    def test_errors(self):
        with pytest.raises(ValueError, match=r"^dim must be a positive even integer, got dim=3$"):
            sandwich_bias([0], [0], dim=3, num_heads=1)
        with pytest.raises(ValueError, match=r"^num_heads must be a positive integer, got num_heads=0$"):
            sandwich_bias([0], [0], dim=2, num_heads=0)
        with pytest.raises(ValueError, match=r"^base must be a finite real number > 1.0"):
            sandwich_bias([0], [0], dim=2, num_heads=1, base=0.5)
        with pytest.raises(ValueError, match=r"^first_frequency must be a non-negative integer, got first_frequency=-1$"):
            sandwich_bias([0], [0], dim=2, num_heads=1, first_frequency=-1)
        with pytest.raises(TypeError, match=r"^bidirectional must be True or False"):
            sandwich_bias([0], [0], dim=2, num_heads=1, bidirectional="no")
        with pytest.raises(ValueError, match=r"^key_positions must contain only finite values"):
            sandwich_bias([0], [np.nan], dim=2, num_heads=1)
