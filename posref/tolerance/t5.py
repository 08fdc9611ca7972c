"""T5: the ``t5_bucket`` and ``t5_bias`` models, and :func:`t5_near_boundary`."""

from __future__ import annotations

from typing import Any

import numpy as np

from posref import _arith
from posref.tolerance import UNIT_ROUNDOFF, CaseView, angle_roundoff, error_model

__all__ = ["t5_near_boundary"]


def t5_near_boundary(relative_position: np.ndarray, *, bidirectional: bool, num_buckets: int,
                     max_distance: int, dtype: str = "float32") -> np.ndarray:
    r"""True where T5's log-bucket argument may round to either side of an integer.

    The argument is :math:`v = L \ln(n/e) / \ln(M/e)` with ``L`` log
    buckets, ``e = max_exact`` and ``M = max_distance``.  Hugging Face
    computes it in float32 and truncates, so where :math:`v` lies within
    its rounding error of an integer (see the module docstring for the
    bound), a correct implementation may be one bucket off.  ``dtype``
    selects the angle precision of that computation.
    """
    relative_position = np.asarray(relative_position)
    if relative_position.dtype.kind == "i" and relative_position.size > 1:
        # a function of the relative position alone: evaluated once per distinct value of lo .. hi
        # (a relative-position matrix holds at most T + S - 1 of them), then gathered
        flat = relative_position.reshape(-1).astype(np.int64, copy=False)
        lo, hi = int(flat.min()), int(flat.max())
        if hi - lo + 1 < flat.size:
            table = t5_near_boundary(np.arange(lo, hi + 1, dtype=np.int64), bidirectional=bidirectional,
                                     num_buckets=num_buckets, max_distance=max_distance, dtype=dtype)
            return table[flat - lo].reshape(relative_position.shape)
    n_buckets = num_buckets // 2 if bidirectional else num_buckets
    max_exact = n_buckets // 2
    num_log = n_buckets - max_exact
    n = np.abs(relative_position) if bidirectional else np.maximum(-relative_position, 0)
    n = n.astype(np.float64)
    large = n >= max_exact
    log_span = float(_arith.log(max_distance / max_exact))
    with np.errstate(divide="ignore"):
        value = _arith.log(np.where(large, n, max_exact) / max_exact) / log_span * num_log
    threshold = 2 * (2 * num_log / log_span + 6 * num_log) * angle_roundoff(dtype)
    return large & (np.abs(value - np.round(value)) <= threshold) & (max_exact + np.round(value) < n_buckets)


def _t5_params(view: CaseView) -> dict[str, Any]:
    return {
        "bidirectional": bool(view.params.get("bidirectional", True)),
        "num_buckets": int(view.params.get("num_buckets", 32)),
        "max_distance": int(view.params.get("max_distance", 128)),
    }


@error_model("t5_bucket")
def _t5_bucket(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    rel = np.asarray(view.inputs["relative_position"], dtype=np.int64)
    return {"output": t5_near_boundary(rel, **_t5_params(view), dtype=dtype).astype(np.float64)}


@error_model("t5_bias")
def _t5_bias(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    from posref.t5 import t5_relative_bucket

    u = UNIT_ROUNDOFF[dtype]
    params = _t5_params(view)
    table = np.asarray(view.inputs["table"], dtype=np.float64)  # (num_buckets, H)
    rel = (np.asarray(view.inputs["key_positions"], dtype=np.int64)[None, :]
           - np.asarray(view.inputs["query_positions"], dtype=np.int64)[:, None])  # (T, S)
    bucket = t5_relative_bucket(rel, **params)
    near = t5_near_boundary(rel, **params, dtype=dtype)
    below = np.abs(table[np.maximum(bucket - 1, 0)] - table[bucket])  # (T, S, H)
    above = np.abs(table[np.minimum(bucket + 1, table.shape[0] - 1)] - table[bucket])
    slack = np.where(near[..., None], np.maximum(below, above), 0.0)
    y = np.abs(np.asarray(view.expected["output"], dtype=np.float64))
    return {"output": u * y + np.moveaxis(slack, -1, 0)}
