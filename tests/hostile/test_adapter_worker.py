"""The worker process, from posref's side: what it reads back, when it replaces a worker, how loading is bounded."""

from __future__ import annotations

import json
import pickle
import struct

import numpy as np
import pytest

from posref.conformance.adapter import AdapterError
from posref.conformance.runner import run_cases
from posref.conformance.worker import AdapterHost, _decode_reply, start_adapter
from posref.golden.cases import CASES
from posref.golden.registry import build_cases

from .checking import FREQUENCY_CASES, TRIGGER, adapter

FREQUENCIES = build_cases([s for s in CASES if s.function == "rope_frequencies"], dtypes=["float32"])


def _reply(header: dict, *blobs: bytes) -> bytes:
    head = json.dumps(header).encode()
    return struct.pack("<I", len(head)) + head + b"".join(blobs)


def test_replies_carry_plain_numeric_arrays_only():
    header, (array,) = _decode_reply(_reply({"arrays": [{"dtype": "<f4", "shape": [2]}]},
                                            np.array([1.5, 2.5], "<f4").tobytes()))
    assert array.tolist() == [1.5, 2.5]
    evil = pickle.dumps(np.array([object()], dtype=object))
    for described in ({"dtype": "|O", "shape": [1]}, {"dtype": "object", "shape": [1]},
                      {"dtype": "<U3", "shape": [1]}, {"dtype": "<f4", "shape": [-1]},
                      {"dtype": "<f4", "shape": [10**6]}, {"dtype": "<f4", "shape": "1"}):
        with pytest.raises(ValueError):
            _decode_reply(_reply({"arrays": [described]}, evil))
    with pytest.raises(ValueError):  # bytes the header does not describe
        _decode_reply(_reply({"arrays": []}, b"extra"))
    with pytest.raises(ValueError):
        _decode_reply(b"\x00")


def test_outputs_of_other_dtypes_are_judged_not_unpickled():
    with start_adapter(adapter("ODD_OUTPUTS"), dtype="float32") as worker:
        results = {r.case_id: r for r in run_cases(worker, FREQUENCIES)}
    assert results["rope_frequencies.d128.b10000"].status == "fail"
    assert "output has dtype <U" in results["rope_frequencies.d128.b10000"].message
    assert "complex128" in results["rope_frequencies.d2.b10000"].message
    assert results["rope_frequencies.d80.b10000"].status == "fail"  # bfloat16 read back, and too coarse
    assert "exceeds the budget" in results["rope_frequencies.d80.b10000"].message
    assert results["rope_frequencies.d96.b1000000"].status == "crash"
    assert "cannot be read" in results["rope_frequencies.d96.b1000000"].message
    assert results[TRIGGER].status == "pass"


@pytest.mark.parametrize("device, fresh", [("cpu", False), ("accelerator", True)])
def test_after_an_error_on_an_accelerator_a_fresh_worker_takes_the_next_case(tmp_path, monkeypatch, device, fresh):
    calls = tmp_path / "calls"
    monkeypatch.setenv("POSREF_HOSTILE_CALLS", str(calls))
    with start_adapter(adapter("RECORDS_PIDS"), dtype="float32", device=device) as worker:
        results = run_cases(worker, FREQUENCIES)
    assert [r.case_id for r in results] == FREQUENCY_CASES
    assert results[2].status == "crash" and "device-side assert" in results[2].message
    pids = calls.read_text().split()
    assert len(pids) == 7
    assert len(set(pids[:3])) == 1
    assert (pids[3] != pids[2]) is fresh


def test_loading_is_bounded_and_a_dead_loader_is_a_load_error(monkeypatch):
    from . import exits_on_import

    with pytest.raises(AdapterError, match="did not finish loading it within 1 s"):
        start_adapter(adapter("SLOW_FACTORY"), dtype="float32", load_timeout=1.0)
    monkeypatch.setenv("POSREF_HOSTILE_EXIT_ON_IMPORT", "1")
    with pytest.raises(AdapterError, match="could not be loaded: the worker process died: it ended with exit code 0"):
        start_adapter(exits_on_import.__name__)
    with AdapterHost() as host:  # the same host loads another adapter in a fresh worker
        with pytest.raises(AdapterError, match="exit code 0"):
            host.describe(exits_on_import.__name__)
        monkeypatch.delenv("POSREF_HOSTILE_EXIT_ON_IMPORT")
        assert host.describe("reference")["available"] is None


def test_one_host_serves_several_adapters_and_dtypes():
    with AdapterHost() as host:
        assert host.describe("reference") == {"available": None, "dtypes": ["float64"]}
        first = host.configure(adapter("TWO_OUTPUTS"), "float32")
        second = host.configure("reference", "float64")
        assert first.name == "hostile" and second.name == "posref-reference"
        assert run_cases(second, FREQUENCIES[:1])[0].status == "pass"
        assert run_cases(first, FREQUENCIES[:1])[0].status == "fail"
