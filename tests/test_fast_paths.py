"""The fast paths of the spec functions are bit-identical to their plain formulas.

Two kinds of fast path exist:

* the rotation kernel (``posref.rope._rotate``) behind ``apply_rotary``, ``apply_rope``,
  ``apply_xpos``, ``apply_axial_rope``, ``apply_mrope`` and ``apply_fope``: cosines and sines
  once per (position, pair), applied block by block of rows with ``out=`` ufuncs, optionally in
  two threads (``apply_axial_rope`` reads them from one table per axis for whole-number
  coordinates; ``apply_fope`` sums its Fourier series in two halves of the positions);
* difference tables (``posref._difference``) behind every bias that depends on
  ``key - query`` only (ALiBi, T5, Shaw, KERPLE, Sandwich, FIRE, DeBERTa) and behind
  ``t5_relative_bucket`` and ``deberta_log_bucket`` on any integer array: the formula once per
  distinct offset, then a gather (chunk by chunk from a window table where a chunk fits it), and
  the T5 near-boundary test of the error model.

Each test compares a function, element for element and sign of zero for sign of zero, with the
plain whole-array formula written out here as simply as possible (never through the code under
test), on many shapes and parameters drawn by hypothesis, in the default (fast) arithmetic and
inside ``_arith.precise()`` (on small sizes: precise arithmetic is slow).  The positions cover
every gather the tables use: runs of consecutive integers (a Toeplitz copy), consecutive keys
with any queries (row slices), any integers (index gathers), and positions for which no table
applies (fractional, or too spread out), which take the plain path.
"""

import contextlib
import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import posref
import posref._difference
import posref.alibi
import posref.rope
import posref.t5
from posref import (
    _arith,
    alibi_bias,
    apply_axial_rope,
    apply_fope,
    apply_mrope,
    apply_rope,
    apply_rotary,
    apply_xpos,
    axial_rope_angles,
    deberta_log_bucket,
    deberta_relative_scores,
    fire_bias,
    fire_normalized_distance,
    fope_frequencies,
    kerple_log_bias,
    kerple_power_bias,
    mrope_angles,
    rope_angles,
    rope_frequencies,
    sandwich_bias,
    shaw_relative_embeddings,
    shaw_relative_index,
    sincos_2d_encoding,
    t5_relative_bias,
    t5_relative_bucket,
    xpos_scales,
)
from posref.relative.deberta import _deberta_buckets

MODES = ["fast", "precise"]


@contextlib.contextmanager
def arithmetic(mode):
    if mode == "precise":
        with _arith.precise():
            yield
    else:
        yield


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return (a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)
            and np.array_equal(np.signbit(a), np.signbit(b)))


def features(rng, shape):
    """Normal values with some +0.0 and -0.0 mixed in (signs of zeros must survive)."""
    x = rng.standard_normal(shape)
    pick = rng.random(shape)
    x[pick < 0.05] = 0.0
    x[pick > 0.95] = -0.0
    return x


# -- plain formulas: rotations ------------------------------------------------------------------


def plain_rotary(x, angles, layout):
    """apply_rotary written out: both products rounded, then one sum, on whole arrays."""
    cos, sin = _arith.cos(angles), _arith.sin(angles)
    half = x.shape[-1] // 2
    x_a, x_b = (x[..., :half], x[..., half:]) if layout == "half" else (x[..., 0::2], x[..., 1::2])
    y_a = x_a * cos - x_b * sin
    y_b = x_b * cos + x_a * sin
    if layout == "half":
        return np.concatenate([y_a, y_b], axis=-1)
    out = np.empty(y_a.shape[:-1] + (2 * half,))
    out[..., 0::2], out[..., 1::2] = y_a, y_b
    return out


def rotated_channels(head_dim, rotary_dim, rotated_slice, layout):
    """Channel indices of the rotated set, in the order the layout pairs them."""
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
    angles = np.broadcast_to(angles[..., : rotary_dim // 2], x.shape[:-1] + (rotary_dim // 2,))
    out[..., channels] = plain_rotary(out[..., channels], angles, layout)
    return out


def plain_xpos(x, positions, *, layout, downscale, centering, scale_base):
    d = x.shape[-1]
    scale = xpos_scales(positions, d, scale_base=scale_base, centering=centering, downscale=downscale)
    rotated = plain_rotary(x, np.broadcast_to(rope_angles(positions, d), x.shape[:-1] + (d // 2,)), layout)
    per_channel = np.concatenate([scale, scale], axis=-1) if layout == "half" else np.repeat(scale, 2, axis=-1)
    return rotated * per_channel


def plain_fope(x, positions, sin_coef, cos_coef, *, max_sequence_length, pad_sin, position_offset):
    head_dim = x.shape[-1]
    theta = fope_frequencies(head_dim, max_sequence_length=max_sequence_length)
    theta = theta[theta > 0]
    num_out = sin_coef.shape[-1]
    p = np.broadcast_to(np.asarray(positions, dtype=np.float64) + position_offset, x.shape[:-1])
    phi = p[..., None] * theta
    if sin_coef.ndim == 2:
        sin_f = _arith.einsum("...k,km->...m", _arith.sin(phi), sin_coef)
        cos_f = _arith.einsum("...k,km->...m", _arith.cos(phi), cos_coef)
    else:
        sin_f = _arith.einsum("...htk,hkm->...htm", _arith.sin(phi), sin_coef)
        cos_f = _arith.einsum("...htk,hkm->...htm", _arith.cos(phi), cos_coef)
    pad_shape = x.shape[:-1] + (head_dim // 2 - num_out,)
    sin_f = np.concatenate([sin_f, np.full(pad_shape, pad_sin)], axis=-1)
    cos_f = np.concatenate([cos_f, np.ones(pad_shape)], axis=-1)
    half = head_dim // 2
    rotated_half = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return x * np.concatenate([cos_f, cos_f], axis=-1) + rotated_half * np.concatenate([sin_f, sin_f], axis=-1)


# -- plain formulas: biases ---------------------------------------------------------------------


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


def plain_t5_bias(table, q, k, **options):
    bucket = plain_bucket(np.asarray(k, dtype=np.int64)[None, :] - np.asarray(q, dtype=np.int64)[:, None], **options)
    return np.moveaxis(table[bucket], -1, 0)


def plain_shaw_index(q, k, max_relative_position):
    relative_position = np.asarray(k, dtype=np.int64)[None, :] - np.asarray(q, dtype=np.int64)[:, None]
    m = max_relative_position
    return (np.clip(relative_position, -m, m) + m).astype(np.int64)


def plain_distance(q, k, bidirectional):
    distance = np.asarray(q, dtype=np.float64)[:, None] - np.asarray(k, dtype=np.float64)[None, :]
    return np.abs(distance) if bidirectional else np.maximum(distance, 0.0)


def plain_kerple_log(q, k, r1, r2, bidirectional):
    return 0.0 - r1[:, None, None] * _arith.log1p(r2[:, None, None] * plain_distance(q, k, bidirectional))


def plain_kerple_power(q, k, a, p, bidirectional):
    return 0.0 - a[:, None, None] * _arith.power(plain_distance(q, k, bidirectional), p[:, None, None])


def plain_sandwich(q, k, dim, num_heads, bidirectional):
    distance = plain_distance(q, k, bidirectional)
    inv_freq = _arith.power(10_000.0, -2.0 * np.arange(1, 1 + dim // 2, dtype=np.float64) / dim)
    kernel = _arith.cos(distance[..., None] * inv_freq).sum(axis=-1) - dim / 2
    h = np.arange(1, num_heads + 1, dtype=np.float64)
    return kernel[None] / (h * 8.0 / num_heads)[:, None, None]


def plain_fire_ratio(q, k, c, threshold, eps):
    q, k = np.asarray(q, dtype=np.float64), np.asarray(k, dtype=np.float64)

    def psi(x):
        return _arith.log1p(np.abs(c * x))

    return psi(q[:, None] - k[None, :]) / (psi(np.maximum(q, threshold))[:, None] + eps)


def plain_fire_bias(q, k, w1, b1, w2, b2, c, threshold, eps):
    z = plain_fire_ratio(q, k, c, threshold, eps)
    activation = np.maximum(z[..., None] * w1[0] + b1, 0.0)
    return np.moveaxis(_arith.matmul(activation, w2) + b2, -1, 0)


def plain_deberta_scores(q, k, pos_key, pos_query, qp, kp, bucket_size, max_position):
    span = max_position if bucket_size is None else bucket_size
    relative_position = np.asarray(kp, dtype=np.int64)[None, :] - np.asarray(qp, dtype=np.int64)[:, None]
    if bucket_size is not None:
        relative_position = _deberta_buckets(relative_position, bucket_size, max_position)
    row = np.clip(-relative_position + span, 0, 2 * span - 1)
    scores = _arith.einsum("...htd,...hsd->...hts", q, k)
    c2p_all = _arith.einsum("...htd,hrd->...htr", q, pos_key)
    scores = scores + np.take_along_axis(c2p_all, np.broadcast_to(row, scores.shape), axis=-1)
    p2c_all = _arith.einsum("...hsd,hrd->...hsr", k, pos_query)
    index = np.broadcast_to(row.T, (*scores.shape[:-2], k.shape[-2], q.shape[-2]))
    scores = scores + np.swapaxes(np.take_along_axis(p2c_all, index, axis=-1), -1, -2)
    return scores / np.sqrt(q.shape[-1] * 3)


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


# -- positions covering every gather ----------------------------------------------------------

KINDS = ["both_runs", "key_run", "query_run", "any", "sparse", "fractional", "empty"]


def position_pair(rng, kind, num_queries, num_keys):
    """Query and key positions (float64) of one of the kinds the difference tables distinguish."""
    if kind == "empty":
        return np.arange(float(num_queries)), np.zeros(0)
    start_q, start_k = rng.integers(0, 50, 2)
    run_q = start_q + np.arange(num_queries, dtype=np.float64)
    run_k = start_k + np.arange(num_keys, dtype=np.float64)
    any_q = rng.integers(0, 60, num_queries).astype(np.float64)
    any_k = rng.integers(0, 60, num_keys).astype(np.float64)
    if kind == "both_runs":
        return run_q, run_k
    if kind == "key_run":
        return any_q, run_k
    if kind == "query_run":
        return run_q, any_k
    if kind == "any":
        return any_q, any_k
    if kind == "sparse":  # offsets spread far wider than T * S: no table
        return rng.integers(0, 2**40, num_queries).astype(np.float64), rng.integers(0, 2**40, num_keys).astype(
            np.float64)
    return rng.uniform(0, 60, num_queries), rng.uniform(0, 60, num_keys)


def sizes(mode):
    """(max T, max S) drawn per mode: precise arithmetic runs on small matrices."""
    return (40, 120) if mode == "fast" else (7, 9)


bias_draws = dict(kind=st.sampled_from(KINDS), seed=st.integers(0, 2**16), t=st.integers(1, 40),
                  s=st.integers(1, 120))


def draw_positions(mode, kind, seed, t, s, *, integer=False, contracts=False):
    """Positions of ``kind``; ``contracts``: the function contracts through _arith (its precise
    einsum takes no empty operand, in the plain formula as in the function)."""
    rng = np.random.default_rng(seed)
    max_t, max_s = sizes(mode)
    t, s = min(t, max_t), min(s, max_s)
    if (integer and kind == "fractional") or (contracts and mode == "precise" and kind == "empty"):
        kind = "any"
    q, k = position_pair(rng, kind, t, s)
    if integer:
        q, k = q.astype(np.int64), k.astype(np.int64)
    return rng, q, k


# -- rotations ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@given(
    lead=st.lists(st.integers(0, 3), min_size=0, max_size=3),
    pairs=st.integers(1, 12),
    layout=st.sampled_from(["half", "interleaved"]),
    rotated_slice=st.sampled_from(["first", "last", "first_pairs"]),
    freq_denominator=st.sampled_from(["rotary_dim", "head_dim"]),
    fraction=st.floats(0.0, 1.0),
    position_offset=st.sampled_from([0, 3.5]),
    per_sequence=st.booleans(),
    transposed=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_apply_rope_equals_plain_formula(mode, lead, pairs, layout, rotated_slice, freq_denominator, fraction,
                                         position_offset, per_sequence, transposed, seed):
    rng = np.random.default_rng(seed)
    if mode == "precise":
        lead, pairs = lead[:2], min(pairs, 4)
    head_dim = 2 * pairs
    rotary_dim = 2 * max(1, round(fraction * pairs))
    x = features(rng, (*lead, head_dim))
    if transposed and x.ndim >= 3:  # a non-contiguous view is read in place
        x = np.swapaxes(features(rng, x.shape[:-3] + (x.shape[-2], x.shape[-3], head_dim)), -2, -3)
    if per_sequence and x.ndim >= 3:
        positions = rng.integers(0, 10_000, x.shape[:-3] + (1, x.shape[-2]))  # (B, 1, T)
    else:
        positions = rng.uniform(0, 10_000, x.shape[-2:-1] if x.ndim > 1 else ())
    options = dict(layout=layout, rotary_dim=rotary_dim, rotated_slice=rotated_slice,
                   freq_denominator=freq_denominator, position_offset=position_offset)
    with arithmetic(mode):
        assert same_bits(apply_rope(x, positions, **options), plain_rope(x, positions, **options))


@pytest.mark.parametrize("mode", MODES)
@given(
    x_shape=st.lists(st.integers(1, 4), min_size=0, max_size=3),
    angle_shape=st.lists(st.integers(1, 4), min_size=0, max_size=3),
    pairs=st.integers(1, 9),
    layout=st.sampled_from(["half", "interleaved"]),
    as_list=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_apply_rotary_equals_plain_formula(mode, x_shape, angle_shape, pairs, layout, as_list, seed):
    rng = np.random.default_rng(seed)
    # make the two leading shapes broadcast: every axis of one is 1 or equals the other's
    n = min(len(x_shape), len(angle_shape))
    for i in range(1, n + 1):
        if x_shape[-i] != angle_shape[-i] and 1 not in (x_shape[-i], angle_shape[-i]):
            angle_shape[-i] = 1
    if mode == "precise":
        pairs = min(pairs, 3)
    x = features(rng, (*x_shape, 2 * pairs))
    angles = rng.uniform(-20, 20, (*angle_shape, pairs))
    with arithmetic(mode):
        expected = plain_rotary(x, angles, layout)
        actual = apply_rotary(x.tolist() if as_list else x, angles, layout=layout)  # lists: the checked copy
        assert same_bits(actual, expected)


@pytest.mark.parametrize("mode", MODES)
@given(
    lead=st.lists(st.integers(1, 3), min_size=0, max_size=2),
    t=st.integers(1, 30),
    pairs=st.integers(1, 8),
    layout=st.sampled_from(["half", "interleaved"]),
    downscale=st.booleans(),
    centering=st.sampled_from(["ceil_half", "floor_half", "none"]),
    scale_base=st.sampled_from([512.0, 7.0]),
    seed=st.integers(0, 2**16),
)
def test_apply_xpos_equals_plain_formula(mode, lead, t, pairs, layout, downscale, centering, scale_base, seed):
    rng = np.random.default_rng(seed)
    if mode == "precise":
        t, pairs = min(t, 6), min(pairs, 3)
    x = features(rng, (*lead, t, 2 * pairs))
    positions = rng.integers(0, 200, t)
    options = dict(layout=layout, downscale=downscale, centering=centering, scale_base=scale_base)
    with arithmetic(mode):
        assert same_bits(apply_xpos(x, positions, **options), plain_xpos(x, positions, **options))


@pytest.mark.parametrize("mode", MODES)
@given(
    t=st.integers(1, 30),
    quads=st.integers(1, 6),
    batch=st.booleans(),
    layout=st.sampled_from(["half", "interleaved"]),
    axis_order=st.sampled_from(["xy", "yx"]),
    frequencies=st.sampled_from(["per_axis", "even_odd"]),
    coordinates=st.sampled_from(["fractional", "integer", "grid", "spread", "signed_zero"]),
    seed=st.integers(0, 2**16),
)
def test_apply_axial_rope_equals_plain_formula(mode, t, quads, batch, layout, axis_order, frequencies, coordinates,
                                               seed):
    rng = np.random.default_rng(seed)
    if mode == "precise":
        t, quads = min(t, 6), min(quads, 2)
    x = features(rng, ((2, 3) if batch else ()) + (t, 4 * quads))
    # integer coordinates read cos/sin from a table per axis (unless their range exceeds the token count)
    positions_2d = {"fractional": lambda: rng.uniform(0, 40, (2, t)),
                    "integer": lambda: rng.integers(0, 6, (2, t)),
                    "grid": lambda: np.stack(np.divmod(np.arange(t) + int(rng.integers(0, 1000)), 5)),
                    "spread": lambda: rng.integers(0, 2**40, (2, t)),
                    "signed_zero": lambda: rng.integers(0, 3, (2, t)) * rng.choice([-0.0, 1.0], (2, t))}[coordinates]()
    options = dict(axis_order=axis_order, frequencies=frequencies)
    with arithmetic(mode):
        angles = axial_rope_angles(positions_2d, 4 * quads, **options)
        expected = plain_rotary(x, np.broadcast_to(angles, x.shape[:-1] + angles.shape[-1:]), layout)
        assert same_bits(apply_axial_rope(x, positions_2d, layout=layout, **options), expected)


@pytest.mark.parametrize("mode", MODES)
@given(
    t=st.integers(1, 30),
    section=st.sampled_from([(1, 1, 1), (2, 1, 1), (4, 2, 2), (2, 3, 3)]),
    interleaved=st.booleans(),
    layout=st.sampled_from(["half", "interleaved"]),
    broadcast_x=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_apply_mrope_equals_plain_formula(mode, t, section, interleaved, layout, broadcast_x, seed):
    rng = np.random.default_rng(seed)
    if interleaved and (3 * section[1] > sum(section) or 3 * section[2] > sum(section) + 1):
        section = (sum(section) - 2, 1, 1) if sum(section) >= 3 else (1, 1, 1)
    if mode == "precise":
        t = min(t, 6)
    d = 2 * sum(section)
    x = features(rng, (d,) if broadcast_x else (2, t, d))  # a single vector is broadcast to every token
    positions = rng.integers(0, 50, (3, 1, t))
    with arithmetic(mode):
        order = "round_robin" if interleaved else "blocks"
        angles = mrope_angles(positions, d, mrope_section=section, section_order=order)
        rows = np.broadcast_shapes(x.shape[:-1], angles.shape[:-1])
        expected = plain_rotary(np.broadcast_to(x, rows + (d,)), np.broadcast_to(angles, rows + (d // 2,)), layout)
        actual = apply_mrope(x, positions, mrope_section=section, section_order=order, layout=layout)
        assert same_bits(actual, expected)


@pytest.mark.parametrize("mode", MODES)
@given(
    t=st.integers(1, 20),
    per_head=st.booleans(),
    per_sequence=st.booleans(),
    columns=st.integers(0, 8),
    pad_sin=st.sampled_from([1.0, 0.0]),
    position_offset=st.sampled_from([0, 2.5]),
    seed=st.integers(0, 2**16),
)
def test_apply_fope_equals_plain_formula(mode, t, per_head, per_sequence, columns, pad_sin, position_offset, seed):
    rng = np.random.default_rng(seed)
    head_dim, heads, batch = 16, 3, 2
    if mode == "precise":
        t, columns = min(t, 5), max(columns, 1)  # _arith's precise einsum takes no empty contraction
    num_kept = int(np.count_nonzero(fope_frequencies(head_dim, max_sequence_length=60)))
    coef_shape = ((heads,) if per_head else ()) + (num_kept, min(columns, head_dim // 2))
    sin_coef, cos_coef = rng.standard_normal(coef_shape), rng.standard_normal(coef_shape)
    x = features(rng, (batch, heads, t, head_dim))
    positions = rng.uniform(0, 100, (batch, 1, t) if per_sequence else (t,))
    options = dict(max_sequence_length=60, pad_sin=pad_sin, position_offset=position_offset)
    with arithmetic(mode):
        expected = plain_fope(x, positions, sin_coef, cos_coef, **options)
        assert same_bits(apply_fope(x, positions, sin_coef, cos_coef, **options), expected)


@pytest.mark.parametrize("per_head", [False, True])
@pytest.mark.parametrize("t", [4, 5, 300])
def test_apply_fope_series_in_two_threads(monkeypatch, per_head, t):
    # the Fourier series in two halves of the positions, each in its own thread
    monkeypatch.setattr(posref.rope, "_THREAD_MIN_ELEMENTS", 1)
    rng = np.random.default_rng(t)
    head_dim, heads = 64, 3
    num_kept = int(np.count_nonzero(fope_frequencies(head_dim, max_sequence_length=512)))
    coef_shape = ((heads,) if per_head else ()) + (num_kept, 16)
    sin_coef, cos_coef = rng.standard_normal(coef_shape), rng.standard_normal(coef_shape)
    x = features(rng, (2, heads, t, head_dim))
    for positions in (np.arange(t), rng.uniform(0, 500, (2, 1, t))):
        expected = plain_fope(x, positions, sin_coef, cos_coef, max_sequence_length=512, pad_sin=1.0,
                              position_offset=0)
        assert same_bits(apply_fope(x, positions, sin_coef, cos_coef, max_sequence_length=512), expected)


@pytest.mark.parametrize("layout", ["half", "interleaved"])
@pytest.mark.parametrize("rotated_slice", ["first", "first_pairs", "last"])
def test_rotations_in_many_blocks_and_two_threads(monkeypatch, layout, rotated_slice):
    # (2, 3, 700, 64): 512 rows per block, two blocks for each of the six (batch, head) indices,
    # split between two threads
    monkeypatch.setattr(posref.rope, "_THREAD_MIN_ELEMENTS", 1)
    monkeypatch.setattr(posref.rope, "_THREADS", 2)
    rng = np.random.default_rng(0)
    x = features(rng, (2, 3, 700, 64))
    positions = rng.integers(0, 1_000_000, (2, 1, 700))
    options = dict(layout=layout, rotary_dim=48, rotated_slice=rotated_slice, freq_denominator="rotary_dim",
                   position_offset=0)
    assert same_bits(apply_rope(x, positions, **options), plain_rope(x, positions, **options))
    xpos = dict(layout=layout, downscale=True, centering="floor_half", scale_base=512.0)
    assert same_bits(apply_xpos(x, positions[0, 0] % 3000, **xpos), plain_xpos(x, positions[0, 0] % 3000, **xpos))


def test_a_nonfinite_value_is_reported_wherever_it_is(monkeypatch):
    monkeypatch.setattr(posref.rope, "_THREAD_MIN_ELEMENTS", 1)
    monkeypatch.setattr(posref.rope, "_THREADS", 2)
    x = np.ones((2, 2, 9000, 8))  # three blocks of rows per (batch, head), the last one in the second thread
    x[1, 1, 8500, 5] = np.nan
    for call in (lambda: apply_rope(x, np.arange(9000)), lambda: apply_rotary(x, np.zeros(4)),
                 lambda: apply_xpos(x, np.arange(9000)), lambda: apply_axial_rope(x, np.zeros((2, 9000))),
                 lambda: apply_mrope(x, np.zeros((3, 9000)), mrope_section=[2, 1, 1])):
        with pytest.raises(ValueError, match=r"^x must contain only finite values"):
            call()


def test_a_nonfinite_x_is_reported_before_the_other_arguments():
    # as when x was checked first: its error wins over a later argument's
    x = np.full((3, 4), np.inf)
    with pytest.raises(ValueError, match=r"^x must contain only finite values"):
        apply_rope(x, [-1, 0, 1])
    with pytest.raises(ValueError, match=r"^x must contain only finite values"):
        apply_rotary(x, np.zeros(5))
    with pytest.raises(ValueError, match=r"^x must contain only finite values"):
        apply_xpos(x, [0, 1, 2], scale_base=-1.0)
    with pytest.raises(ValueError, match=r"^x must contain only finite values"):
        apply_fope(x, [0, 1, 2], np.eye(1), np.eye(1), max_sequence_length=0)
    finite = np.ones((3, 4))
    with pytest.raises(ValueError, match=r"^positions must hold non-negative values"):
        apply_rope(finite, [-1, 0, 1])


def test_the_input_is_read_in_place_and_left_unchanged():
    x = np.random.default_rng(0).standard_normal((4, 300, 16))
    before = x.copy()
    for out in (apply_rope(x, np.arange(300)), apply_rotary(x, np.ones(8)), apply_xpos(x, np.arange(300))):
        assert not np.shares_memory(out, x)
    assert same_bits(x, before)


# -- ALiBi --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@given(
    **bias_draws,
    heads=st.integers(1, 3),
    form=st.sampled_from(["distance", "symmetric", "key_index", "last_key_anchored"]),
    causal=st.booleans(),
    scale=st.sampled_from([1.0, 0.125, 3.0]),
    sort_keys=st.booleans(),
)
def test_alibi_bias_equals_plain_formula(mode, kind, seed, t, s, heads, form, causal, scale, sort_keys):
    rng, q, k = draw_positions(mode, kind, seed, t, s)
    if sort_keys:
        k = np.sort(k)
    slopes = rng.standard_normal(heads)
    slopes[0] = 0.0 if heads > 1 else slopes[0]
    with arithmetic(mode):
        expected = plain_alibi(slopes, q, k, form=form, causal=causal, scale=scale)
        assert same_bits(alibi_bias(slopes, q, k, form=form, causal=causal, scale=scale), expected)


def test_query_blocks_cover_every_row_once():
    rows = posref.alibi._query_blocks(1000, 512)
    assert len(rows) > 1
    assert np.array_equal(np.concatenate([np.arange(1000)[r] for r in rows]), np.arange(1000))


# -- T5 -----------------------------------------------------------------------------------------

T5_OPTIONS = [(True, 32, 128), (False, 32, 128), (True, 4, 2), (False, 17, 27), (False, 31, 532), (True, 64, 2**53)]


@pytest.mark.parametrize(("bidirectional", "num_buckets", "max_distance"), T5_OPTIONS)
def test_t5_relative_bucket_equals_plain_formula(monkeypatch, bidirectional, num_buckets, max_distance):
    monkeypatch.setattr(posref.rope, "_THREAD_MIN_ELEMENTS", 1)  # the two-thread split too
    options = dict(bidirectional=bidirectional, num_buckets=num_buckets, max_distance=max_distance)
    rng = np.random.default_rng(num_buckets)
    extremes = np.array([-2**63, -2**63 + 1, 2**63 - 1, 2**62, -2**62, 0, 1, -1], dtype=np.int64)
    for r in (np.arange(-20_000, 20_000).reshape(80, 500),  # several blocks
              rng.integers(-2**62, 2**62, (3, 5000)),
              np.concatenate([extremes, rng.integers(-1000, 1000, 5000)]),
              np.asfortranarray(rng.integers(-700, 700, (90, 120))),
              rng.integers(-700, 700, (40, 50)).astype(np.float64),
              rng.integers(-700, 700, (40, 50)).astype(np.int32),
              np.int64(-12), np.zeros((0, 3), dtype=np.int64)):
        expected = plain_bucket(r, **options)
        assert same_bits(t5_relative_bucket(r, **options), expected)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("bidirectional", "num_buckets", "max_distance"), T5_OPTIONS)
@given(**bias_draws, heads=st.integers(1, 3))
def test_t5_relative_bias_equals_plain_formula(mode, bidirectional, num_buckets, max_distance, kind, seed, t, s,
                                               heads):
    options = dict(bidirectional=bidirectional, num_buckets=num_buckets, max_distance=max_distance)
    rng, q, k = draw_positions(mode, kind, seed, t, s, integer=True)
    table = rng.standard_normal((num_buckets, heads))
    with arithmetic(mode):
        assert same_bits(t5_relative_bias(table, q, k, **options), plain_t5_bias(table, q, k, **options))


def test_t5_relative_bias_with_far_apart_positions():
    # offsets spread beyond T * S: a clipped table when max_distance is short, else the plain path
    q = np.array([0, 5, 2**40, 2**62])
    k = np.array([3, 2**41, 2**62 + 7, 2**63 - 1, 0])
    table = np.random.default_rng(0).standard_normal((32, 2))
    for max_distance in (128, 2**53):
        options = dict(bidirectional=True, num_buckets=32, max_distance=max_distance)
        assert same_bits(t5_relative_bias(table, q, k, **options), plain_t5_bias(table, q, k, **options))


# -- Shaw ---------------------------------------------------------------------------------------


@given(**bias_draws, max_relative_position=st.integers(1, 40), width=st.integers(1, 5))
def test_shaw_relative_index_and_embeddings_equal_plain_formula(kind, seed, t, s, max_relative_position, width):
    rng, q, k = draw_positions("fast", kind, seed, t, s, integer=True)
    index = plain_shaw_index(q, k, max_relative_position)
    assert same_bits(shaw_relative_index(q, k, max_relative_position=max_relative_position), index)
    table = features(rng, (2 * max_relative_position + 1, width))
    embeddings = shaw_relative_embeddings(table, q, k, max_relative_position=max_relative_position)
    assert same_bits(embeddings, table[index])


# -- KERPLE, Sandwich, FIRE ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@given(**bias_draws, heads=st.integers(1, 3), bidirectional=st.booleans())
def test_kerple_biases_equal_plain_formula(mode, kind, seed, t, s, heads, bidirectional):
    rng, q, k = draw_positions(mode, kind, seed, t, s)
    r1, r2 = rng.uniform(0, 2, heads), rng.uniform(0, 2, heads)
    a, p = rng.uniform(0, 2, heads), rng.uniform(0.01, 2, heads)
    r1[0], p[-1] = 0.0, 1.0
    with arithmetic(mode):
        assert same_bits(kerple_log_bias(q, k, r1=r1, r2=r2, bidirectional=bidirectional),
                         plain_kerple_log(q, k, r1, r2, bidirectional))
        assert same_bits(kerple_power_bias(q, k, a=a, p=p, bidirectional=bidirectional),
                         plain_kerple_power(q, k, a, p, bidirectional))


@pytest.mark.parametrize("mode", MODES)
@given(**bias_draws, heads=st.integers(1, 3), dim=st.sampled_from([2, 8, 18]), bidirectional=st.booleans())
def test_sandwich_bias_equals_plain_formula(mode, kind, seed, t, s, heads, dim, bidirectional):
    _, q, k = draw_positions(mode, kind, seed, t, s)
    with arithmetic(mode):
        actual = sandwich_bias(q, k, dim=dim, num_heads=heads, bidirectional=bidirectional)
        assert same_bits(actual, plain_sandwich(q, k, dim, heads, bidirectional))


@pytest.mark.parametrize("mode", MODES)
@given(**bias_draws, heads=st.integers(1, 3), hidden=st.integers(1, 5), threshold=st.sampled_from([0.0, 20.0, 512.0]))
def test_fire_equals_plain_formula(mode, kind, seed, t, s, heads, hidden, threshold):
    rng, q, k = draw_positions(mode, kind, seed, t, s, contracts=True)
    w1, b1 = rng.standard_normal((1, hidden)), rng.standard_normal(hidden)
    w2, b2 = rng.standard_normal((hidden, heads)), rng.standard_normal(heads)
    options = dict(c=0.1, threshold=threshold, eps=1e-6)
    with arithmetic(mode):
        assert same_bits(fire_normalized_distance(q, k, **options), plain_fire_ratio(q, k, 0.1, threshold, 1e-6))
        assert same_bits(fire_bias(q, k, w1, b1, w2, b2, **options),
                         plain_fire_bias(q, k, w1, b1, w2, b2, 0.1, threshold, 1e-6))


@pytest.mark.parametrize("mode", MODES)
def test_signed_zero_positions_give_the_plain_bits(mode):
    # -0.0 is a valid (non-negative) position; the float differences the plain formulas take can
    # be -0.0 where the table's offset 0 is +0.0, and every formula must still agree bit for bit
    q = np.array([-0.0, 0.0, 1.0, 2.0])
    k = np.array([0.0, -0.0, 1.0, 3.0, -0.0])
    one = np.array([1.0])
    w1, b1, w2, b2 = np.ones((1, 2)), np.array([0.0, -0.0]), np.ones((2, 1)), np.array([-0.0])
    with arithmetic(mode):
        for form in ("distance", "symmetric"):
            for causal in (False, True):
                assert same_bits(alibi_bias([0.5, -0.25], q, k, form=form, causal=causal),
                                 plain_alibi(np.array([0.5, -0.25]), q, k, form=form, causal=causal, scale=1.0))
        for bidirectional in (False, True):
            assert same_bits(kerple_log_bias(q, k, r1=one, r2=one, bidirectional=bidirectional),
                             plain_kerple_log(q, k, one, one, bidirectional))
            assert same_bits(kerple_power_bias(q, k, a=one, p=one, bidirectional=bidirectional),
                             plain_kerple_power(q, k, one, one, bidirectional))
            assert same_bits(sandwich_bias(q, k, dim=4, num_heads=1, bidirectional=bidirectional),
                             plain_sandwich(q, k, 4, 1, bidirectional))
        assert same_bits(fire_bias(q, k, w1, b1, w2, b2, threshold=0.0),
                         plain_fire_bias(q, k, w1, b1, w2, b2, 0.1, 0.0, 1e-6))


def bucket_inputs(rng, chunk):
    """Integer arrays whose chunks of ``chunk`` elements lie inside or outside the first chunk's window."""
    extremes = np.array([-2**63, -2**63 + 1, 2**63 - 1, 2**62, -2**62, 0, 1, -1], dtype=np.int64)
    p = np.arange(90)
    return [
        p[None, :] - p[:, None],  # a relative-position matrix: every chunk within the first one's window
        np.concatenate([rng.integers(-40, 40, chunk), rng.integers(-5000, 5000, 7 * chunk),
                        rng.integers(-40, 40, 3 * chunk)]),  # wide chunks between narrow ones
        np.concatenate([rng.integers(-300, 300, 2 * chunk), extremes, rng.integers(-300, 300, 5 * chunk)]),
        np.concatenate([rng.integers(-3, 3, chunk), rng.integers(2**40, 2**40 + 50, 4 * chunk)]),  # far, narrow
        rng.integers(-600, 600, (7, 3 * chunk + 5)),
    ]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("chunk", [64, 999])
def test_buckets_in_windows_equal_plain_formula(monkeypatch, mode, chunk):
    # chunks of the window gather (posref._difference.gather_in_window) small enough to have many
    monkeypatch.setattr(posref._difference, "_CHUNK_ITEMS", chunk)
    monkeypatch.setattr(posref.rope, "_THREAD_MIN_ELEMENTS", 1)  # the two-thread split too
    rng = np.random.default_rng(chunk)
    with arithmetic(mode):
        for r in bucket_inputs(rng, chunk):
            for bidirectional, num_buckets, max_distance in T5_OPTIONS:
                options = dict(bidirectional=bidirectional, num_buckets=num_buckets, max_distance=max_distance)
                assert same_bits(t5_relative_bucket(r, **options), plain_bucket(r, **options)), options
            for bucket_size, max_position in [(256, 512), (4, 11), (8, 30)]:
                expected = _deberta_buckets(np.asarray(r, dtype=np.int64), bucket_size, max_position)
                assert same_bits(deberta_log_bucket(r, bucket_size=bucket_size, max_position=max_position), expected)


def test_window_gather_returns_the_chunks_outside():
    table = posref._difference.wrapped_table(lambda r: 10 * r, 4)  # r = -4 .. 4
    assert table.tolist() == [0, 10, 20, 30, 40, -40, -30, -20, -10]
    values = np.array([-4, 4, 0, 9, -1, 2], dtype=np.int64)
    out = np.full(6, -99, dtype=np.int64)
    original = posref._difference._CHUNK_ITEMS
    try:
        posref._difference._CHUNK_ITEMS = 2
        missed = posref._difference.gather_in_window(values, out, table, 4, lambda calls, size: [c() for c in calls])
    finally:
        posref._difference._CHUNK_ITEMS = original
    assert missed == [slice(2, 4)]
    assert out.tolist() == [-40, 40, -99, -99, -10, 20]
    assert posref._difference.window_radius(values, 2, 100) == 16  # 9 in the first chunk: the next power of two
    assert posref._difference.window_radius(values, 2, 20) is None  # 33 entries would exceed the limit
    assert posref._difference.window_radius(values[:0], 2, 100) is None


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("bidirectional", "num_buckets", "max_distance"), T5_OPTIONS[:5])
def test_t5_near_boundary_table_equals_the_value_per_element(mode, bidirectional, num_buckets, max_distance):
    from posref.conformance.tolerance import t5_near_boundary

    options = dict(bidirectional=bidirectional, num_buckets=num_buckets, max_distance=max_distance)
    rng = np.random.default_rng(num_buckets)
    p = np.arange(300)
    with arithmetic(mode):
        for r in (p[None, :] - p[:, None], rng.integers(-2000, 2000, (40, 70)), rng.integers(-5, 5, 50)):
            for dtype in ("float32", "float64"):
                # a float array of the same integers takes the per-element evaluation
                per_element = t5_near_boundary(r.astype(np.float64), **options, dtype=dtype)
                assert same_bits(t5_near_boundary(r, **options, dtype=dtype), per_element)


# -- DeBERTa ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@given(shape=st.lists(st.integers(0, 30), min_size=0, max_size=2), spread=st.sampled_from([10, 600, 2**40]),
       options=st.sampled_from([(256, 512), (4, 11), (8, 30)]), seed=st.integers(0, 2**16))
def test_deberta_log_bucket_equals_plain_formula(mode, shape, spread, options, seed):
    r = np.random.default_rng(seed).integers(-spread, spread, shape)
    bucket_size, max_position = options
    with arithmetic(mode):
        expected = _deberta_buckets(np.asarray(r, dtype=np.int64), bucket_size, max_position)
        assert same_bits(deberta_log_bucket(r, bucket_size=bucket_size, max_position=max_position), expected)


@pytest.mark.parametrize("mode", MODES)
@given(**bias_draws, options=st.sampled_from([(4, 11), (None, 5), (8, 30)]))
def test_deberta_relative_scores_equal_plain_formula(mode, kind, seed, t, s, options):
    rng, qp, kp = draw_positions(mode, kind, seed, min(t, 12), min(s, 12), integer=True, contracts=True)
    bucket_size, max_position = options
    span = max_position if bucket_size is None else bucket_size
    q, k = rng.standard_normal((2, qp.size, 3)), rng.standard_normal((2, kp.size, 3))
    pos_key, pos_query = rng.standard_normal((2, 2 * span, 3)), rng.standard_normal((2, 2 * span, 3))
    with arithmetic(mode):
        actual = deberta_relative_scores(q, k, pos_key, pos_query, qp, kp, bucket_size=bucket_size,
                                         max_position=max_position)
        assert same_bits(actual, plain_deberta_scores(q, k, pos_key, pos_query, qp, kp, bucket_size, max_position))


# -- the difference tables themselves -----------------------------------------------------------


@given(kind=st.sampled_from(KINDS[:-1]), seed=st.integers(0, 2**16), t=st.integers(1, 30), s=st.integers(1, 30),
       lead=st.integers(0, 2))
def test_offsets_fill_is_table_at_key_minus_query(kind, seed, t, s, lead):
    rng = np.random.default_rng(seed)
    q, k = position_pair(rng, "any" if kind in ("sparse", "fractional") else kind, t, s)
    found = posref._difference.offsets(q, k, max_size=10**6)
    table = rng.standard_normal((2,) * lead + (found.size,))
    out = found.fill(table, np.empty((2,) * lead + (t, s)), lead=lead)
    r = (k[None, :] - q[:, None]).astype(np.int64) - found.lo
    assert same_bits(out, table[..., r])


def test_offsets_refuse_fractional_or_spread_positions():
    assert posref._difference.offsets(np.array([0.5, 1.0]), np.array([0.0])) is None
    assert posref._difference.offsets(np.array([0.0, 2.0**60]), np.array([0.0])) is None
    assert posref._difference.offsets(np.array([0, 10_000]), np.array([0, 1])) is None  # 10001 offsets > T * S
    found = posref._difference.offsets(np.arange(5), np.arange(3, 10))
    assert (found.lo, found.hi, found.size) == (-1, 9, 11)


# -- sincos_2d_encoding ------------------------------------------------------------------------


@pytest.mark.parametrize("class_token", [False, True])
@pytest.mark.parametrize("grouping", ["axis", "sin_cos"])
@pytest.mark.parametrize("axis_order", ["xy", "yx"])
def test_sincos_2d_encoding_equals_plain_formula(axis_order, grouping, class_token):
    for grid_shape, dim in [((1, 1), 4), ((3, 5), 12), ((14, 14), 768)]:
        options = dict(axis_order=axis_order, grouping=grouping, class_token=class_token)
        assert same_bits(sincos_2d_encoding(grid_shape, dim, **options),
                         plain_sincos_2d(grid_shape, dim, **options))


# -- memory -------------------------------------------------------------------------------------


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
    # the result, the cos/sin tables (1/8 of x each, twice over) and one block; x is read in place
    assert peak_over_output(lambda: apply_rope(x, positions)) < 1.7
    p = np.arange(1024)  # 8 MiB per head
    assert peak_over_output(lambda: alibi_bias(np.array([0.5]), p, p)) < 1.1
    assert peak_over_output(lambda: t5_relative_bias(np.ones((32, 1)), p, p)) < 1.1
    assert peak_over_output(lambda: kerple_log_bias(p, p, r1=[1.0], r2=[0.5])) < 1.1
    relative_position = p[None, :] - p[:, None]
    # an int64 input is read in place: the result and small blocks
    assert peak_over_output(lambda: t5_relative_bucket(relative_position)) < 1.1
    # the two phase tables (a quarter of the output each), the result, one block
    assert peak_over_output(lambda: sincos_2d_encoding((14, 14), 768, class_token=True)) < 2.0
