"""Stateful behaviour is part of conformance: caches keyed on too little show up as failures.

Many libraries cache cos/sin tables or frequency vectors.  For every built-in
CPU adapter, one worker process runs a sequence of simple RoPE cases that
changes the base, the width, the length, the layout and the dtype from one
call to the next (two dtypes configured in the same process, interleaved),
and a second worker runs the same calls in the reverse order.  A call that
fails there but passes alone in a fresh process is a state leak: a table
cached under too small a key.  (A call that fails alone too is a divergence
of its own, which the adapter's known list covers.)
"""

from __future__ import annotations

import importlib

import pytest

from posref.conformance.adapter import BUILTIN
from posref.conformance.runner import run_case
from posref.conformance.worker import AdapterHost
from posref.golden.registry import Arange, CaseSpec, Normal, build_cases

GPU_ONLY = {"liger_kernel", "flash_attn"}

#: (width, length, base, layout) of each apply_rope call, in order: every step changes one thing.
ROPE_STEPS = [(64, 16, 10_000.0, "half"), (64, 16, 500_000.0, "half"), (128, 16, 500_000.0, "half"),
              (128, 40, 500_000.0, "half"), (64, 16, 10_000.0, "half"), (64, 16, 10_000.0, "interleaved"),
              (64, 16, 500_000.0, "interleaved"), (128, 24, 10_000.0, "interleaved")]
#: (width, base) of each rope_frequencies and rope_cos_sin call.
TABLE_STEPS = [(64, 10_000.0), (64, 500_000.0), (128, 500_000.0), (128, 10_000.0), (64, 10_000.0)]


def _specs() -> list[CaseSpec]:
    specs = []
    for i, (dim, length, base, layout) in enumerate(ROPE_STEPS):
        specs.append(CaseSpec(id=f"stateful.apply_rope.{i}", function="apply_rope",
                              inputs={"x": Normal((1, 2, length, dim)), "positions": Arange(0, length)},
                              params={"base": base, "layout": layout}, tolerance="rope"))
    for i, (dim, base) in enumerate(TABLE_STEPS):
        specs.append(CaseSpec(id=f"stateful.rope_frequencies.{i}", function="rope_frequencies", inputs={},
                              params={"dim": dim, "base": base}, tolerance="frequency"))
        specs.append(CaseSpec(id=f"stateful.rope_cos_sin.{i}", function="rope_cos_sin",
                              inputs={"positions": Arange(0, 12 + 4 * i)},
                              params={"dim": dim, "base": base}, tolerance="cos_sin"))
    return specs


def _cpu_adapters() -> list[str]:
    return sorted(set(BUILTIN) - GPU_ONLY - {"reference"})


def _wrong_answers(spec: str, dtypes: list[str], declared) -> dict:
    """Run the sequence forward and reversed, each in one worker; the calls that did not pass."""
    specs = [s for s in _specs() if declared is None or s.function in declared]
    cases = {dtype: build_cases(specs, dtypes=[dtype]) for dtype in dtypes}
    calls = [(dtype, cases[dtype][index]) for index in range(len(specs)) for dtype in dtypes]
    outcomes = {}
    for order, sequence in (("forward", calls), ("reverse", calls[::-1])):
        with AdapterHost() as host:
            adapters = {dtype: host.configure(spec, dtype) for dtype in dtypes}  # one process, both dtypes
            for dtype, case in sequence:
                result = run_case(adapters[dtype], case, timeout=300.0, diagnose=False)
                outcomes[(order, dtype, case.id)] = (result.status, result.message)
    if all(status == "not_implemented" for status, _ in outcomes.values()):
        pytest.skip(f"{spec} implements none of apply_rope, rope_frequencies, rope_cos_sin")
    wrong = {key: value for key, value in outcomes.items() if value[0] not in ("pass", "not_implemented")}
    alone = {}  # a call that fails in a fresh process too is a divergence of its own, not state
    for order, dtype, case_id in wrong:
        if (dtype, case_id) not in alone:
            case = next(c for c in cases[dtype] if c.id == case_id)
            with AdapterHost() as host:
                alone[(dtype, case_id)] = run_case(host.configure(spec, dtype), case, timeout=300.0,
                                                   diagnose=False).status
    return {key: value for key, value in wrong.items() if alone[key[1:]] == "pass"}


@pytest.mark.parametrize("name", _cpu_adapters())
def test_a_sequence_that_changes_everything_gives_the_spec_in_any_order(name):
    module = importlib.import_module(BUILTIN[name])
    why_not = module.available()
    if why_not:
        pytest.skip(why_not)
    dtypes = [d for d in ("float32", "bfloat16", "float16") if d in module.ADAPTER_DTYPES][:2]
    declared = getattr(module, "ADAPTER_FUNCTIONS", None)
    if declared is not None and not {"apply_rope", "rope_frequencies", "rope_cos_sin"} & set(declared):
        pytest.skip(f"{name} implements none of apply_rope, rope_frequencies, rope_cos_sin")
    wrong = _wrong_answers(name, dtypes, declared)
    assert not wrong, "\n".join(f"{order} {dtype} {case_id}: {status}: {message}"
                                for (order, dtype, case_id), (status, message) in sorted(wrong.items()))


def test_a_cache_keyed_on_the_width_alone_is_caught(monkeypatch):
    import pathlib

    monkeypatch.setenv("PYTHONPATH", str(pathlib.Path(__file__).resolve().parent))
    wrong = _wrong_answers("doors.cached_rope", ["float32", "bfloat16"], ("rope_frequencies",))
    assert {case_id for (_, _, case_id) in wrong} >= {"stateful.rope_frequencies.1", "stateful.rope_frequencies.3"}
    assert all(status == "fail" for status, _ in wrong.values())
