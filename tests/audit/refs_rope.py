r"""Independent mpmath references of the rotary, scaling, multi-axis, FoPE, sinusoidal and learned families.

Each entry of :data:`REFERENCES` is ``ref(inputs, params, output_name, index)``
and returns the exact value of one output element: an ``mpmath.mpf`` at the
caller's working precision (the accuracy audit runs at 60 digits), or a
Python ``int`` for integer outputs.  ``params`` are the case's keyword
parameters completed with the spec function's defaults.

Every formula is written from the mathematics in the spec docstrings and the
papers, never by calling posref:

* float inputs and float parameters are the exact binary64 numbers they
  hold (``mpf(float(v))`` is exact); integer inputs are exact integers;
* constants that the docstrings define exactly are the exact mathematical
  constants: :math:`\pi` (YaRN's and Llama 3's :math:`2\pi`, FoPE's floor
  :math:`2\pi\rho/L`, the Fourier features' :math:`2\pi k p/N`), xPos's
  :math:`\gamma = 0.4` (so :math:`\zeta_i = (10i + 2d)/(7d)`), YaRN's
  :math:`0.1 m \ln s + 1` and its 0.001 guard;
* branch decisions (YaRN's truncation and clamps, Llama 3's wavelength
  bands, FoPE's floor, LongRoPE's table choice, Qwen's doubling) are taken
  on the exact values;
* no function of these families rounds an intermediate to float32 on
  purpose, so nothing here rounds.

Frequency ladders :math:`b^{-ki/n}` are memoised per (base, step,
denominator, count, precision): a case's sampled elements share them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import mpmath
import numpy as np

__all__ = ["REFERENCES"]

mpf = mpmath.mpf
Index = tuple[int, ...]


# -- helpers ------------------------------------------------------------------------------------


def _num(value: Any) -> mpmath.mpf:
    """The exact value of a binary64 float or an integer."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (bool, np.bool_)):
        return mpf(int(value))
    if isinstance(value, int):
        return mpf(value)
    return mpf(float(value))


@functools.lru_cache(maxsize=4096)
def _ladder_cached(base: float, step: int, denominator: int, count: int, prec: int) -> tuple[mpmath.mpf, ...]:
    b = mpf(base)
    return tuple(mpmath.power(b, -mpf(step * i) / denominator) for i in range(count))


def _ladder(base: float, step: int, denominator: int, count: int) -> tuple[mpmath.mpf, ...]:
    r""":math:`b^{-\text{step}\,i/\text{denominator}}` for :math:`i = 0, \dots, \text{count} - 1`."""
    return _ladder_cached(float(base), int(step), int(denominator), int(count), mpmath.mp.prec)


def _theta(base: float, dim: int) -> tuple[mpmath.mpf, ...]:
    r"""RoPE frequencies :math:`\theta_i = b^{-2i/d}`, :math:`i < d/2`."""
    return _ladder(base, 2, dim, dim // 2)


def _bindex(shape: Sequence[int], lead: Index) -> Index:
    """Index into an array of ``shape`` broadcast (right-aligned) to the leading index ``lead``."""
    offset = len(lead) - len(shape)
    return tuple(0 if n == 1 else lead[offset + j] for j, n in enumerate(shape))


def _pair(channel: int, width: int, layout: str) -> tuple[int, bool, int]:
    """(pair index, first member?, partner channel) of ``channel`` in a ``width``-wide rotated block."""
    half = width // 2
    if layout == "half":
        if channel < half:
            return channel, True, channel + half
        return channel - half, False, channel - half
    return channel // 2, channel % 2 == 0, channel ^ 1


def _rotate(first: bool, x_self: mpmath.mpf, x_partner: mpmath.mpf, phi: mpmath.mpf) -> mpmath.mpf:
    r"""One member of :math:`(x_a + i x_b)e^{i\phi}`.

    :math:`x_a\cos\phi - x_b\sin\phi` for the first member, :math:`x_b\cos\phi + x_a\sin\phi` for the second.
    """
    c, s = mpmath.cos(phi), mpmath.sin(phi)
    if first:
        return x_self * c - x_partner * s
    return x_self * c + x_partner * s


# -- rope ---------------------------------------------------------------------------------------


def rope_frequencies(inputs, params, output, index):
    return _theta(params["base"], int(params["dim"]))[index[0]]


def rope_angles(inputs, params, output, index):
    p = _num(inputs["positions"][index[:-1]])
    return p * _theta(params["base"], int(params["dim"]))[index[-1]]


def rope_cos_sin(inputs, params, output, index):
    dim, channel = int(params["dim"]), index[-1]
    pair = channel % (dim // 2) if params["layout"] == "half" else channel // 2
    phi = _num(inputs["positions"][index[:-1]]) * _theta(params["base"], dim)[pair]
    return mpmath.cos(phi) if output == "output_0" else mpmath.sin(phi)


def apply_rotary(inputs, params, output, index):
    x, angles = inputs["x"], inputs["angles"]
    lead, channel = index[:-1], index[-1]
    pair, first, partner = _pair(channel, x.shape[-1], params["layout"])
    phi = _num(angles[_bindex(angles.shape[:-1], lead) + (pair,)])
    xi = _bindex(x.shape[:-1], lead)
    return _rotate(first, _num(x[xi + (channel,)]), _num(x[xi + (partner,)]), phi)


def _rope_pair_of_channel(channel: int, head_dim: int, rotary_dim: int, rotated_slice: str,
                          layout: str) -> tuple[int, bool, int] | None:
    """(pair, first member?, partner channel) of a rotated channel of ``apply_rope``, None if it passes through."""
    if rotated_slice == "first_pairs" and layout == "half":
        half, r_half = head_dim // 2, rotary_dim // 2
        j = channel if channel < half else channel - half
        if j >= r_half:
            return None
        return (j, True, channel + half) if channel < half else (j, False, channel - half)
    start = head_dim - rotary_dim if rotated_slice == "last" else 0
    if not start <= channel < start + rotary_dim:
        return None
    pair, first, partner = _pair(channel - start, rotary_dim, layout)
    return pair, first, partner + start


def apply_rope(inputs, params, output, index):
    x = inputs["x"]
    head_dim = x.shape[-1]
    rotary_dim = int(params["rotary_dim"]) if params["rotary_dim"] is not None else head_dim
    lead, channel = index[:-1], index[-1]
    found = _rope_pair_of_channel(channel, head_dim, rotary_dim, params["rotated_slice"], params["layout"])
    if found is None:
        return _num(x[index])
    pair, first, partner = found
    denominator = rotary_dim if params["freq_denominator"] == "rotary_dim" else head_dim
    theta = _ladder(params["base"], 2, denominator, rotary_dim // 2)[pair]
    positions = inputs["positions"]
    p = _num(positions[_bindex(positions.shape, lead)]) + _num(params["position_offset"])
    return _rotate(first, _num(x[index]), _num(x[lead + (partner,)]), p * theta)


# -- rope_scaling -------------------------------------------------------------------------------


def linear_scaled_frequencies(inputs, params, output, index):
    return _theta(params["base"], int(params["dim"]))[index[0]] / _num(params["scaling_factor"])


def dynamic_linear_frequencies(inputs, params, output, index):
    length, l0 = int(params["sequence_length"]), int(params["original_max_position_embeddings"])
    s = max(_num(params["scaling_factor"]), mpf(length) / l0)
    return _theta(params["base"], int(params["dim"]))[index[0]] / s


def _ntk_base_power(base: float, alpha: mpmath.mpf, dim: int, i: int) -> mpmath.mpf:
    r""":math:`(b\,\alpha^{d/(d-2)})^{-2i/d}`."""
    scaled = _num(base) * mpmath.power(alpha, mpf(dim) / (dim - 2))
    return mpmath.power(scaled, -mpf(2 * i) / dim)


def ntk_scaled_frequencies(inputs, params, output, index):
    return _ntk_base_power(params["base"], _num(params["scaling_factor"]), int(params["dim"]), index[0])


def ntk_fixed_frequencies(inputs, params, output, index):
    dim, i = int(params["dim"]), index[0]
    s = _num(params["scaling_factor"])
    theta = _theta(params["base"], dim)[i]
    if params["mixed_b"] is None:  # b^(-2i/d) s^(-2(i+1)/d)
        return theta * mpmath.power(s, -mpf(2 * (i + 1)) / dim)
    beta = _num(params["mixed_b"])
    a = mpmath.log(s) / mpmath.power(mpf(dim) / 2, beta)
    return theta / mpmath.exp(a * mpmath.power(mpf(i + 1), beta))


def dynamic_ntk_frequencies(inputs, params, output, index):
    dim = int(params["dim"])
    l0 = int(params["original_max_position_embeddings"])
    length = max(int(params["sequence_length"]), l0)
    s = _num(params["scaling_factor"])
    alpha = s * length / l0 - (s - 1)
    return _ntk_base_power(params["base"], alpha, dim, index[0])


def dynamic_ntk_sequence_length(inputs, params, output, index):
    positions = np.asarray(inputs["positions"]).reshape(-1)
    length = max(int(v) for v in positions) + 1
    l0 = int(params["original_max_position_embeddings"])
    cached = l0 if params["cached_length"] is None else int(params["cached_length"])
    if length > cached:
        return length
    if params["reset"] and length < l0 < cached:
        return l0
    return cached


def qwen_dynamic_ntk_frequencies(inputs, params, output, index):
    dim = int(params["dim"])
    l0, length = int(params["original_max_position_embeddings"]), int(params["sequence_length"])
    k = 0  # the smallest k >= 0 with L0 2^k >= L, i.e. ceil(log2(L / L0)) for L > L0
    while l0 * 2**k < length:
        k += 1
    alpha = max(2 ** (k + 1) - 1, 1) if length > l0 else 1
    return _ntk_base_power(params["base"], mpf(alpha), dim, index[0])


def _yarn_range(params) -> tuple[mpmath.mpf, mpmath.mpf]:
    r"""YaRN's (low, high): :math:`i(r) = d \ln(L_0/(2\pi r)) / (2\ln b)`, truncated and clamped exactly."""
    dim = int(params["dim"])
    l0, b = mpf(int(params["original_max_position_embeddings"])), _num(params["base"])

    def correction(rotations):
        return dim * mpmath.log(l0 / (2 * mpmath.pi * _num(rotations))) / (2 * mpmath.log(b))

    low, high = correction(params["beta_fast"]), correction(params["beta_slow"])
    if params["truncate"]:
        low, high = mpmath.floor(low), mpmath.ceil(high)
    limit = dim - 1 if params["high_limit"] == "dim" else dim // 2 - 1
    return max(low, mpf(0)), min(high, mpf(limit))


def yarn_correction_range(inputs, params, output, index):
    low, high = _yarn_range(params)
    return low if output == "output_0" else high


def yarn_frequencies(inputs, params, output, index):
    dim, i = int(params["dim"]), index[0]
    low, high = _yarn_range(params)
    if low == high:
        high = high + mpf(1) / 1000
    ramp = min(max((i - low) / (high - low), mpf(0)), mpf(1))
    mask = (1 - ramp) * _num(params["extrapolation_factor"])
    theta = _theta(params["base"], dim)[i]
    return theta / _num(params["scaling_factor"]) * (1 - mask) + theta * mask


def _g(s: mpmath.mpf, m: mpmath.mpf) -> mpmath.mpf:
    r"""YaRN's :math:`g(s, m) = 0.1\,m \ln s + 1` for :math:`s > 1`, else 1."""
    if s <= 1:
        return mpf(1)
    return m * mpmath.log(s) / 10 + 1


def yarn_attention_factor(inputs, params, output, index):
    if params["attention_factor"] is not None:
        return _num(params["attention_factor"])
    s = _num(params["scaling_factor"])
    return _g(s, _num(params["mscale"])) / _g(s, _num(params["mscale_all_dim"]))


def deepseek_softmax_scale(inputs, params, output, index):
    g = _g(_num(params["scaling_factor"]), _num(params["mscale_all_dim"]))
    return g * g / mpmath.sqrt(int(params["head_dim"]))


def longrope_frequencies(inputs, params, output, index):
    dim, i = int(params["dim"]), index[0]
    longer = int(params["sequence_length"]) > int(params["original_max_position_embeddings"])
    factors = params["long_factor"] if longer else params["short_factor"]
    return _theta(params["base"], dim)[i] / _num(factors[i])


def longrope_attention_factor(inputs, params, output, index):
    s = _num(params["scaling_factor"])
    if s <= 1:
        return mpf(1)
    return mpmath.sqrt(1 + mpmath.log(s) / mpmath.log(int(params["original_max_position_embeddings"])))


def llama3_scaled_frequencies(inputs, params, output, index):
    dim, i = int(params["dim"]), index[0]
    s = _num(params["scaling_factor"])
    f_low, f_high = _num(params["low_freq_factor"]), _num(params["high_freq_factor"])
    l0 = mpf(int(params["original_max_position_embeddings"]))
    theta = _theta(params["base"], dim)[i]
    wavelength = 2 * mpmath.pi / theta
    if wavelength < l0 / f_high:
        return theta
    if wavelength > l0 / f_low or f_high == f_low:  # the single blended wavelength takes theta/s
        return theta / s
    gamma = (l0 / wavelength - f_low) / (f_high - f_low)
    return (1 - gamma) * theta / s + gamma * theta


# -- xpos ---------------------------------------------------------------------------------------


def _xpos_scale(positions: np.ndarray, position: int, pair: int, dim: int, params) -> mpmath.mpf:
    r"""xPos scale :math:`\zeta_i^{\pm c/B}` with :math:`c = p - \text{shift}`.

    :math:`\zeta_i = (2i + 0.4d)/(1.4d) = (10i + 2d)/(7d)`, with the docstring's exact :math:`\gamma = 0.4`.
    """
    n = params["sequence_length"]
    n = int(np.max(positions)) + 1 if n is None else int(n)
    shift = {"ceil_half": (n + 1) // 2, "floor_half": n // 2, "none": 0}[params["centering"]]
    exponent = mpf(position - shift) / _num(params["scale_base"])
    if params["downscale"]:
        exponent = -exponent
    zeta = mpf(10 * int(pair) + 2 * int(dim)) / (7 * int(dim))
    return mpmath.power(zeta, exponent)


def xpos_scales(inputs, params, output, index):
    positions = inputs["positions"]
    return _xpos_scale(positions, int(positions[index[:-1]]), index[-1], int(params["dim"]), params)


def apply_xpos(inputs, params, output, index):
    x, positions = inputs["x"], inputs["positions"]
    d = x.shape[-1]
    lead, channel = index[:-1], index[-1]
    pair, first, partner = _pair(channel, d, params["layout"])
    p = int(positions[_bindex(positions.shape, lead)])
    rotated = _rotate(first, _num(x[index]), _num(x[lead + (partner,)]), p * _theta(params["base"], d)[pair])
    return rotated * _xpos_scale(positions, p, pair, d, params)


# -- multiaxis ----------------------------------------------------------------------------------


def sincos_2d_encoding(inputs, params, output, index):
    height, width = (int(v) for v in params["grid_shape"])
    dim = int(params["dim"])
    row, channel = index
    if params["class_token"]:
        if row == 0:
            return mpf(0)
        row -= 1
    y, x = divmod(row, width)  # row-major tokens
    a, b = (x, y) if params["axis_order"] == "xy" else (y, x)
    quarter = dim // 4
    block, k = divmod(channel, quarter)
    omega = _ladder(params["base"], 1, quarter, quarter)[k]  # b^(-k/(dim/4))
    if params["grouping"] == "axis":
        coordinate, wave = [(a, mpmath.sin), (a, mpmath.cos), (b, mpmath.sin), (b, mpmath.cos)][block]
    else:
        coordinate, wave = [(a, mpmath.sin), (b, mpmath.sin), (a, mpmath.cos), (b, mpmath.cos)][block]
    return wave(coordinate * omega)


def _axial_angle(positions_2d: np.ndarray, lead: Index, pair: int, dim: int, params) -> mpmath.mpf:
    r"""Pair ``pair``'s angle: the first dim/4 pairs turn with the first coordinate, the rest with the second."""
    coords = positions_2d[(slice(None),) + _bindex(positions_2d.shape[1:], lead)]
    y, x = _num(coords[0]), _num(coords[1])
    first, second = (x, y) if params["axis_order"] == "xy" else (y, x)
    quarter = dim // 4
    block, k = divmod(pair, quarter)
    if params["frequencies"] == "per_axis":
        omega = _ladder(params["base"], 4, dim, quarter)[k]  # b^(-4k/dim)
    else:
        omega = _theta(params["base"], dim)[2 * k + block]  # even entries, then odd entries
    return (first if block == 0 else second) * omega


def axial_rope_angles(inputs, params, output, index):
    return _axial_angle(inputs["positions_2d"], index[:-1], index[-1], int(params["dim"]), params)


def apply_axial_rope(inputs, params, output, index):
    x = inputs["x"]
    d = x.shape[-1]
    lead, channel = index[:-1], index[-1]
    pair, first, partner = _pair(channel, d, params["layout"])
    phi = _axial_angle(inputs["positions_2d"], lead, pair, d, params)
    xi = _bindex(x.shape[:-1], lead)
    return _rotate(first, _num(x[xi + (channel,)]), _num(x[xi + (partner,)]), phi)


def _mrope_axis(pair: int, section: Sequence[int], interleaved: bool) -> int:
    """Coordinate (0 temporal, 1 height, 2 width) driving ``pair``."""
    if interleaved:
        if pair % 3 == 1 and pair < 3 * section[1]:
            return 1
        if pair % 3 == 2 and pair < 3 * section[2]:
            return 2
        return 0
    if pair < section[0]:
        return 0
    return 1 if pair < section[0] + section[1] else 2


def _mrope_angle(positions: np.ndarray, lead: Index, pair: int, dim: int, params) -> mpmath.mpf:
    section = [int(v) for v in params["mrope_section"]]
    axis = _mrope_axis(pair, section, params.get("section_order", "blocks") == "round_robin")
    p = _num(positions[(axis,) + _bindex(positions.shape[1:], lead)])
    return p * _theta(params["base"], dim)[pair]


def mrope_angles(inputs, params, output, index):
    return _mrope_angle(inputs["positions"], index[:-1], index[-1], int(params["dim"]), params)


def apply_mrope(inputs, params, output, index):
    x = inputs["x"]
    d = x.shape[-1]
    lead, channel = index[:-1], index[-1]
    pair, first, partner = _pair(channel, d, params["layout"])
    phi = _mrope_angle(inputs["positions"], lead, pair, d, params)
    xi = _bindex(x.shape[:-1], lead)
    return _rotate(first, _num(x[xi + (channel,)]), _num(x[xi + (partner,)]), phi)


@functools.lru_cache(maxsize=64)
def _mrope_ids(segments: tuple, merge: int) -> tuple[tuple[int, int, int], ...]:
    """(temporal, height, width) of every token, by the rule of Qwen2-VL's ``get_rope_index``."""
    tokens = []
    start = 0
    for segment in segments:
        if isinstance(segment, int):
            tokens.extend((start + j,) * 3 for j in range(segment))
            start += segment
        else:
            t, h, w = segment[0], segment[1] // merge, segment[2] // merge
            tokens.extend((start + f, start + r, start + c) for f in range(t) for r in range(h) for c in range(w))
            start += max(t, h, w)
    return tuple(tokens)


def _freeze(value):
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return int(value)


def mrope_position_ids(inputs, params, output, index):
    axis, token = index
    return _mrope_ids(_freeze(params["segments"]), int(params["spatial_merge_size"]))[token][axis]


# -- fope ---------------------------------------------------------------------------------------


def _fope_kept(dim: int, base: float, length: int, ratio: float) -> list[mpmath.mpf]:
    r"""RoPE frequencies at or above the floor :math:`2\pi\rho/L`."""
    floor = 2 * mpmath.pi * _num(ratio) / length
    return [theta for theta in _theta(base, dim) if not theta < floor]


def fope_frequencies(inputs, params, output, index):
    dim = int(params["dim"])
    theta = _theta(params["base"], dim)[index[0]]
    floor = 2 * mpmath.pi * _num(params["floor_ratio"]) / int(params["max_sequence_length"])
    return mpf(0) if theta < floor else theta


@functools.lru_cache(maxsize=4096)
def _fope_waves(p: mpmath.mpf, dim: int, base: float, length: int, ratio: float, prec: int):
    """cos and sin of every kept frequency's angle at position ``p`` (offset included)."""
    phis = [p * theta for theta in _fope_kept(dim, base, length, ratio)]
    return [mpmath.cos(phi) for phi in phis], [mpmath.sin(phi) for phi in phis]


def apply_fope(inputs, params, output, index):
    x, positions = inputs["x"], inputs["positions"]
    sin_coef, cos_coef = inputs["sin_coef"], inputs["cos_coef"]
    d = x.shape[-1]
    half = d // 2
    lead, channel = index[:-1], index[-1]
    dim = int(params["fourier_dim"]) if params["fourier_dim"] is not None else d
    p = _num(positions[_bindex(positions.shape, lead)]) + _num(params["position_offset"])
    cosines, sines = _fope_waves(p, dim, float(params["base"]),
                                 int(params["max_sequence_length"]), float(params["floor_ratio"]), mpmath.mp.prec)
    if len(cosines) != sin_coef.shape[-2]:
        raise ValueError(f"the exact floor keeps {len(cosines)} frequencies, the coefficients have "
                         f"{sin_coef.shape[-2]} rows")
    j = channel % half
    num_out = sin_coef.shape[-1]
    if j < num_out:
        if sin_coef.ndim == 3:  # one matrix per head, the head axis is x's axis -3
            head = lead[-2]
            s_col, c_col = sin_coef[head, :, j], cos_coef[head, :, j]
        else:
            s_col, c_col = sin_coef[:, j], cos_coef[:, j]
        c_j = mpmath.fsum(_num(a) * w for a, w in zip(c_col, cosines))
        s_j = mpmath.fsum(_num(a) * w for a, w in zip(s_col, sines))
    else:
        c_j, s_j = mpf(1), _num(params["pad_sin"])
    x_a, x_b = _num(x[lead + (j,)]), _num(x[lead + (j + half,)])
    return c_j * x_a - s_j * x_b if channel < half else c_j * x_b + s_j * x_a


# -- sinusoidal, fourier, learned ---------------------------------------------------------------


def sinusoidal_encoding(inputs, params, output, index):
    dim = int(params["dim"])
    half = dim // 2
    channel = index[-1]
    if params["layout"] == "interleaved":
        i, is_sine = channel // 2, channel % 2 == 0
    else:
        i, is_sine = channel % half, channel < half
    if params["freq_denominator"] == "dim":
        omega = _ladder(params["base"], 2, dim, half)[i]  # b^(-2i/d)
    else:
        omega = _ladder(params["base"], 1, max(half - 1, 1), half)[i]  # b^(-i/max(d/2-1, 1))
    q = _num(inputs["positions"][index[:-1]]) + int(params["position_offset"])
    return mpmath.sin(q * omega) if is_sine else mpmath.cos(q * omega)


def fourier_features(inputs, params, output, index):
    k_count = int(params["num_frequencies"])
    channel = index[-1]
    k, is_sine = channel % k_count + 1, channel >= k_count
    turns = 2 * k * _num(inputs["positions"][index[:-1]]) / _num(params["period"])  # angle / pi
    return mpmath.sinpi(turns) if is_sine else mpmath.cospi(turns)


def learned_position_embedding(inputs, params, output, index):
    table, positions = inputs["table"], inputs["positions"]
    row = int(positions[index[:-1]]) + int(params["position_offset"])
    if params["padding_idx"] is not None and row == int(params["padding_idx"]):
        return mpf(0)
    return _num(table[row, index[-1]])


REFERENCES: dict[str, Callable[[dict[str, np.ndarray], dict[str, Any], str, Index], Any]] = {
    function.__name__: function
    for function in (
        rope_frequencies, rope_angles, rope_cos_sin, apply_rotary, apply_rope,
        linear_scaled_frequencies, dynamic_linear_frequencies, ntk_scaled_frequencies, ntk_fixed_frequencies,
        dynamic_ntk_frequencies, dynamic_ntk_sequence_length, qwen_dynamic_ntk_frequencies,
        yarn_correction_range, yarn_frequencies, yarn_attention_factor, deepseek_softmax_scale,
        longrope_frequencies, longrope_attention_factor, llama3_scaled_frequencies,
        xpos_scales, apply_xpos,
        sincos_2d_encoding, axial_rope_angles, apply_axial_rope, mrope_angles, apply_mrope, mrope_position_ids,
        fope_frequencies, apply_fope,
        sinusoidal_encoding, fourier_features, learned_position_embedding,
    )
}
