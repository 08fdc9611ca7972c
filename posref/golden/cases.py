"""The golden cases, family by family.

Each case targets something a real implementation can get wrong: the hard
positions for RoPE (0, 1, 4095, 8191, 32768, 131071 and about 1,000,000,
where float32 angles lose precision), head counts that are not powers of two
for ALiBi, T5 bucket boundaries, odd sizes, partial rotary, and every named
convention.  Invalid-input cases (``expect_error``) list arguments that a
conforming implementation must reject.
"""

from __future__ import annotations

from posref.golden.registry import Arange, CaseSpec, Integers, Normal, Uniform, Values

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
    id="rope_angles.invalid.fractional_dim", function="rope_angles", inputs={"positions": Arange(0, 3)},
    params={"dim": 8.5}, expect_error="TypeError", error_match="dim", description="dim must be an integer",
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

#: Functions that take Python callables and so have no golden case.
NOT_GOLDEN = {"decode_incrementally": "takes Python callables (the position method), not arrays"}

_P = Values(HARD_POSITIONS, "int64")

for layout in ("half", "interleaved"):
    _add(CaseSpec(
        id=f"rope_cos_sin.{layout}.hard_positions", function="rope_cos_sin",
        inputs={"positions": _P}, params={"dim": 128, "base": 10_000.0, "layout": layout}, tolerance="cos_sin",
        description="cos/sin caches as Hugging Face (half) and GPT-J (interleaved) build them",
    ))
_add(CaseSpec(id="rope_cos_sin.invalid.layout", function="rope_cos_sin", inputs={"positions": Arange(0, 4)},
              params={"dim": 8, "layout": "neox"}, expect_error="ValueError", error_match="layout",
              description="layout names are 'half' and 'interleaved'"))

for layout in ("half", "interleaved"):
    _add(
        CaseSpec(id=f"apply_rope.{layout}.short", function="apply_rope",
                 inputs={"x": Normal((2, 4, 16, 64)), "positions": Arange(0, 16)},
                 params={"layout": layout}, tolerance="rope",
                 description="(B, H, T, D) queries at positions 0..15"),
        CaseSpec(id=f"apply_rope.{layout}.hard_positions", function="apply_rope",
                 inputs={"x": Normal((2, len(HARD_POSITIONS), 128)), "positions": _P},
                 params={"layout": layout, "base": 500_000.0}, tolerance="rope",
                 description="positions up to 2**20 - 1 where float32 angles lose precision"),
        CaseSpec(id=f"apply_rope.{layout}.partial_first", function="apply_rope",
                 inputs={"x": Normal((3, 9, 80)), "positions": Integers((9,), 0, 5000, sort=True)},
                 params={"layout": layout, "rotary_dim": 20}, tolerance="rope",
                 description="partial rotary: the first 20 of 80 channels rotate (GPT-NeoX, Phi)"),
    )
_add(
    CaseSpec(id="apply_rope.half.partial_last", function="apply_rope",
             inputs={"x": Normal((2, 6, 96)), "positions": Arange(100, 106)},
             params={"rotary_dim": 32, "rotated_slice": "last"}, tolerance="rope",
             description="the rotated slice is the last 32 channels (DeepSeek MLA)"),
    CaseSpec(id="apply_rope.half.partial_head_dim_denominator", function="apply_rope",
             inputs={"x": Normal((2, 6, 64)), "positions": Arange(0, 6)},
             params={"rotary_dim": 16, "freq_denominator": "head_dim"}, tolerance="rope",
             description="frequencies with the head width as exponent denominator"),
    CaseSpec(id="apply_rope.half.proportional", function="apply_rope",
             inputs={"x": Normal((2, 5, 64)), "positions": Arange(0, 5)},
             params={"rotary_dim": 16, "rotated_slice": "first_pairs", "freq_denominator": "head_dim"},
             tolerance="rope", description="Hugging Face 'proportional': zero-padded frequencies over the whole head"),
    CaseSpec(id="apply_rope.half.batch_positions", function="apply_rope",
             inputs={"x": Normal((2, 1, 7, 32)), "positions": Integers((2, 1, 7), 0, 140_000, sort=True)},
             params={}, tolerance="rope", description="per-sequence positions (B, 1, T)"),
    CaseSpec(id="apply_rope.half.position_offset", function="apply_rope",
             inputs={"x": Normal((3, 1, 32)), "positions": Arange(0, 1)},
             params={"position_offset": 131_071}, tolerance="rope",
             description="one decoding step with a KV-cache offset"),
    CaseSpec(id="apply_rope.half.odd_sequence", function="apply_rope",
             inputs={"x": Normal((1, 3, 13, 8)), "positions": Arange(0, 13)},
             params={"base": 10.0}, tolerance="rope", description="odd sequence length, tiny head, small base"),
    CaseSpec(id="apply_rope.invalid.odd_head_dim", function="apply_rope",
             inputs={"x": Normal((2, 63)), "positions": Arange(0, 2)}, expect_error="ValueError",
             error_match="x", description="odd head width with full rotary"),
    CaseSpec(id="apply_rope.invalid.rotary_dim_too_large", function="apply_rope",
             inputs={"x": Normal((2, 8)), "positions": Arange(0, 2)}, params={"rotary_dim": 10},
             expect_error="ValueError", error_match="rotary_dim", description="rotary_dim wider than the head"),
    CaseSpec(id="apply_rope.invalid.negative_position", function="apply_rope",
             inputs={"x": Normal((2, 8)), "positions": Values([-1, 0], "int64")}, expect_error="ValueError",
             error_match="positions", description="negative positions"),
)

# -- sinusoidal, Fourier features, learned --------------------------------------------------

for layout in ("interleaved", "concat"):
    for denominator in ("dim", "half_dim_minus_one"):
        _add(CaseSpec(
            id=f"sinusoidal_encoding.{layout}.{denominator}", function="sinusoidal_encoding",
            inputs={"positions": Values(HARD_POSITIONS[:8], "int64")}, params={
                "dim": 64, "layout": layout, "freq_denominator": denominator},
            tolerance="sinusoidal", description=f"{layout} layout, exponent denominator {denominator}",
        ))
_add(
    CaseSpec(id="sinusoidal_encoding.concat.fairseq_offset", function="sinusoidal_encoding",
             inputs={"positions": Arange(0, 20)}, params={"dim": 32, "layout": "concat",
             "freq_denominator": "half_dim_minus_one", "position_offset": 2}, tolerance="sinusoidal",
             description="fairseq: positions start at padding_idx + 1 = 2"),
    CaseSpec(id="sinusoidal_encoding.invalid.odd_dim", function="sinusoidal_encoding",
             inputs={"positions": Arange(0, 3)}, params={"dim": 7}, expect_error="ValueError", error_match="dim",
             description="odd width"),
    CaseSpec(id="fourier_features.basic", function="fourier_features",
             inputs={"positions": Arange(0, 33)}, params={"num_frequencies": 6, "period": 32.0},
             tolerance="fourier", description="harmonics 1..6 of period 32, cosines then sines"),
    CaseSpec(id="fourier_features.cos_only", function="fourier_features",
             inputs={"positions": Integers((4, 5), 0, 1000)}, params={"num_frequencies": 3, "period": 100.0,
             "include_sine": False}, tolerance="fourier", description="cosines only, (B, T) positions"),
    CaseSpec(id="fourier_features.invalid.period", function="fourier_features",
             inputs={"positions": Arange(0, 3)}, params={"num_frequencies": 2, "period": 0.0},
             expect_error="ValueError", error_match="period", description="zero period"),
    CaseSpec(id="learned_position_embedding.basic", function="learned_position_embedding",
             inputs={"table": Normal((16, 8)), "positions": Integers((2, 5), 0, 16)}, tolerance="gather",
             description="row lookup"),
    CaseSpec(id="learned_position_embedding.offset_padding", function="learned_position_embedding",
             inputs={"table": Normal((12, 4)), "positions": Values([[0, 1, 2, 3], [0, 1, 2, 3]], "int64")},
             params={"position_offset": 2, "padding_idx": 1}, tolerance="gather",
             description="OPT-style offset 2 with a padding row"),
    CaseSpec(id="learned_position_embedding.roberta_padding", function="learned_position_embedding",
             inputs={"table": Normal((10, 4)), "positions": Values([[0, 1, 2, -1, -1], [0, 1, 2, 3, 4]], "int64")},
             params={"position_offset": 2, "padding_idx": 1}, tolerance="gather",
             description="RoBERTa: padding tokens at position -1 land on the zeroed padding row 1"),
    CaseSpec(id="learned_position_embedding.invalid.out_of_range", function="learned_position_embedding",
             inputs={"table": Normal((8, 4)), "positions": Arange(0, 9)}, expect_error="ValueError",
             error_match="positions", description="a position beyond the table"),
)

# -- Shaw, T5, ALiBi --------------------------------------------------------------------------

_add(
    CaseSpec(id="shaw_relative_index.square", function="shaw_relative_index",
             inputs={"query_positions": Arange(0, 12), "key_positions": Arange(0, 12)},
             params={"max_relative_position": 4}, tolerance="exact", description="clipping at +-4"),
    CaseSpec(id="shaw_relative_index.decoding", function="shaw_relative_index",
             inputs={"query_positions": Arange(9, 10), "key_positions": Arange(0, 10)},
             params={"max_relative_position": 3}, tolerance="exact", description="one query at the end"),
    CaseSpec(id="shaw_relative_index.invalid.k", function="shaw_relative_index",
             inputs={"query_positions": Arange(0, 2), "key_positions": Arange(0, 2)},
             params={"max_relative_position": -1}, expect_error="ValueError", error_match="max_relative_position",
             description="negative clipping distance"),
    CaseSpec(id="shaw_relative_embeddings.basic", function="shaw_relative_embeddings",
             inputs={"table": Normal((7, 5)), "query_positions": Arange(0, 6), "key_positions": Arange(0, 6)},
             params={"max_relative_position": 3}, tolerance="gather", description="gather a^K_ij"),
    CaseSpec(id="shaw_relative_embeddings.invalid.table", function="shaw_relative_embeddings",
             inputs={"table": Normal((6, 5)), "query_positions": Arange(0, 3), "key_positions": Arange(0, 3)},
             params={"max_relative_position": 3}, expect_error="ValueError", error_match="table",
             description="table must have 2k + 1 rows"),
    CaseSpec(id="shaw_relative_logits.basic", function="shaw_relative_logits",
             inputs={"q": Normal((2, 5, 8)), "k": Normal((2, 6, 8)), "relative_keys": Normal((5, 6, 8))},
             tolerance="contraction", description="q.k + q.a^K"),
    CaseSpec(id="shaw_relative_logits.invalid.shapes", function="shaw_relative_logits",
             inputs={"q": Normal((2, 5, 8)), "k": Normal((2, 6, 8)), "relative_keys": Normal((5, 5, 8))},
             expect_error="ValueError", error_match="relative_keys", description="a^K of the wrong shape"),
    CaseSpec(id="shaw_relative_values.basic", function="shaw_relative_values",
             inputs={"weights": Uniform((2, 5, 6)), "v": Normal((2, 6, 8)), "relative_values": Normal((5, 6, 8))},
             tolerance="contraction", description="sum_j w_ij (v_j + a^V_ij)"),
    CaseSpec(id="shaw_relative_values.invalid.shapes", function="shaw_relative_values",
             inputs={"weights": Uniform((2, 5, 6)), "v": Normal((2, 7, 8)), "relative_values": Normal((5, 6, 8))},
             expect_error="ValueError", error_match="v", description="values of the wrong length"),
)
_REL = Arange(-300, 301)
for bidirectional in (True, False):
    for nb, md in [(32, 128), (64, 256), (16, 64)]:
        word = "bidirectional" if bidirectional else "causal"
        _add(CaseSpec(
            id=f"t5_relative_bucket.{word}.b{nb}.d{md}", function="t5_relative_bucket", inputs={"relative_position": _REL},
            params={"bidirectional": bidirectional, "num_buckets": nb, "max_distance": md}, tolerance="t5_bucket",
            description=f"every relative position in [-300, 300], {nb} buckets, max distance {md}",
        ))
_add(
    CaseSpec(id="t5_relative_bucket.bidirectional.far", function="t5_relative_bucket",
             inputs={"relative_position": Values([-10**6, -131071, -129, -128, -127, 127, 128, 129, 131071, 10**6],
                                                  "int64")},
             params={}, tolerance="t5_bucket", description="around and far beyond max_distance"),
    CaseSpec(id="t5_relative_bucket.invalid.num_buckets", function="t5_relative_bucket",
             inputs={"relative_position": Arange(0, 3)}, params={"num_buckets": 0}, expect_error="ValueError",
             error_match="num_buckets", description="no buckets"),
)
for bidirectional in (True, False):
    word = "bidirectional" if bidirectional else "causal"
    _add(CaseSpec(
        id=f"t5_relative_bias.{word}", function="t5_relative_bias",
        inputs={"table": Normal((32, 8)), "query_positions": Arange(0, 40), "key_positions": Arange(0, 40)},
        params={"bidirectional": bidirectional}, tolerance="t5_bias",
        description=f"{word} bias for 40 tokens, 8 heads",
    ))
_add(
    CaseSpec(id="t5_relative_bias.decoding_long", function="t5_relative_bias",
             inputs={"table": Normal((32, 4)), "query_positions": Values([5000], "int64"),
                     "key_positions": Arange(0, 5001)},
             params={"bidirectional": False}, tolerance="t5_bias", description="one query after 5000 cached keys"),
    CaseSpec(id="t5_relative_bias.invalid.table", function="t5_relative_bias",
             inputs={"table": Normal((30, 4)), "query_positions": Arange(0, 3), "key_positions": Arange(0, 3)},
             expect_error="ValueError", error_match="table", description="table rows must equal num_buckets"),
)
for heads in (1, 8, 12, 20, 40, 64, 6, 3):
    for rule in ("paper", "mpt"):
        _add(CaseSpec(
            id=f"alibi_slopes.{rule}.h{heads}", function="alibi_slopes", inputs={},
            params={"num_heads": heads, "rule": rule}, tolerance="linear_bias",
            description=f"{rule} slopes for {heads} heads",
        ))
_add(CaseSpec(id="alibi_slopes.invalid.zero_heads", function="alibi_slopes", inputs={}, params={"num_heads": 0},
              expect_error="ValueError", error_match="num_heads", description="zero heads"))
_SLOPES12 = [2.0 ** (-8 * k / 8) for k in range(1, 9)] + [2.0 ** (-(2 * k - 1) * 0.5) for k in range(1, 5)]
for form in ("distance", "key_index", "last_key_anchored", "symmetric"):
    _add(CaseSpec(
        id=f"alibi_bias.{form}.causal", function="alibi_bias",
        inputs={"slopes": Values(_SLOPES12), "query_positions": Arange(0, 24), "key_positions": Arange(0, 24)},
        params={"form": form, "causal": True}, tolerance="linear_bias",
        description=f"{form} form, 12 heads (not a power of two), causal",
    ))
_add(
    CaseSpec(id="alibi_bias.symmetric.bidirectional_long", function="alibi_bias",
             inputs={"slopes": Values(_SLOPES12[:4]), "query_positions": Values([0, 2047, 8191], "int64"),
                     "key_positions": Arange(0, 8192)},
             params={"form": "symmetric", "causal": False}, tolerance="linear_bias",
             description="bidirectional -m|i-j| up to distance 8191 (bf16 spacing there is 32 x slope)"),
    CaseSpec(id="alibi_bias.distance.causal_long", function="alibi_bias",
             inputs={"slopes": Values(_SLOPES12), "query_positions": Values([300, 1000, 4095], "int64"),
                     "key_positions": Arange(0, 4096)},
             params={}, tolerance="linear_bias",
             description="non-power-of-two slopes at distances up to 4095, where a bf16 product shows"),
    CaseSpec(id="alibi_bias.distance.falcon_scale", function="alibi_bias",
             inputs={"slopes": Values(_SLOPES12[:8]), "query_positions": Arange(0, 10), "key_positions": Arange(0, 10)},
             params={"scale": 0.125}, tolerance="linear_bias", description="Falcon divides the bias by sqrt(64)"),
    CaseSpec(id="alibi_bias.key_index.falcon_scale", function="alibi_bias",
             inputs={"slopes": Values([2.0 ** -k for k in range(1, 9)]), "query_positions": Values([299], "int64"),
                     "key_positions": Arange(0, 300)},
             params={"form": "key_index", "scale": 0.125}, tolerance="linear_bias",
             description="Falcon's form and scale (1/sqrt(64)), keys up to 299"),
    CaseSpec(id="alibi_bias.invalid.form", function="alibi_bias",
             inputs={"slopes": Values([0.5]), "query_positions": Arange(0, 2), "key_positions": Arange(0, 2)},
             params={"form": "bloom"}, expect_error="ValueError", error_match="form", description="unknown form"),
)

# -- FoPE, CPE, attention --------------------------------------------------------------------

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
_add(
    CaseSpec(id="peg.k3.class_token", function="peg",
             inputs={"tokens": Normal((2, 1 + 5 * 7, 6)), "weight": Normal((6, 1, 3, 3), 0.3), "bias": Normal((6,), 0.1)},
             params={"grid_shape": [5, 7], "has_class_token": True}, tolerance="contraction",
             description="3 x 3 depthwise PEG on a 5 x 7 grid with a class token"),
    CaseSpec(id="peg.k5.no_class_token", function="peg",
             inputs={"tokens": Normal((1, 16, 4)), "weight": Normal((4, 1, 5, 5), 0.2), "bias": Normal((4,), 0.1)},
             params={"grid_shape": [4, 4]}, tolerance="contraction", description="kernel larger than the border"),
    CaseSpec(id="peg.invalid.even_kernel", function="peg",
             inputs={"tokens": Normal((1, 16, 4)), "weight": Normal((4, 1, 2, 2)), "bias": Normal((4,))},
             params={"grid_shape": [4, 4]}, expect_error="ValueError", error_match="weight",
             description="even kernels have no centre"),
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

_add(CaseSpec(
    id="yarn_attention_factor.mscale_only", function="yarn_attention_factor", inputs={},
    params={"scaling_factor": 40.0, "mscale": 0.707}, tolerance="frequency",
    description="an mscale without mscale_all_dim: 0.1 * 0.707 * ln 40 + 1",
))

# -- the methods the field runs today (RoPE scaling, xPos, multi-axis, other relative schemes) --

from posref.golden.cases_field import FIELD_CASES, FIELD_NOT_GOLDEN  # noqa: E402

CASES.extend(FIELD_CASES)
NOT_GOLDEN.update(FIELD_NOT_GOLDEN)
