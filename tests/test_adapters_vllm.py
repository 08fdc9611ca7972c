"""The vLLM adapter (native PyTorch paths on the CPU): mapping sound, divergences exactly those listed."""

import importlib.metadata
import inspect

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("vllm")

from posref.adapters import vllm as adapter_module  # noqa: E402

if adapter_module.available() is not None:
    pytest.skip(adapter_module.available(), allow_module_level=True)

from adapter_harness import run_adapter, statuses  # noqa: E402

import posref  # noqa: E402
from posref.conformance.adapter import Adapter, AdapterError  # noqa: E402
from posref.conformance.runner import run_cases  # noqa: E402
from posref.golden.cases import CASES  # noqa: E402
from posref.golden.registry import build_cases  # noqa: E402

MODULE = "posref.adapters.vllm"
FUNCTIONS = {
    "rope_frequencies", "rope_cos_sin", "apply_rotary", "apply_rope", "apply_mrope", "linear_scaled_frequencies",
    "ntk_fixed_frequencies", "dynamic_ntk_frequencies", "yarn_frequencies", "yarn_attention_factor",
    "yarn_correction_range", "longrope_frequencies", "longrope_attention_factor", "llama3_scaled_frequencies",
    "alibi_slopes", "nope_attention_temperature",
}


@pytest.fixture(scope="module")
def adapter():
    return adapter_module.make_adapter(dtype="float32", device="cpu")


@pytest.mark.parametrize("dtype", adapter_module.ADAPTER_DTYPES)
def test_cases_conform_or_are_listed(dtype):
    results = run_adapter(MODULE, "vllm", dtype, FUNCTIONS)
    status = statuses(results)
    for case_id in ("apply_rope.half.hard_positions", "apply_rope.interleaved.hard_positions",
                    "apply_rope.half.partial_first", "apply_rope.interleaved.partial_first",
                    "apply_rope.half.proportional", "apply_rope.half.batch_positions",
                    "apply_rope.half.position_offset", "rope_cos_sin.half.hard_positions",
                    "apply_rotary.half.small", "apply_rotary.interleaved.small", "apply_mrope.batch",
                    "apply_mrope.qwen3_vl.interleaved", "apply_mrope.qwen2_vl.half", "alibi_slopes.h12",
                    "nope_attention_temperature.llama4.steps", "nope_attention_temperature.llama4.far",
                    "longrope_frequencies.phi3_5_mini.len4097", "longrope_frequencies.phi3_5_mini.len4096",
                    "adapters.yarn_frequencies.d128.s4.truncate", "adapters.yarn_frequencies.d64.s8.no_truncate"):
        assert status[case_id] == "pass", case_id
    for case_id in ("apply_rope.half.partial_last",
                    "adapters.linear_scaled_frequencies.d128.s4"):
        assert status[case_id] == "not_implemented", case_id


def test_metadata():
    assert adapter_module.available() is None
    assert adapter_module.ADAPTER_VERSION == importlib.metadata.version("vllm")
    assert adapter_module.ADAPTER_NAME == "vllm"
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
    with pytest.raises(AdapterError, match="'yarn' or 'deepseek'"):
        adapter_module.make_adapter(dtype="float32", device="cpu", yarn_module="llama")


def test_the_patch_is_undone():
    from vllm.model_executor import custom_op
    from vllm.model_executor.layers.rotary_embedding import phi3_long_rope_scaled_rope as phi3

    before = custom_op.get_cached_compilation_config, phi3.get_current_vllm_config
    adapter_module.make_adapter(dtype="float32", device="cpu").rope_frequencies(8)
    assert (custom_op.get_cached_compilation_config, phi3.get_current_vllm_config) == before


def test_one_instance_across_changing_bases_dims_lengths_and_dtypes():
    """get_rope caches modules in _ROPE_DICT: calls that change base, dim, length and dtype each get their own."""
    rng = np.random.default_rng(5)
    adapter = adapter_module.make_adapter(dtype="float32", device="cpu")
    calls = [
        (64, 10_000.0, 16, "half", None), (64, 500_000.0, 16, "half", None), (32, 500_000.0, 16, "half", None),
        (32, 500_000.0, 40, "interleaved", None), (32, 10.0, 5, "interleaved", 16), (64, 10_000.0, 16, "half", None),
    ]
    for dim, base, length, layout, rotary_dim in calls:
        x = rng.standard_normal((2, length, dim))
        positions = rng.permutation(length)
        got = adapter.apply_rope(x, positions, base=base, layout=layout, rotary_dim=rotary_dim)
        want = posref.apply_rope(x, positions, base=base, layout=layout, rotary_dim=rotary_dim)
        np.testing.assert_allclose(got, want, atol=2e-5, err_msg=str((dim, base, length, layout, rotary_dim)))
        cos, sin = adapter.rope_cos_sin(positions, dim, base=base, layout=layout)
        want_cos, want_sin = posref.rope_cos_sin(positions, dim, base=base, layout=layout)
        np.testing.assert_allclose(cos, want_cos, atol=2e-6)
        np.testing.assert_allclose(sin, want_sin, atol=2e-6)
    x = rng.standard_normal((1, 8, 16))
    for dtype, atol in (("bfloat16", 3e-2), ("float32", 2e-6), ("float16", 4e-3), ("float32", 2e-6)):
        other = adapter_module.make_adapter(dtype=dtype, device="cpu")
        np.testing.assert_allclose(other.apply_rope(x, np.arange(8), base=100.0),
                                   posref.apply_rope(x, np.arange(8), base=100.0), atol=atol, err_msg=dtype)
    for length in (4096, 8192, 4096):  # LongRoPE: short, long, short factors again (built outside get_rope's cache)
        got = adapter.longrope_frequencies(8, short_factor=np.ones(4), long_factor=np.full(4, 2.0),
                                           original_max_position_embeddings=4096, sequence_length=length)
        np.testing.assert_allclose(got, posref.rope_frequencies(8) / (1.0 if length <= 4096 else 2.0), rtol=1e-6)


def test_get_rope_does_not_key_longrope_on_max_model_len():
    """What the adapter avoids: get_rope returns a cached LongRoPE module built under another max_model_len.

    ``Phi3LongRoPEScaledRotaryEmbedding.__init__`` reads
    ``get_current_vllm_config().model_config.max_model_len`` to choose the
    long factors once, but ``get_rope``'s ``_ROPE_DICT`` key has no
    max_model_len: a second configuration in the same process gets the
    first one's choice.
    """
    from vllm.model_executor.layers.rotary_embedding import _ROPE_DICT, get_rope

    params = {"rope_type": "longrope", "rope_theta": 10_000.0, "short_factor": [1.0] * 4, "long_factor": [3.0] * 4,
              "original_max_position_embeddings": 64}
    _ROPE_DICT.clear()
    with adapter_module._cpu_config(32):  # max_model_len 32 <= 64: short factors
        first = get_rope(8, 128, rope_parameters=params)
    with adapter_module._cpu_config(128):  # max_model_len 128 > 64 would choose the long ones
        second = get_rope(8, 128, rope_parameters=params)
    assert second is first and not second.use_long_rope
    _ROPE_DICT.clear()


def test_deepseek_yarn_module_applies_mscale_alone():
    """DeepseekScalingRotaryEmbedding: mscale / mscale_all_dim, so mscale=0.707 alone gives 0.0707 ln 40 + 1."""
    target = adapter_module.VllmAdapter(dtype="float32", device="cpu", yarn_module="deepseek")
    adapter = Adapter(target=target, name="vllm-deepseek", version=adapter_module.ADAPTER_VERSION, dtype="float32",
                      device="cpu", source=MODULE)
    specs = [s for s in CASES if s.function in ("yarn_attention_factor", "yarn_frequencies") and "invalid" not in s.id]
    status = {r.case_id: r.status for r in run_cases(adapter, build_cases(specs, dtypes=["float32"]))}
    assert status["yarn_attention_factor.mscale_only"] == "pass"
    assert set(status.values()) <= {"pass", "not_implemented"}, status


def test_yarn_attention_factor_ignores_mscale_alone(adapter):
    got = adapter.yarn_attention_factor(40.0, mscale=0.707)
    assert got == pytest.approx(0.1 * np.log(40.0) + 1.0)


def test_dynamic_ntk_base_below_the_trained_length_is_complex(adapter):
    """The bug behind dynamic_ntk_frequencies.l0_4096.len1: (s L / L0 - (s - 1)) < 0 to a fractional power."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch: casting complex values to real
        got = adapter.dynamic_ntk_frequencies(128, scaling_factor=4.0, original_max_position_embeddings=4096,
                                              sequence_length=1)
    assert np.iscomplexobj(got) and abs(got[1].imag) > 0.01


def test_by_hand(adapter):
    np.testing.assert_allclose(adapter.alibi_slopes(12)[8], 2**-0.5, rtol=2e-7)
    np.testing.assert_allclose(adapter.rope_frequencies(8, base=10_000.0), [1.0, 0.1, 0.01, 0.001], rtol=1e-6)
    assert adapter.yarn_correction_range(128, original_max_position_embeddings=4096) == (20.0, 46.0)


@pytest.mark.parametrize("call, words", [
    (lambda a: a.apply_rope(np.zeros((2, 8)), np.arange(2), rotary_dim=4, rotated_slice="last"), "first rotary_dim"),
    (lambda a: a.apply_rope(np.zeros((2, 8)), np.arange(2), layout="neox"), "is_neox_style"),
    (lambda a: a.apply_rope(np.zeros((2, 8)), np.arange(2), rotary_dim=4, freq_denominator="head_dim"),
     "proportional"),
    (lambda a: a.apply_rope(np.zeros((2, 8)), np.arange(2), position_offset=0.5), "fractional offset"),
    (lambda a: a.rope_cos_sin(np.array([0.5]), 4), "integer positions"),
    (lambda a: a.linear_scaled_frequencies(8, scaling_factor=2.0), "divides the positions"),
    (lambda a: a.yarn_frequencies(8, scaling_factor=2.0, original_max_position_embeddings=64,
                                  extrapolation_factor=2.0), "extrapolation"),
    (lambda a: a.longrope_attention_factor(1.5, original_max_position_embeddings=3), "ratio"),
    (lambda a: a.apply_mrope(np.zeros((2, 8)), np.zeros((2, 2), dtype=int), mrope_section=[1, 1, 2]), "(3, ...)"),
])
def test_unsupported_parameters_are_not_implemented(adapter, call, words):
    with pytest.raises(NotImplementedError, match=words):
        call(adapter)
