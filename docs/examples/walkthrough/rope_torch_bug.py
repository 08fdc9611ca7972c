"""posref adapter for a rotate-half RoPE written in PyTorch."""
import torch
from posref.adapters.tensors import from_torch, to_torch

ADAPTER_NAME, ADAPTER_VERSION, ADAPTER_DTYPES = "rope_torch", "1.0", ("float32", "bfloat16")


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x, positions, /, *, base=10_000.0, layout="half", **options):
    if layout != "half" or options:  # rotary_dim, position_offset, ...: not in this module
        raise NotImplementedError("full-width rotate-half RoPE only")
    x, positions = to_torch(x), to_torch(positions)
    if x.shape[-1] % 2 or (positions < 0).any():
        raise ValueError("head dim must be even and positions non-negative")
    inv_freq = 1.0 / base ** (torch.arange(x.shape[-1] // 2, dtype=torch.float32) / x.shape[-1])
    angles = positions[..., None].float() * inv_freq  # float32 angles, as in Hugging Face
    emb = torch.cat((angles, angles), dim=-1)
    return from_torch(x * emb.cos().to(x.dtype) + rotate_half(x) * emb.sin().to(x.dtype))
