"""posref adapter for a rotate-half RoPE written in JAX."""
import jax.numpy as jnp
from posref.adapters.tensors import from_jax, to_jax

ADAPTER_NAME, ADAPTER_VERSION, ADAPTER_DTYPES = "rope_jax", "1.0", ("float32", "bfloat16")


def apply_rope(x, positions, /, *, base=10_000.0, layout="half", **options):
    if layout != "half" or options:
        raise NotImplementedError("full-width rotate-half RoPE only")
    if x.shape[-1] % 2 or (positions < 0).any():  # still NumPy arrays here
        raise ValueError("head dim must be even and positions non-negative")
    x, positions = to_jax(x), to_jax(positions)
    inv_freq = 1.0 / base ** (jnp.arange(0, x.shape[-1], 2, dtype=jnp.float32) / x.shape[-1])
    angles = positions[..., None].astype(jnp.float32) * inv_freq
    emb = jnp.concatenate((angles, angles), axis=-1)
    x1, x2 = jnp.split(x, 2, axis=-1)
    rotated = jnp.concatenate((-x2, x1), axis=-1)
    return from_jax(x * jnp.cos(emb).astype(x.dtype) + rotated * jnp.sin(emb).astype(x.dtype))
