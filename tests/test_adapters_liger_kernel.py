"""The liger_kernel adapter: CUDA only; without a GPU it must say so and stay importable."""

import pytest

torch = pytest.importorskip("torch")

from posref.adapters import liger_kernel as adapter_module  # noqa: E402


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_reports_that_it_requires_cuda():
    from posref.conformance.adapter import AdapterError, load_adapter

    assert adapter_module.available().startswith("requires CUDA")
    with pytest.raises(AdapterError, match="requires CUDA"):
        load_adapter("posref.adapters.liger_kernel", dtype="float32", device="cuda")


@pytest.mark.skipif(adapter_module.available() is not None, reason=str(adapter_module.available()))
@pytest.mark.parametrize("dtype", adapter_module.ADAPTER_DTYPES)
def test_cases_conform_or_are_listed(dtype):
    from adapter_harness import run_adapter

    run_adapter("posref.adapters.liger_kernel", "liger_kernel", dtype, {"apply_rope", "apply_rotary"}, device="cuda")
