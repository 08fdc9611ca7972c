"""Differential fuzzing: random cases, shrunk to a minimal failure, with a snippet that reproduces it.

The golden cases pin the places where implementations are known to break.
This module adds cases nobody wrote down: for each spec function a
`hypothesis <https://hypothesis.readthedocs.io>`_ strategy draws a
:class:`~posref.golden.registry.CaseSpec` with small random shapes,
positions from 0 up to about :math:`2^{20}`, and parameters in the ranges
real models use (layouts, bases, head counts 1 to 64, valid T5 bucket
settings, partial rotary widths, scaling factors).  Each drawn case is built
with :func:`~posref.golden.registry.build_case` and run with
:func:`~posref.conformance.runner.run_case`, so it is compared with the
float64 spec under the same error model as the golden case of that function
(:data:`FUZZ_TOLERANCE`).

A case that fails, raises or returns the wrong shape is shrunk by
hypothesis to a minimal one (fewest positions, heads and channels, smallest
positions and parameters that still fail) and reported as one
:class:`~posref.conformance.runner.CaseResult` whose message names the
seed, the case and the error, and whose ``repro`` is a self-contained
Python snippet that rebuilds exactly that case and runs it again.

A case is reproducible from its description alone: every array that is not
written out literally (:class:`~posref.golden.registry.Normal` features,
say) is drawn from a generator seeded by the case id, ``fuzz.<function>.<n>``,
whose ``<n>`` hypothesis draws like any other parameter.  With the same
``seed`` (and the same hypothesis version) a run draws the same cases and
gives the same results.

The strategies are the random counterpart of the golden cases and live
with them, in each family's ``posref/golden/cases/<family>.py``, each
registered for one spec function with ``@strategy(function, tolerance=...)``
of :mod:`posref.golden.strategies` (which also holds the drawing helpers
they share); :data:`FUZZ_TOLERANCE` and :data:`FUZZ_FUNCTIONS` are read from
those registrations.

hypothesis is imported only when fuzzing starts; it ships with posref's
``test`` extra.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from posref import SPEC_FUNCTIONS, spec_functions
from posref._validate import ensure_int, ensure_real
from posref.conformance.adapter import DEFAULT_ONLY, Adapter, check_options, declared_options
from posref.conformance.runner import FAILING, CaseResult, run_case
from posref.golden.case import LOW_PRECISION_DTYPES
from posref.golden.registry import Arange, CaseSpec, Normal, Values, build_case
from posref.golden.strategies import MAX_POSITION, SHORT_POSITION, STRATEGIES, composite

__all__ = [
    "FUZZ_FUNCTIONS",
    "FUZZ_TOLERANCE",
    "FuzzResult",
    "MAX_POSITION",
    "SHORT_POSITION",
    "adapter_options",
    "case_strategy",
    "describe_case",
    "draw_counts",
    "fuzz",
    "poorly_covered",
    "repro_snippet",
]

#: The tolerance class each fuzzed function is compared under: the class of
#: that function's golden cases, as its strategy registers it (next to those
#: cases, in ``posref/golden/cases/<family>.py``).  In catalogue order (family,
#: then name).
FUZZ_TOLERANCE: dict[str, str] = {
    entry.name: STRATEGIES[entry.name].tolerance for entry in spec_functions() if entry.name in STRATEGIES
}

#: Every function :func:`fuzz` can draw cases for, in the order it runs them.
FUZZ_FUNCTIONS: tuple[str, ...] = tuple(FUZZ_TOLERANCE)

#: Statuses that make hypothesis look for (and shrink) a failing case.
_FAILING = tuple(FAILING)


def _not_retried(result: CaseResult) -> bool:
    """A hang, or a worker process that died: every retry would cost a timeout or a fresh worker."""
    if result.status == "timeout":
        return True
    return result.status == "crash" and not result.message.startswith(("raised ", "reading its output raised "))

#: Suffix of the description of a case whose options were moved inside the adapter's declaration.
_FITTED = " (options fitted to the adapter's ADAPTER_OPTIONS)"


# -- strategies ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DrawContext:
    """What a registered strategy gets besides hypothesis' ``draw``.

    ``function`` is the spec function it draws for, ``tolerance`` the class
    it registered, and ``options`` a checked ``ADAPTER_OPTIONS`` declaration
    (``posref.conformance.adapter.check_options``) that every drawn case
    keeps inside (see :meth:`case`).
    """

    function: str
    tolerance: str
    options: Mapping[str, Mapping[str, Any]]

    def case(self, draw: Callable[[Any], Any], inputs: dict, params: dict, tolerance: str | None = None) -> CaseSpec:
        """The case, kept inside the declared options, with parameters equal to the spec's defaults left out."""
        from hypothesis import strategies as st

        function = self.function
        params, fitted = _fit_options(function, _without_defaults(function, params), self.options.get(function, {}),
                                      lambda values: draw(st.sampled_from(values)))
        return CaseSpec(id=f"fuzz.{function}.{draw(st.integers(0, 2**32 - 1))}", function=function, inputs=inputs,
                        params=params, tolerance=tolerance or self.tolerance,
                        description=f"hypothesis differential case for {function}" + (_FITTED if fitted else ""))


def _without_defaults(function: str, params: dict[str, Any]) -> dict[str, Any]:
    """Drop keyword parameters equal to the spec function's default.

    An adapter that lacks a rarely used option then still runs every case
    that does not need it.
    """
    signature = inspect.signature(SPEC_FUNCTIONS[function].function)
    kept = {}
    for name, value in params.items():
        parameter = signature.parameters[name]
        if parameter.kind is parameter.KEYWORD_ONLY and parameter.default is not parameter.empty:
            default = parameter.default
            if value is default or (type(value) is type(default) and value == default):
                continue
        kept[name] = value
    return kept


def _default_of(function: str, option: str) -> Any:
    return inspect.signature(SPEC_FUNCTIONS[function].function).parameters[option].default


def _fit_options(function: str, params: dict[str, Any], declared: Mapping[str, Any],
                 choose: Callable[[list], Any]) -> tuple[dict[str, Any], bool]:
    """``params`` (defaults left out) moved inside the declared options of ``function``; whether any moved.

    An option declared :data:`~posref.conformance.adapter.DEFAULT_ONLY` is
    left out (the spec's default); one declared with a list of values whose
    drawn value is not among them gets one of them, picked by ``choose``.
    """
    params = dict(params)
    fitted = False
    for option, allowed in declared.items():
        if allowed == DEFAULT_ONLY:
            if option in params:
                del params[option]
                fitted = True
            continue
        value = params.get(option, _default_of(function, option))
        key = tuple(value) if isinstance(value, list) else value
        if not any(_same_value(key, a) for a in allowed):
            picked = choose(list(allowed))
            params[option] = list(picked) if isinstance(picked, tuple) else picked
            fitted = True
    return _without_defaults(function, params), fitted


def _same_value(value: Any, allowed: Any) -> bool:
    """Equality of option values where a bool is not the number 1 (``True == 1`` in Python)."""
    if isinstance(value, bool) or isinstance(allowed, bool):
        return value is allowed
    if isinstance(value, tuple) and isinstance(allowed, tuple):
        return len(value) == len(allowed) and all(_same_value(v, a) for v, a in zip(value, allowed))
    try:
        return bool(value == allowed)
    except Exception:  # pragma: no cover - arrays and other exotic values
        return False


def _fits(function: str, params: Mapping[str, Any], declared: Mapping[str, Any]) -> bool:
    """Whether a case's parameters (defaults left out) keep inside the declared options."""
    for option, allowed in declared.items():
        if allowed == DEFAULT_ONLY:
            if option in params:
                return False
            continue
        value = params.get(option, _default_of(function, option))
        key = tuple(value) if isinstance(value, list) else value
        if not any(_same_value(key, a) for a in allowed):
            return False
    return True


def adapter_options(adapter: Adapter) -> dict[str, dict[str, Any]]:
    """The options ``adapter`` declares (``ADAPTER_OPTIONS``), checked; ``{}`` when it declares none.

    A loaded adapter carries them in ``adapter.options``; an
    :class:`~posref.conformance.adapter.Adapter` built in code with an
    empty ``options`` is read from its target's ``ADAPTER_OPTIONS``.

    Raises
    ------
    TypeError, ValueError
        If the declaration is malformed (see
        ``posref.conformance.adapter.check_options``); the message
        names the adapter, the function and the option.
    """
    if not isinstance(adapter, Adapter):
        raise TypeError(f"adapter must be a posref.conformance.adapter.Adapter (see load_adapter), "
                        f"got {type(adapter).__name__}")
    if adapter.options:
        return check_options(adapter.source, adapter.options)
    return declared_options(adapter.source, adapter.target)


def case_strategy(function: str, options: Mapping[str, Mapping[str, Any]] | None = None):
    """The hypothesis strategy drawing :class:`~posref.golden.registry.CaseSpec` for ``function``.

    Parameters
    ----------
    function : str
        One of :data:`FUZZ_FUNCTIONS`.
    options : dict or None
        An ``ADAPTER_OPTIONS`` declaration (see
        ``posref.conformance.adapter.check_options``); every case
        drawn keeps inside it.  ``None``: no restriction.

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Draws valid cases with ids ``fuzz.<function>.<n>`` and the tolerance
        class of :data:`FUZZ_TOLERANCE`.

    Raises
    ------
    ValueError
        If ``function`` has no strategy, or ``options`` is malformed.
    TypeError
        If ``options`` has the wrong type.
    ImportError
        If hypothesis is not installed.
    """
    if function not in FUZZ_TOLERANCE:
        raise ValueError(f"function must be one of {', '.join(FUZZ_FUNCTIONS)}, got function={function!r}")
    checked = {} if options is None else check_options("<options>", options)
    _require_hypothesis()
    entry = STRATEGIES[function]
    return composite(entry.draw_case)(DrawContext(function, entry.tolerance, checked))


def _require_hypothesis() -> None:
    try:
        import hypothesis  # noqa: F401
    except ImportError as exc:  # pragma: no cover - hypothesis ships with the test extra
        raise ImportError(
            "fuzzing needs hypothesis: pip install 'posref[test]' (or pip install hypothesis)"
        ) from exc


# -- describing and reproducing a case --------------------------------------------------------


def _describe_input(description) -> str:
    if isinstance(description, Values):
        array = np.asarray(description.values)
        if array.size <= 8:
            return repr(np.asarray(description.values).tolist())
        return f"{description.dtype} {array.shape} in [{array.min()}, {array.max()}]"
    if isinstance(description, Arange):
        return f"arange({description.start}, {description.stop})"
    if isinstance(description, Normal):
        return f"normal{description.shape}" + (f" x {description.scale:g}" if description.scale != 1.0 else "")
    return repr(description)


def describe_case(spec: CaseSpec) -> str:
    """A one-line, call-like description of a case for messages.

    Short literal inputs are written out, longer ones summarised by dtype,
    shape and range; the exact case is in the repro snippet.

    Examples
    --------
    >>> from posref.golden.registry import Arange, CaseSpec, Normal
    >>> describe_case(CaseSpec(id="fuzz.apply_rope.0", function="apply_rope",
    ...                        inputs={"x": Normal((1, 2)), "positions": Arange(0, 1)},
    ...                        params={"layout": "interleaved"}))
    "apply_rope(x=normal(1, 2), positions=arange(0, 1), layout='interleaved')"
    """
    parts = [f"{name}={_describe_input(d)}" for name, d in spec.inputs.items()]
    parts += [f"{name}={value!r}" for name, value in spec.params.items()]
    return f"{spec.function}({', '.join(parts)})"


def _source_of(spec: CaseSpec) -> str:
    """Python source that rebuilds ``spec`` exactly."""
    inputs = ", ".join(f"{name!r}: {description!r}" for name, description in spec.inputs.items())
    return (
        "CaseSpec(\n"
        f"    id={spec.id!r}, function={spec.function!r}, tolerance={spec.tolerance!r},\n"
        f"    inputs={{{inputs}}},\n"
        f"    params={dict(spec.params)!r},\n"
        ")"
    )


def repro_snippet(spec: CaseSpec, adapter: Adapter, *, seed: int, timeout: float | None = 60.0) -> str:
    """A self-contained Python snippet that rebuilds ``spec`` and runs it against the adapter again.

    It loads the adapter by the name it was loaded with (``adapter.source``);
    for an adapter object built in code, replace that line.
    """
    return (
        f"# posref fuzz, seed {seed}: differential case for {spec.function} "
        f"({adapter.dtype}, {adapter.device})\n"
        "from posref.conformance.adapter import load_adapter\n"
        "from posref.conformance.runner import case_arrays, run_case\n"
        "from posref.golden.registry import Arange, CaseSpec, Normal, Values, build_case\n"
        "\n"
        f"adapter = load_adapter({adapter.source!r}, dtype={adapter.dtype!r}, device={adapter.device!r})\n"
        f"case = build_case({_source_of(spec)})\n"
        f"result = run_case(adapter, case, timeout={timeout!r})\n"
        "print(result.status, result.message)\n"
        "inputs, expected = case_arrays(case, adapter.dtype)  # what the adapter gets; the float64 spec\n"
    )


# -- running ----------------------------------------------------------------------------------


class _CaseFailed(Exception):
    """Raised inside the hypothesis test body so that hypothesis shrinks the case."""

    def __init__(self, spec: CaseSpec, result: CaseResult) -> None:
        super().__init__(f"{result.status}: {result.message}")
        self.spec = spec
        self.result = result


def _dtypes_for(dtype: str) -> tuple[str, ...]:
    return (dtype,) if dtype in LOW_PRECISION_DTYPES else ()


def _error_summary(result: CaseResult) -> str:
    parts = []
    for name, c in result.outputs.items():
        if c["budget_share"] > 1.0:
            parts.append(f"{name}: max abs error {c['max_abs_error']:.3g}, max rel {c['max_rel_error']:.3g}, "
                         f"max ULP {c['max_ulp']:.3g}, {c['budget_share']:.3g}x the budget")
    return "; ".join(parts)


@dataclass
class FuzzResult(CaseResult):
    """A fuzz result: a :class:`~posref.conformance.runner.CaseResult` with how many drawn cases ran.

    ``drawn`` counts the cases sent to the adapter while hypothesis searched
    (shrinking steps after a failure not included); ``ran`` those of them
    that did not end ``not_implemented`` or ``skipped``.
    """

    ran: int = 0
    drawn: int = 0


def _with_counts(result: CaseResult, ran: int, drawn: int) -> FuzzResult:
    values = {f.name: getattr(result, f.name) for f in fields(CaseResult)}
    return FuzzResult(**values, ran=ran, drawn=drawn)


def _variants_of(diagnosis: Mapping[str, Any] | None) -> set[str]:
    """Every spec variant a diagnosis found to reproduce the output: the best one and the alternatives."""
    if not diagnosis:
        return set()
    found = {str(diagnosis.get("variant", ""))}
    found.update(str(a.get("variant", "")) for a in diagnosis.get("alternatives", ()) if isinstance(a, Mapping))
    return found - {""}


class _KnownConventions:
    """The known divergences of one function, as the spec variants their golden cases reproduce.

    A listed golden case of the function that fails on valid input, with a
    diagnosis, stands for a convention the implementation is known to follow
    instead of the spec's (Hugging Face ignoring YaRN's ``mscale`` without
    ``mscale_all_dim``, say).  A differential case that fails and whose
    diagnosis names one of the same variants shows that same divergence at
    another point: it is reported ``known`` with the listed reason, and the
    search goes on for a failure nothing explains.  The listed cases are run
    (once, against the same adapter) only when a differential case first
    fails with a diagnosis.
    """

    def __init__(self, adapter: Adapter, function: str, known: Mapping[str, str], timeout: float | None) -> None:
        self.adapter, self.function, self.known, self.timeout = adapter, function, known, timeout
        self._variants: dict[str, str] | None = None  # variant -> listed case id

    def _listed_specs(self) -> list[CaseSpec]:
        from posref.golden.cases import CASES

        return [spec for spec in CASES if spec.id in self.known and spec.function == self.function
                and spec.expect_error is None]

    def variants(self) -> dict[str, str]:
        if self._variants is None:
            self._variants = {}
            for spec in self._listed_specs():
                result = run_case(self.adapter, build_case(spec, _dtypes_for(self.adapter.dtype)),
                                  timeout=self.timeout)
                if result.status == "fail":
                    for variant in sorted(_variants_of(result.diagnosis)):
                        self._variants.setdefault(variant, spec.id)
        return self._variants

    def match(self, result: CaseResult) -> str | None:
        """The listed case id whose divergence ``result`` reproduces, or None."""
        if result.status != "fail" or not self.known:
            return None
        found = _variants_of(result.diagnosis)
        if not found:
            return None
        listed = self.variants()
        matching = sorted(listed[v] for v in found if v in listed)
        return matching[0] if matching else None


#: Classes of option values that :class:`_Avoidance` tells apart: the default, and any other number.
_DEFAULT_CLASS = "<default>"
_NUMBER_CLASS = "<other number>"


class _Avoidance:
    """What the adapter said NotImplementedError to, so that later draws of one function avoid it.

    Each case is summarised by the class of every keyword option of the
    spec function: the default, the value itself for strings, booleans
    and None, "another number" for the rest.  A combination of classes
    that came back ``not_implemented`` and never ran is avoided; so is a
    single option class that was the only one never seen in a case that
    ran, in a case that came back ``not_implemented`` (one form of ALiBi,
    say, or one rotation layout).
    """

    def __init__(self, function: str) -> None:
        parameters = inspect.signature(SPEC_FUNCTIONS[function].function).parameters.values()
        self.options = tuple(p.name for p in parameters if p.kind is p.KEYWORD_ONLY)
        self.proven: set[tuple[str, Any]] = set()
        self.blamed: set[tuple[str, Any]] = set()
        self.ran_combinations: set[frozenset] = set()
        self.refused_combinations: set[frozenset] = set()

    def key(self, params: Mapping[str, Any]) -> frozenset:
        classes = []
        for name in self.options:
            if name not in params:
                value = _DEFAULT_CLASS
            else:
                value = params[name]
                if not (value is None or isinstance(value, (str, bool))):
                    value = _NUMBER_CLASS
            classes.append((name, value))
        return frozenset(classes)

    def avoids(self, key: frozenset) -> bool:
        return key in self.refused_combinations or not self.blamed.isdisjoint(key)

    def ran(self, key: frozenset) -> None:
        self.proven |= key
        self.ran_combinations.add(key)
        self.refused_combinations.discard(key)

    def refused(self, key: frozenset) -> None:
        if key in self.ran_combinations:  # it ran before: the inputs, not the options, were refused
            return
        self.refused_combinations.add(key)
        unproven = key - self.proven
        if len(unproven) == 1:
            self.blamed |= unproven


#: Statuses of a differential result that a ``fuzz.<function>`` entry of a known list excuses.
_LISTABLE = ("fail", "crash", "timeout", "wrong_error")


def _fuzz_function(adapter: Adapter, function: str, *, max_examples: int, seed: int,
                   timeout: float | None, options: Mapping[str, Mapping[str, Any]],
                   known: Mapping[str, str] | None = None) -> FuzzResult:
    """One function's differential result; a failure is ``known`` when the list names ``fuzz.<function>``."""
    result = _search_function(adapter, function, max_examples=max_examples, seed=seed, timeout=timeout,
                              options=options, known=known)
    entry = f"fuzz.{function}"
    if known and entry in known and result.status in _LISTABLE:
        result.observed, result.status = result.status, "known"
        result.reason = known[entry] or f"listed as {entry}"
    return result


def _search_function(adapter: Adapter, function: str, *, max_examples: int, seed: int,
                     timeout: float | None, options: Mapping[str, Mapping[str, Any]],
                     known: Mapping[str, str] | None = None) -> FuzzResult:
    from hypothesis import HealthCheck, Phase, Verbosity, assume, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis.errors import Flaky, Unsatisfiable

    family = SPEC_FUNCTIONS[function].family
    counts = {"examples": 0, "pass": 0, "not_implemented": 0, "skipped": 0, "known": 0}
    first_failure: dict[str, Any] = {}
    first_known: dict[str, Any] = {}
    conventions = _KnownConventions(adapter, function, known or {}, timeout)
    hang: dict[str, Any] = {}
    avoidance = _Avoidance(function)
    started = time.perf_counter()

    @hypothesis_seed(seed)
    @settings(max_examples=max_examples, derandomize=False, database=None, deadline=None,
              phases=(Phase.explicit, Phase.generate, Phase.shrink), suppress_health_check=list(HealthCheck),
              report_multiple_bugs=False, verbosity=Verbosity.quiet, print_blob=False)
    @given(case_strategy(function, options))
    def body(spec: CaseSpec) -> None:
        if hang:  # a hung or crashed adapter is not retried: every retry costs a timeout or a fresh worker
            return
        key = avoidance.key(spec.params)
        assume(not avoidance.avoids(key))
        try:
            case = build_case(spec, _dtypes_for(adapter.dtype))
        except (ValueError, TypeError):
            if spec.description.endswith(_FITTED):  # the declared values do not fit the rest of the case
                assume(False)
            raise
        searching = not first_failure
        if searching:
            counts["examples"] += 1
        result = run_case(adapter, case, timeout=timeout)
        if result.status in ("not_implemented", "skipped"):
            if result.status == "not_implemented":
                avoidance.refused(key)
            if searching:
                counts[result.status] += 1
            return
        avoidance.ran(key)
        if _not_retried(result):
            hang.update(spec=spec, result=result)
            return
        if result.status in _FAILING:
            listed = conventions.match(result)
            if listed is not None:  # a listed divergence at another point: noted, and the search goes on
                if searching:
                    counts["known"] += 1
                    first_known.setdefault("case", (spec, result, listed, counts["examples"]))
                return
            first_failure.setdefault("examples", counts["examples"])
            first_failure.setdefault("spec", spec)
            raise _CaseFailed(spec, result)
        if searching:
            counts["pass"] += 1

    failure: _CaseFailed | None = None
    try:
        body()
    except _CaseFailed as exc:
        failure = exc
    except Unsatisfiable:  # every draw was avoided or fitted out: nothing ran, nothing failed
        pass
    except Flaky as exc:
        spec = first_failure["spec"]
        result = CaseResult(spec.id, function, family, adapter.dtype, "fail",
                            message=(f"fuzz seed {seed}: the adapter gave different answers for the same case, "
                                     f"so it could not be shrunk ({type(exc).__name__}); first failing case "
                                     f"{describe_case(spec)}"),
                            seconds=time.perf_counter() - started,
                            repro=repro_snippet(spec, adapter, seed=seed, timeout=timeout))
        drawn = counts["examples"]
        return _with_counts(result, drawn - counts["not_implemented"] - counts["skipped"], drawn)
    seconds = time.perf_counter() - started
    drawn = counts["examples"]
    ran = drawn - counts["not_implemented"] - counts["skipped"]

    if hang:
        spec, result = hang["spec"], hang["result"]
        what = "a hang" if result.status == "timeout" else "a crash"
        result.message = (f"fuzz seed {seed}: differential case (not shrunk: {what} is not retried) "
                          f"{describe_case(spec)}: {result.message}")
        result.repro = repro_snippet(spec, adapter, seed=seed, timeout=timeout)
        return _with_counts(result, ran, drawn)
    also_known = ""
    if first_known:
        listed = first_known["case"][2]
        also_known = (f"; {counts['known']} other draw(s) reproduced the known divergence {listed} and were "
                      f"set aside")
    if failure is not None:
        spec, result = failure.spec, failure.result
        details = "; ".join(x for x in (result.message, _error_summary(result)) if x)
        result.message = (f"fuzz seed {seed}: shrunk differential case (first failure at example "
                          f"{first_failure['examples']}) {describe_case(spec)} in {adapter.dtype}: {details}"
                          f"{also_known}")
        result.repro = repro_snippet(spec, adapter, seed=seed, timeout=timeout)
        result.seconds = seconds
        return _with_counts(result, ran, drawn)
    if first_known:
        spec, result, listed, example = first_known["case"]
        details = "; ".join(x for x in (result.message, _error_summary(result)) if x)
        variant = (result.diagnosis or {}).get("variant", "")
        result.case_id = f"fuzz.{function}"
        result.observed, result.status = "fail", "known"
        result.reason = (f"{counts['known']} of {drawn} draws show the divergence of {listed}"
                         + (f": {known[listed]}" if known and known.get(listed) else ""))
        result.message = (f"fuzz seed {seed}: {counts['known']} of {drawn} differential cases reproduce the known "
                          f"divergence {listed} (the spec with {variant}), {counts['pass']} passed, nothing else "
                          f"failed; first at example {example}: {describe_case(spec)} in {adapter.dtype}: {details}")
        result.repro = repro_snippet(spec, adapter, seed=seed, timeout=timeout)
        result.seconds = seconds
        return _with_counts(result, ran, drawn)
    if counts["pass"] == 0 and counts["not_implemented"]:
        return FuzzResult(f"fuzz.{function}", function, family, adapter.dtype, "not_implemented",
                          message=(f"fuzz seed {seed}: {adapter.name} raised NotImplementedError for all "
                                   f"{drawn} generated cases"), seconds=seconds, ran=ran, drawn=drawn)
    if counts["pass"] == 0 and drawn == 0:
        return FuzzResult(f"fuzz.{function}", function, family, adapter.dtype, "skipped",
                          message=f"fuzz seed {seed}: no generated case fits the options {adapter.name} declares",
                          seconds=seconds, ran=ran, drawn=drawn)
    if counts["pass"] == 0:
        return FuzzResult(f"fuzz.{function}", function, family, adapter.dtype, "skipped",
                          message=f"fuzz seed {seed}: none of the {drawn} generated cases fit {adapter.dtype}",
                          seconds=seconds, ran=ran, drawn=drawn)
    others = [f"{counts[k]} {k.replace('_', ' ')}" for k in ("not_implemented", "skipped") if counts[k]]
    return FuzzResult(f"fuzz.{function}", function, family, adapter.dtype, "pass",
                      message=(f"fuzz seed {seed}: {counts['pass']} of {drawn} hypothesis differential cases "
                               f"passed" + (f" ({', '.join(others)})" if others else "")),
                      seconds=seconds, ran=ran, drawn=drawn)


def fuzz(
    adapter: Adapter,
    /,
    *,
    functions: Iterable[str] | None = None,
    max_examples: int = 50,
    seed: int = 0,
    timeout: float | None = 60.0,
    progress: Callable[[int, int, str], None] | None = None,
    known: bool | Mapping[str, str] | Iterable[str] | None = None,
) -> list[CaseResult]:
    """Run hypothesis differential cases against an adapter and shrink every failure.

    For each function (in :data:`FUZZ_FUNCTIONS` order, or the order given)
    that the adapter implements, up to ``max_examples`` cases are drawn from
    :func:`case_strategy`, built, and run with
    :func:`~posref.conformance.runner.run_case`.  The first case that ends
    ``fail``, ``error``, ``crash`` or ``timeout`` stops the search; hypothesis shrinks
    it (a timeout or a crash of the worker is reported as found, since every
    retry would hang or crash again).  Each function is searched and shrunk
    on its own, so every failing function gets its own minimal case.

    The cases fit the adapter: they keep inside the options it declares
    (``ADAPTER_OPTIONS``, :func:`adapter_options`), and once a combination
    of options comes back ``not_implemented`` later cases of that function
    avoid it (as does a single option value that is the only one never seen
    to run in such a case), so the examples go to what the adapter can do.
    Each result says how many of the cases drawn ran (:class:`FuzzResult`,
    :func:`draw_counts`, :func:`poorly_covered`).

    Parameters
    ----------
    adapter : Adapter
        A loaded adapter (:func:`~posref.conformance.adapter.load_adapter`).
    functions : iterable of str or None, keyword-only
        Functions to fuzz; ``None`` means all of :data:`FUZZ_FUNCTIONS`.
    max_examples : int, keyword-only
        Cases drawn per function, at least 0; 0 returns an empty list (golden
        cases only).
    seed : int, keyword-only
        Non-negative seed of hypothesis' search.  The same seed gives the same
        cases and results.  It is printed in every result message.
    timeout : float or None, keyword-only
        Seconds allowed per case, as in :func:`~posref.conformance.runner.run_case`.
    progress : callable or None, keyword-only
        Called as ``progress(done, total, function)`` after each function.
    known : bool, mapping or iterable of str, or None, keyword-only
        Known divergences, as :func:`~posref.conformance.engine.check` takes
        them (``posref.conformance.engine.resolve_known``: True for a
        built-in adapter's own list, None or False for none, a mapping of
        golden case id to reason, or ids).  A drawn case
        that fails and whose diagnosis names a spec variant that a listed
        golden case of the same function also reproduces (that case run
        against the same adapter) shows the listed divergence again: it
        does not stop the search.  If nothing else fails, the function's
        result is ``known`` (observed ``fail``), with the listed reason, the
        count of such draws and the first of them; if something else fails,
        that failure is shrunk and reported as usual.  An entry
        ``fuzz.<function>`` lists the function's differential cases as a
        whole: when they fail (``fail``, ``crash``, ``timeout`` or
        ``wrong_error``), the shrunk result is ``known`` with that entry's
        reason.  One that passes stays ``pass``: a search that found
        nothing is no proof that the divergence is gone.

    Returns
    -------
    list of FuzzResult
        One result per function, with ``ran`` and ``drawn``: ``"pass"`` (case id ``fuzz.<function>``, the
        number of cases in the message), the shrunk failing case
        (a failing status of :data:`~posref.conformance.runner.FAILING`; case id
        ``fuzz.<function>.<n>``, the case in the message, a Python snippet
        in ``repro``), or ``"not_implemented"`` when the adapter lacks the
        function, or ``"known"`` when the only failures reproduce a listed
        divergence (see ``known``).

    Raises
    ------
    ValueError
        If a function has no strategy, ``max_examples`` or ``seed`` is
        negative, ``timeout`` is not positive, or the adapter's
        ``ADAPTER_OPTIONS`` names an unknown function or option.
    TypeError
        If an argument, or the adapter's ``ADAPTER_OPTIONS``, has the wrong type.
    """
    if not isinstance(adapter, Adapter):
        raise TypeError(f"adapter must be a posref.conformance.adapter.Adapter (see load_adapter), "
                        f"got {type(adapter).__name__}")
    selected = _check_functions(functions)
    max_examples = ensure_int("max_examples", max_examples, minimum=0)
    seed = ensure_int("seed", seed, minimum=0)
    if timeout is not None:
        timeout = ensure_real("timeout", timeout, exclusive_minimum=0.0)
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be callable or None, got {type(progress).__name__}")
    from posref.conformance.engine import resolve_known  # engine imports this module when it fuzzes

    listed = resolve_known(adapter, known)
    options = adapter_options(adapter)
    if max_examples == 0:
        return []
    _require_hypothesis()
    spec_functions()  # the whole catalogue, for the families
    results: list[CaseResult] = []
    for done, function in enumerate(selected, 1):
        if adapter.function(function) is None:
            results.append(FuzzResult(f"fuzz.{function}", function, SPEC_FUNCTIONS[function].family, adapter.dtype,
                                      "not_implemented", message=f"{adapter.name} has no {function}"))
        else:  # each function is searched and shrunk on its own: every failing function gets its own case
            results.append(_fuzz_function(adapter, function, max_examples=max_examples, seed=seed,
                                          timeout=timeout, options=options, known=listed))
        if progress is not None:
            progress(done, len(selected), function)
    return results


def _check_functions(functions: Iterable[str] | None) -> list[str]:
    if functions is None:
        return list(FUZZ_FUNCTIONS)
    if isinstance(functions, str) or not isinstance(functions, Iterable):
        raise TypeError(f"functions must be None or a list of function names, got {functions!r}")
    selected: list[str] = []
    for name in functions:
        if name not in FUZZ_TOLERANCE:
            raise ValueError(f"functions must be among {', '.join(FUZZ_FUNCTIONS)}, got {name!r}")
        if name not in selected:
            selected.append(name)
    return selected


# -- coverage -----------------------------------------------------------------------------------


def draw_counts(results: Iterable[CaseResult]) -> dict[str, tuple[int, int]]:
    """How many drawn cases ran, per function: ``{function: (ran, drawn)}``.

    ``drawn`` counts the cases sent to the adapter while searching;
    ``ran`` those that did not end ``not_implemented`` or ``skipped``.
    Results other than :class:`FuzzResult` (golden cases) are ignored; a
    function the adapter lacks counts ``(0, 0)``.

    Raises
    ------
    TypeError
        If ``results`` is not an iterable of CaseResult.

    Examples
    --------
    >>> r = FuzzResult("fuzz.alibi_bias", "alibi_bias", "alibi", "float32", "pass", ran=40, drawn=50)
    >>> draw_counts([r])
    {'alibi_bias': (40, 50)}
    """
    if isinstance(results, (str, bytes)) or not isinstance(results, Iterable):
        raise TypeError(f"results must be an iterable of CaseResult, got {type(results).__name__}")
    counts: dict[str, tuple[int, int]] = {}
    for result in results:
        if not isinstance(result, CaseResult):
            raise TypeError(f"results must hold CaseResult objects, got {type(result).__name__}")
        if isinstance(result, FuzzResult):
            ran, drawn = counts.get(result.function, (0, 0))
            counts[result.function] = (ran + result.ran, drawn + result.drawn)
    return counts


def poorly_covered(counts: Mapping[str, tuple[int, int]]) -> list[str]:
    """The functions of ``counts`` (:func:`draw_counts`) where fewer than half the drawn cases ran.

    A function with no case drawn (the adapter lacks it) is not listed.

    Raises
    ------
    TypeError, ValueError
        If ``counts`` is not a mapping of names to ``(ran, drawn)`` pairs of
        integers with ``0 <= ran <= drawn``.

    Examples
    --------
    >>> poorly_covered({"alibi_bias": (0, 50), "apply_rope": (30, 50), "t5_relative_bias": (0, 0)})
    ['alibi_bias']
    """
    if not isinstance(counts, Mapping):
        raise TypeError(f"counts must be a dict {{function: (ran, drawn)}} (see draw_counts), "
                        f"got {type(counts).__name__}")
    flagged = []
    for function, pair in counts.items():
        if not isinstance(function, str):
            raise TypeError(f"counts keys must be function names, got {function!r}")
        if (not isinstance(pair, tuple) or len(pair) != 2
                or not all(isinstance(n, int) and not isinstance(n, bool) for n in pair)):
            raise TypeError(f"counts[{function!r}] must be a pair (ran, drawn) of integers, got {pair!r}")
        ran, drawn = pair
        if not 0 <= ran <= drawn:
            raise ValueError(f"counts[{function!r}] must satisfy 0 <= ran <= drawn, got {pair!r}")
        if 2 * ran < drawn:
            flagged.append(function)
    return flagged
