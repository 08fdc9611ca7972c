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
* RoPE-scaling tables are float32 throughout.

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

#: Spec functions every instance implements.
FUNCTIONS = (
    "rope_frequencies", "rope_angles", "rope_cos_sin", "apply_rotary", "apply_rope",
    "sinusoidal_encoding", "learned_position_embedding",
    "alibi_slopes", "alibi_bias", "t5_relative_bucket", "t5_relative_bias",
    "linear_scaled_frequencies", "dynamic_linear_frequencies", "ntk_scaled_frequencies",
    "ntk_fixed_frequencies", "dynamic_ntk_frequencies", "qwen_dynamic_ntk_frequencies",
    "dynamic_ntk_sequence_length", "yarn_correction_range", "yarn_frequencies", "yarn_attention_factor",
    "llama3_scaled_frequencies", "longrope_frequencies", "longrope_attention_factor", "deepseek_softmax_scale",
)


def _require(condition, message):
    if not condition:
        raise ValueError(message)


def _check_dim(dim):
    _require(isinstance(dim, (int, np.integer)) and dim > 0 and dim % 2 == 0,
             f"dim must be a positive even integer, got dim={dim}")


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

    #: Spec functions whose result this class changes (all, for the correct one).
    targets = FUNCTIONS

    def __init__(self, dtype):
        self.dtype = dtype
        self.act = ACTIVATION_DTYPES[dtype]

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

    def alibi_slopes(self, num_heads, /, *, rule="paper", max_bias=8.0):
        _require(num_heads >= 1, f"num_heads must be a positive integer, got num_heads={num_heads}")
        if rule == "mpt":
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

    def dynamic_ntk_frequencies(self, dim, /, *, base=10_000.0, scaling_factor, original_max_position_embeddings,
                                sequence_length):
        _check_ntk_dim(dim)
        _check_length("sequence_length", sequence_length)
        length = self.dynamic_ntk_length(sequence_length, original_max_position_embeddings)
        s = F32(scaling_factor)
        alpha = s * F32(length) / F32(original_max_position_embeddings) - (s - F32(1.0))
        return self.inv_freq(dim, F32(base) * np.power(alpha, F32(dim) / F32(dim - 2)))

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


class ExpFormFrequencies(Correct):
    """Frequencies as ``exp(-(2i/d) * ln base)`` in float32 (the exp form of JAX and Flax ports)."""

    targets = ("rope_frequencies", "rope_angles", "rope_cos_sin", "apply_rope")

    def inv_freq(self, dim, base):
        return np.exp(self.exponents(dim) * -np.log(self.base_value(base))).astype(F32)


class ComplexRotation(Correct):
    """Meta's Llama code: ``torch.polar`` in complex64, ``x.float()`` times it, one cast at the end.

    cos/sin are never rounded to the activation dtype and the rotation runs
    in float32; only the result is cast.
    """

    targets = ("apply_rotary", "apply_rope")

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

    targets = ("apply_rotary", "apply_rope")

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


#: Correct implementations that compute differently from :class:`Correct`; each must pass too.
VARIANTS = (Correct, ExpFormFrequencies, ComplexRotation, Float32KernelRotation, Float32CorrectionRange)


def make(dtype):
    """The correct implementation computing in ``dtype`` (float32, float16 or bfloat16)."""
    return Correct(dtype)
