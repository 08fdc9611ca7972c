"""The keras-hub adapter (JAX backend): mapping sound, divergences exactly those listed."""

import importlib.util

import numpy as np
import pytest

if importlib.util.find_spec("keras_hub") is None or importlib.util.find_spec("jax") is None:
    pytest.skip("keras-hub or jax is not installed", allow_module_level=True)

from posref.adapters import keras_hub as adapter_module  # noqa: E402

if adapter_module.available() is not None:
    pytest.skip(adapter_module.available(), allow_module_level=True)

from adapter_harness import run_adapter, statuses  # noqa: E402

FUNCTIONS = {"apply_rope", "linear_scaled_frequencies", "ntk_scaled_frequencies", "yarn_frequencies",
             "sinusoidal_encoding", "alibi_slopes", "alibi_bias"}


@pytest.mark.parametrize("dtype", adapter_module.ADAPTER_DTYPES)
def test_cases_conform_or_are_listed(dtype):
    results = run_adapter("posref.adapters.keras_hub", "keras_hub", dtype, FUNCTIONS)
    status = statuses(results)
    for case_id in ("apply_rope.half.hard_positions", "apply_rope.half.batch_positions",
                    "apply_rope.half.position_offset", "alibi_slopes.h12",
                    "adapters.linear_scaled_frequencies.d128.s4", "adapters.yarn_frequencies.d128.s4.truncate"):
        assert status[case_id] == "pass", case_id
    assert status["adapters.ntk_scaled_frequencies.d128.s4"] == "known"


def test_dynamic_rope_type_is_a_uniform_rescale():
    """The divergence behind the NTK xfails: every frequency is divided by s**(d/(d-2))."""
    from posref import rope_frequencies

    adapter = adapter_module.make_adapter(dtype="float32", device="cpu")
    ratio = adapter.ntk_scaled_frequencies(128, scaling_factor=4.0) / rope_frequencies(128)
    np.testing.assert_allclose(ratio, 4.0 ** (-128 / 126), rtol=1e-5)


def test_unsupported_parameters_are_not_implemented():
    adapter = adapter_module.make_adapter(dtype="float32", device="cpu")
    with pytest.raises(NotImplementedError, match="half"):
        adapter.apply_rope(np.zeros((2, 4, 8)), np.arange(4), layout="interleaved")
    with pytest.raises(NotImplementedError, match="partial"):
        adapter.apply_rope(np.zeros((2, 4, 8)), np.arange(4), rotary_dim=4)
    with pytest.raises(NotImplementedError, match="own slopes"):
        adapter.alibi_bias([0.3, 0.1], np.arange(3), np.arange(3), form="last_key_anchored")
