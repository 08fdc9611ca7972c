"""Adapter for torchtitan (``pip install --no-deps torchtitan==0.3.0`` plus ``spmd_types tyro docstring_parser``).

Checked with torchtitan 0.3.0 (spmd_types 0.2.3, tyro 1.0.17,
docstring_parser 0.18.0, typeguard 4.6.1) on torch 2.13.0 (CPU); pinned in
``conformance/constraints-new-light.txt``.

**Loaded from its file path.**  torchtitan's requirements (datasets,
wandb, tensorboard, torchdata, ...) and the package's model imports pull in
far more than RoPE needs (triton among them, about 1 GB).  The package is
installed with ``--no-deps``; the adapter loads
``torchtitan/models/common/rope.py`` with
``importlib.util.spec_from_file_location`` (it imports
``torchtitan.protocols.module``, which needs ``spmd_types``, ``tyro`` and
``docstring_parser``, not triton).  Nothing in the library is changed.

What it maps, and the library's conventions
-------------------------------------------

``ComplexRoPE`` and ``CosSinRoPE`` (``RoPE.Config(dim, max_seq_len, theta,
scaling, ...)``) build a cache for positions ``0 .. max_seq_len - 1`` at
construction: inverse frequencies ``1 / theta ** (arange(0, dim, 2) / dim)``
in float32, angles ``outer(t, inv_freq)`` in float32; ``ComplexRoPE`` keeps
``polar(1, angles)`` (complex64) and rotates pairs ``2i, 2i+1`` as complex
numbers (``layout="interleaved"``, Llama 3/4, DeepSeek-V3);
``CosSinRoPE`` keeps ``[cos | sin]`` of ``cat(f, f)`` and uses
``rotate_half`` (``layout="half"``, Qwen3, GPT-OSS).  ``forward(query,
key, positions)`` takes ``(batch, seq, heads, head_dim)`` and integer
positions ``(batch, seq)``, computes in float32 and casts back to the dtype
of the query.  The adapter gives every token its own row (``[1, N, 1, D]``,
positions ``[1, N]``) and sizes ``max_seq_len`` to the largest position.

``rope_cos_sin``
    ``CosSinRoPE(...).cache`` (``layout="half"``) or ``ComplexRoPE(...).cache``
    (real and imaginary parts repeated for both channels of a pair,
    ``layout="interleaved"``), indexed by the positions.
``rope_frequencies``, ``llama3_scaled_frequencies``, ``yarn_frequencies``
    The angle of ``ComplexRoPE(...).cache[1]`` (position 1), which is the
    inverse frequency itself (all are below pi); the library keeps no
    frequency table apart from its caches.  ``scaling="llama"``
    (``scaling_factor``, ``low_freq_factor``, ``high_freq_factor``,
    ``original_max_position_embeddings``; the Llama 3.1 rule, computed
    element by element in float32) and ``scaling="yarn"`` (``rope_factor``,
    ``beta_fast``, ``beta_slow``, ``original_seq_len``, ``truncate``:
    ``_yarn_inv_freq``, the range clamped to ``[0, dim - 1]``, posref
    ``high_limit="dim"``; no ``extrapolation_factor``).  YaRN's attention
    factor is not part of the RoPE module ("the model folds mscale into its
    softmax scale") and is not mapped.
``apply_rotary``
    The modules with their cache replaced by the cos/sin (or ``polar``) of
    the given angles in float32, so that their ``apply_rotary_emb`` does
    the rotation.
``apply_rope``
    ``ComplexRoPE`` (``layout="interleaved"``) or ``CosSinRoPE``
    (``layout="half"``) ``forward`` at the given integer positions plus an
    integer ``position_offset``.  The whole head is rotated: partial rotary
    is not expressible.

Precision: every rotation in float32 whatever the dtype of the query, the
caches in float32/complex64; float64 would be rotated in float32, so it is
not offered.

Divergences found
-----------------

Every valid golden case conforms in float32, float16 and bfloat16,
positions near 2**20 included.  Listed in
``posref/adapters/known/torchtitan-<dtype>.txt``: invalid inputs accepted
without a check (``dim=63``, ``base=1``, a scaling factor below 1, Llama
``high_freq_factor < low_freq_factor``, a negative position, which indexes
the cache from its end), and shapes rejected with ``RuntimeError`` rather
than ``ValueError``.
"""

from __future__ import annotations

import functools

import numpy as np

from posref.adapters._loading import load_package_file
from posref.adapters._tensors import positions_as_int, to_numpy, to_torch, torch_available

ADAPTER_NAME = "torchtitan"
ADAPTER_VERSION = "0.3.0"
ADAPTER_DTYPES = ("float32", "float16", "bfloat16")
ADAPTER_DEVICES = ("cpu",)

#: The options torchtitan can express (see the module docstring); fuzzing draws inside them.
ADAPTER_OPTIONS = {
    "apply_rope": {"rotary_dim": "default"},
    "yarn_frequencies": {"extrapolation_factor": "default", "high_limit": ["dim"]},
}

_RELATIVE_PATH = ("models", "common", "rope.py")


@functools.lru_cache(maxsize=1)
def _rope():
    """``torchtitan/models/common/rope.py``, loaded from its path (the package's model imports pull triton)."""
    return load_package_file("torchtitan", _RELATIVE_PATH, "_posref_torchtitan_rope")


def available():
    why = torch_available("torch", "torch")
    if why:
        return why
    try:
        _rope()
    except Exception as exc:
        return (f"torchtitan's models/common/rope.py cannot be loaded ({type(exc).__name__}: {exc}); "
                "pip install --no-deps torchtitan, plus spmd_types tyro docstring_parser")
    return None


def make_adapter(*, dtype, device):
    return TorchtitanAdapter(dtype=dtype, device=device)


class TorchtitanAdapter:
    """torchtitan's RoPE modules, called like posref's spec functions."""

    def __init__(self, *, dtype, device):
        self.dtype = dtype
        self.device = device

    # -- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _module(layout, dim, max_seq_len, base=10_000.0, **scaling):
        rope = _rope()
        if layout == "interleaved":
            cls = rope.ComplexRoPE
        elif layout == "half":
            cls = rope.CosSinRoPE
        else:
            raise NotImplementedError(f"torchtitan has no layout {layout!r}; ComplexRoPE is 'interleaved' and "
                                      "CosSinRoPE is 'half'")
        return cls(cls.Config(dim=int(dim), max_seq_len=max(int(max_seq_len), 1), theta=base, **scaling))

    def _rotate(self, module, x, positions):
        """``module.forward`` on x (N, D) as [1, N, 1, D] at positions (N,); returns (N, D)."""
        import torch

        t = to_torch(x, self.dtype)[None, :, None, :]
        pos = to_torch(np.asarray(positions).reshape(1, -1))
        with torch.no_grad():
            out, _ = module(t, t, pos)
        return out[0, :, 0, :]

    def _scaled(self, dim, **scaling):
        import torch

        module = self._module("interleaved", dim, 2, **scaling)
        return to_numpy(torch.angle(module.cache[1]))

    # -- RoPE ------------------------------------------------------------------------------

    def rope_frequencies(self, dim, /, *, base=10_000.0):
        return self._scaled(dim, base=base)

    def rope_cos_sin(self, positions, dim, /, *, base=10_000.0, layout="half"):
        import torch

        positions = positions_as_int(positions)
        end = int(positions.max()) + 1 if positions.size else 1
        module = self._module(layout, dim, end, base)
        rows = module.cache[to_torch(positions.reshape(-1))]
        if layout == "half":  # [cos(cat(f, f)) | sin(cat(f, f))]
            cos, sin = rows[:, :dim], rows[:, dim:]
        else:  # complex64 polar(1, f): one entry per pair
            cos = torch.repeat_interleave(rows.real, 2, -1)
            sin = torch.repeat_interleave(rows.imag, 2, -1)
        shape = positions.shape + (cos.shape[-1],)
        return to_numpy(cos).reshape(shape), to_numpy(sin).reshape(shape)

    def apply_rotary(self, x, angles, /, *, layout="half"):
        import torch

        x, angles = np.asarray(x), np.asarray(angles)
        lead = np.broadcast_shapes(x.shape[:-1], angles.shape[:-1])
        d = x.shape[-1]
        flat_x = np.broadcast_to(x, lead + (d,)).reshape(-1, d)
        a = to_torch(np.broadcast_to(angles, lead + angles.shape[-1:]).reshape(-1, angles.shape[-1]), "float32")
        module = self._module(layout, d, a.shape[0])
        if layout == "half":  # CosSinRoPE cache rows: [cos(cat(a, a)) | sin(cat(a, a))]
            doubled = torch.cat([a, a], dim=-1)
            module.cache = torch.cat([doubled.cos(), doubled.sin()], dim=-1)
        else:  # ComplexRoPE cache rows: polar(1, a)
            module.cache = torch.polar(torch.ones_like(a), a)
        out = self._rotate(module, flat_x, np.arange(flat_x.shape[0]))
        return to_numpy(out).reshape(lead + (d,))

    def apply_rope(self, x, positions, /, *, base=10_000.0, layout="half", rotary_dim=None,
                   rotated_slice="first", freq_denominator="rotary_dim", position_offset=0):
        x = np.asarray(x)
        head_dim = x.shape[-1]
        if layout not in ("half", "interleaved"):
            self._module(layout, head_dim, 1)  # raises NotImplementedError naming the layouts
        if rotary_dim is not None and rotary_dim != head_dim:
            raise NotImplementedError("torchtitan's RoPE modules rotate the whole head; partial rotary "
                                      "(rotary_dim < head_dim) is not expressible")
        if not float(position_offset).is_integer():
            raise NotImplementedError("torchtitan's positions are integers; a fractional offset is not expressible")
        p = positions_as_int(positions) + int(position_offset)
        p = np.broadcast_to(p, x.shape[:-1]).reshape(-1)
        module = self._module(layout, head_dim, int(p.max()) + 1 if p.size else 1, base)
        return to_numpy(self._rotate(module, x.reshape(-1, head_dim), p)).reshape(x.shape)

    # -- RoPE scaling -----------------------------------------------------------------------

    def llama3_scaled_frequencies(self, dim, /, *, base=500_000.0, scaling_factor=8.0, low_freq_factor=1.0,
                                  high_freq_factor=4.0, original_max_position_embeddings=8192):
        return self._scaled(dim, base=base, scaling="llama", scaling_factor=scaling_factor,
                            low_freq_factor=low_freq_factor, high_freq_factor=high_freq_factor,
                            original_max_position_embeddings=int(original_max_position_embeddings))

    def yarn_frequencies(self, dim, /, *, base=10_000.0, scaling_factor, original_max_position_embeddings,
                         beta_fast=32.0, beta_slow=1.0, truncate=True, extrapolation_factor=1.0, high_limit="dim"):
        if extrapolation_factor != 1.0:
            raise NotImplementedError("torchtitan's YaRN has no extrapolation_factor (it is 1)")
        if high_limit != "dim":
            raise NotImplementedError("torchtitan clamps the YaRN correction range at dim - 1 (high_limit='dim')")
        return self._scaled(dim, base=base, scaling="yarn", rope_factor=scaling_factor, beta_fast=beta_fast,
                            beta_slow=beta_slow, original_seq_len=int(original_max_position_embeddings),
                            truncate=bool(truncate))
