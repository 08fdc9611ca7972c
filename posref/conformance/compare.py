"""Comparison of an implementation's output with the float64 specification.

One comparison core: shape first, then non-finite values, then every element
against its own error budget (see :mod:`posref.conformance.tolerance`).  A
result carries the maximum absolute error, maximum relative error, maximum
ULP distance in the dtype under test, the share of the budget used, and the
index where the share is largest, so that a failure says what, where and by
how much.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["Comparison", "compare", "ulp_distance", "PRECISION_BITS"]

#: Significand precision (including the implicit bit) of each floating dtype.
PRECISION_BITS = {"float64": 53, "float32": 24, "float16": 11, "bfloat16": 8}
#: Smallest positive normal number of each floating dtype.
SMALLEST_NORMAL = {"float64": 2.0**-1022, "float32": 2.0**-126, "float16": 2.0**-14, "bfloat16": 2.0**-126}


@dataclass(frozen=True)
class Comparison:
    """The outcome of comparing one output array."""

    passed: bool
    reason: str
    max_abs_error: float
    max_rel_error: float
    max_ulp: float
    budget_share: float
    worst_index: tuple[int, ...] | None
    actual_at_worst: float | None
    expected_at_worst: float | None
    budget_at_worst: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def ulp_distance(actual: np.ndarray, expected: np.ndarray, dtype: str) -> np.ndarray:
    """``|actual - expected|`` in units of ``dtype``'s spacing at ``|expected|``.

    The spacing of a binary format with ``p`` significand bits at ``x`` is
    ``2**(floor(log2|x|) - p + 1)``, and the subnormal spacing below the
    smallest normal number.  NumPy's ``nulp_diff`` cannot do this for
    bfloat16 and counts float64 ULPs when given a float64 reference, which is
    why it is computed here.
    """
    p = PRECISION_BITS[dtype]
    magnitude = np.maximum(np.abs(expected), SMALLEST_NORMAL[dtype])
    exponent = np.floor(np.log2(magnitude))
    spacing = np.exp2(exponent - (p - 1))
    return np.abs(actual - expected) / spacing


def _fail(reason: str) -> Comparison:
    return Comparison(False, reason, float("nan"), float("nan"), float("nan"), float("inf"), None, None, None, None)


def compare(actual, expected: np.ndarray, budget: np.ndarray, dtype: str) -> Comparison:
    """Compare ``actual`` with ``expected`` element by element against ``budget``.

    Parameters
    ----------
    actual : array_like
        The implementation's output (any real dtype; converted to float64).
    expected : numpy.ndarray
        The float64 (or int64) specification output.
    budget : numpy.ndarray
        The allowed absolute error of every element (same shape as ``expected``).
    dtype : str
        The dtype under test, for the ULP report.

    Returns
    -------
    Comparison
        ``passed`` is true when the shapes match, non-finite values agree
        and every ``|actual - expected| <= budget``.
    """
    try:
        actual = np.asarray(actual)
    except Exception as exc:  # an object NumPy cannot read
        return _fail(f"output could not be converted to an array: {exc}")
    if actual.dtype.kind not in "iuf" and actual.dtype.name not in ("bfloat16", "bool"):
        return _fail(f"output has dtype {actual.dtype}, expected a real numeric array")
    if actual.shape != expected.shape:
        return _fail(f"output has shape {actual.shape}, expected {expected.shape}")
    actual = actual.astype(np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    budget = np.broadcast_to(np.asarray(budget, dtype=np.float64), expected.shape)
    finite = np.isfinite(expected)
    bad = ~np.isfinite(actual) & finite
    if np.any(bad):
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        return Comparison(False, f"non-finite output {actual[index]} at index {index}, expected {expected[index]}",
                          float("inf"), float("inf"), float("inf"), float("inf"), index,
                          float(actual[index]), float(expected[index]), float(budget[index]))
    # where the spec itself is infinite (a causal mask), the output must be the same infinity
    mismatch = ~finite & (actual != expected)
    if np.any(mismatch):
        index = tuple(int(i) for i in np.argwhere(mismatch)[0])
        return Comparison(False, f"output {actual[index]} at index {index}, expected {expected[index]}",
                          float("inf"), float("inf"), float("inf"), float("inf"), index,
                          float(actual[index]), float(expected[index]), float(budget[index]))
    if expected.size == 0:
        return Comparison(True, "", 0.0, 0.0, 0.0, 0.0, None, None, None, None)
    error = np.abs(np.where(finite, actual, 0.0) - np.where(finite, expected, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(error == 0, 0.0, error / budget)  # 0/0 -> 0, x/0 -> inf
        relative = np.where(np.abs(expected) > 0, error / np.abs(expected), np.where(error > 0, np.inf, 0.0))
    relative = np.where(finite, relative, 0.0)
    # ULPs only where the reference is well away from zero: near zero a tiny
    # absolute error is a huge number of ULPs and says nothing.
    scale = np.max(np.abs(np.where(finite, expected, 0.0)))
    away = finite & (np.abs(expected) > 1e-3 * scale)
    ulps = ulp_distance(actual[away], expected[away], dtype) if dtype in PRECISION_BITS else np.zeros(0)
    worst = np.unravel_index(int(np.argmax(share)), share.shape)
    worst_share = float(share[worst])
    passed = worst_share <= 1.0
    reason = "" if passed else (
        f"error {error[worst]:.3g} at index {tuple(int(i) for i in worst)} exceeds the budget "
        f"{budget[worst]:.3g} ({worst_share:.3g}x)"
    )
    return Comparison(
        passed=passed,
        reason=reason,
        max_abs_error=float(error.max()),
        max_rel_error=float(relative.max()),
        max_ulp=float(ulps.max()) if ulps.size else 0.0,
        budget_share=worst_share,
        worst_index=tuple(int(i) for i in worst),
        actual_at_worst=float(actual[worst]),
        expected_at_worst=float(expected[worst]),
        budget_at_worst=float(budget[worst]),
    )
