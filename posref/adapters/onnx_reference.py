"""Adapter for the ONNX ``RotaryEmbedding`` operator (opset 23), run by ``onnx.reference.ReferenceEvaluator``.

Checked with onnx 1.23.2 (``pip install onnx==1.23.2``, pinned in
``conformance/constraints.txt``).  :mod:`posref.adapters.onnxruntime` runs
the same one-node model with ONNX Runtime.

What it maps, and the operator's conventions
--------------------------------------------

``apply_rope`` and ``apply_rotary`` are each one ``RotaryEmbedding`` node
(default domain, opset 23) built with ``onnx.helper``:

* ``X`` is ``(B, H, S, D)``.  Input ``x`` of shape ``(B, H, T, D)`` whose
  positions are shared by the heads is passed as it is; any other shape
  ``(..., T, D)`` becomes ``(B', 1, T, D)``, all leading axes folded into
  the batch, with ``(B', T)`` position ids.  (``apply_rotary`` flattens to
  ``(1, 1, N, D)``: its caches carry one angle per row.)
* ``interleaved`` is posref's ``layout`` (0 = ``"half"``, 1 =
  ``"interleaved"``); ``rotary_embedding_dim`` is ``rotary_dim`` (0 =
  whole head).  The rotated channels are always the first
  ``rotary_embedding_dim`` (``rotated_slice="first"``); ``"last"`` and the
  half-layout ``"first_pairs"`` cannot be expressed.
* The operator takes the cos/sin caches as inputs and does not compute
  angles.  The adapter builds them with NumPy the way a user of ONNX would:
  frequencies :math:`b^{-2i/d'}` (``freq_denominator`` picks :math:`d'`)
  and angles ``position * frequency`` in float32 (float64 when the dtype
  under test is float64), cosine and sine in that precision, then rounded
  to the tensor type ``T`` under test.  With integer positions below
  65536 the caches are tables indexed by ``position_ids``
  (``(max_position + 1, rotary_dim / 2)``); otherwise (long context,
  fractional positions) they are ``(B, S, rotary_dim / 2)`` for the tokens
  at hand and ``position_ids`` is omitted, which the operator also allows.
  For ``apply_rotary`` the given angles are the caches' arguments.
  A failure therefore points at the operator's rotation, not at the caches.

Precision: ``T`` is the dtype under test: float64, float32, float16 and
bfloat16 (the reference evaluator computes in NumPy in ``T``).

Divergences found
-----------------

Listed in ``posref/adapters/known/onnx_reference-float64.txt``: the
evaluator indexes the caches with NumPy, so a negative ``position_id`` reads
a row from the end instead of being rejected
(``apply_rope.invalid.negative_position``, float64 only because invalid
cases carry no low-precision variant).  Every value case passes in float64,
float32, float16 and bfloat16, up to position 1,048,575.
"""

from __future__ import annotations

import numpy as np

ADAPTER_NAME = "onnx-reference"
ADAPTER_VERSION = "1.23.2"
ADAPTER_DTYPES = ("float64", "float32", "float16", "bfloat16")
ADAPTER_DEVICES = ("cpu",)

#: Largest position for which the caches are a table indexed by position_ids.
TABLE_LIMIT = 65_536


def available():
    try:
        import onnx  # noqa: F401
        from onnx.reference import ReferenceEvaluator  # noqa: F401
    except Exception as exc:
        return f"onnx cannot be imported ({type(exc).__name__}: {exc}); pip install onnx"
    return None


def make_adapter(*, dtype, device):
    return OnnxRotaryAdapter(dtype=dtype, device=device, runner=_run_reference)


def _run_reference(model, feeds):
    from onnx.reference import ReferenceEvaluator

    return ReferenceEvaluator(model).run(None, feeds)[0]


def _tensor_type(dtype):
    from onnx import TensorProto

    return {"float64": TensorProto.DOUBLE, "float32": TensorProto.FLOAT, "float16": TensorProto.FLOAT16,
            "bfloat16": TensorProto.BFLOAT16}[dtype]


def _numpy_dtype(dtype):
    import ml_dtypes

    return ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)


def rotary_model(dtype, *, interleaved, rotary_embedding_dim, with_position_ids):
    """A one-node ONNX model: ``Y = RotaryEmbedding(X, cos_cache, sin_cache[, position_ids])``, opset 23."""
    from onnx import TensorProto, helper

    elem = _tensor_type(dtype)
    names = ["X", "cos_cache", "sin_cache"] + (["position_ids"] if with_position_ids else [])
    cache = ["max_position_plus_1", "R"] if with_position_ids else ["B", "S", "R"]  # R = rotary_dim / 2
    inputs = [helper.make_tensor_value_info("X", elem, ["B", "H", "S", "D"]),
              helper.make_tensor_value_info("cos_cache", elem, cache),
              helper.make_tensor_value_info("sin_cache", elem, cache)]
    if with_position_ids:
        inputs.append(helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["B", "S"]))
    node = helper.make_node("RotaryEmbedding", names, ["Y"], interleaved=int(interleaved),
                            rotary_embedding_dim=int(rotary_embedding_dim))
    output = helper.make_tensor_value_info("Y", elem, ["B", "H", "S", "D"])
    graph = helper.make_graph([node], "posref_rotary", inputs, [output])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)])
    model.ir_version = 10
    return model


class OnnxRotaryAdapter:
    """The ONNX RotaryEmbedding operator, called like posref's spec functions."""

    def __init__(self, *, dtype, device, runner):
        self.dtype = dtype
        self.device = device
        self.runner = runner
        self.angle_dtype = np.float64 if dtype == "float64" else np.float32

    def _caches(self, angles):
        """cos and sin of float64/float32 angles, rounded to the tensor type under test."""
        angles = np.asarray(angles, dtype=self.angle_dtype)
        target = _numpy_dtype(self.dtype)
        return np.cos(angles).astype(target), np.sin(angles).astype(target)

    def _run(self, x, cos, sin, position_ids, *, interleaved, rotary_dim):
        model = rotary_model(self.dtype, interleaved=interleaved, rotary_embedding_dim=rotary_dim,
                             with_position_ids=position_ids is not None)
        feeds = {"X": np.asarray(x).astype(_numpy_dtype(self.dtype)), "cos_cache": cos, "sin_cache": sin}
        if position_ids is not None:
            feeds["position_ids"] = position_ids
        out = np.asarray(self.runner(model, feeds))
        return out.astype(np.float32) if out.dtype.name == "bfloat16" else out

    def apply_rotary(self, x, angles, /, *, layout="half"):
        x = np.asarray(x)
        lead = np.broadcast_shapes(x.shape[:-1], np.shape(angles)[:-1])
        d = x.shape[-1]
        flat_x = np.broadcast_to(x, lead + (d,)).reshape(1, 1, -1, d)  # (1, 1, N, D)
        flat_angles = np.broadcast_to(np.asarray(angles).astype(np.float64), lead + (d // 2,)).reshape(1, -1, d // 2)
        cos, sin = self._caches(flat_angles)  # (1, N, D/2)
        out = self._run(flat_x, cos, sin, None, interleaved=layout == "interleaved", rotary_dim=0)
        return out.reshape(lead + (d,))

    def apply_rope(self, x, positions, /, *, base=10_000.0, layout="half", rotary_dim=None,
                   rotated_slice="first", freq_denominator="rotary_dim", position_offset=0):
        x = np.asarray(x)
        head_dim = x.shape[-1]
        r = head_dim if rotary_dim is None else int(rotary_dim)
        if r != head_dim and (rotated_slice == "last" or (rotated_slice == "first_pairs" and layout == "half")):
            raise NotImplementedError(
                "ONNX RotaryEmbedding rotates the first rotary_embedding_dim channels (rotated_slice='first')"
            )
        denominator = r if freq_denominator == "rotary_dim" else head_dim
        i = np.arange(r // 2, dtype=self.angle_dtype)
        theta = (1.0 / (self.angle_dtype(base) ** (2 * i / self.angle_dtype(denominator)))).astype(self.angle_dtype)
        p = np.broadcast_to(np.asarray(positions) + position_offset, x.shape[:-1])
        if x.ndim == 4 and np.array_equal(np.broadcast_to(p[:, :1], p.shape), p):
            data, ids = x, p[:, 0, :]  # (B, H, S, D) with (B, S) positions
        else:  # every leading axis becomes the batch: (B', 1, S, D) with (B', S) positions
            length = x.shape[-2] if x.ndim >= 2 else 1
            data, ids = x.reshape(-1, 1, length, head_dim), p.reshape(-1, length)
        integer = ids.dtype.kind in "iu" or np.array_equal(ids, np.round(ids))
        if integer and ids.size and ids.max() < TABLE_LIMIT:
            ids = ids.astype(np.int64)
            table = np.arange(int(ids.max()) + 1, dtype=self.angle_dtype)[:, None] * theta  # (P, r/2)
            cos, sin = self._caches(table)
        else:
            cos, sin = self._caches(ids.astype(self.angle_dtype)[..., None] * theta)  # (B, S, r/2)
            ids = None
        out = self._run(data, cos, sin, ids, interleaved=layout == "interleaved",
                        rotary_dim=0 if r == head_dim else r)
        return out.reshape(x.shape)
