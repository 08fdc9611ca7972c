"""The timm adapter: mapping sound, divergences exactly those listed."""

import importlib.util
import sys

import numpy as np
import pytest

pytest.importorskip("torch")
if importlib.util.find_spec("timm") is None:  # timm itself is imported by the adapter
    pytest.skip("timm is not installed", allow_module_level=True)

from posref.adapters import timm as adapter_module  # noqa: E402

if adapter_module.available() is not None:
    pytest.skip(adapter_module.available(), allow_module_level=True)

from adapter_harness import run_adapter, statuses  # noqa: E402

FUNCTIONS = {"apply_axial_rope", "sincos_2d_encoding", "peg"}


@pytest.mark.parametrize("dtype", adapter_module.ADAPTER_DTYPES)
def test_cases_conform_or_are_listed(dtype):
    results = run_adapter("posref.adapters.timm", "timm", dtype, FUNCTIONS)
    status = statuses(results)
    for case_id in ("peg.k3.class_token", "adapters.apply_axial_rope.yx.interleaved",
                    "adapters.apply_axial_rope.yx.half", "adapters.apply_axial_rope.xy.interleaved",
                    "adapters.apply_axial_rope.yx.offset", "adapters.sincos_2d_encoding.yx.sin_cos",
                    "adapters.sincos_2d_encoding.yx.axis", "adapters.sincos_2d_encoding.xy.sin_cos"):
        assert status[case_id] == "pass", case_id
    assert status["peg.k5.no_class_token"] == "not_implemented"


def test_metadata_and_no_torchvision_left_behind():
    import importlib.metadata

    assert adapter_module.ADAPTER_VERSION == importlib.metadata.version("timm")
    adapter_module.make_adapter(dtype="float32", device="cpu").sincos_2d_encoding((2, 2), 8)
    stand_ins = [name for name, module in sys.modules.items()
                 if name.startswith("torchvision") and type(module).__name__ == "_StandInModule"]
    assert stand_ins == []


def test_axis_order_is_mapped_not_ignored():
    """timm's default puts the row block first: it matches axis_order='yx' and not 'xy'."""
    from posref import apply_axial_rope

    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 8))
    grid = np.array([[0, 0, 0, 1, 1, 1], [0, 1, 2, 0, 1, 2]])
    got = adapter_module.make_adapter(dtype="float32", device="cpu").apply_axial_rope(x, grid, axis_order="yx")
    np.testing.assert_allclose(got, apply_axial_rope(x, grid, axis_order="yx"), atol=1e-5)
    assert not np.allclose(got, apply_axial_rope(x, grid, axis_order="xy"), atol=1e-2)


def test_unsupported_parameters_are_not_implemented():
    adapter = adapter_module.make_adapter(dtype="float32", device="cpu")
    with pytest.raises(NotImplementedError, match="3 x 3"):
        adapter.peg(np.zeros((1, 4, 2)), np.zeros((2, 1, 5, 5)), np.zeros(2), grid_shape=(2, 2))
    with pytest.raises(NotImplementedError, match="grid_offset"):
        adapter.apply_axial_rope(np.zeros((4, 8)), np.array([[0, 0, 1, 1], [1, 2, 1, 2]]))
    with pytest.raises(NotImplementedError, match="class-token"):
        adapter.sincos_2d_encoding((2, 2), 8, class_token=True)
