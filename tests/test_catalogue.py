"""The catalogue of spec functions and helpers, and the ``posref list`` / ``--version`` commands."""

import importlib
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import posref
from posref.cli import main

FUNCTIONS = posref.spec_functions()
HELPERS = posref.helper_functions()
API_INDEX = Path(__file__).resolve().parent.parent / "docs" / "api" / "index.rst"


def test_catalogue_is_not_empty():
    assert len(FUNCTIONS) >= 1


@pytest.mark.parametrize("entry", FUNCTIONS, ids=lambda e: e.name)
def test_every_spec_function_is_documented_as_a_spec(entry):
    doc = inspect.getdoc(entry.function) or ""
    assert entry.summary and entry.summary.endswith("."), "one-line summary ending with a period"
    for section in ("Parameters", "Returns", "Raises", "References", "Examples"):
        assert f"\n{section}\n---" in doc, f"{entry.name} lacks a {section} section"
    assert ".. math::" in doc, f"{entry.name} lacks its formula"
    assert ">>> " in doc, f"{entry.name} lacks a doctest"
    assert any(mark in entry.reference for mark in ("arXiv", "doi", "http")), entry.reference


@pytest.mark.parametrize("entry", FUNCTIONS, ids=lambda e: e.name)
def test_every_spec_function_is_exported_and_keyword_options(entry):
    assert getattr(posref, entry.name) is entry.function
    assert getattr(importlib.import_module(entry.module), entry.name) is entry.function
    assert entry.name in posref.__all__
    kinds = [p.kind for p in inspect.signature(entry.function).parameters.values()]
    assert inspect.Parameter.POSITIONAL_OR_KEYWORD not in kinds, (
        f"{entry.name}: data must be positional-only and options keyword-only"
    )


def test_every_family_lives_in_its_own_module():
    for entry in FUNCTIONS:
        assert entry.module in (f"posref.{entry.family}", f"posref.relative.{entry.family}"), (entry.name, entry.module)


def test_the_package_exports_every_spec_function_in_catalogue_order():
    # a function added to a family module's __all__ reaches posref and posref.relative by
    # their star imports; tests/test_family_layout.py checks every spec module is imported
    import posref.relative

    assert [n for n in posref.__all__ if n in posref.SPEC_FUNCTIONS] == list(posref.SPEC_FUNCTIONS)
    relative = [e.name for e in FUNCTIONS if e.module.startswith("posref.relative.")]
    assert sorted(posref.relative.__all__) == sorted(relative)
    assert all(getattr(posref, e.name) is e.function for e in FUNCTIONS)


def test_helpers_are_catalogued():
    assert {h.name for h in HELPERS} >= {
        "rotated_channels", "xpos_zeta", "xpos_exponents", "relative_distance", "cope_causal_mask",
    }
    assert set(posref.HELPERS) == {h.name for h in HELPERS}


@pytest.mark.parametrize("entry", HELPERS, ids=lambda e: e.name)
def test_every_helper_is_documented_and_public_but_not_a_spec(entry):
    doc = inspect.getdoc(entry.function) or ""
    assert entry.summary and entry.summary.endswith("."), "one-line summary ending with a period"
    for section in ("Parameters", "Returns", "Raises", "Examples"):
        assert f"\n{section}\n---" in doc, f"{entry.name} lacks a {section} section"
    assert ">>> " in doc, f"{entry.name} lacks a doctest"
    assert entry.family in {f.family for f in FUNCTIONS}
    # reachable from its family's public module, not from the top-level package
    public = ".".join(part for part in entry.module.split(".") if not part.startswith("_"))
    assert getattr(importlib.import_module(entry.module), entry.name) is entry.function
    assert getattr(importlib.import_module(public), entry.name) is entry.function
    assert entry.name not in posref.SPEC_FUNCTIONS and entry.name not in posref.__all__
    assert entry.name not in getattr(importlib.import_module(public), "__all__", [])
    kinds = [p.kind for p in inspect.signature(entry.function).parameters.values()]
    assert inspect.Parameter.POSITIONAL_OR_KEYWORD not in kinds
    # the API reference documents it under its module or a package above that re-exports it
    documented = re.findall(rf"^\.\. autofunction:: (posref[\w.]*)\.{entry.name}$",
                            API_INDEX.read_text(encoding="utf-8"), re.MULTILINE)
    assert len(documented) == 1, f"docs/api/index.rst documents {entry.name} {len(documented)} times"
    assert (public + ".").startswith(documented[0] + ".")
    assert getattr(importlib.import_module(documented[0]), entry.name) is entry.function


def test_helper_marker_records_without_wrapping():
    from posref._spec import HELPERS as registry
    from posref._spec import helper

    def made_up_helper(x, /):
        """A helper of the test."""
        return x

    try:
        assert helper(family="rope")(made_up_helper) is made_up_helper
        assert registry["made_up_helper"].family == "rope"
        assert registry["made_up_helper"].module == __name__
        assert [h.name for h in posref.helper_functions("rope")].count("made_up_helper") == 1
    finally:
        del registry["made_up_helper"]

    def apply_rope(x, /):  # the name of a spec function
        return x

    with pytest.raises(RuntimeError, match="two public functions are named 'apply_rope'"):
        helper(family="rope")(apply_rope)


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"posref {posref.__version__} (spec {posref.SPEC_VERSION})"


def test_list_json_describes_every_function(capsys):
    assert main(["list", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [e["name"] for e in entries] == [f.name for f in FUNCTIONS]
    for e in entries:
        assert set(e) == {"name", "module", "family", "summary", "reference"}
        assert callable(getattr(importlib.import_module(e["module"]), e["name"]))


def test_list_text_and_family_filter(capsys):
    assert main(["list", "--family", "rope"]) == 0
    out = capsys.readouterr().out
    assert "rope_frequencies" in out and "Angular frequencies of the rotary pairs." in out


def test_list_unknown_family_is_a_clean_error(capsys):
    assert main(["list", "--family", "nonsense"]) == 2
    err = capsys.readouterr().err
    assert "unknown family 'nonsense'" in err and "rope" in err


def test_console_script_runs_as_module():
    done = subprocess.run(
        [sys.executable, "-m", "posref", "list", "--json"], capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout)
