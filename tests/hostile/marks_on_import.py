"""An adapter module that leaves a file behind when imported: proof that adapter code ran.

The file is ``POSREF_HOSTILE_MARKER``; a usage error must be reported before it exists.
"""

import os

from posref.rope import rope_frequencies  # noqa: F401  (a correct function, so that it loads)

ADAPTER_DTYPES = ("float64", "float32")

_marker = os.environ.get("POSREF_HOSTILE_MARKER")
if _marker:
    with open(_marker, "w") as handle:
        handle.write("imported\n")
