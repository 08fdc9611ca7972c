r"""Accuracy audit of the golden float64 outputs against exact (mpmath) references.

Claim under test: every float64 output of every golden case (the base
outputs and the outputs of every rounded-input variant) is within the error
model's float64 budget of the *exact* value of the formula on the case's
inputs, where the budget is
``posref.conformance.tolerance.budgets(CaseView(function, params, inputs,
outputs), tolerance, "float64")``, built exactly as the conformance runner
builds it.

The exact values come from independent references written from the
mathematics (``tests/audit/refs_rope.py`` and ``tests/audit/refs_other.py``),
never from posref code.  A reference is

    ref(inputs, params, output_name, index) -> mpmath.mpf | int

called with the case's inputs as float64/int64 arrays (a variant's rounded
inputs converted to float64), the case's keyword parameters completed with
the spec function's defaults, the output's name (``"output"``,
``"output_0"``, ...) and the element's index into that output.  The harness
evaluates it under ``mpmath.workdps(DPS)``.

This module is shared by ``tests/test_golden_accuracy.py`` (a seeded sample
of elements per case) and ``python -m tests.audit.measure`` (all elements of
small outputs, a larger sample of big ones, summarised per tolerance class).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import math
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np

from posref._spec import SPEC_FUNCTIONS, spec_functions
from posref.conformance.tolerance import CaseView, budgets
from posref.golden.case import GoldenCase

__all__ = [
    "DPS",
    "Element",
    "Reference",
    "audit_case",
    "complete_params",
    "describe",
    "golden_cases",
    "missing_references",
    "references",
    "variants",
]

#: Working precision (decimal digits) of every reference evaluation.
DPS = 60

Reference = Callable[[dict[str, np.ndarray], dict[str, Any], str, tuple[int, ...]], Any]

#: Modules (siblings of this one) whose ``REFERENCES`` the audit merges.
_REFERENCE_MODULES = ("refs_rope", "refs_other")


# -- what is audited -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def golden_cases() -> tuple[GoldenCase, ...]:
    """Every golden case with outputs (error cases dropped), sorted by id."""
    from posref.golden.cases import CASES
    from posref.golden.registry import build_cases

    return tuple(case for case in build_cases(CASES) if case.expect_error is None)


def references() -> dict[str, Reference]:
    """The merged ``REFERENCES`` of every reference module present.

    A module that does not exist yet is skipped (the coverage test names the
    functions left without a reference); one that exists but fails to import
    raises.
    """
    merged: dict[str, Reference] = {}
    for name in _REFERENCE_MODULES:
        qualified = f"{__package__}.{name}" if __package__ else name
        try:
            module = importlib.import_module(qualified)
        except ModuleNotFoundError as exc:
            if exc.name not in (qualified, name):
                raise
            continue
        overlap = sorted(set(merged) & set(module.REFERENCES))
        if overlap:
            raise RuntimeError(f"{name} redefines the references of {', '.join(overlap)}")
        merged.update(module.REFERENCES)
    return merged


def missing_references(refs: Mapping[str, Reference] | None = None) -> list[str]:
    """Functions of non-error golden cases that have no reference."""
    refs = references() if refs is None else refs
    return sorted({case.function for case in golden_cases()} - set(refs))


def _spec_function(name: str):
    if name not in SPEC_FUNCTIONS:
        spec_functions()
    return SPEC_FUNCTIONS[name].function


def complete_params(function: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The case's parameters plus the spec function's default for every parameter not given."""
    completed = dict(params)
    for name, parameter in inspect.signature(_spec_function(function)).parameters.items():
        if name not in completed and parameter.default is not inspect.Parameter.empty:
            completed[name] = parameter.default
    return completed


def _as_float64(array: np.ndarray) -> np.ndarray:
    if array.dtype.kind == "f" or array.dtype.name == "bfloat16":
        return np.asarray(array, dtype=np.float64)
    return np.asarray(array)


def variants(case: GoldenCase) -> Iterator[tuple[str, dict[str, np.ndarray], dict[str, np.ndarray]]]:
    """``(variant, inputs, outputs)``: the base case (``"float64"``) and every rounded-input variant.

    ``inputs`` are float64/int64 (a variant's rounded floating inputs converted
    exactly to float64); ``outputs`` are the golden float64 (or int64) outputs
    the spec gives for exactly those inputs.
    """
    yield "float64", {n: _as_float64(a) for n, a in case.inputs.items()}, dict(case.outputs)
    for dtype, stored in case.rounded.items():
        inputs = {n: _as_float64(stored.get(f"inputs.{n}", a)) for n, a in case.inputs.items()}
        outputs = {key.removeprefix("outputs."): a for key, a in stored.items() if key.startswith("outputs.")}
        yield dtype, inputs, outputs


def case_budgets(case: GoldenCase, variant: str, inputs: Mapping[str, np.ndarray],
                 outputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The float64 budget of every output element, as the conformance runner obtains it.

    For the base variant the runner judges a float64 implementation with the
    budgets the case carries (``case.budgets["float64"]``) when it has them;
    otherwise, and for the rounded-input variants, the error model is
    evaluated at float64 on the variant's inputs and expected outputs.
    """
    stored = getattr(case, "budgets", {}).get("float64") if variant == "float64" else None
    if stored is not None:
        allowed = {name: np.asarray(b, dtype=np.float64) for name, b in stored.items()}
    else:
        view = CaseView(case.function, case.params, dict(inputs), dict(outputs))
        allowed = budgets(view, case.tolerance, "float64")
    return {name: np.broadcast_to(np.asarray(allowed[name], dtype=np.float64), np.shape(value))
            for name, value in outputs.items()}


# -- which elements ------------------------------------------------------------------------------


def _position_inputs(case: GoldenCase, inputs: Mapping[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
    """Position-like inputs, reduced to one value per token (the largest coordinate)."""
    found = []
    for name, array in inputs.items():
        if "position" not in name and "distance" not in name:
            continue
        value = np.abs(np.asarray(array, dtype=np.float64))
        if value.ndim >= 1 and (name.endswith("_2d") or "mrope" in case.function):
            value = value.max(axis=0)  # coordinates first: (2, ...) or (3, ...)
        found.append((name, value))
    return found


def _aligned_axes(name: str, positions: np.ndarray, shape: tuple[int, ...]) -> list[tuple[int, int]] | None:
    """Pairs ``(axis of positions, axis of the output)`` along which the positions index the output."""
    lead = shape[:-1]
    if positions.ndim <= len(lead):
        offset = len(lead) - positions.ndim
        if all(p in (1, lead[offset + j]) for j, p in enumerate(positions.shape)):
            return [(j, offset + j) for j, p in enumerate(positions.shape) if p != 1 or lead[offset + j] == 1]
    if positions.ndim == 1:
        candidates = [ax for ax, n in enumerate(shape) if n == positions.shape[0]]
        if "query" in name and len(candidates) > 1:
            candidates = candidates[:-1]
        if candidates:
            return [(0, candidates[-1])]
    return None


def sample_indices(case: GoldenCase, inputs: Mapping[str, np.ndarray], array: np.ndarray,
                   rng: np.random.Generator, count: int) -> list[tuple[int, ...]]:
    """About ``count`` distinct indices: the first, last and largest element, elements at the largest
    position (all of them along the last axis when few), and random ones.  All elements when the
    output has at most ``count``."""
    shape = array.shape
    size = int(np.prod(shape, dtype=np.int64))
    if size <= count:
        return [tuple(int(i) for i in index) for index in np.ndindex(*shape)]
    chosen: dict[tuple[int, ...], None] = {}

    def add(flat):
        chosen[tuple(int(i) for i in np.unravel_index(int(flat), shape))] = None

    add(0)
    add(size - 1)
    magnitude = np.abs(np.where(np.isfinite(array), array, 0.0)) if array.dtype.kind == "f" else np.abs(array)
    add(np.argmax(magnitude))
    special = max(4, count // 4)
    for name, positions in _position_inputs(case, inputs):
        axes = _aligned_axes(name, positions, shape)
        if axes is None or positions.size == 0:
            continue
        top = np.unravel_index(int(np.argmax(positions)), positions.shape)
        last = shape[-1]
        along = list(range(last)) if last <= special else sorted({0, last - 1, *rng.integers(0, last, special - 2)})
        for k in along:
            index = [int(rng.integers(0, n)) for n in shape]
            for p_axis, o_axis in axes:
                index[o_axis] = int(top[p_axis])
            if all(o_axis != len(shape) - 1 for _, o_axis in axes):
                index[-1] = k
            chosen[tuple(int(i) for i in index)] = None
    while len(chosen) < count:
        add(rng.integers(0, size))
    return list(chosen)


# -- evaluation ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Element:
    """One audited element."""

    case_id: str
    function: str
    tolerance: str
    variant: str
    output: str
    index: tuple[int, ...]
    golden: float | int
    exact: Any  # mpmath.mpf or int
    budget: float
    error: float  # |golden - exact|
    ulps: float | None  # error in float64 ulps of the exact value; None at an exact zero with golden != 0
    integer: bool

    @property
    def passed(self) -> bool:
        if self.integer:
            return self.error == 0
        return self.error <= self.budget

    @property
    def share(self) -> float:
        """Error as a fraction of the budget (0 where both are 0)."""
        if self.error == 0:
            return 0.0
        return self.error / self.budget if self.budget > 0 else math.inf

    @property
    def correctly_rounded(self) -> bool:
        return self.ulps is not None and self.ulps <= 0.5


def _ulp(exact: mpmath.mpf) -> float:
    """Spacing of float64 in the binade of |exact| (subnormal spacing at the bottom)."""
    _, exponent = mpmath.frexp(exact)  # exact = m 2**e, 0.5 <= |m| < 1
    return math.ldexp(1.0, max(int(exponent) - 53, -1074))


def _element(case: GoldenCase, variant: str, output: str, index: tuple[int, ...], golden_array: np.ndarray,
             budget: float, exact: Any) -> Element:
    integer = golden_array.dtype.kind in "iub"
    if integer:
        golden = int(golden_array[index])
        if isinstance(exact, mpmath.mpf):
            if not mpmath.isint(exact):
                raise TypeError(f"{case.function}: the reference gave {exact} for an integer output")
            exact = int(exact)
        exact = int(exact)
        error = float(abs(golden - exact))
        return Element(case.id, case.function, case.tolerance, variant, output, index, golden, exact,
                       float(budget), error, error, True)
    golden = float(golden_array[index])
    exact = mpmath.mpf(exact)
    if not (math.isfinite(golden) and mpmath.isfinite(exact)):
        same = mpmath.mpf(golden) == exact
        error = 0.0 if same else math.inf
        ulps = 0.0 if same else math.inf
    else:
        error = float(abs(mpmath.mpf(golden) - exact))
        if exact == 0:
            ulps = 0.0 if golden == 0 else None
        else:
            ulps = error / _ulp(exact)
    return Element(case.id, case.function, case.tolerance, variant, output, index, golden, exact,
                   float(budget), error, ulps, False)


def audit_case(case: GoldenCase, refs: Mapping[str, Reference], *, per_case: int | None = 200,
               per_output: int | None = None, variants_only: tuple[str, ...] | None = None) -> list[Element]:
    """Evaluate the reference at a seeded sample of elements of every output of every variant.

    ``per_case`` spreads about that many elements over all (variant, output)
    pairs (at least 16 each); ``per_output`` instead takes that many of each
    (``None`` with ``per_case=None``: every element).
    """
    reference = refs[case.function]
    params = complete_params(case.function, case.params)
    rng = np.random.default_rng(zlib.crc32(case.id.encode("utf-8")))
    chosen_variants = [v for v in variants(case) if variants_only is None or v[0] in variants_only]
    pairs = sum(len(outputs) for _, _, outputs in chosen_variants)
    if per_output is not None:
        count = per_output
    elif per_case is not None:
        count = max(16, per_case // max(pairs, 1))
    else:
        count = None
    elements = []
    with mpmath.workdps(DPS):
        for variant, inputs, outputs in chosen_variants:
            allowed = case_budgets(case, variant, inputs, outputs)
            for output, golden in outputs.items():
                golden = np.asarray(golden)
                indices = (sample_indices(case, inputs, golden, rng, count) if count is not None
                           else [tuple(int(i) for i in index) for index in np.ndindex(*golden.shape)])
                for index in indices:
                    exact = reference(inputs, params, output, index)
                    elements.append(_element(case, variant, output, index, golden, allowed[output][index], exact))
    return elements


def describe(element: Element) -> str:
    """One line naming the element, its golden and exact values, the error and the budget."""
    exact = mpmath.nstr(element.exact, 20) if isinstance(element.exact, mpmath.mpf) else str(element.exact)
    share = f"{element.share:.3g}" if math.isfinite(element.share) else "inf"
    ulps = "n/a" if element.ulps is None else f"{element.ulps:.3g}"
    return (f"{element.case_id} [{element.variant}] {element.output}{list(element.index)}: "
            f"golden={element.golden!r} exact={exact} |err|={element.error:.3g} "
            f"budget={element.budget:.3g} (share {share}, {ulps} ulp)")
