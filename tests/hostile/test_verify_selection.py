"""``posref golden verify`` expects the whole registry unless told otherwise: no silent success.

It used to infer the families and dtypes to expect from the very manifest it
was checking, so deleting every RoPE case (entries and files) still gave
"335 cases, all current", and an empty manifest passed.
"""

from __future__ import annotations

import json
import shutil

import pytest

import posref.cli as cli
from posref.cli import main
from posref.golden import LOW_PRECISION_DTYPES, write_corpus
from posref.golden.cases import CASES
from posref.golden.registry import build_cases

_built: dict = {}


def _cached_registry_cases(families, dtypes, progress):
    """The CLI's own selection, built once per selection for this module (a full build takes seconds)."""
    key = (None if families is None else tuple(sorted(families)), tuple(dtypes))
    if key not in _built:
        _built[key] = build_cases(CASES, families=families, dtypes=dtypes)
    return _built[key]


@pytest.fixture(autouse=True)
def _cache(monkeypatch):
    monkeypatch.setattr(cli, "_registry_cases", _cached_registry_cases)


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """The full registry corpus, written once."""
    root = tmp_path_factory.mktemp("full") / "C"
    write_corpus(_cached_registry_cases(None, list(LOW_PRECISION_DTYPES), None), root)
    return root


@pytest.fixture
def copy(full, tmp_path):
    root = tmp_path / "C"
    shutil.copytree(full, root)
    return root


def verify(*args, capsys):
    capsys.readouterr()
    code = main(["golden", "verify", *map(str, args), "--no-progress"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_full_corpus_verifies(full, capsys):
    code, out, _ = verify(full, capsys=capsys)
    assert code == 0 and f"{len(CASES)} cases, all current" in out


def test_deleting_every_rope_case_is_reported(copy, capsys):
    manifest = json.loads((copy / "manifest.json").read_text())
    rope = [e for e in manifest["cases"] if e["family"] == "rope"]
    assert len(rope) == 32
    for entry in rope:
        (copy / entry["file"]).unlink()
    manifest["cases"] = [e for e in manifest["cases"] if e["family"] != "rope"]
    (copy / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    code, out, _ = verify(copy, capsys=capsys)
    assert code == 1
    missing = [line for line in out.splitlines() if line.strip().startswith("missing:")]
    assert sorted(line.split("'")[1] for line in missing) == sorted(e["id"] for e in rope)
    assert f"{len(CASES) - 32} cases, 32 problems" in out


def test_an_empty_manifest_is_reported(tmp_path, capsys):
    write_corpus([], tmp_path / "C")
    code, out, _ = verify(tmp_path / "C", capsys=capsys)
    assert code == 1 and f"0 cases, {len(CASES)} problems" in out


def test_a_family_narrows_what_is_expected(tmp_path, capsys):
    root = tmp_path / "C"
    assert main(["golden", "generate", "--out", str(root), "--family", "alibi", "--no-progress"]) == 0
    assert verify(root, "--family", "alibi", capsys=capsys)[0] == 0
    code, out, _ = verify(root, capsys=capsys)  # the default expects every family
    assert code == 1 and "missing: case 'apply_rope" in out
    code, out, _ = verify(root, "--family", "alibi", "--family", "t5", capsys=capsys)
    assert code == 1 and "missing: case" in out and "missing: case 'alibi" not in out


def test_a_dtype_narrows_what_is_expected(tmp_path, capsys):
    root = tmp_path / "C"
    assert main(["golden", "generate", "--out", str(root), "--family", "alibi", "--dtype", "float16",
                 "--no-progress"]) == 0
    assert verify(root, "--family", "alibi", "--dtype", "float16", capsys=capsys)[0] == 0
    code, out, _ = verify(root, "--family", "alibi", capsys=capsys)  # expects every dtype's variants
    assert code == 1 and "stale:" in out


def test_a_full_corpus_checked_for_one_family_reports_the_others_as_extra(full, capsys):
    code, out, _ = verify(full, "--family", "rope", capsys=capsys)
    assert code == 1 and f"{len(CASES) - 32} problems" in out and "extra: case 'alibi" in out


@pytest.mark.parametrize("flags", [["--family", "rope"], ["--dtype", "float16"]])
def test_selection_flags_need_regeneration(full, capsys, flags):
    code, out, err = verify(full, "--no-regenerate", *flags, capsys=capsys)
    assert code == 2 and out == "" and "cannot be combined with --no-regenerate" in err


def test_an_unknown_family_is_a_usage_error(full, capsys):
    code, _, err = verify(full, "--family", "nosuch", capsys=capsys)
    assert code == 2 and err.startswith("posref golden verify: families must be among")
