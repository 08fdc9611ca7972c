"""Fourier-feature golden cases.

Harmonics of a period, cosines then sines, and cosines alone over (B, T)
positions.
"""

from __future__ import annotations

from posref.golden.registry import Arange, CaseSpec, Integers
from posref.golden.strategies import st, strategy

__all__ = ["CASES"]

CASES: list[CaseSpec] = []


def _add(*specs: CaseSpec) -> None:
    CASES.extend(specs)


_add(
    CaseSpec(id="fourier_features.basic", function="fourier_features",
             inputs={"positions": Arange(0, 33)}, params={"num_frequencies": 6, "period": 32.0},
             tolerance="fourier", description="harmonics 1..6 of period 32, cosines then sines"),
    CaseSpec(id="fourier_features.cos_only", function="fourier_features",
             inputs={"positions": Integers((4, 5), 0, 1000)}, params={"num_frequencies": 3, "period": 100.0,
             "include_sine": False}, tolerance="fourier", description="cosines only, (B, T) positions"),
    CaseSpec(id="fourier_features.invalid.period", function="fourier_features",
             inputs={"positions": Arange(0, 3)}, params={"num_frequencies": 2, "period": 0.0},
             expect_error="ValueError", error_match="period", description="zero period"),
)


# -- fuzz strategies -------------------------------------------------------------------------


@strategy("fourier_features", tolerance="fourier")
def fourier_features_case(draw, ctx):
    positions = Integers((draw(st.integers(1, 8)),), 0, draw(st.sampled_from((16, 1024, 65_536))))
    params = {"num_frequencies": draw(st.integers(1, 16)),
              "period": draw(st.one_of(st.sampled_from((32.0, 100.0)), st.floats(1.0, 1e5))),
              "include_sine": draw(st.booleans())}
    return ctx.case(draw, {"positions": positions}, params)
