"""The rotary-embedding-torch adapter: mapping sound, divergences exactly those listed."""

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("rotary_embedding_torch")

from adapter_harness import run_adapter, statuses  # noqa: E402

from posref.adapters import rotary_embedding_torch as adapter_module  # noqa: E402

FUNCTIONS = {
    "rope_frequencies", "rope_angles", "apply_rotary", "apply_rope", "apply_xpos", "linear_scaled_frequencies",
    "ntk_scaled_frequencies", "apply_axial_rope",
}


@pytest.mark.parametrize("dtype", adapter_module.ADAPTER_DTYPES)
def test_cases_conform_or_are_listed(dtype):
    results = run_adapter("posref.adapters.rotary_embedding_torch", "rotary_embedding_torch", dtype, FUNCTIONS)
    status = statuses(results)
    for case_id in ("apply_rope.interleaved.hard_positions", "apply_rope.interleaved.short",
                    "apply_rope.interleaved.partial_first", "adapters.apply_xpos.floor_half.key",
                    "adapters.ntk_scaled_frequencies.d128.s4", "adapters.linear_scaled_frequencies.d128.s4",
                    "adapters.apply_axial_rope.yx.interleaved", "adapters.apply_axial_rope.xy.interleaved"):
        assert status[case_id] == "pass", case_id
    expected = "pass" if dtype == "float32" else "known"
    assert status["adapters.apply_rope.interleaved.contiguous_offset"] == expected


def test_available_and_metadata():
    import importlib.metadata

    assert adapter_module.available() is None
    assert adapter_module.ADAPTER_VERSION == importlib.metadata.version("rotary-embedding-torch")


def test_bfloat16_positions_are_rounded_by_the_library():
    """The divergence behind the xfail: position 4001 is rotated as 4000 in bfloat16."""
    adapter = adapter_module.make_adapter(dtype="bfloat16", device="cpu")
    x = np.zeros((2, 4))
    x[:, 0] = 1.0  # pair (0, 1) = (1, 0): the output is (cos, sin) of the angle at theta_0 = 1
    out = adapter.apply_rope(x, np.array([4000, 4001]), layout="interleaved")
    np.testing.assert_allclose(out[1, :2], out[0, :2], atol=0)  # same angle for both positions
    assert not np.isclose(np.cos(4000.0), np.cos(4001.0), atol=0.1)


def test_unsupported_parameters_are_not_implemented():
    adapter = adapter_module.make_adapter(dtype="float32", device="cpu")
    with pytest.raises(NotImplementedError, match="interleaved"):
        adapter.apply_rope(np.zeros((4, 8)), np.arange(4), layout="half")
    with pytest.raises(NotImplementedError, match="0 .. N-1"):
        adapter.apply_xpos(np.zeros((4, 8)), np.array([1, 2, 3, 4]))
    with pytest.raises(NotImplementedError, match="grid"):
        adapter.apply_axial_rope(np.zeros((3, 8)), np.array([[0, 0, 1], [0, 1, 1]]))
