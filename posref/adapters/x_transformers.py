"""Adapter for x-transformers (``pip install x-transformers==2.31.10``).

Checked with x-transformers 2.31.10 on torch 2.13.0 (CPU); both pinned in
``conformance/constraints.txt``.

What it maps, and the library's conventions
-------------------------------------------

``rope_frequencies``, ``rope_angles``, ``apply_rope``
    ``RotaryEmbedding(dim, base=...)`` and ``apply_rotary_pos_emb``.
    Interleaved pairs only (``layout="interleaved"``); the rotated channels
    are the first ``dim`` of the head (``rotated_slice="first"``), with
    frequencies over the rotated width (``freq_denominator="rotary_dim"``).
    In a model x-transformers rotates ``rotary_emb_dim = dim_head // 2``
    channels by default; here ``rotary_dim`` chooses.  A position offset is
    added to the positions, as x-transformers does for cached decoding.
``apply_rotary``
    ``apply_rotary_pos_emb`` with the angles repeated per channel pair, as
    ``RotaryEmbedding.forward`` lays them out.
``apply_xpos``
    ``RotaryEmbedding(use_xpos=True, scale_base=...)``: queries are
    multiplied by ``scale``, keys by ``scale ** -1`` (``downscale=True``),
    as ``Attention`` does.  The scale positions are centred at
    ``t - max_pos // 2`` with ``max_pos`` the length of the position table,
    which is posref's ``centering="floor_half"``; posref's default
    ``"ceil_half"`` (torchscale) is the same only for an even length, so an
    odd length with ``"ceil_half"`` is reported not implemented.
``alibi_slopes``, ``alibi_bias``
    ``AlibiPositionalBias``: paper slopes (``max_bias=8`` only) and the
    symmetric form ``-m |j - i|``.  Its ``forward(i, j)`` right-aligns the
    queries (``j - i .. j - 1``) against keys ``0 .. j - 1``; other
    positions go through ``forward_custom_pos``.  The module does not mask:
    x-transformers' ``Attend`` masks future keys when ``causal=True``; the
    adapter applies that mask (``-inf``) for ``causal=True``.  The bias is
    added after the ``1/sqrt(D)`` scaling, so ``scale=1``.
``t5_relative_bucket``, ``t5_relative_bias``
    ``RelativePositionBias`` (``causal = not bidirectional``).  Inside
    ``Attention`` the module is built with ``scale = dim_head ** 0.5``
    because the bias is added after the logits were divided by
    ``sqrt(dim_head)``; T5 itself has no such scaling, so the adapter builds
    it with ``scale=1``, which is T5's bias.  Its ``forward(i, j)`` places
    the queries at ``j - i .. j - 1``; other query positions are not
    expressible.
``sinusoidal_encoding``
    ``ScaledSinusoidalEmbedding(dim, theta=base)``: concatenated
    ``[sin, cos]`` (``layout="concat"``), exponent ``-k / (dim/2)``
    (``freq_denominator="dim"``), times a learned scalar initialised to
    ``dim ** -0.5``; the adapter sets that scalar to 1.
``learned_position_embedding``
    ``AbsolutePositionalEmbedding``: a row lookup multiplied by
    ``dim ** -0.5`` (unless ``l2norm_embed``); the adapter sets that factor
    to 1 and loads the table as the embedding weight.  No padding row.

Precision: the modules are built in float32 and kept there (as under
``torch.autocast``); inputs arrive in the dtype under test and
``apply_rotary_pos_emb`` multiplies them by float32 cos/sin, casting the
result back.  ``inv_freq`` is computed in float32 even for a float64 model,
so float64 is not offered.

Divergences found
-----------------

Listed with case ids in ``posref/adapters/known/x_transformers-<dtype>.txt``
(the same in float32, float16 and bfloat16): ``RotaryEmbedding(dim=2)``
raises ``ZeroDivisionError`` (case ``rope_frequencies.d2.b10000``: the NTK
exponent ``dim / (dim - 2)`` of ``base_rescale_factor`` is evaluated even
when the factor is 1), and no argument is validated (``RotaryEmbedding(63)``
builds 32 frequencies, ``base=1`` gives constant angles).  Every mapped
value case passes, up to position 1,048,575 in all three dtypes: angles are
formed in float32 from integer positions.
"""

from __future__ import annotations

import numpy as np

from posref.adapters._tensors import positions_as_int, to_numpy, to_torch, torch_available, torch_dtype

ADAPTER_NAME = "x-transformers"
ADAPTER_VERSION = "2.31.10"
ADAPTER_DTYPES = ("float32", "float16", "bfloat16")
ADAPTER_DEVICES = ("cpu", "cuda")

#: The options x-transformers can express (see the module docstring); fuzzing draws inside them.
ADAPTER_OPTIONS = {
    "apply_rotary": {"layout": ["interleaved"]},
    "apply_rope": {"layout": ["interleaved"], "rotated_slice": ["first"], "freq_denominator": ["rotary_dim"]},
    "apply_xpos": {"layout": ["interleaved"], "centering": ["floor_half", "ceil_half"]},
    "alibi_slopes": {"max_bias": "default"},
    "alibi_bias": {"form": ["symmetric"], "scale": "default"},
    "sinusoidal_encoding": {"layout": ["concat"], "freq_denominator": ["dim"]},
    "learned_position_embedding": {"padding_idx": "default"},
}


def available():
    return torch_available("x-transformers", "x_transformers")


def make_adapter(*, dtype, device):
    return XTransformersAdapter(dtype=dtype, device=device)


def _library():
    from x_transformers import x_transformers

    return x_transformers


def _is_right_aligned(query_positions, key_positions):
    """True when keys are 0 .. S-1 and queries the last T of them, as ``forward(i, j)`` builds."""
    s, t = key_positions.shape[0], query_positions.shape[0]
    return (
        t <= s
        and np.array_equal(key_positions, np.arange(s))
        and np.array_equal(query_positions, np.arange(s - t, s))
    )


def _whole(positions, offset):
    """positions + offset, int64 when both are whole numbers, else float64."""
    positions = np.asarray(positions)
    if positions.dtype.kind in "iu" and float(offset).is_integer():
        return positions.astype(np.int64) + int(offset)
    return positions.astype(np.float64) + float(offset)


class XTransformersAdapter:
    """x-transformers' position modules, called like posref's spec functions."""

    def __init__(self, *, dtype, device):
        self.dtype = dtype
        self.device = device

    # -- helpers ---------------------------------------------------------------------------

    def _rotary(self, dim, **options):
        lib = _library()
        return lib.RotaryEmbedding(dim, **options).to(self.device)

    def _x(self, x):
        return to_torch(x, self.dtype, self.device)

    # -- RoPE ------------------------------------------------------------------------------

    def rope_frequencies(self, dim, /, *, base=10_000.0):
        rotary = self._rotary(dim, base=base)
        return to_numpy(rotary.inv_freq)

    def rope_angles(self, positions, dim, /, *, base=10_000.0):
        import torch

        positions = np.asarray(positions)
        rotary = self._rotary(dim, base=base)
        t = to_torch(positions.reshape(1, -1), device=self.device)  # (1, N)
        with torch.no_grad():
            freqs, _ = rotary(t)  # (1, N, dim): each angle twice, interleaved
        angles = to_numpy(freqs)[0, :, 0::2]
        return angles.reshape(positions.shape + (dim // 2,))

    def apply_rotary(self, x, angles, /, *, layout="half"):
        import torch

        if layout != "interleaved":
            raise NotImplementedError("x-transformers pairs channels 2i, 2i+1 (layout='interleaved') only")
        x = np.asarray(x)
        lead = np.broadcast_shapes(x.shape[:-1], np.shape(angles)[:-1])
        angles = np.broadcast_to(np.asarray(angles, dtype=np.float32), lead + (x.shape[-1] // 2,))
        x = np.broadcast_to(x, lead + x.shape[-1:])
        freqs = np.repeat(angles, 2, axis=-1).reshape(1, -1, x.shape[-1])  # (1, N, D)
        t = self._x(x.reshape(1, -1, x.shape[-1]))
        with torch.no_grad():
            out = _library().apply_rotary_pos_emb(t, to_torch(freqs, "float32", self.device))
        return to_numpy(out).reshape(x.shape)

    def apply_rope(self, x, positions, /, *, base=10_000.0, layout="half", rotary_dim=None,
                   rotated_slice="first", freq_denominator="rotary_dim", position_offset=0):
        import torch

        x = np.asarray(x)
        head_dim = x.shape[-1]
        r = head_dim if rotary_dim is None else rotary_dim
        if layout != "interleaved":
            raise NotImplementedError("x-transformers pairs channels 2i, 2i+1 (layout='interleaved') only")
        if rotated_slice == "last" and r != head_dim:
            raise NotImplementedError("x-transformers rotates the first rotary_dim channels (rotated_slice='first')")
        if freq_denominator == "head_dim" and r != head_dim:
            raise NotImplementedError(
                "x-transformers uses the rotated width as the frequency denominator (freq_denominator='rotary_dim')"
            )
        p = np.broadcast_to(_whole(positions, position_offset), x.shape[:-1]).reshape(1, -1)  # (1, N)
        rotary = self._rotary(r, base=base)
        t = self._x(x.reshape(1, -1, head_dim))  # (1, N, D)
        with torch.no_grad():
            freqs, scale = rotary(to_torch(p, device=self.device))
            out = _library().apply_rotary_pos_emb(t, freqs, scale)
        return to_numpy(out).reshape(x.shape)

    def apply_xpos(self, x, positions, /, *, base=10_000.0, scale_base=512.0, layout="interleaved",
                   downscale=False, centering="ceil_half", sequence_length=None):
        import torch

        if layout != "interleaved":
            raise NotImplementedError("x-transformers pairs channels 2i, 2i+1 (layout='interleaved') only")
        positions = positions_as_int(positions)
        length = int(positions.max()) + 1 if sequence_length is None else int(sequence_length)
        if centering == "none" or (centering == "ceil_half" and length % 2):
            raise NotImplementedError(
                "x-transformers centres xPos scale positions at t - N // 2 (centering='floor_half'); "
                f"centering={centering!r} with N={length} differs"
            )
        x = np.asarray(x)
        d = x.shape[-1]
        p = np.broadcast_to(positions, x.shape[:-1]).reshape(-1)  # (N,)
        rotary = self._rotary(d, base=base, use_xpos=True, scale_base=scale_base)
        with torch.no_grad():
            freqs, scale = rotary(torch.arange(length, device=self.device))  # tables over 0 .. N-1
            index = to_torch(p, device=self.device)
            freqs, scale = freqs[:, index], scale[:, index]  # (1, M, D): rows of the tokens' positions
            if downscale:
                scale = scale ** -1
            out = _library().apply_rotary_pos_emb(self._x(x.reshape(1, -1, d)), freqs, scale)
        return to_numpy(out).reshape(x.shape)

    # -- ALiBi -----------------------------------------------------------------------------

    def alibi_slopes(self, num_heads, /, *, max_bias=8.0, rule=None):
        if max_bias != 8.0:
            raise NotImplementedError("x-transformers fixes the ALiBi slope exponent at 8 (max_bias=8)")
        return np.asarray(_library().AlibiPositionalBias._get_slopes(num_heads), dtype=np.float64)

    def alibi_bias(self, slopes, query_positions, key_positions, /, *, form="distance", causal=True, scale=1.0):
        import torch

        if form != "symmetric":
            raise NotImplementedError("x-transformers writes the ALiBi bias as -m |j - i| (form='symmetric') only")
        if scale != 1.0:
            raise NotImplementedError("x-transformers adds ALiBi after the 1/sqrt(D) scaling (scale=1) only")
        slopes = np.asarray(slopes, dtype=np.float64)
        q, k = np.asarray(query_positions), np.asarray(key_positions)
        module = _library().AlibiPositionalBias(heads=slopes.shape[0], slopes=slopes.tolist()).to(self.device)
        with torch.no_grad():
            if _is_right_aligned(q, k):
                bias = module(q.shape[0], k.shape[0])  # (H, T, S)
            else:
                bias = module.forward_custom_pos(to_torch(q.astype(np.float64), "float32", self.device),
                                                 to_torch(k.astype(np.float64), "float32", self.device))
            bias = to_numpy(bias).astype(np.float64)
        if causal:  # Attend's causal mask
            bias = np.where((k[None, :] > q[:, None])[None], -np.inf, bias)
        return bias

    # -- T5 --------------------------------------------------------------------------------

    def t5_relative_bucket(self, relative_position, /, *, bidirectional=True, num_buckets=32, max_distance=128):
        import torch

        rel = to_torch(positions_as_int(relative_position, "relative_position"), device=self.device)
        with torch.no_grad():
            bucket = _library().RelativePositionBias._relative_position_bucket(
                rel, causal=not bidirectional, num_buckets=num_buckets, max_distance=max_distance)
        return to_numpy(torch.as_tensor(bucket))

    def t5_relative_bias(self, table, query_positions, key_positions, /, *, bidirectional=True, num_buckets=32,
                         max_distance=128):
        import torch

        q, k = np.asarray(query_positions), np.asarray(key_positions)
        if not _is_right_aligned(q, k):
            raise NotImplementedError(
                "x-transformers' RelativePositionBias places queries at the last T of S key positions "
                "(keys 0 .. S-1, queries S-T .. S-1); other positions cannot be expressed"
            )
        table = np.asarray(table)
        module = _library().RelativePositionBias(scale=1.0, causal=not bidirectional, num_buckets=num_buckets,
                                                 max_distance=max_distance, heads=table.shape[1])
        module = module.to(device=self.device)
        with torch.no_grad():
            module.relative_attention_bias.weight.copy_(to_torch(table, self.dtype, self.device))
            module = module.to(dtype=torch_dtype(self.dtype))
            bias = module(q.shape[0], k.shape[0])  # (H, T, S)
        return to_numpy(bias)

    # -- absolute --------------------------------------------------------------------------

    def sinusoidal_encoding(self, positions, dim, /, *, base=10_000.0, layout="interleaved", freq_denominator="dim",
                            position_offset=0):
        import torch

        if layout != "concat":
            raise NotImplementedError("x-transformers' ScaledSinusoidalEmbedding concatenates [sin, cos] (layout='concat')")
        if freq_denominator != "dim":
            raise NotImplementedError("x-transformers uses the exponent -2k/dim (freq_denominator='dim')")
        positions = np.asarray(positions)
        module = _library().ScaledSinusoidalEmbedding(dim, theta=base).to(self.device)
        p = _whole(positions, position_offset).reshape(-1)
        with torch.no_grad():
            module.scale.fill_(1.0)  # the learned scalar, initialised to dim ** -0.5
            dummy = torch.zeros(1, p.shape[0], dim, device=self.device)
            emb = module(dummy, pos=to_torch(p, device=self.device))
        return to_numpy(emb).reshape(positions.shape + (dim,))

    def learned_position_embedding(self, table, positions, /, *, position_offset=0, padding_idx=None):
        import torch

        if padding_idx is not None:
            raise NotImplementedError("x-transformers' AbsolutePositionalEmbedding has no padding row")
        table = np.asarray(table)
        rows, dim = table.shape
        module = _library().AbsolutePositionalEmbedding(dim, max_seq_len=rows).to(self.device)
        module.scale = 1.0  # the library multiplies by dim ** -0.5
        p = positions_as_int(positions) + int(position_offset)
        with torch.no_grad():
            module.emb.weight.copy_(to_torch(table, "float32", self.device))
            module = module.to(dtype=torch_dtype(self.dtype))
            dummy = torch.zeros(1, max(p.shape[-1] if p.ndim else 1, 1), dim, device=self.device)
            out = module(dummy, pos=to_torch(p, device=self.device))
        return to_numpy(out)

