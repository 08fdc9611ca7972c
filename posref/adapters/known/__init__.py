"""Known divergences of the built-in adapters, with their reasons.

Each file ``<adapter>-<dtype>.txt`` here lists the golden case ids on which
that library, in that dtype, is known to differ from the spec: one id per
line, followed by a ``#`` comment that gives the reason, or preceded by a
comment block that explains the ids below it.  ``posref check --adapter
NAME`` applies the list of a built-in adapter by default: those cases
report ``known`` with their reason instead of failing the run.

The functions that read these lists live in ``posref.conformance.known``
and are re-exported here under their old names.
"""

from __future__ import annotations

from posref.conformance.known import KNOWN_DIR, known_divergences, known_file, parse_known

__all__ = ["KNOWN_DIR", "known_divergences", "known_file", "parse_known"]
