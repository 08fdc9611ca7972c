"""FoPE golden cases (Fourier position embedding).

Frequencies floored at the training length, and FoPE applied with shared
and per-head coefficients, with the paper's and vLLM's sine padding.
"""

from __future__ import annotations

import numpy as np

from posref.fope import fope_frequencies
from posref.golden.registry import Arange, CaseSpec, Normal
from posref.golden.strategies import even, lead_shape, model_bases, positions_1d, st, strategy

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


# -- fuzz strategies -------------------------------------------------------------------------


def fope_lengths():
    """FoPE's ``max_sequence_length``."""
    return st.one_of(st.sampled_from((512, 2048, 4096)), st.integers(1, 65_536))


@strategy("fope_frequencies", tolerance="frequency")
def fope_frequencies_case(draw, ctx):
    params = {"dim": draw(even(2, 256)), "base": draw(model_bases()), "max_sequence_length": draw(fope_lengths()),
              "floor_ratio": draw(st.one_of(st.just(1.0), st.floats(0.0, 4.0)))}
    return ctx.case(draw, {}, params)


@strategy("apply_fope", tolerance="fope")
def apply_fope_case(draw, ctx):
    d = draw(even(2, 64))
    params = {"base": draw(model_bases()), "max_sequence_length": draw(fope_lengths()),
              "floor_ratio": draw(st.one_of(st.just(1.0), st.floats(0.0, 4.0))),
              "pad_sin": draw(st.sampled_from((1.0, 0.0))),
              "position_offset": draw(st.one_of(st.just(0), st.integers(0, 4096)))}
    kept = int(np.count_nonzero(fope_frequencies(d, base=params["base"],
                                                 max_sequence_length=params["max_sequence_length"],
                                                 floor_ratio=params["floor_ratio"])))
    if kept == 0:  # every frequency under the floor: keep them all instead
        params["floor_ratio"] = 0.0
        kept = d // 2
    pairs = draw(st.integers(1, d // 2))
    length = draw(st.integers(1, 8))
    heads = draw(st.integers(1, 3))
    per_head = draw(st.booleans())
    coef_shape = ((heads,) if per_head else ()) + (kept, pairs)
    x_shape = ((1, heads) if per_head else draw(lead_shape())) + (length, d)
    inputs = {"x": Normal(x_shape), "positions": draw(positions_1d(length, 8192)),
              "sin_coef": Normal(coef_shape, 0.3), "cos_coef": Normal(coef_shape, 0.3)}
    return ctx.case(draw, inputs, params)
