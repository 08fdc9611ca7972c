"""The block-wise evaluation of apply_rope, alibi_bias, the T5 functions and sincos_2d_encoding.

Each function fills its result block by block so that no temporary is as
large as the output.  These tests compare every one of them, bit for bit,
with the plain whole-array formula written out here, on shapes that span
several blocks, and check that the peak memory of a call stays near the
size of its output.
"""

import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import posref
import posref.alibi
import posref.rope
import posref.t5
from posref import (
    alibi_bias,
    apply_rope,
    apply_rotary,
    rope_angles,
    rope_frequencies,
    sincos_2d_encoding,
    t5_relative_bias,
    t5_relative_bucket,
)

# -- plain formulas ---------------------------------------------------------------------------


def rotated_channels(head_dim, rotary_dim, rotated_slice, layout):
    """Channel indices of the rotated set, in the order apply_rotary pairs them."""
    if rotated_slice == "last":
        return np.arange(head_dim - rotary_dim, head_dim)
    if rotated_slice == "first_pairs" and layout == "half":
        half = np.arange(rotary_dim // 2)
        return np.concatenate([half, head_dim // 2 + half])
    return np.arange(rotary_dim)


def plain_rope(x, positions, *, layout, rotary_dim, rotated_slice, freq_denominator, position_offset):
    head_dim = x.shape[-1]
    denominator = rotary_dim if freq_denominator == "rotary_dim" else head_dim
    angles = rope_angles(np.asarray(positions, dtype=np.float64) + position_offset, denominator)
    channels = rotated_channels(head_dim, rotary_dim, rotated_slice, layout)
    out = np.array(x, dtype=np.float64)
    out[..., channels] = apply_rotary(out[..., channels], angles[..., : rotary_dim // 2], layout=layout)
    return out


def plain_alibi(slopes, q, k, *, form, causal, scale):
    relative_position = k[None, :] - q[:, None]
    linear = {
        "distance": relative_position,
        "symmetric": -np.abs(relative_position),
        "key_index": np.broadcast_to(k[None, :], relative_position.shape),
        "last_key_anchored": np.broadcast_to(k[None, :] - (k.max() if k.size else 0.0), relative_position.shape),
    }[form]
    bias = scale * slopes[:, None, None] * linear[None] + 0.0
    return np.where(relative_position[None] > 0, -np.inf, bias) if causal else bias


def plain_bucket(r, *, bidirectional, num_buckets, max_distance):
    """The bucket rule on a whole array at once, with the exact bucket starts of posref.t5."""
    per_side = num_buckets // 2 if bidirectional else num_buckets
    max_exact = per_side // 2
    starts = posref.t5._log_bucket_starts(max_exact, per_side - max_exact, max_distance)
    r = np.clip(np.asarray(r, dtype=np.int64), -max_distance, max_distance)
    offset = np.where(r > 0, per_side, 0) if bidirectional else np.zeros_like(r)
    n = np.abs(r) if bidirectional else np.maximum(-r, 0)
    return offset + np.where(n < max_exact, n, max_exact + np.searchsorted(starts, n, side="right"))


def plain_sincos_2d(grid_shape, dim, *, axis_order, grouping, class_token):
    omega = rope_frequencies(dim // 2)
    y, x = np.meshgrid(np.arange(grid_shape[0], dtype=np.float64), np.arange(grid_shape[1], dtype=np.float64),
                       indexing="ij")
    a, b = (x.reshape(-1), y.reshape(-1)) if axis_order == "xy" else (y.reshape(-1), x.reshape(-1))
    pa, pb = a[:, None] * omega, b[:, None] * omega
    blocks = [np.sin(pa), np.cos(pa), np.sin(pb), np.cos(pb)]
    if grouping == "sin_cos":
        blocks = [blocks[0], blocks[2], blocks[1], blocks[3]]
    table = np.concatenate(blocks, axis=1)
    return np.concatenate([np.zeros((1, dim)), table]) if class_token else table


def same_bits(a, b):
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b) and np.array_equal(
        np.signbit(a), np.signbit(b))


# -- apply_rope -------------------------------------------------------------------------------


@given(
    lead=st.lists(st.integers(0, 4), min_size=0, max_size=3),
    pairs=st.integers(1, 12),
    layout=st.sampled_from(["half", "interleaved"]),
    rotated_slice=st.sampled_from(["first", "last", "first_pairs"]),
    freq_denominator=st.sampled_from(["rotary_dim", "head_dim"]),
    fraction=st.floats(0.0, 1.0),
    position_offset=st.sampled_from([0, 3.5]),
    seed=st.integers(0, 2**16),
)
def test_apply_rope_equals_plain_formula(lead, pairs, layout, rotated_slice, freq_denominator, fraction,
                                         position_offset, seed):
    rng = np.random.default_rng(seed)
    head_dim = 2 * pairs
    rotary_dim = 2 * max(1, round(fraction * pairs))
    x = rng.standard_normal((*lead, head_dim))
    positions = rng.uniform(0, 10_000, x.shape[-2:-1] if x.ndim > 1 else ())
    options = dict(layout=layout, rotary_dim=rotary_dim, rotated_slice=rotated_slice,
                   freq_denominator=freq_denominator, position_offset=position_offset)
    assert same_bits(apply_rope(x, positions, **options), plain_rope(x, positions, **options))


@pytest.mark.parametrize("layout", ["half", "interleaved"])
def test_apply_rope_many_blocks(layout):
    # (2, 3, 700, 64): 256 rows per block, three blocks for each of the six (batch, head) indices
    x = np.random.default_rng(0).standard_normal((2, 3, 700, 64))
    positions = np.random.default_rng(1).integers(0, 1_000_000, (2, 1, 700))
    options = dict(layout=layout, rotary_dim=64, rotated_slice="first", freq_denominator="rotary_dim",
                   position_offset=0)
    assert same_bits(apply_rope(x, positions, layout=layout), plain_rope(x, positions, **options))


def test_row_blocks_cover_every_row_once():
    seen = np.zeros((2, 3, 70, 4), dtype=int)
    for block in posref.rope._row_blocks(seen.shape, block_bytes=8 * 4 * 16):
        seen[block] += 1
    assert np.all(seen == 1)
    assert list(posref.rope._row_blocks((6,))) == [()]


# -- alibi_bias -------------------------------------------------------------------------------


@given(
    num_queries=st.integers(0, 90),
    num_keys=st.integers(0, 600),
    heads=st.integers(1, 3),
    form=st.sampled_from(["distance", "symmetric", "key_index", "last_key_anchored"]),
    causal=st.booleans(),
    scale=st.sampled_from([1.0, 0.125, 3.0]),
    seed=st.integers(0, 2**16),
)
def test_alibi_bias_equals_plain_formula(num_queries, num_keys, heads, form, causal, scale, seed):
    rng = np.random.default_rng(seed)
    slopes = rng.standard_normal(heads)
    q = np.sort(rng.integers(0, 700, num_queries)).astype(np.float64)
    k = np.sort(rng.uniform(0, 700, num_keys))
    expected = plain_alibi(slopes, q, k, form=form, causal=causal, scale=scale)
    assert same_bits(alibi_bias(slopes, q, k, form=form, causal=causal, scale=scale), expected)


def test_query_blocks_cover_every_row_once():
    rows = posref.alibi._query_blocks(1000, 512)
    assert len(rows) > 1
    assert np.array_equal(np.concatenate([np.arange(1000)[r] for r in rows]), np.arange(1000))


# -- T5 ---------------------------------------------------------------------------------------

T5_OPTIONS = [(True, 32, 128), (False, 32, 128), (True, 4, 2), (False, 17, 27), (False, 31, 532), (True, 64, 2**53)]


@pytest.mark.parametrize(("bidirectional", "num_buckets", "max_distance"), T5_OPTIONS)
def test_t5_relative_bucket_equals_plain_formula(bidirectional, num_buckets, max_distance):
    options = dict(bidirectional=bidirectional, num_buckets=num_buckets, max_distance=max_distance)
    rng = np.random.default_rng(num_buckets)
    for r in (np.arange(-20_000, 20_000).reshape(80, 500),  # several blocks of 2**13
              rng.integers(-2**62, 2**62, (3, 5000)),
              np.asfortranarray(rng.integers(-700, 700, (90, 120))),
              np.int64(-12), np.zeros((0, 3), dtype=np.int64)):
        expected = plain_bucket(r, **options)
        assert same_bits(t5_relative_bucket(r, **options), expected)


@pytest.mark.parametrize(("bidirectional", "num_buckets", "max_distance"), T5_OPTIONS)
def test_t5_relative_bias_equals_plain_formula(bidirectional, num_buckets, max_distance):
    options = dict(bidirectional=bidirectional, num_buckets=num_buckets, max_distance=max_distance)
    rng = np.random.default_rng(num_buckets)
    for num_queries, num_keys, heads in [(0, 4, 2), (3, 0, 1), (40, 900, 3), (70, 5000, 1)]:
        table = rng.standard_normal((num_buckets, heads))
        q = rng.integers(0, 3000, num_queries)
        k = rng.integers(0, 3000, num_keys)
        bucket = plain_bucket(k[None, :] - q[:, None], **options)
        expected = np.moveaxis(table[bucket], -1, 0)
        assert same_bits(t5_relative_bias(table, q, k, **options), expected)


# -- sincos_2d_encoding ----------------------------------------------------------------------


@pytest.mark.parametrize("class_token", [False, True])
@pytest.mark.parametrize("grouping", ["axis", "sin_cos"])
@pytest.mark.parametrize("axis_order", ["xy", "yx"])
def test_sincos_2d_encoding_equals_plain_formula(axis_order, grouping, class_token):
    for grid_shape, dim in [((1, 1), 4), ((3, 5), 12), ((14, 14), 768)]:
        options = dict(axis_order=axis_order, grouping=grouping, class_token=class_token)
        assert same_bits(sincos_2d_encoding(grid_shape, dim, **options),
                         plain_sincos_2d(grid_shape, dim, **options))


# -- memory -----------------------------------------------------------------------------------


def peak_over_output(call):
    tracemalloc.start()
    try:
        result = call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak / result.nbytes


def test_peak_memory_stays_near_the_output():
    x = np.random.default_rng(0).standard_normal((1, 8, 512, 128))  # 4 MiB
    positions = np.arange(512)
    # the validated float64 copy of x, the result, and small blocks
    assert peak_over_output(lambda: apply_rope(x, positions)) < 2.5
    p = np.arange(1024)  # 8 MiB per head
    assert peak_over_output(lambda: alibi_bias(np.array([0.5]), p, p)) < 1.2
    assert peak_over_output(lambda: t5_relative_bias(np.ones((32, 1)), p, p)) < 1.2
    relative_position = p[None, :] - p[:, None]
    # the validated int64 copy of the input, the result, and small blocks
    assert peak_over_output(lambda: t5_relative_bucket(relative_position)) < 2.3
    # the two phase tables (a quarter of the output each), the result, one block
    assert peak_over_output(lambda: sincos_2d_encoding((14, 14), 768, class_token=True)) < 2.0
