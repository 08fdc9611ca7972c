r"""Measure how accurate the golden float64 outputs are, per tolerance class.

Run from the repository root::

    python -m tests.audit.measure              # every family
    python -m tests.audit.measure --limit 512  # a smaller sample of big outputs
    python -m tests.audit.measure --by-function

Every output of every golden case and of every rounded-input variant is
compared with its exact value (the mpmath references of
``tests/audit/refs_*.py`` at 60 digits): all elements of an output with at
most ``--limit`` elements, a seeded sample of ``--limit`` elements (first,
last, largest, those at the largest position, random ones) of a bigger one.
The Markdown table printed has one row per tolerance class:

* cases, elements checked;
* the largest error as a share of the element's float64 budget
  (``posref.conformance.tolerance.budgets(..., "float64")``, as the runner
  computes it); above 1 is an exceedance, listed after the table;
* the largest error in float64 ulps of the exact value (the spacing of
  float64 in the binade of :math:`|\text{exact}|`), and its 99th
  percentile: the largest errors in ulps are those of results much smaller
  than the terms they are computed from (a cosine near a zero, a rotated
  pair that nearly cancels), whose budget is absolute; elements whose exact
  value is 0 count with 0 ulp when the golden value is 0 too, and are
  reported by absolute error otherwise;
* the share of elements that are correctly rounded (error at most half an
  ulp; integer outputs: equal).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from . import harness


@dataclass
class Summary:
    """Accumulated statistics of one group (a tolerance class or a function)."""

    cases: set[str] = field(default_factory=set)
    elements: int = 0
    max_share: float = 0.0
    max_ulps: float = 0.0
    correctly_rounded: int = 0
    zero_misses: int = 0  # exact value 0, golden value not 0
    max_zero_error: float = 0.0
    ulps: list[float] = field(default_factory=list)

    def add(self, element: harness.Element) -> None:
        self.cases.add(element.case_id)
        self.elements += 1
        self.max_share = max(self.max_share, element.share)
        if element.ulps is None:
            self.zero_misses += 1
            self.max_zero_error = max(self.max_zero_error, element.error)
        else:
            self.max_ulps = max(self.max_ulps, element.ulps)
            self.ulps.append(element.ulps)
        self.correctly_rounded += element.correctly_rounded

    def merge(self, other: Summary) -> None:
        self.cases |= other.cases
        self.elements += other.elements
        self.max_share = max(self.max_share, other.max_share)
        self.max_ulps = max(self.max_ulps, other.max_ulps)
        self.correctly_rounded += other.correctly_rounded
        self.zero_misses += other.zero_misses
        self.max_zero_error = max(self.max_zero_error, other.max_zero_error)
        self.ulps.extend(other.ulps)

    def percentile_ulps(self, q: float) -> float:
        return float(np.percentile(self.ulps, q)) if self.ulps else 0.0


def _audit(task: tuple[str, int]) -> tuple[dict[str, Summary], dict[str, Summary], list[str], float]:
    """Audit one case (by id) in a worker; return per-class and per-function summaries and exceedances."""
    case_id, limit = task
    case = next(c for c in harness.golden_cases() if c.id == case_id)
    start = time.perf_counter()
    elements = harness.audit_case(case, harness.references(), per_case=None, per_output=limit)
    by_class: dict[str, Summary] = {}
    by_function: dict[str, Summary] = {}
    misses = []
    for element in elements:
        by_class.setdefault(element.tolerance, Summary()).add(element)
        by_function.setdefault(element.function, Summary()).add(element)
        if not element.passed:
            misses.append(harness.describe(element))
    return by_class, by_function, misses, time.perf_counter() - start


def _format_share(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.3f}"


def _format_ulps(value: float) -> str:
    if math.isinf(value):
        return "inf"
    return f"{value:.3g}" if value < 1000 else f"{value:.3e}"


def table(summaries: dict[str, Summary], key: str) -> str:
    """A Markdown table of the summaries, one row each, sorted by name."""
    lines = [
        f"| {key} | cases | elements checked | max share of float64 budget | max error (ulp) "
        "| 99th percentile (ulp) | correctly rounded |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    total = Summary()
    for name in sorted(summaries):
        s = summaries[name]
        total.merge(s)
        lines.append(_row(f"`{name}`", s))
    lines.append(_row("**all**", total))
    return "\n".join(lines)


def _row(name: str, s: Summary) -> str:
    rounded = 100.0 * s.correctly_rounded / s.elements if s.elements else 100.0
    return (f"| {name} | {len(s.cases)} | {s.elements} | {_format_share(s.max_share)} | "
            f"{_format_ulps(s.max_ulps)} | {_format_ulps(s.percentile_ulps(99))} | {rounded:.1f} % |")


def rst_table(markdown: str, caption: str) -> str:
    """The Markdown table as a reStructuredText list-table (for the documentation)."""
    rows = [line.strip().strip("|").split("|") for line in markdown.splitlines() if not line.startswith("|---")]
    out = [f".. list-table:: {caption}", "   :header-rows: 1", ""]
    for row in rows:
        cells = [c.strip().replace("**", "").replace("`", "``") for c in row]
        out.append(f"   * - {cells[0]}")
        out.extend(f"     - {c}" for c in cells[1:])
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.audit.measure", description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=2048,
                        help="elements per output and variant: all of a smaller output, a sample of a bigger one")
    parser.add_argument("--families", nargs="*", help="only these families")
    parser.add_argument("--by-function", action="store_true", help="also print a table per spec function")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes")
    parser.add_argument("--rst", metavar="FILE", help="also write the per-class table as reStructuredText to FILE")
    args = parser.parse_args(argv)

    refs = harness.references()
    missing = harness.missing_references(refs)
    cases = [c for c in harness.golden_cases()
             if c.function in refs and (not args.families or c.family in args.families)]
    start = time.perf_counter()
    by_class: dict[str, Summary] = {}
    by_function: dict[str, Summary] = {}
    misses: list[str] = []
    tasks = [(c.id, args.limit) for c in cases]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            results = list(pool.map(_audit, tasks, chunksize=1))
    else:
        results = [_audit(task) for task in tasks]
    for classes, functions, case_misses, _ in results:
        for name, s in classes.items():
            by_class.setdefault(name, Summary()).merge(s)
        for name, s in functions.items():
            by_function.setdefault(name, Summary()).merge(s)
        misses.extend(case_misses)
    elapsed = time.perf_counter() - start

    sampled = any(v.size > args.limit for c in cases for _, _, outputs in harness.variants(c) for v in outputs.values())
    coverage = f"outputs above {args.limit} elements sampled" if sampled else "every element"
    print(f"Accuracy of the golden float64 outputs against exact values ({harness.DPS}-digit mpmath), "
          f"{len(cases)} cases, all variants, {coverage}.\n")
    print(table(by_class, "tolerance class"))
    if args.rst:
        caption = (f"{len(cases)} cases, all variants, {coverage}; "
                   f"``python -m tests.audit.measure --limit {args.limit}``")
        with open(args.rst, "w", encoding="utf-8") as handle:
            handle.write(rst_table(table(by_class, "tolerance class"), caption))
    if args.by_function:
        print()
        print(table(by_function, "function"))
    zero = [f"`{name}`: {s.zero_misses} (largest {s.max_zero_error:.3g})"
            for name, s in sorted(by_class.items()) if s.zero_misses]
    if zero:
        print("\nElements whose exact value is 0 but golden value is not (absolute error): " + ", ".join(zero))
    if missing:
        print(f"\nNo reference yet for: {', '.join(missing)}")
    print(f"\n{len(misses)} element(s) outside the float64 budget.")
    for line in misses[:50]:
        print(f"  {line}")
    print(f"({elapsed:.1f} s)", file=sys.stderr)
    return 1 if misses else 0


if __name__ == "__main__":
    raise SystemExit(main())
