"""The golden cases of the methods the field runs today.

RoPE scaling (position interpolation, NTK, dynamic NTK, Qwen's stepwise
NTK, YaRN, DeepSeek, LongRoPE, Llama 3), xPos, the multi-axis encodings
(2-D sine-cosine, axial RoPE, M-RoPE) and the relative schemes beyond Shaw,
T5 and ALiBi (Transformer-XL, DeBERTa, KERPLE, Sandwich, FIRE, CoPE, NoPE).

The parameters are those of released models wherever one exists (Llama 3.1,
Llama 3.2, Llama 4 Scout, Qwen2.5, DeepSeek-V3, Phi-3.5-mini, Qwen2-VL,
Qwen3-VL, MAE ViT-B, DeBERTa-v3), and every case targets a place where
implementations are known to disagree or break: the sequence length one
below, at and one above the trained length for the dynamic rules, the
short/long switch of LongRoPE, the truncated and exact YaRN correction
range, ``low_freq_factor == high_freq_factor`` for Llama 4, odd and even
lengths for the xPos centring, coordinates that differ per axis for M-RoPE,
and the log-bucket boundaries of DeBERTa.  The xPos, M-RoPE, axial RoPE,
Transformer-XL and Sandwich cases also reach positions, coordinates or
distances of 100000 and more (1000000 for M-RoPE), where float32 angles
lose digits: the error model admits that loss and nothing more, so
low-precision bugs there show.  :mod:`posref.golden.cases` appends
:data:`FIELD_CASES` to its list.
"""

from __future__ import annotations

from posref.golden.registry import Arange, CaseSpec, Integers, Normal, Uniform, Values

__all__ = ["FIELD_CASES", "FIELD_NOT_GOLDEN"]

FIELD_CASES: list[CaseSpec] = []

#: Functions of these families that have no golden case, with the reason (none so far).
FIELD_NOT_GOLDEN: dict[str, str] = {}


def _add(*specs: CaseSpec) -> None:
    FIELD_CASES.extend(specs)


def _grid(height: int, width: int, *, start: int = 0) -> list[list[int]]:
    """Row and column of every token of a row-major ``height x width`` grid, shape (2, H*W)."""
    rows = [start + n // width for n in range(height * width)]
    cols = [start + n % width for n in range(height * width)]
    return [rows, cols]


# -- RoPE scaling: linear, dynamic linear -------------------------------------------------------

for dim, base, s in [(128, 10_000.0, 2.0), (128, 10_000.0, 4.0), (128, 500_000.0, 8.0), (64, 10_000.0, 16.0)]:
    _add(CaseSpec(
        id=f"linear_scaled_frequencies.d{dim}.b{int(base)}.s{int(s)}", function="linear_scaled_frequencies",
        inputs={}, params={"dim": dim, "base": base, "scaling_factor": s}, tolerance="frequency",
        description=f"position interpolation by {s:g} (theta / s), dim={dim}, base={base:g}",
    ))
_add(
    CaseSpec(id="linear_scaled_frequencies.s1_identity", function="linear_scaled_frequencies", inputs={},
             params={"dim": 2, "base": 10_000.0, "scaling_factor": 1.0}, tolerance="frequency",
             description="factor 1 and the smallest width: plain RoPE, theta = [1]"),
    CaseSpec(id="linear_scaled_frequencies.invalid.factor_below_one", function="linear_scaled_frequencies",
             inputs={}, params={"dim": 128, "scaling_factor": 0.5}, expect_error="ValueError",
             error_match="scaling_factor", description="a factor below 1 would extrapolate, not interpolate"),
)
# L0 = 4096, s = 1: the factor is max(1, L / L0), so 4095 and 4096 are plain RoPE and 4097 is not.
for length in (4095, 4096, 4097, 16384):
    _add(CaseSpec(
        id=f"dynamic_linear_frequencies.l0_4096.len{length}", function="dynamic_linear_frequencies", inputs={},
        params={"dim": 128, "base": 10_000.0, "scaling_factor": 1.0, "original_max_position_embeddings": 4096,
                "sequence_length": length},
        tolerance="frequency", description=f"dynamic interpolation, L0 = 4096, sequence length {length}",
    ))
# TransformerEngine: a fixed factor 2 holds up to L0 * s = 8192 and is outgrown at 8193.
for length in (8192, 8193):
    _add(CaseSpec(
        id=f"dynamic_linear_frequencies.fixed2.len{length}", function="dynamic_linear_frequencies", inputs={},
        params={"dim": 64, "base": 10_000.0, "scaling_factor": 2.0, "original_max_position_embeddings": 4096,
                "sequence_length": length},
        tolerance="frequency", description=f"fixed factor 2 (TransformerEngine) at length {length}, L0 s = 8192",
    ))
_add(CaseSpec(
    id="dynamic_linear_frequencies.invalid.zero_length", function="dynamic_linear_frequencies", inputs={},
    params={"dim": 64, "original_max_position_embeddings": 4096, "sequence_length": 0},
    expect_error="ValueError", error_match="sequence_length", description="a sequence of length 0",
))

# -- NTK-aware (reddit), NTK fixed/mixed (vLLM) --------------------------------------------------

for dim, base, s in [(128, 10_000.0, 4.0), (128, 10_000.0, 8.0), (64, 10_000.0, 2.0), (4, 100.0, 4.0)]:
    _add(CaseSpec(
        id=f"ntk_scaled_frequencies.d{dim}.b{int(base)}.s{int(s)}", function="ntk_scaled_frequencies", inputs={},
        params={"dim": dim, "base": base, "scaling_factor": s}, tolerance="frequency",
        description=f"base b s^(d/(d-2)): theta_0 kept, the lowest frequency divided by {s:g}",
    ))
_add(
    CaseSpec(id="ntk_scaled_frequencies.s1_identity", function="ntk_scaled_frequencies", inputs={},
             params={"dim": 128, "scaling_factor": 1.0}, tolerance="frequency",
             description="factor 1 is plain RoPE"),
    CaseSpec(id="ntk_scaled_frequencies.invalid.dim2", function="ntk_scaled_frequencies", inputs={},
             params={"dim": 2, "scaling_factor": 4.0}, expect_error="ValueError", error_match="dim",
             description="dim 2 makes the exponent d/(d-2) undefined"),
)
for dim, base, s, mixed_b, label in [
    (128, 10_000.0, 4.0, None, "fixed"),
    (64, 500_000.0, 16.0, None, "fixed"),
    (128, 10_000.0, 4.0, 2.0, "mixed_b2"),
    (128, 10_000.0, 4.0, 1.0, "mixed_b1"),
    (96, 10_000.0, 8.0, 0.5, "mixed_b0_5"),
]:
    params = {"dim": dim, "base": base, "scaling_factor": s}
    if mixed_b is not None:
        params["mixed_b"] = mixed_b
    _add(CaseSpec(
        id=f"ntk_fixed_frequencies.{label}.d{dim}.s{int(s)}", function="ntk_fixed_frequencies", inputs={},
        params=params, tolerance="frequency",
        description=("vLLM NTK-fixed: every frequency divided by s^(2(i+1)/d)" if mixed_b is None
                     else f"vLLM NTK-mixed with exponent {mixed_b:g}" + (" (the fixed rule)" if mixed_b == 1.0 else "")),
    ))
_add(CaseSpec(
    id="ntk_fixed_frequencies.invalid.mixed_b_zero", function="ntk_fixed_frequencies", inputs={},
    params={"dim": 64, "scaling_factor": 4.0, "mixed_b": 0.0}, expect_error="ValueError", error_match="mixed_b",
    description="the mixed exponent must be positive",
))

# -- dynamic NTK, its sequence-length rule, Qwen's stepwise rule --------------------------------

# Hugging Face "dynamic" with factor 4 and L0 = 4096: one below, at and one above L0 (off-by-one
# bugs live there: L must be max(position) + 1, and alpha must be exactly 1 up to L0).
for length in (1, 4095, 4096, 4097, 8192, 16384):
    _add(CaseSpec(
        id=f"dynamic_ntk_frequencies.l0_4096.len{length}", function="dynamic_ntk_frequencies", inputs={},
        params={"dim": 128, "base": 10_000.0, "scaling_factor": 4.0, "original_max_position_embeddings": 4096,
                "sequence_length": length},
        tolerance="frequency",
        description=f"dynamic NTK, s = 4, L0 = 4096, L = {length}"
                    + (" (plain RoPE)" if length <= 4096 else " (base grows)"),
    ))
for length in (2047, 2048, 2049, 1_000_000):
    _add(CaseSpec(
        id=f"dynamic_ntk_frequencies.d64.l0_2048.len{length}", function="dynamic_ntk_frequencies", inputs={},
        params={"dim": 64, "base": 500_000.0, "scaling_factor": 2.0, "original_max_position_embeddings": 2048,
                "sequence_length": length},
        tolerance="frequency", description=f"dynamic NTK, s = 2, dim 64, base 5e5, L0 = 2048, L = {length}",
    ))
_add(
    CaseSpec(id="dynamic_ntk_frequencies.invalid.zero_length", function="dynamic_ntk_frequencies", inputs={},
             params={"dim": 128, "scaling_factor": 4.0, "original_max_position_embeddings": 4096,
                     "sequence_length": 0},
             expect_error="ValueError", error_match="sequence_length", description="a sequence of length 0"),
    CaseSpec(id="dynamic_ntk_frequencies.invalid.dim2", function="dynamic_ntk_frequencies", inputs={},
             params={"dim": 2, "scaling_factor": 4.0, "original_max_position_embeddings": 4096,
                     "sequence_length": 8192},
             expect_error="ValueError", error_match="dim", description="dim 2 has no NTK exponent"),
)
_L0 = {"original_max_position_embeddings": 4096}
for label, positions, params in [
    ("initial.max4094", Arange(0, 4095), {}),
    ("initial.max4095", Arange(0, 4096), {}),
    ("initial.max4096", Arange(0, 4097), {}),
    ("batch_max", Values([[0, 1, 2, 3], [9996, 9997, 9998, 9999]], "int64"), {}),
    ("cached.shorter_pass", Values([4999], "int64"), {"cached_length": 10000}),
    ("cached.growth", Values([10000], "int64"), {"cached_length": 10000}),
    ("cached.reset", Values([0, 99], "int64"), {"cached_length": 10000}),
    ("cached.no_reset", Values([0, 99], "int64"), {"cached_length": 10000, "reset": False}),
    ("cached.length_l0_no_reset", Values([4095], "int64"), {"cached_length": 10000}),
    ("cached.length_l0_minus_one_resets", Values([4094], "int64"), {"cached_length": 10000}),
]:
    _add(CaseSpec(
        id=f"dynamic_ntk_sequence_length.{label}", function="dynamic_ntk_sequence_length",
        inputs={"positions": positions}, params={**_L0, **params}, tolerance="exact",
        description={
            "initial.max4094": "first pass of 4095 tokens keeps the original table (4096)",
            "initial.max4095": "first pass of exactly L0 tokens keeps the original table",
            "initial.max4096": "a pass of L0 + 1 tokens grows the table to 4097",
            "batch_max": "the longest sequence of the batch decides for all (Hugging Face)",
            "cached.shorter_pass": "a pass between L0 and the cached length keeps the grown table",
            "cached.growth": "a pass one longer than the cache grows it to 10001",
            "cached.reset": "a pass shorter than L0 returns to the original table (Hugging Face reset)",
            "cached.no_reset": "without reset the grown table stays (reference code of the reddit post)",
            "cached.length_l0_no_reset": "a pass of exactly L0 tokens is not shorter than L0: no reset",
            "cached.length_l0_minus_one_resets": "a pass of L0 - 1 tokens resets",
        }[label],
    ))
_add(
    CaseSpec(id="dynamic_ntk_sequence_length.invalid.negative_position", function="dynamic_ntk_sequence_length",
             inputs={"positions": Values([-1, 0], "int64")}, params=_L0, expect_error="ValueError",
             error_match="positions", description="negative position ids"),
    CaseSpec(id="dynamic_ntk_sequence_length.invalid.cache_below_l0", function="dynamic_ntk_sequence_length",
             inputs={"positions": Arange(0, 4)}, params={**_L0, "cached_length": 100}, expect_error="ValueError",
             error_match="cached_length", description="a cached table shorter than the original one"),
)
# Qwen (first generation): L0 = 2048, alpha = 1, 3, 3, 7, 31 for these lengths.
for length in (2048, 2049, 4096, 4097, 32769):
    _add(CaseSpec(
        id=f"qwen_dynamic_ntk_frequencies.l0_2048.len{length}", function="qwen_dynamic_ntk_frequencies", inputs={},
        params={"dim": 128, "base": 10_000.0, "original_max_position_embeddings": 2048, "sequence_length": length},
        tolerance="frequency", description=f"stepwise alpha 2^(ceil(log2(L/L0)) + 1) - 1 at L = {length}",
    ))
_add(CaseSpec(
    id="qwen_dynamic_ntk_frequencies.invalid.zero_length", function="qwen_dynamic_ntk_frequencies", inputs={},
    params={"dim": 128, "original_max_position_embeddings": 2048, "sequence_length": 0},
    expect_error="ValueError", error_match="sequence_length", description="a sequence of length 0",
))

# -- YaRN ----------------------------------------------------------------------------------------

#: (label, dim, base, L0, s): the parameter sets of the survey's YaRN table.  "hf_old" passes
#: L0 * s as the length, as Hugging Face releases before the fix did.
_YARN = [
    ("llama2", 128, 10_000.0, 4096, 4.0),
    ("qwen2_5", 128, 1_000_000.0, 32768, 4.0),
    ("deepseek_v3", 64, 10_000.0, 4096, 40.0),
    ("long_l0", 128, 10_000.0, 131072, 8.0),
    ("hf_old", 128, 10_000.0, 16384, 4.0),
]
for label, dim, base, l0, s in _YARN:
    for truncate in (True, False):
        word = "truncate" if truncate else "exact"
        common = {"dim": dim, "base": base, "original_max_position_embeddings": l0, "truncate": truncate}
        _add(
            CaseSpec(id=f"yarn_correction_range.{label}.{word}", function="yarn_correction_range", inputs={},
                     params=common, tolerance="exact" if truncate else "yarn_range",
                     description=f"correction range, dim {dim}, base {base:g}, L0 {l0}, {word}"),
            CaseSpec(id=f"yarn_frequencies.{label}.{word}", function="yarn_frequencies", inputs={},
                     params={**common, "scaling_factor": s}, tolerance="frequency",
                     description=f"YaRN, dim {dim}, base {base:g}, L0 {l0}, s {s:g}, range {word}"),
        )
for truncate in (True, False):
    word = "truncate" if truncate else "exact"
    common = {"dim": 128, "base": 10_000.0, "original_max_position_embeddings": 131072, "truncate": truncate,
              "high_limit": "half_dim"}
    _add(
        CaseSpec(id=f"yarn_correction_range.long_l0.half_dim.{word}", function="yarn_correction_range", inputs={},
                 params=common, tolerance="exact" if truncate else "yarn_range",
                 description="high end clamped to dim/2 - 1 = 63 (keras-hub before #2981)"),
        CaseSpec(id=f"yarn_frequencies.long_l0.half_dim.{word}", function="yarn_frequencies", inputs={},
                 params={**common, "scaling_factor": 8.0}, tolerance="frequency",
                 description="the half_dim clamp moves the ramp's upper end for L0 = 131072"),
    )
_add(
    CaseSpec(id="yarn_correction_range.betas_4_2", function="yarn_correction_range", inputs={},
             params={"dim": 128, "original_max_position_embeddings": 4096, "beta_fast": 4.0, "beta_slow": 2.0},
             tolerance="exact", description="non-default rotation thresholds"),
    CaseSpec(id="yarn_correction_range.invalid.betas_swapped", function="yarn_correction_range", inputs={},
             params={"dim": 128, "original_max_position_embeddings": 4096, "beta_fast": 1.0, "beta_slow": 32.0},
             expect_error="ValueError", error_match="beta_fast", description="beta_fast must exceed beta_slow"),
    CaseSpec(id="yarn_correction_range.invalid.high_limit", function="yarn_correction_range", inputs={},
             params={"dim": 128, "original_max_position_embeddings": 4096, "high_limit": "keras"},
             expect_error="ValueError", error_match="high_limit", description="unknown clamp name"),
    CaseSpec(id="yarn_frequencies.llama2.s16", function="yarn_frequencies", inputs={},
             params={"dim": 128, "base": 10_000.0, "scaling_factor": 16.0, "original_max_position_embeddings": 4096},
             tolerance="frequency", description="YaRN Llama 2 64k (s = 16), range (20, 46)"),
    CaseSpec(id="yarn_frequencies.extrapolation0", function="yarn_frequencies", inputs={},
             params={"dim": 128, "scaling_factor": 4.0, "original_max_position_embeddings": 4096,
                     "extrapolation_factor": 0.0},
             tolerance="frequency", description="extrapolation factor 0 is plain linear interpolation"),
    CaseSpec(id="yarn_frequencies.low_equals_high", function="yarn_frequencies", inputs={},
             params={"dim": 128, "scaling_factor": 4.0, "original_max_position_embeddings": 6},
             tolerance="frequency",
             description="L0 = 6 gives low == high == 0: the reference code's +0.001 guard keeps pair 0 only"),
    CaseSpec(id="yarn_frequencies.high_below_low", function="yarn_frequencies", inputs={},
             params={"dim": 128, "scaling_factor": 4.0, "original_max_position_embeddings": 4},
             tolerance="frequency",
             description="L0 = 4 < 2 pi beta_slow clamps high below low: the ramp formula used as written"),
    CaseSpec(id="yarn_frequencies.invalid.factor_below_one", function="yarn_frequencies", inputs={},
             params={"dim": 128, "scaling_factor": 0.5, "original_max_position_embeddings": 4096},
             expect_error="ValueError", error_match="scaling_factor", description="a factor below 1"),
    CaseSpec(id="yarn_frequencies.invalid.negative_extrapolation", function="yarn_frequencies", inputs={},
             params={"dim": 128, "scaling_factor": 4.0, "original_max_position_embeddings": 4096,
                     "extrapolation_factor": -1.0},
             expect_error="ValueError", error_match="extrapolation_factor", description="negative weight"),
)
for label, s, params, text in [
    ("s4", 4.0, {}, "0.1 ln 4 + 1, the paper's factor"),
    ("s40", 40.0, {}, "0.1 ln 40 + 1 (mscale_all_dim unset)"),
    ("deepseek_v3", 40.0, {"mscale": 1.0, "mscale_all_dim": 1.0}, "mscale = mscale_all_dim = 1 gives exactly 1"),
    ("deepseek_v2", 40.0, {"mscale": 0.707, "mscale_all_dim": 0.707}, "DeepSeek-V2 mscale = mscale_all_dim = 0.707"),
    ("ratio", 16.0, {"mscale": 1.0, "mscale_all_dim": 0.5}, "g(s, 1) / g(s, 0.5)"),
    ("s1", 1.0, {}, "no scaling: factor 1"),
    ("s_below_one", 0.5, {}, "s <= 1 is guarded: factor 1, not 1 + 0.1 ln s"),
    ("override", 40.0, {"attention_factor": 0.8}, "a configured attention_factor wins"),
]:
    _add(CaseSpec(
        id=f"yarn_attention_factor.{label}", function="yarn_attention_factor", inputs={},
        params={"scaling_factor": s, **params}, tolerance="frequency", description=text,
    ))
_add(
    CaseSpec(id="yarn_attention_factor.invalid.zero_factor", function="yarn_attention_factor", inputs={},
             params={"scaling_factor": 0.0}, expect_error="ValueError", error_match="scaling_factor",
             description="a zero scaling factor"),
    CaseSpec(id="yarn_attention_factor.invalid.negative_mscale", function="yarn_attention_factor", inputs={},
             params={"scaling_factor": 4.0, "mscale": -1.0}, expect_error="ValueError", error_match="mscale",
             description="a negative mscale"),
)
for label, head_dim, s, m2, text in [
    ("deepseek_v3", 192, 40.0, 1.0, "DeepSeek-V3: (0.1 ln 40 + 1)^2 / sqrt(192), g^2 = 1.8739"),
    ("deepseek_v2", 192, 40.0, 0.707, "DeepSeek-V2: mscale_all_dim 0.707"),
    ("no_mscale", 192, 40.0, 0.0, "mscale_all_dim 0: plain 1 / sqrt(192)"),
    ("s1", 128, 1.0, 1.0, "no scaling: 1 / sqrt(128)"),
]:
    _add(CaseSpec(
        id=f"deepseek_softmax_scale.{label}", function="deepseek_softmax_scale", inputs={},
        params={"head_dim": head_dim, "scaling_factor": s, "mscale_all_dim": m2}, tolerance="frequency",
        description=text,
    ))
_add(CaseSpec(
    id="deepseek_softmax_scale.invalid.head_dim", function="deepseek_softmax_scale", inputs={},
    params={"head_dim": 0, "scaling_factor": 40.0, "mscale_all_dim": 1.0}, expect_error="ValueError",
    error_match="head_dim", description="zero head width",
))

# -- LongRoPE --------------------------------------------------------------------------------------

#: microsoft/Phi-3.5-mini-instruct config.json: head_dim 96, so 48 factors per list, L0 = 4096.
PHI35_LONG_FACTOR = [
    1.0800000429153442, 1.1100000143051147, 1.1399999856948853, 1.340000033378601, 1.5899999141693115,
    1.600000023841858, 1.6200000047683716, 2.620000123977661, 3.2300000190734863, 3.2300000190734863,
    4.789999961853027, 7.400000095367432, 7.700000286102295, 9.09000015258789, 12.199999809265137,
    17.670000076293945, 24.46000099182129, 28.57000160217285, 30.420001983642578, 30.840002059936523,
    32.590003967285156, 32.93000411987305, 42.320003509521484, 44.96000289916992, 50.340003967285156,
    50.45000457763672, 57.55000305175781, 57.93000411987305, 58.21000289916992, 60.1400032043457,
    62.61000442504883, 62.62000274658203, 62.71000289916992, 63.1400032043457, 63.1400032043457,
    63.77000427246094, 63.93000411987305, 63.96000289916992, 63.970001220703125, 64.02999877929688,
    64.06999969482422, 64.08000183105469, 64.12000274658203, 64.41000366210938, 64.4800033569336,
    64.51000213623047, 64.52999877929688, 64.83999633789062,
]
PHI35_SHORT_FACTOR = [
    1.0, 1.0199999809265137, 1.0299999713897705, 1.0299999713897705, 1.0499999523162842,
    1.0499999523162842, 1.0499999523162842, 1.0499999523162842, 1.0499999523162842, 1.0699999332427979,
    1.0999999046325684, 1.1099998950958252, 1.1599998474121094, 1.1599998474121094, 1.1699998378753662,
    1.2899998426437378, 1.339999794960022, 1.679999828338623, 1.7899998426437378, 1.8199998140335083,
    1.8499997854232788, 1.8799997568130493, 1.9099997282028198, 1.9399996995925903, 1.9899996519088745,
    2.0199997425079346, 2.0199997425079346, 2.0199997425079346, 2.0199997425079346, 2.0199997425079346,
    2.0199997425079346, 2.0299997329711914, 2.0299997329711914, 2.0299997329711914, 2.0299997329711914,
    2.0299997329711914, 2.0299997329711914, 2.0299997329711914, 2.0299997329711914, 2.0299997329711914,
    2.0799996852874756, 2.0899996757507324, 2.189999580383301, 2.2199995517730713, 2.5899994373321533,
    2.729999542236328, 2.749999523162842, 2.8399994373321533,
]
_PHI35 = {"base": 10_000.0, "short_factor": PHI35_SHORT_FACTOR, "long_factor": PHI35_LONG_FACTOR,
          "original_max_position_embeddings": 4096}
for length, text in [
    (1, "a one-token sequence uses the short factors"),
    (4095, "L0 - 1: short factors"),
    (4096, "L = L0 exactly: still the short factors (the switch is L > L0)"),
    (4097, "L0 + 1: the long factors"),
    (131072, "the configured maximum, as vLLM and older Hugging Face choose statically"),
]:
    _add(CaseSpec(
        id=f"longrope_frequencies.phi3_5_mini.len{length}", function="longrope_frequencies", inputs={},
        params={"dim": 96, **_PHI35, "sequence_length": length}, tolerance="frequency",
        description=f"Phi-3.5-mini factors, dim 96: {text}",
    ))
_add(
    CaseSpec(id="longrope_frequencies.invalid.short_length", function="longrope_frequencies", inputs={},
             params={"dim": 96, **_PHI35, "short_factor": PHI35_SHORT_FACTOR[:47], "sequence_length": 10},
             expect_error="ValueError", error_match="short_factor", description="47 factors for 48 pairs"),
    CaseSpec(id="longrope_frequencies.invalid.zero_factor", function="longrope_frequencies", inputs={},
             params={"dim": 96, **_PHI35, "long_factor": [0.0] + PHI35_LONG_FACTOR[1:], "sequence_length": 10},
             expect_error="ValueError", error_match="long_factor", description="a zero rescale factor"),
)
for label, s, l0, text in [
    ("phi3_5_mini", 32.0, 4096, "131072 / 4096 = 32: sqrt(1 + 5/12)"),
    ("l0_8192", 16.0, 8192, "s = 16, L0 = 8192"),
    ("s1", 1.0, 4096, "no extension: factor 1"),
    ("s_below_one", 0.5, 4096, "s < 1 is guarded: factor 1"),
    ("l0_2", 4.0, 2, "the smallest L0 (ln L0 is a divisor): sqrt(3)"),
]:
    _add(CaseSpec(
        id=f"longrope_attention_factor.{label}", function="longrope_attention_factor", inputs={},
        params={"scaling_factor": s, "original_max_position_embeddings": l0}, tolerance="frequency",
        description=text,
    ))
_add(CaseSpec(
    id="longrope_attention_factor.invalid.l0_one", function="longrope_attention_factor", inputs={},
    params={"scaling_factor": 32.0, "original_max_position_embeddings": 1}, expect_error="ValueError",
    error_match="original_max_position_embeddings", description="ln 1 = 0 cannot divide",
))

# -- Llama 3 ---------------------------------------------------------------------------------------

_LLAMA3 = {"base": 500_000.0, "low_freq_factor": 1.0, "original_max_position_embeddings": 8192}
_add(
    CaseSpec(id="llama3_scaled_frequencies.llama3_1", function="llama3_scaled_frequencies", inputs={},
             params={"dim": 128, **_LLAMA3, "scaling_factor": 8.0, "high_freq_factor": 4.0}, tolerance="frequency",
             description="Llama 3.1: s 8, low 1, high 4, L0 8192, base 5e5; kept, blended and divided pairs"),
    CaseSpec(id="llama3_scaled_frequencies.llama3_2", function="llama3_scaled_frequencies", inputs={},
             params={"dim": 64, **_LLAMA3, "scaling_factor": 32.0, "high_freq_factor": 4.0}, tolerance="frequency",
             description="Llama 3.2 1B: s 32, head_dim 64"),
    CaseSpec(id="llama3_scaled_frequencies.llama4_scout", function="llama3_scaled_frequencies", inputs={},
             params={"dim": 128, **_LLAMA3, "scaling_factor": 16.0, "high_freq_factor": 1.0}, tolerance="frequency",
             description="Llama 4 Scout: low == high == 1, no blended band, no NaN (0/0 in Hugging Face)"),
    CaseSpec(id="llama3_scaled_frequencies.defaults", function="llama3_scaled_frequencies", inputs={},
             params={"dim": 128}, tolerance="frequency", description="the defaults are Llama 3.1's"),
    CaseSpec(id="llama3_scaled_frequencies.short_l0", function="llama3_scaled_frequencies", inputs={},
             params={"dim": 8, "base": 10_000.0, "original_max_position_embeddings": 100}, tolerance="frequency",
             description="L0 = 100, dim 8: one pair of each branch, checkable by hand"),
    CaseSpec(id="llama3_scaled_frequencies.s1_identity", function="llama3_scaled_frequencies", inputs={},
             params={"dim": 128, "scaling_factor": 1.0}, tolerance="frequency",
             description="factor 1 leaves every frequency"),
    CaseSpec(id="llama3_scaled_frequencies.invalid.high_below_low", function="llama3_scaled_frequencies",
             inputs={}, params={"dim": 128, "low_freq_factor": 4.0, "high_freq_factor": 1.0},
             expect_error="ValueError", error_match="high_freq_factor", description="high_freq_factor < low_freq_factor"),
    CaseSpec(id="llama3_scaled_frequencies.invalid.factor_below_one", function="llama3_scaled_frequencies",
             inputs={}, params={"dim": 128, "scaling_factor": 0.5}, expect_error="ValueError",
             error_match="scaling_factor", description="a factor below 1"),
)

# -- xPos ------------------------------------------------------------------------------------------

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
_GRID_14 = Values(_grid(14, 14), "int64")
for axis_order in ("xy", "yx"):
    _add(CaseSpec(
        id=f"axial_rope_angles.grid14.{axis_order}", function="axial_rope_angles",
        inputs={"positions_2d": _GRID_14}, params={"dim": 64, "axis_order": axis_order}, tolerance="angle",
        description=f"14 x 14 patch grid, head width 64, {'column' if axis_order == 'xy' else 'row'} pairs first",
    ))
_add(
    CaseSpec(id="axial_rope_angles.pixtral", function="axial_rope_angles",
             inputs={"positions_2d": Values(_grid(3, 5), "int64")},
             params={"dim": 32, "axis_order": "yx", "frequencies": "even_odd"}, tolerance="angle",
             description="Pixtral: rows take the even, columns the odd entries of one ladder"),
    CaseSpec(id="axial_rope_angles.rope_vit_base100", function="axial_rope_angles",
             inputs={"positions_2d": Values(_grid(4, 6), "int64")}, params={"dim": 16, "base": 100.0},
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
_GRID_3x4 = Values(_grid(3, 4), "int64")
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
             inputs={"x": Normal((2, 6, 64)), "positions_2d": Values(_grid(2, 3), "int64")},
             params={"axis_order": "yx", "frequencies": "even_odd"}, tolerance="rope",
             description="Pixtral's even/odd frequency split"),
    CaseSpec(id="apply_axial_rope.batch_coordinates", function="apply_axial_rope",
             inputs={"x": Normal((2, 3, 5, 16)), "positions_2d": Integers((2, 2, 1, 5), 0, 16)},
             params={}, tolerance="rope",
             description="(2, B, 1, T) coordinates broadcast over the heads of (B, H, T, D)"),
    CaseSpec(id="apply_axial_rope.far_grid", function="apply_axial_rope",
             inputs={"x": Normal((1, 2, 12, 32)), "positions_2d": Values(_grid(3, 4, start=65_536), "int64")},
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
_QWEN3VL = {"base": 5_000_000.0, "mrope_section": [24, 20, 20], "interleaved": True}
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
             params={"dim": 128, **_QWEN2VL, "interleaved": True}, expect_error="ValueError",
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

# -- Transformer-XL --------------------------------------------------------------------------------

_add(
    CaseSpec(id="transformer_xl_relative_encoding.descending", function="transformer_xl_relative_encoding",
             inputs={"distances": Values(list(range(15, -1, -1)), "int64")}, params={"dim": 32},
             tolerance="sinusoidal",
             description="distances 15..0 as the original code orders them, sines then cosines"),
    CaseSpec(id="transformer_xl_relative_encoding.clamp", function="transformer_xl_relative_encoding",
             inputs={"distances": Arange(0, 12)}, params={"dim": 16, "max_distance": 8}, tolerance="sinusoidal",
             description="clamp_len = 8: distances 8..11 share the row of 8"),
    CaseSpec(id="transformer_xl_relative_encoding.matrix", function="transformer_xl_relative_encoding",
             inputs={"distances": Values([[2, 1, 0, 0], [3, 2, 1, 0], [4, 3, 2, 1]], "int64")},
             params={"dim": 64, "base": 500.0}, tolerance="sinusoidal",
             description="a (T, S) matrix of distances gives a (T, S, dim) table"),
    CaseSpec(id="transformer_xl_relative_encoding.long_memory", function="transformer_xl_relative_encoding",
             inputs={"distances": Values(list(range(131_071, 131_055, -1)), "int64")}, params={"dim": 64},
             tolerance="sinusoidal", description="the oldest 16 keys of a 128k memory, descending"),
    CaseSpec(id="transformer_xl_relative_encoding.invalid.odd_dim", function="transformer_xl_relative_encoding",
             inputs={"distances": Arange(0, 3)}, params={"dim": 7}, expect_error="ValueError", error_match="dim",
             description="odd width"),
    CaseSpec(id="transformer_xl_relative_encoding.invalid.negative", function="transformer_xl_relative_encoding",
             inputs={"distances": Values([-1, 0], "int64")}, params={"dim": 8}, expect_error="ValueError",
             error_match="distances", description="a negative distance"),
)
_add(
    CaseSpec(id="transformer_xl_scores.memory", function="transformer_xl_scores",
             inputs={"q": Normal((2, 3, 4, 8)), "k": Normal((2, 3, 7, 8)), "r": Normal((3, 7, 8)),
                     "u": Normal((3, 8), 0.5), "v": Normal((3, 8), 0.5)},
             tolerance="contraction", description="4 queries after 3 cached keys, future keys -inf"),
    CaseSpec(id="transformer_xl_scores.no_memory_zero", function="transformer_xl_scores",
             inputs={"q": Normal((1, 2, 5, 16)), "k": Normal((1, 2, 5, 16)), "r": Normal((2, 5, 16)),
                     "u": Normal((2, 16), 0.5), "v": Normal((2, 16), 0.5)},
             params={"future_keys": "zero", "scale": 1.0}, tolerance="contraction",
             description="T = S, unscaled, future entries keep only the content terms (zero_triu)"),
    CaseSpec(id="transformer_xl_scores.invalid.r_shape", function="transformer_xl_scores",
             inputs={"q": Normal((1, 2, 3, 4)), "k": Normal((1, 2, 3, 4)), "r": Normal((2, 2, 4)),
                     "u": Normal((2, 4)), "v": Normal((2, 4))},
             expect_error="ValueError", error_match="r", description="r needs one row per key"),
    CaseSpec(id="transformer_xl_scores.invalid.future_keys", function="transformer_xl_scores",
             inputs={"q": Normal((1, 2, 3, 4)), "k": Normal((1, 2, 3, 4)), "r": Normal((2, 3, 4)),
                     "u": Normal((2, 4)), "v": Normal((2, 4))},
             params={"future_keys": "drop"}, expect_error="ValueError", error_match="future_keys",
             description="unknown option"),
)

# -- DeBERTa ---------------------------------------------------------------------------------------

_BOUNDARY = [0, 1, 127, 128, 129, 255, 256, 257, 511, 512, 513, 4000]
_DEBERTA_REL = Values(sorted({s * r for r in _BOUNDARY for s in (1, -1)}), "int64")
_add(
    CaseSpec(id="deberta_log_bucket.b256.m512.boundaries", function="deberta_log_bucket",
             inputs={"relative_position": _DEBERTA_REL}, params={"bucket_size": 256, "max_position": 512},
             tolerance="exact",
             description="DeBERTa-v3 buckets at |r| = 127, 128, 129, 255, 256, 257, 511, 512, 513, 4000, both signs"),
    CaseSpec(id="deberta_log_bucket.b256.m512.sweep", function="deberta_log_bucket",
             inputs={"relative_position": Arange(-600, 601)}, params={"bucket_size": 256, "max_position": 512},
             tolerance="exact", description="every relative position in [-600, 600]"),
    CaseSpec(id="deberta_log_bucket.b4.m11.exact_ceiling", function="deberta_log_bucket",
             inputs={"relative_position": Values([-250, -249, -3, -2, 0, 2, 3, 10, 50, 249, 250, 251], "int64")},
             params={"bucket_size": 4, "max_position": 11}, tolerance="exact",
             description="ln(125)/ln(5) = 3 exactly at |r| = 250: bucket 5, where a float ceiling gives 6"),
    CaseSpec(id="deberta_log_bucket.invalid.max_position", function="deberta_log_bucket",
             inputs={"relative_position": Arange(0, 3)}, params={"bucket_size": 256, "max_position": 129},
             expect_error="ValueError", error_match="max_position",
             description="max_position must exceed bucket_size // 2 + 1"),
    CaseSpec(id="deberta_log_bucket.invalid.bucket_size", function="deberta_log_bucket",
             inputs={"relative_position": Arange(0, 3)}, params={"bucket_size": 1, "max_position": 512},
             expect_error="ValueError", error_match="bucket_size", description="fewer than 2 buckets"),
)
_add(
    CaseSpec(id="deberta_relative_scores.buckets", function="deberta_relative_scores",
             inputs={"q": Normal((1, 2, 12, 8)), "k": Normal((1, 2, 12, 8)), "pos_key": Normal((2, 8, 8)),
                     "pos_query": Normal((2, 8, 8)), "query_positions": Arange(0, 12), "key_positions": Arange(0, 12)},
             params={"bucket_size": 4, "max_position": 11}, tolerance="contraction",
             description="c2p + p2c with log buckets (span 4) over 12 tokens, out-of-range rows clamped"),
    CaseSpec(id="deberta_relative_scores.no_buckets", function="deberta_relative_scores",
             inputs={"q": Normal((2, 2, 6, 8)), "k": Normal((2, 2, 6, 8)), "pos_key": Normal((2, 6, 8)),
                     "pos_query": Normal((2, 6, 8)), "query_positions": Arange(0, 6), "key_positions": Arange(0, 6)},
             params={"bucket_size": None, "max_position": 3}, tolerance="contraction",
             description="DeBERTa v1 style: no buckets, span 3, distances beyond it clamped"),
    CaseSpec(id="deberta_relative_scores.c2p_only.decoding", function="deberta_relative_scores",
             inputs={"q": Normal((1, 2, 3, 8)), "k": Normal((1, 2, 9, 8)), "pos_key": Normal((2, 8, 8)),
                     "query_positions": Arange(6, 9), "key_positions": Arange(0, 9)},
             params={"pos_query": None, "bucket_size": 4, "max_position": 11, "p2c": False},
             tolerance="contraction", description="c2p only (f = 2), the last 3 of 9 tokens as queries"),
    CaseSpec(id="deberta_relative_scores.invalid.table_shape", function="deberta_relative_scores",
             inputs={"q": Normal((1, 2, 3, 8)), "k": Normal((1, 2, 3, 8)), "pos_key": Normal((2, 6, 8)),
                     "pos_query": Normal((2, 8, 8)), "query_positions": Arange(0, 3), "key_positions": Arange(0, 3)},
             params={"bucket_size": 4, "max_position": 11}, expect_error="ValueError", error_match="pos_key",
             description="the key table needs 2 * span = 8 rows"),
    CaseSpec(id="deberta_relative_scores.invalid.missing_table", function="deberta_relative_scores",
             inputs={"q": Normal((1, 2, 3, 8)), "k": Normal((1, 2, 3, 8)), "pos_query": Normal((2, 8, 8)),
                     "query_positions": Arange(0, 3), "key_positions": Arange(0, 3)},
             params={"pos_key": None, "bucket_size": 4, "max_position": 11}, expect_error="TypeError",
             error_match="pos_key", description="c2p enabled without its table"),
)

# -- KERPLE, Sandwich ------------------------------------------------------------------------------

for bidirectional in (False, True):
    word = "bidirectional" if bidirectional else "causal"
    _add(
        CaseSpec(id=f"kerple_log_bias.{word}", function="kerple_log_bias",
                 inputs={"query_positions": Arange(0, 16), "key_positions": Arange(0, 16),
                         "r1": Uniform((4,), 0.01, 2.0), "r2": Uniform((4,), 0.01, 1.0)},
                 params={"bidirectional": bidirectional}, tolerance="kerple",
                 description=f"log kernel, 4 heads with the code's initial ranges, {word}"),
        CaseSpec(id=f"kerple_power_bias.{word}", function="kerple_power_bias",
                 inputs={"query_positions": Arange(0, 16), "key_positions": Arange(0, 16),
                         "a": Uniform((4,), 0.01, 2.0), "p": Values([0.01, 0.5, 1.0, 2.0])},
                 params={"bidirectional": bidirectional}, tolerance="kerple",
                 description=f"power kernel with exponents 0.01, 0.5, 1, 2, {word}"),
    )
_add(
    CaseSpec(id="kerple_log_bias.decoding_long", function="kerple_log_bias",
             inputs={"query_positions": Values([4096], "int64"), "key_positions": Values([0, 1, 255, 256, 257, 4095,
                                                                                           4096], "int64"),
                     "r1": Values([1.0, 0.5]), "r2": Values([0.5, 0.01])},
             tolerance="kerple", description="one query at 4096 (bfloat16 distances round above 256)"),
    CaseSpec(id="kerple_log_bias.invalid.head_mismatch", function="kerple_log_bias",
             inputs={"query_positions": Arange(0, 3), "key_positions": Arange(0, 3), "r1": Values([1.0, 1.0]),
                     "r2": Values([0.5])}, expect_error="ValueError", error_match="r1",
             description="r1 and r2 with different head counts"),
    CaseSpec(id="kerple_power_bias.alibi", function="kerple_power_bias",
             inputs={"query_positions": Arange(0, 10), "key_positions": Arange(0, 10),
                     "a": Values([0.5, 0.25, 0.125, 0.0625]), "p": Values([1.0, 1.0, 1.0, 1.0])},
             tolerance="kerple", description="p = 1 with ALiBi's 4-head slopes is causal ALiBi"),
    CaseSpec(id="kerple_power_bias.invalid.exponent", function="kerple_power_bias",
             inputs={"query_positions": Arange(0, 3), "key_positions": Arange(0, 3), "a": Values([1.0]),
                     "p": Values([2.5])}, expect_error="ValueError", error_match="p",
             description="an exponent above 2"),
)
for bidirectional in (False, True):
    word = "bidirectional" if bidirectional else "causal"
    _add(CaseSpec(
        id=f"sandwich_bias.{word}", function="sandwich_bias",
        inputs={"query_positions": Arange(0, 24), "key_positions": Arange(0, 24)},
        params={"dim": 64, "num_heads": 8, "bidirectional": bidirectional}, tolerance="sandwich",
        description=f"head width 64, 8 heads, frequencies from k = 1 (NeMo), {word}",
    ))
_add(
    CaseSpec(id="sandwich_bias.vaswani_frequencies", function="sandwich_bias",
             inputs={"query_positions": Arange(0, 12), "key_positions": Arange(0, 12)},
             params={"dim": 32, "num_heads": 12, "first_frequency": 0}, tolerance="sandwich",
             description="frequencies from k = 0, 12 heads"),
    CaseSpec(id="sandwich_bias.decoding", function="sandwich_bias",
             inputs={"query_positions": Values([255], "int64"),
                     "key_positions": Values([0, 1, 128, 254, 255], "int64")},
             params={"dim": 128, "num_heads": 4}, tolerance="sandwich",
             description="one query at 255 and five of its keys, head width 128"),
    CaseSpec(id="sandwich_bias.long_distance", function="sandwich_bias",
             inputs={"query_positions": Values([100_000], "int64"),
                     "key_positions": Values([0, 1, 50_000, 99_743, 99_999, 100_000], "int64")},
             params={"dim": 64, "num_heads": 4}, tolerance="sandwich",
             description="distances up to 100000: each of the 32 float32 cosines carries its angle error"),
    CaseSpec(id="sandwich_bias.invalid.heads", function="sandwich_bias",
             inputs={"query_positions": Arange(0, 3), "key_positions": Arange(0, 3)},
             params={"dim": 8, "num_heads": 0}, expect_error="ValueError", error_match="num_heads",
             description="zero heads"),
    CaseSpec(id="sandwich_bias.invalid.odd_dim", function="sandwich_bias",
             inputs={"query_positions": Arange(0, 3), "key_positions": Arange(0, 3)},
             params={"dim": 7, "num_heads": 2}, expect_error="ValueError", error_match="dim",
             description="odd sinusoid width"),
)

# -- FIRE, CoPE, NoPE -----------------------------------------------------------------------------

_add(
    CaseSpec(id="fire_normalized_distance.below_threshold", function="fire_normalized_distance",
             inputs={"query_positions": Arange(0, 16), "key_positions": Arange(0, 16)}, tolerance="fire",
             description="16 tokens, all before the threshold 512: normalised by psi(512)"),
    CaseSpec(id="fire_normalized_distance.beyond_threshold", function="fire_normalized_distance",
             inputs={"query_positions": Values([511, 512, 513, 600, 4096], "int64"),
                     "key_positions": Values([0, 1, 511, 590, 600, 4096], "int64")},
             tolerance="fire", description="queries around and beyond L = 512, future keys included"),
    CaseSpec(id="fire_normalized_distance.learned", function="fire_normalized_distance",
             inputs={"query_positions": Arange(100, 108), "key_positions": Arange(0, 108)},
             params={"c": -0.37, "threshold": 64.0}, tolerance="fire",
             description="trained values: negative c (only |c| counts), threshold 64"),
    CaseSpec(id="fire_normalized_distance.invalid.eps", function="fire_normalized_distance",
             inputs={"query_positions": Arange(0, 3), "key_positions": Arange(0, 3)}, params={"eps": 0.0},
             expect_error="ValueError", error_match="eps", description="eps must be positive"),
    CaseSpec(id="fire_bias.k32.h4", function="fire_bias",
             inputs={"query_positions": Arange(0, 12), "key_positions": Arange(0, 12),
                     "w1": Normal((1, 32)), "b1": Normal((32,), 0.1), "w2": Normal((32, 4), 0.2),
                     "b2": Normal((4,), 0.1)},
             tolerance="fire_mlp", description="the paper's MLP width 32, 4 heads, 12 tokens"),
    CaseSpec(id="fire_bias.decoding_long", function="fire_bias",
             inputs={"query_positions": Values([2047], "int64"), "key_positions": Arange(2000, 2048),
                     "w1": Normal((1, 32)), "b1": Normal((32,), 0.1), "w2": Normal((32, 2), 0.2),
                     "b2": Normal((2,), 0.1)},
             params={"threshold": 256.0}, tolerance="fire_mlp",
             description="a query at 2047 beyond the threshold, its 48 nearest keys"),
    CaseSpec(id="fire_bias.invalid.w2", function="fire_bias",
             inputs={"query_positions": Arange(0, 3), "key_positions": Arange(0, 3), "w1": Normal((1, 32)),
                     "b1": Normal((32,)), "w2": Normal((16, 4)), "b2": Normal((4,))},
             expect_error="ValueError", error_match="w2", description="second layer with 16 inputs for 32 units"),
)
_add(
    CaseSpec(id="cope_positions.square", function="cope_positions", inputs={"logits": Normal((2, 3, 6, 6), 2.0)},
             tolerance="cope", description="(B, H, T, T) gate logits"),
    CaseSpec(id="cope_positions.decoding", function="cope_positions", inputs={"logits": Normal((2, 4, 9), 2.0)},
             tolerance="cope", description="the last 4 of 9 positions as queries, future logits ignored"),
    CaseSpec(id="cope_positions.invalid.more_queries", function="cope_positions",
             inputs={"logits": Normal((5, 3))}, expect_error="ValueError", error_match="logits",
             description="T > S"),
    CaseSpec(id="cope_bias.clamped", function="cope_bias",
             inputs={"q": Normal((2, 3, 8, 16)), "position_embeddings": Normal((4, 16)),
                     "logits": Normal((2, 3, 8, 8), 2.0)},
             tolerance="cope", description="a 4-row table: counts beyond 3 are clamped"),
    CaseSpec(id="cope_bias.x_transformers_default", function="cope_bias",
             inputs={"q": Normal((1, 2, 20, 8)), "position_embeddings": Normal((16, 8)),
                     "logits": Normal((1, 2, 20, 20), 2.0)},
             tolerance="cope", description="x-transformers' max_pos 16 over 20 tokens"),
    CaseSpec(id="cope_bias.decoding", function="cope_bias",
             inputs={"q": Normal((2, 3, 8)), "position_embeddings": Normal((12, 8)),
                     "logits": Normal((2, 3, 10), 2.0)},
             tolerance="cope", description="3 queries at the end of 10 positions"),
    CaseSpec(id="cope_bias.invalid.width", function="cope_bias",
             inputs={"q": Normal((3, 8)), "position_embeddings": Normal((4, 6)), "logits": Normal((3, 3))},
             expect_error="ValueError", error_match="q", description="query width differs from the table's"),
    CaseSpec(id="cope_bias.invalid.logits_shape", function="cope_bias",
             inputs={"q": Normal((3, 8)), "position_embeddings": Normal((4, 8)), "logits": Normal((2, 3))},
             expect_error="ValueError", error_match="logits", description="logits for 2 queries, q has 3"),
)
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
