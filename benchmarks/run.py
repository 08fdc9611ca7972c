r"""Benchmarks of posref: speed and memory, reported as ratios to a floor.

Run from the repository root::

    python benchmarks/run.py                  # full sizes, table on stdout
    python benchmarks/run.py --json out.json  # the same, plus a JSON record
    python benchmarks/run.py --quick          # tiny sizes, a few seconds

Every timing is taken in this one process (best of ``--repeat`` calls, the
median alongside) and set against a floor measured the same way, so that
the numbers mean something on any machine:

(a) ``apply_rope`` on ``(1, 32, 8192, 128)`` float64 against ``np.copy`` of
    the same array (the memory-bandwidth floor: read every byte once, write
    every byte once), ONNX's reference evaluator running an opset-23
    ``RotaryEmbedding`` node with cos/sin caches (float32, the op's own
    type, and float64), and a plain ``rotate_half`` in PyTorch eager on CPU
    (float64 and float32).
(b) ``alibi_bias`` and ``t5_relative_bias`` at ``8192 x 8192`` (one head by
    default) and ``t5_relative_bucket`` on the ``8192 x 8192`` relative
    position matrix, each against ``np.copy`` of an array of the output's
    size and dtype.
(c) Generating and verifying the whole golden corpus through the Python
    API (``build_cases`` + ``write_corpus``; ``build_cases`` again +
    ``verify_corpus`` with the regenerated cases).
(d) The whole conformance run (``run_cases`` over ``build_cases(CASES)``)
    for every built-in adapter that can run on the CPU here, in every dtype
    it declares.
(e) Peak memory of each large call, measured with ``tracemalloc`` in a
    fresh subprocess per case (NumPy reports its buffers to it), divided
    by the bytes of the call's output.

Each result is also checked: outputs of the other implementations agree
with posref's, sampled rows of the bias matrices agree with a direct
evaluation of the formula, the corpus verifies.  Targets are reported as
measured / limit with PASS or MISS; the exit status is 0 unless
``--strict`` is given and a target is missed or a check fails.

Only NumPy (and posref's own dependencies) is required; rows that need
torch or onnx are skipped with a note when those cannot be imported.  The
script benchmarks the posref of the checkout it lives in.
"""

from __future__ import annotations

import argparse
import json
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

SECTIONS = ("a", "b", "c", "d", "e")

FULL = {"rope_shape": (1, 32, 8192, 128), "bias_length": 8192, "repeat": 5}
QUICK = {"rope_shape": (1, 2, 64, 16), "bias_length": 64, "repeat": 1}

#: Targets of the benchmark issue: name -> (limit, unit, what).
LIMITS = {
    "rope_vs_copy": (6.0, "x", "(a) apply_rope time / np.copy time"),
    "rope_vs_onnx_float64": (1.0, "x", "(a) apply_rope time / onnx reference float64 time (same dtype)"),
    "rope_vs_onnx_float32": (1.0, "x", "(a) apply_rope time / onnx reference float32 time (the op's type)"),
    "golden_generate": (20.0, "s", "(c) build + write the golden corpus"),
    "golden_verify": (20.0, "s", "(c) regenerate + verify the golden corpus"),
    "conformance_total": (300.0, "s", "(d) all built-in CPU adapters, case building included"),
    "memory": (3.0, "x", "(e) peak traced memory / output bytes"),
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
    }
    if info["torch"] is not None:
        import torch

        info["torch_threads"] = torch.get_num_threads()
    return info


# -- timing --------------------------------------------------------------------------------


def measure(functions: dict, repeat: int) -> dict:
    """Time every callable ``repeat`` times, taking turns, and keep each one's last result.

    Taking turns (floor, subject, floor, subject, ...) spreads any change in
    the machine's load over all of them, so their ratios stay meaningful on
    a shared machine.  Returns ``{name: (best s, median s, last result)}``.
    """
    times: dict = {name: [] for name in functions}
    results: dict = {}
    for _ in range(repeat):
        for name, function in functions.items():
            results.pop(name, None)  # let the previous output go before the next call allocates
            start = time.perf_counter()
            results[name] = function()
            times[name].append(time.perf_counter() - start)
    return {name: (min(t), statistics.median(t), results[name]) for name, t in times.items()}


class Report:
    """Rows, targets and checks collected while the sections run."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.targets: list[dict] = []
        self.checks: list[dict] = []

    def row(self, section, name, *, seconds=None, median=None, floor=None, note="", **extra):
        ratio = seconds / floor if seconds is not None and floor else None
        entry = {"section": section, "name": name, "seconds": seconds, "median_seconds": median,
                 "ratio_to_floor": ratio, "note": note, **extra}
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


# -- (a) RoPE --------------------------------------------------------------------------------


def _rope_tables(positions, dim, base=10_000.0):
    """float64 angle table p * base**(-2i/dim), shape (T, dim/2), written out independently of posref."""
    i = np.arange(dim // 2, dtype=np.float64)
    return positions.astype(np.float64)[:, None] * base ** (-2.0 * i / dim)


def _onnx_rope(x, positions, dtype):
    """A callable running an opset-23 RotaryEmbedding node in onnx.reference, or a reason it cannot."""
    try:
        from onnx import TensorProto, helper
        from onnx.reference import ReferenceEvaluator
    except Exception as exc:
        return None, f"onnx not importable ({type(exc).__name__})"
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
    evaluator = ReferenceEvaluator(model)
    feeds = {
        "X": x.astype(dtype),
        "cos_cache": np.cos(angles).astype(dtype),
        "sin_cache": np.sin(angles).astype(dtype),
        "position_ids": np.broadcast_to(positions.astype(np.int64), (batch, length)).copy(),
    }
    return (lambda: evaluator.run(None, feeds)[0]), ""


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


def section_rope(report: Report, cfg: dict) -> None:
    import posref

    shape = cfg["rope_shape"]
    x = np.random.default_rng(0).standard_normal(shape)
    positions = np.arange(shape[-2])

    functions = {"copy": lambda: np.copy(x), "posref": lambda: posref.apply_rope(x, positions)}
    skipped = {}
    for name in ("float64", "float32"):
        function, why = _onnx_rope(x, positions, np.dtype(name).type)
        if function is None:
            skipped[f"onnx {name}"] = why
        else:
            functions[f"onnx {name}"] = function
    for name in ("float64", "float32"):
        function, why = _torch_rope(x, positions, name)
        if function is None:
            skipped[f"torch {name}"] = why
        else:
            functions[f"torch {name}"] = function
    timed = measure(functions, cfg["repeat"])

    floor = timed["copy"][0]
    expected = timed["posref"][2]
    report.row("a", f"np.copy float64 {shape} (floor)", seconds=floor, median=timed["copy"][1], floor=floor)
    report.row("a", "posref.apply_rope float64", seconds=timed["posref"][0], median=timed["posref"][1], floor=floor)
    report.target("rope_vs_copy", timed["posref"][0] / floor)
    labels = {"onnx": "onnx reference RotaryEmbedding", "torch": "torch eager rotate_half"}
    for key in ("onnx float64", "onnx float32", "torch float64", "torch float32"):
        library, name = key.split()
        label = f"{labels[library]} {name}"
        if key in skipped:
            report.row("a", label, note=f"skipped: {skipped[key]}")
            continue
        seconds, median, actual = timed[key]
        if library == "onnx":
            note = "caches prebuilt" + ("; float64 is outside the op's type list" if name == "float64" else "")
        else:
            note = "cos/sin built from positions inside the call"
            actual = actual.numpy()
        report.row("a", label, seconds=seconds, median=median, floor=floor, note=note)
        _agreement(f"{library} {name} agrees with apply_rope", actual, expected, x, name, report)
    for name in ("float64", "float32"):
        key = f"onnx {name}"
        report.target(f"rope_vs_onnx_{name}", timed["posref"][0] / timed[key][0] if key in timed else None,
                      note="" if key in timed else "onnx not available")


# -- (b) bias matrices --------------------------------------------------------------------


def _sample_rows(length: int) -> list[int]:
    return sorted({0, 1, length // 3, length // 2, length - 2, length - 1} & set(range(length)))


def section_bias(report: Report, cfg: dict, heads: int) -> None:
    import posref

    length = cfg["bias_length"]
    positions = np.arange(length)
    rows = _sample_rows(length)
    source = np.ones((heads, length, length))
    relative_position = positions[None, :] - positions[:, None]  # (T, S), key - query
    slopes = posref.alibi_slopes(heads)
    table = np.random.default_rng(1).standard_normal((32, heads))  # T5's 32 buckets
    timed = measure({
        "copy": lambda: np.copy(source),
        "alibi": lambda: posref.alibi_bias(slopes, positions, positions),
        "t5 bias": lambda: posref.t5_relative_bias(table, positions, positions),
        "copy int": lambda: np.copy(relative_position),
        "t5 bucket": lambda: posref.t5_relative_bucket(relative_position),
    }, cfg["repeat"])
    source = None  # the floor's input is no longer needed

    floor = timed["copy"][0]
    report.row("b", f"np.copy float64 ({heads}, {length}, {length}) (floor)", seconds=floor,
               median=timed["copy"][1], floor=floor)
    seconds, median, bias = timed["alibi"]
    report.row("b", "posref.alibi_bias (distance, causal)", seconds=seconds, median=median, floor=floor)
    # direct formula on sampled query rows: -m (i - j) for j <= i, -inf above the diagonal
    ok = bias.shape == (heads, length, length)
    for i in rows:
        j = np.arange(length)
        want = np.where(j > i, -np.inf, -slopes[:, None] * (i - j)[None, :])
        ok = ok and np.array_equal(bias[:, i, :], want)
    report.check("b", "alibi_bias rows match -m (i - j)", ok, f"rows {rows}")

    seconds, median, bias = timed["t5 bias"]
    report.row("b", "posref.t5_relative_bias (bidirectional)", seconds=seconds, median=median, floor=floor)
    ok = bias.shape == (heads, length, length)
    for i in rows:
        bucket = posref.t5_relative_bucket(np.arange(length) - i)  # one row of the Toeplitz matrix
        ok = ok and np.array_equal(bias[:, i, :], table[bucket].T)
    report.check("b", "t5_relative_bias rows match table[bucket(j - i)]", ok, f"rows {rows}")
    del bias, timed["alibi"], timed["t5 bias"]

    floor_int = timed["copy int"][0]
    report.row("b", f"np.copy int64 ({length}, {length}) (floor)", seconds=floor_int,
               median=timed["copy int"][1], floor=floor_int)
    seconds, median, bucket = timed["t5 bucket"]
    report.row("b", "posref.t5_relative_bucket (bidirectional)", seconds=seconds, median=median, floor=floor_int)
    # each row is the bucket of j - i: compare with the row computed on its own
    ok = bucket.shape == (length, length) and all(
        np.array_equal(bucket[i], posref.t5_relative_bucket(np.arange(length) - i)) for i in rows)
    report.check("b", "t5_relative_bucket rows match bucket(j - i)", ok, f"rows {rows}")


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


# -- output --------------------------------------------------------------------------------

TITLES = {
    "a": "(a) RoPE application",
    "b": "(b) bias matrices",
    "c": "(c) golden corpus",
    "d": "(d) conformance runs (CPU)",
    "e": "(e) peak memory (tracemalloc, subprocess per case)",
}


def _fmt_seconds(value) -> str:
    if value is None:
        return "-"
    return f"{value:.2e}" if value < 0.01 else f"{value:.4f}" if value < 10 else f"{value:.1f}"


def render(result: dict) -> str:
    m = result["machine"]
    lines = [
        f"posref benchmarks ({'quick' if result['quick'] else 'full'} sizes, best of {result['repeat']})",
        f"machine: {m['cpu']}; {m['cores']} cores ({m['usable_cores']} usable); {m['memory_gib']} GiB; "
        f"{m['platform']}",
        f"versions: Python {m['python']}, numpy {m['numpy']}, posref {m['posref']} ({m['posref_path']}), "
        f"torch {m['torch']}"
        + (f" ({m['torch_threads']} threads)" if m.get("torch_threads") else "") + f", onnx {m['onnx']}",
        f"command: {result['command']}",
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
        lines.append(f"  {'case':<{width}}  {'best s':>8}  {'median s':>8}  {'x floor':>8}  note")
        for r in rows:
            ratio = "-" if r["ratio_to_floor"] is None else f"{r['ratio_to_floor']:.2f}"
            lines.append(f"  {r['name']:<{width}}  {_fmt_seconds(r['seconds']):>8}  "
                         f"{_fmt_seconds(r['median_seconds']):>8}  {ratio:>8}  {r['note']}")
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
                        help="sections to run, e.g. 'ab' or 'a,c' (default all: a b c d e)")
    parser.add_argument("--bias-heads", type=_positive, default=1,
                        help="heads H of the (H, T, S) bias matrices in (b) and (e) (default 1)")
    parser.add_argument("--adapter", action="append",
                        help="only this built-in adapter in (d) (repeatable; default all, quick: reference)")
    parser.add_argument("--memory-case", choices=MEMORY_CASES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.memory_case:  # child process of section (e)
        cfg = dict(QUICK if args.quick else FULL)
        print(json.dumps(memory_case(args.memory_case, cfg, args.bias_heads)))
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
