"""Adapter for the JAX Gemma library (``pip install --no-deps gemma==3.3.0``).

Checked with gemma 3.3.0 on jax/jaxlib 0.10.2 (CPU); pinned in
``conformance/constraints-new-light.txt``.

**Loaded from its file path.**  ``import gemma`` imports ``gemma.gm``,
which pulls kauldron and through it TensorFlow; the RoPE of the Gemma
models, ``gemma/gm/math/_positional_embeddings.py``, imports only jax.  The
package is installed with ``--no-deps`` and the adapter loads that one file
with ``importlib.util.spec_from_file_location`` (the package directory
found with ``importlib.util.find_spec("gemma")``, which does not run the
package's ``__init__``).  Nothing in the library is changed.

What it maps, and the library's conventions
-------------------------------------------

``apply_rope(inputs, positions, *, base_frequency, scale_factor,
rope_proportion)`` takes ``inputs`` ``[B, L, N, H]`` and integer
``positions`` ``[B, L]``; ``timescale = base_frequency ** (2 j / H)`` for
``j < int(rope_proportion * H // 2)`` (float32, exponent denominator the
whole head width ``H``) and ``inf`` for the remaining pairs, angle
``positions / timescale / scale_factor``, halves (``jnp.split(inputs, 2)``,
``layout="half"``); products in float32 (JAX promotes 16-bit inputs times
float32 cos/sin), cast back to the dtype of ``inputs``.  The adapter gives
every token as ``[N, 1, 1, H]`` with positions ``[N, 1]`` (int32).

``apply_rope``
    ``scale_factor=1``.  Full rotary with ``rope_proportion=1``;
    ``rotary_dim < H`` with ``rope_proportion = rotary_dim / H``, which
    rotates pairs ``(j, j + H/2)`` for ``j < rotary_dim/2`` with exponent
    denominator ``H`` and leaves the other pairs at angle 0 (posref
    ``rotated_slice="first_pairs"``, ``freq_denominator="head_dim"``: the
    Gemma 4 "proportional" RoPE).  Integer positions plus an integer
    ``position_offset``.
``rope_frequencies``, ``linear_scaled_frequencies``
    Read from ``apply_rope`` itself: float32 unit vectors ``(1, 0)`` in
    every pair at position 1 come back as ``(cos w, sin w)``, and
    ``w = atan2(sin, cos)`` is the frequency the function uses (every
    frequency is at most 1 rad, so there is no wrap).  ``scale_factor`` is
    the factor of linear position interpolation (Gemma 3's global layers
    use 8): ``w = 1 / (timescale * scale_factor)``.  These are computed
    from float32 inputs in every dtype (the library computes the angles
    in float32 whatever the input dtype).

Not expressible: the interleaved layout, a partial rotary with exponent
denominator ``rotary_dim`` or the first/last channel slice, fractional
positions, and proportions whose ``int(rope_proportion * H // 2)`` is not
``rotary_dim / 2``.

Precision: JAX runs without 64-bit mode, so no float64.

Divergences found
-----------------

Every valid golden case of the three functions conforms in float32,
float16 and bfloat16, positions near 2**20 and the proportional case
included; ``scale_factor < 1`` and an odd head width are rejected with
``ValueError``.  Listed in ``posref/adapters/known/gemma-<dtype>.txt``:
two invalid inputs accepted without a check (``base_frequency=1``, a
negative position).
"""

from __future__ import annotations

import functools

import numpy as np

from posref.adapters._loading import load_package_file
from posref.adapters._tensors import positions_as_int

ADAPTER_NAME = "gemma"
ADAPTER_VERSION = "3.3.0"
ADAPTER_DTYPES = ("float32", "float16", "bfloat16")
ADAPTER_DEVICES = ("cpu",)

#: The options gemma can express (see the module docstring); fuzzing draws inside them.
ADAPTER_OPTIONS = {
    "apply_rope": {"layout": ["half"], "rotated_slice": ["first_pairs"], "freq_denominator": ["head_dim"]},
}

_RELATIVE_PATH = ("gm", "math", "_positional_embeddings.py")


@functools.lru_cache(maxsize=1)
def _positional_embeddings():
    """``gemma/gm/math/_positional_embeddings.py``, loaded from its path (the package import pulls TensorFlow)."""
    return load_package_file("gemma", _RELATIVE_PATH, "_posref_gemma_positional_embeddings")


def available():
    try:
        _positional_embeddings()
    except Exception as exc:
        return (f"gemma's _positional_embeddings.py cannot be loaded ({type(exc).__name__}: {exc}); "
                "pip install --no-deps gemma, plus jax")
    return None


def make_adapter(*, dtype, device):
    return GemmaAdapter(dtype=dtype, device=device)


def _jnp_dtype(name):
    import jax.numpy as jnp

    return {"float32": jnp.float32, "float16": jnp.float16, "bfloat16": jnp.bfloat16}[name]


class GemmaAdapter:
    """Gemma's JAX apply_rope, called like posref's spec functions."""

    def __init__(self, *, dtype, device):
        self.dtype = dtype
        self.device = device

    def _apply(self, tokens, positions, dtype, **options):
        """``apply_rope`` on tokens (N, H) as [N, 1, 1, H] at int32 positions [N, 1]; returns float32 (N, H)."""
        import jax.numpy as jnp

        inputs = jnp.asarray(np.asarray(tokens, dtype=np.float32)).astype(_jnp_dtype(dtype))[:, None, None, :]
        out = _positional_embeddings().apply_rope(inputs, jnp.asarray(positions, dtype=jnp.int32)[:, None],
                                                  **options)
        return np.asarray(out[:, 0, 0, :].astype(jnp.float32))

    # -- RoPE ------------------------------------------------------------------------------

    def apply_rope(self, x, positions, /, *, base=10_000.0, layout="half", rotary_dim=None,
                   rotated_slice="first", freq_denominator="rotary_dim", position_offset=0):
        if layout != "half":
            raise NotImplementedError("gemma's apply_rope splits the head in halves (layout='half') only")
        x = np.asarray(x)
        head_dim = x.shape[-1]
        proportion = 1.0
        if rotary_dim is not None and rotary_dim != head_dim:
            if (rotated_slice, freq_denominator) != ("first_pairs", "head_dim"):
                raise NotImplementedError(
                    "gemma's rope_proportion rotates the first rotary_dim/2 pairs of the half layout with exponent "
                    "denominator head_dim (rotated_slice='first_pairs', freq_denominator='head_dim') only")
            proportion = rotary_dim / head_dim
            if int(proportion * head_dim // 2) != rotary_dim // 2:
                raise NotImplementedError(f"rope_proportion = {rotary_dim}/{head_dim} does not give "
                                          f"{rotary_dim // 2} rotated pairs in gemma's int(p * H // 2)")
        if not float(position_offset).is_integer():
            raise NotImplementedError("gemma's positions are integers; a fractional offset is not expressible")
        p = positions_as_int(positions) + int(position_offset)
        if p.size and np.abs(p).max() >= 2**31:
            raise NotImplementedError("gemma's positions are int32 (JAX without 64-bit mode); these do not fit")
        p = np.broadcast_to(p, x.shape[:-1]).reshape(-1)
        out = self._apply(x.reshape(-1, head_dim), p, self.dtype, base_frequency=base, rope_proportion=proportion)
        return out.reshape(x.shape)

    def _frequencies(self, dim, base, scale_factor):
        dim = int(dim)
        unit = np.zeros((1, dim), dtype=np.float32)
        unit[:, : dim // 2] = 1.0  # every pair (1, 0): rotated to (cos w, sin w)
        out = self._apply(unit, np.array([1]), "float32", base_frequency=base, scale_factor=scale_factor)[0]
        return np.arctan2(out[dim // 2:].astype(np.float64), out[: dim // 2].astype(np.float64))

    def rope_frequencies(self, dim, /, *, base=10_000.0):
        return self._frequencies(dim, base, 1.0)

    def linear_scaled_frequencies(self, dim, /, *, base=10_000.0, scaling_factor):
        return self._frequencies(dim, base, scaling_factor)
