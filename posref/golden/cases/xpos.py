"""xPos golden cases.

Odd and even lengths under each centring, key scales of a cached prefix,
decoding, both pair layouts, and sequences of 128k and 256k positions,
where the scales reach (2/7)^(+-2) and float32 angles lose digits.
"""

from __future__ import annotations

import numpy as np

from posref.golden.registry import Arange, CaseSpec, Normal, Values
from posref.golden.strategies import (
    SHORT_POSITION,
    even,
    lead_shape,
    model_bases,
    positions_1d,
    positions_nd,
    st,
    strategy,
)

__all__ = ["CASES"]

CASES: list[CaseSpec] = []


def _add(*specs: CaseSpec) -> None:
    CASES.extend(specs)


for length in (5, 8):
    for centering in ("ceil_half", "floor_half", "none"):
        _add(CaseSpec(
            id=f"xpos_scales.{centering}.len{length}", function="xpos_scales",
            inputs={"positions": Arange(0, length)}, params={"dim": 64, "scale_base": 512.0, "centering": centering},
            tolerance="xpos_scale",
            description=f"query scales, {'odd' if length % 2 else 'even'} length {length}, centring {centering}",
        ))
_add(
    CaseSpec(id="xpos_scales.keys.cached_prefix", function="xpos_scales",
             inputs={"positions": Arange(1000, 1004)},
             params={"dim": 128, "sequence_length": 2048, "downscale": True}, tolerance="xpos_scale",
             description="key scales of positions 1000..1003 in a 2048-long cache (torchscale offset)"),
    CaseSpec(id="xpos_scales.long.floor_half", function="xpos_scales",
             inputs={"positions": Values([0, 1, 4095, 4096, 8191], "int64")},
             params={"dim": 128, "centering": "floor_half", "sequence_length": 8192}, tolerance="xpos_scale",
             description="scales up to (2/7)^(+-8) at 4096 tokens from the centre"),
    CaseSpec(id="xpos_scales.long.keys_scale_base_32768", function="xpos_scales",
             inputs={"positions": Values([0, 1, 65_535, 65_536, 131_071], "int64")},
             params={"dim": 64, "scale_base": 32768.0, "sequence_length": 131_072, "downscale": True},
             tolerance="xpos_scale",
             description="key scales of a 128k sequence, scale base 32768: from (2/7)^2 to (2/7)^-2"),
    CaseSpec(id="xpos_scales.invalid.short_sequence_length", function="xpos_scales",
             inputs={"positions": Arange(0, 5)}, params={"dim": 64, "sequence_length": 4},
             expect_error="ValueError", error_match="sequence_length", description="N must exceed every position"),
    CaseSpec(id="xpos_scales.invalid.centering", function="xpos_scales", inputs={"positions": Arange(0, 5)},
             params={"dim": 64, "centering": "middle"}, expect_error="ValueError", error_match="centering",
             description="unknown centring name"),
    CaseSpec(id="xpos_scales.invalid.overflow", function="xpos_scales",
             inputs={"positions": Values([0, 2000], "int64")}, params={"dim": 64, "scale_base": 1.0},
             expect_error="ValueError", error_match="positions",
             description="(2/7)^(1000) overflows float64: rejected, not inf"),
)
for length in (5, 8):
    for centering in ("ceil_half", "floor_half"):
        for downscale in (False, True):
            role = "keys" if downscale else "queries"
            _add(CaseSpec(
                id=f"apply_xpos.{centering}.len{length}.{role}", function="apply_xpos",
                inputs={"x": Normal((1, 2, length, 32)), "positions": Arange(0, length)},
                params={"scale_base": 512.0, "centering": centering, "downscale": downscale},
                tolerance="xpos",
                description=f"(B, H, T, D) {role}, length {length}, centring {centering}, interleaved pairs",
            ))
for centering in ("ceil_half", "floor_half"):
    for downscale in (False, True):
        role = "keys" if downscale else "queries"
        _add(CaseSpec(
            id=f"apply_xpos.{centering}.len7.b16.{role}", function="apply_xpos",
            inputs={"x": Normal((2, 7, 32)), "positions": Arange(0, 7)},
            params={"scale_base": 16.0, "centering": centering, "downscale": downscale}, tolerance="xpos",
            description=f"{role}, odd length 7, scale base 16: the centrings differ by (2/7)^(1/16) at pair 0",
        ))
_add(
    CaseSpec(id="apply_xpos.half_layout", function="apply_xpos",
             inputs={"x": Normal((2, 7, 64)), "positions": Arange(0, 7)},
             params={"layout": "half", "centering": "floor_half"}, tolerance="xpos",
             description="flash-attn with interleaved=False: the half layout"),
    CaseSpec(id="apply_xpos.decoding", function="apply_xpos",
             inputs={"x": Normal((2, 1, 64)), "positions": Values([10], "int64")},
             params={"sequence_length": 11}, tolerance="xpos",
             description="one new token at 10 of an 11-long sequence (the centre comes from N, not T)"),
    CaseSpec(id="apply_xpos.no_centering", function="apply_xpos",
             inputs={"x": Normal((6, 16)), "positions": Arange(0, 6)},
             params={"centering": "none", "scale_base": 64.0}, tolerance="xpos",
             description="the uncentred formula of the paper, small scale base"),
    CaseSpec(id="apply_xpos.long.window", function="apply_xpos",
             inputs={"x": Normal((1, 2, 8, 64)), "positions": Arange(131_068, 131_076)},
             params={"centering": "floor_half", "sequence_length": 262_144}, tolerance="xpos",
             description="8 queries in the middle of a 256k sequence: scales near 1, float32 angles near 131072"),
    CaseSpec(id="apply_xpos.long.keys_scale_base_32768", function="apply_xpos",
             inputs={"x": Normal((5, 64)), "positions": Values([0, 1, 65_535, 65_536, 131_071], "int64")},
             params={"scale_base": 32768.0, "sequence_length": 131_072, "downscale": True}, tolerance="xpos",
             description="keys across a 128k sequence (torchscale centring), scales (2/7)^(+-2)"),
    CaseSpec(id="apply_xpos.invalid.odd_width", function="apply_xpos",
             inputs={"x": Normal((3, 7)), "positions": Arange(0, 3)}, expect_error="ValueError", error_match="x",
             description="an odd feature width has no pairs"),
    CaseSpec(id="apply_xpos.invalid.positions_shape", function="apply_xpos",
             inputs={"x": Normal((3, 8)), "positions": Arange(0, 4)}, expect_error="ValueError",
             error_match="positions", description="4 positions for 3 tokens"),
    CaseSpec(id="apply_xpos.invalid.layout", function="apply_xpos",
             inputs={"x": Normal((3, 8)), "positions": Arange(0, 3)}, params={"layout": "neox"},
             expect_error="ValueError", error_match="layout", description="layout names are 'half' and 'interleaved'"),
)


# -- fuzz strategies -------------------------------------------------------------------------


@strategy("apply_xpos", tolerance="xpos")
def apply_xpos_case(draw, ctx):
    d = draw(even(2, 128))
    lead, length = draw(lead_shape()), draw(st.integers(1, 8))
    positions = draw(positions_1d(length, SHORT_POSITION))
    largest = int(np.max(positions.draw(np.random.default_rng(0))))
    params = {"base": draw(model_bases()), "scale_base": draw(st.one_of(st.just(512.0), st.floats(8.0, 4096.0))),
              "layout": draw(st.sampled_from(("interleaved", "half"))), "downscale": draw(st.booleans()),
              "centering": draw(st.sampled_from(("ceil_half", "floor_half", "none"))),
              "sequence_length": draw(st.one_of(st.none(), st.integers(largest + 1, 2 * SHORT_POSITION)))}
    return ctx.case(draw, {"x": Normal(lead + (length, d)), "positions": positions}, params)


@strategy("xpos_scales", tolerance="xpos_scale")
def xpos_scales_case(draw, ctx):
    positions = draw(positions_nd(SHORT_POSITION))
    largest = int(np.max(positions.draw(np.random.default_rng(0))))
    params = {"dim": draw(even(2, 128)),
              "scale_base": draw(st.one_of(st.just(512.0), st.floats(8.0, 4096.0))),
              "centering": draw(st.sampled_from(("ceil_half", "floor_half", "none"))),
              "downscale": draw(st.booleans()),
              "sequence_length": draw(st.one_of(st.none(), st.integers(largest + 1, 2 * SHORT_POSITION)))}
    return ctx.case(draw, {"positions": positions}, params)
