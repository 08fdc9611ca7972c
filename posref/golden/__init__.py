"""Golden cases: the in-memory record and the language-neutral corpus on disk.

A corpus is ``manifest.json`` plus one safetensors file per case; see
:mod:`posref.golden.format` for the layout and the reasons for it.
"""

from posref.golden.case import LOW_PRECISION_DTYPES, GoldenCase
from posref.golden.format import (
    CASES_DIR,
    MANIFEST_NAME,
    MANIFEST_SCHEMA,
    SCHEMA_VERSION,
    CorpusError,
    CorpusProblem,
    VerifyReport,
    WriteResult,
    decode_safetensors,
    encode_safetensors,
    read_case,
    read_corpus,
    verify_corpus,
    write_corpus,
)

__all__ = [
    "GoldenCase",
    "LOW_PRECISION_DTYPES",
    "CorpusError",
    "CorpusProblem",
    "VerifyReport",
    "WriteResult",
    "write_corpus",
    "read_corpus",
    "read_case",
    "verify_corpus",
    "encode_safetensors",
    "decode_safetensors",
    "MANIFEST_SCHEMA",
    "SCHEMA_VERSION",
    "MANIFEST_NAME",
    "CASES_DIR",
]
