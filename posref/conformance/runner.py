"""The conformance runner: feed cases to an adapter, compare, record, never stop early.

Statuses: ``pass``; ``fail`` (a wrong value, shape or count of outputs, or
inputs changed in place); ``error`` (the implementation raised on a valid
input, or raised another class than the one an invalid input calls for);
``crash`` (the worker process running the adapter died); ``timeout``;
``lenient`` (it accepted an input that a conforming implementation must
reject: reported, and a failure only under ``--strict``);
``not_implemented``; ``skipped`` (the inputs do not fit the dtype);
``xfail``/``xpass`` for cases listed as expected divergences.

Each case runs on its own: a case that raises, hangs past the timeout,
crashes its worker, returns the wrong shape, a non-finite value or something
NumPy cannot read is recorded with its status and the rest still run.  The
adapter computes (in a worker process, :mod:`posref.conformance.worker`, or
in this one for :class:`~posref.conformance.adapter.Adapter` objects built
in code); the expected values, the budgets and the comparison are computed
here, from arrays the adapter never saw.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field

import numpy as np

from posref.conformance.adapter import Adapter, Outcome
from posref.conformance.compare import Comparison, compare
from posref.conformance.tolerance import CaseView, budgets, round_budget
from posref.golden.case import GoldenCase
from posref._spec import SPEC_FUNCTIONS, spec_functions
from posref.golden.registry import round_to

__all__ = ["CaseResult", "FAILING", "STATUSES", "case_arrays", "check_timeout", "float64_inputs", "iter_results",
           "run_case", "run_cases"]

#: Every status a case can end with.
STATUSES = ("pass", "fail", "error", "crash", "timeout", "lenient", "not_implemented", "skipped", "xfail",
            "xpass")

#: Statuses that make a run fail (``lenient`` too under ``--strict``).
FAILING = ("fail", "error", "crash", "timeout")


@dataclass
class CaseResult:
    """What happened to one case."""

    case_id: str
    function: str
    family: str
    dtype: str
    status: str
    message: str = ""
    outputs: dict[str, dict] = field(default_factory=dict)
    seconds: float = 0.0
    repro: str = ""

    @property
    def budget_share(self) -> float:
        shares = [o["budget_share"] for o in self.outputs.values()]
        return max(shares) if shares else 0.0

    @property
    def max_abs_error(self) -> float:
        errors = [o["max_abs_error"] for o in self.outputs.values()]
        return max(errors) if errors else 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def check_timeout(timeout) -> float | None:
    """``timeout`` as seconds (None: no limit); ValueError unless a positive finite number."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float, np.integer, np.floating)):
        raise TypeError(f"timeout must be a positive finite number of seconds or None, got {timeout!r}")
    seconds = float(timeout)
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"timeout must be a positive finite number of seconds or None, got timeout={timeout!r}")
    return seconds


def case_arrays(case: GoldenCase, dtype: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None:
    """Inputs as the implementation under test receives them, and the expected outputs.

    Floating inputs come rounded to ``dtype`` (and stored in it); integer
    inputs are unchanged.  The expected outputs are the float64 spec on those
    rounded inputs.  Returns None when the inputs do not fit ``dtype``.
    """
    if case.expect_error is not None:  # nothing to compare: the inputs in the dtype, no outputs
        return {n: (round_to(a, dtype) if a.dtype.kind == "f" and dtype != "float64" else a)
                for n, a in case.inputs.items()}, {}
    if dtype == "float64" or not any(a.dtype.kind == "f" for a in case.inputs.values()):
        inputs = {n: (a.astype(np.float64) if a.dtype.kind == "f" else a) for n, a in case.inputs.items()}
        if dtype != "float64":
            inputs = {n: (round_to(a, dtype) if a.dtype.kind == "f" else a) for n, a in inputs.items()}
        return inputs, dict(case.outputs)
    variant = case.rounded.get(dtype)
    if variant is None:
        return None
    inputs = {n: variant.get(f"inputs.{n}", a) for n, a in case.inputs.items()}
    expected = {key.removeprefix("outputs."): a for key, a in variant.items() if key.startswith("outputs.")}
    return inputs, expected


def float64_inputs(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Floating inputs (of any dtype, bfloat16 included) as float64; integer inputs unchanged."""
    return {n: (a.astype(np.float64) if a.dtype.kind == "f" or a.dtype.name == "bfloat16" else a)
            for n, a in inputs.items()}


def spec_function(name: str):
    """The spec function called ``name``."""
    if name not in SPEC_FUNCTIONS:
        spec_functions()
    return SPEC_FUNCTIONS[name].function


def _repro(adapter: Adapter, case: GoldenCase) -> str:
    device = f" --device {adapter.device}" if adapter.device != "cpu" else ""
    return f"posref check --adapter {adapter.source} --dtype {adapter.dtype}{device} --case {case.id}"


def _unreadable(reason: str) -> Comparison:
    nan = float("nan")
    return Comparison(False, reason, nan, nan, nan, float("inf"), None, None, None, None)


def _judge(result: CaseResult, case: GoldenCase, outcome: Outcome, inputs: dict, expected: dict,
           adapter: Adapter) -> None:
    """Set the status and message of ``result`` from what the adapter did."""
    dtype = adapter.dtype
    mutated = ", ".join(outcome.mutated)
    changed = f"it changed its input(s) {mutated} in place" if mutated else ""
    if outcome.kind in ("timeout", "crash"):
        result.status, result.message = outcome.kind, outcome.message
        return
    if outcome.kind == "raised":
        raised = f"{outcome.error_type}: {outcome.message}"
        if outcome.raised("builtins.NotImplementedError"):
            result.status = "not_implemented"
            result.message = outcome.message or f"{adapter.name} does not support these parameters"
        elif outcome.stage == "conversion":
            result.status, result.message = "error", f"reading its output raised {raised}"
        elif case.expect_error is not None and outcome.raised(f"builtins.{case.expect_error}"):
            result.status, result.message = "pass", f"rejected with {raised}"
            if changed:
                result.status, result.message = "fail", f"{result.message}, but {changed}"
        elif case.expect_error is not None:
            result.status = "error"
            result.message = (f"raised {raised}; this invalid input must be rejected with {case.expect_error} "
                              f"(mentioning {case.error_match!r}), and {outcome.error_type} is not a "
                              f"{case.expect_error}")
        else:
            result.status, result.message = "error", raised
        if changed and result.status == "error":
            result.message += f" ({changed})"
        return
    if case.expect_error is not None:
        result.status = "lenient"
        result.message = f"accepted an invalid input; expected {case.expect_error} mentioning {case.error_match!r}"
        if changed:
            result.message += f" ({changed})"
        return
    if len(outcome.outputs) != len(expected):  # a tuple of two for a function of one output, say
        result.status = "fail"
        result.message = f"returned {len(outcome.outputs)} output(s), expected {len(expected)}"
        if changed:
            result.message += f"; {changed}"
        return
    actual_outputs = dict(zip(expected, outcome.outputs))
    allowed = case.budgets.get(dtype)  # the corpus's own numbers, when the case carries them
    if allowed is not None:
        allowed = {name: b.astype(np.float64) for name, b in allowed.items()}
    else:
        view = CaseView(case.function, case.params, float64_inputs(inputs), expected)
        allowed = {name: round_budget(b) for name, b in budgets(view, case.tolerance, dtype).items()}
    passed = not changed
    reasons = [changed] if changed else []
    for name, reference in expected.items():
        actual = actual_outputs[name]
        if not isinstance(actual, np.ndarray):  # an output of a dtype posref does not compare, from a worker
            comparison = _unreadable(f"output has dtype {actual.dtype}, expected a real numeric array")
        else:
            with warnings.catch_warnings(), np.errstate(all="ignore"):  # PYTHONWARNINGS=error, an output of 1e308
                warnings.simplefilter("ignore")
                comparison = compare(actual, reference, allowed[name], dtype)
        result.outputs[name] = comparison.as_dict()
        if not comparison.passed:
            passed = False
            reasons.append(f"{name}: {comparison.reason}")
    result.status = "pass" if passed else "fail"
    result.message = "; ".join(reasons)


def run_case(adapter: Adapter, case: GoldenCase, *, timeout: float | None = 60.0) -> CaseResult:
    """Run one case against the adapter in the adapter's dtype.

    ``timeout`` (seconds, positive and finite, or None for no limit) bounds
    the adapter's call: a worker adapter is killed when it runs over, an
    in-process one gets a best-effort alarm.
    """
    timeout = check_timeout(timeout)
    dtype = adapter.dtype
    result = CaseResult(case.id, case.function, case.family, dtype, "error", repro=_repro(adapter, case))
    if adapter.function(case.function) is None:
        result.status, result.message = "not_implemented", f"{adapter.name} has no {case.function}"
        return result
    arrays = case_arrays(case, dtype)
    if arrays is None:
        result.status, result.message = "skipped", f"the inputs of this case do not fit {dtype}"
        return result
    inputs, expected = arrays
    outcome = adapter.call(case.function, inputs, case.params, timeout=timeout)
    result.seconds = outcome.seconds
    if timeout is not None and outcome.kind in ("returned", "raised") and outcome.seconds > timeout:
        result.status = "timeout"
        result.message = f"answered after {outcome.seconds:.3g} s, over the {timeout:g} s limit"
        return result
    try:
        _judge(result, case, outcome, inputs, expected, adapter)
    except Exception as exc:  # posref's own judging failed: say so, blame nobody else, run the next case
        result.status = "error"
        result.message = (f"posref could not judge this output ({type(exc).__name__}: {exc}); this is a bug in "
                          "posref, please report it")
    return result


def _with_xfail(result: CaseResult, expected_failures: set[str]) -> CaseResult:
    if result.case_id in expected_failures and result.status in FAILING + ("lenient",):
        result.status = "xfail"
    elif result.case_id in expected_failures and result.status == "pass":
        result.status = "xpass"
    return result


def iter_results(
    adapter: Adapter,
    cases: Iterable[GoldenCase],
    *,
    timeout: float | None = 60.0,
    xfails: Iterable[str] = (),
    progress=None,
) -> Iterator[CaseResult]:
    """Run the cases one by one, yielding each result as soon as it is known (see :func:`run_cases`)."""
    timeout = check_timeout(timeout)
    cases = list(cases)
    expected_failures = set(xfails)
    for done, case in enumerate(cases, 1):
        yield _with_xfail(run_case(adapter, case, timeout=timeout), expected_failures)
        if progress is not None:
            progress(done, len(cases), case.id)


def run_cases(
    adapter: Adapter,
    cases: Iterable[GoldenCase],
    *,
    timeout: float | None = 60.0,
    xfails: Iterable[str] = (),
    progress=None,
) -> list[CaseResult]:
    """Run every case; cases listed in ``xfails`` report ``xfail``/``xpass`` instead of fail/pass."""
    return list(iter_results(adapter, cases, timeout=timeout, xfails=xfails, progress=progress))
