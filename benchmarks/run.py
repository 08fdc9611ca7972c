r"""Benchmarks of posref: speed and memory, reported as ratios to a floor.

Run from the repository root::

    python benchmarks/run.py                  # full sizes, table on stdout
    python benchmarks/run.py --json out.json  # the same, plus a JSON record
    python benchmarks/run.py --quick          # tiny sizes, a few seconds

Every timing is taken in this one process (best of ``--repeat`` calls, the
median alongside) and set against two floors measured the same way, in
turns with the subject, so that the numbers mean something on any machine:

* ``np.copy`` of an array of the output's size and dtype (*allocating*: a
  fresh output, as every spec function returns one; the first touch of new
  pages is part of it), and
* ``np.copyto`` into a preallocated buffer of that size (*into a buffer*:
  reading and writing every byte once, nothing else).

Every ratio is given against both (columns ``x copy`` and ``x copyto``);
the targets use the allocating floor.

(a) The rotations on ``(1, 32, 8192, 128)`` float64: ``apply_rope`` (both
    layouts, and with posref's two-thread split turned off),
    ``apply_rotary``, ``apply_xpos``, ``apply_axial_rope``, ``apply_mrope``
    and ``apply_fope``, each with its defaults; then peers running the same
    RoPE on the same array: ONNX's reference evaluator and onnxruntime
    (opset-23 ``RotaryEmbedding`` with cos/sin caches), PyTorch eager
    (``rotate_half``) and JAX ``jit`` on the CPU (float32, and float64 with
    x64 enabled).  float32 peers are also set against the float32 floors.
(b) The relative biases that depend on ``key - query`` at ``8192 x 8192``
    (one head by default), and ``t5_relative_bucket``,
    ``deberta_log_bucket`` on the ``8192 x 8192`` int64 relative position
    matrix, each against the floors of its output's size and dtype.
(c) Generating and verifying the whole golden corpus through the Python
    API (``build_cases`` + ``write_corpus``; ``build_cases`` again +
    ``verify_corpus`` with the regenerated cases).
(d) The whole conformance run (``run_cases`` over ``build_cases(CASES)``)
    for every built-in adapter that can run on the CPU here, in every dtype
    it declares.
(e) Peak memory of each large call, measured with ``tracemalloc`` in a
    fresh subprocess per case (NumPy reports its buffers to it), divided
    by the bytes of the call's output.
(f) Growth: time and peak memory of ``apply_rope``, ``t5_relative_bias``
    and golden generation over sizes spanning three orders of magnitude,
    one fresh subprocess per point, with the growth exponent of time and of
    peak memory in the output size between successive points.

Each result is also checked: outputs of the other implementations agree
with posref's, sampled rows of the bias matrices agree with a direct
evaluation, the corpus verifies.  Targets are reported as measured / limit
with PASS or MISS; the exit status is 0 unless ``--strict`` is given and a
target is missed or a check fails.

Only NumPy (and posref's own dependencies) is required; rows that need
torch, onnx, onnxruntime or jax are skipped with a note when those cannot
be imported.  The script benchmarks the posref of the checkout it lives in.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if (ROOT / "posref" / "__init__.py").is_file():
    sys.path.insert(0, str(ROOT))  # benchmark the checkout this script belongs to, installed or not

SECTIONS = ("a", "b", "c", "d", "e", "f")

FULL = {
    "rope_shape": (1, 32, 8192, 128),
    "bias_length": 8192,
    "embedding_shape": (2048, 2048, 16),
    "repeat": 5,
    # (f): sizes T of each growth series; see GROWTH
    "growth": {
        "apply_rope": [1024, 8192, 65536, 1048576],
        "t5_relative_bias": [1024, 2048, 4096, 8192, 16384],
        "golden_apply_rope": [1024, 8192, 65536, 1048576],
        "golden_t5_relative_bias": [128, 256, 512, 1024],
    },
}
QUICK = {
    "rope_shape": (1, 2, 64, 16),
    "bias_length": 64,
    "embedding_shape": (16, 16, 4),
    "repeat": 1,
    "growth": {
        "apply_rope": [16, 64],
        "t5_relative_bias": [16, 64],
        "golden_apply_rope": [16, 64],
        "golden_t5_relative_bias": [16, 64],
    },
}

#: Targets of the benchmark issue: name -> (limit, unit, what).
LIMITS = {
    "rope_vs_copy": (3.0, "x", "(a) apply_rope time / np.copy time"),
    "rotation_vs_copy": (3.0, "x", "(a) rotation time / np.copy time"),
    "rope_vs_onnx_float64": (1.0, "x", "(a) apply_rope time / onnx reference float64 time (same dtype)"),
    "rope_vs_onnx_float32": (1.0, "x", "(a) apply_rope time / onnx reference float32 time (the op's type)"),
    "bias_vs_copy": (2.0, "x", "(b) bias time / np.copy of its output"),
    "golden_generate": (20.0, "s", "(c) build + write the golden corpus"),
    "golden_verify": (20.0, "s", "(c) regenerate + verify the golden corpus"),
    "conformance_total": (300.0, "s", "(d) all built-in CPU adapters, case building included"),
    "memory": (3.0, "x", "(e) peak traced memory / output bytes"),
    "growth": (1.1, "", "(f) growth exponent of time and memory in the output size, large sizes"),
}


# -- machine -------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _version(module_name: str) -> str | None:
    try:
        module = __import__(module_name)
    except Exception:
        return None
    return str(getattr(module, "__version__", "unknown"))


def _module_path(module_name: str) -> str | None:
    try:
        return str(Path(__import__(module_name).__file__).parent)
    except Exception:
        return None


def machine() -> dict:
    """What the numbers were measured on."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    info = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "memory_gib": _memory_gib(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "posref": _version("posref"),
        "posref_path": _module_path("posref"),
        "torch": _version("torch"),
        "onnx": _version("onnx"),
        "onnxruntime": _version("onnxruntime"),
        "jax": _version("jax"),
    }
    if info["torch"] is not None:
        import torch

        info["torch_threads"] = torch.get_num_threads()
    return info


# -- timing --------------------------------------------------------------------------------


def measure(functions: dict, repeat: int, keep=None) -> dict:
    """Time every callable ``repeat`` times, taking turns, and keep each one's last result.

    Taking turns (floor, subject, floor, subject, ...) spreads any change in
    the machine's load over all of them, so their ratios stay meaningful on
    a shared machine.  Returns ``{name: (best s, median s, last result)}``;
    with ``keep`` (a set of names) only those results are kept, the others
    are ``None`` (large outputs are let go as soon as they are timed).
    """
    times: dict = {name: [] for name in functions}
    results: dict = {}
    for _ in range(repeat):
        for name, function in functions.items():
            results.pop(name, None)  # let the previous output go before the next call allocates
            start = time.perf_counter()
            result = function()
            times[name].append(time.perf_counter() - start)
            if keep is None or name in keep:
                results[name] = result
            del result
    return {name: (min(t), statistics.median(t), results.get(name)) for name, t in times.items()}


class Report:
    """Rows, targets and checks collected while the sections run."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.targets: list[dict] = []
        self.checks: list[dict] = []

    def row(self, section, name, *, seconds=None, median=None, floor=None, buffer_floor=None, note="", **extra):
        """A timed row; ``floor`` is the allocating floor (np.copy), ``buffer_floor`` np.copyto's."""
        ratio = seconds / floor if seconds is not None and floor else None
        buffer_ratio = seconds / buffer_floor if seconds is not None and buffer_floor else None
        entry = {"section": section, "name": name, "seconds": seconds, "median_seconds": median,
                 "ratio_to_floor": ratio, "ratio_to_buffer_floor": buffer_ratio, "note": note, **extra}
        self.rows.append(entry)
        return entry

    def target(self, key, measured, *, note=""):
        limit, unit, what = LIMITS[key]
        if measured is None:
            status, share = "SKIP", None
        else:
            share = measured / limit
            status = "PASS" if (measured < limit if key.startswith("rope_vs_onnx") else measured <= limit) else "MISS"
        self.targets.append({"key": key, "what": what, "measured": measured, "limit": limit, "unit": unit,
                             "measured_over_limit": share, "status": status, "note": note})

    def check(self, section, name, ok, detail):
        self.checks.append({"section": section, "name": name, "ok": bool(ok), "detail": detail})


def floors(array: np.ndarray) -> dict:
    """The two floors for an output shaped and typed like ``array``: allocating copy, copy into a buffer."""
    buffer = np.empty_like(array)
    return {"copy": lambda: np.copy(array), "copyto": lambda: np.copyto(buffer, array)}


# -- (a) rotations -----------------------------------------------------------------------------


def _rope_tables(positions, dim, base=10_000.0):
    """float64 angle table p * base**(-2i/dim), shape (T, dim/2), written out independently of posref."""
    i = np.arange(dim // 2, dtype=np.float64)
    return positions.astype(np.float64)[:, None] * base ** (-2.0 * i / dim)


def _onnx_model(x, positions, dtype):
    """An opset-23 RotaryEmbedding model (half layout) and its feeds, cos/sin caches prebuilt."""
    from onnx import TensorProto, helper

    batch, heads, length, head_dim = x.shape
    elem = TensorProto.FLOAT if dtype == np.float32 else TensorProto.DOUBLE
    angles = _rope_tables(positions, head_dim)
    cache_shape = list(angles.shape)
    node = helper.make_node("RotaryEmbedding", ["X", "cos_cache", "sin_cache", "position_ids"], ["Y"],
                            interleaved=0)
    graph = helper.make_graph(
        [node], "rope",
        [helper.make_tensor_value_info("X", elem, list(x.shape)),
         helper.make_tensor_value_info("cos_cache", elem, cache_shape),
         helper.make_tensor_value_info("sin_cache", elem, cache_shape),
         helper.make_tensor_value_info("position_ids", TensorProto.INT64, [batch, length])],
        [helper.make_tensor_value_info("Y", elem, list(x.shape))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)])
    model.ir_version = 10  # readable by every onnxruntime that has opset 23
    feeds = {
        "X": x.astype(dtype),
        "cos_cache": np.cos(angles).astype(dtype),
        "sin_cache": np.sin(angles).astype(dtype),
        "position_ids": np.broadcast_to(positions.astype(np.int64), (batch, length)).copy(),
    }
    return model, feeds


def _onnx_rope(x, positions, dtype):
    """A callable running the RotaryEmbedding node in onnx.reference, or a reason it cannot."""
    try:
        from onnx.reference import ReferenceEvaluator
    except Exception as exc:
        return None, f"onnx not importable ({type(exc).__name__})"
    model, feeds = _onnx_model(x, positions, dtype)
    evaluator = ReferenceEvaluator(model)
    return (lambda: evaluator.run(None, feeds)[0]), ""


def _ort_rope(x, positions, dtype):
    """A callable running the RotaryEmbedding node in onnxruntime on the CPU, or a reason it cannot."""
    try:
        import onnxruntime
    except Exception as exc:
        return None, f"onnxruntime not importable ({type(exc).__name__})"
    model, feeds = _onnx_model(x, positions, dtype)
    try:
        session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "is invalid" in first and "tensor(double)" in first:
            first = "onnxruntime's RotaryEmbedding takes float, float16 and bfloat16 only"
        return None, first[:160]
    return (lambda: session.run(None, feeds)[0]), ""


def _torch_rope(x, positions, dtype_name):
    """A callable applying rotate_half RoPE in torch eager on CPU, or a reason it cannot."""
    try:
        import torch
    except Exception as exc:
        return None, f"torch not importable ({type(exc).__name__})"
    dtype = getattr(torch, dtype_name)
    head_dim = x.shape[-1]
    x_t = torch.from_numpy(x).to(dtype)
    positions_t = torch.from_numpy(positions.astype(np.float64))

    def rotate_half(t):
        t1, t2 = t.chunk(2, dim=-1)
        return torch.cat((-t2, t1), dim=-1)

    def apply():
        with torch.no_grad():
            inv_freq = 10_000.0 ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
            freqs = positions_t[:, None] * inv_freq[None, :]  # (T, D/2), float64
            emb = torch.cat((freqs, freqs), dim=-1)  # (T, D)
            cos, sin = emb.cos().to(dtype), emb.sin().to(dtype)
            return x_t * cos + rotate_half(x_t) * sin

    return apply, ""


def _jax_rope(x, positions, dtype_name, cached=True):
    """A callable applying rotate_half RoPE with jax.jit on the CPU, or a reason it cannot.

    x64 is enabled (float64 needs it).  ``cached``: the cos/sin tables (float64 angles rounded
    to the working dtype, as for the ONNX caches) are arguments of the jitted function;
    otherwise they are computed from the positions inside it, in float64 as in the torch peer.
    """
    try:
        import jax

        jax.config.update("jax_enable_x64", True)
        jax.config.update("jax_platforms", "cpu")
        import jax.numpy as jnp
    except Exception as exc:
        return None, f"jax not importable ({type(exc).__name__})"
    dtype = np.dtype(dtype_name)
    head_dim = x.shape[-1]

    def rotate(x, cos, sin):
        x1, x2 = jnp.split(x, 2, axis=-1)
        return x * cos + jnp.concatenate([-x2, x1], axis=-1) * sin

    def from_positions(x, positions):
        inv_freq = 10_000.0 ** (-jnp.arange(0, head_dim, 2, dtype=jnp.float64) / head_dim)
        freqs = positions.astype(jnp.float64)[:, None] * inv_freq[None, :]
        emb = jnp.concatenate([freqs, freqs], axis=-1)
        return rotate(x, jnp.cos(emb).astype(dtype), jnp.sin(emb).astype(dtype))

    try:
        x_j = jax.device_put(x.astype(dtype))
        if cached:
            angles = _rope_tables(positions, head_dim)
            emb = np.concatenate([angles, angles], axis=-1)
            args = (x_j, jax.device_put(np.cos(emb).astype(dtype)), jax.device_put(np.sin(emb).astype(dtype)))
            compiled = jax.jit(rotate)
        else:
            args = (x_j, jax.device_put(positions.astype(np.int64)))
            compiled = jax.jit(from_positions)
        compiled(*args).block_until_ready()  # compile outside the timing
    except Exception as exc:
        return None, f"jax failed: {type(exc).__name__}: {str(exc)[:120]}"
    return (lambda: compiled(*args).block_until_ready()), ""


def _agreement(name, actual, expected, x, dtype_name, report, section="a"):
    """Record whether another implementation's output matches posref's within its dtype's rounding."""
    actual = np.asarray(actual, dtype=np.float64)
    if actual.shape != expected.shape:
        report.check(section, name, False, f"shape {actual.shape} != {expected.shape}")
        return None
    error = float(np.max(np.abs(actual - expected))) if expected.size else 0.0
    unit = 2.0**-53 if dtype_name == "float64" else 2.0**-24
    # tables rounded once, two products and a sum: a few units of the largest |x_a| + |x_b|
    allowed = 16 * unit * 2 * float(np.max(np.abs(x))) + (1e-9 if dtype_name == "float64" else 0.0)
    report.check(section, name, error <= allowed, f"max |diff| {error:.3g} (allowed {allowed:.3g})")
    return error


def _mrope_section(head_dim):
    """Qwen2-VL's split of the D/2 pairs, [16, 24, 24] for D = 128, scaled to other widths."""
    side = 3 * (head_dim // 2) // 8
    return [head_dim // 2 - 2 * side, side, side]


def rotation_calls(posref, x, positions):
    """The posref rotations on ``x`` of shape (B, H, T, D) at positions 0..T-1, with their defaults.

    Returns ``{label: (callable, target or None)}``; the callable's own inputs (angles, grids,
    coefficients) are built here, outside the timing.
    """
    length, head_dim = x.shape[-2], x.shape[-1]
    angles = posref.rope_angles(positions, head_dim)  # (T, D/2), apply_rotary's input
    width = 128 if length % 128 == 0 else length
    grid = np.stack([positions // width, positions % width])  # (2, T): a 64 x 128 patch grid at full size
    section = _mrope_section(head_dim)
    video = np.stack([positions // 1024, (positions // 32) % 32, positions % 32])  # (3, T): frame, row, column
    kept = int(np.count_nonzero(posref.fope_frequencies(head_dim, max_sequence_length=length)))
    columns = min(kept, head_dim // 4)  # the paper's M = min(K, D/4)
    rng = np.random.default_rng(2)
    sin_coef = np.eye(kept, columns) + 0.1 * rng.standard_normal((kept, columns))
    cos_coef = np.eye(kept, columns) + 0.1 * rng.standard_normal((kept, columns))

    def one_thread(call):
        def run():
            saved = posref.rope._THREADS
            posref.rope._THREADS = 1
            try:
                return call()
            finally:
                posref.rope._THREADS = saved

        return run

    rope = lambda: posref.apply_rope(x, positions)  # noqa: E731
    return {
        "posref.apply_rope": (rope, "rope_vs_copy"),
        "posref.apply_rope, one thread": (one_thread(rope), None),
        "posref.apply_rope, interleaved": (lambda: posref.apply_rope(x, positions, layout="interleaved"), None),
        "posref.apply_rotary (angles given)": (lambda: posref.apply_rotary(x, angles), "rotation_vs_copy"),
        "posref.apply_xpos (interleaved)": (lambda: posref.apply_xpos(x, positions), "rotation_vs_copy"),
        "posref.apply_axial_rope (interleaved)": (lambda: posref.apply_axial_rope(x, grid), "rotation_vs_copy"),
        f"posref.apply_mrope {section}": (lambda: posref.apply_mrope(x, video, mrope_section=section),
                                          "rotation_vs_copy"),
        f"posref.apply_fope K={kept} M={columns}": (
            lambda: posref.apply_fope(x, positions, sin_coef, cos_coef, max_sequence_length=length),
            "rotation_vs_copy"),
    }


def section_rope(report: Report, cfg: dict) -> None:
    import posref

    shape = cfg["rope_shape"]
    x = np.random.default_rng(0).standard_normal(shape)
    x32 = x.astype(np.float32)
    positions = np.arange(shape[-2])
    rotations = rotation_calls(posref, x, positions)

    functions = {"copy": floors(x)["copy"], "copyto": floors(x)["copyto"],
                 "copy float32": floors(x32)["copy"], "copyto float32": floors(x32)["copyto"]}
    functions.update({label: call for label, (call, _) in rotations.items()})
    peers = {
        "onnx reference RotaryEmbedding": (_onnx_rope, ("float64", "float32"), "caches prebuilt"),
        "onnxruntime RotaryEmbedding": (_ort_rope, ("float32", "float64"), "caches prebuilt"),
        "torch eager rotate_half": (_torch_rope, ("float64", "float32"), "cos/sin built from positions in the call"),
        "jax.jit rotate_half": (_jax_rope, ("float32", "float64"), "cos/sin caches prebuilt; x64 on"),
        "jax.jit rotate_half, tables in jit": (
            lambda x, p, d: _jax_rope(x, p, d, cached=False), ("float32",),
            "cos/sin built from positions inside the jitted function"),
    }
    skipped, notes, peer_labels = {}, {}, set()
    for library, (builder, dtypes, note) in peers.items():
        for name in dtypes:
            label = f"{library} {name}"
            dtype = np.dtype(name).type if library.startswith("onnx") else name
            function, why = builder(x, positions, dtype)
            if function is None:
                skipped[label] = why
            else:
                functions[label] = function
                notes[label] = note
                peer_labels.add(label)
    timed = measure(functions, cfg["repeat"], keep={"posref.apply_rope"} | peer_labels)

    floor, buffer_floor = timed["copy"][0], timed["copyto"][0]
    floor32, buffer_floor32 = timed["copy float32"][0], timed["copyto float32"][0]
    report.row("a", f"np.copy float64 {shape} (floor: allocating)", seconds=floor, median=timed["copy"][1],
               floor=floor, buffer_floor=buffer_floor)
    report.row("a", f"np.copyto float64 {shape} (floor: into a buffer)", seconds=buffer_floor,
               median=timed["copyto"][1], floor=floor, buffer_floor=buffer_floor)
    for label, (_, target) in rotations.items():
        seconds, median, _ = timed[label]
        note = "posref's two-thread split off" if label.endswith("one thread") else ""
        report.row("a", label, seconds=seconds, median=median, floor=floor, buffer_floor=buffer_floor, note=note)
        if target is not None:
            report.target(target, seconds / floor, note=label.split()[0].removeprefix("posref."))
    report.row("a", "np.copy float32 (floor: allocating)", seconds=floor32, median=timed["copy float32"][1],
               floor=floor32, buffer_floor=buffer_floor32)
    report.row("a", "np.copyto float32 (floor: into a buffer)", seconds=buffer_floor32,
               median=timed["copyto float32"][1], floor=floor32, buffer_floor=buffer_floor32)
    expected = timed["posref.apply_rope"][2]
    for library, (_, dtypes, _) in peers.items():
        for name in dtypes:
            label = f"{library} {name}"
            if label in skipped:
                report.row("a", label, note=f"skipped: {skipped[label]}")
                continue
            seconds, median, actual = timed[label]
            own = (floor, buffer_floor) if name == "float64" else (floor32, buffer_floor32)
            versus = seconds / timed["posref.apply_rope"][0]
            report.row("a", label, seconds=seconds, median=median, floor=own[0], buffer_floor=own[1],
                       note=f"{notes[label]}; {versus:.2f} x posref's time; ratios to {name} floors",
                       time_over_posref=versus)
            _agreement(f"{label} agrees with apply_rope", actual, expected, x, name, report)
    for name in ("float64", "float32"):
        key = f"onnx reference RotaryEmbedding {name}"
        report.target(f"rope_vs_onnx_{name}", timed["posref.apply_rope"][0] / timed[key][0] if key in timed else None,
                      note="" if key in timed else "onnx not available")


# -- (b) bias matrices --------------------------------------------------------------------


def _sample_rows(length: int) -> list[int]:
    return sorted({0, 1, length // 3, length // 2, length - 2, length - 1} & set(range(length)))


def bias_calls(posref, length, heads):
    """The relative biases at ``length x length``: ``{label: (callable, output like, row check)}``.

    ``row check(result, i)`` says whether row ``i`` of a result is what the function gives for
    query ``i`` alone (the 1 x S evaluation), or what a direct formula gives.
    """
    positions = np.arange(length)
    relative_position = positions[None, :] - positions[:, None]  # (T, S), key - query
    floats = np.empty((heads, length, length))
    ints = np.empty((length, length), dtype=np.int64)
    rng = np.random.default_rng(1)
    slopes = posref.alibi_slopes(heads)
    table = rng.standard_normal((32, heads))  # T5's 32 buckets
    r1, r2 = rng.uniform(0.5, 2, heads), rng.uniform(0.5, 2, heads)
    power = rng.uniform(0.5, 2, heads)

    def alone(function, **options):
        def check(result, i):
            return np.array_equal(result[..., i, :], function(positions[i:i + 1], positions, **options)[..., 0, :])

        return check

    def alibi_rows(result, i):  # the paper's -m (i - j) for j <= i, -inf above the diagonal
        j = np.arange(length)
        return np.array_equal(result[:, i, :], np.where(j > i, -np.inf, -slopes[:, None] * (i - j)[None, :]))

    def t5_rows(result, i):  # one row of the Toeplitz matrix, bucketed on its own
        return np.array_equal(result[:, i, :], table[posref.t5_relative_bucket(np.arange(length) - i)].T)

    def bucket_rows(result, i):
        return np.array_equal(result[i], posref.t5_relative_bucket(np.arange(length) - i))

    def deberta_rows(result, i):
        return np.array_equal(result[i], posref.deberta_log_bucket(np.arange(length) - i, bucket_size=256,
                                                                   max_position=512))

    return {
        "posref.alibi_bias (distance, causal)": (
            lambda: posref.alibi_bias(slopes, positions, positions), floats, alibi_rows),
        "posref.alibi_bias (symmetric, bidirectional)": (
            lambda: posref.alibi_bias(slopes, positions, positions, form="symmetric", causal=False), floats,
            alone(lambda q, k: posref.alibi_bias(slopes, q, k, form="symmetric", causal=False))),
        "posref.t5_relative_bias (bidirectional)": (
            lambda: posref.t5_relative_bias(table, positions, positions), floats, t5_rows),
        "posref.kerple_log_bias": (
            lambda: posref.kerple_log_bias(positions, positions, r1=r1, r2=r2), floats,
            alone(posref.kerple_log_bias, r1=r1, r2=r2)),
        "posref.kerple_power_bias": (
            lambda: posref.kerple_power_bias(positions, positions, a=r1, p=power), floats,
            alone(posref.kerple_power_bias, a=r1, p=power)),
        "posref.sandwich_bias (dim 128)": (
            lambda: posref.sandwich_bias(positions, positions, dim=128, num_heads=heads), floats,
            alone(posref.sandwich_bias, dim=128, num_heads=heads)),
        "posref.fire_normalized_distance": (
            lambda: posref.fire_normalized_distance(positions, positions), floats[0],
            alone(posref.fire_normalized_distance)),
        "posref.t5_relative_bucket (int64 input)": (
            lambda: posref.t5_relative_bucket(relative_position), ints, bucket_rows),
        "posref.deberta_log_bucket (256, 512; int64 input)": (
            lambda: posref.deberta_log_bucket(relative_position, bucket_size=256, max_position=512), ints,
            deberta_rows),
        "posref.shaw_relative_index (k = 128)": (
            lambda: posref.shaw_relative_index(positions, positions, max_relative_position=128), ints,
            alone(posref.shaw_relative_index, max_relative_position=128)),
    }


#: Names of the row checks the smoke test looks for.
ROW_CHECKS = {
    "posref.alibi_bias (distance, causal)": "alibi_bias rows match -m (i - j)",
    "posref.t5_relative_bias (bidirectional)": "t5_relative_bias rows match table[bucket(j - i)]",
    "posref.t5_relative_bucket (int64 input)": "t5_relative_bucket rows match bucket(j - i)",
}


def section_bias(report: Report, cfg: dict, heads: int) -> None:
    import posref

    length = cfg["bias_length"]
    rows = _sample_rows(length)
    calls = bias_calls(posref, length, heads)

    # FIRE's MLP: the default arithmetic multiplies per pair (see the note), so a smaller matrix
    fire_length = max(2, length // 4)
    fire_positions = np.arange(fire_length)
    rng = np.random.default_rng(3)
    w1, b1 = rng.standard_normal((1, 32)), rng.standard_normal(32)
    w2, b2 = rng.standard_normal((32, heads)), rng.standard_normal(heads)
    calls["posref.fire_bias (K = 32)"] = (
        lambda: posref.fire_bias(fire_positions, fire_positions, w1, b1, w2, b2),
        np.empty((heads, fire_length, fire_length)), None)
    # Shaw's embeddings have a feature axis: (T, S, D) at a size whose output is 512 MiB
    t, s, d = cfg["embedding_shape"]
    embedding_table = rng.standard_normal((2 * 128 + 1, d))
    query, key = np.arange(t), np.arange(s)
    calls["posref.shaw_relative_embeddings (k = 128)"] = (
        lambda: posref.shaw_relative_embeddings(embedding_table, query, key, max_relative_position=128),
        np.empty((t, s, d)), None)

    # Each function takes turns with the two floors of its own output (size and dtype); every
    # ratio then uses the best floor of that kind over all the functions that share it.
    measured, best = {}, {}
    for label, (call, like, check) in calls.items():
        source = np.ones(like.shape, dtype=like.dtype)
        bounds = floors(source)
        timed = measure({"copy": bounds["copy"], "copyto": bounds["copyto"], label: call}, cfg["repeat"],
                        keep={label} if check is not None else set())
        source = bounds = None
        kind = f"{like.dtype} {like.shape}"
        for floor in ("copy", "copyto"):
            if (kind, floor) not in best or timed[floor][0] < best[kind, floor][0]:
                best[kind, floor] = timed[floor][:2]
        seconds, median, result = timed[label]
        measured[label] = (kind, seconds, median)
        if check is not None:
            ok = result.shape == like.shape and all(check(result, i) for i in rows)
            name = ROW_CHECKS.get(label, f"{label.removeprefix('posref.')} rows match the query alone")
            report.check("b", name, ok, f"rows {rows}")
        del result, timed

    shown = set()
    for label, (kind, seconds, median) in measured.items():
        floor, buffer_floor = best[kind, "copy"][0], best[kind, "copyto"][0]
        if kind not in shown:
            shown.add(kind)
            report.row("b", f"np.copy {kind} (floor: allocating)", seconds=floor, median=best[kind, "copy"][1],
                       floor=floor, buffer_floor=buffer_floor)
            report.row("b", f"np.copyto {kind} (floor: into a buffer)", seconds=buffer_floor,
                       median=best[kind, "copyto"][1], floor=floor, buffer_floor=buffer_floor)
        note = f"output {kind}"
        if label.startswith("posref.fire_bias"):
            note += ("; only the logarithm is tabled: the MLP runs per pair in the default arithmetic (NumPy's "
                     "BLAS rounds a row differently by matrix shape); inside precise() it runs per offset")
        report.row("b", label, seconds=seconds, median=median, floor=floor, buffer_floor=buffer_floor, note=note)
        if not label.startswith("posref.fire_bias"):
            report.target("bias_vs_copy", seconds / floor, note=label.removeprefix("posref."))


# -- (c) golden corpus ---------------------------------------------------------------------


def section_golden(report: Report, cfg: dict) -> None:
    from posref.golden import verify_corpus, write_corpus
    from posref.golden.cases import CASES
    from posref.golden.registry import build_cases

    families = cfg.get("golden_families")
    with tempfile.TemporaryDirectory(prefix="posref-bench-") as tmp:
        out = Path(tmp) / "golden"
        start = time.perf_counter()
        cases = build_cases(CASES, families=families)
        written = write_corpus(cases, out)
        generate = time.perf_counter() - start
        note = f"{len(written.case_ids)} cases" + (f", families {', '.join(families)}" if families else "")
        report.row("c", "golden generate (build_cases + write_corpus)", seconds=generate, note=note)
        report.target("golden_generate", generate)

        start = time.perf_counter()
        expected = build_cases(CASES, families=families)
        verified = verify_corpus(out, expected)
        verify = time.perf_counter() - start
        report.row("c", "golden verify (build_cases + verify_corpus)", seconds=verify, note=note)
        report.target("golden_verify", verify)
        report.check("c", "fresh corpus verifies", verified.ok and verified.checked == len(cases),
                     f"{verified.checked} cases checked, {len(verified.problems)} problems")


# -- (d) conformance -----------------------------------------------------------------------


def section_conformance(report: Report, cfg: dict) -> None:
    import importlib

    from posref.conformance.adapter import BUILTIN, AdapterError, load_adapter
    from posref.conformance.report import summary
    from posref.conformance.runner import run_cases
    from posref.golden.cases import CASES
    from posref.golden.registry import build_cases

    families = cfg.get("conformance_families")
    chosen = cfg.get("adapters")
    unknown = sorted(set(chosen or ()) - set(BUILTIN))
    for name in unknown:
        report.row("d", f"adapter {name}", note=f"skipped: not a built-in adapter ({', '.join(sorted(BUILTIN))})")
    cases_by_dtype: dict[str, list] = {}
    total = 0.0
    ran = 0
    for name, module_name in sorted(BUILTIN.items()):
        if chosen is not None and name not in chosen:
            continue
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # a broken adapter module is reported, not fatal
            report.row("d", f"adapter {name}", note=f"skipped: cannot be imported ({type(exc).__name__}: {exc})")
            continue
        devices = tuple(getattr(module, "ADAPTER_DEVICES", ("cpu",)))
        if "cpu" not in devices:
            report.row("d", f"adapter {name}", note="skipped: no CPU device")
            continue
        for dtype in getattr(module, "ADAPTER_DTYPES", ("float32",)):
            try:
                adapter = load_adapter(name, dtype=dtype, device="cpu")
            except AdapterError as exc:
                report.row("d", f"adapter {name} {dtype}", note=f"skipped: {exc}")
                continue
            if dtype not in cases_by_dtype:
                start = time.perf_counter()
                cases_by_dtype[dtype] = build_cases(CASES, families=families,
                                                    dtypes=[dtype] if dtype != "float64" else [])
                building = time.perf_counter() - start
                total += building
                report.row("d", f"build cases for {dtype}", seconds=building,
                           note=f"{len(cases_by_dtype[dtype])} cases")
            start = time.perf_counter()
            try:
                results = run_cases(adapter, cases_by_dtype[dtype])
            except Exception as exc:
                seconds = time.perf_counter() - start
                total += seconds
                report.row("d", f"adapter {name} {dtype}", seconds=seconds,
                           note=f"runner raised {type(exc).__name__}: {exc}")
                report.check("d", f"{name} {dtype} ran to the end", False, str(exc))
                continue
            seconds = time.perf_counter() - start
            total += seconds
            ran += 1
            counts = {k: v for k, v in summary(results).items() if v}
            report.row("d", f"adapter {name} {dtype}", seconds=seconds,
                       note=", ".join(f"{v} {k}" for k, v in counts.items()), counts=counts)
            report.check("d", f"{name} {dtype} ran every case", len(results) == len(cases_by_dtype[dtype]),
                         f"{len(results)} results for {len(cases_by_dtype[dtype])} cases")
    report.row("d", "conformance total", seconds=total, note=f"{ran} adapter/dtype runs")
    note = "no adapter could run" if not ran else f"only {', '.join(chosen)}" if chosen is not None else ""
    if families:
        note += f"{'; ' if note else ''}families {', '.join(families)}"
    report.target("conformance_total", total if ran else None, note=note)


# -- (e) memory ----------------------------------------------------------------------------

MEMORY_CASES = ("apply_rope", "alibi_bias", "t5_relative_bias", "t5_relative_bucket", "largest_golden_case")


def _memory_call(case: str, cfg: dict, heads: int):
    """Inputs built, and a callable doing the measured work, for one memory case."""
    import posref

    length = cfg["bias_length"]
    positions = np.arange(length)
    if case == "apply_rope":
        shape = cfg["rope_shape"]
        x = np.random.default_rng(0).standard_normal(shape)
        return f"apply_rope {shape}", lambda: posref.apply_rope(x, np.arange(shape[-2]))
    if case == "alibi_bias":
        slopes = posref.alibi_slopes(heads)
        return f"alibi_bias ({heads}, {length}, {length})", lambda: posref.alibi_bias(slopes, positions, positions)
    if case == "t5_relative_bias":
        table = np.random.default_rng(1).standard_normal((32, heads))
        return (f"t5_relative_bias ({heads}, {length}, {length})",
                lambda: posref.t5_relative_bias(table, positions, positions))
    if case == "t5_relative_bucket":
        relative_position = positions[None, :] - positions[:, None]
        return f"t5_relative_bucket ({length}, {length})", lambda: posref.t5_relative_bucket(relative_position)
    from posref.golden.cases import CASES
    from posref.golden.registry import build_cases, call_with

    cases = [c for c in build_cases(CASES, dtypes=[]) if c.expect_error is None]
    largest = max(cases, key=lambda c: sum(a.nbytes for a in c.outputs.values()))
    function = posref.SPEC_FUNCTIONS[largest.function].function
    inputs, params = dict(largest.inputs), dict(largest.params)
    return f"golden {largest.id}", lambda: call_with(function, inputs, params)


def _output_bytes(result) -> int:
    if isinstance(result, tuple):
        return sum(np.asarray(r).nbytes for r in result)
    return np.asarray(result).nbytes


def _status_bytes(field: str) -> int | None:
    """A ``kB`` field of /proc/self/status in bytes (Linux), else None."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_peak_rss() -> int | None:
    """Reset the peak-RSS mark of this process (Linux) and return the current RSS, or None."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return None
    return _status_bytes("VmRSS")


def memory_case(case: str, cfg: dict, heads: int) -> dict:
    """Peak bytes traced while one call runs (inputs excluded), in this process."""
    label, call = _memory_call(case, cfg, heads)
    rss_before = _reset_peak_rss()
    tracemalloc.start()
    result = call()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak_rss = _status_bytes("VmHWM")
    growth = peak_rss - rss_before if peak_rss is not None and rss_before is not None else None
    return {"case": case, "label": label, "peak_bytes": peak, "output_bytes": _output_bytes(result),
            "peak_rss_growth_bytes": growth}


def section_memory(report: Report, cfg: dict, heads: int, quick: bool) -> None:
    worst = None
    for case in MEMORY_CASES:
        command = [sys.executable, str(Path(__file__).resolve()), "--memory-case", case,
                   "--bias-heads", str(heads)] + (["--quick"] if quick else [])
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            report.row("e", case, note=f"subprocess failed: {done.stderr.strip().splitlines()[-1:]}")
            report.check("e", f"{case} measured", False, done.stderr.strip()[-500:])
            continue
        measured = json.loads(done.stdout.strip().splitlines()[-1])
        ratio = measured["peak_bytes"] / measured["output_bytes"] if measured["output_bytes"] else None
        report.row("e", measured["label"], note=f"peak {measured['peak_bytes'] / 2**20:.1f} MiB, output "
                   f"{measured['output_bytes'] / 2**20:.1f} MiB, peak RSS growth "
                   + ("-" if measured["peak_rss_growth_bytes"] is None
                      else f"{measured['peak_rss_growth_bytes'] / 2**20:.1f} MiB"), memory_ratio=ratio, **measured)
        report.target("memory", ratio, note=measured["label"])
        if ratio is not None and (worst is None or ratio > worst):
            worst = ratio


# -- (f) growth --------------------------------------------------------------------------------

#: Growth series: name -> what is measured at size T.
GROWTH = {
    "apply_rope": "apply_rope, x float64 (1, 1, T, 128), positions 0..T-1",
    "t5_relative_bias": "t5_relative_bias, one head, (1, T, T) float64, positions 0..T-1",
    "golden_apply_rope": "golden generation (build_cases + write_corpus, precise arithmetic, with the "
                         "float32/float16/bfloat16 re-evaluations) of one apply_rope case, x (1, 1, T, 8)",
    "golden_t5_relative_bias": "golden generation of one t5_relative_bias case, table (32, 2), positions 0..T-1",
}


def _growth_call(name: str, size: int):
    """(callable doing the measured work, output bytes or None if counted after the call)."""
    import posref

    if name == "apply_rope":
        x = np.random.default_rng(0).standard_normal((1, 1, size, 128))
        positions = np.arange(size)
        return lambda: posref.apply_rope(x, positions)
    if name == "t5_relative_bias":
        table = np.random.default_rng(1).standard_normal((32, 1))
        positions = np.arange(size)
        return lambda: posref.t5_relative_bias(table, positions, positions)
    from posref.golden import write_corpus
    from posref.golden.registry import Arange, CaseSpec, Normal, build_cases

    if name == "golden_apply_rope":
        spec = CaseSpec(id=f"growth.apply_rope.t{size}", function="apply_rope",
                        inputs={"x": Normal((1, 1, size, 8)), "positions": Arange(0, size)}, tolerance="rope")
    else:
        spec = CaseSpec(id=f"growth.t5_relative_bias.t{size}", function="t5_relative_bias",
                        inputs={"table": Normal((32, 2)), "query_positions": Arange(0, size),
                                "key_positions": Arange(0, size)}, tolerance="t5_bias")

    def generate():
        with tempfile.TemporaryDirectory(prefix="posref-growth-") as tmp:
            write_corpus(build_cases([spec]), Path(tmp) / "golden")
            return sum(f.stat().st_size for f in (Path(tmp) / "golden").rglob("*") if f.is_file())

    return generate


def growth_point(name: str, size: int) -> dict:
    """Time (best of a few calls) and peak memory of one growth point, in this (fresh) process."""
    call = _growth_call(name, size)
    rss_before = _reset_peak_rss()
    tracemalloc.start()
    start = time.perf_counter()
    result = call()
    first = time.perf_counter() - start
    _, traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak_rss = _status_bytes("VmHWM")
    output = int(result) if isinstance(result, int) else _output_bytes(result)
    del result
    # The traced call gives memory only: tracemalloc slows every allocation, and golden generation
    # allocates per chunk, so its time is not comparable with an untraced one.  The time is the best
    # of untraced calls: at least one, three unless a call takes over 20 s, more while they are cheap.
    times: list[float] = []
    while not times or (len(times) < 3 and first < 20.0) or (sum(times) < 2.0 and len(times) < 5):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    growth = peak_rss - rss_before if peak_rss is not None and rss_before is not None else None
    return {"series": name, "size": size, "seconds": min(times), "traced_seconds": first,
            "calls": len(times), "output_bytes": output, "peak_traced_bytes": traced,
            "peak_rss_growth_bytes": growth}


def _exponent(a: dict, b: dict, key: str) -> float | None:
    """d log(key) / d log(output bytes) between two growth points."""
    if not a.get(key) or not b.get(key) or a["output_bytes"] == b["output_bytes"]:
        return None
    return math.log(b[key] / a[key]) / math.log(b["output_bytes"] / a["output_bytes"])


def section_growth(report: Report, cfg: dict, quick: bool) -> None:
    for name, sizes in cfg["growth"].items():
        points = []
        for size in sizes:
            command = [sys.executable, str(Path(__file__).resolve()), "--growth-point", name, str(size)]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                report.row("f", f"{name} T={size}", note=f"subprocess failed: {done.stderr.strip().splitlines()[-1:]}")
                report.check("f", f"{name} T={size} measured", False, done.stderr.strip()[-500:])
                continue
            point = json.loads(done.stdout.strip().splitlines()[-1])
            previous = points[-1] if points else None
            point["time_exponent"] = _exponent(previous, point, "seconds") if previous else None
            point["memory_exponent"] = _exponent(previous, point, "peak_traced_bytes") if previous else None
            points.append(point)
            report.row("f", f"{name} T={size}", seconds=point["seconds"], note=GROWTH[name], growth=point,
                       memory_ratio=point["peak_traced_bytes"] / point["output_bytes"])
        if len(points) >= 2 and not quick:
            last = points[-1]
            worst = max(e for e in (last["time_exponent"], last["memory_exponent"]) if e is not None)
            report.target("growth", worst, note=f"{name}, T {points[-2]['size']} -> {last['size']}")


# -- output --------------------------------------------------------------------------------

TITLES = {
    "a": "(a) rotations",
    "b": "(b) bias matrices",
    "c": "(c) golden corpus",
    "d": "(d) conformance runs (CPU)",
    "e": "(e) peak memory (tracemalloc, subprocess per case)",
    "f": "(f) growth (subprocess per point; exponents of time and traced memory in the output size)",
}


def _fmt_seconds(value) -> str:
    if value is None:
        return "-"
    return f"{value:.2e}" if value < 0.01 else f"{value:.4f}" if value < 10 else f"{value:.1f}"


def _fmt_ratio(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def _fmt_bytes(value) -> str:
    if value is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return "-"


def render(result: dict) -> str:
    m = result["machine"]
    lines = [
        f"posref benchmarks ({'quick' if result['quick'] else 'full'} sizes, best of {result['repeat']})",
        f"machine: {m['cpu']}; {m['cores']} cores ({m['usable_cores']} usable); {m['memory_gib']} GiB; "
        f"{m['platform']}",
        f"versions: Python {m['python']}, numpy {m['numpy']}, posref {m['posref']} ({m['posref_path']}), "
        f"torch {m['torch']}"
        + (f" ({m['torch_threads']} threads)" if m.get("torch_threads") else "")
        + f", onnx {m['onnx']}, onnxruntime {m.get('onnxruntime')}, jax {m.get('jax')}",
        f"command: {result['command']}",
        "ratios: 'x copy' = time / np.copy of an array like the output (allocating floor, used by the targets); "
        "'x copyto' = time / np.copyto into a preallocated buffer",
    ]
    for section in result["sections"]:
        rows = [r for r in result["rows"] if r["section"] == section]
        if not rows:
            continue
        lines += ["", TITLES[section]]
        width = max(len(r["name"]) for r in rows)
        if section == "e":
            lines.append(f"  {'case':<{width}}  {'peak/output':>11}  detail")
            for r in rows:
                ratio = "-" if r.get("memory_ratio") is None else f"{r['memory_ratio']:.2f}x"
                lines.append(f"  {r['name']:<{width}}  {ratio:>11}  {r['note']}")
            continue
        if section == "f":
            lines.append(f"  {'series, size':<{width}}  {'best s':>8}  {'output':>10}  {'peak traced':>11}  "
                         f"{'peak RSS +':>10}  {'time exp':>8}  {'mem exp':>7}")
            for r in rows:
                g = r.get("growth") or {}
                lines.append(f"  {r['name']:<{width}}  {_fmt_seconds(r['seconds']):>8}  "
                             f"{_fmt_bytes(g.get('output_bytes')):>10}  {_fmt_bytes(g.get('peak_traced_bytes')):>11}  "
                             f"{_fmt_bytes(g.get('peak_rss_growth_bytes')):>10}  "
                             f"{_fmt_ratio(g.get('time_exponent')):>8}  {_fmt_ratio(g.get('memory_exponent')):>7}"
                             + (f"  {r['note']}" if not g else ""))
            for name, what in GROWTH.items():
                if any(r["name"].startswith(name + " ") for r in rows):
                    lines.append(f"  {name}: {what}")
            continue
        lines.append(f"  {'case':<{width}}  {'best s':>8}  {'median s':>8}  {'x copy':>7}  {'x copyto':>8}  note")
        for r in rows:
            lines.append(f"  {r['name']:<{width}}  {_fmt_seconds(r['seconds']):>8}  "
                         f"{_fmt_seconds(r['median_seconds']):>8}  {_fmt_ratio(r['ratio_to_floor']):>7}  "
                         f"{_fmt_ratio(r.get('ratio_to_buffer_floor')):>8}  {r['note']}")
    if result["targets"]:
        lines += ["", "targets (measured / limit)"]
        width = max(len(t["what"]) for t in result["targets"])
        for t in result["targets"]:
            if t["measured"] is None:
                lines.append(f"  {t['what']:<{width}}  {'-':>9}  {'':>9}  {'':>6}  SKIP  {t['note']}")
                continue
            unit = t["unit"]
            measured = f"{t['measured']:.2f}{unit}"
            limit = f"{'<' if t['key'].startswith('rope_vs_onnx') else '<='}{t['limit']:g}{unit}"
            lines.append(f"  {t['what']:<{width}}  {measured:>9}  {limit:>9}  {t['measured_over_limit']:>6.2f}  "
                         f"{t['status']}  {t['note']}")
    if result["checks"]:
        lines += ["", "checks"]
        for c in result["checks"]:
            lines.append(f"  {'ok  ' if c['ok'] else 'FAIL'}  ({c['section']}) {c['name']}: {c['detail']}")
    missed = sum(t["status"] == "MISS" for t in result["targets"])
    failed = sum(not c["ok"] for c in result["checks"])
    lines += ["", f"{missed} target(s) missed, {failed} check(s) failed"]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict:
    cfg = dict(QUICK if args.quick else FULL)
    if args.quick:
        cfg["golden_families"] = ["alibi"]
        cfg["conformance_families"] = ["alibi"]
        cfg["adapters"] = ["reference"]
    if args.adapter:
        cfg["adapters"] = args.adapter
    if args.repeat is not None:
        cfg["repeat"] = args.repeat
    sections = [s for s in SECTIONS if s in args.only]
    report = Report()
    runners = {
        "a": lambda: section_rope(report, cfg),
        "b": lambda: section_bias(report, cfg, args.bias_heads),
        "c": lambda: section_golden(report, cfg),
        "d": lambda: section_conformance(report, cfg),
        "e": lambda: section_memory(report, cfg, args.bias_heads, args.quick),
        "f": lambda: section_growth(report, cfg, args.quick),
    }
    for section in sections:
        start = time.perf_counter()
        runners[section]()
        print(f"[section {section} done in {time.perf_counter() - start:.1f} s]", file=sys.stderr, flush=True)
    return {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "quick": args.quick,
        "repeat": cfg["repeat"],
        "bias_heads": args.bias_heads,
        "adapters": cfg.get("adapters"),
        "sections": sections,
        "machine": machine(),
        "limits": {k: {"limit": v[0], "unit": v[1], "what": v[2]} for k, v in LIMITS.items()},
        "rows": report.rows,
        "targets": report.targets,
        "checks": report.checks,
    }


def _sections(text: str) -> str:
    letters = text.replace(",", "").strip().lower()
    if not letters or any(c not in SECTIONS for c in letters):
        raise argparse.ArgumentTypeError(f"sections must be letters among {', '.join(SECTIONS)}, got {text!r}")
    return letters


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark posref: speed and memory as ratios to a floor.")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (seconds), for smoke tests")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed or a check fails")
    parser.add_argument("--repeat", type=_positive, help="calls per timing (best is reported; default 5, quick 1)")
    parser.add_argument("--only", type=_sections, default="".join(SECTIONS),
                        help="sections to run, e.g. 'ab' or 'a,c' (default all: a b c d e f)")
    parser.add_argument("--bias-heads", type=_positive, default=1,
                        help="heads H of the (H, T, S) bias matrices in (b) and (e) (default 1)")
    parser.add_argument("--adapter", action="append",
                        help="only this built-in adapter in (d) (repeatable; default all, quick: reference)")
    parser.add_argument("--memory-case", choices=MEMORY_CASES, help=argparse.SUPPRESS)
    parser.add_argument("--growth-point", nargs=2, metavar=("SERIES", "T"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.memory_case:  # child process of section (e)
        cfg = dict(QUICK if args.quick else FULL)
        print(json.dumps(memory_case(args.memory_case, cfg, args.bias_heads)))
        return 0
    if args.growth_point:  # child process of section (f)
        print(json.dumps(growth_point(args.growth_point[0], int(args.growth_point[1]))))
        return 0

    result = run(args)
    print(render(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    missed = any(t["status"] == "MISS" for t in result["targets"])
    failed = any(not c["ok"] for c in result["checks"])
    return 1 if args.strict and (missed or failed) else 0


if __name__ == "__main__":
    raise SystemExit(main())
