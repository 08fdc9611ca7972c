"""Argument checks shared by every public function.

Each check raises :class:`TypeError` (wrong kind of object) or
:class:`ValueError` (right kind, wrong value) with a message that names the
parameter, the allowed values and what was given, for example::

    dim must be a positive even integer, got dim=7

Checks run at the public boundary, before any computation.  Internal helpers
trust their arguments.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "ensure_int",
    "ensure_real",
    "ensure_bool",
    "ensure_choice",
    "ensure_array",
    "ensure_positions",
    "ensure_same_shape",
]


def _is_integral(value: Any) -> bool:
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_))


def _describe(minimum: int | None, maximum: int | None, even: bool) -> str:
    words = []
    if minimum == 1 and maximum is None:
        words.append("positive")
    elif minimum == 0 and maximum is None:
        words.append("non-negative")
    if even:
        words.append("even")
    phrase = " ".join(words + ["integer"])
    text = ("an " if phrase[0] in "aeiou" else "a ") + phrase
    if minimum is not None and minimum not in (0, 1) or (maximum is not None and minimum is not None):
        text += f" in [{minimum}, {maximum if maximum is not None else 'inf'}]"
    elif maximum is not None:
        text += f" <= {maximum}"
    return text


def ensure_int(
    name: str,
    value: Any,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    even: bool = False,
) -> int:
    """Return ``value`` as a Python int, or raise naming ``name``."""
    what = _describe(minimum, maximum, even)
    if not _is_integral(value):
        raise TypeError(f"{name} must be {what}, got {name}={value!r} of type {type(value).__name__}")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be {what}, got {name}={value}")
    if even and value % 2:
        raise ValueError(f"{name} must be {what}, got {name}={value}")
    return value


def ensure_real(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: float | None = None,
    exclusive_maximum: float | None = None,
) -> float:
    """Return ``value`` as a finite Python float within the given bounds."""
    parts = ["a finite real number"]
    if exclusive_minimum is not None:
        parts.append(f"> {exclusive_minimum}")
    if minimum is not None:
        parts.append(f">= {minimum}")
    if exclusive_maximum is not None:
        parts.append(f"< {exclusive_maximum}")
    if maximum is not None:
        parts.append(f"<= {maximum}")
    what = " ".join(parts[:1]) + (" " + " and ".join(parts[1:]) if len(parts) > 1 else "")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{name} must be {what}, got {name}={value!r} of type {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be {what}, got {name}={value}")
    if (
        (minimum is not None and value < minimum)
        or (maximum is not None and value > maximum)
        or (exclusive_minimum is not None and value <= exclusive_minimum)
        or (exclusive_maximum is not None and value >= exclusive_maximum)
    ):
        raise ValueError(f"{name} must be {what}, got {name}={value!r}")
    return value


def ensure_bool(name: str, value: Any) -> bool:
    """Return ``value`` if it is a bool, or raise naming ``name``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {name}={value!r} of type {type(value).__name__}")
    return bool(value)


def ensure_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``, or raise listing them."""
    choices = tuple(choices)
    try:
        ok = value in choices
    except TypeError:  # unhashable or incomparable
        ok = False
    if not ok:
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {allowed}, got {name}={value!r}")
    return value


def _as_numeric_array(name: str, value: Any) -> np.ndarray:
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be a numeric array, got {name}={value!r} of type {type(value).__name__}")
    try:
        array = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} must be a numeric array, got an object NumPy cannot convert ({exc})") from None
    if array.dtype.kind == "b" or array.dtype.kind not in "iuf" and array.dtype.name not in ("bfloat16",):
        raise TypeError(f"{name} must be a real numeric array, got dtype {array.dtype}")
    return array


def _shape_text(ndim: int | Sequence[int] | None, min_ndim: int | None) -> str:
    if ndim is not None:
        if isinstance(ndim, int):
            return f"a {ndim}-D array"
        return "an array with " + " or ".join(str(n) for n in ndim) + " dimensions"
    if min_ndim is not None:
        return f"an array with at least {min_ndim} dimension{'s' if min_ndim != 1 else ''}"
    return "an array"


def ensure_array(
    name: str,
    value: Any,
    *,
    ndim: int | Sequence[int] | None = None,
    min_ndim: int | None = None,
    last_dim: int | None = None,
    finite: bool = True,
    allow_empty: bool = True,
) -> np.ndarray:
    """Return ``value`` as a float64 array after checking rank and finiteness."""
    array = _as_numeric_array(name, value)
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim) if ndim is not None else None
    if (allowed is not None and array.ndim not in allowed) or (min_ndim is not None and array.ndim < min_ndim):
        raise ValueError(f"{name} must be {_shape_text(ndim, min_ndim)}, got shape {array.shape}")
    if last_dim is not None and array.shape[-1] != last_dim:
        raise ValueError(f"{name} must have last dimension {last_dim}, got shape {array.shape}")
    if not allow_empty and array.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {array.shape}")
    array = array.astype(np.float64)
    if finite and not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must contain only finite values (no NaN or inf)")
    return array


def ensure_positions(
    name: str,
    value: Any,
    *,
    integer: bool = True,
    nonnegative: bool = True,
    ndim: int | Sequence[int] | None = None,
    min_ndim: int | None = None,
) -> np.ndarray:
    """Return positions as int64 (``integer=True``) or float64 after checks.

    Integer positions may be given as integer arrays or as floating arrays
    whose values are whole numbers; anything else is rejected rather than
    silently truncated.
    """
    array = _as_numeric_array(name, value)
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim) if ndim is not None else None
    if (allowed is not None and array.ndim not in allowed) or (min_ndim is not None and array.ndim < min_ndim):
        raise ValueError(f"{name} must be {_shape_text(ndim, min_ndim)}, got shape {array.shape}")
    kind = "non-negative " if nonnegative else ""
    if array.dtype.kind == "f" or array.dtype.name == "bfloat16":
        as_float = array.astype(np.float64)
        if not np.all(np.isfinite(as_float)):
            raise ValueError(f"{name} must contain only finite values (no NaN or inf)")
        if integer:
            if not np.all(as_float == np.round(as_float)):
                bad = as_float[as_float != np.round(as_float)].flat[0].item()
                raise ValueError(f"{name} must hold {kind}integers, got a non-integer value {bad!r}")
            if np.any(np.abs(as_float) > 2.0**53):
                raise ValueError(f"{name} must hold integers below 2**53 in magnitude")
            array = as_float.astype(np.int64)
        else:
            array = as_float
    elif array.dtype.kind == "u" and array.dtype.itemsize == 8:
        if np.any(array > np.iinfo(np.int64).max):
            raise ValueError(f"{name} must hold integers below 2**63")
        array = array.astype(np.int64)
    else:
        array = array.astype(np.int64 if integer else np.float64)
    if nonnegative and np.any(array < 0):
        raise ValueError(f"{name} must hold {kind}{'integers' if integer else 'values'}, got minimum {array.min().item()!r}")
    return array


def ensure_same_shape(names: Sequence[str], arrays: Sequence[np.ndarray]) -> None:
    """Raise if the arrays do not all have the same shape."""
    shapes = [a.shape for a in arrays]
    if any(s != shapes[0] for s in shapes[1:]):
        described = ", ".join(f"{n}{s}" for n, s in zip(names, shapes))
        raise ValueError(f"{' and '.join(names)} must have the same shape, got {described}")
