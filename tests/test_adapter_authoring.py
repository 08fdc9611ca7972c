"""Writing an adapter without traps: a file path works, the current directory imports, the summary fits."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

from posref.cli import build_parser, main
from posref.conformance.adapter import Adapter
from posref.conformance.report import to_markdown
from posref.conformance.runner import CaseResult

ADAPTER = textwrap.dedent('''
    import numpy as np
    import my_helpers

    ADAPTER_NAME = "filed"
    ADAPTER_DTYPES = ("float64",)
    ADAPTER_FUNCTIONS = ("rope_frequencies",)

    def rope_frequencies(dim, /, *, base=10_000.0):
        return my_helpers.frequencies(int(dim), base)
''')
HELPERS = textwrap.dedent('''
    import numpy as np

    def frequencies(dim, base):
        if dim % 2 or dim < 2 or base <= 1:
            raise ValueError(f"dim must be even and positive and base > 1, got dim={dim}, base={base}")
        return base ** (-np.arange(0, dim, 2, dtype=np.float64) / dim)
''')


@pytest.fixture
def adapter_dir(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "my_adapter.py").write_text(ADAPTER)
    (folder / "my_helpers.py").write_text(HELPERS)
    return folder


def run(capfd, tmp_path, *args):
    report = tmp_path / "report.json"
    code = main(["check", *args, "--function", "rope_frequencies", "--dtype", "float64", "--max-examples", "0",
                 "--no-progress", "--report", str(report)])
    out, err = capfd.readouterr()
    return code, out, err, json.loads(report.read_text())


@pytest.mark.parametrize("in_process", [False, True])
def test_an_adapter_file_path_works_with_its_neighbours(capfd, tmp_path, monkeypatch, adapter_dir, in_process):
    monkeypatch.chdir(tmp_path)  # not the adapter's folder: its helper module imports all the same
    flags = ["--in-process"] if in_process else []
    code, out, err, document = run(capfd, tmp_path, "--adapter", str(adapter_dir / "my_adapter.py"), *flags)
    assert code == 0, out + err
    assert document["adapter"]["name"] == "filed"
    assert {r["status"] for r in document["results"]} == {"pass"}


def test_a_module_in_the_current_directory_imports_without_pythonpath(capfd, tmp_path, monkeypatch, adapter_dir):
    monkeypatch.chdir(adapter_dir)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    code, out, err, document = run(capfd, tmp_path, "--adapter", "my_adapter")
    assert code == 0, out + err
    assert document["summary"]["pass"] == len(document["results"]) > 0


def test_a_missing_file_is_a_usage_error(capfd, tmp_path):
    code = main(["check", "--adapter", str(tmp_path / "nowhere.py"), "--max-examples", "0", "--no-progress"])
    out, err = capfd.readouterr()
    assert code == 2 and "nowhere.py is not a file" in err


def test_the_markdown_summary_lists_only_what_the_adapter_implements():
    adapter = Adapter(target=None, name="x", version="1", dtype="float32", device="cpu", source="x")
    results = [CaseResult("a.1", "apply_rope", "rope", "float32", "pass"),
               CaseResult("a.2", "apply_rope", "rope", "float32", "lenient"),
               CaseResult("a.3", "apply_rope", "rope", "float32", "not_implemented"),
               CaseResult("b.1", "alibi_bias", "alibi", "float32", "not_implemented")]
    text = to_markdown(adapter, results)
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert rows == ["| `apply_rope` | 3 | 1 | 0 | 0 | 1 | 0 | 1 | - | - |"]  # lenient and n/i apart
    assert "Not implemented by this adapter (1): `alibi_bias`." in text


def test_small_texts_say_what_is_true(capfd, tmp_path):
    parser = build_parser()
    helps = {a.dest: a.help for a in parser._subparsers._group_actions[0].choices["list"]._actions}
    assert helps["json"] == "print a JSON array with one object per function"
    assert main(["list", "--json"]) == 0
    assert isinstance(json.loads(capfd.readouterr().out), list)
    out = tmp_path / "corpus"
    assert main(["golden", "generate", "--out", str(out), "--family", "alibi", "--no-progress"]) == 0
    assert main(["golden", "generate", "--out", str(out), "--family", "t5", "--no-progress"]) == 2
    err = capfd.readouterr().err
    assert "pass --force to replace it" in err and "force=True" not in err
