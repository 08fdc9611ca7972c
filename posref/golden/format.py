r"""The golden corpus on disk: layout, writer, strict reader and verifier.

Layout
------
A corpus is a directory holding exactly::

    manifest.json               the index (schema: schema/manifest.schema.json)
    cases/<id>.safetensors      one file per case, every array of the case

Inside a case file the arrays are named by where they belong:

==============================  ===========================================
tensor name                     content
==============================  ===========================================
``inputs.<name>``               positional argument ``<name>`` (call order
                                is the order of ``inputs`` in the manifest)
``outputs.<name>``              expected result (``output``, or
                                ``output_0``, ``output_1``, ... for tuples)
``<dtype>.inputs.<name>``       input rounded to ``<dtype>`` (``float32``,
                                ``float16``, ``bfloat16``)
``<dtype>.outputs.<name>``      float64 result of the spec for those
                                rounded inputs
``budgets.<dtype>.<name>``      allowed absolute error of every element of
                                output ``<name>`` for an implementation
                                computing in ``<dtype>`` (``float64``,
                                ``float32``, ``float16``, ``bfloat16``):
                                float32, shaped like the output
==============================  ===========================================

and the header's ``__metadata__`` is ``{"format": "posref-golden",
"case_id": "<id>"}``.  The manifest holds, per case, the function, family,
keyword parameters, tolerance class, expected error, description and seed,
every array's name, tensor name, dtype, shape and the sha256 of its raw
little-endian bytes, and the file's name, size and sha256; and, for the
whole corpus, the spec and posref versions and a ``generator`` record
(provenance: the NumPy version of the writing process and the precision
policy).  It is written with sorted keys, two-space indentation, ASCII only
and a final newline; cases are sorted by id.

Same bytes on every machine
---------------------------
The spec's elementary functions (sin, cos, exp, log, log1p, power, the
logistic function) run in double-double arithmetic built from IEEE-754
additions and multiplications only, and are rounded once to float64; its
contractions multiply exactly and sum with ``math.fsum`` (see
``posref/_arith.py``).  NumPy's own SIMD kernels and OpenBLAS, which round
differently on different CPUs, never touch a golden value.  So the case
files are the same bytes on every CPU, BLAS kernel and NumPy version, and
the manifest too, except the NumPy version it records;
:func:`write_corpus` leaves a corpus that differs only there untouched.

A case carries its own judgement: ``budgets.<dtype>.<name>`` are the
numbers ``posref check`` compares with (the error model of
:mod:`posref.conformance.tolerance`, rounded up to float32), so a test in
another language that checks ``|actual - expected| <= budget`` element by
element judges exactly as posref does.

Why safetensors
---------------
Golden files must be readable from C++, CUDA or Rust test code in a few
dozen lines and safe to open from an untrusted checkout.  A safetensors
file is an 8-byte length, a JSON header giving each array's dtype, shape
and byte range, and raw little-endian data: a reader needs only a JSON
scanner and ``memcpy``, and the format cannot carry code.  ``.npz`` is a
zip of ``.npy`` files (a zip reader and a Python-specific header parser in
every language; object arrays load through pickle if a reader ever passes
``allow_pickle=True``); HDF5 needs a large C library and its files are
not byte-reproducible without care; raw ``.bin`` files need a side channel
for dtype and shape and give no integrity check of their own.  safetensors
also has bfloat16 (``BF16``) as a first-class dtype, and its reference
implementation reads it from PyTorch, NumPy, JAX and Rust.  posref reads
and writes it with its own short NumPy module
(:mod:`posref.golden._safetensors`), so the format adds no dependency.

Writing is atomic: the new corpus is built and fsynced in a hidden sibling
directory, then the old directory is renamed aside, the new one renamed
into place and the old one deleted.  If the process dies before the swap,
the previous corpus is untouched (a ``.<name>.posref-tmp-*`` sibling may be
left behind and can be deleted); if it dies between the two renames, the
previous corpus is whole under ``.<name>.posref-old-*``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from posref._validate import ensure_bool, ensure_choice, ensure_int
from posref._version import SPEC_VERSION, __version__
from posref.golden._errors import CorpusError
from posref.golden._safetensors import (
    SAFETENSORS_DTYPES,
    _decode,
    _encode,
    _from_le_bytes,
    decode_safetensors,
    dtype_name,
    encode_safetensors,
    strict_json_loads,
)
from posref.golden._schema import (
    CORPUS_FORMAT,
    DTYPE_NAMES,
    ID_PATTERN,
    MANIFEST_SCHEMA,
    NAME_PATTERN,
    READABLE_SCHEMA_VERSIONS,
    SCHEMA_VERSION,
    schema_errors,
)
from posref.golden.case import GoldenCase

__all__ = [
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
    "PRECISION_POLICY",
    "BUDGET_DTYPES",
]

#: File name of the index inside a corpus directory.
MANIFEST_NAME = "manifest.json"
#: Sub-directory holding one safetensors file per case.
CASES_DIR = "cases"
#: Largest manifest accepted by the reader.
MAX_MANIFEST_BYTES = 256 * 2**20

ERROR_TYPES = ("ValueError", "TypeError")
#: Dtypes a case can carry budgets for (the dtypes an implementation is checked in).
BUDGET_DTYPES = ("float64", "float32", "float16", "bfloat16")
#: How the float64 outputs are computed; recorded in every manifest's ``generator``.
PRECISION_POLICY = (
    "float64 spec evaluated with correctly rounded elementary functions (double-double, posref._arith) "
    "and exactly summed contractions (math.fsum): the same bytes on every CPU, BLAS and NumPy; each output "
    "within the float64 error-model budget of the exact value of the formula on the case's inputs"
)
_CODE_OF_NAME = {name: code for code, name in SAFETENSORS_DTYPES.items()}
_SECTION_KEY = re.compile(r"(inputs|outputs)\.[A-Za-z_][A-Za-z0-9_]*\Z")


# --------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class WriteResult:
    """What :func:`write_corpus` did.

    Attributes
    ----------
    directory : pathlib.Path
        The corpus directory.
    changed : bool
        False when the directory already held byte-identical content and
        was left untouched.
    case_ids : tuple of str
        Ids of the cases written, sorted.
    """

    directory: Path
    changed: bool
    case_ids: tuple[str, ...]


@dataclass(frozen=True)
class CorpusProblem:
    """One problem :func:`verify_corpus` found.

    Attributes
    ----------
    kind : {"corrupt", "missing", "extra", "stale"}
        ``"corrupt"``: a listed file fails a check (hash, size, format).
        ``"missing"``: a listed file is absent, or an expected case is not
        in the manifest.  ``"extra"``: the manifest lists a case the caller
        did not expect, or the directory holds a file the manifest does not
        list.  ``"stale"``: a case (or the corpus version) differs from what
        the caller's ``expected_cases`` would write now.
    case_id : str or None
        The case concerned, or None for a corpus-level problem.
    file : str or None
        Path relative to the corpus directory, when a file is concerned.
    message : str
        One sentence saying what is wrong.
    """

    kind: str
    case_id: str | None
    file: str | None
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of :func:`verify_corpus`.

    Attributes
    ----------
    directory : pathlib.Path
        The corpus checked.
    checked : int
        Number of cases the manifest lists.
    problems : tuple of CorpusProblem
        Every problem found, in manifest order, then extras.
    within_bound : tuple of str
        Ids of current cases whose float64 outputs are not bit-identical to
        this machine's regeneration but agree within the float64 bound (a
        corpus written by another version of the generator, say); empty
        when no regeneration was compared.
    """

    directory: Path
    checked: int
    problems: tuple[CorpusProblem, ...]
    within_bound: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def of_kind(self, kind: str) -> tuple[CorpusProblem, ...]:
        """The problems of one kind."""
        return tuple(p for p in self.problems if p.kind == kind)

    def __str__(self) -> str:
        head = f"{self.directory}: {self.checked} cases, {len(self.problems)} problems"
        return "\n".join([head] + [f"  {p}" for p in self.problems])


# --------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------


def _ensure_path(name: str, value: Any) -> Path:
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or os.PathLike, got {name}={value!r} of type {type(value).__name__}")
    text = os.fspath(value)
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a text path, got {name}={value!r}")
    if not text:
        raise ValueError(f"{name} must be a non-empty path, got {name}=''")
    return Path(text)


def _prefixed(case_id: str, exc: Exception) -> Exception:
    return type(exc)(f"case {case_id!r}: {exc}")


def _canonical_json(value: Any, where: str) -> Any:
    """Return ``value`` as plain JSON data, or raise naming ``where``."""
    if value is None or isinstance(value, (bool, np.bool_)):
        return None if value is None else bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"{where} must be finite, got {where}={number!r}")
        return number
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return [_canonical_json(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} must have str keys, got key {key!r}")
            out[key] = _canonical_json(item, f"{where}[{key!r}]")
        return out
    raise TypeError(
        f"{where} must be JSON data (str, int, float, bool, None, lists and dicts of those), "
        f"got {where}={value!r} of type {type(value).__name__}"
    )


def _check_arrays(case_id: str, where: str, arrays: Any, key_pattern: re.Pattern[str], key_words: str) -> None:
    if not isinstance(arrays, Mapping):
        raise TypeError(f"case {case_id!r}: {where} must be a dict of arrays, got type {type(arrays).__name__}")
    for key, array in arrays.items():
        if not isinstance(key, str) or not key_pattern.fullmatch(key):
            raise ValueError(f"case {case_id!r}: {where} keys must be {key_words}, got {key!r}")
        if not isinstance(array, np.ndarray) or dtype_name(array.dtype) is None:
            got = f"dtype {array.dtype}" if isinstance(array, np.ndarray) else f"type {type(array).__name__}"
            raise TypeError(
                f"case {case_id!r}: {where}[{key!r}] must be a NumPy array of dtype "
                f"{', '.join(DTYPE_NAMES)}, got {got}"
            )
        if array.ndim > 32:
            raise ValueError(f"case {case_id!r}: {where}[{key!r}] must have at most 32 dimensions, got {array.ndim}")


_NAME_RE = re.compile(NAME_PATTERN.rstrip("$").lstrip("^") + r"\Z")
_ID_RE = re.compile(ID_PATTERN.rstrip("$").lstrip("^") + r"\Z")
_FAMILY_RE = re.compile(r"[A-Za-z0-9_.-]{1,100}\Z")


def _check_case(index: int, case: Any) -> None:
    """Raise TypeError/ValueError if ``case`` cannot be written faithfully."""
    if not isinstance(case, GoldenCase):
        raise TypeError(f"cases[{index}] must be a GoldenCase, got type {type(case).__name__}")
    if not isinstance(case.id, str) or not _ID_RE.match(case.id):
        raise ValueError(
            f"cases[{index}].id must match [a-z0-9_][a-z0-9_.-]* (at most 200 characters), got id={case.id!r}"
        )
    cid = case.id
    for field, pattern, words in (
        ("function", _NAME_RE, "a Python identifier"),
        ("family", _FAMILY_RE, "1 to 100 characters from [A-Za-z0-9_.-]"),
    ):
        value = getattr(case, field)
        if not isinstance(value, str) or not pattern.match(value):
            raise ValueError(f"case {cid!r}: {field} must be {words}, got {field}={value!r}")
    if not isinstance(case.params, Mapping):
        raise TypeError(f"case {cid!r}: params must be a dict, got type {type(case.params).__name__}")
    for key in case.params:
        if not isinstance(key, str) or not _NAME_RE.match(key):
            raise ValueError(f"case {cid!r}: params keys must be Python identifiers, got {key!r}")
    try:
        _canonical_json(dict(case.params), "params")
    except (TypeError, ValueError) as exc:
        raise _prefixed(cid, exc) from None
    _check_arrays(cid, "inputs", case.inputs, _NAME_RE, "Python identifiers")
    _check_arrays(cid, "outputs", case.outputs, _NAME_RE, "Python identifiers")
    if not isinstance(case.rounded, Mapping):
        raise TypeError(f"case {cid!r}: rounded must be a dict of dicts, got type {type(case.rounded).__name__}")
    for dtype, arrays in case.rounded.items():
        if dtype not in DTYPE_NAMES:
            raise ValueError(f"case {cid!r}: rounded keys must be one of {', '.join(DTYPE_NAMES)}, got {dtype!r}")
        _check_arrays(cid, f"rounded[{dtype!r}]", arrays, _SECTION_KEY, "'inputs.<name>' or 'outputs.<name>'")
    if not isinstance(case.budgets, Mapping):
        raise TypeError(f"case {cid!r}: budgets must be a dict of dicts, got type {type(case.budgets).__name__}")
    for dtype, arrays in case.budgets.items():
        if dtype not in BUDGET_DTYPES:
            raise ValueError(f"case {cid!r}: budgets keys must be one of {', '.join(BUDGET_DTYPES)}, got {dtype!r}")
        _check_arrays(cid, f"budgets[{dtype!r}]", arrays, _NAME_RE, "output names")
        outputs = case.rounded.get(dtype, {}) if dtype != "float64" else {}
        for name, array in arrays.items():
            target = outputs.get(f"outputs.{name}", case.outputs.get(name))
            if target is None:
                raise ValueError(f"case {cid!r}: budgets[{dtype!r}] names {name!r}, which is not an output")
            if array.dtype not in (np.float32, np.float64) or array.shape != target.shape:
                raise ValueError(
                    f"case {cid!r}: budgets[{dtype!r}][{name!r}] must be float32 or float64 of shape {target.shape}, "
                    f"got {array.dtype} {array.shape}"
                )
    if not isinstance(case.tolerance, str) or not 1 <= len(case.tolerance) <= 100:
        raise ValueError(f"case {cid!r}: tolerance must be a string of 1 to 100 characters, got {case.tolerance!r}")
    try:
        if case.expect_error is not None:
            ensure_choice("expect_error", case.expect_error, ERROR_TYPES + (None,))
        ensure_int("seed", case.seed, minimum=0)
    except (TypeError, ValueError) as exc:
        raise _prefixed(cid, exc) from None
    if case.error_match is not None and not isinstance(case.error_match, str):
        raise TypeError(f"case {cid!r}: error_match must be a str or None, got {case.error_match!r}")
    if case.error_match is not None and case.expect_error is None:
        raise ValueError(f"case {cid!r}: error_match is set but expect_error is None")
    if case.expect_error is not None and case.outputs:
        raise ValueError(f"case {cid!r}: an error case (expect_error={case.expect_error!r}) must have no outputs")
    if not isinstance(case.description, str):
        raise TypeError(f"case {cid!r}: description must be a str, got {case.description!r}")


def _ensure_cases(name: str, cases: Any) -> list[GoldenCase]:
    if isinstance(cases, (str, bytes, GoldenCase, Mapping)) or not isinstance(cases, Iterable):
        raise TypeError(
            f"{name} must be an iterable of GoldenCase, got {name}={cases!r:.80} of type {type(cases).__name__}"
        )
    cases = list(cases)
    seen = set()
    for index, case in enumerate(cases):
        _check_case(index, case)
        if case.id in seen:
            raise ValueError(f"{name} must have unique ids, got {case.id!r} twice")
        seen.add(case.id)
    return sorted(cases, key=lambda c: c.id)


# --------------------------------------------------------------------------
# Encoding one case
# --------------------------------------------------------------------------


def _case_file(case_id: str) -> str:
    return f"{CASES_DIR}/{case_id}.safetensors"


def _metadata(case_id: str) -> dict[str, str]:
    return {"format": CORPUS_FORMAT, "case_id": case_id}


def _layout(case: GoldenCase):
    """Tensor list and the manifest array lists (without hashes yet)."""
    tensors = []
    inputs, outputs, rounded = [], [], []
    for section, arrays, target in (("inputs", case.inputs, inputs), ("outputs", case.outputs, outputs)):
        for name, array in arrays.items():
            tensors.append((f"{section}.{name}", array))
            target.append([name, f"{section}.{name}", array])
    for dtype, arrays in case.rounded.items():
        group = []
        for key, array in arrays.items():
            tensors.append((f"{dtype}.{key}", array))
            group.append([key, f"{dtype}.{key}", array])
        rounded.append((dtype, group))
    budgets = []
    for dtype in BUDGET_DTYPES:
        if dtype not in case.budgets:
            continue
        group = []
        for name, array in case.budgets[dtype].items():
            tensors.append((f"budgets.{dtype}.{name}", array))
            group.append([name, f"budgets.{dtype}.{name}", array])
        budgets.append((dtype, group))
    return tensors, inputs, outputs, rounded, budgets


def _encode_case(case: GoldenCase) -> tuple[dict[str, Any], bytes]:
    """Return the manifest entry and the file bytes of a checked case."""
    tensors, inputs, outputs, rounded, budgets = _layout(case)
    blob, digests = _encode(tensors, _metadata(case.id))

    def describe(rows: list[list]) -> list[dict[str, Any]]:
        return [
            {
                "name": name,
                "tensor": tensor,
                "dtype": dtype_name(array.dtype),
                "shape": [int(n) for n in array.shape],
                "sha256": digests[tensor],
            }
            for name, tensor, array in rows
        ]

    entry = {
        "id": case.id,
        "function": case.function,
        "family": case.family,
        "params": _canonical_json(dict(case.params), "params"),
        "inputs": describe(inputs),
        "outputs": describe(outputs),
        "rounded": [{"dtype": dtype, "arrays": describe(rows)} for dtype, rows in rounded],
        "budgets": [{"dtype": dtype, "arrays": describe(rows)} for dtype, rows in budgets],
        "tolerance": case.tolerance,
        "expect_error": case.expect_error,
        "error_match": case.error_match,
        "description": case.description,
        "seed": int(case.seed),
        "file": _case_file(case.id),
        "file_size": len(blob),
        "file_sha256": hashlib.sha256(blob).hexdigest(),
    }
    return entry, blob


def _manifest_bytes(entries: list[dict[str, Any]]) -> bytes:
    manifest = {
        "format": CORPUS_FORMAT,
        "schema_version": SCHEMA_VERSION,
        "spec_version": SPEC_VERSION,
        "posref_version": __version__,
        "generator": {"numpy_version": np.__version__, "precision": PRECISION_POLICY},
        "cases": entries,
    }
    text = json.dumps(manifest, sort_keys=True, indent=2, separators=(",", ": "), ensure_ascii=True, allow_nan=False)
    return (text + "\n").encode("ascii")


# --------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------


class _MissingFile(CorpusError):
    """A file the manifest lists is absent."""


def _read_regular_file(path: Path, what: str, limit: int | None = None) -> bytes:
    """Read a regular file that is not a symbolic link, or raise CorpusError."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise _MissingFile(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise CorpusError(f"{what} {path} cannot be read ({exc.strerror})") from None
    if stat.S_ISLNK(info.st_mode):
        raise CorpusError(f"{what} {path} is a symbolic link; corpus files must be regular files")
    if not stat.S_ISREG(info.st_mode):
        raise CorpusError(f"{what} {path} is not a regular file")
    if limit is not None and info.st_size > limit:
        raise CorpusError(f"{what} {path} has {info.st_size} bytes, more than the limit of {limit}")
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise CorpusError(f"{what} {path} is not a regular file")
            return handle.read()
    except OSError as exc:
        raise CorpusError(f"{what} {path} cannot be read ({exc.strerror})") from None


def _check_paths(raw: dict[str, Any], manifest_path: Path) -> None:
    """Name unsafe file paths plainly before the schema's generic message."""
    cases = raw.get("cases")
    if not isinstance(cases, list):
        return
    for index, entry in enumerate(cases):
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
            continue
        name = entry["file"]
        parts = re.split(r"[\\/]", name)
        if os.path.isabs(name) or name.startswith(("/", "\\")) or ".." in parts or re.match(r"[A-Za-z]:", name):
            label = entry.get("id") if isinstance(entry.get("id"), str) else f"cases[{index}]"
            raise CorpusError(
                f"{manifest_path}: case {label!r} names the file {name!r}, which points outside the corpus directory"
            )


def _check_entry(entry: dict[str, Any], where: str) -> None:
    """Rules the schema cannot express, for one case entry."""
    cid = entry["id"]
    if entry["file"] != _case_file(cid):
        raise CorpusError(f"{where}: case {cid!r} must be stored in {_case_file(cid)!r}, got {entry['file']!r}")
    tensors = set()
    for section in ("inputs", "outputs"):
        names = set()
        for array in entry[section]:
            if array["name"] in names:
                raise CorpusError(f"{where}: case {cid!r} lists {section} {array['name']!r} twice")
            names.add(array["name"])
            if array["tensor"] != f"{section}.{array['name']}":
                raise CorpusError(
                    f"{where}: case {cid!r} {section} {array['name']!r} must be tensor "
                    f"'{section}.{array['name']}', got {array['tensor']!r}"
                )
            tensors.add(array["tensor"])
    dtypes = set()
    for group in entry["rounded"]:
        if group["dtype"] in dtypes:
            raise CorpusError(f"{where}: case {cid!r} lists rounded dtype {group['dtype']!r} twice")
        dtypes.add(group["dtype"])
        for array in group["arrays"]:
            expected = f"{group['dtype']}.{array['name']}"
            if array["tensor"] != expected:
                raise CorpusError(
                    f"{where}: case {cid!r} rounded array {array['name']!r} must be tensor "
                    f"{expected!r}, got {array['tensor']!r}"
                )
            if expected in tensors:
                raise CorpusError(f"{where}: case {cid!r} lists tensor {expected!r} twice")
            tensors.add(expected)
    budget_dtypes = set()
    outputs = {a["name"] for a in entry["outputs"]}
    for group in entry.get("budgets", []):
        if group["dtype"] in budget_dtypes:
            raise CorpusError(f"{where}: case {cid!r} lists budgets for {group['dtype']!r} twice")
        budget_dtypes.add(group["dtype"])
        for array in group["arrays"]:
            expected = f"budgets.{group['dtype']}.{array['name']}"
            if array["tensor"] != expected or array["name"] not in outputs:
                raise CorpusError(
                    f"{where}: case {cid!r} budget {array['name']!r} must be tensor {expected!r} of an "
                    f"output ({', '.join(sorted(outputs)) or 'none'}), got {array['tensor']!r}"
                )
            if expected in tensors:
                raise CorpusError(f"{where}: case {cid!r} lists tensor {expected!r} twice")
            tensors.add(expected)
    if entry["error_match"] is not None and entry["expect_error"] is None:
        raise CorpusError(f"{where}: case {cid!r} has error_match but no expect_error")
    if entry["expect_error"] is not None and entry["outputs"]:
        raise CorpusError(f"{where}: case {cid!r} expects {entry['expect_error']} but lists outputs")


def _load_manifest(root: Path) -> dict[str, Any]:
    """Read, parse and validate ``root/manifest.json``, or raise CorpusError."""
    path = root / MANIFEST_NAME
    try:
        info = os.stat(root)
    except OSError:
        raise CorpusError(f"corpus directory {root} does not exist") from None
    if not stat.S_ISDIR(info.st_mode):
        raise CorpusError(f"corpus directory {root} is not a directory")
    data = _read_regular_file(path, "manifest", MAX_MANIFEST_BYTES)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{path} is not valid UTF-8 (byte {exc.start})") from None
    raw = strict_json_loads(text, str(path))
    if not isinstance(raw, dict):
        raise CorpusError(f"{path} must hold a JSON object, got {type(raw).__name__}")
    if raw.get("format") != CORPUS_FORMAT:
        raise CorpusError(f"{path} is not a posref golden corpus manifest (format is {raw.get('format')!r})")
    version = raw.get("schema_version")
    if isinstance(version, bool) or version not in READABLE_SCHEMA_VERSIONS:
        readable = " and ".join(str(v) for v in READABLE_SCHEMA_VERSIONS)
        raise CorpusError(
            f"{path} has schema_version {version!r}; posref {__version__} reads schema_version {readable}"
        )
    _check_paths(raw, path)
    for message in schema_errors(raw, READABLE_SCHEMA_VERSIONS[version]):
        raise CorpusError(f"{path} violates the manifest schema: {message}")
    previous = None
    for entry in raw["cases"]:
        if previous is not None and entry["id"] <= previous:
            order = "twice" if entry["id"] == previous else f"after {previous!r} (cases must be sorted by id)"
            raise CorpusError(f"{path}: case {entry['id']!r} is listed {order}")
        previous = entry["id"]
        _check_entry(entry, str(path))
    return raw


def _case_path(root: Path, entry: dict[str, Any]) -> Path:
    cases_dir = root / CASES_DIR
    try:
        info = os.lstat(cases_dir)
    except OSError:
        raise _MissingFile(f"case {entry['id']!r}: directory {cases_dir} does not exist") from None
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise CorpusError(
            f"case {entry['id']!r}: {cases_dir} must be a directory, not a symbolic link or a file"
        )
    return root / entry["file"]


def _read_entry(root: Path, entry: dict[str, Any]) -> GoldenCase:
    """Read and check the file of one manifest entry."""
    cid, rel = entry["id"], entry["file"]
    label = f"case {cid!r} (file {rel})"
    path = _case_path(root, entry)
    try:
        data = _read_regular_file(path, "case file")
    except _MissingFile as exc:
        raise _MissingFile(f"{label}: {exc}") from None
    except CorpusError as exc:
        raise CorpusError(f"{label}: {exc}") from None
    if os.path.dirname(os.path.realpath(path)) != os.path.realpath(root / CASES_DIR):
        raise CorpusError(f"{label}: the file resolves outside {root / CASES_DIR}")
    if len(data) != entry["file_size"]:
        raise CorpusError(f"{label}: file has {len(data)} bytes, the manifest says {entry['file_size']} (truncated?)")
    try:
        tensors, metadata = _decode(data)
    except CorpusError as exc:
        raise CorpusError(f"{label}: {exc}") from None
    if metadata != _metadata(cid):
        raise CorpusError(f"{label}: header __metadata__ is {metadata!r}, expected {_metadata(cid)!r}")
    listed = {}
    for section in ("inputs", "outputs"):
        for array in entry[section]:
            listed[array["tensor"]] = array
    for group in entry["rounded"] + entry.get("budgets", []):
        for array in group["arrays"]:
            listed[array["tensor"]] = array
    if set(listed) != set(tensors):
        missing = sorted(set(listed) - set(tensors))
        extra = sorted(set(tensors) - set(listed))
        raise CorpusError(f"{label}: tensors differ from the manifest (missing {missing}, not listed {extra})")
    arrays = {}
    for name, (code, shape, raw) in tensors.items():
        row = listed[name]
        if code != _CODE_OF_NAME[row["dtype"]] or list(shape) != row["shape"]:
            raise CorpusError(
                f"{label}: tensor {name!r} is {code} {list(shape)} in the file but "
                f"{row['dtype']} {row['shape']} in the manifest"
            )
        if hashlib.sha256(raw).hexdigest() != row["sha256"]:
            raise CorpusError(f"{label}: sha256 of tensor {name!r} does not match the manifest (corrupt data)")
        try:
            arrays[name] = _from_le_bytes(raw, code, shape)
        except CorpusError as exc:
            raise CorpusError(f"{label}: tensor {name!r}: {exc}") from None
    if hashlib.sha256(data).hexdigest() != entry["file_sha256"]:
        raise CorpusError(f"{label}: sha256 of the file does not match the manifest (corrupt header)")
    return GoldenCase(
        id=cid,
        function=entry["function"],
        family=entry["family"],
        params=entry["params"],
        inputs={a["name"]: arrays[a["tensor"]] for a in entry["inputs"]},
        outputs={a["name"]: arrays[a["tensor"]] for a in entry["outputs"]},
        rounded={g["dtype"]: {a["name"]: arrays[a["tensor"]] for a in g["arrays"]} for g in entry["rounded"]},
        tolerance=entry["tolerance"],
        budgets={g["dtype"]: {a["name"]: arrays[a["tensor"]] for a in g["arrays"]} for g in entry.get("budgets", [])},
        expect_error=entry["expect_error"],
        error_match=entry["error_match"],
        description=entry["description"],
        seed=entry["seed"],
    )


def read_corpus(directory, /):
    r"""Read every case of a golden corpus, checking everything.

    The manifest is parsed strictly (UTF-8, no duplicate keys, no
    NaN/Infinity), validated against :data:`MANIFEST_SCHEMA` and the rules
    the schema cannot express (ids unique and sorted, each file at
    ``cases/<id>.safetensors``, tensor names consistent).  Each case file
    must be a regular file inside ``cases/`` (no symbolic links), pass
    every check of :func:`decode_safetensors`, list exactly the tensors,
    dtypes and shapes of its manifest entry, and match the manifest's size
    and sha256, both per array and for the whole file.

    Parameters
    ----------
    directory : str or os.PathLike
        The corpus directory (holding ``manifest.json``).

    Returns
    -------
    list of GoldenCase
        Sorted by id; arrays are fresh, writable and in native byte order;
        ``inputs`` keep call order.

    Raises
    ------
    TypeError
        If ``directory`` is not a path.
    CorpusError
        If anything is missing, malformed, unsafe or corrupt; the message
        names the case id and the file concerned.

    See Also
    --------
    read_case : Read one case.
    verify_corpus : Report every problem instead of raising at the first.
    write_corpus : The writer.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from posref.golden import GoldenCase, write_corpus, read_corpus
    >>> case = GoldenCase(id="demo", function="rope_frequencies",
    ...                   family="rope", params={"base": 100.0},
    ...                   inputs={"dim": np.array(4)},
    ...                   outputs={"output": np.array([1.0, 0.1])})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = write_corpus([case], f"{tmp}/corpus")
    ...     [back] = read_corpus(f"{tmp}/corpus")
    >>> back.params, back.outputs["output"]
    ({'base': 100.0}, array([1. , 0.1]))
    """
    root = _ensure_path("directory", directory)
    manifest = _load_manifest(root)
    return [_read_entry(root, entry) for entry in manifest["cases"]]


def read_case(directory, case_id, /):
    r"""Read one case of a golden corpus, with the checks of :func:`read_corpus`.

    Only the manifest and that case's file are read.

    Parameters
    ----------
    directory : str or os.PathLike
        The corpus directory.
    case_id : str
        Id of the case.

    Returns
    -------
    GoldenCase

    Raises
    ------
    TypeError
        If ``directory`` is not a path or ``case_id`` not a str.
    CorpusError
        If the manifest is invalid, has no case ``case_id``, or the case's
        file is missing or corrupt.

    See Also
    --------
    read_corpus : Read every case.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from posref.golden import GoldenCase, write_corpus, read_case
    >>> case = GoldenCase(id="slopes.two_heads", function="alibi_slopes",
    ...                   family="alibi", params={},
    ...                   inputs={"num_heads": np.array(2)},
    ...                   outputs={"output": np.array([0.0625, 0.00390625])})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = write_corpus([case], tmp + "/c")
    ...     read_case(tmp + "/c", "slopes.two_heads").outputs["output"]
    array([0.0625    , 0.00390625])
    """
    root = _ensure_path("directory", directory)
    if not isinstance(case_id, str):
        raise TypeError(f"case_id must be a str, got case_id={case_id!r} of type {type(case_id).__name__}")
    manifest = _load_manifest(root)
    for entry in manifest["cases"]:
        if entry["id"] == case_id:
            return _read_entry(root, entry)
    raise CorpusError(f"corpus {root} has no case {case_id!r} ({len(manifest['cases'])} cases listed)")


# --------------------------------------------------------------------------
# Verifying
# --------------------------------------------------------------------------


def _differing_fields(stored: dict[str, Any], fresh: dict[str, Any]) -> list[str]:
    def text(value: Any) -> str:
        return json.dumps(value, sort_keys=True)

    return [key for key in fresh if key not in stored or text(stored[key]) != text(fresh[key])]


#: Relative amount by which a stored budget may differ from a recomputed one.
BUDGET_SLACK = 1e-6


def _structure(entry: dict[str, Any]) -> dict[str, Any]:
    """A manifest entry without the fields that depend on the bytes of the outputs and budgets."""

    def rows(arrays):
        return [(a["name"], a["tensor"], a["dtype"], a["shape"]) for a in arrays]

    out = {key: value for key, value in entry.items() if key not in ("file_size", "file_sha256")}
    for section in ("inputs", "outputs"):
        out[section] = rows(entry[section])
    for section in ("rounded", "budgets"):
        out[section] = [(g["dtype"], rows(g["arrays"])) for g in entry.get(section, [])]
    return out


def _first_difference(stored: np.ndarray, fresh: np.ndarray, bound: np.ndarray | None):
    """Index of the first element of ``stored`` that ``fresh`` does not match, or None.

    Without ``bound`` the arrays must be equal bit for bit (NaN matching NaN);
    with it, finite elements may differ by the bound (non-finite ones must
    match).
    """
    if stored.dtype.kind != "f" and stored.dtype.name != "bfloat16":
        bad = stored != fresh
    else:
        a, b = stored.astype(np.float64), fresh.astype(np.float64)
        same = (a == b) | (np.isnan(a) & np.isnan(b))
        if bound is None:
            same &= np.signbit(a) == np.signbit(b)
            bad = ~same
        else:
            with np.errstate(invalid="ignore", over="ignore"):
                close = np.isfinite(a) & np.isfinite(b) & (np.abs(a - b) <= bound)
            bad = ~(same | close)
    where = np.argwhere(bad)
    return tuple(int(i) for i in where[0]) if where.size else None


def _float64_bounds(case: GoldenCase) -> dict[str, dict[str, np.ndarray]]:
    """The float64 budget of every output, for the base outputs and each rounded variant."""
    from posref import _arith
    from posref.conformance.tolerance import CaseView, budgets

    def of(inputs, expected):
        inputs = {n: a.astype(np.float64) if a.dtype.kind == "f" or a.dtype.name == "bfloat16" else a
                  for n, a in inputs.items()}
        try:
            with _arith.precise():
                return budgets(CaseView(case.function, case.params, inputs, expected), case.tolerance, "float64")
        except (ValueError, TypeError, KeyError):  # no usable error model: compare bit for bit
            return {name: np.zeros(np.shape(a)) for name, a in expected.items()}

    bounds = {"": case.budgets["float64"] if "float64" in case.budgets else of(case.inputs, case.outputs)}
    for dtype, arrays in case.rounded.items():
        inputs = {n: arrays.get(f"inputs.{n}", a) for n, a in case.inputs.items()}
        expected = {k.removeprefix("outputs."): a for k, a in arrays.items() if k.startswith("outputs.")}
        bounds[dtype] = of(inputs, expected)
    return bounds


def _compare_case(entry: dict[str, Any], disk: GoldenCase, fresh: GoldenCase) -> tuple[str | None, bool]:
    """Compare a stored case with a regenerated one by meaning.

    Returns (the first difference that matters, or None; whether every array
    is bit-identical).  Parameters, names, dtypes, shapes and inputs must be
    equal; float64 outputs may differ by their float64 budget (the error
    model with u = 2**-53); budgets by a relative ``BUDGET_SLACK`` (:math:`10^{-6}`).
    """
    cid = fresh.id
    fresh_entry, _ = _encode_case(fresh)
    stored_structure, fresh_structure = _structure(entry), _structure(fresh_entry)
    differing = _differing_fields(stored_structure, fresh_structure)
    if differing:
        return f"case {cid!r} differs from the expected case in: {', '.join(differing)}", False
    exact = entry["file_sha256"] == fresh_entry["file_sha256"]
    if exact:
        return None, True
    sections = [("inputs", "", disk.inputs, fresh.inputs, False)]
    for dtype in fresh.rounded:
        sections.append((dtype, f"{dtype}.", disk.rounded[dtype], fresh.rounded[dtype], False))
    bounds = _float64_bounds(fresh)
    sections.append(("outputs", "outputs.", disk.outputs, fresh.outputs, bounds[""]))
    for dtype in fresh.rounded:
        outs = {k.removeprefix("outputs."): a for k, a in fresh.rounded[dtype].items() if k.startswith("outputs.")}
        stored_outs = {k.removeprefix("outputs."): a for k, a in disk.rounded[dtype].items() if k.startswith("outputs.")}
        sections.append((dtype, f"{dtype}.outputs.", stored_outs, outs, bounds[dtype]))
    for dtype in fresh.budgets:
        slack = {n: BUDGET_SLACK * np.abs(np.where(np.isfinite(a), a, 0.0)) for n, a in fresh.budgets[dtype].items()}
        sections.append((dtype, f"budgets.{dtype}.", disk.budgets[dtype], fresh.budgets[dtype], slack))
    for _, prefix, stored_arrays, fresh_arrays, bound in sections:
        for name, fresh_array in fresh_arrays.items():
            if prefix.endswith(".") and not prefix.startswith(("outputs", "budgets")) and name.startswith("outputs."):
                continue  # a variant's outputs are compared with their bound below
            stored_array = stored_arrays[name]
            limit = None if bound is False else np.broadcast_to(bound[name], fresh_array.shape)
            index = _first_difference(stored_array, fresh_array, limit)
            if index is None:
                continue
            value, wanted = stored_array[index], fresh_array[index]
            tensor = f"{prefix}{name}"
            if limit is None:
                return (f"case {cid!r}: {tensor}{list(index)} is {value!r}, the expected case has {wanted!r} "
                        "(inputs must be identical)"), False
            return (f"case {cid!r}: {tensor}{list(index)} is {float(value)!r}, this machine computes "
                    f"{float(wanted)!r}; the difference {abs(float(value) - float(wanted)):.3g} exceeds the bound "
                    f"{float(limit[index]):.3g}"), False
    return None, False


def verify_corpus(directory, expected_cases=None, /):
    r"""Check a corpus and report every problem instead of raising.

    Every case file is read with the checks of :func:`read_corpus` (sizes
    and sha256 of every tensor and file); files the manifest does not list
    are reported as extra.  With ``expected_cases`` (the cases the caller
    regenerates now), the corpus is also compared with them by meaning:
    cases present on only one side are ``"missing"`` or ``"extra"``; a case
    is ``"stale"`` if its parameters, array names, dtypes or shapes differ,
    if an input differs in any bit, if a float64 output differs from the
    regenerated one by more than its float64 budget (posref's error model
    with :math:`u = 2^{-53}`; bit for bit for a case whose tolerance class
    has no model), or if a budget differs by more than a
    relative ``BUDGET_SLACK`` (:math:`10^{-6}`); the message names the first such element
    with both values and the bound.  A different ``spec_version``,
    ``posref_version`` or ``schema_version`` is a corpus-level ``"stale"``
    problem.  The NumPy version and CPU that wrote the corpus do not
    matter: a corpus written anywhere verifies anywhere.

    Parameters
    ----------
    directory : str or os.PathLike
        The corpus directory.
    expected_cases : iterable of GoldenCase, optional
        The cases the corpus should hold; unique ids.

    Returns
    -------
    VerifyReport
        ``report.ok`` is True when nothing is wrong; ``report.problems``
        lists :class:`CorpusProblem` records (kind, case id, file, message).

    Raises
    ------
    TypeError, ValueError
        If ``directory`` is not a path or ``expected_cases`` holds an
        invalid case (as for :func:`write_corpus`).
    CorpusError
        If the manifest itself is missing or invalid (no case can be
        checked then).

    See Also
    --------
    read_corpus : Raise at the first problem instead.

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> from posref.golden import GoldenCase, write_corpus, verify_corpus
    >>> case = GoldenCase(id="a", function="rope_frequencies", family="rope",
    ...                   params={}, inputs={"dim": np.array(2)},
    ...                   outputs={"output": np.array([1.0])})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = write_corpus([case], tmp)
    ...     os.remove(os.path.join(tmp, "cases", "a.safetensors"))
    ...     print(verify_corpus(tmp, [case]).problems[0].message)
    case 'a': file cases/a.safetensors does not exist
    """
    root = _ensure_path("directory", directory)
    expected = None if expected_cases is None else _ensure_cases("expected_cases", expected_cases)
    manifest = _load_manifest(root)
    problems: list[CorpusProblem] = []
    readable: dict[str, GoldenCase] = {}
    listed_files = set()
    for entry in manifest["cases"]:
        cid, rel = entry["id"], entry["file"]
        listed_files.add(rel)
        try:
            readable[cid] = _read_entry(root, entry)
        except _MissingFile:
            problems.append(CorpusProblem("missing", cid, rel, f"case {cid!r}: file {rel} does not exist"))
        except CorpusError as exc:
            problems.append(CorpusProblem("corrupt", cid, rel, str(exc)))

    within_bound = []
    if expected is not None:
        if (manifest["spec_version"], manifest["posref_version"]) != (SPEC_VERSION, __version__):
            problems.append(
                CorpusProblem(
                    "stale",
                    None,
                    MANIFEST_NAME,
                    f"corpus was written for spec {manifest['spec_version']} by posref "
                    f"{manifest['posref_version']}; this is spec {SPEC_VERSION}, posref {__version__}",
                )
            )
        if manifest["schema_version"] != SCHEMA_VERSION:
            problems.append(
                CorpusProblem(
                    "stale", None, MANIFEST_NAME,
                    f"corpus has schema_version {manifest['schema_version']}; posref {__version__} writes "
                    f"schema_version {SCHEMA_VERSION} (with budgets and provenance)",
                )
            )
        stored = {entry["id"]: entry for entry in manifest["cases"]}
        wanted = {case.id: case for case in expected}
        for cid in sorted(set(wanted) - set(stored)):
            problems.append(CorpusProblem("missing", cid, None, f"case {cid!r} is expected but not in the manifest"))
        for cid in sorted(set(stored) - set(wanted)):
            problems.append(
                CorpusProblem("extra", cid, stored[cid]["file"], f"case {cid!r} is in the manifest but not expected")
            )
        for cid in sorted(set(stored) & set(wanted) & set(readable)):
            message, exact = _compare_case(stored[cid], readable[cid], wanted[cid])
            if message is not None:
                problems.append(CorpusProblem("stale", cid, stored[cid]["file"], message))
            elif not exact:
                within_bound.append(cid)

    for rel in _stray_files(root, listed_files):
        problems.append(CorpusProblem("extra", None, rel, f"{rel} is not listed in the manifest"))
    return VerifyReport(root, len(manifest["cases"]), tuple(problems), tuple(within_bound))


def _stray_files(root: Path, listed: set[str]) -> list[str]:
    stray = []
    for name in sorted(os.listdir(root)):
        if name == MANIFEST_NAME:
            continue
        if name == CASES_DIR and os.path.isdir(root / name) and not os.path.islink(root / name):
            for inner in sorted(os.listdir(root / name)):
                rel = f"{CASES_DIR}/{inner}"
                if rel not in listed:
                    stray.append(rel)
            continue
        stray.append(name)
    return stray


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------


def _write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file and flush it to disk."""
    with open(path, "xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":  # directories cannot be opened for fsync on Windows
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _rename(source: Path, target: Path) -> None:
    os.rename(source, target)


def _remove(path: Path) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except OSError:
            pass


def _fresh_sibling(target: Path, tag: str) -> Path:
    """A new, empty directory next to ``target`` named ``.<name>.posref-<tag>-*``."""
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.posref-{tag}-", dir=target.parent))


def _same_tree(a: Path, b: Path) -> bool:
    """True if two directories hold the same regular files with the same bytes."""

    def listing(root: Path) -> dict[str, str] | None:
        files = {}
        for folder, dirs, names in os.walk(root):
            for name in dirs + names:
                full = os.path.join(folder, name)
                rel = os.path.relpath(full, root).replace(os.sep, "/")
                info = os.lstat(full)
                if stat.S_ISLNK(info.st_mode):
                    return None
                if stat.S_ISREG(info.st_mode):
                    files[rel] = "file"
                elif stat.S_ISDIR(info.st_mode):
                    files[rel] = "dir"
                else:
                    return None
        return files

    left, right = listing(a), listing(b)
    if left is None or left != right:
        return False
    for rel, kind in left.items():
        if kind != "file":
            continue
        old, new = Path(a, rel).read_bytes(), Path(b, rel).read_bytes()
        if old != new and not (rel == MANIFEST_NAME and _same_manifest(old, new)):
            return False
    return True


def _same_manifest(old: bytes, new: bytes) -> bool:
    """True if two manifests differ at most in the NumPy version that wrote them."""
    try:
        first, second = json.loads(old), json.loads(new)
        first["generator"]["numpy_version"] = second["generator"]["numpy_version"]
    except (ValueError, KeyError, TypeError):
        return False
    return first == second


def _refusal(out: Path, cases: list[GoldenCase]) -> str | None:
    """Why writing into the existing ``out`` needs force=True, or None."""
    if not out.is_dir():
        return f"{out} exists and is not a directory"
    if not os.listdir(out):
        return None
    try:
        manifest = _load_manifest(out)
    except CorpusError as exc:
        return f"{out} exists and is not a posref golden corpus ({exc})"
    old_ids = {entry["id"] for entry in manifest["cases"]}
    new_ids = {case.id for case in cases}
    reasons = []
    if old_ids != new_ids:
        added, removed = sorted(new_ids - old_ids), sorted(old_ids - new_ids)
        reasons.append(f"{len(added)} cases added {added[:3]}, {len(removed)} removed {removed[:3]}")
    old_versions = (manifest["spec_version"], manifest["posref_version"])
    if old_versions != (SPEC_VERSION, __version__):
        reasons.append(
            f"it was written for spec {old_versions[0]} by posref {old_versions[1]}, "
            f"this is spec {SPEC_VERSION}, posref {__version__}"
        )
    if reasons:
        return f"the corpus in {out} lists different cases or versions: " + "; ".join(reasons)
    return None


def write_corpus(cases, out_dir, /, *, force=False, progress=None):
    r"""Write golden cases to a corpus directory, atomically and reproducibly.

    Every case is checked before anything is written.  The corpus is built
    in a hidden sibling directory (each file and directory fsynced), then
    swapped into place: the old directory is renamed aside, the new one
    renamed to ``out_dir``, and the old one deleted.  A failure or an
    interruption before the swap leaves the previous corpus untouched.  If
    ``out_dir`` already holds the same content (byte-identical, except
    perhaps the NumPy version recorded in the manifest's ``generator``),
    nothing is changed.

    Parameters
    ----------
    cases : iterable of GoldenCase
        Cases with unique ids.  Arrays may be float64, float32, float16,
        bfloat16, int64, int32 or bool; ``params`` must be JSON data
        (tuples are written as lists, NumPy scalars as plain numbers,
        non-finite floats are refused).
    out_dir : str or os.PathLike
        Corpus directory; its parent is created if needed.  It must not be
        a symbolic link.
    force : bool, default False, keyword-only
        Replace ``out_dir`` even if it is not a posref corpus, or lists a
        different set of case ids, or another ``spec_version`` or
        ``posref_version``.  An empty directory is replaced without it.
    progress : callable, optional, keyword-only
        Called as ``progress(done, total, case_id)`` after each case file
        is written.

    Returns
    -------
    WriteResult
        The directory, whether anything changed, and the ids written.

    Raises
    ------
    TypeError
        If ``cases`` is not an iterable of GoldenCase, an array has an
        unsupported dtype, ``params`` is not JSON data, ``out_dir`` is not
        a path, ``force`` not a bool or ``progress`` not callable.
    ValueError
        If ids repeat or are malformed, a field breaks the GoldenCase
        contract, or ``out_dir`` is a symbolic link.
    FileExistsError
        If ``out_dir`` exists and ``force`` is False and it is not a
        posref corpus or differs in case ids or versions.

    See Also
    --------
    read_corpus, verify_corpus

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> from posref.golden import GoldenCase, write_corpus
    >>> case = GoldenCase(id="rope.freq.dim4", function="rope_frequencies",
    ...                   family="rope", params={"base": 100.0},
    ...                   inputs={"dim": np.array(4)},
    ...                   outputs={"output": np.array([1.0, 0.1])})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     first = write_corpus([case], os.path.join(tmp, "golden"))
    ...     again = write_corpus([case], os.path.join(tmp, "golden"))
    ...     files = sorted(os.listdir(os.path.join(tmp, "golden", "cases")))
    >>> first.changed, again.changed, files
    (True, False, ['rope.freq.dim4.safetensors'])
    """
    cases = _ensure_cases("cases", cases)
    out = _ensure_path("out_dir", out_dir)
    force = ensure_bool("force", force)
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be a callable or None, got progress={progress!r} of type {type(progress).__name__}")
    if out.is_symlink():
        raise ValueError(f"out_dir must not be a symbolic link, got out_dir={str(out)!r}")
    out = Path(os.path.abspath(out))
    exists = os.path.lexists(out)
    if exists and not force:
        reason = _refusal(out, cases)
        if reason is not None:
            raise FileExistsError(f"{reason}; pass force=True to replace it")

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = _fresh_sibling(out, "tmp")
    try:
        os.mkdir(staging / CASES_DIR)
        entries = []
        for done, case in enumerate(cases, start=1):
            entry, blob = _encode_case(case)
            _write_file(staging / entry["file"], blob)
            entries.append(entry)
            if progress is not None:
                progress(done, len(cases), case.id)
        _write_file(staging / MANIFEST_NAME, _manifest_bytes(entries))
        _fsync_dir(staging / CASES_DIR)
        _fsync_dir(staging)
        if exists and out.is_dir() and _same_tree(out, staging):
            _remove(staging)
            return WriteResult(out, False, tuple(c.id for c in cases))
        if exists:
            old = _fresh_sibling(out, "old")
            os.rmdir(old)
            _rename(out, old)
            try:
                _rename(staging, out)
            except BaseException:
                _rename(old, out)
                raise
            _fsync_dir(out.parent)
            _remove(old)
        else:
            _rename(staging, out)
            _fsync_dir(out.parent)
    except BaseException:
        _remove(staging)
        raise
    return WriteResult(out, True, tuple(c.id for c in cases))
