"""Adapter for mistral-inference (``pip install --no-deps mistral-inference==1.6.0``).

Checked with mistral-inference 1.6.0 on torch 2.13.0 (CPU); both pinned in
``conformance/constraints-new-light.txt``.  mistral-inference declares
dependencies on xformers, mistral_common, fire and simple-parsing (and,
through xformers, on another torch and numpy); the module mapped here,
``mistral_inference/rope.py``, imports torch only, so the package is
installed with ``--no-deps`` and nothing else is needed.

What it maps, and the library's conventions
-------------------------------------------

mistral-inference keeps RoPE as complex numbers, as Meta's reference Llama
does: ``precompute_freqs_cis(dim, end, theta)`` returns the complex64 table
``polar(1, outer(arange(end), freqs))`` with
``freqs = 1 / theta ** (arange(0, dim, 2)[: dim // 2] / dim)`` in float32,
and ``apply_rotary_emb(xq, xk, freqs_cis)`` views pairs ``2i, 2i+1`` of
``x.float()`` as complex numbers (``layout="interleaved"``), multiplies by
``freqs_cis[:, None, :]`` in complex64 and casts back to the dtype of
``x``.  The ``Transformer`` looks up ``freqs_cis[positions]`` (integer
positions counted from 0 in each sequence); the adapter does the same,
building the table up to the largest position.

``rope_cos_sin``
    ``precompute_freqs_cis(dim, max_position + 1, base)[positions]``: real
    and imaginary parts, each repeated for both channels of its pair
    (``layout="interleaved"`` only).
``rope_frequencies``
    ``precompute_freqs_cis(dim, 2, base)[1]``: the angle of the entry at
    position 1, which is the frequency itself (every frequency is below
    pi).  The library never holds the frequencies apart from the complex
    table; ``torch.angle`` of the complex64 entry gives them back to
    float32 precision.
``apply_rotary``
    ``apply_rotary_emb`` with ``freqs_cis = polar(1, angles)`` built in
    float32 as ``precompute_freqs_cis`` builds its table
    (``layout="interleaved"``).
``apply_rope``
    ``apply_rotary_emb(x, x, precompute_freqs_cis(D, P + 1, base)[p])``
    with ``x`` as ``(N, 1, D)`` (one row per token) and ``p`` the integer
    positions plus ``position_offset``.  Interleaved layout, the whole head
    rotated: partial rotary and the half layout are not expressible.
``apply_axial_rope``
    Pixtral's vision encoder: ``precompute_freqs_cis_2d(dim, H, W, theta)``
    indexed by ``(row, column)`` of each patch as ``VisionTransformer``
    does, then ``apply_rotary_emb``.  The first ``dim/4`` pairs turn with
    the row at the even entries of the ``dim``-wide frequency ladder, the
    last ``dim/4`` with the column at the odd entries (posref
    ``axis_order="yx"``, ``frequencies="even_odd"``,
    ``layout="interleaved"``).  Integer, non-negative coordinates only (the
    table is indexed by them).  The library builds the table for every
    cell up to the largest coordinate; tables over 2**26 entries (512 MB)
    are refused as not expressible.

Precision: ``apply_rotary_emb`` computes in float32 (complex64) whatever
the dtype of ``x``; float64 inputs would be rotated in float32, so float64
is not offered.

Divergences found
-----------------

Every valid golden case of the functions above conforms in float32,
float16 and bfloat16, positions near 2**20 included (and ``posref check``'s
differential cases in float32 and bfloat16).  What fails is listed in
``posref/adapters/known/mistral_inference-<dtype>.txt``: two invalid inputs
that ``precompute_freqs_cis`` accepts without a check (``dim=63`` gives 31
frequencies with denominator 63; ``base=1`` gives constant angles).  The
golden invalid-input cases of ``apply_rope`` and ``apply_rotary`` use the
half layout, which is not expressible here; outside them, a position of
``-1`` indexes the table from its end (torch negative indexing).
"""

from __future__ import annotations

import numpy as np

from posref.adapters._tensors import positions_as_int, to_numpy, to_torch, torch_available

ADAPTER_NAME = "mistral-inference"
ADAPTER_VERSION = "1.6.0"
ADAPTER_DTYPES = ("float32", "float16", "bfloat16")
ADAPTER_DEVICES = ("cpu",)

#: The options mistral-inference can express (see the module docstring); fuzzing draws inside them.
ADAPTER_OPTIONS = {
    "rope_cos_sin": {"layout": ["interleaved"]},
    "apply_rotary": {"layout": ["interleaved"]},
    "apply_rope": {"layout": ["interleaved"], "rotary_dim": "default"},
    "apply_axial_rope": {"axis_order": ["yx"], "frequencies": ["even_odd"], "layout": ["interleaved"]},
}

#: Largest 2-D table (rows x columns x pairs, complex64) built for Pixtral: 512 MB.
_TABLE_LIMIT = 1 << 26


def _rope():
    from mistral_inference import rope

    return rope


def available():
    return torch_available("mistral-inference", "mistral_inference.rope")


def make_adapter(*, dtype, device):
    return MistralInferenceAdapter(dtype=dtype, device=device)


class MistralInferenceAdapter:
    """mistral-inference's complex RoPE, called like posref's spec functions."""

    def __init__(self, *, dtype, device):
        self.dtype = dtype
        self.device = device

    @staticmethod
    def _check_layout(layout):
        if layout != "interleaved":
            raise NotImplementedError("mistral-inference multiplies pairs 2i, 2i+1 as complex numbers "
                                      "(layout='interleaved') only")

    def _rotate(self, x, freqs_cis):
        """``apply_rotary_emb`` on x (N, D) as (N, 1, D) with freqs_cis (N, D/2); returns (N, D)."""
        import torch

        t = to_torch(x, self.dtype, self.device)[:, None, :]
        with torch.no_grad():
            out, _ = _rope().apply_rotary_emb(t, t, freqs_cis)
        return out[:, 0, :]

    # -- RoPE ------------------------------------------------------------------------------

    def rope_frequencies(self, dim, /, *, base=10_000.0):
        import torch

        table = _rope().precompute_freqs_cis(dim, 2, base)
        return to_numpy(torch.angle(table[1]))

    def rope_cos_sin(self, positions, dim, /, *, base=10_000.0, layout="half"):
        import torch

        self._check_layout(layout)
        positions = positions_as_int(positions)
        flat = to_torch(positions.reshape(-1))
        end = int(positions.max()) + 1 if positions.size else 1
        rows = _rope().precompute_freqs_cis(dim, end, base)[flat]
        cos = torch.repeat_interleave(rows.real, 2, -1)
        sin = torch.repeat_interleave(rows.imag, 2, -1)
        shape = positions.shape + (cos.shape[-1],)
        return to_numpy(cos).reshape(shape), to_numpy(sin).reshape(shape)

    def apply_rotary(self, x, angles, /, *, layout="half"):
        import torch

        self._check_layout(layout)
        x, angles = np.asarray(x), np.asarray(angles)
        lead = np.broadcast_shapes(x.shape[:-1], angles.shape[:-1])
        d = x.shape[-1]
        flat_x = np.broadcast_to(x, lead + (d,)).reshape(-1, d)
        a = to_torch(np.broadcast_to(angles, lead + angles.shape[-1:]).reshape(-1, angles.shape[-1]), "float32")
        freqs_cis = torch.polar(torch.ones_like(a), a)  # complex64, as precompute_freqs_cis builds it
        return to_numpy(self._rotate(flat_x, freqs_cis)).reshape(lead + (d,))

    def apply_rope(self, x, positions, /, *, base=10_000.0, layout="half", rotary_dim=None,
                   rotated_slice="first", freq_denominator="rotary_dim", position_offset=0):
        self._check_layout(layout)
        x = np.asarray(x)
        head_dim = x.shape[-1]
        if rotary_dim is not None and rotary_dim != head_dim:
            raise NotImplementedError("mistral-inference rotates the whole head; partial rotary "
                                      "(rotary_dim < head_dim) is not expressible")
        if not float(position_offset).is_integer():
            raise NotImplementedError("mistral-inference indexes its table by integer positions; "
                                      "a fractional offset is not expressible")
        p = positions_as_int(positions) + int(position_offset)
        p = np.broadcast_to(p, x.shape[:-1]).reshape(-1)
        end = int(p.max()) + 1 if p.size else 1
        freqs_cis = _rope().precompute_freqs_cis(head_dim, end, base)[to_torch(p)]
        return to_numpy(self._rotate(x.reshape(-1, head_dim), freqs_cis)).reshape(x.shape)

    # -- 2-D axial RoPE (Pixtral) ---------------------------------------------------------------

    def apply_axial_rope(self, x, positions_2d, /, *, base=10_000.0, axis_order="xy", frequencies="per_axis",
                         layout="interleaved"):
        if (axis_order, frequencies, layout) != ("yx", "even_odd", "interleaved"):
            raise NotImplementedError("mistral-inference's precompute_freqs_cis_2d (Pixtral) turns the first pairs "
                                      "with the row at the even frequencies, interleaved pairs "
                                      "(axis_order='yx', frequencies='even_odd', layout='interleaved')")
        x = np.asarray(x)
        grid = positions_as_int(positions_2d, "positions_2d")
        if grid.ndim < 1 or grid.shape[0] != 2:
            raise ValueError(f"positions_2d must have first dimension 2 (row, column), got shape {grid.shape}")
        lead = np.broadcast_shapes(x.shape[:-1], grid.shape[1:])
        head_dim = x.shape[-1]
        rows = np.broadcast_to(grid[0], lead).reshape(-1)
        cols = np.broadcast_to(grid[1], lead).reshape(-1)
        height = int(rows.max()) + 1 if rows.size else 1
        width = int(cols.max()) + 1 if cols.size else 1
        if height * width * (head_dim // 2) > _TABLE_LIMIT:
            raise NotImplementedError(
                f"precompute_freqs_cis_2d builds the whole {height} x {width} x {head_dim // 2} table of every "
                f"(row, column) up to the largest coordinate (Pixtral's has 64 x 64 cells); more than "
                f"{_TABLE_LIMIT} entries is not built")
        table = _rope().precompute_freqs_cis_2d(head_dim, height, width, base)  # (H, W, D/2)
        freqs_cis = table[to_torch(rows), to_torch(cols)]  # as VisionTransformer.forward indexes it
        flat_x = np.broadcast_to(x, lead + (head_dim,)).reshape(-1, head_dim)
        return to_numpy(self._rotate(flat_x, freqs_cis)).reshape(lead + (head_dim,))
