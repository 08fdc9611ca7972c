"""Multi-axis golden cases.

The 2-D sine-cosine table (MAE ViT-B/16 at 224 px; MAE's and timm's axis
orders and groupings), axial RoPE (EVA-02, RoPE-Axial ViT, Pixtral's
even/odd split) and M-RoPE (Qwen2-VL's contiguous and Qwen3-VL's
interleaved sections, with its position ids).  Coordinates differ per axis
so that swapped axes show, and reach 100000 (1000000 for M-RoPE), where
float32 angles lose digits: the error model admits that loss and nothing
more, so low-precision bugs there show.
"""

from __future__ import annotations

import numpy as np

from posref.golden.cases._common import grid
from posref.golden.registry import CaseSpec, Integers, Normal, Uniform, Values
from posref.golden.strategies import MAX_POSITION, composite, even, lead_shape, model_bases, position, st, strategy

__all__ = ["CASES"]

CASES: list[CaseSpec] = []


def _add(*specs: CaseSpec) -> None:
    CASES.extend(specs)


# -- 2-D sine-cosine, axial RoPE -------------------------------------------------------------------

_add(
    CaseSpec(id="sincos_2d_encoding.mae_vit_b", function="sincos_2d_encoding", inputs={},
             params={"grid_shape": [14, 14], "dim": 768, "class_token": True}, tolerance="sinusoidal",
             description="MAE ViT-B/16 at 224 px: 14 x 14 grid, width 768, zero class-token row"),
    CaseSpec(id="sincos_2d_encoding.non_square.xy", function="sincos_2d_encoding", inputs={},
             params={"grid_shape": [3, 5], "dim": 16}, tolerance="sinusoidal",
             description="3 x 5 grid, column block first (MAE): the axes cannot be swapped unnoticed"),
    CaseSpec(id="sincos_2d_encoding.non_square.yx", function="sincos_2d_encoding", inputs={},
             params={"grid_shape": [3, 5], "dim": 16, "axis_order": "yx"}, tolerance="sinusoidal",
             description="3 x 5 grid, row block first (timm, MoCo v3)"),
    CaseSpec(id="sincos_2d_encoding.non_square.timm_default", function="sincos_2d_encoding", inputs={},
             params={"grid_shape": [7, 2], "dim": 32, "axis_order": "yx", "grouping": "sin_cos"},
             tolerance="sinusoidal", description="timm's default order: all sines, then all cosines"),
    CaseSpec(id="sincos_2d_encoding.single_token", function="sincos_2d_encoding", inputs={},
             params={"grid_shape": [1, 1], "dim": 4}, tolerance="sinusoidal",
             description="one token, one frequency: [0, 1, 0, 1]"),
    CaseSpec(id="sincos_2d_encoding.wide_grid", function="sincos_2d_encoding", inputs={},
             params={"grid_shape": [2, 512], "dim": 32, "axis_order": "yx", "grouping": "sin_cos"},
             tolerance="sinusoidal", description="a 2 x 512 grid: column angles up to 511 rad in float32"),
    CaseSpec(id="sincos_2d_encoding.invalid.dim", function="sincos_2d_encoding", inputs={},
             params={"grid_shape": [4, 4], "dim": 6}, expect_error="ValueError", error_match="dim",
             description="dim must be a multiple of 4"),
    CaseSpec(id="sincos_2d_encoding.invalid.grid_shape", function="sincos_2d_encoding", inputs={},
             params={"grid_shape": [0, 4], "dim": 8}, expect_error="ValueError", error_match="grid_shape",
             description="an empty grid side"),
)
_GRID_14 = Values(grid(14, 14), "int64")
for axis_order in ("xy", "yx"):
    _add(CaseSpec(
        id=f"axial_rope_angles.grid14.{axis_order}", function="axial_rope_angles",
        inputs={"positions_2d": _GRID_14}, params={"dim": 64, "axis_order": axis_order}, tolerance="angle",
        description=f"14 x 14 patch grid, head width 64, {'column' if axis_order == 'xy' else 'row'} pairs first",
    ))
_add(
    CaseSpec(id="axial_rope_angles.pixtral", function="axial_rope_angles",
             inputs={"positions_2d": Values(grid(3, 5), "int64")},
             params={"dim": 32, "axis_order": "yx", "frequencies": "even_odd"}, tolerance="angle",
             description="Pixtral: rows take the even, columns the odd entries of one ladder"),
    CaseSpec(id="axial_rope_angles.rope_vit_base100", function="axial_rope_angles",
             inputs={"positions_2d": Values(grid(4, 6), "int64")}, params={"dim": 16, "base": 100.0},
             tolerance="angle", description="RoPE-Axial ViT (base 100), non-square grid"),
    CaseSpec(id="axial_rope_angles.fractional", function="axial_rope_angles",
             inputs={"positions_2d": Uniform((2, 3, 5), 0.0, 16.0)}, params={"dim": 32, "axis_order": "yx"},
             tolerance="angle", description="fractional coordinates (EVA-02 rescaled grid), batch of 3"),
    CaseSpec(id="axial_rope_angles.large_coordinates", function="axial_rope_angles",
             inputs={"positions_2d": Integers((2, 24), 0, 100_000)}, params={"dim": 64, "axis_order": "yx"},
             tolerance="angle", description="coordinates up to 100000 (tiles of a gigapixel image)"),
    CaseSpec(id="axial_rope_angles.invalid.three_axes", function="axial_rope_angles",
             inputs={"positions_2d": Values([[0, 1], [0, 1], [0, 1]], "int64")}, params={"dim": 16},
             expect_error="ValueError", error_match="positions_2d", description="three coordinates, not two"),
    CaseSpec(id="axial_rope_angles.invalid.dim", function="axial_rope_angles",
             inputs={"positions_2d": Values([[0, 1], [0, 1]], "int64")}, params={"dim": 6},
             expect_error="ValueError", error_match="dim", description="dim must be a multiple of 4"),
)
_GRID_3x4 = Values(grid(3, 4), "int64")
for axis_order in ("xy", "yx"):
    for layout in ("interleaved", "half"):
        _add(CaseSpec(
            id=f"apply_axial_rope.{axis_order}.{layout}", function="apply_axial_rope",
            inputs={"x": Normal((1, 2, 12, 32)), "positions_2d": _GRID_3x4},
            params={"axis_order": axis_order, "layout": layout}, tolerance="rope",
            description=f"(B, H, T, D) on a 3 x 4 grid, axis order {axis_order}, {layout} pairs",
        ))
_add(
    CaseSpec(id="apply_axial_rope.pixtral", function="apply_axial_rope",
             inputs={"x": Normal((2, 6, 64)), "positions_2d": Values(grid(2, 3), "int64")},
             params={"axis_order": "yx", "frequencies": "even_odd"}, tolerance="rope",
             description="Pixtral's even/odd frequency split"),
    CaseSpec(id="apply_axial_rope.batch_coordinates", function="apply_axial_rope",
             inputs={"x": Normal((2, 3, 5, 16)), "positions_2d": Integers((2, 2, 1, 5), 0, 16)},
             params={}, tolerance="rope",
             description="(2, B, 1, T) coordinates broadcast over the heads of (B, H, T, D)"),
    CaseSpec(id="apply_axial_rope.far_grid", function="apply_axial_rope",
             inputs={"x": Normal((1, 2, 12, 32)), "positions_2d": Values(grid(3, 4, start=65_536), "int64")},
             params={"axis_order": "yx"}, tolerance="rope",
             description="a 3 x 4 grid whose rows and columns start at 65536: float32 angles lose digits"),
    CaseSpec(id="apply_axial_rope.large_coordinates", function="apply_axial_rope",
             inputs={"x": Normal((2, 16, 64)), "positions_2d": Integers((2, 2, 16), 0, 100_000)},
             params={"layout": "half"}, tolerance="rope",
             description="(2, B, T) coordinates up to 100000, different per axis, half layout"),
    CaseSpec(id="apply_axial_rope.invalid.width", function="apply_axial_rope",
             inputs={"x": Normal((2, 6)), "positions_2d": Values([[0, 1], [0, 1]], "int64")},
             expect_error="ValueError", error_match="x", description="D = 6 is not a multiple of 4"),
    CaseSpec(id="apply_axial_rope.invalid.broadcast", function="apply_axial_rope",
             inputs={"x": Normal((3, 8)), "positions_2d": Values([[0, 1], [0, 1]], "int64")},
             expect_error="ValueError", error_match="positions_2d", description="2 coordinates for 3 tokens"),
)

# -- M-RoPE ----------------------------------------------------------------------------------------

# Qwen2-VL ids of [3 text tokens, a 1 x 4 x 6 image (1 x 2 x 3 after merging), 2 text tokens]:
# the three rows differ on the image, and the text after it restarts at 3 + max(1, 2, 3) = 6.
_QWEN2VL_IDS = [
    [0, 1, 2, 3, 3, 3, 3, 3, 3, 6, 7],
    [0, 1, 2, 3, 3, 3, 4, 4, 4, 6, 7],
    [0, 1, 2, 3, 4, 5, 3, 4, 5, 6, 7],
]
_QWEN2VL_FAR = [[p + 100_000 for p in row] for row in _QWEN2VL_IDS]
_QWEN2VL_1M = [[p + 1_000_000 for p in row] for row in _QWEN2VL_IDS]
_QWEN2VL = {"base": 1_000_000.0, "mrope_section": [16, 24, 24]}
_QWEN3VL = {"base": 5_000_000.0, "mrope_section": [24, 20, 20], "section_order": "round_robin"}
_add(
    CaseSpec(id="mrope_angles.qwen2_vl.contiguous", function="mrope_angles",
             inputs={"positions": Values(_QWEN2VL_IDS, "int64")}, params={"dim": 128, **_QWEN2VL},
             tolerance="angle", description="Qwen2-VL: sections [16, 24, 24] of dim 128, text-image-text ids"),
    CaseSpec(id="mrope_angles.qwen2_vl.far", function="mrope_angles",
             inputs={"positions": Values(_QWEN2VL_FAR, "int64")}, params={"dim": 128, **_QWEN2VL},
             tolerance="angle", description="the same image after 100000 tokens (float32 angles lose digits)"),
    CaseSpec(id="mrope_angles.qwen3_vl.interleaved", function="mrope_angles",
             inputs={"positions": Values(_QWEN2VL_IDS, "int64")}, params={"dim": 128, **_QWEN3VL},
             tolerance="angle", description="Qwen3-VL: interleaved T H W pattern, sections [24, 20, 20]"),
    CaseSpec(id="mrope_angles.qwen3_vl.far_1m", function="mrope_angles",
             inputs={"positions": Values(_QWEN2VL_1M, "int64")}, params={"dim": 128, **_QWEN3VL},
             tolerance="angle", description="Qwen3-VL interleaved sections, the image after 1000000 tokens"),
    CaseSpec(id="mrope_angles.text_only", function="mrope_angles",
             inputs={"positions": Values([list(range(6))] * 3, "int64")}, params={"dim": 128, **_QWEN2VL},
             tolerance="angle", description="three equal rows: exactly 1-D RoPE angles"),
    CaseSpec(id="mrope_angles.batch", function="mrope_angles",
             inputs={"positions": Integers((3, 2, 9), 0, 50_000)}, params={"dim": 64, "mrope_section": [8, 12, 12]},
             tolerance="angle", description="(3, B, S) position ids with independent random rows"),
    CaseSpec(id="mrope_angles.invalid.section_sum", function="mrope_angles",
             inputs={"positions": Values(_QWEN2VL_IDS, "int64")},
             params={"dim": 128, "mrope_section": [16, 24, 16]}, expect_error="ValueError",
             error_match="mrope_section", description="sections summing to 56, not 64"),
    CaseSpec(id="mrope_angles.invalid.interleaved_misfit", function="mrope_angles",
             inputs={"positions": Values(_QWEN2VL_IDS, "int64")},
             params={"dim": 128, **_QWEN2VL, "section_order": "round_robin"}, expect_error="ValueError",
             error_match="mrope_section", description="Qwen2-VL's sections do not fit the interleaved pattern"),
    CaseSpec(id="mrope_angles.invalid.two_rows", function="mrope_angles",
             inputs={"positions": Values(_QWEN2VL_IDS[:2], "int64")}, params={"dim": 128, **_QWEN2VL},
             expect_error="ValueError", error_match="positions", description="two coordinates instead of three"),
)
_add(
    CaseSpec(id="apply_mrope.qwen2_vl.half", function="apply_mrope",
             inputs={"x": Normal((1, 1, 11, 128)), "positions": Values(_QWEN2VL_IDS, "int64")},
             params=_QWEN2VL, tolerance="rope",
             description="Qwen2-VL queries: contiguous sections, half layout (rotate_half)"),
    CaseSpec(id="apply_mrope.batch", function="apply_mrope",
             inputs={"x": Normal((2, 2, 6, 32)), "positions": Integers((3, 2, 1, 6), 0, 12)},
             params={"mrope_section": [4, 6, 6]}, tolerance="rope",
             description="(3, B, 1, S) ids broadcast over the heads of (B, H, S, D)"),
    CaseSpec(id="apply_mrope.qwen3_vl.interleaved", function="apply_mrope",
             inputs={"x": Normal((1, 1, 11, 128)), "positions": Values(_QWEN2VL_IDS, "int64")},
             params=_QWEN3VL, tolerance="rope", description="Qwen3-VL interleaved sections, half layout"),
    CaseSpec(id="apply_mrope.qwen2_vl.far", function="apply_mrope",
             inputs={"x": Normal((1, 2, 11, 128)), "positions": Values(_QWEN2VL_FAR, "int64")},
             params=_QWEN2VL, tolerance="rope",
             description="Qwen2-VL ids after 100000 tokens: float32 angles off by up to 0.02 rad"),
    CaseSpec(id="apply_mrope.qwen3_vl.far_1m", function="apply_mrope",
             inputs={"x": Normal((1, 2, 11, 128)), "positions": Values(_QWEN2VL_1M, "int64")},
             params=_QWEN3VL, tolerance="rope",
             description="Qwen3-VL interleaved sections after 1000000 tokens (angles near 1e6 rad at pair 0)"),
    CaseSpec(id="apply_mrope.interleaved_layout", function="apply_mrope",
             inputs={"x": Normal((11, 32)), "positions": Values(_QWEN2VL_IDS, "int64")},
             params={"mrope_section": [4, 6, 6], "layout": "interleaved"}, tolerance="rope",
             description="channel pairs 2i, 2i+1 with contiguous sections"),
    CaseSpec(id="apply_mrope.invalid.odd_width", function="apply_mrope",
             inputs={"x": Normal((3, 7)), "positions": Values([[0, 1, 2]] * 3, "int64")},
             params={"mrope_section": [1, 1, 1]}, expect_error="ValueError", error_match="x",
             description="an odd feature width"),
    CaseSpec(id="apply_mrope.invalid.section_sum", function="apply_mrope",
             inputs={"x": Normal((3, 8)), "positions": Values([[0, 1, 2]] * 3, "int64")},
             params={"mrope_section": [2, 2, 2]}, expect_error="ValueError", error_match="mrope_section",
             description="sections summing to 6 for D/2 = 4"),
    CaseSpec(id="apply_mrope.invalid.broadcast", function="apply_mrope",
             inputs={"x": Normal((3, 8)), "positions": Values([[0, 1]] * 3, "int64")},
             params={"mrope_section": [2, 1, 1]}, expect_error="ValueError", error_match="positions",
             description="2 tokens of ids for 3 tokens of features"),
)
for label, segments, merge, text in [
    ("text_image_text", [3, [1, 4, 6], 2], 2, "text, a 4 x 6 patch image (2 x 3 merged), text"),
    ("video", [2, [2, 4, 4], 1], 2, "a two-frame video: the temporal row counts frames"),
    ("two_images", [1, [1, 2, 8], [1, 6, 2], 1], 2, "two images, wide then tall, back to back"),
    ("no_merge", [[1, 3, 2], 2], 1, "spatial_merge_size 1: every patch is a token"),
    ("text_only", [5], 2, "text only: three equal rows 0..4"),
]:
    _add(CaseSpec(
        id=f"mrope_position_ids.{label}", function="mrope_position_ids", inputs={},
        params={"segments": segments, "spatial_merge_size": merge}, tolerance="exact", description=text,
    ))
_add(
    CaseSpec(id="mrope_position_ids.invalid.not_divisible", function="mrope_position_ids", inputs={},
             params={"segments": [[1, 3, 4]]}, expect_error="ValueError", error_match="segments[0]",
             description="h = 3 is not a multiple of the merge size 2"),
    CaseSpec(id="mrope_position_ids.invalid.merge_size", function="mrope_position_ids", inputs={},
             params={"segments": [4], "spatial_merge_size": 0}, expect_error="ValueError",
             error_match="spatial_merge_size", description="merge size 0"),
)


# -- fuzz strategies -------------------------------------------------------------------------


@strategy("apply_mrope", tolerance="rope")
def apply_mrope_case(draw, ctx):
    d = draw(even(2, 128))
    half = d // 2
    lead, length = draw(lead_shape()), draw(st.integers(1, 8))
    round_robin = draw(st.booleans())
    if round_robin:  # height takes pairs 1, 4, 7, ... and width 2, 5, 8, ... below half
        height, width = draw(st.integers(0, (half + 1) // 3)), draw(st.integers(0, half // 3))
    else:
        height = draw(st.integers(0, half))
        width = draw(st.integers(0, half - height))
    row = st.lists(position(MAX_POSITION), min_size=length, max_size=length)
    positions = Values(draw(st.lists(row, min_size=3, max_size=3)), "int64")  # (3, T)
    params = {"base": draw(model_bases()), "mrope_section": [half - height - width, height, width],
              "section_order": "round_robin" if round_robin else "blocks",
              "layout": draw(st.sampled_from(("half", "interleaved")))}
    return ctx.case(draw, {"x": Normal(lead + (length, d)), "positions": positions}, params)


@strategy("sincos_2d_encoding", tolerance="sinusoidal")
def sincos_2d_encoding_case(draw, ctx):
    params = {"grid_shape": [draw(st.integers(1, 16)), draw(st.integers(1, 16))],
              "dim": 4 * draw(st.integers(1, 64)), "base": draw(model_bases()),
              "axis_order": draw(st.sampled_from(("xy", "yx"))),
              "grouping": draw(st.sampled_from(("axis", "sin_cos"))), "class_token": draw(st.booleans())}
    return ctx.case(draw, {}, params)


@composite
def coordinates(draw, lead: tuple = ()):
    """Row and column coordinates of shape ``(2,) + lead + (T,)``: a grid, integers or fractions."""
    length = draw(st.integers(1, 16))
    kind = draw(st.sampled_from(("grid", "integers", "fractions")))
    if kind == "grid" and not lead:
        cols = draw(st.integers(1, 4))
        rows = max(1, length // cols)
        start = draw(st.one_of(st.just(0), st.integers(0, 65_536)))
        cells = [(start + r, start + c) for r in range(rows) for c in range(cols)]
        return Values([[y for y, _ in cells], [x for _, x in cells]], "int64")
    high = draw(st.sampled_from((16, 1024, 100_000)))
    if kind == "fractions":
        return Uniform((2,) + lead + (length,), 0.0, float(high))
    return Integers((2,) + lead + (length,), 0, high)


@strategy("axial_rope_angles", tolerance="angle")
def axial_rope_angles_case(draw, ctx):
    params = {"dim": 4 * draw(st.integers(1, 32)), "base": draw(st.one_of(st.just(100.0), model_bases())),
              "axis_order": draw(st.sampled_from(("xy", "yx"))),
              "frequencies": draw(st.sampled_from(("per_axis", "even_odd")))}
    return ctx.case(draw, {"positions_2d": draw(coordinates())}, params)


@strategy("apply_axial_rope", tolerance="rope")
def apply_axial_rope_case(draw, ctx):
    positions = draw(coordinates())
    length = int(np.asarray(positions.draw(np.random.default_rng(0))).shape[-1])
    d = 4 * draw(st.integers(1, 32))
    params = {"base": draw(st.one_of(st.just(100.0), model_bases())),
              "axis_order": draw(st.sampled_from(("xy", "yx"))),
              "frequencies": draw(st.sampled_from(("per_axis", "even_odd"))),
              "layout": draw(st.sampled_from(("interleaved", "half")))}
    inputs = {"x": Normal(draw(lead_shape()) + (length, d)), "positions_2d": positions}
    return ctx.case(draw, inputs, params)


@composite
def mrope_options(draw, d: int):
    """``base``, ``mrope_section`` and ``section_order`` of an M-RoPE of width ``d``."""
    half = d // 2
    round_robin = draw(st.booleans())
    if round_robin:
        height, width = draw(st.integers(0, (half + 1) // 3)), draw(st.integers(0, half // 3))
    else:
        height = draw(st.integers(0, half))
        width = draw(st.integers(0, half - height))
    return {"base": draw(model_bases()), "mrope_section": [half - height - width, height, width],
            "section_order": "round_robin" if round_robin else "blocks"}


@strategy("mrope_angles", tolerance="angle")
def mrope_angles_case(draw, ctx):
    d, length = draw(even(2, 128)), draw(st.integers(1, 8))
    row = st.lists(position(MAX_POSITION), min_size=length, max_size=length)
    positions = Values(draw(st.lists(row, min_size=3, max_size=3)), "int64")
    return ctx.case(draw, {"positions": positions}, {"dim": d, **draw(mrope_options(d))})


@strategy("mrope_position_ids", tolerance="exact")
def mrope_position_ids_case(draw, ctx):
    merge = draw(st.sampled_from((1, 2, 2, 3)))
    text = st.integers(0, 6)
    vision = st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4)).map(
        lambda thw: [thw[0], thw[1] * merge, thw[2] * merge])
    segments = draw(st.lists(st.one_of(text, vision), min_size=1, max_size=4))
    return ctx.case(draw, {}, {"segments": segments, "spatial_merge_size": merge})
