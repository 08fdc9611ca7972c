"""What ``posref check`` and the pytest plugin share: options, case selection, the run, the reports.

Every choice is checked before the run starts: numeric options (a
positive, finite ``--timeout``; a non-negative ``--max-examples`` and
``--seed``), report paths (their directory exists and can be written),
``--family``, ``--function`` and ``--case`` (each must select something;
the error lists near matches), and the ids of an ``--xfails`` file (each
must name a case).  A mistake there is a usage error (exit status 2)
before any adapter code runs.

The run itself always ends with its report: when it is interrupted (Ctrl-C,
SIGTERM) or posref fails, the report holds the cases finished before and
says why the rest is missing.  Exit statuses: :data:`~posref.conformance.report.EXIT_CODES`.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import math
import os
import pathlib
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

__all__ = ["CheckPlan", "UsageError", "Selection", "check_output_paths", "count", "plan_check", "print_run",
           "read_xfails", "run_check", "seconds", "select_cases", "write_atomically"]


class UsageError(ValueError):
    """An option or selection that cannot run: exit status 2, before any adapter code runs."""


# -- numeric options ---------------------------------------------------------------------------------


def seconds(text: str) -> float:
    """An argparse type: a positive, finite number of seconds."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"must be a positive, finite number of seconds, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive, finite number of seconds, got {text!r}")
    return value


def count(text: str) -> int:
    """An argparse type: a whole number, 0 or more."""
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"must be a whole number, 0 or more, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number, 0 or more, got {text!r}")
    return value


# -- report paths ------------------------------------------------------------------------------------


def check_output_paths(paths: dict[str, str | None]) -> dict[str, pathlib.Path]:
    """Check that each report path (option name -> path) can be written; before the run, not after.

    Raises
    ------
    UsageError
        If a path is a directory, its directory does not exist, a file
        cannot be created there, or two options name the same file.
    """
    checked: dict[str, pathlib.Path] = {}
    for option, text in paths.items():
        if not text:
            continue
        path = pathlib.Path(text)
        if path.is_dir():
            raise UsageError(f"{option} {text} is a directory; name a file")
        directory = path.parent
        if not directory.is_dir():
            what = "is not a directory" if directory.exists() else "does not exist"
            raise UsageError(f"{option} {text}: directory {directory} {what}")
        try:
            handle, probe = tempfile.mkstemp(dir=directory, prefix=".posref-probe-")
            os.close(handle)
            os.unlink(probe)
        except OSError as exc:
            raise UsageError(f"{option} {text}: cannot write in {directory}: {exc.strerror or exc}") from None
        for other, seen in checked.items():
            if seen.resolve() == path.resolve():
                raise UsageError(f"{option} and {other} name the same file {text}")
        checked[option] = path
    return checked


def write_atomically(path: pathlib.Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same directory (no half-written report)."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


# -- selection ---------------------------------------------------------------------------------------


def _near(word: str, candidates: Iterable[str], what: str, hint: str) -> str:
    candidates = sorted(set(candidates))
    close = difflib.get_close_matches(word, candidates, n=6, cutoff=0.6)
    close += [c for c in candidates if word and word in c and c not in close]
    if close:
        shown = ", ".join(close[:8]) + (", ..." if len(close) > 8 else "")
        return f"{what} {word!r} matches nothing; near matches: {shown}"
    return f"{what} {word!r} matches nothing; {hint}"


@dataclass
class _Entry:
    id: str
    function: str
    family: str


@dataclass
class Selection:
    """The cases a run will use (not built yet for the registry), and every id the source knows."""

    source: str
    entries: list[_Entry]
    known_ids: frozenset[str]
    families: list[str] | None = None
    functions: list[str] | None = None
    case_ids: list[str] | None = None
    corpus: str | None = None
    _specs: list = field(default_factory=list)
    _cases: list = field(default_factory=list)

    def build(self, dtype: str, progress: Callable | None = None) -> list:
        """The :class:`~posref.golden.case.GoldenCase` objects, built for ``dtype`` from the registry if needed."""
        if self.source == "registry":
            from posref.golden.registry import build_cases

            return build_cases(self._specs, dtypes=[dtype] if dtype != "float64" else [], progress=progress)
        return list(self._cases)


def select_cases(*, corpus: str | None = None, families: Sequence[str] | None = None,
                 functions: Sequence[str] | None = None, case_ids: Sequence[str] | None = None) -> Selection:
    """Select cases by family, function and id, from the registry or a corpus directory.

    Raises
    ------
    UsageError
        If a family, function or case id selects nothing (with near
        matches), or the corpus cannot be read.
    """
    from posref import SPEC_FUNCTIONS, spec_functions

    catalogue = spec_functions()
    if corpus:
        from posref.golden import read_corpus

        try:
            cases = list(read_corpus(corpus))
        except (ValueError, TypeError, OSError) as exc:
            message = f"{exc.filename}: {exc.strerror}" if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise UsageError(f"--corpus {corpus}: {message}") from None
        entries = [_Entry(c.id, c.function, c.family) for c in cases]
        objects = {c.id: c for c in cases}
        source = "corpus"
    else:
        from posref.golden.cases import CASES

        entries = [_Entry(s.id, s.function, SPEC_FUNCTIONS[s.function].family) for s in CASES]
        objects = {s.id: s for s in CASES}
        source = "registry"
    where = f"the corpus {corpus}" if corpus else "posref's cases"
    known_ids = frozenset(e.id for e in entries)
    pool = entries
    if families:
        present = {e.family for e in entries}
        for family in families:
            if family not in present:
                all_families = {f.family for f in catalogue}
                hint = ("it is a family of posref, but " + where + " has no case of it" if family in all_families
                        else "'posref list' names the families")
                raise UsageError(_near(family, present, "--family", hint))
        pool = [e for e in pool if e.family in families]
    if functions:
        present = {e.function for e in pool}
        for function in functions:
            if function not in present:
                if function in SPEC_FUNCTIONS:
                    hint = f"{where} have no case of it" + (" in the selected families" if families else "")
                else:
                    hint = "'posref list' names the functions"
                raise UsageError(_near(function, present, "--function", hint))
        pool = [e for e in pool if e.function in functions]
    if case_ids:
        present = {e.id for e in pool}
        for case_id in case_ids:
            if case_id not in present:
                hint = ("that case exists but --family/--function leave it out" if case_id in known_ids
                        else f"no case of {where} has that id")
                raise UsageError(_near(case_id, present, "--case", hint))
        pool = [e for e in pool if e.id in case_ids]
    if not pool:
        raise UsageError(f"the selection matches no case of {where}")
    selection = Selection(source, pool, known_ids, list(families) if families else None,
                          list(functions) if functions else None, list(case_ids) if case_ids else None,
                          corpus if corpus else None)
    if source == "registry":
        selection._specs = [objects[e.id] for e in pool]
    else:
        selection._cases = [objects[e.id] for e in pool]
    return selection


def read_xfails(path: str, known_ids: Iterable[str] | None = None, option: str = "--known") -> dict[str, str]:
    """The case ids of a known-divergence file, with their reasons (one id per line, ``#`` comments).

    Every id must be known (when ``known_ids`` is given): a case id, or
    ``fuzz.<function>`` for the differential cases of a function that has a
    strategy (:func:`posref.conformance.fuzz.fuzz`).

    Raises
    ------
    UsageError
        If the file cannot be read, or names ids that are no case.
    """
    from posref.conformance.known import parse_known

    try:
        text = pathlib.Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"{option} {path}: {reason}") from None
    reasons = parse_known(text)
    if known_ids is not None:
        from posref.conformance.fuzz import FUZZ_FUNCTIONS

        known = set(known_ids) | {f"fuzz.{function}" for function in FUZZ_FUNCTIONS}
        unknown = [i for i in reasons if i not in known]
        if unknown:
            details = []
            for case_id in unknown[:10]:
                close = difflib.get_close_matches(case_id, known, n=1, cutoff=0.8)
                details.append(f"{case_id} (did you mean {close[0]}?)" if close else case_id)
            more = f", and {len(unknown) - 10} more" if len(unknown) > 10 else ""
            raise UsageError(f"{option} {path} names {len(unknown)} id(s) that are no case: "
                             f"{', '.join(details)}{more}")
    return reasons


def fuzz_functions(selection: Selection) -> list[str]:
    """The functions with hypothesis strategies among those selected."""
    from posref import SPEC_FUNCTIONS
    from posref.conformance.fuzz import FUZZ_FUNCTIONS

    return [f for f in FUZZ_FUNCTIONS
            if (not selection.functions or f in selection.functions)
            and (not selection.families or SPEC_FUNCTIONS[f].family in selection.families)]


@dataclass
class CheckPlan:
    """What a check will run, its options checked: the cases selected and the known divergences applied."""

    selection: Selection
    known: dict[str, str]  # case id -> reason: the built-in list, then the files' ids (a file's reason wins)


def plan_check(adapter: str, *, dtype: str, corpus: str | None = None, families: Sequence[str] | None = None,
               functions: Sequence[str] | None = None, case_ids: Sequence[str] | None = None,
               known_files: Iterable[str] = (), builtin_known: bool = True,
               known_option: str = "--known") -> CheckPlan:
    """Select the cases and gather the known divergences of a check, as ``posref check`` and the plugin do.

    Parameters
    ----------
    adapter : str
        The adapter to check, as :func:`posref.conformance.check` takes it by name.
    dtype : str
        The dtype it computes in: the built-in list of that dtype applies.
    corpus, families, functions, case_ids
        The selection (:func:`select_cases`).
    known_files : iterable of str
        Files of known divergences (:func:`read_xfails`); every id must name a case of the source.
    builtin_known : bool, default True
        Apply a built-in adapter's own list (:func:`posref.conformance.engine.resolve_known`).
    known_option : str, default "--known"
        The option named in the error about a known file.

    Raises
    ------
    UsageError
        If the selection matches nothing or a known file cannot be read or names an unknown id;
        no adapter code has run.
    """
    from posref.conformance.engine import resolve_known

    selection = select_cases(corpus=corpus, families=families, functions=functions, case_ids=case_ids)
    known = resolve_known(adapter, builtin_known, dtype=dtype)
    for path in known_files:
        known.update(read_xfails(path, selection.known_ids, option=known_option))
    return CheckPlan(selection, known)


# -- the run -----------------------------------------------------------------------------------------


class _Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an interruption so that the report is written."""


@contextlib.contextmanager
def _sigterm_interrupts():
    """While running, SIGTERM (a cancelled CI job) interrupts like Ctrl-C, so that the report is written."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum, frame):
        raise _Terminated()

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclass
class CheckOptions:
    """The options of one ``posref check`` run (the command line's, checked)."""

    adapter: str
    dtype: str = "float32"
    device: str = "cpu"
    timeout: float = 60.0
    max_examples: int = 25
    seed: int = 0
    strict: bool = False
    in_process: bool = False
    progress: bool = True
    builtin_known: bool = True  # apply a built-in adapter's known divergences


def _say(text: str, *, stream=None) -> None:
    """Print, unless the output is gone (a closed pipe, ``| head``): the report and the exit status still count."""
    stream = stream or sys.stdout
    try:
        print(text, file=stream, flush=True)
    except BrokenPipeError:  # nobody reads any more: quiet, also for the flush at exit
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
        except (OSError, ValueError):
            pass
    except (OSError, ValueError):
        pass


def print_run(run, strict: bool, seed: int | None = None, max_examples: int | None = None) -> None:
    """The console report of a run: failures with their reproduction, known divergences, leniency, a summary."""
    from posref.conformance.runner import FAILING, STRICT_FAILING

    failing = STRICT_FAILING if strict else FAILING
    for r in run.results:
        if r.status in failing:
            why = f" (known: {r.reason})" if r.status == "known" and r.reason else ""
            _say(f"{r.status.upper():11} {r.case_id} [{r.dtype}]: {r.message}{why}")
            if r.diagnosis:
                _say(f"{'':11} diagnosis: {r.diagnosis.get('text', '')}")
            _say(f"{'':11} reproduce: {r.repro}")
    known = [r for r in run.results if r.status in ("known", "fixed")] if not strict else []
    if known:
        _say(f"known divergences of {run.adapter.name} ({len(known)}, not failures; --strict makes them fail):")
        for r in known:
            reason = r.reason or "listed without a reason"
            state = "fixed: passes now" if r.status == "fixed" else r.observed
            _say(f"  {r.case_id} [{state}]: {reason}")
    lenient = [r for r in run.results if r.status == "lenient"] if not strict else []
    if lenient:
        _say(f"lenient ({len(lenient)} invalid input(s) accepted; --strict makes them fail): "
             + ", ".join(r.case_id for r in lenient))
    implemented = sorted({r.function for r in run.results if r.status != "not_implemented"})
    missing = sorted({r.function for r in run.results} - set(implemented))
    if run.draws:
        shown = ", ".join(f"{f} {ran}/{drawn}" for f, (ran, drawn) in sorted(run.draws.items()))
        how = (f"hypothesis seed {seed}, up to {max_examples} examples per function; "
               if seed is not None and max_examples is not None else "")
        _say(f"differential cases ({how}draws that ran / drawn): {shown}")
        for function in run.poorly_fuzzed():
            ran, drawn = run.draws[function]
            _say(f"  note: only {ran} of {drawn} draws of {function} could run here (declare ADAPTER_OPTIONS "
                 "to draw only what the adapter supports)")
    if implemented:
        _say(f"functions checked ({len(implemented)}): {', '.join(implemented)}"
             + (f"; {len(missing)} not implemented" if missing else ""))
    adapter = run.adapter
    counts = run.summary()
    _say(f"{adapter.name} {adapter.version} ({adapter.dtype}, {adapter.device}): "
         + (", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no case ran"))


def _write_reports(outputs: dict[str, pathlib.Path], run) -> bool:
    from posref.conformance.report import to_json, to_markdown

    written = True
    for option, path in outputs.items():
        render = to_json if option == "--report" else to_markdown
        try:
            write_atomically(path, render(run.adapter, run.results, stopped=run.stopped, run=run))
        except OSError as exc:
            _say(f"posref check: {option} {path}: the report could not be written: {exc.strerror or exc}",
                 stream=sys.stderr)
            written = False
    return written


def run_check(options: CheckOptions, selection: Selection, known: dict[str, str],
              outputs: dict[str, pathlib.Path], progress_bar: Callable[[str, bool], Callable]) -> int:
    """Run :func:`posref.conformance.check` for the command line: print, write the reports, return the exit status.

    ``known`` holds the known divergences to apply (a :class:`CheckPlan`'s, or only the
    user's ``--known`` lists), added to a built-in adapter's own list unless
    ``options.builtin_known`` is false (a plan's already holds it: adding it again changes nothing).
    Exit statuses: :data:`~posref.conformance.report.EXIT_CODES`.
    """
    from posref.conformance.adapter import Adapter, AdapterError
    from posref.conformance.engine import CheckRun, check, resolve_known

    listed = resolve_known(options.adapter, options.builtin_known, dtype=options.dtype)
    listed.update(known)
    placeholder = Adapter(target=None, name=options.adapter, version="unknown", dtype=options.dtype,
                          device=options.device, source=options.adapter)
    with _sigterm_interrupts():
        try:
            run = check(options.adapter, dtype=options.dtype, device=options.device,
                        families=selection.families, functions=selection.functions, cases=selection.case_ids,
                        corpus=selection.corpus, known=listed, max_examples=options.max_examples,
                        seed=options.seed, timeout=options.timeout, in_process=options.in_process,
                        progress=lambda label: progress_bar(label, options.progress))
        except AdapterError as exc:
            _say(f"posref check: {exc}", stream=sys.stderr)
            _write_reports(outputs, CheckRun(placeholder, [], stopped=f"the adapter could not be loaded: {exc}"))
            return 2
        except KeyboardInterrupt:  # before the adapter was up
            run = CheckRun(placeholder, [], stopped="interrupted (Ctrl-C) before the first case", interrupted=True)
    if run.internal_error:
        _say(run.internal_error.rstrip(), stream=sys.stderr)
    written = _write_reports(outputs, run)  # first: whatever happens to stdout
    print_run(run, options.strict, options.seed, options.max_examples)
    if run.stopped is not None:
        _say(f"posref check: {run.stopped}; the report holds the cases finished before", stream=sys.stderr)
    status = run.exit_code(strict=options.strict)
    return status if written or status in (130,) else 3
