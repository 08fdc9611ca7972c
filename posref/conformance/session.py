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
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

__all__ = ["UsageError", "Selection", "check_output_paths", "count", "read_xfails", "run_check", "seconds",
           "select_cases", "write_atomically"]


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
    from posref._spec import SPEC_FUNCTIONS, spec_functions

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
                          list(functions) if functions else None, list(case_ids) if case_ids else None)
    if source == "registry":
        selection._specs = [objects[e.id] for e in pool]
    else:
        selection._cases = [objects[e.id] for e in pool]
    return selection


def read_xfails(path: str, known_ids: Iterable[str] | None = None) -> list[str]:
    """The case ids of an expected-failure file (one per line, ``#`` comments); every id must be known.

    Raises
    ------
    UsageError
        If the file cannot be read, or names ids that are no case.
    """
    try:
        lines = pathlib.Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"--xfails {path}: {reason}") from None
    ids = [line.split("#", 1)[0].strip() for line in lines]
    ids = [i for i in ids if i]
    if known_ids is not None:
        known = set(known_ids)
        unknown = [i for i in ids if i not in known]
        if unknown:
            details = []
            for case_id in unknown[:10]:
                close = difflib.get_close_matches(case_id, known, n=1, cutoff=0.8)
                details.append(f"{case_id} (did you mean {close[0]}?)" if close else case_id)
            more = f", and {len(unknown) - 10} more" if len(unknown) > 10 else ""
            raise UsageError(f"--xfails {path} names {len(unknown)} id(s) that are no case: "
                             f"{', '.join(details)}{more}")
    return ids


def fuzz_functions(selection: Selection) -> list[str]:
    """The functions with hypothesis strategies among those selected."""
    from posref._spec import SPEC_FUNCTIONS
    from posref.conformance.fuzz import FUZZ_FUNCTIONS

    return [f for f in FUZZ_FUNCTIONS
            if (not selection.functions or f in selection.functions)
            and (not selection.families or SPEC_FUNCTIONS[f].family in selection.families)]


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


def _print_failures(results, strict: bool) -> None:
    from posref.conformance.runner import FAILING

    for r in results:
        if r.status in FAILING + ("xpass",) or (strict and r.status == "lenient"):
            _say(f"{r.status.upper():8} {r.case_id} [{r.dtype}]: {r.message}\n         reproduce: {r.repro}")


def _write_reports(outputs: dict[str, pathlib.Path], adapter, results, stopped: str | None) -> bool:
    from posref.conformance.report import to_json, to_markdown

    written = True
    for option, path in outputs.items():
        render = to_json if option == "--report" else to_markdown
        try:
            write_atomically(path, render(adapter, results, stopped=stopped))
        except OSError as exc:
            _say(f"posref check: {option} {path}: the report could not be written: {exc.strerror or exc}",
                 stream=sys.stderr)
            written = False
    return written


def run_check(options: CheckOptions, selection: Selection, xfails: Sequence[str],
              outputs: dict[str, pathlib.Path], progress_bar: Callable[[str, bool], Callable]) -> int:
    """Load the adapter, run the selected cases and the differential ones, print, write the reports.

    Returns the exit status (:data:`~posref.conformance.report.EXIT_CODES`).
    ``progress_bar(label, enabled)`` makes a progress callback.
    """
    from posref.conformance.adapter import Adapter, AdapterError, load_adapter
    from posref.conformance.report import exit_code, summary
    from posref.conformance.runner import iter_results

    results: list = []
    stopped: str | None = None
    status: int | None = None
    adapter = None
    host = None
    total = len(selection.entries)
    placeholder = Adapter(target=None, name=options.adapter, version="unknown", dtype=options.dtype,
                          device=options.device, source=options.adapter)
    try:
        with _sigterm_interrupts():
            try:
                if options.in_process:
                    cases = selection.build(options.dtype, progress_bar("building", options.progress))
                    try:
                        adapter = load_adapter(options.adapter, dtype=options.dtype, device=options.device)
                    except AdapterError:
                        raise
                    except Exception as exc:  # the adapter's own code failed while loading
                        raise AdapterError(f"loading adapter {options.adapter!r} raised {type(exc).__name__}: "
                                           f"{exc}") from exc
                else:
                    from posref.conformance.worker import AdapterHost

                    host = AdapterHost()
                    host.prepare(options.adapter, options.dtype, options.device)  # it loads while cases build
                    cases = selection.build(options.dtype, progress_bar("building", options.progress))
                    adapter = host.configure(options.adapter, options.dtype, options.device)
            except AdapterError as exc:
                _say(f"posref check: {exc}", stream=sys.stderr)
                _write_reports(outputs, placeholder, [], f"the adapter could not be loaded: {exc}")
                return 2
            for result in iter_results(adapter, cases, timeout=options.timeout, xfails=xfails,
                                       progress=progress_bar("checking", options.progress)):
                results.append(result)
            # differential cases after the golden ones, unless single cases were asked for
            functions = fuzz_functions(selection) if options.max_examples > 0 and not selection.case_ids else []
            if functions:
                from posref.conformance.fuzz import fuzz

                _say(f"differential cases: hypothesis seed {options.seed}, up to {options.max_examples} examples "
                     "per function")
                fuzz_progress = progress_bar("fuzzing ", options.progress)
                for done, function in enumerate(functions, 1):
                    results += fuzz(adapter, functions=[function], max_examples=options.max_examples,
                                    seed=options.seed, timeout=options.timeout)
                    fuzz_progress(done, len(functions), function)
    except KeyboardInterrupt as exc:
        how = "stopped by SIGTERM" if isinstance(exc, _Terminated) else "interrupted (Ctrl-C)"
        stopped = f"{how} after {min(len(results), total)} of {total} golden case(s)"
        status = 130
    except Exception as exc:  # posref's own failure: say so in the report, exit 3
        traceback.print_exc()
        stopped = (f"posref failed after {min(len(results), total)} of {total} golden case(s) with an internal "
                   f"error ({type(exc).__name__}: {exc}); please report it")
        status = 3
    finally:
        if host is not None:
            host.close()
        elif adapter is not None:
            adapter.close()
    shown = adapter if adapter is not None else placeholder
    written = _write_reports(outputs, shown, results, stopped)  # first: whatever happens to stdout
    _print_failures(results, options.strict)
    _say(f"{shown.name} {shown.version} ({shown.dtype}, {shown.device}): "
         + ", ".join(f"{n} {s}" for s, n in summary(results).items() if n))
    if stopped is not None:
        _say(f"posref check: {stopped}; the report holds the cases finished before", stream=sys.stderr)
    if status is None:
        status = exit_code(results, strict=options.strict) if written else 3
    return status

