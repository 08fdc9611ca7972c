#!/usr/bin/env bash
# Install the libraries of the built-in adapters at the versions they were checked with.
# Every install goes through conformance/constraints.txt, which pins the CPU torch, so pip
# never resolves a CUDA torch; lines "# no-deps: NAME" of requirements-adapters.txt are
# installed with --no-deps.
set -euo pipefail
cd "$(dirname "$0")/.."
constraints=conformance/constraints.txt
requirements=conformance/requirements-adapters.txt
install() { python3 -m pip install --quiet --disable-pip-version-check -c "$constraints" "$@"; }
# ggml-python builds its vendored ggml from the sdist: it needs cmake and a C/C++ compiler
if ! { command -v cmake >/dev/null && command -v c++ >/dev/null; } && command -v apt-get >/dev/null; then
    apt-get install -y --no-install-recommends cmake build-essential >/dev/null \
        || { apt-get update >/dev/null && apt-get install -y --no-install-recommends cmake build-essential >/dev/null; }
fi
install -r "$requirements"
mapfile -t no_deps < <(sed -n 's/^# no-deps: *\([^ ]*\).*$/\1/p' "$requirements")
if [ "${#no_deps[@]}" -gt 0 ]; then
    install --no-deps "${no_deps[@]}"
fi
python3 -c "import torch, sys; v = torch.__version__; sys.exit(0 if v.startswith('2.13.0') else 'torch ' + v + ' is not the pinned 2.13.0')"
