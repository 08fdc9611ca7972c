"""Command lines that used to run nothing, or everything wrongly, and exit 0: now usage errors (exit 2).

Each is refused before any adapter code runs (the adapter ``marks_on_import``
leaves a file when imported; it must not exist after a usage error).
"""

from __future__ import annotations

import pytest

from posref.cli import main

from . import marks_on_import
from .checking import check, statuses


@pytest.fixture
def marker(tmp_path, monkeypatch):
    path = tmp_path / "imported"
    monkeypatch.setenv("POSREF_HOSTILE_MARKER", str(path))
    return path


def _usage_error(capfd, *args: str) -> str:
    with pytest.raises(SystemExit) as exc:
        main(["check", "--adapter", marks_on_import.__name__, *args])
    assert exc.value.code == 2
    return capfd.readouterr().err


@pytest.mark.parametrize("option, value", [
    ("--timeout", "0"), ("--timeout", "-1"), ("--timeout", "nan"), ("--timeout", "inf"), ("--timeout", "-inf"),
    ("--timeout", "soon"), ("--max-examples", "-1"), ("--seed", "-1"), ("--seed", "1.5"),
])
def test_numeric_options_are_checked(capfd, marker, option, value):
    err = _usage_error(capfd, f"{option}={value}")
    assert f"argument {option}: must be" in err and repr(value) in err
    assert not marker.exists()


def test_a_huge_timeout_is_a_long_limit_not_an_error(capfd, tmp_path):
    code, out, err, document = check(capfd, tmp_path, "--adapter", "reference", "--dtype", "float64", "--function",
                                     "rope_frequencies", "--max-examples", "0", "--timeout", "1e300")
    assert code == 0, err
    assert set(statuses(document).values()) == {"pass"}  # the invalid cases too: rejected with ValueError


@pytest.mark.parametrize("option, value, near", [
    ("--function", "nosuch", "'posref list' names the functions"),
    ("--function", "rope_angle", "rope_angles"),
    ("--family", "nosuch", "'posref list' names the families"),
    ("--family", "rop", "rope"),
    ("--case", "nosuch", "no case of posref's cases has that id"),
    ("--case", "rope_frequencies.d128.b1000", "rope_frequencies.d128.b10000"),
])
def test_a_selection_that_matches_nothing_is_a_usage_error_with_near_matches(capfd, tmp_path, marker, option,
                                                                             value, near):
    code, out, err, document = check(capfd, tmp_path, "--adapter", marks_on_import.__name__, option, value)
    assert code == 2
    assert f"posref check: {option} {value!r} matches nothing" in err and near in err
    assert document is None and not marker.exists()


def test_a_function_outside_the_selected_family_is_named(capfd, tmp_path):
    code, out, err, _ = check(capfd, tmp_path, "--adapter", "reference", "--family", "alibi", "--function",
                              "rope_angles")
    assert code == 2 and "have no case of it in the selected families" in err


def test_unknown_xfails_ids_are_errors(capfd, tmp_path, marker):
    xfails = tmp_path / "xfails.txt"
    xfails.write_text("# known\nrope_frequencies.d128.b10000\nrope_frequencies.d128.b1000  # a typo\nno.such.case\n")
    code, out, err, document = check(capfd, tmp_path, "--adapter", marks_on_import.__name__, "--xfails", str(xfails))
    assert code == 2
    assert "names 2 id(s) that are no case" in err
    assert "rope_frequencies.d128.b1000 (did you mean rope_frequencies.d128.b10000?)" in err and "no.such.case" in err
    assert not marker.exists()


def test_xfails_ids_of_other_families_are_known(capfd, tmp_path):
    xfails = tmp_path / "xfails.txt"
    xfails.write_text("alibi_slopes.h1\n")
    code, out, err, _ = check(capfd, tmp_path, "--adapter", "reference", "--dtype", "float64", "--function",
                              "rope_frequencies", "--max-examples", "0", "--xfails", str(xfails))
    assert code == 0, err


@pytest.mark.parametrize("where, words", [
    ("missing/report.json", "does not exist"),
    ("afile/report.json", "is not a directory"),
    (".", "is a directory"),
])
@pytest.mark.parametrize("option", ["--report", "--markdown"])
def test_report_paths_are_checked_before_the_run(capfd, tmp_path, marker, monkeypatch, option, where, words):
    (tmp_path / "afile").write_text("a file, not a directory\n")
    monkeypatch.chdir(tmp_path)
    code = main(["check", "--adapter", marks_on_import.__name__, option, where, "--no-progress"])
    err = capfd.readouterr().err
    assert code == 2
    assert f"posref check: {option} {where}" in err and words in err
    assert not marker.exists()


def test_a_directory_that_cannot_be_written_is_refused(capfd, tmp_path, marker):
    import os

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        code = main(["check", "--adapter", marks_on_import.__name__, "--report", str(locked / "r.json")])
        assert code == 2 and "cannot write in" in capfd.readouterr().err
        assert not marker.exists()
    finally:
        locked.chmod(0o700)


def test_the_same_file_twice_is_refused(capfd, tmp_path):
    target = str(tmp_path / "r")
    assert main(["check", "--adapter", "reference", "--report", target, "--markdown", target]) == 2
    assert "name the same file" in capfd.readouterr().err


def test_a_corpus_selection_names_what_the_corpus_lacks(capfd, tmp_path):
    from posref.golden import write_corpus
    from posref.golden.cases import CASES
    from posref.golden.registry import build_cases

    corpus = tmp_path / "corpus"
    write_corpus(build_cases([s for s in CASES if s.function == "alibi_slopes"], dtypes=["float32"]), corpus)
    code, out, err, _ = check(capfd, tmp_path, "--adapter", "reference", "--corpus", str(corpus), "--family", "rope")
    assert code == 2 and "it is a family of posref, but the corpus" in err and "has no case of it" in err
    xfails = tmp_path / "xfails.txt"
    xfails.write_text("rope_frequencies.d128.b10000\n")  # a registry case, but not in this corpus
    code, out, err, _ = check(capfd, tmp_path, "--adapter", "reference", "--corpus", str(corpus), "--xfails",
                              str(xfails))
    assert code == 2 and "rope_frequencies.d128.b10000" in err
    code, out, err, document = check(capfd, tmp_path, "--adapter", "reference", "--dtype", "float64", "--corpus",
                                     str(corpus), "--max-examples", "0")
    assert code == 0, err
    assert len(document["results"]) == 9 and set(statuses(document).values()) == {"pass"}
