"""The ggml adapter (ggml-python, CPU back end): mapping sound, divergences exactly those listed."""

import importlib.metadata
import inspect

import numpy as np
import pytest

pytest.importorskip("ggml")

from posref.adapters import ggml as adapter_module  # noqa: E402

if adapter_module.available() is not None:
    pytest.skip(adapter_module.available(), allow_module_level=True)

from adapter_harness import run_adapter, statuses  # noqa: E402

import posref  # noqa: E402

MODULE = "posref.adapters.ggml"
FUNCTIONS = {"apply_rope", "rope_cos_sin", "apply_mrope", "yarn_correction_range", "alibi_slopes"}


@pytest.fixture(scope="module")
def adapter():
    return adapter_module.make_adapter(dtype="float32", device="cpu")


@pytest.mark.parametrize("dtype", adapter_module.ADAPTER_DTYPES)
def test_cases_conform_or_are_listed(dtype):
    results = run_adapter(MODULE, "ggml", dtype, FUNCTIONS)
    status = statuses(results)
    for case_id in ("apply_rope.half.hard_positions", "apply_rope.interleaved.hard_positions",
                    "apply_rope.half.partial_first", "apply_rope.interleaved.partial_first",
                    "apply_rope.half.batch_positions", "apply_rope.half.position_offset",
                    "adapters.apply_rope.half.contiguous_offset", "apply_mrope.qwen2_vl.half", "apply_mrope.batch",
                    "alibi_slopes.h12", "alibi_slopes.h20", "yarn_correction_range.llama2.truncate"):
        assert status[case_id] == "pass", case_id
    for case_id in ("apply_rope.half.partial_last", "apply_rope.half.proportional",
                    "yarn_correction_range.llama2.exact", "apply_mrope.interleaved_layout"):
        assert status[case_id] == "not_implemented", case_id


def test_metadata():
    assert adapter_module.available() is None
    assert adapter_module.ADAPTER_VERSION == importlib.metadata.version("ggml-python")
    assert adapter_module.ADAPTER_NAME == "ggml"
    assert set(adapter_module.ADAPTER_DTYPES) == {"float32", "float16"}


def test_methods_are_called_like_the_spec_functions(adapter):
    for name in FUNCTIONS:
        ours = inspect.signature(getattr(adapter, name)).parameters
        spec = inspect.signature(getattr(posref, name)).parameters
        assert list(ours) == list(spec), name
        for key, parameter in spec.items():
            assert ours[key].kind == parameter.kind, (name, key)
            assert ours[key].default == parameter.default, (name, key)


def test_one_instance_across_changing_bases_dims_lengths_and_dtypes():
    """Calls on one adapter object that change base, dim, length and dtype: each gets its own context."""
    rng = np.random.default_rng(7)
    adapter = adapter_module.make_adapter(dtype="float32", device="cpu")
    calls = [
        (64, 10_000.0, 16, "half", None), (64, 500_000.0, 16, "half", None), (32, 500_000.0, 16, "half", None),
        (32, 500_000.0, 40, "interleaved", None), (32, 10.0, 5, "interleaved", 16), (64, 10_000.0, 1, "half", None),
    ]
    for dim, base, length, layout, rotary_dim in calls:
        x = rng.standard_normal((2, length, dim))
        positions = rng.permutation(length)
        got = adapter.apply_rope(x, positions, base=base, layout=layout, rotary_dim=rotary_dim)
        want = posref.apply_rope(x, positions, base=base, layout=layout, rotary_dim=rotary_dim)
        np.testing.assert_allclose(got, want, atol=2e-5, err_msg=str((dim, base, length, layout, rotary_dim)))
        cos, _ = adapter.rope_cos_sin(positions, dim, base=base, layout=layout)
        np.testing.assert_allclose(cos, posref.rope_cos_sin(positions, dim, base=base, layout=layout)[0], atol=2e-6)
    x = rng.standard_normal((1, 8, 16))
    for dtype, atol in (("float16", 4e-3), ("float32", 2e-6), ("float16", 4e-3)):
        other = adapter_module.make_adapter(dtype=dtype, device="cpu")
        np.testing.assert_allclose(other.apply_rope(x, np.arange(8), base=100.0),
                                   posref.apply_rope(x, np.arange(8), base=100.0), atol=atol, err_msg=dtype)


def test_angles_come_from_repeated_float32_products(adapter):
    """The divergence behind the rope_cos_sin xfails: pair 38 at position 4095 is theta_scale**38 by 38 products."""
    cos, _ = adapter.rope_cos_sin(np.array([4095]), 128)
    theta, scale = np.float32(4095.0), np.float32(10_000.0) ** np.float32(-2 / 128)
    for _ in range(38):
        theta = np.float32(theta * scale)
    assert abs(float(theta) / (4095 * 10_000.0 ** (-76 / 128)) - 1) > 1e-6
    np.testing.assert_allclose(cos[0, 38], np.cos(np.float64(theta)), atol=3e-7)


def test_imrope_leaves_pairs_beyond_the_sections_to_the_fourth_coordinate(adapter):
    """Qwen3-VL's sections (24, 20, 20): ggml turns 22 pairs by t, Qwen3-VL (posref interleaved=True) 24."""
    x = np.zeros((1, 128))
    x[:, :64] = 1.0
    positions = np.array([[5], [0], [0]])
    got = adapter.apply_mrope(x, positions, mrope_section=[24, 20, 20], section_order="round_robin")
    want = posref.apply_mrope(x, positions, mrope_section=[24, 20, 20], section_order="round_robin")
    turned = np.nonzero(np.abs(got[0, 64:]) > 1e-9)[0]
    assert len(turned) == 22 and 61 not in turned and 62 not in turned
    assert len(np.nonzero(np.abs(want[0, 64:]) > 1e-9)[0]) == 24


def test_by_hand(adapter):
    assert adapter.yarn_correction_range(128, original_max_position_embeddings=4096) == (20.0, 46.0)
    np.testing.assert_allclose(adapter.alibi_slopes(12), posref.alibi_slopes(12), atol=1e-7)
    np.testing.assert_allclose(adapter.alibi_slopes(4, max_bias=4.0), [0.5, 0.25, 0.125, 0.0625], atol=1e-7)


@pytest.mark.parametrize("call, words", [
    (lambda a: a.apply_rope(np.zeros((2, 8)), np.arange(2), rotary_dim=4, rotated_slice="last"), "first n_dims"),
    (lambda a: a.apply_rope(np.zeros((2, 8)), np.arange(2), layout="neox"), "GGML_ROPE_TYPE_NEOX"),
    (lambda a: a.apply_rope(np.zeros((2, 8)), np.array([0.5, 1.0])), "int32"),
    (lambda a: a.apply_rope(np.zeros((2, 8)), np.array([0, 2**31])), "int32"),
    (lambda a: a.apply_mrope(np.zeros((2, 8)), np.zeros((3, 2), dtype=int), mrope_section=[1, 1, 2],
                             layout="interleaved"), "layout='half'"),
    (lambda a: a.yarn_correction_range(64, original_max_position_embeddings=2048, truncate=False), "truncate"),
])
def test_unsupported_parameters_are_not_implemented(adapter, call, words):
    with pytest.raises(NotImplementedError, match=words):
        call(adapter)


@pytest.mark.parametrize("call", [
    lambda a: a.apply_rope(np.zeros((2, 7)), np.arange(2)),
    lambda a: a.apply_rope(np.zeros((2, 8)), np.arange(2), rotary_dim=10),
    lambda a: a.alibi_slopes(0),
])
def test_inputs_that_would_abort_are_refused(adapter, call):
    with pytest.raises(adapter_module.GgmlAbort, match="GGML_ASSERT"):
        call(adapter)
