"""Run a built-in adapter over golden cases and check the outcome against its xfails file.

Used by the ``tests/test_adapters_*.py`` files.  An adapter passes when

* every case that fails, errors or times out is listed in
  ``posref/adapters/known/<name>-<dtype>.txt`` (a genuine divergence of the
  library, explained by a comment there), and
* every listed case still fails (no stale entries).

``EXTRA_CASES`` are cases for the families that the golden registry does
not cover yet (xPos, RoPE scaling, axial RoPE, the 2-D sine-cosine
table); they run through the same builder, runner and error model.
"""

from __future__ import annotations

import functools
import pathlib

import numpy as np

from posref.adapters.known import known_divergences
from posref.conformance.adapter import load_adapter
from posref.conformance.runner import FAILING, run_cases
from posref.golden.registry import Arange, CaseSpec, Normal, Values, build_cases

XFAILS_DIR = pathlib.Path(__file__).resolve().parents[1] / "posref" / "adapters" / "known"


def _grid(height, width, offset=0):
    """Row and column of every cell of an H x W grid, row-major, shape (2, H*W)."""
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    return Values((np.stack([rows.reshape(-1), cols.reshape(-1)]) + offset).tolist(), "int64")


EXTRA_CASES = [
    # xPos
    CaseSpec(id="adapters.apply_xpos.floor_half.query", function="apply_xpos",
             inputs={"x": Normal((2, 3, 16, 32)), "positions": Arange(0, 16)},
             params={"centering": "floor_half"}, tolerance="xpos",
             description="queries at 0..15, scale positions centred at N // 2"),
    CaseSpec(id="adapters.apply_xpos.floor_half.key", function="apply_xpos",
             inputs={"x": Normal((2, 3, 16, 32)), "positions": Arange(0, 16)},
             params={"centering": "floor_half", "downscale": True}, tolerance="xpos",
             description="keys at 0..15 (downscaled)"),
    CaseSpec(id="adapters.apply_xpos.ceil_half.even_length", function="apply_xpos",
             inputs={"x": Normal((1, 2, 10, 16)), "positions": Arange(0, 10)},
             params={"scale_base": 64.0}, tolerance="xpos",
             description="default centring; both centrings agree for an even length"),
    CaseSpec(id="adapters.apply_xpos.floor_half.odd_length", function="apply_xpos",
             inputs={"x": Normal((1, 1, 5, 8)), "positions": Arange(0, 5)},
             params={"centering": "floor_half", "scale_base": 8.0}, tolerance="xpos",
             description="odd length, where the two centrings differ"),
    # RoPE with a contiguous block of positions away from 0
    CaseSpec(id="adapters.apply_rope.interleaved.contiguous_offset", function="apply_rope",
             inputs={"x": Normal((1, 2, 16, 32)), "positions": Arange(4000, 4016)},
             params={"layout": "interleaved"}, tolerance="rope",
             description="positions 4000..4015 (not bfloat16 or float16 integers)"),
    CaseSpec(id="adapters.apply_rope.half.contiguous_offset", function="apply_rope",
             inputs={"x": Normal((1, 2, 16, 32)), "positions": Arange(4000, 4016)},
             params={}, tolerance="rope", description="positions 4000..4015, half layout"),
    # RoPE scaling
    CaseSpec(id="adapters.linear_scaled_frequencies.d128.s4", function="linear_scaled_frequencies", inputs={},
             params={"dim": 128, "scaling_factor": 4.0}, tolerance="frequency", description="PI, factor 4"),
    CaseSpec(id="adapters.linear_scaled_frequencies.d64.s2.b500000", function="linear_scaled_frequencies",
             inputs={}, params={"dim": 64, "base": 500_000.0, "scaling_factor": 2.0}, tolerance="frequency",
             description="PI, factor 2, base 5e5"),
    CaseSpec(id="adapters.ntk_scaled_frequencies.d128.s4", function="ntk_scaled_frequencies", inputs={},
             params={"dim": 128, "scaling_factor": 4.0}, tolerance="frequency",
             description="NTK-aware base b s^(d/(d-2)), factor 4"),
    CaseSpec(id="adapters.ntk_scaled_frequencies.d64.s8.b500000", function="ntk_scaled_frequencies", inputs={},
             params={"dim": 64, "base": 500_000.0, "scaling_factor": 8.0}, tolerance="frequency",
             description="NTK-aware, factor 8, base 5e5"),
    CaseSpec(id="adapters.yarn_frequencies.d128.s4.truncate", function="yarn_frequencies", inputs={},
             params={"dim": 128, "scaling_factor": 4.0, "original_max_position_embeddings": 4096},
             tolerance="frequency", description="YaRN, factor 4, L0 4096, integer correction range"),
    CaseSpec(id="adapters.yarn_frequencies.d64.s8.no_truncate", function="yarn_frequencies", inputs={},
             params={"dim": 64, "scaling_factor": 8.0, "original_max_position_embeddings": 2048,
                     "truncate": False}, tolerance="frequency", description="YaRN, factor 8, fractional range"),
    # axial RoPE and the 2-D table
    CaseSpec(id="adapters.apply_axial_rope.yx.interleaved", function="apply_axial_rope",
             inputs={"x": Normal((2, 3, 12, 16)), "positions_2d": _grid(3, 4)},
             params={"axis_order": "yx", "layout": "interleaved"}, tolerance="rope",
             description="3 x 4 grid, row block first, interleaved pairs (timm, EVA-02)"),
    CaseSpec(id="adapters.apply_axial_rope.yx.half", function="apply_axial_rope",
             inputs={"x": Normal((1, 2, 20, 32)), "positions_2d": _grid(5, 4)},
             params={"axis_order": "yx", "layout": "half"}, tolerance="rope",
             description="5 x 4 grid, half layout (timm rotate_half=True)"),
    CaseSpec(id="adapters.apply_axial_rope.xy.interleaved", function="apply_axial_rope",
             inputs={"x": Normal((1, 1, 6, 8)), "positions_2d": _grid(2, 3)},
             params={"axis_order": "xy", "base": 100.0}, tolerance="rope",
             description="column block first, base 100"),
    CaseSpec(id="adapters.apply_axial_rope.yx.offset", function="apply_axial_rope",
             inputs={"x": Normal((1, 2, 9, 16)), "positions_2d": _grid(3, 3, offset=1)},
             params={"axis_order": "yx"}, tolerance="rope",
             description="coordinates counted from 1 (grid offset)"),
    CaseSpec(id="adapters.sincos_2d_encoding.yx.sin_cos", function="sincos_2d_encoding", inputs={},
             params={"grid_shape": [3, 5], "dim": 32, "axis_order": "yx", "grouping": "sin_cos"},
             tolerance="sinusoidal", description="timm's default order"),
    CaseSpec(id="adapters.sincos_2d_encoding.yx.axis", function="sincos_2d_encoding", inputs={},
             params={"grid_shape": [4, 2], "dim": 16, "axis_order": "yx", "grouping": "axis"},
             tolerance="sinusoidal", description="timm interleave_sin_cos=True"),
    CaseSpec(id="adapters.sincos_2d_encoding.xy.sin_cos", function="sincos_2d_encoding", inputs={},
             params={"grid_shape": [3, 4], "dim": 16, "axis_order": "xy", "grouping": "sin_cos",
                     "base": 100.0}, tolerance="sinusoidal", description="timm reverse_coord=True"),
    CaseSpec(id="adapters.sincos_2d_encoding.class_token", function="sincos_2d_encoding", inputs={},
             params={"grid_shape": [2, 2], "dim": 8, "class_token": True}, tolerance="sinusoidal",
             description="MAE's zero class-token row"),
]


@functools.lru_cache(maxsize=None)
def _golden(dtype: str):
    from posref.golden.cases import CASES

    return tuple(build_cases(CASES, dtypes=[dtype] if dtype != "float64" else []))


@functools.lru_cache(maxsize=None)
def _extra(dtype: str):
    return tuple(build_cases(EXTRA_CASES, dtypes=[dtype] if dtype != "float64" else []))


def read_xfails(name: str, dtype: str) -> dict[str, str]:
    """Case id -> reason of ``posref/adapters/known/<name>-<dtype>.txt`` (empty when absent)."""
    return known_divergences(name, dtype, XFAILS_DIR)


def run_adapter(module: str, name: str, dtype: str, functions=None, device: str = "cpu"):
    """Run adapter ``module`` over the golden and extra cases of ``functions`` (all when None).

    Returns the results; raises AssertionError listing every unexpected
    outcome.
    """
    adapter = load_adapter(module, dtype=dtype, device=device)
    cases = [c for c in _golden(dtype) + _extra(dtype) if functions is None or c.function in functions]
    reasons = read_xfails(name, dtype)
    results = run_cases(adapter, cases, timeout=120.0, known=reasons)
    unexpected = [r for r in results if r.status in FAILING]
    stale = [r for r in results if r.status == "fixed"]
    unexplained = [case_id for case_id, reason in reasons.items() if not reason]
    lines = [f"{r.status} {r.case_id}: {r.message}" for r in unexpected]
    lines += [f"listed in {name}-{dtype}.txt but passes: {r.case_id}" for r in stale]
    lines += [f"listed without a reason in {name}-{dtype}.txt: {case_id}" for case_id in unexplained]
    assert not lines, "\n".join(lines)
    return results


def statuses(results) -> dict[str, str]:
    """Case id -> status."""
    return {r.case_id: r.status for r in results}
