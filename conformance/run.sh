#!/usr/bin/env bash
# The main job: install posref and the libraries of the built-in adapters,
# regenerate and verify the golden corpus, check every built-in adapter that
# can run here, write the conformance matrix, and build the documentation.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
python3 -m pip install --quiet -e '.[test]'
bash conformance/install-adapters.sh
posref golden generate --out conformance/golden
posref golden verify conformance/golden
posref adapters
posref matrix --out conformance/matrix.md
python3 -m sphinx -q -b html docs docs/_build/html
echo "corpus: conformance/golden   matrix: conformance/matrix.md   docs: docs/_build/html/index.html"
