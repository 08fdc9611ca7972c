"""Reports of a conformance run: JSON for machines, Markdown for people."""

from __future__ import annotations

import json
import platform
from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np

from posref._version import SPEC_VERSION, __version__
from posref.conformance.adapter import Adapter
from posref.conformance.runner import FAILING, STATUSES, CaseResult

__all__ = ["EXIT_CODES", "FAILING", "summary", "to_json", "to_markdown", "exit_code"]

#: What each exit status of ``posref check`` means.
EXIT_CODES = {
    0: "every case passed (or was not implemented, skipped, an expected failure, or lenient without --strict)",
    1: "some case failed, errored, crashed or timed out (or, with --strict, accepted an invalid input)",
    2: "usage error: a bad option, a selection that matches nothing, an adapter that cannot be loaded",
    3: "internal error: posref itself failed; the report says so and holds the cases finished before",
    130: "interrupted (Ctrl-C or SIGTERM); the report says so and holds the cases finished before",
}


def summary(results: Sequence[CaseResult]) -> dict[str, int]:
    """Count of results per status (every status present, zeros included)."""
    counts = Counter(r.status for r in results)
    return {status: counts.get(status, 0) for status in STATUSES}


def exit_code(results: Sequence[CaseResult], *, strict: bool = False) -> int:
    """1 when any case failed, errored, crashed or timed out (or, if ``strict``, was lenient), else 0."""
    failing = FAILING + ("lenient",) if strict else FAILING
    return int(any(r.status in failing for r in results))


def to_json(adapter: Adapter, results: Sequence[CaseResult], *, stopped: str | None = None) -> str:
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
        "results": [r.as_dict() for r in results],
    }
    return json.dumps(document, indent=2, sort_keys=True, allow_nan=True) + "\n"


def _format_error(value: float) -> str:
    return "-" if value != value else f"{value:.2e}"  # NaN -> "-"


def to_markdown(adapter: Adapter, results: Sequence[CaseResult], *, stopped: str | None = None) -> str:
    """A per-function table and the list of failures, with reproduction commands."""
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
        "| function | cases | pass | fail | other | max abs error | worst budget share |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    by_function: dict[str, list[CaseResult]] = defaultdict(list)
    for r in results:
        by_function[r.function].append(r)
    for function in sorted(by_function):
        group = by_function[function]
        passed = sum(r.status in ("pass", "xpass") for r in group)
        failed = sum(r.status in FAILING for r in group)
        compared = [r for r in group if r.outputs]
        max_abs = max((r.max_abs_error for r in compared), default=float("nan"))
        share = max((r.budget_share for r in compared), default=float("nan"))
        other = len(group) - passed - failed
        lines.append(f"| `{function}` | {len(group)} | {passed} | {failed} | {other} | "
                     f"{_format_error(max_abs)} | {'-' if share != share else f'{share:.3f}'} |")
    failures = [r for r in results if r.status in FAILING]
    if failures:
        lines += ["", "## Failures", ""]
        for r in failures:
            if "\n" in r.repro:
                lines += [f"- `{r.case_id}` ({r.status}): {r.message}", "", "  ```python"]
                lines += [f"  {line}" for line in r.repro.splitlines()] + ["  ```", ""]
            else:
                lines.append(f"- `{r.case_id}` ({r.status}): {r.message}  \n  reproduce: `{r.repro}`")
    lenient = [r for r in results if r.status == "lenient"]
    if lenient:
        lines += ["", "## Invalid inputs accepted", ""]
        lines += [f"- `{r.case_id}`: {r.message}" for r in lenient]
    return "\n".join(lines) + "\n"
