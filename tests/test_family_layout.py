"""Every family has all of its pieces, each found by the family's name.

A family of the catalogue (``posref.spec_functions()``) is complete when
it has

* its spec module, ``posref/<family>.py`` or ``posref/relative/<family>.py``,
  holding every function of the family and nothing of another family;
* its golden cases, ``posref/golden/cases/<family>.py``, with a fuzz
  strategy (``@strategy`` of ``posref.golden.strategies``) for every
  function that has a valid golden case;
* an error model for every tolerance class its cases name: the core's
  (``posref/tolerance/__init__.py``), another family's, or its own in
  ``posref/tolerance/<family>.py`` when its rounding needs one;
* its unit tests, ``tests/test_<family>.py``;
* a documentation page under ``docs/families/`` that lists its functions
  with ``.. posref-functions:: <family>`` and is reachable from the family
  index.

The registries (catalogue, cases, error models, strategies, meta-tests)
collect themselves from those files; these tests fail when a family lacks
one of them, so the contributor page's checklist cannot go stale.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

import posref

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = sorted({entry.family for entry in posref.spec_functions()})


def _family_pages() -> dict[str, list[Path]]:
    pages: dict[str, list[Path]] = {}
    for page in sorted((ROOT / "docs" / "families").glob("*.rst")):
        for family in re.findall(r"^\.\. posref-functions:: (\S+)\s*$", page.read_text(encoding="utf-8"), re.M):
            pages.setdefault(family, []).append(page)
    return pages


def test_the_catalogue_has_families():
    assert len(FAMILIES) >= 20


@pytest.mark.parametrize("family", FAMILIES)
def test_spec_module_is_named_after_the_family(family):
    modules = {entry.module for entry in posref.spec_functions(family)}
    allowed = {f"posref.{family}", f"posref.relative.{family}"}
    assert len(modules) == 1 and modules <= allowed, f"{family}: functions live in {sorted(modules)}"


@pytest.mark.parametrize("family", FAMILIES)
def test_golden_cases_module_exists(family):
    assert importlib.util.find_spec(f"posref.golden.cases.{family}") is not None, (
        f"posref/golden/cases/{family}.py is missing")


@pytest.mark.parametrize("family", FAMILIES)
def test_every_function_with_a_valid_case_has_a_strategy_from_its_cases_module(family):
    from posref.golden.cases import CASES
    from posref.golden.strategies import STRATEGIES

    with_cases = sorted({c.function for c in CASES if c.expect_error is None and c.function in _functions(family)})
    missing = [f for f in with_cases if f not in STRATEGIES]
    assert not missing, f"{family}: no @strategy in posref/golden/cases/{family}.py for {missing}"
    elsewhere = {f: STRATEGIES.origin(f) for f in with_cases if STRATEGIES.origin(f) != f"posref.golden.cases.{family}"}
    assert not elsewhere, f"{family}: strategies registered outside posref/golden/cases/{family}.py: {elsewhere}"


@pytest.mark.parametrize("family", FAMILIES)
def test_every_tolerance_class_its_cases_name_is_registered(family):
    from posref.golden.cases import CASES
    from posref.tolerance import TOLERANCE_CLASSES

    named = {c.tolerance for c in CASES if c.expect_error is None and c.function in _functions(family)}
    missing = sorted(named - set(TOLERANCE_CLASSES))
    assert not missing, (f"{family}: golden cases name tolerance classes no error model registers: {missing} "
                         f"(add one with @error_model in posref/tolerance/{family}.py)")


def _functions(family: str) -> set[str]:
    return {entry.name for entry in posref.spec_functions(family)}


@pytest.mark.parametrize("family", FAMILIES)
def test_unit_tests_exist(family):
    assert (ROOT / "tests" / f"test_{family}.py").is_file(), f"tests/test_{family}.py is missing"


@pytest.mark.parametrize("family", FAMILIES)
def test_documentation_page_lists_the_family(family):
    pages = _family_pages().get(family, [])
    assert len(pages) == 1, f"{family}: pages with '.. posref-functions:: {family}': {pages}"


def test_every_family_page_is_for_a_catalogued_family():
    unknown = sorted(set(_family_pages()) - set(FAMILIES))
    assert not unknown, f"pages list families the catalogue lacks: {unknown}"


def test_every_spec_module_is_imported_by_the_package():
    spec_dir = ROOT / "posref"
    candidates = [p for p in spec_dir.glob("*.py") if not p.name.startswith("_") and p.stem not in ("cli",)]
    candidates += [p for p in (spec_dir / "relative").glob("*.py") if not p.name.startswith("_")]
    for path in candidates:
        text = path.read_text(encoding="utf-8")
        if "@spec(" in text:
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            assert any(entry.module == module for entry in posref.spec_functions()), (
                f"{module} marks spec functions but none reached the catalogue")
