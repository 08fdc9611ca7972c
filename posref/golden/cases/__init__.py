"""The golden cases, one module per family.

Each case targets something a real implementation can get wrong: the hard
positions for RoPE (0, 1, 4095, 8191, 32768, 131071 and about 1,000,000,
where float32 angles lose precision), head counts that are not powers of two
for ALiBi, T5 bucket boundaries, odd sizes, partial rotary, and every named
convention.  Invalid-input cases (``expect_error``) list arguments that a
conforming implementation must reject.

The cases of a family live in ``posref/golden/cases/<family>.py``, named
after the family of the spec catalogue (``posref list``).  Such a module
defines ``CASES``, a list of :class:`~posref.golden.registry.CaseSpec` of
that family's functions only, and may define ``NOT_GOLDEN``, a dict from a
function of the family to the reason it has no golden case.  This package
finds the modules itself (``pkgutil``): adding a family is adding its
module.  Modules whose name starts with ``_`` are no family; ``_common``
holds what families share (``HARD_POSITIONS``).

``CASES`` takes the families in alphabetical order of their module, and
each family's cases in its module's order.  That order is no part of the
contract: :func:`~posref.golden.registry.build_cases`, and so the corpus and
every check, sort the cases by id, and each case's inputs are drawn from a
seed of its id alone, so moving a case between or within modules changes no
byte of the corpus.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from posref.golden.cases._common import HARD_POSITIONS  # noqa: F401 (public here, as before)
from posref.golden.registry import CaseSpec

__all__ = ["CASES"]


def _family_modules() -> dict[str, ModuleType]:
    """Every family module of this package, by name, in alphabetical order."""
    names = sorted(info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_"))
    return {name: importlib.import_module(f"{__name__}.{name}") for name in names}


#: The family modules, by family name (alphabetical).
FAMILY_MODULES: dict[str, ModuleType] = _family_modules()

#: Every golden case: each family module's ``CASES``, family by family.
CASES: list[CaseSpec] = [case for module in FAMILY_MODULES.values() for case in module.CASES]

#: Functions that have no golden case, with the reason: each family module's ``NOT_GOLDEN``.
NOT_GOLDEN: dict[str, str] = {
    name: reason for module in FAMILY_MODULES.values() for name, reason in getattr(module, "NOT_GOLDEN", {}).items()
}
