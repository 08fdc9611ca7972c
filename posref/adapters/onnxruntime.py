"""Adapter for the ONNX ``RotaryEmbedding`` operator (opset 23) run by ONNX Runtime.

Checked with onnxruntime 1.32.0 (CPU execution provider) and onnx 1.23.2,
both pinned in ``conformance/constraints.txt``.

The model, the cos/sin caches and the mapping of posref's parameters are
those of :mod:`posref.adapters.onnx_reference` (read its docstring): one
``RotaryEmbedding`` node of the default domain, opset 23, whose input
order is ``(X, cos_cache, sin_cache, position_ids)``.  ONNX Runtime 1.32
implements that operator on the CPU provider for float32 and float16 only,
so those are the dtypes offered (its older ``com.microsoft.RotaryEmbedding``
takes ``(input, position_ids, cos_cache, sin_cache)`` in that order and is
not needed here).

Divergences found
-----------------

None: every mapped case passes in float32 and float16, partial rotary
included (the pass-through channels are copied).  ONNX Runtime refuses a
``cos_cache`` with fewer rows than the sequence length ("Updating cos_cache
and sin_cache in RotaryEmbedding is not currently supported") even when
``position_ids`` stay inside it, which the ONNX specification allows; the
adapter never builds such inputs.
"""

from __future__ import annotations

from posref.adapters.onnx_reference import OnnxRotaryAdapter

ADAPTER_NAME = "onnxruntime"
ADAPTER_VERSION = "1.32.0"
ADAPTER_DTYPES = ("float32", "float16")
ADAPTER_DEVICES = ("cpu",)


def available():
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except Exception as exc:
        return f"onnxruntime cannot be imported ({type(exc).__name__}: {exc}); pip install onnxruntime onnx"
    return None


def make_adapter(*, dtype, device):
    return OnnxRotaryAdapter(dtype=dtype, device=device, runner=_run_onnxruntime)


def _run_onnxruntime(model, feeds):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]
