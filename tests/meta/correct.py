"""Correct low-precision implementations, computed the way libraries compute them.

Every function here has the name and call signature of a posref spec
function, so an instance is an adapter.  The numerics follow the common
library recipe, with every dtype explicit:

* frequency tables, positions, positions times frequencies, and cos/sin
  are float32 (Hugging Face ``inv_freq``, ``position_ids.float()``, the
  autocast-disabled ``freqs`` and ``emb.cos()``), whatever the activation
  dtype;
* cos and sin are then cast to the activation dtype, and the rotation
  ``x * cos + rotate_half(x) * sin`` runs in the activation dtype, one
  rounding per product and sum (float32, float16, or bfloat16 through
  ml_dtypes, whose arithmetic rounds every result to bfloat16);
* ALiBi slopes are float32 (BLOOM's powers of a float32 base, MPT's
  ``1 / 2**m``), multiplied by float32 distances, then cast once;
* T5 buckets take a float32 logarithm and truncate, as Hugging Face does;
* sinusoidal tables are float32 (the power form for the paper's
  denominator, fairseq's exp form for tensor2tensor's), then cast;
* RoPE-scaling tables are float32 throughout;
* Fourier features take float32 angles ``2 pi k p / N`` for harmonics
  ``k = 1..K``, cosines then sines, then one cast;
* xPos scales are float32 powers of the float32 vector
  ``(arange(0, d, 2) + 0.4 d) / (1.4 d)`` (torchscale, rotary-embedding-torch,
  x-transformers, flash-attn), folded into cos and sin in float32 before
  the cast (torchscale, flash-attn);
* M-RoPE takes float32 angles of all three coordinates and picks each
  pair's (Hugging Face Qwen2-VL); axial RoPE and the 2-D sine-cosine
  table use float32 bands ``1 / base ** (k / n)`` (timm);
* Shaw's relative logits and values and Transformer-XL's scores take
  activation-dtype inputs, add the bias vectors (``q + u``, ``q + v``) or
  the relative values (``v + a^V``) in the activation dtype, and contract
  with float32 accumulation (``matmul`` on half inputs), one cast at the
  end; DeBERTa's three terms likewise, divided by ``sqrt(f D)`` in float32;
* attention as Hugging Face's eager path: logits from float32-accumulated
  products cast to the activation dtype, scaled and biased there, a
  float32 softmax cast back, float32-accumulated weights times values;
* FoPE takes float32 cos/sin of the kept frequencies, mixes them with
  the coefficients in float32, casts the mixtures to the activation dtype
  and rotates there (``rotate_half``), like RoPE;
* Llama 4's NoPE-layer temperature is float32 throughout
  (``log1p(floor((p + 1) / F)) * alpha + 1``, Hugging Face), then one cast;
* CoPE's gates are float32 sigmoids of the causal logits, summed from the
  query back in float32; ``cope_bias`` interpolates float32 dot products
  of the query with the table rows, one final cast;
* PEG's depthwise convolution (cross-correlation, as ``nn.Conv2d``)
  accumulates the kernel and the bias in float32, is cast to the
  activation dtype and added to the tokens there;
* the Transformer-XL table is float32 ``[sin | cos]``; Sandwich sums
  float32 cosines and divides by ``8h/H`` (NeMo); KERPLE and FIRE are
  float32 with one final cast; FIRE's MLP runs in float32 on the float32
  normalised distance with activation-dtype weights, one final cast.

Implementations raise ``ValueError`` on the invalid inputs that the golden
cases list, as a library would.

:func:`make` returns an instance for ``"float32"``, ``"float16"`` or
``"bfloat16"``.  :data:`VARIANTS` adds other correct ways of computing the
same thing (the exp form of the frequencies, Meta's complex rotation in
float32, a float32 kernel over activation-dtype caches, keras-hub's float32
YaRN correction range); each must pass too.  :mod:`tests.meta.broken`
subclasses :class:`Correct` with one bug each.
"""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np

F32 = np.float32
ACTIVATION_DTYPES = {"float32": np.dtype(np.float32), "float16": np.dtype(np.float16),
                     "bfloat16": np.dtype(ml_dtypes.bfloat16)}



def _require(condition, message, error=ValueError):
    if not condition:
        raise error(message)


def _check_dim(dim):
    _require(isinstance(dim, (int, np.integer)), f"dim must be a positive even integer, got dim={dim}", TypeError)
    _require(dim > 0 and dim % 2 == 0, f"dim must be a positive even integer, got dim={dim}")


def _check_base(base):
    _require(base > 1, f"base must be > 1, got base={base}")


def _check_positions(name, positions):
    _require(np.all(np.asarray(positions) >= 0), f"{name} must be non-negative")


def _check_factor(scaling_factor):
    _require(scaling_factor >= 1, f"scaling_factor must be >= 1, got scaling_factor={scaling_factor}")


def _check_length(name, value, minimum=1):
    _require(value >= minimum, f"{name} must be an integer >= {minimum}, got {name}={value}")


def _check_ntk_dim(dim):
    _check_dim(dim)
    _require(dim >= 4, f"dim must be an even integer >= 4, got dim={dim}")


class Correct:
    """A correct implementation computing in one activation dtype."""

    #: Spec functions whose result this class changes (for the correct one: every spec
    #: function it implements, set below from its methods).
    targets: tuple[str, ...] = ()

    def __init__(self, dtype, *, slopes="paper"):
        self.dtype = dtype
        self.act = ACTIVATION_DTYPES[dtype]
        self.slopes = slopes  # how ALiBi slopes are computed: the paper's get_slopes or MPT's gen_slopes

    def __repr__(self):
        return f"{type(self).__name__}({self.dtype!r})"

    # -- building blocks (what the broken variants override) ------------------------------

    def act_cast(self, values):
        """Round to the activation dtype."""
        return np.asarray(values).astype(self.act)

    def base_value(self, base):
        """The RoPE base as the computation sees it."""
        return F32(base)

    def exponents(self, dim):
        """``2i/dim`` for the pairs, float32 (``torch.arange(0, dim, 2).float() / dim``)."""
        return np.arange(0, dim, 2, dtype=np.int64).astype(F32) / F32(dim)

    def inv_freq(self, dim, base):
        """``1 / base ** (2i/dim)`` in float32, as Hugging Face and vLLM build it."""
        return (F32(1.0) / np.power(self.base_value(base), self.exponents(dim))).astype(F32)

    def position_values(self, positions):
        """Positions as the angle product sees them (``position_ids.float()``)."""
        return np.asarray(positions).astype(F32)

    def angle_table(self, positions, inv_freq):
        """Angles ``p * theta``, float32, shape ``positions.shape + (len(inv_freq),)``."""
        return self.position_values(positions)[..., None] * inv_freq.astype(F32)

    def cos_sin_of(self, angles):
        """cos and sin in float32, then cast to the activation dtype."""
        angles = np.asarray(angles, dtype=F32)
        return self.act_cast(np.cos(angles)), self.act_cast(np.sin(angles))

    def rotate(self, x, cos, sin, layout):
        """Rotate pairs of ``x`` (activation dtype) by per-pair ``cos``/``sin`` (activation dtype)."""
        x = self.act_cast(x)
        half = x.shape[-1] // 2
        if layout == "half":
            x_a, x_b = x[..., :half], x[..., half:]
        else:
            x_a, x_b = x[..., 0::2], x[..., 1::2]
        y_a = self.act_cast(self.act_cast(x_a * cos) - self.act_cast(x_b * sin))
        y_b = self.act_cast(self.act_cast(x_b * cos) + self.act_cast(x_a * sin))
        shape = np.broadcast_shapes(y_a.shape, y_b.shape)
        out = np.empty(shape[:-1] + (2 * half,), dtype=self.act)
        if layout == "half":
            out[..., :half], out[..., half:] = y_a, y_b
        else:
            out[..., 0::2], out[..., 1::2] = y_a, y_b
        return out

    def rotated_channels(self, head_dim, rotary_dim, rotated_slice, layout):
        """Channel indices that rotate, in the order the layout pairs them."""
        if rotated_slice == "last":
            return np.arange(head_dim - rotary_dim, head_dim)
        if rotated_slice == "first_pairs" and layout == "half":
            j = np.arange(rotary_dim // 2)
            return np.concatenate([j, head_dim // 2 + j])
        return np.arange(rotary_dim)

    def rope_pair_angles(self, positions, head_dim, rotary_dim, base, freq_denominator):
        denominator = rotary_dim if freq_denominator == "rotary_dim" else head_dim
        return self.angle_table(positions, self.inv_freq(denominator, base)[: rotary_dim // 2])

    def slopes_paper(self, num_heads, max_bias):
        """BLOOM's ``build_alibi_tensor``: integer powers of a float32 base."""
        closest = 2 ** int(math.floor(math.log2(num_heads)))
        base = F32(2.0 ** (-max_bias / closest))
        slopes = np.power(base, np.arange(1, closest + 1).astype(F32))
        if closest != num_heads:
            extra_base = F32(2.0 ** (-max_bias / (2 * closest)))
            remaining = min(closest, num_heads - closest)
            slopes = np.concatenate([slopes, np.power(extra_base, np.arange(1, 2 * remaining, 2).astype(F32))])
        return slopes.astype(F32)

    def slopes_mpt(self, num_heads, max_bias):
        """MPT's ``gen_slopes``: ``1 / 2**m`` for ``m = k * max_bias / N``, reordered."""
        n = 2 ** int(math.ceil(math.log2(num_heads)))
        m = np.arange(1, n + 1).astype(F32) * F32(max_bias / n)
        slopes = (F32(1.0) / np.power(F32(2.0), m)).astype(F32)
        if n != num_heads:
            slopes = np.concatenate([slopes[1::2], slopes[::2]])[:num_heads]
        return slopes

    def bias_product(self, slopes, linear):
        """``slope * distance`` in float32, shape (H, T, S)."""
        return slopes.astype(F32)[:, None, None] * linear.astype(F32)[None, :, :]

    def t5_relative(self, query_positions, key_positions):
        """``key - query`` (Hugging Face: ``memory_position - context_position``)."""
        return np.asarray(key_positions, dtype=np.int64)[None, :] - np.asarray(query_positions, dtype=np.int64)[:, None]

    def t5_log_ratio(self, n, max_exact, max_distance, num_log):
        """``log(n / max_exact) / log(max_distance / max_exact) * num_log``, float32."""
        ratio = n.astype(F32) / F32(max_exact)
        return np.log(ratio) / F32(math.log(max_distance / max_exact)) * F32(num_log)

    def t5_buckets(self, relative_position, bidirectional, num_buckets, max_distance):
        """Hugging Face ``_relative_position_bucket``."""
        relative_position = np.asarray(relative_position, dtype=np.int64)
        buckets = np.zeros(relative_position.shape, dtype=np.int64)
        if bidirectional:
            num_buckets //= 2
            buckets += (relative_position > 0).astype(np.int64) * num_buckets
            n = np.abs(relative_position)
        else:
            n = -np.minimum(relative_position, 0)
        max_exact = num_buckets // 2
        is_small = n < max_exact
        safe = np.where(is_small, max_exact, n)  # no log(0); those entries are not used
        large = max_exact + self.t5_log_ratio(safe, max_exact, max_distance, num_buckets - max_exact).astype(np.int64)
        large = np.minimum(large, num_buckets - 1)
        return buckets + np.where(is_small, n, large)

    def sinusoidal_frequencies(self, dim, base, freq_denominator):
        half = dim // 2
        if freq_denominator == "dim":  # the paper: 1 / base ** (2i / d), power form
            return (F32(1.0) / np.power(F32(base), np.arange(0, dim, 2).astype(F32) / F32(dim))).astype(F32)
        step = math.log(base) / max(half - 1, 1)  # fairseq: a Python float, then exp in float32
        return np.exp(np.arange(half).astype(F32) * F32(-step)).astype(F32)

    def sinusoidal_layout(self, sin, cos, layout):
        if layout == "concat":
            return np.concatenate([sin, cos], axis=-1)
        out = np.empty(sin.shape[:-1] + (2 * sin.shape[-1],), dtype=sin.dtype)
        out[..., 0::2], out[..., 1::2] = sin, cos
        return out

    def learned_rows(self, positions, position_offset):
        return np.asarray(positions, dtype=np.int64) + position_offset

    def dynamic_ntk_length(self, sequence_length, original_max_position_embeddings):
        return max(sequence_length, original_max_position_embeddings)

    def yarn_range(self, dim, base, l0, beta_fast, beta_slow, truncate, high_limit):
        """Hugging Face ``find_correction_range`` (Python floats)."""
        def correction_dim(rotations):
            return (dim * math.log(l0 / (rotations * 2 * math.pi))) / (2 * math.log(base))

        low, high = correction_dim(beta_fast), correction_dim(beta_slow)
        if truncate:
            low, high = math.floor(low), math.ceil(high)
        limit = dim - 1 if high_limit == "dim" else dim // 2 - 1
        return max(low, 0), min(high, limit)

    def mscale(self, scaling_factor, mscale):
        """YaRN ``get_mscale`` in float32."""
        if scaling_factor <= 1:
            return F32(1.0)
        return F32(0.1) * F32(mscale) * np.log(F32(scaling_factor)) + F32(1.0)

    def llama3_smooth(self, l0, wavelength, low_freq_factor, high_freq_factor):
        return (F32(l0) / wavelength - F32(low_freq_factor)) / F32(high_freq_factor - low_freq_factor)

    # -- RoPE --------------------------------------------------------------------------

    def rope_frequencies(self, dim, /, *, base=10_000.0):
        _check_dim(dim)
        _check_base(base)
        return self.inv_freq(dim, base)

    def rope_angles(self, positions, dim, /, *, base=10_000.0):
        _check_dim(dim)
        _check_base(base)
        _check_positions("positions", positions)
        return self.angle_table(positions, self.inv_freq(dim, base))

    def rope_cos_sin(self, positions, dim, /, *, base=10_000.0, layout="half"):
        _check_dim(dim)
        _check_base(base)
        _require(layout in ("half", "interleaved"), f"layout must be 'half' or 'interleaved', got {layout!r}")
        angles = self.angle_table(positions, self.inv_freq(dim, base))
        emb = np.concatenate([angles, angles], axis=-1) if layout == "half" else np.repeat(angles, 2, axis=-1)
        return self.cos_sin_of(emb)

    def apply_rotary(self, x, angles, /, *, layout="half"):
        _require(x.shape[-1] > 0 and x.shape[-1] % 2 == 0, f"x must have an even last dimension, got {x.shape}")
        cos, sin = self.cos_sin_of(np.asarray(angles).astype(F32))
        return self.rotate(x, cos, sin, layout)

    def apply_rope(self, x, positions, /, *, base=10_000.0, layout="half", rotary_dim=None, rotated_slice="first",
                   freq_denominator="rotary_dim", position_offset=0):
        head_dim = x.shape[-1]
        _require(head_dim > 0 and head_dim % 2 == 0, f"x must have an even last dimension, got {x.shape}")
        rotary_dim = head_dim if rotary_dim is None else rotary_dim
        _require(0 < rotary_dim <= head_dim and rotary_dim % 2 == 0,
                 f"rotary_dim must be a positive even integer <= {head_dim}, got rotary_dim={rotary_dim}")
        _check_positions("positions", positions)
        p = np.asarray(positions)
        p = p + (int(position_offset) if float(position_offset).is_integer() else position_offset)
        angles = self.rope_pair_angles(p, head_dim, rotary_dim, base, freq_denominator)
        cos, sin = self.cos_sin_of(angles)
        channels = self.rotated_channels(head_dim, rotary_dim, rotated_slice, layout)
        out = self.act_cast(x).copy()
        out[..., channels] = self.rotate(out[..., channels], cos, sin, layout)
        return out

    # -- sinusoidal, learned ---------------------------------------------------------------

    def sinusoidal_encoding(self, positions, dim, /, *, base=10_000.0, layout="interleaved", freq_denominator="dim",
                            position_offset=0):
        _check_dim(dim)
        omega = self.sinusoidal_frequencies(dim, base, freq_denominator)
        angles = self.angle_table(np.asarray(positions) + position_offset, omega)
        sin, cos = np.sin(angles), np.cos(angles)
        return self.act_cast(self.sinusoidal_layout(sin, cos, layout))

    def learned_position_embedding(self, table, positions, /, *, position_offset=0, padding_idx=None):
        rows = self.learned_rows(positions, position_offset)
        _require(np.all((rows >= 0) & (rows < table.shape[0])), "positions must index rows of table")
        out = table[rows]
        if padding_idx is not None:
            out[rows == padding_idx] = 0
        return out

    # -- ALiBi ---------------------------------------------------------------------------

    def alibi_slopes(self, num_heads, /, *, max_bias=8.0):
        _require(num_heads >= 1, f"num_heads must be a positive integer, got num_heads={num_heads}")
        if self.slopes == "mpt":
            return self.slopes_mpt(num_heads, max_bias)
        return self.slopes_paper(num_heads, max_bias)

    def alibi_bias(self, slopes, query_positions, key_positions, /, *, form="distance", causal=True, scale=1.0):
        _require(form in ("distance", "symmetric", "key_index", "last_key_anchored"), f"form unknown: {form!r}")
        q = np.asarray(query_positions, dtype=np.int64)
        k = np.asarray(key_positions, dtype=np.int64)
        relative = k[None, :] - q[:, None]  # (T, S)
        if form == "distance":
            linear = relative
        elif form == "symmetric":
            linear = -np.abs(relative)
        elif form == "key_index":
            linear = np.broadcast_to(k[None, :], relative.shape)
        else:
            linear = np.broadcast_to(k[None, :] - k.max(), relative.shape)
        bias = self.bias_product(np.asarray(slopes), linear)
        if scale != 1.0:
            bias = bias * F32(scale)
        if causal:
            bias = np.where(relative[None] > 0, F32(-np.inf), bias)
        return self.act_cast(bias)

    # -- T5 ------------------------------------------------------------------------------

    def t5_relative_bucket(self, relative_position, /, *, bidirectional=True, num_buckets=32, max_distance=128):
        _require(num_buckets >= 2, f"num_buckets must be at least 2, got num_buckets={num_buckets}")
        return self.t5_buckets(relative_position, bidirectional, num_buckets, max_distance)

    def t5_relative_bias(self, table, query_positions, key_positions, /, *, bidirectional=True, num_buckets=32,
                         max_distance=128):
        _require(table.shape[0] == num_buckets, f"table must have {num_buckets} rows, got {table.shape}")
        bucket = self.t5_buckets(self.t5_relative(query_positions, key_positions), bidirectional, num_buckets,
                                 max_distance)
        return np.moveaxis(table[bucket], -1, 0)  # (H, T, S)

    # -- RoPE scaling --------------------------------------------------------------------

    def linear_scaled_frequencies(self, dim, /, *, base=10_000.0, scaling_factor):
        _check_dim(dim)
        _check_factor(scaling_factor)
        return (self.inv_freq(dim, base) / F32(scaling_factor)).astype(F32)

    def dynamic_linear_frequencies(self, dim, /, *, base=10_000.0, scaling_factor=1.0,
                                   original_max_position_embeddings, sequence_length):
        _check_dim(dim)
        _check_length("sequence_length", sequence_length)
        s = max(F32(scaling_factor), F32(sequence_length) / F32(original_max_position_embeddings))
        return (self.inv_freq(dim, base) / s).astype(F32)

    def ntk_scaled_frequencies(self, dim, /, *, base=10_000.0, scaling_factor):
        _check_ntk_dim(dim)
        _check_factor(scaling_factor)
        scaled = F32(base) * np.power(F32(scaling_factor), F32(dim) / F32(dim - 2))
        return self.inv_freq(dim, scaled)

    def ntk_fixed_frequencies(self, dim, /, *, base=10_000.0, scaling_factor, mixed_b=None):
        _check_dim(dim)
        _require(mixed_b is None or mixed_b > 0, f"mixed_b must be None or > 0, got mixed_b={mixed_b}")
        s = F32(scaling_factor)
        if mixed_b is None:
            return (self.inv_freq(dim, F32(base) * s) / np.power(s, F32(2.0) / F32(dim))).astype(F32)
        k = np.arange(1, dim // 2 + 1).astype(F32)
        a = np.log(s) / np.power(F32(dim / 2), F32(mixed_b))
        return (self.inv_freq(dim, base) / np.exp(a * np.power(k, F32(mixed_b)))).astype(F32)

    def dynamic_ntk_alpha(self, scaling_factor, length, original_max_position_embeddings):
        """``s L / L0 - (s - 1)`` in float32 (``s`` rounded once, ``s - 1`` exact)."""
        s = F32(scaling_factor)
        return s * F32(length) / F32(original_max_position_embeddings) - (s - F32(1.0))

    def dynamic_ntk_exponent(self, dim):
        """The NTK exponent ``d / (d - 2)``, float32."""
        return F32(dim) / F32(dim - 2)

    def dynamic_ntk_base(self, base, alpha, dim):
        return F32(base) * np.power(alpha, self.dynamic_ntk_exponent(dim))

    def dynamic_ntk_frequencies(self, dim, /, *, base=10_000.0, scaling_factor, original_max_position_embeddings,
                                sequence_length):
        _check_ntk_dim(dim)
        _check_length("sequence_length", sequence_length)
        length = self.dynamic_ntk_length(sequence_length, original_max_position_embeddings)
        alpha = self.dynamic_ntk_alpha(scaling_factor, length, original_max_position_embeddings)
        return self.inv_freq(dim, self.dynamic_ntk_base(base, alpha, dim))

    def dynamic_ntk_sequence_length(self, positions, /, *, original_max_position_embeddings, cached_length=None,
                                    reset=True):
        """Hugging Face ``_dynamic_frequency_update``: grow past the cache, reset below the trained length."""
        _check_positions("positions", positions)
        l0 = original_max_position_embeddings
        cached = l0 if cached_length is None else cached_length
        _require(cached >= l0, f"cached_length must be >= {l0}, got cached_length={cached}")
        length = int(np.max(positions)) + 1
        if length > cached:
            return length
        return l0 if reset and length < l0 < cached else cached

    def yarn_correction_range(self, dim, /, *, base=10_000.0, original_max_position_embeddings, beta_fast=32.0,
                              beta_slow=1.0, truncate=True, high_limit="dim"):
        _check_dim(dim)
        _require(beta_fast > beta_slow > 0, f"beta_fast must be > beta_slow > 0, got {beta_fast}, {beta_slow}")
        _require(high_limit in ("dim", "half_dim"), f"high_limit must be 'dim' or 'half_dim', got {high_limit!r}")
        low, high = self.yarn_range(dim, base, original_max_position_embeddings, beta_fast, beta_slow, truncate,
                                    high_limit)
        return np.asarray(float(low)), np.asarray(float(high))

    def qwen_dynamic_ntk_frequencies(self, dim, /, *, base=10_000.0, original_max_position_embeddings,
                                     sequence_length):
        _check_ntk_dim(dim)
        _check_length("sequence_length", sequence_length)
        context = math.log(sequence_length / original_max_position_embeddings, 2) + 1
        alpha = max(2 ** math.ceil(context) - 1, 1)
        return self.inv_freq(dim, F32(base) * np.power(F32(alpha), F32(dim) / F32(dim - 2)))

    def yarn_frequencies(self, dim, /, *, base=10_000.0, scaling_factor, original_max_position_embeddings,
                         beta_fast=32.0, beta_slow=1.0, truncate=True, extrapolation_factor=1.0, high_limit="dim"):
        _check_dim(dim)
        _check_factor(scaling_factor)
        _require(extrapolation_factor >= 0, f"extrapolation_factor must be >= 0, got {extrapolation_factor}")
        pos_freqs = np.power(F32(base), self.exponents(dim))
        extrapolation = F32(1.0) / pos_freqs
        interpolation = F32(1.0) / (F32(scaling_factor) * pos_freqs)
        low, high = self.yarn_range(dim, base, original_max_position_embeddings, beta_fast, beta_slow, truncate,
                                    high_limit)
        if low == high:
            high += 0.001
        ramp = np.clip((np.arange(dim // 2).astype(F32) - F32(low)) / F32(high - low), F32(0), F32(1))
        mask = (F32(1.0) - ramp) * F32(extrapolation_factor)
        return (interpolation * (F32(1.0) - mask) + extrapolation * mask).astype(F32)

    def yarn_attention_factor(self, scaling_factor, /, *, mscale=1.0, mscale_all_dim=0.0, attention_factor=None):
        _require(scaling_factor > 0, f"scaling_factor must be > 0, got scaling_factor={scaling_factor}")
        _require(mscale >= 0 and mscale_all_dim >= 0, "mscale and mscale_all_dim must be >= 0")
        if attention_factor is not None:
            return np.asarray(F32(attention_factor))
        return np.asarray(self.mscale(scaling_factor, mscale) / self.mscale(scaling_factor, mscale_all_dim))

    def deepseek_softmax_scale(self, head_dim, scaling_factor, /, *, mscale_all_dim):
        _check_length("head_dim", head_dim)
        g = self.mscale(scaling_factor, mscale_all_dim)
        return np.asarray(g * g / np.sqrt(F32(head_dim)))

    def longrope_frequencies(self, dim, /, *, base=10_000.0, short_factor, long_factor,
                             original_max_position_embeddings, sequence_length):
        _check_dim(dim)
        for name, factors in (("short_factor", short_factor), ("long_factor", long_factor)):
            factors = np.asarray(factors)
            _require(factors.shape == (dim // 2,) and np.all(factors > 0),
                     f"{name} must hold dim // 2 = {dim // 2} positive factors, got shape {factors.shape}")
        factors = long_factor if sequence_length > original_max_position_embeddings else short_factor
        ext = np.asarray(factors).astype(F32)
        return (F32(1.0) / (ext * np.power(F32(base), self.exponents(dim)))).astype(F32)

    def longrope_attention_factor(self, scaling_factor, /, *, original_max_position_embeddings):
        _check_length("original_max_position_embeddings", original_max_position_embeddings, minimum=2)
        if scaling_factor <= 1:
            return np.asarray(F32(1.0))
        s, l0 = F32(scaling_factor), F32(original_max_position_embeddings)
        return np.asarray(np.sqrt(F32(1.0) + np.log(s) / np.log(l0)))

    def llama3_scaled_frequencies(self, dim, /, *, base=500_000.0, scaling_factor=8.0, low_freq_factor=1.0,
                                  high_freq_factor=4.0, original_max_position_embeddings=8192):
        _check_dim(dim)
        _check_factor(scaling_factor)
        _require(high_freq_factor >= low_freq_factor > 0,
                 f"high_freq_factor must be >= low_freq_factor > 0, got {high_freq_factor}, {low_freq_factor}")
        inv_freq = self.inv_freq(dim, base)
        l0 = original_max_position_embeddings
        wavelength = F32(2 * math.pi) / inv_freq
        low_wavelength = F32(l0 / low_freq_factor)
        high_wavelength = F32(l0 / high_freq_factor)
        out = np.where(wavelength > low_wavelength, inv_freq / F32(scaling_factor), inv_freq)
        if high_freq_factor > low_freq_factor:
            smooth = self.llama3_smooth(l0, wavelength, low_freq_factor, high_freq_factor)
            smoothed = (F32(1.0) - smooth) * out / F32(scaling_factor) + smooth * out
            medium = ~(wavelength < high_wavelength) & ~(wavelength > low_wavelength)
            out = np.where(medium, smoothed, out)
        else:  # the blend collapses to the single wavelength l0 / low_freq_factor: theta / s there
            out = np.where(wavelength == low_wavelength, inv_freq / F32(scaling_factor), out)
        return out.astype(F32)


    # -- xPos --------------------------------------------------------------------------

    def xpos_zeta(self, dim):
        """``(arange(0, d, 2) + 0.4 d) / (1.4 d)`` in float32."""
        return ((np.arange(0, dim, 2).astype(F32) + F32(0.4 * dim)) / F32(1.4 * dim)).astype(F32)

    def xpos_shift(self, length, centering):
        """The position of the scale's centre: ``ceil(N/2)`` (torchscale), ``N // 2`` (lucidrains, flash-attn)."""
        return {"ceil_half": -(-length // 2), "floor_half": length // 2, "none": 0}[centering]

    def xpos_power(self, positions, length, centering, scale_base, downscale):
        """The exponent ``(p - shift) / B`` in float32, negated for keys."""
        power = (np.asarray(positions, dtype=np.int64) - self.xpos_shift(length, centering)).astype(F32) / F32(
            scale_base)
        return -power if downscale else power

    def xpos_table(self, positions, dim, scale_base, centering, sequence_length, downscale):
        positions = np.asarray(positions, dtype=np.int64)
        _check_positions("positions", positions)
        _require(scale_base > 0, f"scale_base must be > 0, got scale_base={scale_base}")
        _require(centering in ("ceil_half", "floor_half", "none"), f"centering unknown: {centering!r}")
        largest = int(positions.max()) if positions.size else -1
        length = largest + 1 if sequence_length is None else sequence_length
        _require(largest < length, f"sequence_length must exceed every position, got sequence_length={length}")
        power = self.xpos_power(positions, length, centering, scale_base, downscale)
        with np.errstate(over="ignore"):
            scale = np.power(self.xpos_zeta(dim), power[..., None]).astype(F32)  # (..., dim/2)
        _require(np.all(np.isfinite(scale)) and np.all(scale > 0), "positions are too far from the centre")
        return scale

    def xpos_scales(self, positions, dim, /, *, scale_base=512.0, centering="ceil_half", sequence_length=None,
                    downscale=False):
        _check_dim(dim)
        return self.xpos_table(positions, dim, scale_base, centering, sequence_length, downscale)

    def xpos_cos_sin(self, angles, scale):
        """cos and sin times the scale in float32, then one cast (torchscale, flash-attn)."""
        angles = np.asarray(angles, dtype=F32)
        return self.act_cast(np.cos(angles) * scale), self.act_cast(np.sin(angles) * scale)

    def xpos_rotation_positions(self, positions, length, centering):
        """Positions the rotation uses: the uncentred ones."""
        return positions

    def apply_xpos(self, x, positions, /, *, base=10_000.0, scale_base=512.0, layout="interleaved", downscale=False,
                   centering="ceil_half", sequence_length=None):
        head_dim = x.shape[-1]
        _require(head_dim > 0 and head_dim % 2 == 0, f"x must have an even last dimension, got {x.shape}")
        _require(layout in ("half", "interleaved"), f"layout must be 'half' or 'interleaved', got {layout!r}")
        p = np.asarray(positions, dtype=np.int64)
        _require(np.broadcast_shapes(p.shape, x.shape[:-1]) == x.shape[:-1], "positions must broadcast to x")
        scale = self.xpos_table(p, head_dim, scale_base, centering, sequence_length, downscale)
        length = int(p.max()) + 1 if sequence_length is None else sequence_length
        angles = self.angle_table(self.xpos_rotation_positions(p, length, centering), self.inv_freq(head_dim, base))
        cos, sin = self.xpos_cos_sin(angles, scale)
        return self.rotate(x, cos, sin, layout)

    # -- M-RoPE, axial RoPE, 2-D sine-cosine -----------------------------------------------

    def mrope_axis_of_pair(self, section, half, interleaved):
        """Coordinate of each pair: ``[T]*s0 + [H]*s1 + [W]*s2``, or Qwen3-VL's ``T H W T H W ... T``."""
        if not interleaved:
            return np.repeat(np.arange(3), section)
        axis = np.zeros(half, dtype=np.int64)
        i = np.arange(half)
        axis[(i % 3 == 1) & (i < 3 * section[1])] = 1
        axis[(i % 3 == 2) & (i < 3 * section[2])] = 2
        return axis

    def mrope_pair_angles(self, positions, dim, base, mrope_section, interleaved):
        positions = np.asarray(positions)
        _check_positions("positions", positions)
        _require(positions.shape[0] == 3, f"positions must have 3 rows, got shape {positions.shape}")
        section = [int(s) for s in mrope_section]
        _require(sum(section) == dim // 2, f"mrope_section must sum to {dim // 2}, got {section}")
        axis = self.mrope_axis_of_pair(section, dim // 2, interleaved)
        _require(np.array_equal(np.bincount(axis, minlength=3), section), f"mrope_section {section} does not fit")
        rows = self.angle_table(positions, self.inv_freq(dim, base))  # (3, ..., dim/2): every row, float32
        return np.choose(axis, list(rows)).astype(F32)  # pair i from row axis[i]

    def mrope_angles(self, positions, dim, /, *, base=10_000.0, mrope_section, section_order="blocks"):
        interleaved = section_order == "round_robin"
        _check_dim(dim)
        return self.mrope_pair_angles(positions, dim, base, mrope_section, interleaved)

    def apply_mrope(self, x, positions, /, *, base=10_000.0, mrope_section, section_order="blocks", layout="half"):
        interleaved = section_order == "round_robin"
        head_dim = x.shape[-1]
        _require(head_dim > 0 and head_dim % 2 == 0, f"x must have an even last dimension, got {x.shape}")
        _require(layout in ("half", "interleaved"), f"layout must be 'half' or 'interleaved', got {layout!r}")
        np.broadcast_shapes(np.shape(positions)[1:], x.shape[:-1])  # ValueError unless they broadcast
        cos, sin = self.cos_sin_of(self.mrope_pair_angles(positions, head_dim, base, mrope_section, interleaved))
        return self.rotate(x, cos, sin, layout)

    def axial_coordinates(self, positions_2d, axis_order):
        """The coordinates of the first and the second block of pairs."""
        y, x = positions_2d[0], positions_2d[1]
        return (x, y) if axis_order == "xy" else (y, x)

    def axial_bands(self, dim, base, frequencies):
        """timm ``freq_bands``: ``1 / base ** (k / (dim/4))`` per axis; Pixtral: even and odd of the ``dim`` ladder."""
        if frequencies == "per_axis":
            bands = self.inv_freq(dim // 2, base)
            return bands, bands
        theta = self.inv_freq(dim, base)
        return theta[0::2], theta[1::2]

    def axial_pair_angles(self, positions_2d, dim, base, axis_order, frequencies):
        positions_2d = np.asarray(positions_2d)
        _check_positions("positions_2d", positions_2d)
        _require(positions_2d.shape[0] == 2, f"positions_2d must have 2 rows, got shape {positions_2d.shape}")
        _require(dim % 4 == 0 and dim > 0, f"dim must be a positive multiple of 4, got dim={dim}")
        first, second = self.axial_coordinates(positions_2d, axis_order)
        bands_a, bands_b = self.axial_bands(dim, base, frequencies)
        return np.concatenate([self.angle_table(first, bands_a), self.angle_table(second, bands_b)], axis=-1)

    def axial_rope_angles(self, positions_2d, dim, /, *, base=10_000.0, axis_order="xy", frequencies="per_axis"):
        return self.axial_pair_angles(positions_2d, dim, base, axis_order, frequencies)

    def apply_axial_rope(self, x, positions_2d, /, *, base=10_000.0, axis_order="xy", frequencies="per_axis",
                         layout="interleaved"):
        _require(layout in ("half", "interleaved"), f"layout must be 'half' or 'interleaved', got {layout!r}")
        np.broadcast_shapes(np.shape(positions_2d)[1:], x.shape[:-1])  # ValueError unless they broadcast
        angles = self.axial_pair_angles(positions_2d, x.shape[-1], base, axis_order, frequencies)
        cos, sin = self.cos_sin_of(angles)
        return self.rotate(x, cos, sin, layout)

    def sincos_2d_coordinates(self, rows, cols, axis_order):
        """The coordinates of the first and the second channel block: column first (MAE) or row first (timm)."""
        return (cols, rows) if axis_order == "xy" else (rows, cols)

    def sincos_2d_blocks(self, sin_a, cos_a, sin_b, cos_b, grouping):
        if grouping == "axis":  # MAE, MoCo v3
            return np.concatenate([sin_a, cos_a, sin_b, cos_b], axis=-1)
        return np.concatenate([sin_a, sin_b, cos_a, cos_b], axis=-1)  # timm's default

    def sincos_2d_encoding(self, grid_shape, dim, /, *, base=10_000.0, axis_order="xy", grouping="axis",
                           class_token=False):
        height, width = (int(v) for v in grid_shape)
        _require(height >= 1 and width >= 1, f"grid_shape must be positive, got {grid_shape}")
        _require(dim % 4 == 0 and dim > 0, f"dim must be a positive multiple of 4, got dim={dim}")
        rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")  # row-major tokens
        a, b = self.sincos_2d_coordinates(rows.reshape(-1), cols.reshape(-1), axis_order)
        bands = self.inv_freq(dim // 2, base)  # (dim/4,)
        angles_a, angles_b = self.angle_table(a, bands), self.angle_table(b, bands)
        table = self.sincos_2d_blocks(np.sin(angles_a), np.cos(angles_a), np.sin(angles_b), np.cos(angles_b),
                                      grouping)
        if class_token:
            table = np.concatenate([np.zeros((1, dim), dtype=F32), table])
        return self.act_cast(table)

    # -- Transformer-XL, Sandwich, KERPLE, FIRE ----------------------------------------------

    def transformer_xl_distances(self, distances):
        """The distances the rows are built for, in the order asked (``arange(klen - 1, -1, -1)``)."""
        return distances

    def transformer_xl_relative_encoding(self, distances, dim, /, *, base=10_000.0, max_distance=None):
        _check_dim(dim)
        _check_positions("distances", distances)
        distances = np.asarray(distances)
        if max_distance is not None:
            distances = np.minimum(distances, max_distance)  # clamp_len
        angles = self.angle_table(self.transformer_xl_distances(distances), self.inv_freq(dim, base))
        return self.act_cast(np.concatenate([np.sin(angles), np.cos(angles)], axis=-1))

    def relative_distance(self, query_positions, key_positions, bidirectional):
        """Query minus key in float32 (exact integers), future keys 0 unless bidirectional."""
        delta = (np.asarray(query_positions, dtype=np.int64)[:, None]
                 - np.asarray(key_positions, dtype=np.int64)[None, :])
        return (np.abs(delta) if bidirectional else np.maximum(delta, 0)).astype(F32)

    def sandwich_first_frequency(self, first_frequency):
        return first_frequency

    def sandwich_bias(self, query_positions, key_positions, /, *, dim, num_heads, base=10_000.0, first_frequency=1,
                      bidirectional=False):
        _check_dim(dim)
        _require(num_heads >= 1, f"num_heads must be a positive integer, got num_heads={num_heads}")
        k0 = self.sandwich_first_frequency(first_frequency)
        exponents = F32(2.0) * np.arange(k0, k0 + dim // 2).astype(F32) / F32(dim)
        inv_freq = (F32(1.0) / np.power(F32(base), exponents)).astype(F32)  # NeMo: 1 / base ** (2k / d)
        distance = self.relative_distance(query_positions, key_positions, bidirectional)
        kernel = np.cos(distance[..., None] * inv_freq).sum(axis=-1, dtype=F32) - F32(dim // 2)  # (T, S)
        scales = np.arange(1, num_heads + 1).astype(F32) * F32(8.0) / F32(num_heads)  # 8h/H
        return self.act_cast(kernel[None] / scales[:, None, None])

    def _kerple_heads(self, first, second, names):
        first, second = np.asarray(first).astype(F32), np.asarray(second).astype(F32)
        _require(first.ndim == 1 and first.shape == second.shape and first.size > 0,
                 f"{names[0]} and {names[1]} must be 1-D with one value per head")
        return first[:, None, None], second[:, None, None]

    def kerple_log_bias(self, query_positions, key_positions, /, *, r1, r2, bidirectional=False):
        r1, r2 = self._kerple_heads(r1, r2, ("r1", "r2"))
        _require(np.all(r1 >= 0) and np.all(r2 >= 0), "r1 and r2 must be >= 0")
        distance = self.relative_distance(query_positions, key_positions, bidirectional)
        return self.act_cast(-(r1 * np.log(F32(1.0) + r2 * distance)))

    def kerple_power_bias(self, query_positions, key_positions, /, *, a, p, bidirectional=False):
        a, p = self._kerple_heads(a, p, ("a", "p"))
        _require(np.all(a >= 0) and np.all((p > 0) & (p <= 2)), "a must be >= 0 and p in (0, 2]")
        distance = self.relative_distance(query_positions, key_positions, bidirectional)
        return self.act_cast(-(a * np.power(distance, p)))

    def fire_normalized_distance(self, query_positions, key_positions, /, *, c=0.1, threshold=512.0, eps=1e-6):
        _require(eps > 0, f"eps must be > 0, got eps={eps}")
        _require(threshold >= 0, f"threshold must be >= 0, got threshold={threshold}")
        return self.act_cast(self.fire_z(query_positions, key_positions, c, threshold, eps))

    def fire_normaliser_position(self, q, threshold):
        """FIRE's progressive interpolation: ``max(i, L)``."""
        return np.maximum(q, F32(threshold))

    def fire_z(self, query_positions, key_positions, c, threshold, eps):
        """The normalised distance in float32."""
        def psi(x):  # ln(|c x| + 1), as the code computes it
            return np.log(np.abs(F32(c) * x) + F32(1.0))

        q = np.asarray(query_positions, dtype=np.int64)
        distance = (q[:, None] - np.asarray(key_positions, dtype=np.int64)[None, :]).astype(F32)
        normaliser = psi(self.fire_normaliser_position(q.astype(F32), threshold))[:, None]
        return psi(distance) / (normaliser + F32(eps))

    def fire_bias(self, query_positions, key_positions, w1, b1, w2, b2, /, *, c=0.1, threshold=512.0, eps=1e-6):
        _require(w2.shape[0] == w1.shape[1], f"w2 must have shape (K, H) with K = {w1.shape[1]}, got {w2.shape}")
        z = self.fire_z(query_positions, key_positions, c, threshold, eps)
        hidden = np.maximum(z[..., None] * w1[0].astype(F32) + b1.astype(F32), F32(0.0))
        return self.act_cast(np.moveaxis(hidden @ w2.astype(F32) + b2.astype(F32), -1, 0))

    # -- sums of products -----------------------------------------------------------------

    def contract(self, subscripts, *operands):
        """``einsum`` of activation-dtype operands with float32 accumulation, one cast."""
        return self.act_cast(np.einsum(subscripts, *(np.asarray(a).astype(F32) for a in operands)))

    def shaw_relative_logits(self, q, k, relative_keys, /):
        _require(np.shape(relative_keys) == (np.shape(q)[-2], np.shape(k)[-2], np.shape(q)[-1]),
                 f"relative_keys must have shape (T, S, D), got {np.shape(relative_keys)}")
        content = np.einsum("...td,...sd->...ts", q.astype(F32), k.astype(F32))
        position = np.einsum("...td,tsd->...ts", q.astype(F32), relative_keys.astype(F32))
        return self.act_cast(content + position)

    def shaw_relative_values(self, weights, v, relative_values, /):
        _require(np.shape(v)[-2] == np.shape(weights)[-1], f"v must have S rows, got {np.shape(v)}")
        _require(np.shape(relative_values)[:2] == np.shape(weights)[-2:],
                 f"relative_values must have shape (T, S, D), got {np.shape(relative_values)}")
        values = self.act_cast(v[..., None, :, :] + relative_values)  # (..., T, S, D), summed in the model dtype
        return self.contract("...ts,...tsd->...td", weights, values)

    def transformer_xl_scores(self, q, k, r, u, v, /, *, scale=None, future_keys="mask"):
        _require(future_keys in ("mask", "zero"), f"future_keys must be 'mask' or 'zero', got {future_keys!r}")
        t, s, d = q.shape[-2], k.shape[-2], q.shape[-1]
        _require(np.shape(r) == (q.shape[-3], s, d), f"r must have shape (H, S, D), got {np.shape(r)}")
        scale = 1.0 / math.sqrt(d) if scale is None else scale
        qu = self.act_cast(q + u[:, None, :]).astype(F32)
        qv = self.act_cast(q + v[:, None, :]).astype(F32)
        content = np.einsum("...htd,...hsd->...hts", qu, k.astype(F32))
        by_row = np.einsum("...htd,hrd->...htr", qv, r.astype(F32))
        delta = (s - t) + np.arange(t)[:, None] - np.arange(s)[None, :]
        causal = delta >= 0
        position = np.take_along_axis(by_row, np.broadcast_to(np.where(causal, delta, 0), by_row.shape), axis=-1)
        scores = F32(scale) * (content + np.where(causal, position, F32(0.0)))
        if future_keys == "mask":
            scores = np.where(causal, scores, F32(-np.inf))
        return self.act_cast(scores)

    def deberta_rows(self, relative_position, span):
        """Row of the relative table: ``clip(query - key + span)``."""
        return np.clip(-relative_position + span, 0, 2 * span - 1)

    def deberta_relative_scores(self, q, k, pos_key, pos_query, query_positions, key_positions, /, *, bucket_size,
                                max_position, c2p=True, p2c=True):
        from posref.relative.deberta import _deberta_buckets

        _require(not (c2p and pos_key is None), "pos_key must be given when c2p=True", TypeError)
        _require(not (p2c and pos_query is None), "pos_query must be given when p2c=True", TypeError)
        span = max_position if bucket_size is None else bucket_size
        d = q.shape[-1]
        for name, table in (("pos_key", pos_key), ("pos_query", pos_query)):
            _require(table is None or table.shape == (q.shape[-3], 2 * span, d),
                     f"{name} must have shape (H, 2*span, D), got {None if table is None else table.shape}")
        relative = (np.asarray(key_positions, dtype=np.int64)[None, :]
                    - np.asarray(query_positions, dtype=np.int64)[:, None])
        if bucket_size is not None:
            relative = _deberta_buckets(relative, bucket_size, max_position)
        row = self.deberta_rows(relative, span)
        q32, k32 = q.astype(F32), k.astype(F32)
        scores = np.einsum("...htd,...hsd->...hts", q32, k32)
        if c2p:
            c2p_all = np.einsum("...htd,hrd->...htr", q32, pos_key.astype(F32))
            scores = scores + np.take_along_axis(c2p_all, np.broadcast_to(row, scores.shape), axis=-1)
        if p2c:
            p2c_all = np.einsum("...hsd,hrd->...hsr", k32, pos_query.astype(F32))
            index = np.broadcast_to(row.T, (*scores.shape[:-2], row.shape[1], row.shape[0]))
            scores = scores + np.swapaxes(np.take_along_axis(p2c_all, index, axis=-1), -1, -2)
        divisor = np.sqrt(F32(d * (1 + int(c2p) + int(p2c))))
        return self.act_cast(scores / divisor)

    def peg_kernel(self, weight):
        """``(k, k, C)`` taps of a depthwise ``(C, 1, k, k)`` weight, applied as a cross-correlation."""
        return weight[:, 0].transpose(1, 2, 0)

    def peg(self, tokens, weight, bias, /, *, grid_shape, class_token=False):
        k = weight.shape[-1]
        _require(weight.ndim == 4 and k % 2 == 1, f"weight must have shape (C, 1, k, k) with k odd, got {weight.shape}")
        rows, cols = (int(n) for n in grid_shape)
        batch, _, channels = tokens.shape
        start = int(class_token)
        grid = tokens[:, start:, :].reshape(batch, rows, cols, channels).astype(F32)
        p = k // 2
        padded = np.pad(grid, ((0, 0), (p, p), (p, p), (0, 0)))
        kernel = self.peg_kernel(weight).astype(F32)
        conv = np.broadcast_to(bias.astype(F32), grid.shape).copy()
        for a in range(k):
            for b in range(k):
                conv = conv + kernel[a, b] * padded[:, a:a + rows, b:b + cols, :]
        out = np.array(tokens, copy=True)
        residual = tokens[:, start:, :] + self.act_cast(conv).reshape(batch, rows * cols, channels)
        out[:, start:, :] = self.act_cast(residual)
        return out

    def fourier_harmonics(self, num_frequencies):
        """Harmonics ``k = 1..K`` in float32."""
        return np.arange(1, num_frequencies + 1, dtype=F32)

    def fourier_features(self, positions, num_frequencies, /, *, period, include_sine=True):
        _require(period > 0, f"period must be > 0, got period={period}")
        p = np.asarray(positions).astype(F32)[..., None]
        phi = F32(2 * np.pi) * (p * self.fourier_harmonics(num_frequencies)) / F32(period)
        parts = [np.cos(phi)] + ([np.sin(phi)] if include_sine else [])
        return self.act_cast(np.concatenate(parts, axis=-1))

    def attention_scale(self, d, scale):
        return 1.0 / math.sqrt(d) if scale is None else scale

    def attention(self, q, k, v, /, *, bias=None, causal=False, query_positions=None, key_positions=None,
                  relative_keys=None, relative_values=None, scale=None, fully_masked="raise", return_weights=False):
        _require(q.shape[-1] == k.shape[-1] and k.shape[-2] == v.shape[-2], "k must match q and v")
        t, s, d = q.shape[-2], k.shape[-2], q.shape[-1]
        q32 = q.astype(F32)
        logits = np.einsum("...td,...sd->...ts", q32, k.astype(F32))
        if relative_keys is not None:
            logits = logits + np.einsum("...td,tsd->...ts", q32, relative_keys.astype(F32))
        logits = self.act_cast(self.act_cast(logits) * self.act.type(self.attention_scale(d, scale)))
        visible = np.ones((t, s), dtype=bool)
        if causal:
            qp = np.arange(s - t, s) if query_positions is None else np.asarray(query_positions)
            kp = np.arange(s) if key_positions is None else np.asarray(key_positions)
            visible = kp[None, :] <= qp[:, None]
        if bias is not None:
            visible = visible & ~np.isneginf(bias.astype(F32))
            logits = self.act_cast(logits + np.where(np.isneginf(bias), self.act.type(0), bias))
        masked = np.where(visible, logits.astype(F32), F32(-np.inf))
        e = np.exp(masked - masked.max(axis=-1, keepdims=True))
        weights = self.act_cast(e / e.sum(axis=-1, keepdims=True)).astype(F32)
        out = np.einsum("...ts,...sd->...td", weights, v.astype(F32))
        if relative_values is not None:
            out = out + np.einsum("...ts,tsd->...td", weights, relative_values.astype(F32))
        return self.act_cast(out)

    def cope_gate_mask(self, t, s):
        """Keys at or before each of the last ``t`` of ``s`` positions."""
        return np.arange(s)[None, :] <= (s - t) + np.arange(t)[:, None]

    def cope_p(self, logits):
        logits = np.asarray(logits).astype(F32)
        _require(logits.shape[-2] <= logits.shape[-1], f"logits must have T <= S, got shape {logits.shape}")
        causal = self.cope_gate_mask(*logits.shape[-2:])
        gates = np.where(causal, F32(1.0) / (F32(1.0) + np.exp(-np.where(causal, logits, F32(0.0)))), F32(0.0))
        return np.flip(np.cumsum(np.flip(gates, axis=-1), axis=-1, dtype=F32), axis=-1)

    def cope_positions(self, logits, /):
        return self.act_cast(self.cope_p(logits))

    def cope_bias(self, q, position_embeddings, logits, /):
        rows, d = position_embeddings.shape
        _require(q.shape[-1] == d, f"q must have last dimension {d}, got shape {q.shape}")
        _require(np.shape(logits)[:-1] == q.shape[:-1], f"logits must have shape (..., T, S), got {np.shape(logits)}")
        p = np.minimum(self.cope_p(logits), F32(rows - 1))
        by_position = q.astype(F32) @ position_embeddings.astype(F32).T
        floor = np.floor(p)
        w = p - floor
        low = np.take_along_axis(by_position, floor.astype(np.int64), axis=-1)
        high = np.take_along_axis(by_position, np.ceil(p).astype(np.int64), axis=-1)
        return self.act_cast((F32(1.0) - w) * low + w * high)

    def fope_pad_sin(self, pad_sin):
        return pad_sin

    def apply_fope(self, x, positions, sin_coef, cos_coef, /, *, base=10_000.0, max_sequence_length, floor_ratio=1.0,
                   pad_sin=1.0, fourier_dim=None, position_offset=0):
        head_dim = x.shape[-1]
        theta = self.inv_freq(fourier_dim or head_dim, base)
        theta = theta[theta >= F32(2 * np.pi / max_sequence_length * floor_ratio)]
        _require(sin_coef.shape[-2] == theta.shape[0],
                 f"sin_coef and cos_coef must have {theta.shape[0]} rows, got shape {sin_coef.shape}")
        p = np.broadcast_to(np.asarray(positions).astype(F32) + F32(position_offset), x.shape[:-1])
        phi = p[..., None] * theta
        pattern = "...k,km->...m" if sin_coef.ndim == 2 else "...htk,hkm->...htm"
        sin_f = np.einsum(pattern, np.sin(phi), sin_coef.astype(F32))
        cos_f = np.einsum(pattern, np.cos(phi), cos_coef.astype(F32))
        pad = x.shape[:-1] + (head_dim // 2 - sin_coef.shape[-1],)
        sin_f = np.concatenate([sin_f, np.full(pad, self.fope_pad_sin(pad_sin), dtype=F32)], axis=-1)
        cos_f = np.concatenate([cos_f, np.ones(pad, dtype=F32)], axis=-1)
        return self.rotate(x, self.act_cast(cos_f), self.act_cast(sin_f), "half")

    # -- NoPE layers' temperature (Llama 4) ----------------------------------------------------

    def temperature_steps(self, positions, floor_scale):
        """Hugging Face's step index: ``floor((positions.float() + 1) / floor_scale)`` in float32."""
        return np.floor((np.asarray(positions).astype(F32) + F32(1.0)) / F32(floor_scale))

    def nope_attention_temperature(self, positions, /, *, floor_scale=8192, attn_scale=0.1):
        _require(np.all(np.asarray(positions) >= 0), "positions must be non-negative")
        _require(float(floor_scale).is_integer(), f"floor_scale must be an integer, got {floor_scale!r}", TypeError)
        _require(floor_scale >= 1, f"floor_scale must be >= 1, got {floor_scale}")
        steps = self.temperature_steps(positions, floor_scale)
        return self.act_cast(np.log1p(steps) * F32(attn_scale) + F32(1.0))


class ExpFormFrequencies(Correct):
    """Frequencies as ``exp(-(2i/d) * ln base)`` in float32 (the exp form of JAX and Flax ports)."""

    targets = ("rope_frequencies", "rope_angles", "rope_cos_sin", "apply_rope", "apply_xpos", "mrope_angles",
               "apply_mrope", "axial_rope_angles", "apply_axial_rope", "sincos_2d_encoding",
               "transformer_xl_relative_encoding")

    def inv_freq(self, dim, base):
        return np.exp(self.exponents(dim) * -np.log(self.base_value(base))).astype(F32)


class ComplexRotation(Correct):
    """Meta's Llama code: ``torch.polar`` in complex64, ``x.float()`` times it, one cast at the end.

    cos/sin are never rounded to the activation dtype and the rotation runs
    in float32; only the result is cast.
    """

    targets = ("apply_rotary", "apply_rope", "apply_xpos", "apply_mrope", "apply_axial_rope")

    def cos_sin_of(self, angles):
        angles = np.asarray(angles, dtype=F32)
        return np.cos(angles), np.sin(angles)

    def rotate(self, x, cos, sin, layout):
        x = np.asarray(x).astype(F32)
        half = x.shape[-1] // 2
        pairs = (x[..., :half], x[..., half:]) if layout == "half" else (x[..., 0::2], x[..., 1::2])
        z = (pairs[0] + 1j * pairs[1]).astype(np.complex64) * (cos + 1j * sin).astype(np.complex64)
        out = np.empty(z.shape[:-1] + (2 * half,), dtype=F32)
        if layout == "half":
            out[..., :half], out[..., half:] = z.real, z.imag
        else:
            out[..., 0::2], out[..., 1::2] = z.real, z.imag
        return self.act_cast(out)


class Float32KernelRotation(Correct):
    """flash-attn and vLLM kernels: cos/sin cached in the activation dtype, the arithmetic in float32 registers."""

    targets = ("apply_rotary", "apply_rope", "apply_xpos", "apply_mrope", "apply_axial_rope")

    def rotate(self, x, cos, sin, layout):
        exact = Correct("float32")  # the same pairing, every operation in float32
        return self.act_cast(exact.rotate(np.asarray(x).astype(F32), cos.astype(F32), sin.astype(F32), layout))


class Float32CorrectionRange(Correct):
    """keras-hub: the YaRN correction range itself computed in float32 tensors, not Python floats."""

    targets = ("yarn_frequencies", "yarn_correction_range")

    def yarn_range(self, dim, base, l0, beta_fast, beta_slow, truncate, high_limit):
        def correction_dim(rotations):
            ratio = F32(l0) / (F32(rotations) * F32(2.0) * F32(np.pi))
            return (F32(dim) * np.log(ratio)) / (F32(2.0) * np.log(F32(base)))

        low, high = correction_dim(beta_fast), correction_dim(beta_slow)
        if truncate:
            low, high = np.floor(low), np.ceil(high)
        limit = dim - 1 if high_limit == "dim" else dim // 2 - 1
        return float(max(low, F32(0.0))), float(min(high, F32(limit)))


class HuggingFaceDynamicNtk(Correct):
    """Hugging Face ``_compute_dynamic_ntk_parameters`` with a tensor sequence length.

    ``seq_len = torch.max(position_ids) + 1`` is an integer tensor, so
    ``factor * seq_len / max_position_embeddings`` is float32 (the factor
    rounded to float32, the product, the quotient), ``factor - 1`` is a
    Python float rounded to float32 when it is subtracted, and the
    difference ``alpha`` (near 1 just above ``L0``, from terms near ``s``)
    carries the roundings of the terms; then ``base * alpha ** (dim /
    (dim - 2))`` and ``1 / base ** (arange(0, dim, 2) / dim)`` in float32.
    """

    targets = ("dynamic_ntk_frequencies",)

    def dynamic_ntk_alpha(self, scaling_factor, length, original_max_position_embeddings):
        ratio = F32(scaling_factor) * np.int64(length).astype(F32) / F32(original_max_position_embeddings)
        return (ratio - F32(scaling_factor - 1)).astype(F32)

    def dynamic_ntk_exponent(self, dim):
        return F32(dim / (dim - 2))  # a Python float exponent, applied to a float32 tensor


def _implemented(cls):
    """The spec functions ``cls`` implements: its methods named after a catalogue entry."""
    import posref

    return tuple(f.name for f in posref.spec_functions() if callable(getattr(cls, f.name, None)))


#: Spec functions every instance implements, found by name: a method called like a
#: catalogue entry is that function's low-precision implementation.
FUNCTIONS = Correct.targets = _implemented(Correct)

class MptSlopes(Correct):
    """ALiBi slopes as MPT's ``gen_slopes`` computes them: ``1 / 2**m`` with ``m = arange(1, N + 1) * B / N``."""

    targets = ("alibi_slopes",)

    def __init__(self, dtype):
        super().__init__(dtype, slopes="mpt")


#: Correct implementations that compute differently from :class:`Correct`; each must pass too.
VARIANTS = (Correct, ExpFormFrequencies, ComplexRotation, Float32KernelRotation, Float32CorrectionRange,
            HuggingFaceDynamicNtk, MptSlopes)


def make(dtype):
    """The correct implementation computing in ``dtype`` (float32, float16 or bfloat16)."""
    return Correct(dtype)
