"""The case registry: deterministic, independent seeds, honest error cases."""

import ml_dtypes
import numpy as np
import pytest

import posref
from posref.golden.cases import CASES, NOT_GOLDEN
from posref.golden.registry import (
    Arange,
    CaseSpec,
    Integers,
    Normal,
    Values,
    build_case,
    build_cases,
    call_with,
    case_seed,
    round_to,
)

ROTARY = CaseSpec(
    id="t.rotary", function="apply_rotary",
    inputs={"x": Normal((3, 4)), "angles": Normal((3, 2))}, params={"layout": "interleaved"},
)


def test_case_ids_are_unique_and_functions_known():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert {c.function for c in CASES} <= set(posref.SPEC_FUNCTIONS)


def test_every_spec_function_has_a_valid_and_an_invalid_case():
    valid = {c.function for c in CASES if c.expect_error is None}
    invalid = {c.function for c in CASES if c.expect_error is not None}
    names = set(posref.SPEC_FUNCTIONS) - set(NOT_GOLDEN)
    assert names - valid == set(), f"no golden case for {sorted(names - valid)}"
    assert names - invalid == set(), f"no invalid-input case for {sorted(names - invalid)}"


def test_seed_depends_on_the_id_only():
    alone = build_case(ROTARY)
    other = CaseSpec(id="t.other", function="apply_rotary", inputs={"x": Normal((2, 2)), "angles": Normal((2, 1))})
    together = {c.id: c for c in build_cases([other, ROTARY])}["t.rotary"]
    np.testing.assert_array_equal(alone.inputs["x"], together.inputs["x"])
    assert alone.seed == together.seed == case_seed("t.rotary")
    assert case_seed("t.rotary") != case_seed("t.rotary2")


def test_inputs_are_reproducible_from_the_seed():
    case = build_case(ROTARY)
    rng = np.random.default_rng(case.seed)
    np.testing.assert_array_equal(case.inputs["x"], rng.standard_normal((3, 4)))
    np.testing.assert_array_equal(case.inputs["angles"], rng.standard_normal((3, 2)))


def test_rounded_inputs_and_their_outputs():
    case = build_case(ROTARY)
    x_bf16 = case.rounded["bfloat16"]["inputs.x"]
    assert x_bf16.dtype == ml_dtypes.bfloat16
    # bfloat16 keeps the top 16 bits of the float32 pattern (round to nearest even):
    # a value reconstructed from those bits differs from the input by at most half a unit.
    x32 = case.inputs["x"].astype(np.float32)
    spacing = np.spacing(np.abs(x_bf16.astype(np.float32)))  # float32 spacing
    assert np.all(np.abs(x_bf16.astype(np.float64) - case.inputs["x"]) <= 2.0**-8 * np.abs(x32) + spacing)
    # the expected output for the rounded inputs is the rotation of the rounded inputs
    x = x_bf16.astype(np.float64)
    a = case.rounded["bfloat16"]["inputs.angles"].astype(np.float64)
    first = x[..., 0::2] * np.cos(a) - x[..., 1::2] * np.sin(a)
    np.testing.assert_allclose(case.rounded["bfloat16"]["outputs.output"][..., 0::2], first, rtol=0, atol=1e-15)


def test_round_to_matches_hand_values():
    assert round_to(np.array([1.0 + 2.0**-9]), "bfloat16").astype(np.float64)[0] == 1.0  # tie -> even
    assert round_to(np.array([1.0 + 3 * 2.0**-9]), "bfloat16").astype(np.float64)[0] == 1.0 + 2.0**-7
    assert round_to(np.array([70000.0]), "float16").astype(np.float64)[0] == np.inf
    assert round_to(np.array([0.1]), "float32").dtype == np.float32


def test_integer_only_cases_carry_no_rounded_copies():
    case = build_case(CaseSpec(id="t.angles", function="rope_angles", inputs={"positions": Arange(0, 4)},
                               params={"dim": 4}))
    assert case.rounded == {}
    np.testing.assert_array_equal(case.outputs["output"][:, 0], [0, 1, 2, 3])


def test_call_with_fills_positional_scalars_from_params():
    out = call_with(posref.rope_angles, {"positions": np.array([2])}, {"dim": 2, "base": 4.0})
    np.testing.assert_array_equal(out, [[2.0]])


def test_error_case_must_really_raise():
    good = CaseSpec(id="t.err", function="rope_frequencies", inputs={}, params={"dim": 3},
                    expect_error="ValueError", error_match="dim")
    case = build_case(good)
    assert case.outputs == {} and case.expect_error == "ValueError"
    silent = CaseSpec(id="t.err2", function="rope_frequencies", inputs={}, params={"dim": 4},
                      expect_error="ValueError", error_match="dim")
    with pytest.raises(ValueError, match="the spec raised nothing"):
        build_case(silent)
    wrong = CaseSpec(id="t.err3", function="rope_frequencies", inputs={}, params={"dim": 3},
                     expect_error="TypeError", error_match="dim")
    with pytest.raises(ValueError, match="expected TypeError"):
        build_case(wrong)


def test_registry_rejects_bad_specs():
    with pytest.raises(ValueError, match="case id must match"):
        build_case(CaseSpec(id="Bad Id", function="rope_frequencies", inputs={}, params={"dim": 2}))
    with pytest.raises(ValueError, match="unknown spec function 'nope_nope'"):
        build_case(CaseSpec(id="t.x", function="nope_nope", inputs={}))
    with pytest.raises(ValueError, match="duplicate case ids: t.rotary"):
        build_cases([ROTARY, ROTARY])
    with pytest.raises(ValueError, match="families must be among"):
        build_cases([ROTARY], families=["bogus"])
    with pytest.raises(ValueError, match="dtypes must be among"):
        build_cases([ROTARY], dtypes=["float8"])


def test_descriptions_draw_what_they_say():
    rng = np.random.default_rng(0)
    assert Arange(3, 6).draw(rng).tolist() == [3, 4, 5]
    assert Values([1, 2], "int64").draw(rng).dtype == np.int64
    ints = Integers((4, 50), 0, 10, sort=True).draw(rng)
    assert ints.dtype == np.int64 and np.all(np.diff(ints, axis=-1) >= 0) and ints.max() < 10
