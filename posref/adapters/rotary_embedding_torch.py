"""Adapter for rotary-embedding-torch (``pip install rotary-embedding-torch==0.9.1``).

Checked with rotary-embedding-torch 0.9.1 on torch 2.13.0 (CPU); both
pinned in ``conformance/constraints.txt``.

What it maps, and the library's conventions
-------------------------------------------

``rope_frequencies``, ``rope_angles``
    ``RotaryEmbedding(dim, theta=base).freqs`` and ``RotaryEmbedding.forward``
    (``freqs_for="lang"``: :math:`\\theta^{-2i/d}`, computed in float32).
``apply_rope``
    Interleaved pairs only (``rotate_half`` of this library splits
    ``(d r) -> d r``).  When the positions are a contiguous block
    ``c, c+1, ...`` along the sequence axis the adapter calls
    ``rotate_queries_or_keys(x, offset=c)``, the library's own path; other
    positions go through ``forward(positions)`` and ``apply_rotary_emb``.
    Partial rotary: ``rotary_dim`` rotated channels starting at
    ``start_index`` (0 for ``rotated_slice="first"``, ``D - rotary_dim`` for
    ``"last"``), frequencies over the rotated width.
``apply_rotary``
    ``apply_rotary_emb`` with the angles repeated per pair.
``apply_xpos``
    ``RotaryEmbedding(use_xpos=True).rotate_queries_and_keys``: queries get
    the scale, keys its inverse.  Positions ``0 .. N-1`` only, centred at
    ``N // 2`` (posref ``centering="floor_half"``; ``"ceil_half"`` agrees
    for even ``N``).
``linear_scaled_frequencies``
    ``interpolate_factor``: the library divides the *positions* by the
    factor (``get_seq_pos``); the adapter returns the angles of position 1
    so divided, which are the scaled frequencies.  Factors below 1 are
    refused by the library (``assert interpolate_factor >= 1``).
``ntk_scaled_frequencies``
    ``theta_rescale_factor``: ``theta * factor ** (dim / (dim - 2))``.
``apply_axial_rope``
    ``get_axial_freqs(H, W, offsets=...)`` with ``RotaryEmbedding(D // 2)``:
    one ``D/2``-wide interleaved block per axis, the first grid axis first
    (posref ``axis_order="yx"``, ``frequencies="per_axis"``,
    ``layout="interleaved"``); ``"xy"`` is the same call with the axes
    swapped and the grid transposed back to row-major order.  Whole grids
    only.

Precision: the module stays float32 (as under ``torch.autocast``); inputs
arrive in the dtype under test.  ``rotate_queries_or_keys`` and
``rotate_queries_and_keys`` build the positions with ``dtype=t.dtype``,
i.e. in bfloat16 or float16 for such inputs; those formats hold integers
only up to 256 and 2048, so later positions are rounded before the angle is
formed.

Divergences found
-----------------

Listed with case ids in
``posref/adapters/known/rotary_embedding_torch-<dtype>.txt``:
``RotaryEmbedding(dim=2)`` raises ``ZeroDivisionError`` (the
``theta_rescale_factor`` exponent ``dim / (dim - 2)`` is evaluated even for
a factor of 1; cases ``rope_frequencies.d2.b10000`` and
``linear_scaled_frequencies.s1_identity``); no argument checks (odd width,
``base=1``); and in bfloat16 and float16, ``rotate_queries_or_keys`` builds
the positions 4000 .. 4015 in the input dtype (spacing 16 in bfloat16, 2 in
float16 there), so tokens are rotated as their rounded positions: max error
0.828 (bfloat16, 155x the budget) and 0.946 (float16, 501x) in case
``adapters.apply_rope.interleaved.contiguous_offset`` of the adapter tests.
Given integer positions directly (``forward(positions)``) it passes up to
1,048,575.
"""

from __future__ import annotations

import numpy as np

from posref.adapters._tensors import grid_of, positions_as_int, to_numpy, to_torch, torch_available

ADAPTER_NAME = "rotary-embedding-torch"
ADAPTER_VERSION = "0.9.1"
ADAPTER_DTYPES = ("float32", "float16", "bfloat16")
ADAPTER_DEVICES = ("cpu", "cuda")

#: The options rotary-embedding-torch can express (see the module docstring); fuzzing draws inside them.
ADAPTER_OPTIONS = {
    "apply_rotary": {"layout": ["interleaved"]},
    "apply_rope": {"layout": ["interleaved"], "freq_denominator": ["rotary_dim"]},
    "apply_xpos": {"layout": ["interleaved"], "centering": ["floor_half", "ceil_half"], "sequence_length": "default"},
    "apply_axial_rope": {"layout": ["interleaved"], "frequencies": ["per_axis"]},
}


def available():
    return torch_available("rotary-embedding-torch", "rotary_embedding_torch")


def make_adapter(*, dtype, device):
    return RotaryEmbeddingTorchAdapter(dtype=dtype, device=device)


def _library():
    import rotary_embedding_torch

    return rotary_embedding_torch


def _contiguous_offset(positions, x_shape):
    """``c`` when positions are ``c, c+1, ..., c+T-1`` along x's sequence axis (-2), else None."""
    positions = np.asarray(positions)
    if len(x_shape) < 2 or positions.ndim != 1 or positions.shape[0] != x_shape[-2] or positions.size == 0:
        return None
    c = positions[0]
    return c if np.array_equal(positions, c + np.arange(positions.shape[0])) else None


def _interleaved_only(layout):
    if layout != "interleaved":
        raise NotImplementedError("rotary-embedding-torch pairs channels 2i, 2i+1 (layout='interleaved') only")


class RotaryEmbeddingTorchAdapter:
    """rotary-embedding-torch's RotaryEmbedding, called like posref's spec functions."""

    def __init__(self, *, dtype, device):
        self.dtype = dtype
        self.device = device

    def _rotary(self, dim, **options):
        return _library().RotaryEmbedding(dim, **options).to(self.device)

    def _x(self, x):
        return to_torch(x, self.dtype, self.device)

    # -- RoPE ------------------------------------------------------------------------------

    def rope_frequencies(self, dim, /, *, base=10_000.0):
        return to_numpy(self._rotary(dim, theta=base).freqs)

    def rope_angles(self, positions, dim, /, *, base=10_000.0):
        import torch

        rotary = self._rotary(dim, theta=base)
        with torch.no_grad():
            freqs = rotary(to_torch(np.asarray(positions), device=self.device))  # (..., dim), interleaved
        return to_numpy(freqs)[..., 0::2]

    def apply_rotary(self, x, angles, /, *, layout="half"):
        import torch

        _interleaved_only(layout)
        x = np.asarray(x)
        lead = np.broadcast_shapes(x.shape[:-1], np.shape(angles)[:-1])
        x = np.broadcast_to(x, lead + x.shape[-1:])
        angles = np.broadcast_to(np.asarray(angles, dtype=np.float32), lead + (x.shape[-1] // 2,))
        freqs = np.repeat(angles, 2, axis=-1).reshape(1, 1, -1, x.shape[-1])  # (1, 1, N, D)
        with torch.no_grad():
            out = _library().apply_rotary_emb(to_torch(freqs, "float32", self.device),
                                              self._x(x.reshape(1, 1, -1, x.shape[-1])))
        return to_numpy(out).reshape(x.shape)

    def apply_rope(self, x, positions, /, *, base=10_000.0, layout="half", rotary_dim=None,
                   rotated_slice="first", freq_denominator="rotary_dim", position_offset=0):
        import torch

        _interleaved_only(layout)
        x = np.asarray(x)
        head_dim = x.shape[-1]
        r = head_dim if rotary_dim is None else rotary_dim
        if freq_denominator == "head_dim" and r != head_dim:
            raise NotImplementedError(
                "rotary-embedding-torch uses the rotated width as the frequency denominator "
                "(freq_denominator='rotary_dim')"
            )
        start = head_dim - r if rotated_slice == "last" else 0
        rotary = self._rotary(r, theta=base)
        offset = _contiguous_offset(positions, x.shape)
        with torch.no_grad():
            if offset is not None and start == 0 and r == head_dim:
                out = rotary.rotate_queries_or_keys(self._x(x), seq_dim=-2, offset=offset + position_offset)
                return to_numpy(out)
            p = np.broadcast_to(np.asarray(positions) + position_offset, x.shape[:-1]).reshape(1, 1, -1)
            freqs = rotary(to_torch(p, device=self.device))  # (1, 1, N, r)
            out = _library().apply_rotary_emb(freqs, self._x(x.reshape(1, 1, -1, head_dim)), start_index=start)
        return to_numpy(out).reshape(x.shape)

    def apply_xpos(self, x, positions, /, *, base=10_000.0, scale_base=512.0, layout="interleaved",
                   downscale=False, centering="ceil_half", sequence_length=None):
        import torch

        _interleaved_only(layout)
        x = np.asarray(x)
        positions = positions_as_int(positions)
        length = x.shape[-2] if x.ndim >= 2 else 0
        if positions.ndim != 1 or not np.array_equal(positions, np.arange(length)):
            raise NotImplementedError(
                "rotary-embedding-torch applies xPos to positions 0 .. N-1 along the sequence axis only"
            )
        if sequence_length not in (None, length):
            raise NotImplementedError("rotary-embedding-torch centres xPos on the length of the sequence it is given")
        if centering == "none" or (centering == "ceil_half" and length % 2):
            raise NotImplementedError(
                "rotary-embedding-torch centres xPos scale positions at t - N // 2 (centering='floor_half'); "
                f"centering={centering!r} with N={length} differs"
            )
        rotary = self._rotary(x.shape[-1], theta=base, use_xpos=True, xpos_scale_base=scale_base)
        t = self._x(x)
        with torch.no_grad():
            queries, keys = rotary.rotate_queries_and_keys(t, t, seq_dim=-2)
        return to_numpy(keys if downscale else queries)

    # -- scaling ---------------------------------------------------------------------------

    def linear_scaled_frequencies(self, dim, /, *, base=10_000.0, scaling_factor):
        import torch

        rotary = self._rotary(dim, theta=base, interpolate_factor=scaling_factor)
        with torch.no_grad():
            seq = rotary.get_seq_pos(2, dtype=torch.float32)  # positions (0, 1) / factor
            freqs = rotary(seq)  # (2, dim)
        return to_numpy(freqs)[1, 0::2]

    def ntk_scaled_frequencies(self, dim, /, *, base=10_000.0, scaling_factor):
        return to_numpy(self._rotary(dim, theta=base, theta_rescale_factor=scaling_factor).freqs)

    # -- 2-D -------------------------------------------------------------------------------

    def apply_axial_rope(self, x, positions_2d, /, *, base=10_000.0, axis_order="xy", frequencies="per_axis",
                         layout="interleaved"):
        import torch

        _interleaved_only(layout)
        if frequencies != "per_axis":
            raise NotImplementedError("rotary-embedding-torch gives every axis the same frequencies (per_axis)")
        height, width, r0, c0 = grid_of(positions_2d, "rotary-embedding-torch")
        x = np.asarray(x)
        rotary = self._rotary(x.shape[-1] // 2, theta=base)
        with torch.no_grad():
            if axis_order == "yx":
                freqs = rotary.get_axial_freqs(height, width, offsets=(r0, c0))  # (H, W, D)
            else:
                freqs = rotary.get_axial_freqs(width, height, offsets=(c0, r0)).transpose(0, 1)  # (H, W, D)
            t = self._x(x.reshape(x.shape[:-2] + (height, width, x.shape[-1])))  # (..., H, W, D)
            out = _library().apply_rotary_emb(freqs, t)
        return to_numpy(out).reshape(x.shape)
