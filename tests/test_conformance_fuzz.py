"""Hypothesis differential cases: correct implementations pass, broken ones fail with a minimal, reproducible case."""

import inspect
import re
import time
import types

import numpy as np
import pytest
from hypothesis import given, strategies as st

from posref import SPEC_FUNCTIONS
from posref._spec import spec_functions
from posref.conformance.adapter import Adapter, AdapterError, check_options, load_adapter
from posref.conformance.fuzz import (
    FUZZ_FUNCTIONS,
    FUZZ_TOLERANCE,
    MAX_POSITION,
    SHORT_POSITION,
    FuzzResult,
    case_strategy,
    describe_case,
    draw_counts,
    fuzz,
    poorly_covered,
    repro_snippet,
)
from posref.conformance.report import exit_code
from posref.golden.cases import CASES
from posref.golden.registry import Arange, CaseSpec, Integers, Normal, Uniform, Values

# -- small float32 implementations, written the way libraries write them -----------------------

CORRECT_FLOAT32 = '''
import numpy as np

ADAPTER_NAME = "{name}"
ADAPTER_VERSION = "0"
ADAPTER_DTYPES = ("float32",)
f4 = np.float32


def _rotate(x, angles, layout):
    c, s = np.cos(angles).astype(x.dtype), np.sin(angles).astype(x.dtype)
    if layout == "half":
        h = x.shape[-1] // 2
        a, b = x[..., :h], x[..., h:]
        return np.concatenate([a * c - b * s, b * c + a * s], axis=-1)
    a, b = x[..., 0::2], x[..., 1::2]
    out = np.empty(np.broadcast_shapes(x.shape, c.shape[:-1] + x.shape[-1:]), dtype=x.dtype)
    out[..., 0::2], out[..., 1::2] = a * c - b * s, b * c + a * s
    return out


def apply_rope(x, positions, /, *, base=10_000.0, layout="half", rotary_dim=None, rotated_slice="first",
               freq_denominator="rotary_dim", position_offset=0):
    x = np.asarray(x)
    d = x.shape[-1]
    r = rotary_dim or d
    width = r if freq_denominator == "rotary_dim" else d
    inv_freq = (1.0 / f4(base) ** (np.arange(0, width, 2, dtype=f4) / f4(width)))[: r // 2]
    p = np.asarray(positions, dtype=np.int64) + position_offset + SHIFT
    angles = p.astype(f4)[..., None] * inv_freq
    if rotated_slice == "first" or (rotated_slice == "first_pairs" and layout == "interleaved"):
        channels = np.arange(r)
    elif rotated_slice == "last":
        channels = np.arange(d - r, d)
    else:
        channels = np.concatenate([np.arange(r // 2), d // 2 + np.arange(r // 2)])
    out = x.copy()
    out[..., channels] = _rotate(x[..., channels], angles, layout)
    return out


def alibi_bias(slopes, query_positions, key_positions, /, *, form="distance", causal=True, scale=1.0):
    m = np.asarray(slopes).astype(f4)
    q = np.asarray(query_positions).astype(f4)
    k = np.asarray(key_positions).astype(f4)
    r = k[None, :] - q[:, None]
    linear = {{"distance": r, "symmetric": -np.abs(r), "key_index": np.broadcast_to(k, r.shape),
              "last_key_anchored": np.broadcast_to(k - k.max(), r.shape)}}[form]
    bias = (m * f4(scale))[:, None, None] * linear
    return np.where(r > 0, -np.inf, bias) if causal else bias


def alibi_slopes(num_heads, /, *, rule="paper", max_bias=8.0):
    {slopes}
'''

GOOD_SLOPES = '''def power_of_two(n):
        return [2.0 ** (-max_bias * k / n) for k in range(1, n + 1)]
    c = 1 << (num_heads.bit_length() - 1)
    return np.array(power_of_two(c) + power_of_two(2 * c)[0::2][: num_heads - c], dtype=f4)'''
#: the formula for a power of two used for every head count
NAIVE_SLOPES = '''return np.array([2.0 ** (-max_bias * k / num_heads) for k in range(1, num_heads + 1)], dtype=f4)'''


@pytest.fixture
def adapter_module(tmp_path, monkeypatch):
    """Write an adapter module and load it by name, so that a repro snippet can load it too."""
    monkeypatch.syspath_prepend(str(tmp_path))
    made = []

    def make(name, *, shift=0, slopes=GOOD_SLOPES):
        source = CORRECT_FLOAT32.format(name=name, slopes=slopes).replace("SHIFT", str(shift))
        (tmp_path / f"{name}.py").write_text(source)
        made.append(name)
        return load_adapter(name, dtype="float32")

    yield make
    import sys

    for name in made:
        sys.modules.pop(name, None)


def adapter_of(dtype="float32", **functions):
    return Adapter(target=types.SimpleNamespace(**functions), name="test", version="0", dtype=dtype,
                   device="cpu", source="test")


def rerun(result):
    """Execute a result's repro snippet and return its namespace."""
    namespace = {}
    exec(compile(result.repro, "<repro>", "exec"), namespace)
    return namespace


# -- the reference passes; a correct float32 passes -------------------------------------------


def test_the_reference_adapter_passes_every_fuzzed_function():
    results = fuzz(load_adapter("reference", dtype="float64"), max_examples=12, seed=0)
    assert [r.function for r in results] == list(FUZZ_FUNCTIONS)
    assert {r.status for r in results} == {"pass"}, [r.message for r in results if r.status != "pass"]
    for r in results:
        assert r.case_id == f"fuzz.{r.function}" and r.repro == ""
        assert r.message == "fuzz seed 0: 12 of 12 hypothesis differential cases passed"
    assert exit_code(results) == 0


def test_correct_float32_apply_rope_and_alibi_bias_pass(adapter_module):
    adapter = adapter_module("good_f32")
    results = fuzz(adapter, functions=["apply_rope", "alibi_bias", "alibi_slopes"], max_examples=100, seed=0)
    assert [r.status for r in results] == ["pass"] * 3, [r.message for r in results]


# -- broken implementations fail with a shrunk case that reproduces ----------------------------


def test_an_off_by_one_position_fails_with_a_minimal_case_that_reproduces(adapter_module):
    adapter = adapter_module("off_by_one_f32", shift=1)
    (result,) = fuzz(adapter, functions=["apply_rope"], max_examples=50, seed=0)
    assert result.status == "fail"
    assert re.fullmatch(r"fuzz\.apply_rope\.\d+", result.case_id)
    assert result.message.startswith("fuzz seed 0: shrunk differential case")
    assert "apply_rope(x=normal(" in result.message and "exceeds the budget" in result.message
    assert "max abs error" in result.message and "max ULP" in result.message
    assert result.outputs["output"]["budget_share"] > 1
    namespace = rerun(result)
    case, again = namespace["case"], namespace["result"]
    assert case.id == result.case_id
    # minimal: one position, one pair of channels, no batch or head axes
    assert case.inputs["x"].shape == (1, 2) and case.inputs["positions"].shape == (1,)
    assert again.status == "fail" and again.message in result.message
    assert again.outputs == result.outputs
    # what the snippet hands over for debugging: the float32 inputs and the float64 spec
    assert namespace["inputs"]["x"].dtype == np.float32 and namespace["expected"]["output"].dtype == np.float64


def test_wrong_slopes_for_non_power_of_two_heads_shrink_to_three_heads(adapter_module):
    adapter = adapter_module("naive_slopes_f32", slopes=NAIVE_SLOPES)
    (result,) = fuzz(adapter, functions=["alibi_slopes"], max_examples=50, seed=0)
    assert result.status == "fail" and "num_heads=3" in result.message
    case = rerun(result)["case"]
    assert case.params["num_heads"] == 3  # the smallest head count that is not a power of two
    # the spec for 3 heads: 2**-4, 2**-8 from the 2-head series, then 2**-2 from the 4-head series
    np.testing.assert_array_equal(case.outputs["output"], [2.0**-4, 2.0**-8, 2.0**-2])


def test_the_same_seed_gives_the_same_results(adapter_module):
    adapter = adapter_module("det_f32", shift=1)
    runs = [fuzz(adapter, functions=["apply_rope", "alibi_bias"], max_examples=30, seed=7) for _ in range(2)]
    strip = [[{k: v for k, v in r.as_dict().items() if k != "seconds"} for r in run] for run in runs]
    assert strip[0] == strip[1]
    assert all("fuzz seed 7" in r.message for r in runs[0])
    assert [r.status for r in runs[0]] == ["fail", "pass"]


# -- every other outcome --------------------------------------------------------------------


def test_functions_the_adapter_lacks_are_reported_once_as_not_implemented():
    results = fuzz(adapter_of(), functions=["apply_rope", "t5_relative_bucket"], max_examples=5)
    assert [(r.case_id, r.status, r.family) for r in results] == [
        ("fuzz.apply_rope", "not_implemented", "rope"), ("fuzz.t5_relative_bucket", "not_implemented", "t5")]
    assert results[0].message == "test has no apply_rope"


def test_a_raising_implementation_is_an_error_with_a_shrunk_case():
    def frequencies(dim, /, *, base=10_000.0):
        if dim > 8:
            raise RuntimeError(f"no kernel for dim={dim}")
        return base ** (-np.arange(0, dim, 2) / dim)

    (result,) = fuzz(adapter_of("float64", rope_frequencies=frequencies), functions=["rope_frequencies"],
                     max_examples=40)
    assert result.status == "crash"  # the runner's status for an implementation that raises on valid input
    assert "RuntimeError: no kernel for dim=10" in result.message  # shrunk to the smallest failing width
    assert "rope_frequencies(dim=10" in result.message


def test_a_hanging_case_is_reported_without_retrying_it():
    calls = []

    def hang(dim, /, *, base=10_000.0):
        calls.append(dim)
        time.sleep(5)

    started = time.perf_counter()
    (result,) = fuzz(adapter_of("float64", rope_frequencies=hang), functions=["rope_frequencies"],
                     max_examples=20, timeout=0.2)
    assert time.perf_counter() - started < 3
    assert result.status == "timeout" and len(calls) == 1
    assert "not shrunk: a hang is not retried" in result.message and "no answer within 0.2 s" in result.message
    assert "build_case(CaseSpec(" in result.repro


def test_an_adapter_that_answers_differently_each_time_is_an_error():
    calls = []

    def flaky(dim, /, *, base=10_000.0):
        calls.append(dim)
        theta = base ** (-np.arange(0, dim, 2) / dim)
        return theta * (1.5 if len(calls) == 3 else 1.0)  # wrong once, never again

    (result,) = fuzz(adapter_of("float64", rope_frequencies=flaky), functions=["rope_frequencies"],
                     max_examples=10)
    assert result.status == "fail" and "gave different answers for the same case" in result.message


def test_not_implemented_parameters_are_counted_not_failed():
    def half_only(x, angles, /, *, layout="half"):
        if layout != "half":
            raise NotImplementedError("only the half layout")
        h = x.shape[-1] // 2
        c, s = np.cos(angles), np.sin(angles)
        return np.concatenate([x[..., :h] * c - x[..., h:] * s, x[..., h:] * c + x[..., :h] * s], axis=-1)

    (result,) = fuzz(adapter_of("float64", apply_rotary=half_only), functions=["apply_rotary"], max_examples=30)
    assert result.status == "pass"
    match = re.fullmatch(r"fuzz seed 0: (\d+) of 30 hypothesis differential cases passed \((\d+) not implemented\)",
                         result.message)
    assert match and int(match[1]) + int(match[2]) == 30 and int(match[2]) > 0

    def never(x, angles, /, *, layout="half"):
        raise NotImplementedError

    (result,) = fuzz(adapter_of("float64", apply_rotary=never), functions=["apply_rotary"], max_examples=5)
    assert result.status == "not_implemented" and result.ran == 0 and 1 <= result.drawn <= 5
    # once every layout was refused, no further case is sent
    assert f"for all {result.drawn} generated cases" in result.message


def test_zero_examples_means_golden_only_and_progress_is_reported():
    assert fuzz(adapter_of(), max_examples=0) == []
    seen = []
    fuzz(adapter_of(), functions=["apply_rope", "alibi_bias"], max_examples=1,
         progress=lambda done, total, name: seen.append((done, total, name)))
    assert seen == [(1, 2, "apply_rope"), (2, 2, "alibi_bias")]


@pytest.mark.parametrize("kwargs, error, words", [
    ({"functions": ["apply_rope", "bogus"]}, ValueError,
     f"functions must be among {re.escape(', '.join(FUZZ_FUNCTIONS))}, got 'bogus'"),
    ({"functions": "apply_rope"}, TypeError, "functions must be None or a list of function names"),
    ({"max_examples": -1}, ValueError, r"max_examples must be a non-negative integer, got max_examples=-1"),
    ({"max_examples": 2.5}, TypeError, "max_examples must be a non-negative integer"),
    ({"seed": -3}, ValueError, "seed must be a non-negative integer, got seed=-3"),
    ({"timeout": 0.0}, ValueError, "timeout must be a finite real number > 0.0"),
    ({"progress": 3}, TypeError, "progress must be callable or None"),
    ({"known": 3}, TypeError, "known must be True .the built-in list., False, a mapping of case id to reason"),
    ({"known": "yarn_attention_factor.mscale_only"}, TypeError, "known must be True"),
])
def test_bad_arguments_are_rejected_by_name(kwargs, error, words):
    with pytest.raises(error, match=words):
        fuzz(adapter_of(), **kwargs)


def test_the_adapter_must_be_a_loaded_adapter():
    with pytest.raises(TypeError, match="adapter must be a posref.conformance.adapter.Adapter"):
        fuzz(types.SimpleNamespace())
    with pytest.raises(ValueError, match=f"function must be one of {re.escape(', '.join(FUZZ_FUNCTIONS))}, "
                                         f"got function='pegs'"):
        case_strategy("pegs")


# -- the strategies -------------------------------------------------------------------------


def test_each_function_uses_the_tolerance_class_of_its_golden_cases():
    for function, tolerance in FUZZ_TOLERANCE.items():
        golden = {c.tolerance for c in CASES if c.function == function and c.expect_error is None}
        if function == "yarn_correction_range":  # "exact" for truncate=True, "yarn_range" otherwise
            assert golden == {"exact", tolerance}, function
        else:
            assert golden == {tolerance}, function


def test_every_spec_function_with_golden_cases_has_a_strategy():
    with_golden = {c.function for c in CASES}
    catalogue = {f.name for f in spec_functions()}
    missing = sorted(name for name in catalogue & with_golden if name not in FUZZ_FUNCTIONS)
    assert missing == [], f"no hypothesis strategy for {', '.join(missing)}: add one to posref/conformance/fuzz.py"
    assert set(FUZZ_FUNCTIONS) <= catalogue


def test_yarn_attention_factor_is_fuzzed():
    (result,) = fuzz(load_adapter("reference", dtype="float64"), functions=["yarn_attention_factor"], max_examples=10)
    assert result.status == "pass" and (result.ran, result.drawn) == (10, 10)


def _position_values(description):
    return np.asarray(description.draw(np.random.default_rng(0)))


@given(st.data())
def test_drawn_cases_are_small_valid_and_rebuilt_exactly_from_their_source(data):
    function = data.draw(st.sampled_from(FUZZ_FUNCTIONS))
    spec = data.draw(case_strategy(function))
    assert re.fullmatch(rf"fuzz\.{function}\.\d+", spec.id) and spec.tolerance == FUZZ_TOLERANCE[function]
    signature = inspect.signature(SPEC_FUNCTIONS[function].function)
    for name, value in spec.params.items():  # defaults are left out, so lean adapters still run
        default = signature.parameters[name].default
        assert default is inspect.Parameter.empty or value is not default and not (
            type(value) is type(default) and value == default), name
    for name, description in spec.inputs.items():
        array = _position_values(description)
        assert array.size <= 128 * 3 * 3 * 8, name  # small shapes only
        if "position" in name:
            limit = SHORT_POSITION if function == "apply_xpos" else MAX_POSITION
            assert np.abs(array).max() <= limit
    # the snippet's source text rebuilds the same case, value for value
    namespace = {"Arange": Arange, "CaseSpec": CaseSpec, "Integers": Integers, "Normal": Normal,
                 "Uniform": Uniform, "Values": Values}
    source = re.search(r"build_case\((CaseSpec\(.*?\n\))\)", repro_snippet(spec, adapter_of(), seed=0), re.S)[1]
    rebuilt = eval(source, namespace)
    assert (rebuilt.id, rebuilt.function, rebuilt.tolerance, dict(rebuilt.params)) == (
        spec.id, spec.function, spec.tolerance, dict(spec.params))
    assert rebuilt.inputs == spec.inputs


@given(case_strategy("t5_relative_bucket"))
def test_t5_options_are_always_a_valid_combination(spec):
    p = {"bidirectional": True, "num_buckets": 32, "max_distance": 128, **spec.params}
    per_side = p["num_buckets"] // 2 if p["bidirectional"] else p["num_buckets"]
    assert (not p["bidirectional"] or p["num_buckets"] % 2 == 0) and p["max_distance"] > per_side // 2


@given(case_strategy("apply_mrope"))
def test_mrope_sections_cover_every_pair(spec):
    half = spec.inputs["x"].shape[-1] // 2
    section = spec.params["mrope_section"]
    assert sum(section) == half and min(section) >= 0
    if spec.params.get("interleaved"):  # the last height and width pairs exist
        assert 3 * section[1] - 2 <= half - 1 and 3 * section[2] - 1 <= half - 1


def test_a_case_is_described_like_a_call():
    text = describe_case(CaseSpec(id="fuzz.alibi_bias.1", function="alibi_bias",
                                  inputs={"slopes": Values([0.5, 0.25]), "query_positions": Arange(3, 5),
                                          "key_positions": Values(list(range(10)), "int64")},
                                  params={"causal": False}))
    assert text == ("alibi_bias(slopes=[0.5, 0.25], query_positions=arange(3, 5), "
                    "key_positions=int64 (10,) in [0, 9], causal=False)")


def test_a_repro_snippet_runs_on_its_own():
    snippet = repro_snippet(CaseSpec(id="fuzz.alibi_slopes.0", function="alibi_slopes", inputs={},
                                     params={"num_heads": 3}, tolerance="linear_bias"),
                            load_adapter("reference", dtype="float64"), seed=4)
    assert snippet.startswith("# posref fuzz, seed 4: differential case for alibi_slopes (float64, cpu)")
    assert "load_adapter('reference', dtype='float64', device='cpu')" in snippet
    namespace = {}
    exec(snippet, namespace)
    assert namespace["result"].status == "pass"


# -- fuzzing that fits the adapter ----------------------------------------------------------

def _symmetric_alibi_only(slopes, query_positions, key_positions, /, *, form="distance", causal=True, scale=1.0):
    """An ALiBi with one form, ``-m |j - i|``, as x-transformers has."""
    if form != "symmetric":
        raise NotImplementedError("only form='symmetric'")
    m = np.asarray(slopes, dtype=np.float64)
    q = np.asarray(query_positions, dtype=np.float64)
    k = np.asarray(key_positions, dtype=np.float64)
    r = k[None, :] - q[:, None]
    bias = (m * scale)[:, None, None] * -np.abs(r)
    return np.where(r > 0, -np.inf, bias) if causal else bias


def _declaring(options, dtype="float64", **functions):
    return Adapter(target=types.SimpleNamespace(ADAPTER_OPTIONS=options, **functions), name="declaring",
                   version="0", dtype=dtype, device="cpu", source="declaring")


def test_an_adapter_that_declares_its_one_alibi_form_gets_its_draws_run():
    adapter = _declaring({"alibi_bias": {"form": ["symmetric"]}}, alibi_bias=_symmetric_alibi_only)
    (result,) = fuzz(adapter, functions=["alibi_bias"], max_examples=20)
    assert isinstance(result, FuzzResult) and result.status == "pass"
    assert result.drawn == 20 and result.ran == 20  # every draw inside the declaration
    assert draw_counts([result]) == {"alibi_bias": (20, 20)} and poorly_covered(draw_counts([result])) == []


def test_an_adapter_that_only_raises_not_implemented_still_gets_most_draws_run():
    (result,) = fuzz(adapter_of("float64", alibi_bias=_symmetric_alibi_only), functions=["alibi_bias"],
                     max_examples=20)
    assert result.status == "pass" and result.drawn == 20
    assert 2 * result.ran >= result.drawn, result.message  # the refused forms are learned and avoided
    assert "not implemented" in result.message


def test_declared_options_keep_every_draw_inside_them():
    declared = {"apply_rope": {"layout": ["half"], "rotary_dim": "default", "position_offset": [0, 7]}}
    seen = []

    @given(case_strategy("apply_rope", declared))
    def check(spec):
        assert spec.params.get("layout", "half") == "half" and "rotary_dim" not in spec.params
        assert spec.params.get("position_offset", 0) in (0, 7)
        seen.append(spec)

    check()
    assert seen


def test_each_failing_function_gets_its_own_shrunk_counterexample(adapter_module):
    adapter = adapter_module("two_bugs_f32", shift=1, slopes=NAIVE_SLOPES)
    results = fuzz(adapter, functions=["apply_rope", "alibi_slopes", "alibi_bias"], max_examples=30, seed=0)
    by_function = {r.function: r for r in results}
    for function in ("apply_rope", "alibi_slopes"):
        result = by_function[function]
        assert result.status == "fail", result.message
        assert re.fullmatch(rf"fuzz\.{function}\.\d+", result.case_id)
        assert result.message.startswith("fuzz seed 0: shrunk differential case") and f"{function}(" in result.message
        assert rerun(result)["result"].status == "fail"
        assert 0 < result.ran <= result.drawn
    assert by_function["alibi_bias"].status == "pass"


@pytest.mark.parametrize("declared, error, words", [
    ({"alibi_bias": {"shape": ["symmetric"]}}, ValueError,
     r"adapter 'declaring': ADAPTER_OPTIONS\['alibi_bias'\] names option 'shape', which is not a keyword option"),
    ({"alibi_bias": {"form": "symmetric"}}, ValueError,
     r"ADAPTER_OPTIONS\['alibi_bias'\]\['form'\] must be a list of allowed values or 'default'"),
    ({"alibi_bias": {"form": []}}, ValueError, r"\['alibi_bias'\]\['form'\] lists no values"),
    ({"alibi_bias": {"form": 3}}, TypeError, r"\['alibi_bias'\]\['form'\] must be a list of allowed values"),
    ({"alibi_bias": {"form": [{"a": 1}]}}, TypeError, r"\['form'\] must hold numbers, strings"),
    ({"alibi_bias": ["form"]}, TypeError, r"ADAPTER_OPTIONS\['alibi_bias'\] must be a dict"),
    ({"alibi_biass": {}}, ValueError, "names function 'alibi_biass', which is not a posref spec function"),
    ({"learned_position_embedding": {"positions": "default"}}, ValueError, "names option 'positions'"),
    ({"fope_frequencies": {"max_sequence_length": "default"}}, ValueError,
     r"\['max_sequence_length'\] is 'default', but option 'max_sequence_length' of fope_frequencies has no default"),
    (["alibi_bias"], TypeError, "ADAPTER_OPTIONS must be a dict"),
])
def test_a_bad_declaration_is_rejected_naming_the_option(declared, error, words):
    with pytest.raises(error, match=words):
        check_options("declaring", declared)
    with pytest.raises(error, match=words):
        fuzz(_declaring(declared, alibi_bias=_symmetric_alibi_only), functions=["alibi_bias"], max_examples=1)
    with pytest.raises(AdapterError):
        check_options("declaring", declared)


def test_a_loaded_adapter_carries_its_declaration_in_and_out_of_the_worker(tmp_path, monkeypatch):
    from posref.conformance.worker import start_adapter

    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "declared_f64.py").write_text(
        "import numpy as np\nADAPTER_DTYPES = ('float64',)\n"
        "ADAPTER_OPTIONS = {'alibi_bias': {'form': ['symmetric'], 'scale': 'default'}, "
        "'apply_mrope': {'mrope_section': [[16, 24, 24]]}}\n"
        "def alibi_bias(slopes, q, k, /, *, form='distance', causal=True, scale=1.0):\n    raise NotImplementedError\n")
    expected = {"alibi_bias": {"form": ("symmetric",), "scale": "default"},
                "apply_mrope": {"mrope_section": ((16, 24, 24),)}}
    assert load_adapter("declared_f64", dtype="float64").options == expected
    with start_adapter("declared_f64", dtype="float64") as worker:
        assert worker.options == expected
    assert load_adapter("reference", dtype="float64").options == {}


def test_draw_counts_and_poorly_covered_validate_and_flag():
    results = [FuzzResult("fuzz.alibi_bias", "alibi_bias", "alibi", "float32", "pass", ran=2, drawn=50),
               FuzzResult("fuzz.apply_rope", "apply_rope", "rope", "float32", "pass", ran=25, drawn=50),
               FuzzResult("fuzz.nope", "nope", "nope", "float32", "not_implemented")]
    counts = draw_counts(results)
    assert counts == {"alibi_bias": (2, 50), "apply_rope": (25, 50), "nope": (0, 0)}
    assert poorly_covered(counts) == ["alibi_bias"]
    with pytest.raises(TypeError, match="results must be an iterable of CaseResult"):
        draw_counts(3)
    with pytest.raises(TypeError, match="results must hold CaseResult objects"):
        draw_counts([3])
    with pytest.raises(TypeError, match=r"counts\['a'\] must be a pair"):
        poorly_covered({"a": 3})
    with pytest.raises(ValueError, match=r"0 <= ran <= drawn"):
        poorly_covered({"a": (5, 2)})
    with pytest.raises(TypeError, match="counts must be a dict"):
        poorly_covered([("a", (1, 2))])


# -- known divergences found again --------------------------------------------------------------

def _g(s, m):
    return 0.1 * m * np.log(s) + 1.0 if s > 1.0 else 1.0


def _yarn_factor_hf_rule(scaling_factor, /, *, mscale=1.0, mscale_all_dim=0.0, attention_factor=None):
    """Hugging Face's rule: mscale only counts when mscale_all_dim is set too (the paper's factor otherwise)."""
    if attention_factor is not None:
        return float(attention_factor)
    if mscale_all_dim == 0.0:
        return float(_g(scaling_factor, 1.0))
    return float(_g(scaling_factor, mscale) / _g(scaling_factor, mscale_all_dim))


def _yarn_factor_hf_rule_no_override(scaling_factor, /, *, mscale=1.0, mscale_all_dim=0.0, attention_factor=None):
    """The same, and a configured attention_factor is ignored: a second divergence, not listed."""
    return _yarn_factor_hf_rule(scaling_factor, mscale=mscale, mscale_all_dim=mscale_all_dim)


LISTED = {"yarn_attention_factor.mscale_only": "mscale is used only with mscale_all_dim"}


def test_draws_that_show_a_listed_divergence_again_are_known_and_the_search_goes_on():
    adapter = adapter_of("float64", yarn_attention_factor=_yarn_factor_hf_rule)
    (unlisted,) = fuzz(adapter, functions=["yarn_attention_factor"], max_examples=40)
    assert unlisted.status == "fail"  # without the list, the divergence fails as before
    (result,) = fuzz(adapter, functions=["yarn_attention_factor"], max_examples=40, known=LISTED)
    assert result.status == "known" and result.observed == "fail"
    assert result.case_id == "fuzz.yarn_attention_factor"
    assert re.fullmatch(r"\d+ of 40 draws show the divergence of yarn_attention_factor.mscale_only: "
                        r"mscale is used only with mscale_all_dim", result.reason), result.reason
    assert re.search(r"(\d+) of 40 differential cases reproduce the known divergence "
                     r"yarn_attention_factor.mscale_only \(the spec with mscale=1.0 \(mscale ignored\)\), "
                     r"(\d+) passed, nothing else failed", result.message), result.message
    assert result.drawn == 40 and result.ran == 40  # the search ran to the end
    assert result.diagnosis["variant"] == "mscale=1.0 (mscale ignored)"
    assert "function='yarn_attention_factor'" in result.repro and "'mscale'" in result.repro  # the first such draw


def test_an_unlisted_divergence_still_fails_next_to_a_listed_one():
    adapter = adapter_of("float64", yarn_attention_factor=_yarn_factor_hf_rule_no_override)
    (result,) = fuzz(adapter, functions=["yarn_attention_factor"], max_examples=40, known=LISTED)
    assert result.status == "fail"
    assert "attention_factor=" in result.message  # shrunk to the override that is ignored
    assert result.diagnosis is None or "mscale ignored" not in result.diagnosis["variant"]  # not the listed one


def test_a_listed_case_of_another_function_excuses_nothing():
    adapter = adapter_of("float64", yarn_attention_factor=_yarn_factor_hf_rule)
    (result,) = fuzz(adapter, functions=["yarn_attention_factor"], max_examples=40,
                     known={"alibi_slopes.h8": "another function", "yarn_attention_factor.s4": "passes"})
    assert result.status == "fail"  # alibi_slopes.h8 is not this function; .s4 passes, so it shows no divergence


def test_a_fuzz_entry_lists_the_differential_cases_of_one_function():
    adapter = adapter_of("float64", yarn_attention_factor=_yarn_factor_hf_rule_no_override)
    (result,) = fuzz(adapter, functions=["yarn_attention_factor"], max_examples=40,
                     known={**LISTED, "fuzz.yarn_attention_factor": "the override is ignored too"})
    assert result.status == "known" and result.observed == "fail"
    assert result.reason == "the override is ignored too" and result.case_id.startswith("fuzz.yarn_attention_factor.")
    (clean,) = fuzz(load_adapter("reference", dtype="float64"), functions=["yarn_attention_factor"],
                    max_examples=10, known={"fuzz.yarn_attention_factor": "listed, but the draws pass"})
    assert clean.status == "pass"  # a search that finds nothing proves nothing: not "fixed"
    (other,) = fuzz(adapter, functions=["yarn_attention_factor"], max_examples=40,
                    known={**LISTED, "fuzz.alibi_bias": "another function"})
    assert other.status == "fail"
