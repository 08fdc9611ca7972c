"""Adapter for Liger-Kernel's Triton RoPE (``pip install liger-kernel``), CUDA only.

Not run here: Liger-Kernel's kernels are Triton kernels that need a CUDA
GPU, and this project's CI machines have none, so this adapter reports
itself unavailable (``available()`` says "requires CUDA") and its code
path has not been executed.  It is written against the documented API of
``liger_kernel.transformers.rope.liger_rotary_pos_emb(q, k, cos, sin,
position_ids=None, unsqueeze_dim=1)``, which replaces Hugging Face's
``apply_rotary_pos_emb`` and returns the rotated ``(q, k)``.  No version
has been checked and none is pinned; record the version in
``ADAPTER_VERSION`` and ``conformance/constraints.txt`` after the first run
on a GPU.

What it maps, and the library's conventions
-------------------------------------------

``apply_rope``
    Liger takes Hugging Face's cos/sin tables: half layout only
    (``rotate_half``; the kernel reads the left half of cos/sin and assumes
    the two halves are equal), the whole head rotated (no partial rotary),
    ``q`` and ``k`` of shape ``(B, H, T, D)`` and tables of shape
    ``(1 or B, T, D)``.  The adapter builds the tables as Hugging Face's
    ``LlamaRotaryEmbedding`` does: inverse frequencies and angles in
    float32, cos/sin of ``concat(angles, angles)`` cast to the dtype under
    test; it passes ``x`` as both ``q`` and ``k`` and returns the rotated
    ``q``.  Liger rotates in the dtype of the tables.

Divergences found
-----------------

Not checked (no GPU).
"""

from __future__ import annotations

import numpy as np

from posref.adapters._cuda_rope import CUDA_DEVICES, CUDA_DTYPES, CudaRopeAdapter, cuda_kernel_available
from posref.adapters._tensors import to_numpy, to_torch, torch_dtype

ADAPTER_NAME = "liger-kernel"
ADAPTER_VERSION = "unchecked"
ADAPTER_DTYPES = CUDA_DTYPES
ADAPTER_DEVICES = CUDA_DEVICES


def _import_kernel():
    from liger_kernel.transformers.rope import liger_rotary_pos_emb

    return liger_rotary_pos_emb


def available():
    return cuda_kernel_available("Liger-Kernel's RoPE", "liger-kernel", _import_kernel)


def make_adapter(*, dtype, device):
    return LigerAdapter(dtype=dtype, device=device)


class LigerAdapter(CudaRopeAdapter):
    """Liger-Kernel's fused RoPE, called like posref's spec functions."""

    def apply_rope(self, x, positions, /, *, base=10_000.0, layout="half", rotary_dim=None,
                   rotated_slice="first", freq_denominator="rotary_dim", position_offset=0):
        import torch
        from liger_kernel.transformers.rope import liger_rotary_pos_emb

        x = np.asarray(x)
        head_dim = x.shape[-1]
        if layout != "half":
            raise NotImplementedError("Liger-Kernel's RoPE uses Hugging Face's half layout (layout='half') only")
        if rotary_dim not in (None, head_dim):
            raise NotImplementedError("Liger-Kernel's RoPE rotates the whole head (no partial rotary)")
        length = x.shape[-2] if x.ndim >= 2 else 1
        p = np.broadcast_to(np.asarray(positions) + position_offset, x.shape[:-1])
        if x.ndim == 4 and np.array_equal(np.broadcast_to(p[:, :1], p.shape), p):
            q, ids = x, p[:, 0, :]  # (B, H, T, D), positions (B, T)
        else:
            q, ids = x.reshape(-1, 1, length, head_dim), p.reshape(-1, length)
        inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32, device=self.device) / head_dim))
        angles = to_torch(ids.astype(np.float32), "float32", self.device)[..., None] * inv_freq  # (B, T, D/2)
        emb = torch.cat([angles, angles], dim=-1)
        cos, sin = emb.cos().to(torch_dtype(self.dtype)), emb.sin().to(torch_dtype(self.dtype))
        t = to_torch(q, self.dtype, self.device)
        with torch.no_grad():
            rotated, _ = liger_rotary_pos_emb(t, t.clone(), cos, sin)
        return to_numpy(rotated).reshape(x.shape)
