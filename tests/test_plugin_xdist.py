"""The pytest plugin under pytest-xdist (``-n 2``) gives the same outcome for every item as a serial run."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("xdist")

ARGS = ("-p", "no:cacheprovider", "-p", "no:benchmark", "-rA", "--posref-adapter", "doors.mixed_adapter", "--posref-dtype", "float64",
        "--posref-function", "rope_frequencies", "--posref-function", "alibi_slopes", "--posref-max-examples", "3",
        "-W", "default::posref.conformance.plugin.PosrefLenientWarning")
LINE = re.compile(r"^(PASSED|FAILED|XFAIL|XPASS|ERROR) (\S+)")


def outcomes(result) -> dict[str, str]:
    found = {}
    for line in result.outlines:
        match = LINE.match(line)
        if match:
            found[match.group(2).rsplit("::", 1)[-1]] = match.group(1)
    return found


def test_two_workers_give_the_serial_outcomes(pytester, monkeypatch):
    import pathlib

    tests_dir = pathlib.Path(__file__).resolve().parent
    monkeypatch.setenv("PYTHONPATH", str(tests_dir))
    serial = pytester.runpytest_subprocess(*ARGS)
    parallel = pytester.runpytest_subprocess("-n", "2", *ARGS)
    counts = {k: v for k, v in serial.parseoutcomes().items() if k not in ("warnings", "warning")}
    assert counts == {k: v for k, v in parallel.parseoutcomes().items() if k not in ("warnings", "warning")}
    first, second = outcomes(serial), outcomes(parallel)
    assert len(first) > 10 and first == second
    assert {"PASSED", "FAILED"} <= set(first.values())
