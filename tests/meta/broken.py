"""Deliberately broken implementations: each one bug that real code has had.

Every class changes one building block of :class:`tests.meta.correct.Correct`
and says which bug it imitates.  ``targets`` lists the spec functions whose
golden cases must expose it; ``caught_in`` lists the dtypes in which the bug
exists at all and must be caught.  A bug that is about computing in the
activation dtype (positions, cos/sin or a product in bfloat16) is no bug in
a float32 model, where it computes exactly what the correct code computes, so
float32 is absent from its ``caught_in``.
"""

from __future__ import annotations

import math

import numpy as np

from tests.meta.correct import F32, Correct

ALL_DTYPES = ("float32", "float16", "bfloat16")
LOW_DTYPES = ("float16", "bfloat16")
ROPE_APPLY = ("rope_cos_sin", "apply_rope")
ROPE_TABLES = ("rope_frequencies", "rope_angles", "rope_cos_sin", "apply_rope")


class Broken(Correct):
    """Base of the broken variants."""

    targets: tuple[str, ...] = ()
    caught_in: tuple[str, ...] = ALL_DTYPES


# -- RoPE ------------------------------------------------------------------------------------


class LayoutIgnored(Broken):
    """Always pairs channels ``(i, i + D/2)`` (``rotate_half``), whatever layout is asked.

    The classic checkpoint-conversion bug: Meta/GPT-J weights (interleaved
    pairs) run through GPT-NeoX/Hugging Face ``rotate_half`` code without
    permuting the query and key projections.
    """

    targets = ("apply_rotary", "apply_rope")

    def rotate(self, x, cos, sin, layout):
        return super().rotate(x, cos, sin, "half")


class InterleavedTablesWithRotateHalf(Broken):
    """cos/sin tables built in the interleaved order (``repeat_interleave``) but applied with ``rotate_half``.

    Mixing the two conventions inside one model (a GPT-J style cache fed to a
    NeoX style rotation, llama.cpp's NORM vs NEOX mode mismatch): channel
    ``j`` and its partner ``j + D/2`` read the tables at different
    frequencies, so the pair is not even rotated.
    """

    targets = ROPE_APPLY

    def rope_cos_sin(self, positions, dim, /, *, base=10_000.0, layout="half"):
        return super().rope_cos_sin(positions, dim, base=base, layout="interleaved")

    def apply_rope(self, x, positions, /, *, base=10_000.0, layout="half", rotary_dim=None, rotated_slice="first",
                   freq_denominator="rotary_dim", position_offset=0):
        if layout != "half":
            return super().apply_rope(x, positions, base=base, layout=layout, rotary_dim=rotary_dim,
                                      rotated_slice=rotated_slice, freq_denominator=freq_denominator,
                                      position_offset=position_offset)
        head_dim = x.shape[-1]
        rotary_dim = head_dim if rotary_dim is None else rotary_dim
        angles = self.rope_pair_angles(np.asarray(positions) + int(position_offset), head_dim, rotary_dim, base,
                                       freq_denominator)
        cos, sin = self.cos_sin_of(np.repeat(angles, 2, axis=-1))  # (..., r): c0, c0, c1, c1, ...
        channels = self.rotated_channels(head_dim, rotary_dim, rotated_slice, layout)
        xr = self.act_cast(x)[..., channels]
        half = rotary_dim // 2
        rotated_half = np.concatenate([-xr[..., half:], xr[..., :half]], axis=-1)
        out = self.act_cast(x).copy()
        out[..., channels] = self.act_cast(self.act_cast(xr * cos) + self.act_cast(rotated_half * sin))
        return out


class RotationSignFlipped(Broken):
    """Rotates by ``-phi``: ``rotate_half`` written as ``cat(x2, -x1)`` instead of ``cat(-x2, x1)``.

    Queries and keys turn the same wrong way, so the attention scores still
    depend on ``m - n`` only (with the sign of ``m - n`` flipped) and a model
    trained with the other sign silently degrades.
    """

    targets = ("apply_rotary", "apply_rope")

    def rotate(self, x, cos, sin, layout):
        return super().rotate(x, cos, -sin, layout)


class PositionsPlusOne(Broken):
    """Positions counted from 1 (``position_ids = arange(1, T + 1)``).

    Happens when a padding offset meant for learned tables (OPT, fairseq) is
    applied to rotary positions too.
    """

    targets = ("rope_angles", "rope_cos_sin", "apply_rope", "sinusoidal_encoding")

    def position_values(self, positions):
        return (np.asarray(positions) + 1).astype(F32)


class PositionOffsetIgnored(Broken):
    """Incremental decoding rotates the new token at position 0: the KV-cache offset is dropped."""

    targets = ("apply_rope",)

    def apply_rope(self, x, positions, /, **options):
        options["position_offset"] = 0
        return super().apply_rope(x, positions, **options)


class WrongBase(Broken):
    """Uses base 10000 whatever ``rope_theta`` says (Llama 3's 500000 ignored by a config loader)."""

    targets = ROPE_TABLES

    def base_value(self, base):
        return F32(10_000.0)


class BaseSlightlyOff(Broken):
    """Base 10000.5 instead of 10000 (a rounded or mistyped config value).

    Only the low frequencies move, by a relative ``5e-5 * 2i/d``: invisible
    in a short-context rotation, visible in the frequency table itself.
    """

    targets = ROPE_TABLES

    def base_value(self, base):
        return F32(base + 0.5)


class ExponentOverDimMinusTwo(Broken):
    r"""Exponent ``2i/(d-2)`` instead of ``2i/d``, so the lowest frequency is exactly ``1/base``.

    tensor2tensor's sinusoidal convention (``i/(d/2 - 1)``) carried over to
    RoPE.
    """

    targets = ROPE_TABLES

    def exponents(self, dim):
        return np.arange(0, dim, 2).astype(F32) / F32(max(dim - 2, 1))


class FrequenciesInActivationDtype(Broken):
    """The ``inv_freq`` buffer cast to the model dtype (``model.to(torch.bfloat16)`` on a persistent buffer).

    Hugging Face made ``inv_freq`` non-persistent and recomputes it in
    float32 because of this: the rounded frequencies shift every angle by a
    relative ``2**-9`` in bfloat16.
    """

    targets = ROPE_TABLES
    caught_in = LOW_DTYPES

    def inv_freq(self, dim, base):
        return super().inv_freq(dim, base).astype(self.act)


class PositionsInActivationDtype(Broken):
    """Positions cast to the model dtype before the angle product (``t.type_as(inv_freq)`` on a half buffer).

    rotary-embedding-torch and early GPT-NeoX ports: in bfloat16, 4095
    becomes 4096; in float16 every position above 65504 becomes inf.
    """

    targets = ("rope_angles", "rope_cos_sin", "apply_rope", "sinusoidal_encoding")
    caught_in = LOW_DTYPES

    def position_values(self, positions):
        return np.asarray(positions).astype(self.act).astype(F32)


class CosSinInActivationDtype(Broken):
    """Angles rounded to the model dtype before cos/sin (autocast left on around the rotary table)."""

    targets = ("rope_cos_sin", "apply_rope")
    caught_in = LOW_DTYPES

    def cos_sin_of(self, angles):
        return super().cos_sin_of(np.asarray(angles).astype(self.act))


class FrequencyTableFiveDigits(Broken):
    """A frequency table written out with 5 significant digits (a constant table pasted into a kernel)."""

    targets = ROPE_TABLES

    def inv_freq(self, dim, base):
        table = super().inv_freq(dim, base).astype(np.float64)
        return np.array([float(f"{v:.4e}") for v in table], dtype=F32)


class CosSinCacheClamped(Broken):
    """Tables built for 32768 positions (``max_position_embeddings``); later positions read the last row.

    A gather that clips out-of-range indices (``jnp.take`` with
    ``mode="clip"``, a CUDA kernel without a bounds check reading the last
    row) instead of growing the cache.
    """

    targets = ROPE_APPLY + ("sinusoidal_encoding",)

    def position_values(self, positions):
        return np.minimum(np.asarray(positions), 32_767).astype(F32)


class PartialRotatesLastChannels(Broken):
    """Partial rotary applied to the last ``rotary_dim`` channels instead of the first.

    DeepSeek MLA's layout (pass-through part first, rotary part last)
    assumed for a GPT-NeoX or Phi model.
    """

    targets = ("apply_rope",)

    def rotated_channels(self, head_dim, rotary_dim, rotated_slice, layout):
        return np.arange(head_dim - rotary_dim, head_dim)


class PartialHeadDimDenominator(Broken):
    """Partial rotary with frequencies ``base**(-2i/head_dim)`` when ``base**(-2i/rotary_dim)`` is asked.

    Two real conventions (Hugging Face default vs ``"proportional"``) mixed
    up: the rotated pairs get the fast end of the full-head spectrum.
    """

    targets = ("apply_rope",)

    def rope_pair_angles(self, positions, head_dim, rotary_dim, base, freq_denominator):
        other = "head_dim" if freq_denominator == "rotary_dim" else "rotary_dim"
        return super().rope_pair_angles(positions, head_dim, rotary_dim, base, other)


# -- RoPE scaling ----------------------------------------------------------------------------


class LinearScalingInverted(Broken):
    """Position interpolation multiplies the frequencies by the factor instead of dividing them."""

    targets = ("linear_scaled_frequencies",)

    def linear_scaled_frequencies(self, dim, /, *, base=10_000.0, scaling_factor):
        return (self.inv_freq(dim, base) * F32(scaling_factor)).astype(F32)


class NtkWithoutExponent(Broken):
    """NTK-aware scaling with base ``b * s`` instead of ``b * s**(d/(d-2))``."""

    targets = ("ntk_scaled_frequencies",)

    def ntk_scaled_frequencies(self, dim, /, *, base=10_000.0, scaling_factor):
        return self.inv_freq(dim, F32(base) * F32(scaling_factor))


class DynamicNtkLengthOffByOne(Broken):
    """Dynamic NTK evaluated at ``L + 1``: the largest position id plus two, or a length counted after the new token."""

    targets = ("dynamic_ntk_frequencies",)

    def dynamic_ntk_length(self, sequence_length, original_max_position_embeddings):
        return max(sequence_length + 1, original_max_position_embeddings)


class DynamicNtkWithoutExponent(Broken):
    """Dynamic NTK with base ``b * alpha`` instead of ``b * alpha**(d/(d-2))`` (the exponent taken as 1)."""

    targets = ("dynamic_ntk_frequencies",)

    def dynamic_ntk_exponent(self, dim):
        return F32(1.0)


class DynamicNtkBaseRoundedToInteger(Broken):
    """The dynamic base ``b * alpha**(d/(d-2))`` rounded to an integer (a ``rope_theta`` exported as an int).

    The base moves by at most half a unit, a relative ``0.5 / b'``, and the
    frequencies by up to that: about ``1e-5`` for ``b = 10000``, a small
    but real error in ``alpha``.
    """

    targets = ("dynamic_ntk_frequencies",)

    def dynamic_ntk_base(self, base, alpha, dim):
        return F32(np.rint(super().dynamic_ntk_base(base, alpha, dim).astype(np.float64)))


class YarnNotTruncated(Broken):
    """YaRN correction range not rounded outwards (``floor``/``ceil`` dropped) although ``truncate=True``."""

    targets = ("yarn_frequencies",)

    def yarn_range(self, dim, base, l0, beta_fast, beta_slow, truncate, high_limit):
        return super().yarn_range(dim, base, l0, beta_fast, beta_slow, False, high_limit)


class YarnAttentionFactorMissing(Broken):
    """YaRN frequencies applied but the ``0.1 ln s + 1`` scaling of cos/sin forgotten (factor 1)."""

    targets = ("yarn_attention_factor", "deepseek_softmax_scale")

    def mscale(self, scaling_factor, mscale):
        return F32(1.0)


class Llama3RatioInverted(Broken):
    """Llama 3 blend weight from ``wavelength / L0`` instead of ``L0 / wavelength``."""

    targets = ("llama3_scaled_frequencies",)

    def llama3_smooth(self, l0, wavelength, low_freq_factor, high_freq_factor):
        return (wavelength / F32(l0) - F32(low_freq_factor)) / F32(high_freq_factor - low_freq_factor)


# -- ALiBi -----------------------------------------------------------------------------------


class AlibiNaiveSlopes(Broken):
    """``2**(-8k/n)`` for every head count, also when ``n`` is not a power of two (12 heads, 20 heads)."""

    targets = ("alibi_slopes",)

    def slopes_paper(self, num_heads, max_bias):
        k = np.arange(1, num_heads + 1).astype(F32)
        return np.power(F32(2.0), -k * F32(max_bias / num_heads)).astype(F32)

    slopes_mpt = slopes_paper


class AlibiSlopeIndexFromZero(Broken):
    """Slope index counted from 0 (``arange(n)`` instead of ``arange(1, n + 1)``): the first head gets slope 1."""

    targets = ("alibi_slopes",)

    def slopes_paper(self, num_heads, max_bias):
        closest = 2 ** int(math.floor(math.log2(num_heads)))
        base = F32(2.0 ** (-max_bias / closest))
        slopes = np.power(base, np.arange(0, closest).astype(F32))
        if closest != num_heads:
            extra = F32(2.0 ** (-max_bias / (2 * closest)))
            slopes = np.concatenate([slopes, np.power(extra, np.arange(0, 2 * (num_heads - closest) - 1, 2)
                                                      .astype(F32))])
        return slopes.astype(F32)

    def slopes_mpt(self, num_heads, max_bias):
        n = 2 ** int(math.ceil(math.log2(num_heads)))
        slopes = (F32(1.0) / np.power(F32(2.0), np.arange(0, n).astype(F32) * F32(max_bias / n))).astype(F32)
        return np.concatenate([slopes[1::2], slopes[::2]])[:num_heads] if n != num_heads else slopes


class AlibiProductInActivationDtype(Broken):
    """Slopes times distances multiplied in the model dtype: distances rounded to it, then the product rounded.

    One rounding more than the spec allows: in bfloat16 every distance above
    256 is rounded (8191 becomes 8192) before the product is rounded, in
    float16 every distance above 2048.  With a slope that is a power of two
    the product is exact and the bug invisible; with the other slopes of a
    12-head model it is not.
    """

    targets = ("alibi_bias",)
    caught_in = LOW_DTYPES

    def bias_product(self, slopes, linear):
        return self.act_cast(slopes)[:, None, None] * self.act_cast(linear)[None, :, :]


class AlibiSignFlipped(Broken):
    """Bias ``+m (i - j)`` (a reward for distance) instead of ``-m (i - j)``."""

    targets = ("alibi_bias",)

    def bias_product(self, slopes, linear):
        return -super().bias_product(slopes, linear)


# -- T5 --------------------------------------------------------------------------------------


class T5SignFlipped(Broken):
    """Relative position ``query - key`` instead of ``key - query`` (``context - memory``)."""

    targets = ("t5_relative_bucket", "t5_relative_bias")

    def t5_relative(self, query_positions, key_positions):
        return -super().t5_relative(query_positions, key_positions)

    def t5_relative_bucket(self, relative_position, /, **options):
        return super().t5_relative_bucket(-np.asarray(relative_position), **options)


class T5RoundedLog(Broken):
    """Log bucket rounded to nearest (``round``) instead of truncated (``.to(torch.long)``)."""

    targets = ("t5_relative_bucket", "t5_relative_bias")

    def t5_log_ratio(self, n, max_exact, max_distance, num_log):
        return np.round(super().t5_log_ratio(n, max_exact, max_distance, num_log))


class T5NoBidirectionalOffset(Broken):
    """Bidirectional buckets without the ``+ num_buckets // 2`` for keys after the query: both directions share."""

    targets = ("t5_relative_bucket", "t5_relative_bias")

    def t5_buckets(self, relative_position, bidirectional, num_buckets, max_distance):
        if not bidirectional:
            return super().t5_buckets(relative_position, bidirectional, num_buckets, max_distance)
        n = np.abs(np.asarray(relative_position))
        return super().t5_buckets(-n, True, num_buckets, max_distance)


class T5MissingClamp(Broken):
    """No ``min(bucket, num_buckets - 1)``: distances far beyond ``max_distance`` get buckets past the end."""

    targets = ("t5_relative_bucket",)

    def t5_buckets(self, relative_position, bidirectional, num_buckets, max_distance):
        relative_position = np.asarray(relative_position, dtype=np.int64)
        half = num_buckets // 2 if bidirectional else num_buckets
        n = np.abs(relative_position) if bidirectional else -np.minimum(relative_position, 0)
        offset = (relative_position > 0) * half if bidirectional else 0
        max_exact = half // 2
        safe = np.where(n < max_exact, max_exact, n)
        large = max_exact + self.t5_log_ratio(safe, max_exact, max_distance, half - max_exact).astype(np.int64)
        return offset + np.where(n < max_exact, n, large)


class T5LogInActivationDtype(Broken):
    """The bucket logarithm computed in the model dtype (``relative_position.to(dtype)`` instead of ``.float()``)."""

    targets = ("t5_relative_bucket", "t5_relative_bias")
    caught_in = LOW_DTYPES

    def t5_log_ratio(self, n, max_exact, max_distance, num_log):
        ratio = self.act_cast(self.act_cast(n) / self.act_cast(max_exact))
        logs = self.act_cast(np.log(ratio))
        return self.act_cast(self.act_cast(logs / self.act_cast(math.log(max_distance / max_exact)))
                             * self.act_cast(num_log)).astype(F32)


# -- sinusoidal, learned ---------------------------------------------------------------------


class SinusoidalT2TDenominator(Broken):
    """tensor2tensor's exponent ``i/(d/2 - 1)`` used when the paper's ``2i/d`` is asked."""

    targets = ("sinusoidal_encoding",)

    def sinusoidal_frequencies(self, dim, base, freq_denominator):
        return super().sinusoidal_frequencies(dim, base, "half_dim_minus_one")


class SinusoidalCosFirst(Broken):
    """cos before sin: ``[cos | sin]`` or cos on the even channels (a port that swapped the two)."""

    targets = ("sinusoidal_encoding",)

    def sinusoidal_layout(self, sin, cos, layout):
        return super().sinusoidal_layout(cos, sin, layout)


class LearnedOffsetIgnored(Broken):
    """OPT's position offset 2 dropped: every token reads the row two places too early."""

    targets = ("learned_position_embedding",)

    def learned_rows(self, positions, position_offset):
        return np.asarray(positions, dtype=np.int64)


class LearnedPaddingRowKept(Broken):
    """The padding row returned as stored instead of zeros."""

    targets = ("learned_position_embedding",)

    def learned_position_embedding(self, table, positions, /, *, position_offset=0, padding_idx=None):
        return super().learned_position_embedding(table, positions, position_offset=position_offset)


# -- xPos ------------------------------------------------------------------------------------


class XposCentringSwapped(Broken):
    r"""The other centring: ``N // 2`` (rotary-embedding-torch) where ``ceil(N/2)`` (torchscale) is asked, and back.

    The two agree for even lengths; for an odd length every scale is off
    by :math:`\zeta_i^{1/B}`, so a checkpoint trained with one library and
    run with the other gets queries and keys scaled differently (their
    product is unchanged, the cached keys are not).
    """

    targets = ("xpos_scales", "apply_xpos")

    def xpos_shift(self, length, centering):
        other = {"ceil_half": "floor_half", "floor_half": "ceil_half"}.get(centering, centering)
        return super().xpos_shift(length, other)


class XposKeyScaleNotInverted(Broken):
    r"""Keys scaled by :math:`\zeta^{c/B}` like queries: the ``downscale`` (``scale ** -1``) forgotten.

    Scores then carry :math:`\zeta^{(m + n)/B}` instead of
    :math:`\zeta^{(m - n)/B}`: no decay with distance, and they depend on
    absolute positions.
    """

    targets = ("xpos_scales", "apply_xpos")

    def xpos_power(self, positions, length, centering, scale_base, downscale):
        return super().xpos_power(positions, length, centering, scale_base, False)


class XposRotationByCentredPosition(Broken):
    """The rotation uses the centred scale position ``p - N // 2`` too (one centred ``t`` for both tables).

    Scores are unchanged (queries and keys turn by the same offset), but
    every rotated query and key differs from the paper's, so cached keys
    from another implementation do not match.
    """

    targets = ("apply_xpos",)

    def xpos_rotation_positions(self, positions, length, centering):
        return positions - self.xpos_shift(length, centering)


# -- M-RoPE, axial RoPE, 2-D sine-cosine -----------------------------------------------------


class MRopeContiguousForInterleaved(Broken):
    """Qwen3-VL's interleaved ``T H W T H W ...`` sections run as Qwen2-VL's contiguous blocks.

    A Qwen3-VL checkpoint loaded by Qwen2-VL code (``interleaved`` ignored):
    text is unaffected (three equal coordinates), image tokens are not.
    """

    targets = ("mrope_angles", "apply_mrope")

    def mrope_axis_of_pair(self, section, half, interleaved):
        return super().mrope_axis_of_pair(section, half, False)


class MRopeHeightWidthSwapped(Broken):
    """Height and width ids swapped: the position-id tensor built as (t, w, h) from ``grid_thw``."""

    targets = ("mrope_angles", "apply_mrope")

    def mrope_pair_angles(self, positions, dim, base, mrope_section, interleaved):
        swapped = np.asarray(positions)[[0, 2, 1]]
        return super().mrope_pair_angles(swapped, dim, base, mrope_section, interleaved)


class MRopePositionIdsInActivationDtype(Broken):
    """The (3, B, S) position ids cast to the model dtype before the float32 angle product.

    Invisible in the first 256 tokens (bfloat16 integers are exact there);
    after 100000 tokens of context bfloat16 ids are rounded to multiples
    of 512 and float16 ids overflow to inf.
    """

    targets = ("mrope_angles", "apply_mrope")
    caught_in = LOW_DTYPES

    def position_values(self, positions):
        return np.asarray(positions).astype(self.act).astype(F32)


class AxialAxesSwapped(Broken):
    """Row and column swapped: the first block of pairs turns with the other coordinate.

    ``meshgrid`` with ``indexing="xy"`` where ``"ij"`` was meant (or timm's
    ``grid_indexing`` flipped): on a square grid the model still trains,
    but a checkpoint from the other convention is rotated wrongly.
    """

    targets = ("axial_rope_angles", "apply_axial_rope")

    def axial_coordinates(self, positions_2d, axis_order):
        return super().axial_coordinates(positions_2d, "yx" if axis_order == "xy" else "xy")


class AxialEvenOddIgnored(Broken):
    """Pixtral's even/odd split of one frequency ladder replaced by two per-axis ladders (``frequencies`` ignored)."""

    targets = ("axial_rope_angles", "apply_axial_rope")

    def axial_bands(self, dim, base, frequencies):
        return super().axial_bands(dim, base, "per_axis")


class SincosGroupingSwapped(Broken):
    """timm's ``[sin a, sin b, cos a, cos b]`` where MAE's ``[sin a, cos a, sin b, cos b]`` is asked, and back.

    timm's ``build_sincos2d_pos_embed`` defaults to the first; loading an
    MAE checkpoint through it without ``interleave_sin_cos=True`` permutes
    three quarters of the channels.
    """

    targets = ("sincos_2d_encoding",)

    def sincos_2d_blocks(self, sin_a, cos_a, sin_b, cos_b, grouping):
        return super().sincos_2d_blocks(sin_a, cos_a, sin_b, cos_b, "sin_cos" if grouping == "axis" else "axis")


class SincosAxesSwapped(Broken):
    """The row block where the column block is asked (MAE's ``xy`` read as timm's ``yx``)."""

    targets = ("sincos_2d_encoding",)

    def sincos_2d_coordinates(self, rows, cols, axis_order):
        return super().sincos_2d_coordinates(rows, cols, "yx" if axis_order == "xy" else "xy")


# -- Transformer-XL, Sandwich, KERPLE ----------------------------------------------------------


class TransformerXLDistancesAscending(Broken):
    """``pos_seq = arange(klen)`` where the relative shift expects ``arange(klen - 1, -1, -1)``.

    The rows come out in the reverse order, so after the shift every key
    reads the encoding of the mirrored distance.
    """

    targets = ("transformer_xl_relative_encoding",)

    def transformer_xl_distances(self, distances):
        return np.asarray(distances)[..., ::-1]


class TransformerXLInterleaved(Broken):
    """Sines and cosines interleaved (the absolute sinusoidal table reused) instead of ``[sin | cos]``."""

    targets = ("transformer_xl_relative_encoding",)

    def transformer_xl_relative_encoding(self, distances, dim, /, *, base=10_000.0, max_distance=None):
        table = super().transformer_xl_relative_encoding(distances, dim, base=base, max_distance=max_distance)
        half = dim // 2
        out = np.empty_like(table)
        out[..., 0::2], out[..., 1::2] = table[..., :half], table[..., half:]
        return out


class SandwichFrequenciesFromZero(Broken):
    """Frequencies :math:`b^{-2k/d}` from ``k = 0`` (the sinusoidal encoding's) where NeMo's ``k = 1`` is asked."""

    targets = ("sandwich_bias",)

    def sandwich_first_frequency(self, first_frequency):
        return 0


class KerpleInActivationDtype(Broken):
    """The log kernel computed in the model dtype, as the original code does (``diff.to(x.dtype)``, bfloat16 params).

    The distance, ``1 + r2 * d``, the logarithm and the product each round
    to the activation dtype: three roundings more than the spec allows,
    which shows at short distances where the bias is small.
    """

    targets = ("kerple_log_bias",)
    caught_in = LOW_DTYPES

    def kerple_log_bias(self, query_positions, key_positions, /, *, r1, r2, bidirectional=False):
        r1, r2 = (self.act_cast(v) for v in self._kerple_heads(r1, r2, ("r1", "r2")))
        distance = self.act_cast(self.relative_distance(query_positions, key_positions, bidirectional))
        inner = self.act_cast(self.act_cast(r2 * distance) + self.act_cast(1.0))
        return self.act_cast(-(r1 * self.act_cast(np.log(inner.astype(F32)))))


#: Every broken variant, in the order of this module.


class ShawValuesWithoutRelativeTerm(Broken):
    """Shaw's output ``sum_j w_ij v_j``: the relative value term ``a^V_ij`` forgotten."""

    targets = ("shaw_relative_values",)
    caught_in = ALL_DTYPES

    def shaw_relative_values(self, weights, v, relative_values, /):
        return super().shaw_relative_values(weights, v, np.zeros_like(relative_values))


class ShawLogitsTransposedTable(Broken):
    """Relative keys read as ``a^K_ji`` (the table indexed key-first), a transposed relative position."""

    targets = ("shaw_relative_logits",)
    caught_in = ALL_DTYPES

    def shaw_relative_logits(self, q, k, relative_keys, /):
        t, s = relative_keys.shape[:2]
        flipped = relative_keys[::-1, ::-1] if t == s else relative_keys[:, ::-1]
        return super().shaw_relative_logits(q, k, flipped)


class TransformerXlBiasesSwapped(Broken):
    """The content bias ``u`` and the position bias ``v`` swapped."""

    targets = ("transformer_xl_scores",)
    caught_in = ALL_DTYPES

    def transformer_xl_scores(self, q, k, r, u, v, /, *, scale=None, future_keys="mask"):
        return super().transformer_xl_scores(q, k, r, v, u, scale=scale, future_keys=future_keys)


class DebertaC2pSignFlipped(Broken):
    """DeBERTa's table row from ``key - query`` instead of ``query - key`` (the c2p and p2c sign flipped)."""

    targets = ("deberta_relative_scores",)
    caught_in = ALL_DTYPES

    def deberta_rows(self, relative_position, span):
        return super().deberta_rows(-relative_position, span)


class PegKernelFlipped(Broken):
    """PEG's kernel applied as a true convolution (taps flipped), not ``nn.Conv2d``'s cross-correlation."""

    targets = ("peg",)
    caught_in = ALL_DTYPES

    def peg_kernel(self, weight):
        return super().peg_kernel(weight)[::-1, ::-1]


class FourierHarmonicsFromZero(Broken):
    """Fourier harmonics ``k = 0..K-1`` (``arange(K)``) where the paper's ``k = 1..K`` is asked."""

    targets = ("fourier_features",)
    caught_in = ALL_DTYPES

    def fourier_harmonics(self, num_frequencies):
        return np.arange(num_frequencies, dtype=F32)


class YarnRangeNaturalLogOfBase(Broken):
    """YaRN's correction dimension divided by ``2 log2(base)`` instead of ``2 ln(base)`` (a port's log helper)."""

    targets = ("yarn_correction_range",)
    caught_in = ALL_DTYPES

    def yarn_range(self, dim, base, l0, beta_fast, beta_slow, truncate, high_limit):
        return super().yarn_range(dim, math.exp(math.log2(base)), l0, beta_fast, beta_slow, truncate, high_limit)


class AttentionScaleMissing(Broken):
    """Attention logits not divided by ``sqrt(D)`` (a scale of 1 where the default is asked)."""

    targets = ("attention",)
    caught_in = ALL_DTYPES

    def attention_scale(self, d, scale):
        return 1.0 if scale is None else scale


class FireWithoutThreshold(Broken):
    """FIRE normalised by ``psi(i)`` alone: the ``max(i, L)`` of progressive interpolation dropped."""

    targets = ("fire_normalized_distance", "fire_bias")
    caught_in = ALL_DTYPES

    def fire_normaliser_position(self, q, threshold):
        return q


class CopeFutureGatesCounted(Broken):
    """CoPE gates summed over every key, future keys included (the causal mask applied after the cumsum only)."""

    targets = ("cope_positions", "cope_bias")
    caught_in = ALL_DTYPES

    def cope_p(self, logits):
        p = super().cope_p(logits)
        t, s = np.shape(logits)[-2:]
        future = ~self.cope_gate_mask(t, s)
        gates = np.where(future, F32(1.0) / (F32(1.0) + np.exp(-np.asarray(logits).astype(F32))), F32(0.0))
        extra = gates.sum(axis=-1, keepdims=True, dtype=F32)
        return np.where(future, F32(0.0), p + extra)


class FopePadSinSwapped(Broken):
    """FoPE's padded pairs get sine ``1 - pad_sin``: the paper's 1 and vLLM's 0 swapped."""

    targets = ("apply_fope",)
    caught_in = ALL_DTYPES

    def fope_pad_sin(self, pad_sin):
        return 1.0 - pad_sin


class TemperaturePositionNotShifted(Broken):
    """Llama 4's temperature steps from ``floor(p / F)``: every step starts one token late."""

    targets = ("nope_attention_temperature",)

    def temperature_steps(self, positions, floor_scale):
        return np.floor(np.asarray(positions).astype(F32) / F32(floor_scale))


class TemperatureLogOfSteps(Broken):
    """``log(steps)`` clamped at 0 where ``log1p(steps)`` is meant: each temperature one step behind."""

    targets = ("nope_attention_temperature",)

    def temperature_steps(self, positions, floor_scale):
        return np.maximum(super().temperature_steps(positions, floor_scale) - F32(1.0), F32(0.0))


BROKEN = [cls for cls in list(globals().values())
          if isinstance(cls, type) and issubclass(cls, Broken) and cls is not Broken]
