"""The golden cases of the field's methods: they build, cover every function, and say what they claim.

The field's methods are the families that ``posref/golden/cases_field.py``
held before the cases were split by family (RoPE scaling, xPos, multi-axis
and the relative schemes beyond Shaw, T5 and ALiBi); that module is now a
deprecated alias, checked at the end.

Values checked here are derived independently of posref: from the survey's
hand computations, by mpmath at 50 digits, or by exact rational arithmetic.
"""

from __future__ import annotations

import hashlib
import math
import re
import subprocess
import sys
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import posref
from posref.conformance.adapter import load_adapter
from posref.conformance.runner import case_arrays, run_cases
from posref.conformance.tolerance import TOLERANCE_CLASSES, CaseView, budgets
from posref.golden.cases import FAMILY_MODULES
from posref.golden.cases.multiaxis import _QWEN2VL_IDS
from posref.golden.cases.rope_scaling import PHI35_LONG_FACTOR, PHI35_SHORT_FACTOR
from posref.golden.registry import build_case, build_cases, round_to

#: The field's families, in the order ``cases_field.py`` held them.
FIELD_FAMILIES = ("rope_scaling", "xpos", "multiaxis", "transformer_xl", "deberta", "kerple", "sandwich", "fire",
                  "cope", "nope")
FIELD_CASES = [case for family in FIELD_FAMILIES for case in FAMILY_MODULES[family].CASES]
FIELD_NOT_GOLDEN = {name: reason for family in FIELD_FAMILIES
                    for name, reason in getattr(FAMILY_MODULES[family], "NOT_GOLDEN", {}).items()}
PUBLIC = {entry.name for entry in posref.spec_functions() if entry.family in FIELD_FAMILIES}
BY_ID = {c.id: c for c in FIELD_CASES}

mpmath.mp.dps = 50


@pytest.fixture(scope="module")
def built():
    """Every field case, with its low-precision variants, keyed by id."""
    return {case.id: case for case in build_cases(FIELD_CASES)}


def output(built, case_id, name="output"):
    return built[case_id].outputs[name]


def plain(dim, base):
    """RoPE inverse frequencies b^(-2i/d) at 50 digits."""
    return [mpmath.power(base, mpmath.mpf(-2 * i) / dim) for i in range(dim // 2)]


def assert_close(actual, expected, rtol=1e-14):
    expected = np.array([float(e) for e in expected])
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=0)


# -- structure -----------------------------------------------------------------------------------


def test_every_case_builds_with_its_low_precision_variants(built):
    assert len(built) == len(FIELD_CASES)
    for case in built.values():
        if case.expect_error is None and any(a.dtype.kind == "f" for a in case.inputs.values()):
            assert set(case.rounded) == {"float32", "float16", "bfloat16"}, case.id


def test_every_public_function_has_a_valid_and_an_invalid_case():
    assert set(FIELD_NOT_GOLDEN) <= PUBLIC
    names = PUBLIC - set(FIELD_NOT_GOLDEN)
    valid = {c.function for c in FIELD_CASES if c.expect_error is None}
    invalid = {c.function for c in FIELD_CASES if c.expect_error is not None}
    assert names - valid == set(), f"no golden case for {sorted(names - valid)}"
    assert names - invalid == set(), f"no invalid-input case for {sorted(names - invalid)}"
    assert {c.function for c in FIELD_CASES} <= PUBLIC
    assert PUBLIC <= set(posref.SPEC_FUNCTIONS)


def test_ids_are_unique_well_formed_and_named_after_their_function():
    ids = [c.id for c in FIELD_CASES]
    assert len(ids) == len(set(ids))
    for case in FIELD_CASES:
        assert re.fullmatch(r"[a-z0-9_][a-z0-9_.-]*", case.id), case.id
        assert case.id.startswith(case.function + "."), case.id


def test_ids_do_not_clash_with_the_seed_cases():
    from posref.golden.cases import CASES

    field = {id(c) for c in FIELD_CASES}
    seed_ids = {c.id for c in CASES if id(c) not in field}
    assert seed_ids.isdisjoint(BY_ID)
    assert len(seed_ids) + len(BY_ID) == len(CASES)


def test_every_case_says_what_it_exercises_and_names_a_known_tolerance():
    for case in FIELD_CASES:
        assert case.description.strip(), case.id
        if case.expect_error is None:
            assert case.tolerance in TOLERANCE_CLASSES, case.id
        else:
            assert case.expect_error in ("ValueError", "TypeError"), case.id
            assert case.error_match, case.id


#: Functions returning a tuple of Python floats: ``to_numpy`` turns such a tuple into one array,
#: so the runner sees one output where the case has two (``output_0``, ``output_1``).
SCALAR_TUPLES = {"yarn_correction_range"}


def test_the_reference_adapter_passes_every_case_at_float64(built):
    adapter = load_adapter("reference", dtype="float64")
    cases = [c for c in built.values() if c.function not in SCALAR_TUPLES]
    results = run_cases(adapter, cases, timeout=None)
    failed = {r.case_id: f"{r.status}: {r.message}" for r in results if r.status != "pass"}
    assert failed == {}
    assert len(results) == len(cases)


def test_the_reference_adapter_passes_the_scalar_tuple_cases(built):
    adapter = load_adapter("reference", dtype="float64")
    cases = [c for c in built.values() if c.function in SCALAR_TUPLES]
    results = run_cases(adapter, cases, timeout=None)
    failed = {r.case_id: f"{r.status}: {r.message}" for r in results if r.status != "pass"}
    assert failed == {}


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_every_tolerance_class_gives_a_budget_for_its_cases(built, dtype):
    for case in built.values():
        if case.expect_error is not None or (arrays := case_arrays(case, dtype)) is None:
            continue
        inputs, expected = arrays
        inputs = {n: a.astype(np.float64) if a.dtype.kind == "f" or a.dtype.name == "bfloat16" else a
                  for n, a in inputs.items()}
        allowed = budgets(CaseView(case.function, case.params, inputs, expected), case.tolerance, dtype)
        assert set(allowed) == set(expected), case.id
        for name, reference in expected.items():
            budget = np.broadcast_to(allowed[name], reference.shape)
            assert np.all(np.isfinite(budget)) and np.all(budget >= 0), (case.id, name)
            if dtype == "float32" and reference.dtype.kind == "f":
                # in float32 (activation and angle precision alike) the exact answer rounded once passes
                finite = np.isfinite(reference)
                rounded = round_to(reference[finite], dtype).astype(np.float64)
                assert np.all(np.abs(rounded - reference[finite]) <= budget[finite]), (case.id, name)


def test_truncated_yarn_ranges_are_not_near_a_rounding_edge():
    # the "exact" tolerance of a truncated range is fair only if the real value is well inside
    for case in FIELD_CASES:
        if case.function == "yarn_correction_range" and case.expect_error is None and case.tolerance == "exact":
            p = case.params
            for beta in (p.get("beta_fast", 32.0), p.get("beta_slow", 1.0)):
                x = p["dim"] * mpmath.log(p["original_max_position_embeddings"] / (2 * mpmath.pi * beta)) / (
                    2 * mpmath.log(p.get("base", 10_000.0)))
                assert abs(x - mpmath.nint(x)) > 1e-3, case.id


@settings(max_examples=20)
@given(st.sampled_from(sorted(BY_ID)))
def test_building_a_case_twice_gives_the_same_arrays(case_id):
    first, second = build_case(BY_ID[case_id], ()), build_case(BY_ID[case_id], ())
    for name in first.inputs:
        np.testing.assert_array_equal(first.inputs[name], second.inputs[name])
    for name in first.outputs:
        np.testing.assert_array_equal(first.outputs[name], second.outputs[name])


# -- RoPE scaling: the values the cases claim ---------------------------------------------------


@pytest.mark.parametrize(("label", "truncated", "exact"), [
    ("llama2", (20, 46), (20.944, 45.027)),
    ("qwen2_5", (23, 40), (23.596, 39.651)),
    ("deepseek_v3", (10, 23), (10.472, 22.513)),
    ("long_l0", (45, 70), (45.027, 69.109)),
    ("hf_old", (30, 55), None),
    ("long_l0.half_dim", (45, 63), (45.027, 63.0)),
])
def test_yarn_correction_ranges_match_the_survey_table(built, label, truncated, exact):
    got = output(built, f"yarn_correction_range.{label}.truncate", "output_0"), \
        output(built, f"yarn_correction_range.{label}.truncate", "output_1")
    assert tuple(float(v) for v in got) == truncated
    if exact is not None:
        case = built[f"yarn_correction_range.{label}.exact"]
        assert (round(float(case.outputs["output_0"]), 3), round(float(case.outputs["output_1"]), 3)) == exact


def yarn_mp(dim, base, l0, s, low, high):
    """YaRN frequencies from a given range, at 50 digits (the reference code's ramp)."""
    if low == high:
        high += mpmath.mpf("0.001")
    out = []
    for i, theta in enumerate(plain(dim, base)):
        ramp = min(max((i - low) / mpmath.mpf(high - low), 0), 1)
        keep = 1 - ramp
        out.append(theta / s * (1 - keep) + theta * keep)
    return out


@pytest.mark.parametrize(("case_id", "dim", "base", "l0", "s", "low", "high"), [
    ("yarn_frequencies.llama2.truncate", 128, 10_000, 4096, 4, 20, 46),
    ("yarn_frequencies.deepseek_v3.truncate", 64, 10_000, 4096, 40, 10, 23),
    ("yarn_frequencies.long_l0.half_dim.truncate", 128, 10_000, 131072, 8, 45, 63),
    ("yarn_frequencies.low_equals_high", 128, 10_000, 6, 4, 0, 0),
    ("yarn_frequencies.high_below_low", 128, 10_000, 4, 4, 0, -3),
])
def test_yarn_frequencies_follow_the_ramp(built, case_id, dim, base, l0, s, low, high):
    assert_close(output(built, case_id), yarn_mp(dim, base, l0, s, low, high))


def test_yarn_degenerate_ranges(built):
    theta = posref.rope_frequencies(128)
    guarded = output(built, "yarn_frequencies.low_equals_high")
    assert guarded[0] == theta[0] and np.allclose(guarded[1:], theta[1:] / 4, rtol=1e-15, atol=0)
    np.testing.assert_array_equal(output(built, "yarn_frequencies.high_below_low"), theta)
    assert_close(output(built, "yarn_frequencies.extrapolation0"), [t / 4 for t in plain(128, 10_000)])


def test_dynamic_ntk_around_the_trained_length(built):
    theta = posref.rope_frequencies(128)
    for length in (1, 4095, 4096):
        np.testing.assert_array_equal(output(built, f"dynamic_ntk_frequencies.l0_4096.len{length}"), theta)
    for length in (4097, 8192, 16384):
        alpha = 1 + mpmath.mpf(4) * (length - 4096) / 4096
        base = 10_000 * alpha ** (mpmath.mpf(128) / 126)
        assert_close(output(built, f"dynamic_ntk_frequencies.l0_4096.len{length}"), plain(128, base))
    # the survey's bases: 51 294 at 8192 and 135 402 at 16384
    for length, base in ((8192, 51_294), (16384, 135_402)):
        lowest = output(built, f"dynamic_ntk_frequencies.l0_4096.len{length}")[1]
        assert round(float(lowest ** (-64))) == base  # theta_1 = base'^(-2/128)


def test_dynamic_linear_switches_one_past_the_trained_length(built):
    theta = posref.rope_frequencies(128)
    np.testing.assert_array_equal(output(built, "dynamic_linear_frequencies.l0_4096.len4096"), theta)
    assert_close(output(built, "dynamic_linear_frequencies.l0_4096.len4097"),
                 [t * Fraction(4096, 4097) for t in plain(128, 10_000)])
    assert_close(output(built, "dynamic_linear_frequencies.fixed2.len8192"), [t / 2 for t in plain(64, 10_000)])
    assert_close(output(built, "dynamic_linear_frequencies.fixed2.len8193"),
                 [t * Fraction(4096, 8193) for t in plain(64, 10_000)])


def test_qwen_alpha_by_brute_force(built):
    for length in (2048, 2049, 4096, 4097, 32769):
        k = 0
        while 2048 * 2**k < length:
            k += 1
        alpha = 1 if length <= 2048 else 2 ** (k + 1) - 1
        base = 10_000 * mpmath.mpf(alpha) ** (mpmath.mpf(128) / 126)
        assert_close(output(built, f"qwen_dynamic_ntk_frequencies.l0_2048.len{length}"), plain(128, base))


def test_ntk_variants(built):
    s, d = 4, 128
    assert_close(output(built, "ntk_scaled_frequencies.d128.b10000.s4"),
                 plain(d, 10_000 * mpmath.mpf(s) ** (mpmath.mpf(d) / (d - 2))))
    fixed = [t * mpmath.mpf(s) ** (mpmath.mpf(-2 * (i + 1)) / d) for i, t in enumerate(plain(d, 10_000))]
    assert_close(output(built, "ntk_fixed_frequencies.fixed.d128.s4"), fixed)
    assert_close(output(built, "ntk_fixed_frequencies.mixed_b1.d128.s4"), fixed)
    a = mpmath.log(s) / (d / 2) ** 2
    mixed = [t / mpmath.exp(a * (i + 1) ** 2) for i, t in enumerate(plain(d, 10_000))]
    assert_close(output(built, "ntk_fixed_frequencies.mixed_b2.d128.s4"), mixed)
    # the survey's ratios new/old at the highest and lowest frequency
    ratio = output(built, "ntk_fixed_frequencies.fixed.d128.s4") / posref.rope_frequencies(d)
    assert (round(float(ratio[0]), 3), round(float(ratio[-1]), 3)) == (0.979, 0.25)


def llama3_mp(dim, base, s, low, high, l0):
    out = []
    for theta in plain(dim, base):
        wavelength = 2 * mpmath.pi / theta
        if wavelength < l0 / mpmath.mpf(high):
            out.append(theta)
        elif wavelength > l0 / mpmath.mpf(low) or low == high:
            out.append(theta / s)
        else:
            gamma = (l0 / wavelength - low) / (high - low)
            out.append((1 - gamma) * theta / s + gamma * theta)
    return out


@pytest.mark.parametrize(("case_id", "dim", "s", "high"), [
    ("llama3_scaled_frequencies.llama3_1", 128, 8, 4),
    ("llama3_scaled_frequencies.defaults", 128, 8, 4),
    ("llama3_scaled_frequencies.llama3_2", 64, 32, 4),
    ("llama3_scaled_frequencies.llama4_scout", 128, 16, 1),
])
def test_llama3_piecewise_rule(built, case_id, dim, s, high):
    got = output(built, case_id)
    assert np.all(np.isfinite(got))
    assert_close(got, llama3_mp(dim, 500_000, s, 1, high, 8192))


def test_llama3_cases_reach_every_branch(built):
    theta = posref.rope_frequencies(128, base=500_000.0)
    ratio = output(built, "llama3_scaled_frequencies.llama3_1") / theta
    kept, divided = np.isclose(ratio, 1, rtol=1e-15), np.isclose(ratio, 1 / 8, rtol=1e-15)
    assert kept.any() and divided.any() and (~kept & ~divided).any()
    scout = output(built, "llama3_scaled_frequencies.llama4_scout") / theta
    assert np.all(np.isclose(scout, 1, rtol=1e-15) | np.isclose(scout, 1 / 16, rtol=1e-15))
    # hand values of the docstring example: L0 = 100, dim 8
    hand = [1.0, (1 - (100 / (20 * math.pi) - 1) / 3) * 0.1 / 8 + (100 / (20 * math.pi) - 1) / 3 * 0.1,
            1.25e-3, 1.25e-4]
    np.testing.assert_allclose(output(built, "llama3_scaled_frequencies.short_l0"), hand, rtol=1e-14)


def test_longrope_switches_strictly_after_the_trained_length(built):
    theta = plain(96, 10_000)
    assert len(PHI35_SHORT_FACTOR) == len(PHI35_LONG_FACTOR) == 48
    short = [t / mpmath.mpf(f) for t, f in zip(theta, PHI35_SHORT_FACTOR)]
    long = [t / mpmath.mpf(f) for t, f in zip(theta, PHI35_LONG_FACTOR)]
    for length, expected in ((1, short), (4095, short), (4096, short), (4097, long), (131072, long)):
        assert_close(output(built, f"longrope_frequencies.phi3_5_mini.len{length}"), expected)


def test_attention_factors_by_hand(built):
    assert float(output(built, "yarn_attention_factor.s4")) == pytest.approx(0.1 * math.log(4) + 1, rel=1e-15)
    assert float(output(built, "yarn_attention_factor.deepseek_v3")) == 1.0
    assert float(output(built, "yarn_attention_factor.s_below_one")) == 1.0
    assert float(output(built, "yarn_attention_factor.override")) == 0.8
    ratio = (0.1 * math.log(16) + 1) / (0.05 * math.log(16) + 1)
    assert float(output(built, "yarn_attention_factor.ratio")) == pytest.approx(ratio, rel=1e-15)
    scale = float(output(built, "deepseek_softmax_scale.deepseek_v3"))
    assert round(scale * math.sqrt(192), 4) == 1.8739  # the survey's computed value
    assert float(output(built, "deepseek_softmax_scale.no_mscale")) == pytest.approx(192**-0.5, rel=1e-15)
    # ln 32 / ln 4096 = 5 / 12 exactly; ln 4 / ln 2 = 2
    assert float(output(built, "longrope_attention_factor.phi3_5_mini")) == pytest.approx(math.sqrt(17 / 12), rel=1e-15)
    assert float(output(built, "longrope_attention_factor.l0_2")) == pytest.approx(math.sqrt(3), rel=1e-15)


def test_sequence_length_rule_cases(built):
    expected = {
        "initial.max4094": 4096, "initial.max4095": 4096, "initial.max4096": 4097, "batch_max": 10000,
        "cached.shorter_pass": 10000, "cached.growth": 10001, "cached.reset": 4096, "cached.no_reset": 10000,
        "cached.length_l0_no_reset": 10000, "cached.length_l0_minus_one_resets": 4096,
    }
    for label, value in expected.items():
        got = output(built, f"dynamic_ntk_sequence_length.{label}")
        assert got.dtype == np.int64 and int(got) == value, label


# -- xPos, multi-axis ----------------------------------------------------------------------------


def test_xpos_centring_of_odd_and_even_lengths(built):
    zeta0 = 2 / 7  # pair 0 for every dim
    for centering, shift in (("ceil_half", 3), ("floor_half", 2), ("none", 0)):
        got = output(built, f"xpos_scales.{centering}.len5")[:, 0]
        np.testing.assert_allclose(got, [zeta0 ** ((p - shift) / 512) for p in range(5)], rtol=1e-15)
    np.testing.assert_array_equal(output(built, "xpos_scales.ceil_half.len8"), output(built, "xpos_scales.floor_half.len8"))
    assert not np.array_equal(output(built, "xpos_scales.ceil_half.len5"), output(built, "xpos_scales.floor_half.len5"))


def test_xpos_key_scales_of_a_cached_prefix(built):
    got = output(built, "xpos_scales.keys.cached_prefix")  # positions 1000..1003, N = 2048, centre 1024
    zeta = [(2 * i + 0.4 * 128) / (1.4 * 128) for i in range(64)]
    expected = [[mpmath.mpf(z) ** (-mpmath.mpf(p - 1024) / 512) for z in zeta] for p in range(1000, 1004)]
    np.testing.assert_allclose(got, np.array(expected, dtype=float), rtol=1e-14)


def test_mrope_ids_of_the_cases_are_qwen2_vl_ids(built):
    np.testing.assert_array_equal(output(built, "mrope_position_ids.text_image_text"), _QWEN2VL_IDS)
    video = [[0, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4], [0, 1, 2, 2, 3, 3, 2, 2, 3, 3, 4], [0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 4]]
    np.testing.assert_array_equal(output(built, "mrope_position_ids.video"), video)
    rows = np.array(_QWEN2VL_IDS)
    assert not (np.array_equal(rows[0], rows[1]) or np.array_equal(rows[1], rows[2]))


def test_mrope_angles_pick_the_right_coordinate(built):
    theta = plain(128, 1_000_000)
    axis = [0] * 16 + [1] * 24 + [2] * 24  # contiguous [16, 24, 24]
    expected = [[_QWEN2VL_IDS[axis[i]][n] * theta[i] for i in range(64)] for n in range(11)]
    np.testing.assert_allclose(output(built, "mrope_angles.qwen2_vl.contiguous"), np.array(expected, dtype=float),
                               rtol=1e-14, atol=0)
    # Qwen3-VL: T H W T H W ... below 60, then T
    axis3 = [(i % 3 if i < 60 else 0) for i in range(64)]
    theta3 = plain(128, 5_000_000)
    expected3 = [[_QWEN2VL_IDS[axis3[i]][n] * theta3[i] for i in range(64)] for n in range(11)]
    np.testing.assert_allclose(output(built, "mrope_angles.qwen3_vl.interleaved"), np.array(expected3, dtype=float),
                               rtol=1e-14, atol=0)


def test_sincos_2d_mae_table(built):
    table = output(built, "sincos_2d_encoding.mae_vit_b")
    assert table.shape == (197, 768)
    np.testing.assert_array_equal(table[0], 0.0)
    np.testing.assert_allclose((table[1:] ** 2).sum(axis=1), 384.0, rtol=1e-13)
    # token 1 + r * 14 + c: column c fills the first block (MAE), frequencies 10000^(-k/192)
    r, c = 5, 9
    omega = [mpmath.power(10_000, -mpmath.mpf(k) / 192) for k in range(192)]
    row = [mpmath.sin(c * w) for w in omega] + [mpmath.cos(c * w) for w in omega]
    row += [mpmath.sin(r * w) for w in omega] + [mpmath.cos(r * w) for w in omega]
    np.testing.assert_allclose(table[1 + r * 14 + c], np.array(row, dtype=float), rtol=0, atol=1e-15)


def test_axial_angles_of_both_orders_are_the_same_blocks_swapped(built):
    xy, yx = output(built, "axial_rope_angles.grid14.xy"), output(built, "axial_rope_angles.grid14.yx")
    np.testing.assert_array_equal(xy[:, :16], yx[:, 16:])
    omega = np.array([float(mpmath.power(10_000, -mpmath.mpf(4 * k) / 64)) for k in range(16)])
    np.testing.assert_allclose(xy[3 * 14 + 11, :16], 11 * omega, rtol=1e-15)  # row 3, column 11
    np.testing.assert_allclose(xy[3 * 14 + 11, 16:], 3 * omega, rtol=1e-15)


# -- relative schemes ----------------------------------------------------------------------------


def deberta_bucket_exact(r, bucket_size, max_position):
    """Brute force in rationals: the smallest n with (top/mid)^n >= (|r|/mid)^(mid-1)."""
    mid, top = bucket_size // 2, max_position - 1
    a = abs(r)
    if a <= mid:
        return r
    target = Fraction(a, mid) ** (mid - 1)
    n, power = 0, Fraction(1)
    while power < target:
        n, power = n + 1, power * Fraction(top, mid)
    return mid + n if r > 0 else -(mid + n)


def test_deberta_buckets_by_exact_arithmetic(built):
    case = built["deberta_log_bucket.b256.m512.boundaries"]
    rel = case.inputs["relative_position"].tolist()
    assert [deberta_bucket_exact(r, 256, 512) for r in rel] == case.outputs["output"].tolist()
    survey = {129: 129, 256: 192, 511: 255, 512: 256, 4000: 444}  # the survey's computed values
    got = dict(zip(rel, case.outputs["output"].tolist()))
    assert all(got[r] == b and got[-r] == -b for r, b in survey.items())
    small = built["deberta_log_bucket.b4.m11.exact_ceiling"]
    expected = [deberta_bucket_exact(r, 4, 11) for r in small.inputs["relative_position"].tolist()]
    assert expected == small.outputs["output"].tolist()
    assert dict(zip(small.inputs["relative_position"].tolist(), expected))[250] == 5


def test_deberta_sweep_by_exact_arithmetic(built):
    case = built["deberta_log_bucket.b256.m512.sweep"]
    rel = case.inputs["relative_position"].tolist()
    assert case.outputs["output"].tolist() == [deberta_bucket_exact(r, 256, 512) for r in rel]


def test_relative_bias_cases_by_hand(built):
    # KERPLE power with p = 1 is ALiBi: -m (i - j) below the diagonal, 0 above
    alibi = output(built, "kerple_power_bias.alibi")
    i, j = np.arange(10)[:, None], np.arange(10)[None, :]
    slopes = np.array([0.5, 0.25, 0.125, 0.0625])[:, None, None]
    np.testing.assert_array_equal(alibi, -slopes * np.maximum(i - j, 0))
    # KERPLE log, the survey's row: r1 = 1, r2 = 0.5 at distances 0..4 (query 4096)
    log_bias = output(built, "kerple_log_bias.decoding_long")[0, 0]
    distances = [4096 - k for k in (0, 1, 255, 256, 257, 4095, 4096)]
    np.testing.assert_allclose(log_bias, [-float(mpmath.log(1 + mpmath.mpf(d) / 2)) for d in distances], rtol=1e-15)
    # FIRE, the survey's values: psi ratio (600, 0) = 1.0, (600, 590) = 0.1686
    fire = output(built, "fire_normalized_distance.beyond_threshold")  # queries [511, 512, 513, 600, 4096]
    keys = [0, 1, 511, 590, 600, 4096]
    assert round(float(fire[3, keys.index(0)]), 4) == 1.0
    assert round(float(fire[3, keys.index(590)]), 4) == 0.1686
    # Sandwich: 0 at distance 0 and for future keys (causal), negative elsewhere
    sandwich = output(built, "sandwich_bias.causal")
    assert np.all(sandwich[:, np.arange(24), np.arange(24)] == 0)
    upper = np.triu(np.ones((24, 24), dtype=bool))
    assert np.all(sandwich[:, upper] == 0) and np.all(sandwich[:, ~upper] < 0)


def test_nope_returns_its_input(built):
    for case_id in ("nope.prefill", "nope.cache_offset"):
        case = built[case_id]
        np.testing.assert_array_equal(case.outputs["output"], case.inputs["x"])



# -- the deprecated module ------------------------------------------------------------------------

#: The ids of ``cases_field.FIELD_CASES`` before the split by family, in their order: 261 ids, sha256 of
#: the ids joined by newlines.
OLD_FIELD_IDS = (261, "32394e80217b4c559c23c588f42db612c0ec14da297e510c7960a44d82d9acd7")


def test_the_deprecated_module_warns_where_it_is_imported_and_gives_the_old_cases(monkeypatch):
    monkeypatch.delitem(sys.modules, "posref.golden.cases_field", raising=False)
    monkeypatch.delattr(posref.golden, "cases_field", raising=False)
    with pytest.warns(DeprecationWarning, match=r"posref\.golden\.cases_field is deprecated"):
        import posref.golden.cases_field as old
    # the old cases in the old order; the module follows its families, so cases added to them since
    # (Llama 4's NoPE temperature, YaRN's zero mscale) come with them
    ids = [c.id for c in old.FIELD_CASES if c.function not in ("nope_attention_temperature",)
           and c.id not in ("yarn_attention_factor.zero_mscale",)]
    assert (len(ids), hashlib.sha256("\n".join(ids).encode()).hexdigest()) == OLD_FIELD_IDS
    # the same objects as the family modules', only yarn_attention_factor.mscale_only (of cases.py) left out
    assert [id(c) for c in old.FIELD_CASES] == [id(c) for c in FIELD_CASES if c.id != "yarn_attention_factor.mscale_only"]
    assert old.FIELD_NOT_GOLDEN == FIELD_NOT_GOLDEN == {}
    assert old.PHI35_LONG_FACTOR is PHI35_LONG_FACTOR and old.PHI35_SHORT_FACTOR is PHI35_SHORT_FACTOR
    assert old.FIELD_FAMILIES == FIELD_FAMILIES


def test_the_warning_names_the_importing_line():
    # in a fresh interpreter: under pytest, its assertion-rewriting hook imports posref (a pytest plugin)
    code = ("import warnings\n"
            "with warnings.catch_warnings(record=True) as caught:\n"
            "    warnings.simplefilter('always')\n"
            "    import posref.golden.cases_field\n"
            "print([(w.category.__name__, w.filename, w.lineno) for w in caught])")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "[('DeprecationWarning', '<string>', 4)]"


def test_the_new_package_does_not_warn():
    command = [sys.executable, "-W", "error", "-c", "import posref.golden.cases"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0 and completed.stderr == "", completed.stderr
