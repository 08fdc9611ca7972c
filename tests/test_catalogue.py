"""The catalogue of spec functions and the ``posref list`` / ``--version`` commands."""

import importlib
import inspect
import json
import subprocess
import sys

import pytest

import posref
from posref.cli import main

FUNCTIONS = posref.spec_functions()


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
