"""Adapter for ggml, the tensor library of llama.cpp, through ggml-python 0.0.45.

Checked with ggml-python 0.0.45 (the ggml it vendors, built from its sdist
with CMake for the CPU back end: ``apt-get install -y cmake build-essential``
where they are missing; about 2.5 min on two cores) on x86-64.  Pinned in
``conformance/constraints-new-heavy.txt``.  Each call builds a ggml context,
a one-operation graph, computes it on one thread and copies the result out.

What it maps, and the library's conventions
-------------------------------------------

``apply_rope``
    ``ggml_rope_ext(ctx, a, b, c=NULL, n_dims, mode, n_ctx_orig=0,
    freq_base=base, freq_scale=1, ext_factor=0, attn_factor=1, ...)`` with
    ``a`` of ggml shape ``(D, 1, N)`` (every token its own row, one head) and
    ``b`` the int32 positions.  ``mode=GGML_ROPE_TYPE_NORMAL`` (0) rotates
    pairs ``2i, 2i+1`` (``layout="interleaved"``, llama.cpp's Llama path),
    ``GGML_ROPE_TYPE_NEOX`` (2) pairs ``i, i + n_dims/2``
    (``layout="half"``).  ``n_dims < D`` rotates the first ``n_dims``
    channels with exponent denominator ``n_dims``
    (``rotated_slice="first"``).  The kernel computes the angle of pair
    ``i`` as ``p * theta_scale ** i`` by repeated float32 multiplication
    (``theta *= theta_scale`` per pair, ``theta_scale = base ** (-2/n_dims)``).
    Integer positions only; a position offset is added to them.
``rope_cos_sin``
    The same kernel applied to unit vectors: each pair ``(1, 0)`` comes back
    as ``(cos, sin)`` of its angle, expanded to one entry per channel.
``apply_mrope``
    ``ggml_rope_multi`` with ``sections = (t, h, w, 0)`` and 4 position ids
    per token (the fourth unused): ``GGML_ROPE_TYPE_MROPE`` (8, contiguous
    sections, Qwen2-VL) or ``GGML_ROPE_TYPE_IMROPE`` (40, interleaved
    ``THWTHW...``, Qwen3-VL), pairs ``i, i + D/2`` (``layout="half"``).
``yarn_correction_range``
    ``ggml_rope_yarn_corr_dims(n_dims, n_ctx_orig, freq_base, beta_fast,
    beta_slow, dims)``: floor/ceil (``truncate=True``), clamped to
    ``[0, n_dims - 1]`` (``high_limit="dim"``), computed in float32.
``alibi_slopes``
    ``ggml_soft_max_ext(a, mask, scale=1, max_bias)``, ggml's ALiBi: the
    slope of head ``h`` multiplies the mask, ``m0 ** (h + 1)`` for the
    first ``2 ** floor(log2 H)`` heads and ``m1 ** (2 (h - n) + 1)`` after,
    with ``m0 = 2 ** (-max_bias / n)``, ``m1 = 2 ** (-max_bias / 2 / n)``
    (the paper's rule).  ggml never returns the slopes; the adapter reads
    them back from a softmax over two keys with mask ``(0, -16)``:
    ``slope = ln(p0 / p1) / 16``.  The read-back costs a few float32
    roundings of ``p0 / p1``, about 2e-9 absolute: below the budget of the
    golden slope cases, but for the smallest slopes (one head with
    ``max_bias=9``, slope ``2**-9``) about twice posref's budget.

Not expressible: frequency tables and RoPE scaling rules as tables (ggml
computes its angles inside the kernel from ``freq_base``, ``freq_scale``,
``ext_factor`` and optional ``freq_factors``: llama.cpp computes Llama 3's
factors in its model converter), the ALiBi bias as a tensor (ggml adds
``slope * mask`` inside the softmax), and the other families.

ggml stops the process (``GGML_ASSERT``, then ``abort()``) where other
libraries raise; the adapter, which may run in the caller's process,
refuses those inputs (an odd or too large ``n_dims``, an odd head
dimension for M-RoPE, zero heads) with ``GgmlAbort`` (a ``RuntimeError``)
before calling ggml.

Precision: ``ggml_rope_ext`` takes float32 or float16 activations and
computes in float32; float16 results are rounded once.  No bfloat16 or
float64 RoPE on the CPU back end.

Divergences found
-----------------

Listed with case ids and numbers in ``posref/adapters/known/ggml-<dtype>.txt``:

* the kernel's angles come from repeated float32 products (pair ``i``
  carries about ``i`` roundings): ``rope_cos_sin`` at positions near
  4096 to 2**20 exceeds the budget about 2x (pair 38 at position 4095 is
  1.7e-6 relative off); ``apply_rope`` at base 500000 conforms;
* ``GGML_ROPE_TYPE_IMROPE`` gives the pairs that the height and width
  sections do not take, beyond ``3 * sections[0]``, the fourth position
  id, where Qwen3-VL keeps the temporal one: with sections (24, 20, 20)
  pairs 61 and 62 are not turned (error 0.123 at positions near 1e6);
* inputs on which ggml aborts the process are refused (see above).
"""

from __future__ import annotations

import ctypes

import numpy as np

ADAPTER_NAME = "ggml"
ADAPTER_VERSION = "0.0.45"
ADAPTER_DTYPES = ("float32", "float16")
ADAPTER_DEVICES = ("cpu",)
#: What the adapter does to reach the library (shown by ``posref adapters``).
ADAPTER_NOTES = "refuses inputs on which ggml would abort the process (GGML_ASSERT) before calling it"

#: Key distance in the mask from which alibi_slopes reads the slopes back.
_ALIBI_DISTANCE = 16.0


def available():
    try:
        import ggml  # noqa: F401
        import ggml.utils  # noqa: F401
    except Exception as exc:  # ImportError, or a missing shared library
        return f"ggml-python cannot be imported ({type(exc).__name__}: {exc}); pip install ggml-python"
    return None


def make_adapter(*, dtype, device):
    return GgmlAdapter(dtype=dtype)


def _positions_as_int32(positions, name="positions"):
    positions = np.asarray(positions)
    if positions.dtype.kind not in "iu":
        as_float = positions.astype(np.float64)
        if not np.all(np.isfinite(as_float)) or not np.all(as_float == np.round(as_float)):
            raise NotImplementedError(f"ggml's positions are int32; fractional {name} cannot be expressed")
        positions = as_float
    positions = positions.astype(np.int64)
    if positions.size and (positions.max() > np.iinfo(np.int32).max or positions.min() < np.iinfo(np.int32).min):
        raise NotImplementedError(f"ggml's positions are int32; {name} beyond its range cannot be expressed")
    return positions


class GgmlAbort(RuntimeError):
    """An input on which ggml would stop the process with GGML_ASSERT (abort()), refused before the call."""


def _refuse_abort(condition, what):
    if condition:
        raise GgmlAbort(f"ggml aborts the process (GGML_ASSERT, SIGABRT) on {what}; refused before the call")


class _Graph:
    """A ggml context for one operation: inputs from NumPy, one graph, result to NumPy."""

    def __init__(self, nbytes):
        import ggml

        self._ggml = ggml
        params = ggml.ggml_init_params(mem_size=int(nbytes) + (1 << 22), mem_buffer=None)
        self.ctx = ggml.ggml_init(params)
        if self.ctx is None:
            raise MemoryError("ggml_init could not allocate its context")

    def tensor(self, array):
        import ggml.utils

        return ggml.utils.from_numpy(np.ascontiguousarray(array), self.ctx)

    def compute(self, result):
        import ggml.utils

        ggml = self._ggml
        graph = ggml.ggml_new_graph(self.ctx)
        ggml.ggml_build_forward_expand(graph, result)
        ggml.ggml_graph_compute_with_ctx(self.ctx, graph, 1)
        # read all four ggml dimensions (ggml.utils.to_numpy drops trailing dimensions of size 1)
        ne = [int(n) for n in result.contents.ne[:4]]
        ctype = ctypes.c_uint16 if result.contents.type == ggml.GGML_TYPE_F16 else ctypes.c_float
        flat = np.ctypeslib.as_array((ctype * int(np.prod(ne))).from_address(ggml.ggml_get_data(result)))
        if ctype is ctypes.c_uint16:
            flat = flat.view(np.float16)
        return np.array(flat, copy=True).reshape(ne[::-1])[0]  # numpy order (ne3, ne2, ne1, ne0), ne3 = 1

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._ggml.ggml_free(self.ctx)


class GgmlAdapter:
    """ggml's position operations, called like posref's spec functions."""

    def __init__(self, *, dtype):
        self.dtype = dtype
        self._np_dtype = np.float32 if dtype == "float32" else np.float16

    @staticmethod
    def _mode(layout):
        import ggml

        if layout == "interleaved":
            return ggml.GGML_ROPE_TYPE_NORMAL
        if layout == "half":
            return ggml.GGML_ROPE_TYPE_NEOX
        raise NotImplementedError(f"ggml has no layout {layout!r}; GGML_ROPE_TYPE_NORMAL is 'interleaved', "
                                  "GGML_ROPE_TYPE_NEOX is 'half'")

    def _rope(self, rows, positions, n_dims, mode, base, *, sections=None):
        """ggml_rope_ext (or ggml_rope_multi) on rows (N, D), one token per row; returns (N, D) float64-readable."""
        import ggml

        rows = np.asarray(rows, dtype=np.float64).astype(self._np_dtype)[:, None, :]  # (N, 1, D): ne = (D, 1, N)
        pos = np.ascontiguousarray(positions, dtype=np.int32).reshape(-1)
        with _Graph(rows.nbytes * 3 + pos.nbytes * 2) as graph:
            a, b = graph.tensor(rows), graph.tensor(pos)
            if sections is None:
                out = ggml.ggml_rope_ext(graph.ctx, a, b, None, int(n_dims), int(mode), 0, float(base), 1.0, 0.0, 1.0,
                                         32.0, 1.0)
            else:
                sec = (ctypes.c_int * ggml.GGML_MROPE_SECTIONS)(*sections)
                out = ggml.ggml_rope_multi(graph.ctx, a, b, None, int(n_dims), sec, int(mode), 0, float(base), 1.0,
                                           0.0, 1.0, 32.0, 1.0)
            return graph.compute(out)[:, 0, :].astype(np.float32)

    # -- RoPE ------------------------------------------------------------------------------

    def apply_rope(self, x, positions, /, *, base=10_000.0, layout="half", rotary_dim=None,
                   rotated_slice="first", freq_denominator="rotary_dim", position_offset=0):
        mode = self._mode(layout)
        x = np.asarray(x)
        head_dim = x.shape[-1]
        r = head_dim if rotary_dim is None else int(rotary_dim)
        if r != head_dim and (rotated_slice != "first" or freq_denominator != "rotary_dim"):
            raise NotImplementedError("ggml_rope_ext rotates the first n_dims channels with exponent denominator "
                                      "n_dims (rotated_slice='first', freq_denominator='rotary_dim')")
        if not float(position_offset).is_integer():
            raise NotImplementedError("ggml's positions are int32; a fractional offset is not expressible")
        _refuse_abort(r % 2 or r > head_dim, f"n_dims={r} with ne0={head_dim} (n_dims must be even and at most ne0)")
        p = _positions_as_int32(np.asarray(positions) + int(position_offset))
        p = np.broadcast_to(p, x.shape[:-1]).reshape(-1)
        return self._rope(x.reshape(-1, head_dim), p, r, mode, base).reshape(x.shape)

    def rope_cos_sin(self, positions, dim, /, *, base=10_000.0, layout="half"):
        mode = self._mode(layout)
        positions = _positions_as_int32(positions)
        flat = positions.reshape(-1)
        dim = int(dim)
        _refuse_abort(dim % 2 or dim < 2, f"n_dims={dim} (odd or empty)")
        half = dim // 2
        unit = np.zeros((flat.size, dim), dtype=np.float32)
        if layout == "half":
            unit[:, :half] = 1.0  # pairs (j, j + dim/2) = (1, 0) -> (cos, sin)
            out = self._rope(unit, flat, dim, mode, base)
            cos, sin = np.tile(out[:, :half], 2), np.tile(out[:, half:], 2)
        else:
            unit[:, 0::2] = 1.0  # pairs (2i, 2i+1) = (1, 0) -> (cos, sin)
            out = self._rope(unit, flat, dim, mode, base)
            cos, sin = np.repeat(out[:, 0::2], 2, -1), np.repeat(out[:, 1::2], 2, -1)
        shape = positions.shape + (dim,)
        return cos.reshape(shape), sin.reshape(shape)

    def apply_mrope(self, x, positions, /, *, base=10_000.0, mrope_section, section_order="blocks", layout="half",
                    interleaved=None):
        if interleaved is None:  # the spec's deprecated name for section_order="round_robin"
            interleaved = section_order == "round_robin"  # Qwen3-VL's pattern, or contiguous sections
        import ggml

        if layout != "half":
            raise NotImplementedError("ggml's M-RoPE modes rotate pairs i, i + D/2 (layout='half')")
        x = np.asarray(x)
        head_dim = x.shape[-1]
        _refuse_abort(head_dim % 2, f"an odd head dimension ({head_dim})")
        p = _positions_as_int32(positions)
        if p.ndim < 2 or p.shape[0] != 3:
            raise NotImplementedError("ggml_rope_multi takes (t, h, w) position ids: positions of shape (3, ...)")
        p = p.reshape((3,) + (1,) * max(x.ndim - p.ndim, 0) + p.shape[1:])
        p = np.broadcast_to(p, (3,) + x.shape[:-1]).reshape(3, -1)  # (3, N)
        ids = np.concatenate([p.reshape(-1), np.zeros(p.shape[1], dtype=np.int64)])  # 4 ids per token, the 4th unused
        sections = [int(s) for s in np.asarray(mrope_section).reshape(-1)]
        if len(sections) != 3:
            raise ValueError(f"mrope_section must have three entries (t, h, w), got {sections}")
        mode = ggml.GGML_ROPE_TYPE_IMROPE if interleaved else ggml.GGML_ROPE_TYPE_MROPE
        out = self._rope(x.reshape(-1, head_dim), ids, head_dim, mode, base, sections=sections + [0])
        return out.reshape(x.shape)

    # -- YaRN --------------------------------------------------------------------------------

    def yarn_correction_range(self, dim, /, *, base=10_000.0, original_max_position_embeddings, beta_fast=32.0,
                              beta_slow=1.0, truncate=True, high_limit="dim"):
        import ggml

        if not truncate:
            raise NotImplementedError("ggml_rope_yarn_corr_dims always rounds the range outwards (truncate=True)")
        if high_limit != "dim":
            raise NotImplementedError("ggml clamps the YaRN correction range at n_dims - 1 (high_limit='dim')")
        dims = (ctypes.c_float * 2)()
        ggml.ggml_rope_yarn_corr_dims(int(dim), int(original_max_position_embeddings), float(base),
                                      float(beta_fast), float(beta_slow), dims)
        return float(dims[0]), float(dims[1])

    # -- ALiBi ------------------------------------------------------------------------------

    def alibi_slopes(self, num_heads, /, *, max_bias=8.0, rule=None):
        import ggml

        heads = int(num_heads)
        _refuse_abort(heads < 1, f"{heads} heads (an empty tensor is not contiguous for ggml_soft_max_ext)")
        logits = np.zeros((heads, 1, 2), dtype=np.float32)  # ne = (2 keys, 1 query, H heads)
        mask = np.array([[0.0, -_ALIBI_DISTANCE]], dtype=np.float32)  # (1 query, 2 keys)
        with _Graph(logits.nbytes * 4 + 4096) as graph:
            out = ggml.ggml_soft_max_ext(graph.ctx, graph.tensor(logits), graph.tensor(mask), 1.0, float(max_bias))
            p = graph.compute(out).reshape(heads, 2).astype(np.float64)
        return np.log(p[:, 0] / p[:, 1]) / _ALIBI_DISTANCE
