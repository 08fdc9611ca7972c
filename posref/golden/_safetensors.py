r"""A strict reader and a deterministic writer of the safetensors format.

The format (https://huggingface.co/docs/safetensors) is::

    [8 bytes]  N, unsigned 64-bit little-endian
    [N bytes]  UTF-8 JSON object, padded at the end with spaces:
               {"<name>": {"dtype": "F64", "shape": [2, 3],
                           "data_offsets": [begin, end]}, ...,
                "__metadata__": {"<key>": "<value>", ...}}
    [rest]     the data section: raw little-endian bytes of every tensor,
               tensor ``name`` at ``[begin, end)`` counted from its start

This module has no dependency besides NumPy (and ml_dtypes for bfloat16),
never unpickles or evaluates anything, and treats every byte of its input
as hostile: :func:`decode_safetensors` raises
:class:`~posref.golden.CorpusError` and nothing else for any malformed
input.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from collections.abc import Mapping
from typing import Any

import ml_dtypes
import numpy as np

from posref.golden._errors import CorpusError

__all__ = ["encode_safetensors", "decode_safetensors", "SAFETENSORS_DTYPES", "MAX_HEADER_BYTES"]

#: safetensors dtype code -> NumPy dtype name, for every dtype posref stores.
SAFETENSORS_DTYPES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "I64": "int64",
    "I32": "int32",
    "BOOL": "bool",
}

_NUMPY_DTYPES = {
    "float64": np.dtype(np.float64),
    "float32": np.dtype(np.float32),
    "float16": np.dtype(np.float16),
    "bfloat16": np.dtype(ml_dtypes.bfloat16),
    "int64": np.dtype(np.int64),
    "int32": np.dtype(np.int32),
    "bool": np.dtype(np.bool_),
}
_CODE_OF_NAME = {name: code for code, name in SAFETENSORS_DTYPES.items()}
_ITEMSIZE = {code: _NUMPY_DTYPES[name].itemsize for code, name in SAFETENSORS_DTYPES.items()}

#: Largest header accepted (the limit of the reference Rust implementation).
MAX_HEADER_BYTES = 100_000_000
#: Most dimensions a tensor may have (NumPy 1.x supports 32).
MAX_NDIM = 32
_METADATA_KEY = "__metadata__"
_ENTRY_KEYS = frozenset({"dtype", "shape", "data_offsets"})


def dtype_name(dtype: np.dtype) -> str | None:
    """Return the NumPy name of ``dtype`` if posref can store it, else None."""
    if dtype.kind in "iuf":
        dtype = dtype.newbyteorder("=")
    for name, candidate in _NUMPY_DTYPES.items():
        if dtype == candidate:
            return name
    return None


def supported_dtype_names() -> tuple[str, ...]:
    return tuple(_NUMPY_DTYPES)


def _storage(itemsize: int) -> np.dtype:
    """Unsigned integer dtype of the given size, native byte order."""
    return np.dtype(f"u{itemsize}")


def _to_le_bytes(array: np.ndarray) -> bytes:
    """Raw little-endian bytes of ``array`` in C order (bit patterns kept)."""
    native = np.ascontiguousarray(array)
    if not native.dtype.isnative:
        native = native.astype(native.dtype.newbyteorder("="))
    bits = native.view(_storage(native.dtype.itemsize))
    return bits.astype(bits.dtype.newbyteorder("<"), copy=False).tobytes()


def _from_le_bytes(raw: memoryview | bytes, code: str, shape: tuple[int, ...], *, copy: bool = True) -> np.ndarray:
    """Inverse of :func:`_to_le_bytes`.

    With ``copy`` (the default) the result is a fresh, writable array.  With
    ``copy=False`` it is a view of ``raw`` whenever the bytes are already in
    native order and aligned (a little-endian machine), so decoding a file
    read into one writable buffer costs no second copy of its data; the view
    is writable exactly when ``raw`` is.
    """
    itemsize = _ITEMSIZE[code]
    bits = np.frombuffer(raw, dtype=_storage(itemsize).newbyteorder("<"))
    if copy or not bits.dtype.isnative or not bits.flags.aligned:
        bits = bits.astype(_storage(itemsize))
    else:
        bits = bits.view(_storage(itemsize))
    if code == "BOOL" and bits.size and bits.max() > 1:
        raise CorpusError("BOOL tensor holds a byte other than 0 or 1")
    return bits.view(_NUMPY_DTYPES[SAFETENSORS_DTYPES[code]]).reshape(shape)


def _encode(tensors: list[tuple[str, np.ndarray]], metadata: Mapping[str, str] | None) -> tuple[bytes, dict[str, str]]:
    """Serialise already-checked tensors; also return the sha256 of each one's bytes.

    Data are laid out by decreasing item size, then by name, and the header
    is padded so the data section starts at a multiple of 8: every tensor is
    then aligned to its item size, as in the reference implementation.
    """
    order = sorted(tensors, key=lambda item: (-item[1].dtype.itemsize, item[0]))
    header: dict[str, Any] = {}
    chunks = []
    digests = {}
    offset = 0
    for name, array in order:
        raw = _to_le_bytes(array)
        header[name] = {
            "dtype": _CODE_OF_NAME[dtype_name(array.dtype)],
            "shape": [int(n) for n in array.shape],
            "data_offsets": [offset, offset + len(raw)],
        }
        digests[name] = hashlib.sha256(raw).hexdigest()
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        header[_METADATA_KEY] = dict(metadata)
    text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    encoded = text.encode("ascii")
    encoded += b" " * (-(8 + len(encoded)) % 8)
    return struct.pack("<Q", len(encoded)) + encoded + b"".join(chunks), digests


def encode_safetensors(tensors, /, *, metadata=None):
    r"""Serialise named arrays to safetensors bytes.

    The output is deterministic: the header is JSON with sorted keys and no
    spaces, padded with spaces so that the data section starts at a
    multiple of 8 bytes; data are laid out by decreasing item size, then by
    name, so each tensor is aligned to its item size.  Floating-point bit
    patterns (signed zeros, NaN payloads, subnormals) are kept exactly.

    Parameters
    ----------
    tensors : mapping of str to numpy.ndarray
        Arrays of dtype float64, float32, float16, bfloat16
        (``ml_dtypes.bfloat16``), int64, int32 or bool, any shape
        (0-d and empty arrays included).  Names are non-empty strings other
        than ``"__metadata__"``.
    metadata : mapping of str to str, optional, keyword-only
        Written as the ``"__metadata__"`` entry of the header.

    Returns
    -------
    bytes
        The complete file contents.

    Raises
    ------
    TypeError
        If ``tensors`` is not a mapping, a name is not a string, a value is
        not a NumPy array of a supported dtype, or ``metadata`` is not a
        mapping of strings to strings.
    ValueError
        If a name is empty or is ``"__metadata__"``.

    See Also
    --------
    decode_safetensors : The strict inverse.

    Notes
    -----
    Layout of the result, with :math:`N` the padded header length:

    .. math::

        \underbrace{N}_{\text{u64 LE}}\;
        \underbrace{\text{header}}_{N \text{ bytes}}\;
        \underbrace{\text{data}}_{\sum_k \text{size}_k \cdot
        \prod \text{shape}_k},
        \qquad (8 + N) \bmod 8 = 0

    References
    ----------
    .. [1] Hugging Face, "safetensors: simple, safe way to store and
       distribute tensors", format description,
       https://github.com/huggingface/safetensors, 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from posref.golden import encode_safetensors, decode_safetensors
    >>> blob = encode_safetensors({"x": np.array([1.0, -2.0])})
    >>> blob[8:blob.index(b"}}") + 2]
    b'{"x":{"data_offsets":[0,16],"dtype":"F64","shape":[2]}}'
    >>> len(blob)
    80
    >>> decode_safetensors(blob)[0]["x"]
    array([ 1., -2.])
    """
    if not isinstance(tensors, Mapping):
        raise TypeError(
            f"tensors must be a mapping of names to arrays, got tensors={tensors!r} of type {type(tensors).__name__}"
        )
    if metadata is not None and (
        not isinstance(metadata, Mapping)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
    ):
        raise TypeError(f"metadata must be a mapping of str to str or None, got metadata={metadata!r}")
    allowed = ", ".join(supported_dtype_names())
    items = []
    for name, array in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"tensor names must be str, got {name!r} of type {type(name).__name__}")
        if not name or name == _METADATA_KEY:
            raise ValueError(f"tensor names must be non-empty and not {_METADATA_KEY!r}, got {name!r}")
        if not isinstance(array, np.ndarray) or dtype_name(array.dtype) is None:
            got = f"dtype {array.dtype}" if isinstance(array, np.ndarray) else f"type {type(array).__name__}"
            raise TypeError(f"tensors[{name!r}] must be a NumPy array of dtype {allowed}, got {got}")
        items.append((name, array))
    return _encode(items, metadata)[0]


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise CorpusError(f"JSON object has the key {key!r} twice")
        result[key] = value
    return result


def _reject_constant(token: str) -> float:
    raise CorpusError(f"JSON holds the non-standard number {token}")


def _finite_float(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise CorpusError(f"JSON holds the number {token[:40]}, which overflows a double")
    return value


def strict_json_loads(text: str, what: str) -> Any:
    """Parse JSON, rejecting duplicate keys, NaN/Infinity and overflowing numbers."""
    try:
        return json.loads(
            text,
            object_pairs_hook=_reject_duplicates,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
        )
    except CorpusError as exc:
        raise CorpusError(f"{what}: {exc}") from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, int digit limit, deep nesting
        raise CorpusError(f"{what} is not valid JSON ({type(exc).__name__}: {str(exc)[:200]})") from None


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _decode(data: bytes | bytearray | memoryview) -> tuple[dict[str, tuple[str, tuple[int, ...], memoryview]], dict[str, str]]:
    """Check every structural rule; return ``{name: (code, shape, raw)}`` and the metadata."""
    view = memoryview(data).cast("B")
    size = len(view)
    if size < 8:
        raise CorpusError(f"file has {size} bytes, fewer than the 8-byte header length field")
    (header_len,) = struct.unpack("<Q", view[:8])
    if header_len > MAX_HEADER_BYTES:
        raise CorpusError(f"header length field says {header_len} bytes, more than the limit of {MAX_HEADER_BYTES}")
    if header_len < 2:
        raise CorpusError(f"header length field says {header_len} bytes, too short for a JSON object")
    if 8 + header_len > size:
        raise CorpusError(f"header length field says {header_len} bytes but the file has only {size - 8} after it")
    raw_header = bytes(view[8 : 8 + header_len])
    if raw_header[:1] != b"{":
        raise CorpusError("header does not start with '{' (not a safetensors file)")
    try:
        text = raw_header.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"header is not valid UTF-8 (byte {exc.start})") from None
    header = strict_json_loads(text, "header")
    if not isinstance(header, dict):
        raise CorpusError("header is not a JSON object")

    data_section = view[8 + header_len :]
    data_size = len(data_section)
    metadata: dict[str, str] = {}
    spans = []
    for name, entry in header.items():
        if name == _METADATA_KEY:
            if not isinstance(entry, dict) or not all(isinstance(v, str) for v in entry.values()):
                raise CorpusError(f"{_METADATA_KEY} must be an object of strings")
            metadata = entry
            continue
        if not name:
            raise CorpusError("header has a tensor with an empty name")
        if not isinstance(entry, dict) or set(entry) != _ENTRY_KEYS:
            keys = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
            raise CorpusError(f"tensor {name!r} must have exactly the keys data_offsets, dtype, shape, got {keys}")
        code, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not isinstance(code, str) or code not in SAFETENSORS_DTYPES:
            raise CorpusError(
                f"tensor {name!r} has dtype {code!r}; known dtypes are {', '.join(SAFETENSORS_DTYPES)}"
            )
        if not isinstance(shape, list) or len(shape) > MAX_NDIM or not all(_is_count(n) for n in shape):
            raise CorpusError(
                f"tensor {name!r} has shape {str(shape)[:100]}; it must be a list of at most {MAX_NDIM} "
                "non-negative integers"
            )
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_count(n) for n in offsets):
            raise CorpusError(f"tensor {name!r} has data_offsets {str(offsets)[:100]}; it must be [begin, end]")
        begin, end = offsets
        if begin > end:
            raise CorpusError(f"tensor {name!r} has data_offsets [{begin}, {end}] with begin after end")
        if end > data_size:
            raise CorpusError(
                f"tensor {name!r} ends at byte {end} of the data section, which has only {data_size} bytes"
            )
        if math.prod(max(n, 1) for n in shape) * _ITEMSIZE[code] > 2**62:
            raise CorpusError(f"tensor {name!r} has shape {shape}, too large for any array")
        nbytes = math.prod(shape) * _ITEMSIZE[code]
        if end - begin != nbytes:
            raise CorpusError(
                f"tensor {name!r} of dtype {code} and shape {shape} needs {nbytes} bytes, "
                f"but data_offsets [{begin}, {end}] span {end - begin}"
            )
        spans.append((begin, end, name, code, tuple(shape)))

    spans.sort()
    position = 0
    for begin, end, name, _, _ in spans:
        if begin < position:
            raise CorpusError(f"tensor {name!r} at data_offsets [{begin}, {end}] overlaps the tensor before it")
        if begin > position:
            raise CorpusError(f"data section has unused bytes [{position}, {begin}) before tensor {name!r}")
        position = end
    if position != data_size:
        raise CorpusError(f"data section has {data_size - position} bytes after the last tensor (trailing garbage)")
    tensors = {name: (code, shape, data_section[begin:end]) for begin, end, name, code, shape in spans}
    return dict(sorted(tensors.items())), metadata


def decode_safetensors(data, /):
    r"""Parse safetensors bytes strictly into named arrays.

    Every rule of the format is checked before any array is built: the
    header length is at least 2, at most :data:`MAX_HEADER_BYTES` and
    within the file; the header starts with ``{``, is UTF-8 JSON without
    duplicate keys or NaN/Infinity; each entry has exactly ``dtype``,
    ``shape`` and ``data_offsets``, a known dtype, a shape of non-negative
    integers, and offsets whose span equals
    :math:`\text{itemsize} \cdot \prod \text{shape}`; the spans tile the
    data section exactly (in bounds, no overlap, no gap, no trailing
    bytes); BOOL bytes are 0 or 1.  Nothing is unpickled or executed.

    Parameters
    ----------
    data : bytes, bytearray or memoryview
        The complete file contents.

    Returns
    -------
    tensors : dict of str to numpy.ndarray
        Fresh, writable arrays in native byte order, sorted by name.
    metadata : dict of str to str
        The ``"__metadata__"`` entry, empty when absent.

    Raises
    ------
    TypeError
        If ``data`` is not bytes-like.
    CorpusError
        If the bytes break any rule above; the message says which.

    See Also
    --------
    encode_safetensors : The deterministic writer.

    References
    ----------
    .. [1] Hugging Face, "safetensors: simple, safe way to store and
       distribute tensors", format description,
       https://github.com/huggingface/safetensors, 2022.

    Examples
    --------
    >>> import struct
    >>> from posref.golden import decode_safetensors, CorpusError
    >>> header = b'{"n":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}}'
    >>> blob = struct.pack("<Q", len(header)) + header + struct.pack("<2i", 7, -1)
    >>> decode_safetensors(blob)
    ({'n': array([ 7, -1], dtype=int32)}, {})
    >>> try:
    ...     decode_safetensors(blob + b"extra")
    ... except CorpusError as exc:
    ...     print(exc)
    data section has 5 bytes after the last tensor (trailing garbage)
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, bytearray or memoryview, got type {type(data).__name__}")
    entries, metadata = _decode(data)
    tensors = {name: _from_le_bytes(raw, code, shape) for name, (code, shape, raw) in entries.items()}
    return tensors, dict(metadata)
