"""The catalogue of public specification functions.

Every public formula is marked with :func:`spec`, which records its family
and the paper it implements.  The marker does not wrap or change the
function; it only adds it to :data:`SPEC_FUNCTIONS`, which the command line
(``posref list``), the golden-case registry and the conformance runner read.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["SpecFunction", "SPEC_FUNCTIONS", "spec", "spec_functions"]

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
