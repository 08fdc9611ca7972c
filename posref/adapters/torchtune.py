"""Adapter for torchtune (``pip install torchtune==0.6.1 "torchao<=0.17"``).

Checked with torchtune 0.6.1 (torchao 0.17.0) on torch 2.13.0 (CPU); all
pinned in ``conformance/constraints.txt``.  torchtune 0.6.1 does not import
with a newer torchao.

What it maps, and the library's conventions
-------------------------------------------

Every rotary module takes ``x`` of shape ``[b, s, n_h, h_d]`` and optional
``input_pos`` of shape ``[b, s]``, looks the positions up in a cache built at
construction for ``0 .. max_seq_len - 1`` (angles and cos/sin in float32),
computes in float32 and casts back to the dtype of ``x``.  The adapter gives
every token its own position (``x`` as ``[1, N, 1, D]``, ``input_pos`` as
``[1, N]``) and builds the cache up to the largest position; a position near
2**20 therefore means a cache of 2**20 rows (about 15 s and 3 GB for
``Qwen2RotaryPositionalEmbeddings`` at ``dim=128``).  Positions are integers;
a position offset is added to them, as ``input_pos`` carries it during
decoding.

``rope_frequencies``
    ``RotaryPositionalEmbeddings(dim, base=...).theta`` (float32).
``rope_cos_sin``
    The module caches: ``Qwen2RotaryPositionalEmbeddings.cache``
    (``[cos | sin]`` of ``cat(f, f)``, ``layout="half"``) and
    ``RotaryPositionalEmbeddings.cache`` (one ``(cos, sin)`` per pair,
    expanded to both channels of the pair for ``layout="interleaved"``).
``apply_rotary``
    The same modules with their cache replaced by the cos and sin of the
    given angles (float32, as torchtune builds it), so that their
    ``forward`` does the rotation.
``apply_rope``
    ``layout="interleaved"``: ``RotaryPositionalEmbeddings`` (Llama 2/3,
    Mistral, Gemma in torchtune; pairs ``2i, 2i+1``).  ``layout="half"``:
    ``Qwen2RotaryPositionalEmbeddings`` (``rotate_half``; cos and sin cast
    to the dtype of ``x`` before the products).  torchtune's Phi-3 module
    ``Phi3RotaryPositionalEmbeddings`` has the same table and rotation but
    multiplies ``x`` by float32 cos/sin; the adapter object built with
    ``half_layout_module="phi3"`` uses it instead.  Every module rotates the
    whole head: partial rotary (``rotary_dim < D``) is not expressible.
``llama3_scaled_frequencies``
    ``Llama3ScaledRoPE(...).theta`` (``scale_factor``, ``low_freq_factor``,
    ``high_freq_factor``, ``old_context_len``), computed element by element
    in float32.  torchtune 0.6.1 has no ``Llama4ScaledRoPE``; Llama 4's
    rule is this one with ``high_freq_factor=1``, for which the module
    asserts inside the blended branch (reached only by a wavelength exactly
    equal to ``old_context_len``).
``apply_axial_rope``
    ``VisionRotaryPositionalEmbeddings(patch_size=1, tile_size=G,
    max_num_tiles=T, dim=D // 2, base=...)``: per-axis frequencies
    ``base ** (-4k/D)``, the column (``x``) first (``axis_order="xy"``,
    ``frequencies="per_axis"``), interleaved pairs.  The module has a fixed
    grid: each of ``T`` tiles holds ``G * G`` patches in row-major order at
    coordinates counted from 1, plus one class token at ``(0, 0)`` (angle
    0), last (``append_cls_token=True``) or first.  Other positions are
    not expressible; the tokens are the second-to-last axis of ``x``.
``t5_relative_bucket``, ``t5_relative_bias``
    The Flux T5 encoder's ``_calc_birectional_rel_pos_to_bucket`` and
    ``T5EncoderRelativePositionBias`` (bidirectional only): the bucket of
    every (query, key) pair of a ``max_seq_len`` square, from which the
    adapter reads the requested relative positions or positions.  The
    square limits relative positions to ``|r| < 4096``.

Precision: torchtune computes every rotation in float32 whatever the dtype
of ``x``, and its tables in float32; float64 inputs would be rotated in
float32, so float64 is not offered.

Divergences found
-----------------

Over the golden cases every valid case conforms in float32, float16 and
bfloat16, the positions near 2**20 included (``apply_rope.*.hard_positions``
at up to 0.35 of the float32 budget).  What fails is listed in
``posref/adapters/known/torchtune-<dtype>.txt``: four invalid inputs the
modules accept without a check (``dim=63`` gives 31 frequencies with
denominator 63; ``base=1`` gives constant angles; ``Llama3ScaledRoPE``
takes ``scale_factor=0.5`` and ``high_freq_factor < low_freq_factor``).
The Phi-3 module conforms on the same cases; in bfloat16 it is the more
accurate of the two half-layout modules, since it never rounds cos and sin
to bfloat16.
"""

from __future__ import annotations

import numpy as np

from posref.adapters._tensors import positions_as_int, to_numpy, to_torch, torch_available, torch_dtype
from posref.conformance.adapter import AdapterError

ADAPTER_NAME = "torchtune"
ADAPTER_VERSION = "0.6.1"
ADAPTER_DTYPES = ("float32", "float16", "bfloat16")
ADAPTER_DEVICES = ("cpu", "cuda")

#: The options torchtune can express (see the module docstring); fuzzing draws inside them.
ADAPTER_OPTIONS = {
    "apply_rope": {"rotary_dim": "default"},
    "apply_axial_rope": {"axis_order": ["xy"], "frequencies": ["per_axis"], "layout": ["interleaved"]},
    "t5_relative_bucket": {"bidirectional": "default"},
    "t5_relative_bias": {"bidirectional": "default"},
}

#: Largest side of the T5 bucket square built (torchtune builds every (query, key) pair).
_T5_MAX_SEQ_LEN = 4096


def available():
    return torch_available("torchtune", "torchtune.modules.position_embeddings")


def make_adapter(*, dtype, device, half_layout_module="qwen2"):
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise AdapterError(f"device {device!r} was asked for, but torch sees no CUDA device here")
    return TorchtuneAdapter(dtype=dtype, device=device, half_layout_module=half_layout_module)


def _grid_side(count):
    """G with G * G == count, or None."""
    side = int(round(count**0.5))
    return side if side * side == count else None


def _vision_pattern(positions_2d):
    """(tiles, grid side, class token last) when ``positions_2d`` (2, S) is torchtune's vision grid, else None."""
    y, x = positions_2d
    total = y.size
    for tiles in range(1, total + 1):
        if total % tiles:
            continue
        per_tile = total // tiles
        side = _grid_side(per_tile - 1)
        if not side:
            continue
        patch = np.arange(side * side)
        grid_y, grid_x = patch // side + 1, patch % side + 1  # row-major, counted from 1
        for cls_last in (True, False):
            ty = np.concatenate([grid_y, [0]]) if cls_last else np.concatenate([[0], grid_y])
            tx = np.concatenate([grid_x, [0]]) if cls_last else np.concatenate([[0], grid_x])
            if np.array_equal(y, np.tile(ty, tiles)) and np.array_equal(x, np.tile(tx, tiles)):
                return tiles, side, cls_last
    return None


class TorchtuneAdapter:
    """torchtune's position modules, called like posref's spec functions."""

    def __init__(self, *, dtype, device, half_layout_module="qwen2"):
        if half_layout_module not in ("qwen2", "phi3"):
            raise AdapterError(f"half_layout_module must be 'qwen2' or 'phi3', got {half_layout_module!r}")
        self.dtype = dtype
        self.device = device
        self.half_layout_module = half_layout_module

    # -- helpers ---------------------------------------------------------------------------

    def _module(self, layout, dim, base, max_seq_len):
        if layout == "interleaved":
            from torchtune.modules import RotaryPositionalEmbeddings as Module
        elif self.half_layout_module == "qwen2":
            from torchtune.models.qwen2._positional_embeddings import Qwen2RotaryPositionalEmbeddings as Module
        else:
            from torchtune.models.phi3._position_embeddings import Phi3RotaryPositionalEmbeddings as Module
        return Module(dim, max_seq_len=max(int(max_seq_len), 1), base=base).to(self.device)

    def _rotate(self, module, x, input_pos=None):
        """Run ``module`` on x (N, D) as [1, N, 1, D]; return (N, D)."""
        import torch

        t = to_torch(x, self.dtype, self.device)[None, :, None, :]  # [b=1, s=N, n_h=1, h_d=D]
        pos = None if input_pos is None else to_torch(np.asarray(input_pos).reshape(1, -1), device=self.device)
        with torch.no_grad():
            out = module(t, input_pos=pos)
        return out[0, :, 0, :]

    @staticmethod
    def _check_layout(layout):
        if layout not in ("half", "interleaved"):
            raise NotImplementedError(f"torchtune has no layout {layout!r}; its layouts are 'half' and 'interleaved'")

    # -- RoPE ------------------------------------------------------------------------------

    def rope_frequencies(self, dim, /, *, base=10_000.0):
        from torchtune.modules import RotaryPositionalEmbeddings

        return to_numpy(RotaryPositionalEmbeddings(dim, max_seq_len=1, base=base).theta)

    def rope_cos_sin(self, positions, dim, /, *, base=10_000.0, layout="half"):
        import torch

        self._check_layout(layout)
        positions = positions_as_int(positions)
        flat = to_torch(positions.reshape(-1), device=self.device)
        module = self._module(layout, dim, base, int(positions.max()) + 1 if positions.size else 1)
        rows = module.cache[flat]
        if layout == "half":  # [cos(cat(f, f)) | sin(cat(f, f))]
            cos, sin = rows[:, :dim], rows[:, dim:]
        else:  # (dim/2, 2) pairs of (cos, sin), each for both channels of its pair
            cos = torch.repeat_interleave(rows[..., 0], 2, -1)
            sin = torch.repeat_interleave(rows[..., 1], 2, -1)
        shape = positions.shape + (dim,)
        return to_numpy(cos).reshape(shape), to_numpy(sin).reshape(shape)

    def apply_rotary(self, x, angles, /, *, layout="half"):
        import torch

        self._check_layout(layout)
        x, angles = np.asarray(x), np.asarray(angles)
        lead = np.broadcast_shapes(x.shape[:-1], angles.shape[:-1])
        d = x.shape[-1]
        x = np.broadcast_to(x, lead + (d,)).reshape(-1, d)  # (N, D)
        a = to_torch(np.broadcast_to(angles, lead + angles.shape[-1:]).reshape(-1, angles.shape[-1]), "float32",
                     self.device)  # (N, D/2)
        module = self._module(layout, d, 10_000.0, a.shape[0])
        if layout == "half":  # Qwen2/Phi3 cache rows: [cos(cat(a, a)) | sin(cat(a, a))]
            doubled = torch.cat([a, a], dim=-1)
            module.cache = torch.cat([doubled.cos(), doubled.sin()], dim=-1)
        else:  # RotaryPositionalEmbeddings cache rows: (D/2, 2) of (cos, sin)
            module.cache = torch.stack([a.cos(), a.sin()], dim=-1)
        return to_numpy(self._rotate(module, x)).reshape(lead + (d,))

    def apply_rope(self, x, positions, /, *, base=10_000.0, layout="half", rotary_dim=None,
                   rotated_slice="first", freq_denominator="rotary_dim", position_offset=0):
        self._check_layout(layout)
        x = np.asarray(x)
        head_dim = x.shape[-1]
        if rotary_dim is not None and rotary_dim != head_dim:
            raise NotImplementedError("torchtune's rotary modules rotate the whole head; partial rotary "
                                      "(rotary_dim < head_dim) is not expressible")
        if not float(position_offset).is_integer():
            raise NotImplementedError("torchtune's input_pos are integers; a fractional offset is not expressible")
        p = positions_as_int(positions) + int(position_offset)
        p = np.broadcast_to(p, x.shape[:-1]).reshape(-1)  # (N,) one position per token
        module = self._module(layout, head_dim, base, int(p.max()) + 1 if p.size else 1)
        return to_numpy(self._rotate(module, x.reshape(-1, head_dim), p)).reshape(x.shape)

    # -- RoPE scaling -----------------------------------------------------------------------

    def llama3_scaled_frequencies(self, dim, /, *, base=500_000.0, scaling_factor=8.0, low_freq_factor=1.0,
                                  high_freq_factor=4.0, original_max_position_embeddings=8192):
        from torchtune.models.llama3_1._position_embeddings import Llama3ScaledRoPE

        rope = Llama3ScaledRoPE(dim, max_seq_len=1, base=base, scale_factor=scaling_factor,
                                low_freq_factor=low_freq_factor, high_freq_factor=high_freq_factor,
                                old_context_len=original_max_position_embeddings)
        return to_numpy(rope.theta)

    # -- 2-D axial RoPE -----------------------------------------------------------------------

    def apply_axial_rope(self, x, positions_2d, /, *, base=10_000.0, axis_order="xy", frequencies="per_axis",
                         layout="interleaved"):
        import torch
        from torchtune.modules import VisionRotaryPositionalEmbeddings

        if (axis_order, frequencies, layout) != ("xy", "per_axis", "interleaved"):
            raise NotImplementedError("torchtune's vision RoPE turns the first pairs with the column, per-axis "
                                      "frequencies, interleaved pairs (axis_order='xy', frequencies='per_axis', "
                                      "layout='interleaved')")
        x = np.asarray(x)
        grid = positions_as_int(positions_2d, "positions_2d")
        pattern = _vision_pattern(grid) if grid.ndim == 2 and grid.shape[0] == 2 else None
        if pattern is None or x.ndim < 2 or x.shape[-2] != grid.shape[1]:
            raise NotImplementedError(
                "torchtune's VisionRotaryPositionalEmbeddings has a fixed grid: positions_2d of shape (2, S) with "
                "S = tiles * (G * G + 1), patches in row-major order counted from 1 and one class token at (0, 0) "
                "per tile, first or last; tokens on the second-to-last axis of x"
            )
        tiles, side, cls_last = pattern
        head_dim = x.shape[-1]
        module = VisionRotaryPositionalEmbeddings(patch_size=1, tile_size=side, max_num_tiles=tiles, dim=head_dim // 2,
                                                  base=base, append_cls_token=cls_last).to(self.device)
        t = to_torch(x.reshape(-1, x.shape[-2], 1, head_dim), self.dtype, self.device)  # [b, s, n_h=1, h_d]
        with torch.no_grad():
            out = module(t)
        return to_numpy(out).reshape(x.shape)

    # -- T5 -----------------------------------------------------------------------------------

    def _buckets(self, num_buckets, max_distance, max_seq_len):
        from torchtune.models.t5._encoder import _calc_birectional_rel_pos_to_bucket

        if max_seq_len > _T5_MAX_SEQ_LEN:
            raise NotImplementedError(
                f"torchtune computes the bucket of every (query, key) pair of a max_seq_len square; positions up to "
                f"{max_seq_len - 1} would need {max_seq_len}**2 entries (at most {_T5_MAX_SEQ_LEN} per side is built)"
            )
        return _calc_birectional_rel_pos_to_bucket(int(num_buckets), int(max_distance), int(max_seq_len))

    def t5_relative_bucket(self, relative_position, /, *, bidirectional=True, num_buckets=32, max_distance=128):
        if not bidirectional:
            raise NotImplementedError("torchtune's T5 is the (bidirectional) encoder only")
        r = positions_as_int(relative_position, "relative_position")
        n = int(np.abs(r).max()) + 1 if r.size else 1
        square = to_numpy(self._buckets(num_buckets, max_distance, n))  # [query, key] -> bucket of key - query
        out = np.where(r >= 0, square[0, np.maximum(r, 0)], square[np.maximum(-r, 0), 0])
        return out.astype(np.int64)

    def t5_relative_bias(self, table, query_positions, key_positions, /, *, bidirectional=True, num_buckets=32,
                         max_distance=128):
        import torch
        from torchtune.models.t5._encoder import T5EncoderRelativePositionBias

        if not bidirectional:
            raise NotImplementedError("torchtune's T5 is the (bidirectional) encoder only")
        q = positions_as_int(query_positions, "query_positions")
        k = positions_as_int(key_positions, "key_positions")
        if (q.size and q.min() < 0) or (k.size and k.min() < 0):
            raise NotImplementedError("torchtune's T5 encoder places its tokens at 0 .. max_seq_len - 1")
        table = np.asarray(table)
        heads = table.shape[-1] if table.ndim == 2 else 1
        n = int(max(q.max(initial=0), k.max(initial=0))) + 1
        self._buckets(num_buckets, max_distance, n)  # refuses squares that are too large
        module = T5EncoderRelativePositionBias(int(num_buckets), int(max_distance), heads, n)
        module = module.to(self.device, torch_dtype(self.dtype))
        with torch.no_grad():
            module.embedding.weight.copy_(to_torch(table, self.dtype, self.device))
            bias = module()[0]  # (H, n, n) for queries and keys 0 .. n-1
        return to_numpy(bias)[:, q][:, :, k]
