"""The golden corpus format: safetensors codec, manifest, writer, reader, verifier.

Expected bytes and hashes are rebuilt here independently of the code under
test: headers are written out by hand, array bytes come from ``struct`` or
NumPy's explicit little-endian casts, and hashes from ``hashlib`` on those.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import posref.golden.format as fmt
from posref._version import SPEC_VERSION, __version__
from posref.golden import (
    MANIFEST_SCHEMA,
    CorpusError,
    GoldenCase,
    decode_safetensors,
    encode_safetensors,
    read_case,
    read_corpus,
    verify_corpus,
    write_corpus,
)
from posref.golden._schema import schema_errors, schema_json

BF16 = np.dtype(ml_dtypes.bfloat16)
SCHEMA_FILE = Path(fmt.__file__).parent / "schema" / "manifest.schema.json"


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def make_case(case_id="rope.a", **changes):
    x = np.array([[0.5, -1.25, 3.0], [1e-300, -0.0, 7.0]])
    positions = np.array([0, 1], dtype=np.int64)
    fields = dict(
        id=case_id,
        function="apply_rotary",
        family="rope",
        params={"layout": "half", "base": 10_000.0, "flags": [1, 2.5, None, True]},
        inputs={"x": x, "positions": positions},
        outputs={"output": x * 2.0},
        rounded={
            "float32": {"inputs.x": x.astype(np.float32), "outputs.output": x * 2.0},
            "float16": {"inputs.x": x.astype(np.float16), "outputs.output": x * 3.0},
            "bfloat16": {"inputs.x": x.astype(BF16), "outputs.output": x * 4.0},
        },
        tolerance="rope",
        description="a hand-made case",
        seed=7,
    )
    fields.update(changes)
    return GoldenCase(**fields)


def bits(array):
    """Raw little-endian bytes, derived with an explicit NumPy cast."""
    array = np.ascontiguousarray(array)
    if array.dtype == BF16:
        return array.view(np.uint16).astype("<u2").tobytes()
    if array.dtype == np.bool_:
        return array.astype(np.uint8).tobytes()
    return array.astype(array.dtype.newbyteorder("<")).tobytes()


def assert_same_case(got, want):
    assert (got.id, got.function, got.family) == (want.id, want.function, want.family)
    assert json.dumps(got.params, sort_keys=True) == json.dumps(want.params, sort_keys=True)
    assert (got.tolerance, got.expect_error, got.error_match, got.description, got.seed) == (
        want.tolerance,
        want.expect_error,
        want.error_match,
        want.description,
        want.seed,
    )
    pairs = [(got.inputs, want.inputs), (got.outputs, want.outputs)]
    assert list(got.rounded) == list(want.rounded)
    pairs += [(got.rounded[k], want.rounded[k]) for k in want.rounded]
    for got_arrays, want_arrays in pairs:
        assert list(got_arrays) == list(want_arrays)  # order kept
        for name in want_arrays:
            a, b = got_arrays[name], want_arrays[name]
            assert a.dtype == b.dtype and a.shape == b.shape, name
            assert bits(a) == bits(b), name


def small_cases(seed):
    """Two small cases built with NumPy alone (also run in child processes)."""
    x = np.linspace(-1.0, 1.0, 6).reshape(2, 3)
    return [
        GoldenCase(
            id=name,
            function="apply_rotary",
            family="rope",
            params={"layout": "half", "base": 0.1, "p": {"z": 1, "a": [2]}},
            inputs={"x": x, "positions": np.arange(2)},
            outputs={"output": x / 3.0},
            rounded={"bfloat16": {"inputs.x": x.astype(ml_dtypes.bfloat16)}},
            seed=seed,
        )
        for name in ("b", "a")
    ]


SCRIPT_PRELUDE = (
    "import os, sys\nimport ml_dtypes\nimport numpy as np\n"
    "from posref.golden import GoldenCase, write_corpus\n\n" + inspect.getsource(small_cases)
)


def tree_bytes(root):
    root = Path(root)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def edit_manifest(root, change):
    path = Path(root) / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def three_cases():
    return [make_case("rope.a"), make_case("rope.b", seed=1), make_case("t5.c", family="t5")]


@pytest.fixture(scope="module")
def _written_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("template") / "golden"
    write_corpus(three_cases(), root)
    return root


@pytest.fixture
def corpus(tmp_path, _written_corpus):
    """A fresh copy of a three-case corpus in ``tmp_path / "golden"``."""
    root = tmp_path / "golden"
    shutil.copytree(_written_corpus, root)
    return root, three_cases()


# ---------------------------------------------------------------------------
# the safetensors codec
# ---------------------------------------------------------------------------


class TestEncodeSafetensors:
    def test_known_bytes(self):
        header = b'{"x":{"data_offsets":[0,16],"dtype":"F64","shape":[2]}}'
        assert len(header) == 55  # one space of padding makes 8 + 56 a multiple of 8
        want = struct.pack("<Q", 56) + header + b" " + struct.pack("<2d", 1.0, -2.0)
        assert encode_safetensors({"x": np.array([1.0, -2.0])}) == want

    def test_known_bytes_with_padding_metadata_and_order(self):
        got = encode_safetensors(
            {"b": np.array([True, False]), "a": np.array([3], dtype=np.int32)}, metadata={"k": "v"}
        )
        header = (
            b'{"__metadata__":{"k":"v"},"a":{"data_offsets":[0,4],"dtype":"I32","shape":[1]},'
            b'"b":{"data_offsets":[4,6],"dtype":"BOOL","shape":[2]}}'
        )
        padded = header + b" " * (-(8 + len(header)) % 8)
        assert got == struct.pack("<Q", len(padded)) + padded + struct.pack("<i", 3) + b"\x01\x00"

    def test_alignment_of_every_tensor(self):
        tensors = {
            "a_bool": np.array([True]),
            "b_f16": np.ones(3, np.float16),
            "c_f64": np.ones(2),
            "d_i32": np.ones(3, np.int32),
            "e_bf16": np.ones(1, BF16),
        }
        blob = encode_safetensors(tensors)
        (n,) = struct.unpack("<Q", blob[:8])
        assert (8 + n) % 8 == 0
        header = json.loads(blob[8 : 8 + n])
        for name, array in tensors.items():
            assert header[name]["data_offsets"][0] % array.dtype.itemsize == 0

    def test_big_endian_and_strided_inputs_are_stored_little_endian_c_order(self):
        x = np.arange(6.0).reshape(2, 3).T.astype(">f8")
        tensors, _ = decode_safetensors(encode_safetensors({"x": x}))
        assert tensors["x"].dtype == np.float64 and tensors["x"].dtype.isnative
        assert tensors["x"].tobytes() == np.ascontiguousarray(x, dtype=np.float64).tobytes()
        assert encode_safetensors({"x": x}).endswith(struct.pack("<6d", 0, 3, 1, 4, 2, 5))

    @pytest.mark.parametrize(
        "tensors, kwargs, error, match",
        [
            ([1], {}, TypeError, r"^tensors must be a mapping"),
            ({1: np.ones(1)}, {}, TypeError, r"^tensor names must be str"),
            ({"": np.ones(1)}, {}, ValueError, r"^tensor names must be non-empty"),
            ({"__metadata__": np.ones(1)}, {}, ValueError, r"^tensor names must be non-empty and not"),
            ({"x": np.ones(1, np.complex128)}, {}, TypeError, r"^tensors\['x'\] must be a NumPy array of dtype"),
            ({"x": np.ones(1, np.uint8)}, {}, TypeError, r"got dtype uint8"),
            ({"x": [1.0]}, {}, TypeError, r"got type list"),
            ({"x": np.ones(1)}, {"metadata": {"k": 1}}, TypeError, r"^metadata must be a mapping of str to str"),
        ],
    )
    def test_errors(self, tensors, kwargs, error, match):
        with pytest.raises(error, match=match):
            encode_safetensors(tensors, **kwargs)


class TestRoundTripEveryDtype:
    def test_every_float16_and_bfloat16_bit_pattern(self):
        patterns = np.arange(2**16, dtype=np.uint16)
        tensors = {"h": patterns.view(np.float16), "b": patterns.view(BF16)}
        got, _ = decode_safetensors(encode_safetensors(tensors))
        assert got["h"].dtype == np.float16 and got["b"].dtype == BF16
        assert np.array_equal(got["h"].view(np.uint16), patterns)
        assert np.array_equal(got["b"].view(np.uint16), patterns)

    def test_float32_float64_integer_and_bool_bit_patterns(self):
        rng = np.random.default_rng(0)
        f32 = np.concatenate([rng.integers(0, 2**32, 4096, dtype=np.uint64).astype(np.uint32), [0x7FC00001, 0x80000000]])
        f64 = np.concatenate([rng.integers(0, 2**63, 4096, dtype=np.uint64), [0x7FF0000000000001, 0x8000000000000000]])
        tensors = {
            "f32": f32.view(np.float32).reshape(2, -1),
            "f64": f64.view(np.float64),
            "i64": np.array([np.iinfo(np.int64).min, -1, 0, np.iinfo(np.int64).max]),
            "i32": np.array([np.iinfo(np.int32).min, -1, 0, np.iinfo(np.int32).max], dtype=np.int32),
            "bool": np.array([[True, False], [False, True]]),
            "scalar": np.array(2.5),
            "empty": np.zeros((3, 0, 2), dtype=np.float32),
        }
        got, metadata = decode_safetensors(encode_safetensors(tensors, metadata={"a": "b"}))
        assert metadata == {"a": "b"}
        assert list(got) == sorted(tensors)
        for name, array in tensors.items():
            assert got[name].dtype == array.dtype and got[name].shape == array.shape
            assert bits(got[name]) == bits(array), name
            assert got[name].flags.writeable

    @given(
        st.sampled_from(["<f8", "<f4", "<f2", "<i8", "<i4", "?", "bf16"]),
        st.lists(st.integers(0, 3), max_size=4),
        st.data(),
    )
    def test_round_trip_property(self, dtype, shape, data):
        size = int(np.prod(shape))
        itemsize = 1 if dtype == "?" else 2 if dtype == "bf16" else int(dtype[-1])
        raw = data.draw(st.binary(min_size=size * itemsize, max_size=size * itemsize))
        if dtype == "?":
            array = (np.frombuffer(raw, np.uint8) % 2).astype(bool).reshape(shape)
        elif dtype == "bf16":
            array = np.frombuffer(raw, "<u2").astype(np.uint16).view(BF16).reshape(shape)
        else:
            array = np.frombuffer(raw, dtype).reshape(shape)
        got, _ = decode_safetensors(encode_safetensors({"t": array}))
        assert got["t"].shape == array.shape and bits(got["t"]) == bits(array)

    def test_interoperates_with_the_reference_safetensors_package(self):
        st_numpy = pytest.importorskip("safetensors.numpy")
        tensors = {
            "f64": np.linspace(-1, 1, 5),
            "f32": np.arange(6, dtype=np.float32).reshape(2, 3),
            "f16": np.array([0.5, -65504.0], np.float16),
            "i64": np.array([-(2**40), 3]),
            "i32": np.array([7], np.int32),
            "bool": np.array([True, False, True]),
        }
        theirs = st_numpy.load(encode_safetensors(tensors))
        ours, _ = decode_safetensors(st_numpy.save(tensors))
        for name, array in tensors.items():
            assert bits(theirs[name]) == bits(array) and bits(ours[name]) == bits(array)


def _header(obj, data=b"", pad=b""):
    text = json.dumps(obj).encode() + pad
    return struct.pack("<Q", len(text)) + text + data


def _raw_header(text, data=b""):
    return struct.pack("<Q", len(text)) + text + data


F64_2 = struct.pack("<2d", 1.0, 2.0)

HOSTILE_BLOBS = {
    "empty": (b"", r"fewer than the 8-byte header length field"),
    "seven bytes": (b"\x02\x00\x00\x00\x00\x00\x00", r"fewer than the 8-byte"),
    "header longer than file": (struct.pack("<Q", 100) + b"{}", r"says 100 bytes but the file has only 2"),
    "huge header length": (struct.pack("<Q", 2**63) + b"{}", r"more than the limit of 100000000"),
    "header length zero": (struct.pack("<Q", 0), r"too short for a JSON object"),
    "not an object": (_raw_header(b"[1, 2]"), r"does not start with '\{'"),
    "non utf8": (_raw_header(b'{"\xff\xfe": {}}'), r"not valid UTF-8"),
    "invalid json": (_raw_header(b'{"x": '), r"header is not valid JSON"),
    "duplicate keys": (
        _raw_header(
            b'{"x":{"dtype":"F64","shape":[2],"data_offsets":[0,16]},'
            b'"x":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}}',
            F64_2,
        ),
        r"key 'x' twice",
    ),
    "nan in shape": (
        _raw_header(b'{"x":{"dtype":"F64","shape":[NaN],"data_offsets":[0,16]}}', F64_2),
        r"non-standard number NaN",
    ),
    "overflowing float": (
        _raw_header(b'{"x":{"dtype":"F64","shape":[1e999],"data_offsets":[0,16]}}', F64_2),
        r"overflows a double",
    ),
    "float in shape": (_header({"x": {"dtype": "F64", "shape": [2.0], "data_offsets": [0, 16]}}, F64_2), r"shape"),
    "negative shape": (_header({"x": {"dtype": "F64", "shape": [-2], "data_offsets": [0, 16]}}, F64_2), r"shape"),
    "bool shape": (_header({"x": {"dtype": "F64", "shape": [True], "data_offsets": [0, 8]}}, F64_2[:8]), r"shape"),
    "too many dims": (_header({"x": {"dtype": "F64", "shape": [1] * 33, "data_offsets": [0, 8]}}), r"at most 32"),
    "zero dim hides huge dims": (
        _header({"x": {"dtype": "F64", "shape": [0, 2**62, 2**62], "data_offsets": [0, 0]}}),
        r"too large for any array",
    ),
    "claims huge size": (
        _header({"x": {"dtype": "F64", "shape": [2**40], "data_offsets": [0, 2**43]}}, F64_2),
        r"ends at byte 8796093022208 of the data section, which has only 16 bytes",
    ),
    "unknown dtype": (_header({"x": {"dtype": "F8", "shape": [2], "data_offsets": [0, 16]}}, F64_2), r"known dtypes"),
    "object dtype": (_header({"x": {"dtype": "O", "shape": [2], "data_offsets": [0, 16]}}, F64_2), r"known dtypes"),
    "extra entry key": (
        _header({"x": {"dtype": "F64", "shape": [2], "data_offsets": [0, 16], "eval": "x"}}, F64_2),
        r"exactly the keys",
    ),
    "size mismatch": (
        _header({"x": {"dtype": "F64", "shape": [3], "data_offsets": [0, 16]}}, F64_2),
        r"needs 24 bytes, but data_offsets \[0, 16\] span 16",
    ),
    "begin after end": (_header({"x": {"dtype": "F64", "shape": [0], "data_offsets": [16, 8]}}, F64_2), r"begin"),
    "overlap": (
        _header(
            {
                "x": {"dtype": "F64", "shape": [2], "data_offsets": [0, 16]},
                "y": {"dtype": "F64", "shape": [1], "data_offsets": [8, 16]},
            },
            F64_2,
        ),
        r"overlaps",
    ),
    "gap": (_header({"x": {"dtype": "F64", "shape": [1], "data_offsets": [8, 16]}}, F64_2), r"unused bytes \[0, 8\)"),
    "trailing garbage": (
        _header({"x": {"dtype": "F64", "shape": [2], "data_offsets": [0, 16]}}, F64_2 + b"!"),
        r"1 bytes after the last tensor",
    ),
    "bad metadata": (_header({"__metadata__": {"k": 1}}), r"__metadata__ must be an object of strings"),
    "bool byte 2": (_header({"b": {"dtype": "BOOL", "shape": [1], "data_offsets": [0, 1]}}, b"\x02"), r"0 or 1"),
    "deep nesting": (_raw_header(b'{"x":' + b"[" * 100_000), r"not valid JSON"),
    "huge integer": (_raw_header(b'{"x":{"dtype":"F64","shape":[' + b"9" * 5000 + b"]}}"), r"not valid JSON"),
    "pickle renamed": (pickle.dumps({"x": np.arange(3.0)}, protocol=4), r"header length field says \d+ bytes, more than the limit"),
    "pickle protocol 2": (pickle.dumps([1, 2, 3], protocol=2), r"header length field says \d+ bytes, more than the limit"),
}


def _npy_bytes():
    buffer = io.BytesIO()
    np.save(buffer, np.arange(3.0))
    return buffer.getvalue()


HOSTILE_BLOBS["npy renamed"] = (_npy_bytes(), r"header length field says \d+ bytes, more than the limit")


class TestDecodeSafetensorsRejects:
    @pytest.mark.parametrize("name", sorted(HOSTILE_BLOBS))
    def test_hostile_blob(self, name):
        blob, match = HOSTILE_BLOBS[name]
        with pytest.raises(CorpusError, match=match):
            decode_safetensors(blob)

    def test_error_is_a_value_error(self):
        assert issubclass(CorpusError, ValueError)

    def test_padding_and_empty_header_are_fine(self):
        assert decode_safetensors(_header({}, pad=b"      ")) == ({}, {})

    def test_type_error_for_non_bytes(self):
        with pytest.raises(TypeError, match=r"^data must be bytes, bytearray or memoryview, got type str"):
            decode_safetensors("{}")

    @given(st.binary(max_size=400))
    def test_fuzz_random_bytes(self, blob):
        try:
            decode_safetensors(blob)
        except CorpusError:
            pass

    @given(st.binary(max_size=300), st.binary(max_size=64))
    def test_fuzz_random_header_text(self, text, data):
        try:
            decode_safetensors(_raw_header(b"{" + text, data))
        except CorpusError:
            pass

    json_values = st.recursive(
        st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=12,
    )

    @given(
        st.dictionaries(
            st.sampled_from(["x", "y", "__metadata__"]),
            st.fixed_dictionaries(
                {},
                optional={
                    "dtype": st.sampled_from(["F64", "F32", "BF16", "BOOL", "U8", 3]),
                    "shape": st.lists(st.integers(-2, 5), max_size=3) | json_values,
                    "data_offsets": st.lists(st.integers(-2, 40), max_size=3) | json_values,
                },
            )
            | json_values,
        ),
        st.binary(max_size=48),
    )
    def test_fuzz_structured_headers(self, header, data):
        try:
            decode_safetensors(_header(header, data))
        except CorpusError:
            pass

    @given(st.data())
    def test_fuzz_mutations_of_a_valid_file(self, data):
        blob = bytearray(encode_safetensors(
            {"a": np.arange(3.0), "b": np.ones((2, 2), np.float16), "c": np.array([True])}, metadata={"k": "v"}
        ))
        for _ in range(data.draw(st.integers(1, 4))):
            kind = data.draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete"]))
            at = data.draw(st.integers(0, max(len(blob) - 1, 0)))
            if kind == "flip" and blob:
                blob[at] ^= 1 << data.draw(st.integers(0, 7))
            elif kind == "set" and blob:
                blob[at] = data.draw(st.integers(0, 255))
            elif kind == "truncate":
                del blob[at:]
            elif kind == "insert":
                blob[at:at] = data.draw(st.binary(min_size=1, max_size=4))
            elif kind == "delete" and blob:
                del blob[at]
        try:
            decode_safetensors(bytes(blob))
        except CorpusError:
            pass


# ---------------------------------------------------------------------------
# manifest schema
# ---------------------------------------------------------------------------


class TestSchema:
    def test_shipped_file_is_the_schema(self):
        assert SCHEMA_FILE.read_text() == schema_json()
        assert json.loads(SCHEMA_FILE.read_text()) == MANIFEST_SCHEMA

    def test_schema_is_valid_draft_2020_12(self):
        jsonschema = pytest.importorskip("jsonschema")
        jsonschema.Draft202012Validator.check_schema(json.loads(SCHEMA_FILE.read_text()))

    def test_validator_refuses_unknown_keywords(self):
        with pytest.raises(ValueError, match=r"unsupported keywords \['oneOf'\]"):
            list(schema_errors(1, {"oneOf": []}))

    def test_validator_keyword_semantics(self):
        schema = {"type": "object", "properties": {"n": {"const": 1}, "s": {"pattern": "^a$"}}}
        assert list(schema_errors({"n": 1.0, "s": "a"}, schema)) == []
        assert len(list(schema_errors({"n": True, "s": "a\n"}, schema))) == 2

    def _manifests(self, root):
        base = json.loads((root / "manifest.json").read_text())

        def variant(change):
            manifest = json.loads(json.dumps(base))
            change(manifest)
            return manifest

        case = lambda m: m["cases"][0]  # noqa: E731
        return [
            base,
            variant(lambda m: m.pop("spec_version")),
            variant(lambda m: m.update(extra=1)),
            variant(lambda m: m.update(schema_version=3)),
            variant(lambda m: m.update(format="other")),
            variant(lambda m: m.update(cases={})),
            variant(lambda m: case(m).update(seed="0")),
            variant(lambda m: case(m).update(seed=-1)),
            variant(lambda m: case(m).update(id="Rope")),
            variant(lambda m: case(m).update(file="../x.safetensors")),
            variant(lambda m: case(m).update(file_sha256="ABC")),
            variant(lambda m: case(m).update(expect_error="KeyError")),
            variant(lambda m: case(m).update(error_match=3)),
            variant(lambda m: case(m).update(params={"bad-key": 1})),
            variant(lambda m: case(m).update(params=[])),
            variant(lambda m: case(m).update(tolerance="")),
            variant(lambda m: case(m)["inputs"][0].update(dtype="float128")),
            variant(lambda m: case(m)["inputs"][0].update(shape=[-1])),
            variant(lambda m: case(m)["inputs"][0].update(shape=[1] * 33)),
            variant(lambda m: case(m)["inputs"][0].pop("sha256")),
            variant(lambda m: case(m)["rounded"][0].update(dtype="int8")),
            variant(lambda m: case(m)["rounded"][0]["arrays"][0].update(tensor="inputs.x")),
            variant(lambda m: case(m).update(file_size=True)),
        ]

    def test_agrees_with_jsonschema(self, corpus):
        jsonschema = pytest.importorskip("jsonschema")
        validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))
        manifests = self._manifests(corpus[0])
        verdicts = [(validator.is_valid(m), not list(schema_errors(m))) for m in manifests]
        assert verdicts[0] == (True, True)
        assert all(v == (False, False) for v in verdicts[1:]), verdicts

    def test_final_dollar_does_not_match_before_a_newline(self, corpus):
        # ECMA-262 semantics, which the schema's patterns assume; Python's
        # re (and so the jsonschema package) would accept "rope.a\n".
        manifest = json.loads((corpus[0] / "manifest.json").read_text())
        manifest["cases"][0]["id"] = "rope.a\n"
        assert [m for m in schema_errors(manifest) if "id must match" in m]


# ---------------------------------------------------------------------------
# writing and reading
# ---------------------------------------------------------------------------


class TestWriteRead:
    def test_round_trip(self, corpus):
        root, cases = corpus
        got = read_corpus(root)
        assert [c.id for c in got] == ["rope.a", "rope.b", "t5.c"]
        for g, w in zip(got, cases):
            assert_same_case(g, w)
        assert_same_case(read_case(root, "rope.b"), cases[1])

    def test_round_trip_of_every_dtype_and_error_cases(self, tmp_path):
        patterns = np.arange(2**16, dtype=np.uint16)
        dtype_case = make_case(
            "dtypes",
            inputs={"b": np.array([True, False]), "i": np.array([-5], np.int32), "z": np.zeros((0, 2))},
            outputs={"output_0": np.array(np.pi), "output_1": np.array([2**62, -1])},
            rounded={
                "float16": {"inputs.z": patterns.view(np.float16)},
                "bfloat16": {"inputs.z": patterns.view(BF16), "outputs.output_0": np.array(0.0)},
            },
        )
        error_case = make_case(
            "error", outputs={}, rounded={}, expect_error="ValueError", error_match="dim must be"
        )
        write_corpus([error_case, dtype_case], tmp_path / "c")
        got = {c.id: c for c in read_corpus(tmp_path / "c")}
        assert_same_case(got["dtypes"], dtype_case)
        assert_same_case(got["error"], error_case)

    def test_params_are_written_as_plain_json(self, tmp_path):
        case = make_case(params={"t": (1, 2), "f": np.float64(0.1), "i": np.int64(3), "b": np.bool_(True), "n": {"k": [-0.0]}})
        write_corpus([case], tmp_path / "c")
        params = read_case(tmp_path / "c", case.id).params
        assert params == {"b": True, "f": 0.1, "i": 3, "n": {"k": [-0.0]}, "t": [1, 2]}
        assert type(params["i"]) is int and type(params["f"]) is float
        assert str(params["n"]["k"][0]) == "-0.0"

    def test_layout_and_manifest_content(self, corpus):
        root, cases = corpus
        assert sorted(os.listdir(root)) == ["cases", "manifest.json"]
        assert sorted(os.listdir(root / "cases")) == ["rope.a.safetensors", "rope.b.safetensors", "t5.c.safetensors"]
        text = (root / "manifest.json").read_bytes()
        assert text.endswith(b"}\n") and text.isascii()
        manifest = json.loads(text)
        assert manifest["format"] == "posref-golden"
        assert manifest["schema_version"] == 2
        assert manifest["generator"] == {"numpy_version": np.__version__, "precision": fmt.PRECISION_POLICY}
        assert (manifest["spec_version"], manifest["posref_version"]) == (SPEC_VERSION, __version__)
        assert text == (json.dumps(manifest, sort_keys=True, indent=2) + "\n").encode()
        entry = manifest["cases"][0]
        case = cases[0]
        blob = (root / "cases" / "rope.a.safetensors").read_bytes()
        assert entry["file"] == "cases/rope.a.safetensors"
        assert entry["file_size"] == len(blob)
        assert entry["file_sha256"] == hashlib.sha256(blob).hexdigest()
        assert [a["name"] for a in entry["inputs"]] == ["x", "positions"]  # call order, not sorted
        x = entry["inputs"][0]
        assert x == {
            "name": "x",
            "tensor": "inputs.x",
            "dtype": "float64",
            "shape": [2, 3],
            "sha256": hashlib.sha256(bits(case.inputs["x"])).hexdigest(),
        }
        bf = entry["rounded"][2]
        assert bf["dtype"] == "bfloat16"
        assert bf["arrays"][0]["sha256"] == hashlib.sha256(bits(case.rounded["bfloat16"]["inputs.x"])).hexdigest()
        assert [g["dtype"] for g in entry["rounded"]] == ["float32", "float16", "bfloat16"]
        header_len = struct.unpack("<Q", blob[:8])[0]
        header = json.loads(blob[8 : 8 + header_len])
        assert header["__metadata__"] == {"format": "posref-golden", "case_id": "rope.a"}
        assert sorted(header) == sorted(
            ["__metadata__", "inputs.x", "inputs.positions", "outputs.output"]
            + [f"{d}.{k}" for d in ("float32", "float16", "bfloat16") for k in ("inputs.x", "outputs.output")]
        )

    def test_manifest_validates_with_jsonschema(self, corpus):
        jsonschema = pytest.importorskip("jsonschema")
        manifest = json.loads((corpus[0] / "manifest.json").read_text())
        jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text())).validate(manifest)

    def test_files_open_with_the_reference_safetensors_package(self, tmp_path):
        st_numpy = pytest.importorskip("safetensors.numpy")  # its NumPy API has no bfloat16
        case = make_case("plain", rounded={"float16": {"inputs.x": np.ones(2, np.float16)}})
        write_corpus([case], tmp_path / "c")
        tensors = st_numpy.load(_case_file(tmp_path / "c", "plain").read_bytes())
        assert sorted(tensors) == ["float16.inputs.x", "inputs.positions", "inputs.x", "outputs.output"]
        assert bits(tensors["inputs.x"]) == bits(case.inputs["x"])

    def test_deterministic_bytes(self, tmp_path):
        cases = [make_case("b"), make_case("a")]
        write_corpus(cases, tmp_path / "one")
        write_corpus(list(reversed(cases)), tmp_path / "two")
        assert tree_bytes(tmp_path / "one") == tree_bytes(tmp_path / "two")

    def test_deterministic_across_processes_and_hash_seeds(self, tmp_path):
        script = SCRIPT_PRELUDE + "write_corpus(small_cases(5), sys.argv[1])\n"
        env = dict(os.environ, PYTHONHASHSEED="12345")
        subprocess.run([sys.executable, "-c", script, str(tmp_path / "child")], check=True, env=env)
        write_corpus(small_cases(5), tmp_path / "here")
        assert tree_bytes(tmp_path / "child") == tree_bytes(tmp_path / "here")

    def test_identical_rewrite_is_a_no_op(self, corpus):
        root, cases = corpus
        before = {p: os.stat(root / p).st_mtime_ns for p in ("manifest.json", "cases/rope.a.safetensors")}
        inode = os.stat(root).st_ino
        result = write_corpus(cases, root)
        assert result.changed is False and result.case_ids == ("rope.a", "rope.b", "t5.c")
        assert os.stat(root).st_ino == inode
        assert before == {p: os.stat(root / p).st_mtime_ns for p in before}
        assert sorted(os.listdir(root.parent)) == ["golden"]

    def test_same_ids_new_content_is_replaced(self, corpus):
        root, cases = corpus
        new = [make_case("rope.a", description="changed"), cases[1], cases[2]]
        assert write_corpus(new, root).changed is True
        assert read_case(root, "rope.a").description == "changed"
        assert sorted(os.listdir(root.parent)) == ["golden"]

    def test_progress(self, tmp_path):
        calls = []
        write_corpus([make_case("b"), make_case("a")], tmp_path / "c", progress=lambda *a: calls.append(a))
        assert calls == [(1, 2, "a"), (2, 2, "b")]

    def test_empty_corpus_and_new_parent(self, tmp_path):
        write_corpus([], tmp_path / "deep" / "er")
        assert read_corpus(tmp_path / "deep" / "er") == []

    def test_read_case_unknown_id(self, corpus):
        with pytest.raises(CorpusError, match=r"has no case 'nope' \(3 cases listed\)"):
            read_case(corpus[0], "nope")


class TestRefusal:
    @pytest.mark.parametrize("force", [False, True])
    def test_non_corpus_directory_is_never_replaced(self, tmp_path, force):
        (tmp_path / "c").mkdir()
        (tmp_path / "c" / "notes.txt").write_text("mine")
        with pytest.raises(FileExistsError, match=r"holds notes.txt, which the corpus manifest there does not list"):
            write_corpus([make_case()], tmp_path / "c", force=force)
        assert sorted(os.listdir(tmp_path / "c")) == ["notes.txt"]
        assert (tmp_path / "c" / "notes.txt").read_text() == "mine"

    def test_corpus_that_does_not_validate_needs_force(self, corpus):
        root, cases = corpus
        edit_manifest(root, lambda m: m.update(spec_version=1))
        with pytest.raises(FileExistsError, match=r"holds a posref golden corpus that does not validate .*force=True"):
            write_corpus(cases, root)
        write_corpus(cases, root, force=True)
        assert [c.id for c in read_corpus(root)] == ["rope.a", "rope.b", "t5.c"]

    def test_empty_directory_needs_no_force(self, tmp_path):
        (tmp_path / "c").mkdir()
        write_corpus([make_case()], tmp_path / "c")
        assert len(read_corpus(tmp_path / "c")) == 1

    @pytest.mark.parametrize("force", [False, True])
    def test_existing_file_is_never_replaced(self, tmp_path, force):
        (tmp_path / "c").write_text("x")
        with pytest.raises(FileExistsError, match=r"exists and is not a directory"):
            write_corpus([make_case()], tmp_path / "c", force=force)
        assert (tmp_path / "c").read_text() == "x"

    def test_different_case_set(self, corpus):
        root, cases = corpus
        with pytest.raises(FileExistsError, match=r"lists different cases or versions: 1 cases added \['z'\], 1 removed"):
            write_corpus(cases[:2] + [make_case("z")], root)
        assert [c.id for c in read_corpus(root)] == ["rope.a", "rope.b", "t5.c"]
        write_corpus(cases[:2], root, force=True)
        assert [c.id for c in read_corpus(root)] == ["rope.a", "rope.b"]

    def test_different_versions(self, corpus, monkeypatch):
        root, cases = corpus
        monkeypatch.setattr(fmt, "__version__", "99.0")
        with pytest.raises(FileExistsError, match=rf"by posref {__version__}, this is spec {SPEC_VERSION}, posref 99.0"):
            write_corpus(cases, root)
        monkeypatch.setattr(fmt, "SPEC_VERSION", "2.0")
        with pytest.raises(FileExistsError, match=r"written for spec 1.0"):
            write_corpus(cases, root)
        write_corpus(cases, root, force=True)
        assert json.loads((root / "manifest.json").read_text())["spec_version"] == "2.0"

    def test_symlink_out_dir(self, corpus, tmp_path):
        link = tmp_path / "link"
        link.symlink_to(corpus[0])
        with pytest.raises(ValueError, match=r"^out_dir must not be a symbolic link"):
            write_corpus(corpus[1], link, force=True)


class TestAtomicity:
    def test_failure_while_writing_keeps_the_old_corpus(self, corpus, monkeypatch):
        root, cases = corpus
        before = tree_bytes(root)
        real = fmt._write_file
        calls = []

        def failing(path, data):
            calls.append(path)
            if len(calls) == 2:
                raise OSError("disk full")
            real(path, data)

        monkeypatch.setattr(fmt, "_write_file", failing)
        with pytest.raises(OSError, match="disk full"):
            write_corpus([make_case("rope.a", outputs={"output": np.ones((2, 3))})] + cases[1:], root)
        assert len(calls) == 2  # the new rope.a, then the new manifest
        assert tree_bytes(root) == before
        assert sorted(os.listdir(root)) == ["cases", "manifest.json"]
        assert sorted(os.listdir(root.parent)) == ["golden"]

    def test_interrupt_from_progress_keeps_the_old_corpus(self, corpus):
        root, cases = corpus
        before = tree_bytes(root)

        def interrupt(done, total, case_id):
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            write_corpus([make_case("rope.a", outputs={"output": np.ones((2, 3))})] + cases[1:], root,
                         progress=interrupt)
        assert tree_bytes(root) == before
        assert sorted(os.listdir(root)) == ["cases", "manifest.json"]
        assert sorted(os.listdir(root.parent)) == ["golden"]

    @pytest.mark.parametrize("failing_call", [1, 2, 3, 4])
    def test_failed_rename_restores_the_old_corpus(self, corpus, monkeypatch, failing_call):
        # Renames: new rope.a and rope.b in (under their second names), new case 'u' in, the manifest
        root, cases = corpus
        before = tree_bytes(root)
        real = fmt._rename
        calls = []

        def failing(source, target):
            calls.append((source, target))
            if len(calls) == failing_call:
                raise OSError("rename failed")
            real(source, target)

        monkeypatch.setattr(fmt, "_rename", failing)
        ones = {"output": np.ones((2, 3))}
        new = [make_case("rope.a", outputs=ones), make_case("rope.b", outputs=ones), cases[2], make_case("u")]
        with pytest.raises(OSError, match="rename failed"):
            write_corpus(new, root, force=True)
        assert len(calls) == failing_call + (failing_call - 1)  # every rename done is undone
        assert tree_bytes(root) == before
        assert sorted(os.listdir(root)) == ["cases", "manifest.json"]
        assert sorted(os.listdir(root.parent)) == ["golden"]

    def test_failed_commit_restores_the_old_corpus(self, corpus, monkeypatch):
        root, cases = corpus
        before = tree_bytes(root)
        real = fmt._rename

        def failing(source, target):
            if Path(target).name == "manifest.json":
                raise OSError("rename failed")
            real(source, target)

        monkeypatch.setattr(fmt, "_rename", failing)
        with pytest.raises(OSError, match="rename failed"):
            write_corpus([make_case("rope.a", outputs={"output": np.ones((2, 3))})] + cases[1:], root)
        assert tree_bytes(root) == before
        assert sorted(os.listdir(root)) == ["cases", "manifest.json"]

    def test_killed_process_leaves_the_old_corpus_whole(self, corpus):
        root, cases = corpus
        before = tree_bytes(root)
        script = SCRIPT_PRELUDE + (
            "write_corpus(small_cases(5), sys.argv[1], force=True,\n"
            "             progress=lambda done, total, cid: done == 2 and os._exit(3))\n"
        )
        result = subprocess.run([sys.executable, "-c", script, str(root)])
        assert result.returncode == 3
        leftovers = [n for n in os.listdir(root) if n.startswith(".posref-tmp-")]
        assert len(leftovers) == 1
        assert {k: v for k, v in tree_bytes(root).items() if not k.startswith(".posref-tmp-")} == before
        assert [c.id for c in read_corpus(root)] == ["rope.a", "rope.b", "t5.c"]
        report = verify_corpus(root)
        assert [(p.kind, p.file) for p in report.problems] == [("extra", leftovers[0])]
        assert "interrupted write" in report.problems[0].message
        write_corpus(small_cases(5), root, force=True)
        assert [c.seed for c in read_corpus(root)] == [5, 5]
        assert sorted(os.listdir(root)) == ["cases", "manifest.json"]
        assert sorted(os.listdir(root.parent)) == ["golden"]


class TestNoCodeExecution:
    def test_modules_never_unpickle_or_evaluate(self):
        import ast

        import posref.golden._safetensors as codec
        import posref.golden._schema as schema

        for module in (fmt, codec, schema):
            tree = ast.parse(Path(module.__file__).read_text())
            for node in ast.walk(tree):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                    assert not {"pickle", "marshal", "shelve", "dill"} & set(names), module.__name__
                if isinstance(node, ast.Call):
                    func = node.func
                    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                    assert name not in {"eval", "exec", "load", "fromfile"}, (module.__name__, name)
                if isinstance(node, ast.keyword):
                    assert node.arg != "allow_pickle", module.__name__


class TestWriteErrors:
    @pytest.mark.parametrize(
        "case, error, match",
        [
            ({"id": "x"}, TypeError, r"^cases\[0\] must be a GoldenCase, got type dict"),
            (make_case("Rope"), ValueError, r"^cases\[0\]\.id must match \[a-z0-9_\]\[a-z0-9_.-\]\*.*got id='Rope'"),
            (make_case("../x"), ValueError, r"got id='../x'"),
            (make_case(""), ValueError, r"got id=''"),
            (make_case("a" * 201), ValueError, r"at most 200 characters"),
            (make_case(function="apply rope"), ValueError, r"^case 'rope.a': function must be a Python identifier"),
            (make_case(family=""), ValueError, r"^case 'rope.a': family must be 1 to 100 characters"),
            (make_case(params=[1]), TypeError, r"^case 'rope.a': params must be a dict, got type list"),
            (make_case(params={"a-b": 1}), ValueError, r"params keys must be Python identifiers, got 'a-b'"),
            (make_case(params={"base": float("nan")}), ValueError, r"^case 'rope.a': params\['base'\] must be finite"),
            (make_case(params={"f": [1, float("inf")]}), ValueError, r"params\['f'\]\[1\] must be finite"),
            (make_case(params={"o": object()}), TypeError, r"^case 'rope.a': params\['o'\] must be JSON data"),
            (make_case(params={"d": {1: 2}}), TypeError, r"params\['d'\] must have str keys"),
            (make_case(inputs=[1]), TypeError, r"^case 'rope.a': inputs must be a dict of arrays"),
            (make_case(inputs={"x": [1.0]}), TypeError, r"inputs\['x'\] must be a NumPy array of dtype float64, .*got type list"),
            (make_case(inputs={"x": np.ones(1, np.complex64)}), TypeError, r"got dtype complex64"),
            (make_case(outputs={"x": np.ones(1, np.uint16)}), TypeError, r"outputs\['x'\] .* got dtype uint16"),
            (make_case(inputs={"inputs.x": np.ones(1)}), ValueError, r"inputs keys must be Python identifiers, got 'inputs.x'"),
            (make_case(rounded={"int8": {}}), ValueError, r"rounded keys must be one of float64, .*got 'int8'"),
            (make_case(rounded={"float32": {"x": np.ones(1)}}), ValueError, r"rounded\['float32'\] keys must be 'inputs.<name>'"),
            (make_case(rounded={"float32": 1}), TypeError, r"rounded\['float32'\] must be a dict of arrays"),
            (make_case(rounded=[]), TypeError, r"rounded must be a dict of dicts"),
            (make_case(tolerance=""), ValueError, r"tolerance must be a string of 1 to 100 characters"),
            (make_case(expect_error="KeyError", outputs={}), ValueError, r"^case 'rope.a': expect_error must be one of 'ValueError', 'TypeError', None, got expect_error='KeyError'"),
            (make_case(expect_error="ValueError"), ValueError, r"an error case \(expect_error='ValueError'\) must have no outputs"),
            (make_case(error_match="dim"), ValueError, r"error_match is set but expect_error is None"),
            (make_case(error_match=3, expect_error="TypeError", outputs={}), TypeError, r"error_match must be a str or None"),
            (make_case(seed=-1), ValueError, r"^case 'rope.a': seed must be a non-negative integer, got seed=-1"),
            (make_case(seed=1.5), TypeError, r"^case 'rope.a': seed must be a non-negative integer"),
            (make_case(description=None), TypeError, r"description must be a str"),
        ],
    )
    def test_bad_case(self, tmp_path, case, error, match):
        with pytest.raises(error, match=match):
            write_corpus([case], tmp_path / "c")
        assert os.listdir(tmp_path) == []

    def test_duplicate_ids(self, tmp_path):
        with pytest.raises(ValueError, match=r"^cases must have unique ids, got 'rope.a' twice"):
            write_corpus([make_case(), make_case()], tmp_path / "c")

    @pytest.mark.parametrize(
        "args, kwargs, error, match",
        [
            ((3, "d"), {}, TypeError, r"^cases must be an iterable of GoldenCase, got cases=3 of type int"),
            (("abc", "d"), {}, TypeError, r"^cases must be an iterable of GoldenCase"),
            ((make_case(), "d"), {}, TypeError, r"of type GoldenCase"),
            (([], 3), {}, TypeError, r"^out_dir must be a str or os.PathLike, got out_dir=3 of type int"),
            (([], ""), {}, ValueError, r"^out_dir must be a non-empty path"),
            (([], "d"), {"force": "yes"}, TypeError, r"^force must be True or False, got force='yes'"),
            (([], "d"), {"progress": 3}, TypeError, r"^progress must be a callable or None, got progress=3"),
        ],
    )
    def test_bad_arguments(self, args, kwargs, error, match):
        with pytest.raises(error, match=match):
            write_corpus(*args, **kwargs)

    def test_reader_argument_types(self, corpus):
        with pytest.raises(TypeError, match=r"^directory must be a str or os.PathLike, got directory=1"):
            read_corpus(1)
        with pytest.raises(TypeError, match=r"^case_id must be a str, got case_id=1 of type int"):
            read_case(corpus[0], 1)
        with pytest.raises(TypeError, match=r"^expected_cases must be an iterable of GoldenCase"):
            verify_corpus(corpus[0], 5)


# ---------------------------------------------------------------------------
# hostile corpora
# ---------------------------------------------------------------------------


def _case_file(root, case_id="rope.a"):
    return Path(root) / "cases" / f"{case_id}.safetensors"


class TestReadHostileCorpus:
    def test_missing_directory_and_manifest(self, tmp_path):
        with pytest.raises(CorpusError, match=r"corpus directory .* does not exist"):
            read_corpus(tmp_path / "none")
        with pytest.raises(CorpusError, match=r"manifest .*manifest.json does not exist"):
            read_corpus(tmp_path)

    @pytest.mark.parametrize(
        "text, match",
        [
            (b"\xff{}", r"not valid UTF-8"),
            (b"{", r"is not valid JSON"),
            (b"[]", r"must hold a JSON object, got list"),
            (b'{"format": "posref-golden", "format": "posref-golden"}', r"key 'format' twice"),
            (b'{"format": "posref-golden", "schema_version": NaN}', r"non-standard number NaN"),
            (b'{"format": "x"}', r"is not a posref golden corpus manifest \(format is 'x'\)"),
            (b'{"format": "posref-golden", "schema_version": 3}', r"has schema_version 3; posref .* reads schema_version 1 and 2"),
            (b'{"format": "posref-golden", "schema_version": true}', r"has schema_version True"),
            (pickle.dumps({"format": "posref-golden"}), r"not valid UTF-8|not valid JSON"),
        ],
    )
    def test_bad_manifest_text(self, corpus, text, match):
        (corpus[0] / "manifest.json").write_bytes(text)
        with pytest.raises(CorpusError, match=match):
            read_corpus(corpus[0])

    @pytest.mark.parametrize(
        "change, match",
        [
            (lambda m: m.pop("cases"), r"violates the manifest schema: manifest is missing the required key 'cases'"),
            (lambda m: m.update(date="today"), r"manifest has the unknown key 'date'"),
            (lambda m: m["cases"][0].update(seed="0"), r"manifest.cases\[0\].seed must be an integer, got '0'"),
            (lambda m: m["cases"][0].update(file_sha256="0" * 63), r"cases\[0\].file_sha256 must match"),
            (lambda m: m["cases"][0]["inputs"][0].update(dtype="object"), r"inputs\[0\].dtype must be one of"),
            (lambda m: m["cases"].reverse(), r"case 'rope.b' is listed after 't5.c' \(cases must be sorted by id\)"),
            (lambda m: m["cases"].insert(0, m["cases"][0]), r"case 'rope.a' is listed twice"),
            (lambda m: m["cases"][0].update(file="cases/rope.b.safetensors"), r"case 'rope.a' must be stored in 'cases/rope.a.safetensors'"),
            (lambda m: m["cases"][0]["inputs"][0].update(tensor="outputs.x"), r"must be tensor 'inputs.x', got 'outputs.x'"),
            (lambda m: m["cases"][0]["inputs"].append(m["cases"][0]["inputs"][0]), r"lists inputs 'x' twice"),
            (lambda m: m["cases"][0]["rounded"].append(m["cases"][0]["rounded"][0]), r"lists rounded dtype 'float32' twice"),
            (lambda m: m["cases"][0]["rounded"][0]["arrays"][0].update(tensor="float16.inputs.x"), r"must be tensor 'float32.inputs.x'"),
            (lambda m: m["cases"][0].update(error_match="x"), r"has error_match but no expect_error"),
            (lambda m: m["cases"][0].update(expect_error="TypeError"), r"expects TypeError but lists outputs"),
        ],
    )
    def test_schema_and_consistency_violations(self, corpus, change, match):
        edit_manifest(corpus[0], change)
        with pytest.raises(CorpusError, match=match):
            read_corpus(corpus[0])

    @pytest.mark.parametrize("name", ["../outside.safetensors", "/etc/passwd", "cases/../../x.safetensors", "..\\x", "C:/x"])
    def test_path_traversal(self, corpus, name):
        edit_manifest(corpus[0], lambda m: m["cases"][1].update(file=name))
        with pytest.raises(CorpusError, match=r"case 'rope.b' names the file .* which points outside the corpus directory"):
            read_corpus(corpus[0])

    def test_symlinked_case_file(self, corpus, tmp_path):
        root = corpus[0]
        outside = tmp_path / "outside.safetensors"
        shutil.copy(_case_file(root), outside)
        _case_file(root).unlink()
        _case_file(root).symlink_to(outside)
        with pytest.raises(CorpusError, match=r"case 'rope.a' \(file cases/rope.a.safetensors\): .*is a symbolic link"):
            read_corpus(root)

    def test_symlinked_cases_directory(self, corpus, tmp_path):
        root = corpus[0]
        shutil.move(root / "cases", tmp_path / "elsewhere")
        (root / "cases").symlink_to(tmp_path / "elsewhere")
        with pytest.raises(CorpusError, match=r"must be a directory, not a symbolic link"):
            read_corpus(root)

    def test_symlinked_manifest(self, corpus, tmp_path):
        root = corpus[0]
        shutil.move(root / "manifest.json", tmp_path / "m.json")
        (root / "manifest.json").symlink_to(tmp_path / "m.json")
        with pytest.raises(CorpusError, match=r"manifest .* is a symbolic link"):
            read_corpus(root)

    def test_case_file_is_a_directory(self, corpus):
        _case_file(corpus[0]).unlink()
        _case_file(corpus[0]).mkdir()
        with pytest.raises(CorpusError, match=r"is not a regular file"):
            read_corpus(corpus[0])

    def test_missing_case_file(self, corpus):
        _case_file(corpus[0], "t5.c").unlink()
        with pytest.raises(CorpusError, match=r"case 't5.c' \(file cases/t5.c.safetensors\): .*does not exist"):
            read_corpus(corpus[0])

    @pytest.mark.parametrize("keep", [0, 7, 8, 100, -1])
    def test_truncated_case_file(self, corpus, keep):
        path = _case_file(corpus[0], "rope.b")
        path.write_bytes(path.read_bytes()[:keep])
        with pytest.raises(CorpusError, match=r"^case 'rope.b' \(file cases/rope.b.safetensors\): file has \d+ bytes, the manifest says"):
            read_corpus(corpus[0])

    def test_bit_flip_in_data(self, corpus):
        path = _case_file(corpus[0])
        blob = bytearray(path.read_bytes())
        (n,) = struct.unpack("<Q", blob[:8])
        header = json.loads(blob[8 : 8 + n])
        begin = header["inputs.x"]["data_offsets"][0]
        blob[8 + n + begin] ^= 0x01
        path.write_bytes(bytes(blob))
        with pytest.raises(CorpusError, match=r"^case 'rope.a' \(file cases/rope.a.safetensors\): sha256 of tensor 'inputs.x' does not match"):
            read_corpus(corpus[0])

    def test_reordered_header_is_caught_by_the_file_hash(self, corpus):
        path = _case_file(corpus[0])
        blob = path.read_bytes()
        (n,) = struct.unpack("<Q", blob[:8])
        header = json.loads(blob[8 : 8 + n])
        text = json.dumps(dict(reversed(list(header.items()))), separators=(",", ":")).encode()
        assert len(text) <= n and text != blob[8 : 8 + len(text)]
        path.write_bytes(blob[:8] + text.ljust(n) + blob[8 + n :])
        decode_safetensors(path.read_bytes())  # still a valid file
        with pytest.raises(CorpusError, match=r"^case 'rope.a' .*sha256 of the file does not match the manifest"):
            read_corpus(corpus[0])

    def test_metadata_of_another_case(self, corpus):
        root = corpus[0]
        blob = _case_file(root, "rope.b").read_bytes().replace(b'"case_id":"rope.b"', b'"case_id":"rope.z"')
        _case_file(root, "rope.b").write_bytes(blob)
        with pytest.raises(CorpusError, match=r"case 'rope.b' .*__metadata__ is"):
            read_corpus(root)

    def test_swapped_files(self, corpus):
        root = corpus[0]
        a, b = _case_file(root, "rope.a").read_bytes(), _case_file(root, "t5.c").read_bytes()
        _case_file(root, "rope.a").write_bytes(b)
        _case_file(root, "t5.c").write_bytes(a)
        with pytest.raises(CorpusError, match=r"^case 'rope.a' \(file cases/rope.a.safetensors\)"):
            read_corpus(root)

    def test_pickle_renamed_to_safetensors(self, corpus):
        path = _case_file(corpus[0])
        payload = pickle.dumps({"inputs.x": np.ones(3)})
        path.write_bytes(payload)
        edit_manifest(corpus[0], lambda m: m["cases"][0].update(file_size=len(payload)))
        with pytest.raises(CorpusError, match=r"^case 'rope.a' \(file cases/rope.a.safetensors\): header length field"):
            read_corpus(corpus[0])

    def test_valid_file_with_different_tensors(self, corpus):
        case = make_case("rope.a", inputs={"x": np.ones((2, 3)), "extra": np.ones(1)})
        blob = fmt._encode_case(case)[1]
        _case_file(corpus[0]).write_bytes(blob)
        edit_manifest(corpus[0], lambda m: m["cases"][0].update(file_size=len(blob)))
        with pytest.raises(CorpusError, match=r"tensors differ from the manifest \(missing \['inputs.positions'\], not listed \['inputs.extra'\]\)"):
            read_corpus(corpus[0])

    def test_manifest_dtype_differs_from_file(self, corpus):
        edit_manifest(corpus[0], lambda m: m["cases"][0]["inputs"][0].update(dtype="float32"))
        with pytest.raises(CorpusError, match=r"tensor 'inputs.x' is F64 \[2, 3\] in the file but float32 \[2, 3\]"):
            read_corpus(corpus[0])

    def test_cases_path_is_a_file(self, corpus):
        shutil.rmtree(corpus[0] / "cases")
        (corpus[0] / "cases").write_text("x")
        with pytest.raises(CorpusError, match=r"cases must be a directory"):
            read_corpus(corpus[0])


_TEMPLATE = {}


def _template():
    """A small valid corpus, built once; each fuzz example restores what it changes."""
    if not _TEMPLATE:
        root = Path(tempfile.mkdtemp(prefix="posref-fuzz-")) / "c"
        case = make_case("f", inputs={"x": np.arange(3.0)}, outputs={"output": np.arange(2.0)}, rounded={})
        write_corpus([case], root)
        _TEMPLATE["root"] = root
    return _TEMPLATE["root"]


@pytest.fixture(scope="module", autouse=True)
def _remove_template():
    yield
    if _TEMPLATE:
        shutil.rmtree(_TEMPLATE["root"].parent, ignore_errors=True)


def _mutate(blob, data):
    blob = bytearray(blob)
    for _ in range(data.draw(st.integers(1, 3))):
        kind = data.draw(st.sampled_from(["flip", "set", "truncate", "insert"]))
        at = data.draw(st.integers(0, max(len(blob) - 1, 0)))
        if kind == "flip" and blob:
            blob[at] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "set" and blob:
            blob[at] = data.draw(st.integers(0, 255))
        elif kind == "truncate":
            del blob[at:]
        elif kind == "insert":
            blob[at:at] = data.draw(st.binary(min_size=1, max_size=3))
    return bytes(blob)


class TestFuzzCorpus:
    @given(st.data())
    def test_any_change_to_a_case_file_is_caught(self, data):
        root = _template()
        path = _case_file(root, "f")
        original = path.read_bytes()
        mutated = _mutate(original, data)
        try:
            path.write_bytes(mutated)
            if mutated == original:
                read_case(root, "f")
            else:
                with pytest.raises(CorpusError, match=r"^case 'f' \(file cases/f.safetensors\): "):
                    read_case(root, "f")
        finally:
            path.write_bytes(original)

    @given(st.data())
    def test_manifest_mutations_raise_only_corpus_error(self, data):
        root = _template()
        path = root / "manifest.json"
        original = path.read_bytes()
        try:
            path.write_bytes(_mutate(original, data))
            read_corpus(root)
        except CorpusError:
            pass
        finally:
            path.write_bytes(original)


# ---------------------------------------------------------------------------
# verify_corpus
# ---------------------------------------------------------------------------


class TestVerify:
    def test_clean(self, corpus):
        report = verify_corpus(corpus[0], corpus[1])
        assert report.ok and report.checked == 3 and report.problems == ()
        assert str(report).endswith("3 cases, 0 problems")

    def test_every_kind_of_problem(self, corpus):
        root, cases = corpus
        path = _case_file(root, "rope.a")
        blob = bytearray(path.read_bytes())
        blob[-1] ^= 0x80
        path.write_bytes(bytes(blob))
        _case_file(root, "rope.b").unlink()
        (root / "cases" / "stray.safetensors").write_bytes(b"")
        (root / "notes.txt").write_text("")
        expected = [make_case("t5.c", family="t5", description="new text"), make_case("zz")]
        report = verify_corpus(root, expected)
        got = [(p.kind, p.case_id, p.file) for p in report.problems]
        assert got == [
            ("corrupt", "rope.a", "cases/rope.a.safetensors"),
            ("missing", "rope.b", "cases/rope.b.safetensors"),
            ("missing", "zz", None),
            ("extra", "rope.a", "cases/rope.a.safetensors"),
            ("extra", "rope.b", "cases/rope.b.safetensors"),
            ("stale", "t5.c", "cases/t5.c.safetensors"),
            ("extra", None, "cases/stray.safetensors"),
            ("extra", None, "notes.txt"),
        ]
        assert not report.ok
        assert "sha256" in report.problems[0].message
        assert report.of_kind("stale")[0].message == "case 't5.c' differs from the expected case in: description"
        assert "stale: case 't5.c'" in str(report)

    def test_stale_values(self, corpus):
        root, cases = corpus
        output = cases[1].outputs["output"]
        changed = make_case("rope.b", seed=1, outputs={"output": np.nextafter(output, np.inf)})
        [problem] = verify_corpus(root, [cases[0], changed, cases[2]]).problems
        assert (problem.kind, problem.case_id) == ("stale", "rope.b")
        # a hand-made case has no error model, so its outputs are compared bit for bit
        assert problem.message.startswith("case 'rope.b': outputs.output[")
        assert "exceeds the bound 0" in problem.message

    def test_without_expected_cases_only_files_are_checked(self, corpus):
        report = verify_corpus(corpus[0])
        assert report.ok

    def test_stale_versions(self, corpus, monkeypatch):
        monkeypatch.setattr(fmt, "__version__", "99.0")
        [problem] = verify_corpus(corpus[0], corpus[1]).problems
        assert (problem.kind, problem.case_id, problem.file) == ("stale", None, "manifest.json")
        assert problem.message == f"corpus was written for spec {SPEC_VERSION} by posref {__version__}; this is spec {SPEC_VERSION}, posref 99.0"

    def test_unreadable_manifest_raises(self, corpus):
        (corpus[0] / "manifest.json").write_text("{}")
        with pytest.raises(CorpusError, match=r"not a posref golden corpus manifest"):
            verify_corpus(corpus[0])
