"""Adapter for Hugging Face ``transformers`` (``pip install transformers==5.23.0``).

Checked with transformers 5.23.0 on torch 2.13.0 (CPU); both pinned in
``conformance/constraints.txt``.  No weights are downloaded: every module is
built from a small configuration, and learned tables (T5's bias) are loaded
from the case's inputs.

What it maps, and the library's conventions
-------------------------------------------

``rope_frequencies``
    ``LlamaRotaryEmbedding.compute_default_rope_parameters`` with a
    ``LlamaConfig`` whose ``head_dim`` is ``dim``: ``inv_freq`` in float32.
``rope_cos_sin``
    ``LlamaRotaryEmbedding.forward(x, position_ids)``: angles in float32,
    cos/sin cast to the activation dtype, half layout (``cat(f, f)``).  The
    interleaved tables are those GPT-J's ``apply_rotary_pos_emb`` builds
    from the same values (``repeat_interleave`` of the first half).
``apply_rotary``
    Llama's ``apply_rotary_pos_emb`` (``rotate_half``, ``layout="half"``)
    or GPT-J's ``apply_rotary_pos_emb`` (``rotate_every_two``,
    ``layout="interleaved"``), with cos/sin of the given angles computed in
    float32 and cast to the activation dtype as HF's rotary modules do.
``apply_rope``
    cos/sin from the model's rotary module, then its ``apply_rotary_pos_emb``:

    * half layout, full rotary: Llama.
    * half layout, ``rotated_slice="first"``: GPT-NeoX
      (``GPTNeoXRotaryEmbedding`` with ``partial_rotary_factor = r/D``;
      its ``apply_rotary_pos_emb`` rotates the first ``r`` channels).
    * half layout, ``rotated_slice="last"``: DeepSeek-V3 with
      ``rope_interleave=False``, whose attention splits each head into
      ``(q_pass, q_rot)`` and concatenates them back; the adapter does that
      split and calls ``deepseek_v3.apply_rotary_pos_emb`` on the last
      ``r`` channels.
    * half layout, ``freq_denominator="head_dim"`` with
      ``rotated_slice="first_pairs"``: ``rope_type="proportional"``
      (Gemma 4), whose table is ``base ** (-2i/D)`` for the first ``r/2``
      pairs and zero for the rest.
    * interleaved layout: GPT-J's ``apply_rotary_pos_emb`` on the first
      ``r`` channels (GPT-J's attention slices ``[:rotary_dim]``), with the
      cos/sin of ``LlamaRotaryEmbedding``, which equal GPT-J's own
      ``create_sinusoidal_positions`` table (same float32 formula) for any
      base and without a table of every position.

    Position ids are integers (``position_ids``); a position offset is
    added to them, as ``cache_position`` does during decoding.  Every token
    is given to the library as its own row, which the per-position
    formulas cannot tell apart from a batch.  Not expressible: DeepSeek's
    interleaved variant (``apply_rotary_pos_emb_interleave``), which writes
    its output in the half layout; ``freq_denominator="head_dim"`` with the
    ``"first"`` slice or the interleaved layout.
``apply_mrope``
    Qwen2-VL's ``Qwen2VLRotaryEmbedding`` (contiguous sections,
    ``section_order="blocks"``) or Qwen3-VL's ``Qwen3VLTextRotaryEmbedding``
    (``section_order="round_robin"``), both with ``rope_parameters["mrope_section"]``
    and position ids of shape ``(3, B, T)``; the sections are recomposed
    inside the rotary module, then Llama's ``apply_rotary_pos_emb``
    (``layout="half"`` only).
``sincos_2d_encoding``
    ViT-MAE's ``build_2d_sinusoidal_position_embedding``, which writes
    ``[sin_h | cos_h | sin_w | cos_w]`` (``axis_order="yx"``,
    ``grouping="axis"``); for ``axis_order="xy"`` the halves are swapped as
    ``ViTMAEEmbeddings.initialize_weights`` does for the released MAE
    checkpoints.  Frequencies in float64, the table cast to the dtype.
``deberta_log_bucket``
    DeBERTa-v2's ``make_log_bucket_position`` (float buckets, returned as
    the library computes them).
``linear_scaled_frequencies``, ``dynamic_ntk_frequencies``, ``yarn_frequencies``, ``yarn_attention_factor``, ``longrope_frequencies``, ``longrope_attention_factor``, ``llama3_scaled_frequencies``
    ``ROPE_INIT_FUNCTIONS[rope_type](config, device, seq_len=...)`` for
    ``rope_type`` ``"linear"``, ``"dynamic"``, ``"yarn"``, ``"longrope"``
    and ``"llama3"``: float32 tables, Python-float attention factors.
    The dynamic rule reads ``max_position_embeddings`` as the pre-training
    length; YaRN, LongRoPE and Llama 3 read
    ``rope_parameters["original_max_position_embeddings"]``.  YaRN has no
    ``extrapolation_factor`` and clamps the correction range at ``dim - 1``
    (``high_limit="dim"``); other values are not expressible.  YaRN's
    attention factor uses ``mscale``/``mscale_all_dim`` only when both
    are set and non-zero, otherwise ``0.1 ln s + 1``.
``dynamic_ntk_sequence_length``
    ``dynamic_rope_update`` of a ``LlamaRotaryEmbedding`` with
    ``rope_type="dynamic"``: the adapter sets ``max_seq_len_cached`` to
    ``cached_length``, runs one forward pass and reads it back.  HF always
    returns to the original table below the pre-training length
    (``reset=True``); ``reset=False`` is not expressible.
``deepseek_softmax_scale``
    ``deepseek_v3.yarn_apply_mscale(rope_parameters, head_dim ** -0.5)``,
    as ``DeepseekV3Attention`` sets ``self.scaling``.
``t5_relative_bucket``, ``t5_relative_bias``
    ``T5Attention._relative_position_bucket`` and ``T5Attention.compute_bias``
    (``bidirectional = not is_decoder``), the table loaded as the weight of
    ``relative_attention_bias``.  ``compute_bias`` places the keys at
    ``0 .. S-1`` and the queries at ``past_seen_tokens + 0 .. T-1``;
    other positions are not expressible.
``alibi_slopes``
    ``rule="paper"``: BLOOM's ``_get_alibi_slopes`` (``max_bias=8`` only).
    ``rule="mpt"``: MPT's ``build_mpt_alibi_tensor`` (``alibi_bias_max``),
    read back from its entry at distance 1.
``alibi_bias``
    ``form="key_index"``: BLOOM's ``build_alibi_tensor`` (``scale=1``) or
    Falcon's (``scale = 1/sqrt(head_dim)``, divided as ``FalconModel``
    does), on an all-ones attention mask, so the keys are ``0 .. S-1``.
    ``form="last_key_anchored"``: MPT's ``build_mpt_alibi_tensor`` for
    consecutive keys, ``scale=1``.  These builders compute their own slopes
    from the head count: slopes that are not the library's for that count,
    to two float32 roundings, are not expressible.  That excludes BLOOM and
    Falcon from 16 heads on (their powers of a rounded base are 5 roundings
    off there) and 16-bit cases whose slopes are not powers of two.  The libraries mask future keys with a separate
    mask; the adapter applies ``-inf`` there for ``causal=True``.  The
    ``"distance"`` and ``"symmetric"`` forms are not used by these models.
``sinusoidal_encoding``
    Base 10000 only.  DistilBERT's ``create_sinusoidal_embeddings``
    (``layout="interleaved"``, ``freq_denominator="dim"``), Marian's
    ``MarianSinusoidalPositionalEmbedding`` (``layout="concat"``,
    ``freq_denominator="dim"``) and FSMT's
    ``SinusoidalPositionalEmbedding.get_embedding`` (fairseq:
    ``layout="concat"``, ``freq_denominator="half_dim_minus_one"``, rows
    numbered from ``padding_idx + 1``, so ``position_offset = padding_idx +
    1``).  Each builds a table of ``max(position) + 1`` rows (DistilBERT and
    Marian with a Python loop over every row and channel: a position near
    131072 takes about 15 s) and looks the positions up.  Integer,
    non-negative positions only.

Precision: activations are in the dtype under test; every RoPE table and
every frequency rule is computed in float32 whatever the model dtype (a
float64 model still gets float32 angles cast to float64), so float64 is not
offered.

Divergences found
-----------------

Over the golden cases every valid case conforms in float32, float16 and
bfloat16, long-context RoPE included (``apply_rope.*.hard_positions`` at
up to 0.35 of the float32 budget).  What fails is listed, with numbers, in
``posref/adapters/known/transformers-<dtype>.txt``: thirteen invalid inputs
that transformers accepts, because it validates neither rope parameters
(``rope_theta=1``, ``factor=0.5``, ``high_freq_factor < low_freq_factor``
only log a warning) nor position ids, DeBERTa's ``max_position``, an empty
ViT-MAE grid, or an odd DistilBERT width.

Beyond the golden cases (``tests/test_adapters_transformers.py``):

* Falcon's ``build_alibi_tensor`` rounds the slopes to bfloat16 and
  multiplies them by the key index in bfloat16
  (``slopes[..., None].bfloat16() * arange_tensor``) whatever the model
  dtype; BLOOM's copy of the same function stays in float32.  In float32,
  12 heads, ``scale=0.125``, 24 keys: error 1.5e-3 at head 8, key 7
  (budget 1.1e-7; slope ``2**-0.5`` became 0.70703125).  With 8 heads
  (power-of-two slopes) the bias at key 257 is ``128 / 8`` instead of
  ``128.5 / 8``: error 0.0625 (float32 budget 2.9e-6, float16 budget
  7.8e-3).  The golden ``alibi_bias.distance.falcon_scale`` case uses the
  distance form, which Falcon does not, so it does not show this.
* YaRN's attention factor ignores ``mscale`` unless ``mscale_all_dim`` is
  set and non-zero too: ``factor=40, mscale=0.707`` gives
  ``0.1 ln 40 + 1 = 1.3689`` where the rule gives
  ``0.0707 ln 40 + 1 = 1.2608`` (error 0.108).
"""

from __future__ import annotations

import math

import numpy as np

from posref.adapters._tensors import positions_as_int, to_numpy, to_torch, torch_available, torch_dtype
from posref.conformance.adapter import AdapterError

ADAPTER_NAME = "transformers"
ADAPTER_VERSION = "5.23.0"
ADAPTER_DTYPES = ("float32", "float16", "bfloat16")
ADAPTER_DEVICES = ("cpu", "cuda")

#: Largest DistilBERT/Marian table built (entries); their Python loops take a few seconds per million.
_LOOP_LIMIT = 1 << 20


def available():
    return torch_available("transformers", "transformers.modeling_rope_utils")


def make_adapter(*, dtype, device):
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise AdapterError(f"device {device!r} was asked for, but torch sees no CUDA device here")
    return TransformersAdapter(dtype=dtype, device=device)


# -- configurations ---------------------------------------------------------------------------


def _llama_config(head_dim, rope_parameters, *, max_position_embeddings=4096):
    from transformers import LlamaConfig
    from transformers.utils import logging

    # The invalid-input cases build configurations that transformers logs
    # about (and accepts); the case result reports that, so keep stderr quiet.
    previous = logging.get_verbosity()
    logging.set_verbosity(logging.CRITICAL)
    try:
        return LlamaConfig(
            vocab_size=8, hidden_size=head_dim, intermediate_size=8, num_hidden_layers=1, num_attention_heads=1,
            num_key_value_heads=1, head_dim=head_dim, max_position_embeddings=max_position_embeddings,
            rope_parameters=dict(rope_parameters),
        )
    finally:
        logging.set_verbosity(previous)


def _default(base):
    return {"rope_type": "default", "rope_theta": float(base)}


def _rope_init(rope_type):
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    return ROPE_INIT_FUNCTIONS[rope_type]


def _matching_slopes(given, library):
    """True when the case's slopes are the library's float32 slopes, to two float32 roundings.

    BLOOM, Falcon and MPT compute their slopes from the head count; the
    case's slopes must be those values, or the library would be judged on
    inputs it never sees.  The bias budget leaves room for a slope about two
    float32 roundings off.  MPT's slopes are correctly rounded; BLOOM raises
    a rounded base to the k-th power, which is 1.7 roundings off for 12
    heads but 5 for 16 and 8 for 32 (``alibi_slopes`` judges that with its
    own budget).  Slopes that are not powers of two, rounded to bfloat16 or
    float16, are off by up to 2**-9 or 2**-12.  All those are refused.
    """
    given = np.asarray(given, dtype=np.float64)
    library = np.asarray(library, dtype=np.float64)
    return given.shape == library.shape and np.allclose(given, library, rtol=2.0**-23, atol=0.0)


def _consecutive(values):
    values = np.asarray(values)
    return values.ndim == 1 and values.size > 0 and np.array_equal(values, values[0] + np.arange(values.size))


def _causal(bias, query_positions, key_positions, causal):
    """The bias of shape (H, T, S) with future keys at -inf (the models mask them separately, at finfo.min)."""
    if causal:
        future = np.asarray(key_positions)[None, :] > np.asarray(query_positions)[:, None]  # (T, S)
        bias = np.where(future[None], -np.inf, bias)
    return bias


class TransformersAdapter:
    """Hugging Face ``transformers`` position code, called like posref's spec functions."""

    def __init__(self, *, dtype, device):
        self.dtype = dtype
        self.device = device

    # -- helpers ---------------------------------------------------------------------------

    def _x(self, x):
        return to_torch(x, self.dtype, self.device)

    def _ids(self, positions):
        return to_torch(np.asarray(positions, dtype=np.int64), device=self.device)

    def _activation(self):
        import torch

        return torch.zeros(1, dtype=torch_dtype(self.dtype), device=self.device)

    def _cos_sin(self, rotary, positions):
        """cos and sin of a HF rotary module at integer ``positions`` (any shape), in the activation dtype."""
        import torch

        flat = np.asarray(positions, dtype=np.int64).reshape(1, -1)  # (1, N) position_ids
        with torch.no_grad():
            cos, sin = rotary.to(self.device)(self._activation(), self._ids(flat))
        return cos[0], sin[0]  # (N, width)

    def _llama_rotary(self, width, base):
        from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

        return LlamaRotaryEmbedding(_llama_config(width, _default(base)))

    # -- RoPE ------------------------------------------------------------------------------

    def rope_frequencies(self, dim, /, *, base=10_000.0):
        from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

        inv_freq, _ = LlamaRotaryEmbedding.compute_default_rope_parameters(_llama_config(dim, _default(base)))
        return to_numpy(inv_freq)

    def rope_cos_sin(self, positions, dim, /, *, base=10_000.0, layout="half"):
        import torch

        if layout not in ("half", "interleaved"):
            raise NotImplementedError(f"transformers has no layout {layout!r}; its layouts are 'half' and 'interleaved'")
        positions = positions_as_int(positions)
        cos, sin = self._cos_sin(self._llama_rotary(dim, base), positions)  # (N, dim), half layout
        if layout == "interleaved":  # GPT-J: repeat_interleave of the dim/2 distinct values
            cos = torch.repeat_interleave(cos[:, : dim // 2], 2, -1)
            sin = torch.repeat_interleave(sin[:, : dim // 2], 2, -1)
        shape = positions.shape + (dim,)
        return to_numpy(cos).reshape(shape), to_numpy(sin).reshape(shape)

    def _rotate(self, x, cos, sin, layout):
        """HF's rotation of x (N, D) by cos/sin (N, D/2) in the activation dtype, as its rotary modules feed it."""
        import torch

        if layout == "half":
            from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

            cos, sin = torch.cat((cos, cos), -1), torch.cat((sin, sin), -1)  # (N, D)
            q = x[:, None, None, :]  # (N, 1, 1, D): batch N, one head, one position
            out, _ = apply_rotary_pos_emb(q, q, cos[:, None, :], sin[:, None, :])
        else:
            from transformers.models.gptj.modeling_gptj import apply_rotary_pos_emb

            q = x[:, None, None, :]  # (N, 1, 1, D): GPT-J's (batch, seq, heads, D)
            out = apply_rotary_pos_emb(q, sin[:, None, :], cos[:, None, :])
        return out[:, 0, 0, :]

    def apply_rotary(self, x, angles, /, *, layout="half"):
        import torch

        if layout not in ("half", "interleaved"):
            raise NotImplementedError(f"transformers has no layout {layout!r}; its layouts are 'half' and 'interleaved'")
        x, angles = np.asarray(x), np.asarray(angles)
        lead = np.broadcast_shapes(x.shape[:-1], angles.shape[:-1])
        x = np.broadcast_to(x, lead + x.shape[-1:]).reshape(-1, x.shape[-1])  # (N, D)
        angles = np.broadcast_to(angles, lead + angles.shape[-1:]).reshape(-1, angles.shape[-1])  # (N, D/2)
        a = to_torch(angles, "float32", self.device)
        act = torch_dtype(self.dtype)
        with torch.no_grad():
            out = self._rotate(self._x(x), a.cos().to(act), a.sin().to(act), layout)
        return to_numpy(out).reshape(lead + x.shape[-1:])

    def apply_rope(self, x, positions, /, *, base=10_000.0, layout="half", rotary_dim=None,
                   rotated_slice="first", freq_denominator="rotary_dim", position_offset=0):
        import torch

        if layout not in ("half", "interleaved"):
            raise NotImplementedError(f"transformers has no layout {layout!r}; its layouts are 'half' and 'interleaved'")
        x = np.asarray(x)
        head_dim = x.shape[-1]
        r = head_dim if rotary_dim is None else rotary_dim
        partial = r != head_dim
        if not float(position_offset).is_integer():
            raise NotImplementedError("transformers position ids are integers; a fractional offset is not expressible")
        p = positions_as_int(positions) + int(position_offset)
        p = np.broadcast_to(p, x.shape[:-1]).reshape(-1)  # (N,) one position per token
        tokens = self._x(x.reshape(-1, head_dim))  # (N, D)

        if freq_denominator == "head_dim" and partial:
            if layout != "half" or rotated_slice != "first_pairs":
                raise NotImplementedError(
                    "transformers uses the head width as the frequency denominator only in rope_type='proportional', "
                    "which rotates the first r/2 pairs of the half layout (rotated_slice='first_pairs')"
                )
            return self._proportional(tokens, p, base, r, head_dim).reshape(x.shape)
        if rotated_slice == "first_pairs" and partial and layout == "half":
            raise NotImplementedError(
                "transformers pads the frequency table with zeros (rotated_slice='first_pairs') only in "
                "rope_type='proportional', whose denominator is the head width (freq_denominator='head_dim')"
            )
        if rotated_slice == "last" and partial and layout == "interleaved":
            raise NotImplementedError(
                "DeepSeek's interleaved rotary (apply_rotary_pos_emb_interleave) writes its output in the half "
                "layout, so the last-channel interleaved rotation is not expressible"
            )
        if layout == "half" and partial and rotated_slice == "first":
            return self._gpt_neox(tokens, p, base, r, head_dim).reshape(x.shape)

        cos, sin = self._cos_sin(self._llama_rotary(r, base), p)  # (N, r) half layout, activation dtype
        with torch.no_grad():
            if rotated_slice == "last" and partial:  # DeepSeek-V3: split (q_pass, q_rot), rotate, concatenate
                from transformers.models.deepseek_v3.modeling_deepseek_v3 import apply_rotary_pos_emb

                q_pass, q_rot = torch.split(tokens, [head_dim - r, r], dim=-1)
                q = q_rot[:, None, None, :]  # (N, 1, 1, r)
                q_rot, _ = apply_rotary_pos_emb(q, q, cos[:, None, :], sin[:, None, :])
                out = torch.cat((q_pass, q_rot[:, 0, 0, :]), dim=-1)
            else:
                rotated = self._rotate(tokens[:, :r], cos[:, : r // 2], sin[:, : r // 2], layout)
                out = torch.cat((rotated, tokens[:, r:]), dim=-1)  # GPT-J: (q_rot, q_pass)
        return to_numpy(out).reshape(x.shape)

    def _gpt_neox(self, tokens, p, base, r, head_dim):
        import torch
        from transformers import GPTNeoXConfig
        from transformers.models.gpt_neox.modeling_gpt_neox import GPTNeoXRotaryEmbedding, apply_rotary_pos_emb

        factor = r / head_dim
        if int(head_dim * factor) != r:
            raise NotImplementedError(f"partial_rotary_factor {factor!r} does not give rotary_dim {r} for head_dim {head_dim}")
        config = GPTNeoXConfig(vocab_size=8, hidden_size=head_dim, num_attention_heads=1, num_hidden_layers=1,
                               intermediate_size=8, max_position_embeddings=4096,
                               rope_parameters={"rope_type": "default", "rope_theta": float(base),
                                                "partial_rotary_factor": factor})
        cos, sin = self._cos_sin(GPTNeoXRotaryEmbedding(config), p)  # (N, r)
        q = tokens[:, None, None, :]  # (N, 1, 1, D)
        with torch.no_grad():
            out, _ = apply_rotary_pos_emb(q, q, cos[:, None, :], sin[:, None, :])
        return to_numpy(out[:, 0, 0, :])

    def _proportional(self, tokens, p, base, r, head_dim):
        import torch
        from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

        factor = r / head_dim
        if int(factor * head_dim // 2) != r // 2:
            raise NotImplementedError(f"partial_rotary_factor {factor!r} does not give rotary_dim {r} for head_dim {head_dim}")
        config = _llama_config(head_dim, {"rope_type": "proportional", "rope_theta": float(base),
                                          "partial_rotary_factor": factor})
        cos, sin = self._cos_sin(LlamaRotaryEmbedding(config), p)  # (N, D), zero angles beyond r/2 pairs
        q = tokens[:, None, None, :]
        with torch.no_grad():
            out, _ = apply_rotary_pos_emb(q, q, cos[:, None, :], sin[:, None, :])
        return to_numpy(out[:, 0, 0, :])

    def apply_mrope(self, x, positions, /, *, base=10_000.0, mrope_section, section_order="blocks", layout="half",
                    interleaved=None):
        if interleaved is None:  # the spec's deprecated name for section_order="round_robin"
            interleaved = section_order == "round_robin"  # Qwen3-VL's pattern, or contiguous sections
        import torch
        from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

        if layout != "half":
            raise NotImplementedError("Qwen2-VL and Qwen3-VL rotate with rotate_half (layout='half') only")
        x = np.asarray(x)
        head_dim = x.shape[-1]
        section = [int(s) for s in np.asarray(mrope_section).reshape(-1)]
        p = positions_as_int(positions)
        lead = x.shape[:-1]
        p = np.stack([np.broadcast_to(p[a], lead).reshape(-1) for a in range(p.shape[0])])  # (3, N)
        rope_parameters = {"rope_type": "default", "rope_theta": float(base), "mrope_section": section}
        if interleaved:
            from transformers.models.qwen3_vl.configuration_qwen3_vl import Qwen3VLTextConfig
            from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLTextRotaryEmbedding as Rotary

            config = Qwen3VLTextConfig(hidden_size=head_dim, num_attention_heads=1, num_key_value_heads=1,
                                       head_dim=head_dim, intermediate_size=8, num_hidden_layers=1, vocab_size=8,
                                       bos_token_id=None, eos_token_id=None, rope_parameters=rope_parameters)
        else:
            from transformers.models.qwen2_vl.configuration_qwen2_vl import Qwen2VLTextConfig
            from transformers.models.qwen2_vl.modeling_qwen2_vl import Qwen2VLRotaryEmbedding as Rotary

            config = Qwen2VLTextConfig(hidden_size=head_dim, num_attention_heads=1, num_key_value_heads=1,
                                       head_dim=head_dim, intermediate_size=8, num_hidden_layers=1, vocab_size=8,
                                       bos_token_id=None, eos_token_id=None, rope_parameters=rope_parameters)
        rotary = Rotary(config).to(self.device)
        q = self._x(x.reshape(1, 1, -1, head_dim))  # (B=1, H=1, N, D)
        with torch.no_grad():
            cos, sin = rotary(q, self._ids(p[:, None, :]))  # position_ids (3, B=1, N) -> cos (1, N, D)
            out, _ = apply_rotary_pos_emb(q, q, cos, sin)
        return to_numpy(out).reshape(x.shape)

    def sincos_2d_encoding(self, grid_shape, dim, /, *, base=10_000.0, axis_order="xy", grouping="axis",
                           class_token=False):
        import torch
        from transformers.models.vit_mae.modeling_vit_mae import build_2d_sinusoidal_position_embedding

        if grouping != "axis" or axis_order not in ("xy", "yx"):
            raise NotImplementedError("ViT-MAE groups the channels by axis, [sin a, cos a, sin b, cos b] "
                                      "(grouping='axis')")
        height, width = (int(v) for v in grid_shape)
        table = build_2d_sinusoidal_position_embedding(height=height, width=width, embed_dim=int(dim),
                                                       temperature=float(base), cls_token=bool(class_token),
                                                       dtype=torch_dtype(self.dtype))  # [sin_h|cos_h|sin_w|cos_w]
        if axis_order == "xy":  # ViTMAEEmbeddings.initialize_weights swaps the halves (the released MAE order)
            half = table.shape[-1] // 2
            table = torch.cat([table[..., half:], table[..., :half]], dim=-1)
        return to_numpy(table)

    # -- RoPE scaling ---------------------------------------------------------------------------

    def linear_scaled_frequencies(self, dim, /, *, base=10_000.0, scaling_factor):
        config = _llama_config(dim, {"rope_type": "linear", "rope_theta": float(base), "factor": float(scaling_factor)})
        inv_freq, _ = _rope_init("linear")(config, self.device)
        return to_numpy(inv_freq)

    def dynamic_ntk_frequencies(self, dim, /, *, base=10_000.0, scaling_factor, original_max_position_embeddings,
                                sequence_length):
        config = _llama_config(dim, {"rope_type": "dynamic", "rope_theta": float(base), "factor": float(scaling_factor)},
                               max_position_embeddings=int(original_max_position_embeddings))
        inv_freq, _ = _rope_init("dynamic")(config, self.device, seq_len=int(sequence_length))
        return to_numpy(inv_freq)

    def dynamic_ntk_sequence_length(self, positions, /, *, original_max_position_embeddings, cached_length=None,
                                    reset=True):
        import torch
        from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

        if not reset:
            raise NotImplementedError("transformers always returns to the original table below the pre-training "
                                      "length (reset=True)")
        l0 = int(original_max_position_embeddings)
        if cached_length is not None and cached_length < l0:
            raise NotImplementedError("transformers' max_seq_len_cached starts at max_position_embeddings and only "
                                      "grows, so a cached length below it is not a state the library can be in")
        rotary = LlamaRotaryEmbedding(_llama_config(8, {"rope_type": "dynamic", "rope_theta": 10_000.0, "factor": 2.0},
                                                    max_position_embeddings=l0)).to(self.device)
        if cached_length is not None:
            rotary.max_seq_len_cached = int(cached_length)  # the length of the table in use
        ids = np.asarray(positions)
        ids = ids.reshape(1, -1) if ids.ndim < 2 else ids.reshape(-1, ids.shape[-1])  # (B, T) position_ids
        with torch.no_grad():
            rotary(self._activation(), self._ids(positions_as_int(ids)))
        return int(rotary.max_seq_len_cached)

    def _yarn_config(self, dim, base, scaling_factor, original_max_position_embeddings, **options):
        l0 = int(original_max_position_embeddings)
        rope_parameters = {"rope_type": "yarn", "rope_theta": float(base), "factor": float(scaling_factor),
                           "original_max_position_embeddings": l0}
        rope_parameters.update(options)
        return _llama_config(dim, rope_parameters, max_position_embeddings=l0)

    def yarn_frequencies(self, dim, /, *, base=10_000.0, scaling_factor, original_max_position_embeddings,
                         beta_fast=32.0, beta_slow=1.0, truncate=True, extrapolation_factor=1.0, high_limit="dim"):
        if extrapolation_factor != 1.0:
            raise NotImplementedError("transformers' YaRN has no extrapolation factor (it is 1)")
        if high_limit != "dim":
            raise NotImplementedError("transformers clamps the YaRN correction range at dim - 1 (high_limit='dim')")
        config = self._yarn_config(dim, base, scaling_factor, original_max_position_embeddings,
                                   beta_fast=float(beta_fast), beta_slow=float(beta_slow), truncate=bool(truncate))
        inv_freq, _ = _rope_init("yarn")(config, self.device)
        return to_numpy(inv_freq)

    def yarn_attention_factor(self, scaling_factor, /, *, mscale=1.0, mscale_all_dim=0.0, attention_factor=None):
        options = {"mscale": float(mscale), "mscale_all_dim": float(mscale_all_dim)}
        if attention_factor is not None:
            options["attention_factor"] = float(attention_factor)
        config = self._yarn_config(8, 10_000.0, scaling_factor, 4096, **options)
        _, factor = _rope_init("yarn")(config, self.device)
        return float(factor)

    def _longrope_config(self, dim, base, short_factor, long_factor, original_max_position_embeddings, factor):
        rope_parameters = {
            "rope_type": "longrope", "rope_theta": float(base), "factor": float(factor),
            "short_factor": [float(v) for v in np.asarray(short_factor, dtype=np.float64).reshape(-1)],
            "long_factor": [float(v) for v in np.asarray(long_factor, dtype=np.float64).reshape(-1)],
            "original_max_position_embeddings": int(original_max_position_embeddings),
        }
        return _llama_config(dim, rope_parameters, max_position_embeddings=int(original_max_position_embeddings))

    def longrope_frequencies(self, dim, /, *, base=10_000.0, short_factor, long_factor,
                             original_max_position_embeddings, sequence_length):
        config = self._longrope_config(dim, base, short_factor, long_factor, original_max_position_embeddings, 1.0)
        inv_freq, _ = _rope_init("longrope")(config, self.device, seq_len=int(sequence_length))
        return to_numpy(inv_freq)

    def longrope_attention_factor(self, scaling_factor, /, *, original_max_position_embeddings):
        ones = np.ones(4)
        config = self._longrope_config(8, 10_000.0, ones, ones, original_max_position_embeddings, scaling_factor)
        _, factor = _rope_init("longrope")(config, self.device)
        return float(factor)

    def llama3_scaled_frequencies(self, dim, /, *, base=500_000.0, scaling_factor=8.0, low_freq_factor=1.0,
                                  high_freq_factor=4.0, original_max_position_embeddings=8192):
        l0 = int(original_max_position_embeddings)
        rope_parameters = {"rope_type": "llama3", "rope_theta": float(base), "factor": float(scaling_factor),
                           "low_freq_factor": float(low_freq_factor), "high_freq_factor": float(high_freq_factor),
                           "original_max_position_embeddings": l0}
        config = _llama_config(dim, rope_parameters, max_position_embeddings=max(math.ceil(l0 * scaling_factor), l0 + 1))
        inv_freq, _ = _rope_init("llama3")(config, self.device)
        return to_numpy(inv_freq)

    def deepseek_softmax_scale(self, head_dim, scaling_factor, /, *, mscale_all_dim):
        from transformers.models.deepseek_v3.modeling_deepseek_v3 import yarn_apply_mscale

        rope_parameters = {"rope_type": "yarn", "factor": float(scaling_factor), "mscale_all_dim": float(mscale_all_dim)}
        return float(yarn_apply_mscale(rope_parameters, int(head_dim) ** (-0.5)))

    # -- T5 -----------------------------------------------------------------------------------

    def t5_relative_bucket(self, relative_position, /, *, bidirectional=True, num_buckets=32, max_distance=128):
        from transformers.models.t5.modeling_t5 import T5Attention

        r = positions_as_int(relative_position, "relative_position")
        buckets = T5Attention._relative_position_bucket(
            to_torch(r, device=self.device), bidirectional=bool(bidirectional), num_buckets=int(num_buckets),
            max_distance=int(max_distance))
        return to_numpy(buckets).astype(np.int64)

    def t5_relative_bias(self, table, query_positions, key_positions, /, *, bidirectional=True, num_buckets=32,
                         max_distance=128):
        import torch
        from transformers import T5Config
        from transformers.models.t5.modeling_t5 import T5Attention

        q = positions_as_int(query_positions, "query_positions")
        k = positions_as_int(key_positions, "key_positions")
        if not (np.array_equal(k, np.arange(k.size)) and _consecutive(q)):
            raise NotImplementedError("T5Attention.compute_bias places the keys at 0 .. S-1 and the queries at "
                                      "past_seen_tokens + 0 .. T-1")
        table = np.asarray(table)
        heads = table.shape[-1] if table.ndim == 2 else 1
        config = T5Config(vocab_size=8, d_model=heads, d_kv=1, d_ff=4, num_layers=1, num_heads=heads,
                          relative_attention_num_buckets=int(num_buckets),
                          relative_attention_max_distance=int(max_distance), is_decoder=not bidirectional)
        attention = T5Attention(config, has_relative_attention_bias=True, layer_idx=0).to(self.device, torch_dtype(self.dtype))
        with torch.no_grad():
            attention.relative_attention_bias.weight.copy_(self._x(table))
            bias = attention.compute_bias(q.size, k.size, device=attention.relative_attention_bias.weight.device,
                                          past_seen_tokens=int(q[0]))
        return to_numpy(bias[0])  # (H, T, S)

    # -- DeBERTa --------------------------------------------------------------------------------

    def deberta_log_bucket(self, relative_position, /, *, bucket_size, max_position):
        from transformers.models.deberta_v2.modeling_deberta_v2 import make_log_bucket_position

        r = positions_as_int(relative_position, "relative_position")
        buckets = make_log_bucket_position(to_torch(r, device=self.device), int(bucket_size), int(max_position))
        return to_numpy(buckets)  # float buckets, as DeBERTa computes them (NaN where its logarithm fails)

    # -- ALiBi --------------------------------------------------------------------------------

    def alibi_slopes(self, num_heads, /, *, max_bias=8.0, rule=None):
        # rule is deprecated in the spec (the paper's and MPT's slopes are the same); here it still
        # picks the library's code path: BLOOM's _get_alibi_slopes, which has max_bias 8 built in,
        # or MPT's build_mpt_alibi_tensor, which takes max_bias (the default where BLOOM's cannot)
        if rule is None:
            rule = "paper" if max_bias == 8.0 else "mpt"
        if rule == "paper":
            from transformers.models.bloom.modeling_bloom import _get_alibi_slopes

            if max_bias != 8.0:
                raise NotImplementedError("BLOOM's slopes have max_bias=8 built in")
            return to_numpy(_get_alibi_slopes(int(num_heads), self.device))
        if rule == "mpt":
            from transformers.models.mpt.modeling_mpt import build_mpt_alibi_tensor

            alibi = build_mpt_alibi_tensor(int(num_heads), 2, alibi_bias_max=max_bias, device=self.device)  # (H, 1, 2)
            return -to_numpy(alibi)[:, 0, 0]  # the bias at distance 1 is -slope
        raise NotImplementedError(f"transformers has no slope rule {rule!r}")

    def alibi_bias(self, slopes, query_positions, key_positions, /, *, form="distance", causal=True, scale=1.0):
        import torch

        slopes = np.asarray(slopes)
        heads = slopes.shape[0] if slopes.ndim == 1 else 0
        q = np.asarray(query_positions)
        k = positions_as_int(key_positions, "key_positions")
        if form == "key_index":
            if not np.array_equal(k, np.arange(k.size)):
                raise NotImplementedError("BLOOM and Falcon number the keys 0 .. S-1 from an all-ones attention mask")
            head_dim = None
            if scale != 1.0:
                head_dim = round(scale ** -2)
                if head_dim < 1 or 1.0 / math.sqrt(head_dim) != scale:
                    raise NotImplementedError("Falcon scales ALiBi by 1/sqrt(head_dim); scale is not of that form")
            library = "Falcon" if head_dim is not None else "BLOOM"
            if library == "BLOOM":
                from transformers.models.bloom.modeling_bloom import _get_alibi_slopes, build_alibi_tensor
            else:
                from transformers.models.bloom.modeling_bloom import _get_alibi_slopes  # Falcon's, before bfloat16
                from transformers.models.falcon.modeling_falcon import build_alibi_tensor
            if heads == 0 or not _matching_slopes(slopes, to_numpy(_get_alibi_slopes(heads, "cpu"))):
                raise NotImplementedError(f"{library} computes its own float32 slopes from the head count; these are "
                                          f"not its slopes for {heads} heads to two float32 roundings (or were "
                                          f"rounded to {self.dtype})")
            mask = torch.ones((1, k.size), dtype=torch.long, device=self.device)
            with torch.no_grad():
                alibi = build_alibi_tensor(mask, heads, torch_dtype(self.dtype))  # (H, 1, S)
                if head_dim is not None:  # FalconModel.forward: alibi / math.sqrt(head_dim)
                    alibi = alibi / math.sqrt(head_dim)
        elif form == "last_key_anchored":
            from transformers.models.mpt.modeling_mpt import build_mpt_alibi_tensor

            if scale != 1.0:
                raise NotImplementedError("MPT adds ALiBi after the 1/sqrt(D) scaling (scale=1)")
            if not _consecutive(k):
                raise NotImplementedError("MPT's bias covers consecutive keys ending at the newest")
            first = float(np.asarray(slopes, dtype=np.float64)[0]) if heads else 0.0
            if not first > 0.0:
                raise NotImplementedError("MPT's slopes are positive powers of two")
            padded = 1 << (heads - 1).bit_length()
            max_bias = -math.log2(first) * (padded / 2 if padded != heads else heads)
            library = to_numpy(build_mpt_alibi_tensor(heads, 2, alibi_bias_max=max_bias))[:, 0, 0] * -1.0
            if not _matching_slopes(slopes, library):
                raise NotImplementedError(f"MPT computes its own float32 slopes from the head count; these are not "
                                          f"its slopes for {heads} heads to two float32 roundings (or were rounded "
                                          f"to {self.dtype})")
            with torch.no_grad():
                alibi = build_mpt_alibi_tensor(heads, k.size, alibi_bias_max=max_bias, device=self.device)  # (H, 1, S)
        else:
            raise NotImplementedError(f"form={form!r} is not used by BLOOM, Falcon or MPT "
                                      "(key_index and last_key_anchored are)")
        bias = np.broadcast_to(to_numpy(alibi), (heads, q.size, k.size))  # every query row is the same
        return _causal(bias, q, k, causal)

    # -- sinusoidal -----------------------------------------------------------------------------

    def sinusoidal_encoding(self, positions, dim, /, *, base=10_000.0, layout="interleaved", freq_denominator="dim",
                            position_offset=0):
        import torch

        if base != 10_000.0:
            raise NotImplementedError("transformers' sinusoidal tables have base 10000 built in")
        if not float(position_offset).is_integer():
            raise NotImplementedError("the tables are indexed by integer positions")
        rows = positions_as_int(positions) + int(position_offset)
        if rows.size and rows.min() < 0:
            raise NotImplementedError("the tables have rows for non-negative positions only")
        n_pos = int(rows.max()) + 1 if rows.size else 1
        dim = int(dim)
        if freq_denominator == "dim" and n_pos * dim > _LOOP_LIMIT:
            raise NotImplementedError(
                f"DistilBERT and Marian size their tables by max_position_embeddings (512, 1024 in their configs) "
                f"and fill them with a Python loop over every entry; a table of {n_pos} x {dim} entries (more than "
                f"{_LOOP_LIMIT}) is not built"
            )
        if (layout, freq_denominator) == ("interleaved", "dim"):
            from transformers.models.distilbert.modeling_distilbert import create_sinusoidal_embeddings

            table = create_sinusoidal_embeddings(n_pos, dim, torch.empty(n_pos, dim))
        elif (layout, freq_denominator) == ("concat", "dim"):
            from transformers.models.marian.modeling_marian import MarianSinusoidalPositionalEmbedding

            table = MarianSinusoidalPositionalEmbedding(n_pos, dim).create_weight()
        elif (layout, freq_denominator) == ("concat", "half_dim_minus_one"):
            from transformers.models.fsmt.modeling_fsmt import SinusoidalPositionalEmbedding

            padding_idx = int(position_offset) - 1 if position_offset >= 1 else None  # row padding_idx + 1 is the first
            table = SinusoidalPositionalEmbedding.get_embedding(n_pos, dim, padding_idx)
        else:
            raise NotImplementedError(f"no transformers model uses layout={layout!r} with "
                                      f"freq_denominator={freq_denominator!r}")
        embedding = torch.nn.Embedding.from_pretrained(table.to(torch_dtype(self.dtype)), freeze=True).to(self.device)
        with torch.no_grad():
            out = embedding(self._ids(rows))
        return to_numpy(out)
