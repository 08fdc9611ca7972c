"""Golden cases: the in-memory record and the language-neutral corpus on disk.

A corpus is ``manifest.json`` plus one safetensors file per case; see
:mod:`posref.golden.format` for the layout and the reasons for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from posref.golden import format as _format
from posref.golden.case import LOW_PRECISION_DTYPES, GoldenCase
from posref.golden.format import *  # noqa: F403  (exactly format's __all__)

__all__ = ["GoldenCase", "LOW_PRECISION_DTYPES", *_format.__all__, "read_manifest"]


def read_manifest(directory, /) -> dict[str, Any]:
    """The manifest of the corpus in ``directory``, read, parsed and checked against the schema.

    Cheaper than :func:`read_corpus`: no case file is opened.

    Raises
    ------
    CorpusError
        If the directory does not exist, or its manifest is missing, malformed or of an unreadable
        schema version.
    """
    return _format._load_manifest(Path(directory))
