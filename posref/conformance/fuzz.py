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
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from posref._spec import SPEC_FUNCTIONS, spec_functions
from posref._validate import ensure_int, ensure_real
from posref.alibi import alibi_slopes
from posref.conformance.adapter import Adapter
from posref.conformance.runner import CaseResult, run_case
from posref.golden.case import LOW_PRECISION_DTYPES
from posref.golden.cases import HARD_POSITIONS
from posref.golden.registry import Arange, CaseSpec, Normal, Values, build_case

__all__ = [
    "FUZZ_FUNCTIONS",
    "FUZZ_TOLERANCE",
    "MAX_POSITION",
    "SHORT_POSITION",
    "case_strategy",
    "describe_case",
    "fuzz",
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
}

#: Every function :func:`fuzz` can draw cases for, in the order it runs them.
FUZZ_FUNCTIONS: tuple[str, ...] = tuple(FUZZ_TOLERANCE)

#: Statuses that make hypothesis look for (and shrink) a failing case.
_FAILING = ("fail", "error", "crash", "timeout")

#: Bases of released models; drawn alongside arbitrary bases in [2, 1e7].
_COMMON_BASES = (10_000.0, 500_000.0, 1_000_000.0, 10.0)


# -- strategies ------------------------------------------------------------------------------


def _strategies() -> dict[str, Callable[[], Any]]:
    """Build the strategy of every fuzzed function (imports hypothesis)."""
    from hypothesis import strategies as st

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

    def spec_of(draw, function: str, inputs: dict, params: dict) -> CaseSpec:
        """The case, with parameters equal to the spec's defaults left out."""
        return CaseSpec(id=f"fuzz.{function}.{draw(case_number)}", function=function, inputs=inputs,
                        params=_without_defaults(function, params), tolerance=FUZZ_TOLERANCE[function],
                        description=f"hypothesis differential case for {function}")

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


def case_strategy(function: str):
    """The hypothesis strategy drawing :class:`~posref.golden.registry.CaseSpec` for ``function``.

    Parameters
    ----------
    function : str
        One of :data:`FUZZ_FUNCTIONS`.

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Draws valid cases with ids ``fuzz.<function>.<n>`` and the tolerance
        class of :data:`FUZZ_TOLERANCE`.

    Raises
    ------
    ValueError
        If ``function`` has no strategy.
    ImportError
        If hypothesis is not installed.
    """
    if function not in FUZZ_TOLERANCE:
        raise ValueError(f"function must be one of {', '.join(FUZZ_FUNCTIONS)}, got function={function!r}")
    _require_hypothesis()
    return _strategies()[function]()


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


def _fuzz_function(adapter: Adapter, function: str, *, max_examples: int, seed: int,
                   timeout: float | None) -> CaseResult:
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis.errors import Flaky

    family = SPEC_FUNCTIONS[function].family
    counts = {"examples": 0, "pass": 0, "not_implemented": 0, "skipped": 0}
    first_failure: dict[str, Any] = {}
    hang: dict[str, Any] = {}
    started = time.perf_counter()

    @hypothesis_seed(seed)
    @settings(max_examples=max_examples, derandomize=False, database=None, deadline=None,
              phases=(Phase.explicit, Phase.generate, Phase.shrink), suppress_health_check=list(HealthCheck),
              report_multiple_bugs=False, verbosity=Verbosity.quiet, print_blob=False)
    @given(case_strategy(function))
    def body(spec: CaseSpec) -> None:
        if hang:  # a hung or crashed adapter is not retried: every retry costs a timeout or a fresh worker
            return
        counts["examples"] += 1
        case = build_case(spec, _dtypes_for(adapter.dtype))
        result = run_case(adapter, case, timeout=timeout)
        if result.status in ("timeout", "crash"):
            hang.update(spec=spec, result=result)
            return
        if result.status in _FAILING:
            first_failure.setdefault("examples", counts["examples"])
            first_failure.setdefault("spec", spec)
            raise _CaseFailed(spec, result)
        counts[result.status if result.status in ("not_implemented", "skipped") else "pass"] += 1

    failure: _CaseFailed | None = None
    try:
        body()
    except _CaseFailed as exc:
        failure = exc
    except Flaky as exc:
        spec = first_failure["spec"]
        return CaseResult(spec.id, function, family, adapter.dtype, "error",
                          message=(f"fuzz seed {seed}: the adapter gave different answers for the same case, "
                                   f"so it could not be shrunk ({type(exc).__name__}); first failing case "
                                   f"{describe_case(spec)}"),
                          seconds=time.perf_counter() - started,
                          repro=repro_snippet(spec, adapter, seed=seed, timeout=timeout))
    seconds = time.perf_counter() - started

    if hang:
        spec, result = hang["spec"], hang["result"]
        what = "a hang" if result.status == "timeout" else "a crash"
        result.message = (f"fuzz seed {seed}: differential case (not shrunk: {what} is not retried) "
                          f"{describe_case(spec)}: {result.message}")
        result.repro = repro_snippet(spec, adapter, seed=seed, timeout=timeout)
        return result
    if failure is not None:
        spec, result = failure.spec, failure.result
        details = "; ".join(x for x in (result.message, _error_summary(result)) if x)
        result.message = (f"fuzz seed {seed}: shrunk differential case (first failure at example "
                          f"{first_failure['examples']}) {describe_case(spec)} in {adapter.dtype}: {details}")
        result.repro = repro_snippet(spec, adapter, seed=seed, timeout=timeout)
        result.seconds = seconds
        return result
    ran = counts["examples"]
    if counts["pass"] == 0 and counts["not_implemented"]:
        return CaseResult(f"fuzz.{function}", function, family, adapter.dtype, "not_implemented",
                          message=(f"fuzz seed {seed}: {adapter.name} raised NotImplementedError for all "
                                   f"{ran} generated cases"), seconds=seconds)
    if counts["pass"] == 0:
        return CaseResult(f"fuzz.{function}", function, family, adapter.dtype, "skipped",
                          message=f"fuzz seed {seed}: none of the {ran} generated cases fit {adapter.dtype}",
                          seconds=seconds)
    others = [f"{counts[k]} {k.replace('_', ' ')}" for k in ("not_implemented", "skipped") if counts[k]]
    return CaseResult(f"fuzz.{function}", function, family, adapter.dtype, "pass",
                      message=(f"fuzz seed {seed}: {counts['pass']} of {ran} hypothesis differential cases "
                               f"passed" + (f" ({', '.join(others)})" if others else "")),
                      seconds=seconds)


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
    retry would hang or crash again).

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
    list of CaseResult
        One result per function: ``"pass"`` (case id ``fuzz.<function>``, the
        number of cases in the message), the shrunk failing case
        (``"fail"``, ``"error"``, ``"crash"`` or ``"timeout"``; case id
        ``fuzz.<function>.<n>``, the case in the message, a Python snippet
        in ``repro``), or ``"not_implemented"`` when the adapter lacks the
        function.

    Raises
    ------
    ValueError
        If a function has no strategy, ``max_examples`` or ``seed`` is
        negative, or ``timeout`` is not positive.
    TypeError
        If an argument has the wrong type.
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
    if max_examples == 0:
        return []
    _require_hypothesis()
    spec_functions()  # the whole catalogue, for the families
    results = []
    for done, function in enumerate(selected, 1):
        if adapter.function(function) is None:
            results.append(CaseResult(f"fuzz.{function}", function, SPEC_FUNCTIONS[function].family, adapter.dtype,
                                      "not_implemented", message=f"{adapter.name} has no {function}"))
        else:
            results.append(_fuzz_function(adapter, function, max_examples=max_examples, seed=seed,
                                          timeout=timeout))
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
