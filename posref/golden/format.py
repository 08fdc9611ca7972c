r"""The golden corpus on disk: layout, writer, strict reader and verifier.

Layout
------
A corpus is a directory holding exactly::

    manifest.json               the index (schema: schema/manifest.schema.json)
    cases/<id>.safetensors      one file per case, every array of the case

A case file is named ``cases/<id>.safetensors``, or
``cases/<id>@<hash>.safetensors`` after an in-place write changed it
(``<hash>``: the first 16 hex digits of its sha256; see *Writing*).  Find a
case's file through the ``file`` field of its manifest entry, never by
building the name.

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
:mod:`posref.tolerance`, rounded up to float32), so a test in
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

Writing
-------
:func:`write_corpus` never loses a file it did not write.  It works in
place, inside the corpus directory, so only that directory (not its
parent) must be writable, and the directory keeps its inode, mode, owner
and ACLs; everything it creates gets mode 0777 (directories) or 0666
(files) less the umask.  Before writing it surveys the directory: anything
the manifest there does not list (a ``README.md``, a ``.git``, an unlisted
``cases/*.safetensors``, a manifest that is not posref's) makes it refuse,
with or without ``force``, naming the first such file; it deletes nothing
else.  Then, holding an exclusive ``flock`` on the directory:

1. every case file whose bytes change is written and fsynced into a staging
   directory ``.posref-tmp-<hex>`` inside the corpus, with the new manifest
   (``manifest.json``) and a copy of the replaced one (``previous.json``);
2. the new case files are renamed into ``cases/`` under names the live
   manifest does not list: a new id gets ``cases/<id>.safetensors``, and a
   case whose id stays but whose bytes change gets the other of its two
   names, ``cases/<id>.safetensors`` and ``cases/<id>@<hash>.safetensors``
   (``<hash>``: the first 16 hex digits of the file's sha256), so the old
   file stays where the old manifest expects it; ``cases/`` is fsynced;
3. the new manifest is renamed over the old one: the commit point;
4. the case files the new manifest no longer lists (removed ids and the
   replaced versions of changed ones) are deleted, and the staging
   directory removed.

Crash consistency.  A reader trusts only the manifest and checks every
file's size and sha256 against it.  Until the commit no file the old
manifest lists is touched, and after it every file the new manifest lists is
in place, so at any instant the directory reads as the old corpus or as the
new one, never as a mixture and never as corrupt; the manifest's rename alone
switches from one to the other.  An error or interrupt inside the process
before the commit is undone (the new files and the staging directory are
removed).
After a crash (``kill -9``, power loss), every file in the directory is
listed by the live manifest or by a journal (``manifest.json`` or
``previous.json``) in the leftover staging directory, which
:func:`verify_corpus` reports as left by an interrupted write; writing
again under the same lock counts those files as posref's own, completes or
replaces the corpus, and removes the leftover.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import secrets
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from posref import SPEC_VERSION, __version__
from posref._validate import ensure_bool, ensure_choice, ensure_int
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


def _successor_file(case_id: str, sha256: str) -> str:
    """The second name a case file may have: used when a changed case replaces its file in place."""
    return f"{CASES_DIR}/{case_id}@{sha256[:16]}.safetensors"


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


_KIND_OF_MODE = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _open_regular(path: Path, what: str) -> tuple[int, int]:
    """Open a regular file that is not a symbolic link; return (fd, size).

    Nothing but a regular file is ever opened: a symbolic link, FIFO,
    device or socket is refused from ``lstat`` alone, and the file is
    opened with ``O_NOFOLLOW | O_NONBLOCK`` and checked again with
    ``fstat`` (the same inode, still regular), so a file swapped for a
    FIFO in between cannot make the reader block.
    """
    try:
        before = os.lstat(path)
    except FileNotFoundError:
        raise _MissingFile(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise CorpusError(f"{what} {path} cannot be read ({exc.strerror})") from None
    if stat.S_ISLNK(before.st_mode):
        raise CorpusError(f"{what} {path} is a symbolic link; corpus files must be regular files")
    if not stat.S_ISREG(before.st_mode):
        kind = next((words for test, words in _KIND_OF_MODE if test(before.st_mode)), "a special file")
        raise CorpusError(f"{what} {path} is not a regular file (it is {kind})")
    flags = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
             | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise _MissingFile(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise CorpusError(f"{what} {path} cannot be read ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
    except OSError as exc:
        os.close(fd)
        raise CorpusError(f"{what} {path} cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode) or (info.st_dev, info.st_ino) != (before.st_dev, before.st_ino):
        os.close(fd)
        raise CorpusError(f"{what} {path} changed while it was being opened; it is not a regular file now")
    return fd, info.st_size


def _read_exactly(fd: int, size: int, path: Path, what: str) -> bytearray:
    """Read exactly ``size`` bytes from ``fd`` into one new buffer, then close it.

    Memory is bounded by ``size``: the buffer is allocated once and filled
    in place; a file that turns out shorter or longer than ``size`` (changed
    while being read) is refused.
    """
    try:
        try:
            buffer = bytearray(size)
        except (MemoryError, OverflowError):
            raise CorpusError(f"{what} {path} has {size} bytes, more than this process can hold in memory") from None
        view = memoryview(buffer)
        with os.fdopen(fd, "rb", buffering=0, closefd=False) as handle:
            filled = 0
            while filled < size:
                count = handle.readinto(view[filled:])
                if not count:
                    raise CorpusError(f"{what} {path} ended after {filled} of {size} bytes (changed while being read)")
                filled += count
            if handle.read(1):
                raise CorpusError(f"{what} {path} grew beyond {size} bytes while being read")
        view.release()
        return buffer
    except OSError as exc:
        raise CorpusError(f"{what} {path} cannot be read ({exc.strerror})") from None
    finally:
        os.close(fd)


def _read_regular_file(path: Path, what: str, limit: int | None = None) -> bytearray:
    """Read a regular file that is not a symbolic link, or raise CorpusError.

    The size is checked against ``limit`` before a byte is read.
    """
    fd, size = _open_regular(path, what)
    if limit is not None and size > limit:
        os.close(fd)
        raise CorpusError(f"{what} {path} has {size} bytes, more than the limit of {limit}")
    return _read_exactly(fd, size, path, what)


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
    if entry["file"] not in (_case_file(cid), _successor_file(cid, entry["file_sha256"])):
        raise CorpusError(
            f"{where}: case {cid!r} must be stored in {_case_file(cid)!r} or "
            f"{_successor_file(cid, entry['file_sha256'])!r}, got {entry['file']!r}"
        )
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
        fd, size = _open_regular(path, "case file")
    except _MissingFile as exc:
        raise _MissingFile(f"{label}: {exc}") from None
    except CorpusError as exc:
        raise CorpusError(f"{label}: {exc}") from None
    try:
        if os.path.dirname(os.path.realpath(path)) != os.path.realpath(root / CASES_DIR):
            raise CorpusError(f"{label}: the file resolves outside {root / CASES_DIR}")
        if size != entry["file_size"]:  # checked before a byte is read: a huge or sparse file costs nothing
            raise CorpusError(f"{label}: file has {size} bytes, the manifest says {entry['file_size']} (truncated?)")
    except BaseException:
        os.close(fd)
        raise
    try:
        data = _read_exactly(fd, size, path, "case file")
    except CorpusError as exc:
        raise CorpusError(f"{label}: {exc}") from None
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
            arrays[name] = _from_le_bytes(raw, code, shape, copy=False)  # views of ``data``: no second copy
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

    out = {key: value for key, value in entry.items() if key not in ("file", "file_size", "file_sha256")}
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
    from posref.tolerance import CaseView, budgets

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
    wanted = {} if expected is None else {case.id: case for case in expected}
    readable: set[str] = set()
    compared: dict[str, tuple[str | None, bool]] = {}
    listed_files = set()
    for entry in manifest["cases"]:
        cid, rel = entry["id"], entry["file"]
        listed_files.add(rel)
        try:
            disk = _read_entry(root, entry)
        except _MissingFile:
            problems.append(CorpusProblem("missing", cid, rel, f"case {cid!r}: file {rel} does not exist"))
            continue
        except CorpusError as exc:
            problems.append(CorpusProblem("corrupt", cid, rel, str(exc)))
            continue
        readable.add(cid)
        if cid in wanted:  # compared now, so that one case file at a time is held in memory
            compared[cid] = _compare_case(entry, disk, wanted[cid])
        del disk

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
        for cid in sorted(set(wanted) - set(stored)):
            problems.append(CorpusProblem("missing", cid, None, f"case {cid!r} is expected but not in the manifest"))
        for cid in sorted(set(stored) - set(wanted)):
            problems.append(
                CorpusProblem("extra", cid, stored[cid]["file"], f"case {cid!r} is in the manifest but not expected")
            )
        for cid in sorted(set(stored) & set(wanted) & readable):
            message, exact = compared[cid]
            if message is not None:
                problems.append(CorpusProblem("stale", cid, stored[cid]["file"], message))
            elif not exact:
                within_bound.append(cid)

    for rel in _stray_files(root, listed_files):
        if _STAGING_RE.fullmatch(rel):
            message = (f"{rel} was left by an interrupted write (posref golden generate, write_corpus); "
                       "run it again to finish, or delete it")
        else:
            message = f"{rel} is not listed in the manifest"
        problems.append(CorpusProblem("extra", None, rel, message))
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

#: Name prefix of the staging directory a write keeps inside the corpus directory.
STAGING_PREFIX = ".posref-tmp-"
_STAGING_RE = re.compile(re.escape(STAGING_PREFIX) + r"[0-9a-f]{8,32}\Z")
_PENDING = "manifest.json"  # in a staging directory: the new manifest, until the commit
_PREVIOUS = "previous.json"  # in a staging directory: the manifest being replaced
_OLD = ".old"  # in a staging directory: a replaced case file moved aside (by writers before successor names)
_CASE_NAME_RE = re.compile(r"[a-z0-9_][a-z0-9_.-]*(?:@[0-9a-f]{16})?\.safetensors\Z")


def _write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file (mode 0666 less the umask) and flush it to disk."""
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
    os.replace(source, target)


def _unlink(path: Path) -> None:
    os.unlink(path)


def _posref_listing(data: bytes | bytearray) -> set[str] | None:
    """The case files (``cases/<name>``) a posref manifest lists, read leniently; None if it is not one.

    Only ownership is read here (which files a previous write made), so a
    manifest of another schema version or one that fails validation still
    counts; anything that is not a JSON object of format ``posref-golden``
    with a list of cases does not.
    """
    try:
        raw = strict_json_loads(bytes(data).decode("utf-8"), "manifest")
    except (UnicodeDecodeError, CorpusError):
        return None
    if not isinstance(raw, dict) or raw.get("format") != CORPUS_FORMAT or not isinstance(raw.get("cases"), list):
        return None
    listed = set()
    for entry in raw["cases"]:
        name = entry.get("file") if isinstance(entry, dict) else None
        prefix = f"{CASES_DIR}/"
        if isinstance(name, str) and name.startswith(prefix) and _CASE_NAME_RE.fullmatch(name[len(prefix):]):
            listed.add(name)
    return listed


def _staging_files(path: Path) -> list[str] | None:
    """The files in a staging directory an interrupted write left, or None if it holds anything else."""
    names = []
    for name in sorted(os.listdir(path)):
        ours = (
            name in (_PENDING, _PREVIOUS)
            or _CASE_NAME_RE.fullmatch(name)
            or (name.endswith(_OLD) and _CASE_NAME_RE.fullmatch(name[: -len(_OLD)]))
        )
        if not ours or not stat.S_ISREG(os.lstat(path / name).st_mode):
            return None
        names.append(name)
    return names


@dataclass
class _Survey:
    """What an existing corpus directory holds, from the writer's point of view."""

    manifest: bytes | None  # the manifest there, when it is a posref manifest
    owned: set[str]  # 'cases/<name>' regular files listed by a posref manifest there (or in a journal)
    stale: list[tuple[Path, list[str]]]  # staging directories of interrupted writes, with their files
    foreign: list[str]  # everything else, sorted; directories end with '/'
    has_cases_dir: bool


def _survey(out: Path) -> _Survey:
    """Sort the entries of ``out`` into posref's own files and foreign ones."""
    manifest = None
    listed: set[str] = set()
    stale = []
    foreign = []
    has_cases_dir = False

    def journal_listing(path: Path) -> set[str]:
        try:
            return _posref_listing(_read_regular_file(path, "manifest", MAX_MANIFEST_BYTES)) or set()
        except CorpusError:
            return set()

    for name in sorted(os.listdir(out)):
        path = out / name
        mode = os.lstat(path).st_mode
        if name == MANIFEST_NAME:
            try:
                data = _read_regular_file(path, "manifest", MAX_MANIFEST_BYTES)
            except CorpusError:
                data = None
            files = None if data is None else _posref_listing(data)
            if files is None:
                foreign.append(name + ("/" if stat.S_ISDIR(mode) else ""))
            else:
                manifest = bytes(data)
                listed |= files
        elif name == CASES_DIR and stat.S_ISDIR(mode):
            has_cases_dir = True
        elif _STAGING_RE.fullmatch(name) and stat.S_ISDIR(mode) and (files := _staging_files(path)) is not None:
            stale.append((path, files))
            for journal in (_PENDING, _PREVIOUS):
                if journal in files:
                    listed |= journal_listing(path / journal)
        else:
            foreign.append(name + ("/" if stat.S_ISDIR(mode) else ""))
    owned = set()
    if has_cases_dir:
        for inner in sorted(os.listdir(out / CASES_DIR)):
            rel = f"{CASES_DIR}/{inner}"
            mode = os.lstat(out / rel).st_mode
            if rel in listed and stat.S_ISREG(mode):
                owned.add(rel)
            else:
                foreign.append(rel + ("/" if stat.S_ISDIR(mode) else ""))
    return _Survey(manifest, owned, stale, sorted(foreign, key=lambda rel: rel.rstrip("/")), has_cases_dir)


def _same_manifest(old: bytes, new: bytes) -> bool:
    """True if two manifests differ at most in the NumPy version that wrote them."""
    try:
        first, second = json.loads(old), json.loads(new)
        first["generator"]["numpy_version"] = second["generator"]["numpy_version"]
    except (ValueError, KeyError, TypeError):
        return False
    return first == second


def _live_files(survey: _Survey) -> dict[str, str]:
    """Case id -> file, for the entries of the live manifest whose file is a regular file posref owns."""
    if survey.manifest is None:
        return {}
    try:
        raw = json.loads(survey.manifest)
        pairs = [(entry.get("id"), entry.get("file")) for entry in raw["cases"] if isinstance(entry, dict)]
    except (ValueError, KeyError, TypeError, AttributeError):
        return {}
    return {cid: rel for cid, rel in pairs if isinstance(cid, str) and rel in survey.owned}


def _same_bytes(path: Path, blob: bytes) -> bool:
    """True if ``path`` is a regular file holding exactly ``blob`` (read in bounded chunks)."""
    try:
        fd, size = _open_regular(path, "case file")
    except CorpusError:
        return False
    try:
        if size != len(blob):
            return False
        view = memoryview(blob)
        position = 0
        with os.fdopen(fd, "rb", buffering=0, closefd=False) as handle:
            while position < size:
                chunk = handle.read(min(2**20, size - position))
                if not chunk or view[position : position + len(chunk)] != chunk:
                    return False
                position += len(chunk)
            return not handle.read(1)
    except OSError:
        return False
    finally:
        os.close(fd)


def _refusal(out: Path, survey: _Survey, cases: list[GoldenCase]) -> str | None:
    """Why replacing the corpus in ``out`` needs force=True, or None."""
    if survey.manifest is None:
        return None  # empty, or only what an interrupted write of posref left
    try:
        manifest = _load_manifest(out)
    except CorpusError as exc:
        return f"{out} holds a posref golden corpus that does not validate ({exc})"
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


class _DirectoryLock:
    """An exclusive, non-blocking ``flock`` on a directory, where the system has one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def __enter__(self) -> _DirectoryLock:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks on directories
            return self
        try:
            self.fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return self  # the writes below report the problem
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            self.fd = None
            raise OSError(
                f"another write to {self.path} is in progress (it holds a lock on the directory); "
                "try again when it has finished"
            ) from None
        except OSError:
            pass  # a file system without locks
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _new_staging(out: Path) -> Path:
    """A new, empty staging directory inside ``out`` (mode 0777 less the umask)."""
    for _ in range(100):
        path = out / f"{STAGING_PREFIX}{secrets.token_hex(8)}"
        try:
            os.mkdir(path)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"cannot create a staging directory in {out}")


def _remove_staging(path: Path, names: Iterable[str]) -> None:
    """Delete the named files of a staging directory (those absent are skipped), then the directory."""
    for name in names:
        try:
            _unlink(path / name)
        except FileNotFoundError:
            pass
    os.rmdir(path)


def write_corpus(cases, out_dir, /, *, force=False, progress=None):
    r"""Write golden cases to a corpus directory, atomically and reproducibly.

    Every case is checked before anything is written.  The corpus is
    written in place, inside ``out_dir`` (see *Writing* in the module
    documentation): changed case files and the new manifest are staged and
    fsynced in a hidden ``.posref-tmp-*`` directory there, renamed into
    place, the manifest last, and the staging directory removed.  A failure
    or an interrupt before the manifest's rename leaves the previous corpus
    as it was.  Case files whose bytes do not change are not touched, and
    if ``out_dir`` already holds the same content (byte-identical, except
    perhaps the NumPy version recorded in the manifest's ``generator``),
    nothing is changed.

    Nothing that the replaced manifest does not list is ever deleted or
    replaced: if ``out_dir`` holds any other file or directory, the write
    is refused, even with ``force``, naming the first such file.  Every
    directory created is given mode 0777 and every file 0666, less the
    umask; an existing ``out_dir`` keeps its mode, owner and inode.

    Parameters
    ----------
    cases : iterable of GoldenCase
        Cases with unique ids.  Arrays may be float64, float32, float16,
        bfloat16, int64, int32 or bool; ``params`` must be JSON data
        (tuples are written as lists, NumPy scalars as plain numbers,
        non-finite floats are refused).
    out_dir : str or os.PathLike
        Corpus directory; it and its parents are created if needed.  It
        must not be a symbolic link.  Only ``out_dir`` itself needs to be
        writable when it exists, not its parent.
    force : bool, default False, keyword-only
        Replace the corpus in ``out_dir`` even if it lists a different set
        of case ids, another ``spec_version`` or ``posref_version``, or
        does not validate.  It never deletes a file the corpus's manifest
        does not list.  An empty directory is written without it.
    progress : callable, optional, keyword-only
        Called as ``progress(done, total, case_id)`` after each case file
        is written (or found unchanged).

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
        If ``out_dir`` is not a directory, holds anything its manifest does
        not list (whatever ``force``), or, without ``force``, holds a corpus
        that differs in case ids or versions or does not validate.
    OSError
        If a file cannot be written, or another write to ``out_dir`` is in
        progress; the previous corpus is then left as it was.

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
    created = False
    if not os.path.lexists(out):
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(out)  # mode 0777 less the umask
            created = True
        except FileExistsError:
            pass
    info = os.lstat(out)
    if stat.S_ISLNK(info.st_mode):
        raise ValueError(f"out_dir must not be a symbolic link, got out_dir={str(out)!r}")
    if not stat.S_ISDIR(info.st_mode):
        raise FileExistsError(
            f"{out} exists and is not a directory; write_corpus never replaces a file it did not write"
        )
    try:
        with _DirectoryLock(out):
            return _write_in_place(cases, out, force, progress)
    except BaseException:
        if created:
            try:
                os.rmdir(out)  # only if still empty
            except OSError:
                pass
        raise


def _write_in_place(cases: list[GoldenCase], out: Path, force: bool, progress) -> WriteResult:
    """The body of :func:`write_corpus`, run under the directory lock."""
    ids = tuple(case.id for case in cases)
    survey = _survey(out)
    if survey.foreign:
        first, more = survey.foreign[0], len(survey.foreign) - 1
        others = f" (and {more} more)" if more else ""
        raise FileExistsError(
            f"{out} holds {first}{others}, which the corpus manifest there does not list; posref never deletes or "
            "replaces a file it did not write, with or without force: move it elsewhere or write to another directory"
        )
    if not force:
        reason = _refusal(out, survey, cases)
        if reason is not None:
            raise FileExistsError(f"{reason}; pass force=True to replace it")

    staging: Path | None = None
    made: list[str] = []  # the files this write put in its staging directory
    staged: list[str] = []  # case files written to the staging directory, as 'cases/<name>'
    entries = []

    def stage(name: str, data: bytes) -> None:
        nonlocal staging
        if staging is None:
            staging = _new_staging(out)
        made.append(name)
        _write_file(staging / name, data)

    live = _live_files(survey)  # id -> the file the live manifest lists for it
    try:
        for done, case in enumerate(cases, start=1):
            entry, blob = _encode_case(case)
            current = live.get(case.id)
            if current is not None and _same_bytes(out / current, blob):
                entry["file"] = current  # unchanged: keep the file and its name
            else:
                if current == entry["file"]:  # changed: the other name, so the old file stays until the commit
                    entry["file"] = _successor_file(case.id, entry["file_sha256"])
                rel = entry["file"]
                if not (rel in survey.owned and _same_bytes(out / rel, blob)):  # an interrupted write's may fit
                    stage(os.path.basename(rel), blob)
                    staged.append(rel)
            entries.append(entry)
            del blob
            if progress is not None:
                progress(done, len(cases), case.id)
        manifest = _manifest_bytes(entries)
        obsolete = sorted(survey.owned - {entry["file"] for entry in entries})
        manifest_changed = survey.manifest is None or not _same_manifest(survey.manifest, manifest)
        if not (staged or obsolete or manifest_changed or not survey.has_cases_dir):
            for path, names in survey.stale:
                _remove_staging(path, names)
            if survey.stale:
                _fsync_dir(out)
            return WriteResult(out, False, ids)
        if manifest_changed:  # the journal: what the commit installs and what it replaces
            stage(_PENDING, manifest)
            if survey.manifest is not None:
                stage(_PREVIOUS, survey.manifest)
        if staging is not None:
            _fsync_dir(staging)
            _fsync_dir(out)
    except BaseException:
        if staging is not None:
            try:
                _remove_staging(staging, made)
            except OSError:
                pass
        raise

    # Switch.  No file the live manifest lists is touched before the commit:
    # every new file goes in under a name it does not list, so the old corpus
    # stays whole until the manifest's rename installs the new one.
    moves: list[tuple[Path, Path]] = []
    made_cases_dir = False
    try:
        if not survey.has_cases_dir:
            os.mkdir(out / CASES_DIR)  # mode 0777 less the umask
            made_cases_dir = True
        for rel in staged:
            _rename(staging / os.path.basename(rel), out / rel)
            moves.append((staging / os.path.basename(rel), out / rel))
        _fsync_dir(out / CASES_DIR)
        if staging is not None:
            _fsync_dir(staging)
        if manifest_changed:
            _rename(staging / _PENDING, out / MANIFEST_NAME)  # the commit point
    except BaseException as exc:
        if manifest_changed and staging is not None and not os.path.lexists(staging / _PENDING):
            raise  # the commit is done: the new corpus is in place
        try:
            for source, target in reversed(moves):
                _rename(target, source)
            if moves:
                _fsync_dir(out / CASES_DIR)
            if made_cases_dir:
                os.rmdir(out / CASES_DIR)
            if staging is not None:
                _remove_staging(staging, made)
        except OSError as undo:
            raise OSError(
                f"writing {out} failed ({exc}), and undoing the partial write failed too ({undo}); the files it "
                f"wrote are listed in {staging}: write the corpus again to finish"
            ) from exc
        raise
    _fsync_dir(out)

    # Committed: now delete what the new manifest no longer lists, then the journals.
    try:
        for rel in obsolete:
            _unlink(out / rel)
        if obsolete:
            _fsync_dir(out / CASES_DIR)
        for path, names in survey.stale:
            _remove_staging(path, names)
        if staging is not None:
            _remove_staging(staging, made)
        _fsync_dir(out)
    except OSError as exc:
        raise OSError(
            f"the new corpus in {out} is complete, but cleaning up after it failed ({exc}); "
            "write the corpus again to finish"
        ) from exc
    return WriteResult(out, True, ids)
