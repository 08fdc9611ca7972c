"""RoPE: the ``frequency``, ``angle``, ``rotation``, ``cos_sin`` and ``rope`` models.

Several families use these models: the RoPE scaling rules and FoPE
(``frequency``), M-RoPE and axial RoPE (``angle``, ``rope``, through
:func:`~posref.tolerance.rotary_pairs`), xPos (the pairs of
:func:`rope_pairs`).  The derivations are in the docstring of
:mod:`posref.tolerance`.
"""

from __future__ import annotations

import numpy as np

from posref import _arith
from posref.tolerance import (
    BLENDED_TABLES,
    ROTARY_PAIRS,
    SCALED_BASES,
    UNIT_ROUNDOFF,
    CaseView,
    angle_error_factor,
    angle_roundoff,
    channel_frequencies,
    each_output,
    error_model,
    input_array,
    pair_sum,
    per_channel,
    rotary_pairs,
    spec_param,
)

__all__ = ["rope_budget", "rope_pairs", "rotary_width"]


@error_model("frequency")
def _frequency(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    ua = angle_roundoff(dtype)  # a configuration table: computed and returned in the angle precision

    def rule(theta):
        magnitude = np.abs(theta)
        log_theta = np.abs(_arith.log(np.where(magnitude > 0, magnitude, 1.0)))
        return ((2 * log_theta + 2) * ua + ua) * magnitude

    result = each_output(view, rule)
    blend = BLENDED_TABLES.get(view.function)
    if blend is not None and "output" in result:
        theta_out = np.abs(np.asarray(view.expected["output"], dtype=np.float64))
        result["output"] = result["output"] + 5 * ua * theta_out + blend(view, ua)
    scaled_base = SCALED_BASES.get(view.function)
    if scaled_base is not None and "output" in result:
        result["output"] = result["output"] + scaled_base(view, ua)
    return result


def rotary_width(view: CaseView) -> int:
    """``dim`` of a table function, or the feature width of the ``x`` an application rotates."""
    return int(view.params["dim"]) if "dim" in view.params else int(np.shape(view.inputs["x"])[-1])


@rotary_pairs("rope_angles")
def rope_pairs(view: CaseView) -> tuple[np.ndarray, np.ndarray]:
    """1-D RoPE: pair i turns by p * theta_i (``rope_angles``; ``apply_xpos``, which rotates by p too)."""
    from posref.rope import rope_frequencies

    theta = rope_frequencies(rotary_width(view), base=float(spec_param(view, "base")))
    return input_array(view, "positions")[..., None] * theta, theta


@error_model("angle")
def _angle(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    ua = angle_roundoff(dtype)  # angles from integer positions stay in the angle precision
    pairs = ROTARY_PAIRS.get(view.function)
    if pairs is not None:
        phi, theta = pairs(view)
        return {"output": (angle_error_factor(theta, ua) + ua) * np.abs(phi)}
    base = float(view.params.get("base", 10_000.0))

    def rule(phi):
        # another function: theta is not known per element from phi alone at p = 0; the largest
        # |ln theta| of a RoPE table is ln(base), reached by its lowest frequency.
        positions = np.asarray(view.inputs.get("positions", np.ones(1)), dtype=np.float64)
        p = np.broadcast_to(positions[..., None], phi.shape) if positions.ndim + 1 == phi.ndim else None
        if p is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                theta = np.where(p != 0, np.abs(phi) / np.where(p != 0, np.abs(p), 1.0), 1.0 / base)
        else:
            theta = np.full(phi.shape, 1.0 / base)
        return (angle_error_factor(theta, ua) + ua) * np.abs(phi)

    return each_output(view, rule)


@error_model("rotation")
def _rotation(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    u, ua = UNIT_ROUNDOFF[dtype], angle_roundoff(dtype)
    layout = view.params.get("layout", "half")
    x = np.abs(np.asarray(view.inputs["x"], dtype=np.float64))
    y = np.abs(np.asarray(view.expected["output"], dtype=np.float64))
    pair = np.broadcast_to(pair_sum(x, layout), y.shape)
    return {"output": pair * (ua + 2 * u) + u * y}


def rope_budget(
    x: np.ndarray,
    y: np.ndarray,
    phi: np.ndarray,
    theta: np.ndarray,
    *,
    layout: str,
    dtype: str,
    rotated: slice | np.ndarray,
) -> np.ndarray:
    """Budget of a RoPE application: ``rotation`` plus the angle error.

    ``rotated`` selects the rotated channels (a slice or an index array),
    in the order ``layout`` pairs them.  ``phi`` (angles) and ``theta``
    (frequencies) are per pair, broadcastable to
    ``y[..., rotated].shape[:-1] + (R/2,)``; channels outside ``rotated``
    pass through and are allowed one final rounding.
    """
    u, ua = UNIT_ROUNDOFF[dtype], angle_roundoff(dtype)
    budget = u * np.abs(y)  # pass-through channels: one cast
    xr = np.abs(x[..., rotated])
    yr = np.abs(y[..., rotated])
    pair = np.broadcast_to(pair_sum(xr, layout), yr.shape)
    dphi = angle_error_factor(theta, ua) * np.abs(phi)
    dphi = np.broadcast_to(per_channel(dphi, layout), yr.shape)
    budget[..., rotated] = pair * (ua + 2 * u + dphi) + u * yr
    return budget


@error_model("cos_sin")
def _cos_sin(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    from posref.rope import rope_frequencies

    u, ua = UNIT_ROUNDOFF[dtype], angle_roundoff(dtype)
    theta = channel_frequencies(rope_frequencies(int(view.params["dim"]), base=float(view.params.get("base", 1e4))),
                                view.params.get("layout", "half"))
    phi = np.asarray(view.inputs["positions"], dtype=np.float64)[..., None] * theta
    angle_error = angle_error_factor(theta, ua) * np.abs(phi) + ua
    return {name: angle_error + u * np.abs(y) for name, y in view.expected.items()}


@error_model("rope")
def _rope(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    from posref.rope import rope_frequencies, rotated_channels

    x = np.asarray(view.inputs["x"], dtype=np.float64)
    y = np.asarray(view.expected["output"], dtype=np.float64)
    pairs = ROTARY_PAIRS.get(view.function)
    if pairs is not None:  # M-RoPE, axial RoPE: every channel rotates, each pair by its own coordinate
        phi, theta = pairs(view)
        layout = spec_param(view, "layout")
        return {"output": rope_budget(x, y, phi, theta, layout=layout, dtype=dtype, rotated=slice(None))}
    d = x.shape[-1]
    r = view.params.get("rotary_dim") or d
    base = float(view.params.get("base", 1e4))
    if view.params.get("freq_denominator", "rotary_dim") == "head_dim":
        theta = rope_frequencies(d, base=base)[: r // 2]
    else:
        theta = rope_frequencies(r, base=base)
    p = np.asarray(view.inputs["positions"], dtype=np.float64) + float(view.params.get("position_offset", 0))
    phi = p[..., None] * theta
    layout = view.params.get("layout", "half")
    rotated = rotated_channels(d, rotary_dim=r, rotated_slice=view.params.get("rotated_slice", "first"),
                               layout=layout)  # as the spec selects
    return {"output": rope_budget(x, y, phi, theta, layout=layout, dtype=dtype, rotated=rotated)}
