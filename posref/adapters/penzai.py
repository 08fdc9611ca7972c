"""Adapter for Penzai on JAX (``pip install penzai==0.2.5``).

Checked with penzai 0.2.5 (treescope 0.1.10, ordered-set 4.1.0) on
jax/jaxlib 0.10.2 (CPU); pinned in
``conformance/constraints-new-light.txt``.

What it maps, and the library's conventions
-------------------------------------------

Penzai's layers work on named arrays; the adapter gives the library every
token as one row of a ``NamedArray`` with axes ``token`` and
``embedding`` and the positions as the side input
``token_positions`` (an int32 ``NamedArray`` over ``token``), as Penzai's
Gemma, Llama and GPT-NeoX models do.

``apply_rope``
    ``pz.nn.ApplyRoPE(embedding_axis="embedding", max_wavelength=base)``
    (``ApplyRoPE._apply_1d``): ``timescale = max_wavelength ** (2 *
    arange(d/2) / d)``, angle ``position / timescale`` (a division by the
    wavelength scale, where posref multiplies by the frequency), halves
    (``jnp.split(x, 2)``, ``layout="half"``).  ``x`` in the dtype under
    test is multiplied by float32 cos/sin, so JAX promotes the products to
    float32 and the layer casts back to the dtype of ``x``.
    ``rotary_dim < D`` (``rotated_slice="first"``, exponent denominator
    ``rotary_dim``): ``pz.nn.ApplyRoPEToSubset(rope_subset_size=rotary_dim)``,
    which rotates the prefix and passes the rest through (GPT-NeoX).
    Integer positions (the side input "should be provided as an integer
    array"); an integer ``position_offset`` is added to them.

Not expressible: the interleaved layout, the last slice, the
``head_dim`` denominator.  The layers hold no frequency or cos/sin table
of their own (they recompute it at every call), so ``rope_frequencies``
and ``rope_cos_sin`` are not mapped.

Precision: JAX runs without 64-bit mode, so no float64.

Divergences found
-----------------

Every valid golden case of ``apply_rope`` that the layers can express
conforms in float32, float16 and bfloat16, positions near 2**20 included.
Listed in ``posref/adapters/known/penzai-<dtype>.txt``: two invalid
inputs accepted without a check (a negative position is rotated
backwards; ``rope_subset_size`` larger than the axis rotates the whole
axis).
"""

from __future__ import annotations

import numpy as np

from posref.adapters._tensors import positions_as_int

ADAPTER_NAME = "penzai"
ADAPTER_VERSION = "0.2.5"
ADAPTER_DTYPES = ("float32", "float16", "bfloat16")
ADAPTER_DEVICES = ("cpu",)

#: The options penzai can express (see the module docstring); fuzzing draws inside them.
ADAPTER_OPTIONS = {
    "apply_rope": {"layout": ["half"], "rotated_slice": ["first"], "freq_denominator": ["rotary_dim"]},
}


def _penzai():
    from penzai import pz
    from penzai.nn import embeddings

    return pz, embeddings


def available():
    try:
        _penzai()
    except Exception as exc:
        return f"penzai cannot be imported ({type(exc).__name__}: {exc}); pip install penzai"
    return None


def make_adapter(*, dtype, device):
    return PenzaiAdapter(dtype=dtype, device=device)


def _jnp_dtype(name):
    import jax.numpy as jnp

    return {"float32": jnp.float32, "float16": jnp.float16, "bfloat16": jnp.bfloat16}[name]


class PenzaiAdapter:
    """Penzai's RoPE layers, called like posref's spec functions."""

    def __init__(self, *, dtype, device):
        self.dtype = dtype
        self.device = device

    def apply_rope(self, x, positions, /, *, base=10_000.0, layout="half", rotary_dim=None,
                   rotated_slice="first", freq_denominator="rotary_dim", position_offset=0):
        import jax.numpy as jnp

        pz, embeddings = _penzai()
        if layout != "half":
            raise NotImplementedError("penzai's ApplyRoPE splits the embedding in halves (layout='half') only")
        x = np.asarray(x)
        head_dim = x.shape[-1]
        partial = rotary_dim is not None and rotary_dim != head_dim
        if partial and (rotated_slice != "first" or freq_denominator != "rotary_dim"):
            raise NotImplementedError("penzai's ApplyRoPEToSubset rotates a prefix of the embedding with the "
                                      "exponent denominator rope_subset_size (rotated_slice='first', "
                                      "freq_denominator='rotary_dim') only")
        if not float(position_offset).is_integer():
            raise NotImplementedError("penzai's positions are integers; a fractional offset is not expressible")
        p = positions_as_int(positions) + int(position_offset)
        if p.size and np.abs(p).max() >= 2**31:
            raise NotImplementedError("penzai's positions are int32 (JAX without 64-bit mode); these do not fit")
        p = np.broadcast_to(p, x.shape[:-1]).reshape(-1).astype(np.int32)
        tokens = jnp.asarray(x.reshape(-1, head_dim).astype(np.float32)).astype(_jnp_dtype(self.dtype))
        inputs = pz.nx.wrap(tokens).tag("token", "embedding")
        side = pz.nx.wrap(jnp.asarray(p)).tag("token")
        if partial:
            layer = embeddings.ApplyRoPEToSubset(embedding_axis="embedding", max_wavelength=base,
                                                 rope_subset_size=int(rotary_dim),
                                                 positions_input_name="token_positions")
        else:
            layer = embeddings.ApplyRoPE(embedding_axis="embedding", max_wavelength=base,
                                         positions_input_name="token_positions")
        out = layer(inputs, token_positions=side).unwrap("token", "embedding")
        return np.asarray(out.astype(jnp.float32)).reshape(x.shape)
