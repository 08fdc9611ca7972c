"""posref._arith: correctly rounded, machine-independent elementary functions for the golden corpus.

Expected values come from mpmath at 60 digits, rounded once to float64 by
``float(mpf)`` (mpmath rounds to nearest); an independent derivation of what
a correctly rounded result is.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from posref import _arith


def _correctly_rounded(function, *args):
    with mpmath.workdps(60):
        return float(function(*(mpmath.mpf(float(a)) for a in args)))


def _check(name, function, mp_function, *arrays):
    with _arith.precise():
        got = np.asarray(function(*arrays))
    flat = [np.ravel(np.broadcast_to(a, got.shape)) for a in arrays]
    wrong = [(tuple(float(f[i]) for f in flat), float(got.ravel()[i]))
             for i in range(got.size)
             if float(got.ravel()[i]) != _correctly_rounded(mp_function, *(f[i] for f in flat))]
    assert not wrong, f"{name}: {len(wrong)} of {got.size} not correctly rounded, first {wrong[0]}"


RNG = np.random.default_rng(20261204)


def test_sin_and_cos_are_correctly_rounded_up_to_large_angles():
    x = np.concatenate([RNG.uniform(-7, 7, 600), RNG.uniform(-2e6, 2e6, 600), 10 ** RNG.uniform(-20, 0, 100),
                        np.arange(0.0, 1_048_576.0, 8191.0), [0.0, math.pi / 4, math.pi, 1e9, -3e11]])
    _check("sin", _arith.sin, mpmath.sin, x)
    _check("cos", _arith.cos, mpmath.cos, x)


def test_exp_is_correctly_rounded_over_the_normal_range():
    x = np.concatenate([RNG.uniform(-708, 709, 800), RNG.uniform(-1, 1, 400), [0.0, 1e-300, -1e-18, 709.78]])
    _check("exp", _arith.exp, mpmath.exp, x)


def test_log_and_log1p_are_correctly_rounded_also_next_to_one():
    x = np.concatenate([np.exp(RNG.uniform(-700, 700, 600)), RNG.uniform(0.5, 2, 400),
                        [1.0, 1 + 2**-52, 1 - 2**-53, 2.0, 1e-310, 0.7071067811865476]])
    _check("log", _arith.log, mpmath.log, x)
    y = np.concatenate([RNG.uniform(-0.999, 100, 400), 10 ** RNG.uniform(-30, 0, 300), -(10 ** RNG.uniform(-30, -1, 300))])
    _check("log1p", _arith.log1p, mpmath.log1p, y)


def test_power_and_expit_are_correctly_rounded():
    base = np.concatenate([10 ** RNG.uniform(0, 7, 500), RNG.uniform(0.01, 3, 300)])
    exponent = np.concatenate([RNG.uniform(-1, 1, 500), RNG.uniform(-40, 40, 300)])
    _check("power", _arith.power, mpmath.power, base, exponent)
    _check("power, scalar base", _arith.power, mpmath.power, 10_000.0, -2.0 * np.arange(64) / 128)
    _check("expit", _arith.expit, lambda v: 1 / (1 + mpmath.exp(-v)), RNG.uniform(-740, 740, 600))


def test_contractions_are_correctly_rounded_dot_products():
    a, b = RNG.standard_normal((3, 5, 40)), RNG.standard_normal((3, 7, 40))
    with _arith.precise():
        got = _arith.einsum("...td,...sd->...ts", a, b)
        product = _arith.matmul(a, np.swapaxes(b, -1, -2))
    assert got.shape == (3, 5, 7)
    assert np.array_equal(got, product)
    for h, t, s in np.ndindex(got.shape):
        exact = sum(map(lambda p, q: __import__("fractions").Fraction(p) * __import__("fractions").Fraction(q),
                        a[h, t].tolist(), b[h, s].tolist()))
        assert got[h, t, s] == float(exact)


def test_special_values_are_numpys():
    with _arith.precise():
        assert np.array_equal(_arith.exp(np.array([np.inf, -np.inf, -800.0])), [np.inf, 0.0, 0.0])
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = _arith.log(np.array([0.0, -1.0, np.inf]))
        assert logs[0] == -np.inf and np.isnan(logs[1]) and logs[2] == np.inf
        assert np.isnan(_arith.sin(np.array([np.inf, np.nan]))).all()
        assert _arith.power(0.0, 2.0) == 0.0 and _arith.power(-2.0, 3.0) == -8.0 and _arith.power(5.0, 0.0) == 1.0
        assert _arith.power(2.0, -8.0) == 2.0**-8


def test_scalars_stay_scalars_and_outside_precise_numpy_answers():
    with _arith.precise():
        assert isinstance(_arith.power(2.0, 0.5), np.float64)
        assert isinstance(_arith.log(3.0), np.float64)
    x = RNG.uniform(-10, 10, 100)
    assert np.array_equal(_arith.sin(x), np.sin(x))
    assert not _arith.is_precise()
    with _arith.precise():
        assert _arith.is_precise()
        precise = _arith.sin(x)
    assert not _arith.is_precise()
    assert np.max(np.abs(precise - np.sin(x)) / np.spacing(np.abs(np.sin(x)))) <= 1.0


def test_the_precise_mode_ends_even_when_the_body_raises():
    with pytest.raises(RuntimeError):
        with _arith.precise():
            raise RuntimeError("boom")
    assert not _arith.is_precise()


def test_einsum_outside_the_supported_form_is_refused_by_name():
    with _arith.precise():
        with pytest.raises(ValueError, match="precise einsum takes 'a,b->c'"):
            _arith.einsum("ij->i", np.ones((2, 2)))
