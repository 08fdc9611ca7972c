"""The error model is safe and sharp.

Safe: correct float32, float16 and bfloat16 implementations, computed the
way libraries compute them (``tests/meta/correct.py``), pass every golden
case they implement.  Sharp: each deliberately broken implementation
(``tests/meta/broken.py``) fails at least one case of the functions it
breaks, in every dtype where the bug exists, bfloat16 included.  Together
they pin the tolerance classes of :mod:`posref.conformance.tolerance` from
both sides.

The cases are the golden cases, far positions included, of every spec
function the correct implementation has a method for (a method named
after a catalogue entry is found by its name; nothing lists them by hand).
Every error model a golden case names, except ``exact``, must be exercised
that way and caught at least once by a broken variant
(:func:`test_every_error_model_is_pinned_from_both_sides`).  ``EXTRA_CASES`` adds
regions the golden corpus does not cover yet: ALiBi slopes that are not
powers of two at distances above 256, a padding position for learned
tables with an offset, and partial rotary over the first pairs of the half
layout.

Run with ``-s`` to print the table of budget shares.
"""

import contextlib
import functools
import math

import numpy as np
import pytest

import posref
from hypothesis import given, settings
from hypothesis import strategies as st

from posref import _arith
from posref.conformance.adapter import Adapter, load_adapter
from posref.conformance.runner import run_cases
from posref.conformance.tolerance import UNIT_ROUNDOFF, CaseView, budgets, t5_near_boundary
from posref.golden.cases import CASES
from posref.golden.registry import Arange, CaseSpec, Integers, Normal, Values, build_case, build_cases
from tests.meta import broken, correct

DTYPES = ("float32", "float16", "bfloat16")
FAILED = ("fail", "crash", "wrong_error", "error", "timeout")

_SLOPES12 = [2.0 ** -k for k in range(1, 9)] + [2.0 ** (-(2 * k - 1) / 2) for k in range(1, 5)]


#: Cases for regions that ``posref.golden.cases`` does not cover yet.
EXTRA_CASES = [
    CaseSpec(id="meta.alibi_bias.distance.long_odd_slopes", function="alibi_bias",
             inputs={"slopes": Values(_SLOPES12), "query_positions": Values([1000, 4095, 8191], "int64"),
                     "key_positions": Arange(0, 8192)},
             params={"form": "distance", "causal": True}, tolerance="linear_bias",
             description="slopes that are not powers of two times distances above 256: a bfloat16 product "
                         "rounds the distance and then the product"),
    CaseSpec(id="meta.learned_position_embedding.left_padding", function="learned_position_embedding",
             inputs={"table": Normal((12, 4)), "positions": Values([[-1, -1, 0, 1], [0, 1, 2, 3]], "int64")},
             params={"position_offset": 2, "padding_idx": 1}, tolerance="gather",
             description="OPT-style offset 2; position -1 (left padding) reads the zeroed padding row"),
    CaseSpec(id="meta.apply_rope.half.first_pairs", function="apply_rope",
             inputs={"x": Normal((2, 5, 64)), "positions": Integers((5,), 0, 200_000, sort=True)},
             params={"rotary_dim": 16, "rotated_slice": "first_pairs", "freq_denominator": "head_dim"},
             tolerance="rope", description="Hugging Face 'proportional': the first 8 pairs (j, j + 32) rotate"),
    *[CaseSpec(id=f"meta.dynamic_ntk_frequencies.d{dim}.s{s:g}.l0_2048.len2049", function="dynamic_ntk_frequencies",
               inputs={}, params={"dim": dim, "base": 10_000.0, "scaling_factor": s,
                                  "original_max_position_embeddings": 2048, "sequence_length": 2049},
               tolerance="frequency",
               description="one past L0 with a large factor: s L / L0 and s - 1 near 32 cancel to alpha near 1, "
                           "so float32 alpha carries the roundings of terms 32 times larger")
      for dim, s in ((4, 32.0), (4, 32.41), (128, 32.41))],
]


@functools.lru_cache(maxsize=None)
def all_cases():
    specs = [c for c in CASES if c.function in correct.FUNCTIONS]
    return tuple(build_cases(specs) + build_cases(EXTRA_CASES))


@functools.lru_cache(maxsize=None)
def run(cls, dtype):
    """Results of ``cls(dtype)`` on the cases of the functions it targets."""
    cases = [c for c in all_cases() if c.function in cls.targets]
    adapter = Adapter(target=cls(dtype), name=cls.__name__, version="0", dtype=dtype, device="cpu",
                      source=f"tests.meta:{cls.__name__}")
    if issubclass(cls, broken.Broken):
        # broken code may overflow (positions above 65504 in float16); hardware does so silently
        with np.errstate(all="ignore"):
            return tuple(run_cases(adapter, cases, timeout=None))
    return tuple(run_cases(adapter, cases, timeout=None))


def worst_shares(results):
    """The largest budget share per function over the cases that ran."""
    shares = {}
    for r in results:
        if r.status in ("pass", "fail"):
            shares[r.function] = max(shares.get(r.function, 0.0), r.budget_share)
    return shares


def _table(shares):
    return "\n".join(f"  {name:32s} {share:.3f}" for name, share in sorted(shares.items()))


# -- safety: correct code passes ------------------------------------------------------------


def test_every_error_model_is_pinned_from_both_sides():
    """Each tolerance class of a golden case is run by the correct code and attacked by a broken one."""
    used = {}
    for case in CASES:
        if case.expect_error is None and case.tolerance != "exact":
            used.setdefault(case.tolerance, set()).add(case.function)
    attacked = {name for cls in broken.BROKEN for name in cls.targets}
    unsafe = {t: sorted(fs) for t, fs in used.items() if not fs & set(correct.FUNCTIONS)}
    blunt = {t: sorted(fs) for t, fs in used.items() if not fs & attacked}
    assert not unsafe, f"error models no correct implementation exercises: {unsafe}"
    assert not blunt, f"error models no broken implementation attacks: {blunt}"


def test_extra_cases_target_functions_the_correct_code_implements():
    missing = sorted({c.function for c in EXTRA_CASES} - set(correct.FUNCTIONS))
    assert not missing, missing


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cls", correct.VARIANTS, ids=lambda cls: cls.__name__)
def test_correct_implementations_pass_every_case(cls, dtype):
    results = run(cls, dtype)
    bad = [f"{r.case_id}: {r.status} {r.message}" for r in results if r.status in FAILED]
    shares = worst_shares(results)
    print(f"\n{cls.__name__} {dtype}: worst budget share per function\n{_table(shares)}")
    assert not bad, "\n".join(bad)
    assert max(shares.values()) <= 1.0, _table(shares)
    # every targeted function ran at least one value case in this dtype
    assert set(shares) == {c.function for c in all_cases() if c.function in cls.targets and c.expect_error is None}


def test_correct_implementations_reject_the_invalid_inputs():
    # invalid cases without floating inputs run in every dtype (those with floating inputs have no
    # low-precision variant and are skipped by the runner)
    invalid = {c.id for c in all_cases() if c.expect_error is not None
               and not any(a.dtype.kind == "f" for a in c.inputs.values())}
    statuses = {r.case_id: r.status for r in run(correct.Correct, "bfloat16") if r.case_id in invalid}
    assert len(statuses) >= 5 and set(statuses.values()) == {"pass"}, statuses


def test_the_reference_passes_everything_at_float64():
    adapter = load_adapter("reference", dtype="float64")
    cases = build_cases(CASES) + build_cases(EXTRA_CASES)
    results = run_cases(adapter, cases)
    # the spec with NumPy's own kernels is within the float64 budget of the correctly rounded corpus...
    assert {r.status for r in results} == {"pass"}
    assert 0.0 < max(r.budget_share for r in results) <= 1.0
    # ...and the spec in the corpus's own arithmetic is the corpus, bit for bit
    with _arith.precise():
        exact = run_cases(adapter, cases)
    assert {r.status for r in exact} == {"pass"}
    assert max(r.budget_share for r in exact) == 0.0


# -- sharpness: broken code fails ------------------------------------------------------------


def _worst_failure(results):
    failing = [r for r in results if r.status == "fail"]
    worst = max(failing, key=lambda r: r.budget_share)
    return f"{len(failing)} failing cases, worst {worst.case_id} at {worst.budget_share:.3g}x: {worst.message}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cls", broken.BROKEN, ids=lambda cls: cls.__name__)
def test_broken_implementation_fails_where_the_bug_exists(cls, dtype):
    results = run(cls, dtype)
    assert results, f"no golden case for {cls.targets}"
    failing = [r for r in results if r.status == "fail"]
    if dtype in cls.caught_in:
        assert failing, (f"{cls.__name__} ({dtype}) passed every case of {', '.join(cls.targets)}; "
                         f"worst share {max(worst_shares(results).values()):.3g}")
        print(f"\n{cls.__name__} {dtype}: {_worst_failure(results)}")
    else:
        # the bug does not exist in this dtype: the code computes what the correct code computes
        assert {r.status for r in results} <= {"pass", "skipped"}


def test_every_bug_is_caught_from_bfloat16_cases_alone():
    assert len(broken.BROKEN) >= 40
    assert [cls.__name__ for cls in broken.BROKEN if "bfloat16" not in cls.caught_in] == []
    only_low = sorted(cls.__name__ for cls in broken.BROKEN if cls.caught_in != broken.ALL_DTYPES)
    # exactly the bugs about computing in the activation dtype are absent from float32
    assert only_low == ["AlibiProductInActivationDtype", "CosSinInActivationDtype", "FrequenciesInActivationDtype",
                        "KerpleInActivationDtype", "MRopePositionIdsInActivationDtype", "PositionsInActivationDtype",
                        "T5LogInActivationDtype"]


def test_every_broken_variant_names_its_bug():
    for cls in broken.BROKEN:
        assert cls.__doc__ and cls.targets and set(cls.targets) <= set(correct.FUNCTIONS), cls.__name__
        assert set(cls.caught_in) <= set(DTYPES), cls.__name__


def _frequency_table_with(digits):
    class Rounded(correct.Correct):
        targets = ("rope_frequencies",)

        def inv_freq(self, dim, base):
            table = super().inv_freq(dim, base).astype(np.float64)
            return np.array([float(f"{v:.{digits - 1}e}") for v in table], dtype=np.float32)

    Rounded.__name__ = f"FrequencyTable{digits}Digits"
    return Rounded


def test_the_frequency_budget_tells_six_significant_digits_from_float32():
    # the documented cost of admitting both the power and the exp form: 7 digits mostly pass
    six = run(_frequency_table_with(6), "bfloat16")
    assert all(r.status == "fail" for r in six if r.case_id != "rope_frequencies.d2.b10000"
               and ".invalid." not in r.case_id)
    assert min(r.budget_share for r in six if r.status == "fail") >= 4
    assert {r.status for r in run(_frequency_table_with(8), "bfloat16")} == {"pass"}


# -- the model's terms, one at a time -------------------------------------------------------


def test_tables_from_configuration_are_judged_in_the_angle_precision():
    # a frequency table has no activation-dtype input: bfloat16 gets the float32 budget
    view = CaseView("rope_frequencies", {"dim": 8}, {}, {"output": np.array([1.0, 0.1, 0.01, 0.001])})
    assert np.array_equal(budgets(view, "frequency", "bfloat16")["output"],
                          budgets(view, "frequency", "float32")["output"])
    # theta = 1: exp(0) rounded twice, one more rounding; theta = 0.001: |ln theta| = 6.91
    u = UNIT_ROUNDOFF["float32"]
    assert budgets(view, "frequency", "bfloat16")["output"] == pytest.approx(
        [3 * u, (2 * math.log(10) + 3) * u * 0.1, (4 * math.log(10) + 3) * u * 0.01,
         (6 * math.log(10) + 3) * u * 0.001])
    angles = CaseView("rope_angles", {"dim": 2}, {"positions": np.array([3.0])}, {"output": np.array([[3.0]])})
    assert budgets(angles, "angle", "float16")["output"][0, 0] == pytest.approx(4 * u * 3.0)


def test_alibi_slope_budget_covers_integer_powers_of_a_rounded_base():
    # BLOOM: slope k of a power-of-two series 2**(-8k/N) is base**k with base = fl32(2**(-8/N)),
    # so it carries k times the base's rounding error; k = 64 for the last of 64 heads.
    slopes = 2.0 ** (-8.0 * np.arange(1, 65) / 64)
    view = CaseView("alibi_slopes", {"num_heads": 64}, {}, {"output": slopes})
    budget = budgets(view, "linear_bias", "bfloat16")["output"]
    u = UNIT_ROUNDOFF["float32"]
    assert budget[-1] == pytest.approx((64 + 8 * math.log(2) + 3) * u * 2.0**-8)
    assert budget[0] == pytest.approx((1 + math.log(2) / 8 + 3) * u * slopes[0])
    # a given slope times a distance is one product (and one by the scale) and one cast
    view = CaseView("alibi_bias", {}, {"slopes": np.array([0.5])}, {"output": np.array([[[-4.0, -np.inf]]])})
    assert budgets(view, "linear_bias", "bfloat16")["output"][0, 0].tolist() == pytest.approx(
        [(UNIT_ROUNDOFF["bfloat16"] + 2 * u) * 4.0, 0.0])


def test_t5_slack_threshold_is_computed_from_the_float32_logarithm():
    # 32 buckets, bidirectional: L = 8 log buckets over ln(128/8) = ln 16; n = 16 and 32 give v = 2 and 4
    rel = np.array([16, 32, -16, 17, 15, 3])
    assert t5_near_boundary(rel, bidirectional=True, num_buckets=32, max_distance=128).tolist() == [
        True, True, True, False, False, False]
    threshold = 2 * (2 * 8 / math.log(16) + 6 * 8) * UNIT_ROUNDOFF["float32"]
    assert 5e-6 < threshold < 1e-5
    # float64 logarithms leave no room away from exact boundaries
    assert t5_near_boundary(np.array([16, 17]), bidirectional=True, num_buckets=32, max_distance=128,
                            dtype="float64").tolist() == [True, False]


@pytest.mark.parametrize("function, dim, base, scale, options", [
    ("yarn_frequencies", 64, 10_000.0, 40.0, {"original_max_position_embeddings": 4096, "truncate": False}),
    ("llama3_scaled_frequencies", 128, 500_000.0, 8.0, {}),
])
def test_blended_tables_add_the_weight_error_only_where_the_weight_acts(function, dim, base, scale, options):
    params = {"dim": dim, "base": base, "scaling_factor": scale, **options}
    out = posref.SPEC_FUNCTIONS[function].function(dim, base=base, scaling_factor=scale, **options)
    budget = budgets(CaseView(function, params, {}, {"output": out}), "frequency", "bfloat16")["output"]
    plain = budgets(CaseView("rope_frequencies", {}, {}, {"output": out}), "frequency", "bfloat16")["output"]
    weight_term = budget - plain - 5 * UNIT_ROUNDOFF["float32"] * out
    theta = posref.rope_frequencies(dim, base=base)
    blended = ~np.isclose(out, theta, rtol=1e-12) & ~np.isclose(out, theta / scale, rtol=1e-12)
    assert 0 < blended.sum() < dim // 4
    assert np.all(weight_term[blended] > 1e-3 * budget[blended])  # the weight's error reaches them
    # far from the blend the table is plain theta or theta / s: no weight term there
    far = ~blended & ~np.roll(blended, 1) & ~np.roll(blended, -1)
    assert far.sum() > dim // 4 and np.all(np.abs(weight_term[far]) <= 1e-9 * budget[far])


#: The case of the dynamic NTK cancellation: dim 4, L0 = 2048, L = 2049, factors near 32.
_DYNAMIC_NTK = {"dim": 4, "base": 10_000.0, "original_max_position_embeddings": 2048, "sequence_length": 2049}


def _float32_alpha(s, length, l0):
    """Hugging Face's ``factor * seq_len / max_position_embeddings - (factor - 1)`` with a tensor ``seq_len``."""
    f32 = np.float32
    return float(f32(s) * f32(length) / f32(l0) - f32(s - 1))


@pytest.mark.parametrize("s", [32.0, 32.41, 32.47262881382296, 31.9, 2.0, 4.0])
@pytest.mark.parametrize("length", [1, 2048, 2049, 4096, 1_000_000])
def test_dynamic_ntk_alpha_error_bounds_the_float32_cancellation(s, length):
    from fractions import Fraction

    from posref.conformance.tolerance import dynamic_ntk_alpha_error

    l0 = 2048
    bar_l = max(length, l0)
    exact = Fraction(s) * bar_l / l0 - (Fraction(s) - 1)  # the rational alpha of the float64 factor
    alpha, d_alpha = dynamic_ntk_alpha_error(scaling_factor=s, original_max_position_embeddings=l0,
                                             sequence_length=length)
    assert alpha == pytest.approx(float(exact), rel=1e-15)
    # the bound, term by term: s rounded, the product, the quotient; s - 1; the difference
    u = 2.0**-24
    assert d_alpha == pytest.approx((3 * s * bar_l / l0 + (s - 1) + float(exact)) * u, rel=1e-15)
    assert abs(Fraction(_float32_alpha(s, bar_l, l0)) - exact) <= d_alpha


def test_dynamic_ntk_float32_alpha_error_is_beyond_a_few_roundings_of_alpha():
    # s = 32 exactly: every term is a float32 number and alpha = 1.015625 is exact
    assert _float32_alpha(32.0, 2049, 2048) == 1.015625
    # a factor near 32: alpha = 1 + 32.4726/2048 = 1.0158558, float32 1.0158539, 1.9e-6 relative
    s = 32.47262881382296
    exact = 1 + s / 2048
    got = _float32_alpha(s, 2049, 2048)
    assert got == pytest.approx(1.0158539, abs=1e-7) and exact == pytest.approx(1.0158558, abs=1e-7)
    assert abs(got - exact) / exact > 30 * UNIT_ROUNDOFF["float32"]  # ~31 roundings of alpha: 2**-19 at 32
    # so the frequency budget must carry it: at dim 4, theta_1 = 1 / (100 alpha) moves by the relative error of alpha
    from posref.conformance.tolerance import dynamic_ntk_alpha_error

    alpha, d_alpha = dynamic_ntk_alpha_error(scaling_factor=s, **{k: _DYNAMIC_NTK[k] for k in (
        "original_max_position_embeddings", "sequence_length")})
    theta = np.array([1.0, 1 / (100 * exact)])
    out = posref.dynamic_ntk_frequencies(4, base=1e4, scaling_factor=s, original_max_position_embeddings=2048,
                                         sequence_length=2049)
    np.testing.assert_allclose(out, theta, rtol=1e-14)
    params = {**_DYNAMIC_NTK, "scaling_factor": s}
    budget = budgets(CaseView("dynamic_ntk_frequencies", params, {}, {"output": out}), "frequency", "bfloat16")
    u = UNIT_ROUNDOFF["float32"]
    plain = (2 * np.abs(np.log(theta)) + 3) * u * theta
    # pair 0 (theta = 1) does not depend on alpha; pair 1 = d/2 - 1 carries all of alpha's relative error
    assert budget["output"].tolist() == pytest.approx((plain + np.array([0.0, theta[1] * d_alpha / alpha])).tolist())
    assert theta[1] * abs(got - exact) / exact < budget["output"][1] - plain[1]


@pytest.mark.parametrize("options, error, match", [
    ({"scaling_factor": 0.5}, ValueError, "scaling_factor"),
    ({"scaling_factor": "2"}, TypeError, "scaling_factor"),
    ({"sequence_length": 0}, ValueError, "sequence_length"),
    ({"original_max_position_embeddings": 2048.0}, TypeError, "original_max_position_embeddings"),
    ({"dtype": "int8"}, ValueError, "dtype"),
])
def test_dynamic_ntk_alpha_error_validates_its_arguments(options, error, match):
    from posref.conformance.tolerance import dynamic_ntk_alpha_error

    arguments = {"scaling_factor": 2.0, "original_max_position_embeddings": 2048, "sequence_length": 4096, **options}
    with pytest.raises(error, match=match):
        dynamic_ntk_alpha_error(**arguments)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("s", [32.0, 32.41, 32.47262881382296])
def test_float32_dynamic_ntk_passes_one_past_the_trained_length(s, dtype):
    spec = CaseSpec(id=f"h.dynamic_ntk.d4.s{s!r}", function="dynamic_ntk_frequencies", inputs={},
                    params={**_DYNAMIC_NTK, "scaling_factor": s}, tolerance="frequency")
    for variant in (correct.Correct, correct.HuggingFaceDynamicNtk):
        result = _run_one(spec, variant(dtype), dtype)
        assert result.status == "pass" and result.budget_share < 0.5, (variant.__name__, result.message)
    assert _run_one(spec, broken.DynamicNtkWithoutExponent(dtype), dtype).status == "fail"
    assert _run_one(spec, broken.DynamicNtkLengthOffByOne(dtype), dtype).status == "fail"


@pytest.mark.parametrize("dim", [4, 128])
@pytest.mark.parametrize("factor, status", [(0.5, "pass"), (3.0, "fail")])
def test_the_alpha_term_is_sharp(dim, factor, status):
    # alpha moved by a multiple of its own budget, everything else as the Hugging Face form computes it
    s = 32.41
    from posref.conformance.tolerance import dynamic_ntk_alpha_error

    alpha, d_alpha = dynamic_ntk_alpha_error(scaling_factor=s, original_max_position_embeddings=2048,
                                             sequence_length=2049)

    class AlphaMoved(correct.HuggingFaceDynamicNtk):
        def dynamic_ntk_alpha(self, scaling_factor, length, original_max_position_embeddings):
            return np.float32(alpha + factor * d_alpha)

    spec = CaseSpec(id=f"h.dynamic_ntk.d{dim}.moved", function="dynamic_ntk_frequencies", inputs={},
                    params={**_DYNAMIC_NTK, "dim": dim, "scaling_factor": s}, tolerance="frequency")
    assert _run_one(spec, AlphaMoved("bfloat16"), "bfloat16").status == status


def test_rope_budget_follows_the_rotated_channels_of_first_pairs():
    x = np.ones((1, 8))
    view = CaseView("apply_rope", {"rotary_dim": 2, "rotated_slice": "first_pairs"},
                    {"x": x, "positions": np.array([0.0])}, {"output": x})
    budget = budgets(view, "rope", "bfloat16")["output"][0]
    u, ua = UNIT_ROUNDOFF["bfloat16"], UNIT_ROUNDOFF["float32"]
    rotated = 2 * (ua + 2 * u) + u  # channels 0 and 4 form the one rotated pair
    assert budget.tolist() == pytest.approx([rotated, u, u, u, rotated, u, u, u])


def test_xpos_scale_budget_counts_the_exponent_the_base_vector_and_the_power():
    # dim 2 (zeta_0 = 2/7), B = 1, N = 5 centred at ceil(5/2) = 3: p = 0 has e = 3, scale 3.5**3
    p = np.arange(5)
    scales = posref.xpos_scales(p, 2, scale_base=1.0)
    view = CaseView("xpos_scales", {"dim": 2, "scale_base": 1.0}, {"positions": p}, {"output": scales})
    budget = budgets(view, "xpos_scale", "bfloat16")["output"][:, 0]
    ua = UNIT_ROUNDOFF["float32"]
    assert budget[0] == pytest.approx((2 * 3 * math.log(3.5) + 4 * 3 + 4) * ua * 3.5**3)
    assert budget[3] == pytest.approx(4 * ua)  # the centre: scale 1, only the power and the reciprocal
    assert np.array_equal(budget, budgets(view, "xpos_scale", "float32")["output"][:, 0])


def test_xpos_budget_scales_the_rotation_and_adds_the_scale_error():
    x = np.array([[1.0, 0.0]])
    # uncentred position 0: angle 0, scale 1, exponent 0
    view = CaseView("apply_xpos", {"centering": "none"}, {"x": x, "positions": np.array([0])}, {"output": x})
    u, ua = UNIT_ROUNDOFF["bfloat16"], UNIT_ROUNDOFF["float32"]
    assert budgets(view, "xpos", "bfloat16")["output"][0].tolist() == pytest.approx(
        [2 * ua + 2 * u + (4 * ua + u), 2 * ua + 2 * u])
    # position 4 with B = 1: pair scale (2/7)**4 multiplies the rotation terms
    y = posref.apply_xpos(x, [4], centering="none", scale_base=1.0)
    view = CaseView("apply_xpos", {"centering": "none", "scale_base": 1.0}, {"x": x, "positions": np.array([4])},
                    {"output": y})
    s, phi_error = (2 / 7) ** 4, 3 * ua * 4.0  # theta_0 = 1: (2 |ln 1| + 3) u_a |4|
    expected = s * (2 * ua + 2 * u + phi_error) + ((2 * 4 * math.log(3.5) + 4 * 4 + 4) * ua + u) * np.abs(y[0])
    assert budgets(view, "xpos", "bfloat16")["output"][0] == pytest.approx(expected)


@pytest.mark.parametrize("interleaved, driven", [(False, 2), (True, 1)])
def test_mrope_angle_budget_reads_the_coordinate_that_drives_each_pair(interleaved, driven):
    # dim 8, theta = 1, 0.1, 0.01, 0.001; sections [2, 1, 1]: height drives pair 2 (contiguous) or 1 (interleaved)
    positions = np.array([[0], [1000], [0]])
    order = "round_robin" if interleaved else "blocks"
    params = {"dim": 8, "mrope_section": [2, 1, 1], "section_order": order}
    phi = posref.mrope_angles(positions, 8, mrope_section=[2, 1, 1], section_order=order)
    budget = budgets(CaseView("mrope_angles", params, {"positions": positions}, {"output": phi}), "angle",
                     "bfloat16")["output"][0]
    theta = 10.0 ** -driven
    expected = np.zeros(4)
    expected[driven] = (2 * abs(math.log(theta)) + 4) * UNIT_ROUNDOFF["float32"] * 1000 * theta
    assert budget.tolist() == pytest.approx(expected.tolist())


def test_axial_budgets_follow_the_coordinate_of_each_block():
    # base 100, dim 8: both axes use [1, 0.1]; xy puts the column (500) on pairs 0, 1
    coords = np.array([0, 500])
    ua = UNIT_ROUNDOFF["float32"]
    phi = posref.axial_rope_angles(coords, 8, base=100.0)
    view = CaseView("axial_rope_angles", {"dim": 8, "base": 100.0}, {"positions_2d": coords}, {"output": phi})
    assert budgets(view, "angle", "float16")["output"].tolist() == pytest.approx(
        [4 * ua * 500, (2 * math.log(10) + 4) * ua * 50, 0, 0])
    x = np.ones(8)
    y = posref.apply_axial_rope(x, coords, base=100.0)
    view = CaseView("apply_axial_rope", {"base": 100.0}, {"x": x, "positions_2d": coords}, {"output": y})
    u = UNIT_ROUNDOFF["float16"]
    rope = budgets(view, "rope", "float16")["output"]
    assert rope[4:].tolist() == pytest.approx((2 * (ua + 2 * u) + u * np.abs(y[4:])).tolist())  # row 0: no angle
    assert rope[0] == pytest.approx(2 * (ua + 2 * u + 3 * ua * 500) + u * abs(y[0]))


def test_sinusoidal_budget_reads_grid_coordinates_and_distances():
    u, ua = UNIT_ROUNDOFF["bfloat16"], UNIT_ROUNDOFF["float32"]
    # a 1 x 2 grid, dim 4, class token: one frequency (1); token 2 is column 1, block a in xy order
    table = posref.sincos_2d_encoding((1, 2), 4, class_token=True)
    view = CaseView("sincos_2d_encoding", {"grid_shape": [1, 2], "dim": 4, "class_token": True}, {},
                    {"output": table})
    budget = budgets(view, "sinusoidal", "bfloat16")["output"]
    assert budget[0].tolist() == [0.0, 0.0, 0.0, 0.0]  # the class-token row is exactly zero
    assert budget[2].tolist() == pytest.approx((np.array([3 * ua, 3 * ua, 0, 0]) + ua + u * np.abs(table[2]))
                                               .tolist())
    # Transformer-XL: channel k (sine) and k + d/2 (cosine) share the angle delta * omega_k
    encoding = posref.transformer_xl_relative_encoding([1000], 4, base=100.0)
    view = CaseView("transformer_xl_relative_encoding", {"dim": 4, "base": 100.0},
                    {"distances": np.array([1000])}, {"output": encoding})
    angle_part = budgets(view, "sinusoidal", "bfloat16")["output"][0] - u * np.abs(encoding[0]) - ua
    assert angle_part.tolist() == pytest.approx([3 * ua * 1000, (2 * math.log(10) + 3) * ua * 100] * 2)


def test_sandwich_budget_sums_the_error_of_every_cosine():
    u, ua = UNIT_ROUNDOFF["float16"], UNIT_ROUNDOFF["float32"]
    params = {"dim": 4, "num_heads": 2, "base": 100.0}
    bias = posref.sandwich_bias([1000], [0], **params)  # (2, 1, 1)
    view = CaseView("sandwich_bias", params, {"query_positions": np.array([1000]), "key_positions": np.array([0])},
                    {"output": bias})
    budget = budgets(view, "sandwich", "float16")["output"][:, 0, 0]
    # k = 1, 2: omega = 0.1, 0.01; angles 100 and 10
    phi = np.array([100.0, 10.0])
    kernel = np.cos(phi).sum() - 2
    error = ((2 * math.log(10) + 3) * ua * 100 + (4 * math.log(10) + 3) * ua * 10 + 2 * ua
             + 1 * ua * np.abs(np.cos(phi)).sum() + ua * abs(kernel))
    assert budget.tolist() == pytest.approx([error / 4 + (2 * ua + u) * abs(bias[0, 0, 0]),
                                             error / 8 + (2 * ua + u) * abs(bias[1, 0, 0])])


def test_kerple_budgets_follow_the_kernel_terms():
    u, ua = UNIT_ROUNDOFF["bfloat16"], UNIT_ROUNDOFF["float32"]
    q, k = np.array([4]), np.array([0, 4])
    log_bias = posref.kerple_log_bias(q, k, r1=[2.0], r2=[0.5])  # distances 4, 0: t = 2, 0
    view = CaseView("kerple_log_bias", {}, {"query_positions": q, "key_positions": k, "r1": np.array([2.0]),
                                            "r2": np.array([0.5])}, {"output": log_bias})
    assert budgets(view, "kerple", "bfloat16")["output"][0, 0].tolist() == pytest.approx(
        [2 * ua * (2 / 3 + 1) + (2 * ua + u) * 2 * math.log(3), 2 * ua])
    power_bias = posref.kerple_power_bias(q, k, a=[0.5], p=[2.0])
    view = CaseView("kerple_power_bias", {}, {"query_positions": q, "key_positions": k, "a": np.array([0.5]),
                                              "p": np.array([2.0])}, {"output": power_bias})
    assert budgets(view, "kerple", "bfloat16")["output"][0, 0].tolist() == pytest.approx(
        [((4 * math.log(4) + 3) * ua + u) * 8, 0.0])


# -- properties: random configurations -------------------------------------------------------


def _run_one(spec, implementation, dtype):
    case = build_case(spec)
    adapter = Adapter(target=implementation, name="h", version="0", dtype=dtype, device="cpu", source="h")
    quiet = np.errstate(all="ignore") if isinstance(implementation, broken.Broken) else contextlib.nullcontext()
    with quiet:
        return run_cases(adapter, [case], timeout=None)[0]


@given(variant=st.sampled_from(correct.VARIANTS), dim=st.sampled_from([8, 32, 64, 128]),
       base=st.sampled_from([10.0, 10_000.0, 500_000.0, 1e6]), start=st.integers(0, 2**20 - 16),
       layout=st.sampled_from(["half", "interleaved"]), dtype=st.sampled_from(DTYPES))
def test_correct_rope_passes_and_an_off_by_one_fails_at_any_position(variant, dim, base, start, layout, dtype):
    spec = CaseSpec(id=f"h.rope.{dim}.{int(base)}.{start}.{layout}", function="apply_rope",
                    inputs={"x": Normal((2, 8, dim)), "positions": Arange(start, start + 8)},
                    params={"base": base, "layout": layout}, tolerance="rope")
    passed = _run_one(spec, variant(dtype), dtype)
    assert passed.status == "pass", passed.message
    assert _run_one(spec, broken.PositionsPlusOne(dtype), dtype).status == "fail"


@given(num_heads=st.integers(1, 256), rule=st.sampled_from(["paper", "mpt"]),
       max_bias=st.sampled_from([8.0, 16.0, 5.0]))
def test_correct_alibi_slopes_pass_for_any_head_count(num_heads, rule, max_bias):
    # the spec has one rule; the correct code computes it the paper's way or MPT's (its own option)
    spec = CaseSpec(id=f"h.alibi.{rule}.{num_heads}.{max_bias:g}", function="alibi_slopes", inputs={},
                    params={"num_heads": num_heads, "max_bias": max_bias}, tolerance="linear_bias")
    result = _run_one(spec, correct.Correct("bfloat16", slopes=rule), "bfloat16")
    assert result.status == "pass", result.message


@given(bidirectional=st.booleans(), per_side=st.integers(4, 128), extra=st.integers(1, 5000))
def test_correct_t5_buckets_pass_for_any_configuration(bidirectional, per_side, extra):
    num_buckets = 2 * per_side if bidirectional else per_side
    max_distance = per_side // 2 + extra
    spec = CaseSpec(id=f"h.t5.{int(bidirectional)}.{num_buckets}.{max_distance}", function="t5_relative_bucket",
                    inputs={"relative_position": Arange(-2 * max_distance - 3, 2 * max_distance + 4)},
                    params={"bidirectional": bidirectional, "num_buckets": num_buckets,
                            "max_distance": max_distance}, tolerance="t5_bucket")
    result = _run_one(spec, correct.make("float32"), "float32")
    assert result.status == "pass", result.message


@given(variant=st.sampled_from([correct.Correct, correct.Float32CorrectionRange]),
       dim=st.sampled_from([32, 64, 128]), base=st.sampled_from([10_000.0, 500_000.0, 1e6]),
       scale=st.sampled_from([2.0, 4.0, 8.0, 16.0, 40.0]), l0=st.sampled_from([2048, 4096, 8192, 32768]),
       truncate=st.booleans())
def test_correct_yarn_passes_for_any_configuration(variant, dim, base, scale, l0, truncate):
    spec = CaseSpec(id=f"h.yarn.{dim}.{int(base)}.{int(scale)}.{l0}.{int(truncate)}", function="yarn_frequencies",
                    inputs={}, params={"dim": dim, "base": base, "scaling_factor": scale,
                                       "original_max_position_embeddings": l0, "truncate": truncate},
                    tolerance="frequency")
    result = _run_one(spec, variant("bfloat16"), "bfloat16")
    assert result.status == "pass", result.message


@given(dim=st.sampled_from([32, 64, 128]), base=st.sampled_from([10_000.0, 500_000.0]),
       scale=st.sampled_from([2.0, 8.0, 16.0, 32.0]), l0=st.sampled_from([1024, 8192, 32768]),
       factors=st.sampled_from([(1.0, 4.0), (1.0, 1.0), (2.0, 8.0), (0.5, 2.0)]))
def test_correct_llama3_passes_for_any_configuration(dim, base, scale, l0, factors):
    spec = CaseSpec(id=f"h.llama3.{dim}.{int(base)}.{int(scale)}.{l0}.{factors[0]:g}.{factors[1]:g}",
                    function="llama3_scaled_frequencies", inputs={},
                    params={"dim": dim, "base": base, "scaling_factor": scale, "low_freq_factor": factors[0],
                            "high_freq_factor": factors[1], "original_max_position_embeddings": l0},
                    tolerance="frequency")
    result = _run_one(spec, correct.make("bfloat16"), "bfloat16")
    assert result.status == "pass", result.message


@settings(max_examples=30)
@given(variant=st.sampled_from(correct.VARIANTS), start=st.integers(0, 2**20 - 16),
       offsets=st.tuples(st.integers(0, 4096), st.integers(0, 4096)),
       config=st.sampled_from([([16, 24, 24], False), ([24, 20, 20], True), ([4, 6, 6], False)]),
       base=st.sampled_from([10_000.0, 1e6, 5e6]), layout=st.sampled_from(["half", "interleaved"]),
       dtype=st.sampled_from(DTYPES))
def test_correct_mrope_passes_and_an_off_by_one_fails_at_any_position(variant, start, offsets, config, base, layout,
                                                                       dtype):
    section, interleaved = config
    ids = [list(range(start + o, start + o + 6)) for o in (0, *offsets)]  # temporal, height, width rows
    spec = CaseSpec(id=f"h.mrope.{start}.{offsets[0]}.{offsets[1]}.{sum(section)}.{int(base)}.{layout}",
                    function="apply_mrope",
                    inputs={"x": Normal((2, 6, 2 * sum(section))), "positions": Values(ids, "int64")},
                    params={"base": base, "mrope_section": section,
                            "section_order": "round_robin" if interleaved else "blocks", "layout": layout},
                    tolerance="rope")
    passed = _run_one(spec, variant(dtype), dtype)
    assert passed.status == "pass", passed.message
    assert _run_one(spec, broken.PositionsPlusOne(dtype), dtype).status == "fail"


@settings(max_examples=30)
@given(variant=st.sampled_from(correct.VARIANTS), start=st.integers(0, 2**20 - 16), extra=st.integers(0, 2**20),
       centering=st.sampled_from(["ceil_half", "floor_half", "none"]), downscale=st.booleans(),
       layout=st.sampled_from(["half", "interleaved"]), dtype=st.sampled_from(DTYPES))
def test_correct_xpos_passes_and_an_off_by_one_fails_at_any_position(variant, start, extra, centering, downscale,
                                                                      layout, dtype):
    length = start + 8 + extra
    # a scale base that keeps every scale within (2/7)**(+-4): finite in float16 and float32
    scale_base = float(max(512, 2 ** math.ceil(math.log2(length / 4))))
    spec = CaseSpec(id=f"h.xpos.{start}.{extra}.{centering}.{int(downscale)}.{layout}", function="apply_xpos",
                    inputs={"x": Normal((8, 32)), "positions": Arange(start, start + 8)},
                    params={"scale_base": scale_base, "centering": centering, "downscale": downscale,
                            "layout": layout, "sequence_length": length}, tolerance="xpos")
    passed = _run_one(spec, variant(dtype), dtype)
    assert passed.status == "pass", passed.message
    assert _run_one(spec, broken.PositionsPlusOne(dtype), dtype).status == "fail"


@settings(max_examples=30)
@given(variant=st.sampled_from(correct.VARIANTS),
       coords=st.lists(st.tuples(st.integers(0, 2**17), st.integers(0, 2**17)).filter(lambda c: c[0] != c[1]),
                       min_size=1, max_size=6),
       axis_order=st.sampled_from(["xy", "yx"]), frequencies=st.sampled_from(["per_axis", "even_odd"]),
       layout=st.sampled_from(["half", "interleaved"]), dtype=st.sampled_from(DTYPES))
def test_correct_axial_rope_passes_and_swapped_axes_fail_at_any_coordinate(variant, coords, axis_order, frequencies,
                                                                           layout, dtype):
    grid = [[c[0] for c in coords], [c[1] for c in coords]]
    spec = CaseSpec(id=f"h.axial.{len(coords)}.{coords[0][0]}.{coords[0][1]}.{axis_order}.{frequencies}.{layout}",
                    function="apply_axial_rope",
                    inputs={"x": Normal((len(coords), 32)), "positions_2d": Values(grid, "int64")},
                    params={"axis_order": axis_order, "frequencies": frequencies, "layout": layout}, tolerance="rope")
    passed = _run_one(spec, variant(dtype), dtype)
    assert passed.status == "pass", passed.message
    assert _run_one(spec, broken.AxialAxesSwapped(dtype), dtype).status == "fail"
