"""The MLX adapter (CPU back end): mapping sound, divergences exactly those listed."""

import importlib.metadata
import inspect

import numpy as np
import pytest

pytest.importorskip("mlx.core")

from posref.adapters import mlx as adapter_module  # noqa: E402

if adapter_module.available() is not None:
    pytest.skip(adapter_module.available(), allow_module_level=True)

from adapter_harness import run_adapter, statuses  # noqa: E402

import posref  # noqa: E402

MODULE = "posref.adapters.mlx"
FUNCTIONS = {"apply_rope", "rope_cos_sin", "apply_rotary", "sinusoidal_encoding", "alibi_slopes", "alibi_bias"}


@pytest.fixture(scope="module")
def adapter():
    return adapter_module.make_adapter(dtype="float32", device="cpu")


@pytest.mark.parametrize("dtype", adapter_module.ADAPTER_DTYPES)
def test_cases_conform_or_are_listed(dtype):
    results = run_adapter(MODULE, "mlx", dtype, FUNCTIONS)
    status = statuses(results)
    for case_id in ("apply_rope.half.hard_positions", "apply_rope.interleaved.hard_positions",
                    "apply_rope.half.partial_first", "apply_rope.interleaved.partial_first",
                    "apply_rope.half.partial_head_dim_denominator", "apply_rope.half.proportional",
                    "apply_rope.half.batch_positions", "apply_rope.half.position_offset",
                    "adapters.apply_rope.half.contiguous_offset", "rope_cos_sin.half.hard_positions",
                    "rope_cos_sin.interleaved.hard_positions", "apply_rotary.half.small",
                    "apply_rotary.interleaved.small", "alibi_slopes.h12", "alibi_bias.symmetric.causal",
                    "alibi_bias.distance.causal"):
        assert status[case_id] == "pass", case_id
    for case_id in ("apply_rope.half.partial_last", "alibi_bias.key_index.causal",
                    "sinusoidal_encoding.interleaved.dim"):
        assert status[case_id] == "not_implemented", case_id


def test_metadata():
    assert adapter_module.available() is None
    assert adapter_module.ADAPTER_VERSION == importlib.metadata.version("mlx")
    assert adapter_module.ADAPTER_NAME == "mlx"
    assert "float64" not in adapter_module.ADAPTER_DTYPES


def test_methods_are_called_like_the_spec_functions(adapter):
    for name in FUNCTIONS:
        ours = inspect.signature(getattr(adapter, name)).parameters
        spec = inspect.signature(getattr(posref, name)).parameters
        assert list(ours) == list(spec), name
        for key, parameter in spec.items():
            assert ours[key].kind == parameter.kind, (name, key)
            assert ours[key].default == parameter.default, (name, key)


def test_one_instance_across_changing_bases_dims_lengths_and_dtypes():
    """Calls on one adapter object that change base, dim, length and dtype: nothing is reused wrongly."""
    rng = np.random.default_rng(3)
    adapter = adapter_module.make_adapter(dtype="float32", device="cpu")
    calls = [
        (64, 10_000.0, 16, "half", 0), (64, 500_000.0, 16, "half", 0), (32, 500_000.0, 16, "half", 0),
        (32, 500_000.0, 5, "interleaved", 0), (32, 10.0, 5, "interleaved", 1000), (64, 10_000.0, 16, "half", 0),
    ]
    for dim, base, length, layout, start in calls:
        x = rng.standard_normal((2, length, dim))
        positions = np.arange(start, start + length)
        got = adapter.apply_rope(x, positions, base=base, layout=layout)
        want = posref.apply_rope(x, positions, base=base, layout=layout)
        np.testing.assert_allclose(got, want, atol=2e-4 if start else 2e-5, err_msg=str((dim, base, length, layout)))
        scattered = rng.permutation(positions)  # one token per batch row, offset=array
        got = adapter.apply_rope(x, scattered, base=base, layout=layout)
        np.testing.assert_allclose(got, posref.apply_rope(x, scattered, base=base, layout=layout),
                                   atol=2e-4 if start else 2e-5)
        cos, _ = adapter.rope_cos_sin(positions, dim, base=base, layout=layout)
        np.testing.assert_allclose(cos, posref.rope_cos_sin(positions, dim, base=base, layout=layout)[0],
                                   atol=2e-4 if start else 2e-6)
    x = rng.standard_normal((1, 8, 16))
    for dtype, atol in (("bfloat16", 3e-2), ("float32", 2e-6), ("float16", 4e-3)):
        other = adapter_module.make_adapter(dtype=dtype, device="cpu")
        np.testing.assert_allclose(other.apply_rope(x, np.arange(8), base=100.0),
                                   posref.apply_rope(x, np.arange(8), base=100.0), atol=atol, err_msg=dtype)


def test_sinusoidal_frequencies_come_from_a_float32_exp():
    """The divergence behind the sinusoidal xfails: sigma_9 of dim 64 is 6.7e-7 relative off."""
    import mlx.nn as nn

    module = nn.SinusoidalPositionalEncoding(64, min_freq=1e-4, max_freq=1.0, scale=1.0)
    sigmas = np.array(module._sigmas).astype(np.float64)
    exact = 1e-4 ** (np.arange(32) / 31)
    relative = sigmas / exact - 1
    assert 6e-7 < relative[9] < 7e-7
    assert np.abs(relative).max() > 10 * 2.0**-24  # many float32 roundings, not one


@pytest.mark.parametrize("dtype, distance, rounded", [("bfloat16", 742, 744), ("float16", 2061, 2060)])
def test_alibi_rounds_the_distance_to_the_score_dtype(dtype, distance, rounded):
    """int32 distances times 16-bit slopes promote to the 16-bit dtype: the distance is rounded first."""
    import mlx.core as mx
    import mlx.nn as nn

    mx_dtype = getattr(mx, dtype)
    bias = nn.ALiBi.create_alibi_matrix(distance + 1, 1, 8, offset=distance, dtype=mx_dtype)  # one query, key 0
    assert float(bias.astype(mx.float32)[0, 0, 0, 0]) == -float(rounded) * 0.5  # head 0 of 8: slope 0.5
    assert float(mx.array([distance], dtype=mx.int32).astype(mx_dtype).astype(mx.float32)[0]) == rounded


def test_apply_rotary_turns_by_the_given_angles(adapter):
    x = np.zeros((3, 8))
    x[:, :4] = 1.0  # half layout: pairs (j, j + 4) = (1, 0)
    angles = np.array([[0.0, 1.0, -2.0, 3.0], [0.5, 0.0, 1e-3, 100.0], [7.0, -7.0, 1e4, 0.25]])
    got = adapter.apply_rotary(x, angles)
    np.testing.assert_allclose(got[:, :4], np.cos(angles), atol=2e-6)
    np.testing.assert_allclose(got[:, 4:], np.sin(angles), atol=2e-6)


def test_by_hand(adapter):
    """Slopes for 12 heads, a symmetric bias row, and the concat sinusoid at position 1."""
    np.testing.assert_allclose(adapter.alibi_slopes(12)[8], 2**-0.5, rtol=1e-7)
    one_head = np.array([2.0**-8])  # the paper's slope for a single head
    bias = adapter.alibi_bias(one_head, np.array([3]), np.arange(6), form="symmetric", causal=False)
    np.testing.assert_array_equal(bias[0, 0], np.array([-3, -2, -1, 0, -1, -2]) * 2.0**-8)
    enc = adapter.sinusoidal_encoding(np.array([1.0]), 4, layout="concat", freq_denominator="half_dim_minus_one")
    np.testing.assert_allclose(enc[0], [np.sin(1.0), np.sin(1e-4), np.cos(1.0), np.cos(1e-4)], rtol=1e-6)


@pytest.mark.parametrize("call, words", [
    (lambda a: a.apply_rope(np.zeros((2, 8)), np.arange(2), rotary_dim=4, rotated_slice="last"), "first `dims`"),
    (lambda a: a.apply_rope(np.zeros((2, 8)), np.arange(2), layout="neox"), "traditional"),
    (lambda a: a.apply_rope(np.zeros((2, 8)), np.array([0.5, 1.0])), "integer offset"),
    (lambda a: a.apply_rope(np.zeros((2, 8)), np.arange(2), position_offset=0.5), "integer offset"),
    (lambda a: a.rope_cos_sin(np.arange(2), 8, layout="neox"), "traditional"),
    (lambda a: a.sinusoidal_encoding(np.arange(2), 8), "concat"),
    (lambda a: a.alibi_bias(np.array([0.5]), np.arange(2), np.arange(2), form="key_index"), "symmetric"),
    (lambda a: a.alibi_bias(np.array([0.5]), np.arange(2), np.arange(2), causal=False), "causal=True"),
    (lambda a: a.alibi_bias(np.array([0.3]), np.arange(2), np.arange(2)), "own slopes"),
    (lambda a: a.alibi_bias(np.array([2.0**-8]), np.arange(2), np.arange(1, 3)), "0 .. S-1"),
])
def test_unsupported_parameters_are_not_implemented(adapter, call, words):
    with pytest.raises(NotImplementedError, match=words):
        call(adapter)
