"""Helpers of the ``posref check`` battery: run the command, read its report."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

from posref.cli import main

from . import hostile_adapters

#: Module of the hostile adapters, as the worker imports it.
MODULE = hostile_adapters.__name__
#: Directory that makes :data:`MODULE` importable (for subprocesses).
TESTS_DIR = str(pathlib.Path(hostile_adapters.__file__).resolve().parents[1])


def adapter(name: str) -> str:
    """The ``--adapter`` value of a hostile adapter."""
    return f"{MODULE}:{name}"


def check(capfd, tmp_path, *args: str, report: bool = True) -> tuple[int, str, str, dict | None]:
    """Run ``posref check ARGS --no-progress`` in this process; return the exit status, stdout, stderr, report."""
    path = tmp_path / "report.json"
    argv = ["check", *args, "--no-progress"] + (["--report", str(path)] if report else [])
    code = main(argv)
    out, err = capfd.readouterr()
    document = json.loads(path.read_text()) if report and path.exists() else None
    return code, out, err, document


def statuses(document: dict) -> dict[str, str]:
    """Case id -> status, from a JSON report."""
    return {r["case_id"]: r["status"] for r in document["results"]}


def result(document: dict, case_id: str) -> dict:
    (found,) = [r for r in document["results"] if r["case_id"] == case_id]
    return found


def posref_process(*args: str, env: dict | None = None, **kwargs) -> subprocess.Popen:
    """``python -m posref ARGS`` as a child process, with the hostile adapters importable."""
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join([TESTS_DIR] + [p for p in [environment.get("PYTHONPATH")] if p])
    environment.update(env or {})
    return subprocess.Popen([sys.executable, "-m", "posref", *args], env=environment, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


#: The seven rope_frequencies cases in run order; the third is where the hostile adapters act.
FREQUENCY_CASES = [
    "rope_frequencies.d128.b10000",
    "rope_frequencies.d2.b10000",
    "rope_frequencies.d64.b500000",
    "rope_frequencies.d80.b10000",
    "rope_frequencies.d96.b1000000",
    "rope_frequencies.invalid.base_one",
    "rope_frequencies.invalid.odd_dim",
]
TRIGGER = "rope_frequencies.d64.b500000"
