"""The committed conformance matrix is what the built-in adapters give today."""

import importlib
import os
import pathlib
import subprocess
import sys
import warnings

import pytest

import posref.conformance.matrix as matrix_module
from posref.cli import main
from posref.conformance.adapter import BUILTIN
from posref.conformance.matrix import SHARE_FACTOR, SHARE_FLOOR, compare_matrices, shares_agree

ROOT = pathlib.Path(__file__).resolve().parents[1]
GPU_ONLY = {"liger_kernel", "flash_attn"}


def _unavailable():
    missing = {}
    for name, module in BUILTIN.items():
        if name in GPU_ONLY or name == "reference":
            continue
        try:
            with warnings.catch_warnings():  # a library's import-time warning is not a missing library
                warnings.simplefilter("ignore")
                why_not = importlib.import_module(module).available()
        except Exception as exc:  # pragma: no cover - reported below
            why_not = str(exc)
        if why_not:
            missing[name] = why_not
    return missing


def _skip_unless_adapters():
    missing = _unavailable()
    if missing:
        pytest.skip("adapter libraries not installed (run conformance/install-adapters.sh): "
                    + "; ".join(f"{k}: {v}" for k, v in sorted(missing.items())))


def test_matrix_is_current(monkeypatch, capsys):
    _skip_unless_adapters()
    monkeypatch.chdir(ROOT)
    code = main(["matrix", "--check", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0, (captured.out + captured.err)[-4000:]


def test_matrix_lists_every_cpu_adapter():
    text = (ROOT / "conformance" / "matrix.md").read_text(encoding="utf-8")
    for name in set(BUILTIN) - GPU_ONLY - {"reference"}:
        assert f"| {name} |" in text, name
    for name in GPU_ONLY:
        assert f"**{name}**" in text, name


HEAD = ("# Conformance matrix\n\nLegend.\n\n"
        "| library | version | function | float64 | float32 | float16 |\n"
        "| --- | --- | --- | --- | --- | --- |\n")
ROWS = {
    ("lib", "`apply_rope`"): ["diverges (0.4)", "partial (0.43), lenient", "partial (0.61), lenient"],
    ("lib", "`alibi_slopes`"): ["", "pass (6.4e-10)", "pass (0)"],
    ("lib", "`ntk_scaled_frequencies`"): ["", "diverges (5.2e+06)", "diverges"],
    ("other", "`t5_relative_bucket`"): ["", "pass (0)", "pass (0)"],
}
TAIL = ("\n## Divergences\n\n- **lib** `apply_rope.invalid.negative_position` [float64]: no check\n"
        "\n## Not run here\n\n- **gpu_lib**: requires CUDA\n")


def _matrix(changes=None, versions=None, rows=None, tail=TAIL):
    rows = dict(ROWS if rows is None else rows)
    for (library, function, column), text in (changes or {}).items():
        cells = list(rows[(library, function)])
        cells[column] = text
        rows[(library, function)] = cells
    versions = {"lib": "1.0", "other": "2.0", **(versions or {})}
    lines = [f"| {library} | {versions[library]} | {function} | " + " | ".join(cells) + " |"
             for (library, function), cells in sorted(rows.items())]
    return HEAD + "\n".join(lines) + "\n" + tail


def test_compare_identical_and_committed_matrix():
    assert compare_matrices(_matrix(), _matrix()) == []
    text = (ROOT / "conformance" / "matrix.md").read_text(encoding="utf-8")
    assert compare_matrices(text, text) == []


@pytest.mark.parametrize("cell, column, text", [
    (("lib", "`apply_rope`"), 0, "diverges (0.44)"),               # 0.4 on one CPU, 0.44 on another
    (("lib", "`apply_rope`"), 1, "partial (0.58), lenient"),       # within a factor 1.5
    (("lib", "`alibi_slopes`"), 1, "pass (0)"),                     # both far below the budget
    (("lib", "`alibi_slopes`"), 2, "pass (0.0099)"),
    (("lib", "`ntk_scaled_frequencies`"), 1, "diverges (4.1e+06)"),
])
def test_compare_shares_within_slack(cell, column, text):
    assert compare_matrices(_matrix(), _matrix({(*cell, column): text})) == []


@pytest.mark.parametrize("cell, column, text", [
    (("lib", "`apply_rope`"), 0, "diverges (0.61)"),
    (("lib", "`apply_rope`"), 1, "partial (0.28), lenient"),
    (("lib", "`alibi_slopes`"), 2, "pass (0.016)"),
    (("lib", "`ntk_scaled_frequencies`"), 1, "diverges (8e+06)"),
])
def test_compare_shares_outside_slack(cell, column, text):
    differences = compare_matrices(_matrix(), _matrix({(*cell, column): text}))
    dtype = ["float64", "float32", "float16"][column]
    assert len(differences) == 1, differences
    assert differences[0].startswith(f"{cell[0]} {cell[1]} {dtype}: share differs by more than a factor 1.5")
    assert repr(text) in differences[0] and repr(ROWS[cell][column]) in differences[0]


def test_shares_agree_rule():
    assert shares_agree(None, None) and not shares_agree(None, 0.0) and not shares_agree(0.5, None)
    assert shares_agree(0.0, SHARE_FLOOR) and not shares_agree(0.0, SHARE_FLOOR * SHARE_FACTOR * 1.01)
    assert shares_agree(0.6, 0.6 * SHARE_FACTOR) and not shares_agree(0.6, 0.6 * SHARE_FACTOR * 1.01)
    assert shares_agree(1e-9, 1e-3)


@pytest.mark.parametrize("column, new, shown", [
    (1, "partial (0.43)", "'partial (0.43)'"),
    (0, "FAIL (0.4)", "'FAIL (0.4)'"),
    (2, "pass (0.61), lenient", "'pass (0.61), lenient'"),
    (2, "", "(empty)"),
])
def test_compare_status_word_changes(column, new, shown):
    differences = compare_matrices(_matrix(), _matrix({("lib", "`apply_rope`", column): new}))
    dtype = ["float64", "float32", "float16"][column]
    old = ROWS[("lib", "`apply_rope`")][column]
    assert differences == [f"lib `apply_rope` {dtype}: status differs: committed {old!r}, fresh {shown}"]


def test_compare_share_near_one_flipping_status():
    committed = _matrix({("lib", "`apply_rope`", 0): "diverges (0.98)"})
    fresh = _matrix({("lib", "`apply_rope`", 0): "FAIL (1)"})
    assert compare_matrices(committed, fresh) == [
        "lib `apply_rope` float64: status differs: committed 'diverges (0.98)', fresh 'FAIL (1)'"]


def test_compare_share_printed_in_only_one():
    differences = compare_matrices(_matrix(), _matrix({("lib", "`ntk_scaled_frequencies`", 2): "diverges (3)"}))
    assert differences == ["lib `ntk_scaled_frequencies` float16: share in only one: "
                           "committed 'diverges', fresh 'diverges (3)'"]


def test_compare_missing_and_extra_rows():
    rows = dict(ROWS)
    del rows[("other", "`t5_relative_bucket`")]
    rows[("lib", "`rope_angles`")] = ["", "pass (0.27)", "pass (0.27)"]
    differences = compare_matrices(_matrix(), _matrix(rows=rows))
    assert differences == ["lib `rope_angles`: row only in the fresh run (version 1.0)",
                           "other `t5_relative_bucket`: row only in the committed matrix (version 2.0)"]


def test_compare_library_version_change():
    differences = compare_matrices(_matrix(), _matrix(versions={"other": "2.1"}))
    assert differences == ["library other: version 2.0 in the committed matrix, 2.1 in the fresh run"]


def test_compare_dtype_columns_change():
    fresh = _matrix().replace("| float16 |\n", "| bfloat16 |\n", 1)
    assert compare_matrices(_matrix(), fresh) == [
        "dtype columns differ: committed float64, float32, float16; fresh float64, float32, bfloat16"]


def test_compare_text_outside_the_table():
    fresh = _matrix(tail=TAIL.replace("[float64]", "[float64, float32]").replace("requires CUDA", "needs a GPU"))
    differences = compare_matrices(_matrix(), fresh)
    assert len(differences) == 4, differences
    assert differences[0].startswith("section 'Divergences': only in the committed matrix: - **lib**")
    assert differences[1].startswith("section 'Divergences': only in the fresh run: - **lib**")
    assert differences[1].endswith("[float64, float32]: no check")
    assert differences[3] == "section 'Not run here': only in the fresh run: - **gpu_lib**: needs a GPU"
    assert compare_matrices(_matrix(), _matrix(tail=TAIL.split("## Not run")[0])) == [
        "section 'Not run here': only in the committed matrix"]
    legend = compare_matrices(_matrix(), _matrix().replace("Legend.", "Another legend."))
    assert legend == ["text above the table: only in the committed matrix: Legend.",
                      "text above the table: only in the fresh run: Another legend."]


@pytest.mark.parametrize("committed, expected", [
    ("", "committed matrix: no table"),
    ("# Conformance matrix\n\nno table here\n", "committed matrix: no table"),
    (_matrix().replace("| library | version | function |", "| lib | ver | fn |"),
     "committed matrix, line 5: table header"),
    (_matrix().replace("| --- | --- | --- | --- | --- | --- |\n", ""),
     "committed matrix, line 6: expected the separator"),
    (_matrix().replace("| pass (6.4e-10) |", "|"), "committed matrix, line 7: row has 5 columns, the header 6"),
    (_matrix().replace("pass (6.4e-10)", "pass (6.4e-10"), "'(6.4e-10' is not a status word"),
    (_matrix().replace("pass (6.4e-10)", "pass (tiny)"), "share 'tiny' is not a number"),
    (_matrix().replace("pass (6.4e-10)", "pass (0.1) (0.2)"), "has 2 parenthesised shares"),
    (_matrix().replace("pass (6.4e-10)", "pass (nan)"), "is not a finite number >= 0"),
    (_matrix() + "| lib | 1.0 | `apply_rope` | | | |\n", "a second table"),
    (_matrix().replace("`apply_rope`", "`alibi_slopes`"), "second row for lib `alibi_slopes`"),
])
def test_compare_malformed_committed_matrix(committed, expected):
    differences = compare_matrices(committed, _matrix())
    assert differences, committed
    assert any(expected in line for line in differences), differences
    assert all(line.startswith("committed matrix") for line in differences), differences


def _fake_render(monkeypatch, text):
    monkeypatch.setattr(matrix_module, "adapter_runs", lambda *args, **kwargs: [])
    monkeypatch.setattr(matrix_module, "render_matrix", lambda runs: text)


def test_cli_check_passes_within_slack(monkeypatch, tmp_path, capsys):
    out = tmp_path / "matrix.md"
    out.write_text(_matrix(), encoding="utf-8")
    _fake_render(monkeypatch, _matrix({("lib", "`apply_rope`", 0): "diverges (0.44)"}))
    assert main(["matrix", "--check", "--no-progress", "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"{out} is current\n"


def test_cli_check_reports_each_cell(monkeypatch, tmp_path, capsys):
    out = tmp_path / "matrix.md"
    out.write_text(_matrix(), encoding="utf-8")
    _fake_render(monkeypatch, _matrix({("lib", "`apply_rope`", 0): "FAIL (1.1)",
                                       ("other", "`t5_relative_bucket`", 2): "pass (0.5)"}))
    assert main(["matrix", "--check", "--no-progress", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "differs from a fresh run in 2 place(s)" in err
    assert "lib `apply_rope` float64: status differs: committed 'diverges (0.4)', fresh 'FAIL (1.1)'" in err
    assert "other `t5_relative_bucket` float16: share differs" in err
    assert f"is not current; run 'posref matrix --out {out}'" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("content", [None, "not a matrix\n", b"\xff\xfe"])
def test_cli_check_unreadable_or_malformed_file(monkeypatch, tmp_path, capsys, content):
    out = tmp_path / "matrix.md"
    if isinstance(content, str):
        out.write_text(content, encoding="utf-8")
    elif content is not None:
        out.write_bytes(content)
    _fake_render(monkeypatch, _matrix())
    assert main(["matrix", "--check", "--no-progress", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"is not current; run 'posref matrix --out {out}'" in err
    assert ("cannot be read" if content != "not a matrix\n" else "committed matrix: no table") in err


def test_cli_writes_the_render(monkeypatch, tmp_path, capsys):
    out = tmp_path / "matrix.md"
    _fake_render(monkeypatch, _matrix())
    assert main(["matrix", "--no-progress", "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == _matrix()
