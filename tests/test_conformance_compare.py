"""The comparison core and the unit-roundoff table behind the error model."""

import ml_dtypes
import numpy as np
import pytest

from posref.conformance.compare import compare, ulp_distance
from posref.conformance.tolerance import UNIT_ROUNDOFF, CaseView, budgets, t5_near_boundary


@pytest.mark.parametrize("dtype, numpy_dtype", [("float64", np.float64), ("float32", np.float32),
                                                ("float16", np.float16), ("bfloat16", ml_dtypes.bfloat16)])
def test_unit_roundoff_is_half_the_spacing_at_one(dtype, numpy_dtype):
    one = np.array(1.0, dtype=numpy_dtype)
    spacing = float(np.nextafter(one, np.array(2.0, dtype=numpy_dtype)).astype(np.float64)) - 1.0 \
        if numpy_dtype is not ml_dtypes.bfloat16 else float(ml_dtypes.finfo(ml_dtypes.bfloat16).eps)
    assert UNIT_ROUNDOFF[dtype] == spacing / 2


def test_ulp_distance_counts_spacings_of_the_dtype_under_test():
    # next float32 after 1.0 is 1 + 2**-23: one float32 ULP, 2**29 float64 ULPs
    assert ulp_distance(np.array([1.0 + 2.0**-23]), np.array([1.0]), "float32")[0] == 1.0
    assert ulp_distance(np.array([1.0 + 2.0**-7]), np.array([1.0]), "bfloat16")[0] == 1.0
    assert ulp_distance(np.array([3.0 + 2.0**-6]), np.array([3.0]), "bfloat16")[0] == 1.0  # spacing 2**-6 in [2, 4)
    assert ulp_distance(np.array([2.0**-130]), np.array([0.0]), "float32")[0] == 2.0**-130 / 2.0**-149


def test_compare_pass_and_statistics():
    expected = np.array([1.0, -2.0, 0.5])
    actual = expected + np.array([1e-3, 0.0, -2e-3])
    result = compare(actual, expected, np.full(3, 4e-3), "float32")
    assert result.passed and result.reason == ""
    assert result.max_abs_error == pytest.approx(2e-3)
    assert result.max_rel_error == pytest.approx(4e-3)
    assert result.budget_share == pytest.approx(0.5)
    assert result.worst_index == (2,)


def test_compare_names_where_and_how_much():
    result = compare(np.array([[0.0, 1.5]]), np.array([[0.0, 1.0]]), np.full((1, 2), 0.1), "float32")
    assert not result.passed
    assert "index (0, 1)" in result.reason and "5x" in result.reason
    assert (result.actual_at_worst, result.expected_at_worst, result.budget_at_worst) == (1.5, 1.0, 0.1)


@pytest.mark.parametrize("actual, message", [
    (np.zeros(3), "shape (3,), expected (2,)"),
    (np.array([np.nan, 0.0]), "non-finite output nan at index (0,)"),
    (np.array(["a", "b"]), "dtype <U1"),
])
def test_compare_rejects_malformed_outputs(actual, message):
    result = compare(actual, np.zeros(2), np.ones(2), "float32")
    assert not result.passed and message in result.reason


def test_compare_infinities_must_match_exactly():
    expected = np.array([0.0, -np.inf])
    assert compare(np.array([0.0, -np.inf]), expected, np.zeros(2), "float32").passed
    assert not compare(np.array([0.0, -1e30]), expected, np.zeros(2), "float32").passed


def test_zero_budget_means_exact():
    assert compare(np.array([3]), np.array([3]), np.zeros(1), "float32").passed
    assert not compare(np.array([4]), np.array([3]), np.zeros(1), "float32").passed


def test_budget_rejects_unknown_class_and_dtype():
    view = CaseView("f", {}, {}, {"output": np.ones(2)})
    with pytest.raises(ValueError, match="tolerance must be one of"):
        budgets(view, "nonsense", "float32")
    with pytest.raises(ValueError, match="dtype must be one of"):
        budgets(view, "exact", "float8")


def test_frequency_budget_grows_with_the_exponent():
    theta = np.array([1.0, 1e-4])
    b = budgets(CaseView("rope_frequencies", {}, {}, {"output": theta}), "frequency", "float32")["output"]
    u = 2.0**-24
    assert b[0] == pytest.approx(3 * u)  # exp(0): two roundings in float32, one cast
    assert b[1] == pytest.approx(((2 * np.log(1e4) + 2) * u + u) * 1e-4)


def test_t5_near_boundary_points_are_where_the_log_is_nearly_an_integer():
    # bidirectional, 32 buckets, max_distance 128: max_exact = 8, log base 16 scaled by 8;
    # n = 16 gives exactly 8 + 2 (ln 2 / ln 16 * 8 = 2): an exact boundary.
    rel = np.array([16, 17, 15, -16, 32, 3])
    near = t5_near_boundary(rel, bidirectional=True, num_buckets=32, max_distance=128)
    assert near.tolist() == [True, False, False, True, True, False]
