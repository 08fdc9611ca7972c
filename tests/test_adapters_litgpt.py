"""The LitGPT adapter: mapping sound, divergences exactly those listed (the YaRN ramp bug among them)."""

import importlib.metadata
import importlib.util

import numpy as np
import pytest

pytest.importorskip("torch")
if importlib.util.find_spec("litgpt") is None:
    pytest.skip("litgpt is not installed", allow_module_level=True)

from posref.adapters import litgpt as adapter_module  # noqa: E402

if adapter_module.available() is not None:
    pytest.skip(adapter_module.available(), allow_module_level=True)

from adapter_harness import read_xfails, run_adapter, statuses  # noqa: E402

import posref  # noqa: E402
from posref.conformance.adapter import load_adapter  # noqa: E402
from posref.conformance.runner import run_cases  # noqa: E402
from posref.golden.cases import CASES  # noqa: E402
from posref.golden.registry import Arange, CaseSpec, Normal, build_cases  # noqa: E402

MODULE = "posref.adapters.litgpt"
FUNCTIONS = {"rope_frequencies", "rope_cos_sin", "apply_rope", "linear_scaled_frequencies",
             "llama3_scaled_frequencies", "yarn_frequencies", "yarn_attention_factor"}


def test_cases_conform_or_are_listed_float32():
    results = run_adapter(MODULE, "litgpt", "float32", FUNCTIONS)
    status = statuses(results)
    for case_id in ("apply_rope.half.hard_positions", "apply_rope.half.partial_first",
                    "apply_rope.half.batch_positions",
                    "rope_cos_sin.half.hard_positions", "rope_frequencies.d128.b10000",
                    "linear_scaled_frequencies.d128.b500000.s8", "llama3_scaled_frequencies.llama3_1",
                    "llama3_scaled_frequencies.llama4_scout", "yarn_attention_factor.deepseek_v3",
                    "yarn_attention_factor.s4"):
        assert status[case_id] == "pass", case_id
    assert status["yarn_frequencies.long_l0.half_dim.exact"] == "known"
    for case_id in ("apply_rope.interleaved.short", "apply_rope.half.partial_last", "yarn_frequencies.llama2.truncate",
                    "yarn_attention_factor.override"):
        assert status[case_id] == "not_implemented", case_id


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_cases_conform_or_are_listed_16_bit(dtype):
    """As in float32, without the cases at positions near 2**20 (caches of 2**20 rows, run in float32 here)."""
    cases = build_cases([s for s in CASES if s.function in FUNCTIONS and "hard_positions" not in s.id], dtypes=[dtype])
    reasons = read_xfails("litgpt", dtype)
    results = run_cases(load_adapter(MODULE, dtype=dtype), cases, known=reasons)
    bad = [(r.case_id, r.status, r.message) for r in results if r.status not in ("pass", "not_implemented", "known")]
    assert not bad, bad
    assert {r.case_id for r in results if r.status == "known"} <= set(reasons)


@pytest.mark.parametrize("dtype", adapter_module.ADAPTER_DTYPES)
def test_condense_ratio_is_linear_interpolation(dtype):
    adapter = load_adapter(MODULE, dtype=dtype)
    adapter.target = adapter_module.make_adapter(dtype=dtype, device="cpu", linear_rule="condense_ratio")
    cases = build_cases([s for s in CASES if s.function == "linear_scaled_frequencies"], dtypes=[dtype])
    results = run_cases(adapter, cases, known=read_xfails("litgpt", dtype))
    assert {r.status for r in results} <= {"pass", "known"}, [(r.case_id, r.message) for r in results]


def test_metadata():
    assert adapter_module.ADAPTER_VERSION == importlib.metadata.version("litgpt")
    assert "float64" not in adapter_module.ADAPTER_DTYPES


def test_yarn_ramp_is_inverted():
    """The bug behind the YaRN entries: the highest frequency is divided by the factor, the lowest kept."""
    import torch
    from litgpt.model import build_rope_cache

    cos, sin = build_rope_cache(2, 128, extra_config={"factor": 8.0, "beta_fast": 32.0, "beta_slow": 1.0,
                                                      "original_max_seq_len": 4096})
    theta = torch.atan2(sin[1, :64], cos[1, :64]).double().numpy()
    want = posref.yarn_frequencies(128, scaling_factor=8.0, original_max_position_embeddings=4096,
                                   high_limit="half_dim")
    assert abs(theta[0] - 0.125) < 1e-6 and want[0] == 1.0
    np.testing.assert_allclose(theta[63], posref.rope_frequencies(128)[63], rtol=1e-5)  # kept, not divided by 8
    np.testing.assert_allclose(want[63], posref.rope_frequencies(128)[63] / 8, rtol=1e-12)


EXTRA = [
    CaseSpec(id="lg.yarn_frequencies.llama2.half_dim", function="yarn_frequencies", inputs={},
             params={"dim": 128, "scaling_factor": 4.0, "original_max_position_embeddings": 4096,
                     "high_limit": "half_dim"}, tolerance="frequency", description="the inverted ramp at L0 4096"),
    CaseSpec(id="lg.yarn_attention_factor.mscale_all_dim_only", function="yarn_attention_factor", inputs={},
             params={"scaling_factor": 4.0, "mscale": 0.0, "mscale_all_dim": 0.707}, tolerance="frequency",
             description="g(s, m2) where the ratio gives 1 / g(s, m2)"),
    CaseSpec(id="lg.yarn_attention_factor.both", function="yarn_attention_factor", inputs={},
             params={"scaling_factor": 40.0, "mscale": 0.707, "mscale_all_dim": 1.0}, tolerance="frequency",
             description="both set: the ratio"),
    CaseSpec(id="lg.linear_scaled_frequencies.d96.s3", function="linear_scaled_frequencies", inputs={},
             params={"dim": 96, "base": 1_000_000.0, "scaling_factor": 3.0}, tolerance="frequency"),
]


def test_extra_cases_show_the_two_yarn_divergences():
    results = {r.case_id: r for r in run_cases(load_adapter(MODULE, dtype="float32"),
                                               build_cases(EXTRA, dtypes=["float32"]))}
    assert results["lg.yarn_frequencies.llama2.half_dim"].status == "fail"
    assert results["lg.yarn_attention_factor.mscale_all_dim_only"].status == "fail"
    assert results["lg.yarn_attention_factor.both"].status == "pass"
    assert results["lg.linear_scaled_frequencies.d96.s3"].status == "pass"
    adapter = adapter_module.make_adapter(dtype="float32", device="cpu")
    got = adapter.yarn_attention_factor(4.0, mscale=0.0, mscale_all_dim=0.707)
    assert abs(got - (0.1 * 0.707 * np.log(4.0) + 1)) < 1e-6  # g(s, m2), not 1 / g(s, m2)


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
        specs.append(CaseSpec(id=f"state.{step}.rope_cos_sin", function="rope_cos_sin",
                              inputs={"positions": Arange(start, start + length)},
                              params={"dim": dim, "base": base}, tolerance="cos_sin"))
        specs.append(CaseSpec(id=f"state.{step}.llama3_scaled_frequencies", function="llama3_scaled_frequencies",
                              inputs={}, params={"dim": dim, "base": base,
                                                 "original_max_position_embeddings": 64 * length},
                              tolerance="frequency"))
    return specs


def test_calls_that_change_base_dim_length_and_dtype_share_no_stale_table():
    specs = _sequence()
    adapters = {dtype: load_adapter(MODULE, dtype=dtype) for dtype in ("float32", "bfloat16")}
    for dtype in ("float32", "bfloat16", "float32"):
        results = run_cases(adapters[dtype], build_cases(specs, dtypes=[dtype]))
        assert {r.status for r in results} == {"pass"}, [(r.case_id, r.message) for r in results if r.status != "pass"]


def test_unsupported_parameters_are_not_implemented():
    adapter = adapter_module.make_adapter(dtype="float32", device="cpu")
    with pytest.raises(NotImplementedError, match="permutation"):
        adapter.apply_rope(np.zeros((2, 8)), np.arange(2), layout="interleaved")
    with pytest.raises(NotImplementedError, match="rope_n_elem"):
        adapter.apply_rope(np.zeros((2, 8)), np.arange(2), rotary_dim=4, rotated_slice="last")
    with pytest.raises(NotImplementedError, match="fractional"):
        adapter.apply_rope(np.zeros((2, 8)), np.arange(2), position_offset=0.5)
    with pytest.raises(NotImplementedError, match="half_dim"):
        adapter.yarn_frequencies(64, scaling_factor=4.0, original_max_position_embeddings=4096)
    with pytest.raises(NotImplementedError, match="attention_factor"):
        adapter.yarn_attention_factor(4.0, attention_factor=0.5)
    with pytest.raises(ValueError, match="linear_rule"):
        adapter_module.make_adapter(dtype="float32", device="cpu", linear_rule="pi")
