"""The conformance matrix: library x function x dtype -> outcome, with the worst error.

``posref matrix`` runs every built-in adapter that can run here, in every
dtype it declares, over the golden cases, and writes one Markdown table.
A cell gives the verdict on valid inputs first: ``pass``, ``partial``
(some cases not implemented), ``known`` (wrong numbers on a listed case:
the reason is in ``posref/adapters/known/<adapter>-<dtype>.txt``),
``crash`` (a listed case raised on valid input), ``FAIL`` (an unlisted
failure) or ``n/i`` (not implemented), with the largest share of the error
budget used; then the marks ``lenient`` and ``wrong_error`` for the
handling of invalid inputs, which say nothing about the numbers.  The outcomes depend only on the
library versions and the cases, so a committed matrix can be checked for
currency.

The shares do not: they move a little with the CPU (NumPy's SIMD sin, cos
and exp, the OpenBLAS kernel, the torch and JAX kernels), so
``posref matrix --check`` compares meaning rather than bytes
(:func:`compare_matrices`).  It parses the committed file and a fresh
render into rows (library, version, function) and dtype columns, each
cell a set of status words and a share, and requires

* the same dtype columns, the same rows and the same library versions;
* the same status words in every cell (``pass``, ``partial``, ``known``,
  ``crash``, ``FAIL``, ``n/i``, ``lenient``, ``wrong_error``), so a share that crosses 1 and turns
  ``pass`` into ``FAIL`` is a change;
* a share in both cells or in neither, and shares that agree within the
  slack: each share below :data:`SHARE_FLOOR` (0.01) is first raised to it,
  then the larger may be at most :data:`SHARE_FACTOR` (1.5) times the
  smaller.  The factor covers the two significant digits printed
  (0.4 against 0.44) and the last-bit differences of a different CPU or
  of reference values computed another way; the floor makes shares far
  below the budget, where a bit or two is a large ratio (``6.4e-10``
  against ``0``), agree;
* the same text outside the table (the title and legend, and the
  lists of known divergences and of libraries not run here, line for line).  Those lines
  hold case ids, dtypes and reasons written in the divergence files, and no
  number computed on this machine, so they are compared exactly.
"""

from __future__ import annotations

import importlib
import math
import pathlib
import re
from collections import defaultdict
from collections.abc import Sequence

from posref.conformance.known import known_file, parse_known
from posref.conformance.adapter import BUILTIN, AdapterError, load_adapter
from posref.conformance.runner import CaseResult, run_cases

__all__ = ["SHARE_FACTOR", "SHARE_FLOOR", "adapter_runs", "compare_matrices", "render_matrix", "shares_agree",
           "xfail_file"]

#: Shares below this are raised to it before they are compared: far below the budget, a bit more
#: or less is a large ratio and means nothing.
SHARE_FLOOR = 0.01
#: Largest ratio of two shares (after :data:`SHARE_FLOOR`) that still agree.
SHARE_FACTOR = 1.5


def xfail_file(directory: pathlib.Path | None, adapter: str, dtype: str) -> pathlib.Path | None:
    """The known-divergence list of an adapter and dtype, if it exists."""
    return None if directory is None else known_file(adapter, dtype, directory)


def _read_reasons(path: pathlib.Path | None) -> dict[str, str]:
    """Case id -> the reason given for it in a known-divergence list."""
    return {} if path is None else parse_known(path.read_text(encoding="utf-8"))


def adapter_runs(cases_for, adapters: Sequence[str] | None = None, xfails_dir: pathlib.Path | None = None,
                 progress=None, *, in_process: bool = False):
    """Run each adapter in each of its dtypes; yield (name, adapter, results, reasons, why_not).

    The adapters run in a worker process (:mod:`posref.conformance.worker`),
    one for all of them unless a case crashes or hangs it; ``in_process``
    runs them in this process instead, for debugging.
    """
    names = sorted(adapters or [n for n in BUILTIN if n != "reference"])
    if in_process:
        yield from _in_process_runs(cases_for, names, xfails_dir, progress)
        return
    from posref.conformance.worker import AdapterHost

    with AdapterHost() as host:  # one worker for all: each framework is imported once
        for name in names:
            try:
                described = host.describe(name)
            except AdapterError as exc:
                yield name, None, [], {}, f"cannot be imported: {exc}"
                continue
            if described["available"]:
                yield name, None, [], {}, described["available"]
                continue
            for dtype in described["dtypes"]:
                try:
                    adapter = host.configure(name, dtype, "cpu")
                except AdapterError as exc:
                    yield name, None, [], {}, str(exc)
                    continue
                reasons = _read_reasons(xfail_file(xfails_dir, name, dtype))
                results = run_cases(adapter, cases_for(dtype), known=reasons, progress=progress, diagnose=False)
                yield name, adapter, results, reasons, None


def _in_process_runs(cases_for, names, xfails_dir, progress):
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
            results = run_cases(adapter, cases_for(dtype), known=reasons, progress=progress, diagnose=False)
            yield name, adapter, results, reasons, None


_INPUT_HANDLING = ("lenient", "wrong_error")


def _cell(results: list[CaseResult]) -> str:
    """The numeric verdict first (over valid inputs), then the marks for the handling of invalid inputs."""
    statuses = {r.status for r in results}
    observed = {r.observed for r in results if r.status == "known"}
    compared = [r for r in results if r.outputs]
    share = max((r.budget_share for r in compared), default=None)
    tail = f" ({share:.2g})" if share is not None and share == share and share != float("inf") else ""
    marks = [m for m in _INPUT_HANDLING if m in statuses or m in observed]
    note = "".join(f", {m}" for m in marks)
    if statuses & {"fail", "error", "crash", "timeout"} or ("wrong_error" in statuses):
        return "FAIL" + tail + note
    if observed & {"crash", "timeout"}:
        return "crash" + tail + note
    if "fail" in observed:
        return "known" + tail + note
    if statuses <= {"not_implemented", "skipped"}:
        return "n/i"
    if "not_implemented" in statuses:
        return "partial" + tail + note
    return "pass" + tail + note


def render_matrix(runs) -> str:
    """Markdown for the runs produced by :func:`adapter_runs`."""
    dtypes = ["float64", "float32", "float16", "bfloat16"]
    table: dict[tuple[str, str, str], dict[str, str]] = defaultdict(dict)
    libraries: dict[str, str] = {}
    unavailable: dict[str, str] = {}
    numeric: dict[tuple[str, str, str, str], list[str]] = defaultdict(list)
    handling: dict[tuple[str, str, str, str], list[str]] = defaultdict(list)
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
            if r.status == "known":
                where = handling if r.observed in _INPUT_HANDLING else numeric
                where[(name, r.case_id, r.observed, reasons.get(r.case_id, ""))].append(r.dtype)
    lines = [
        "# Conformance matrix",
        "",
        "Generated by `posref matrix --out conformance/matrix.md`. A row is a library and a spec function, a "
        "column a dtype. A cell gives the verdict on valid inputs first, with the largest share of the error "
        "budget used (1 = at the limit): `pass`; `partial` (passes, but some cases use parameters the library "
        "cannot express); `known` (wrong numbers on some valid input, a listed divergence: another convention "
        "or a defect, with its reason below); `crash` (raises on some valid input, listed below); `FAIL` (an "
        "unlisted failure); `n/i` (not implemented). Then marks for invalid inputs, which say nothing about the "
        "numbers: `lenient` (accepts some input the spec rejects), `wrong_error` (rejects it with another error "
        "class). The lists of known divergences ship with posref in "
        "`posref/adapters/known/<library>-<dtype>.txt`.",
        "",
        "| library | version | function | " + " | ".join(dtypes) + " |",
        "| --- | --- | --- | " + " | ".join("---" for _ in dtypes) + " |",
    ]
    for (name, version, function) in sorted(table):
        cells = table[(name, version, function)]
        lines.append(f"| {name} | {version} | `{function}` | "
                     + " | ".join(cells.get(d, "") for d in dtypes) + " |")
    for title, entries in (("Known divergences on valid inputs", numeric),
                           ("Invalid inputs accepted or rejected with another error class", handling)):
        if entries:
            lines += ["", f"## {title}", ""]
            for (name, case_id, observed, reason), dtypes_seen in sorted(entries.items()):
                lines.append(f"- **{name}** `{case_id}` ({observed}) [{', '.join(dtypes_seen)}]: {reason}")
    if unavailable:
        lines += ["", "## Not run here", ""]
        lines += [f"- **{name}**: {reason}" for name, reason in sorted(unavailable.items())]
    return "\n".join(lines) + "\n"


_KEY_COLUMNS = ("library", "version", "function")
_SHARE_RE = re.compile(r"\(([^()]*)\)")
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z/_-]*\Z")


def shares_agree(a: float | None, b: float | None) -> bool:
    """Whether two printed budget shares say the same, within the slack of ``--check``.

    Parameters
    ----------
    a, b : float or None
        Shares as printed in two cells; None where a cell prints none.

    Returns
    -------
    bool
        True when both are None, or both are numbers and, after raising each
        to at least :data:`SHARE_FLOOR`, the larger is at most
        :data:`SHARE_FACTOR` times the smaller.

    Examples
    --------
    >>> shares_agree(0.4, 0.44), shares_agree(0.42, 0.91)
    (True, False)
    >>> shares_agree(6.4e-10, 0.0), shares_agree(5.2e6, 4.9e6), shares_agree(None, 0.3)
    (True, True, False)
    """
    if a is None or b is None:
        return a is None and b is None
    low, high = sorted((max(a, SHARE_FLOOR), max(b, SHARE_FLOOR)))
    return high <= SHARE_FACTOR * low


class _Cell:
    """One parsed cell: its text, its status words and its share (None if it prints none)."""

    __slots__ = ("text", "words", "share")

    def __init__(self, text: str):
        self.text = text
        found = _SHARE_RE.findall(text)
        if len(found) > 1:
            raise ValueError(f"cell {text!r} has {len(found)} parenthesised shares, expected at most one")
        self.share = None
        if found:
            try:
                self.share = float(found[0])
            except ValueError:
                raise ValueError(f"cell {text!r}: share {found[0]!r} is not a number") from None
            if not (math.isfinite(self.share) and self.share >= 0):
                raise ValueError(f"cell {text!r}: share {found[0]!r} is not a finite number >= 0")
        words = [w for w in re.split(r"[\s,]+", _SHARE_RE.sub(" ", text)) if w]
        bad = [w for w in words if not _WORD_RE.match(w)]
        if bad:
            raise ValueError(f"cell {text!r}: {bad[0]!r} is not a status word")
        self.words = frozenset(words)

    def __repr__(self) -> str:
        return repr(self.text) if self.text else "(empty)"


class _Matrix:
    """A rendered matrix split into its table and the text around it."""

    def __init__(self, text: str, label: str):
        self.dtypes: tuple[str, ...] = ()
        self.rows: dict[tuple[str, str], tuple[str, dict[str, _Cell]]] = {}
        self.sections: dict[str, list[str]] = {}
        self.problems: list[str] = []
        section, table_state = "", "before"  # before -> header -> rows -> after
        self.sections[section] = []
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.rstrip()
            where = f"{label}, line {number}"
            if line.startswith("|"):
                if table_state == "after":
                    self.problems.append(f"{where}: a second table; the matrix has one")
                    continue
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
                if table_state == "before":
                    if tuple(c.lower() for c in cells[:3]) != _KEY_COLUMNS or len(cells) < 4:
                        self.problems.append(f"{where}: table header {line!r} does not start with "
                                             "'| library | version | function |' and name dtype columns")
                        return
                    self.dtypes = tuple(cells[3:])
                    table_state = "header"
                elif table_state == "header":
                    if len(cells) != 3 + len(self.dtypes) or any(set(c) - set("-: ") or not c for c in cells):
                        self.problems.append(f"{where}: expected the separator row '| --- | ... |' "
                                             f"with {3 + len(self.dtypes)} columns, got {line!r}")
                        return
                    table_state = "rows"
                else:
                    self._add_row(cells, line, where)
                continue
            if table_state in ("header", "rows"):
                if table_state == "header":
                    self.problems.append(f"{where}: table header without a separator row")
                    return
                table_state = "after"
            if line.startswith("## "):
                section = line[3:].strip()
                if section in self.sections:
                    self.problems.append(f"{where}: section {section!r} appears twice")
                self.sections[section] = []
            elif line:
                self.sections[section].append(line)
        if table_state == "before":
            self.problems.append(f"{label}: no table (a line '| library | version | function | ...' was not found)")

    def _add_row(self, cells: list[str], line: str, where: str) -> None:
        if len(cells) != 3 + len(self.dtypes):
            self.problems.append(f"{where}: row has {len(cells)} columns, the header {3 + len(self.dtypes)}: "
                                 f"{line!r}")
            return
        library, version, function = cells[0], cells[1], cells[2].strip("`")
        if not library or not version or not function:
            self.problems.append(f"{where}: row without a library, version or function: {line!r}")
            return
        if (library, function) in self.rows:
            self.problems.append(f"{where}: second row for {library} `{function}`")
            return
        try:
            parsed = {dtype: _Cell(text) for dtype, text in zip(self.dtypes, cells[3:])}
        except ValueError as exc:
            self.problems.append(f"{where}: {exc}")
            return
        self.rows[(library, function)] = (version, parsed)


def _section_differences(name: str, committed: list[str], fresh: list[str]) -> list[str]:
    import difflib

    title = f"section {name!r}" if name else "text above the table"
    out = []
    for line in difflib.ndiff(committed, fresh):
        if line.startswith("- "):
            out.append(f"{title}: only in the committed matrix: {line[2:]}")
        elif line.startswith("+ "):
            out.append(f"{title}: only in the fresh run: {line[2:]}")
    return out


def compare_matrices(committed: str, fresh: str) -> list[str]:
    """Differences in meaning between a committed matrix and a fresh render.

    The two texts are parsed into rows (library, version, function) by
    dtype columns, each cell a set of status words and a budget share, and
    the text outside the table.  They agree when the dtype columns, the
    rows, the library versions and every cell's status words are the
    same, every pair of shares agrees by :func:`shares_agree` (within a
    factor :data:`SHARE_FACTOR`, shares below :data:`SHARE_FLOOR` counted
    as :data:`SHARE_FLOOR`), and the text outside the table is the same
    line for line (blank lines and trailing spaces aside).

    Parameters
    ----------
    committed : str
        The matrix as committed (``conformance/matrix.md``).
    fresh : str
        The matrix :func:`render_matrix` gives now.

    Returns
    -------
    list of str
        One line per difference, naming the library, function and dtype of
        a cell, or the section and line of other text; empty when the two
        agree.  A text that cannot be parsed gives its problems (with line
        numbers) instead.

    Examples
    --------
    >>> head = ("| library | version | function | float32 | float16 |\\n"
    ...         "| --- | --- | --- | --- | --- |\\n")
    >>> committed = head + "| lib | 1.0 | `apply_rope` | pass (0.4), lenient | pass (6.4e-10) |\\n"
    >>> compare_matrices(committed, head + "| lib | 1.0 | `apply_rope` | pass (0.44), lenient | pass (0) |\\n")
    []
    >>> fresh = head + "| lib | 1.1 | `apply_rope` | FAIL (1.2), lenient | pass (0.9) |\\n"
    >>> for line in compare_matrices(committed, fresh):
    ...     print(line)
    library lib: version 1.0 in the committed matrix, 1.1 in the fresh run
    lib `apply_rope` float32: status differs: committed 'pass (0.4), lenient', fresh 'FAIL (1.2), lenient'
    lib `apply_rope` float16: share differs by more than a factor 1.5: committed 'pass (6.4e-10)', fresh 'pass (0.9)'
    """
    old, new = _Matrix(committed, "committed matrix"), _Matrix(fresh, "fresh matrix")
    if old.problems or new.problems:
        return old.problems + new.problems
    out: list[str] = []
    if old.dtypes != new.dtypes:
        out.append(f"dtype columns differ: committed {', '.join(old.dtypes)}; fresh {', '.join(new.dtypes)}")
    old_versions: dict[str, set[str]] = defaultdict(set)
    new_versions: dict[str, set[str]] = defaultdict(set)
    for (library, _), (version, _) in old.rows.items():
        old_versions[library].add(version)
    for (library, _), (version, _) in new.rows.items():
        new_versions[library].add(version)
    for library in sorted(set(old_versions) & set(new_versions)):
        if old_versions[library] != new_versions[library]:
            out.append(f"library {library}: version {', '.join(sorted(old_versions[library]))} in the committed "
                       f"matrix, {', '.join(sorted(new_versions[library]))} in the fresh run")
    for key in sorted(set(old.rows) | set(new.rows)):
        library, function = key
        if key not in new.rows:
            out.append(f"{library} `{function}`: row only in the committed matrix (version {old.rows[key][0]})")
            continue
        if key not in old.rows:
            out.append(f"{library} `{function}`: row only in the fresh run (version {new.rows[key][0]})")
            continue
        old_cells, new_cells = old.rows[key][1], new.rows[key][1]
        for dtype in [d for d in old.dtypes if d in new.dtypes]:
            a, b = old_cells[dtype], new_cells[dtype]
            if a.words != b.words:
                out.append(f"{library} `{function}` {dtype}: status differs: committed {a!r}, fresh {b!r}")
            elif not shares_agree(a.share, b.share):
                both = a.share is not None and b.share is not None
                what = f"share differs by more than a factor {SHARE_FACTOR:g}" if both else "share in only one"
                out.append(f"{library} `{function}` {dtype}: {what}: committed {a!r}, fresh {b!r}")
    for name in list(old.sections) + [s for s in new.sections if s not in old.sections]:
        if name not in new.sections:
            out.append(f"section {name!r}: only in the committed matrix")
        elif name not in old.sections:
            out.append(f"section {name!r}: only in the fresh run")
        else:
            out += _section_differences(name, old.sections[name], new.sections[name])
    return out
