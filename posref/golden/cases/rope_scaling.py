"""RoPE scaling golden cases.

Position interpolation, NTK, dynamic NTK, Qwen's stepwise NTK, YaRN,
DeepSeek, LongRoPE and Llama 3, with the parameters of released models
wherever one exists (Llama 3.1, Llama 3.2, Llama 4 Scout, Qwen2.5,
DeepSeek-V3, Phi-3.5-mini).  Every case targets a place where
implementations are known to disagree or break: the sequence length one
below, at and one above the trained length for the dynamic rules, the
short/long switch of LongRoPE, the truncated and exact YaRN correction
range, and ``low_freq_factor == high_freq_factor`` for Llama 4.
"""

from __future__ import annotations

from posref.golden.registry import Arange, CaseSpec, Values
from posref.golden.strategies import bases, even, lengths, positions_nd, scaling_factors, st, strategy

__all__ = ["CASES", "PHI35_LONG_FACTOR", "PHI35_SHORT_FACTOR"]

CASES: list[CaseSpec] = []


def _add(*specs: CaseSpec) -> None:
    CASES.extend(specs)


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
_add(CaseSpec(
    id="yarn_attention_factor.mscale_only", function="yarn_attention_factor", inputs={},
    params={"scaling_factor": 40.0, "mscale": 0.707}, tolerance="frequency",
    description="an mscale without mscale_all_dim: 0.1 * 0.707 * ln 40 + 1",
))
_add(CaseSpec(
    id="yarn_attention_factor.zero_mscale", function="yarn_attention_factor", inputs={},
    params={"scaling_factor": 16.0, "mscale": 0.0, "mscale_all_dim": 0.707}, tolerance="frequency",
    description="mscale = 0 with an mscale_all_dim: the numerator is 1, 1 / (0.1 * 0.707 * ln 16 + 1)",
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


# -- fuzz strategies -------------------------------------------------------------------------


def small_factors():
    """Factors of the attention-scale rules, below 1 included."""
    return st.one_of(st.sampled_from((0.5, 1.0, 4.0, 16.0, 40.0)), st.floats(0.25, 64.0))


def mscales():
    """YaRN's and DeepSeek's ``mscale`` coefficients."""
    return st.one_of(st.sampled_from((0.0, 0.707, 1.0)), st.floats(0.0, 2.0))


@strategy("linear_scaled_frequencies", tolerance="frequency")
def linear_scaled_frequencies_case(draw, ctx):
    params = {"dim": draw(even(2, 256)), "base": draw(bases()), "scaling_factor": draw(scaling_factors())}
    return ctx.case(draw, {}, params)


@strategy("ntk_scaled_frequencies", tolerance="frequency")
def ntk_scaled_frequencies_case(draw, ctx):
    params = {"dim": draw(even(4, 256)), "base": draw(bases()), "scaling_factor": draw(scaling_factors())}
    return ctx.case(draw, {}, params)


@strategy("dynamic_ntk_frequencies", tolerance="frequency")
def dynamic_ntk_frequencies_case(draw, ctx):
    original = draw(lengths())
    params = {"dim": draw(even(4, 256)), "base": draw(bases()), "scaling_factor": draw(scaling_factors()),
              "original_max_position_embeddings": original,
              "sequence_length": draw(st.one_of(st.integers(1, 4 * original),
                                                st.sampled_from((original, original + 1))))}
    return ctx.case(draw, {}, params)


@strategy("yarn_frequencies", tolerance="frequency")
def yarn_frequencies_case(draw, ctx):
    beta_slow = draw(st.one_of(st.just(1.0), st.floats(0.25, 4.0)))
    params = {"dim": draw(even(2, 256)), "base": draw(bases()), "scaling_factor": draw(scaling_factors()),
              "original_max_position_embeddings": draw(lengths()),
              "beta_fast": beta_slow + draw(st.one_of(st.just(31.0), st.floats(0.5, 64.0))),
              "beta_slow": beta_slow, "truncate": draw(st.booleans()),
              "extrapolation_factor": draw(st.one_of(st.just(1.0), st.floats(0.0, 2.0))),
              "high_limit": draw(st.sampled_from(("dim", "half_dim")))}
    return ctx.case(draw, {}, params)


@strategy("llama3_scaled_frequencies", tolerance="frequency")
def llama3_scaled_frequencies_case(draw, ctx):
    low = draw(st.one_of(st.just(1.0), st.floats(0.25, 4.0)))
    params = {"dim": draw(even(2, 256)), "base": draw(bases()), "scaling_factor": draw(scaling_factors()),
              "low_freq_factor": low, "high_freq_factor": low + draw(st.one_of(st.just(3.0), st.floats(0.0, 8.0))),
              "original_max_position_embeddings": draw(lengths())}
    return ctx.case(draw, {}, params)


@strategy("yarn_attention_factor", tolerance="frequency")
def yarn_attention_factor_case(draw, ctx):
    params = {"scaling_factor": draw(small_factors()), "mscale": draw(st.one_of(st.just(1.0), mscales())),
              "mscale_all_dim": draw(st.one_of(st.just(0.0), mscales())),
              "attention_factor": draw(st.one_of(st.none(), st.floats(0.1, 2.0)))}
    return ctx.case(draw, {}, params)


@strategy("yarn_correction_range", tolerance="yarn_range")  # "exact" when truncate=True, as in the golden cases
def yarn_correction_range_case(draw, ctx):
    beta_slow = draw(st.one_of(st.just(1.0), st.floats(0.25, 4.0)))
    params = {"dim": draw(even(2, 256)), "base": draw(bases()),
              "original_max_position_embeddings": draw(lengths()),
              "beta_fast": beta_slow + draw(st.one_of(st.just(31.0), st.floats(0.5, 64.0))),
              "beta_slow": beta_slow, "truncate": draw(st.booleans()),
              "high_limit": draw(st.sampled_from(("dim", "half_dim")))}
    return ctx.case(draw, {}, params, tolerance="exact" if params["truncate"] else "yarn_range")


@strategy("deepseek_softmax_scale", tolerance="frequency")
def deepseek_softmax_scale_case(draw, ctx):
    params = {"head_dim": draw(st.one_of(st.sampled_from((64, 128, 192)), st.integers(1, 512))),
              "scaling_factor": draw(small_factors()), "mscale_all_dim": draw(mscales())}
    return ctx.case(draw, {}, params)


@strategy("dynamic_linear_frequencies", tolerance="frequency")
def dynamic_linear_frequencies_case(draw, ctx):
    original = draw(lengths())
    params = {"dim": draw(even(2, 256)), "base": draw(bases()), "scaling_factor": draw(scaling_factors()),
              "original_max_position_embeddings": original,
              "sequence_length": draw(st.one_of(st.integers(1, 4 * original),
                                                st.sampled_from((original, original + 1))))}
    return ctx.case(draw, {}, params)


@strategy("ntk_fixed_frequencies", tolerance="frequency")
def ntk_fixed_frequencies_case(draw, ctx):
    params = {"dim": draw(even(4, 256)), "base": draw(bases()), "scaling_factor": draw(scaling_factors()),
              "mixed_b": draw(st.one_of(st.none(), st.sampled_from((0.5, 1.0, 2.0)), st.floats(0.25, 4.0)))}
    return ctx.case(draw, {}, params)


@strategy("qwen_dynamic_ntk_frequencies", tolerance="frequency")
def qwen_dynamic_ntk_frequencies_case(draw, ctx):
    original = draw(lengths())
    params = {"dim": draw(even(4, 256)), "base": draw(bases()), "original_max_position_embeddings": original,
              "sequence_length": draw(st.one_of(st.integers(1, 16 * original),
                                                st.sampled_from((original, original + 1))))}
    return ctx.case(draw, {}, params)


@strategy("dynamic_ntk_sequence_length", tolerance="exact")
def dynamic_ntk_sequence_length_case(draw, ctx):
    original = draw(st.one_of(st.sampled_from((2048, 4096)), st.integers(1, 65_536)))
    params = {"original_max_position_embeddings": original,
              "cached_length": draw(st.one_of(st.none(), st.integers(original, 4 * original))),
              "reset": draw(st.booleans())}
    return ctx.case(draw, {"positions": draw(positions_nd(8 * original))}, params)


@strategy("longrope_frequencies", tolerance="frequency")
def longrope_frequencies_case(draw, ctx):
    dim = draw(even(2, 128))
    factor = st.one_of(st.floats(1.0, 3.0), st.floats(0.5, 64.0))
    original = draw(lengths())
    params = {"dim": dim, "base": draw(bases()),
              "short_factor": draw(st.lists(factor, min_size=dim // 2, max_size=dim // 2)),
              "long_factor": draw(st.lists(factor, min_size=dim // 2, max_size=dim // 2)),
              "original_max_position_embeddings": original,
              "sequence_length": draw(st.one_of(st.integers(1, 32 * original),
                                                st.sampled_from((original, original + 1))))}
    return ctx.case(draw, {}, params)


@strategy("longrope_attention_factor", tolerance="frequency")
def longrope_attention_factor_case(draw, ctx):
    params = {"scaling_factor": draw(small_factors()),
              "original_max_position_embeddings": draw(st.one_of(lengths().filter(lambda n: n > 1),
                                                                 st.integers(2, 16)))}
    return ctx.case(draw, {}, params)
