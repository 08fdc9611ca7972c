"""FIRE: the ``fire`` and ``fire_mlp`` models."""

from __future__ import annotations

import numpy as np

from posref import _arith
from posref.tolerance import (
    UNIT_ROUNDOFF,
    CaseView,
    angle_roundoff,
    error_model,
    input_array,
    query_key,
    spec_param,
)

__all__: list[str] = []


@error_model("fire")
def _fire(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    u, ua = UNIT_ROUNDOFF[dtype], angle_roundoff(dtype)
    q, k = query_key(view)
    c = abs(float(spec_param(view, "c")))
    threshold, eps = float(spec_param(view, "threshold")), float(spec_param(view, "eps"))

    def psi(x):
        t = np.abs(c * x)
        value = _arith.log1p(t)
        return value, ua * (3 * t / (1 + t) + 1 + value)  # c (or L), the product, 1 + t, the log

    _, d_numerator = psi(q[:, None] - k[None, :])  # (T, S)
    normaliser, d_normaliser = psi(np.maximum(q, threshold)[:, None])  # (T, 1)
    denominator = normaliser + eps
    z = np.abs(np.asarray(view.expected["output"], dtype=np.float64))
    return {"output": (d_numerator + z * (d_normaliser + ua * denominator)) / denominator + (ua + u) * z}


@error_model("fire_mlp")
def _fire_mlp(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    from posref.relative import fire_normalized_distance

    u, ua = UNIT_ROUNDOFF[dtype], angle_roundoff(dtype)
    options = {name: spec_param(view, name) for name in ("c", "threshold", "eps")}
    q, k = (np.asarray(view.inputs[name], dtype=np.int64) for name in ("query_positions", "key_positions"))
    z = fire_normalized_distance(q, k, **options)  # (T, S)
    z_view = CaseView("fire_normalized_distance", options, {"query_positions": q, "key_positions": k},
                      {"output": z})
    dz = _fire(z_view, "float64" if dtype == "float64" else "float32")["output"]  # z kept in the angle precision
    w1, b1, w2, b2 = (input_array(view, name) for name in ("w1", "b1", "w2", "b2"))
    pre = z[..., None] * w1[0] + b1  # (T, S, K)
    d_pre = np.abs(w1[0]) * dz[..., None] + 2 * ua * (np.abs(z[..., None] * w1[0]) + np.abs(b1))
    h = np.maximum(pre, 0.0)
    hidden = w1.shape[1]
    error = d_pre @ np.abs(w2) + (hidden + 1) * ua * (h @ np.abs(w2) + np.abs(b2))  # (T, S, H)
    y = np.asarray(view.expected["output"], dtype=np.float64)
    return {"output": np.moveaxis(error, -1, 0) + u * np.abs(y)}
