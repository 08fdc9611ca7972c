"""The benchmark script runs end to end at tiny sizes and its checks hold.

No timing is asserted: the benchmarks inform, they do not gate.
"""

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"


def run_script(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "out.json"
    done = run_script("--quick", "--json", str(out))
    assert done.returncode == 0 and out.is_file(), done.stdout + done.stderr
    return done, json.loads(out.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("posref_benchmarks_run", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_run_exits_zero_and_prints_the_table(quick):
    done, _ = quick
    assert done.returncode == 0, done.stderr
    for title in ("(a) rotations", "(b) bias matrices", "(c) golden corpus", "(d) conformance runs",
                  "(e) peak memory", "(f) growth", "targets (measured / limit)", "checks"):
        assert title in done.stdout
    assert "machine:" in done.stdout and "numpy" in done.stdout
    assert "x copy" in done.stdout and "x copyto" in done.stdout  # both floors, named


def test_quick_run_checks_all_hold(quick):
    _, result = quick
    assert result["checks"], "no equality check ran"
    failed = [c for c in result["checks"] if not c["ok"]]
    assert not failed, failed
    names = {c["name"] for c in result["checks"]}
    assert {"alibi_bias rows match -m (i - j)", "t5_relative_bias rows match table[bucket(j - i)]",
            "t5_relative_bucket rows match bucket(j - i)", "fresh corpus verifies"} <= names
    assert any(name.startswith("kerple_log_bias rows") for name in names)


def test_quick_run_json_records_every_section(quick):
    _, result = quick
    assert result["quick"] is True and result["sections"] == ["a", "b", "c", "d", "e", "f"]
    assert {r["section"] for r in result["rows"]} == {"a", "b", "c", "d", "e", "f"}
    machine = result["machine"]
    assert machine["cpu"] and machine["cores"] >= 1 and machine["numpy"]
    keys = {t["key"] for t in result["targets"]}
    assert {"rope_vs_copy", "rotation_vs_copy", "bias_vs_copy", "golden_generate", "golden_verify",
            "conformance_total", "memory"} <= keys
    for target in result["targets"]:
        assert target["status"] in ("PASS", "MISS", "SKIP")
        if target["status"] != "SKIP":
            assert target["measured_over_limit"] == pytest.approx(target["measured"] / target["limit"])


def test_quick_run_rows_have_positive_times_and_floor_ratios(quick):
    _, result = quick
    timed = [r for r in result["rows"] if r["section"] in "ab" and r["seconds"] is not None]
    assert timed
    for row in timed:
        assert 0 < row["seconds"] <= row["median_seconds"]
        assert row["ratio_to_floor"] > 0 and row["ratio_to_buffer_floor"] > 0
    allocating = [r for r in timed if r["name"].endswith("(floor: allocating)")]
    buffered = [r for r in timed if r["name"].endswith("(floor: into a buffer)")]
    assert allocating and all(r["ratio_to_floor"] == pytest.approx(1.0) for r in allocating)
    assert buffered and all(r["ratio_to_buffer_floor"] == pytest.approx(1.0) for r in buffered)


def test_quick_run_names_every_rotation_and_peer(quick):
    _, result = quick
    names = [r["name"] for r in result["rows"] if r["section"] == "a"]
    for function in ("apply_rope", "apply_rotary", "apply_xpos", "apply_axial_rope", "apply_mrope", "apply_fope"):
        assert any(name.startswith(f"posref.{function}") for name in names), function
    for peer in ("onnx reference", "onnxruntime", "torch eager", "jax.jit"):
        rows = [r for r in result["rows"] if r["name"].startswith(peer)]
        assert rows and all(r["seconds"] is not None or r["note"].startswith("skipped:") for r in rows), peer


def test_quick_run_growth_rows_have_exponents(quick):
    _, result = quick
    rows = [r for r in result["rows"] if r["section"] == "f"]
    series = {r["growth"]["series"] for r in rows}
    assert series == {"apply_rope", "t5_relative_bias", "golden_apply_rope", "golden_t5_relative_bias"}
    for name in series:
        points = [r["growth"] for r in rows if r["growth"]["series"] == name]
        assert [p["size"] for p in points] == sorted(p["size"] for p in points)
        assert points[0]["time_exponent"] is None and all(p["time_exponent"] is not None for p in points[1:])
        assert all(p["output_bytes"] > 0 and p["peak_traced_bytes"] > 0 and p["seconds"] > 0 for p in points)


def test_quick_run_memory_ratios_are_peak_over_output(quick):
    _, result = quick
    rows = [r for r in result["rows"] if r["section"] == "e"]
    assert {r["case"] for r in rows} == {"apply_rope", "alibi_bias", "t5_relative_bias", "t5_relative_bucket",
                                        "largest_golden_case"}
    for row in rows:
        assert row["output_bytes"] > 0 and row["peak_bytes"] >= row["output_bytes"]
        assert row["memory_ratio"] == pytest.approx(row["peak_bytes"] / row["output_bytes"])


def test_strict_exit_code_follows_targets_and_checks():
    done = run_script("--quick", "--only", "c", "--strict")
    assert done.returncode == 0, done.stdout + done.stderr  # the quick corpus is far below its 20 s targets
    assert "golden generate" in done.stdout and "(a) rotations" not in done.stdout


def test_bad_section_is_rejected():
    done = run_script("--only", "z")
    assert done.returncode == 2
    assert "sections must be letters among a, b, c, d, e, f" in done.stderr


def test_target_status_rules(bench):
    report = bench.Report()
    report.target("rope_vs_copy", 3.0)
    report.target("rope_vs_onnx_float64", 1.0)
    report.target("memory", 3.5, note="x")
    report.target("golden_verify", None)
    assert [t["status"] for t in report.targets] == ["PASS", "MISS", "MISS", "SKIP"]
    assert report.targets[2]["measured_over_limit"] == pytest.approx(3.5 / 3.0)


def test_measure_takes_turns_and_keeps_last_results(bench):
    calls = []
    timed = bench.measure({"a": lambda: calls.append("a") or 1, "b": lambda: calls.append("b") or 2}, 3)
    assert calls == ["a", "b"] * 3
    assert timed["a"][2] == 1 and timed["b"][2] == 2
    assert all(best <= median for best, median, _ in timed.values())
    kept = bench.measure({"a": lambda: 1, "b": lambda: 2}, 2, keep={"b"})
    assert kept["a"][2] is None and kept["b"][2] == 2


def test_growth_exponent_is_the_log_slope(bench):
    small = {"output_bytes": 1000, "seconds": 1.0, "peak_traced_bytes": 10}
    large = {"output_bytes": 8000, "seconds": 8.0, "peak_traced_bytes": 40}
    assert bench._exponent(small, large, "seconds") == pytest.approx(1.0)
    assert bench._exponent(small, large, "peak_traced_bytes") == pytest.approx(2 / 3)


def test_growth_point_times_only_untraced_calls(bench, monkeypatch):
    import tracemalloc

    def slow_when_traced():
        time.sleep(0.05 if tracemalloc.is_tracing() else 0.001)
        return np.zeros(8)

    monkeypatch.setattr(bench, "_growth_call", lambda name, size: slow_when_traced)
    point = bench.growth_point("apply_rope", 8)
    assert point["traced_seconds"] >= 0.05
    assert point["seconds"] < 0.04  # the best untraced call, never the traced one
    assert point["calls"] >= 3 and point["output_bytes"] == 64
