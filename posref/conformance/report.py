"""Reports of a conformance run: JSON for machines, Markdown for people."""

from __future__ import annotations

import json
import platform
from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np

from posref import SPEC_VERSION, __version__
from posref.conformance.adapter import Adapter
from posref.conformance.runner import FAILING, STATUSES, STRICT_FAILING, CaseResult

__all__ = ["EXIT_CODES", "FAILING", "summary", "to_json", "to_markdown", "exit_code"]

#: What each exit status of ``posref check`` (and of :meth:`posref.conformance.CheckRun.exit_code`) means.
EXIT_CODES = {
    0: "no case failed (not implemented, skipped, and without --strict known, fixed and lenient cases allowed)",
    1: "some case has status fail, crash, timeout, wrong_error or error (with --strict also lenient, known, fixed)",
    2: "usage error: a bad option, a selection that matches nothing, an adapter that cannot be loaded",
    3: "internal error: posref itself failed; the report says so and holds the cases finished before",
    130: "interrupted (Ctrl-C or SIGTERM); the report says so and holds the cases finished before",
}


def summary(results: Sequence[CaseResult]) -> dict[str, int]:
    """Count of results per status (every status present, zeros included)."""
    counts = Counter(r.status for r in results)
    return {status: counts.get(status, 0) for status in STATUSES}


def exit_code(results: Sequence[CaseResult], *, strict: bool = False) -> int:
    """1 when any case has a failing status (under ``strict`` also lenient, known or fixed), else 0."""
    failing = STRICT_FAILING if strict else FAILING
    return int(any(r.status in failing for r in results))


def to_json(adapter: Adapter, results: Sequence[CaseResult], *, stopped: str | None = None, run=None) -> str:
    """The full report as deterministic JSON text.

    ``complete`` is false and ``stopped`` says why when the run ended early
    (interrupted, or an internal error of posref); ``results`` then holds
    the cases finished before.
    """
    document = {
        "complete": stopped is None,
        "stopped": stopped,
        "posref_version": __version__,
        "spec_version": SPEC_VERSION,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "adapter": {
            "name": adapter.name,
            "version": adapter.version,
            "dtype": adapter.dtype,
            "device": adapter.device,
            "source": adapter.source,
        },
        "summary": summary(results),
        "known_divergences": {r.case_id: r.reason for r in results if r.status in ("known", "fixed")},
        "differential_draws": ({f: {"ran": ran, "drawn": drawn} for f, (ran, drawn) in sorted(run.draws.items())}
                               if run is not None else {}),
        "poorly_fuzzed": run.poorly_fuzzed() if run is not None else [],
        "results": [r.as_dict() for r in results],
    }
    return json.dumps(document, indent=2, sort_keys=True, allow_nan=True) + "\n"


def _format_error(value: float) -> str:
    return "-" if value != value else f"{value:.2e}"  # NaN -> "-"


def to_markdown(adapter: Adapter, results: Sequence[CaseResult], *, stopped: str | None = None, run=None) -> str:
    """A per-function table (functions the adapter implements), the failures with their reproduction
    commands and diagnoses, the known divergences with their reasons, and the invalid inputs accepted."""
    lines = [
        f"# Conformance of {adapter.name} {adapter.version} ({adapter.dtype}, {adapter.device})",
        "",
    ]
    if stopped is not None:
        lines += [f"**Incomplete run**: {stopped}. The {len(results)} case(s) below are those finished before.", ""]
    lines += [
        f"posref {__version__}, spec {SPEC_VERSION}. "
        + ", ".join(f"{n} {s}" for s, n in summary(results).items() if n),
        "",
        "| function | cases | pass | fail | crash | lenient | known | not implemented | max abs error "
        "| worst budget share |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    by_function: dict[str, list[CaseResult]] = defaultdict(list)
    for r in results:
        by_function[r.function].append(r)
    missing = []
    for function in sorted(by_function):
        group = by_function[function]
        if all(r.status == "not_implemented" for r in group):
            missing.append(function)
            continue
        count = Counter(r.status for r in group)
        compared = [r for r in group if r.outputs]
        max_abs = max((r.max_abs_error for r in compared), default=float("nan"))
        share = max((r.budget_share for r in compared), default=float("nan"))
        lines.append(
            f"| `{function}` | {len(group)} | {count['pass'] + count['fixed']} | {count['fail'] + count['error']} | "
            f"{count['crash'] + count['timeout'] + count['wrong_error']} | {count['lenient']} | {count['known']} | "
            f"{count['not_implemented'] + count['skipped']} | {_format_error(max_abs)} | "
            f"{'-' if share != share else f'{share:.3f}'} |")
    if missing:
        lines += ["", f"Not implemented by this adapter ({len(missing)}): " + ", ".join(f"`{f}`" for f in missing)
                  + "."]
    if run is not None and run.draws:
        lines += ["", "Differential draws that ran: " + ", ".join(
            f"`{f}` {ran} of {drawn}" + (" (fewer than half)" if 2 * ran < drawn else "")
            for f, (ran, drawn) in sorted(run.draws.items())) + "."]
    failures = [r for r in results if r.status in FAILING]
    if failures:
        lines += ["", "## Failures", ""]
        for r in failures:
            diagnosis = f"  \n  diagnosis: {r.diagnosis['text']}" if r.diagnosis else ""
            if "\n" in r.repro:
                lines += [f"- `{r.case_id}` ({r.status}): {r.message}{diagnosis}", "", "  ```python"]
                lines += [f"  {line}" for line in r.repro.splitlines()] + ["  ```", ""]
            else:
                lines.append(f"- `{r.case_id}` ({r.status}): {r.message}{diagnosis}  \n  reproduce: `{r.repro}`")
    known = [r for r in results if r.status in ("known", "fixed")]
    if known:
        lines += ["", "## Known divergences", ""]
        for r in known:
            state = "fixed: passes now, take it off the list" if r.status == "fixed" else r.observed
            lines.append(f"- `{r.case_id}` ({state}): {r.reason or 'listed without a reason'}")
    lenient = [r for r in results if r.status == "lenient"]
    if lenient:
        lines += ["", "## Invalid inputs accepted", ""]
        lines += [f"- `{r.case_id}`: {r.message}" for r in lenient]
    return "\n".join(lines) + "\n"
