"""The conformance runner: feed cases to an adapter, compare, record, never stop early.

Statuses: ``pass``; ``fail`` (a wrong value, shape or count of outputs);
``error`` (the implementation raised on a valid input); ``timeout``;
``lenient`` (it accepted an input that a conforming implementation must
reject: reported, and a failure only under ``--strict``);
``not_implemented``; ``skipped`` (the inputs do not fit the dtype);
``xfail``/``xpass`` for cases listed as expected divergences.

Each case runs on its own: a case that raises, hangs past the timeout,
returns the wrong shape, a non-finite value or something NumPy cannot read is
recorded with its status and the rest still run.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field

import numpy as np

from posref.conformance.adapter import Adapter, to_numpy
from posref.conformance.compare import compare
from posref.conformance.tolerance import CaseView, budgets, round_budget
from posref.golden.case import GoldenCase
from posref._spec import SPEC_FUNCTIONS, spec_functions
from posref.golden.registry import call_with, round_to

__all__ = ["CaseResult", "STATUSES", "case_arrays", "float64_inputs", "run_case", "run_cases"]

#: Every status a case can end with.
STATUSES = ("pass", "fail", "error", "timeout", "lenient", "not_implemented", "skipped", "xfail", "xpass")


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


class _Timeout(Exception):
    pass


@contextlib.contextmanager
def _time_limit(seconds: float | None) -> Iterator[None]:
    """Raise _Timeout in the main thread after ``seconds`` (POSIX only; else no limit)."""
    usable = seconds and hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def on_alarm(signum, frame):
        raise _Timeout()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


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


def run_case(adapter: Adapter, case: GoldenCase, *, timeout: float | None = 60.0) -> CaseResult:
    """Run one case against the adapter in the adapter's dtype."""
    dtype = adapter.dtype
    result = CaseResult(case.id, case.function, case.family, dtype, "error",
                        repro=f"posref check --adapter {adapter.source} --dtype {dtype} --case {case.id}")
    implementation = adapter.function(case.function)
    if implementation is None:
        result.status, result.message = "not_implemented", f"{adapter.name} has no {case.function}"
        return result
    arrays = case_arrays(case, dtype)
    if arrays is None:
        result.status, result.message = "skipped", f"the inputs of this case do not fit {dtype}"
        return result
    inputs, expected = arrays
    start = time.perf_counter()
    try:
        with _time_limit(timeout):
            raw = call_with(implementation, inputs, case.params, like=spec_function(case.function))
    except NotImplementedError as exc:
        result.status, result.message = "not_implemented", str(exc) or f"{adapter.name} does not support these parameters"
        return result
    except _Timeout:
        result.status, result.message = "timeout", f"no answer within {timeout} s"
        return result
    except Exception as exc:
        result.seconds = time.perf_counter() - start
        if case.expect_error is not None:
            result.status = "pass"
            result.message = f"rejected with {type(exc).__name__}: {exc}"
        else:
            result.status, result.message = "error", f"{type(exc).__name__}: {exc}"
        return result
    result.seconds = time.perf_counter() - start
    if case.expect_error is not None:
        result.status = "lenient"
        result.message = f"accepted an invalid input; expected {case.expect_error} mentioning {case.error_match!r}"
        return result
    try:
        actual = to_numpy(raw)
    except TypeError as exc:
        result.status, result.message = "error", str(exc)
        return result
    actual_outputs = dict(zip(expected, actual)) if isinstance(actual, tuple) else {"output": actual}
    if set(actual_outputs) != set(expected):
        result.status = "fail"
        result.message = f"returned {len(actual_outputs)} output(s), expected {len(expected)}"
        return result
    allowed = case.budgets.get(dtype)  # the corpus's own numbers, when the case carries them
    if allowed is not None:
        allowed = {name: b.astype(np.float64) for name, b in allowed.items()}
    else:
        view = CaseView(case.function, case.params, float64_inputs(inputs), expected)
        allowed = {name: round_budget(b) for name, b in budgets(view, case.tolerance, dtype).items()}
    passed = True
    reasons = []
    for name, reference in expected.items():
        comparison = compare(actual_outputs[name], reference, allowed[name], dtype)
        result.outputs[name] = comparison.as_dict()
        if not comparison.passed:
            passed = False
            reasons.append(f"{name}: {comparison.reason}")
    result.status = "pass" if passed else "fail"
    result.message = "; ".join(reasons)
    return result


def run_cases(
    adapter: Adapter,
    cases: Iterable[GoldenCase],
    *,
    timeout: float | None = 60.0,
    xfails: Iterable[str] = (),
    progress=None,
) -> list[CaseResult]:
    """Run every case; cases listed in ``xfails`` report ``xfail``/``xpass`` instead of fail/pass."""
    cases = list(cases)
    expected_failures = set(xfails)
    results = []
    for done, case in enumerate(cases, 1):
        result = run_case(adapter, case, timeout=timeout)
        if case.id in expected_failures and result.status in ("fail", "error", "timeout", "lenient"):
            result.status = "xfail"
        elif case.id in expected_failures and result.status == "pass":
            result.status = "xpass"
        results.append(result)
        if progress is not None:
            progress(done, len(cases), case.id)
    return results
