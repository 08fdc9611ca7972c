r"""Elementary functions of the specification, in two evaluation modes.

Every transcendental function and every contraction that a spec function
uses goes through this module.  By default each name is NumPy's own
(``np.sin``, ``np.exp``, ``np.einsum``, ...): fast, and accurate to about
one unit in the last place, but NumPy picks a different SIMD kernel for
float64 ``sin``, ``cos``, ``exp``, ``log`` and ``power`` on different CPUs
(AVX2, AVX-512, ...), and OpenBLAS picks a different kernel per CPU for
contractions, so the last bit of a result depends on the machine.

Inside ``with precise():`` (the golden-corpus generator and its currency
checks use it) the same names evaluate the function in double-double
arithmetic (about 106 significand bits) using only IEEE-754 addition,
subtraction, multiplication and division, which every CPU rounds the same
way, and round once to float64; contractions multiply exactly (Dekker's
product) and sum with :func:`math.fsum`.  A result is therefore

* the same bytes on every CPU, BLAS and supported NumPy version, and
* correctly rounded unless the exact value lies within about
  :math:`10^{-28}` relative of a midpoint between two float64 numbers (none
  of the golden corpus's values comes near that); results in the subnormal
  range may be one subnormal spacing off.

Arguments are float64 values, taken as exact.  Trigonometric arguments up
to :math:`2^{40}` in magnitude are reduced exactly enough; no golden case
comes near that.  Inputs outside the domain, infinities and NaNs give what
NumPy gives (those results are exact in every kernel).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
from fractions import Fraction

import numpy as np

__all__ = ["precise", "is_precise", "sin", "cos", "exp", "log", "log1p", "power", "expit", "einsum", "matmul"]

_PRECISE = contextvars.ContextVar("posref_precise", default=False)


@contextlib.contextmanager
def precise():
    """Evaluate the elementary functions correctly rounded and machine-independent."""
    token = _PRECISE.set(True)
    try:
        yield
    finally:
        _PRECISE.reset(token)


def is_precise() -> bool:
    """Whether the calling code runs inside :func:`precise`."""
    return _PRECISE.get()


# -- exact constants ---------------------------------------------------------------------------

def _fixed_ln2(bits: int) -> int:
    """ln 2 * 2**bits, truncated, from ln 2 = sum 1 / (k 2**k)."""
    guard = bits + 20
    total, k = 0, 1
    while True:
        term = (1 << guard) // (k << k)
        if term == 0:
            break
        total += term
        k += 1
    return total >> 20


def _fixed_pi(bits: int) -> int:
    """pi * 2**bits, truncated, from Machin's formula pi = 16 atan(1/5) - 4 atan(1/239)."""
    guard = bits + 20
    one = 1 << guard

    def atan_inv(n: int) -> int:
        total, power, k, sign = 0, one // n, 1, 1
        while power:
            total += sign * (power // k)
            power //= n * n
            k += 2
            sign = -sign
        return total

    return (16 * atan_inv(5) - 4 * atan_inv(239)) >> 20


def _split_exact(value: Fraction, parts: int) -> tuple[float, ...]:
    """Doubles whose sum approximates ``value`` to about 53 * parts bits."""
    out = []
    for _ in range(parts):
        head = float(value)
        out.append(head)
        value -= Fraction(head)
    return tuple(out)


_BITS = 240
_LN2 = _split_exact(Fraction(_fixed_ln2(_BITS), 1 << _BITS), 3)
_HALF_PI = _split_exact(Fraction(_fixed_pi(_BITS), 1 << (_BITS + 1)), 4)
_TWO_OVER_PI = float(Fraction(1 << (_BITS + 1), _fixed_pi(_BITS)))
_INV_FACTORIAL = [_split_exact(Fraction(1, math.factorial(n)), 2) for n in range(40)]


# -- double-double arithmetic (hi, lo pairs of float64 arrays) -------------------------------

_SPLITTER = 134217729.0  # 2**27 + 1


def _two_sum(a, b):
    s = a + b
    v = s - a
    return s, (a - (s - v)) + (b - v)


def _quick_two_sum(a, b):  # |a| >= |b| or a == 0
    s = a + b
    return s, b - (s - a)


def _split(a):
    c = _SPLITTER * a
    hi = c - (c - a)
    return hi, a - hi


def _two_prod(a, b):
    p = a * b
    a_hi, a_lo = _split(a)
    b_hi, b_lo = _split(b)
    return p, ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo


def _add(a, b):
    s, e = _two_sum(a[0], b[0])
    t, f = _two_sum(a[1], b[1])
    s, e = _quick_two_sum(s, e + t)
    return _quick_two_sum(s, e + f)


def _mul(a, b):
    p, e = _two_prod(a[0], b[0])
    return _quick_two_sum(p, e + (a[0] * b[1] + a[1] * b[0]))


def _mul_double(a, b):
    p, e = _two_prod(a[0], b)
    return _quick_two_sum(p, e + a[1] * b)


def _div(a, b):
    q1 = a[0] / b[0]
    r = _add(a, _neg(_mul_double(b, q1)))
    q2 = r[0] / b[0]
    r = _add(r, _neg(_mul_double(b, q2)))
    q3 = r[0] / b[0]
    return _add(_quick_two_sum(q1, q2), (q3, np.zeros_like(q3)))


def _neg(a):
    return -a[0], -a[1]


def _scale(a, k):
    """Multiply by 2**k exactly (k an int array; no overflow in posref's ranges)."""
    return np.ldexp(a[0], k), np.ldexp(a[1], k)


def _const(c, like):
    return np.full_like(like, c[0]), np.full_like(like, c[1])


def _round(a):
    return a[0] + a[1]


# -- elementary functions in double-double ---------------------------------------------------

_EXP_HALVINGS = 5  # exp(r) = exp(r / 32) ** 32, |r / 32| <= 0.011
_EXP_TERMS = 13


def _exp_dd(x, *, scaled=True):
    """exp of a double-double; finite arguments in [-745, 709.8].

    With ``scaled=False`` return (y, k) with exp(x) = y 2**k and y in [0.7, 1.5],
    so that the caller can round y before scaling (exact unless subnormal).
    """
    k = np.rint(x[0] / _LN2[0])
    r = (x[0], x[1])
    for part in _LN2:  # r = x - k ln 2, every product exact
        p, e = _two_prod(k, np.full_like(k, part))
        r = _add(r, (-p, -e))
    r = (np.ldexp(r[0], -_EXP_HALVINGS), np.ldexp(r[1], -_EXP_HALVINGS))
    # t = exp(r) - 1 by Horner: r (1 + r/2 (1 + r/3 (...)))
    t = _const(_INV_FACTORIAL[_EXP_TERMS], r[0])
    for n in range(_EXP_TERMS - 1, 0, -1):
        t = _add(_mul(t, r), _const(_INV_FACTORIAL[n], r[0]))
    t = _mul(t, r)
    for _ in range(_EXP_HALVINGS):  # (1 + t)**2 - 1 = t (2 + t)
        t = _mul(t, _add(t, _const((2.0, 0.0), t[0])))
    y = _add(t, _const((1.0, 0.0), t[0]))
    return _scale(y, k.astype(np.int64)) if scaled else (y, k.astype(np.int64))


_INV_ODD = [_split_exact(Fraction(1, 2 * j + 1), 2) for j in range(24)]


def _log_dd(a):
    """log of a positive finite double-double (normalised: |lo| <= ulp(hi) / 2).

    With a = m 2**e, m in [sqrt(1/2), sqrt(2)): log a = e ln 2 + 2 atanh(s),
    s = (m - 1) / (m + 1), |s| <= 0.172, and atanh s = s (1 + z/3 + z^2/5 + ...),
    z = s^2; 24 terms leave a truncation below 1e-36 relative.  m - 1 is exact,
    so the result is accurate relative to itself, also next to 1.
    """
    m, e = np.frexp(a[0])
    low = m < math.sqrt(0.5)
    m = np.where(low, 2.0 * m, m)
    e = np.where(low, e - 1, e)
    mant = (m, np.ldexp(a[1], -e))
    one = _const((1.0, 0.0), m)
    s = _div(_add(mant, _neg(one)), _add(mant, one))
    z = _mul(s, s)
    series = _const(_INV_ODD[-1], m)
    for term in reversed(_INV_ODD[:-1]):
        series = _add(_mul(series, z), _const(term, m))
    y = _mul(s, series)
    y = (2.0 * y[0], 2.0 * y[1])
    ef = e.astype(np.float64)
    for part in _LN2:
        y = _add(y, _two_prod(ef, np.full_like(ef, part)))
    return y


def _sin_cos_dd(x):
    """(sin, cos) of float64 arguments, |x| < 2**40, as double-doubles."""
    k = np.rint(x * _TWO_OVER_PI)
    r = (x, np.zeros_like(x))
    for part in _HALF_PI:  # r = x - k pi/2, every product exact
        p, e = _two_prod(k, np.full_like(k, part))
        r = _add(r, (-p, -e))
    r2 = _mul(r, r)
    # sin r = r (1 - r^2/3! + r^4/5! - ...), cos r = 1 - r^2/2! + r^4/4! - ...
    # with z = r^2 and positive b_n = 1/n!: sin r = r (b_1 - z (b_3 - z (...))), cos r = b_0 - z (b_2 - ...)
    s = _const(_INV_FACTORIAL[29], x)
    c = _const(_INV_FACTORIAL[28], x)
    for n in range(27, 0, -2):
        s = _add(_neg(_mul(s, r2)), _const(_INV_FACTORIAL[n], x))
        c = _add(_neg(_mul(c, r2)), _const(_INV_FACTORIAL[n - 1], x))
    s = _mul(s, r)
    quadrant = np.mod(k, 4.0)
    sin = tuple(np.select([quadrant == 0, quadrant == 1, quadrant == 2], [s[i], c[i], -s[i]], -c[i]) for i in (0, 1))
    cos = tuple(np.select([quadrant == 0, quadrant == 1, quadrant == 2], [c[i], -s[i], -c[i]], s[i]) for i in (0, 1))
    return sin, cos


@functools.lru_cache(maxsize=1024)
def _log_of_scalar(x: float) -> tuple[float, float]:
    """_log_dd of one positive finite double, remembered (bases and factors repeat across calls).

    The cache changes no result: the same arithmetic runs on the same value.
    """
    hi, lo = _log_dd((np.array([x]), np.zeros(1)))
    return float(hi[0]), float(lo[0])


def _log_of(x):
    """_log_dd of a positive finite float64 array, through the scalar cache when it holds one value."""
    if x.size == 1:
        hi, lo = _log_of_scalar(float(x.reshape(-1)[0]))
        return np.full(x.shape, hi), np.full(x.shape, lo)
    return _log_dd((x, np.zeros_like(x)))


# -- the public names --------------------------------------------------------------------------

def _as_float(x):
    return np.asarray(x, dtype=np.float64)


def _finish(result, argument, out):
    """Return ``result`` as NumPy would for ``argument`` (a scalar for a scalar), written to ``out`` if given."""
    if out is not None:
        np.copyto(out, result)
        return out
    return result[()] if result.ndim == 0 and not isinstance(argument, np.ndarray) else result


def _guarded(x, ok, value):
    """Replace the arguments that are not ``ok`` by ``value`` so the double-double path sees no specials."""
    return np.where(ok, x, value)


def sin(x, /, *, out=None):
    """Sine (NumPy's ``np.sin``, or correctly rounded inside :func:`precise`)."""
    if not _PRECISE.get():
        return np.sin(x, out=out) if out is not None else np.sin(x)
    return _sin_or_cos(x, 0, out)


def cos(x, /, *, out=None):
    """Cosine (NumPy's ``np.cos``, or correctly rounded inside :func:`precise`)."""
    if not _PRECISE.get():
        return np.cos(x, out=out) if out is not None else np.cos(x)
    return _sin_or_cos(x, 1, out)


def _sin_or_cos(argument, which, out):
    x = _as_float(argument)
    ok = np.isfinite(x) & (np.abs(x) < 2.0**40)
    pair = _sin_cos_dd(_guarded(x, ok, 0.0))[which]
    with np.errstate(invalid="ignore"):
        value = np.where(ok, _round(pair), (np.sin, np.cos)[which](x))
    return _finish(value, argument, out)


def exp(x, /):
    """Exponential (NumPy's ``np.exp``, or correctly rounded inside :func:`precise`)."""
    if not _PRECISE.get():
        return np.exp(x)
    argument, x = x, _as_float(x)
    ok = np.isfinite(x) & (x > -745.2) & (x < 709.79)
    y, k = _exp_dd((_guarded(x, ok, 0.0), np.zeros_like(x)), scaled=False)
    with np.errstate(over="ignore", under="ignore"):
        fallback = np.exp(x)
    return _finish(np.where(ok, np.ldexp(_round(y), k), fallback), argument, None)


def log(x, /):
    """Natural logarithm (NumPy's ``np.log``, or correctly rounded inside :func:`precise`)."""
    if not _PRECISE.get():
        return np.log(x)
    argument, x = x, _as_float(x)
    ok = np.isfinite(x) & (x > 0)
    value = _round(_log_of(_guarded(x, ok, 1.0)))
    with np.errstate(divide="ignore", invalid="ignore"):
        return _finish(np.where(ok, value, np.log(x)), argument, None)


def log1p(x, /):
    """log(1 + x) (NumPy's ``np.log1p``, or correctly rounded inside :func:`precise`)."""
    if not _PRECISE.get():
        return np.log1p(x)
    argument, x = x, _as_float(x)
    ok = np.isfinite(x) & (x > -1.0) & (np.abs(x) < 2.0**1000)
    one_plus = _quick_two_sum(*_sorted_pair(np.ones_like(x), _guarded(x, ok, 0.0)))
    value = _round(_log_dd(one_plus))
    with np.errstate(divide="ignore", invalid="ignore"):
        return _finish(np.where(ok, value, np.log1p(x)), argument, None)


def _sorted_pair(a, b):
    """(a, b) ordered by magnitude, largest first, for an exact two-sum."""
    swap = np.abs(b) > np.abs(a)
    return np.where(swap, b, a), np.where(swap, a, b)


def power(base, exponent, /):
    """``base ** exponent`` (NumPy's ``np.power``, or correctly rounded inside :func:`precise`).

    Inside :func:`precise`, a positive finite base with a finite exponent is
    evaluated as exp(exponent * log(base)) in double-double; every other
    combination (a zero, negative or infinite base, a zero exponent) is
    NumPy's, whose result is exact there (an integer power of an integer
    that fits, 0, 1 or an infinity) or NaN.
    """
    if not _PRECISE.get():
        return np.power(base, exponent)
    scalar = not isinstance(base, np.ndarray) and not isinstance(exponent, np.ndarray) \
        and np.ndim(base) == 0 and np.ndim(exponent) == 0
    base, exponent = _as_float(base), _as_float(exponent)
    b, e = np.broadcast_arrays(base, exponent)
    b, e = np.array(b), np.array(e)
    with np.errstate(all="ignore"):
        fallback = np.power(b, e)
    ok = np.isfinite(b) & (b > 0) & np.isfinite(e) & (e != 0) & (b != 1)
    e_safe = _guarded(e, ok, 1.0)
    if base.size == 1 and bool(np.all(ok | (e == 0) | ~np.isfinite(e))):  # one base: one logarithm
        log_base = _log_of(np.where(np.isfinite(base) & (base > 0), base, 2.0).reshape(()))
        y = (np.broadcast_to(log_base[0], e.shape), np.broadcast_to(log_base[1], e.shape))
    else:
        y = _log_dd((_guarded(b, ok, 2.0), np.zeros_like(b)))
    y = _mul_double(y, e_safe)
    finite = (y[0] > -745.0) & (y[0] < 709.7)
    z, k = _exp_dd((np.where(finite, y[0], 0.0), np.where(finite, y[1], 0.0)), scaled=False)
    value = np.ldexp(_round(z), k)
    value = np.where(finite, value, np.where(y[0] > 0, np.inf, 0.0))
    result = np.where(ok, value, fallback)
    return result[()] if scalar else result


def expit(x, /):
    """The logistic sigmoid 1 / (1 + exp(-x)) (SciPy's ``expit``, or correctly rounded inside :func:`precise`)."""
    if not _PRECISE.get():
        from scipy.special import expit as _expit

        return _expit(x)
    argument, x = x, _as_float(x)
    ok = np.isfinite(x) & (np.abs(x) < 745.0)
    t = _exp_dd((-np.abs(_guarded(x, ok, 0.0)), np.zeros_like(x)))  # exp(-|x|) in (0, 1]
    numerator = tuple(np.where(x >= 0, one, ti) for one, ti in zip((np.ones_like(x), np.zeros_like(x)), t))
    value = _round(_div(numerator, _add(t, _const((1.0, 0.0), x))))  # 1 / (1 + t) or t / (1 + t)
    with np.errstate(over="ignore"):
        fallback = 1.0 / (1.0 + np.exp(-x))
    return _finish(np.where(ok, value, fallback), argument, None)


def einsum(subscripts, /, *operands):
    """A contraction (``np.einsum``, or correctly rounded sums of exact products inside :func:`precise`).

    Inside :func:`precise` only the explicit two-operand form
    ``"<a>,<b>-><out>"`` (with an optional leading ``...``) is supported,
    which is every form the specification uses.
    """
    if not _PRECISE.get():
        return np.einsum(subscripts, *operands)
    inputs, _, output = subscripts.replace(" ", "").partition("->")
    terms = inputs.split(",")
    if len(terms) != 2 or not _:
        raise ValueError(f"precise einsum takes 'a,b->c' with two operands, got {subscripts!r}")
    letters = [t.replace("...", "") for t in terms]
    summed = "".join(dict.fromkeys(c for c in letters[0] + letters[1] if c not in output))
    a, b = (_as_float(o) for o in operands)
    a_hi, a_lo = _split(a)
    b_hi, b_lo = _split(b)
    full = f"{terms[0]},{terms[1]}->{output}{summed}"
    # a * b = a_hi b_hi + a_hi b_lo + a_lo b_hi + a_lo b_lo, each product exact (26 x 27 bits at most)
    parts = [np.einsum(full, x, y) for x, y in ((a_hi, b_hi), (a_hi, b_lo), (a_lo, b_hi), (a_lo, b_lo))]
    stacked = np.stack(parts, axis=-1)  # (..., out, summed..., 4)
    rows = stacked.reshape(stacked.shape[: stacked.ndim - 1 - len(summed)] + (-1,))
    flat = rows.reshape(-1, rows.shape[-1]).tolist()
    sums = np.array([math.fsum(row) for row in flat], dtype=np.float64)
    return sums.reshape(rows.shape[:-1])


def matmul(a, b, /):
    """``a @ b`` for (..., n, k) and (..., k, m) operands (or a 2-D ``b``), like :func:`einsum`."""
    if not _PRECISE.get():
        return np.matmul(a, b)
    return einsum("...nk,km->...nm" if np.ndim(b) == 2 else "...nk,...km->...nm", a, b)
