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
    ``dynamic_ntk_frequencies`` computes its base from
    :math:`\alpha = s\bar L/L_0 - (s - 1)` (Hugging Face's form, in
    float32 where the sequence length is a tensor), whose two terms
    cancel near :math:`L_0`: :math:`s\bar L/L_0` is off by
    :math:`3u_a\,s\bar L/L_0` (:math:`s` rounded, the product, the
    quotient; integer lengths are exact), then :math:`s - 1` and the
    difference are rounded, so :math:`\Delta\alpha = (3s\bar L/L_0 +
    |s - 1| + \alpha)\,u_a`, about :math:`4s\,u_a` while :math:`\alpha`
    is near 1.  Through :math:`\theta_i' = b^{-2i/d}\alpha^{-2i/(d-2)}`
    this adds :math:`|\theta_i'|\,(2i/(d-2))\,\Delta\alpha/\alpha` (the
    whole relative error of :math:`\alpha` at the lowest frequency); the
    rest of the scaled base's arithmetic is that of any base.
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
``contraction``
    :math:`(n\,u_a + m\,u)\,\Sigma + u\,|y|` for an output that is a sum
    of products of inputs, with :math:`\Sigma = \sum_k |a_k b_k|`
    obtained exactly by evaluating the spec function itself on the
    absolute values of its inputs (every term then adds with the same
    sign).  The products and their sum run in float32 (``matmul`` and
    ``einsum`` accumulate in float32 for low-precision inputs), whose
    recursive or blocked summation of :math:`n` terms is within
    :math:`n\,u_a\,\Sigma` to first order; :math:`m` counts the sums of
    two inputs rounded to the activation dtype before the product
    (Transformer-XL's :math:`q + u` and :math:`q + v`, Shaw's
    :math:`v_j + a^V_{ij}`), each at most :math:`u\,\Sigma`; then one
    cast.  :math:`n` is the length of the longest sum: :math:`2D` for
    ``shaw_relative_logits`` (:math:`q\cdot k + q\cdot a^K`),
    :math:`2S` for ``shaw_relative_values``, :math:`2D + 1` for
    ``transformer_xl_scores`` (both dot products and the scale, with
    :math:`\Sigma` carrying the scale), :math:`3D + 1` for
    ``deberta_relative_scores`` (content, c2p and p2c dot products and
    the division by :math:`\sqrt{fD}`), :math:`k^2 + 1` for ``peg``
    (the depthwise kernel and the bias in float32, the convolution cast
    to the activation dtype, :math:`m = 1`, before the residual sum;
    :math:`\Sigma` then includes the residual :math:`|x|`).  Entries the spec sets to
    :math:`-\infty` get a budget of 0 and must match exactly.
``yarn_range``
    The ends :math:`c = d\ln(L_0/2\pi\beta)/(2\ln b)` of YaRN's
    correction range, computed in the angle precision, are off by
    :math:`\Delta c = (3d/(2\ln b) + 4|c|)\,u_a` (see ``frequency``); a
    clamped end is exact, and a truncated end is exact unless :math:`c`
    lies within :math:`\Delta c` of an integer, where it may be one off.
``fourier``
    :math:`5u_a\,|\phi| + u_a + u\,|y|` for ``fourier_features``, with
    :math:`\phi = 2\pi k p/N` of harmonic :math:`k` (cosines, then sines,
    as the spec orders them): the angle in the angle precision from
    :math:`2\pi`, :math:`kp`, their product and the quotient by the period
    :math:`N` (four roundings, one more for either order of the
    operations), the rounding of cos/sin, one cast.  The spec reduces
    :math:`kp` modulo :math:`N` exactly; an implementation need not, so
    the budget grows with :math:`|\phi|` as for ``cos_sin``.
``softmax``
    For ``attention``'s output :math:`y_i = \sum_j w_{ij} V_{ij}`,
    :math:`V_{ij} = v_j + a^V_{ij}`, :math:`w = \mathrm{softmax}(\ell)`:
    :math:`\sum_j w_{ij}\,|V_{ij} - y_i|\,\Delta\ell_{ij} + \sum_j
    w_{ij}|V_{ij}|\,((S + 4)\,u_a + u_a|\ell_{ij} - \max_k \ell_{ik}| + 2u)
    + u\,|y_i|`.  A logit error moves the output by
    :math:`\sum_j w_j(\Delta\ell_j - \sum_k w_k\Delta\ell_k)V_j = \sum_j
    w_j\Delta\ell_j(V_j - y)` (softmax's derivative), with
    :math:`\Delta\ell_{ij} = ((2D + 2)\,u_a + 3u)\,L_{ij}`,
    :math:`L_{ij} = c(\sum_d |q_{id}k_{jd}| + \sum_d |q_{id}a^K_{ijd}|)
    + |b_{ij}|`: the dot products accumulated in float32, the logits cast
    to the activation dtype, scaled by :math:`c` and added to the bias
    there (Hugging Face's eager attention), three roundings.  The weights'
    own relative error: the subtraction of the row maximum (carried by
    :math:`|\ell - \max\ell|` through exp), exp, the sum of :math:`S`
    terms and the quotient in float32, the weights cast to the activation
    dtype and :math:`v + a^V` summed there (:math:`2u`); the float32
    contraction with :math:`V` is inside the :math:`S\,u_a`.  One final
    cast.  Masked keys have weight 0 and add nothing.
``fire_mlp``
    For ``fire_bias``, :math:`y = w_2^\top \mathrm{relu}(z w_1 + b_1) +
    b_2` on FIRE's normalised distance :math:`z`:
    :math:`\sum_k |w_{2k}|\,\Delta a_k + (K + 1)\,u_a(\sum_k |w_{2k}
    h_k| + |b_2|) + u\,|y|`, with :math:`\Delta a_k = |w_{1k}|\,\Delta z +
    2u_a(|z w_{1k}| + |b_{1k}|)`: :math:`z` kept in float32 with the
    ``fire`` budget (final rounding :math:`u_a`), the first layer's
    product and sum in float32, ReLU (1-Lipschitz, so a pre-activation
    near 0 is covered), the second layer's :math:`K` products and the
    bias accumulated in float32, one cast.
``cope``
    CoPE's position :math:`p_{ij} = \sum_{t \ge j} \sigma(\ell_{it})` over
    the causal keys: :math:`((n_{ij} + 3)\,u_a + u)\,p_{ij}`, with
    :math:`n_{ij}` the number of gates summed (the sigmoid's exp, sum and
    quotient in float32 give each gate a relative :math:`3u_a`; the
    reverse cumulative sum of :math:`n` positive terms adds at most
    :math:`(n - 1)\,u_a\,p`), one cast.  For ``cope_bias``,
    :math:`e = (1 - w)z_{\lfloor p\rfloor} + w z_{\lceil p\rceil}`,
    :math:`z_r = q\cdot E_r`, :math:`p` clamped to :math:`P - 1`:
    :math:`\Delta p\,\max|z_{r+1} - z_r|` over the segments around
    :math:`p` (the interpolation is continuous and piecewise linear in
    :math:`p`; a clamped position farther than :math:`\Delta p` above
    :math:`P - 1` does not move), plus :math:`D\,u_a` times
    :math:`(1 - w)\sum|q E_{\lfloor p\rfloor}| + w\sum|q E_{\lceil
    p\rceil}|` (the float32 dot products), :math:`4u_a(|z_{\lfloor
    p\rfloor}| + |z_{\lceil p\rceil}|)` (the weight, :math:`1 - w`, two
    products and a sum) and one cast.  Future keys carry no gate.
``fope``
    For ``apply_fope``, with :math:`C_m = \sum_k \cos\phi_k\,A_{km}` and
    :math:`S_m = \sum_k \sin\phi_k\,B_{km}` over the :math:`K` kept
    frequencies, :math:`\phi_k = p\theta_k`: the coefficient sums are off
    by :math:`\Delta C_m = \sum_k |A_{km}|\,(\Delta\phi_k + (K + 1)\,u_a)`
    (each angle's error as in ``rope``, cos/sin rounded in the angle
    precision, the float32 sum of :math:`K` terms, each at most
    :math:`|A_{km}|`), and likewise :math:`\Delta S_m` with :math:`B`;
    padded pairs have the exact :math:`C = 1`, :math:`S` = ``pad_sin``.
    Then ``rotation``'s arithmetic: :math:`|x_a|(\Delta C_m + 2u|C_m|) +
    |x_b|(\Delta S_m + 2u|S_m|) + u|y|` for :math:`y_a = x_a C_m - x_b
    S_m` (the cast of :math:`C_m`, the product; the same with :math:`S`),
    and symmetrically for :math:`y_b = x_b C_m + x_a S_m`.
``elementwise``
    :math:`8u\,(|y| + \max|y|)`: the fallback for functions without a
    dedicated model (adapter-specific cases); loose for small elements by
    design and reported as such.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from posref import _arith

__all__ = [
    "CaseView",
    "TOLERANCE_CLASSES",
    "UNIT_ROUNDOFF",
    "angle_roundoff",
    "budgets",
    "dynamic_ntk_alpha_error",
    "round_budget",
]

_LOG2E = 1.0 / math.log(2.0)  # log2(x) = log(x) / ln 2

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


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def round_budget(budget) -> np.ndarray:
    """A budget rounded up to the nearest float32 value (float64 array holding float32 values).

    Budgets are stored in the golden corpus as float32, and ``posref check``
    judges with exactly the stored numbers; rounding up (at most a relative
    6e-8) never turns a pass into a fail.  Budgets beyond the float32 range
    stay as they are.
    """
    b = np.asarray(budget, dtype=np.float64)
    small = np.abs(b) <= _FLOAT32_MAX
    f = np.where(small, b, 0.0).astype(np.float32)
    f = np.where(f.astype(np.float64) < np.where(small, b, 0.0), np.nextafter(f, np.float32(np.inf)), f)
    return np.where(small, f.astype(np.float64), b)


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
        log_theta = np.abs(_arith.log(np.where(magnitude > 0, magnitude, 1.0)))
        return ((2 * log_theta + 2) * ua + ua) * magnitude

    result = _each_output(view, rule)
    blend = _BLENDED_TABLES.get(view.function)
    if blend is not None and "output" in result:
        theta_out = np.abs(np.asarray(view.expected["output"], dtype=np.float64))
        result["output"] = result["output"] + 5 * ua * theta_out + blend(view, ua)
    scaled_base = _SCALED_BASES.get(view.function)
    if scaled_base is not None and "output" in result:
        result["output"] = result["output"] + scaled_base(view, ua)
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


def _llama3_weight_error(view: CaseView, ua: float) -> np.ndarray:
    r""":math:`|\theta - \theta/s|\,\Delta\gamma` for Llama 3's blend weight, from a float32 wavelength."""
    from posref.rope import rope_frequencies

    dim, base = int(view.params["dim"]), float(_spec_param(view, "base"))
    s = float(_spec_param(view, "scaling_factor"))
    f_low, f_high = float(_spec_param(view, "low_freq_factor")), float(_spec_param(view, "high_freq_factor"))
    l0 = float(_spec_param(view, "original_max_position_embeddings"))
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


#: Scaling rules whose table blends the kept and the interpolated frequencies with a computed weight.
_BLENDED_TABLES: dict[str, Callable[[CaseView, float], np.ndarray]] = {
    "yarn_frequencies": _yarn_weight_error,
    "llama3_scaled_frequencies": _llama3_weight_error,
}


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


def _dynamic_ntk_base_error(view: CaseView, ua: float) -> np.ndarray:
    r""":math:`|\theta_i'|\,(2i/(d-2))\,\Delta\alpha/\alpha`: dynamic NTK's base from a rounded :math:`\alpha`."""
    dim = int(view.params["dim"])
    alpha, d_alpha = dynamic_ntk_alpha_error(
        scaling_factor=float(view.params["scaling_factor"]),
        original_max_position_embeddings=int(_spec_param(view, "original_max_position_embeddings")),
        sequence_length=int(view.params["sequence_length"]),
        dtype="float64" if ua == UNIT_ROUNDOFF["float64"] else "float32")
    theta = np.abs(np.asarray(view.expected["output"], dtype=np.float64))
    weight = 2.0 * np.arange(theta.shape[-1], dtype=np.float64) / (dim - 2)  # -d ln theta_i' / d ln alpha
    return theta * weight * (d_alpha / alpha)


#: Scaling rules whose base is computed from configuration numbers by arithmetic with an error of its own.
_SCALED_BASES: dict[str, Callable[[CaseView, float], np.ndarray]] = {
    "dynamic_ntk_frequencies": _dynamic_ntk_base_error,
}


def _angle_error_factor(theta: np.ndarray, ua: float) -> np.ndarray:
    """Relative error of an angle p*theta computed in the angle precision."""
    magnitude = np.abs(theta)
    log_theta = np.abs(_arith.log(np.where(magnitude > 0, magnitude, 1.0)))
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
        log2_m = np.abs(_LOG2E * _arith.log(np.where(magnitude > 0, magnitude, 1.0)))
        power = series * log2_m / max_bias  # k of the integer power base**k
        return (power + float(_arith.log(2.0)) * log2_m + 3) * ua * magnitude

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
        omega = _arith.power(base, -2.0 * i / dim)
    else:
        omega = _arith.power(base, -i / max(dim // 2 - 1, 1))
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
    return np.abs(centred.astype(np.float64))[..., None] / scale_base, np.abs(_arith.log(_zeta(dim)))


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
    omega = _arith.power(base, -2.0 * np.arange(k0, k0 + n, dtype=np.float64) / dim)
    phi = distance[..., None] * omega  # (T, S, n)
    cosines = _arith.cos(phi)
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
    log_distance = np.abs(_arith.log(np.where(distance > 0, distance, 1.0)))
    return {"output": ((2 * p * log_distance + 3) * ua + u) * y}


@_model("fire")
def _fire(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    u, ua = UNIT_ROUNDOFF[dtype], angle_roundoff(dtype)
    q, k = _query_key(view)
    c = abs(float(_spec_param(view, "c")))
    threshold, eps = float(_spec_param(view, "threshold")), float(_spec_param(view, "eps"))

    def psi(x):
        t = np.abs(c * x)
        value = _arith.log1p(t)
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


# -- sums of products ------------------------------------------------------------------------

#: Spec functions that are sums of products: (terms n of the longest sum, activation-dtype sums m).
_CONTRACTIONS: dict[str, Callable[[CaseView], tuple[int, int]]] = {
    "shaw_relative_logits": lambda view: (2 * np.shape(view.inputs["q"])[-1], 0),
    "shaw_relative_values": lambda view: (2 * np.shape(view.inputs["v"])[-2], 1),
    "transformer_xl_scores": lambda view: (2 * np.shape(view.inputs["q"])[-1] + 1, 1),
    "deberta_relative_scores": lambda view: (3 * np.shape(view.inputs["q"])[-1] + 1, 0),
    "peg": lambda view: (np.shape(view.inputs["weight"])[-1] ** 2 + 1, 1),
}


@_model("contraction")
def _contraction(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    from posref._spec import SPEC_FUNCTIONS

    u, ua = UNIT_ROUNDOFF[dtype], angle_roundoff(dtype)
    n, m = _CONTRACTIONS[view.function](view)
    names = _positional_names(SPEC_FUNCTIONS[view.function].function)

    def magnitude(name):  # floating data by absolute value; integer positions and absent tables as given
        value = view.inputs[name] if name in view.inputs else view.params.get(name)
        if value is None or np.asarray(value).dtype.kind in "iub":
            return value
        return np.abs(np.asarray(value, dtype=np.float64))

    args = [magnitude(name) for name in names]
    options = {key: (abs(value) if key == "scale" and value is not None else value)
               for key, value in view.params.items() if key not in names}
    total = np.asarray(SPEC_FUNCTIONS[view.function].function(*args, **options), dtype=np.float64)  # Sigma
    y = np.asarray(view.expected["output"], dtype=np.float64)
    finite = np.isfinite(y)
    budget = (n * ua + m * u) * np.where(finite, total, 0.0) + u * np.abs(np.where(finite, y, 0.0))
    return {"output": budget}


def _positional_names(function: Callable[..., Any]) -> list[str]:
    """Names of a spec function's positional-only (data) parameters."""
    import inspect

    return [name for name, p in inspect.signature(function).parameters.items() if p.kind is p.POSITIONAL_ONLY]


@_model("yarn_range")
def _yarn_range(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    from posref.rope_scaling import yarn_correction_range

    ua = angle_roundoff(dtype)
    dim, base = int(view.params["dim"]), float(_spec_param(view, "base"))
    options = {name: _spec_param(view, name) for name in
               ("original_max_position_embeddings", "beta_fast", "beta_slow", "high_limit")}
    limit = dim - 1 if options["high_limit"] == "dim" else dim // 2 - 1
    truncate = bool(_spec_param(view, "truncate"))
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


@_model("fourier")
def _fourier(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    u, ua = UNIT_ROUNDOFF[dtype], angle_roundoff(dtype)
    harmonics = np.arange(1, int(view.params["num_frequencies"]) + 1, dtype=np.float64)
    if _spec_param(view, "include_sine"):
        harmonics = np.concatenate([harmonics, harmonics])  # cosines, then sines
    phi = 2 * math.pi * _positions(view, "positions")[..., None] * harmonics / float(view.params["period"])
    y = np.abs(np.asarray(view.expected["output"], dtype=np.float64))
    return {"output": 5 * ua * np.abs(phi) + ua + u * y}


@_model("softmax")
def _softmax(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    u, ua = UNIT_ROUNDOFF[dtype], angle_roundoff(dtype)
    q, k, v = (_positions(view, name) for name in ("q", "k", "v"))
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


@_model("fire_mlp")
def _fire_mlp(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    from posref.relative import fire_normalized_distance

    u, ua = UNIT_ROUNDOFF[dtype], angle_roundoff(dtype)
    options = {name: _spec_param(view, name) for name in ("c", "threshold", "eps")}
    q, k = (np.asarray(view.inputs[name], dtype=np.int64) for name in ("query_positions", "key_positions"))
    z = fire_normalized_distance(q, k, **options)  # (T, S)
    z_view = CaseView("fire_normalized_distance", options, {"query_positions": q, "key_positions": k},
                      {"output": z})
    dz = _fire(z_view, "float64" if dtype == "float64" else "float32")["output"]  # z kept in the angle precision
    w1, b1, w2, b2 = (_positions(view, name) for name in ("w1", "b1", "w2", "b2"))
    pre = z[..., None] * w1[0] + b1  # (T, S, K)
    d_pre = np.abs(w1[0]) * dz[..., None] + 2 * ua * (np.abs(z[..., None] * w1[0]) + np.abs(b1))
    h = np.maximum(pre, 0.0)
    hidden = w1.shape[1]
    error = d_pre @ np.abs(w2) + (hidden + 1) * ua * (h @ np.abs(w2) + np.abs(b2))  # (T, S, H)
    y = np.asarray(view.expected["output"], dtype=np.float64)
    return {"output": np.moveaxis(error, -1, 0) + u * np.abs(y)}


@_model("cope")
def _cope(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    from posref.relative import _cope_causal, _cope_positions

    u, ua = UNIT_ROUNDOFF[dtype], angle_roundoff(dtype)
    logits = _positions(view, "logits")
    t, s = logits.shape[-2:]
    causal = _cope_causal(t, s)
    p = _cope_positions(logits, causal)  # (..., T, S), unclamped
    count = np.flip(np.cumsum(np.flip(causal, axis=-1), axis=-1), axis=-1)  # gates summed into p_ij
    dp = (count + 3) * ua * p
    y = np.asarray(view.expected["output"], dtype=np.float64)
    if view.function == "cope_positions":
        return {"output": dp + u * np.abs(y)}
    q, table = _positions(view, "q"), _positions(view, "position_embeddings")
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


@_model("fope")
def _fope(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    from posref.fope import _kept_frequencies

    u, ua = UNIT_ROUNDOFF[dtype], angle_roundoff(dtype)
    x = _positions(view, "x")
    head_dim, half = x.shape[-1], x.shape[-1] // 2
    theta = _kept_frequencies(int(_spec_param(view, "fourier_dim") or head_dim), float(_spec_param(view, "base")),
                              int(view.params["max_sequence_length"]), float(_spec_param(view, "floor_ratio")))
    p = np.broadcast_to(_positions(view, "positions") + float(_spec_param(view, "position_offset")), x.shape[:-1])
    phi = p[..., None] * theta  # (..., K)
    sin_coef, cos_coef = _positions(view, "sin_coef"), _positions(view, "cos_coef")
    per_angle = _angle_error_factor(theta, ua) * np.abs(phi) + (theta.shape[0] + 1) * ua  # (..., K)
    if sin_coef.ndim == 2:
        sums = [_arith.einsum("...k,km->...m", f(phi), c) for f, c in ((_arith.sin, sin_coef), (_arith.cos, cos_coef))]
        errors = [_arith.einsum("...k,km->...m", per_angle, np.abs(c)) for c in (sin_coef, cos_coef)]
    else:
        sums = [_arith.einsum("...htk,hkm->...htm", f(phi), c) for f, c in ((_arith.sin, sin_coef), (_arith.cos, cos_coef))]
        errors = [_arith.einsum("...htk,hkm->...htm", per_angle, np.abs(c)) for c in (sin_coef, cos_coef)]
    pad = x.shape[:-1] + (half - sin_coef.shape[-1],)
    sin_f = np.concatenate([sums[0], np.full(pad, float(_spec_param(view, "pad_sin")))], axis=-1)
    cos_f = np.concatenate([sums[1], np.ones(pad)], axis=-1)
    d_sin = np.concatenate([errors[0], np.zeros(pad)], axis=-1)
    d_cos = np.concatenate([errors[1], np.zeros(pad)], axis=-1)
    x_a, x_b = np.abs(x[..., :half]), np.abs(x[..., half:])
    by_cos = d_cos + 2 * u * np.abs(cos_f)
    by_sin = d_sin + 2 * u * np.abs(sin_f)
    y = np.abs(np.asarray(view.expected["output"], dtype=np.float64))
    return {"output": np.concatenate([x_a * by_cos + x_b * by_sin, x_b * by_cos + x_a * by_sin], axis=-1) + u * y}
