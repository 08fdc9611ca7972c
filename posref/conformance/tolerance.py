"""The error model, under its documented path: the public names of :mod:`posref.tolerance`.

The error model is a layer of its own, below the golden cases (the corpus
stores every case's budgets): :mod:`posref.tolerance`, its core, and one
module per family that needs a model of its own,
``posref/tolerance/<family>.py``.  This module re-exports the core's public
names (``from posref.conformance.tolerance import budgets, CaseView`` keeps
working), and any other public attribute of :mod:`posref.tolerance` on
first use: its helpers, and ``rope_budget``, ``dynamic_ntk_alpha_error``
and ``t5_near_boundary`` of the family modules, which are not imported
before that.
"""

from __future__ import annotations

from typing import Any

import posref.tolerance as _tolerance
from posref.tolerance import *  # noqa: F403  (exactly posref.tolerance's __all__)
from posref.tolerance import __all__  # noqa: F401


def __getattr__(name: str) -> Any:
    """Any other public name of :mod:`posref.tolerance` (helpers, names of its family modules)."""
    if name.startswith("_"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(_tolerance, name)
