"""NoPE golden cases (no position encoding).

Features pass through unchanged at any position; negative positions and
positions that do not broadcast are still rejected.
"""

from __future__ import annotations

from posref.golden.registry import Arange, CaseSpec, Normal, Values

__all__ = ["CASES"]

CASES: list[CaseSpec] = []


def _add(*specs: CaseSpec) -> None:
    CASES.extend(specs)


_add(
    CaseSpec(id="nope.prefill", function="nope", inputs={"x": Normal((2, 4, 7, 16)), "positions": Arange(0, 7)},
             tolerance="gather", description="features pass through unchanged"),
    CaseSpec(id="nope.cache_offset", function="nope",
             inputs={"x": Normal((3, 32)), "positions": Values([0, 131071, 1_048_575], "int64")},
             tolerance="gather", description="far positions change nothing"),
    CaseSpec(id="nope.invalid.negative_position", function="nope",
             inputs={"x": Normal((2, 4)), "positions": Values([-1, 0], "int64")}, expect_error="ValueError",
             error_match="positions", description="negative positions are still rejected"),
    CaseSpec(id="nope.invalid.broadcast", function="nope", inputs={"x": Normal((3, 4)), "positions": Arange(0, 4)},
             expect_error="ValueError", error_match="positions", description="4 positions for 3 tokens"),
)
