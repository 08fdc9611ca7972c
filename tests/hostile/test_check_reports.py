"""The report always arrives, and the exit status says what happened (0, 1, 2, 3, 130).

Before, Ctrl-C or any error of the runner lost the report, and a report path
that could not be written failed with a traceback after the whole run.
"""

from __future__ import annotations

import json
import signal
import time

import pytest

from posref.cli import main
from posref.conformance.report import EXIT_CODES
from posref.conformance.worker import WorkerAdapter

from .checking import adapter, check, posref_process, statuses


@pytest.mark.parametrize("how, code, words", [(signal.SIGINT, 130, "interrupted (Ctrl-C)"),
                                              (signal.SIGTERM, 130, "stopped by SIGTERM")])
def test_an_interrupted_run_writes_what_it_has_and_says_so(tmp_path, how, code, words):
    calls = tmp_path / "calls"
    report, markdown = tmp_path / "r.json", tmp_path / "r.md"
    process = posref_process("check", "--adapter", adapter("SLOW"), "--function", "alibi_slopes", "--max-examples",
                             "0", "--no-progress", "--report", str(report), "--markdown", str(markdown),
                             env={"POSREF_HOSTILE_CALLS": str(calls)})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not calls.exists() or len(calls.read_text().splitlines()) < 3):
            time.sleep(0.05)
        assert calls.exists(), "the adapter never ran"
        process.send_signal(how)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == code, err
    document = json.loads(report.read_text())
    assert document["complete"] is False and words in document["stopped"]
    assert 2 <= len(document["results"]) < 17
    assert set(statuses(document).values()) == {"pass"}
    assert "**Incomplete run**" in markdown.read_text() and words in markdown.read_text()
    assert words in err


def test_an_internal_error_exits_3_with_the_report_so_far(capfd, tmp_path, monkeypatch):
    calls = []
    real = WorkerAdapter.call

    def failing_on_the_third(self, *args, **kwargs):  # posref's side of the worker fails
        calls.append(args)
        if len(calls) == 3:
            raise RuntimeError("a bug in posref")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(WorkerAdapter, "call", failing_on_the_third)
    code, out, err, document = check(capfd, tmp_path, "--adapter", "reference", "--dtype", "float64", "--function",
                                     "rope_frequencies", "--max-examples", "0")
    assert code == 3
    assert "RuntimeError: a bug in posref" in err  # the traceback, for the bug report
    assert document["complete"] is False and "internal error (RuntimeError: a bug in posref)" in document["stopped"]
    assert list(statuses(document).values()) == ["pass", "pass"]


def test_a_complete_run_says_so(capfd, tmp_path):
    code, out, err, document = check(capfd, tmp_path, "--adapter", "reference", "--dtype", "float64", "--function",
                                     "rope_frequencies", "--max-examples", "0")
    assert code == 0 and document["complete"] is True and document["stopped"] is None


def test_every_exit_status_is_documented():
    assert sorted(EXIT_CODES) == [0, 1, 2, 3, 130]
    from posref.cli import build_parser

    help_text = " ".join(build_parser()._subparsers._group_actions[0].choices["check"].format_help().split())
    for code in EXIT_CODES:
        assert f" {code} " in help_text


def test_exit_statuses(capfd, tmp_path):
    base = ["--dtype", "float64", "--function", "rope_frequencies", "--max-examples", "0", "--no-progress"]
    assert main(["check", "--adapter", "reference", *base]) == 0
    assert main(["check", "--adapter", adapter("TWO_OUTPUTS"), *base]) == 1
    assert main(["check", "--adapter", "no_such_adapter_module", *base]) == 2
    assert main(["check", "--adapter", "reference", "--case", "nosuch", *base]) == 2
    capfd.readouterr()


def test_a_reader_that_stops_reading_does_not_lose_the_report_or_the_status(tmp_path):
    import subprocess

    report = tmp_path / "r.json"
    process = posref_process("check", "--adapter", adapter("TWO_OUTPUTS"), "--dtype", "float64", "--function",
                             "rope_frequencies", "--max-examples", "0", "--no-progress", "--report", str(report))
    process.stdout.close()  # posref check ... | head -0
    try:
        with process.stderr:
            err = process.stderr.read()
        process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    assert process.returncode == 1, err
    assert "Traceback" not in err
    assert statuses(json.loads(report.read_text()))["rope_frequencies.d2.b10000"] == "fail"
