"""The mistral-inference adapter: mapping sound, divergences exactly those listed."""

import importlib.metadata

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("mistral_inference")

from posref.adapters import mistral_inference as adapter_module  # noqa: E402

if adapter_module.available() is not None:
    pytest.skip(adapter_module.available(), allow_module_level=True)

from adapter_harness import run_adapter, statuses  # noqa: E402

import posref  # noqa: E402
from posref.conformance.adapter import load_adapter  # noqa: E402
from posref.conformance.runner import run_cases  # noqa: E402
from posref.golden.registry import Arange, CaseSpec, Normal, Values, build_cases  # noqa: E402

MODULE = "posref.adapters.mistral_inference"
FUNCTIONS = {"rope_frequencies", "rope_cos_sin", "apply_rotary", "apply_rope", "apply_axial_rope"}


@pytest.fixture(scope="module")
def adapter():
    return adapter_module.make_adapter(dtype="float32", device="cpu")


@pytest.mark.parametrize("dtype", adapter_module.ADAPTER_DTYPES)
def test_cases_conform_or_are_listed(dtype):
    results = run_adapter(MODULE, "mistral_inference", dtype, FUNCTIONS)
    status = statuses(results)
    for case_id in ("apply_rope.interleaved.hard_positions", "apply_rope.interleaved.short",
                    "rope_cos_sin.interleaved.hard_positions", "apply_rotary.interleaved.small",
                    "rope_frequencies.d128.b10000", "apply_axial_rope.pixtral",
                    "adapters.apply_rope.interleaved.contiguous_offset"):
        assert status[case_id] == "pass", case_id
    for case_id in ("apply_rope.half.short", "apply_rope.interleaved.partial_first", "apply_axial_rope.yx.interleaved"):
        assert status[case_id] == "not_implemented", case_id


def test_metadata():
    assert adapter_module.available() is None
    assert adapter_module.ADAPTER_VERSION == importlib.metadata.version("mistral-inference")
    assert "float64" not in adapter_module.ADAPTER_DTYPES


def _pixtral_grid(rows, cols, row0=0, col0=0):
    r, c = np.meshgrid(np.arange(rows) + row0, np.arange(cols) + col0, indexing="ij")
    return Values(np.stack([r.reshape(-1), c.reshape(-1)]).tolist(), "int64")


EXTRA = [
    CaseSpec(id="mi.apply_axial_rope.pixtral.offset_grid", function="apply_axial_rope",
             inputs={"x": Normal((1, 2, 12, 32)), "positions_2d": _pixtral_grid(3, 4, 5, 7)},
             params={"axis_order": "yx", "frequencies": "even_odd", "base": 100.0}, tolerance="rope",
             description="rows 5..7, columns 7..10: a window of the patch table"),
    CaseSpec(id="mi.apply_rope.interleaved.offset", function="apply_rope",
             inputs={"x": Normal((2, 1, 4, 16)), "positions": Arange(0, 4)},
             params={"layout": "interleaved", "position_offset": 4000}, tolerance="rope",
             description="decoding at 4000..4003"),
]


@pytest.mark.parametrize("dtype", adapter_module.ADAPTER_DTYPES)
def test_extra_cases(dtype):
    results = run_cases(load_adapter(MODULE, dtype=dtype), build_cases(EXTRA, dtypes=[dtype]))
    assert {r.status for r in results} == {"pass"}, [r.message for r in results]


# -- state: one adapter object, calls that change base, dim, length and dtype ---------------------------------


def _sequence():
    """RoPE calls whose base, head width and length change from one to the next."""
    specs = []
    for step, (dim, base, length, start) in enumerate([(64, 10_000.0, 16, 0), (32, 10_000.0, 16, 0),
                                                      (32, 500_000.0, 16, 0), (32, 500_000.0, 40, 300),
                                                      (64, 10_000.0, 8, 0), (16, 100.0, 40, 300)]):
        specs.append(CaseSpec(id=f"state.{step}.apply_rope", function="apply_rope",
                              inputs={"x": Normal((2, length, dim)), "positions": Arange(start, start + length)},
                              params={"layout": "interleaved", "base": base}, tolerance="rope"))
        specs.append(CaseSpec(id=f"state.{step}.rope_cos_sin", function="rope_cos_sin",
                              inputs={"positions": Arange(start, start + length)},
                              params={"dim": dim, "base": base, "layout": "interleaved"}, tolerance="cos_sin"))
        specs.append(CaseSpec(id=f"state.{step}.apply_axial_rope", function="apply_axial_rope",
                              inputs={"x": Normal((length, dim)),
                                      "positions_2d": _pixtral_grid(length // 8, 8, step, 0)},
                              params={"axis_order": "yx", "frequencies": "even_odd", "base": base},
                              tolerance="rope"))
    return specs


def test_calls_that_change_base_dim_length_and_dtype_share_no_stale_table():
    """A table cached on too little (the dim only, the first length, the first dtype) fails here."""
    specs = _sequence()
    adapters = {dtype: load_adapter(MODULE, dtype=dtype) for dtype in ("float32", "bfloat16")}
    for dtype in ("float32", "bfloat16", "float32"):
        results = run_cases(adapters[dtype], build_cases(specs, dtypes=[dtype]))
        assert {r.status for r in results} == {"pass"}, [(r.case_id, r.message) for r in results if r.status != "pass"]


def test_pixtral_frequencies_by_hand(adapter):
    """dim 8, base 100: ladder 100 ** (-j/4) = [1, 0.316, 0.1, 0.0316]; the row takes [1, 0.1], the column the rest."""
    x = np.zeros((1, 8), dtype=np.float32)
    x[:, 0::2] = 1.0  # every pair (1, 0): rotated it reads (cos, sin)
    got = adapter.apply_axial_rope(x, np.array([[2], [3]]), base=100.0, axis_order="yx", frequencies="even_odd")
    angles = np.array([2 * 1.0, 2 * 0.1, 3 * 100**-0.25, 3 * 100**-0.75])
    np.testing.assert_allclose(got[0, 0::2], np.cos(angles), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(got[0, 1::2], np.sin(angles), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got[0], posref.apply_axial_rope(x, [[2], [3]], base=100.0, axis_order="yx",
                                                               frequencies="even_odd")[0], atol=1e-6)


@pytest.mark.parametrize("call, words", [
    (lambda a: a.apply_rope(np.zeros((2, 8)), np.arange(2)), "interleaved"),
    (lambda a: a.apply_rope(np.zeros((2, 8)), np.arange(2), layout="interleaved", rotary_dim=4), "whole head"),
    (lambda a: a.apply_rope(np.zeros((2, 8)), np.arange(2), layout="interleaved", position_offset=0.5),
     "fractional offset"),
    (lambda a: a.rope_cos_sin(np.array([0.5]), 4, layout="interleaved"), "integer positions"),
    (lambda a: a.apply_rotary(np.zeros((2, 8)), np.zeros((2, 4))), "interleaved"),
    (lambda a: a.apply_axial_rope(np.zeros((2, 8)), np.zeros((2, 2), dtype=int)), "even_odd"),
    (lambda a: a.apply_axial_rope(np.zeros((1, 8)), np.array([[9000], [9000]]), axis_order="yx",
                                  frequencies="even_odd"), "table"),
    (lambda a: a.apply_axial_rope(np.zeros((1, 8)), np.array([[0.5], [1.0]]), axis_order="yx",
                                  frequencies="even_odd"), "integer positions_2d"),
])
def test_unsupported_parameters_are_not_implemented(adapter, call, words):
    with pytest.raises(NotImplementedError, match=words):
        call(adapter)
