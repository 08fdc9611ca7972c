"""The declarative case registry and the builder that turns a case into data.

A case is data, not code: the spec function's name, its keyword parameters,
and a description of every positional input (:class:`Normal`,
:class:`Uniform`, :class:`Arange`, :class:`Integers`, :class:`Values`).  The
builder draws random inputs from a generator seeded by the case id alone, so
adding, removing or reordering cases never changes another case's bytes.
"""

from __future__ import annotations

import hashlib
import inspect
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import ml_dtypes
import numpy as np

from posref import SPEC_FUNCTIONS, _arith, spec_functions
from posref.golden.case import LOW_PRECISION_DTYPES, GoldenCase
from posref.tolerance import TOLERANCE_CLASSES, CaseView, budgets, round_budget

__all__ = [
    "Arange",
    "CaseSpec",
    "Integers",
    "Normal",
    "Uniform",
    "Values",
    "build_case",
    "build_cases",
    "call_with",
    "case_arrays",
    "case_budgets",
    "case_seed",
    "float64_inputs",
    "round_to",
]

_ID_PATTERN = re.compile(r"^[a-z0-9_][a-z0-9_.-]*$")


# -- input descriptions --------------------------------------------------------------------


@dataclass(frozen=True)
class Normal:
    """Standard normal float64 samples of the given shape, times ``scale``."""

    shape: tuple[int, ...]
    scale: float = 1.0

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        return self.scale * rng.standard_normal(self.shape)


@dataclass(frozen=True)
class Uniform:
    """Uniform float64 samples in ``[low, high)``."""

    shape: tuple[int, ...]
    low: float = 0.0
    high: float = 1.0

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(self.low, self.high, size=self.shape)


@dataclass(frozen=True)
class Integers:
    """Uniform int64 samples in ``[low, high)``, optionally sorted along the last axis."""

    shape: tuple[int, ...]
    low: int
    high: int
    sort: bool = False

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        values = rng.integers(self.low, self.high, size=self.shape, dtype=np.int64)
        return np.sort(values, axis=-1) if self.sort else values


@dataclass(frozen=True)
class Arange:
    """The int64 integers ``start, start + 1, ..., stop - 1``."""

    start: int
    stop: int

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        return np.arange(self.start, self.stop, dtype=np.int64)


@dataclass(frozen=True)
class Values:
    """Literal values, stored with the given dtype (``"float64"`` or ``"int64"``)."""

    values: Any
    dtype: str = "float64"

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        return np.array(self.values, dtype=self.dtype)


InputDescription = Normal | Uniform | Integers | Arange | Values


@dataclass(frozen=True)
class CaseSpec:
    """One named case: the function, its parameters and how its inputs are made."""

    id: str
    function: str
    inputs: Mapping[str, InputDescription]
    params: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    tolerance: str = "default"
    expect_error: str | None = None
    error_match: str | None = None


# -- building -----------------------------------------------------------------------------


def case_seed(case_id: str) -> int:
    """Seed of a case's generator: the first 8 bytes of sha256(id), as an integer."""
    return int.from_bytes(hashlib.sha256(case_id.encode("utf-8")).digest()[:8], "little")


_ML_DTYPES = {"bfloat16": ml_dtypes.bfloat16}


def round_to(array: np.ndarray, dtype: str) -> np.ndarray:
    """Round a float64 array to ``dtype`` (round to nearest even) and return it in that dtype."""
    with np.errstate(over="ignore"):  # values beyond the dtype's range become inf, as in a cast
        return np.asarray(array, dtype=np.float64).astype(_ML_DTYPES.get(dtype, dtype))


def case_arrays(case: GoldenCase, dtype: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None:
    """Inputs as the implementation under test receives them, and the expected outputs.

    Floating inputs come rounded to ``dtype`` (and stored in it); integer
    inputs are unchanged.  The expected outputs are the float64 spec on those
    rounded inputs.  Returns None when the inputs do not fit ``dtype``.
    """
    if case.expect_error is not None:  # nothing to compare: the inputs in the dtype, no outputs
        return {n: (round_to(a, dtype) if a.dtype.kind == "f" and dtype != "float64" else a)
                for n, a in case.inputs.items()}, {}
    if dtype == "float64" or not any(a.dtype.kind == "f" for a in case.inputs.values()):
        inputs = {n: (a.astype(np.float64) if a.dtype.kind == "f" else a) for n, a in case.inputs.items()}
        if dtype != "float64":
            inputs = {n: (round_to(a, dtype) if a.dtype.kind == "f" else a) for n, a in inputs.items()}
        return inputs, dict(case.outputs)
    variant = case.rounded.get(dtype)
    if variant is None:
        return None
    inputs = {n: variant.get(f"inputs.{n}", a) for n, a in case.inputs.items()}
    expected = {key.removeprefix("outputs."): a for key, a in variant.items() if key.startswith("outputs.")}
    return inputs, expected


def float64_inputs(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Floating inputs (of any dtype, bfloat16 included) as float64; integer inputs unchanged."""
    return {n: (a.astype(np.float64) if a.dtype.kind == "f" or a.dtype.name == "bfloat16" else a)
            for n, a in inputs.items()}


def _outputs(result: Any) -> dict[str, np.ndarray]:
    if isinstance(result, tuple):
        return {f"output_{i}": _as_output(r) for i, r in enumerate(result)}
    return {"output": _as_output(result)}


def _as_output(value: Any) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind in "iub":
        return array.astype(np.int64)
    return array.astype(np.float64)


def call_with(function, inputs: Mapping[str, np.ndarray], params: Mapping[str, Any], *, like=None) -> Any:
    """Call ``function`` the way every case is called.

    Positional-only parameters are filled in signature order from ``inputs``
    (arrays) or, for positional scalars such as ``dim``, from ``params``;
    every other input and parameter is passed by keyword.  ``like`` (default
    ``function`` itself) is the function whose signature decides this: an
    adapter is called the way the spec function of the same name is.
    """
    params = dict(params)
    remaining = dict(inputs)
    positional = []
    for parameter in inspect.signature(like or function).parameters.values():
        if parameter.kind is not inspect.Parameter.POSITIONAL_ONLY:
            break
        if parameter.name in remaining:
            positional.append(remaining.pop(parameter.name))
        elif parameter.name in params:
            positional.append(params.pop(parameter.name))
        else:
            break
    # arrays that are options (an attention bias, say) go by keyword
    return function(*positional, **remaining, **params)


def build_case(spec: CaseSpec, dtypes: Sequence[str] = LOW_PRECISION_DTYPES) -> GoldenCase:
    """Draw a case's inputs, run the spec function, and return the :class:`GoldenCase`.

    For every dtype in ``dtypes`` the floating inputs are rounded to it and
    the spec is evaluated again, in float64, on the rounded values.  The spec
    runs in posref's precise arithmetic (``posref._arith.precise``): its elementary functions are
    correctly rounded and its contractions exactly summed, so the outputs are
    the same bytes on every CPU, BLAS and NumPy version.
    """
    with _arith.precise():
        return _build_case(spec, dtypes)


def _build_case(spec: CaseSpec, dtypes: Sequence[str]) -> GoldenCase:
    if not _ID_PATTERN.match(spec.id):
        raise ValueError(f"case id must match {_ID_PATTERN.pattern}, got {spec.id!r}")
    if spec.function not in SPEC_FUNCTIONS:
        spec_functions()  # import every module so the catalogue is complete
    if spec.function not in SPEC_FUNCTIONS:
        raise ValueError(f"case {spec.id!r} names an unknown spec function {spec.function!r}")
    entry = SPEC_FUNCTIONS[spec.function]
    seed = case_seed(spec.id)
    rng = np.random.default_rng(seed)
    inputs = {name: description.draw(rng) for name, description in spec.inputs.items()}

    if spec.expect_error is not None:
        try:
            call_with(entry.function, inputs, spec.params)
        except (ValueError, TypeError) as exc:
            if type(exc).__name__ != spec.expect_error or (spec.error_match or "") not in str(exc):
                raise ValueError(
                    f"case {spec.id!r}: expected {spec.expect_error} mentioning {spec.error_match!r}, "
                    f"the spec raised {type(exc).__name__}: {exc}"
                ) from exc
        else:
            raise ValueError(f"case {spec.id!r}: expected {spec.expect_error}, the spec raised nothing")
        outputs: dict[str, np.ndarray] = {}
        rounded: dict[str, dict[str, np.ndarray]] = {}
    else:
        outputs = _outputs(call_with(entry.function, inputs, spec.params))
        rounded = {}
        has_float_input = any(a.dtype.kind == "f" for a in inputs.values())
        for dtype in dtypes if has_float_input else ():
            low = {n: round_to(a, dtype) if a.dtype.kind == "f" else a for n, a in inputs.items()}
            if not all(np.all(np.isfinite(a.astype(np.float64))) for a in low.values()):
                continue  # the inputs do not fit this dtype: the case has no such variant
            as_f64 = {n: a.astype(np.float64) if a.dtype.kind == "f" or a.dtype.name == "bfloat16" else a
                      for n, a in low.items()}
            expected = _outputs(call_with(entry.function, as_f64, spec.params))
            variant = {f"inputs.{n}": a for n, a in low.items() if inputs[n].dtype.kind == "f"}
            variant.update({f"outputs.{n}": a for n, a in expected.items()})
            rounded[dtype] = variant

    case = GoldenCase(
        id=spec.id,
        function=spec.function,
        family=entry.family,
        params=dict(spec.params),
        inputs=inputs,
        outputs=outputs,
        rounded=rounded,
        tolerance=spec.tolerance,
        expect_error=spec.expect_error,
        error_match=spec.error_match,
        description=spec.description,
        seed=seed,
    )
    return replace(case, budgets=case_budgets(case, dtypes)) if spec.expect_error is None else case


def _stored_budget(budget: np.ndarray) -> np.ndarray:
    """float32 when every value is a float32 number (budgets are rounded to float32), else float64."""
    as32 = budget.astype(np.float32)
    return np.array(as32) if np.array_equal(as32.astype(np.float64), budget, equal_nan=True) else np.array(budget)


def case_budgets(case: GoldenCase, dtypes: Sequence[str] = LOW_PRECISION_DTYPES) -> dict[str, dict[str, np.ndarray]]:
    """The error-model budget of every output, for each dtype the case can be checked in.

    For each dtype, the budgets are those ``posref check`` uses (rounded up
    to float32 and stored so when they fit, see
    :func:`posref.tolerance.round_budget`): the
    tolerance class of the case applied to the inputs that dtype receives
    (rounded to it) and the expected outputs for those inputs, for float64
    and each of ``dtypes``.  Dtypes whose inputs do not fit are left out.
    """
    if case.tolerance not in TOLERANCE_CLASSES:  # a hand-made case without a model: nothing to store
        return {}
    out = {}
    for dtype in ("float64", *dtypes):
        arrays = case_arrays(case, dtype)
        if arrays is None:
            continue
        inputs, expected = arrays
        view = CaseView(case.function, case.params, float64_inputs(inputs), expected)
        out[dtype] = {name: _stored_budget(np.broadcast_to(round_budget(b), expected[name].shape))
                      for name, b in budgets(view, case.tolerance, dtype).items()}
    return {dtype: out[dtype] for dtype in ("float64",) + LOW_PRECISION_DTYPES if dtype in out}


def build_cases(
    specs: Iterable[CaseSpec],
    *,
    families: Sequence[str] | None = None,
    dtypes: Sequence[str] = LOW_PRECISION_DTYPES,
    progress=None,
) -> list[GoldenCase]:
    """Build every case (optionally only some families), sorted by id.

    ``progress``, if given, is called as ``progress(done, total, case_id)``.
    """
    specs = list(specs)
    ids = [s.id for s in specs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"duplicate case ids: {', '.join(duplicates)}")
    if families is not None:
        known = {f.family for f in spec_functions()}
        unknown = sorted(set(families) - known)
        if unknown:
            raise ValueError(f"families must be among {', '.join(sorted(known))}, got unknown {', '.join(unknown)}")
        specs = [s for s in specs if SPEC_FUNCTIONS[s.function].family in families]
    unknown_dtypes = sorted(set(dtypes) - set(LOW_PRECISION_DTYPES))
    if unknown_dtypes:
        raise ValueError(f"dtypes must be among {', '.join(LOW_PRECISION_DTYPES)}, got {', '.join(unknown_dtypes)}")
    specs.sort(key=lambda s: s.id)
    built = []
    for done, spec in enumerate(specs, 1):
        built.append(build_case(spec, dtypes))
        if progress is not None:
            progress(done, len(specs), spec.id)
    return built
