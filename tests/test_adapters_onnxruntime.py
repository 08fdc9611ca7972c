"""The ONNX RotaryEmbedding adapter (ONNX Runtime): mapping sound, divergences exactly those listed."""

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from adapter_harness import run_adapter, statuses  # noqa: E402

from posref.adapters import onnxruntime as adapter_module  # noqa: E402

FUNCTIONS = {"apply_rope", "apply_rotary"}


@pytest.mark.parametrize("dtype", adapter_module.ADAPTER_DTYPES)
def test_cases_conform_or_are_listed(dtype):
    results = run_adapter("posref.adapters.onnxruntime", "onnxruntime", dtype, FUNCTIONS)
    status = statuses(results)
    for case_id in ("apply_rope.half.hard_positions", "apply_rope.interleaved.hard_positions",
                    "apply_rope.half.partial_first", "apply_rope.interleaved.partial_first",
                    "apply_rope.half.position_offset", "apply_rotary.half.small"):
        assert status[case_id] == "pass", case_id


def test_bfloat16_is_not_offered():
    """ONNX Runtime 1.32 has no CPU kernel of RotaryEmbedding(23) for bfloat16 or double."""
    from posref.conformance.adapter import AdapterError, load_adapter

    with pytest.raises(AdapterError, match="bfloat16"):
        load_adapter("posref.adapters.onnxruntime", dtype="bfloat16")
