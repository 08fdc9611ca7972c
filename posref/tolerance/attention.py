"""Attention: the ``softmax`` model of ``attention``.

``decode_incrementally`` has no golden case and no model.
"""

from __future__ import annotations

import math

import numpy as np

from posref import _arith
from posref.tolerance import UNIT_ROUNDOFF, CaseView, angle_roundoff, error_model, input_array

__all__: list[str] = []


@error_model("softmax")
def _softmax(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    u, ua = UNIT_ROUNDOFF[dtype], angle_roundoff(dtype)
    q, k, v = (input_array(view, name) for name in ("q", "k", "v"))
    t, s, d = q.shape[-2], k.shape[-2], q.shape[-1]
    scale = view.params.get("scale")
    scale = 1.0 / math.sqrt(d) if scale is None else float(scale)
    a_k = view.inputs.get("relative_keys", view.params.get("relative_keys"))
    a_v = view.inputs.get("relative_values", view.params.get("relative_values"))
    bias = view.inputs.get("bias", view.params.get("bias"))
    logits = _arith.einsum("...td,...sd->...ts", q, k)
    size = _arith.einsum("...td,...sd->...ts", np.abs(q), np.abs(k))
    if a_k is not None:
        a_k = np.asarray(a_k, dtype=np.float64)
        logits = logits + _arith.einsum("...td,tsd->...ts", q, a_k)
        size = size + _arith.einsum("...td,tsd->...ts", np.abs(q), np.abs(a_k))
    logits, size = scale * logits, scale * size
    visible = np.ones((t, s), dtype=bool)
    if view.params.get("causal", False):
        qp = view.inputs.get("query_positions", np.arange(s - t, s))
        kp = view.inputs.get("key_positions", np.arange(s))
        visible = np.asarray(kp)[None, :] <= np.asarray(qp)[:, None]
    if bias is not None:
        bias = np.asarray(bias, dtype=np.float64)
        finite_bias = np.where(np.isneginf(bias), 0.0, bias)
        logits, size = logits + finite_bias, size + np.abs(finite_bias)
        visible = visible & ~np.isneginf(bias)
    visible = np.broadcast_to(visible, logits.shape)
    masked = np.where(visible, logits, -np.inf)
    top = np.max(masked, axis=-1, keepdims=True)
    e = np.where(visible, _arith.exp(masked - top), 0.0)
    w = e / e.sum(axis=-1, keepdims=True)  # (..., T, S)
    values = np.broadcast_to(v[..., None, :, :], (*w.shape, v.shape[-1]))  # (..., T, S, D_v)
    if a_v is not None:
        values = values + np.asarray(a_v, dtype=np.float64)
    y = np.asarray(view.expected["output"], dtype=np.float64)
    d_logit = ((2 * d + 2) * ua + 3 * u) * size  # (..., T, S)
    d_weight = (s + 4) * ua + ua * np.abs(np.where(visible, masked - top, 0.0)) + 2 * u
    spread = _arith.einsum("...ts,...tsd->...td", w * d_logit, np.abs(values - y[..., None, :]))
    own = _arith.einsum("...ts,...tsd->...td", w * d_weight, np.abs(values))
    return {"output": spread + own + u * np.abs(y)}
