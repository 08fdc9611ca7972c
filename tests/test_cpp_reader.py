"""The C++ example reads golden cases and judges its own outputs with their budgets.

``docs/examples/read_case.cpp`` is compiled with ``g++ -std=c++17``.  It
computes RoPE in float32 the way libraries do (and ``rope_angles`` in double
precision) from the committed corpus in ``conformance/golden`` and judges the
result with the budgets stored in each case, by the rule of
:func:`posref.conformance.compare.compare`.  Its verdict, worst element and
share of the budget must be those posref's own runner gives for the same
outputs; a deliberately wrong base must fail, and a damaged file must be
refused with exit status 2.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from posref.conformance.adapter import Adapter
from posref.conformance.compare import compare
from posref.conformance.runner import case_arrays, run_case
from posref.golden import decode_safetensors, read_case, write_corpus
from posref.golden.registry import CaseSpec, Values, build_case

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO / "docs" / "examples" / "read_case.cpp"
CORPUS = REPO / "conformance" / "golden"
COMPILER = shutil.which("g++")
pytestmark = pytest.mark.skipif(COMPILER is None, reason="g++ is not installed, so the C++ example cannot be built")

HARD = "apply_rope.half.hard_positions"
WORST = re.compile(r"^worst element \(([\d, ]*)\): actual (\S+), expected (\S+), .*budget (\S+), share (\S+)$", re.M)


@pytest.fixture(scope="module")
def reader(tmp_path_factory):
    out = tmp_path_factory.mktemp("cpp") / "read_case"
    result = subprocess.run(
        [COMPILER, "-std=c++17", "-O2", "-Wall", "-Wextra", "-pedantic", "-o", str(out), str(SOURCE)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr  # no warnings
    return out


@pytest.fixture(scope="module")
def manifest():
    return {entry["id"]: entry for entry in json.loads((CORPUS / "manifest.json").read_text())["cases"]}


def case_file(case_id: str, root: Path = CORPUS) -> Path:
    return root / "cases" / f"{case_id}.safetensors"


def run(reader, path, *args):
    return subprocess.run([str(reader), str(path), *map(str, args)], capture_output=True, text=True, timeout=120)


def judge_rope(reader, manifest, case_id, *extra):
    params = manifest[case_id]["params"]
    assert set(params) <= {"base", "layout"}, params  # all the example's RoPE supports
    base = params.get("base", 10_000.0)
    return run(reader, case_file(case_id), "--judge-rope", repr(base), params.get("layout", "half"), *extra)


def worst_of(stdout: str):
    """(index, actual, expected, budget, share) of the worst element the program printed."""
    found = WORST.findall(stdout)
    assert len(found) == 1, stdout
    index, *numbers = found[0]
    return (tuple(int(i) for i in index.split(",") if i.strip()), *(float(n) for n in numbers))


@pytest.mark.parametrize(
    ("case_id", "dtype"),
    [
        (HARD, "float32"),
        ("apply_rope.interleaved.hard_positions", "float32"),
        ("apply_rope.half.short", "float32"),
        ("apply_rope.half.batch_positions", "float32"),  # positions (B, 1, T) broadcast over heads
        (HARD, "float16"),
        ("apply_rope.interleaved.short", "bfloat16"),
    ],
)
def test_a_float32_rope_passes(reader, manifest, case_id, dtype):
    result = judge_rope(reader, manifest, case_id, "--dtype", dtype)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"judging output in {dtype} against {dtype}.outputs.output with budgets.{dtype}.output" in result.stdout
    assert "PASS: every |actual - expected| <= budget" in result.stdout
    assert 0 < worst_of(result.stdout)[-1] <= 1


@pytest.mark.parametrize("wrong_base", [505_000.0, 10_000.0])  # 1.01 times the case's 500000, a common default
def test_the_wrong_base_fails(reader, manifest, wrong_base):
    result = judge_rope(reader, manifest, HARD, "--broken-base", repr(wrong_base))
    assert result.returncode == 1, result.stdout + result.stderr
    index, actual, expected, budget, share = worst_of(result.stdout)
    assert len(index) == 3 and share > 1
    assert "deliberately broken: the case's base is 500000" in result.stdout
    failure = re.search(r"^FAIL: error (\S+) at index \(([\d, ]+)\) exceeds the budget (\S+) \((\S+)x\); "
                        r"(\d+) of 2560 elements exceed their budget$", result.stdout, re.M)
    assert failure, result.stdout
    assert tuple(int(i) for i in failure[2].split(",")) == index
    assert float(failure[1]) == pytest.approx(abs(actual - expected), rel=1e-6)
    assert (float(failure[3]), float(failure[4])) == (budget, share)


class _Stub:
    """An adapter whose apply_rope returns what the C++ program computed."""

    def __init__(self, output):
        self.output = output
        self.calls = []

    def apply_rope(self, x, positions, /, **params):
        self.calls.append((x, positions, params))
        return self.output


def posref_verdict(case, output, dtype):
    """posref's runner and compare() on ``output`` as the implementation's answer."""
    stub = _Stub(output)
    adapter = Adapter(target=stub, name="read_case.cpp", version="0", dtype=dtype, device="cpu", source="cpp")
    result = run_case(adapter, case)
    inputs, expected = case_arrays(case, dtype)
    direct = compare(output, expected["output"], case.budgets[dtype]["output"], dtype)
    assert stub.calls and np.array_equal(stub.calls[0][0], inputs["x"])  # it saw the same inputs
    return result, direct


@pytest.mark.parametrize(
    ("case_id", "dtype", "broken"),
    [(HARD, "float32", None), (HARD, "float32", 505_000.0), (HARD, "float32", 10_000.0),
     ("apply_rope.interleaved.hard_positions", "float32", None), (HARD, "bfloat16", None)],
)
def test_the_verdict_agrees_with_posref(reader, manifest, tmp_path, case_id, dtype, broken):
    out = tmp_path / "output.safetensors"
    extra = ["--write-output", out, "--dtype", dtype] + ([] if broken is None else ["--broken-base", repr(broken)])
    result = judge_rope(reader, manifest, case_id, *extra)
    assert result.returncode in (0, 1), result.stderr
    tensors, _ = decode_safetensors(out.read_bytes())
    output = tensors["output"]
    assert output.dtype == np.float64
    if dtype == "float32":
        assert np.array_equal(output.astype(np.float32).astype(np.float64), output)  # float32 values
    case = read_case(CORPUS, case_id)
    runner, direct = posref_verdict(case, output, dtype)
    assert runner.status == ("pass" if result.returncode == 0 else "fail")
    assert direct.passed == (result.returncode == 0) == (broken is None)
    index, actual, expected, budget, share = worst_of(result.stdout)
    for comparison in (runner.outputs["output"], direct.as_dict()):
        assert tuple(comparison["worst_index"]) == index
        assert comparison["budget_share"] == pytest.approx(share, rel=1e-6)
        assert comparison["actual_at_worst"] == pytest.approx(actual, rel=1e-8)
        assert comparison["expected_at_worst"] == pytest.approx(expected, rel=1e-8)
        assert comparison["budget_at_worst"] == pytest.approx(budget, rel=1e-8)


def test_a_non_finite_output_fails_as_in_posref(reader, tmp_path):
    # In float16, x = (60000, 60000) turned by 1 radian gives 60000 (cos 1 + sin 1) = 82907 > 65504:
    # the float16 rotation overflows to inf where the spec's value is finite.
    spec = CaseSpec(id="cpp.rope.overflow", function="apply_rope", tolerance="rope",
                    inputs={"x": Values([[60000.0, 60000.0]]), "positions": Values([1], "int64")})
    write_corpus([build_case(spec)], tmp_path / "corpus")
    out = tmp_path / "output.safetensors"
    result = run(reader, case_file("cpp.rope.overflow", tmp_path / "corpus"),
                 "--judge-rope", "10000", "half", "--dtype", "float16", "--write-output", out)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL: non-finite output inf at index (0, 1), expected 8290" in result.stdout
    assert worst_of(result.stdout)[0] == (0, 1) and math.isinf(worst_of(result.stdout)[-1])
    output = decode_safetensors(out.read_bytes())[0]["output"]
    case = read_case(tmp_path / "corpus", "cpp.rope.overflow")
    runner, direct = posref_verdict(case, output, "float16")
    assert runner.status == "fail" and not direct.passed
    assert direct.reason.startswith("non-finite output inf at index (0, 1)")
    assert direct.worst_index == (0, 1) and math.isinf(direct.budget_share)


@pytest.mark.parametrize("dtype", ["float64", "float32", "bfloat16"])
def test_rope_angles_in_double_precision(reader, manifest, dtype):
    case_id = "rope_angles.hard_positions.d128.b500000"
    base = manifest[case_id]["params"]["base"]
    result = run(reader, case_file(case_id), "--base", repr(base), "--dtype", dtype)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"against outputs.output with budgets.{dtype}.output: 640 elements" in result.stdout
    assert result.stdout.rstrip().splitlines()[-1].startswith("PASS")
    wrong = run(reader, case_file(case_id), "--base", "10000", "--dtype", dtype)
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr
    assert "elements exceed their budget" in wrong.stdout


def test_rejects_damaged_files(reader, tmp_path):
    blob = case_file(HARD).read_bytes()
    (length,) = struct.unpack("<Q", blob[:8])
    entry = re.search(rb'"budgets\.float32\.output":\{[^}]*\}', blob)  # a tensor the program reads
    damaged = {
        "truncated": (blob[: len(blob) - 5], "truncated or corrupt file"),
        "short": (blob[:5], "file shorter than 8 bytes"),
        "huge header": (struct.pack("<Q", 2**40) + blob[8:], "header length 1099511627776 out of bounds"),
        "header cut": (blob[: 8 + length // 2], "out of bounds"),
        "trailing bytes": (blob + b"xx", "truncated or corrupt file"),
        "bad dtype": (blob[: entry.start()] + entry[0].replace(b'"F32"', b'"X32"') + blob[entry.end():],
                      "unsupported dtype X32"),
    }
    for name, (data, message) in damaged.items():
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(data)
        result = run(reader, path, "--judge-rope", "500000", "half")
        assert result.returncode == 2, (name, result.stdout, result.stderr)
        assert result.stderr.startswith("read_case: ") and message in result.stderr, (name, result.stderr)
        assert "PASS" not in result.stdout and "FAIL" not in result.stdout
    result = run(reader, tmp_path / "missing.safetensors", "--judge-rope", "500000", "half")
    assert (result.returncode, result.stderr) == (2, f"read_case: cannot open {tmp_path / 'missing.safetensors'}\n")


def test_a_case_without_budgets_is_refused(reader):
    result = run(reader, case_file("apply_rope.invalid.odd_head_dim"), "--judge-rope", "10000", "half")
    assert result.returncode == 2
    assert result.stderr.startswith("read_case: the case has no budgets.float32.output (an error case")


def test_usage_errors(reader):
    assert subprocess.run([str(reader)], capture_output=True, timeout=60).returncode == 2
    path = case_file(HARD)
    for args, message in [
        (["--bogus", "1"], "unknown option --bogus"),
        (["--judge-rope", "500000"], "option --judge-rope needs a value"),
        (["--judge-rope", "500000", "neox"], "layout must be half or interleaved, got neox"),
        (["--judge-rope", "abc", "half"], "base must be a number greater than 1, got abc"),
        (["--judge-rope", "500000", "half", "--dtype", "float8"], "unknown dtype float8"),
        (["--judge-rope", "500000", "half", "--dtype", "float64"], "--judge-rope computes in float32 or lower"),
        (["--broken-base", "10000"], "--broken-base needs --judge-rope"),
    ]:
        result = run(reader, path, *args)
        assert result.returncode == 2, args
        assert result.stderr.startswith(f"read_case: {message}"), (args, result.stderr)
