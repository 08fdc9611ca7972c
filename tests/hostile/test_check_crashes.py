"""An adapter that ends, hangs or corrupts its process costs one case, never the run.

Before the worker process, each of these ended ``posref check`` (exit 0 with
no output for ``os._exit(0)``; -11 for a segfault; a traceback for
``KeyboardInterrupt`` or a closed stdout), or hung it past any timeout, or
passed a case that answered after its timeout.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from .checking import FREQUENCY_CASES, TRIGGER, adapter, check, posref_process, result, statuses

GOLDEN_ONLY = ("--function", "rope_frequencies", "--max-examples", "0", "--dtype", "float64")


def _others_pass(document: dict) -> None:
    """Every case but the trigger ran, in a fresh worker after it, and passed."""
    seen = statuses(document)
    assert list(seen) == FREQUENCY_CASES
    assert {s for case_id, s in seen.items() if case_id != TRIGGER} == {"pass"}


@pytest.mark.parametrize("name, status, words", [
    ("EXIT_ZERO", "crash", "exit code 0"),
    ("SEGFAULT", "crash", "SIGSEGV"),
    ("SYS_EXIT", "crash", "SystemExit"),
    ("KEYBOARD_INTERRUPT", "crash", "KeyboardInterrupt"),
])
def test_an_adapter_that_ends_its_process_costs_one_case(capfd, tmp_path, name, status, words):
    code, out, err, document = check(capfd, tmp_path, "--adapter", adapter(name), *GOLDEN_ONLY)
    assert code == 1
    assert document["complete"] is True
    case = result(document, TRIGGER)
    assert case["status"] == status and words in case["message"], case
    _others_pass(document)
    assert f"{status.upper():11} {TRIGGER}" in out and "6 pass" in out


@pytest.mark.parametrize("name, words", [
    ("GARBAGE_ON_THE_CHANNEL", "over posref's limit"),
    ("PICKLE_ON_THE_CHANNEL", "a reply posref cannot read"),
])
def test_a_worker_that_corrupts_its_channel_costs_one_case(capfd, tmp_path, name, words):
    code, out, err, document = check(capfd, tmp_path, "--adapter", adapter(name), *GOLDEN_ONLY)
    assert code == 1
    case = result(document, TRIGGER)
    assert case["status"] == "crash" and words in case["message"], case
    _others_pass(document)


def test_an_adapter_that_closes_its_stdout_does_not_close_posrefs(capfd, tmp_path):
    code, out, err, document = check(capfd, tmp_path, "--adapter", adapter("CLOSE_STDOUT"), *GOLDEN_ONLY)
    assert code == 0, err
    assert "hostile 0 (float64, cpu): 7 pass" in out
    assert set(statuses(document).values()) == {"pass"}


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize("name", ["SPIN_IGNORING_ALARM", "SWALLOW_EVERYTHING", "LOOP_IN_C"])
def test_a_hang_is_killed_at_the_timeout_and_a_fresh_worker_runs_the_rest(capfd, tmp_path, monkeypatch, name):
    pidfile = tmp_path / "pid"
    monkeypatch.setenv("POSREF_HOSTILE_PIDFILE", str(pidfile))
    start = time.monotonic()
    code, out, err, document = check(capfd, tmp_path, "--adapter", adapter(name), *GOLDEN_ONLY, "--timeout", "1")
    elapsed = time.monotonic() - start
    assert code == 1
    case = result(document, TRIGGER)
    assert case["status"] == "timeout" and "killed" in case["message"], case
    assert 1.0 <= case["seconds"] < 3.0
    assert elapsed < 20
    _others_pass(document)
    assert _gone(int(pidfile.read_text())), "the hung worker is still running"


def test_an_answer_after_the_timeout_is_a_timeout_not_a_pass(capfd, tmp_path):
    code, out, err, document = check(capfd, tmp_path, "--adapter", adapter("LATE"), *GOLDEN_ONLY, "--timeout", "1")
    assert code == 1
    assert result(document, TRIGGER)["status"] == "timeout"
    _others_pass(document)


def test_an_output_that_fails_to_read_back_is_an_error_of_that_case(capfd, tmp_path):
    code, out, err, document = check(capfd, tmp_path, "--adapter", adapter("UNREADABLE_TENSOR"), *GOLDEN_ONLY)
    assert code == 1
    case = result(document, TRIGGER)
    assert case["status"] == "crash" and "CUDA error: an illegal memory access" in case["message"], case
    _others_pass(document)


def test_an_output_near_the_float_limit_is_judged_even_when_warnings_are_errors(capfd, tmp_path, monkeypatch):
    # pytest runs with filterwarnings=error, as PYTHONWARNINGS=error would: the overflow of 1e308 - x
    # in the comparison must not escape
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code, out, err, document = check(capfd, tmp_path, "--adapter", adapter("HUGE"), *GOLDEN_ONLY)
    assert code == 1
    case = result(document, TRIGGER)
    assert case["status"] == "fail" and "exceeds the budget" in case["message"], case
    _others_pass(document)


def test_pythonwarnings_error_and_an_output_of_1e308(tmp_path):
    report = tmp_path / "r.json"
    process = posref_process("check", "--adapter", adapter("HUGE"), *GOLDEN_ONLY, "--no-progress", "--report",
                             str(report), env={"PYTHONWARNINGS": "error"})
    out, err = process.communicate(timeout=120)
    assert process.returncode == 1, err
    assert "Traceback" not in err
    assert statuses(json.loads(report.read_text()))[TRIGGER] == "fail"


def test_an_adapter_that_ends_the_process_at_import_is_a_load_error_with_a_report(capfd, tmp_path, monkeypatch):
    from . import exits_on_import

    monkeypatch.setenv("POSREF_HOSTILE_EXIT_ON_IMPORT", "1")
    code, out, err, document = check(capfd, tmp_path, "--adapter", exits_on_import.__name__, *GOLDEN_ONLY)
    assert code == 2
    assert "could not be loaded" in err and "exit code 0" in err
    assert document["complete"] is False and "could not be loaded" in document["stopped"]
    assert document["results"] == []


def test_in_process_mode_is_there_for_debugging(capfd, tmp_path):
    code, out, err, document = check(capfd, tmp_path, "--adapter", adapter("TWO_OUTPUTS"), *GOLDEN_ONLY,
                                     "--in-process")
    assert code == 1
    assert result(document, TRIGGER)["status"] == "fail"
    code, out, err, document = check(capfd, tmp_path, "--adapter", "reference", *GOLDEN_ONLY, "--in-process")
    assert code == 0 and set(statuses(document).values()) == {"pass"}
