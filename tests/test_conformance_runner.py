"""The runner isolates every case; the CLI and the pytest plugin use it the same way."""

import json
import sys
import textwrap
import time
import types

import numpy as np
import pytest

import posref
from posref.cli import main
from posref.conformance.adapter import Adapter, AdapterError, load_adapter, to_numpy
from posref.conformance.report import exit_code, summary, to_json, to_markdown
from posref.conformance.runner import case_arrays, run_case, run_cases
from posref.golden.cases import CASES
from posref.golden.registry import CaseSpec, Normal, Values, build_case, build_cases

ROTARY = build_case(CaseSpec(id="t.rotary", function="apply_rotary",
                             inputs={"x": Normal((4, 8)), "angles": Normal((4, 4))}, params={"layout": "half"},
                             tolerance="rotation"))
FREQ = build_case(CaseSpec(id="t.freq", function="rope_frequencies", inputs={}, params={"dim": 16},
                           tolerance="frequency"))
INVALID = build_case(CaseSpec(id="t.invalid", function="rope_frequencies", inputs={}, params={"dim": 7},
                              expect_error="ValueError", error_match="dim"))


def adapter_of(dtype="float32", **functions):
    return Adapter(target=types.SimpleNamespace(**functions), name="test", version="0", dtype=dtype,
                   device="cpu", source="test")


def correct_rotary_float32(x, angles, /, *, layout):
    x = np.asarray(x, dtype=np.float32)
    a = np.asarray(angles, dtype=np.float32)
    c, s = np.cos(a), np.sin(a)
    h = x.shape[-1] // 2
    return np.concatenate([x[..., :h] * c - x[..., h:] * s, x[..., h:] * c + x[..., :h] * s], axis=-1)


def test_a_correct_float32_implementation_passes_and_reports_its_margin():
    result = run_case(adapter_of(apply_rotary=correct_rotary_float32), ROTARY)
    assert result.status == "pass", result.message
    out = result.outputs["output"]
    assert 0 < out["budget_share"] <= 1 and out["max_abs_error"] > 0 and out["max_ulp"] >= 0


def test_the_implementation_receives_inputs_in_its_own_dtype():
    seen = {}

    def spy(x, angles, /, *, layout):
        seen["dtypes"] = (x.dtype, angles.dtype)
        return correct_rotary_float32(x, angles, layout=layout)

    run_case(adapter_of("bfloat16", apply_rotary=spy), ROTARY)
    assert [d.name for d in seen["dtypes"]] == ["bfloat16", "bfloat16"]
    inputs, expected = case_arrays(ROTARY, "bfloat16")
    np.testing.assert_array_equal(expected["output"], ROTARY.rounded["bfloat16"]["outputs.output"])


@pytest.mark.parametrize("implementation, status, words", [
    (lambda x, angles, /, *, layout: correct_rotary_float32(x, angles, layout=layout)[..., ::-1], "fail", "exceeds"),
    (lambda x, angles, /, *, layout: np.zeros((4, 7)), "fail", "shape (4, 7)"),
    (lambda x, angles, /, *, layout: np.full((4, 8), np.nan), "fail", "non-finite"),
    (lambda x, angles, /, *, layout: 1 / 0, "crash", "ZeroDivisionError"),
    (lambda x, angles, /, *, layout: object(), "crash", "cannot be read"),
    (lambda x, angles, /, *, layout: (_ for _ in ()).throw(NotImplementedError("no half layout")),
     "not_implemented", "no half layout"),
])
def test_every_kind_of_bad_answer_is_recorded(implementation, status, words):
    result = run_case(adapter_of(apply_rotary=implementation), ROTARY)
    assert result.status == status and words in result.message
    assert result.repro == "posref check --adapter test --dtype float32 --case t.rotary"


def test_a_hanging_case_times_out_and_the_rest_still_run():
    def hang(dim, /, *, base=10_000.0):
        time.sleep(5)

    results = run_cases(adapter_of(apply_rotary=correct_rotary_float32, rope_frequencies=hang),
                        [FREQ, ROTARY], timeout=0.2)
    assert [r.status for r in results] == ["timeout", "pass"]


def test_missing_functions_are_not_implemented_not_failed():
    results = run_cases(adapter_of(), [ROTARY, FREQ])
    assert {r.status for r in results} == {"not_implemented"}
    assert exit_code(results) == 0


def test_invalid_inputs_must_be_rejected():
    def lenient(dim, /, *, base=10_000.0):
        return base ** (-np.arange(dim // 2) * 2.0 / dim)

    def strict(dim, /, *, base=10_000.0):
        raise ValueError("dim must be even")

    assert run_case(adapter_of(rope_frequencies=lenient), INVALID).status == "lenient"
    assert exit_code([run_case(adapter_of(rope_frequencies=lenient), INVALID)]) == 0
    assert exit_code([run_case(adapter_of(rope_frequencies=lenient), INVALID)], strict=True) == 1
    passed = run_case(adapter_of(rope_frequencies=strict), INVALID)
    assert passed.status == "pass" and "rejected with ValueError" in passed.message


def test_xfails_turn_failures_into_xfail_and_passes_into_xpass():
    broken = adapter_of(apply_rotary=lambda x, angles, /, *, layout: np.zeros((4, 8)))
    assert run_cases(broken, [ROTARY], xfails=["t.rotary"])[0].status == "known"
    good = adapter_of(apply_rotary=correct_rotary_float32)
    assert run_cases(good, [ROTARY], xfails=["t.rotary"])[0].status == "fixed"


def test_reports_are_complete_and_machine_readable():
    adapter = adapter_of(apply_rotary=lambda x, angles, /, *, layout: np.zeros((4, 8)))
    results = run_cases(adapter, [ROTARY, FREQ])
    document = json.loads(to_json(adapter, results))
    assert document["summary"]["fail"] == 1 and document["summary"]["not_implemented"] == 1
    assert document["adapter"]["dtype"] == "float32" and document["spec_version"] == posref.SPEC_VERSION
    markdown = to_markdown(adapter, results)
    assert "| `apply_rotary` | 1 | 0 | 1 | 0 |" in markdown and "reproduce: `posref check" in markdown
    assert summary(results)["pass"] == 0 and exit_code(results) == 1


def test_to_numpy_reads_dlpack_and_tuples():
    assert to_numpy((np.ones(2), np.zeros(1)))[1].shape == (1,)
    assert to_numpy([1.0, 2.0]).tolist() == [1.0, 2.0]
    assert [a.tolist() for a in to_numpy((20.0, 46.0))] == [20.0, 46.0]


def test_adapter_loading_errors_are_clear():
    with pytest.raises(AdapterError, match="importing 'no_such_module_xyz' failed"):
        load_adapter("no_such_module_xyz")
    with pytest.raises(AdapterError, match="has no attribute 'not_there'"):
        load_adapter("posref.adapters.reference:not_there")
    with pytest.raises(AdapterError, match="dtype 'float32' is not among them"):
        load_adapter("reference", dtype="float32")
    with pytest.raises(AdapterError, match="dtype must be one of"):
        load_adapter("reference", dtype="int8")
    with pytest.raises(AdapterError, match="device 'cuda' is not among them"):
        load_adapter("reference", dtype="float64", device="cuda")


@pytest.fixture
def user_adapter(tmp_path, monkeypatch):
    """A user's adapter module with a deliberate off-by-one position bug."""
    (tmp_path / "my_rope_adapter.py").write_text(textwrap.dedent('''
        import numpy as np
        import posref
        ADAPTER_NAME = "my-rope"
        ADAPTER_VERSION = "1.0"
        ADAPTER_DTYPES = ("float32",)

        def rope_frequencies(dim, /, *, base=10_000.0):
            if not isinstance(dim, int):
                raise TypeError("dim must be an integer")
            if dim % 2 or dim <= 0 or base <= 1:
                raise ValueError("dim must be even and positive, base above 1")
            return (1.0 / base ** (np.arange(0, dim, 2, dtype=np.float32) / dim)).astype(np.float32)

        def rope_angles(positions, dim, /, *, base=10_000.0):
            return (np.asarray(positions, np.float32)[..., None] + 1) * rope_frequencies(dim, base=base)
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    return "my_rope_adapter"


def test_cli_check_reports_failures_with_repro_and_writes_reports(user_adapter, tmp_path, capsys):
    code = main(["check", "--adapter", user_adapter, "--family", "rope", "--no-progress",
                 "--report", str(tmp_path / "r.json"), "--markdown", str(tmp_path / "r.md")])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL        rope_angles." in out and "reproduce: posref check --adapter my_rope_adapter" in out
    document = json.loads((tmp_path / "r.json").read_text())
    assert any(r["function"] == "rope_angles" and r["status"] == "fail" for r in document["results"])
    assert all(r["status"] == "pass" for r in document["results"] if r["function"] == "rope_frequencies")
    # the invalid rope_angles cases are rejected by the adapter's own frequency check
    assert "# Conformance of my-rope 1.0 (float32, cpu)" in (tmp_path / "r.md").read_text()


def test_cli_check_xfails_file_and_case_filter(user_adapter, tmp_path, capsys):
    xfails = tmp_path / "xfails.txt"
    ids = [c.id for c in build_cases(CASES, families=["rope"], dtypes=[])
           if c.function == "rope_angles" and c.expect_error is None]
    xfails.write_text("# known off-by-one\n" + "\n".join(ids) + "\n")
    assert main(["check", "--adapter", user_adapter, "--family", "rope", "--xfails", str(xfails),
                 "--max-examples", "0", "--no-progress"]) == 0
    assert main(["check", "--adapter", user_adapter, "--case", ids[0], "--no-progress"]) == 1
    assert "1 fail" in capsys.readouterr().out


def test_cli_check_adds_shrunk_differential_cases(user_adapter, capsys):
    assert main(["check", "--adapter", user_adapter, "--function", "rope_angles", "--max-examples", "20",
                 "--seed", "3", "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "hypothesis seed 3" in out and "FAIL        fuzz.rope_angles" in out


def test_cli_check_unknown_adapter_is_a_clean_error(capsys):
    assert main(["check", "--adapter", "no_such_module_xyz"]) == 2
    assert "posref check: adapter must be" in capsys.readouterr().err


def test_cli_adapters_lists_the_reference(capsys):
    assert main(["adapters", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["reference"]["available"] is True


def test_cli_golden_generate_verify_and_tamper(tmp_path, capsys):
    out = tmp_path / "corpus"
    assert main(["golden", "generate", "--out", str(out), "--family", "alibi", "--no-progress"]) == 0
    assert main(["golden", "verify", str(out), "--family", "alibi", "--no-progress"]) == 0
    assert "all current" in capsys.readouterr().out
    victim = sorted((out / "cases").iterdir())[0]
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0x01
    victim.write_bytes(bytes(data))
    assert main(["golden", "verify", str(out), "--no-progress"]) == 1
    assert "corrupt" in capsys.readouterr().out
    assert main(["golden", "generate", "--out", str(out), "--family", "t5", "--no-progress"]) == 2
    assert "force" in capsys.readouterr().err


def test_cli_matrix_check_detects_a_stale_matrix(tmp_path, capsys):
    target = tmp_path / "matrix.md"
    assert main(["matrix", "--out", str(target), "--adapter", "reference", "--no-progress"]) == 0
    assert main(["matrix", "--out", str(target), "--adapter", "reference", "--check", "--no-progress"]) == 0
    target.write_text(target.read_text().replace("pass", "FAIL", 1))
    assert main(["matrix", "--out", str(target), "--adapter", "reference", "--check", "--no-progress"]) == 1


def test_pytest_plugin_runs_cases_as_items(pytester, user_adapter):
    result = pytester.runpytest_subprocess("--posref-adapter", user_adapter, "--posref-family", "rope",
                                           "--posref-max-examples", "10", "-p", "no:cacheprovider", "-q")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) >= 1 and outcomes.get("passed", 0) >= 1 and outcomes.get("skipped", 0) >= 1
    result.stdout.fnmatch_lines(["*posref*rope_angles*", "*reproduce: posref check --adapter my_rope_adapter*"])
    result.stdout.fnmatch_lines(["*fuzz.rope_angles*"])
