"""FoPE golden cases (Fourier position embedding).

Frequencies floored at the training length, and FoPE applied with shared
and per-head coefficients, with the paper's and vLLM's sine padding.
"""

from __future__ import annotations

from posref.golden.registry import Arange, CaseSpec, Normal

__all__ = ["CASES"]

CASES: list[CaseSpec] = []


def _add(*specs: CaseSpec) -> None:
    CASES.extend(specs)


_add(
    CaseSpec(id="fope_frequencies.d64.l2048", function="fope_frequencies", inputs={},
             params={"dim": 64, "max_sequence_length": 2048}, tolerance="frequency",
             description="frequencies below 2 pi / 2048 set to zero"),
    CaseSpec(id="fope_frequencies.d128.l512.ratio2", function="fope_frequencies", inputs={},
             params={"dim": 128, "max_sequence_length": 512, "floor_ratio": 2.0}, tolerance="frequency",
             description="a doubled floor"),
    CaseSpec(id="fope_frequencies.invalid.length", function="fope_frequencies", inputs={},
             params={"dim": 64, "max_sequence_length": 0}, expect_error="ValueError",
             error_match="max_sequence_length", description="zero training length"),
)
# dim 64, base 1e4, L = 2048: frequencies theta_i >= 2 pi / 2048 are i = 0..20, so K = 21 kept.
for pad_sin, label in ((1.0, "paper_pad"), (0.0, "vllm_pad")):
    _add(CaseSpec(
        id=f"apply_fope.{label}", function="apply_fope",
        inputs={"x": Normal((2, 4, 10, 64)), "positions": Arange(0, 10), "sin_coef": Normal((21, 16), 0.3),
                "cos_coef": Normal((21, 16), 0.3)},
        params={"max_sequence_length": 2048, "pad_sin": pad_sin}, tolerance="fope",
        description=f"16 Fourier pairs of 32, shared coefficients, padding sine {pad_sin}",
    ))
_add(
    CaseSpec(id="apply_fope.per_head", function="apply_fope",
             inputs={"x": Normal((1, 3, 6, 64)), "positions": Arange(1000, 1006), "sin_coef": Normal((3, 21, 21), 0.3),
                     "cos_coef": Normal((3, 21, 21), 0.3)},
             params={"max_sequence_length": 2048}, tolerance="fope",
             description="one coefficient matrix per head, M = K (vLLM)"),
    CaseSpec(id="apply_fope.invalid.coef_rows", function="apply_fope",
             inputs={"x": Normal((2, 64)), "positions": Arange(0, 2), "sin_coef": Normal((20, 16)),
                     "cos_coef": Normal((20, 16))},
             params={"max_sequence_length": 2048}, expect_error="ValueError", error_match="coef",
             description="coefficient rows must equal the number of kept frequencies"),
)
