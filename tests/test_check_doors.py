"""One engine, two doors: ``posref check`` and the pytest plugin give the same verdict on every case."""

from __future__ import annotations

import json
import os
import pathlib

import pytest

from posref.cli import main
from posref.conformance import check

TESTS_DIR = pathlib.Path(__file__).resolve().parent
ADAPTER = "doors.mixed_adapter"
FUNCTIONS = ("--function", "rope_frequencies", "--function", "alibi_slopes")

#: The pytest outcome each status of posref check must have (without --strict / with it).
OUTCOME = {"pass": "passed", "fail": "failed", "crash": "failed", "timeout": "failed", "wrong_error": "failed",
           "error": "failed", "lenient": "passed", "fixed": "passed", "known": "skipped",
           "not_implemented": "skipped", "skipped": "skipped"}
STRICT = dict(OUTCOME, lenient="failed", fixed="failed", known="failed")


@pytest.fixture
def known_file(tmp_path):
    path = tmp_path / "known.txt"
    path.write_text("rope_frequencies.d80.b10000  # base 1000 on purpose, say\n"
                    "rope_frequencies.d128.b10000  # listed, but right: reported fixed\n")
    return path


def cli_statuses(tmp_path, capfd, *extra) -> tuple[int, dict[str, str]]:
    report = tmp_path / "report.json"
    code = main(["check", "--adapter", ADAPTER, "--dtype", "float64", *FUNCTIONS, "--max-examples", "0",
                 "--no-progress", "--report", str(report), *extra])
    capfd.readouterr()
    return code, {r["case_id"]: r["status"] for r in json.loads(report.read_text())["results"]}


def plugin_outcomes(pytester, *extra) -> tuple[int, dict[str, str]]:
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q", "--posref-adapter", ADAPTER,
                                          "--posref-dtype", "float64", "--posref-function", "rope_frequencies",
                                          "--posref-function", "alibi_slopes", "--posref-max-examples", "0",
                                          "-W", "default::posref.conformance.plugin.PosrefLenientWarning", *extra)
    outcomes = {}
    for report in result.reprec.getreports("pytest_runtest_logreport"):
        case_id = report.nodeid.rsplit("::", 1)[-1]
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            outcomes[case_id] = report.outcome
    return int(result.ret), outcomes


@pytest.mark.parametrize("strict", [False, True])
def test_cli_and_plugin_agree_case_by_case(tmp_path, capfd, pytester, monkeypatch, known_file, strict):
    monkeypatch.syspath_prepend(str(TESTS_DIR))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")])))
    flags = ["--strict"] if strict else []
    code, statuses = cli_statuses(tmp_path, capfd, "--known", str(known_file), *flags)
    assert {"pass", "fail", "crash", "lenient", "wrong_error", "known", "fixed", "not_implemented"} <= set(
        statuses.values()), statuses
    plugin_code, outcomes = plugin_outcomes(pytester, "--posref-known", str(known_file),
                                            *(["--posref-strict"] if strict else []))
    expected = {case_id: (STRICT if strict else OUTCOME)[status] for case_id, status in statuses.items()}
    assert outcomes == expected
    assert code == 1 and plugin_code == 1  # the wrong numbers of dim 64 and the crash of dim 2 fail both doors


def test_the_engine_is_what_both_doors_call(tmp_path, capfd, monkeypatch, known_file):
    monkeypatch.syspath_prepend(str(TESTS_DIR))
    run = check(ADAPTER, dtype="float64", functions=["rope_frequencies", "alibi_slopes"], max_examples=0,
                known={"rope_frequencies.d80.b10000": "on purpose"})
    _, statuses = cli_statuses(tmp_path, capfd, "--known", str(known_file))
    engine = {r.case_id: r.status for r in run.results}
    engine["rope_frequencies.d128.b10000"] = "fixed"  # listed only in the CLI's file
    assert engine == statuses
    assert run.exit_code() == 1 and run.exit_code(strict=True) == 1
    known = run.of_status("known")[0]
    assert known.observed == "fail" and known.reason == "on purpose"


def test_a_wrong_base_is_diagnosed(monkeypatch):
    monkeypatch.syspath_prepend(str(TESTS_DIR))
    run = check(ADAPTER, dtype="float64", cases=["rope_frequencies.d80.b10000"], known=False)
    (result,) = run.results
    assert result.status == "fail"
    assert result.diagnosis is not None and result.diagnosis["overrides"] == {"base": 1000.0}


def test_both_doors_plan_the_same_way(tmp_path):
    """``plan_check`` is what the CLI and the plugin call: the built-in list first, a file's reason wins."""
    from posref.conformance.engine import resolve_known
    from posref.conformance.known import known_divergences
    from posref.conformance.session import UsageError, plan_check

    builtin = known_divergences("vllm", "float32")
    case_id = next(iter(builtin))
    path = tmp_path / "known.txt"
    path.write_text(f"{case_id}  # my reason\n")
    plan = plan_check("vllm", dtype="float32", known_files=[str(path)])
    assert plan.known == dict(builtin, **{case_id: "my reason"})
    assert list(plan.known) == list(builtin)
    assert plan_check("vllm", dtype="float32", builtin_known=False).known == {}
    assert plan_check(ADAPTER, dtype="float32").known == {}  # not a built-in adapter: no list of its own
    assert resolve_known("posref.adapters.vllm", True, dtype="float32") == builtin
    assert resolve_known("vllm", ["a", "b"]) == {"a": "", "b": ""}
    with pytest.raises(TypeError, match="dtype is required"):
        resolve_known("vllm", True)
    path.write_text("no.such.case  # reason\n")
    with pytest.raises(UsageError, match=r"^--posref-known .* names 1 id\(s\) that are no case: no\.such\.case"):
        plan_check("vllm", dtype="float32", known_files=[str(path)], known_option="--posref-known")
    path.write_text("fuzz.apply_rope  # the differential cases of one function\n")
    listed = plan_check("vllm", dtype="float32", known_files=[str(path)]).known
    assert listed["fuzz.apply_rope"] == "the differential cases of one function"
    path.write_text("fuzz.apply_ropes  # no such function\n")
    with pytest.raises(UsageError, match=r"names 1 id\(s\) that are no case: fuzz\.apply_ropes \(did you mean "
                                         r"fuzz\.apply_rope\?\)"):
        plan_check("vllm", dtype="float32", known_files=[str(path)])


@pytest.mark.parametrize("strict", [False, True])
def test_a_known_divergence_found_again_by_fuzzing_is_known_in_both_doors(tmp_path, capfd, pytester, monkeypatch,
                                                                          strict):
    monkeypatch.syspath_prepend(str(TESTS_DIR))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")])))
    known = tmp_path / "known.txt"
    known.write_text("yarn_attention_factor.mscale_only  # mscale is used only with mscale_all_dim\n")
    flags = ["--strict"] if strict else []
    report = tmp_path / "report.json"
    code = main(["check", "--adapter", "doors.yarn_adapter", "--dtype", "float64", "--function",
                 "yarn_attention_factor", "--max-examples", "30", "--no-progress", "--known", str(known),
                 "--report", str(report), *flags])
    capfd.readouterr()
    statuses = {r["case_id"]: r["status"] for r in json.loads(report.read_text())["results"]}
    assert statuses["yarn_attention_factor.mscale_only"] == "known"
    assert statuses["fuzz.yarn_attention_factor"] == "known"
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q", "--posref-adapter", "doors.yarn_adapter",
                                          "--posref-dtype", "float64", "--posref-function", "yarn_attention_factor",
                                          "--posref-max-examples", "30", "--posref-known", str(known),
                                          *(["--posref-strict"] if strict else []))
    outcomes = {r.nodeid.rsplit("::", 1)[-1]: r.outcome for r in result.reprec.getreports("pytest_runtest_logreport")
                if r.when == "call"}
    expected = {case_id: (STRICT if strict else OUTCOME)[status] for case_id, status in statuses.items()}
    assert outcomes == expected
    assert code == int(result.ret) == (1 if strict else 0)
