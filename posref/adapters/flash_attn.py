"""Adapter for flash-attn's rotary kernel (``pip install flash-attn``), CUDA only.

Not run here: ``flash_attn.layers.rotary.apply_rotary_emb`` is a Triton
kernel that needs a CUDA GPU, and this project's CI machines have none, so
this adapter reports itself unavailable (``available()`` says "requires
CUDA") and its code path has not been executed.  It is written against the
documented signature ``apply_rotary_emb(x, cos, sin, interleaved=False,
inplace=False, seqlen_offsets=0, cu_seqlens=None, max_seqlen=None)``.  No
version has been checked and none is pinned; record the version in
``ADAPTER_VERSION`` and ``conformance/constraints.txt`` after the first run
on a GPU.

What it maps, and the library's conventions
-------------------------------------------

``apply_rope``
    ``x`` of shape ``(batch, seqlen, nheads, headdim)``; ``cos``/``sin``
    of shape ``(seqlen_rotary, rotary_dim / 2)``, one row per position,
    which the adapter builds with float32 inverse frequencies and angles
    and casts to the dtype under test (as flash-attn's ``RotaryEmbedding``
    caches them in ``x.dtype``).  ``interleaved`` is posref's ``layout``;
    the first ``rotary_dim`` channels are rotated (``rotated_slice=
    "first"``, frequencies over ``rotary_dim``).  Positions must be a
    contiguous block per sequence, ``offset_b + 0 .. T-1``: row ``t`` of the
    table is used for token ``t`` shifted by ``seqlen_offsets`` (an int, or
    one offset per batch row).  The kernel computes in float32.
``apply_rotary``
    The given angles, one row of the table per token, with the tokens laid
    out as ``(1, N, 1, D)``.

Divergences found
-----------------

Not checked (no GPU).
"""

from __future__ import annotations

import numpy as np

from posref.adapters._cuda_rope import CUDA_DEVICES, CUDA_DTYPES, CudaRopeAdapter, cuda_kernel_available
from posref.adapters._tensors import to_numpy, to_torch, torch_dtype

ADAPTER_NAME = "flash-attn"
ADAPTER_VERSION = "unchecked"
ADAPTER_DTYPES = CUDA_DTYPES
ADAPTER_DEVICES = CUDA_DEVICES


def _import_kernel():
    from flash_attn.layers.rotary import apply_rotary_emb

    return apply_rotary_emb


def available():
    return cuda_kernel_available("flash-attn's rotary kernel", "flash-attn", _import_kernel)


def make_adapter(*, dtype, device):
    return FlashAttnAdapter(dtype=dtype, device=device)


class FlashAttnAdapter(CudaRopeAdapter):
    """flash-attn's apply_rotary_emb, called like posref's spec functions."""

    def _cos_sin(self, angles):
        import torch

        angles = to_torch(np.asarray(angles, dtype=np.float32), "float32", self.device)
        target = torch_dtype(self.dtype)
        return torch.cos(angles).to(target), torch.sin(angles).to(target)

    def apply_rotary(self, x, angles, /, *, layout="half"):
        import torch
        from flash_attn.layers.rotary import apply_rotary_emb

        x = np.asarray(x)
        d = x.shape[-1]
        lead = np.broadcast_shapes(x.shape[:-1], np.shape(angles)[:-1])
        tokens = np.broadcast_to(x, lead + (d,)).reshape(1, -1, 1, d)  # (1, N, 1, D)
        cos, sin = self._cos_sin(np.broadcast_to(np.asarray(angles, dtype=np.float64), lead + (d // 2,)).reshape(-1, d // 2))
        with torch.no_grad():
            out = apply_rotary_emb(to_torch(tokens, self.dtype, self.device), cos, sin,
                                   interleaved=layout == "interleaved")
        return to_numpy(out).reshape(lead + (d,))

    def apply_rope(self, x, positions, /, *, base=10_000.0, layout="half", rotary_dim=None,
                   rotated_slice="first", freq_denominator="rotary_dim", position_offset=0):
        import torch
        from flash_attn.layers.rotary import apply_rotary_emb

        x = np.asarray(x)
        head_dim = x.shape[-1]
        r = head_dim if rotary_dim is None else int(rotary_dim)
        if r != head_dim and rotated_slice != "first" and not (rotated_slice == "first_pairs" and layout == "interleaved"):
            raise NotImplementedError("flash-attn rotates the first rotary_dim channels (rotated_slice='first')")
        length = x.shape[-2] if x.ndim >= 2 else 1
        p = np.broadcast_to(np.asarray(positions) + position_offset, x.shape[:-1]).reshape(-1, length)  # (B', T)
        starts = p[:, 0]
        if not np.array_equal(p, starts[:, None] + np.arange(length)) or not np.array_equal(starts, np.round(starts)):
            raise NotImplementedError(
                "flash-attn takes positions as a contiguous block per sequence (seqlen_offsets + 0 .. T-1)"
            )
        denominator = r if freq_denominator == "rotary_dim" else head_dim
        inv_freq = 1.0 / (np.float32(base) ** (np.arange(0, r, 2, dtype=np.float32) / np.float32(denominator)))
        rows = np.arange(int(starts.max()) + length, dtype=np.float32)[:, None] * inv_freq  # (P, r/2)
        cos, sin = self._cos_sin(rows)
        tokens = x.reshape(-1, length, 1, head_dim)  # (B', T, 1, D)
        offsets = torch.as_tensor(starts.astype(np.int32), device=self.device)
        with torch.no_grad():
            out = apply_rotary_emb(to_torch(tokens, self.dtype, self.device), cos, sin,
                                   interleaved=layout == "interleaved", seqlen_offsets=offsets)
        return to_numpy(out).reshape(x.shape)
