"""The Hugging Face transformers adapter: mapping sound, divergences exactly those listed."""

import importlib.metadata
import inspect
import math

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from posref.adapters import transformers as adapter_module  # noqa: E402

if adapter_module.available() is not None:
    pytest.skip(adapter_module.available(), allow_module_level=True)

from adapter_harness import run_adapter, statuses  # noqa: E402

import posref  # noqa: E402
from posref.conformance.adapter import AdapterError, load_adapter  # noqa: E402
from posref.conformance.runner import run_cases  # noqa: E402
from posref.golden.registry import Arange, CaseSpec, Normal, Values, build_cases  # noqa: E402

MODULE = "posref.adapters.transformers"
FUNCTIONS = {
    "rope_frequencies", "rope_cos_sin", "apply_rotary", "apply_rope", "apply_mrope", "sincos_2d_encoding",
    "linear_scaled_frequencies", "dynamic_ntk_frequencies", "dynamic_ntk_sequence_length", "yarn_frequencies",
    "yarn_attention_factor", "longrope_frequencies", "longrope_attention_factor", "llama3_scaled_frequencies",
    "deepseek_softmax_scale", "deberta_log_bucket", "t5_relative_bucket", "t5_relative_bias", "alibi_slopes",
    "alibi_bias", "sinusoidal_encoding",
}


@pytest.fixture(scope="module")
def adapter():
    return adapter_module.make_adapter(dtype="float32", device="cpu")


@pytest.mark.parametrize("dtype", adapter_module.ADAPTER_DTYPES)
def test_cases_conform_or_are_listed(dtype):
    results = run_adapter(MODULE, "transformers", dtype, FUNCTIONS)
    status = statuses(results)
    for case_id in ("apply_rope.half.hard_positions", "apply_rope.interleaved.hard_positions",
                    "apply_rope.half.partial_first", "apply_rope.interleaved.partial_first",
                    "apply_rope.half.partial_last", "apply_rope.half.position_offset",
                    "rope_cos_sin.interleaved.hard_positions", "apply_mrope.qwen3_vl.interleaved",
                    "t5_relative_bias.decoding_long", "t5_relative_bucket.bidirectional.far",
                    "alibi_slopes.h40", "alibi_slopes.h20", "sincos_2d_encoding.mae_vit_b",
                    "sinusoidal_encoding.concat.fairseq_offset"):
        assert status[case_id] == "pass", case_id
    for case_id in ("alibi_bias.symmetric.causal", "apply_rope.half.partial_head_dim_denominator",
                    "sinusoidal_encoding.interleaved.half_dim_minus_one", "yarn_frequencies.long_l0.half_dim.truncate"):
        assert status[case_id] == "not_implemented", case_id
    # BLOOM and MPT compute their own float32 slopes: the 12-head slopes rounded to
    # a 16-bit dtype are not theirs, so the bias cases run in float32 only.
    expected = "pass" if dtype == "float32" else "not_implemented"
    assert status["alibi_bias.key_index.causal"] == expected
    assert status["alibi_bias.last_key_anchored.causal"] == expected


def test_metadata():
    assert adapter_module.available() is None
    assert adapter_module.ADAPTER_VERSION == importlib.metadata.version("transformers")
    assert adapter_module.ADAPTER_NAME == "transformers"
    assert "float64" not in adapter_module.ADAPTER_DTYPES


def test_methods_are_called_like_the_spec_functions(adapter):
    """Same positional and keyword parameters, same defaults: a case's omitted options mean the same."""
    for name in FUNCTIONS:
        ours = inspect.signature(getattr(adapter, name)).parameters
        spec = inspect.signature(getattr(posref, name)).parameters
        assert list(ours) == list(spec), name
        for key, parameter in spec.items():
            assert ours[key].kind == parameter.kind, (name, key)
            assert ours[key].default == parameter.default, (name, key)


def test_cuda_without_a_device_is_refused(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(AdapterError, match="no CUDA device"):
        adapter_module.make_adapter(dtype="float32", device="cuda")


# -- cases beyond the golden registry -------------------------------------------------------

_SLOPES12 = [float(s) for s in posref.alibi_slopes(12)]
_SLOPES8 = [float(s) for s in posref.alibi_slopes(8)]

EXTRA = [
    CaseSpec(id="tf.apply_rope.proportional", function="apply_rope",
             inputs={"x": Normal((2, 6, 64)), "positions": Arange(0, 6)},
             params={"rotary_dim": 16, "freq_denominator": "head_dim", "rotated_slice": "first_pairs"},
             tolerance="rope", description="rope_type='proportional' (Gemma 4)"),
    CaseSpec(id="tf.apply_rope.proportional.long", function="apply_rope",
             inputs={"x": Normal((2, 4, 128)), "positions": Values([0, 4095, 131071, 1_048_575], "int64")},
             params={"rotary_dim": 32, "freq_denominator": "head_dim", "rotated_slice": "first_pairs",
                     "base": 1_000_000.0}, tolerance="rope", description="proportional at long context"),
    CaseSpec(id="tf.alibi_bias.falcon.h8", function="alibi_bias",
             inputs={"slopes": Values(_SLOPES8), "query_positions": Arange(0, 24), "key_positions": Arange(0, 24)},
             params={"form": "key_index", "scale": 0.125}, tolerance="linear_bias",
             description="Falcon, 8 heads, short: every product is exact in bfloat16"),
    CaseSpec(id="tf.alibi_bias.falcon.h12", function="alibi_bias",
             inputs={"slopes": Values(_SLOPES12), "query_positions": Arange(0, 24), "key_positions": Arange(0, 24)},
             params={"form": "key_index", "scale": 0.125}, tolerance="linear_bias",
             description="Falcon, 12 heads: slopes 2**-0.5 .. rounded to bfloat16"),
    CaseSpec(id="tf.alibi_bias.falcon.h8.long", function="alibi_bias",
             inputs={"slopes": Values(_SLOPES8), "query_positions": Values([0, 511, 2047], "int64"),
                     "key_positions": Arange(0, 2048)},
             params={"form": "key_index", "scale": 0.125, "causal": False}, tolerance="linear_bias",
             description="Falcon, keys beyond 256: products rounded to bfloat16"),
    CaseSpec(id="tf.alibi_bias.bloom.h8.long", function="alibi_bias",
             inputs={"slopes": Values(_SLOPES8), "query_positions": Values([0, 511, 2047], "int64"),
                     "key_positions": Arange(0, 2048)},
             params={"form": "key_index", "causal": False}, tolerance="linear_bias",
             description="BLOOM, the same keys: float32 products"),
    CaseSpec(id="tf.alibi_bias.mpt.decoding", function="alibi_bias",
             inputs={"slopes": Values(_SLOPES8), "query_positions": Arange(100, 110),
                     "key_positions": Arange(100, 110)},
             params={"form": "last_key_anchored"}, tolerance="linear_bias",
             description="MPT anchors at the newest key, wherever the keys start"),
    CaseSpec(id="tf.t5_relative_bias.offset_queries", function="t5_relative_bias",
             inputs={"table": Normal((32, 4)), "query_positions": Arange(7, 12), "key_positions": Arange(0, 12)},
             tolerance="t5_bias", description="compute_bias with past_seen_tokens=7"),
    CaseSpec(id="tf.t5_relative_bucket.float32_boundary", function="t5_relative_bucket",
             inputs={"relative_position": Arange(-300, 1)},
             params={"bidirectional": False, "num_buckets": 17, "max_distance": 27}, tolerance="t5_bucket",
             description="r = -12 sits exactly on a bucket boundary; float32 gives the lower bucket"),
    CaseSpec(id="tf.sinusoidal_encoding.distilbert", function="sinusoidal_encoding",
             inputs={"positions": Values([0, 1, 5, 100, 511], "int64")}, params={"dim": 64},
             tolerance="sinusoidal", description="DistilBERT's table (512 positions)"),
    CaseSpec(id="tf.sinusoidal_encoding.marian", function="sinusoidal_encoding",
             inputs={"positions": Values([[0, 1, 5], [100, 1000, 1023]], "int64")},
             params={"dim": 32, "layout": "concat"}, tolerance="sinusoidal", description="Marian's table"),
    CaseSpec(id="tf.apply_rotary.broadcast", function="apply_rotary",
             inputs={"x": Normal((3, 1, 8)), "angles": Normal((5, 4), 3.0)}, params={"layout": "interleaved"},
             tolerance="rotation", description="x and angles broadcast against each other"),
    CaseSpec(id="tf.yarn_attention_factor.both_mscales", function="yarn_attention_factor", inputs={},
             params={"scaling_factor": 40.0, "mscale": 0.707, "mscale_all_dim": 0.707}, tolerance="frequency",
             description="DeepSeek-V2: the ratio is 1"),
    CaseSpec(id="tf.yarn_attention_factor.mscale_only", function="yarn_attention_factor", inputs={},
             params={"scaling_factor": 40.0, "mscale": 0.707}, tolerance="frequency",
             description="only mscale set: transformers falls back to 0.1 ln s + 1"),
    CaseSpec(id="tf.dynamic_ntk_sequence_length.batch", function="dynamic_ntk_sequence_length",
             inputs={"positions": Values([[0, 5, 9], [3, 4, 9999]], "int64")},
             params={"original_max_position_embeddings": 4096}, tolerance="exact",
             description="the longest sequence of the batch decides"),
]

#: Extra cases that fail, per dtype, because the library diverges (see the module docstring).
EXTRA_DIVERGENCES = {
    "float32": {"tf.alibi_bias.falcon.h12", "tf.alibi_bias.falcon.h8.long", "tf.yarn_attention_factor.mscale_only"},
    "float16": {"tf.alibi_bias.falcon.h8.long", "tf.yarn_attention_factor.mscale_only"},
    "bfloat16": {"tf.yarn_attention_factor.mscale_only"},
}


@pytest.mark.parametrize("dtype", adapter_module.ADAPTER_DTYPES)
def test_extra_cases(dtype):
    cases = build_cases(EXTRA, dtypes=[dtype])
    results = run_cases(load_adapter(MODULE, dtype=dtype), cases)
    status = {r.case_id: r.status for r in results}
    assert not [r for r in results if r.status in ("crash", "wrong_error", "error", "timeout")], [r.message for r in results]
    failed = {case_id for case_id, s in status.items() if s == "fail"}
    assert failed == EXTRA_DIVERGENCES[dtype]
    if dtype != "float32":  # the 12-head slopes are not BLOOM/Falcon's once rounded
        assert status["tf.alibi_bias.falcon.h12"] == "not_implemented"


def test_falcon_rounds_alibi_to_bfloat16_in_float32(adapter):
    """Falcon's build_alibi_tensor multiplies bfloat16 slopes: 0.5 * 257 / 8 comes out as 128 / 8."""
    bias = adapter.alibi_bias(np.array(_SLOPES8), np.array([300]), np.arange(300), form="key_index", scale=0.125,
                              causal=False)
    assert bias.dtype == np.float32
    assert bias[0, 0, 257] == 16.0  # exact: 0.5 * 257 / 8 = 16.0625
    slope = np.float32(2.0**-0.5)
    bias12 = adapter.alibi_bias(np.array(_SLOPES12, dtype=np.float32), np.array([7]), np.arange(8),
                                form="key_index", scale=0.125)
    bf16_slope = 0.70703125  # 2**-0.5 rounded to bfloat16
    assert bias12[8, 0, 7] == pytest.approx(bf16_slope * 7 / 8, abs=2e-3)
    assert abs(bias12[8, 0, 7] - float(slope) * 7 / 8) > 1e-3


def test_bloom_keeps_float32_slopes(adapter):
    bias = adapter.alibi_bias(np.array(_SLOPES8), np.array([300]), np.arange(300), form="key_index", causal=False)
    assert bias[0, 0, 257] == 128.5


def test_yarn_attention_factor_needs_both_mscales(adapter):
    """With only mscale set, transformers ignores it: 0.1 ln 40 + 1, not 0.0707 ln 40 + 1."""
    got = adapter.yarn_attention_factor(40.0, mscale=0.707)
    assert got == pytest.approx(0.1 * math.log(40.0) + 1.0, rel=1e-12)
    assert posref.yarn_attention_factor(40.0, mscale=0.707) == pytest.approx(0.0707 * math.log(40.0) + 1.0)
    assert adapter.yarn_attention_factor(40.0, mscale=0.707, mscale_all_dim=0.707) == 1.0


def test_dynamic_length_follows_the_batch_and_resets(adapter):
    assert adapter.dynamic_ntk_sequence_length(np.array([[0, 9], [0, 9999]]), original_max_position_embeddings=4096) \
        == 10000
    assert adapter.dynamic_ntk_sequence_length(np.array([0, 4999]), original_max_position_embeddings=4096,
                                               cached_length=10000) == 10000
    assert adapter.dynamic_ntk_sequence_length(np.array([0, 99]), original_max_position_embeddings=4096,
                                               cached_length=10000) == 4096


def test_interleaved_cos_sin_repeat_each_pair(adapter):
    """rope_cos_sin by hand at position 1, dim 4, base 100: angles 1 and 0.1."""
    cos, sin = adapter.rope_cos_sin(np.array([1]), 4, base=100.0, layout="interleaved")
    np.testing.assert_allclose(cos[0], np.cos([1.0, 1.0, 0.1, 0.1]), rtol=1e-6)
    np.testing.assert_allclose(sin[0], np.sin([1.0, 1.0, 0.1, 0.1]), rtol=1e-6)
    cos, _ = adapter.rope_cos_sin(np.array([1]), 4, base=100.0, layout="half")
    np.testing.assert_allclose(cos[0], np.cos([1.0, 0.1, 1.0, 0.1]), rtol=1e-6)


def test_partial_last_rotates_only_the_last_channels(adapter):
    x = np.ones((1, 8), dtype=np.float32)
    got = adapter.apply_rope(x, np.array([3]), rotary_dim=4, rotated_slice="last")
    np.testing.assert_array_equal(got[0, :4], np.ones(4))
    angle = 3.0  # pair 0 of the last four channels: theta_0 = 1
    np.testing.assert_allclose(got[0, [4, 6]], [math.cos(angle) - math.sin(angle), math.cos(angle) + math.sin(angle)],
                               rtol=1e-6)


@pytest.mark.parametrize("call, words", [
    (lambda a: a.apply_rope(np.zeros((2, 8)), np.arange(2), rotary_dim=4, freq_denominator="head_dim"),
     "proportional"),
    (lambda a: a.apply_rope(np.zeros((2, 8)), np.arange(2), rotary_dim=4, rotated_slice="first_pairs"),
     "zeros"),
    (lambda a: a.apply_rope(np.zeros((2, 8)), np.arange(2), layout="interleaved", rotary_dim=4,
                            rotated_slice="last"), "apply_rotary_pos_emb_interleave"),
    (lambda a: a.apply_rope(np.zeros((2, 8)), np.arange(2), layout="neox"), "layouts are 'half' and 'interleaved'"),
    (lambda a: a.apply_rope(np.zeros((2, 8)), np.arange(2), position_offset=0.5), "fractional offset"),
    (lambda a: a.rope_cos_sin(np.array([0.5]), 4), "integer positions"),
    (lambda a: a.apply_mrope(np.zeros((2, 8)), np.zeros((3, 2), dtype=int), mrope_section=[1, 1, 2],
                             layout="interleaved"), "rotate_half"),
    (lambda a: a.yarn_frequencies(8, scaling_factor=2.0, original_max_position_embeddings=64,
                                  extrapolation_factor=0.5), "extrapolation factor"),
    (lambda a: a.yarn_frequencies(8, scaling_factor=2.0, original_max_position_embeddings=64,
                                  high_limit="half_dim"), "high_limit='dim'"),
    (lambda a: a.dynamic_ntk_sequence_length(np.arange(3), original_max_position_embeddings=8, reset=False),
     "reset=True"),
    (lambda a: a.dynamic_ntk_sequence_length(np.arange(3), original_max_position_embeddings=8, cached_length=4),
     "only\\s+grows"),
    (lambda a: a.t5_relative_bias(np.zeros((32, 2)), np.array([0, 2]), np.arange(4)), "past_seen_tokens"),
    (lambda a: a.t5_relative_bias(np.zeros((32, 2)), np.arange(2), np.arange(1, 3)), "0 .. S-1"),
    (lambda a: a.alibi_slopes(8, rule="paper", max_bias=4.0), "max_bias=8"),
    (lambda a: a.alibi_slopes(8, rule="bloom"), "no slope rule"),
    (lambda a: a.alibi_bias(np.array([0.5]), np.arange(3), np.arange(3), form="symmetric"), "not used by BLOOM"),
    (lambda a: a.alibi_bias(np.array([0.3]), np.arange(3), np.arange(3), form="key_index"), "not its slopes"),
    (lambda a: a.alibi_bias(np.array([0.5]), np.arange(3), np.arange(1, 4), form="key_index"), "0 .. S-1"),
    (lambda a: a.alibi_bias(np.array([0.5]), np.arange(3), np.arange(3), form="key_index", scale=0.3),
     "1/sqrt\\(head_dim\\)"),
    (lambda a: a.alibi_bias(np.array([0.5]), np.arange(3), np.arange(3), form="last_key_anchored", scale=0.5),
     "scale=1"),
    (lambda a: a.alibi_bias(np.array([0.5]), np.arange(3), np.array([0, 2, 3]), form="last_key_anchored"),
     "consecutive keys"),
    (lambda a: a.alibi_bias(np.array([0.3, 0.2]), np.arange(3), np.arange(3), form="last_key_anchored"),
     "not its slopes"),
    (lambda a: a.sinusoidal_encoding(np.arange(3), 8, base=100.0), "base 10000"),
    (lambda a: a.sinusoidal_encoding(np.arange(3), 8, position_offset=0.5), "integer positions"),
    (lambda a: a.sinusoidal_encoding(np.array([-1, 0]), 8, layout="concat",
                                     freq_denominator="half_dim_minus_one"), "non-negative"),
    (lambda a: a.sinusoidal_encoding(np.arange(3), 8, freq_denominator="half_dim_minus_one"), "no transformers model"),
    (lambda a: a.sinusoidal_encoding(np.array([20000]), 64), "Python loop"),
    (lambda a: a.sincos_2d_encoding((2, 2), 8, grouping="sin_cos"), "grouping='axis'"),
])
def test_unsupported_parameters_are_not_implemented(adapter, call, words):
    with pytest.raises(NotImplementedError, match=words):
        call(adapter)


def test_the_cli_applies_the_builtin_known_list_by_default(capfd, tmp_path):
    from posref.cli import main

    args = ["check", "--adapter", "transformers", "--dtype", "bfloat16", "--function", "yarn_attention_factor",
            "--max-examples", "0", "--no-progress"]
    assert main(args) == 0
    out = capfd.readouterr().out
    assert "known divergences of transformers" in out
    assert "yarn_attention_factor.mscale_only [fail]: YaRN attention factor: Hugging Face applies mscale" in out
    assert main(args + ["--strict"]) == 1
    assert main(args + ["--ignore-known"]) == 1
    out = capfd.readouterr().out
    assert "FAIL        yarn_attention_factor.mscale_only" in out
    assert "diagnosis: matches the spec with mscale=1.0" in out
