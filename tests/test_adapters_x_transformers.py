"""The x-transformers adapter: mapping sound, divergences exactly those listed."""

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("x_transformers")

from adapter_harness import run_adapter, statuses  # noqa: E402

from posref.adapters import x_transformers as adapter_module  # noqa: E402

FUNCTIONS = {
    "rope_frequencies", "rope_angles", "apply_rotary", "apply_rope", "apply_xpos", "alibi_slopes", "alibi_bias",
    "t5_relative_bucket", "t5_relative_bias", "sinusoidal_encoding", "learned_position_embedding",
}


@pytest.mark.parametrize("dtype", adapter_module.ADAPTER_DTYPES)
def test_cases_conform_or_are_listed(dtype):
    results = run_adapter("posref.adapters.x_transformers", "x_transformers", dtype, FUNCTIONS)
    status = statuses(results)
    for case_id in ("apply_rope.interleaved.hard_positions", "apply_rope.interleaved.partial_first",
                    "alibi_bias.symmetric.causal", "alibi_bias.symmetric.bidirectional_long",
                    "t5_relative_bias.decoding_long", "t5_relative_bucket.causal.b32.d128",
                    "sinusoidal_encoding.concat.dim", "adapters.apply_xpos.floor_half.key"):
        assert status[case_id] == "pass", case_id
    assert status["apply_rope.half.short"] == "not_implemented"


def test_available_and_metadata():
    assert adapter_module.available() is None
    assert adapter_module.ADAPTER_VERSION == __import__("importlib.metadata").metadata.version("x-transformers")


def test_unsupported_parameters_are_not_implemented():
    adapter = adapter_module.make_adapter(dtype="float32", device="cpu")
    x = np.zeros((1, 5, 8))
    with pytest.raises(NotImplementedError, match="interleaved"):
        adapter.apply_rope(x, np.arange(5), layout="half")
    with pytest.raises(NotImplementedError, match="floor_half"):
        adapter.apply_xpos(x, np.arange(5), centering="ceil_half")  # odd length: the centrings differ
    with pytest.raises(NotImplementedError, match="symmetric"):
        adapter.alibi_bias([0.5], np.arange(3), np.arange(3), form="distance")
    with pytest.raises(NotImplementedError, match="last T"):
        adapter.t5_relative_bias(np.zeros((32, 2)), [0, 2], np.arange(4))


def test_t5_bias_uses_unit_scale():
    """Inside Attention x-transformers multiplies by sqrt(dim_head); the adapter maps that away."""
    from posref import t5_relative_bias

    table = np.arange(64, dtype=np.float64).reshape(32, 2) / 8
    adapter = adapter_module.make_adapter(dtype="float32", device="cpu")
    got = adapter.t5_relative_bias(table, np.arange(6), np.arange(6), bidirectional=True)
    np.testing.assert_array_equal(got, t5_relative_bias(table, np.arange(6), np.arange(6)))
