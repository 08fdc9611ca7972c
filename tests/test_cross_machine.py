"""The golden corpus is the same bytes under every CPU and BLAS setting this machine can imitate.

NumPy dispatches float64 ``sin``/``cos``/``exp``/``log``/``power`` to other
SIMD kernels per CPU (``NPY_DISABLE_CPU_FEATURES`` switches them off),
OpenBLAS picks a kernel per CPU (``OPENBLAS_CORETYPE`` forces one), and glibc
picks FMA variants of its ``libm`` (``GLIBC_TUNABLES`` hides them).  Each
setting below imitates another machine; the corpus regenerated under it, in
a fresh process, must be byte-identical to the one regenerated under the
default setting.  Features this CPU lacks are left out of the list, so the
test runs (with fewer settings) on any machine.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

try:
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
except ImportError:  # NumPy 1.x
    from numpy.core._multiarray_umath import __cpu_dispatch__, __cpu_features__

#: Dispatch targets of AVX-512 kernels (NumPy 2.4 names, then the older ones).
AVX512 = ("X86_V4", "AVX512_ICL", "AVX512_SPR", "AVX512F", "AVX512CD", "AVX512_KNL", "AVX512_KNM",
          "AVX512_SKX", "AVX512_CLX", "AVX512_CNL")
#: Dispatch targets of AVX2/FMA kernels.
AVX2 = ("X86_V3", "AVX2", "FMA3", "AVX512F")
#: OpenBLAS kernels every x86-64 CPU of the last decade can run.
BLAS_CORES = ("Sandybridge", "Nehalem")


def _present(names):
    return [n for n in names if n in __cpu_dispatch__ and __cpu_features__.get(n)]


def settings() -> dict[str, dict[str, str]]:
    """Environment settings that imitate other machines, by name."""
    out = {"default": {}}
    wide = _present(AVX512)
    if wide:
        out["no-avx512"] = {"NPY_DISABLE_CPU_FEATURES": " ".join(wide)}
    narrow = _present(AVX512 + AVX2)
    if narrow and narrow != wide:
        out["no-avx512-no-avx2"] = {
            "NPY_DISABLE_CPU_FEATURES": " ".join(narrow),
            "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2_Usable,-FMA_Usable,-AVX2,-FMA",
        }
    if platform.machine().lower() in ("x86_64", "amd64"):
        for core in BLAS_CORES:
            out[f"openblas-{core.lower()}"] = {"OPENBLAS_CORETYPE": core}
    return out


def _generate(out: Path, extra: dict[str, str]) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("NPY_DISABLE_CPU_FEATURES", "OPENBLAS_CORETYPE", "GLIBC_TUNABLES")}
    env.update(extra)
    done = subprocess.run(
        [sys.executable, "-m", "posref", "golden", "generate", "--out", str(out), "--no-progress"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, f"generate under {extra} failed:\n{done.stdout}\n{done.stderr}"


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_settings_include_the_default_and_run_anywhere():
    found = settings()
    assert "default" in found
    assert all(isinstance(env, dict) for env in found.values())


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus") / "default"
    _generate(out, {})
    return _files(out)


@pytest.mark.parametrize("name", [n for n in settings() if n != "default"])
def test_corpus_is_byte_identical_under(name, reference, tmp_path):
    _generate(tmp_path / name, settings()[name])
    other = _files(tmp_path / name)
    assert sorted(other) == sorted(reference)
    differing = [rel for rel in reference if reference[rel] != other[rel]]
    assert not differing, f"{len(differing)} files differ under {name}: {differing[:5]}"


def test_elementary_functions_are_identical_under_every_setting(tmp_path):
    """A sharper probe than the corpus: 20,000 arguments of every precise function, bit for bit."""
    script = (
        "import numpy as np, sys\n"
        "from posref import _arith\n"
        "rng = np.random.default_rng(7)\n"
        "x = np.concatenate([rng.uniform(-1e6, 1e6, 5000), rng.uniform(-10, 10, 5000)])\n"
        "p = np.concatenate([10 ** rng.uniform(-300, 300, 5000), rng.uniform(0.5, 2, 5000)])\n"
        "with _arith.precise():\n"
        "    parts = [_arith.sin(x), _arith.cos(x), _arith.exp(x / 1500), _arith.log(p), _arith.log1p(p - 0.5),\n"
        "             _arith.power(p, x / 1e7), _arith.expit(x / 1000),\n"
        "             _arith.einsum('ij,jk->ik', x[:400].reshape(20, 20), p[:400].reshape(20, 20))]\n"
        "sys.stdout.buffer.write(b''.join(np.ascontiguousarray(a).tobytes() for a in parts))\n"
    )
    outputs = {}
    for name, extra in settings().items():
        env = {k: v for k, v in os.environ.items()
               if k not in ("NPY_DISABLE_CPU_FEATURES", "OPENBLAS_CORETYPE", "GLIBC_TUNABLES")}
        env.update(extra)
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=300)
        assert done.returncode == 0, done.stderr.decode()
        outputs[name] = done.stdout
    assert len({bytes(v) for v in outputs.values()}) == 1, f"results differ between {sorted(outputs)}"
    assert len(outputs["default"]) == 8 * (7 * 10_000 + 400)
    assert np.frombuffer(outputs["default"], dtype=np.float64).size == 70_400
