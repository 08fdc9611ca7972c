"""Adapter for NVIDIA Megatron-Core's position embeddings (``pip install megatron-core==0.16.1``).

Checked with megatron-core 0.16.1 on torch 2.13.0 (CPU), without
Transformer Engine or Apex (megatron-core 0.17 and later need Python 3.12).
Pinned in ``conformance/constraints-new-heavy.txt``.

A patch, applied by the adapter (never written into Megatron-Core): the
rotary modules place their inverse frequencies on
``torch.cuda.current_device()`` (at construction unless
``use_cpu_initialization=True``, which the adapter passes, and again at the
first forward pass, and always for ``MultimodalRotaryEmbedding``).  While a
module is built or run the adapter replaces ``torch.cuda.current_device``
with a function returning ``"cpu"``, and restores it afterwards.

What it maps, and the library's conventions
-------------------------------------------

``rope_frequencies``
    ``RotaryEmbedding(kv_channels=dim, rotary_percent=1).inv_freq``
    (float32).
``apply_rope``
    ``RotaryEmbedding(kv_channels=D, rotary_percent=r/D,
    rotary_interleaved=..., rotary_base=base)`` gives the angle table of
    ``forward(max_seq_len)`` (positions ``0 .. max_seq_len - 1``, float32,
    ``[S, 1, 1, r]``: ``cat(f, f)`` or, interleaved, each angle twice); the
    adapter picks the rows of the requested positions and calls the unfused
    ``rope_utils._apply_rotary_pos_emb_bshd(t, freqs, rotary_interleaved)``
    (what ``apply_rotary_pos_emb`` calls without fusion), which rotates the
    first ``r`` channels (``rotated_slice="first"``, exponent denominator
    ``r``), with cos and sin computed in float32 and cast to the dtype of
    ``t``.  ``rotary_interleaved=True`` pairs channels ``2i, 2i+1``.
    Integer positions; a position offset is added to them.
``apply_rotary``
    ``_apply_rotary_pos_emb_bshd`` with the given angles as ``freqs``
    (float32, expanded as the module expands its own).
``rope_cos_sin``
    ``RotaryEmbedding.get_cos_sin(max_seq_len)`` (float32 cos/sin of the
    ``dim/2`` angles) at the requested positions, expanded to the layout.
``llama3_scaled_frequencies``
    ``RotaryEmbedding(rope_scaling=True, rope_scaling_factor=s).inv_freq``:
    Megatron-Core fixes ``low_freq_factor=1``, ``high_freq_factor=4`` and
    ``original_max_position_embeddings=8192`` (the Llama 3.1 values); other
    values are not expressible.
``yarn_frequencies``
    ``YarnRotaryEmbedding(...).get_emb(1, offset=1)``: the angles at
    position 1 are the YaRN inverse frequencies (``correction_range_round_to_int``
    is posref ``truncate``).  No ``extrapolation_factor``.
``yarn_attention_factor``, ``yarn_correction_range``
    ``yarn_rotary_pos_embedding._yarn_get_concentration_factor(s, mscale,
    mscale_all_dim)`` and ``_yarn_find_correction_range(beta_fast,
    beta_slow, dim, base, L0, round_to_int)``.  No ``attention_factor``
    override.
``apply_mrope``
    ``MultimodalRotaryEmbedding(kv_channels=D, rotary_percent=1,
    rotary_base=base).forward(position_ids (3, B, T), mrope_section)``
    (Qwen2-VL contiguous sections, ``section_order="blocks"``) and
    ``_apply_rotary_pos_emb_bshd``.
``t5_relative_bucket``
    ``RelativePositionEmbedding._relative_position_bucket`` (a copy of
    Hugging Face's T5 rule; it does not use ``self``).

Not expressible: linear interpolation (``seq_len_interpolation_factor``
multiplies the positions, not the frequencies), the last ``r`` channels,
Megatron's fused kernels (Transformer Engine, not installed).

Precision: tables are float32 and the rotation runs in the dtype of the
activations with float32 cos/sin cast to it; float64 is not offered.

Divergences found
-----------------

Over the golden cases every valid case conforms in float32, float16 and
bfloat16, the positions near 2**20 included.  What is listed in
``posref/adapters/known/megatron_core-<dtype>.txt`` are invalid inputs:
accepted (``rotary_percent > 1`` is silently ignored, unvalidated bases and
factors) or rejected with ``RuntimeError``/``ZeroDivisionError``.
"""

from __future__ import annotations

import contextlib

import numpy as np

from posref.adapters._tensors import positions_as_int, to_numpy, to_torch, torch_available

ADAPTER_NAME = "megatron_core"
ADAPTER_VERSION = "0.16.1"
ADAPTER_DTYPES = ("float32", "float16", "bfloat16")
ADAPTER_DEVICES = ("cpu",)
#: What the adapter does to reach the library (shown by ``posref adapters``).
ADAPTER_NOTES = "patches torch.cuda.current_device to return \"cpu\" while modules are built and run (use_cpu_initialization=True)"

#: Largest angle table built (rows x rotary dim).
_TABLE_LIMIT = 1 << 28


def available():
    return torch_available("megatron-core", "megatron.core.models.common.embeddings.rotary_pos_embedding")


def make_adapter(*, dtype, device):
    return MegatronCoreAdapter(dtype=dtype)


@contextlib.contextmanager
def _on_cpu():
    """torch.cuda.current_device() returns "cpu" inside (see the module docstring)."""
    import torch

    saved = torch.cuda.current_device
    torch.cuda.current_device = lambda: "cpu"
    try:
        yield
    finally:
        torch.cuda.current_device = saved


def _embeddings():
    from megatron.core.models.common.embeddings import rope_utils, rotary_pos_embedding, yarn_rotary_pos_embedding

    return rotary_pos_embedding, yarn_rotary_pos_embedding, rope_utils


class MegatronCoreAdapter:
    """Megatron-Core's position embeddings, called like posref's spec functions."""

    def __init__(self, *, dtype):
        self.dtype = dtype

    @staticmethod
    def _check_layout(layout):
        if layout not in ("half", "interleaved"):
            raise NotImplementedError(f"Megatron-Core has no layout {layout!r}; rotary_interleaved=False is 'half', "
                                      "True is 'interleaved'")

    @staticmethod
    def _rotary(dim, base, *, percent=1.0, interleaved=False, **options):
        rotary_pos_embedding, _, _ = _embeddings()
        with _on_cpu():
            return rotary_pos_embedding.RotaryEmbedding(int(dim), percent, rotary_interleaved=interleaved,
                                                        rotary_base=base, use_cpu_initialization=True, **options)

    @staticmethod
    def _table(rope, top, width):
        if int(top) * int(width) > _TABLE_LIMIT:
            raise NotImplementedError(f"Megatron-Core builds the angles of every position below max_seq_len: "
                                      f"{top} rows of {width} exceed {_TABLE_LIMIT} entries")
        with _on_cpu():
            return rope.get_emb(int(top))  # [S, 1, 1, r]; forward() is the same, behind an lru_cache

    def _apply(self, x, freqs, interleaved, mscale=1.0):
        import torch

        _, _, rope_utils = _embeddings()
        t = to_torch(x, self.dtype)[:, None, None, :]  # [s, b=1, h=1, d]
        with torch.no_grad():
            out = rope_utils._apply_rotary_pos_emb_bshd(t, freqs, rotary_interleaved=interleaved, mscale=mscale)
        return to_numpy(out)[:, 0, 0, :]

    # -- RoPE ------------------------------------------------------------------------------

    def rope_frequencies(self, dim, /, *, base=10_000.0):
        return to_numpy(self._rotary(dim, base).inv_freq)

    def rope_cos_sin(self, positions, dim, /, *, base=10_000.0, layout="half"):
        import torch

        self._check_layout(layout)
        positions = positions_as_int(positions)
        flat = positions.reshape(-1)
        if flat.size and flat.min() < 0:
            raise NotImplementedError("get_cos_sin covers positions 0 .. max_seq_len - 1")
        rope = self._rotary(dim, base)
        top = int(flat.max()) + 1 if flat.size else 1
        if top * int(dim) > _TABLE_LIMIT:
            raise NotImplementedError("Megatron-Core builds the angles of every position below max_seq_len")
        cos, sin = rope.get_cos_sin(top)
        idx = to_torch(flat)
        cos, sin = cos[idx], sin[idx]
        if layout == "half":
            cos, sin = torch.cat((cos, cos), -1), torch.cat((sin, sin), -1)
        else:
            cos, sin = cos.repeat_interleave(2, -1), sin.repeat_interleave(2, -1)
        shape = positions.shape + (int(dim),)
        return to_numpy(cos).reshape(shape), to_numpy(sin).reshape(shape)

    def apply_rotary(self, x, angles, /, *, layout="half"):
        import torch

        self._check_layout(layout)
        x, angles = np.asarray(x), np.asarray(angles)
        lead = np.broadcast_shapes(x.shape[:-1], angles.shape[:-1])
        d = x.shape[-1]
        rows = np.broadcast_to(x, lead + (d,)).reshape(-1, d)
        a = to_torch(np.broadcast_to(angles, lead + angles.shape[-1:]).reshape(-1, angles.shape[-1]), "float32")
        if layout == "half":
            freqs = torch.cat((a, a), -1)
        else:
            freqs = torch.stack((a, a), -1).reshape(a.shape[0], -1)
        return self._apply(rows, freqs[:, None, None, :], layout == "interleaved").reshape(lead + (d,))

    def apply_rope(self, x, positions, /, *, base=10_000.0, layout="half", rotary_dim=None,
                   rotated_slice="first", freq_denominator="rotary_dim", position_offset=0):
        self._check_layout(layout)
        x = np.asarray(x)
        head_dim = x.shape[-1]
        r = head_dim if rotary_dim is None else int(rotary_dim)
        if r != head_dim and (rotated_slice != "first" or freq_denominator != "rotary_dim"):
            raise NotImplementedError("Megatron-Core rotates the first kv_channels * rotary_percent channels with "
                                      "that many as the exponent denominator (rotated_slice='first', "
                                      "freq_denominator='rotary_dim')")
        percent = r / head_dim
        if int(head_dim * percent) != r:
            raise NotImplementedError(f"rotary_percent = {r}/{head_dim} does not give back {r} channels")
        if not float(position_offset).is_integer():
            raise NotImplementedError("Megatron-Core's positions are integers; a fractional offset is not expressible")
        p = positions_as_int(positions) + int(position_offset)
        p = np.broadcast_to(p, x.shape[:-1]).reshape(-1)
        if p.size and p.min() < 0:
            raise NotImplementedError("RotaryEmbedding's table covers positions 0 .. max_seq_len - 1")
        rope = self._rotary(head_dim, base, percent=percent, interleaved=layout == "interleaved")
        top = int(p.max()) + 1 if p.size else 1
        freqs = self._table(rope, top, r)[to_torch(p)]  # [N, 1, 1, r]
        return self._apply(x.reshape(-1, head_dim), freqs, layout == "interleaved").reshape(x.shape)

    def apply_mrope(self, x, positions, /, *, base=10_000.0, mrope_section, section_order="blocks", layout="half",
                    interleaved=None):
        if interleaved is None:  # the spec's deprecated name for section_order="round_robin"
            interleaved = section_order == "round_robin"  # Qwen3-VL's pattern, or contiguous sections
        import torch

        rotary_pos_embedding, _, _ = _embeddings()
        if interleaved or layout != "half":
            raise NotImplementedError("Megatron-Core's MultimodalRotaryEmbedding has contiguous sections "
                                      "(interleaved=False) in the half layout")
        x = np.asarray(x)
        head_dim = x.shape[-1]
        p = positions_as_int(positions)
        if p.ndim < 2 or p.shape[0] != 3:
            raise NotImplementedError("MultimodalRotaryEmbedding takes position ids of shape (3, batch, seq)")
        p = p.reshape((3,) + (1,) * max(x.ndim - p.ndim, 0) + p.shape[1:])
        p = np.broadcast_to(p, (3,) + x.shape[:-1]).reshape(3, 1, -1)  # (3, bs=1, N): every head its own token
        with _on_cpu():
            module = rotary_pos_embedding.MultimodalRotaryEmbedding(head_dim, 1.0, rotary_base=base)
            with torch.no_grad():
                emb = module(to_torch(p), [int(s) for s in np.asarray(mrope_section).reshape(-1)])  # [N, 1, 1, D]
        return self._apply(x.reshape(-1, head_dim), emb, False).reshape(x.shape)

    # -- RoPE scaling -----------------------------------------------------------------------

    def llama3_scaled_frequencies(self, dim, /, *, base=500_000.0, scaling_factor=8.0, low_freq_factor=1.0,
                                  high_freq_factor=4.0, original_max_position_embeddings=8192):
        if (low_freq_factor, high_freq_factor, original_max_position_embeddings) != (1.0, 4.0, 8192):
            raise NotImplementedError("Megatron-Core's rope_scaling fixes low_freq_factor=1, high_freq_factor=4 and "
                                      "original_max_position_embeddings=8192")
        rope = self._rotary(dim, base, rope_scaling=True, rope_scaling_factor=float(scaling_factor))
        return to_numpy(rope.inv_freq)

    def yarn_frequencies(self, dim, /, *, base=10_000.0, scaling_factor, original_max_position_embeddings,
                         beta_fast=32.0, beta_slow=1.0, truncate=True, extrapolation_factor=1.0, high_limit="dim"):
        _, yarn, _ = _embeddings()
        if extrapolation_factor != 1.0:
            raise NotImplementedError("Megatron-Core's YaRN has no extrapolation factor (it is 1)")
        if high_limit != "dim":
            raise NotImplementedError("Megatron-Core clamps the YaRN correction range at dim - 1 (high_limit='dim')")
        with _on_cpu():
            rope = yarn.YarnRotaryEmbedding(int(dim), rotary_base=float(base), use_cpu_initialization=True,
                                            scaling_factor=float(scaling_factor),
                                            original_max_position_embeddings=int(original_max_position_embeddings),
                                            beta_fast=float(beta_fast), beta_slow=float(beta_slow),
                                            correction_range_round_to_int=bool(truncate))
            emb, _ = rope.get_emb(1, offset=1)  # angles at position 1: the inverse frequencies
        return to_numpy(emb[0, 0, 0, : int(dim) // 2])

    def yarn_attention_factor(self, scaling_factor, /, *, mscale=1.0, mscale_all_dim=0.0, attention_factor=None):
        _, yarn, _ = _embeddings()
        if attention_factor is not None:
            raise NotImplementedError("Megatron-Core's YaRN takes no attention_factor override")
        return float(yarn._yarn_get_concentration_factor(float(scaling_factor), float(mscale), float(mscale_all_dim)))

    def yarn_correction_range(self, dim, /, *, base=10_000.0, original_max_position_embeddings, beta_fast=32.0,
                              beta_slow=1.0, truncate=True, high_limit="dim"):
        _, yarn, _ = _embeddings()
        if high_limit != "dim":
            raise NotImplementedError("Megatron-Core clamps the YaRN correction range at dim - 1 (high_limit='dim')")
        low, high = yarn._yarn_find_correction_range(float(beta_fast), float(beta_slow), int(dim), float(base),
                                                     int(original_max_position_embeddings), bool(truncate))
        return float(low), float(high)

    # -- T5 ------------------------------------------------------------------------------------

    def t5_relative_bucket(self, relative_position, /, *, bidirectional=True, num_buckets=32, max_distance=128):
        from megatron.core.models.common.embeddings.relative_pos_embedding import RelativePositionEmbedding

        r = positions_as_int(relative_position, "relative_position")
        buckets = RelativePositionEmbedding._relative_position_bucket(
            None, to_torch(r), bidirectional=bool(bidirectional), num_buckets=int(num_buckets),
            max_distance=int(max_distance))
        return to_numpy(buckets).astype(np.int64)
