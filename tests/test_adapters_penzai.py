"""The Penzai adapter (JAX): mapping sound, divergences exactly those listed."""

import importlib.metadata
import importlib.util

import numpy as np
import pytest

if importlib.util.find_spec("penzai") is None or importlib.util.find_spec("jax") is None:
    pytest.skip("penzai or jax is not installed", allow_module_level=True)

from posref.adapters import penzai as adapter_module  # noqa: E402

if adapter_module.available() is not None:
    pytest.skip(adapter_module.available(), allow_module_level=True)

from adapter_harness import run_adapter, statuses  # noqa: E402

import posref  # noqa: E402
from posref.conformance.adapter import load_adapter  # noqa: E402
from posref.conformance.runner import run_cases  # noqa: E402
from posref.golden.registry import Arange, CaseSpec, Normal, build_cases  # noqa: E402

MODULE = "posref.adapters.penzai"
FUNCTIONS = {"apply_rope"}


@pytest.mark.parametrize("dtype", adapter_module.ADAPTER_DTYPES)
def test_cases_conform_or_are_listed(dtype):
    results = run_adapter(MODULE, "penzai", dtype, FUNCTIONS)
    status = statuses(results)
    for case_id in ("apply_rope.half.hard_positions", "apply_rope.half.short", "apply_rope.half.partial_first",
                    "apply_rope.half.batch_positions", "apply_rope.half.position_offset",
                    "adapters.apply_rope.half.contiguous_offset"):
        assert status[case_id] == "pass", case_id
    for case_id in ("apply_rope.interleaved.short", "apply_rope.half.partial_last", "apply_rope.half.proportional"):
        assert status[case_id] == "not_implemented", case_id


def test_metadata():
    assert adapter_module.ADAPTER_VERSION == importlib.metadata.version("penzai")
    assert "float64" not in adapter_module.ADAPTER_DTYPES


STEPS = [  # (head width, rotary_dim, base, length, first position)
    (64, None, 10_000.0, 16, 0),
    (32, None, 10_000.0, 16, 0),
    (32, None, 500_000.0, 16, 0),
    (32, 16, 500_000.0, 40, 300),
    (64, 16, 10_000.0, 8, 0),
    (32, None, 100.0, 8, 2),
]


def _sequence():
    specs = []
    for step, (dim, rotary, base, length, start) in enumerate(STEPS):
        specs.append(CaseSpec(id=f"state.{step}.apply_rope", function="apply_rope",
                              inputs={"x": Normal((2, length, dim)), "positions": Arange(start, start + length)},
                              params={"base": base, "rotary_dim": rotary}, tolerance="rope"))
    return specs


def test_calls_that_change_base_dim_length_and_dtype_share_no_stale_table():
    """One adapter object per dtype, used in turn: a table cached on too little would fail a later call."""
    specs = _sequence()
    adapters = {dtype: load_adapter(MODULE, dtype=dtype) for dtype in ("float32", "bfloat16")}
    for dtype in ("float32", "bfloat16", "float32"):
        results = run_cases(adapters[dtype], build_cases(specs, dtypes=[dtype]))
        assert {r.status for r in results} == {"pass"}, [(r.case_id, r.message) for r in results if r.status != "pass"]


def test_subset_leaves_the_suffix_alone():
    adapter = adapter_module.make_adapter(dtype="float32", device="cpu")
    x = np.random.default_rng(1).standard_normal((6, 24))
    out = adapter.apply_rope(x, np.arange(6), rotary_dim=8)
    np.testing.assert_array_equal(out[:, 8:], x[:, 8:].astype(np.float32))
    np.testing.assert_allclose(out, posref.apply_rope(x, np.arange(6), rotary_dim=8), atol=2e-6)


def test_unsupported_parameters_are_not_implemented():
    adapter = adapter_module.make_adapter(dtype="float32", device="cpu")
    with pytest.raises(NotImplementedError, match="halves"):
        adapter.apply_rope(np.zeros((2, 8)), np.arange(2), layout="interleaved")
    with pytest.raises(NotImplementedError, match="prefix"):
        adapter.apply_rope(np.zeros((2, 8)), np.arange(2), rotary_dim=4, rotated_slice="last")
    with pytest.raises(NotImplementedError, match="fractional"):
        adapter.apply_rope(np.zeros((2, 8)), np.arange(2), position_offset=0.5)
    with pytest.raises(NotImplementedError, match="integer"):
        adapter.apply_rope(np.zeros((2, 8)), np.array([0.5, 1.0]))
