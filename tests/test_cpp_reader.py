"""The C++ example reads a golden case and checks its own RoPE angles against it.

``docs/examples/read_case.cpp`` is compiled with ``g++ -std=c++17``; the
expected outputs in the corpus come from :func:`posref.rope_angles`, and
the program recomputes them independently in C++.  Deliberately wrong
expectations (positions off by one, another base) must make it fail.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from posref import rope_angles
from posref.golden import GoldenCase, write_corpus

SOURCE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "read_case.cpp"
COMPILER = shutil.which("g++")
pytestmark = pytest.mark.skipif(COMPILER is None, reason="g++ is not installed, so the C++ example cannot be built")

LOW = {"float32": np.float32, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16}


def rope_case(case_id, positions, dim, base, *, shift=0.0):
    """A rope_angles case; ``shift`` moves the expected positions (a wrong case)."""
    rounded = {}
    for name, dtype in LOW.items():
        low = positions.astype(dtype)
        rounded[name] = {
            "inputs.positions": low,
            "outputs.output": rope_angles(low.astype(np.float64) + shift, dim, base=base),
        }
    return GoldenCase(
        id=case_id,
        function="rope_angles",
        family="rope",
        params={"base": base},
        inputs={"positions": positions, "dim": np.array(dim, dtype=np.int64)},
        outputs={"output": rope_angles(positions + shift, dim, base=base)},
        rounded=rounded,
        tolerance="angles",
        description="RoPE angles read by the C++ example",
    )


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
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("golden") / "corpus"
    positions = np.array([0.0, 1.0, 2.0, 7.0, 4097.0, 60001.0])
    cases = [
        rope_case("rope.angles.line", positions, 8, 10_000.0),
        rope_case("rope.angles.grid", np.arange(12.0).reshape(3, 4) * 5.0, 6, 500.0),
        rope_case("rope.angles.off_by_one", positions, 8, 10_000.0, shift=1.0),
    ]
    write_corpus(cases, root)
    return root


def run(reader, root, case_id, *args):
    path = root / "cases" / f"{case_id}.safetensors"
    return subprocess.run([str(reader), str(path), *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("variant", [None, "float32", "float16", "bfloat16"])
def test_passes_on_correct_expectations(reader, corpus, variant):
    extra = [] if variant is None else ["--variant", variant]
    result = run(reader, corpus, "rope.angles.line", "--base", "10000", *extra)
    assert result.returncode == 0, result.stdout + result.stderr
    prefix = "" if variant is None else f"{variant}."
    assert result.stdout.startswith(f"compared 24 elements of {prefix}outputs.output; max abs error ")
    assert result.stdout.rstrip().endswith("0 outside atol=1e-12 rtol=1e-12: PASS")


def test_multi_dimensional_positions(reader, corpus):
    result = run(reader, corpus, "rope.angles.grid", "--base", "500")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("compared 36 elements")


def test_fails_on_wrong_expectations(reader, corpus):
    result = run(reader, corpus, "rope.angles.off_by_one", "--base", "10000")
    assert result.returncode == 1
    # expected angles are (p + 1) * theta_i: every element is off by theta_i > 0
    assert "24 outside atol=1e-12 rtol=1e-12: FAIL" in result.stdout


def test_fails_with_the_wrong_base(reader, corpus):
    result = run(reader, corpus, "rope.angles.line", "--base", "500")
    assert result.returncode == 1
    assert result.stdout.rstrip().endswith("FAIL")


def test_a_loose_tolerance_accepts_a_small_error(reader, corpus):
    # off by one position, element (p, i) misses by theta_i <= theta_0 = 1
    result = run(reader, corpus, "rope.angles.off_by_one", "--base", "10000", "--atol", "1.0", "--rtol", "0")
    assert result.returncode == 0, result.stdout
    assert "max abs error 1 at flat index 0" in result.stdout


def test_rejects_damaged_files(reader, corpus, tmp_path):
    blob = (corpus / "cases" / "rope.angles.line.safetensors").read_bytes()
    damaged = {
        "truncated": blob[: len(blob) - 5],
        "short": blob[:5],
        "huge header": struct.pack("<Q", 2**40) + blob[8:],
        "trailing bytes": blob + b"xx",
    }
    for name, data in damaged.items():
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(data)
        result = subprocess.run([str(reader), str(path)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, name
        assert result.stderr.startswith("read_case: "), name


def test_usage_errors(reader, corpus):
    assert subprocess.run([str(reader)], capture_output=True, timeout=60).returncode == 2
    result = run(reader, corpus, "rope.angles.line", "--bogus", "1")
    assert (result.returncode, result.stderr) == (2, "read_case: unknown option --bogus\n")
    result = run(reader, corpus, "rope.angles.line", "--variant", "float8")
    assert (result.returncode, result.stderr) == (2, "read_case: no tensor named float8.inputs.positions\n")
