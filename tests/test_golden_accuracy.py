r"""Accuracy audit: every golden float64 output is within its float64 budget of the exact value.

For every golden case with outputs, and for each of its variants (the base
inputs and every dtype's rounded inputs), a seeded sample of elements of
every output (the first, last and largest element, elements at the largest
position, random ones; about 300 per case) is compared with an independent
60-digit mpmath reference of the formula (``tests/audit/refs_*.py``).  The
bound is the error model at float64,
``budgets(CaseView(...), tolerance, "float64")``, built as the conformance
runner builds it.  Integer outputs must equal the exact integer.

``python -m tests.audit.measure`` runs the same audit over (nearly) every
element and prints the accuracy per tolerance class.
"""

from __future__ import annotations

import pytest

from audit import harness

#: Elements sampled per case, spread over its variants and outputs.
PER_CASE = 300

CASES = harness.golden_cases()


def test_every_golden_function_has_a_reference():
    missing = harness.missing_references()
    assert not missing, f"golden functions without an mpmath reference in tests/audit/refs_*.py: {missing}"


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_golden_outputs_within_float64_budget_of_exact(case):
    refs = harness.references()
    if case.function not in refs:
        pytest.skip(f"no reference for {case.function} (see test_every_golden_function_has_a_reference)")
    elements = harness.audit_case(case, refs, per_case=PER_CASE)
    assert elements, f"{case.id}: nothing audited"
    misses = [element for element in elements if not element.passed]
    if misses:
        misses.sort(key=lambda element: element.share, reverse=True)
        lines = "\n".join(harness.describe(element) for element in misses[:10])
        pytest.fail(f"{len(misses)} of {len(elements)} sampled elements of {case.id} ({case.function}, "
                    f"tolerance {case.tolerance!r}) are outside the float64 budget of the exact value:\n{lines}",
                    pytrace=False)
