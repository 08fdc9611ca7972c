r"""The error model: how far a correct low-precision implementation may be from the spec.

A fixed ``rtol``/``atol`` cannot work for position encodings.  A correct
float32 RoPE is about 0.1 rad off at position 1,000,000 because the angle
itself is rounded in float32, while a real bug (a base that is slightly
wrong, which moves only the low frequencies) changes short-context outputs
by far less.  So every element gets its own budget, built from the sizes of
the intermediate terms of the computation that produced it and the unit
roundoff of the precision each step runs in.

Conventions of the model (the spec allows exactly these roundings):

* ``u`` is the unit roundoff of the dtype under test (the *activation*
  dtype): ``2**-53`` float64, ``2**-24`` float32, ``2**-11`` float16,
  ``2**-8`` bfloat16.
* Frequencies, positions times frequencies, and sin/cos are computed in the
  *angle precision* ``u_a``: float32 for every low-precision dtype (as in
  Hugging Face, vLLM, Meta Llama, torchtune, flash-attn, TransformerEngine),
  float64 for a float64 implementation.  Angles in bfloat16 or float16 are a
  bug and fail.
* The inputs the implementation receives are already rounded to its dtype;
  the reference is the float64 spec evaluated on those rounded inputs, so
  input rounding is never part of the budget.
* Elementary results are allowed a handful of roundings each; the constants
  below are written next to the term they cover.

The budgets, per tolerance class (``GoldenCase.tolerance``):

``exact``
    0: integer results (indices, buckets) must be equal.
``frequency``
    :math:`((2|\ln\theta| + 2)\,u_a + u)\,|\theta|`: an exponent ``-2i/d``
    (rounded), ``log`` of the base (rounded), then ``exp`` or ``pow``,
    whose relative error grows with the size of the exponent
    :math:`|\ln\theta|`; then one rounding to the output dtype.
``angle``
    :math:`((2|\ln\theta| + 3)\,u_a + u)\,|\phi|` with :math:`\phi = p\theta`:
    the frequency's error, one rounding of the product, one final rounding.
``rotation``
    :math:`(|x_a| + |x_b|)(u_a + 2u) + u\,|y|` for a pair
    :math:`(x_a, x_b)` rotated by a given angle: cos/sin in the angle
    precision, rounded to the activation dtype, two products and a sum in
    the activation dtype.
``rope``
    ``rotation`` plus :math:`(|x_a| + |x_b|)\,\Delta\phi_i` with
    :math:`\Delta\phi_i = (2|\ln\theta_i| + 3)\,u_a\,|p\,\theta_i|`, the
    angle error carried through the derivative of the rotation, which is
    bounded by :math:`|x_a| + |x_b|`.
``linear_bias``
    :math:`(3u_a + u)\,|b|` for a bias :math:`b = -m\,d` (slope in the
    angle precision, one product, one final rounding).  A slope or a product
    rounded to bfloat16 uses a second ``u`` and fails, by design.
``gather``
    :math:`u\,|b|`: a value looked up from a table that the implementation
    received in its own dtype; only a final cast is allowed.
``t5_bias``
    ``gather``, plus one bucket of slack at exactly those relative positions
    where the float32 logarithm of T5's bucket formula lies within
    :math:`10^{-4}` of an integer (computed for the case's parameters).
``elementwise``
    :math:`8u\,(|y| + \max|y|)`: the fallback for functions without a
    dedicated model; loose for small elements by design and reported as such.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "CaseView",
    "TOLERANCE_CLASSES",
    "UNIT_ROUNDOFF",
    "angle_roundoff",
    "budgets",
]

#: Unit roundoff (half the spacing at 1) of every dtype posref tests.
UNIT_ROUNDOFF = {"float64": 2.0**-53, "float32": 2.0**-24, "float16": 2.0**-11, "bfloat16": 2.0**-8}


def angle_roundoff(dtype: str) -> float:
    """Unit roundoff of the precision angles are computed in for ``dtype``."""
    return UNIT_ROUNDOFF["float64"] if dtype == "float64" else UNIT_ROUNDOFF["float32"]


@dataclass(frozen=True)
class CaseView:
    """What a tolerance class sees of a case: its call and the spec's answer.

    ``inputs`` are the inputs as the implementation received them, converted
    to float64 (or int64); ``expected`` are the spec's float64 outputs for
    exactly those inputs.
    """

    function: str
    params: Mapping[str, Any]
    inputs: Mapping[str, np.ndarray]
    expected: Mapping[str, np.ndarray]


Model = Callable[[CaseView, str], dict[str, np.ndarray]]
TOLERANCE_CLASSES: dict[str, Model] = {}


def _model(name: str) -> Callable[[Model], Model]:
    def register(function: Model) -> Model:
        TOLERANCE_CLASSES[name] = function
        return function

    return register


def budgets(view: CaseView, tolerance: str, dtype: str) -> dict[str, np.ndarray]:
    """Return the per-element allowed absolute error of every output of a case."""
    if tolerance not in TOLERANCE_CLASSES:
        raise ValueError(f"tolerance must be one of {', '.join(sorted(TOLERANCE_CLASSES))}, got {tolerance!r}")
    if dtype not in UNIT_ROUNDOFF:
        raise ValueError(f"dtype must be one of {', '.join(UNIT_ROUNDOFF)}, got {dtype!r}")
    return TOLERANCE_CLASSES[tolerance](view, dtype)


def _each_output(view: CaseView, rule: Callable[[np.ndarray], np.ndarray]) -> dict[str, np.ndarray]:
    return {name: rule(np.asarray(value, dtype=np.float64)) for name, value in view.expected.items()}


# -- models ----------------------------------------------------------------------------------


@_model("exact")
def _exact(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    return _each_output(view, np.zeros_like)


@_model("gather")
def _gather(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    u = UNIT_ROUNDOFF[dtype]
    return _each_output(view, lambda y: u * np.abs(np.where(np.isfinite(y), y, 0.0)))


@_model("elementwise")
def _elementwise(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    u = UNIT_ROUNDOFF[dtype]

    def rule(y):
        finite = np.where(np.isfinite(y), np.abs(y), 0.0)
        return 8 * u * (finite + (finite.max() if finite.size else 0.0))

    return _each_output(view, rule)


@_model("frequency")
def _frequency(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    u, ua = UNIT_ROUNDOFF[dtype], angle_roundoff(dtype)

    def rule(theta):
        magnitude = np.abs(theta)
        log_theta = np.abs(np.log(np.where(magnitude > 0, magnitude, 1.0)))
        return ((2 * log_theta + 2) * ua + u) * magnitude

    return _each_output(view, rule)


def _angle_error_factor(theta: np.ndarray, ua: float) -> np.ndarray:
    """Relative error of an angle p*theta computed in the angle precision."""
    magnitude = np.abs(theta)
    log_theta = np.abs(np.log(np.where(magnitude > 0, magnitude, 1.0)))
    return (2 * log_theta + 3) * ua


@_model("angle")
def _angle(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    u, ua = UNIT_ROUNDOFF[dtype], angle_roundoff(dtype)
    base = float(view.params.get("base", 10_000.0))

    def rule(phi):
        # theta is not known per element from phi alone at p = 0; the largest
        # |ln theta| of a RoPE table is ln(base), reached by its lowest frequency.
        positions = np.asarray(view.inputs.get("positions", np.ones(1)), dtype=np.float64)
        p = np.broadcast_to(positions[..., None], phi.shape) if positions.ndim + 1 == phi.ndim else None
        if p is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                theta = np.where(p != 0, np.abs(phi) / np.where(p != 0, np.abs(p), 1.0), 1.0 / base)
        else:
            theta = np.full(phi.shape, 1.0 / base)
        return (_angle_error_factor(theta, ua) + u) * np.abs(phi)

    return _each_output(view, rule)


def _pair_sum(magnitude: np.ndarray, layout: str) -> np.ndarray:
    """|x_a| + |x_b| for the pair each channel belongs to, laid out like the channels."""
    half = magnitude.shape[-1] // 2
    if layout == "half":
        s = magnitude[..., :half] + magnitude[..., half:]
        return np.concatenate([s, s], axis=-1)
    s = magnitude[..., 0::2] + magnitude[..., 1::2]
    return np.repeat(s, 2, axis=-1)


def _per_channel(pair_values: np.ndarray, layout: str) -> np.ndarray:
    """Expand a (..., D/2) per-pair array to (..., D) in the given layout."""
    if layout == "half":
        return np.concatenate([pair_values, pair_values], axis=-1)
    return np.repeat(pair_values, 2, axis=-1)


@_model("rotation")
def _rotation(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    u, ua = UNIT_ROUNDOFF[dtype], angle_roundoff(dtype)
    layout = view.params.get("layout", "half")
    x = np.abs(np.asarray(view.inputs["x"], dtype=np.float64))
    y = np.abs(np.asarray(view.expected["output"], dtype=np.float64))
    pair = np.broadcast_to(_pair_sum(x, layout), y.shape)
    return {"output": pair * (ua + 2 * u) + u * y}


def rope_budget(
    x: np.ndarray,
    y: np.ndarray,
    phi: np.ndarray,
    theta: np.ndarray,
    *,
    layout: str,
    dtype: str,
    rotated: slice,
) -> np.ndarray:
    """Budget of a RoPE application: ``rotation`` plus the angle error.

    ``phi`` (angles) and ``theta`` (frequencies) are per pair, broadcastable
    to ``y[..., rotated].shape[:-1] + (R/2,)``; channels outside ``rotated``
    pass through and are allowed one final rounding.
    """
    u, ua = UNIT_ROUNDOFF[dtype], angle_roundoff(dtype)
    budget = u * np.abs(y)  # pass-through channels: one cast
    xr = np.abs(x[..., rotated])
    yr = np.abs(y[..., rotated])
    pair = np.broadcast_to(_pair_sum(xr, layout), yr.shape)
    dphi = _angle_error_factor(theta, ua) * np.abs(phi)
    dphi = np.broadcast_to(_per_channel(dphi, layout), yr.shape)
    budget[..., rotated] = pair * (ua + 2 * u + dphi) + u * yr
    return budget


@_model("linear_bias")
def _linear_bias(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    u, ua = UNIT_ROUNDOFF[dtype], angle_roundoff(dtype)
    return _each_output(view, lambda b: (3 * ua + u) * np.abs(np.where(np.isfinite(b), b, 0.0)))


def t5_near_boundary(relative_position: np.ndarray, *, bidirectional: bool, num_buckets: int,
                     max_distance: int) -> np.ndarray:
    """True where T5's log-bucket argument is within 1e-4 of an integer.

    There a float32 logarithm (Hugging Face computes it in float32 and
    truncates) may land on either side of the boundary, so a correct float32
    implementation may be one bucket off.
    """
    n_buckets = num_buckets // 2 if bidirectional else num_buckets
    max_exact = n_buckets // 2
    n = np.abs(relative_position) if bidirectional else np.maximum(-relative_position, 0)
    n = n.astype(np.float64)
    large = n >= max_exact
    with np.errstate(divide="ignore"):
        value = np.log(np.where(large, n, max_exact) / max_exact) / math.log(max_distance / max_exact) * (
            n_buckets - max_exact
        )
    return large & (np.abs(value - np.round(value)) < 1e-4) & (max_exact + np.round(value) < n_buckets)


def _channel_frequencies(theta: np.ndarray, layout: str) -> np.ndarray:
    """Frequency of every channel of a (sin, cos) or rotary layout built from per-pair theta."""
    if layout in ("half", "concat"):
        return np.concatenate([theta, theta])
    return np.repeat(theta, 2)


@_model("cos_sin")
def _cos_sin(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    from posref.rope import rope_frequencies

    u, ua = UNIT_ROUNDOFF[dtype], angle_roundoff(dtype)
    theta = _channel_frequencies(rope_frequencies(int(view.params["dim"]), base=float(view.params.get("base", 1e4))),
                                 view.params.get("layout", "half"))
    phi = np.asarray(view.inputs["positions"], dtype=np.float64)[..., None] * theta
    angle_error = _angle_error_factor(theta, ua) * np.abs(phi) + ua
    return {name: angle_error + u * np.abs(y) for name, y in view.expected.items()}


@_model("sinusoidal")
def _sinusoidal(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    u, ua = UNIT_ROUNDOFF[dtype], angle_roundoff(dtype)
    dim = int(view.params["dim"])
    base = float(view.params.get("base", 1e4))
    i = np.arange(dim // 2, dtype=np.float64)
    if view.params.get("freq_denominator", "dim") == "dim":
        omega = base ** (-2.0 * i / dim)
    else:
        omega = base ** (-i / max(dim // 2 - 1, 1))
    layout = view.params.get("layout", "interleaved")
    omega = _channel_frequencies(omega, "half" if layout == "concat" else "interleaved")
    p = np.asarray(view.inputs["positions"], dtype=np.float64) + float(view.params.get("position_offset", 0))
    phi = p[..., None] * omega
    y = np.abs(np.asarray(view.expected["output"], dtype=np.float64))
    return {"output": _angle_error_factor(omega, ua) * np.abs(phi) + ua + u * y}


@_model("rope")
def _rope(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    from posref.rope import rope_frequencies

    x = np.asarray(view.inputs["x"], dtype=np.float64)
    y = np.asarray(view.expected["output"], dtype=np.float64)
    d = x.shape[-1]
    r = view.params.get("rotary_dim") or d
    base = float(view.params.get("base", 1e4))
    if view.params.get("freq_denominator", "rotary_dim") == "head_dim":
        theta = rope_frequencies(d, base=base)[: r // 2]
    else:
        theta = rope_frequencies(r, base=base)
    p = np.asarray(view.inputs["positions"], dtype=np.float64) + float(view.params.get("position_offset", 0))
    phi = p[..., None] * theta
    rotated = slice(d - r, d) if view.params.get("rotated_slice", "first") == "last" else slice(0, r)
    return {"output": rope_budget(x, y, phi, theta, layout=view.params.get("layout", "half"), dtype=dtype,
                                  rotated=rotated)}


def _t5_params(view: CaseView) -> dict[str, Any]:
    return {
        "bidirectional": bool(view.params.get("bidirectional", True)),
        "num_buckets": int(view.params.get("num_buckets", 32)),
        "max_distance": int(view.params.get("max_distance", 128)),
    }


@_model("t5_bucket")
def _t5_bucket(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    rel = np.asarray(view.inputs["relative_position"], dtype=np.int64)
    return {"output": t5_near_boundary(rel, **_t5_params(view)).astype(np.float64)}


@_model("t5_bias")
def _t5_bias(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    from posref.t5 import t5_relative_bucket

    u = UNIT_ROUNDOFF[dtype]
    params = _t5_params(view)
    table = np.asarray(view.inputs["table"], dtype=np.float64)  # (num_buckets, H)
    rel = (np.asarray(view.inputs["key_positions"], dtype=np.int64)[None, :]
           - np.asarray(view.inputs["query_positions"], dtype=np.int64)[:, None])  # (T, S)
    bucket = t5_relative_bucket(rel, **params)
    near = t5_near_boundary(rel, **params)
    below = np.abs(table[np.maximum(bucket - 1, 0)] - table[bucket])  # (T, S, H)
    above = np.abs(table[np.minimum(bucket + 1, table.shape[0] - 1)] - table[bucket])
    slack = np.where(near[..., None], np.maximum(below, above), 0.0)
    y = np.abs(np.asarray(view.expected["output"], dtype=np.float64))
    return {"output": u * y + np.moveaxis(slack, -1, 0)}
