"""Adapter for vLLM's rotary embeddings, run natively on the CPU (vLLM 0.34.0).

Checked with vLLM 0.34.0 on torch 2.13.0 (CPU).  vLLM's metadata pins
torch 2.14.0 and a CUDA stack, so it is installed with ``--no-deps`` next to
the small packages its import chain needs (``conformance/requirements-new-heavy.txt``);
the PyTorch-native paths used here (``forward_native``) run on 2.13.

A patch, applied by the adapter (never written into vLLM): every rotary
module is a ``CustomOp`` whose constructor asks
``vllm.model_executor.custom_op.get_cached_compilation_config()`` which ops
are enabled; that builds a ``VllmConfig``, which cannot be built on a
machine without a supported accelerator.  While a module is built the
adapter replaces that function (the name bound in
``vllm.model_executor.custom_op``) with one returning
``CompilationConfig(custom_ops=["none"])`` (every custom op falls back to
its native implementation), and LongRoPE's
``get_current_vllm_config()`` with an object whose
``model_config.max_model_len`` is the sequence length in question.  Both
are restored afterwards.

What it maps, and the library's conventions
-------------------------------------------

Every module comes from ``get_rope(head_size, max_position, is_neox_style,
rope_parameters, dtype)``, which builds a cos/sin cache of
``max_position`` rows in float32 (angles ``t * inv_freq`` with ``t`` a
float32 ``arange``), multiplied by the scaling rule's attention factor,
and stored in the model dtype.  ``forward_native(positions, query, key)``
looks up one row per token (integer positions, flattened) and rotates the
first ``rotary_dim`` channels of each head (``rotated_slice="first"``,
exponent denominator ``rotary_dim``): ``is_neox_style=True`` is the half
layout, ``False`` the interleaved (GPT-J) layout.  ``get_rope`` caches
modules in ``_ROPE_DICT`` keyed on (head size, rotary dim, max position,
style, rope parameters, dtype).  Positions must lie below ``max_position``;
the adapter asks for ``max(position) + 1`` rows (a position near 2**20
means a cache of 2**20 rows).  The DeepSeek and M-RoPE modules require a
key (``assert key is not None``): the adapter passes a copy of the query.

``rope_frequencies``
    ``RotaryEmbedding._compute_inv_freq(base)`` (float32).
``rope_cos_sin``
    The rows of ``cos_sin_cache`` (``[cos | sin]`` of ``dim/2`` angles, in
    the model dtype), expanded to ``cat(f, f)`` (half) or
    ``repeat_interleave(f, 2)`` (interleaved), as the DeepSeek path does.
``apply_rotary``
    ``ApplyRotaryEmb.forward_static(x, cos, sin, is_neox_style)`` with the
    cos and sin of the given angles computed in float32 and cast to the
    dtype of ``x`` (as the cache is).
``apply_rope``
    ``rope_type="default"`` with ``rope_dim = r`` (``partial_rotary_factor``
    is what models set; ``rope_dim`` gives any ``r``), both layouts;
    ``freq_denominator="head_dim"`` with ``rotated_slice="first_pairs"`` is
    ``rope_type="proportional"`` (Gemma 4: ``base ** (-2i/D)`` for the
    first ``r/2`` angles, zero for the rest, half layout).  The last ``r``
    channels cannot be rotated.  A position offset is added to the
    integer positions.
``apply_mrope``
    ``rope_parameters={"mrope_section": ..., "mrope_interleaved": ...}``
    (``MRotaryEmbedding``, ``mrope_positions_factor=1``; Qwen2-VL
    contiguous sections or Qwen3-VL interleaved ``THWTHW...``) and
    ``forward_native`` with positions of shape ``(3, num_tokens)``: every
    head of every batch row is given as its own token, half layout
    (``is_neox_style=True``) or interleaved pairs.
``linear_scaled_frequencies``
    Not a frequency table in vLLM: ``LinearScalingRotaryEmbedding``
    divides the positions (``t / scaling_factor``) and keeps the
    frequencies; not expressible.
``ntk_fixed_frequencies``
    ``NTKScalingRotaryEmbedding._compute_inv_freq`` (``rope_type="ntk"``,
    ``factor``, ``mixed_b``).
``dynamic_ntk_frequencies``
    ``DynamicNTKScalingRotaryEmbedding`` (``rope_type="dynamic"``,
    ``factor``, ``max_trained_positions = L0``) built for
    ``max_position = sequence_length``: the base is
    ``base * (s L / L0 - (s - 1)) ** (r / (r - 2))``, computed once at
    construction for the module's whole length (vLLM has no per-batch
    update).  The frequencies are those its cache is built from (the
    adapter records what ``_compute_inv_freq`` returns while the cache is
    computed).
``yarn_frequencies``, ``yarn_attention_factor``, ``yarn_correction_range``
    ``YaRNScalingRotaryEmbedding`` (``rope_type="yarn"``; ``beta_fast``,
    ``beta_slow``, ``truncate``, ``mscale``, ``mscale_all_dim``,
    ``attention_factor``): its frequencies, its ``mscale`` attribute, and
    ``common.yarn_find_correction_range``.  The range is clamped at
    ``dim - 1`` (``high_limit="dim"``); no ``extrapolation_factor``.
    ``mscale`` is used only when ``mscale_all_dim`` is set and non-zero.
    ``DeepseekScalingRotaryEmbedding`` (``rope_type="deepseek_yarn"``) has
    the same frequencies and ``yarn_get_mscale(s, mscale) /
    yarn_get_mscale(s, mscale_all_dim)`` as its factor; the adapter object
    built with ``yarn_module="deepseek"`` uses it.
``longrope_frequencies``, ``longrope_attention_factor``
    ``Phi3LongRoPEScaledRotaryEmbedding`` (what ``get_rope`` builds for
    ``rope_type="longrope"``, built directly because ``get_rope``'s cache
    is not keyed on ``max_model_len``, which the module reads): vLLM
    chooses the long factors when the engine's ``max_model_len`` exceeds
    ``original_max_position_embeddings`` (for every sequence, whatever
    its length); the adapter sets ``max_model_len`` to
    ``sequence_length``.  The attention factor is the module's
    ``short_mscale``, ``sqrt(1 + ln s / ln L0)`` with ``s =
    max_position / L0``.
``llama3_scaled_frequencies``
    ``Llama3RotaryEmbedding._compute_inv_freq`` (``rope_type="llama3"``).
``alibi_slopes``
    ``vllm.model_executor.models.bloom._get_alibi_slopes``
    (float32 powers of a float32 base; ``max_bias=8`` built in).
``nope_attention_temperature``
    ``Llama4Attention._get_attn_scale(positions)`` (Llama 4's NoPE
    layers), called on an object holding only ``floor_scale`` and
    ``attn_scale``: ``log(floor((p + 1.0) / floor_scale) + 1.0) *
    attn_scale + 1.0`` in float32, returned as float32 (vLLM multiplies the
    queries by it before casting them to the model dtype).

Precision: the caches are float32 and then cast to the model dtype, so a
float64 model would get float32 angles; float64 is not offered.

Divergences found
-----------------

Over the golden cases every RoPE, M-RoPE, YaRN, LongRoPE, Llama 3, NTK
and slope case conforms in float32, float16 and bfloat16.  Listed with case
ids and numbers in ``posref/adapters/known/vllm-<dtype>.txt``:

* ``DynamicNTKScalingRotaryEmbedding`` does not clamp the length to the
  pre-training length: below it the base shrinks (1e-3 relative frequency
  error at ``L = L0 - 1``), and for ``s L / L0 < s - 1`` the base is a
  negative number to a fractional power, so the frequencies come back
  complex (a bug; ``get_rope(128, 1, rope_parameters={"rope_type":
  "dynamic", "factor": 4.0, "max_trained_positions": 4096})``).
* ``YaRNScalingRotaryEmbedding`` ignores ``mscale`` unless
  ``mscale_all_dim`` is set (as Hugging Face); the DeepSeek module does not.
* Invalid rope parameters are accepted, and malformed shapes fail with
  ``RuntimeError``/``AssertionError``/``IndexError``.

Beyond the golden cases (``tests/test_adapters_vllm.py``): ``get_rope``'s
``_ROPE_DICT`` key does not include ``max_model_len``, which
``Phi3LongRoPEScaledRotaryEmbedding`` reads to choose its factors, so a
second configuration in one process gets the first one's choice.
"""

from __future__ import annotations

import contextlib
import types

import numpy as np

from posref.adapters._tensors import positions_as_int, to_numpy, to_torch, torch_available, torch_dtype
from posref.conformance.adapter import AdapterError

ADAPTER_NAME = "vllm"
ADAPTER_VERSION = "0.34.0"
ADAPTER_DTYPES = ("float32", "float16", "bfloat16")
ADAPTER_DEVICES = ("cpu",)
#: What the adapter does to reach the library (shown by ``posref adapters``).
ADAPTER_NOTES = "patches vllm.model_executor.custom_op.get_cached_compilation_config (custom_ops=[\"none\"]) and LongRoPE's get_current_vllm_config while building modules: VllmConfig() cannot be built on CPU"

#: Largest cos/sin cache built (rows x rotary dim).
_CACHE_LIMIT = 1 << 28


def available():
    return torch_available("vllm", "vllm.model_executor.layers.rotary_embedding")


def make_adapter(*, dtype, device, yarn_module="yarn"):
    return VllmAdapter(dtype=dtype, device=device, yarn_module=yarn_module)


@contextlib.contextmanager
def _cpu_config(max_model_len=None):
    """Let vLLM's CustomOp constructors run without a VllmConfig (see the module docstring)."""
    from vllm.config import CompilationConfig
    from vllm.model_executor import custom_op
    from vllm.model_executor.layers.rotary_embedding import phi3_long_rope_scaled_rope as phi3

    config = CompilationConfig(custom_ops=["none"])
    saved = custom_op.get_cached_compilation_config, phi3.get_current_vllm_config
    custom_op.get_cached_compilation_config = lambda: config
    model_config = types.SimpleNamespace(max_model_len=max_model_len)
    phi3.get_current_vllm_config = lambda: types.SimpleNamespace(model_config=model_config)
    try:
        yield
    finally:
        custom_op.get_cached_compilation_config, phi3.get_current_vllm_config = saved


def _recorded_inv_freq(module):
    """The inverse frequencies ``module``'s cache is built from (what ``_compute_inv_freq`` returns)."""
    seen = []
    original = module._compute_inv_freq

    def record(*args, **kwargs):
        inv_freq = original(*args, **kwargs)
        seen.append(inv_freq)
        return inv_freq

    module._compute_inv_freq = record
    try:
        module._compute_cos_sin_cache()
    finally:
        del module._compute_inv_freq
    return seen[-1]


class VllmAdapter:
    """vLLM's rotary embeddings (native PyTorch paths), called like posref's spec functions."""

    def __init__(self, *, dtype, device, yarn_module="yarn"):
        if yarn_module not in ("yarn", "deepseek"):
            raise AdapterError(f"yarn_module must be 'yarn' or 'deepseek', got {yarn_module!r}")
        self.dtype = dtype
        self.device = device
        self.yarn_module = yarn_module

    # -- helpers ---------------------------------------------------------------------------

    def _rope(self, head_size, max_position, *, is_neox_style=True, rope_parameters=None, positions_factor=4,
              max_model_len=None, dtype=None):
        from vllm.model_executor.layers.rotary_embedding import get_rope

        with _cpu_config(max_model_len):
            return get_rope(int(head_size), int(max_position), is_neox_style=is_neox_style,
                            rope_parameters=rope_parameters,
                            dtype=torch_dtype(dtype or self.dtype), mrope_positions_factor=positions_factor)

    @staticmethod
    def _check_layout(layout):
        if layout not in ("half", "interleaved"):
            raise NotImplementedError(f"vLLM has no layout {layout!r}; is_neox_style=True is 'half', False "
                                      "'interleaved'")

    @staticmethod
    def _rows(max_position, width):
        if int(max_position) * max(int(width), 1) > _CACHE_LIMIT:
            raise NotImplementedError(f"vLLM caches cos/sin for every position below max_position: "
                                      f"{max_position} rows of {width} would exceed {_CACHE_LIMIT} entries")
        return int(max_position)

    # -- RoPE ------------------------------------------------------------------------------

    def rope_frequencies(self, dim, /, *, base=10_000.0):
        rope = self._rope(dim, 1, rope_parameters={"rope_type": "default", "rope_theta": float(base)})
        return to_numpy(rope._compute_inv_freq(float(base)))

    def rope_cos_sin(self, positions, dim, /, *, base=10_000.0, layout="half"):
        import torch

        self._check_layout(layout)
        positions = positions_as_int(positions)
        top = int(positions.max()) + 1 if positions.size else 1
        rope = self._rope(dim, self._rows(top, dim), is_neox_style=layout == "half",
                          rope_parameters={"rope_type": "default", "rope_theta": float(base)})
        rows = rope.cos_sin_cache[to_torch(positions.reshape(-1))]
        cos, sin = rows.chunk(2, dim=-1)
        if layout == "half":
            cos, sin = torch.cat((cos, cos), dim=-1), torch.cat((sin, sin), dim=-1)
        else:
            cos, sin = cos.repeat_interleave(2, dim=-1), sin.repeat_interleave(2, dim=-1)
        shape = positions.shape + (int(dim),)
        return to_numpy(cos).reshape(shape), to_numpy(sin).reshape(shape)

    def apply_rotary(self, x, angles, /, *, layout="half"):
        from vllm.model_executor.layers.rotary_embedding.common import ApplyRotaryEmb

        self._check_layout(layout)
        x, angles = np.asarray(x), np.asarray(angles)
        lead = np.broadcast_shapes(x.shape[:-1], angles.shape[:-1])
        d = x.shape[-1]
        rows = to_torch(np.broadcast_to(x, lead + (d,)).reshape(-1, 1, d), self.dtype)  # (N, heads=1, D)
        a = to_torch(np.broadcast_to(angles, lead + angles.shape[-1:]).reshape(-1, angles.shape[-1]), "float32")
        cos, sin = a.cos().to(rows.dtype), a.sin().to(rows.dtype)  # (N, D/2), as the cache is stored
        out = ApplyRotaryEmb.forward_static(rows, cos, sin, layout == "half")
        return to_numpy(out).reshape(lead + (d,))

    def _forward(self, rope, positions, x, head_size):
        """forward_native on tokens x (N, head_size) at positions (N,) or (3, N); returns (N, head_size)."""
        import torch

        query = to_torch(x, self.dtype)
        with torch.no_grad():
            out, _ = rope.forward_native(to_torch(positions), query, query.clone())
        return to_numpy(out).reshape(-1, head_size)

    def apply_rope(self, x, positions, /, *, base=10_000.0, layout="half", rotary_dim=None,
                   rotated_slice="first", freq_denominator="rotary_dim", position_offset=0):
        self._check_layout(layout)
        x = np.asarray(x)
        head_dim = x.shape[-1]
        r = head_dim if rotary_dim is None else int(rotary_dim)
        params = {"rope_type": "default", "rope_theta": float(base), "rope_dim": r}
        if r != head_dim and rotated_slice == "last":
            raise NotImplementedError("vLLM rotates the first rotary_dim channels of each head "
                                      "(query[..., :rotary_dim]); the last ones cannot be rotated")
        if freq_denominator == "head_dim" and r != head_dim:
            if rotated_slice != "first_pairs" or layout != "half":
                raise NotImplementedError("freq_denominator='head_dim' is vLLM's proportional RoPE (Gemma 4): the "
                                          "half layout with rotated_slice='first_pairs'")
            params["rope_type"] = "proportional"
        elif rotated_slice == "first_pairs" and r != head_dim:
            raise NotImplementedError("rotated_slice='first_pairs' is vLLM's proportional RoPE, whose exponent "
                                      "denominator is head_dim (freq_denominator='head_dim')")
        if not float(position_offset).is_integer():
            raise NotImplementedError("vLLM's positions are integers; a fractional offset is not expressible")
        p = positions_as_int(positions) + int(position_offset)
        p = np.broadcast_to(p, x.shape[:-1]).reshape(-1)
        top = int(p.max()) + 1 if p.size else 1
        rope = self._rope(head_dim, self._rows(top, r), is_neox_style=layout == "half", rope_parameters=params)
        return self._forward(rope, p, x.reshape(-1, head_dim), head_dim).reshape(x.shape)

    def apply_mrope(self, x, positions, /, *, base=10_000.0, mrope_section, section_order="blocks", layout="half",
                    interleaved=None):
        if interleaved is None:  # the spec's deprecated name for section_order="round_robin"
            interleaved = section_order == "round_robin"  # Qwen3-VL's pattern, or contiguous sections
        self._check_layout(layout)
        x = np.asarray(x)
        head_dim = x.shape[-1]
        p = positions_as_int(positions)
        if p.ndim < 2 or p.shape[0] != 3:
            raise NotImplementedError("vLLM's M-RoPE takes three coordinates per token, positions of shape (3, ...)")
        p = p.reshape((3,) + (1,) * max(x.ndim - p.ndim, 0) + p.shape[1:])  # (3, ..., T) against x's (..., T, D)
        p = np.broadcast_to(p, (3,) + x.shape[:-1]).reshape(3, -1)  # (3, num_tokens): one head per token
        top = int(p.max()) + 1 if p.size else 1
        params = {"rope_type": "default", "rope_theta": float(base),
                  "mrope_section": [int(s) for s in np.asarray(mrope_section).reshape(-1)],
                  "mrope_interleaved": bool(interleaved)}
        rope = self._rope(head_dim, self._rows(top, head_dim), is_neox_style=layout == "half", rope_parameters=params,
                          positions_factor=1)
        return self._forward(rope, p, x.reshape(-1, head_dim), head_dim).reshape(x.shape)

    # -- RoPE scaling -----------------------------------------------------------------------

    def linear_scaled_frequencies(self, dim, /, *, base=10_000.0, scaling_factor):
        raise NotImplementedError("vLLM's LinearScalingRotaryEmbedding divides the positions (t / scaling_factor) "
                                  "and keeps the frequencies: there is no scaled frequency table")

    def ntk_fixed_frequencies(self, dim, /, *, base=10_000.0, scaling_factor, mixed_b=None):
        params = {"rope_type": "ntk", "rope_theta": float(base), "factor": float(scaling_factor)}
        if mixed_b is not None:
            params["mixed_b"] = float(mixed_b)
        rope = self._rope(dim, 1, rope_parameters=params)
        return to_numpy(_recorded_inv_freq(rope))

    def dynamic_ntk_frequencies(self, dim, /, *, base=10_000.0, scaling_factor, original_max_position_embeddings,
                                sequence_length):
        params = {"rope_type": "dynamic", "rope_theta": float(base), "factor": float(scaling_factor),
                  "max_trained_positions": int(original_max_position_embeddings)}
        rope = self._rope(dim, self._rows(int(sequence_length), dim), rope_parameters=params)
        return to_numpy(_recorded_inv_freq(rope))

    def _yarn(self, dim, base, scaling_factor, original_max_position_embeddings, **options):
        l0 = int(original_max_position_embeddings)
        kind = "yarn" if self.yarn_module == "yarn" else "deepseek_yarn"
        params = {"rope_type": kind, "rope_theta": float(base), "factor": float(scaling_factor),
                  "original_max_position_embeddings": l0}
        params.update(options)
        self._rows(l0 * max(float(scaling_factor), 1.0), dim)
        return self._rope(dim, l0, rope_parameters=params)

    def yarn_frequencies(self, dim, /, *, base=10_000.0, scaling_factor, original_max_position_embeddings,
                         beta_fast=32.0, beta_slow=1.0, truncate=True, extrapolation_factor=1.0, high_limit="dim"):
        if extrapolation_factor != 1.0:
            raise NotImplementedError("vLLM's YaRN has no extrapolation factor (it is 1)")
        if high_limit != "dim":
            raise NotImplementedError("vLLM clamps the YaRN correction range at dim - 1 (high_limit='dim')")
        options = {"beta_fast": beta_fast, "beta_slow": beta_slow}
        if self.yarn_module == "yarn":
            options["truncate"] = bool(truncate)
        elif not truncate:
            raise NotImplementedError("vLLM's DeepSeek YaRN always truncates the correction range")
        rope = self._yarn(dim, base, scaling_factor, original_max_position_embeddings, **options)
        return to_numpy(rope._compute_inv_freq(float(scaling_factor)))

    def yarn_attention_factor(self, scaling_factor, /, *, mscale=1.0, mscale_all_dim=0.0, attention_factor=None):
        options = {"mscale": float(mscale), "mscale_all_dim": float(mscale_all_dim)}
        if attention_factor is not None:
            if self.yarn_module == "deepseek":
                raise NotImplementedError("vLLM's DeepSeek YaRN takes no attention_factor")
            options["attention_factor"] = float(attention_factor)
        rope = self._yarn(8, 10_000.0, scaling_factor, 16, **options)
        return float(rope.mscale)

    def yarn_correction_range(self, dim, /, *, base=10_000.0, original_max_position_embeddings, beta_fast=32.0,
                              beta_slow=1.0, truncate=True, high_limit="dim"):
        from vllm.model_executor.layers.rotary_embedding.common import yarn_find_correction_range

        if high_limit != "dim":
            raise NotImplementedError("vLLM clamps the YaRN correction range at dim - 1 (high_limit='dim')")
        low, high = yarn_find_correction_range(beta_fast, beta_slow, int(dim), float(base),
                                               int(original_max_position_embeddings), bool(truncate))
        return float(low), float(high)

    def _longrope(self, dim, base, short_factor, long_factor, l0, max_position, max_model_len):
        params = {"rope_type": "longrope", "rope_theta": float(base),
                  "short_factor": [float(v) for v in np.asarray(short_factor, dtype=np.float64).reshape(-1)],
                  "long_factor": [float(v) for v in np.asarray(long_factor, dtype=np.float64).reshape(-1)],
                  "original_max_position_embeddings": int(l0)}
        from vllm.model_executor.layers.rotary_embedding import Phi3LongRoPEScaledRotaryEmbedding

        self._rows(int(max_position) + int(l0), dim)
        # Built directly: get_rope's _ROPE_DICT does not key on max_model_len, which this module reads.
        with _cpu_config(int(max_model_len)):
            return Phi3LongRoPEScaledRotaryEmbedding(
                int(dim), int(dim), int(max_position), int(l0), float(base), True, torch_dtype(self.dtype),
                params["short_factor"], params["long_factor"])

    def longrope_frequencies(self, dim, /, *, base=10_000.0, short_factor, long_factor,
                             original_max_position_embeddings, sequence_length):
        l0 = int(original_max_position_embeddings)
        rope = self._longrope(dim, base, short_factor, long_factor, l0, l0, sequence_length)
        factors = rope.long_factor if rope.use_long_rope else rope.short_factor
        return to_numpy(rope._compute_inv_freq(factors))

    def longrope_attention_factor(self, scaling_factor, /, *, original_max_position_embeddings):
        l0 = int(original_max_position_embeddings)
        max_position = round(float(scaling_factor) * l0)
        if max_position / l0 != float(scaling_factor):
            raise NotImplementedError("vLLM derives the LongRoPE scale as max_position / original_max_position "
                                      "(integers); this factor is not such a ratio")
        ones = np.ones(4)
        rope = self._longrope(8, 10_000.0, ones, ones, l0, max_position, max_position)
        return float(rope.short_mscale)

    def llama3_scaled_frequencies(self, dim, /, *, base=500_000.0, scaling_factor=8.0, low_freq_factor=1.0,
                                  high_freq_factor=4.0, original_max_position_embeddings=8192):
        params = {"rope_type": "llama3", "rope_theta": float(base), "factor": float(scaling_factor),
                  "low_freq_factor": float(low_freq_factor), "high_freq_factor": float(high_freq_factor),
                  "original_max_position_embeddings": int(original_max_position_embeddings)}
        rope = self._rope(dim, 1, rope_parameters=params)
        return to_numpy(rope._compute_inv_freq(float(base)))

    # -- ALiBi ------------------------------------------------------------------------------

    def nope_attention_temperature(self, positions, /, *, floor_scale=8192, attn_scale=0.1):
        import torch
        from vllm.model_executor.models.llama4 import Llama4Attention

        positions = torch.as_tensor(positions_as_int(positions))
        holder = types.SimpleNamespace(floor_scale=float(floor_scale), attn_scale=float(attn_scale))
        return to_numpy(Llama4Attention._get_attn_scale(holder, positions))[..., 0]

    def alibi_slopes(self, num_heads, /, *, max_bias=8.0, rule=None):
        if max_bias != 8.0:  # rule: deprecated in the spec, the same slopes whatever its value
            raise NotImplementedError("vLLM's BLOOM has the paper's slopes with max_bias=8 built in")
        from vllm.model_executor.models.bloom import _get_alibi_slopes

        return to_numpy(_get_alibi_slopes(int(num_heads)))
