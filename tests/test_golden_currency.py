"""Currency of a corpus is judged by meaning: values within the float64 bound, not incidental bits.

A corpus written by another machine or another version of the generator may
differ from this machine's regeneration in the last bits of its float64
outputs; ``verify`` accepts that within each element's float64 budget and
names the first element beyond it (case, index, both values, the bound).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from posref.golden import read_corpus, verify_corpus, write_corpus
from posref.golden.cases import CASES
from posref.golden.registry import build_case

IDS = ("apply_rope.half.hard_positions", "alibi_bias.symmetric.causal", "rope_frequencies.d128.b10000")


@pytest.fixture(scope="module")
def cases():
    by_id = {spec.id: spec for spec in CASES}
    return [build_case(by_id[i]) for i in IDS]


def _nudged(case, factor, *, dtype=None):
    """The case with the element of largest budget moved by ``factor`` times its float64 budget."""
    budget = case.budgets["float64"]["output"].astype(np.float64)
    index = tuple(int(i) for i in np.unravel_index(np.argmax(budget), budget.shape))
    output = case.outputs["output"].copy()
    output[index] += factor * budget[index]
    return dataclasses.replace(case, outputs={"output": output}), index


def test_a_regenerated_corpus_is_current_and_bit_identical(cases, tmp_path):
    write_corpus(cases, tmp_path / "c")
    report = verify_corpus(tmp_path / "c", cases)
    assert report.ok and report.within_bound == ()


def test_outputs_within_the_float64_bound_are_current(cases, tmp_path):
    moved, _ = _nudged(cases[0], 0.5)
    assert not np.array_equal(moved.outputs["output"], cases[0].outputs["output"])
    write_corpus([moved] + cases[1:], tmp_path / "c")
    report = verify_corpus(tmp_path / "c", cases)
    assert report.ok, report
    assert report.within_bound == (cases[0].id,)


def test_an_output_beyond_the_bound_is_stale_and_named(cases, tmp_path):
    moved, index = _nudged(cases[0], 3.0)
    write_corpus([moved] + cases[1:], tmp_path / "c")
    [problem] = verify_corpus(tmp_path / "c", cases).problems
    assert (problem.kind, problem.case_id) == ("stale", cases[0].id)
    stored, fresh = moved.outputs["output"][index], cases[0].outputs["output"][index]
    assert f"outputs.output{list(index)} is {float(stored)!r}" in problem.message
    assert f"this machine computes {float(fresh)!r}" in problem.message
    assert "exceeds the bound" in problem.message


def test_inputs_must_be_identical(cases, tmp_path):
    case = cases[0]
    x = case.inputs["x"].copy()
    x[0, 0, 0] = np.nextafter(x[0, 0, 0], np.inf)
    write_corpus([dataclasses.replace(case, inputs={**case.inputs, "x": x})] + cases[1:], tmp_path / "c")
    [problem] = verify_corpus(tmp_path / "c", cases).problems
    assert "inputs must be identical" in problem.message


def test_budgets_may_differ_by_a_relative_1e_6_only(cases, tmp_path):
    case = cases[1]
    within = {d: {n: b * np.float32(1 + 2e-7) for n, b in v.items()} for d, v in case.budgets.items()}
    beyond = {d: {n: b * np.float32(1.001) for n, b in v.items()} for d, v in case.budgets.items()}
    write_corpus([cases[0], dataclasses.replace(case, budgets=within), cases[2]], tmp_path / "a")
    assert verify_corpus(tmp_path / "a", cases).ok
    write_corpus([cases[0], dataclasses.replace(case, budgets=beyond), cases[2]], tmp_path / "b")
    [problem] = verify_corpus(tmp_path / "b", cases).problems
    assert problem.message.startswith(f"case {case.id!r}: budgets.")


def test_a_manifest_that_differs_only_in_the_numpy_version_is_left_untouched(cases, tmp_path):
    out = tmp_path / "c"
    write_corpus(cases, out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["generator"]["numpy_version"] = "1.24.0"
    text = json.dumps(manifest, sort_keys=True, indent=2, separators=(",", ": "), ensure_ascii=True) + "\n"
    (out / "manifest.json").write_text(text)
    assert write_corpus(cases, out).changed is False
    assert json.loads((out / "manifest.json").read_text())["generator"]["numpy_version"] == "1.24.0"
    assert verify_corpus(out, cases).ok


def test_a_schema_1_corpus_still_reads_and_verifies_as_stale(cases, tmp_path):
    out = tmp_path / "old"
    plain = [dataclasses.replace(c, budgets={}) for c in cases]
    write_corpus(plain, out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["schema_version"] = 1
    del manifest["generator"]
    for entry in manifest["cases"]:
        del entry["budgets"]
    (out / "manifest.json").write_text(json.dumps(manifest, sort_keys=True, indent=2) + "\n")
    back = read_corpus(out)
    assert [c.id for c in back] == sorted(IDS) and all(c.budgets == {} for c in back)
    assert np.array_equal(back[1].outputs["output"], sorted(cases, key=lambda c: c.id)[1].outputs["output"])
    messages = [p.message for p in verify_corpus(out, cases).problems]
    assert any("schema_version 1" in m for m in messages)


def test_the_command_line_names_the_element_without_a_traceback(cases, tmp_path):
    moved, _ = _nudged(cases[0], 3.0)
    by_id = {spec.id: spec for spec in CASES}
    out = tmp_path / "c"
    write_corpus([moved] + cases[1:], out)
    script = (
        "import sys\n"
        "from posref.golden import verify_corpus\n"
        "from posref.golden.cases import CASES\n"
        "from posref.golden.registry import build_case\n"
        f"ids = {list(IDS)!r}\n"
        "report = verify_corpus(sys.argv[1], [build_case(s) for s in CASES if s.id in ids])\n"
        "print(report)\n"
        "sys.exit(0 if report.ok else 1)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert "exceeds the bound" in done.stdout and "Traceback" not in done.stdout + done.stderr
    assert set(by_id) >= set(IDS)
