"""The Megatron-Core adapter (CPU, unfused paths): mapping sound, divergences exactly those listed."""

import importlib.metadata
import inspect

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("megatron.core")

from posref.adapters import megatron_core as adapter_module  # noqa: E402

if adapter_module.available() is not None:
    pytest.skip(adapter_module.available(), allow_module_level=True)

from adapter_harness import run_adapter, statuses  # noqa: E402

import posref  # noqa: E402

MODULE = "posref.adapters.megatron_core"
FUNCTIONS = {
    "rope_frequencies", "rope_cos_sin", "apply_rotary", "apply_rope", "apply_mrope", "llama3_scaled_frequencies",
    "yarn_frequencies", "yarn_attention_factor", "yarn_correction_range", "t5_relative_bucket",
}


@pytest.fixture(scope="module")
def adapter():
    return adapter_module.make_adapter(dtype="float32", device="cpu")


@pytest.mark.parametrize("dtype", adapter_module.ADAPTER_DTYPES)
def test_cases_conform_or_are_listed(dtype):
    results = run_adapter(MODULE, "megatron_core", dtype, FUNCTIONS)
    status = statuses(results)
    for case_id in ("apply_rope.half.hard_positions", "apply_rope.interleaved.hard_positions",
                    "apply_rope.half.partial_first", "apply_rope.interleaved.partial_first",
                    "apply_rope.half.batch_positions", "apply_rope.half.position_offset",
                    "rope_cos_sin.half.hard_positions", "apply_rotary.interleaved.small", "apply_mrope.qwen2_vl.far",
                    "apply_mrope.batch", "yarn_attention_factor.mscale_only",
                    "adapters.yarn_frequencies.d64.s8.no_truncate", "t5_relative_bucket.causal.b32.d128"):
        assert status[case_id] == "pass", case_id
    for case_id in ("apply_rope.half.partial_last", "apply_mrope.qwen3_vl.interleaved",
                    "llama3_scaled_frequencies.llama4_scout", "yarn_attention_factor.override"):
        assert status[case_id] == "not_implemented", case_id


def test_metadata():
    assert adapter_module.available() is None
    assert adapter_module.ADAPTER_VERSION == importlib.metadata.version("megatron-core")
    assert adapter_module.ADAPTER_NAME == "megatron_core"
    assert "float64" not in adapter_module.ADAPTER_DTYPES


def test_methods_are_called_like_the_spec_functions(adapter):
    for name in FUNCTIONS:
        ours = inspect.signature(getattr(adapter, name)).parameters
        spec = inspect.signature(getattr(posref, name)).parameters
        assert list(ours) == list(spec), name
        for key, parameter in spec.items():
            assert ours[key].kind == parameter.kind, (name, key)
            assert ours[key].default == parameter.default, (name, key)


def test_the_patch_is_undone(adapter):
    import torch

    before = torch.cuda.current_device
    adapter.apply_rope(np.zeros((2, 8)), np.arange(2))
    assert torch.cuda.current_device is before


def test_one_instance_across_changing_bases_dims_lengths_and_dtypes():
    """Calls on one adapter object that change base, dim, length and dtype (RotaryEmbedding.forward is lru-cached)."""
    rng = np.random.default_rng(11)
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
        np.testing.assert_allclose(cos, posref.rope_cos_sin(positions, dim, base=base, layout=layout)[0], atol=2e-6)
    for scale, l0 in ((4.0, 4096), (8.0, 2048), (4.0, 4096)):  # YaRN modules of different factors in turn
        np.testing.assert_allclose(
            adapter.yarn_frequencies(64, scaling_factor=scale, original_max_position_embeddings=l0),
            posref.yarn_frequencies(64, scaling_factor=scale, original_max_position_embeddings=l0), rtol=2e-6)
    x = rng.standard_normal((1, 8, 16))
    for dtype, atol in (("bfloat16", 3e-2), ("float32", 2e-6), ("float16", 4e-3), ("float32", 2e-6)):
        other = adapter_module.make_adapter(dtype=dtype, device="cpu")
        np.testing.assert_allclose(other.apply_rope(x, np.arange(8), base=100.0),
                                   posref.apply_rope(x, np.arange(8), base=100.0), atol=atol, err_msg=dtype)


def test_rotary_percent_above_one_is_ignored(adapter):
    """The reason behind apply_rope.invalid.rotary_dim_too_large: rotary_percent > 1 leaves the whole head."""
    x = np.random.default_rng(0).standard_normal((2, 8))
    got = adapter.apply_rope(x, np.arange(2), rotary_dim=10)
    np.testing.assert_allclose(got, posref.apply_rope(x, np.arange(2)), atol=1e-6)


def test_by_hand(adapter):
    np.testing.assert_allclose(adapter.rope_frequencies(8), [1.0, 0.1, 0.01, 0.001], rtol=1e-6)
    assert adapter.yarn_correction_range(128, original_max_position_embeddings=4096) == (20.0, 46.0)
    assert adapter.yarn_attention_factor(40.0, mscale=0.707) == pytest.approx(0.0707 * np.log(40.0) + 1.0)
    np.testing.assert_array_equal(adapter.t5_relative_bucket(np.array([0, -1, 1, -8, 128])), [0, 1, 17, 8, 31])


@pytest.mark.parametrize("call, words", [
    (lambda a: a.apply_rope(np.zeros((2, 8)), np.arange(2), rotary_dim=4, rotated_slice="last"), "rotated_slice"),
    (lambda a: a.apply_rope(np.zeros((2, 8)), np.arange(2), layout="neox"), "rotary_interleaved"),
    (lambda a: a.apply_rope(np.zeros((2, 8)), np.arange(2), position_offset=0.5), "fractional offset"),
    (lambda a: a.apply_rope(np.zeros((2, 8)), np.array([-1, 0])), "0 .. max_seq_len - 1"),
    (lambda a: a.apply_mrope(np.zeros((2, 8)), np.zeros((3, 2), dtype=int), mrope_section=[1, 1, 2],
                             section_order="round_robin"), "contiguous sections"),
    (lambda a: a.llama3_scaled_frequencies(64, low_freq_factor=2.0), "fixes low_freq_factor"),
    (lambda a: a.yarn_attention_factor(4.0, attention_factor=1.2), "attention_factor"),
    (lambda a: a.yarn_frequencies(64, scaling_factor=4.0, original_max_position_embeddings=64,
                                  extrapolation_factor=0.0), "extrapolation"),
])
def test_unsupported_parameters_are_not_implemented(adapter, call, words):
    with pytest.raises(NotImplementedError, match=words):
        call(adapter)
