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

Where the models live.  This package is the error-model layer, below
the golden cases (the corpus stores every case's budgets) and above the
spec; it imports neither.  Its ``__init__`` is the core: the conventions
above, :class:`CaseView`, :func:`budgets`, the models that belong to no
family (``exact``, ``gather``, ``elementwise``, and ``contraction``,
which describes a kind of arithmetic rather than one formula), the
helpers the models share, and the registration decorators.  Every other
model lives in ``posref/tolerance/<family>.py``, named after the family
of the spec catalogue and registered with :func:`error_model`; a family
whose functions are judged by shared models alone (learned absolute
positions, NoPE) has no module.  The rule for a model that several
families use: it lives in the module of the family whose function it was
written for (``frequency``, ``angle``, ``rotation``, ``rope`` and
``cos_sin`` in ``rope``; ``sinusoidal`` in ``sinusoidal``), and every
other family registers what the model needs to know of its functions, in
its own module, with a hook registrar: :func:`rotary_pairs` (``angle``,
``rope``), :func:`sinusoid_channels` (``sinusoidal``),
:func:`blended_table` and :func:`scaled_base` (``frequency``),
:func:`contraction_terms` (``contraction``).  No module registers
anything under another family's function.  The family modules are found
by ``pkgutil`` (adding a family's model is adding its module; modules
whose name starts with ``_`` are no family) and imported on the first
read of a registry (:func:`budgets` reads one), so importing this
package imports none of them.  ``posref.conformance.tolerance`` re-exports
this package's names.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Generic, TypeVar

import numpy as np

from posref import _arith

__all__ = [
    "CaseView",
    "HOOKS",
    "Registry",
    "TOLERANCE_CLASSES",
    "UNIT_ROUNDOFF",
    "angle_roundoff",
    "blended_table",
    "budgets",
    "contraction_terms",
    "error_model",
    "load_families",
    "rotary_pairs",
    "round_budget",
    "scaled_base",
    "sinusoid_channels",
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
T = TypeVar("T")

_FAMILY_MODULES: dict[str, ModuleType] = {}


def load_families() -> dict[str, ModuleType]:
    """Import every family module of this package, so that all registrations are done; return them.

    The family modules are ``posref/tolerance/<family>.py``, found by
    ``pkgutil`` (modules whose name starts with ``_`` are no family).  Every
    read of a :class:`Registry` of this package calls it; the imports happen
    once.

    Returns
    -------
    dict of str to module
        The family modules, by family name, in alphabetical order.
    """
    if not _FAMILY_MODULES:
        names = sorted(info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_"))
        modules = {name: importlib.import_module(f"{__name__}.{name}") for name in names}
        _FAMILY_MODULES.update(modules)
    return dict(_FAMILY_MODULES)


# -- registries ------------------------------------------------------------------------------


class Registry(Mapping[str, T], Generic[T]):
    """A read-only mapping filled by a registration decorator, one entry per name.

    Reading it (``registry[name]``, ``name in registry``, iterating) first
    calls ``load``, which imports every module that registers into it (by
    default :func:`load_families`, the family modules of this package), so
    a registry is complete whenever it is read.  :meth:`origin` names the
    module that registered an entry.
    """

    def __init__(self, what: str, *, load: Callable[[], object] = load_families) -> None:
        self.what = what
        self._load = load
        self._entries: dict[str, T] = {}
        self._origins: dict[str, str] = {}

    def register(self, name: str, value: T, *, origin: str) -> None:
        """Record ``value`` under ``name``, registered by module ``origin``.

        Raises
        ------
        ValueError
            If another module already registered ``name``.
        """
        if not isinstance(name, str) or not name:
            raise TypeError(f"{self.what} names must be non-empty strings, got {name!r}")
        known = self._origins.get(name)
        if known is not None and known != origin:
            raise ValueError(f"{self.what} {name!r} is registered twice: in {known} and in {origin}")
        self._entries[name] = value
        self._origins[name] = origin

    def origin(self, name: str) -> str:
        """The module that registered ``name``."""
        self._load()
        return self._origins[name]

    def __getitem__(self, name: str) -> T:
        self._load()
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        self._load()
        return iter(dict(self._entries))

    def __len__(self) -> int:
        self._load()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<{self.what} registry: {', '.join(self)}>"


#: Every tolerance class (``GoldenCase.tolerance``) and its model, registered with :func:`error_model`.
TOLERANCE_CLASSES: Registry[Model] = Registry("tolerance class")

#: Per-function hooks of the shared models, registered with the decorators below.
BLENDED_TABLES: Registry[Callable[[CaseView, float], np.ndarray]] = Registry("blended_table hook")
SCALED_BASES: Registry[Callable[[CaseView, float], np.ndarray]] = Registry("scaled_base hook")
ROTARY_PAIRS: Registry[Callable[[CaseView], tuple[np.ndarray, np.ndarray]]] = Registry("rotary_pairs hook")
SINUSOID_CHANNELS: Registry[Callable[[CaseView], tuple[np.ndarray, np.ndarray]]] = Registry("sinusoid_channels hook")
CONTRACTION_TERMS: Registry[Callable[[CaseView], tuple[int, int]]] = Registry("contraction_terms hook")

#: Every hook registry, by the name of its registrar.
HOOKS: dict[str, Registry] = {
    "blended_table": BLENDED_TABLES,
    "scaled_base": SCALED_BASES,
    "rotary_pairs": ROTARY_PAIRS,
    "sinusoid_channels": SINUSOID_CHANNELS,
    "contraction_terms": CONTRACTION_TERMS,
}


def error_model(name: str) -> Callable[[Model], Model]:
    """Register the decorated function as the model of tolerance class ``name``.

    The model is called as ``model(view, dtype)`` with a :class:`CaseView`
    and the dtype under test, and returns the per-element allowed absolute
    error of every output, ``{output name: array}``, broadcastable to the
    output.  A class is registered once, by one module.

    Parameters
    ----------
    name : str
        The tolerance class, as golden cases name it (``GoldenCase.tolerance``).

    Returns
    -------
    callable
        The decorator; it returns the model unchanged.
    """
    def register(model: Model) -> Model:
        TOLERANCE_CLASSES.register(name, model, origin=model.__module__)
        return model

    return register


def _hook(registry: Registry, function: str) -> Callable[[T], T]:
    def register(hook: T) -> T:
        registry.register(function, hook, origin=hook.__module__)
        return hook

    return register


def rotary_pairs(function: str) -> Callable[[T], T]:
    """Register how the spec function ``function`` turns its rotary pairs (``angle``, ``rope``).

    The hook is called as ``hook(view)`` and returns ``(phi, theta)``: the
    angle of every pair, shape ``(..., P)``, and its frequency, shape
    ``(P,)``, with the coordinate that drives each pair as the spec picks
    it.  The ``angle`` model judges the angles with them; the ``rope`` model
    rotates every channel of a function that has the hook.

    Parameters
    ----------
    function : str
        A spec function of the registering module's family.

    Returns
    -------
    callable
        The decorator; it returns the hook unchanged.
    """
    return _hook(ROTARY_PAIRS, function)


def sinusoid_channels(function: str) -> Callable[[T], T]:
    """Register the angle and frequency of every output channel of a sinusoidal table (``sinusoidal``).

    The hook is called as ``hook(view)`` and returns ``(phi, omega)``, both
    shaped like (or broadcastable to) the output; a channel with frequency
    0 gets a budget of 0.

    Parameters
    ----------
    function : str
        A spec function of the registering module's family.

    Returns
    -------
    callable
        The decorator; it returns the hook unchanged.
    """
    return _hook(SINUSOID_CHANNELS, function)


def blended_table(function: str) -> Callable[[T], T]:
    """Register the weight error of a frequency table that blends two tables (``frequency``).

    For a scaling rule whose table blends the kept and the interpolated
    frequencies with a computed weight: the hook is called as
    ``hook(view, ua)`` with the angle precision's unit roundoff and returns
    the weight's error carried into every frequency, shape ``(dim/2,)``; the
    model adds it and the blend arithmetic to the ``frequency`` budget.

    Parameters
    ----------
    function : str
        A spec function of the registering module's family.

    Returns
    -------
    callable
        The decorator; it returns the hook unchanged.
    """
    return _hook(BLENDED_TABLES, function)


def scaled_base(function: str) -> Callable[[T], T]:
    """Register the error of a base computed from configuration numbers (``frequency``).

    The hook is called as ``hook(view, ua)`` and returns the error that
    base's own arithmetic carries into every frequency, shape
    ``(dim/2,)``, which the model adds to the ``frequency`` budget.

    Parameters
    ----------
    function : str
        A spec function of the registering module's family.

    Returns
    -------
    callable
        The decorator; it returns the hook unchanged.
    """
    return _hook(SCALED_BASES, function)


def contraction_terms(function: str) -> Callable[[T], T]:
    """Register the sum lengths of a spec function that is a sum of products (``contraction``).

    The hook is called as ``hook(view)`` and returns ``(n, m)``: the number
    of terms of the longest sum, and the number of sums of two inputs
    rounded to the activation dtype before a product (see the model).

    Parameters
    ----------
    function : str
        A spec function of the registering module's family.

    Returns
    -------
    callable
        The decorator; it returns the hook unchanged.
    """
    return _hook(CONTRACTION_TERMS, function)


# -- budgets ---------------------------------------------------------------------------------


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


# -- helpers the models share ----------------------------------------------------------------


def each_output(view: CaseView, rule: Callable[[np.ndarray], np.ndarray]) -> dict[str, np.ndarray]:
    """``rule`` applied to every expected output (as float64), by output name."""
    return {name: rule(np.asarray(value, dtype=np.float64)) for name, value in view.expected.items()}


def spec_param(view: CaseView, name: str) -> Any:
    """A parameter of the case, or the spec function's default for it."""
    from posref import SPEC_FUNCTIONS, spec_functions

    if name in view.params:
        return view.params[name]
    if view.function not in SPEC_FUNCTIONS:
        spec_functions()
    return inspect.signature(SPEC_FUNCTIONS[view.function].function).parameters[name].default


def input_array(view: CaseView, name: str) -> np.ndarray:
    """Input ``name`` of the case as a float64 array."""
    return np.asarray(view.inputs[name], dtype=np.float64)


def query_key(view: CaseView) -> tuple[np.ndarray, np.ndarray]:
    """``query_positions`` and ``key_positions`` of the case, as float64 arrays."""
    return input_array(view, "query_positions"), input_array(view, "key_positions")


def angle_error_factor(theta: np.ndarray, ua: float) -> np.ndarray:
    """Relative error of an angle p*theta computed in the angle precision."""
    magnitude = np.abs(theta)
    log_theta = np.abs(_arith.log(np.where(magnitude > 0, magnitude, 1.0)))
    return (2 * log_theta + 3) * ua


def pair_sum(magnitude: np.ndarray, layout: str) -> np.ndarray:
    """|x_a| + |x_b| for the pair each channel belongs to, laid out like the channels."""
    half = magnitude.shape[-1] // 2
    if layout == "half":
        s = magnitude[..., :half] + magnitude[..., half:]
        return np.concatenate([s, s], axis=-1)
    s = magnitude[..., 0::2] + magnitude[..., 1::2]
    return np.repeat(s, 2, axis=-1)


def per_channel(pair_values: np.ndarray, layout: str) -> np.ndarray:
    """Expand a (..., D/2) per-pair array to (..., D) in the given layout."""
    if layout == "half":
        return np.concatenate([pair_values, pair_values], axis=-1)
    return np.repeat(pair_values, 2, axis=-1)


def channel_frequencies(theta: np.ndarray, layout: str) -> np.ndarray:
    """Frequency of every channel of a (sin, cos) or rotary layout built from per-pair theta."""
    if layout in ("half", "concat"):
        return np.concatenate([theta, theta])
    return np.repeat(theta, 2)


def positional_names(function: Callable[..., Any]) -> list[str]:
    """Names of a spec function's positional-only (data) parameters."""
    return [name for name, p in inspect.signature(function).parameters.items() if p.kind is p.POSITIONAL_ONLY]


# -- the models of no family -----------------------------------------------------------------


@error_model("exact")
def _exact(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    return each_output(view, np.zeros_like)


@error_model("gather")
def _gather(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    u = UNIT_ROUNDOFF[dtype]
    return each_output(view, lambda y: u * np.abs(np.where(np.isfinite(y), y, 0.0)))


@error_model("elementwise")
def _elementwise(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    u = UNIT_ROUNDOFF[dtype]

    def rule(y):
        finite = np.where(np.isfinite(y), np.abs(y), 0.0)
        return 8 * u * (finite + (finite.max() if finite.size else 0.0))

    return each_output(view, rule)


@error_model("contraction")
def _contraction(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    from posref import SPEC_FUNCTIONS

    u, ua = UNIT_ROUNDOFF[dtype], angle_roundoff(dtype)
    n, m = CONTRACTION_TERMS[view.function](view)
    names = positional_names(SPEC_FUNCTIONS[view.function].function)

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


# -- public names that live in a family module -------------------------------------------------

#: Public functions of the error model before the family modules existed: name -> the module that defines it now.
_MOVED = {
    "rope_budget": f"{__name__}.rope",
    "dynamic_ntk_alpha_error": f"{__name__}.rope_scaling",
    "t5_near_boundary": f"{__name__}.t5",
}


def __getattr__(name: str) -> Any:
    """``rope_budget``, ``dynamic_ntk_alpha_error`` and ``t5_near_boundary``, from their family modules."""
    if name in _MOVED:
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
