"""The judge cannot be fooled: outputs are counted, rejections classed, inputs watched, the judge out of reach.

Before, ``(r, r)`` passed a function of one output, any exception passed an
invalid-input case, an adapter that scaled its input in place passed most
``apply_rope`` cases (the expected values were computed from the scaled
arrays), and an adapter could replace posref's comparison or spec function,
or read the expected values from its caller's frame, and pass everything.
"""

from __future__ import annotations

import pytest

from .checking import FREQUENCY_CASES, adapter, check, result, statuses

GOLDEN = ("--max-examples", "0", "--dtype", "float64")


def test_extra_outputs_fail(capfd, tmp_path):
    code, out, err, document = check(capfd, tmp_path, "--adapter", adapter("TWO_OUTPUTS"), "--function",
                                     "rope_frequencies", *GOLDEN)
    assert code == 1
    for case_id in FREQUENCY_CASES[:5]:
        case = result(document, case_id)
        assert case["status"] == "fail" and case["message"] == "returned 2 output(s), expected 1", case


def test_a_make_adapter_that_returns_none_is_a_load_error(capfd, tmp_path):
    code, out, err, document = check(capfd, tmp_path, "--adapter", adapter("NONE_FACTORY"), "--function",
                                     "rope_frequencies", *GOLDEN)
    assert code == 2
    assert "make_adapter(dtype='float64', device='cpu') returned None" in err
    assert document["complete"] is False and document["results"] == []


def test_dtypes_declared_as_a_string_are_a_load_error(capfd, tmp_path):
    code, out, err, document = check(capfd, tmp_path, "--adapter", adapter("STRING_DTYPES"), "--function",
                                     "rope_frequencies", "--max-examples", "0")
    assert code == 2
    assert "ADAPTER_DTYPES must be a tuple of names" in err and "'float32'" in err


@pytest.mark.parametrize("name, raised", [("REJECTS_WITH_MEMORY_ERROR", "MemoryError"),
                                          ("REJECTS_WITH_RUNTIME_ERROR", "RuntimeError")])
def test_an_invalid_input_passes_only_with_the_declared_error_class(capfd, tmp_path, name, raised):
    code, out, err, document = check(capfd, tmp_path, "--adapter", adapter(name), "--function", "rope_frequencies",
                                     *GOLDEN)
    assert code == 1
    for case_id in ("rope_frequencies.invalid.base_one", "rope_frequencies.invalid.odd_dim"):
        case = result(document, case_id)
        assert case["status"] == "wrong_error", case
        assert f"rejected with {raised}: that input is invalid" in case["message"]
        assert "must be rejected with ValueError" in case["message"]
    assert {result(document, c)["status"] for c in FREQUENCY_CASES[:5]} == {"pass"}


def test_the_declared_class_and_its_subclasses_pass(capfd, tmp_path):
    code, out, err, document = check(capfd, tmp_path, "--adapter", "reference", "--function", "rope_frequencies",
                                     *GOLDEN)
    assert code == 0
    assert "rejected with ValueError" in result(document, "rope_frequencies.invalid.odd_dim")["message"]


def test_input_mutation_is_detected_and_fails(capfd, tmp_path):
    code, out, err, document = check(capfd, tmp_path, "--adapter", adapter("MUTATES_INPUTS"), "--function",
                                     "apply_rope", *GOLDEN)
    assert code == 1
    valid = [r for r in document["results"] if ".invalid." not in r["case_id"]]
    assert len(valid) >= 12
    for case in valid:
        assert case["status"] == "fail", case
        assert "changed its input(s) x in place" in case["message"], case
        # judged against the spec on posref's own, untouched copy of the inputs
        assert case["outputs"]["output"]["max_abs_error"] > 0


@pytest.mark.parametrize("name", ["PATCHES_COMPARE", "PATCHES_SPEC", "READS_FRAMES"])
def test_an_adapter_cannot_rewrite_or_read_the_judge(capfd, tmp_path, name):
    code, out, err, document = check(capfd, tmp_path, "--adapter", adapter(name), "--function", "apply_rope",
                                     "--max-examples", "5", "--dtype", "float64")
    assert code == 1
    valid = [r for r in document["results"] if ".invalid." not in r["case_id"] and not r["case_id"].startswith("fuzz")]
    assert valid and all(r["status"] == "fail" for r in valid), statuses(document)
    fuzzed = [r for r in document["results"] if r["case_id"].startswith("fuzz.apply_rope")]
    assert len(fuzzed) == 1 and fuzzed[0]["status"] == "fail", fuzzed


def test_the_in_process_debug_mode_still_guards_the_inputs(capfd, tmp_path):
    code, out, err, document = check(capfd, tmp_path, "--adapter", adapter("MUTATES_INPUTS"), "--function",
                                     "apply_rope", *GOLDEN, "--in-process")
    assert code == 1
    valid = [r for r in document["results"] if ".invalid." not in r["case_id"]]
    assert all(r["status"] == "fail" and "in place" in r["message"] for r in valid)


def test_the_adapter_is_never_imported_into_posrefs_process(capfd, tmp_path, monkeypatch):
    import sys

    spec = f"{__name__.rsplit('.', 1)[0]}.marks_on_import"
    monkeypatch.delitem(sys.modules, spec, raising=False)  # imported by other tests of this folder
    code, out, err, document = check(capfd, tmp_path, "--adapter", spec, "--dtype", "float64", "--function",
                                     "rope_frequencies", "--max-examples", "0")
    assert code == 0, err
    assert spec not in sys.modules
