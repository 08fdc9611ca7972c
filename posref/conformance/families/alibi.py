"""ALiBi: the ``linear_bias`` model and the fuzz strategies."""

from __future__ import annotations

import math

import numpy as np

from posref import _arith
from posref.alibi import alibi_slopes
from posref.conformance.families._draw import positions_1d, st, strategy
from posref.conformance.tolerance import UNIT_ROUNDOFF, CaseView, angle_roundoff, each_output, error_model
from posref.golden.registry import Values

__all__: list[str] = []

_LOG2E = 1.0 / math.log(2.0)  # log2(x) = log(x) / ln 2


# -- error model -----------------------------------------------------------------------------


@error_model("linear_bias")
def _linear_bias(view: CaseView, dtype: str) -> dict[str, np.ndarray]:
    u, ua = UNIT_ROUNDOFF[dtype], angle_roundoff(dtype)
    if "slopes" in view.inputs:  # given slopes: a product with the distance, one with the scale, one cast
        return each_output(view, lambda b: (2 * ua + u) * np.abs(np.where(np.isfinite(b), b, 0.0)))
    # slopes computed from the head count: a configuration table in the angle precision
    heads = int(view.params.get("num_heads", 1))
    max_bias = float(view.params.get("max_bias", 8.0))
    series = 2.0 ** math.ceil(math.log2(max(heads, 1)))  # N, at least the N' of either series

    def rule(m):
        magnitude = np.abs(np.where(np.isfinite(m), m, 0.0))
        log2_m = np.abs(_LOG2E * _arith.log(np.where(magnitude > 0, magnitude, 1.0)))
        power = series * log2_m / max_bias  # k of the integer power base**k
        return (power + float(_arith.log(2.0)) * log2_m + 3) * ua * magnitude

    return each_output(view, rule)


# -- fuzz strategies -------------------------------------------------------------------------


@strategy("alibi_slopes", tolerance="linear_bias")
def alibi_slopes_case(draw, ctx):
    params = {"num_heads": draw(st.integers(1, 64)), "max_bias": draw(st.one_of(st.just(8.0), st.floats(1.0, 16.0)))}
    return ctx.case(draw, {}, params)


@strategy("alibi_bias", tolerance="linear_bias")
def alibi_bias_case(draw, ctx):
    heads = draw(st.integers(1, 64))
    slopes = alibi_slopes(heads, max_bias=draw(st.one_of(st.just(8.0), st.floats(1.0, 16.0))))
    inputs = {"slopes": Values(slopes.tolist()),
              "query_positions": draw(positions_1d(draw(st.integers(1, 8)))),
              "key_positions": draw(positions_1d(draw(st.integers(1, 12))))}
    params = {"form": draw(st.sampled_from(("distance", "symmetric", "key_index", "last_key_anchored"))),
              "causal": draw(st.booleans()),
              "scale": draw(st.one_of(st.just(1.0), st.sampled_from((0.125, 1 / math.sqrt(128))),
                                      st.floats(0.01, 2.0)))}
    return ctx.case(draw, inputs, params)
