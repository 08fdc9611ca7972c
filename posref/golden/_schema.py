"""The manifest schema and a small validator for the JSON Schema subset it uses.

:data:`MANIFEST_SCHEMA` is the single source of the schema; the file
``posref/golden/schema/manifest.schema.json`` is its JSON rendering
(:func:`schema_json`), kept for readers in other languages, and a test
checks that the two agree byte for byte.

:func:`schema_errors` implements the keywords the schema uses (``type``,
``enum``, ``const``, ``pattern``, ``minLength``, ``maxLength``, ``minimum``,
``minItems``, ``maxItems``, ``properties``, ``required``,
``additionalProperties``, ``propertyNames``, ``items``, ``$ref``) and
refuses a schema with any other keyword, so it cannot silently skip a rule.
Two choices make it slightly stricter than the JSON Schema standard:
``"integer"`` admits only JSON integers (not ``1.0``), and a pattern's
final ``$`` does not match before a trailing newline.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

__all__ = [
    "MANIFEST_SCHEMA",
    "MANIFEST_SCHEMA_V1",
    "READABLE_SCHEMA_VERSIONS",
    "schema_errors",
    "schema_json",
    "SCHEMA_VERSION",
    "CORPUS_FORMAT",
]

#: Version of the corpus layout and manifest schema that posref writes.  Version 2
#: added the ``generator`` record (provenance) and every case's ``budgets``.
SCHEMA_VERSION = 2
#: Value of the manifest's ``format`` field, which marks a posref corpus.
CORPUS_FORMAT = "posref-golden"

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
ID_PATTERN = r"^[a-z0-9_][a-z0-9_.-]{0,199}$"
DTYPE_NAMES = ["float64", "float32", "float16", "bfloat16", "int64", "int32", "bool"]
_DTYPE_ALT = "|".join(DTYPE_NAMES)
_SECTION_NAME = r"(inputs|outputs)\.[A-Za-z_][A-Za-z0-9_]*"
_BUDGET_DTYPES = ["float64", "float32", "float16", "bfloat16"]

#: JSON Schema (draft 2020-12) of ``manifest.json`` for :data:`SCHEMA_VERSION`,
#: the single source of ``posref/golden/schema/manifest.schema.json``.  It checks
#: the shape of the manifest; the rules it cannot express (ids unique and sorted,
#: file names, tensor names) are checked by the reader.
MANIFEST_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "urn:posref:golden:manifest:2",
    "title": "posref golden corpus manifest",
    "description": (
        "Index of a posref golden corpus: one entry per case, naming the case's safetensors file, "
        "its arrays with dtype, shape and sha256, and how to call the spec function."
    ),
    "type": "object",
    "additionalProperties": False,
    "required": ["format", "schema_version", "spec_version", "posref_version", "generator", "cases"],
    "properties": {
        "format": {"const": CORPUS_FORMAT},
        "schema_version": {"const": SCHEMA_VERSION},
        "spec_version": {"$ref": "#/$defs/version"},
        "posref_version": {"$ref": "#/$defs/version"},
        "generator": {
            "description": (
                "Provenance: the NumPy version of the process that wrote the corpus and the precision "
                "policy of the float64 outputs.  Informational: the values do not depend on them."
            ),
            "type": "object",
            "additionalProperties": False,
            "required": ["numpy_version", "precision"],
            "properties": {
                "numpy_version": {"$ref": "#/$defs/version"},
                "precision": {"type": "string", "minLength": 1, "maxLength": 500},
            },
        },
        "cases": {
            "description": "Sorted by id; ids are unique.",
            "type": "array",
            "items": {"$ref": "#/$defs/case"},
        },
    },
    "$defs": {
        "version": {"type": "string", "minLength": 1, "maxLength": 64},
        "sha256": {"type": "string", "pattern": r"^[0-9a-f]{64}$"},
        "dtype": {"enum": DTYPE_NAMES},
        "shape": {"type": "array", "maxItems": 32, "items": {"type": "integer", "minimum": 0}},
        "array": {
            "description": "One input or output; tensor is '<section>.<name>' in the case file.",
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "tensor", "dtype", "shape", "sha256"],
            "properties": {
                "name": {"type": "string", "pattern": NAME_PATTERN},
                "tensor": {"type": "string", "pattern": f"^{_SECTION_NAME}$"},
                "dtype": {"$ref": "#/$defs/dtype"},
                "shape": {"$ref": "#/$defs/shape"},
                "sha256": {"$ref": "#/$defs/sha256"},
            },
        },
        "rounded_array": {
            "description": "One array of a rounded variant; tensor is '<dtype>.<name>' in the case file.",
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "tensor", "dtype", "shape", "sha256"],
            "properties": {
                "name": {"type": "string", "pattern": f"^{_SECTION_NAME}$"},
                "tensor": {"type": "string", "pattern": f"^({_DTYPE_ALT})\\.{_SECTION_NAME}$"},
                "dtype": {"$ref": "#/$defs/dtype"},
                "shape": {"$ref": "#/$defs/shape"},
                "sha256": {"$ref": "#/$defs/sha256"},
            },
        },
        "budget_array": {
            "description": (
                "Per-element allowed absolute error of one output for one dtype under test; tensor is "
                "'budgets.<dtype>.<name>' in the case file, float32 (float64 only for a budget beyond the "
                "float32 range), shaped like the output; an element passes when |actual - expected| <= budget."
            ),
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "tensor", "dtype", "shape", "sha256"],
            "properties": {
                "name": {"type": "string", "pattern": NAME_PATTERN},
                "tensor": {
                    "type": "string",
                    "pattern": f"^budgets\\.({'|'.join(_BUDGET_DTYPES)})\\.[A-Za-z_][A-Za-z0-9_]*$",
                },
                "dtype": {"enum": ["float32", "float64"]},
                "shape": {"$ref": "#/$defs/shape"},
                "sha256": {"$ref": "#/$defs/sha256"},
            },
        },
        "case": {
            "type": "object",
            "additionalProperties": False,
            "required": [
                "id",
                "function",
                "family",
                "params",
                "inputs",
                "outputs",
                "rounded",
                "budgets",
                "tolerance",
                "expect_error",
                "error_match",
                "description",
                "seed",
                "file",
                "file_size",
                "file_sha256",
            ],
            "properties": {
                "id": {"type": "string", "pattern": ID_PATTERN},
                "function": {"type": "string", "pattern": NAME_PATTERN},
                "family": {"type": "string", "pattern": r"^[A-Za-z0-9_.-]{1,100}$"},
                "params": {"type": "object", "propertyNames": {"pattern": NAME_PATTERN}},
                "inputs": {"type": "array", "items": {"$ref": "#/$defs/array"}},
                "outputs": {"type": "array", "items": {"$ref": "#/$defs/array"}},
                "rounded": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["dtype", "arrays"],
                        "properties": {
                            "dtype": {"$ref": "#/$defs/dtype"},
                            "arrays": {"type": "array", "items": {"$ref": "#/$defs/rounded_array"}},
                        },
                    },
                },
                "budgets": {
                    "description": (
                        "For each dtype an implementation can be checked in: the budget of every output, "
                        "computed by posref's error model from the inputs that dtype receives."
                    ),
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["dtype", "arrays"],
                        "properties": {
                            "dtype": {"enum": _BUDGET_DTYPES},
                            "arrays": {"type": "array", "items": {"$ref": "#/$defs/budget_array"}},
                        },
                    },
                },
                "tolerance": {"type": "string", "minLength": 1, "maxLength": 100},
                "expect_error": {"enum": [None, "ValueError", "TypeError"]},
                "error_match": {"type": ["string", "null"]},
                "description": {"type": "string"},
                "seed": {"type": "integer", "minimum": 0},
                "file": {"type": "string", "pattern": r"^cases/[a-z0-9_][a-z0-9_.-]{0,199}(@[0-9a-f]{16})?\.safetensors$"},
                "file_size": {"type": "integer", "minimum": 8},
                "file_sha256": {"$ref": "#/$defs/sha256"},
            },
        },
    },
}



def _version_1(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema of version 1 manifests: no ``generator``, no ``budgets``."""
    old = json.loads(json.dumps(schema))
    old["$id"] = "urn:posref:golden:manifest:1"
    old["properties"]["schema_version"] = {"const": 1}
    del old["properties"]["generator"]
    old["required"].remove("generator")
    case = old["$defs"]["case"]
    del case["properties"]["budgets"]
    case["required"].remove("budgets")
    del old["$defs"]["budget_array"]
    return old


#: The schema of the manifests posref 0.1 wrote (``schema_version`` 1); still readable.
MANIFEST_SCHEMA_V1: dict[str, Any] = _version_1(MANIFEST_SCHEMA)
#: Schema versions the reader accepts, with their schemas.
READABLE_SCHEMA_VERSIONS: dict[int, dict[str, Any]] = {1: MANIFEST_SCHEMA_V1, SCHEMA_VERSION: MANIFEST_SCHEMA}

_ANNOTATIONS = frozenset({"$schema", "$id", "$defs", "title", "description", "$comment"})
_KEYWORDS = frozenset(
    {
        "type",
        "enum",
        "const",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "minItems",
        "maxItems",
        "properties",
        "required",
        "additionalProperties",
        "propertyNames",
        "items",
        "$ref",
    }
)

_TYPE_WORDS = {
    "object": "an object",
    "array": "an array",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "null": "null",
}


def schema_json() -> str:
    """The schema as the text of ``manifest.schema.json``."""
    return json.dumps(MANIFEST_SCHEMA, indent=2, sort_keys=True, ensure_ascii=True) + "\n"


def _is_type(value: Any, name: str) -> bool:
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "string":
        return isinstance(value, str)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    if isinstance(value, bool):
        return False
    if name == "integer":
        return isinstance(value, int)
    if name == "number":
        return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))
    raise ValueError(f"schema uses unknown type {name!r}")


def _json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON Schema defines it: true is not 1, 1 equals 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _pattern_matches(pattern: str, text: str) -> bool:
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.search(pattern, text) is not None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _resolve(root: dict[str, Any], ref: str) -> dict[str, Any]:
    if not ref.startswith("#/"):
        raise ValueError(f"schema uses an external $ref {ref!r}")
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def schema_errors(instance: Any, schema: dict[str, Any] | None = None, *, where: str = "manifest") -> Iterator[str]:
    """Yield one message per violation of ``schema`` (default: the manifest schema)."""
    root = MANIFEST_SCHEMA if schema is None else schema
    yield from _errors(instance, root, root, where)


def _errors(value: Any, schema: dict[str, Any], root: dict[str, Any], where: str) -> Iterator[str]:
    unknown = set(schema) - _KEYWORDS - _ANNOTATIONS
    if unknown:
        raise ValueError(f"schema at {where} uses unsupported keywords {sorted(unknown)}")
    if "$ref" in schema:
        yield from _errors(value, _resolve(root, schema["$ref"]), root, where)
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(value, t) for t in types):
            wanted = " or ".join(_TYPE_WORDS[t] for t in types)
            yield f"{where} must be {wanted}, got {_short(value)}"
            return
    if "const" in schema and not _json_equal(value, schema["const"]):
        yield f"{where} must be {schema['const']!r}, got {_short(value)}"
    if "enum" in schema and not any(_json_equal(value, option) for option in schema["enum"]):
        yield f"{where} must be one of {', '.join(repr(o) for o in schema['enum'])}, got {_short(value)}"
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            yield f"{where} must have at least {schema['minLength']} characters, got {_short(value)}"
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            yield f"{where} must have at most {schema['maxLength']} characters, got {_short(value)}"
        if "pattern" in schema and not _pattern_matches(schema["pattern"], value):
            yield f"{where} must match {schema['pattern']}, got {_short(value)}"
    if _is_type(value, "number") and "minimum" in schema and value < schema["minimum"]:
        yield f"{where} must be >= {schema['minimum']}, got {_short(value)}"
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            yield f"{where} must have at least {schema['minItems']} items, got {len(value)}"
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            yield f"{where} must have at most {schema['maxItems']} items, got {len(value)}"
        if "items" in schema:
            for index, item in enumerate(value):
                yield from _errors(item, schema["items"], root, f"{where}[{index}]")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                yield f"{where} is missing the required key {key!r}"
        if "propertyNames" in schema:
            for key in value:
                yield from _errors(key, schema["propertyNames"], root, f"key {key!r} of {where}")
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in properties:
                yield from _errors(item, properties[key], root, f"{where}.{key}")
            elif extra is False:
                yield f"{where} has the unknown key {key!r}"
            elif isinstance(extra, dict):
                yield from _errors(item, extra, root, f"{where}.{key}")
