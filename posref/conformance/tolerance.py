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
* Tables computed from configuration numbers alone (inverse frequencies,
  scaled frequencies, ALiBi slopes, YaRN and LongRoPE factors) and angle
  and xPos scale tables computed from integer positions or coordinates
  (RoPE, M-RoPE, axial RoPE) have no input in the activation
  dtype; libraries keep them in float32 (Hugging Face recomputes
  ``inv_freq`` in float32 because a buffer cast by ``model.to(bfloat16)``
  degraded long-context outputs).  They are judged in the angle precision:
  their final rounding is ``u_a``, not ``u``, and such a table returned in
  bfloat16 fails.  This is what lets a bfloat16 run catch a frequency that
  is off by a relative 1e-5.
* The inputs the implementation receives are already rounded to its dtype;
  the reference is the float64 spec evaluated on those rounded inputs, so
  input rounding is never part of the budget.
* Elementary results are allowed a handful of roundings each; the constants
  below are written next to the term they cover.  The model is first order
  (products of two roundoffs are dropped).

The budgets, per tolerance class (``GoldenCase.tolerance``):

``exact``
    0: integer results (indices, buckets) must be equal.
``frequency``
    :math:`(2|\ln\theta| + 3)\,u_a\,|\theta|`: an exponent ``-2i/d``
    (rounded), ``log`` of the base (rounded), then ``exp`` or ``pow``,
    whose relative error grows with the size of the exponent
    :math:`|\ln\theta|`; then one rounding in the angle precision.  The
    constant 2 admits both the power form ``base ** (-2i/d)`` and the exp
    form ``exp(-2i/d * ln base)`` (the exp form uses up to two thirds of
    the budget).  The cost in sharpness is visible: a table written with 7
    significant digits mostly passes, one with 6 fails (by 4x or more on
    the golden tables).
    Scaled frequencies and scalar factors of the RoPE-scaling rules use
    the same class.  A table that blends the kept frequency
    :math:`\theta` and the interpolated one :math:`\theta/s` with a
    computed weight :math:`w` (``yarn_frequencies``,
    ``llama3_scaled_frequencies``) adds the blend arithmetic,
    :math:`5u_a|\theta'|` (the interpolated table, :math:`1 - w`, two
    products and a sum, each term at most :math:`|\theta'|`), and the
    weight's error carried by the distance between the two tables,
    :math:`|\theta - \theta/s|\,\Delta w` (times YaRN's
    ``extrapolation_factor``), at the pairs that error can reach.
    YaRN's ramp :math:`(i - l)/(h - l)` moves by
    :math:`(|1 - r|\Delta l + |r|\Delta h)/(h - l) + 3u_a`, where an end
    computed in float32 from :math:`c = d \ln(L_0/2\pi\beta)/(2\ln b)`
    is off by :math:`\Delta c = (3d/(2\ln b) + 4|c|)\,u_a` (keras-hub
    computes it so; Hugging Face uses Python floats); a truncated end is
    exact unless :math:`c` lies within :math:`\Delta c` of an integer,
    where it may be one off (:math:`\Delta c = 1`), and a clamped end is
    exact.  Llama 3's weight :math:`\gamma = (L_0/\lambda - f_l)/(f_h -
    f_l)` moves by :math:`((2|\ln\theta| + 5)\,u_a L_0/\lambda + u_a|L_0/
    \lambda - f_l|)/(f_h - f_l) + u_a|\gamma|`, from the float32
    wavelength :math:`2\pi/\theta`; with :math:`f_l = f_h` the weight
    jumps from 0 to 1 at one wavelength, and a pair within that error of
    it may take either value.
``angle``
    :math:`(2|\ln\theta| + 4)\,u_a\,|\phi|` with :math:`\phi = p\theta`:
    the frequency's error, one rounding of the product, one final rounding
    in the angle precision.  :math:`p` and :math:`\theta` are those of the
    coordinate that drives the pair, as the spec picks it: for
    ``mrope_angles`` the coordinate :math:`p_{a(i)}` that ``mrope_section``
    (contiguous or interleaved) assigns to pair :math:`i`, with the 1-D
    frequency :math:`\theta_i`; for ``axial_rope_angles`` the row or the
    column of the pair's block, with that block's frequency (the per-axis
    ladder :math:`b^{-4k/d}` or Pixtral's even or odd entries of
    :math:`b^{-2j/d}`).
``rotation``
    :math:`(|x_a| + |x_b|)(u_a + 2u) + u\,|y|` for a pair
    :math:`(x_a, x_b)` rotated by a given angle: cos/sin in the angle
    precision, rounded to the activation dtype, two products and a sum in
    the activation dtype.
``rope``
    ``rotation`` plus :math:`(|x_a| + |x_b|)\,\Delta\phi_i` with
    :math:`\Delta\phi_i = (2|\ln\theta_i| + 3)\,u_a\,|p\,\theta_i|`, the
    angle error carried through the derivative of the rotation, which is
    bounded by :math:`|x_a| + |x_b|`.  The rotated channels are those the
    case's ``rotary_dim``, ``rotated_slice`` and ``layout`` select, exactly
    as the spec selects them; the others pass through with one cast.
    ``apply_mrope`` and ``apply_axial_rope`` rotate every channel, each
    pair by the angle of its own coordinate and frequency (see ``angle``),
    so a far temporal id widens only the temporal pairs' budget.
``xpos_scale``
    :math:`(2|e|\,|\ln\zeta_i| + 4|e| + 4)\,u_a\,|y|` for an xPos scale
    :math:`y = \zeta_i^{\pm e}`, :math:`e = c/B` (centred position over
    scale base): the exponent :math:`c/B` (the integer :math:`c` exact,
    :math:`B` and the quotient rounded; carried by the power as
    :math:`2|e\ln\zeta_i|`), :math:`\zeta_i = (2i + 0.4d)/(1.4d)` from
    four roundings (:math:`0.4d`, the sum, :math:`1.4d`, the quotient;
    carried as :math:`4|e|`), the power within one ulp (2) and the
    reciprocal or power :math:`-1` of a key scale (2).  A table from
    integer positions: computed and judged in the angle precision, so a
    scale vector returned in bfloat16 fails.  Every scale is finite in
    float32 only while :math:`|e|\ln 3.5 < 87`, which the golden cases
    keep (a larger :math:`B` for long sequences).
``xpos``
    :math:`s_i(|x_a| + |x_b|)(2u_a + 2u + \Delta\phi_i) + (\Delta s_i +
    u)\,|y|` for a pair rotated by :math:`\phi_i = p\,\theta_i` (the
    uncentred position) and scaled by :math:`s_i`: cos and sin in the
    angle precision and multiplied by the scale there (torchscale and
    flash-attn fold the scale into their tables), cast to the activation
    dtype and used in two products, the angle error :math:`\Delta\phi_i`
    of ``rope``, the relative error :math:`\Delta s_i` of
    ``xpos_scale``, which scales the whole pair, and one final rounding.
    rotary-embedding-torch rounds the scale to the activation dtype and
    inverts it there for keys, then rotates in float32: those two
    roundings take the place of the cast and the products in the
    :math:`2u` term, since :math:`|y| \le s_i(|x_a| + |x_b|)`.
``linear_bias``
    For a bias :math:`b = c\,m\,d` from a given slope :math:`m` (an input
    of the case), distance :math:`d` and scale :math:`c`:
    :math:`(2u_a + u)\,|b|` (the product with the distance and the one
    with the scale in the angle precision, one final rounding).  A product
    rounded to bfloat16 uses a second ``u`` and fails, by design: with
    distances above 256 and slopes that are not powers of two, bfloat16
    arithmetic rounds twice.  For slopes computed from ``num_heads``
    (``alibi_slopes``, a configuration table):
    :math:`(N|\log_2 m|/B + |\ln m| + 3)\,u_a\,|m|`, with
    :math:`N = 2^{\lceil \log_2 n \rceil}` and :math:`B` = ``max_bias``.
    BLOOM computes slope :math:`k` of a series :math:`2^{-Bk/N'}` as the
    integer power :math:`\hat\beta^k` of the rounded base
    :math:`\hat\beta = \mathrm{fl}(2^{-B/N'})`, which carries :math:`k`
    times the base's rounding error, and :math:`k = N'|\log_2 m|/B \le
    N|\log_2 m|/B`; MPT's ``1 / 2**(k B/N)`` rounds the exponent
    (:math:`|\ln m|\,u_a`), the power and the quotient.
``gather``
    :math:`u\,|b|`: a value looked up from a table that the implementation
    received in its own dtype; only a final cast is allowed.
``t5_bucket``
    ``exact``, except one bucket of slack at exactly those relative
    positions where T5's log-bucket argument
    :math:`v = L\ln(n/e)/\ln(M/e)` lies within its float32 rounding error
    of an integer: :math:`|v - \mathrm{round}(v)| \le 2(2L/\ln(M/e) +
    6L)\,u_a`, from the roundings of :math:`n` and :math:`n/e`
    (:math:`L u_a/\ln(M/e)` each) and of the logarithm, the constant
    :math:`\ln(M/e)`, the quotient and the product (:math:`|v| \le L`
    times :math:`u_a` each), doubled for safety.
``t5_bias``
    ``gather``, plus the difference to the neighbouring bucket's value at
    exactly the ``t5_bucket`` slack points.
``cos_sin``, ``sinusoidal``
    :math:`(2|\ln\theta| + 3)\,u_a\,|\phi| + u_a + u\,|y|`: the angle
    error (cos and sin have derivatives bounded by 1), the rounding of
    cos/sin in the angle precision, one cast to the activation dtype.
    Every channel reads its own angle: ``sincos_2d_encoding`` the grid
    coordinate of its block (:math:`\phi = a\,\omega_k` or
    :math:`b\,\omega_k`, :math:`\omega_k = b^{-4k/d}`, in the order
    ``axis_order`` and ``grouping`` give), with a budget of 0 on the
    all-zero class-token row; ``transformer_xl_relative_encoding`` the
    (clamped) distance :math:`\delta\,\omega_k`, sines then cosines.
``sandwich``
    :math:`E/(8h/H) + (2u_a + u)\,|y|` for head :math:`h` of :math:`H`,
    with kernel :math:`K = \sum_k \cos\phi_k - d/2`,
    :math:`\phi_k = \Delta\,\omega_k`, and
    :math:`E = \sum_k (\Delta\phi_k + u_a) + (d/2 - 1)\,u_a \sum_k
    |\cos\phi_k| + u_a|K|`: each angle's error (as in ``rope``) and its
    cosine's rounding, the sum of the :math:`d/2` cosines in any order
    (the first-order bound of recursive summation), the subtraction of
    :math:`d/2`; then the divisor :math:`8h/H` and the quotient, one
    cast.  :math:`E` is absolute because the kernel cancels near distance
    0, where :math:`\sum_k \cos\phi_k \approx d/2`.
``kerple``
    Logarithmic kernel :math:`y = -r_1\ln(1 + t)`, :math:`t = r_2\Delta`:
    :math:`|r_1|\,u_a\,(t/(1 + t) + 1) + (2u_a + u)\,|y|`, from the
    product :math:`t` (carried through the logarithm by
    :math:`t/(1 + t)`), the sum :math:`1 + t` (:math:`u_a` after the
    logarithm), the logarithm and the product with :math:`r_1`, one cast.
    Power kernel :math:`y = -a\Delta^p`:
    :math:`((2p|\ln\Delta| + 3)\,u_a + u)\,|y|`, from a power within one
    ulp or its exp form (the logarithm and the product,
    :math:`2p|\ln\Delta|`), the product with :math:`a`, one cast.
    Distances are integer differences, exact in float32; the kernel
    computed in the activation dtype, as KERPLE's own code does, rounds
    three times more and fails at short distances.
``fire``
    For FIRE's :math:`z = \psi(\delta)/D`, :math:`D = \psi(m) + \epsilon`,
    :math:`m = \max(p_q, L)`, :math:`\psi(x) = \ln(1 + |cx|)`:
    :math:`(\Delta\psi(\delta) + |z|(\Delta\psi(m) + u_a D))/D + (u_a +
    u)\,|z|` with :math:`\Delta\psi(x) = u_a(3t/(1 + t) + 1 + \psi(x))`,
    :math:`t = |cx|`: :math:`c`, :math:`L` and the product (relative
    :math:`3u_a` on :math:`t`), the sum :math:`1 + t`, the logarithm; the
    normaliser's error and :math:`\epsilon`'s rounding relative to
    :math:`D`; the quotient and one cast.
``elementwise``
    :math:`8u\,(|y| + \max|y|)`: the fallback for functions without a
    dedicated model (learned MLPs, attention scores, CoPE's gates); loose
    for small elements by design and reported as such.
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
    ua = angle_roundoff(dtype)  # a configuration table: computed and returned in the angle precision

    def rule(theta):
        magnitude = np.abs(theta)
        log_theta = np.abs(np.log(np.where(magnitude > 0, magnitude, 1.0)))
        return ((2 * log_theta + 2) * ua + ua) * magnitude

    result = _each_output(view, rule)
    blend = _BLENDED_TABLES.get(view.function)
    if blend is not None and "output" in result:
        theta_out = np.abs(np.asarray(view.expected["output"], dtype=np.float64))
        result["output"] = result["output"] + 5 * ua * theta_out + blend(view, ua)
    return result


def _spec_param(view: CaseView, name: str) -> Any:
    """A parameter of the case, or the spec function's default for it."""
    import inspect

    from posref._spec import SPEC_FUNCTIONS, spec_functions

    if name in view.params:
        return view.params[name]
    if view.function not in SPEC_FUNCTIONS:
        spec_functions()
    return inspect.signature(SPEC_FUNCTIONS[view.function].function).parameters[name].default


def _yarn_weight_error(view: CaseView, ua: float) -> np.ndarray:
    r""":math:`e\,|\theta - \theta/s|\,\Delta w` for YaRN's ramp weight computed in the angle precision."""
    from posref.rope import rope_frequencies
    from posref.rope_scaling import yarn_correction_range

    dim, base = int(view.params["dim"]), float(_spec_param(view, "base"))
    s, e = float(view.params["scaling_factor"]), float(_spec_param(view, "extrapolation_factor"))
    options = {name: _spec_param(view, name) for name in
               ("original_max_position_embeddings", "beta_fast", "beta_slow", "high_limit")}
    limit = dim - 1 if options["high_limit"] == "dim" else dim // 2 - 1
    raw = yarn_correction_range(dim, base=base, truncate=False, **options)  # clamped, not rounded
    truncate = bool(_spec_param(view, "truncate"))

    def end_error(c):
        error = (3 * dim / (2 * math.log(base)) + 4 * abs(c)) * ua  # ratio, log, product, quotient
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


def _llama3_weight_error(view: CaseView, ua: float) -> np.ndarray:
    r""":math:`|\theta - \theta/s|\,\Delta\gamma` for Llama 3's blend weight, from a float32 wavelength."""
    from posref.rope import rope_frequencies

    dim, base = int(view.params["dim"]), float(_spec_param(view, "base"))
    s = float(_spec_param(view, "scaling_factor"))
    f_low, f_high = float(_spec_param(view, "low_freq_factor")), float(_spec_param(view, "high_freq_factor"))
    l0 = float(_spec_param(view, "original_max_position_embeddings"))
    theta = rope_frequencies(dim, base=base)
    ratio = l0 * theta / (2 * math.pi)  # L0 / wavelength
    log_theta = np.abs(np.log(theta))
    d_ratio = ratio * (2 * log_theta + 5) * ua  # theta's own error, 2 pi, the quotient, L0 / lambda
    if f_high > f_low:
        gamma = (ratio - f_low) / (f_high - f_low)
        d_gamma = (d_ratio + np.abs(ratio - f_low) * ua) / (f_high - f_low) + np.abs(gamma) * ua
        reach = (ratio >= f_low - d_ratio) & (ratio <= f_high + d_ratio)
    else:  # a single blended wavelength, where the weight jumps from 0 to 1
        d_gamma = np.ones_like(theta)
        reach = np.abs(ratio - f_low) <= d_ratio
    return np.where(reach, np.abs(theta - theta / s) * d_gamma, 0.0)


#: Scaling rules whose table blends the kept and the interpolated frequencies with a computed weight.
_BLENDED_TABLES: dict[str, Callable[[CaseView, float], np.ndarray]] = {
    "yarn_frequencies": _yarn_weight_error,
    "llama3_scaled_frequencies": _llama3_weight_error,
}


def _angle_error_factor(theta: np.ndarray, ua: float) -> np.ndarray:
    """Relative error of an angle p*theta computed in the angle precision."""
    magnitude = np.abs(theta)
    log_theta = np.abs(np.log(np.where(magnitude > 0, magnitude, 1.0)))
    return (2 * log_theta + 3) * ua


def _positions(view: CaseView, name: str) -> np.ndarray:
    return np.asarray(view.inputs[name], dtype=np.float64)


def _rotary_dim(view: CaseView) -> int:
    """``dim`` of a table function, or the feature width of the ``x`` an application rotates."""
    return int(view.params["dim"]) if "dim" in view.params else int(np.shape(view.inputs["x"])[-1])


def _rope_pairs(view: CaseView) -> tuple[np.ndarray, np.ndarray]:
    """1-D RoPE: pair i turns by p * theta_i (``rope_angles``; ``apply_xpos``, which rotates by p too)."""
    from posref.rope import rope_frequencies

    theta = rope_frequencies(_rotary_dim(view), base=float(_spec_param(view, "base")))
    return _positions(view, "positions")[..., None] * theta, theta


def _mrope_pairs(view: CaseView) -> tuple[np.ndarray, np.ndarray]:
    """M-RoPE: pair i turns by p_a(i) * theta_i, with a(i) the coordinate its section assigns."""
    from posref.multiaxis import _mrope_angles
    from posref.rope import rope_frequencies

    dim, base = _rotary_dim(view), float(_spec_param(view, "base"))
    section = tuple(int(s) for s in view.params["mrope_section"])
    phi = _mrope_angles(_positions(view, "positions"), dim, base, section, bool(_spec_param(view, "interleaved")))
    return phi, rope_frequencies(dim, base=base)


def _axial_pairs(view: CaseView) -> tuple[np.ndarray, np.ndarray]:
    """Axial RoPE: the first dim/4 pairs turn with one coordinate, the last dim/4 with the other."""
    from posref.multiaxis import _axial_angles

    options = (_rotary_dim(view), float(_spec_param(view, "base")), _spec_param(view, "axis_order"),
               _spec_param(view, "frequencies"))
    theta = _axial_angles(np.ones(2), *options)  # the angles at coordinates (1, 1) are the frequencies
    return _axial_angles(_positions(view, "positions_2d"), *options), theta


#: Angle and frequency of every rotary pair, shape ``(..., P)`` and ``(P,)``, for the functions whose
#: angles come from positions or coordinates: the coordinate that drives each pair, as the spec picks it.
_ROTARY_PAIRS: dict[str, Callable[[CaseView], tuple[np.ndarray, np.ndarray]]] = {
    "rope_angles": _rope_pairs,
    "apply_xpos": _rope_pairs,
    "mrope_angles": _mrope_pairs,
    "apply_mrope": _mrope_pairs,
    "axial_rope_angles": _axial_pairs,
    "apply_axial_rope": _axial_pairs,
}


@_model("angle")
def _angle(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    ua = angle_roundoff(dtype)  # angles from integer positions stay in the angle precision
    pairs = _ROTARY_PAIRS.get(view.function)
    if pairs is not None:
        phi, theta = pairs(view)
        return {"output": (_angle_error_factor(theta, ua) + ua) * np.abs(phi)}
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
        return (_angle_error_factor(theta, ua) + ua) * np.abs(phi)

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
    pair = np.broadcast_to(_pair_sum(xr, layout), yr.shape)
    dphi = _angle_error_factor(theta, ua) * np.abs(phi)
    dphi = np.broadcast_to(_per_channel(dphi, layout), yr.shape)
    budget[..., rotated] = pair * (ua + 2 * u + dphi) + u * yr
    return budget


@_model("linear_bias")
def _linear_bias(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    u, ua = UNIT_ROUNDOFF[dtype], angle_roundoff(dtype)
    if "slopes" in view.inputs:  # given slopes: a product with the distance, one with the scale, one cast
        return _each_output(view, lambda b: (2 * ua + u) * np.abs(np.where(np.isfinite(b), b, 0.0)))
    # slopes computed from the head count: a configuration table in the angle precision
    heads = int(view.params.get("num_heads", 1))
    max_bias = float(view.params.get("max_bias", 8.0))
    series = 2.0 ** math.ceil(math.log2(max(heads, 1)))  # N, at least the N' of either series

    def rule(m):
        magnitude = np.abs(np.where(np.isfinite(m), m, 0.0))
        log2_m = np.abs(np.log2(np.where(magnitude > 0, magnitude, 1.0)))
        power = series * log2_m / max_bias  # k of the integer power base**k
        return (power + math.log(2.0) * log2_m + 3) * ua * magnitude

    return _each_output(view, rule)


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
    n_buckets = num_buckets // 2 if bidirectional else num_buckets
    max_exact = n_buckets // 2
    num_log = n_buckets - max_exact
    n = np.abs(relative_position) if bidirectional else np.maximum(-relative_position, 0)
    n = n.astype(np.float64)
    large = n >= max_exact
    log_span = math.log(max_distance / max_exact)
    with np.errstate(divide="ignore"):
        value = np.log(np.where(large, n, max_exact) / max_exact) / log_span * num_log
    threshold = 2 * (2 * num_log / log_span + 6 * num_log) * angle_roundoff(dtype)
    return large & (np.abs(value - np.round(value)) <= threshold) & (max_exact + np.round(value) < n_buckets)


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


def _sinusoidal_channels(view: CaseView) -> tuple[np.ndarray, np.ndarray]:
    """``sinusoidal_encoding``: angle and frequency of every channel, in the case's layout."""
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
    return p[..., None] * omega, omega


def _sincos_2d_channels(view: CaseView) -> tuple[np.ndarray, np.ndarray]:
    """``sincos_2d_encoding``: each channel block reads the grid coordinate the spec gives it.

    The class-token row (all zeros in the spec) gets angle 0 and frequency 0,
    which the ``sinusoidal`` model turns into a budget of 0.
    """
    from posref.rope import rope_frequencies

    height, width = (int(v) for v in view.params["grid_shape"])
    dim = int(view.params["dim"])
    omega = rope_frequencies(dim // 2, base=float(_spec_param(view, "base")))  # (dim/4,)
    rows, cols = np.divmod(np.arange(height * width, dtype=np.float64), width)  # row-major tokens
    a, b = (cols, rows) if _spec_param(view, "axis_order") == "xy" else (rows, cols)
    blocks = (a, a, b, b) if _spec_param(view, "grouping") == "axis" else (a, b, a, b)
    phi = np.concatenate([c[:, None] * omega for c in blocks], axis=1)  # (H*W, dim)
    theta = np.broadcast_to(np.tile(omega, 4), phi.shape)
    if _spec_param(view, "class_token"):
        phi = np.concatenate([np.zeros((1, dim)), phi])
        theta = np.concatenate([np.zeros((1, dim)), theta])
    return phi, theta


def _transformer_xl_channels(view: CaseView) -> tuple[np.ndarray, np.ndarray]:
    """``transformer_xl_relative_encoding``: the (clamped) distances, sines then cosines."""
    from posref.rope import rope_frequencies

    distances = _positions(view, "distances")
    max_distance = _spec_param(view, "max_distance")
    if max_distance is not None:
        distances = np.minimum(distances, float(max_distance))
    omega = _channel_frequencies(rope_frequencies(int(view.params["dim"]), base=float(_spec_param(view, "base"))),
                                 "concat")
    return distances[..., None] * omega, omega


#: Angle and frequency of every output channel of a sinusoidal table, shaped like the output.
_SINUSOID_CHANNELS: dict[str, Callable[[CaseView], tuple[np.ndarray, np.ndarray]]] = {
    "sinusoidal_encoding": _sinusoidal_channels,
    "sincos_2d_encoding": _sincos_2d_channels,
    "transformer_xl_relative_encoding": _transformer_xl_channels,
}


@_model("sinusoidal")
def _sinusoidal(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    u, ua = UNIT_ROUNDOFF[dtype], angle_roundoff(dtype)
    phi, omega = _SINUSOID_CHANNELS.get(view.function, _sinusoidal_channels)(view)
    y = np.abs(np.asarray(view.expected["output"], dtype=np.float64))
    budget = _angle_error_factor(omega, ua) * np.abs(phi) + ua + u * y
    return {"output": np.where(omega == 0, 0.0, budget)}  # omega 0 only on an all-zero row


@_model("rope")
def _rope(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    from posref.rope import _rotated_channels, rope_frequencies

    x = np.asarray(view.inputs["x"], dtype=np.float64)
    y = np.asarray(view.expected["output"], dtype=np.float64)
    if view.function in ("apply_mrope", "apply_axial_rope"):  # every channel rotates
        phi, theta = _ROTARY_PAIRS[view.function](view)
        layout = _spec_param(view, "layout")
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
    rotated = _rotated_channels(d, r, view.params.get("rotated_slice", "first"), layout)  # as the spec selects
    return {"output": rope_budget(x, y, phi, theta, layout=layout, dtype=dtype, rotated=rotated)}


# -- xPos ------------------------------------------------------------------------------------


def _xpos_exponents(view: CaseView, dim: int) -> tuple[np.ndarray, np.ndarray]:
    r""":math:`|e| = |c|/B` per position, shape ``positions.shape + (1,)``, and :math:`|\ln\zeta_i|`, shape (dim/2,)."""
    from posref.xpos import _check_xpos_options, _zeta

    positions = np.asarray(view.inputs["positions"], dtype=np.int64)
    scale_base, centred, _ = _check_xpos_options(
        positions, _spec_param(view, "scale_base"), _spec_param(view, "centering"),
        _spec_param(view, "sequence_length"), _spec_param(view, "downscale"))
    return np.abs(centred.astype(np.float64))[..., None] / scale_base, np.abs(np.log(_zeta(dim)))


def _xpos_scale_error(e: np.ndarray, log_zeta: np.ndarray, ua: float) -> np.ndarray:
    r"""Relative error of a scale :math:`\zeta_i^{\pm c/B}` computed in the angle precision."""
    return (2 * e * log_zeta + 4 * e + 4) * ua


@_model("xpos_scale")
def _xpos_scale(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    ua = angle_roundoff(dtype)  # a table from integer positions: computed and returned in the angle precision
    e, log_zeta = _xpos_exponents(view, int(view.params["dim"]))
    y = np.abs(np.asarray(view.expected["output"], dtype=np.float64))
    return {"output": _xpos_scale_error(e, log_zeta, ua) * y}


@_model("xpos")
def _xpos(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    from posref.xpos import xpos_scales

    u, ua = UNIT_ROUNDOFF[dtype], angle_roundoff(dtype)
    x = np.abs(np.asarray(view.inputs["x"], dtype=np.float64))
    y = np.abs(np.asarray(view.expected["output"], dtype=np.float64))
    d, layout = x.shape[-1], _spec_param(view, "layout")
    phi, theta = _rope_pairs(view)  # rotation by the uncentred position
    e, log_zeta = _xpos_exponents(view, d)
    scale = xpos_scales(view.inputs["positions"], d, **{name: _spec_param(view, name) for name in
                        ("scale_base", "centering", "sequence_length", "downscale")})  # (..., D/2)
    pair = _pair_sum(x, layout) * _per_channel(scale, layout)  # s (|x_a| + |x_b|)
    dphi = _per_channel(_angle_error_factor(theta, ua) * np.abs(phi), layout)
    ds = _per_channel(_xpos_scale_error(e, log_zeta, ua), layout)
    return {"output": pair * (2 * ua + 2 * u + dphi) + (ds + u) * y}


# -- relative biases from sinusoids and kernels -----------------------------------------------


def _query_key(view: CaseView) -> tuple[np.ndarray, np.ndarray]:
    return _positions(view, "query_positions"), _positions(view, "key_positions")


@_model("sandwich")
def _sandwich(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    from posref.relative import _causal_distance

    u, ua = UNIT_ROUNDOFF[dtype], angle_roundoff(dtype)
    dim, heads = int(view.params["dim"]), int(view.params["num_heads"])
    base, k0 = float(_spec_param(view, "base")), int(_spec_param(view, "first_frequency"))
    distance = _causal_distance(*_query_key(view), bool(_spec_param(view, "bidirectional")))  # (T, S)
    n = dim // 2
    omega = base ** (-2.0 * np.arange(k0, k0 + n, dtype=np.float64) / dim)
    phi = distance[..., None] * omega  # (T, S, n)
    cosines = np.cos(phi)
    kernel = cosines.sum(axis=-1) - n
    kernel_error = ((_angle_error_factor(omega, ua) * np.abs(phi) + ua).sum(axis=-1)  # each angle and cosine
                    + (n - 1) * ua * np.abs(cosines).sum(axis=-1)  # the sum, in any order
                    + ua * np.abs(kernel))  # minus d/2
    divisor = 8.0 * np.arange(1, heads + 1, dtype=np.float64) / heads  # 8h/H
    y = np.abs(np.asarray(view.expected["output"], dtype=np.float64))
    return {"output": kernel_error[None] / divisor[:, None, None] + (2 * ua + u) * y}


@_model("kerple")
def _kerple(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    from posref.relative import _causal_distance

    u, ua = UNIT_ROUNDOFF[dtype], angle_roundoff(dtype)
    distance = _causal_distance(*_query_key(view), bool(_spec_param(view, "bidirectional")))[None]  # (1, T, S)
    y = np.abs(np.asarray(view.expected["output"], dtype=np.float64))
    if view.function == "kerple_log_bias":
        r1, r2 = (np.abs(_positions(view, name))[:, None, None] for name in ("r1", "r2"))
        t = r2 * distance
        return {"output": r1 * ua * (t / (1 + t) + 1) + (2 * ua + u) * y}
    p = np.abs(_positions(view, "p"))[:, None, None]
    log_distance = np.abs(np.log(np.where(distance > 0, distance, 1.0)))
    return {"output": ((2 * p * log_distance + 3) * ua + u) * y}


@_model("fire")
def _fire(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    u, ua = UNIT_ROUNDOFF[dtype], angle_roundoff(dtype)
    q, k = _query_key(view)
    c = abs(float(_spec_param(view, "c")))
    threshold, eps = float(_spec_param(view, "threshold")), float(_spec_param(view, "eps"))

    def psi(x):
        t = np.abs(c * x)
        value = np.log1p(t)
        return value, ua * (3 * t / (1 + t) + 1 + value)  # c (or L), the product, 1 + t, the log

    _, d_numerator = psi(q[:, None] - k[None, :])  # (T, S)
    normaliser, d_normaliser = psi(np.maximum(q, threshold)[:, None])  # (T, 1)
    denominator = normaliser + eps
    z = np.abs(np.asarray(view.expected["output"], dtype=np.float64))
    return {"output": (d_numerator + z * (d_normaliser + ua * denominator)) / denominator + (ua + u) * z}


def _t5_params(view: CaseView) -> dict[str, Any]:
    return {
        "bidirectional": bool(view.params.get("bidirectional", True)),
        "num_buckets": int(view.params.get("num_buckets", 32)),
        "max_distance": int(view.params.get("max_distance", 128)),
    }


@_model("t5_bucket")
def _t5_bucket(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    rel = np.asarray(view.inputs["relative_position"], dtype=np.int64)
    return {"output": t5_near_boundary(rel, **_t5_params(view), dtype=dtype).astype(np.float64)}


@_model("t5_bias")
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
