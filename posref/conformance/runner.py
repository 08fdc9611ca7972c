"""The conformance runner: feed cases to an adapter, compare, record, never stop early.

Statuses, the same words in the console, the reports, the pytest plugin and
the matrix:

``pass``
    the outputs are within their budgets (or an invalid input was rejected
    with the error class the case declares);
``fail``
    wrong numbers on a valid input: a value over its budget, a wrong shape or
    count of outputs, or inputs changed in place;
``crash``
    the implementation raised on a valid input, or its worker process died;
``timeout``
    it did not answer within the time limit (the worker was killed);
``wrong_error``
    it rejected an invalid input, but with another error class than the one
    the case declares;
``lenient``
    it accepted an input that a conforming implementation must reject;
``known``
    the case is a listed known divergence (its reason is reported); the
    status it had is kept as ``observed``;
``fixed``
    the case is listed as a known divergence but passes now;
``not_implemented``, ``skipped``
    the adapter cannot express the case, or its inputs do not fit the dtype;
``error``
    posref itself could not judge the case (a bug in posref).

``fail``, ``crash``, ``timeout``, ``wrong_error`` and ``error`` fail a run;
under ``strict`` so do ``lenient``, ``known`` and ``fixed``.

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
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field

import numpy as np

from posref import SPEC_FUNCTIONS, spec_functions
from posref.conformance.adapter import Adapter, Outcome
from posref.conformance.compare import Comparison, compare
from posref.golden.case import GoldenCase
from posref.golden.registry import case_arrays, float64_inputs
from posref.tolerance import CaseView, budgets, round_budget

__all__ = ["CaseResult", "FAILING", "STATUSES", "STRICT_FAILING", "apply_known", "case_arrays", "check_timeout",
           "float64_inputs", "iter_results", "run_case", "run_cases"]

#: Every status a case can end with.
STATUSES = ("pass", "fail", "crash", "timeout", "wrong_error", "lenient", "known", "fixed", "not_implemented",
            "skipped", "error")

#: Statuses that make a run fail.
FAILING = ("fail", "crash", "timeout", "wrong_error", "error")

#: Statuses that make a run fail under ``strict``.
STRICT_FAILING = FAILING + ("lenient", "known", "fixed")

#: Statuses a known-divergence list can excuse (posref's own ``error`` never).
_EXCUSABLE = ("fail", "crash", "timeout", "wrong_error", "lenient")


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
    observed: str = ""  # for known/fixed: the status the case had before the list was applied
    reason: str = ""  # for known/fixed: the reason the list gives
    diagnosis: dict | None = None  # for fail: the spec variant that matches the output, if one does

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
            result.status, result.message = "crash", f"reading its output raised {raised}"
        elif case.expect_error is not None and outcome.raised(f"builtins.{case.expect_error}"):
            result.status, result.message = "pass", f"rejected with {raised}"
            if changed:
                result.status, result.message = "fail", f"{result.message}, but {changed}"
        elif case.expect_error is not None:
            result.status = "wrong_error"
            result.message = (f"rejected with {raised}; this invalid input must be rejected with "
                              f"{case.expect_error} (mentioning {case.error_match!r}), and {outcome.error_type} "
                              f"is not a {case.expect_error}")
        else:
            result.status, result.message = "crash", f"raised {raised}"
        if changed and result.status in ("crash", "wrong_error"):
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


def run_case(adapter: Adapter, case: GoldenCase, *, timeout: float | None = 60.0,
             diagnose: bool = True) -> CaseResult:
    """Run one case against the adapter in the adapter's dtype.

    ``timeout`` (seconds, positive and finite, or None for no limit) bounds
    the adapter's call: a worker adapter is killed when it runs over, an
    in-process one gets a best-effort alarm.  When the outputs are wrong
    (``fail``) and ``diagnose`` is true, the spec's other conventions and
    common slips are tried (:func:`posref.conformance.diagnose.diagnose`) and
    a variant that matches is recorded in ``diagnosis``.
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
    if diagnose and result.status == "fail" and result.outputs and not outcome.mutated:
        result.diagnosis = _diagnosis(case, inputs, expected, outcome, dtype)
    return result


def _diagnosis(case: GoldenCase, inputs: dict, expected: dict, outcome: Outcome, dtype: str) -> dict | None:
    """The spec variant that matches a wrong output, as a dict with a ``text`` sentence; None if none does."""
    from posref.conformance.diagnose import diagnose

    if len(outcome.outputs) != len(expected) or not all(isinstance(a, np.ndarray) for a in outcome.outputs):
        return None
    try:
        found = diagnose(case, inputs, dict(zip(expected, outcome.outputs)), dtype, time_limit=10.0)
    except Exception:  # a hint, never a reason for a case to end otherwise
        return None
    return None if found is None else found.as_dict()


def apply_known(result: CaseResult, known) -> CaseResult:
    """Mark ``result`` ``known`` (or ``fixed``) when its case is in ``known`` (ids, or id -> reason)."""
    if result.case_id not in known:
        return result
    reason = known.get(result.case_id, "") if isinstance(known, Mapping) else ""
    if result.status in _EXCUSABLE:
        result.observed, result.status, result.reason = result.status, "known", reason
    elif result.status == "pass":
        result.observed, result.status, result.reason = "pass", "fixed", reason
        result.message = "listed as a known divergence, but passes now: take it off the list"
    return result


def iter_results(
    adapter: Adapter,
    cases: Iterable[GoldenCase],
    *,
    timeout: float | None = 60.0,
    known: Mapping[str, str] | Iterable[str] = (),
    progress=None,
    xfails: Mapping[str, str] | Iterable[str] = (),
    diagnose: bool = True,
) -> Iterator[CaseResult]:
    """Run the cases one by one, yielding each result as soon as it is known (see :func:`run_cases`)."""
    timeout = check_timeout(timeout)
    cases = list(cases)
    listed = _known_map(known, xfails)
    for done, case in enumerate(cases, 1):
        yield apply_known(run_case(adapter, case, timeout=timeout, diagnose=diagnose), listed)
        if progress is not None:
            progress(done, len(cases), case.id)


def _known_map(known, xfails) -> dict[str, str]:
    listed: dict[str, str] = {}
    for source in (xfails, known):  # ``xfails``: the former name of ``known``
        if isinstance(source, Mapping):
            listed.update({str(k): str(v) for k, v in source.items()})
        else:
            listed.update({str(k): "" for k in source})
    return listed


def run_cases(
    adapter: Adapter,
    cases: Iterable[GoldenCase],
    *,
    timeout: float | None = 60.0,
    known: Mapping[str, str] | Iterable[str] = (),
    progress=None,
    xfails: Mapping[str, str] | Iterable[str] = (),
    diagnose: bool = True,
) -> list[CaseResult]:
    """Run every case; cases in ``known`` (ids, or id -> reason) report ``known``/``fixed`` instead of failing.

    ``diagnose`` (default True) looks for the spec variant behind each wrong output (see :func:`run_case`).
    """
    return list(iter_results(adapter, cases, timeout=timeout, known=known, progress=progress, xfails=xfails,
                             diagnose=diagnose))
