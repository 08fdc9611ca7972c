"""The ONNX RotaryEmbedding adapter (reference evaluator): mapping sound, divergences exactly those listed."""

import numpy as np
import pytest

pytest.importorskip("onnx")

from adapter_harness import run_adapter, statuses  # noqa: E402

from posref.adapters import onnx_reference as adapter_module  # noqa: E402

FUNCTIONS = {"apply_rope", "apply_rotary"}


@pytest.mark.parametrize("dtype", adapter_module.ADAPTER_DTYPES)
def test_cases_conform_or_are_listed(dtype):
    results = run_adapter("posref.adapters.onnx_reference", "onnx_reference", dtype, FUNCTIONS)
    status = statuses(results)
    for case_id in ("apply_rope.half.hard_positions", "apply_rope.interleaved.hard_positions",
                    "apply_rope.half.partial_first", "apply_rope.half.batch_positions",
                    "apply_rope.half.position_offset", "apply_rotary.interleaved.small"):
        assert status[case_id] == "pass", case_id
    assert status["apply_rope.half.partial_last"] == "not_implemented"


def test_model_is_a_valid_opset_23_graph():
    import onnx

    model = adapter_module.rotary_model("float32", interleaved=True, rotary_embedding_dim=16, with_position_ids=True)
    onnx.checker.check_model(model, full_check=True)
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 23)]
    assert list(model.graph.node[0].input) == ["X", "cos_cache", "sin_cache", "position_ids"]


def test_long_positions_use_per_token_caches():
    """Beyond the table limit the caches are (B, S, r/2) and position_ids is omitted."""
    from posref import apply_rope

    x = np.random.default_rng(1).standard_normal((2, 3, 8))
    positions = np.array([0, 70_000, 1_048_575])
    adapter = adapter_module.make_adapter(dtype="float64", device="cpu")
    np.testing.assert_allclose(adapter.apply_rope(x, positions, base=500_000.0),
                               apply_rope(x, positions, base=500_000.0), atol=1e-9)
