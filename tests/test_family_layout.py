"""Every family has all of its pieces, each found by the family's name.

A family of the catalogue (``posref.spec_functions()``) is complete when
it has

* its spec module, ``posref/<family>.py`` or ``posref/relative/<family>.py``,
  holding every function of the family and nothing of another family;
* its golden cases, ``posref/golden/cases/<family>.py``;
* its conformance module, ``posref/conformance/families/<family>.py`` (error
  models and fuzz strategies);
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
def test_conformance_module_exists(family):
    assert importlib.util.find_spec(f"posref.conformance.families.{family}") is not None, (
        f"posref/conformance/families/{family}.py is missing")


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
