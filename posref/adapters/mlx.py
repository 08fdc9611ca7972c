"""Adapter for Apple MLX on its CPU back end (``pip install "mlx[cpu]==0.32.4"``).

Checked with mlx 0.32.4 (``mlx-cpu`` 0.32.4, the Linux CPU build) on
x86-64; pinned in ``conformance/constraints-new-heavy.txt``.  MLX does not
use torch; arrays go in and out through NumPy (bfloat16 through float32,
which holds every bfloat16 value).

What it maps, and the library's conventions
-------------------------------------------

``apply_rope``
    ``mx.fast.rope(x, dims, traditional=..., base=..., scale=1.0,
    offset=...)`` (a C++ kernel; ``nn.RoPE`` is a thin wrapper around it).
    ``traditional=False`` is the half layout (``rotate_half``: channel
    ``j`` pairs with ``j + dims/2``), ``traditional=True`` the interleaved
    layout (pairs ``2i, 2i+1``).  ``dims < D`` rotates the *first* ``dims``
    channels with the exponent denominator ``dims``
    (``rotated_slice="first"``, ``freq_denominator="rotary_dim"``).  The
    kernel places token ``t`` of the second-to-last axis at position
    ``offset + t``; ``offset`` is an integer or an integer array with one
    offset per batch row.  When the positions are ``p0 + 0 .. T-1`` for
    every row, the adapter calls ``nn.RoPE(dims, traditional, base)(x,
    offset=p0)``; otherwise it gives every token its own batch row (``x``
    as ``(N, 1, D)``) with ``offset=mx.array(positions)``.  Integer
    positions only (the kernel refuses a float offset); a position offset is
    added to them.

    ``freq_denominator="head_dim"`` is expressed through ``freqs=``, which
    takes the *periods* ``base ** (2i / D)`` (the kernel uses their
    reciprocals): for ``rotated_slice="first"`` ``dims = r`` with ``r/2``
    periods, and for ``rotated_slice="first_pairs"`` (Gemma 4's
    proportional RoPE) ``dims = D`` with ``r/2`` periods followed by
    infinite ones (zero frequency: those pairs are not turned).  The last
    ``r`` channels (``rotated_slice="last"``) cannot be rotated.
``rope_cos_sin``
    The kernel applied to unit vectors: each pair ``(1, 0)`` comes back as
    ``(cos, sin)`` of its angle, computed exactly as the kernel computes the
    rotation of real data (one token per row, ``offset=positions``), then
    expanded to one entry per channel for the requested layout.
``apply_rotary``
    ``mx.fast.rope(..., base=None, freqs=periods, offset=1)`` for each
    token (``freqs`` is one vector per call, so one call per token): the
    periods are float32 values whose float32 reciprocals are nearest to
    the given angles, so the kernel turns by the angles rounded to float32
    about once.  A zero angle is an infinite period (zero frequency).
``sinusoidal_encoding``
    ``nn.SinusoidalPositionalEncoding(dim, min_freq=1/base, max_freq=1,
    scale=1, cos_first=False)``: ``[sin | cos]`` (``layout="concat"``) with
    frequencies ``exp((1 - i/(dim/2 - 1)) ln(max_freq/min_freq) +
    ln min_freq) = base ** (-i/(dim/2 - 1))`` (tensor2tensor and fairseq,
    ``freq_denominator="half_dim_minus_one"``), computed in float32.  The
    module's default ``scale`` is ``sqrt(2/dim)``; the adapter sets 1.
    Positions are given as float32 (fractional ones included); the table
    comes back in float32 and is cast to the dtype under test, as it would
    be when added to activations of that dtype.
``alibi_slopes``
    ``nn.ALiBi.create_alibi_slope(num_heads)``: the paper's rule
    (``max_bias=8``), computed in Python floats and returned in float32
    (its default ``dtype``; ``ALiBi.__call__`` asks for the dtype of the
    scores, which ``alibi_bias`` covers).
``alibi_bias``
    ``nn.ALiBi.create_alibi_matrix(q_sequence_length, k_sequence_length,
    num_heads, offset, dtype)``: ``-slope * |i - j|`` (posref
    ``form="symmetric"``) for queries ``offset .. q_sequence_length - 1``
    and keys ``0 .. S - 1``; every run of consecutive query positions is
    one call.  It computes its own slopes from the head count: the case's
    slopes must be those (to two float32 roundings, or rounded to the
    dtype).  MLX does not mask; for ``causal=True`` the adapter applies the
    causal mask (``-inf``), on which ``form="distance"`` equals the
    symmetric form, so both forms are mapped for causal attention.

Not expressible: frequency tables (MLX never returns them: the kernel
computes its frequencies internally), RoPE scaling rules (``scale``
multiplies positions, and mlx-lm, not MLX, builds Llama 3 or YaRN periods
for ``freqs=``), M-RoPE, T5, and the other families.

Precision: ``mx.fast.rope`` on the CPU computes angles and cos/sin in
float32 and rotates in float32, rounding the result to the dtype of ``x``;
float64 inputs would be rotated with float32 angles, so float64 is not
offered.

Divergences found
-----------------

Over the golden cases every RoPE case conforms in float32, float16 and
bfloat16, the positions near 2**20 included.  Listed with case ids and
numbers in ``posref/adapters/known/mlx-<dtype>.txt``:

* ``nn.SinusoidalPositionalEncoding`` computes its frequencies as
  ``exp(float32 argument)``: the argument (up to ``ln 10000 = 9.21``) is
  rounded before ``exp``, so the frequencies are up to 7.8e-7 relative off
  (frequency 9 of dim 64: 0.06897790 for 0.06897785, an angle error of
  1.9e-4 at position 4095).
* ``nn.ALiBi.create_alibi_matrix`` multiplies int32 distances by slopes of
  the scores' dtype, so in float16 and bfloat16 the distance itself is
  rounded first (742 becomes 744 in bfloat16).
* ``mx.fast.rope`` accepts a negative offset without a check.
"""

from __future__ import annotations

import numpy as np

ADAPTER_NAME = "mlx"
ADAPTER_VERSION = "0.32.4"
ADAPTER_DTYPES = ("float32", "float16", "bfloat16")
ADAPTER_DEVICES = ("cpu",)

#: Most tokens apply_rotary rotates (one kernel call per token).
_ROTARY_ROWS = 1 << 14


def available():
    try:
        import mlx.core  # noqa: F401
        import mlx.nn  # noqa: F401
    except Exception as exc:  # ImportError, or a broken install raising something else
        return f"mlx cannot be imported ({type(exc).__name__}: {exc}); pip install \"mlx[cpu]\""
    return None


def make_adapter(*, dtype, device):
    return MlxAdapter(dtype=dtype)


def _positions_as_int(positions, name="positions"):
    positions = np.asarray(positions)
    if positions.dtype.kind in "iu":
        return positions.astype(np.int64)
    as_float = positions.astype(np.float64)
    if not np.all(np.isfinite(as_float)) or not np.all(as_float == np.round(as_float)):
        raise NotImplementedError(f"mx.fast.rope takes an integer offset; fractional {name} cannot be expressed")
    return as_float.astype(np.int64)


def _matching_slopes(given, library, rounded):
    given = np.asarray(given, dtype=np.float64)
    if given.shape != library.shape:
        return False
    return (np.allclose(given, library, rtol=2.0**-22, atol=0.0)
            or np.array_equal(given, rounded))


def _periods(angles):
    """float32 periods whose float32 reciprocals are nearest to ``angles`` (0 -> inf, a zero frequency).

    ``freqs=`` takes periods and the kernel turns by their float32
    reciprocals; of ``1/angle`` rounded to float32 and its neighbours within
    four units in the last place, the one whose reciprocal is closest to the
    angle is taken, so the angle is rounded about once, not twice.
    """
    a = np.asarray(angles, dtype=np.float64)
    with np.errstate(divide="ignore", over="ignore"):
        start = (1.0 / a).astype(np.float32)
        best, best_error = start.copy(), np.full(a.shape, np.inf)
        for step in range(-4, 5):
            candidate = start.copy()
            direction = np.float32(np.inf) if step > 0 else np.float32(-np.inf)
            for _ in range(abs(step)):
                candidate = np.nextafter(candidate, direction, dtype=np.float32)
            error = np.abs((np.float32(1.0) / candidate).astype(np.float64) - a)
            better = error < best_error
            best, best_error = np.where(better, candidate, best), np.where(better, error, best_error)
    return np.where(a == 0.0, np.float32(np.inf), best).astype(np.float32)


class MlxAdapter:
    """MLX's position code, called like posref's spec functions."""

    def __init__(self, *, dtype):
        self.dtype = dtype

    # -- conversions -------------------------------------------------------------------------

    def _mx_dtype(self):
        import mlx.core as mx

        return {"float32": mx.float32, "float16": mx.float16, "bfloat16": mx.bfloat16}[self.dtype]

    def _array(self, x):
        import mlx.core as mx

        return mx.array(np.asarray(x, dtype=np.float32)).astype(self._mx_dtype())

    @staticmethod
    def _numpy(a):
        import mlx.core as mx

        if a.dtype == mx.bfloat16:
            a = a.astype(mx.float32)
        return np.array(a)

    @staticmethod
    def _check_layout(layout):
        if layout not in ("half", "interleaved"):
            raise NotImplementedError(f"mx.fast.rope has no layout {layout!r}; traditional=False is 'half', "
                                      "traditional=True is 'interleaved'")

    # -- RoPE ------------------------------------------------------------------------------

    def _rope_rows(self, rows, positions, dims, traditional, base, freqs):
        """mx.fast.rope on rows (N, D), token n at positions[n]: one token per batch row."""
        import mlx.core as mx

        positions = np.asarray(positions, dtype=np.int64).reshape(-1)
        if positions.size and (positions.max() > np.iinfo(np.int32).max or positions.min() < np.iinfo(np.int32).min):
            raise NotImplementedError("mx.fast.rope takes int32 offsets")
        x = self._array(rows)[:, None, :]  # (N, T=1, D)
        out = mx.fast.rope(x, dims, traditional=traditional, base=base, scale=1.0,
                           offset=mx.array(positions.astype(np.int32)), freqs=freqs)
        return self._numpy(out)[:, 0, :]

    def apply_rope(self, x, positions, /, *, base=10_000.0, layout="half", rotary_dim=None,
                   rotated_slice="first", freq_denominator="rotary_dim", position_offset=0):
        import mlx.core as mx
        import mlx.nn as nn

        self._check_layout(layout)
        x = np.asarray(x)
        head_dim = x.shape[-1]
        r = head_dim if rotary_dim is None else int(rotary_dim)
        if not float(position_offset).is_integer():
            raise NotImplementedError("mx.fast.rope takes an integer offset; a fractional offset is not expressible")
        freqs, dims = None, r
        if rotated_slice == "last" and r != head_dim:
            raise NotImplementedError("mx.fast.rope rotates the first `dims` channels; the last ones cannot be "
                                      "rotated (rotated_slice='last')")
        if rotated_slice == "first_pairs" and r != head_dim:
            if layout != "half" or freq_denominator != "head_dim":
                raise NotImplementedError("rotated_slice='first_pairs' is expressed only as Gemma 4's proportional "
                                          "RoPE (half layout, freq_denominator='head_dim')")
            periods = np.full(head_dim // 2, np.inf)
            periods[: r // 2] = float(base) ** (np.arange(0, r, 2) / head_dim)
            freqs, dims = mx.array(periods.astype(np.float32)), head_dim
        elif freq_denominator == "head_dim" and r != head_dim:
            freqs = mx.array((float(base) ** (np.arange(0, r, 2) / head_dim)).astype(np.float32))
        p = _positions_as_int(positions) + int(position_offset)
        base_arg = None if freqs is not None else float(base)
        traditional = layout == "interleaved"
        full = np.broadcast_to(p, x.shape[:-1])
        if x.ndim >= 2 and p.ndim <= 1 and p.size == x.shape[-2] and p.size and np.array_equal(
                p, p[0] + np.arange(p.size)) and freqs is None and np.iinfo(np.int32).min <= p[0] <= 2**31 - 1 - p.size:
            # the common case: tokens p0 .. p0 + T - 1 on the second-to-last axis, for every row
            lead = x.reshape((-1,) + x.shape[-2:])
            rope = nn.RoPE(dims, traditional=traditional, base=base_arg)
            out = self._numpy(rope(self._array(lead), offset=int(p[0])))
            return out.reshape(x.shape)
        out = self._rope_rows(x.reshape(-1, head_dim), full.reshape(-1), dims, traditional, base_arg, freqs)
        return out.reshape(x.shape)

    def rope_cos_sin(self, positions, dim, /, *, base=10_000.0, layout="half"):
        self._check_layout(layout)
        positions = _positions_as_int(positions)
        flat = positions.reshape(-1)
        dim = int(dim)
        half = dim // 2
        unit = np.zeros((flat.size, dim), dtype=np.float32)
        if layout == "half":
            unit[:, :half] = 1.0  # pairs (j, j + dim/2) = (1, 0) -> (cos, sin)
            out = self._rope_rows(unit, flat, dim, False, float(base), None)
            cos, sin = out[:, :half], out[:, half:]
            cos, sin = np.concatenate([cos, cos], -1), np.concatenate([sin, sin], -1)
        else:
            unit[:, 0::2] = 1.0  # pairs (2i, 2i+1) = (1, 0) -> (cos, sin)
            out = self._rope_rows(unit, flat, dim, True, float(base), None)
            cos, sin = np.repeat(out[:, 0::2], 2, -1), np.repeat(out[:, 1::2], 2, -1)
        shape = positions.shape + (dim,)
        return cos.reshape(shape), sin.reshape(shape)

    def apply_rotary(self, x, angles, /, *, layout="half"):
        import mlx.core as mx

        self._check_layout(layout)
        x, angles = np.asarray(x), np.asarray(angles, dtype=np.float64)
        lead = np.broadcast_shapes(x.shape[:-1], angles.shape[:-1])
        d = x.shape[-1]
        rows = np.broadcast_to(x, lead + (d,)).reshape(-1, d)
        a = np.broadcast_to(angles, lead + angles.shape[-1:]).reshape(-1, angles.shape[-1])
        if rows.shape[0] > _ROTARY_ROWS:
            raise NotImplementedError(f"freqs= is one vector per mx.fast.rope call: {rows.shape[0]} tokens would be "
                                      f"{rows.shape[0]} calls (at most {_ROTARY_ROWS})")
        out = np.empty(rows.shape, dtype=np.float32)
        periods = _periods(a)
        traditional = layout == "interleaved"
        for n in range(rows.shape[0]):
            y = mx.fast.rope(self._array(rows[n])[None, None, :], d, traditional=traditional, base=None, scale=1.0,
                             offset=1, freqs=mx.array(periods[n]))
            out[n] = self._numpy(y)[0, 0]
        return out.reshape(lead + (d,))

    # -- sinusoidal ------------------------------------------------------------------------

    def sinusoidal_encoding(self, positions, dim, /, *, base=10_000.0, layout="interleaved", freq_denominator="dim",
                            position_offset=0):
        import mlx.core as mx
        import mlx.nn as nn

        if (layout, freq_denominator) != ("concat", "half_dim_minus_one"):
            raise NotImplementedError("nn.SinusoidalPositionalEncoding writes [sin | cos] (layout='concat') with "
                                      "frequencies from max_freq down to min_freq over dim/2 - 1 steps "
                                      "(freq_denominator='half_dim_minus_one')")
        module = nn.SinusoidalPositionalEncoding(int(dim), min_freq=1.0 / float(base), max_freq=1.0, scale=1.0,
                                                 cos_first=False)
        p = np.asarray(positions, dtype=np.float64) + float(position_offset)
        out = module(mx.array(p.astype(np.float32)))
        return self._numpy(out.astype(self._mx_dtype()))

    # -- ALiBi ------------------------------------------------------------------------------

    def alibi_slopes(self, num_heads, /, *, max_bias=8.0, rule=None):
        import mlx.nn as nn

        if max_bias != 8.0:  # rule: deprecated in the spec, the same slopes whatever its value
            raise NotImplementedError("nn.ALiBi has the paper's slopes with max_bias=8 built in")
        return self._numpy(nn.ALiBi.create_alibi_slope(int(num_heads))).reshape(-1)  # float32, the default

    def alibi_bias(self, slopes, query_positions, key_positions, /, *, form="distance", causal=True, scale=1.0):
        import mlx.nn as nn

        if form not in ("symmetric", "distance"):
            raise NotImplementedError("nn.ALiBi writes -m |i - j| (form='symmetric'; equal to 'distance' under the "
                                      "causal mask)")
        if form == "distance" and not causal:
            raise NotImplementedError("nn.ALiBi's -m |i - j| equals the distance form only where the causal mask "
                                      "keeps keys (causal=True)")
        if scale != 1.0:
            raise NotImplementedError("nn.ALiBi adds the bias to the scaled scores (scale=1) only")
        slopes = np.asarray(slopes)
        if slopes.ndim != 1 or slopes.size == 0:
            raise NotImplementedError("nn.ALiBi computes one slope per head from the head count")
        heads = slopes.shape[0]
        library = self._numpy(nn.ALiBi.create_alibi_slope(heads, dtype=self._mx_float32())).reshape(-1)
        rounded = self._numpy(nn.ALiBi.create_alibi_slope(heads, dtype=self._mx_dtype())).reshape(-1)
        if not _matching_slopes(slopes, library.astype(np.float64), rounded.astype(np.float64)):
            raise NotImplementedError(f"nn.ALiBi computes its own slopes from the head count; these are not its "
                                      f"slopes for {heads} heads")
        q = _positions_as_int(query_positions, "query_positions")
        k = _positions_as_int(key_positions, "key_positions")
        if not np.array_equal(k, np.arange(k.size)):
            raise NotImplementedError("nn.ALiBi places the keys at 0 .. S-1")
        if q.size and q.min() < 0:
            raise NotImplementedError("nn.ALiBi's queries are offset .. T-1 with a non-negative offset")
        out = np.empty((heads, q.size, k.size), dtype=np.float32)
        start = 0
        while start < q.size:  # one call per run of consecutive query positions
            stop = start + 1
            while stop < q.size and q[stop] == q[stop - 1] + 1:
                stop += 1
            first = int(q[start])
            matrix = nn.ALiBi.create_alibi_matrix(q_sequence_length=first + (stop - start),
                                                  k_sequence_length=int(k.size), num_heads=heads, offset=first,
                                                  dtype=self._mx_dtype())  # (1, H, T, S)
            out[:, start:stop] = self._numpy(matrix)[0]
            start = stop
        bias = out.astype(np.float64)
        if causal:
            bias = np.where((k[None, :] > q[:, None])[None], -np.inf, bias)
        return bias

    def _mx_float32(self):
        import mlx.core as mx

        return mx.float32
