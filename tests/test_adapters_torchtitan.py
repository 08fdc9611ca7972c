"""The torchtitan adapter: rope.py loaded by path, mapping sound, divergences exactly those listed."""

import importlib.metadata
import importlib.util
import sys

import numpy as np
import pytest

pytest.importorskip("torch")
if importlib.util.find_spec("torchtitan") is None:
    pytest.skip("torchtitan is not installed", allow_module_level=True)

from posref.adapters import torchtitan as adapter_module  # noqa: E402

if adapter_module.available() is not None:
    pytest.skip(adapter_module.available(), allow_module_level=True)

from adapter_harness import run_adapter, statuses  # noqa: E402

import posref  # noqa: E402
from posref.conformance.adapter import load_adapter  # noqa: E402
from posref.conformance.runner import run_cases  # noqa: E402
from posref.golden.registry import Arange, CaseSpec, Normal, build_cases  # noqa: E402

MODULE = "posref.adapters.torchtitan"
FUNCTIONS = {"rope_frequencies", "rope_cos_sin", "apply_rotary", "apply_rope", "llama3_scaled_frequencies",
             "yarn_frequencies"}


@pytest.mark.parametrize("dtype", adapter_module.ADAPTER_DTYPES)
def test_cases_conform_or_are_listed(dtype):
    results = run_adapter(MODULE, "torchtitan", dtype, FUNCTIONS)
    status = statuses(results)
    for case_id in ("apply_rope.half.hard_positions", "apply_rope.interleaved.hard_positions",
                    "rope_cos_sin.half.hard_positions", "rope_cos_sin.interleaved.hard_positions",
                    "apply_rotary.half.small", "apply_rotary.interleaved.small", "apply_rope.half.batch_positions",
                    "llama3_scaled_frequencies.llama3_1", "llama3_scaled_frequencies.llama4_scout",
                    "yarn_frequencies.deepseek_v3.truncate", "yarn_frequencies.qwen2_5.exact",
                    "yarn_frequencies.high_below_low", "adapters.yarn_frequencies.d64.s8.no_truncate"):
        assert status[case_id] == "pass", case_id
    for case_id in ("apply_rope.half.partial_first", "yarn_frequencies.long_l0.half_dim.truncate",
                    "yarn_frequencies.extrapolation0"):
        assert status[case_id] == "not_implemented", case_id


def test_metadata_and_no_triton():
    assert adapter_module.ADAPTER_VERSION == importlib.metadata.version("torchtitan")
    assert "float64" not in adapter_module.ADAPTER_DTYPES
    adapter_module.make_adapter(dtype="float32", device="cpu").rope_frequencies(8)
    assert "triton" not in sys.modules
    assert adapter_module._rope().__file__.endswith("models/common/rope.py")


def _sequence():
    specs = []
    for step, (dim, base, length, start, layout) in enumerate([
            (64, 10_000.0, 16, 0, "interleaved"), (32, 10_000.0, 16, 0, "interleaved"),
            (32, 500_000.0, 16, 0, "half"), (32, 500_000.0, 40, 300, "interleaved"),
            (64, 10_000.0, 8, 0, "half"), (32, 100.0, 8, 2, "half")]):
        specs.append(CaseSpec(id=f"state.{step}.apply_rope", function="apply_rope",
                              inputs={"x": Normal((2, length, dim)), "positions": Arange(start, start + length)},
                              params={"base": base, "layout": layout}, tolerance="rope"))
        specs.append(CaseSpec(id=f"state.{step}.rope_cos_sin", function="rope_cos_sin",
                              inputs={"positions": Arange(start, start + length)},
                              params={"dim": dim, "base": base, "layout": layout}, tolerance="cos_sin"))
        specs.append(CaseSpec(id=f"state.{step}.yarn_frequencies", function="yarn_frequencies", inputs={},
                              params={"dim": dim, "base": base, "scaling_factor": 4.0,
                                      "original_max_position_embeddings": 64 * length}, tolerance="frequency"))
    return specs


def test_calls_that_change_base_dim_length_and_dtype_share_no_stale_table():
    specs = _sequence()
    adapters = {dtype: load_adapter(MODULE, dtype=dtype) for dtype in ("float32", "bfloat16")}
    for dtype in ("float32", "bfloat16", "float32"):
        results = run_cases(adapters[dtype], build_cases(specs, dtypes=[dtype]))
        assert {r.status for r in results} == {"pass"}, [(r.case_id, r.message) for r in results if r.status != "pass"]


def test_yarn_factor_at_most_one_is_ignored():
    """The listed yarn_frequencies.invalid.factor_below_one: rope_factor <= 1 skips YaRN altogether."""
    adapter = adapter_module.make_adapter(dtype="float32", device="cpu")
    got = adapter.yarn_frequencies(128, scaling_factor=0.5, original_max_position_embeddings=4096)
    np.testing.assert_allclose(got, posref.rope_frequencies(128), rtol=2e-6)


def test_unsupported_parameters_are_not_implemented():
    adapter = adapter_module.make_adapter(dtype="float32", device="cpu")
    with pytest.raises(NotImplementedError, match="layout"):
        adapter.apply_rope(np.zeros((2, 8)), np.arange(2), layout="neox")
    with pytest.raises(NotImplementedError, match="whole head"):
        adapter.apply_rope(np.zeros((2, 8)), np.arange(2), rotary_dim=4)
    with pytest.raises(NotImplementedError, match="fractional"):
        adapter.apply_rope(np.zeros((2, 8)), np.arange(2), position_offset=0.5)
    with pytest.raises(NotImplementedError, match="extrapolation_factor"):
        adapter.yarn_frequencies(64, scaling_factor=4.0, original_max_position_embeddings=4096,
                                 extrapolation_factor=0.0)
