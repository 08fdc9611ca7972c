"""The committed conformance matrix is current under other BLAS kernels and without AVX-512 loops.

Apart from ``test_conformance_matrix.py`` so that the two whole-matrix runs can go to different
test workers (``pytest -n 2 --dist loadfile``).
"""

import os
import subprocess
import sys

from test_conformance_matrix import ROOT, _skip_unless_adapters


def _dispatched_avx512():
    """AVX-512 targets NumPy found on this CPU and dispatches to (may be empty)."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:  # NumPy 1.x
        from numpy.core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    return sorted(name for name in __cpu_dispatch__
                  if __cpu_features__.get(name) and (name.startswith("AVX512") or name == "X86_V4"))


def test_matrix_is_current_on_other_kernels():
    """The committed matrix passes --check with other BLAS kernels and without AVX-512 loops."""
    _skip_unless_adapters()
    env = {k: v for k, v in os.environ.items() if k != "NPY_ENABLE_CPU_FEATURES"}
    env["OPENBLAS_CORETYPE"] = "Sandybridge"
    features = _dispatched_avx512()
    if features:
        env["NPY_DISABLE_CPU_FEATURES"] = " ".join(features)
    done = subprocess.run([sys.executable, "-m", "posref", "matrix", "--check", "--no-progress"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    setting = f"OPENBLAS_CORETYPE=Sandybridge NPY_DISABLE_CPU_FEATURES={' '.join(features) or '(none)'}"
    assert done.returncode == 0, f"{setting}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
