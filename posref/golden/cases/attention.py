"""Attention golden cases.

Causal attention with an additive bias and with Shaw's relative key and
value terms.  ``decode_incrementally`` takes Python callables,
not arrays, and so has no golden case (``NOT_GOLDEN``).
"""

from __future__ import annotations

from posref.golden.registry import CaseSpec, Normal

__all__ = ["CASES", "NOT_GOLDEN"]

#: Functions that take Python callables and so have no golden case.
NOT_GOLDEN: dict[str, str] = {"decode_incrementally": "takes Python callables (the position method), not arrays"}

CASES: list[CaseSpec] = []


def _add(*specs: CaseSpec) -> None:
    CASES.extend(specs)


_add(
    CaseSpec(id="attention.causal_bias", function="attention",
             inputs={"q": Normal((2, 3, 9, 16)), "k": Normal((2, 3, 9, 16)), "v": Normal((2, 3, 9, 16)),
                     "bias": Normal((3, 9, 9))},
             params={"causal": True}, tolerance="softmax", description="causal attention with an additive bias"),
    CaseSpec(id="attention.shaw_terms", function="attention",
             inputs={"q": Normal((1, 2, 5, 8)), "k": Normal((1, 2, 7, 8)), "v": Normal((1, 2, 7, 8)),
                     "relative_keys": Normal((5, 7, 8), 0.5), "relative_values": Normal((5, 7, 8), 0.5)},
             params={}, tolerance="softmax", description="relative key and value terms, T < S"),
    CaseSpec(id="attention.invalid.shapes", function="attention",
             inputs={"q": Normal((1, 2, 5, 8)), "k": Normal((1, 2, 7, 4)), "v": Normal((1, 2, 7, 8))},
             expect_error="ValueError", error_match="k", description="query and key widths differ"),
)
