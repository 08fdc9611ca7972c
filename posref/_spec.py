"""The catalogue of public specification functions, and of their helpers.

Every public formula is marked with :func:`spec`, which records its family
and the paper it implements.  The marker does not wrap or change the
function; it only adds it to :data:`SPEC_FUNCTIONS`, which the command line
(``posref list``), the golden-case registry and the conformance runner read.

A *helper* is a public function that derives a quantity of a family's
formula (the rotated channels of partial RoPE, the decay bases of xPos, the
distance of KERPLE) for code that reasons about the formula, such as the
error models of :mod:`posref.conformance.tolerance`.  It is marked with
:func:`helper` and recorded in :data:`HELPERS`; it is not a spec function:
it has no golden cases and is not exported from the top-level package.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

__all__ = [
    "SpecFunction",
    "SPEC_FUNCTIONS",
    "spec",
    "spec_functions",
    "HelperFunction",
    "HELPERS",
    "helper",
    "helper_functions",
]

F = TypeVar("F", bound=Callable)


@dataclass(frozen=True)
class SpecFunction:
    """One public specification function and what the catalogue says of it."""

    name: str
    module: str
    family: str
    reference: str
    function: Callable

    @property
    def summary(self) -> str:
        """First line of the docstring."""
        doc = inspect.getdoc(self.function) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""

    def as_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "module": self.module,
            "family": self.family,
            "summary": self.summary,
            "reference": self.reference,
        }


#: Every spec function, in the order its module was imported.
SPEC_FUNCTIONS: dict[str, SpecFunction] = {}


def spec(*, family: str, reference: str) -> Callable[[F], F]:
    """Record the decorated function in the catalogue and return it unchanged."""

    def mark(function: F) -> F:
        name = function.__name__
        if name in SPEC_FUNCTIONS and SPEC_FUNCTIONS[name].function is not function:
            raise RuntimeError(f"two spec functions are named {name!r}")
        module = function.__module__
        SPEC_FUNCTIONS[name] = SpecFunction(name, module, family, reference, function)
        return function

    return mark


def spec_functions(family: str | None = None) -> list[SpecFunction]:
    """Return the catalogue, optionally only one family, sorted by family then name."""
    import posref  # noqa: F401  (imports every spec module)

    entries = [f for f in SPEC_FUNCTIONS.values() if family is None or f.family == family]
    return sorted(entries, key=lambda f: (f.family, f.name))


@dataclass(frozen=True)
class HelperFunction:
    """One public helper function and the family whose formula it serves."""

    name: str
    module: str
    family: str
    function: Callable

    @property
    def summary(self) -> str:
        """First line of the docstring."""
        doc = inspect.getdoc(self.function) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""


#: Every helper function, in the order its module was imported.
HELPERS: dict[str, HelperFunction] = {}


def helper(*, family: str) -> Callable[[F], F]:
    """Record the decorated function as a helper of ``family`` and return it unchanged."""

    def mark(function: F) -> F:
        name = function.__name__
        if name in SPEC_FUNCTIONS or (name in HELPERS and HELPERS[name].function is not function):
            raise RuntimeError(f"two public functions are named {name!r}")
        HELPERS[name] = HelperFunction(name, function.__module__, family, function)
        return function

    return mark


def helper_functions(family: str | None = None) -> list[HelperFunction]:
    """Return the helpers, optionally only one family's, sorted by family then name."""
    import posref  # noqa: F401  (imports every spec module)

    entries = [f for f in HELPERS.values() if family is None or f.family == family]
    return sorted(entries, key=lambda f: (f.family, f.name))


def warn_deprecated_option(function: str, old: str, new: str | None, *, stacklevel: int = 3) -> None:
    """Warn, at the caller of ``function``, that its option ``old`` is deprecated.

    ``new`` is the option's new name, or None when the option has no effect any more.  The
    default ``stacklevel`` points at the caller of a public function that calls this directly.
    """
    if new is None:
        advice = "it has no effect and will be removed; leave it out"
    else:
        advice = f"use {new}= instead"
    warnings.warn(f"{function}(): {old}= is deprecated; {advice}", DeprecationWarning, stacklevel=stacklevel)


def refuse_both_options(function: str, old: str, new: str) -> None:
    """Raise for a call that gives an option under its new name and its deprecated name."""
    raise TypeError(f"{function}() got both {new}= and its deprecated name {old}=; pass {new}= only")
