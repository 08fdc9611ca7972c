"""Differential fuzzing: random cases, shrunk to a minimal failure, with a snippet that reproduces it.

The golden cases pin the places where implementations are known to break.
This module adds cases nobody wrote down: for each spec function a
`hypothesis <https://hypothesis.readthedocs.io>`_ strategy draws a
:class:`~posref.golden.registry.CaseSpec` with small random shapes,
positions from 0 up to about :math:`2^{20}`, and parameters in the ranges
real models use (layouts, bases, head counts 1 to 64, valid T5 bucket
settings, partial rotary widths, scaling factors).  Each drawn case is built
with :func:`~posref.golden.registry.build_case` and run with
:func:`~posref.conformance.runner.run_case`, so it is compared with the
float64 spec under the same error model as the golden case of that function
(:data:`FUZZ_TOLERANCE`).

A case that fails, raises or returns the wrong shape is shrunk by
hypothesis to a minimal one (fewest positions, heads and channels, smallest
positions and parameters that still fail) and reported as one
:class:`~posref.conformance.runner.CaseResult` whose message names the
seed, the case and the error, and whose ``repro`` is a self-contained
Python snippet that rebuilds exactly that case and runs it again.

A case is reproducible from its description alone: every array that is not
written out literally (:class:`~posref.golden.registry.Normal` features,
say) is drawn from a generator seeded by the case id, ``fuzz.<function>.<n>``,
whose ``<n>`` hypothesis draws like any other parameter.  With the same
``seed`` (and the same hypothesis version) a run draws the same cases and
gives the same results.

hypothesis is imported only when fuzzing starts; it ships with posref's
``test`` extra.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from posref._spec import SPEC_FUNCTIONS, spec_functions
from posref._validate import ensure_int, ensure_real
from posref.alibi import alibi_slopes
from posref.conformance.adapter import DEFAULT_ONLY, Adapter, check_options, declared_options
from posref.conformance.runner import FAILING, CaseResult, run_case
from posref.golden.case import LOW_PRECISION_DTYPES
from posref.golden.cases import HARD_POSITIONS
from posref.golden.registry import Arange, CaseSpec, Integers, Normal, Uniform, Values, build_case

__all__ = [
    "FUZZ_FUNCTIONS",
    "FUZZ_TOLERANCE",
    "FuzzResult",
    "MAX_POSITION",
    "SHORT_POSITION",
    "adapter_options",
    "case_strategy",
    "describe_case",
    "draw_counts",
    "fuzz",
    "poorly_covered",
    "repro_snippet",
]

#: Largest position a fuzzed RoPE, sinusoidal, ALiBi, T5 or Shaw case uses (about one million).
MAX_POSITION = 2**20

#: Largest position of a fuzzed xPos case: xPos scales grow like
#: ``zeta ** (position / scale_base)`` and leave float32's range at long
#: positions for small scale bases, which the spec rejects.
SHORT_POSITION = 4096

#: The tolerance class each fuzzed function is compared under: the class of
#: that function's golden cases (:mod:`posref.golden.cases`).
FUZZ_TOLERANCE: dict[str, str] = {
    "rope_frequencies": "frequency",
    "rope_angles": "angle",
    "rope_cos_sin": "cos_sin",
    "apply_rotary": "rotation",
    "apply_rope": "rope",
    "sinusoidal_encoding": "sinusoidal",
    "learned_position_embedding": "gather",
    "alibi_slopes": "linear_bias",
    "alibi_bias": "linear_bias",
    "t5_relative_bucket": "t5_bucket",
    "t5_relative_bias": "t5_bias",
    "shaw_relative_index": "exact",
    "linear_scaled_frequencies": "frequency",
    "ntk_scaled_frequencies": "frequency",
    "dynamic_ntk_frequencies": "frequency",
    "yarn_frequencies": "frequency",
    "llama3_scaled_frequencies": "frequency",
    "apply_xpos": "xpos",
    "apply_mrope": "rope",
    "yarn_attention_factor": "frequency",
    "yarn_correction_range": "yarn_range",  # "exact" when truncate=True, as in the golden cases
    "deepseek_softmax_scale": "frequency",
    "dynamic_linear_frequencies": "frequency",
    "ntk_fixed_frequencies": "frequency",
    "qwen_dynamic_ntk_frequencies": "frequency",
    "dynamic_ntk_sequence_length": "exact",
    "longrope_frequencies": "frequency",
    "longrope_attention_factor": "frequency",
    "xpos_scales": "xpos_scale",
    "fope_frequencies": "frequency",
    "apply_fope": "fope",
    "fourier_features": "fourier",
    "nope": "gather",
    "shaw_relative_embeddings": "gather",
    "shaw_relative_logits": "contraction",
    "shaw_relative_values": "contraction",
    "attention": "softmax",
    "transformer_xl_relative_encoding": "sinusoidal",
    "transformer_xl_scores": "contraction",
    "deberta_log_bucket": "exact",
    "deberta_relative_scores": "contraction",
    "kerple_log_bias": "kerple",
    "kerple_power_bias": "kerple",
    "sandwich_bias": "sandwich",
    "fire_normalized_distance": "fire",
    "fire_bias": "fire_mlp",
    "cope_positions": "cope",
    "cope_bias": "cope",
    "peg": "contraction",
    "sincos_2d_encoding": "sinusoidal",
    "axial_rope_angles": "angle",
    "apply_axial_rope": "rope",
    "mrope_angles": "angle",
    "mrope_position_ids": "exact",
}

#: Every function :func:`fuzz` can draw cases for, in the order it runs them.
FUZZ_FUNCTIONS: tuple[str, ...] = tuple(FUZZ_TOLERANCE)

#: Statuses that make hypothesis look for (and shrink) a failing case.
_FAILING = tuple(FAILING)


def _not_retried(result: CaseResult) -> bool:
    """A hang, or a worker process that died: every retry would cost a timeout or a fresh worker."""
    if result.status == "timeout":
        return True
    return result.status == "crash" and not result.message.startswith(("raised ", "reading its output raised "))

#: Suffix of the description of a case whose options were moved inside the adapter's declaration.
_FITTED = " (options fitted to the adapter's ADAPTER_OPTIONS)"

#: Bases of released models; drawn alongside arbitrary bases in [2, 1e7].
_COMMON_BASES = (10_000.0, 500_000.0, 1_000_000.0, 10.0)


# -- strategies ------------------------------------------------------------------------------


def _strategies(options: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Callable[[], Any]]:
    """Build the strategy of every fuzzed function (imports hypothesis).

    ``options`` is a checked ``ADAPTER_OPTIONS`` declaration
    (``posref.conformance.adapter.check_options``): every drawn case
    keeps inside it (see :func:`_fit_options`).
    """
    from hypothesis import strategies as st

    options = options or {}

    case_number = st.integers(0, 2**32 - 1)

    def even(low: int, high: int):
        return st.integers(low // 2, high // 2).map(lambda k: 2 * k)

    bases = st.one_of(st.sampled_from(_COMMON_BASES), st.floats(2.0, 1e7))
    # the "elementwise" class has no angle term: bases of released models only, no tiny ones
    model_bases = st.one_of(st.sampled_from(_COMMON_BASES[:3]), st.floats(1000.0, 1e7))
    scaling_factors = st.one_of(st.sampled_from((1.0, 2.0, 4.0, 8.0, 16.0, 32.0)), st.floats(1.0, 64.0))
    lengths = st.one_of(st.sampled_from((2048, 4096, 8192, 32_768, 131_072)), st.integers(1, 262_144))

    def position(high: int):
        hard = [p for p in HARD_POSITIONS if p <= high]
        return st.one_of(st.integers(0, min(64, high)), st.sampled_from(hard), st.integers(0, high))

    @st.composite
    def positions_1d(draw, length: int, high: int = MAX_POSITION):
        """``length`` positions: a run ``start, start + 1, ...`` or arbitrary values."""
        if not draw(st.booleans()):
            start = draw(position(max(high - length + 1, 0)))
            return Arange(start, start + length)
        return Values(draw(st.lists(position(high), min_size=length, max_size=length)), "int64")

    @st.composite
    def positions_nd(draw, high: int = MAX_POSITION):
        """Positions of shape (T,) or (B, T)."""
        length = draw(st.integers(1, 8))
        if not draw(st.booleans()):
            return draw(positions_1d(length, high))
        rows = draw(st.integers(1, 3))
        row = st.lists(position(high), min_size=length, max_size=length)
        return Values(draw(st.lists(row, min_size=rows, max_size=rows)), "int64")

    def lead_shape():
        return st.lists(st.integers(1, 3), max_size=2).map(tuple)

    def spec_of(draw, function: str, inputs: dict, params: dict, tolerance: str | None = None) -> CaseSpec:
        """The case, kept inside the declared options, with parameters equal to the spec's defaults left out."""
        params, fitted = _fit_options(function, _without_defaults(function, params), options.get(function, {}),
                                      lambda values: draw(st.sampled_from(values)))
        return CaseSpec(id=f"fuzz.{function}.{draw(case_number)}", function=function, inputs=inputs,
                        params=params, tolerance=tolerance or FUZZ_TOLERANCE[function],
                        description=f"hypothesis differential case for {function}" + (_FITTED if fitted else ""))

    # -- RoPE core ----------------------------------------------------------------------

    @st.composite
    def rope_frequencies_case(draw):
        params = {"dim": draw(even(2, 256)), "base": draw(bases)}
        return spec_of(draw, "rope_frequencies", {}, params)

    @st.composite
    def rope_angles_case(draw):
        inputs = {"positions": draw(positions_nd())}
        params = {"dim": draw(even(2, 128)), "base": draw(bases)}
        return spec_of(draw, "rope_angles", inputs, params)

    @st.composite
    def rope_cos_sin_case(draw):
        inputs = {"positions": draw(positions_nd())}
        params = {"dim": draw(even(2, 128)), "base": draw(bases),
                  "layout": draw(st.sampled_from(("half", "interleaved")))}
        return spec_of(draw, "rope_cos_sin", inputs, params)

    @st.composite
    def apply_rotary_case(draw):
        d = draw(even(2, 128))
        lead, length = draw(lead_shape()), draw(st.integers(1, 8))
        angle_lead = lead if draw(st.booleans()) else ()
        inputs = {"x": Normal(lead + (length, d)),
                  "angles": Normal(angle_lead + (length, d // 2), draw(st.sampled_from((1.0, 3.0, 30.0))))}
        return spec_of(draw, "apply_rotary", inputs, {"layout": draw(st.sampled_from(("half", "interleaved")))})

    @st.composite
    def apply_rope_case(draw):
        d = draw(even(2, 128))
        lead, length = draw(lead_shape()), draw(st.integers(1, 8))
        if len(lead) == 2 and draw(st.booleans()):  # per-sequence positions (B, 1, T)
            row = st.lists(position(MAX_POSITION), min_size=length, max_size=length)
            positions = Values([[r] for r in draw(st.lists(row, min_size=lead[0], max_size=lead[0]))], "int64")
        else:
            positions = draw(positions_1d(length))
        params: dict[str, Any] = {"base": draw(bases), "layout": draw(st.sampled_from(("half", "interleaved")))}
        if draw(st.booleans()):  # partial rotary
            params["rotary_dim"] = draw(even(2, d))
            params["rotated_slice"] = draw(st.sampled_from(("first", "last", "first_pairs")))
            params["freq_denominator"] = draw(st.sampled_from(("rotary_dim", "head_dim")))
        params["position_offset"] = draw(st.one_of(st.just(0), st.integers(0, MAX_POSITION)))
        return spec_of(draw, "apply_rope", {"x": Normal(lead + (length, d)), "positions": positions}, params)

    # -- sinusoidal, learned ------------------------------------------------------------

    @st.composite
    def sinusoidal_encoding_case(draw):
        inputs = {"positions": draw(positions_nd())}
        params = {"dim": draw(even(2, 128)), "base": draw(bases),
                  "layout": draw(st.sampled_from(("interleaved", "concat"))),
                  "freq_denominator": draw(st.sampled_from(("dim", "half_dim_minus_one"))),
                  "position_offset": draw(st.one_of(st.just(0), st.integers(0, 1024)))}
        return spec_of(draw, "sinusoidal_encoding", inputs, params)

    @st.composite
    def learned_position_embedding_case(draw):
        rows, width = draw(st.integers(1, 64)), draw(st.integers(1, 16))
        offset = draw(st.integers(0, min(3, rows - 1)))
        count = draw(st.integers(1, 8))
        positions = draw(st.lists(st.integers(-offset, rows - 1 - offset), min_size=count, max_size=count))
        params = {"position_offset": offset, "padding_idx": draw(st.one_of(st.none(), st.integers(0, rows - 1)))}
        inputs = {"table": Normal((rows, width)), "positions": Values(positions, "int64")}
        return spec_of(draw, "learned_position_embedding", inputs, params)

    # -- ALiBi, T5, Shaw ----------------------------------------------------------------

    @st.composite
    def alibi_slopes_case(draw):
        params = {"num_heads": draw(st.integers(1, 64)), "rule": draw(st.sampled_from(("paper", "mpt"))),
                  "max_bias": draw(st.one_of(st.just(8.0), st.floats(1.0, 16.0)))}
        return spec_of(draw, "alibi_slopes", {}, params)

    @st.composite
    def alibi_bias_case(draw):
        heads = draw(st.integers(1, 64))
        slopes = alibi_slopes(heads, rule=draw(st.sampled_from(("paper", "mpt"))),
                              max_bias=draw(st.one_of(st.just(8.0), st.floats(1.0, 16.0))))
        inputs = {"slopes": Values(slopes.tolist()),
                  "query_positions": draw(positions_1d(draw(st.integers(1, 8)))),
                  "key_positions": draw(positions_1d(draw(st.integers(1, 12))))}
        params = {"form": draw(st.sampled_from(("distance", "symmetric", "key_index", "last_key_anchored"))),
                  "causal": draw(st.booleans()),
                  "scale": draw(st.one_of(st.just(1.0), st.sampled_from((0.125, 1 / math.sqrt(128))),
                                          st.floats(0.01, 2.0)))}
        return spec_of(draw, "alibi_bias", inputs, params)

    @st.composite
    def t5_options(draw):
        bidirectional = draw(st.booleans())
        num_buckets = draw(even(4, 128)) if bidirectional else draw(st.integers(2, 128))
        max_exact = (num_buckets // 2 if bidirectional else num_buckets) // 2
        max_distance = draw(st.one_of(st.sampled_from((128, 256)).filter(lambda m: m > max_exact),
                                      st.integers(max_exact + 1, 4096)))
        return {"bidirectional": bidirectional, "num_buckets": num_buckets, "max_distance": max_distance}

    @st.composite
    def t5_relative_bucket_case(draw):
        if draw(st.booleans()):
            count = draw(st.integers(1, 32))
            signed = st.one_of(st.integers(-64, 64), st.integers(-MAX_POSITION, MAX_POSITION))
            relative = Values(draw(st.lists(signed, min_size=count, max_size=count)), "int64")
        else:
            half = draw(st.integers(0, 300))
            relative = Arange(-half, half + 1)
        return spec_of(draw, "t5_relative_bucket", {"relative_position": relative}, draw(t5_options()))

    @st.composite
    def t5_relative_bias_case(draw):
        options = draw(t5_options())
        inputs = {"table": Normal((options["num_buckets"], draw(st.integers(1, 16)))),
                  "query_positions": draw(positions_1d(draw(st.integers(1, 8)))),
                  "key_positions": draw(positions_1d(draw(st.integers(1, 12))))}
        return spec_of(draw, "t5_relative_bias", inputs, options)

    @st.composite
    def shaw_relative_index_case(draw):
        inputs = {"query_positions": draw(positions_1d(draw(st.integers(1, 8)))),
                  "key_positions": draw(positions_1d(draw(st.integers(1, 12))))}
        params = {"max_relative_position": draw(st.one_of(st.integers(1, 64), st.integers(1, MAX_POSITION)))}
        return spec_of(draw, "shaw_relative_index", inputs, params)

    # -- RoPE scaling rules -------------------------------------------------------------

    @st.composite
    def linear_scaled_frequencies_case(draw):
        params = {"dim": draw(even(2, 256)), "base": draw(bases), "scaling_factor": draw(scaling_factors)}
        return spec_of(draw, "linear_scaled_frequencies", {}, params)

    @st.composite
    def ntk_scaled_frequencies_case(draw):
        params = {"dim": draw(even(4, 256)), "base": draw(bases), "scaling_factor": draw(scaling_factors)}
        return spec_of(draw, "ntk_scaled_frequencies", {}, params)

    @st.composite
    def dynamic_ntk_frequencies_case(draw):
        original = draw(lengths)
        params = {"dim": draw(even(4, 256)), "base": draw(bases), "scaling_factor": draw(scaling_factors),
                  "original_max_position_embeddings": original,
                  "sequence_length": draw(st.one_of(st.integers(1, 4 * original),
                                                    st.sampled_from((original, original + 1))))}
        return spec_of(draw, "dynamic_ntk_frequencies", {}, params)

    @st.composite
    def yarn_frequencies_case(draw):
        beta_slow = draw(st.one_of(st.just(1.0), st.floats(0.25, 4.0)))
        params = {"dim": draw(even(2, 256)), "base": draw(bases), "scaling_factor": draw(scaling_factors),
                  "original_max_position_embeddings": draw(lengths),
                  "beta_fast": beta_slow + draw(st.one_of(st.just(31.0), st.floats(0.5, 64.0))),
                  "beta_slow": beta_slow, "truncate": draw(st.booleans()),
                  "extrapolation_factor": draw(st.one_of(st.just(1.0), st.floats(0.0, 2.0))),
                  "high_limit": draw(st.sampled_from(("dim", "half_dim")))}
        return spec_of(draw, "yarn_frequencies", {}, params)

    @st.composite
    def llama3_scaled_frequencies_case(draw):
        low = draw(st.one_of(st.just(1.0), st.floats(0.25, 4.0)))
        params = {"dim": draw(even(2, 256)), "base": draw(bases), "scaling_factor": draw(scaling_factors),
                  "low_freq_factor": low, "high_freq_factor": low + draw(st.one_of(st.just(3.0), st.floats(0.0, 8.0))),
                  "original_max_position_embeddings": draw(lengths)}
        return spec_of(draw, "llama3_scaled_frequencies", {}, params)

    # -- xPos, M-RoPE -------------------------------------------------------------------

    @st.composite
    def apply_xpos_case(draw):
        d = draw(even(2, 128))
        lead, length = draw(lead_shape()), draw(st.integers(1, 8))
        positions = draw(positions_1d(length, SHORT_POSITION))
        largest = int(np.max(positions.draw(np.random.default_rng(0))))
        params = {"base": draw(model_bases), "scale_base": draw(st.one_of(st.just(512.0), st.floats(8.0, 4096.0))),
                  "layout": draw(st.sampled_from(("interleaved", "half"))), "downscale": draw(st.booleans()),
                  "centering": draw(st.sampled_from(("ceil_half", "floor_half", "none"))),
                  "sequence_length": draw(st.one_of(st.none(), st.integers(largest + 1, 2 * SHORT_POSITION)))}
        return spec_of(draw, "apply_xpos", {"x": Normal(lead + (length, d)), "positions": positions}, params)

    @st.composite
    def apply_mrope_case(draw):
        d = draw(even(2, 128))
        half = d // 2
        lead, length = draw(lead_shape()), draw(st.integers(1, 8))
        interleaved = draw(st.booleans())
        if interleaved:  # height takes pairs 1, 4, 7, ... and width 2, 5, 8, ... below half
            height, width = draw(st.integers(0, (half + 1) // 3)), draw(st.integers(0, half // 3))
        else:
            height = draw(st.integers(0, half))
            width = draw(st.integers(0, half - height))
        row = st.lists(position(MAX_POSITION), min_size=length, max_size=length)
        positions = Values(draw(st.lists(row, min_size=3, max_size=3)), "int64")  # (3, T)
        params = {"base": draw(model_bases), "mrope_section": [half - height - width, height, width],
                  "interleaved": interleaved, "layout": draw(st.sampled_from(("half", "interleaved")))}
        return spec_of(draw, "apply_mrope", {"x": Normal(lead + (length, d)), "positions": positions}, params)

    # -- more RoPE scaling rules --------------------------------------------------------

    small_factors = st.one_of(st.sampled_from((0.5, 1.0, 4.0, 16.0, 40.0)), st.floats(0.25, 64.0))
    mscales = st.one_of(st.sampled_from((0.0, 0.707, 1.0)), st.floats(0.0, 2.0))

    @st.composite
    def yarn_attention_factor_case(draw):
        params = {"scaling_factor": draw(small_factors), "mscale": draw(st.one_of(st.just(1.0), mscales)),
                  "mscale_all_dim": draw(st.one_of(st.just(0.0), mscales)),
                  "attention_factor": draw(st.one_of(st.none(), st.floats(0.1, 2.0)))}
        return spec_of(draw, "yarn_attention_factor", {}, params)

    @st.composite
    def yarn_correction_range_case(draw):
        beta_slow = draw(st.one_of(st.just(1.0), st.floats(0.25, 4.0)))
        params = {"dim": draw(even(2, 256)), "base": draw(bases),
                  "original_max_position_embeddings": draw(lengths),
                  "beta_fast": beta_slow + draw(st.one_of(st.just(31.0), st.floats(0.5, 64.0))),
                  "beta_slow": beta_slow, "truncate": draw(st.booleans()),
                  "high_limit": draw(st.sampled_from(("dim", "half_dim")))}
        return spec_of(draw, "yarn_correction_range", {}, params,
                       tolerance="exact" if params["truncate"] else "yarn_range")

    @st.composite
    def deepseek_softmax_scale_case(draw):
        params = {"head_dim": draw(st.one_of(st.sampled_from((64, 128, 192)), st.integers(1, 512))),
                  "scaling_factor": draw(small_factors), "mscale_all_dim": draw(mscales)}
        return spec_of(draw, "deepseek_softmax_scale", {}, params)

    @st.composite
    def dynamic_linear_frequencies_case(draw):
        original = draw(lengths)
        params = {"dim": draw(even(2, 256)), "base": draw(bases), "scaling_factor": draw(scaling_factors),
                  "original_max_position_embeddings": original,
                  "sequence_length": draw(st.one_of(st.integers(1, 4 * original),
                                                    st.sampled_from((original, original + 1))))}
        return spec_of(draw, "dynamic_linear_frequencies", {}, params)

    @st.composite
    def ntk_fixed_frequencies_case(draw):
        params = {"dim": draw(even(4, 256)), "base": draw(bases), "scaling_factor": draw(scaling_factors),
                  "mixed_b": draw(st.one_of(st.none(), st.sampled_from((0.5, 1.0, 2.0)), st.floats(0.25, 4.0)))}
        return spec_of(draw, "ntk_fixed_frequencies", {}, params)

    @st.composite
    def qwen_dynamic_ntk_frequencies_case(draw):
        original = draw(lengths)
        params = {"dim": draw(even(4, 256)), "base": draw(bases), "original_max_position_embeddings": original,
                  "sequence_length": draw(st.one_of(st.integers(1, 16 * original),
                                                    st.sampled_from((original, original + 1))))}
        return spec_of(draw, "qwen_dynamic_ntk_frequencies", {}, params)

    @st.composite
    def dynamic_ntk_sequence_length_case(draw):
        original = draw(st.one_of(st.sampled_from((2048, 4096)), st.integers(1, 65_536)))
        params = {"original_max_position_embeddings": original,
                  "cached_length": draw(st.one_of(st.none(), st.integers(original, 4 * original))),
                  "reset": draw(st.booleans())}
        return spec_of(draw, "dynamic_ntk_sequence_length", {"positions": draw(positions_nd(8 * original))}, params)

    @st.composite
    def longrope_frequencies_case(draw):
        dim = draw(even(2, 128))
        factor = st.one_of(st.floats(1.0, 3.0), st.floats(0.5, 64.0))
        original = draw(lengths)
        params = {"dim": dim, "base": draw(bases),
                  "short_factor": draw(st.lists(factor, min_size=dim // 2, max_size=dim // 2)),
                  "long_factor": draw(st.lists(factor, min_size=dim // 2, max_size=dim // 2)),
                  "original_max_position_embeddings": original,
                  "sequence_length": draw(st.one_of(st.integers(1, 32 * original),
                                                    st.sampled_from((original, original + 1))))}
        return spec_of(draw, "longrope_frequencies", {}, params)

    @st.composite
    def longrope_attention_factor_case(draw):
        params = {"scaling_factor": draw(small_factors),
                  "original_max_position_embeddings": draw(st.one_of(lengths.filter(lambda n: n > 1),
                                                                     st.integers(2, 16)))}
        return spec_of(draw, "longrope_attention_factor", {}, params)

    # -- xPos scales, FoPE, Fourier features, NoPE --------------------------------------

    @st.composite
    def xpos_scales_case(draw):
        positions = draw(positions_nd(SHORT_POSITION))
        largest = int(np.max(positions.draw(np.random.default_rng(0))))
        params = {"dim": draw(even(2, 128)),
                  "scale_base": draw(st.one_of(st.just(512.0), st.floats(8.0, 4096.0))),
                  "centering": draw(st.sampled_from(("ceil_half", "floor_half", "none"))),
                  "downscale": draw(st.booleans()),
                  "sequence_length": draw(st.one_of(st.none(), st.integers(largest + 1, 2 * SHORT_POSITION)))}
        return spec_of(draw, "xpos_scales", {"positions": positions}, params)

    fope_lengths = st.one_of(st.sampled_from((512, 2048, 4096)), st.integers(1, 65_536))

    @st.composite
    def fope_frequencies_case(draw):
        params = {"dim": draw(even(2, 256)), "base": draw(model_bases), "max_sequence_length": draw(fope_lengths),
                  "floor_ratio": draw(st.one_of(st.just(1.0), st.floats(0.0, 4.0)))}
        return spec_of(draw, "fope_frequencies", {}, params)

    @st.composite
    def apply_fope_case(draw):
        from posref import fope_frequencies

        d = draw(even(2, 64))
        params = {"base": draw(model_bases), "max_sequence_length": draw(fope_lengths),
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
        return spec_of(draw, "apply_fope", inputs, params)

    @st.composite
    def fourier_features_case(draw):
        positions = Integers((draw(st.integers(1, 8)),), 0, draw(st.sampled_from((16, 1024, 65_536))))
        params = {"num_frequencies": draw(st.integers(1, 16)),
                  "period": draw(st.one_of(st.sampled_from((32.0, 100.0)), st.floats(1.0, 1e5))),
                  "include_sine": draw(st.booleans())}
        return spec_of(draw, "fourier_features", {"positions": positions}, params)

    @st.composite
    def nope_case(draw):
        lead, length = draw(lead_shape()), draw(st.integers(1, 8))
        inputs = {"x": Normal(lead + (length, draw(st.integers(1, 64)))), "positions": draw(positions_1d(length))}
        return spec_of(draw, "nope", inputs, {})

    # -- relative schemes: Shaw, Transformer-XL, DeBERTa, KERPLE, Sandwich, FIRE, CoPE ------

    @st.composite
    def query_key_positions(draw, high: int = MAX_POSITION):
        return {"query_positions": draw(positions_1d(draw(st.integers(1, 8)), high)),
                "key_positions": draw(positions_1d(draw(st.integers(1, 12)), high))}

    @st.composite
    def shaw_relative_embeddings_case(draw):
        k = draw(st.one_of(st.integers(1, 8), st.integers(1, 64)))
        inputs = {"table": Normal((2 * k + 1, draw(st.integers(1, 16)))), **draw(query_key_positions())}
        return spec_of(draw, "shaw_relative_embeddings", inputs, {"max_relative_position": k})

    @st.composite
    def shaw_relative_logits_case(draw):
        lead, tq, tk, d = draw(lead_shape()), draw(st.integers(1, 8)), draw(st.integers(1, 8)), draw(st.integers(1, 32))
        inputs = {"q": Normal(lead + (tq, d)), "k": Normal(lead + (tk, d)), "relative_keys": Normal((tq, tk, d))}
        return spec_of(draw, "shaw_relative_logits", inputs, {})

    @st.composite
    def shaw_relative_values_case(draw):
        lead, tq, tk, d = draw(lead_shape()), draw(st.integers(1, 8)), draw(st.integers(1, 8)), draw(st.integers(1, 32))
        inputs = {"weights": Uniform(lead + (tq, tk), 0.0, 1.0), "v": Normal(lead + (tk, d)),
                  "relative_values": Normal((tq, tk, d))}
        return spec_of(draw, "shaw_relative_values", inputs, {})

    @st.composite
    def attention_case(draw):
        causal = draw(st.booleans())
        lead, tq = draw(lead_shape()), draw(st.integers(1, 8))
        tk = tq + draw(st.integers(0, 4)) if causal else draw(st.integers(1, 8))  # no query without a key
        heads, d, dv = draw(st.integers(1, 3)), draw(st.integers(1, 32)), draw(st.integers(1, 32))
        inputs = {"q": Normal(lead + (heads, tq, d)), "k": Normal(lead + (heads, tk, d)),
                  "v": Normal(lead + (heads, tk, dv))}
        if draw(st.booleans()):
            inputs["bias"] = Normal((heads, tq, tk), draw(st.sampled_from((1.0, 4.0))))
        if causal and draw(st.booleans()):  # explicit positions: every query sees at least key 0
            inputs["query_positions"] = Values(sorted(draw(st.lists(st.integers(0, 64), min_size=tq,
                                                                    max_size=tq))), "int64")
            inputs["key_positions"] = Values([0] + sorted(draw(st.lists(st.integers(0, 64), min_size=tk - 1,
                                                                        max_size=tk - 1))), "int64")
        if draw(st.booleans()):
            inputs["relative_keys"] = Normal((tq, tk, d), 0.5)
        if draw(st.booleans()):
            inputs["relative_values"] = Normal((tq, tk, dv), 0.5)
        params = {"causal": causal, "scale": draw(st.one_of(st.none(), st.floats(0.01, 2.0)))}
        return spec_of(draw, "attention", inputs, params)

    @st.composite
    def transformer_xl_relative_encoding_case(draw):
        shape = draw(st.sampled_from(((8,), (3, 4), (1,))))
        high = draw(st.sampled_from((16, 4096, 131_072)))
        params = {"dim": draw(even(2, 128)), "base": draw(st.one_of(st.just(10_000.0), st.floats(100.0, 1e6))),
                  "max_distance": draw(st.one_of(st.none(), st.integers(1, high)))}
        return spec_of(draw, "transformer_xl_relative_encoding", {"distances": Integers(shape, 0, high)}, params)

    @st.composite
    def transformer_xl_scores_case(draw):
        lead, heads, d = draw(lead_shape()), draw(st.integers(1, 3)), draw(st.integers(1, 32))
        tq = draw(st.integers(1, 6))
        tk = tq + draw(st.integers(0, 6))
        inputs = {"q": Normal(lead + (heads, tq, d)), "k": Normal(lead + (heads, tk, d)), "r": Normal((heads, tk, d)),
                  "u": Normal((heads, d), 0.5), "v": Normal((heads, d), 0.5)}
        params = {"scale": draw(st.one_of(st.none(), st.just(1.0), st.floats(0.01, 2.0))),
                  "future_keys": draw(st.sampled_from(("mask", "zero")))}
        return spec_of(draw, "transformer_xl_scores", inputs, params)

    @st.composite
    def deberta_options(draw):
        bucket_size = draw(st.one_of(st.sampled_from((4, 256)), st.integers(2, 512)))
        max_position = draw(st.one_of(st.just(512), st.integers(bucket_size // 2 + 2, 4096))
                            .filter(lambda m: m > bucket_size // 2 + 1))
        return {"bucket_size": bucket_size, "max_position": max_position}

    @st.composite
    def deberta_log_bucket_case(draw):
        count = draw(st.integers(1, 32))
        signed = st.one_of(st.integers(-64, 64), st.integers(-4096, 4096), st.integers(-MAX_POSITION, MAX_POSITION))
        relative = Values(draw(st.lists(signed, min_size=count, max_size=count)), "int64")
        return spec_of(draw, "deberta_log_bucket", {"relative_position": relative}, draw(deberta_options()))

    @st.composite
    def deberta_relative_scores_case(draw):
        if draw(st.booleans()):
            params: dict[str, Any] = draw(deberta_options())
            span = params["bucket_size"]
        else:
            span = draw(st.integers(1, 32))
            params = {"bucket_size": None, "max_position": span}
        c2p, p2c = draw(st.sampled_from(((True, True), (True, False), (False, True))))
        params.update(c2p=c2p, p2c=p2c)
        lead, heads, d = draw(lead_shape()), draw(st.integers(1, 3)), draw(st.integers(1, 16))
        tq, tk = draw(st.integers(1, 6)), draw(st.integers(1, 6))
        table = Normal((heads, 2 * span, d))
        inputs = {"q": Normal(lead + (heads, tq, d)), "k": Normal(lead + (heads, tk, d)),
                  "pos_key": table if c2p else None, "pos_query": table if p2c else None,
                  "query_positions": draw(positions_1d(tq, 4096)), "key_positions": draw(positions_1d(tk, 4096))}
        inputs = {name: value for name, value in inputs.items() if value is not None}
        if not c2p:
            params["pos_key"] = None
        if not p2c:
            params["pos_query"] = None
        return spec_of(draw, "deberta_relative_scores", inputs, params)

    @st.composite
    def kerple_log_bias_case(draw):
        heads = draw(st.integers(1, 8))
        inputs = {**draw(query_key_positions(131_072)), "r1": Uniform((heads,), 0.01, 2.0),
                  "r2": Uniform((heads,), 0.01, 1.0)}
        return spec_of(draw, "kerple_log_bias", inputs, {"bidirectional": draw(st.booleans())})

    @st.composite
    def kerple_power_bias_case(draw):
        heads = draw(st.integers(1, 8))
        inputs = {**draw(query_key_positions(131_072)), "a": Uniform((heads,), 0.01, 2.0),
                  "p": Values(draw(st.lists(st.one_of(st.sampled_from((0.5, 1.0, 2.0)), st.floats(0.01, 2.0)),
                                            min_size=heads, max_size=heads)))}
        return spec_of(draw, "kerple_power_bias", inputs, {"bidirectional": draw(st.booleans())})

    @st.composite
    def sandwich_bias_case(draw):
        params = {"dim": draw(even(2, 128)), "num_heads": draw(st.integers(1, 16)), "base": draw(model_bases),
                  "first_frequency": draw(st.sampled_from((1, 0))), "bidirectional": draw(st.booleans())}
        return spec_of(draw, "sandwich_bias", draw(query_key_positions(131_072)), params)

    fire_options = {"c": st.one_of(st.just(0.1), st.floats(-0.5, 2.0)),
                    "threshold": st.one_of(st.just(512.0), st.floats(1.0, 4096.0)),
                    "eps": st.one_of(st.just(1e-6), st.floats(1e-8, 1e-2))}

    @st.composite
    def fire_normalized_distance_case(draw):
        params = {name: draw(strategy) for name, strategy in fire_options.items()}
        return spec_of(draw, "fire_normalized_distance", draw(query_key_positions(65_536)), params)

    @st.composite
    def fire_bias_case(draw):
        hidden, heads = draw(st.integers(1, 32)), draw(st.integers(1, 8))
        inputs = {**draw(query_key_positions(65_536)), "w1": Normal((1, hidden)), "b1": Normal((hidden,), 0.1),
                  "w2": Normal((hidden, heads), 0.2), "b2": Normal((heads,), 0.1)}
        params = {name: draw(strategy) for name, strategy in fire_options.items()}
        return spec_of(draw, "fire_bias", inputs, params)

    @st.composite
    def cope_positions_case(draw):
        lead, tq = draw(lead_shape()), draw(st.integers(1, 8))
        return spec_of(draw, "cope_positions", {"logits": Normal(lead + (tq, tq + draw(st.integers(0, 8))), 2.0)}, {})

    @st.composite
    def cope_bias_case(draw):
        lead, tq, d = draw(lead_shape()), draw(st.integers(1, 8)), draw(st.integers(1, 16))
        inputs = {"q": Normal(lead + (tq, d)), "position_embeddings": Normal((draw(st.integers(1, 16)), d)),
                  "logits": Normal(lead + (tq, tq + draw(st.integers(0, 8))), 2.0)}
        return spec_of(draw, "cope_bias", inputs, {})

    # -- conditional (PEG) and multi-axis encodings -------------------------------------

    @st.composite
    def peg_case(draw):
        rows, cols, channels = draw(st.integers(1, 6)), draw(st.integers(1, 6)), draw(st.integers(1, 8))
        kernel = draw(st.sampled_from((1, 3, 5, 7)))
        class_token = draw(st.booleans())
        inputs = {"tokens": Normal((draw(st.integers(1, 2)), rows * cols + class_token, channels)),
                  "weight": Normal((channels, 1, kernel, kernel), 0.3), "bias": Normal((channels,), 0.1)}
        return spec_of(draw, "peg", inputs, {"grid_shape": [rows, cols], "has_class_token": class_token})

    @st.composite
    def sincos_2d_encoding_case(draw):
        params = {"grid_shape": [draw(st.integers(1, 16)), draw(st.integers(1, 16))],
                  "dim": 4 * draw(st.integers(1, 64)), "base": draw(model_bases),
                  "axis_order": draw(st.sampled_from(("xy", "yx"))),
                  "grouping": draw(st.sampled_from(("axis", "sin_cos"))), "class_token": draw(st.booleans())}
        return spec_of(draw, "sincos_2d_encoding", {}, params)

    @st.composite
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

    @st.composite
    def axial_rope_angles_case(draw):
        params = {"dim": 4 * draw(st.integers(1, 32)), "base": draw(st.one_of(st.just(100.0), model_bases)),
                  "axis_order": draw(st.sampled_from(("xy", "yx"))),
                  "frequencies": draw(st.sampled_from(("per_axis", "even_odd")))}
        return spec_of(draw, "axial_rope_angles", {"positions_2d": draw(coordinates())}, params)

    @st.composite
    def apply_axial_rope_case(draw):
        positions = draw(coordinates())
        length = int(np.asarray(positions.draw(np.random.default_rng(0))).shape[-1])
        d = 4 * draw(st.integers(1, 32))
        params = {"base": draw(st.one_of(st.just(100.0), model_bases)),
                  "axis_order": draw(st.sampled_from(("xy", "yx"))),
                  "frequencies": draw(st.sampled_from(("per_axis", "even_odd"))),
                  "layout": draw(st.sampled_from(("interleaved", "half")))}
        inputs = {"x": Normal(draw(lead_shape()) + (length, d)), "positions_2d": positions}
        return spec_of(draw, "apply_axial_rope", inputs, params)

    @st.composite
    def mrope_options(draw, d: int):
        half = d // 2
        interleaved = draw(st.booleans())
        if interleaved:
            height, width = draw(st.integers(0, (half + 1) // 3)), draw(st.integers(0, half // 3))
        else:
            height = draw(st.integers(0, half))
            width = draw(st.integers(0, half - height))
        return {"base": draw(model_bases), "mrope_section": [half - height - width, height, width],
                "interleaved": interleaved}

    @st.composite
    def mrope_angles_case(draw):
        d, length = draw(even(2, 128)), draw(st.integers(1, 8))
        row = st.lists(position(MAX_POSITION), min_size=length, max_size=length)
        positions = Values(draw(st.lists(row, min_size=3, max_size=3)), "int64")
        return spec_of(draw, "mrope_angles", {"positions": positions}, {"dim": d, **draw(mrope_options(d))})

    @st.composite
    def mrope_position_ids_case(draw):
        merge = draw(st.sampled_from((1, 2, 2, 3)))
        text = st.integers(0, 6)
        vision = st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4)).map(
            lambda thw: [thw[0], thw[1] * merge, thw[2] * merge])
        segments = draw(st.lists(st.one_of(text, vision), min_size=1, max_size=4))
        return spec_of(draw, "mrope_position_ids", {}, {"segments": segments, "spatial_merge_size": merge})

    namespace = locals()
    return {name: namespace[f"{name}_case"] for name in FUZZ_FUNCTIONS}


def _without_defaults(function: str, params: dict[str, Any]) -> dict[str, Any]:
    """Drop keyword parameters equal to the spec function's default.

    An adapter that lacks a rarely used option then still runs every case
    that does not need it.
    """
    signature = inspect.signature(SPEC_FUNCTIONS[function].function)
    kept = {}
    for name, value in params.items():
        parameter = signature.parameters[name]
        if parameter.kind is parameter.KEYWORD_ONLY and parameter.default is not parameter.empty:
            default = parameter.default
            if value is default or (type(value) is type(default) and value == default):
                continue
        kept[name] = value
    return kept


def _default_of(function: str, option: str) -> Any:
    return inspect.signature(SPEC_FUNCTIONS[function].function).parameters[option].default


def _fit_options(function: str, params: dict[str, Any], declared: Mapping[str, Any],
                 choose: Callable[[list], Any]) -> tuple[dict[str, Any], bool]:
    """``params`` (defaults left out) moved inside the declared options of ``function``; whether any moved.

    An option declared :data:`~posref.conformance.adapter.DEFAULT_ONLY` is
    left out (the spec's default); one declared with a list of values whose
    drawn value is not among them gets one of them, picked by ``choose``.
    """
    params = dict(params)
    fitted = False
    for option, allowed in declared.items():
        if allowed == DEFAULT_ONLY:
            if option in params:
                del params[option]
                fitted = True
            continue
        value = params.get(option, _default_of(function, option))
        key = tuple(value) if isinstance(value, list) else value
        if not any(_same_value(key, a) for a in allowed):
            picked = choose(list(allowed))
            params[option] = list(picked) if isinstance(picked, tuple) else picked
            fitted = True
    return _without_defaults(function, params), fitted


def _same_value(value: Any, allowed: Any) -> bool:
    """Equality of option values where a bool is not the number 1 (``True == 1`` in Python)."""
    if isinstance(value, bool) or isinstance(allowed, bool):
        return value is allowed
    if isinstance(value, tuple) and isinstance(allowed, tuple):
        return len(value) == len(allowed) and all(_same_value(v, a) for v, a in zip(value, allowed))
    try:
        return bool(value == allowed)
    except Exception:  # pragma: no cover - arrays and other exotic values
        return False


def _fits(function: str, params: Mapping[str, Any], declared: Mapping[str, Any]) -> bool:
    """Whether a case's parameters (defaults left out) keep inside the declared options."""
    for option, allowed in declared.items():
        if allowed == DEFAULT_ONLY:
            if option in params:
                return False
            continue
        value = params.get(option, _default_of(function, option))
        key = tuple(value) if isinstance(value, list) else value
        if not any(_same_value(key, a) for a in allowed):
            return False
    return True


def adapter_options(adapter: Adapter) -> dict[str, dict[str, Any]]:
    """The options ``adapter`` declares (``ADAPTER_OPTIONS``), checked; ``{}`` when it declares none.

    A loaded adapter carries them in ``adapter.options``; an
    :class:`~posref.conformance.adapter.Adapter` built in code with an
    empty ``options`` is read from its target's ``ADAPTER_OPTIONS``.

    Raises
    ------
    TypeError, ValueError
        If the declaration is malformed (see
        ``posref.conformance.adapter.check_options``); the message
        names the adapter, the function and the option.
    """
    if not isinstance(adapter, Adapter):
        raise TypeError(f"adapter must be a posref.conformance.adapter.Adapter (see load_adapter), "
                        f"got {type(adapter).__name__}")
    if adapter.options:
        return check_options(adapter.source, adapter.options)
    return declared_options(adapter.source, adapter.target)


def case_strategy(function: str, options: Mapping[str, Mapping[str, Any]] | None = None):
    """The hypothesis strategy drawing :class:`~posref.golden.registry.CaseSpec` for ``function``.

    Parameters
    ----------
    function : str
        One of :data:`FUZZ_FUNCTIONS`.
    options : dict or None
        An ``ADAPTER_OPTIONS`` declaration (see
        ``posref.conformance.adapter.check_options``); every case
        drawn keeps inside it.  ``None``: no restriction.

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Draws valid cases with ids ``fuzz.<function>.<n>`` and the tolerance
        class of :data:`FUZZ_TOLERANCE`.

    Raises
    ------
    ValueError
        If ``function`` has no strategy, or ``options`` is malformed.
    TypeError
        If ``options`` has the wrong type.
    ImportError
        If hypothesis is not installed.
    """
    if function not in FUZZ_TOLERANCE:
        raise ValueError(f"function must be one of {', '.join(FUZZ_FUNCTIONS)}, got function={function!r}")
    checked = {} if options is None else check_options("<options>", options)
    _require_hypothesis()
    return _strategies(checked)[function]()


def _require_hypothesis() -> None:
    try:
        import hypothesis  # noqa: F401
    except ImportError as exc:  # pragma: no cover - hypothesis ships with the test extra
        raise ImportError(
            "fuzzing needs hypothesis: pip install 'posref[test]' (or pip install hypothesis)"
        ) from exc


# -- describing and reproducing a case --------------------------------------------------------


def _describe_input(description) -> str:
    if isinstance(description, Values):
        array = np.asarray(description.values)
        if array.size <= 8:
            return repr(np.asarray(description.values).tolist())
        return f"{description.dtype} {array.shape} in [{array.min()}, {array.max()}]"
    if isinstance(description, Arange):
        return f"arange({description.start}, {description.stop})"
    if isinstance(description, Normal):
        return f"normal{description.shape}" + (f" x {description.scale:g}" if description.scale != 1.0 else "")
    return repr(description)


def describe_case(spec: CaseSpec) -> str:
    """A one-line, call-like description of a case for messages.

    Short literal inputs are written out, longer ones summarised by dtype,
    shape and range; the exact case is in the repro snippet.

    Examples
    --------
    >>> from posref.golden.registry import Arange, CaseSpec, Normal
    >>> describe_case(CaseSpec(id="fuzz.apply_rope.0", function="apply_rope",
    ...                        inputs={"x": Normal((1, 2)), "positions": Arange(0, 1)},
    ...                        params={"layout": "interleaved"}))
    "apply_rope(x=normal(1, 2), positions=arange(0, 1), layout='interleaved')"
    """
    parts = [f"{name}={_describe_input(d)}" for name, d in spec.inputs.items()]
    parts += [f"{name}={value!r}" for name, value in spec.params.items()]
    return f"{spec.function}({', '.join(parts)})"


def _source_of(spec: CaseSpec) -> str:
    """Python source that rebuilds ``spec`` exactly."""
    inputs = ", ".join(f"{name!r}: {description!r}" for name, description in spec.inputs.items())
    return (
        "CaseSpec(\n"
        f"    id={spec.id!r}, function={spec.function!r}, tolerance={spec.tolerance!r},\n"
        f"    inputs={{{inputs}}},\n"
        f"    params={dict(spec.params)!r},\n"
        ")"
    )


def repro_snippet(spec: CaseSpec, adapter: Adapter, *, seed: int, timeout: float | None = 60.0) -> str:
    """A self-contained Python snippet that rebuilds ``spec`` and runs it against the adapter again.

    It loads the adapter by the name it was loaded with (``adapter.source``);
    for an adapter object built in code, replace that line.
    """
    return (
        f"# posref fuzz, seed {seed}: differential case for {spec.function} "
        f"({adapter.dtype}, {adapter.device})\n"
        "from posref.conformance.adapter import load_adapter\n"
        "from posref.conformance.runner import case_arrays, run_case\n"
        "from posref.golden.registry import Arange, CaseSpec, Normal, Values, build_case\n"
        "\n"
        f"adapter = load_adapter({adapter.source!r}, dtype={adapter.dtype!r}, device={adapter.device!r})\n"
        f"case = build_case({_source_of(spec)})\n"
        f"result = run_case(adapter, case, timeout={timeout!r})\n"
        "print(result.status, result.message)\n"
        "inputs, expected = case_arrays(case, adapter.dtype)  # what the adapter gets; the float64 spec\n"
    )


# -- running ----------------------------------------------------------------------------------


class _CaseFailed(Exception):
    """Raised inside the hypothesis test body so that hypothesis shrinks the case."""

    def __init__(self, spec: CaseSpec, result: CaseResult) -> None:
        super().__init__(f"{result.status}: {result.message}")
        self.spec = spec
        self.result = result


def _dtypes_for(dtype: str) -> tuple[str, ...]:
    return (dtype,) if dtype in LOW_PRECISION_DTYPES else ()


def _error_summary(result: CaseResult) -> str:
    parts = []
    for name, c in result.outputs.items():
        if c["budget_share"] > 1.0:
            parts.append(f"{name}: max abs error {c['max_abs_error']:.3g}, max rel {c['max_rel_error']:.3g}, "
                         f"max ULP {c['max_ulp']:.3g}, {c['budget_share']:.3g}x the budget")
    return "; ".join(parts)


@dataclass
class FuzzResult(CaseResult):
    """A fuzz result: a :class:`~posref.conformance.runner.CaseResult` with how many drawn cases ran.

    ``drawn`` counts the cases sent to the adapter while hypothesis searched
    (shrinking steps after a failure not included); ``ran`` those of them
    that did not end ``not_implemented`` or ``skipped``.
    """

    ran: int = 0
    drawn: int = 0


def _with_counts(result: CaseResult, ran: int, drawn: int) -> FuzzResult:
    values = {f.name: getattr(result, f.name) for f in fields(CaseResult)}
    return FuzzResult(**values, ran=ran, drawn=drawn)


#: Classes of option values that :class:`_Avoidance` tells apart: the default, and any other number.
_DEFAULT_CLASS = "<default>"
_NUMBER_CLASS = "<other number>"


class _Avoidance:
    """What the adapter said NotImplementedError to, so that later draws of one function avoid it.

    Each case is summarised by the class of every keyword option of the
    spec function: the default, the value itself for strings, booleans
    and None, "another number" for the rest.  A combination of classes
    that came back ``not_implemented`` and never ran is avoided; so is a
    single option class that was the only one never seen in a case that
    ran, in a case that came back ``not_implemented`` (one form of ALiBi,
    say, or one rotation layout).
    """

    def __init__(self, function: str) -> None:
        parameters = inspect.signature(SPEC_FUNCTIONS[function].function).parameters.values()
        self.options = tuple(p.name for p in parameters if p.kind is p.KEYWORD_ONLY)
        self.proven: set[tuple[str, Any]] = set()
        self.blamed: set[tuple[str, Any]] = set()
        self.ran_combinations: set[frozenset] = set()
        self.refused_combinations: set[frozenset] = set()

    def key(self, params: Mapping[str, Any]) -> frozenset:
        classes = []
        for name in self.options:
            if name not in params:
                value = _DEFAULT_CLASS
            else:
                value = params[name]
                if not (value is None or isinstance(value, (str, bool))):
                    value = _NUMBER_CLASS
            classes.append((name, value))
        return frozenset(classes)

    def avoids(self, key: frozenset) -> bool:
        return key in self.refused_combinations or not self.blamed.isdisjoint(key)

    def ran(self, key: frozenset) -> None:
        self.proven |= key
        self.ran_combinations.add(key)
        self.refused_combinations.discard(key)

    def refused(self, key: frozenset) -> None:
        if key in self.ran_combinations:  # it ran before: the inputs, not the options, were refused
            return
        self.refused_combinations.add(key)
        unproven = key - self.proven
        if len(unproven) == 1:
            self.blamed |= unproven


def _fuzz_function(adapter: Adapter, function: str, *, max_examples: int, seed: int,
                   timeout: float | None, options: Mapping[str, Mapping[str, Any]]) -> FuzzResult:
    from hypothesis import HealthCheck, Phase, Verbosity, assume, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis.errors import Flaky, Unsatisfiable

    family = SPEC_FUNCTIONS[function].family
    counts = {"examples": 0, "pass": 0, "not_implemented": 0, "skipped": 0}
    first_failure: dict[str, Any] = {}
    hang: dict[str, Any] = {}
    avoidance = _Avoidance(function)
    started = time.perf_counter()

    @hypothesis_seed(seed)
    @settings(max_examples=max_examples, derandomize=False, database=None, deadline=None,
              phases=(Phase.explicit, Phase.generate, Phase.shrink), suppress_health_check=list(HealthCheck),
              report_multiple_bugs=False, verbosity=Verbosity.quiet, print_blob=False)
    @given(case_strategy(function, options))
    def body(spec: CaseSpec) -> None:
        if hang:  # a hung or crashed adapter is not retried: every retry costs a timeout or a fresh worker
            return
        key = avoidance.key(spec.params)
        assume(not avoidance.avoids(key))
        try:
            case = build_case(spec, _dtypes_for(adapter.dtype))
        except (ValueError, TypeError):
            if spec.description.endswith(_FITTED):  # the declared values do not fit the rest of the case
                assume(False)
            raise
        searching = not first_failure
        if searching:
            counts["examples"] += 1
        result = run_case(adapter, case, timeout=timeout)
        if result.status in ("not_implemented", "skipped"):
            if result.status == "not_implemented":
                avoidance.refused(key)
            if searching:
                counts[result.status] += 1
            return
        avoidance.ran(key)
        if _not_retried(result):
            hang.update(spec=spec, result=result)
            return
        if result.status in _FAILING:
            first_failure.setdefault("examples", counts["examples"])
            first_failure.setdefault("spec", spec)
            raise _CaseFailed(spec, result)
        if searching:
            counts["pass"] += 1

    failure: _CaseFailed | None = None
    try:
        body()
    except _CaseFailed as exc:
        failure = exc
    except Unsatisfiable:  # every draw was avoided or fitted out: nothing ran, nothing failed
        pass
    except Flaky as exc:
        spec = first_failure["spec"]
        result = CaseResult(spec.id, function, family, adapter.dtype, "fail",
                            message=(f"fuzz seed {seed}: the adapter gave different answers for the same case, "
                                     f"so it could not be shrunk ({type(exc).__name__}); first failing case "
                                     f"{describe_case(spec)}"),
                            seconds=time.perf_counter() - started,
                            repro=repro_snippet(spec, adapter, seed=seed, timeout=timeout))
        drawn = counts["examples"]
        return _with_counts(result, drawn - counts["not_implemented"] - counts["skipped"], drawn)
    seconds = time.perf_counter() - started
    drawn = counts["examples"]
    ran = drawn - counts["not_implemented"] - counts["skipped"]

    if hang:
        spec, result = hang["spec"], hang["result"]
        what = "a hang" if result.status == "timeout" else "a crash"
        result.message = (f"fuzz seed {seed}: differential case (not shrunk: {what} is not retried) "
                          f"{describe_case(spec)}: {result.message}")
        result.repro = repro_snippet(spec, adapter, seed=seed, timeout=timeout)
        return _with_counts(result, ran, drawn)
    if failure is not None:
        spec, result = failure.spec, failure.result
        details = "; ".join(x for x in (result.message, _error_summary(result)) if x)
        result.message = (f"fuzz seed {seed}: shrunk differential case (first failure at example "
                          f"{first_failure['examples']}) {describe_case(spec)} in {adapter.dtype}: {details}")
        result.repro = repro_snippet(spec, adapter, seed=seed, timeout=timeout)
        result.seconds = seconds
        return _with_counts(result, ran, drawn)
    if counts["pass"] == 0 and counts["not_implemented"]:
        return FuzzResult(f"fuzz.{function}", function, family, adapter.dtype, "not_implemented",
                          message=(f"fuzz seed {seed}: {adapter.name} raised NotImplementedError for all "
                                   f"{drawn} generated cases"), seconds=seconds, ran=ran, drawn=drawn)
    if counts["pass"] == 0 and drawn == 0:
        return FuzzResult(f"fuzz.{function}", function, family, adapter.dtype, "skipped",
                          message=f"fuzz seed {seed}: no generated case fits the options {adapter.name} declares",
                          seconds=seconds, ran=ran, drawn=drawn)
    if counts["pass"] == 0:
        return FuzzResult(f"fuzz.{function}", function, family, adapter.dtype, "skipped",
                          message=f"fuzz seed {seed}: none of the {drawn} generated cases fit {adapter.dtype}",
                          seconds=seconds, ran=ran, drawn=drawn)
    others = [f"{counts[k]} {k.replace('_', ' ')}" for k in ("not_implemented", "skipped") if counts[k]]
    return FuzzResult(f"fuzz.{function}", function, family, adapter.dtype, "pass",
                      message=(f"fuzz seed {seed}: {counts['pass']} of {drawn} hypothesis differential cases "
                               f"passed" + (f" ({', '.join(others)})" if others else "")),
                      seconds=seconds, ran=ran, drawn=drawn)


def fuzz(
    adapter: Adapter,
    /,
    *,
    functions: Iterable[str] | None = None,
    max_examples: int = 50,
    seed: int = 0,
    timeout: float | None = 60.0,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[CaseResult]:
    """Run hypothesis differential cases against an adapter and shrink every failure.

    For each function (in :data:`FUZZ_FUNCTIONS` order, or the order given)
    that the adapter implements, up to ``max_examples`` cases are drawn from
    :func:`case_strategy`, built, and run with
    :func:`~posref.conformance.runner.run_case`.  The first case that ends
    ``fail``, ``error``, ``crash`` or ``timeout`` stops the search; hypothesis shrinks
    it (a timeout or a crash of the worker is reported as found, since every
    retry would hang or crash again).  Each function is searched and shrunk
    on its own, so every failing function gets its own minimal case.

    The cases fit the adapter: they keep inside the options it declares
    (``ADAPTER_OPTIONS``, :func:`adapter_options`), and once a combination
    of options comes back ``not_implemented`` later cases of that function
    avoid it (as does a single option value that is the only one never seen
    to run in such a case), so the examples go to what the adapter can do.
    Each result says how many of the cases drawn ran (:class:`FuzzResult`,
    :func:`draw_counts`, :func:`poorly_covered`).

    Parameters
    ----------
    adapter : Adapter
        A loaded adapter (:func:`~posref.conformance.adapter.load_adapter`).
    functions : iterable of str or None, keyword-only
        Functions to fuzz; ``None`` means all of :data:`FUZZ_FUNCTIONS`.
    max_examples : int, keyword-only
        Cases drawn per function, at least 0; 0 returns an empty list (golden
        cases only).
    seed : int, keyword-only
        Non-negative seed of hypothesis' search.  The same seed gives the same
        cases and results.  It is printed in every result message.
    timeout : float or None, keyword-only
        Seconds allowed per case, as in :func:`~posref.conformance.runner.run_case`.
    progress : callable or None, keyword-only
        Called as ``progress(done, total, function)`` after each function.

    Returns
    -------
    list of FuzzResult
        One result per function, with ``ran`` and ``drawn``: ``"pass"`` (case id ``fuzz.<function>``, the
        number of cases in the message), the shrunk failing case
        (a failing status of :data:`~posref.conformance.runner.FAILING`; case id
        ``fuzz.<function>.<n>``, the case in the message, a Python snippet
        in ``repro``), or ``"not_implemented"`` when the adapter lacks the
        function.

    Raises
    ------
    ValueError
        If a function has no strategy, ``max_examples`` or ``seed`` is
        negative, ``timeout`` is not positive, or the adapter's
        ``ADAPTER_OPTIONS`` names an unknown function or option.
    TypeError
        If an argument, or the adapter's ``ADAPTER_OPTIONS``, has the wrong type.
    """
    if not isinstance(adapter, Adapter):
        raise TypeError(f"adapter must be a posref.conformance.adapter.Adapter (see load_adapter), "
                        f"got {type(adapter).__name__}")
    selected = _check_functions(functions)
    max_examples = ensure_int("max_examples", max_examples, minimum=0)
    seed = ensure_int("seed", seed, minimum=0)
    if timeout is not None:
        timeout = ensure_real("timeout", timeout, exclusive_minimum=0.0)
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be callable or None, got {type(progress).__name__}")
    options = adapter_options(adapter)
    if max_examples == 0:
        return []
    _require_hypothesis()
    spec_functions()  # the whole catalogue, for the families
    results: list[CaseResult] = []
    for done, function in enumerate(selected, 1):
        if adapter.function(function) is None:
            results.append(FuzzResult(f"fuzz.{function}", function, SPEC_FUNCTIONS[function].family, adapter.dtype,
                                      "not_implemented", message=f"{adapter.name} has no {function}"))
        else:  # each function is searched and shrunk on its own: every failing function gets its own case
            results.append(_fuzz_function(adapter, function, max_examples=max_examples, seed=seed,
                                          timeout=timeout, options=options))
        if progress is not None:
            progress(done, len(selected), function)
    return results


def _check_functions(functions: Iterable[str] | None) -> list[str]:
    if functions is None:
        return list(FUZZ_FUNCTIONS)
    if isinstance(functions, str) or not isinstance(functions, Iterable):
        raise TypeError(f"functions must be None or a list of function names, got {functions!r}")
    selected: list[str] = []
    for name in functions:
        if name not in FUZZ_TOLERANCE:
            raise ValueError(f"functions must be among {', '.join(FUZZ_FUNCTIONS)}, got {name!r}")
        if name not in selected:
            selected.append(name)
    return selected


# -- coverage -----------------------------------------------------------------------------------


def draw_counts(results: Iterable[CaseResult]) -> dict[str, tuple[int, int]]:
    """How many drawn cases ran, per function: ``{function: (ran, drawn)}``.

    ``drawn`` counts the cases sent to the adapter while searching;
    ``ran`` those that did not end ``not_implemented`` or ``skipped``.
    Results other than :class:`FuzzResult` (golden cases) are ignored; a
    function the adapter lacks counts ``(0, 0)``.

    Raises
    ------
    TypeError
        If ``results`` is not an iterable of CaseResult.

    Examples
    --------
    >>> r = FuzzResult("fuzz.alibi_bias", "alibi_bias", "alibi", "float32", "pass", ran=40, drawn=50)
    >>> draw_counts([r])
    {'alibi_bias': (40, 50)}
    """
    if isinstance(results, (str, bytes)) or not isinstance(results, Iterable):
        raise TypeError(f"results must be an iterable of CaseResult, got {type(results).__name__}")
    counts: dict[str, tuple[int, int]] = {}
    for result in results:
        if not isinstance(result, CaseResult):
            raise TypeError(f"results must hold CaseResult objects, got {type(result).__name__}")
        if isinstance(result, FuzzResult):
            ran, drawn = counts.get(result.function, (0, 0))
            counts[result.function] = (ran + result.ran, drawn + result.drawn)
    return counts


def poorly_covered(counts: Mapping[str, tuple[int, int]]) -> list[str]:
    """The functions of ``counts`` (:func:`draw_counts`) where fewer than half the drawn cases ran.

    A function with no case drawn (the adapter lacks it) is not listed.

    Raises
    ------
    TypeError, ValueError
        If ``counts`` is not a mapping of names to ``(ran, drawn)`` pairs of
        integers with ``0 <= ran <= drawn``.

    Examples
    --------
    >>> poorly_covered({"alibi_bias": (0, 50), "apply_rope": (30, 50), "t5_relative_bias": (0, 0)})
    ['alibi_bias']
    """
    if not isinstance(counts, Mapping):
        raise TypeError(f"counts must be a dict {{function: (ran, drawn)}} (see draw_counts), "
                        f"got {type(counts).__name__}")
    flagged = []
    for function, pair in counts.items():
        if not isinstance(function, str):
            raise TypeError(f"counts keys must be function names, got {function!r}")
        if (not isinstance(pair, tuple) or len(pair) != 2
                or not all(isinstance(n, int) and not isinstance(n, bool) for n in pair)):
            raise TypeError(f"counts[{function!r}] must be a pair (ran, drawn) of integers, got {pair!r}")
        ran, drawn = pair
        if not 0 <= ran <= drawn:
            raise ValueError(f"counts[{function!r}] must satisfy 0 <= ran <= drawn, got {pair!r}")
        if 2 * ran < drawn:
            flagged.append(function)
    return flagged
