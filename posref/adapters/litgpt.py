"""Adapter for LitGPT (``pip install --no-deps litgpt==0.5.13`` plus ``lightning torchmetrics``).

Checked with litgpt 0.5.13 (lightning 2.6.6, torchmetrics 1.9.0,
lightning-utilities 0.15.3) on torch 2.13.0 (CPU); pinned in
``conformance/constraints-new-light.txt``.  litgpt requires
``huggingface-hub<1.4``, which would replace the hub that transformers
uses, so it is installed with ``--no-deps``; ``import litgpt`` needs
lightning (and through it torchmetrics), PyYAML, psutil, tqdm and
safetensors, which are installed normally.  ``import litgpt`` takes about
15 s (lightning).

What it maps, and the library's conventions
-------------------------------------------

``build_rope_cache(seq_len, n_elem, base, condense_ratio, extra_config)``
returns ``cos`` and ``sin`` of shape ``(seq_len, n_elem)``: frequencies
``1 / base ** (arange(0, n_elem, 2) / n_elem)`` in float32, positions
``arange(seq_len) / condense_ratio`` in float32, angles
``outer(positions, theta).repeat(1, 2)`` (``cat(f, f)``, the half
layout), cos and sin multiplied by YaRN's attention scaling.
``apply_rope(x, cos, sin)`` uses ``rotate_half`` and returns the dtype of
``x``; ``CausalSelfAttention`` rotates ``q[..., :rope_n_elem]`` and
concatenates the rest (``rope_n_elem = int(rotary_percentage *
head_size)``).  The model selects cache rows by ``input_pos``
(``batched_index_select``, i.e. ``torch.index_select``); the adapter
builds the cache up to the largest position, selects the same way and casts cos/sin to the
dtype of ``x``, as they are in a model converted to that dtype (the cache
is a pair of buffers, ``GPT.cos`` and ``GPT.sin``, which ``GPT.to(dtype)``
and Fabric's ``"bf16-true"``/``"16-true"`` convert with the weights).

``rope_cos_sin``
    ``build_rope_cache(max_position + 1, dim, base=base)`` indexed by the
    positions (``layout="half"``), float32.
``apply_rope``
    ``layout="half"``: ``apply_rope`` on the first ``rotary_dim`` channels
    with a cache of ``n_elem = rotary_dim`` (``rotated_slice="first"``,
    ``freq_denominator="rotary_dim"``), the rest passed through, as
    ``CausalSelfAttention.forward`` does; integer positions plus an integer
    ``position_offset``.  LitGPT's other layout, ``rope_interleave=True``
    (``apply_rope_interleave``), reads pairs ``2i, 2i+1`` but writes the
    result in the half layout (``[x0, x2, ..., x1, x3, ...]``, HF
    DeepSeek-V3's convention), so its output is a permutation of posref's
    ``layout="interleaved"`` and is not mapped.
``rope_frequencies``, ``linear_scaled_frequencies``, ``llama3_scaled_frequencies``, ``yarn_frequencies``
    The angle at position 1 of ``build_rope_cache(2, dim, ...)``:
    ``atan2(sin, cos)`` of the first ``dim/2`` columns (all frequencies are
    at most 1 rad; YaRN's attention scaling cancels in the ratio), since
    the function returns only cos and sin.  Linear scaling:
    ``extra_config={"factor": s}`` (``theta / factor``); the object made
    with ``make_adapter(..., linear_rule="condense_ratio")`` uses
    ``condense_ratio=s`` instead (positions divided by ``s``, LitGPT's
    LongChat configs).  Llama 3: ``extra_config`` with ``factor``,
    ``low_freq_factor``, ``high_freq_factor``, ``original_max_seq_len``
    (LitGPT blends every frequency with ``smooth_factor`` clamped to
    ``[0, 1]``).  YaRN: ``factor``, ``beta_fast``, ``beta_slow``,
    ``original_max_seq_len``, ``truncate``; the correction range is
    clamped to ``n_elem // 2 - 1`` (posref ``high_limit="half_dim"``), no
    ``extrapolation_factor``.  ``GPT.rope_cache`` does not pass
    ``truncate`` through from ``rope_adjustments`` (a model always gets
    the default ``True``); the adapter calls ``build_rope_cache`` with it.
``yarn_attention_factor``
    ``cos`` at position 0 of the YaRN cache, which is the attention scaling
    (``yarn_get_mscale``, or the ratio of two when ``mscale`` and
    ``mscale_all_dim`` are both set and non-zero); ``attention_factor``
    is not expressible.

Precision: the caches are float32 and rotations happen in the dtype of
``x`` (cos/sin cast to it, as in a model converted to that dtype); float64
is not offered because the cache is float32.

Divergences found
-----------------

* Bug, ``build_rope_cache`` (YaRN branch): the ramp is applied the wrong
  way round (``theta_extrapolation_factor = ramp_func`` where Hugging Face
  uses ``1 - ramp``), so the high-frequency pairs, which YaRN keeps, are
  divided by the factor and the low-frequency pairs are kept.  Dim 128,
  base 1e4, factor 8: pair 0 comes out 0.125 instead of 1.0.  Smallest
  reproduction::

      cos, sin = build_rope_cache(2, 128, extra_config={
          "factor": 8.0, "beta_fast": 32.0, "beta_slow": 1.0, "original_max_seq_len": 4096})
      torch.atan2(sin[1, 0], cos[1, 0])   # 0.125; YaRN keeps pair 0 at 1.0

  Only the golden cases with ``high_limit="half_dim"`` (LitGPT's clamp)
  can show it: ``yarn_frequencies.long_l0.half_dim.*`` (error 1.01e-4 at
  pair 63).  The attention scaling (``yarn_attention_factor``) conforms.
* YaRN attention scaling with ``mscale`` unset (or 0) and
  ``mscale_all_dim`` set: the branch ``elif mscale_all_dim:
  attention_scaling = yarn_get_mscale(factor, mscale_all_dim)`` multiplies
  cos/sin by ``g(s, m2)``, where the ratio ``g(s, m1) / g(s, m2)`` (posref,
  DeepSeek's reference code, vLLM) gives ``1 / g(s, m2)`` for ``m1 = 0``
  (and ``g(s, 1) / g(s, m2)`` with the reference's default ``mscale=1``).
  ``CausalSelfAttention`` also multiplies the softmax scale by
  ``g(s, m2) ** 2`` (``scale * self.mscale * self.mscale``), so such a
  config applies the correction to the logits twice over.  ``s=4,
  mscale=0, mscale_all_dim=0.707``: 1.0980 where the ratio gives 0.9107
  (error 0.187); found by ``posref check``'s differential cases, shown in
  ``tests/test_adapters_litgpt.py``.  Configs that set both (DeepSeek-V3:
  1 and 1) or only ``mscale`` conform.
* Everything else that fails is an invalid input accepted without a check
  (``dim=63``, ``base=1``, factors below 1, ``high_freq_factor <
  low_freq_factor``, a negative ``mscale``, a zero factor, an odd head
  width) or rejected with ``IndexError``/``RuntimeError`` rather than
  ``ValueError`` (a negative position, ``rotary_dim`` above the head
  width); listed with numbers in ``posref/adapters/known/litgpt-<dtype>.txt``.
* Every valid case of the other functions conforms in float32, float16 and
  bfloat16, positions near 2**20 included.
"""

from __future__ import annotations

import numpy as np

from posref.adapters._tensors import positions_as_int, to_numpy, to_torch, torch_available, torch_dtype

ADAPTER_NAME = "litgpt"
ADAPTER_VERSION = "0.5.13"
ADAPTER_DTYPES = ("float32", "float16", "bfloat16")
ADAPTER_DEVICES = ("cpu",)

#: The options litgpt can express (see the module docstring); fuzzing draws inside them.
ADAPTER_OPTIONS = {
    "rope_cos_sin": {"layout": ["half"]},
    "apply_rope": {"layout": ["half"], "rotated_slice": ["first"], "freq_denominator": ["rotary_dim"]},
    "yarn_frequencies": {"extrapolation_factor": "default", "high_limit": ["half_dim"]},
    "yarn_attention_factor": {"attention_factor": "default"},
}


def _model():
    from litgpt import model

    return model


def available():
    return torch_available("litgpt", "litgpt.model")


def make_adapter(*, dtype, device, linear_rule="factor"):
    return LitGPTAdapter(dtype=dtype, device=device, linear_rule=linear_rule)


class LitGPTAdapter:
    """LitGPT's build_rope_cache and apply_rope, called like posref's spec functions."""

    def __init__(self, *, dtype, device, linear_rule="factor"):
        if linear_rule not in ("factor", "condense_ratio"):
            raise ValueError(f"linear_rule must be 'factor' or 'condense_ratio', got {linear_rule!r}")
        self.dtype = dtype
        self.device = device
        self.linear_rule = linear_rule

    def _angle_at_one(self, dim, **options):
        cos, sin = _model().build_rope_cache(2, int(dim), **options)
        half = cos.shape[-1] // 2 if cos.shape[-1] > 1 else 1
        return np.arctan2(to_numpy(sin[1, :half]).astype(np.float64), to_numpy(cos[1, :half]).astype(np.float64))

    # -- RoPE ------------------------------------------------------------------------------

    def rope_frequencies(self, dim, /, *, base=10_000.0):
        return self._angle_at_one(dim, base=base)

    def rope_cos_sin(self, positions, dim, /, *, base=10_000.0, layout="half"):
        if layout != "half":
            raise NotImplementedError("litgpt's cache is cat(f, f) for rotate_half (layout='half'); its interleaved "
                                      "variant reorders the channels first")
        positions = positions_as_int(positions)
        end = int(positions.max()) + 1 if positions.size else 1
        cos, sin = _model().build_rope_cache(end, int(dim), base=base)
        flat = to_torch(positions.reshape(-1))
        select = _model().batched_index_select
        shape = positions.shape + (cos.shape[-1],)
        return to_numpy(select(cos, 0, flat)).reshape(shape), to_numpy(select(sin, 0, flat)).reshape(shape)

    def apply_rope(self, x, positions, /, *, base=10_000.0, layout="half", rotary_dim=None,
                   rotated_slice="first", freq_denominator="rotary_dim", position_offset=0):
        import torch

        if layout != "half":
            raise NotImplementedError(
                "litgpt's apply_rope uses rotate_half (layout='half'); apply_rope_interleave reads pairs 2i, 2i+1 "
                "but writes its output in the half layout, a permutation of layout='interleaved'")
        x = np.asarray(x)
        head_dim = x.shape[-1]
        r = head_dim if rotary_dim is None else int(rotary_dim)
        if r != head_dim and (rotated_slice, freq_denominator) != ("first", "rotary_dim"):
            raise NotImplementedError("litgpt rotates q[..., :rope_n_elem] with a cache of n_elem = rope_n_elem "
                                      "(rotated_slice='first', freq_denominator='rotary_dim') only")
        if not float(position_offset).is_integer():
            raise NotImplementedError("litgpt's input_pos are integers; a fractional offset is not expressible")
        p = positions_as_int(positions) + int(position_offset)
        p = np.broadcast_to(p, x.shape[:-1]).reshape(-1)
        model = _model()
        cos, sin = model.build_rope_cache(int(p.max()) + 1 if p.size else 1, r, base=base)
        index = to_torch(p)
        dtype = torch_dtype(self.dtype)
        cos = model.batched_index_select(cos.to(dtype), 0, index)[None]  # (1, N, r), as GPT.forward selects input_pos
        sin = model.batched_index_select(sin.to(dtype), 0, index)[None]
        t = to_torch(x.reshape(1, -1, head_dim), self.dtype)
        with torch.no_grad():
            roped = model.apply_rope(t[..., :r], cos, sin)
            out = torch.cat((roped, t[..., r:]), dim=-1)
        return to_numpy(out).reshape(x.shape)

    # -- RoPE scaling -----------------------------------------------------------------------

    def linear_scaled_frequencies(self, dim, /, *, base=10_000.0, scaling_factor):
        if self.linear_rule == "condense_ratio":
            return self._angle_at_one(dim, base=base, condense_ratio=scaling_factor)
        return self._angle_at_one(dim, base=base, extra_config={"factor": scaling_factor})

    def llama3_scaled_frequencies(self, dim, /, *, base=500_000.0, scaling_factor=8.0, low_freq_factor=1.0,
                                  high_freq_factor=4.0, original_max_position_embeddings=8192):
        return self._angle_at_one(dim, base=base, extra_config={
            "factor": scaling_factor, "low_freq_factor": low_freq_factor, "high_freq_factor": high_freq_factor,
            "original_max_seq_len": original_max_position_embeddings})

    def _yarn_config(self, scaling_factor, original_max_position_embeddings, beta_fast=32.0, beta_slow=1.0,
                     truncate=True, **mscales):
        config = {"factor": scaling_factor, "beta_fast": beta_fast, "beta_slow": beta_slow,
                  "original_max_seq_len": original_max_position_embeddings, "truncate": bool(truncate)}
        config.update(mscales)
        return config

    def yarn_frequencies(self, dim, /, *, base=10_000.0, scaling_factor, original_max_position_embeddings,
                         beta_fast=32.0, beta_slow=1.0, truncate=True, extrapolation_factor=1.0, high_limit="dim"):
        if extrapolation_factor != 1.0:
            raise NotImplementedError("litgpt's YaRN has no extrapolation_factor (it is 1)")
        if high_limit != "half_dim":
            raise NotImplementedError("litgpt clamps the YaRN correction range at n_elem // 2 - 1 "
                                      "(high_limit='half_dim')")
        return self._angle_at_one(dim, base=base, extra_config=self._yarn_config(
            scaling_factor, original_max_position_embeddings, beta_fast, beta_slow, truncate))

    def yarn_attention_factor(self, scaling_factor, /, *, mscale=1.0, mscale_all_dim=0.0, attention_factor=None):
        if attention_factor is not None:
            raise NotImplementedError("litgpt has no attention_factor override")
        cos, _ = _model().build_rope_cache(1, 4, extra_config=self._yarn_config(
            scaling_factor, 4096, mscale=mscale, mscale_all_dim=mscale_all_dim))
        return np.float64(to_numpy(cos[0, 0]))

