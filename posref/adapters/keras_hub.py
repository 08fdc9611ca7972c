"""Adapter for keras-hub on the JAX backend (``pip install --no-deps keras-hub==0.32.0``).

Checked with keras-hub 0.32.0, keras 3.15.1, jax/jaxlib 0.10.2 (CPU), all
pinned in ``conformance/constraints.txt``.  keras-hub declares a dependency
on ``tensorflow-text``, which the layers mapped here never import; it is
installed with ``--no-deps`` next to keras, jax, jaxlib, regex and
tokenizers.  The adapter sets ``KERAS_BACKEND=jax`` (unless it is already
set) before it imports keras, and reports itself unavailable when keras was
already loaded with another backend.

What it maps, and the library's conventions
-------------------------------------------

``apply_rope``
    ``keras_hub.layers.RotaryEmbedding(max_wavelength=base)``: the half
    layout (``x1, x2 = split(x, 2)``), the whole feature axis rotated
    (no partial rotary), positions taken from ``positions`` (shape
    ``(T,)`` or ``(B, T)``) or ``arange(T) + start_index``.  Frequencies
    are computed in float32 and cos/sin are cast to the layer's compute
    dtype before the rotation.
``linear_scaled_frequencies``, ``ntk_scaled_frequencies``, ``yarn_frequencies``
    The layer's ``_get_inverse_freq`` (private; the frequencies its
    ``call`` uses) for ``rope_type="linear"`` (``inv_freq /
    scaling_factor``), ``"dynamic"`` and ``"yarn"``.  ``"dynamic"`` is
    mapped to NTK-aware scaling because it uses NTK's exponent
    ``d / (d - 2)``; keras-hub divides *every* frequency by
    ``s ** (d / (d - 2))`` where NTK-aware scaling (a base of
    ``b * s ** (d / (d - 2))``) keeps the highest frequency and divides the
    lowest by ``s``.  YaRN: ``beta_fast``, ``beta_slow``,
    ``original_max_position_embeddings`` and ``truncate`` are passed
    through; the high end is clamped to ``d - 1`` (posref
    ``high_limit="dim"``); no ``extrapolation_factor``.
``sinusoidal_encoding``
    ``keras_hub.layers.SinePositionEncoding(max_wavelength=base)``: sines
    on even and cosines on odd channels (``layout="interleaved"``),
    exponent ``2 floor(j/2) / dim`` (``freq_denominator="dim"``).  The
    frequencies and angles are computed in the layer's compute dtype.
``alibi_slopes``, ``alibi_bias``
    ``keras_hub.layers.AlibiBias(alibi_bias_max=8)``: the paper's slopes
    with ``log2(alibi_bias_max)`` for 3, and the bias
    ``slope * (j - (S - 1))`` added to the scores (posref
    ``form="last_key_anchored"``, keys ``0 .. S-1``).  The layer computes
    its own slopes from the head count, so only those slopes can be
    checked.  It does not mask; for ``causal=True`` the adapter applies the
    causal mask (``-inf``) that the attention layer applies.

Precision: layers are built with ``dtype`` set to the dtype under test, so
their compute dtype is that dtype.  JAX runs without 64-bit mode, so no
float64.

Divergences found
-----------------

Listed with case ids and numbers in
``posref/adapters/known/keras_hub-<dtype>.txt``:

* ``rope_type="dynamic"`` is a uniform rescale, not NTK-aware scaling: the
  ratio to plain RoPE is 0.2446 at every pair for ``d=128, s=4`` where NTK
  gives 1 at pair 0 falling to 0.25 (error 0.755 at pair 0; cases
  ``ntk_scaled_frequencies.*``).
* YaRN: the ramp guard ``max(high - low, 0.001)`` differs from the
  reference when the range is inverted (``yarn_frequencies.high_below_low``,
  error 0.649 at pair 1).
* In bfloat16 and float16 ``SinePositionEncoding`` multiplies positions by
  frequencies in the compute dtype (``sinusoidal_encoding.interleaved.dim``):
  error 0.912 in bfloat16; position 131071 overflows float16 and gives NaN.
* No argument checks (factor below 1, ``dim=2``, odd width accepted).

ALiBi passes in all three dtypes: the slopes and the distances are exact
in bfloat16 for the 12-head, 24-key case.
"""

from __future__ import annotations

import os

import numpy as np

ADAPTER_NAME = "keras-hub"
ADAPTER_VERSION = "0.32.0"
ADAPTER_DTYPES = ("float32", "float16", "bfloat16")
ADAPTER_DEVICES = ("cpu",)

#: The options keras-hub can express (see the module docstring); fuzzing draws inside them.
ADAPTER_OPTIONS = {
    "apply_rope": {"layout": ["half"], "rotary_dim": "default"},
    "yarn_frequencies": {"extrapolation_factor": "default", "high_limit": ["dim"]},
    "sinusoidal_encoding": {"layout": ["interleaved"], "freq_denominator": ["dim"]},
    "alibi_bias": {"form": ["last_key_anchored"], "scale": "default"},
}


def _keras():
    """Import keras on the JAX backend, then the keras-hub modeling layers."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    if keras.backend.backend() != "jax":
        raise ImportError(f"keras was loaded with the {keras.backend.backend()!r} backend; this adapter needs jax")
    from keras_hub.src.layers.modeling import alibi_bias, rotary_embedding, sine_position_encoding

    return rotary_embedding.RotaryEmbedding, sine_position_encoding.SinePositionEncoding, alibi_bias.AlibiBias


def available():
    try:
        _keras()
    except Exception as exc:
        return (f"keras-hub on the jax backend cannot be imported ({type(exc).__name__}: {exc}); "
                "pip install --no-deps keras-hub, plus keras jax jaxlib regex tokenizers")
    return None


def make_adapter(*, dtype, device):
    return KerasHubAdapter(dtype=dtype, device=device)


def _float32(value) -> np.ndarray:
    return np.asarray(value).astype(np.float32)


def _int32(positions, name="positions") -> np.ndarray:
    positions = np.asarray(positions)
    as_float = positions.astype(np.float64)
    if not np.all(as_float == np.round(as_float)) or np.any(np.abs(as_float) >= 2**31):
        raise NotImplementedError(f"the adapter passes {name} to keras-hub as int32; these do not fit")
    return as_float.astype(np.int32)


def _sequence_positions(positions, x_shape):
    """Positions as keras-hub takes them: ``(T,)`` or ``(B, T)``."""
    p = np.asarray(positions)
    if p.ndim <= 1:
        return np.broadcast_to(p, x_shape[-2:-1])
    full = np.broadcast_to(p, x_shape[:-1])
    reduced = full[(slice(None),) + (0,) * (len(x_shape) - 3) + (slice(None),)]  # (B, T)
    expanded = reduced.reshape(reduced.shape[:1] + (1,) * (len(x_shape) - 3) + reduced.shape[1:])
    if not np.array_equal(np.broadcast_to(expanded, full.shape), full):
        raise NotImplementedError("keras-hub takes positions of shape (T,) or (B, T), shared by the heads")
    return reduced


class KerasHubAdapter:
    """keras-hub's position layers, called like posref's spec functions."""

    def __init__(self, *, dtype, device):
        self.dtype = dtype
        self.device = device

    def _rotary(self, base, **options):
        rotary_class, _, _ = _keras()
        return rotary_class(max_wavelength=base, dtype=self.dtype, **options)

    # -- RoPE ------------------------------------------------------------------------------

    def apply_rope(self, x, positions, /, *, base=10_000.0, layout="half", rotary_dim=None,
                   rotated_slice="first", freq_denominator="rotary_dim", position_offset=0):
        x = np.asarray(x)
        if layout != "half":
            raise NotImplementedError("keras-hub's RotaryEmbedding splits the features in halves (layout='half') only")
        if rotary_dim not in (None, x.shape[-1]):
            raise NotImplementedError("keras-hub's RotaryEmbedding rotates the whole feature axis (no partial rotary)")
        squeeze = x.ndim == 2
        if squeeze:  # keras-hub needs a batch axis in front of the sequence axis
            x = x[None]
        p = _sequence_positions(np.asarray(positions) + position_offset, x.shape)
        layer = self._rotary(base, sequence_axis=x.ndim - 2, feature_axis=-1)
        out = _float32(layer(x, positions=_int32(p)))
        return out[0] if squeeze else out

    def linear_scaled_frequencies(self, dim, /, *, base=10_000.0, scaling_factor):
        return _float32(self._rotary(base, scaling_factor=scaling_factor, rope_type="linear")._get_inverse_freq(dim))

    def ntk_scaled_frequencies(self, dim, /, *, base=10_000.0, scaling_factor):
        return _float32(self._rotary(base, scaling_factor=scaling_factor, rope_type="dynamic")._get_inverse_freq(dim))

    def yarn_frequencies(self, dim, /, *, base=10_000.0, scaling_factor, original_max_position_embeddings,
                         beta_fast=32.0, beta_slow=1.0, truncate=True, extrapolation_factor=1.0, high_limit="dim"):
        if extrapolation_factor != 1.0:
            raise NotImplementedError("keras-hub's YaRN has no extrapolation_factor (it is 1)")
        if high_limit != "dim":
            raise NotImplementedError("keras-hub 0.32 clamps the YaRN correction range at d - 1 (high_limit='dim')")
        layer = self._rotary(base, scaling_factor=scaling_factor, rope_type="yarn", beta_fast=beta_fast,
                             beta_slow=beta_slow, original_max_position_embeddings=original_max_position_embeddings,
                             truncate=truncate)
        return _float32(layer._get_inverse_freq(dim))

    # -- sinusoidal ------------------------------------------------------------------------

    def sinusoidal_encoding(self, positions, dim, /, *, base=10_000.0, layout="interleaved", freq_denominator="dim",
                            position_offset=0):
        if layout != "interleaved":
            raise NotImplementedError("keras-hub's SinePositionEncoding interleaves sin and cos (layout='interleaved')")
        if freq_denominator != "dim":
            raise NotImplementedError("keras-hub's SinePositionEncoding uses the exponent 2k/dim (freq_denominator='dim')")
        _, sine_class, _ = _keras()
        positions = np.asarray(positions)
        p = _int32(positions + position_offset).reshape(1, -1)  # (1, N)
        layer = sine_class(max_wavelength=base, dtype=self.dtype)
        inputs = np.zeros((1, p.shape[1], dim), dtype=np.float32)
        out = _float32(layer(inputs, positions=p))  # (1, N, dim)
        return out.reshape(positions.shape + (dim,))

    # -- ALiBi -----------------------------------------------------------------------------

    def alibi_slopes(self, num_heads, /, *, max_bias=8.0, rule=None):
        _, _, alibi_class = _keras()
        return np.asarray(alibi_class(alibi_bias_max=max_bias)._get_slopes(num_heads), dtype=np.float64)

    def alibi_bias(self, slopes, query_positions, key_positions, /, *, form="distance", causal=True, scale=1.0):
        from posref.adapters.tensors import round_to

        if form != "last_key_anchored":
            raise NotImplementedError(
                "keras-hub's AlibiBias writes the bias as slope * (j - (S - 1)) (form='last_key_anchored') only"
            )
        if scale != 1.0:
            raise NotImplementedError("keras-hub's AlibiBias has no scale (scale=1)")
        q, k = np.asarray(query_positions), np.asarray(key_positions)
        if not np.array_equal(k, np.arange(k.shape[0])):
            raise NotImplementedError("keras-hub's AlibiBias places the keys at 0 .. S-1")
        _, _, alibi_class = _keras()
        layer = alibi_class(dtype=self.dtype)
        slopes = np.asarray(slopes, dtype=np.float64)
        own = np.asarray(layer._get_slopes(slopes.shape[0]), dtype=np.float64)
        if not np.array_equal(round_to(own, self.dtype).astype(np.float64), slopes):
            raise NotImplementedError(
                "keras-hub's AlibiBias computes its own slopes from the head count (alibi_bias_max=8); "
                "other slopes cannot be passed"
            )
        scores = np.zeros((1, slopes.shape[0], q.shape[0], k.shape[0]), dtype=np.float32)
        bias = _float32(layer(scores))[0].astype(np.float64)  # (H, T, S)
        if causal:  # the causal mask of the attention layer
            bias = np.where((k[None, :] > q[:, None])[None], -np.inf, bias)
        return bias
