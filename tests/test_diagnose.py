"""Convention diagnosis names the variant a broken implementation computes.

The broken implementations below are written here, in NumPy, from the
conventions they follow (not from posref's spec or its variant tables); each
test says which variant that implementation is, and checks that diagnosis
names it.
"""

import importlib.util
import json
import math
import types

import ml_dtypes
import numpy as np
import pytest

from posref.conformance import diagnose as diagnosis
from posref.conformance.adapter import Adapter
from posref.conformance.diagnose import Diagnosis, diagnose, format_fingerprints, identify, run_identify
from posref.conformance.runner import case_arrays, run_case
from posref.golden.cases import CASES
from posref.golden.registry import build_cases

IDS = [
    "apply_rope.half.short", "apply_rope.half.hard_positions", "sinusoidal_encoding.interleaved.dim",
    "sinusoidal_encoding.concat.dim", "t5_relative_bucket.bidirectional.b32.d128", "t5_relative_bucket.causal.b32.d128",
    "alibi_slopes.h12", "yarn_frequencies.llama2.truncate", "dynamic_ntk_frequencies.l0_4096.len8192",
    "ntk_scaled_frequencies.d128.b10000.s4", "rope_cos_sin.half.hard_positions",
]
CASE = {c.id: c for c in build_cases([s for s in CASES if s.id in IDS], dtypes=["float32", "bfloat16"])}


def adapter_of(dtype="float32", **functions):
    return Adapter(target=types.SimpleNamespace(**functions), name="broken", version="0", dtype=dtype,
                   device="cpu", source="broken")


def diagnosed(case_id, dtype="float32", **functions):
    """Run one case through an in-process adapter; check that it fails, and diagnose it."""
    case = CASE[case_id]
    adapter = adapter_of(dtype, **functions)
    assert run_case(adapter, case).status == "fail"
    inputs, expected = case_arrays(case, dtype)
    outcome = adapter.call(case.function, inputs, case.params)
    return diagnose(case, inputs, dict(zip(expected, outcome.outputs)), dtype)


# -- broken implementations -----------------------------------------------------------------------


def _rotate(x, angles, interleaved):
    x = np.asarray(x, dtype=np.float32)
    c, s = np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)
    if interleaved:
        a, b = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2], out[..., 1::2] = a * c - b * s, b * c + a * s
        return out
    h = x.shape[-1] // 2
    a, b = x[..., :h], x[..., h:]
    return np.concatenate([a * c - b * s, b * c + a * s], axis=-1)


def rope_of(*, interleaved=False, fixed_base=None, shift=0):
    """A full-width float32 RoPE that may pair channels GPT-J style, ignore the base, or shift positions."""
    def apply_rope(x, positions, /, *, base=10_000.0, layout="half", rotary_dim=None, rotated_slice="first",
                   freq_denominator="rotary_dim", position_offset=0):
        d = np.shape(x)[-1]
        b = fixed_base if fixed_base is not None else base
        inv_freq = (1.0 / b ** (np.arange(0, d, 2, dtype=np.float32) / d)).astype(np.float32)
        p = (np.asarray(positions, dtype=np.float64) + position_offset + shift).astype(np.float32)
        return _rotate(x, p[..., None] * inv_freq, interleaved)

    return apply_rope


def m2m100_sinusoid(positions, dim, /, *, base=10_000.0, layout="interleaved", freq_denominator="dim",
                    position_offset=0):
    """M2M100 / fairseq: exp(-i ln(base) / (d/2 - 1)), sines then cosines, whatever is asked."""
    half = dim // 2
    freq = np.exp(np.arange(half, dtype=np.float32) * np.float32(-math.log(base) / (half - 1)))
    angle = (np.asarray(positions, dtype=np.float32) + np.float32(position_offset))[..., None] * freq
    return np.concatenate([np.sin(angle), np.cos(angle)], axis=-1)


def bf16_position_sinusoid(positions, dim, /, *, base=10_000.0, layout="interleaved", freq_denominator="dim",
                           position_offset=0):
    """keras-hub's SinePositionEncoding under bfloat16: positions cast to the compute dtype first."""
    p = np.asarray(positions, dtype=np.float32).astype(ml_dtypes.bfloat16).astype(np.float64) + position_offset
    freq = base ** (-2.0 * (np.arange(dim) // 2) / dim)
    angle = p[..., None] * freq
    out = np.where(np.arange(dim) % 2 == 0, np.sin(angle), np.cos(angle))
    return out.astype(ml_dtypes.bfloat16)


def t5_bucket_flipped(relative_position, /, *, bidirectional=True, num_buckets=32, max_distance=128):
    """Hugging Face's bucket code fed query - key instead of key - query."""
    n = -np.asarray(relative_position, dtype=np.int64)
    ret = np.zeros_like(n)
    if bidirectional:
        num_buckets //= 2
        ret += (n > 0) * num_buckets
        n = np.abs(n)
    else:
        n = -np.minimum(n, 0)
    exact = num_buckets // 2
    scaled = np.log(np.maximum(n, 1).astype(np.float32) / exact) / np.float32(math.log(max_distance / exact))
    large = exact + (scaled * (num_buckets - exact)).astype(np.int64)
    return ret + np.where(n < exact, n, np.minimum(large, num_buckets - 1))


def geometric_slopes(num_heads, /, *, rule="paper", max_bias=8.0):
    """2**(-max_bias * k / n) for every head count: the power-of-two formula, without the paper's interleaving."""
    return (2.0 ** (-max_bias * np.arange(1, num_heads + 1) / num_heads)).astype(np.float32)


def yarn_untruncated(dim, /, *, base=10_000.0, scaling_factor, original_max_position_embeddings, beta_fast=32.0,
                     beta_slow=1.0, truncate=True, extrapolation_factor=1.0, high_limit="dim"):
    """YaRN from the paper's formulas with the correction range never rounded (keras-hub's old default)."""
    extra = 1.0 / base ** (np.arange(0, dim, 2) / dim)

    def correction(rotations):
        return dim * math.log(original_max_position_embeddings / (rotations * 2 * math.pi)) / (2 * math.log(base))

    low, high = max(correction(beta_fast), 0.0), min(correction(beta_slow), dim - 1.0)
    ramp = np.clip((np.arange(dim // 2) - low) / max(high - low, 1e-3), 0.0, 1.0)
    keep = 1.0 - ramp
    return (extra / scaling_factor * (1.0 - keep) + extra * keep).astype(np.float32)


def static_ntk(dim, /, *, base=10_000.0, scaling_factor, original_max_position_embeddings, sequence_length):
    """'Dynamic' NTK that ignores the sequence length: the static NTK-aware base b s^(d/(d-2))."""
    b = base * scaling_factor ** (dim / (dim - 2))
    return (1.0 / b ** (np.arange(0, dim, 2) / dim)).astype(np.float32)


def keras_dynamic(dim, /, *, base=10_000.0, scaling_factor):
    """keras-hub's rope_type='dynamic': every frequency divided by s**(d/(d-2)), a uniform rescale."""
    inv_freq = 1.0 / base ** (np.arange(0, dim, 2) / dim)
    return (inv_freq / scaling_factor ** (dim / (dim - 2))).astype(np.float32)


def swapped_cos_sin(positions, dim, /, *, base=10_000.0, layout="half"):
    """cos/sin caches returned in the other order."""
    inv_freq = (1.0 / base ** (np.arange(0, dim, 2, dtype=np.float32) / dim)).astype(np.float32)
    angle = np.asarray(positions, dtype=np.float32)[..., None] * inv_freq
    angle = np.concatenate([angle, angle], axis=-1)
    return np.sin(angle), np.cos(angle)


# -- diagnose -----------------------------------------------------------------------------------


@pytest.mark.parametrize("implementation, expected", [
    (rope_of(interleaved=True), {"layout": "interleaved"}),
    (rope_of(fixed_base=1_000.0), {"base": 1_000.0}),
    (rope_of(shift=1), {"input.positions": "+1"}),
], ids=["interleaved", "base1000", "off_by_one"])
def test_a_rope_slip_is_named(implementation, expected):
    found = diagnosed("apply_rope.half.short", apply_rope=implementation)
    assert isinstance(found, Diagnosis)
    assert found.overrides == expected
    assert 0 <= found.share <= 1
    assert found.sentence.startswith("matches the spec with ") and f"(share {found.share:.2g})" in found.sentence


def test_two_slips_at_once_are_found_as_a_pair():
    found = diagnosed("apply_rope.half.short", apply_rope=rope_of(interleaved=True, fixed_base=1_000.0))
    assert found.overrides == {"layout": "interleaved", "base": 1_000.0}


def test_an_m2m100_sinusoid_is_concat_with_the_half_dim_minus_one_denominator():
    found = diagnosed("sinusoidal_encoding.interleaved.dim", sinusoidal_encoding=m2m100_sinusoid)
    assert found.overrides == {"layout": "concat", "freq_denominator": "half_dim_minus_one"}
    assert found.variant == "layout='concat', freq_denominator='half_dim_minus_one'"
    found = diagnosed("sinusoidal_encoding.concat.dim", sinusoidal_encoding=m2m100_sinusoid)
    assert found.overrides == {"freq_denominator": "half_dim_minus_one"}


def test_positions_rounded_to_bfloat16_are_named():
    found = diagnosed("sinusoidal_encoding.interleaved.dim", "bfloat16", sinusoidal_encoding=bf16_position_sinusoid)
    assert found.overrides == {"input.positions": "rounded to bfloat16"}


@pytest.mark.parametrize("case_id", ["t5_relative_bucket.bidirectional.b32.d128", "t5_relative_bucket.causal.b32.d128"])
def test_a_t5_bucket_with_the_direction_flipped_is_named(case_id):
    found = diagnosed(case_id, t5_relative_bucket=t5_bucket_flipped)
    assert found.overrides == {"relative_position": "negated"}


def test_geometric_alibi_slopes_for_twelve_heads_are_named():
    found = diagnosed("alibi_slopes.h12", alibi_slopes=geometric_slopes)
    assert found.overrides == {"rule": "geometric"}


def test_yarn_without_truncation_is_named():
    found = diagnosed("yarn_frequencies.llama2.truncate", yarn_frequencies=yarn_untruncated)
    assert found.overrides == {"truncate": False}


def test_static_ntk_in_place_of_dynamic_ntk_is_named():
    found = diagnosed("dynamic_ntk_frequencies.l0_4096.len8192", dynamic_ntk_frequencies=static_ntk)
    assert found.overrides["function"] == "ntk_scaled_frequencies"
    assert found.variant == "ntk_scaled_frequencies instead of dynamic_ntk_frequencies"


def test_a_uniform_rescale_matches_no_ntk_variant():
    assert diagnosed("ntk_scaled_frequencies.d128.b10000.s4", ntk_scaled_frequencies=keras_dynamic) is None


def test_sine_and_cosine_swapped_are_named():
    found = diagnosed("rope_cos_sin.half.hard_positions", rope_cos_sin=swapped_cos_sin)
    assert found.overrides == {"output": "sin_cos_swapped"}


def test_a_correct_output_and_garbage_give_none():
    case = CASE["apply_rope.half.short"]
    inputs, expected = case_arrays(case, "float32")
    assert diagnose(case, inputs, dict(expected), "float32") is None
    garbage = np.random.default_rng(1).standard_normal(expected["output"].shape)
    assert diagnose(case, inputs, {"output": garbage}, "float32") is None


@pytest.mark.parametrize("actual", [
    {"output": np.zeros(3)},  # wrong shape
    {"other": np.zeros((2, 4, 16, 64))},  # wrong name
    {"output": np.array(["a", "b"])},  # not numbers
    {"output": np.full((2, 4, 16, 64), np.nan)},
    {},
])
def test_an_unreadable_output_gives_none(actual):
    case = CASE["apply_rope.half.short"]
    inputs, _ = case_arrays(case, "float32")
    assert diagnose(case, inputs, actual, "float32") is None


def test_the_cost_is_capped(monkeypatch):
    case = CASE["sinusoidal_encoding.interleaved.dim"]
    inputs, expected = case_arrays(case, "float32")
    actual = {"output": m2m100_sinusoid(inputs["positions"], 64)}
    assert diagnose(case, inputs, actual, "float32", max_variants=5) is None  # the pair is beyond 5 variants
    found = diagnose(case, inputs, actual, "float32")
    assert found is not None and found.tried <= diagnosis.MAX_VARIANTS + 1
    monkeypatch.setattr(diagnosis, "MAX_ELEMENTS", 10)
    assert diagnose(case, inputs, actual, "float32") is None


def test_arguments_are_checked():
    case = CASE["apply_rope.half.short"]
    inputs, expected = case_arrays(case, "float32")
    with pytest.raises(TypeError, match="case"):
        diagnose("apply_rope.half.short", inputs, expected, "float32")
    with pytest.raises(ValueError, match="dtype"):
        diagnose(case, inputs, expected, "float8")
    with pytest.raises(TypeError, match="actual"):
        diagnose(case, inputs, [expected["output"]], "float32")
    with pytest.raises(ValueError, match="max_variants"):
        diagnose(case, inputs, expected, "float32", max_variants=0)


def test_every_finite_option_of_every_spec_function_is_in_the_catalogue():
    """Each keyword option with a finite set of values gets a variant for every other value."""
    cases = {c.function: c for c in build_cases([s for s in CASES if s.expect_error is None], dtypes=[])}
    for name, case in sorted(cases.items()):
        labels = {v.label for v in diagnosis.variants(case)}
        for option, value in case.params.items():
            if isinstance(value, bool):
                assert f"{option}={not value!r}" in labels, (name, option)


# -- identify -----------------------------------------------------------------------------------


def test_identify_fingerprints_an_m2m100_sinusoid():
    adapter = adapter_of(sinusoidal_encoding=m2m100_sinusoid, apply_rope=rope_of())
    progress = []
    found = identify(adapter, progress=lambda done, total, case_id: progress.append(done))
    assert [f.function for f in found] == ["apply_rope", "sinusoidal_encoding"]
    rope, sinusoid = found
    assert sinusoid.conventions == {"layout": "concat", "freq_denominator": "half_dim_minus_one"}
    assert sinusoid.verdict == "variant" and not sinusoid.unexplained
    assert sinusoid.as_spec == ["sinusoidal_encoding.concat.fairseq_offset",
                                "sinusoidal_encoding.concat.half_dim_minus_one"]
    # a full-width half-layout RoPE: the interleaved and partial cases are explained by that
    assert rope.conventions == {"layout": "half", "rotary_dim": None} and not rope.unexplained
    assert progress and progress[-1] == len(progress)
    text = format_fingerprints(found)
    assert "layout='concat', freq_denominator='half_dim_minus_one'" in text
    json.dumps([f.as_dict() for f in found])


def test_identify_reports_a_uniform_rescale_as_no_ntk_variant():
    (fp,) = identify(adapter_of(ntk_scaled_frequencies=keras_dynamic))
    assert fp.function == "ntk_scaled_frequencies"
    assert not fp.explained and fp.unexplained and fp.verdict in ("none", "partly")
    assert set(fp.as_spec) <= {"ntk_scaled_frequencies.s1_identity"}


def test_identify_lists_a_requested_function_the_adapter_lacks():
    (fp,) = identify(adapter_of(apply_rope=rope_of()), functions=["alibi_bias"])
    assert fp.verdict == "not implemented" and fp.summary == "not implemented"


def test_identify_checks_its_arguments():
    adapter = adapter_of(apply_rope=rope_of())
    with pytest.raises(TypeError, match="adapter"):
        identify(object())
    with pytest.raises(ValueError, match="apply_rope"):
        identify(adapter, functions=["aply_rope"])
    with pytest.raises(TypeError, match="functions"):
        identify(adapter, functions="apply_rope")
    with pytest.raises(ValueError, match="timeout"):
        identify(adapter, timeout=0)
    with pytest.raises(TypeError, match="fingerprints"):
        format_fingerprints([object()])


def test_run_identify_exit_statuses(capsys):
    assert run_identify("reference", functions=["aply_rope"], dtype="float64") == 2
    assert "near matches: apply_rope" in capsys.readouterr().err
    assert run_identify("no_such_adapter_module") == 2
    assert run_identify("reference", dtype="float8") == 2
    capsys.readouterr()
    assert run_identify("reference", functions=["alibi_slopes"], dtype="float64", as_json=True) == 0
    (fp,) = json.loads(capsys.readouterr().out)
    assert fp["function"] == "alibi_slopes" and fp["verdict"] == "spec" and not fp["unexplained"]


# -- built-in adapters ----------------------------------------------------------------------------


def test_transformers_m2m100_is_identified():
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from transformers.models.m2m_100.modeling_m2m_100 import M2M100SinusoidalPositionalEmbedding

    def sinusoidal_encoding(positions, dim, /, *, base=10_000.0, layout="interleaved", freq_denominator="dim",
                            position_offset=0):
        if base != 10_000.0:
            raise NotImplementedError("M2M100 has base 10000 built in")
        rows = np.asarray(positions).astype(np.int64) + int(position_offset)
        table = M2M100SinusoidalPositionalEmbedding.get_embedding(int(rows.max()) + 1, int(dim)).numpy()
        return table[rows]

    (fp,) = identify(adapter_of(sinusoidal_encoding=sinusoidal_encoding))
    assert fp.conventions == {"layout": "concat", "freq_denominator": "half_dim_minus_one"}
    assert not fp.unexplained and fp.explained


def test_keras_hub_dynamic_ntk_matches_no_ntk_variant():
    from posref.conformance.adapter import AdapterError
    from posref.conformance.worker import start_adapter

    if importlib.util.find_spec("keras_hub") is None or importlib.util.find_spec("jax") is None:
        pytest.skip("keras-hub and jax are not installed")
    try:  # in a worker, which sets KERAS_BACKEND=jax before keras is imported
        adapter = start_adapter("keras_hub", dtype="float32")
    except AdapterError as exc:
        pytest.skip(str(exc))
    with adapter:
        (fp,) = identify(adapter, functions=["ntk_scaled_frequencies"])
    assert not fp.explained and fp.unexplained
    assert all("no variant matches" in why for why in fp.unexplained.values())
