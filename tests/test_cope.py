"""CoPE: contextual positions, the logit term, and the causal mask of the gates.

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
from _relative_helpers import finite_floats, seeded_rng

from posref import cope_bias, cope_positions, spec_functions
from posref.relative import cope_causal_mask


def test_catalogue_family_and_module():
    entries = spec_functions("cope")
    assert sorted(e.name for e in entries) == sorted(["cope_positions", "cope_bias"])
    assert {e.module for e in entries} == {"posref.relative.cope"}


def _sigmoid(x):
    return 1 / (1 + math.exp(-x))


def _cope_positions_by_loops(logits):
    t, s = logits.shape
    out = np.zeros((t, s))
    for i in range(t):
        last = s - t + i  # absolute position of query row i
        for j in range(last + 1):
            out[i, j] = sum(_sigmoid(logits[i, c]) for c in range(j, last + 1))
    return out


class TestCopePositions:
    def test_hand_values(self):
        np.testing.assert_array_equal(
            cope_positions(np.zeros((3, 3))), [[0.5, 0, 0], [1, 0.5, 0], [1.5, 1, 0.5]]
        )
        # very open and very closed gates count (nearly) one and zero
        # (a masked future logit may be -inf)
        logits = np.array([[50.0, -np.inf], [-50.0, 50.0]])
        np.testing.assert_allclose(cope_positions(logits), [[1.0, 0.0], [1.0, 1.0]], atol=1e-20)

    def test_by_loops_with_memory(self):
        logits = seeded_rng(9).standard_normal((3, 6))
        np.testing.assert_allclose(cope_positions(logits), _cope_positions_by_loops(logits), rtol=1e-14)

    @given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=3, max_side=5), elements=finite_floats))
    def test_properties(self, logits):
        t, s = logits.shape[-2:]
        if t > s:
            logits = np.swapaxes(logits, -1, -2)
            t, s = s, t
        p = cope_positions(logits)
        assert np.all(p >= 0)
        assert np.all(np.diff(p, axis=-1) <= 1e-15)  # non-increasing along keys
        causal = np.arange(s)[None, :] <= (s - t) + np.arange(t)[:, None]
        assert np.all(p[..., ~causal] == 0)
        # future logits are ignored
        changed = np.where(causal, logits, -np.inf)
        np.testing.assert_array_equal(cope_positions(changed), p)

    def test_errors(self):
        with pytest.raises(ValueError, match=r"^logits must have T <= S \(queries are the last T of S positions\), got shape \(3, 2\)$"):
            cope_positions(np.zeros((3, 2)))
        with pytest.raises(ValueError, match=r"^logits must be an array with at least 2 dimensions, got shape \(3,\)$"):
            cope_positions(np.zeros(3))
        with pytest.raises(ValueError, match=r"^logits must be finite on the causal pairs"):
            cope_positions([[np.inf, 0.0], [0.0, 0.0]])
        with pytest.raises(ValueError, match=r"^logits must be finite on the causal pairs .* and never NaN$"):
            cope_positions([[0.0, np.nan], [0.0, 0.0]])
        with pytest.raises(TypeError, match=r"^logits must be a real numeric array"):
            cope_positions(np.zeros((2, 2), dtype=complex))


class TestCopeBias:
    def test_hand_values(self):
        q, logits = np.ones((3, 1)), np.zeros((3, 3))
        table = [[0.0], [10.0], [20.0]]
        np.testing.assert_allclose(cope_bias(q, table, logits), [[5, 0, 0], [10, 5, 0], [15, 10, 5]], rtol=1e-15)
        # two rows: positions above 1 clamp to 1
        np.testing.assert_allclose(cope_bias(q, table[:2], logits), [[5, 0, 0], [10, 5, 0], [10, 10, 5]], rtol=1e-15)

    def test_by_loops(self):
        rng = seeded_rng(10)
        q = rng.standard_normal((2, 3, 4))
        table = rng.standard_normal((3, 4))
        logits = 3 * rng.standard_normal((2, 3, 5))
        out = cope_bias(q, table, logits)
        for b in range(2):
            p = _cope_positions_by_loops(logits[b])
            for i in range(3):
                for j in range(5):
                    pos = min(p[i, j], 2.0)
                    lo, hi = math.floor(pos), math.ceil(pos)
                    low = sum(q[b, i, x] * table[lo, x] for x in range(4))
                    high = sum(q[b, i, x] * table[hi, x] for x in range(4))
                    expected = low + (pos - lo) * (high - low)
                    assert out[b, i, j] == pytest.approx(expected, rel=1e-12, abs=1e-13)

    @given(hnp.arrays(np.float64, (4, 4), elements=finite_floats), st.floats(-3, 3), st.integers(1, 6))
    def test_linear_table_gives_scaled_positions(self, logits, slope, rows):
        table = slope * np.arange(rows, dtype=np.float64)[:, None]
        out = cope_bias(np.ones((4, 1)), table, logits)
        expected = slope * np.minimum(cope_positions(logits), rows - 1)
        np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)

    def test_errors(self):
        q, table, logits = np.ones((3, 2)), np.ones((4, 2)), np.zeros((3, 3))
        with pytest.raises(ValueError, match=r"^q must have last dimension 2 \(D of position_embeddings\), got shape \(3, 3\)$"):
            cope_bias(np.ones((3, 3)), table, logits)
        with pytest.raises(ValueError, match=r"^logits must have shape \(\.\.\., T, S\) with \(\.\.\., T\) = \(3,\) from q, got shape \(2, 3\)$"):
            cope_bias(q, table, np.zeros((2, 3)))
        with pytest.raises(ValueError, match=r"^position_embeddings must have at least one row, got shape \(0, 2\)$"):
            cope_bias(q, np.ones((0, 2)), logits)
        with pytest.raises(ValueError, match=r"^position_embeddings must be a 2-D array"):
            cope_bias(q, np.ones(2), logits)
        with pytest.raises(ValueError, match=r"^q must be an array with at least 2 dimensions"):
            cope_bias(np.ones(2), table, logits)
        with pytest.raises(ValueError, match=r"^q must contain only finite values"):
            cope_bias(q * np.nan, table, logits)


# -- cope_causal_mask (a helper, not a spec function) ---------------------------------------------


class TestCopeCausalMask:
    def test_hand_values(self):
        np.testing.assert_array_equal(cope_causal_mask(2, 3), [[True, True, False], [True, True, True]])
        np.testing.assert_array_equal(cope_causal_mask(3, 3), np.tril(np.ones((3, 3), dtype=bool)))
        assert cope_causal_mask(0, 4).shape == (0, 4)
        assert cope_causal_mask(0, 0).shape == (0, 0)

    @given(s=st.integers(0, 9), data=st.data())
    def test_matches_loops_and_counts_the_gates(self, s, data):
        t = data.draw(st.integers(0, s))
        mask = cope_causal_mask(t, s)
        assert mask.dtype == np.bool_ and mask.shape == (t, s)
        for i in range(t):
            for j in range(s):
                assert mask[i, j] == (j <= s - t + i)
        # with every gate half open, p_ij is half the number of gates from key j to query i
        count = np.flip(np.cumsum(np.flip(mask, axis=-1), axis=-1), axis=-1)
        np.testing.assert_array_equal(cope_positions(np.zeros((t, s))), 0.5 * count)

    @pytest.mark.parametrize(
        "args,error,match",
        [
            ((3, 2), ValueError, r"^num_queries must be at most num_keys = 2 \(queries are the last T of S "
                                 r"positions\), got num_queries=3$"),
            ((-1, 2), ValueError, r"^num_queries must be a non-negative integer, got num_queries=-1$"),
            ((1, -2), ValueError, r"^num_keys must be a non-negative integer, got num_keys=-2$"),
            ((1.0, 2), TypeError, r"^num_queries must be a non-negative integer, got num_queries=1.0 of type float$"),
            ((1, True), TypeError, r"^num_keys must be a non-negative integer"),
        ],
    )
    def test_errors(self, args, error, match):
        with pytest.raises(error, match=match):
            cope_causal_mask(*args)
