"""Adapter for Equinox on JAX (``pip install equinox==0.13.8``).

Checked with equinox 0.13.8 (jaxtyping 0.3.11, wadler-lindig 0.1.8) on
jax/jaxlib 0.10.2 (CPU); pinned in
``conformance/constraints-new-light.txt``.

What it maps, and the library's conventions
-------------------------------------------

``eqx.nn.RotaryPositionalEmbedding(embedding_size, theta, dtype)`` rotates
an ``x`` of shape ``(seq_length, embedding_size)`` at the positions
``0 .. seq_length - 1``: ``rotate_half`` (``layout="half"``, cos and sin
``tile``-d to ``cat(f, f)``), the whole feature axis, frequencies
``1 / theta ** (arange(0, d, 2) / d)`` and angles ``outer(arange(T), f)``
computed in float32 (JAX without 64-bit mode), cos/sin cast to the
module's ``dtype`` ("at the very end"), the products in the dtype of
``x``.  The module keeps its table in a module-level dict,
``equinox.nn._embedding.internal_rope_embedding_cache``.

``apply_rope``
    The module with ``dtype`` and ``x`` in the dtype under test.  It has no
    position argument, so the adapter places each token's row at its
    position in a zero array of ``max(position) + 1`` rows (one such array
    for each time a position repeats, ``jax.vmap``-ed as Equinox's own
    example does over heads) and reads the rows back: the rotation is
    row-wise, so this is exactly what the module computes for a sequence
    that long.  Integer, non-negative positions (plus an integer
    ``position_offset``); half layout, full rotary only.
``rope_cos_sin``
    ``RotaryPositionalEmbedding.precompute_freqs_cis(dim, end, theta,
    dtype)`` (the static method that fills the cache), indexed by the
    positions and tiled as ``__call__`` tiles it (``layout="half"``).

**Patch in the adapter.**  The cache key is ``(embedding_size, dtype)``:
``theta`` is not part of it, so a second module with another ``theta`` and
the same width and dtype silently reuses the first module's cos/sin table
(a bug; reproduction below).  The adapter empties that dict before every
call so that each case sees the ``theta`` it asks for; the object made
with ``make_adapter(..., clear_cache=False)`` calls the library as it is
and shows the bug (``tests/test_adapters_equinox.py``).

Precision: JAX runs without 64-bit mode, so no float64.

Divergences found
-----------------

* Bug, ``equinox/nn/_embedding.py`` ``RotaryPositionalEmbedding.__call__``:
  ``cache_key = (embedding_size, self.dtype)`` leaves out ``theta``::

      import jax.numpy as jnp, equinox as eqx
      x = jnp.ones((4, 8))
      a = eqx.nn.RotaryPositionalEmbedding(8, theta=10_000.0)(x)
      b = eqx.nn.RotaryPositionalEmbedding(8, theta=100.0)(x)
      assert (a == b).all()   # theta=100 got theta=10000's table

  (error 0.89 against the theta=100 rotation).  Hidden by the patch above.
* Otherwise every valid golden case of the two functions conforms in
  float32, float16 and bfloat16, positions near 2**20 included; the odd
  head width is rejected with the module's ``ValueError``
  (``embedding_size must be even``).  No known-divergence list is needed.
"""

from __future__ import annotations

import numpy as np

from posref.adapters._tensors import positions_as_int

ADAPTER_NAME = "equinox"
ADAPTER_VERSION = "0.13.8"
ADAPTER_DTYPES = ("float32", "float16", "bfloat16")
ADAPTER_DEVICES = ("cpu",)

#: The options equinox can express (see the module docstring); fuzzing draws inside them.
ADAPTER_OPTIONS = {
    "rope_cos_sin": {"layout": ["half"]},
    "apply_rope": {"layout": ["half"], "rotary_dim": "default"},
}

#: Largest number of rows (positions times repeats) put through the module in one call.
_ROW_LIMIT = 1 << 22


def _equinox():
    import equinox as eqx
    from equinox.nn import _embedding

    return eqx, _embedding


def available():
    try:
        _equinox()
    except Exception as exc:
        return f"equinox cannot be imported ({type(exc).__name__}: {exc}); pip install equinox"
    return None


def make_adapter(*, dtype, device, clear_cache=True):
    return EquinoxAdapter(dtype=dtype, device=device, clear_cache=clear_cache)


def _jnp_dtype(name):
    import jax.numpy as jnp

    return {"float32": jnp.float32, "float16": jnp.float16, "bfloat16": jnp.bfloat16}[name]


def _float(array):
    return np.asarray(np.asarray(array).astype(np.float32))


class EquinoxAdapter:
    """Equinox's RotaryPositionalEmbedding, called like posref's spec functions."""

    def __init__(self, *, dtype, device, clear_cache=True):
        self.dtype = dtype
        self.device = device
        self.clear_cache = clear_cache

    def _module(self, dim, base):
        eqx, embedding = _equinox()
        if self.clear_cache:  # the table is keyed on (width, dtype) only; see the module docstring
            embedding.internal_rope_embedding_cache.clear()
        return eqx.nn.RotaryPositionalEmbedding(dim, theta=base, dtype=_jnp_dtype(self.dtype))

    @staticmethod
    def _check_layout(layout):
        if layout != "half":
            raise NotImplementedError("equinox's RotaryPositionalEmbedding uses rotate_half (layout='half') only")

    def rope_cos_sin(self, positions, dim, /, *, base=10_000.0, layout="half"):
        self._check_layout(layout)
        positions = positions_as_int(positions)
        if positions.size and positions.min() < 0:
            raise NotImplementedError("equinox's positions are the row indices 0 .. seq_length - 1")
        module = self._module(dim, base)
        end = int(positions.max()) + 1 if positions.size else 1
        cos, sin = module.precompute_freqs_cis(dim, end, module.theta, module.dtype)  # (end, dim/2)
        flat = positions.reshape(-1)
        cos, sin = np.tile(_float(cos)[flat], (1, 2)), np.tile(_float(sin)[flat], (1, 2))
        shape = positions.shape + (cos.shape[-1],)
        return cos.reshape(shape), sin.reshape(shape)

    def apply_rope(self, x, positions, /, *, base=10_000.0, layout="half", rotary_dim=None,
                   rotated_slice="first", freq_denominator="rotary_dim", position_offset=0):
        import jax
        import jax.numpy as jnp

        self._check_layout(layout)
        x = np.asarray(x)
        head_dim = x.shape[-1]
        if rotary_dim is not None and rotary_dim != head_dim:
            raise NotImplementedError("equinox's RotaryPositionalEmbedding rotates the whole feature axis; "
                                      "partial rotary is not expressible")
        if not float(position_offset).is_integer():
            raise NotImplementedError("equinox's positions are row indices; a fractional offset is not expressible")
        p = positions_as_int(positions) + int(position_offset)
        p = np.broadcast_to(p, x.shape[:-1]).reshape(-1)
        if p.size and p.min() < 0:
            raise NotImplementedError("equinox's positions are the row indices 0 .. seq_length - 1; "
                                      "a negative position is not expressible")
        tokens = x.reshape(-1, head_dim)
        length = int(p.max()) + 1 if p.size else 1
        # slot[i]: how many earlier tokens share token i's position; each slot is one sequence
        order = np.argsort(p, kind="stable")
        slot = np.empty_like(p)
        sorted_p = p[order]
        starts = np.r_[0, np.flatnonzero(np.diff(sorted_p)) + 1] if p.size else np.zeros(0, int)
        run_start = np.repeat(starts, np.diff(np.r_[starts, p.size]))
        slot[order] = np.arange(p.size) - run_start
        slots = int(slot.max()) + 1 if p.size else 1
        if slots * length > _ROW_LIMIT:
            raise NotImplementedError(f"equinox rotates rows 0 .. T-1 only; these positions need {slots} sequences "
                                      f"of {length} rows (more than {_ROW_LIMIT} rows)")
        module = self._module(head_dim, base)
        dtype = _jnp_dtype(self.dtype)
        sequences = jnp.zeros((slots, length, head_dim), dtype=dtype)
        sequences = sequences.at[slot, p].set(jnp.asarray(tokens.astype(np.float32)).astype(dtype))
        out = jax.vmap(module)(sequences)
        return _float(out[slot, p]).reshape(x.shape)
