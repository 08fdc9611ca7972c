"""Each family's error models and fuzz strategies, one module per family.

The module of a family is ``posref/conformance/families/<family>.py``,
named after the family of the spec catalogue (``posref list``).  It
registers, for the functions of its own family only:

* its error models, with :func:`~posref.conformance.tolerance.error_model`,
  and what the shared models need to know of its functions, with the hook
  registrars of :mod:`posref.conformance.tolerance`
  (:func:`~posref.conformance.tolerance.rotary_pairs`,
  :func:`~posref.conformance.tolerance.sinusoid_channels`,
  :func:`~posref.conformance.tolerance.blended_table`,
  :func:`~posref.conformance.tolerance.scaled_base`,
  :func:`~posref.conformance.tolerance.contraction_terms`);
* one hypothesis strategy per fuzzed function, with ``strategy`` of
  ``posref.conformance.families._draw``, which also holds the drawing
  helpers the strategies share.

This package finds the modules itself (``pkgutil``) and imports them all:
adding a family is adding its module.  Modules whose name starts with
``_`` are no family.  Nothing reads the modules directly: the registries
(``TOLERANCE_CLASSES`` and the hooks of :mod:`posref.conformance.tolerance`,
``FUZZ_TOLERANCE`` of :mod:`posref.conformance.fuzz`) import this package
on first use.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

__all__ = ["FAMILY_MODULES"]


def _family_modules() -> dict[str, ModuleType]:
    """Every family module of this package, by name, in alphabetical order."""
    names = sorted(info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_"))
    return {name: importlib.import_module(f"{__name__}.{name}") for name in names}


#: The family modules, by family name (alphabetical).
FAMILY_MODULES: dict[str, ModuleType] = _family_modules()
