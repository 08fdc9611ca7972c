"""CoPE: the ``cope`` model."""

from __future__ import annotations

import numpy as np

from posref.tolerance import UNIT_ROUNDOFF, CaseView, angle_roundoff, error_model, input_array

__all__: list[str] = []


@error_model("cope")
def _cope(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    from posref.relative import cope_causal_mask, cope_positions

    u, ua = UNIT_ROUNDOFF[dtype], angle_roundoff(dtype)
    logits = input_array(view, "logits")
    t, s = logits.shape[-2:]
    causal = cope_causal_mask(t, s)
    p = cope_positions(logits)  # (..., T, S), unclamped
    count = np.flip(np.cumsum(np.flip(causal, axis=-1), axis=-1), axis=-1)  # gates summed into p_ij
    dp = (count + 3) * ua * p
    y = np.asarray(view.expected["output"], dtype=np.float64)
    if view.function == "cope_positions":
        return {"output": dp + u * np.abs(y)}
    q, table = input_array(view, "q"), input_array(view, "position_embeddings")
    rows, d = table.shape
    z = q @ table.T  # (..., T, P)
    size = np.abs(q) @ np.abs(table).T
    clamped = np.minimum(p, rows - 1)
    low_row = np.floor(clamped).astype(np.int64)
    high_row = np.ceil(clamped).astype(np.int64)
    w = clamped - low_row

    def at(values, index):
        return np.take_along_axis(values, np.clip(index, 0, rows - 1), axis=-1)

    slopes = np.abs(np.diff(z, axis=-1)) if rows > 1 else np.zeros(z.shape[:-1] + (1,))
    slope = np.zeros_like(p)
    for shift in (-1, 0, 1):  # the segments around p that an error below 1 can reach
        segment = np.clip(low_row + shift, 0, slopes.shape[-1] - 1)
        slope = np.maximum(slope, np.take_along_axis(slopes, segment, axis=-1))
    moves = p - dp <= rows - 1
    z_low, z_high = at(z, low_row), at(z, high_row)
    error = (np.where(moves, dp * slope, 0.0)
             + d * ua * ((1 - w) * at(size, low_row) + w * at(size, high_row))
             + 4 * ua * (np.abs(z_low) + np.abs(z_high)))
    return {"output": error + u * np.abs(y)}
