"""The Gemma (JAX) adapter: one file loaded by path, mapping sound, divergences exactly those listed."""

import importlib.metadata
import importlib.util
import sys

import numpy as np
import pytest

if importlib.util.find_spec("gemma") is None or importlib.util.find_spec("jax") is None:
    pytest.skip("gemma or jax is not installed", allow_module_level=True)

from posref.adapters import gemma as adapter_module  # noqa: E402

if adapter_module.available() is not None:
    pytest.skip(adapter_module.available(), allow_module_level=True)

from adapter_harness import run_adapter, statuses  # noqa: E402

import posref  # noqa: E402
from posref.conformance.adapter import load_adapter  # noqa: E402
from posref.conformance.runner import run_cases  # noqa: E402
from posref.golden.registry import Arange, CaseSpec, Normal, build_cases  # noqa: E402

MODULE = "posref.adapters.gemma"
FUNCTIONS = {"apply_rope", "rope_frequencies", "linear_scaled_frequencies"}


@pytest.mark.parametrize("dtype", adapter_module.ADAPTER_DTYPES)
def test_cases_conform_or_are_listed(dtype):
    results = run_adapter(MODULE, "gemma", dtype, FUNCTIONS)
    status = statuses(results)
    for case_id in ("apply_rope.half.hard_positions", "apply_rope.half.short", "apply_rope.half.proportional",
                    "apply_rope.half.batch_positions", "apply_rope.half.position_offset",
                    "rope_frequencies.d128.b10000", "linear_scaled_frequencies.d128.b500000.s8",
                    "linear_scaled_frequencies.invalid.factor_below_one", "apply_rope.invalid.odd_head_dim"):
        assert status[case_id] == "pass", case_id
    for case_id in ("apply_rope.interleaved.short", "apply_rope.half.partial_first",
                    "apply_rope.half.partial_head_dim_denominator"):
        assert status[case_id] == "not_implemented", case_id


def test_metadata_and_no_tensorflow_imported():
    assert adapter_module.ADAPTER_VERSION == importlib.metadata.version("gemma")
    assert "float64" not in adapter_module.ADAPTER_DTYPES
    adapter_module.make_adapter(dtype="float32", device="cpu").rope_frequencies(8)
    assert "gemma.gm" not in sys.modules  # the package itself (kauldron, TensorFlow) is never imported by the adapter
    assert adapter_module._positional_embeddings().__file__.endswith("gm/math/_positional_embeddings.py")


STEPS = [  # (head width, rotary_dim, base, length, first position)
    (64, None, 10_000.0, 16, 0),
    (32, None, 10_000.0, 16, 0),
    (32, None, 500_000.0, 16, 0),
    (64, 16, 500_000.0, 40, 300),
    (64, None, 10_000.0, 8, 0),
    (32, 8, 100.0, 8, 2),
]


def _sequence():
    specs = []
    for step, (dim, rotary, base, length, start) in enumerate(STEPS):
        params = {"base": base}
        if rotary:
            params.update(rotary_dim=rotary, rotated_slice="first_pairs", freq_denominator="head_dim")
        specs.append(CaseSpec(id=f"state.{step}.apply_rope", function="apply_rope",
                              inputs={"x": Normal((2, length, dim)), "positions": Arange(start, start + length)},
                              params=params, tolerance="rope"))
        specs.append(CaseSpec(id=f"state.{step}.rope_frequencies", function="rope_frequencies", inputs={},
                              params={"dim": dim, "base": base}, tolerance="frequency"))
    return specs


def test_calls_that_change_base_dim_length_and_dtype_share_no_stale_table():
    specs = _sequence()
    adapters = {dtype: load_adapter(MODULE, dtype=dtype) for dtype in ("float32", "bfloat16")}
    for dtype in ("float32", "bfloat16", "float32"):
        results = run_cases(adapters[dtype], build_cases(specs, dtypes=[dtype]))
        assert {r.status for r in results} == {"pass"}, [(r.case_id, r.message) for r in results if r.status != "pass"]


def test_proportional_leaves_the_other_pairs_unrotated():
    """rope_proportion 0.25 of 32: pairs (j, j+16) for j < 4 rotate with 10000 ** (-2j/32); the rest do not."""
    adapter = adapter_module.make_adapter(dtype="float32", device="cpu")
    x = np.random.default_rng(2).standard_normal((5, 32))
    out = adapter.apply_rope(x, np.arange(5), rotary_dim=8, rotated_slice="first_pairs", freq_denominator="head_dim")
    kept = np.r_[4:16, 20:32]
    np.testing.assert_array_equal(out[:, kept], x[:, kept].astype(np.float32))
    np.testing.assert_allclose(out, posref.apply_rope(x, np.arange(5), rotary_dim=8, rotated_slice="first_pairs",
                                                      freq_denominator="head_dim"), atol=2e-6)


def test_unsupported_parameters_are_not_implemented():
    adapter = adapter_module.make_adapter(dtype="float32", device="cpu")
    with pytest.raises(NotImplementedError, match="halves"):
        adapter.apply_rope(np.zeros((2, 8)), np.arange(2), layout="interleaved")
    with pytest.raises(NotImplementedError, match="first_pairs"):
        adapter.apply_rope(np.zeros((2, 8)), np.arange(2), rotary_dim=4)
    with pytest.raises(NotImplementedError, match="fractional"):
        adapter.apply_rope(np.zeros((2, 8)), np.arange(2), position_offset=0.5)
