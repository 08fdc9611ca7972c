"""Deprecated: the golden cases live in :mod:`posref.golden.cases`, one module per family.

This module held the cases of the methods the field runs today (RoPE
scaling, xPos, the multi-axis encodings and the relative schemes beyond
Shaw, T5 and ALiBi), which :mod:`posref.golden.cases` appended to its list.
It now only gives the same names, from the family modules, and importing it
emits a :class:`DeprecationWarning`:

- ``FIELD_CASES``: the same cases in the same order, those of the
  families in ``FIELD_FAMILIES``, family by family, less
  ``yarn_attention_factor.mscale_only`` (a RoPE-scaling case that was not
  here but in ``cases.py``);
- ``FIELD_NOT_GOLDEN``: those families' ``NOT_GOLDEN`` (empty);
- ``PHI35_LONG_FACTOR`` and ``PHI35_SHORT_FACTOR``, from
  :mod:`posref.golden.cases.rope_scaling`.

Use ``posref.golden.cases.CASES`` (every case) or
``posref.golden.cases.<family>.CASES`` (one family's) instead.
"""

from __future__ import annotations

import warnings

from posref.golden.cases import FAMILY_MODULES
from posref.golden.cases.rope_scaling import PHI35_LONG_FACTOR, PHI35_SHORT_FACTOR  # noqa: F401
from posref.golden.registry import CaseSpec

__all__ = ["FIELD_CASES", "FIELD_NOT_GOLDEN"]

warnings.warn(
    "posref.golden.cases_field is deprecated: the golden cases live in posref.golden.cases, one module per "
    "family (posref.golden.cases.<family>.CASES); posref.golden.cases.CASES has them all",
    DeprecationWarning,
    stacklevel=2,  # the code importing this module (the warnings machinery skips importlib's frames)
)

#: The families whose cases this module held, in its order.
FIELD_FAMILIES = ("rope_scaling", "xpos", "multiaxis", "transformer_xl", "deberta", "kerple", "sandwich", "fire",
                  "cope", "nope")

#: The one case of those families that ``cases.py`` held, not this module.
_NOT_HERE = frozenset({"yarn_attention_factor.mscale_only"})

FIELD_CASES: list[CaseSpec] = [
    case for family in FIELD_FAMILIES for case in FAMILY_MODULES[family].CASES if case.id not in _NOT_HERE
]

#: Functions of these families that have no golden case, with the reason (none so far).
FIELD_NOT_GOLDEN: dict[str, str] = {
    name: reason for family in FIELD_FAMILIES
    for name, reason in getattr(FAMILY_MODULES[family], "NOT_GOLDEN", {}).items()
}
