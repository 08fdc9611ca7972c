"""RoPE scaling rules: their ``frequency`` hooks and the ``yarn_range`` model.

The scaled frequency tables are judged by the ``frequency`` model of
:mod:`posref.tolerance.rope`; the rules whose table blends two
tables with a computed weight (YaRN, Llama 3) or whose base comes from
arithmetic of its own (dynamic NTK) register that extra error here.
"""

from __future__ import annotations

import math

import numpy as np

from posref import _arith
from posref.tolerance import (
    UNIT_ROUNDOFF,
    CaseView,
    angle_roundoff,
    blended_table,
    error_model,
    scaled_base,
    spec_param,
)

__all__ = ["dynamic_ntk_alpha_error"]


@blended_table("yarn_frequencies")
def _yarn_weight_error(view: CaseView, ua: float) -> np.ndarray:
    r""":math:`e\,|\theta - \theta/s|\,\Delta w` for YaRN's ramp weight computed in the angle precision."""
    from posref.rope import rope_frequencies
    from posref.rope_scaling import yarn_correction_range

    dim, base = int(view.params["dim"]), float(spec_param(view, "base"))
    s, e = float(view.params["scaling_factor"]), float(spec_param(view, "extrapolation_factor"))
    options = {name: spec_param(view, name) for name in
               ("original_max_position_embeddings", "beta_fast", "beta_slow", "high_limit")}
    limit = dim - 1 if options["high_limit"] == "dim" else dim // 2 - 1
    raw = yarn_correction_range(dim, base=base, truncate=False, **options)  # clamped, not rounded
    truncate = bool(spec_param(view, "truncate"))

    def end_error(c):
        error = (3 * dim / (2 * float(_arith.log(base))) + 4 * abs(c)) * ua  # ratio, log, product, quotient
        if c <= 0 or c >= limit:
            return 0.0  # clamped to an exact bound
        if truncate:  # floor/ceil are exact unless the float32 value may sit on the other side of an integer
            return 1.0 if abs(c - round(c)) <= error else 0.0
        return error

    low, high = raw
    d_low, d_high = end_error(low), end_error(high)
    if truncate:
        low, high = float(math.floor(low)), float(math.ceil(high))
    width = abs(high - low) if high != low else 0.001
    i = np.arange(dim // 2, dtype=np.float64)
    ramp = (i - low) / width
    clipped = np.clip(ramp, 0.0, 1.0)
    d_ramp = (np.abs(1 - ramp) * d_low + np.abs(ramp) * d_high) / width + 3 * ua
    reach = np.abs(ramp - clipped) <= d_ramp  # pairs the weight's error can move
    theta = rope_frequencies(dim, base=base)
    return np.where(reach, e * np.abs(theta - theta / s) * d_ramp, 0.0)


@blended_table("llama3_scaled_frequencies")
def _llama3_weight_error(view: CaseView, ua: float) -> np.ndarray:
    r""":math:`|\theta - \theta/s|\,\Delta\gamma` for Llama 3's blend weight, from a float32 wavelength."""
    from posref.rope import rope_frequencies

    dim, base = int(view.params["dim"]), float(spec_param(view, "base"))
    s = float(spec_param(view, "scaling_factor"))
    f_low, f_high = float(spec_param(view, "low_freq_factor")), float(spec_param(view, "high_freq_factor"))
    l0 = float(spec_param(view, "original_max_position_embeddings"))
    theta = rope_frequencies(dim, base=base)
    ratio = l0 * theta / (2 * math.pi)  # L0 / wavelength
    log_theta = np.abs(_arith.log(theta))
    d_ratio = ratio * (2 * log_theta + 5) * ua  # theta's own error, 2 pi, the quotient, L0 / lambda
    if f_high > f_low:
        gamma = (ratio - f_low) / (f_high - f_low)
        d_gamma = (d_ratio + np.abs(ratio - f_low) * ua) / (f_high - f_low) + np.abs(gamma) * ua
        reach = (ratio >= f_low - d_ratio) & (ratio <= f_high + d_ratio)
    else:  # a single blended wavelength, where the weight jumps from 0 to 1
        d_gamma = np.ones_like(theta)
        reach = np.abs(ratio - f_low) <= d_ratio
    return np.where(reach, np.abs(theta - theta / s) * d_gamma, 0.0)


def dynamic_ntk_alpha_error(*, scaling_factor: float, original_max_position_embeddings: int,
                            sequence_length: int, dtype: str = "float32") -> tuple[float, float]:
    r"""Dynamic NTK's :math:`\alpha` and its error :math:`\Delta\alpha` when computed in the angle precision.

    :math:`\alpha = s\bar L/L_0 - (s - 1)` with :math:`\bar L =
    \max(L, L_0)`, and :math:`\Delta\alpha = (3s\bar L/L_0 + |s - 1| +
    \alpha)\,u_a`: the roundings of :math:`s`, of the product and of the
    quotient (each relative to :math:`s\bar L/L_0`), of :math:`s - 1`
    and of the difference.  Near :math:`L_0` the two terms cancel to
    :math:`\alpha \approx 1`, so the relative error of :math:`\alpha` is
    about :math:`4s` roundings.  ``dtype`` (the activation dtype) selects
    the angle precision :math:`u_a`.
    """
    if dtype not in UNIT_ROUNDOFF:
        raise ValueError(f"dtype must be one of {', '.join(UNIT_ROUNDOFF)}, got {dtype!r}")
    for name, value in (("original_max_position_embeddings", original_max_position_embeddings),
                        ("sequence_length", sequence_length)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be a positive integer, got {type(value).__name__}")
        if value < 1:
            raise ValueError(f"{name} must be a positive integer, got {name}={value}")
    if isinstance(scaling_factor, bool) or not isinstance(scaling_factor, (int, float, np.integer, np.floating)):
        raise TypeError(f"scaling_factor must be a real number >= 1, got {type(scaling_factor).__name__}")
    s = float(scaling_factor)
    if not (math.isfinite(s) and s >= 1.0):
        raise ValueError(f"scaling_factor must be a finite real number >= 1, got scaling_factor={scaling_factor}")
    l0 = int(original_max_position_embeddings)
    length = max(int(sequence_length), l0)
    ratio = s * length / l0  # s L / L0
    alpha = 1.0 + s * (length - l0) / l0  # = ratio - (s - 1), evaluated without the cancellation
    return alpha, (3 * ratio + abs(s - 1) + alpha) * angle_roundoff(dtype)


@scaled_base("dynamic_ntk_frequencies")
def _dynamic_ntk_base_error(view: CaseView, ua: float) -> np.ndarray:
    r""":math:`|\theta_i'|\,(2i/(d-2))\,\Delta\alpha/\alpha`: dynamic NTK's base from a rounded :math:`\alpha`."""
    dim = int(view.params["dim"])
    alpha, d_alpha = dynamic_ntk_alpha_error(
        scaling_factor=float(view.params["scaling_factor"]),
        original_max_position_embeddings=int(spec_param(view, "original_max_position_embeddings")),
        sequence_length=int(view.params["sequence_length"]),
        dtype="float64" if ua == UNIT_ROUNDOFF["float64"] else "float32")
    theta = np.abs(np.asarray(view.expected["output"], dtype=np.float64))
    weight = 2.0 * np.arange(theta.shape[-1], dtype=np.float64) / (dim - 2)  # -d ln theta_i' / d ln alpha
    return theta * weight * (d_alpha / alpha)


@error_model("yarn_range")
def _yarn_range(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    from posref.rope_scaling import yarn_correction_range

    ua = angle_roundoff(dtype)
    dim, base = int(view.params["dim"]), float(spec_param(view, "base"))
    options = {name: spec_param(view, name) for name in
               ("original_max_position_embeddings", "beta_fast", "beta_slow", "high_limit")}
    limit = dim - 1 if options["high_limit"] == "dim" else dim // 2 - 1
    truncate = bool(spec_param(view, "truncate"))
    raw = yarn_correction_range(dim, base=base, truncate=False, **options)  # clamped, not rounded

    def end_error(c):
        error = (3 * dim / (2 * float(_arith.log(base))) + 4 * abs(c)) * ua
        if c <= 0 or c >= limit:
            return 0.0
        if truncate:
            return 1.0 if abs(c - round(c)) <= error else 0.0
        return error

    low, high = (end_error(float(c)) for c in raw)
    return {"output_0": np.asarray(low), "output_1": np.asarray(high)}
