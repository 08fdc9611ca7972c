"""The torchtune adapter: mapping sound, divergences exactly those listed."""

import importlib.metadata
import inspect
import math

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("torchtune")

from posref.adapters import torchtune as adapter_module  # noqa: E402

if adapter_module.available() is not None:
    pytest.skip(adapter_module.available(), allow_module_level=True)

from adapter_harness import read_xfails, run_adapter, statuses  # noqa: E402

import posref  # noqa: E402
from posref.conformance.adapter import Adapter, AdapterError, load_adapter  # noqa: E402
from posref.conformance.runner import run_cases  # noqa: E402
from posref.golden.cases import CASES  # noqa: E402
from posref.golden.registry import Arange, CaseSpec, Normal, Values, build_cases  # noqa: E402

MODULE = "posref.adapters.torchtune"
FUNCTIONS = {
    "rope_frequencies", "rope_cos_sin", "apply_rotary", "apply_rope", "llama3_scaled_frequencies",
    "apply_axial_rope", "t5_relative_bucket", "t5_relative_bias",
}


@pytest.fixture(scope="module")
def adapter():
    return adapter_module.make_adapter(dtype="float32", device="cpu")


def test_cases_conform_or_are_listed_float32():
    results = run_adapter(MODULE, "torchtune", "float32", FUNCTIONS)
    status = statuses(results)
    for case_id in ("apply_rope.half.hard_positions", "apply_rope.interleaved.hard_positions",
                    "rope_cos_sin.half.hard_positions", "rope_cos_sin.interleaved.hard_positions"):
        assert status[case_id] == "pass", case_id
    _check_statuses(status)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_cases_conform_or_are_listed_16_bit(dtype):
    """As in float32, without the four cases at positions near 2**20.

    torchtune caches every position up to the largest: those four cases
    build caches of 2**20 rows (about 3 GB and several seconds each), so
    they run here in float32 only; ``posref matrix`` runs them in every dtype.
    """
    cases = build_cases([s for s in CASES if s.function in FUNCTIONS and "hard_positions" not in s.id], dtypes=[dtype])
    reasons = read_xfails("torchtune", dtype)
    results = run_cases(load_adapter(MODULE, dtype=dtype), cases, known=reasons)
    unexpected = [f"{r.status} {r.case_id}: {r.message}" for r in results
                  if r.status in ("fail", "crash", "wrong_error", "error", "timeout")]
    stale = [r.case_id for r in results if r.status == "fixed"]
    assert not unexpected and not stale, unexpected + stale
    assert {r.case_id for r in results if r.status == "known"} <= set(reasons)
    _check_statuses({r.case_id: r.status for r in results})


def _check_statuses(status):
    for case_id in ("apply_rope.half.batch_positions", "apply_rope.half.position_offset",
                    "apply_rotary.half.small", "apply_rotary.interleaved.small",
                    "llama3_scaled_frequencies.llama4_scout", "t5_relative_bias.bidirectional",
                    "t5_relative_bucket.bidirectional.b64.d256"):
        assert status[case_id] == "pass", case_id
    for case_id in ("apply_rope.half.partial_first", "t5_relative_bucket.causal.b32.d128",
                    "t5_relative_bucket.bidirectional.far", "t5_relative_bias.decoding_long"):
        assert status[case_id] == "not_implemented", case_id


def test_metadata():
    assert adapter_module.available() is None
    assert adapter_module.ADAPTER_VERSION == importlib.metadata.version("torchtune").split("+")[0]
    assert adapter_module.ADAPTER_NAME == "torchtune"
    assert "float64" not in adapter_module.ADAPTER_DTYPES


def test_methods_are_called_like_the_spec_functions(adapter):
    for name in FUNCTIONS:
        ours = inspect.signature(getattr(adapter, name)).parameters
        spec = inspect.signature(getattr(posref, name)).parameters
        assert list(ours) == list(spec), name
        for key, parameter in spec.items():
            assert ours[key].kind == parameter.kind, (name, key)
            assert ours[key].default == parameter.default, (name, key)


def test_configuration_errors():
    with pytest.raises(AdapterError, match="'qwen2' or 'phi3'"):
        adapter_module.make_adapter(dtype="float32", device="cpu", half_layout_module="llama")


def test_cuda_without_a_device_is_refused(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(AdapterError, match="no CUDA device"):
        adapter_module.make_adapter(dtype="float32", device="cuda")


# -- Phi-3's module, which keeps cos/sin in float32 ------------------------------------------

_SHORT_ROPE = [s for s in CASES if s.function in ("apply_rope", "apply_rotary", "rope_cos_sin")
               and "hard_positions" not in s.id and "invalid" not in s.id]


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_phi3_module_conforms_on_the_half_layout(dtype):
    target = adapter_module.TorchtuneAdapter(dtype=dtype, device="cpu", half_layout_module="phi3")
    adapter = Adapter(target=target, name="torchtune-phi3", version=adapter_module.ADAPTER_VERSION, dtype=dtype,
                      device="cpu", source=MODULE)
    results = run_cases(adapter, build_cases(_SHORT_ROPE, dtypes=[dtype]))
    status = {r.case_id: r.status for r in results}
    assert {s for s in status.values()} <= {"pass", "not_implemented"}, [r.message for r in results]
    assert status["apply_rope.half.short"] == "pass"
    assert status["apply_rotary.half.small"] == "pass"


def test_phi3_multiplies_in_float32_and_qwen2_in_the_activation_dtype():
    """The same bfloat16 input: Qwen2 rounds cos/sin to bfloat16 first, Phi-3 does not."""
    import torch

    x = np.full((1, 8), 1.0)
    positions = np.array([1000])
    qwen2 = adapter_module.TorchtuneAdapter(dtype="bfloat16", device="cpu")
    phi3 = adapter_module.TorchtuneAdapter(dtype="bfloat16", device="cpu", half_layout_module="phi3")
    exact = posref.apply_rope(x, positions)
    a, b = qwen2.apply_rope(x, positions), phi3.apply_rope(x, positions)
    assert not np.array_equal(a, b)
    cos = torch.tensor(np.cos(1000.0), dtype=torch.float32)
    sin = torch.tensor(np.sin(1000.0), dtype=torch.float32)
    # channel 0 is x0 cos - x4 sin with theta_0 = 1, rounded once (Phi-3) or after rounding cos and sin (Qwen2)
    assert b[0, 0] == float((cos - sin).to(torch.bfloat16))
    assert a[0, 0] == float((cos.to(torch.bfloat16) - sin.to(torch.bfloat16)).to(torch.bfloat16))
    assert abs(b[0, 0] - exact[0, 0]) <= 2.0**-8 * abs(exact[0, 0])


# -- cases beyond the golden registry -------------------------------------------------------


def _tile(side, cls_last=True, tiles=1):
    """torchtune's vision coordinates: G x G patches counted from 1, row-major, one class token at (0, 0)."""
    patch = np.arange(side * side)
    y, x = patch // side + 1, patch % side + 1
    y = np.concatenate([y, [0]]) if cls_last else np.concatenate([[0], y])
    x = np.concatenate([x, [0]]) if cls_last else np.concatenate([[0], x])
    return Values(np.stack([np.tile(y, tiles), np.tile(x, tiles)]).tolist(), "int64")


EXTRA = [
    CaseSpec(id="tt.apply_axial_rope.grid3.cls_last", function="apply_axial_rope",
             inputs={"x": Normal((2, 10, 16)), "positions_2d": _tile(3)}, tolerance="elementwise",
             description="3 x 3 patches and a trailing class token"),
    CaseSpec(id="tt.apply_axial_rope.grid2.cls_first.two_tiles", function="apply_axial_rope",
             inputs={"x": Normal((1, 3, 10, 32)), "positions_2d": _tile(2, cls_last=False, tiles=2)},
             params={"base": 100.0}, tolerance="elementwise", description="two tiles of 2 x 2, class token first"),
    CaseSpec(id="tt.apply_axial_rope.not_a_grid", function="apply_axial_rope",
             inputs={"x": Normal((4, 16)), "positions_2d": Values([[0, 0, 1, 1], [0, 1, 0, 1]], "int64")},
             tolerance="elementwise", description="coordinates counted from 0: not torchtune's grid"),
    CaseSpec(id="tt.t5_relative_bias.scattered", function="t5_relative_bias",
             inputs={"table": Normal((32, 3)), "query_positions": Values([0, 2, 5, 40], "int64"),
                     "key_positions": Arange(0, 50)}, tolerance="t5_bias", description="queries anywhere"),
    CaseSpec(id="tt.t5_relative_bucket.wide", function="t5_relative_bucket",
             inputs={"relative_position": Arange(-3000, 3001)}, params={"num_buckets": 64, "max_distance": 800},
             tolerance="t5_bucket", description="every |r| < 3001"),
    CaseSpec(id="tt.apply_rope.interleaved.offset", function="apply_rope",
             inputs={"x": Normal((2, 1, 4, 16)), "positions": Arange(0, 4)},
             params={"layout": "interleaved", "position_offset": 4000}, tolerance="rope",
             description="decoding at 4000..4003 through input_pos"),
    CaseSpec(id="tt.llama3_scaled_frequencies.d64", function="llama3_scaled_frequencies", inputs={},
             params={"dim": 64, "base": 10_000.0, "scaling_factor": 4.0, "low_freq_factor": 2.0,
                     "high_freq_factor": 8.0, "original_max_position_embeddings": 2048}, tolerance="frequency",
             description="other factors"),
]


@pytest.mark.parametrize("dtype", adapter_module.ADAPTER_DTYPES)
def test_extra_cases(dtype):
    results = run_cases(load_adapter(MODULE, dtype=dtype), build_cases(EXTRA, dtypes=[dtype]))
    status = {r.case_id: r.status for r in results}
    assert status.pop("tt.apply_axial_rope.not_a_grid") == "not_implemented"
    assert set(status.values()) == {"pass"}, [r.message for r in results]


def test_vision_rope_by_hand(adapter):
    """dim 8: per-axis frequencies [1, 0.01] at base 10000; patch (row 1, column 2) of a 2 x 2 grid."""
    x = np.zeros((5, 8), dtype=np.float32)
    x[:, 0::2] = 1.0  # every pair (1, 0): rotated it reads (cos, sin)
    grid = np.array([[1, 1, 2, 2, 0], [1, 2, 1, 2, 0]])
    got = adapter.apply_axial_rope(x, grid)
    token = got[1]  # row 1, column 2: angles (2 * 1, 2 * 0.01, 1 * 1, 1 * 0.01), column block first
    np.testing.assert_allclose(token[0::2], np.cos([2.0, 0.02, 1.0, 0.01]), rtol=1e-6)
    np.testing.assert_allclose(token[1::2], np.sin([2.0, 0.02, 1.0, 0.01]), rtol=1e-5)
    np.testing.assert_array_equal(got[4], x[4])  # the class token is not rotated


def test_t5_buckets_by_hand(adapter):
    """32 buckets, 128: r = 0 -> 0, -1 -> 1, +1 -> 17, -8 -> 8, +128 -> 31 (the last bucket)."""
    got = adapter.t5_relative_bucket(np.array([0, -1, 1, -8, 128]))
    np.testing.assert_array_equal(got, [0, 1, 17, 8, 31])


def test_llama3_theta_matches_the_rule_by_hand(adapter):
    """L0 = 100, dim 8, base 1e4: wavelength 2 pi kept, 200 pi and 2000 pi divided by 8."""
    got = adapter.llama3_scaled_frequencies(8, base=10_000.0, original_max_position_embeddings=100)
    np.testing.assert_allclose(got[[0, 2, 3]], [1.0, 0.01 / 8, 0.001 / 8], rtol=1e-6)
    gamma = (100 / (20 * math.pi) - 1) / 3
    np.testing.assert_allclose(got[1], (1 - gamma) * 0.1 / 8 + gamma * 0.1, rtol=1e-6)


@pytest.mark.parametrize("call, words", [
    (lambda a: a.apply_rope(np.zeros((2, 8)), np.arange(2), rotary_dim=4), "whole head"),
    (lambda a: a.apply_rope(np.zeros((2, 8)), np.arange(2), layout="neox"), "layouts are 'half' and 'interleaved'"),
    (lambda a: a.apply_rope(np.zeros((2, 8)), np.arange(2), position_offset=0.5), "fractional offset"),
    (lambda a: a.rope_cos_sin(np.array([0.5]), 4), "integer positions"),
    (lambda a: a.apply_rotary(np.zeros((2, 8)), np.zeros((2, 4)), layout="neox"), "layouts"),
    (lambda a: a.apply_axial_rope(np.zeros((5, 8)), np.zeros((2, 5), dtype=int), axis_order="yx"),
     "axis_order='xy'"),
    (lambda a: a.apply_axial_rope(np.zeros((4, 8)), np.zeros((2, 4), dtype=int)), "fixed grid"),
    (lambda a: a.t5_relative_bucket(np.arange(3), bidirectional=False), "encoder"),
    (lambda a: a.t5_relative_bias(np.zeros((32, 2)), np.arange(2), np.arange(2), bidirectional=False), "encoder"),
    (lambda a: a.t5_relative_bucket(np.array([5000])), "square"),
    (lambda a: a.t5_relative_bias(np.zeros((32, 2)), np.array([5000]), np.arange(2)), "square"),
    (lambda a: a.t5_relative_bias(np.zeros((32, 2)), np.array([-1]), np.arange(2)), "0 .. max_seq_len - 1"),
])
def test_unsupported_parameters_are_not_implemented(adapter, call, words):
    with pytest.raises(NotImplementedError, match=words):
        call(adapter)
