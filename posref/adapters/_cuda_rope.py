"""What the adapters of CUDA-only Triton RoPE kernels share (flash-attn, Liger-Kernel).

Each such adapter is unavailable without a CUDA device, says so in the
same words, and is configured by dtype and device only.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["CUDA_DEVICES", "CUDA_DTYPES", "CudaRopeAdapter", "cuda_kernel_available"]

CUDA_DTYPES = ("float32", "float16", "bfloat16")
CUDA_DEVICES = ("cuda",)


def cuda_kernel_available(kernel: str, package: str, import_kernel: Callable[[], object]) -> str | None:
    """None when torch, a CUDA device and the kernel are there, else a sentence saying what is missing.

    ``kernel`` names the kernel in that sentence ("flash-attn's rotary kernel"), ``package`` is what
    to pip install, and ``import_kernel()`` imports the kernel (called only with CUDA present).
    """
    try:
        import torch
    except Exception as exc:
        return f"torch cannot be imported ({type(exc).__name__}: {exc})"
    if not torch.cuda.is_available():
        return f"requires CUDA: {kernel} is a Triton kernel and no CUDA device is available"
    try:
        import_kernel()
    except Exception as exc:
        return f"{package} cannot be imported ({type(exc).__name__}: {exc}); pip install {package}"
    return None


class CudaRopeAdapter:
    """The base of a CUDA kernel's adapter: the dtype under test and the device."""

    def __init__(self, *, dtype, device):
        self.dtype = dtype
        self.device = device
