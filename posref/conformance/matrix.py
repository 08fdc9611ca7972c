"""The conformance matrix: library x function x dtype -> outcome, with the worst error.

``posref matrix`` runs every built-in adapter that can run here, in every
dtype it declares, over the golden cases, and writes one Markdown table.
Cells read ``pass``, ``FAIL``, ``diverges`` (failures listed, with the
reason, in ``conformance/xfails/<adapter>-<dtype>.txt``), ``partial``
(some cases not implemented) or ``n/i`` (not implemented), followed by the
largest share of the error budget used.  The text depends only on the
library versions and the cases, so a committed matrix can be checked for
currency.
"""

from __future__ import annotations

import importlib
import pathlib
from collections import defaultdict
from collections.abc import Sequence

from posref.conformance.adapter import BUILTIN, AdapterError, load_adapter
from posref.conformance.runner import CaseResult, run_cases

__all__ = ["adapter_runs", "render_matrix", "xfail_file"]


def xfail_file(directory: pathlib.Path | None, adapter: str, dtype: str) -> pathlib.Path | None:
    """The expected-divergence file of an adapter and dtype, if it exists."""
    if directory is None:
        return None
    path = directory / f"{adapter}-{dtype}.txt"
    return path if path.is_file() else None


def _read_reasons(path: pathlib.Path | None) -> dict[str, str]:
    """Case id -> the comment after it (or the comment block above it)."""
    if path is None:
        return {}
    reasons: dict[str, str] = {}
    pending, after_ids = "", False
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):  # a comment block explains the ids that follow it
            text = stripped.lstrip("# ").strip()
            pending = text if after_ids else f"{pending} {text}".strip()
            after_ids = False
            continue
        if not stripped:
            pending, after_ids = "", False
            continue
        case_id, _, comment = stripped.partition("#")
        reasons[case_id.strip()] = comment.strip() or pending
        after_ids = True
    return reasons


def adapter_runs(cases_for, adapters: Sequence[str] | None = None, xfails_dir: pathlib.Path | None = None,
                 progress=None):
    """Run each adapter in each of its dtypes; yield (name, adapter, results, reasons, why_not)."""
    names = sorted(adapters or [n for n in BUILTIN if n != "reference"])
    for name in names:
        module = None
        try:
            module = importlib.import_module(BUILTIN.get(name, name))
            why_not = getattr(module, "available", lambda: None)()
        except Exception as exc:
            why_not = f"cannot be imported: {exc}"
        if why_not:
            yield name, None, [], {}, why_not
            continue
        for dtype in getattr(module, "ADAPTER_DTYPES", ("float32",)):
            try:
                adapter = load_adapter(name, dtype=dtype, device="cpu")
            except AdapterError as exc:
                yield name, None, [], {}, str(exc)
                continue
            reasons = _read_reasons(xfail_file(xfails_dir, name, dtype))
            results = run_cases(adapter, cases_for(dtype), xfails=reasons, progress=progress)
            yield name, adapter, results, reasons, None


def _cell(results: list[CaseResult]) -> str:
    statuses = {r.status for r in results}
    compared = [r for r in results if r.outputs]
    share = max((r.budget_share for r in compared), default=None)
    tail = f" ({share:.2g})" if share is not None and share == share and share != float("inf") else ""
    if statuses & {"fail", "error", "timeout"}:
        return "FAIL" + tail
    if "xfail" in statuses:
        return "diverges" + tail
    if statuses <= {"not_implemented", "skipped"}:
        return "n/i"
    note = ", lenient" if "lenient" in statuses else ""
    if statuses & {"not_implemented"}:
        return "partial" + tail + note
    return "pass" + tail + note


def render_matrix(runs) -> str:
    """Markdown for the runs produced by :func:`adapter_runs`."""
    dtypes = ["float64", "float32", "float16", "bfloat16"]
    table: dict[tuple[str, str, str], dict[str, str]] = defaultdict(dict)
    libraries: dict[str, str] = {}
    unavailable: dict[str, str] = {}
    divergences: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for name, adapter, results, reasons, why_not in runs:
        if adapter is None:
            unavailable[name] = why_not or "unavailable"
            continue
        libraries[name] = adapter.version
        by_function: dict[str, list[CaseResult]] = defaultdict(list)
        for r in results:
            by_function[r.function].append(r)
        for function, group in by_function.items():
            if all(r.status == "not_implemented" for r in group):
                continue
            table[(name, adapter.version, function)][adapter.dtype] = _cell(group)
        for r in results:
            if r.status == "xfail":
                divergences[(name, r.case_id, reasons.get(r.case_id, ""))].append(r.dtype)
    lines = [
        "# Conformance matrix",
        "",
        "Generated by `posref matrix --out conformance/matrix.md`. Each cell: outcome over the golden cases "
        "of that function (largest share of the error budget used, 1 = at the limit). `diverges`: the library "
        "follows another convention or has a known defect, listed below; `partial`: some cases use parameters "
        "the library cannot express; `lenient`: it accepts inputs the spec rejects; `n/i`: not implemented.",
        "",
        "| library | version | function | " + " | ".join(dtypes) + " |",
        "| --- | --- | --- | " + " | ".join("---" for _ in dtypes) + " |",
    ]
    for (name, version, function) in sorted(table):
        cells = table[(name, version, function)]
        lines.append(f"| {name} | {version} | `{function}` | "
                     + " | ".join(cells.get(d, "") for d in dtypes) + " |")
    if divergences:
        lines += ["", "## Divergences", ""]
        for (name, case_id, reason), dtypes_seen in sorted(divergences.items()):
            lines.append(f"- **{name}** `{case_id}` [{', '.join(dtypes_seen)}]: {reason}")
    if unavailable:
        lines += ["", "## Not run here", ""]
        lines += [f"- **{name}**: {reason}" for name, reason in sorted(unavailable.items())]
    return "\n".join(lines) + "\n"
