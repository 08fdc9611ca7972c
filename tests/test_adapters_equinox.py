"""The Equinox adapter (JAX): mapping sound, the cos/sin cache bug shown, nothing else diverges."""

import importlib.metadata
import importlib.util

import numpy as np
import pytest

if importlib.util.find_spec("equinox") is None or importlib.util.find_spec("jax") is None:
    pytest.skip("equinox or jax is not installed", allow_module_level=True)

from posref.adapters import equinox as adapter_module  # noqa: E402

if adapter_module.available() is not None:
    pytest.skip(adapter_module.available(), allow_module_level=True)

from adapter_harness import read_xfails, run_adapter, statuses  # noqa: E402

import posref  # noqa: E402
from posref.conformance.adapter import load_adapter  # noqa: E402
from posref.conformance.runner import run_cases  # noqa: E402
from posref.golden.cases import CASES  # noqa: E402
from posref.golden.registry import Arange, CaseSpec, Normal, build_cases  # noqa: E402

MODULE = "posref.adapters.equinox"
FUNCTIONS = {"rope_cos_sin", "apply_rope"}


def test_cases_conform_or_are_listed_float32():
    results = run_adapter(MODULE, "equinox", "float32", FUNCTIONS)
    status = statuses(results)
    for case_id in ("apply_rope.half.hard_positions", "apply_rope.half.short", "apply_rope.half.batch_positions",
                    "apply_rope.half.position_offset", "rope_cos_sin.half.hard_positions",
                    "adapters.apply_rope.half.contiguous_offset", "apply_rope.invalid.odd_head_dim"):
        assert status[case_id] == "pass", case_id
    for case_id in ("apply_rope.interleaved.short", "apply_rope.half.partial_first",
                    "apply_rope.invalid.negative_position"):
        assert status[case_id] == "not_implemented", case_id


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_cases_conform_16_bit(dtype):
    """As in float32, without the cases at positions near 2**20 (sequences of 2**20 rows, run in float32 here)."""
    cases = build_cases([s for s in CASES if s.function in FUNCTIONS and "hard_positions" not in s.id],
                        dtypes=[dtype])
    results = run_cases(load_adapter(MODULE, dtype=dtype), cases, known=read_xfails("equinox", dtype))
    assert {r.status for r in results} <= {"pass", "not_implemented"}, [
        (r.case_id, r.message) for r in results if r.status not in ("pass", "not_implemented")]
    assert statuses(results)["apply_rope.half.batch_positions"] == "pass"


def test_metadata():
    assert adapter_module.ADAPTER_VERSION == importlib.metadata.version("equinox")
    assert "float64" not in adapter_module.ADAPTER_DTYPES


# -- state: one adapter object, calls that change base, dim, length and dtype ---------------------------------


def _sequence():
    specs = []
    for step, (dim, base, length, start) in enumerate([(64, 10_000.0, 16, 0), (32, 10_000.0, 16, 0),
                                                      (32, 500_000.0, 16, 0), (32, 500_000.0, 40, 300),
                                                      (64, 10_000.0, 8, 0), (32, 100.0, 8, 2)]):
        specs.append(CaseSpec(id=f"state.{step}.apply_rope", function="apply_rope",
                              inputs={"x": Normal((2, length, dim)), "positions": Arange(start, start + length)},
                              params={"base": base}, tolerance="rope"))
        specs.append(CaseSpec(id=f"state.{step}.rope_cos_sin", function="rope_cos_sin",
                              inputs={"positions": Arange(start, start + length)},
                              params={"dim": dim, "base": base}, tolerance="cos_sin"))
    return specs


def test_calls_that_change_base_dim_length_and_dtype_share_no_stale_table():
    """With the adapter's patch (the cache emptied before each call) every call sees its own base."""
    specs = _sequence()
    adapters = {dtype: load_adapter(MODULE, dtype=dtype) for dtype in ("float32", "bfloat16")}
    for dtype in ("float32", "bfloat16", "float32"):
        results = run_cases(adapters[dtype], build_cases(specs, dtypes=[dtype]))
        assert {r.status for r in results} == {"pass"}, [(r.case_id, r.message) for r in results if r.status != "pass"]


def test_the_library_cache_ignores_theta():
    """The bug behind the patch: the table is keyed on (embedding_size, dtype), so a new theta reuses the old one.

    Unpatched, the same sequence fails exactly where the base changes and the width and dtype do not
    (step 2: dim 32, base 5e5 after dim 32, base 1e4; step 5: base 100 after dim 32, base 5e5).
    """
    adapter = load_adapter(MODULE, dtype="float32")
    adapter.target = adapter_module.make_adapter(dtype="float32", device="cpu", clear_cache=False)
    _, embedding = adapter_module._equinox()
    embedding.internal_rope_embedding_cache.clear()
    results = run_cases(adapter, build_cases([s for s in _sequence() if s.function == "apply_rope"],
                                             dtypes=["float32"]))
    failed = {r.case_id for r in results if r.status == "fail"}
    assert failed == {"state.2.apply_rope", "state.5.apply_rope"}, [(r.case_id, r.status) for r in results]


def test_smallest_reproduction_of_the_cache_bug():
    import equinox as eqx
    import jax.numpy as jnp

    _, embedding = adapter_module._equinox()
    embedding.internal_rope_embedding_cache.clear()
    x = jnp.ones((4, 8))
    a = eqx.nn.RotaryPositionalEmbedding(8, theta=10_000.0)(x)
    b = eqx.nn.RotaryPositionalEmbedding(8, theta=100.0)(x)
    assert (np.asarray(a) == np.asarray(b)).all()  # theta=100 got theta=10000's table
    want = posref.apply_rope(np.ones((4, 8)), np.arange(4), base=100.0)
    assert np.abs(np.asarray(b) - want).max() > 0.5
    embedding.internal_rope_embedding_cache.clear()


def test_repeated_positions_go_to_separate_sequences():
    adapter = adapter_module.make_adapter(dtype="float32", device="cpu")
    x = np.random.default_rng(0).standard_normal((5, 16))
    p = np.array([3, 0, 3, 3, 1])
    np.testing.assert_allclose(adapter.apply_rope(x, p), posref.apply_rope(x, p), atol=1e-6)


def test_unsupported_parameters_are_not_implemented():
    adapter = adapter_module.make_adapter(dtype="float32", device="cpu")
    with pytest.raises(NotImplementedError, match="rotate_half"):
        adapter.apply_rope(np.zeros((2, 8)), np.arange(2), layout="interleaved")
    with pytest.raises(NotImplementedError, match="partial"):
        adapter.apply_rope(np.zeros((2, 8)), np.arange(2), rotary_dim=4)
    with pytest.raises(NotImplementedError, match="fractional"):
        adapter.apply_rope(np.zeros((2, 8)), np.arange(2), position_offset=0.5)
    with pytest.raises(NotImplementedError, match="negative"):
        adapter.apply_rope(np.zeros((2, 8)), np.array([-1, 0]))
