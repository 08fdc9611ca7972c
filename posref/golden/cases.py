"""The golden cases, family by family.

Each case targets something a real implementation can get wrong: the hard
positions for RoPE (0, 1, 4095, 8191, 32768, 131071 and about 1,000,000,
where float32 angles lose precision), head counts that are not powers of two
for ALiBi, T5 bucket boundaries, odd sizes, partial rotary, and every named
convention.  Invalid-input cases (``expect_error``) list arguments that a
conforming implementation must reject.
"""

from __future__ import annotations

from posref.golden.registry import Arange, CaseSpec, Integers, Normal, Values

__all__ = ["CASES"]

#: Positions where implementations are known to break (the last is near 2**20).
HARD_POSITIONS = [0, 1, 4095, 4096, 8191, 8192, 32768, 131071, 999_999, 1_048_575]

CASES: list[CaseSpec] = []


def _add(*specs: CaseSpec) -> None:
    CASES.extend(specs)


# -- RoPE core ----------------------------------------------------------------------------

for dim, base in [(128, 10_000.0), (64, 500_000.0), (96, 1_000_000.0), (2, 10_000.0), (80, 10_000.0)]:
    _add(CaseSpec(
        id=f"rope_frequencies.d{dim}.b{int(base)}", function="rope_frequencies",
        inputs={}, params={"dim": dim, "base": base}, tolerance="frequency",
        description=f"inverse frequencies for dim={dim}, base={base:g}",
    ))
_add(
    CaseSpec(id="rope_frequencies.invalid.odd_dim", function="rope_frequencies", inputs={},
             params={"dim": 63}, expect_error="ValueError", error_match="dim",
             description="an odd rotary width must be rejected"),
    CaseSpec(id="rope_frequencies.invalid.base_one", function="rope_frequencies", inputs={},
             params={"dim": 64, "base": 1.0}, expect_error="ValueError", error_match="base",
             description="base 1 gives constant angles and must be rejected"),
)
for dim, base in [(128, 10_000.0), (128, 500_000.0)]:
    _add(CaseSpec(
        id=f"rope_angles.hard_positions.d{dim}.b{int(base)}", function="rope_angles",
        inputs={"positions": Values(HARD_POSITIONS, "int64")},
        params={"dim": dim, "base": base}, tolerance="angle",
        description="angles at the positions where float32 loses precision",
    ))
_add(CaseSpec(
    id="rope_angles.batch_positions", function="rope_angles",
    inputs={"positions": Integers((2, 7), 0, 40_000, sort=True)}, params={"dim": 64}, tolerance="angle",
    description="per-sequence position ids of shape (B, T)",
))
for layout in ("half", "interleaved"):
    _add(
        CaseSpec(
            id=f"apply_rotary.{layout}.small", function="apply_rotary",
            inputs={"x": Normal((2, 3, 5, 8)), "angles": Normal((5, 4), 3.0)},
            params={"layout": layout}, tolerance="rotation",
            description=f"pair rotation in the {layout} layout, angles broadcast over batch and heads",
        ),
    )
_add(CaseSpec(
    id="apply_rotary.invalid.odd_width", function="apply_rotary",
    inputs={"x": Normal((3, 7)), "angles": Normal((3, 3))}, expect_error="ValueError", error_match="x",
    description="an odd feature width has no pairs",
))
