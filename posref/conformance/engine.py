"""One engine behind both doors: :func:`check` runs a conformance check and returns what happened.

``posref check`` and the pytest plugin are two ways to call :func:`check`;
they share its options, its statuses (:data:`~posref.conformance.runner.STATUSES`)
and its exit semantics (:meth:`CheckRun.exit_code`).  From Python::

    >>> from posref.conformance import check
    >>> run = check("reference", functions=["rope_frequencies"], max_examples=0)  # doctest: +SKIP
    >>> run.exit_code(), run.summary()["pass"]                                   # doctest: +SKIP
    (0, 7)

The adapter runs in a worker process unless ``in_process=True`` or it is an
:class:`~posref.conformance.adapter.Adapter` object built in code; posref
builds the cases, computes the expected values and budgets and compares in
its own process.  A built-in adapter's known divergences
(:mod:`posref.adapters.known`) apply by default: those cases report
``known`` with their reason and do not fail the run unless ``strict``;
``resolve_known`` turns the ``known`` option into the list applied.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from posref.conformance.adapter import BUILTIN, DTYPES, Adapter, AdapterError, load_adapter
from posref.conformance.known import known_divergences
from posref.conformance.runner import FAILING, STATUSES, STRICT_FAILING, CaseResult, check_timeout, iter_results

__all__ = ["CheckRun", "builtin_name", "check", "exit_code", "resolve_known"]


def builtin_name(adapter: str | Adapter) -> str | None:
    """The built-in name of an adapter (``"transformers"``), given its name, module or object; else None."""
    source = adapter.source if isinstance(adapter, Adapter) else adapter
    if not isinstance(source, str):
        return None
    module = source.partition(":")[0]
    if source in BUILTIN:
        return source
    for name, path in BUILTIN.items():
        if module == path:
            return name
    return None


def exit_code(results: Sequence[CaseResult], *, strict: bool = False) -> int:
    """1 when a case has a failing status (:data:`~posref.conformance.runner.FAILING`, or under ``strict``
    :data:`~posref.conformance.runner.STRICT_FAILING`), else 0."""
    failing = STRICT_FAILING if strict else FAILING
    return int(any(r.status in failing for r in results))


@dataclass
class CheckRun:
    """What a conformance check did: the adapter, every case's result, and how the run ended."""

    adapter: Adapter
    results: list[CaseResult]
    known: dict[str, str] = field(default_factory=dict)  # the known divergences applied: id -> reason
    stopped: str | None = None  # why the run ended early (None: it ran to the end)
    interrupted: bool = False  # Ctrl-C or SIGTERM
    internal_error: str | None = None  # posref's own failure, with its traceback
    draws: dict[str, tuple[int, int]] = field(default_factory=dict)  # function -> (ran, drawn), differential

    def summary(self) -> dict[str, int]:
        """Count of results per status (every status, zeros included)."""
        counts = {status: 0 for status in STATUSES}
        for r in self.results:
            counts[r.status] = counts.get(r.status, 0) + 1
        return counts

    def of_status(self, *statuses: str) -> list[CaseResult]:
        """The results with one of ``statuses``."""
        return [r for r in self.results if r.status in statuses]

    def poorly_fuzzed(self) -> list[str]:
        """Functions of which fewer than half the differential draws could run."""
        return sorted(f for f, (ran, drawn) in self.draws.items() if drawn and 2 * ran < drawn)

    def exit_code(self, *, strict: bool = False) -> int:
        """0 all pass, 1 a failing case, 3 posref failed, 130 interrupted (see ``EXIT_CODES``)."""
        if self.interrupted:
            return 130
        if self.internal_error is not None:
            return 3
        return exit_code(self.results, strict=strict)


def resolve_known(adapter: str | Adapter, known, /, *, dtype: str | None = None) -> dict[str, str]:
    """The known divergences a check of ``adapter`` applies, as case id -> reason.

    Parameters
    ----------
    adapter : str or Adapter
        The adapter checked: a name, module or path as :func:`check` takes it, or an
        :class:`~posref.conformance.adapter.Adapter`.
    known : bool, mapping or iterable of str
        The ``known`` option of :func:`check`: True for the built-in list of a built-in
        adapter (:mod:`posref.conformance.known`; empty for any other adapter); False or
        None for none; a mapping ``case id -> reason``; or an iterable of case ids (no reason).
    dtype : str, optional
        The dtype whose built-in list applies; default the Adapter's own (required with
        ``known=True`` and an adapter given by name).

    Raises
    ------
    TypeError
        If ``known`` is none of these, or the dtype of a built-in list is missing.
    """
    if known is True:
        name = builtin_name(adapter)
        if name is None:
            return {}
        if dtype is None:
            if not isinstance(adapter, Adapter):
                raise TypeError("dtype is required to find the built-in list of an adapter given by name")
            dtype = adapter.dtype
        return known_divergences(name, dtype)
    if known is False or known is None:
        return {}
    if isinstance(known, Mapping):
        return {str(k): str(v) for k, v in known.items()}
    if isinstance(known, (str, bytes)) or not isinstance(known, Iterable):
        raise TypeError("known must be True (the built-in list), False, a mapping of case id to reason, or an "
                        f"iterable of case ids, got {known!r}")
    return {str(k): "" for k in known}


def _draw_counts(results: list[CaseResult]) -> dict[str, tuple[int, int]]:
    try:
        from posref.conformance.fuzz import draw_counts
    except ImportError:  # pragma: no cover - an older fuzz module
        counts: dict[str, list[int]] = {}
        for r in results:
            ran_drawn = counts.setdefault(r.function, [0, 0])
            ran_drawn[1] += 1
            ran_drawn[0] += r.status not in ("not_implemented", "skipped")
        return {f: (ran, drawn) for f, (ran, drawn) in counts.items()}
    return {f: tuple(v) for f, v in draw_counts(results).items()}


def check(
    adapter: str | Adapter,
    *,
    dtype: str = "float32",
    device: str = "cpu",
    families: Sequence[str] | None = None,
    functions: Sequence[str] | None = None,
    cases: Sequence[Any] | None = None,
    corpus: str | None = None,
    known: bool | Mapping[str, str] | Iterable[str] = True,
    golden: bool = True,
    max_examples: int = 25,
    seed: int = 0,
    timeout: float = 60.0,
    in_process: bool = False,
    on_result: Callable[[CaseResult], None] | None = None,
    progress: Callable[[str], Callable | None] | None = None,
) -> CheckRun:
    """Check an implementation against the spec: golden cases, then hypothesis differential cases.

    Parameters
    ----------
    adapter : str or Adapter
        A built-in adapter name (``posref adapters``), a module, ``module:attribute``, a path to a
        ``.py`` file, or a ``posref.adapters`` entry point (run in a worker process); or an
        :class:`~posref.conformance.adapter.Adapter` object (used as it is: an in-process one runs
        in this process, one from :func:`~posref.conformance.worker.start_adapter` in its worker).
    dtype : {"float64", "float32", "float16", "bfloat16"}, default "float32"
        The dtype the adapter computes in (ignored for an Adapter object, which has its own).
    device : str, default "cpu"
        The device it computes on (ignored for an Adapter object).
    families, functions : sequence of str, optional
        Only these families / spec functions; each must select a case.
    cases : sequence of str or GoldenCase, optional
        Only these case ids, or exactly these case objects.
    corpus : str, optional
        Read the cases from this golden corpus directory instead of posref's registry.
    known : bool, mapping or iterable of str, default True
        Known divergences: True applies the built-in list of a built-in adapter
        (:mod:`posref.adapters.known`); False none; a mapping ``case id -> reason`` or an
        iterable of ids applies exactly those.  Listed cases report ``known`` (or ``fixed``
        when they pass).
    golden : bool, default True
        Run the golden cases (False: only the differential ones).
    max_examples : int, default 25
        Hypothesis differential cases per function (0: none).  None run when ``cases`` is given.
    seed : int, default 0
        Hypothesis seed, 0 or more.
    timeout : float, default 60.0
        Seconds per case, positive and finite; a worker that runs over is killed (``timeout``).
    in_process : bool, default False
        For debugging: load a named adapter in this process (no protection from crashes).
    on_result : callable, optional
        Called with each :class:`~posref.conformance.runner.CaseResult` as soon as it is known.
    progress : callable, optional
        ``progress(label)`` returns a ``callback(done, total, item)`` or None, for the stages
        ``"building"``, ``"checking"`` and ``"fuzzing "``.

    Returns
    -------
    CheckRun
        Every result, the known divergences applied, the differential draw counts, and whether
        the run ended early (``stopped``; Ctrl-C and SIGTERM end it with ``interrupted``, a
        failure of posref with ``internal_error``): it always returns what it finished.

    Raises
    ------
    TypeError, ValueError
        If an option is malformed (``UsageError``, a ValueError, when a selection matches
        nothing or an id is unknown), before any adapter code runs.
    AdapterError
        If the adapter cannot be found or loaded.
    """
    from posref.conformance.session import UsageError, select_cases

    if not isinstance(adapter, (str, Adapter)):
        raise TypeError(f"adapter must be an adapter name or path (str) or an Adapter, got {type(adapter).__name__}")
    if isinstance(adapter, str) and dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got dtype={dtype!r}")
    timeout = check_timeout(timeout)
    if timeout is None:
        raise ValueError("timeout must be a positive finite number of seconds, got timeout=None")
    for name, value in (("max_examples", max_examples), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a whole number, 0 or more, got {name}={value!r}")
    for name, value in (("golden", golden), ("in_process", in_process)):
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be a bool, got {name}={value!r}")
    case_objects = None
    case_ids = None
    if cases is not None:
        if isinstance(cases, (str, bytes)):
            raise TypeError("cases must be a sequence of case ids or GoldenCase objects, not a single string")
        cases = list(cases)
        if all(isinstance(c, str) for c in cases):
            case_ids = cases
        else:
            from posref.golden.case import GoldenCase

            if not all(isinstance(c, GoldenCase) for c in cases):
                raise TypeError("cases must hold only case ids (str) or only GoldenCase objects")
            case_objects = cases
    selection = None
    if case_objects is None and golden:
        selection = select_cases(corpus=corpus, families=families, functions=functions, case_ids=case_ids)
    elif functions is not None or families is not None:
        select_cases(corpus=corpus, families=families, functions=functions)  # names checked all the same
    stage = progress or (lambda label: None)

    host = None
    owned = isinstance(adapter, str)
    target: Adapter
    if isinstance(adapter, Adapter):
        target = adapter
    elif in_process:
        try:
            target = load_adapter(adapter, dtype=dtype, device=device)
        except AdapterError:
            raise
        except Exception as exc:  # the adapter's own code failed while loading
            raise AdapterError(f"loading adapter {adapter!r} raised {type(exc).__name__}: {exc}") from exc
    else:
        from posref.conformance.worker import AdapterHost

        host = AdapterHost()
        try:
            host.prepare(adapter, dtype, device)  # it loads while the cases build
        except BaseException:
            host.close()
            raise
        target = None  # configured after the cases are built
    run = CheckRun(adapter=target if target is not None else Adapter(
        target=None, name=str(adapter), version="unknown", dtype=dtype, device=device, source=str(adapter)),
        results=[])
    golden_total = 0
    try:
        try:
            if case_objects is not None:
                built = case_objects
            elif selection is not None:
                built = selection.build(target.dtype if target is not None else dtype, stage("building"))
            else:
                built = []
            golden_total = len(built)
            if target is None:
                target = host.configure(adapter, dtype, device)
            run.adapter = target
            run.known = resolve_known(target, known)
        except AdapterError:
            if host is not None:
                host.close()
            raise
        for result in iter_results(target, built, timeout=timeout, known=run.known, progress=stage("checking")):
            run.results.append(result)
            if on_result is not None:
                on_result(result)
        fuzzing = max_examples > 0 and cases is None
        if fuzzing:
            from posref.conformance.session import fuzz_functions

            names = fuzz_functions(selection) if selection is not None else _fuzz_names(families, functions)
            names = [f for f in names if target.function(f) is not None]
            if names:
                from posref.conformance.fuzz import fuzz

                fuzz_progress = stage("fuzzing ")
                drawn: list[CaseResult] = []
                for done, function in enumerate(names, 1):
                    for result in fuzz(target, functions=[function], max_examples=max_examples, seed=seed,
                                       timeout=timeout, known=run.known):
                        drawn.append(result)
                        run.results.append(result)
                        if on_result is not None:
                            on_result(result)
                    if fuzz_progress is not None:
                        fuzz_progress(done, len(names), function)
                run.draws = _draw_counts(drawn)
    except KeyboardInterrupt as exc:
        how = "stopped by SIGTERM" if type(exc).__name__ == "_Terminated" else "interrupted (Ctrl-C)"
        run.stopped = f"{how} after {min(len(run.results), golden_total)} of {golden_total} golden case(s)"
        run.interrupted = True
    except (UsageError, AdapterError):
        raise
    except Exception as exc:  # posref's own failure: the run says so and keeps what it finished
        run.internal_error = traceback.format_exc()
        run.stopped = (f"posref failed after {min(len(run.results), golden_total)} of {golden_total} golden "
                       f"case(s) with an internal error ({type(exc).__name__}: {exc}); please report it")
    finally:
        if host is not None:
            host.close()
        elif owned and target is not None:
            target.close()
    return run


def _fuzz_names(families, functions) -> list[str]:
    from posref import SPEC_FUNCTIONS, spec_functions
    from posref.conformance.fuzz import FUZZ_FUNCTIONS

    spec_functions()
    return [f for f in FUZZ_FUNCTIONS
            if (not functions or f in functions) and (not families or SPEC_FUNCTIONS[f].family in families)]
