"""Convention diagnosis: which variant of the spec does a failing implementation compute?

When a case fails, the float64 spec is evaluated again under the function's
other named conventions (every keyword option with a finite set of values:
``layout``, ``freq_denominator``, ``rule``, ``form``, ``centering``,
``truncate``, ...) and under common slips (positions off by one, another
common base, a different rotary width, the relative position negated,
sine and cosine swapped, the rotation reversed, another ALiBi slope rule,
another RoPE-scaling rule in place of the one asked for, an option
ignored, ...).  Each variant gets its own error budget from the tolerance
model and is judged exactly as the runner judges the spec; the variant
that matches with the smallest budget share is reported, for example
``matches the spec with layout='interleaved' (share 0.31)``.  Pairs of two
variants are tried when no single one matches.

A diagnosis is a hint, not a verdict: it names a variant that reproduces
the output within budget on this case's inputs.

:func:`identify` runs every golden case of every function an adapter
implements and sums the diagnoses up per function as a
:class:`Fingerprint`; :func:`run_identify` is the command-line entry
(``posref identify``).
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import json
import math
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from posref import SPEC_FUNCTIONS, _arith, spec_functions
from posref.conformance.compare import compare
from posref.golden.case import GoldenCase
from posref.golden.registry import call_with, round_to
from posref.tolerance import UNIT_ROUNDOFF, CaseView, budgets, round_budget

__all__ = ["COMMON_BASES", "Diagnosis", "Fingerprint", "Variant", "diagnose", "format_fingerprints", "identify",
           "run_identify", "variants"]

#: Bases tried in place of the case's ``base`` (RoPE, sinusoids, ...).
COMMON_BASES = (10.0, 100.0, 1_000.0, 10_000.0, 50_000.0, 100_000.0, 500_000.0, 1_000_000.0, 10_000_000.0)
#: Outputs larger than this (elements, all outputs together) are not diagnosed.
MAX_ELEMENTS = 1 << 20
#: Most variants evaluated for one case (single ones first, then pairs).
MAX_VARIANTS = 400
#: Most seconds spent on one case.
TIME_LIMIT = 30.0

#: Module constants listing the allowed values of an option, by option name.
_CHOICE_CONSTANTS = {
    "layout": ("LAYOUTS", "ROTARY_LAYOUTS"),
    "rotated_slice": ("ROTATED_SLICES",),
    "freq_denominator": ("FREQ_DENOMINATORS",),
    "rule": ("SLOPE_RULES",),
    "form": ("BIAS_FORMS",),
    "axis_order": ("AXIS_ORDERS",),
    "grouping": ("SINCOS_GROUPINGS",),
    "frequencies": ("AXIAL_FREQUENCIES",),
    "centering": ("CENTERINGS",),
    "high_limit": ("YARN_HIGH_LIMITS",),
    "future_keys": ("FUTURE_KEYS",),
}
#: Numeric options whose documented values form a finite set.
_NUMERIC_CHOICES = {"pad_sin": (1.0, 0.0), "first_frequency": (1, 0)}
#: Options that change what is returned, not how it is computed.
_NOT_CONVENTIONS = {"fully_masked", "return_weights"}
#: Integer inputs that hold positions.
_POSITION_INPUTS = ("positions", "query_positions", "key_positions", "positions_2d")
#: Functions whose last two output axes are (query, key): the relative position negated swaps them.
_QUERY_KEY_OUTPUTS = ("t5_relative_bias", "shaw_relative_index", "alibi_bias", "kerple_log_bias",
                      "kerple_power_bias")
#: Functions whose relative-position input can be negated.
_RELATIVE_INPUTS = {"t5_relative_bucket": "relative_position", "deberta_log_bucket": "relative_position"}
#: Other RoPE-scaling rules tried in place of the one asked for: (function, extra parameters).
_RULES = {
    "ntk_scaled_frequencies": ("ntk_fixed_frequencies", "linear_scaled_frequencies", "rope_frequencies"),
    "ntk_fixed_frequencies": ("ntk_scaled_frequencies", "linear_scaled_frequencies", "rope_frequencies"),
    "dynamic_ntk_frequencies": ("ntk_scaled_frequencies", "ntk_fixed_frequencies", "qwen_dynamic_ntk_frequencies",
                                "dynamic_linear_frequencies", "rope_frequencies"),
    "qwen_dynamic_ntk_frequencies": ("dynamic_ntk_frequencies", "rope_frequencies"),
    "dynamic_linear_frequencies": ("linear_scaled_frequencies", "dynamic_ntk_frequencies", "rope_frequencies"),
    "linear_scaled_frequencies": ("ntk_scaled_frequencies", "rope_frequencies"),
    "yarn_frequencies": ("linear_scaled_frequencies", "ntk_scaled_frequencies", "rope_frequencies"),
    "llama3_scaled_frequencies": ("linear_scaled_frequencies", "rope_frequencies"),
    "longrope_attention_factor": ("yarn_attention_factor",),
}


# -- variants -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Call:
    """One evaluation of the spec: the function, its parameters and its inputs."""

    function: str
    params: Mapping[str, Any]
    inputs: Mapping[str, np.ndarray]


def _same(call: _Call) -> _Call:
    return call


@dataclass(frozen=True)
class Variant:
    """One way of evaluating the spec other than the case asks.

    Attributes
    ----------
    label : str
        What it is, in words (``"layout='concat'"``, ``"positions + 1"``).
    overrides : dict
        Machine-readable: option name to value for a changed option;
        ``"input.<name>"`` to a description for a changed input;
        ``"output"`` for a rearranged output; ``"function"`` for another
        spec function computed instead.
    kind : str
        ``"convention"`` (another named value of an option) or ``"slip"``.
    change : callable
        Maps the case's call (function, parameters, inputs) to the call evaluated.
    rearrange : callable or None
        Maps the outputs (and their budgets) of that call, with the call, to
        what is compared (sine and cosine swapped, query and key axes swapped).
    own_budget : bool
        Whether the budgets come from the call evaluated (else from the case's call).
    touches : frozenset of str
        What it changes; two variants form a pair only when these do not meet.
    """

    label: str
    overrides: Mapping[str, Any]
    kind: str
    change: Callable[[_Call], _Call] = field(default=_same, repr=False, compare=False)
    rearrange: Callable[[dict, _Call], dict] | None = field(default=None, repr=False, compare=False)
    own_budget: bool = field(default=True, repr=False, compare=False)
    touches: frozenset = field(default=frozenset(), repr=False, compare=False)

    def combines_with(self, other: Variant) -> bool:
        """Whether the two change different things, so that both can apply at once."""
        return self.touches.isdisjoint(other.touches) and "function" not in self.touches | other.touches

    def __add__(self, other: Variant) -> Variant:
        return Variant(
            label=f"{self.label}, {other.label}",
            overrides={**self.overrides, **other.overrides},
            kind="convention" if self.kind == other.kind == "convention" else "slip",
            change=lambda call: other.change(self.change(call)),
            rearrange=self.rearrange or other.rearrange,
            own_budget=self.own_budget and other.own_budget,
            touches=self.touches | other.touches,
        )


def _spec(name: str):
    if name not in SPEC_FUNCTIONS:
        spec_functions()
    return SPEC_FUNCTIONS[name].function


def _keyword_options(function: str) -> dict[str, inspect.Parameter]:
    return {p.name: p for p in inspect.signature(_spec(function)).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}


def _choices(function: str, parameter: inspect.Parameter) -> tuple | None:
    """The finite set of values an option allows, or None."""
    if parameter.name in _NOT_CONVENTIONS:
        return None
    if isinstance(parameter.default, bool):
        return (True, False)
    if parameter.name in _NUMERIC_CHOICES:
        return _NUMERIC_CHOICES[parameter.name]
    module = sys.modules[_spec(function).__module__]
    for constant in _CHOICE_CONSTANTS.get(parameter.name, ()):
        if hasattr(module, constant):
            return tuple(getattr(module, constant))
    return None


def _value(call: _Call, name: str) -> Any:
    """An option's value in a call: given, or the spec's default."""
    if name in call.params:
        return call.params[name]
    parameter = _keyword_options(call.function).get(name)
    return None if parameter is None or parameter.default is inspect.Parameter.empty else parameter.default


def _with_params(label: str, kind: str, **params) -> Variant:
    return Variant(label, dict(params), kind, lambda call: replace(call, params={**call.params, **params}),
                   touches=frozenset(params))


def _with_input(name: str, description: str, label: str, transform) -> Variant:
    def change(call):
        return replace(call, inputs={**call.inputs, name: transform(call.inputs[name])})

    return Variant(label, {f"input.{name}": description}, "slip", change, touches=frozenset({name}))


def _option_values(call: _Call) -> list[Variant]:
    """Every other allowed value of every finite-valued option, and every option left at its default."""
    out = []
    for name, parameter in _keyword_options(call.function).items():
        choices = _choices(call.function, parameter)
        current = _value(call, name)
        if choices is not None:
            out += [_with_params(f"{name}={v!r}", "convention", **{name: v}) for v in choices
                    if not (v == current and type(v) is type(current))]
        elif (name in call.params and parameter.default is not inspect.Parameter.empty
              and name not in _NOT_CONVENTIONS and call.params[name] != parameter.default):
            out.append(_with_params(f"{name}={parameter.default!r} ({name} ignored)", "slip",
                                    **{name: parameter.default}))
    return out


def _base_slips(call: _Call) -> list[Variant]:
    if "base" not in _keyword_options(call.function):
        return []
    current = float(_value(call, "base"))
    return [_with_params(f"base={b!r}", "slip", base=b) for b in COMMON_BASES if b != current]


def _position_slips(call: _Call, dtype: str) -> list[Variant]:
    out = []
    for name in _POSITION_INPUTS:
        array = call.inputs.get(name)
        if array is None or np.asarray(array).dtype.kind not in "iu":
            continue
        for step in (1, -1):
            sign = "+" if step > 0 else "-"
            out.append(_with_input(name, f"{sign}1", f"{name} {sign} 1", lambda a, s=step: np.asarray(a) + s))
        bits = {"bfloat16": 8, "float16": 11, "float32": 24}.get(dtype)
        if bits is not None and np.max(np.abs(array), initial=0) > 2**bits:
            out.append(_with_input(name, f"rounded to {dtype}", f"{name} rounded to {dtype}",
                                   lambda a: round_to(np.asarray(a), dtype).astype(np.float64)))
    for name in ("sequence_length",):
        if isinstance(call.params.get(name), int):
            out += [_with_params(f"{name}={call.params[name] + s}", "slip", **{name: call.params[name] + s})
                    for s in (1, -1)]
    return out


def _rotary_slips(call: _Call) -> list[Variant]:
    if call.function != "apply_rope":
        return []
    width = int(np.shape(call.inputs["x"])[-1])
    current = call.params.get("rotary_dim")
    widths = [width // 2, width // 4] if current in (None, width) else [None, 2 * current, current // 2]
    return [_with_params(f"rotary_dim={r!r}", "slip", rotary_dim=r) for r in widths
            if r != current and (r is None or (r > 0 and r % 2 == 0 and r <= width))]


def _swap_query_key(outputs: dict, call: _Call) -> dict:
    return {name: np.swapaxes(a, -1, -2) for name, a in outputs.items()}


def _relative_slips(call: _Call) -> list[Variant]:
    label = "relative position negated (query - key for key - query)"
    if call.function in _QUERY_KEY_OUTPUTS:
        def change(c):
            inputs = dict(c.inputs)
            inputs["query_positions"], inputs["key_positions"] = c.inputs["key_positions"], c.inputs["query_positions"]
            return replace(c, inputs=inputs)

        return [Variant(label, {"relative_position": "negated"}, "slip", change, _swap_query_key,
                        touches=frozenset({"query_positions", "key_positions", "output"}))]
    if call.function == "shaw_relative_embeddings":  # row 2k - i holds the negated distance of row i
        return [Variant(label, {"relative_position": "negated"}, "slip",
                        lambda c: replace(c, inputs={**c.inputs, "table": np.asarray(c.inputs["table"])[::-1]}),
                        touches=frozenset({"table"}))]
    name = _RELATIVE_INPUTS.get(call.function)
    if name is None:
        return []
    return [Variant(label, {"relative_position": "negated"}, "slip",
                    lambda c: replace(c, inputs={**c.inputs, name: -np.asarray(c.inputs[name])}),
                    touches=frozenset({name}))]


def _swap_halves(outputs: dict, call: _Call) -> dict:
    return {n: np.concatenate([a[..., a.shape[-1] // 2:], a[..., : a.shape[-1] // 2]], axis=-1)
            for n, a in outputs.items()}


def _swap_pairs(outputs: dict, call: _Call) -> dict:
    out = {}
    for n, a in outputs.items():
        b = np.array(a)
        b[..., 0::2], b[..., 1::2] = a[..., 1::2], a[..., 0::2]
        out[n] = b
    return out


def _sin_cos_slips(call: _Call) -> list[Variant]:
    label, overrides, touches = "sine and cosine swapped", {"output": "sin_cos_swapped"}, frozenset({"output"})
    if call.function == "sinusoidal_encoding":
        def swap(outputs, c):  # the layout of the call evaluated, which a paired variant may change
            return (_swap_pairs if _value(c, "layout") == "interleaved" else _swap_halves)(outputs, c)

        return [Variant(label, overrides, "slip", rearrange=swap, touches=touches)]
    if call.function == "transformer_xl_relative_encoding":
        return [Variant(label, overrides, "slip", rearrange=_swap_halves, touches=touches)]
    if call.function == "rope_cos_sin":
        return [Variant(label, overrides, "slip", touches=touches,
                        rearrange=lambda o, c: {"output_0": o["output_1"], "output_1": o["output_0"]})]
    return []


def _reversed_rotation(call: _Call) -> list[Variant]:
    label, overrides = "rotation by minus the angle (sine sign flipped)", {"output": "rotation_reversed"}
    if call.function == "apply_rotary":
        return [Variant(label, overrides, "slip", touches=frozenset({"angles"}),
                        change=lambda c: replace(c, inputs={**c.inputs, "angles": -np.asarray(c.inputs["angles"])}))]
    if call.function != "apply_rope":
        return []

    def change(c):
        width = int(np.shape(c.inputs["x"])[-1])
        if _value(c, "rotary_dim") not in (None, width):
            raise ValueError("only a full rotary width is reversed")
        positions = np.asarray(c.inputs["positions"], dtype=np.float64) + float(_value(c, "position_offset"))
        angles = _spec("rope_angles")(positions, width, base=_value(c, "base"))
        return _Call("apply_rotary", {"layout": _value(c, "layout")},
                     {"x": c.inputs["x"], "angles": -angles})

    return [Variant(label, overrides, "slip", change, own_budget=False, touches=frozenset({"output", "rotary_dim"}))]


def _geometric_slopes(num_heads: int, max_bias: float) -> np.ndarray:
    """:math:`2^{-Bk/n}`, k = 1..n: the power-of-two formula applied to any head count."""
    n = 1 << (num_heads - 1).bit_length()  # the spec's geometric series of n heads, stretched to num_heads
    return _spec("alibi_slopes")(n, max_bias=max_bias * n / num_heads)[:num_heads]


def _slope_slips(call: _Call) -> list[Variant]:
    """ALiBi's geometric series over every head, where the paper mixes two power-of-two series."""
    label = "geometric slopes 2**(-max_bias * k / num_heads) for a head count that is not a power of two"
    if call.function == "alibi_slopes":
        heads = int(call.params["num_heads"])
        if heads & (heads - 1) == 0:
            return []
        n = 1 << (heads - 1).bit_length()

        def change(c):
            return _Call("alibi_slopes", {"num_heads": n, "max_bias": float(_value(c, "max_bias")) * n / heads},
                         c.inputs)

        return [Variant(label, {"rule": "geometric"}, "slip", change,
                        rearrange=lambda o, c: {k: a[:heads] for k, a in o.items()}, touches=frozenset({"rule"}))]
    if call.function == "alibi_bias":
        heads = int(np.shape(call.inputs["slopes"])[0])
        if heads & (heads - 1) == 0:
            return []
        return [_with_input("slopes", "geometric", label, lambda a: _geometric_slopes(heads, 8.0))]
    return []


def _rule_slips(call: _Call) -> list[Variant]:
    out = []
    own = inspect.signature(_spec(call.function)).parameters
    for function in _RULES.get(call.function, ()):
        target = inspect.signature(_spec(function)).parameters.values()
        params = {p.name: call.params.get(p.name, own[p.name].default) for p in target if p.name in own}
        params = {k: v for k, v in params.items() if v is not inspect.Parameter.empty}
        if any(p.default is inspect.Parameter.empty and p.name not in params for p in target):
            continue  # the other rule needs a number this case does not have
        out.append(Variant(f"{function} instead of {call.function}", {"function": function, **params}, "slip",
                           lambda c, f=function, p=params: _Call(f, p, c.inputs), touches=frozenset({"function"})))
    s = call.params.get("scaling_factor")
    if call.function in ("ntk_scaled_frequencies", "ntk_fixed_frequencies") and s is not None:
        base = float(_value(call, "base"))  # the base times s, without NTK's exponent d / (d - 2)
        out.append(Variant(f"rope_frequencies with base={base * s!r} (base times the factor)",
                           {"function": "rope_frequencies", "dim": call.params["dim"], "base": base * s}, "slip",
                           lambda c: _Call("rope_frequencies", {"dim": c.params["dim"], "base": base * s}, c.inputs),
                           touches=frozenset({"function"})))
    l0 = call.params.get("original_max_position_embeddings")
    if call.function == "yarn_frequencies" and s is not None and l0 is not None:
        length = int(round(l0 * s))
        out.append(_with_params(f"original_max_position_embeddings={length} (the extended length)", "slip",
                                original_max_position_embeddings=length))
    if call.function == "llama3_scaled_frequencies":
        low, high = _value(call, "low_freq_factor"), _value(call, "high_freq_factor")
        if low != high:
            out.append(_with_params("low_freq_factor and high_freq_factor swapped", "slip",
                                    low_freq_factor=high, high_freq_factor=low))
    if call.function == "longrope_frequencies" and l0 is not None:
        out += [_with_params(f"sequence_length={n} (the {word} factors always)", "slip", sequence_length=n)
                for n, word in ((l0, "short"), (l0 + 1, "long")) if n != call.params.get("sequence_length")]
    return out


def variants(case: GoldenCase, dtype: str = "float32") -> list[Variant]:
    """The single variants tried for ``case``: named conventions first, then slips.

    Parameters
    ----------
    case : GoldenCase
        A valid case (no ``expect_error``).
    dtype : str
        The dtype under test (positions rounded to it are a slip in 16 bits).

    Returns
    -------
    list of Variant
    """
    _check_case(case)
    _check_dtype(dtype)
    call = _Call(case.function, dict(case.params), dict(case.inputs))
    found = (_option_values(call) + _base_slips(call) + _position_slips(call, dtype) + _rotary_slips(call)
             + _relative_slips(call) + _sin_cos_slips(call) + _reversed_rotation(call) + _slope_slips(call)
             + _rule_slips(call))
    seen, unique = set(), []
    for v in found:
        key = repr(sorted(v.overrides.items(), key=lambda kv: kv[0]))
        if key not in seen:
            seen.add(key)
            unique.append(v)
    return sorted(unique, key=lambda v: v.kind != "convention")


# -- diagnosis ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Diagnosis:
    """The variant of the spec that a failing output matches.

    Attributes
    ----------
    case_id : str
    function : str
    variant : str
        The variant in words, e.g. ``"layout='interleaved'"``.
    overrides : dict
        The same, machine-readable (see :class:`Variant`).
    share : float
        Largest share of the variant's budget used by the output (at most 1).
    alternatives : tuple of (str, dict, float)
        Other variants that match too, best first.
    tried : int
        Variants evaluated.
    """

    case_id: str
    function: str
    variant: str
    overrides: dict
    share: float
    alternatives: tuple = ()
    tried: int = 0

    @property
    def sentence(self) -> str:
        """``matches the spec with <variant> (share <share>)``."""
        return f"matches the spec with {self.variant} (share {self.share:.2g})"

    def as_dict(self) -> dict:
        return {"case_id": self.case_id, "function": self.function, "variant": self.variant,
                "overrides": _jsonable(self.overrides), "share": self.share, "text": self.sentence,
                "alternatives": [{"variant": v, "overrides": _jsonable(o), "share": s}
                                 for v, o, s in self.alternatives],
                "tried": self.tried}


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    return value


def _check_case(case) -> None:
    if not isinstance(case, GoldenCase):
        raise TypeError(f"case must be a posref.golden.case.GoldenCase, got {type(case).__name__}")


def _check_dtype(dtype) -> None:
    if dtype not in UNIT_ROUNDOFF:
        raise ValueError(f"dtype must be one of {', '.join(UNIT_ROUNDOFF)}, got dtype={dtype!r}")


def _outputs(result) -> dict[str, np.ndarray]:
    results = result if isinstance(result, tuple) else (result,)
    names = [f"output_{i}" for i in range(len(results))] if isinstance(result, tuple) else ["output"]
    out = {}
    for name, r in zip(names, results):
        array = np.asarray(r)
        out[name] = array.astype(np.int64) if array.dtype.kind in "iub" else array.astype(np.float64)
    return out


def _evaluate(call: _Call, variant: Variant, base_call: _Call, tolerance: str, dtype: str):
    """Expected outputs and budgets of a variant, or raise."""
    changed = variant.change(call)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        expected = _outputs(call_with(_spec(changed.function), changed.inputs, changed.params))
        view_call = changed if variant.own_budget else base_call
        view = CaseView(view_call.function, view_call.params, view_call.inputs, expected)
        allowed = {n: np.broadcast_to(round_budget(b), expected[n].shape)
                   for n, b in budgets(view, tolerance, dtype).items()}
    if variant.rearrange is not None:
        expected, allowed = variant.rearrange(expected, changed), variant.rearrange(allowed, changed)
    return expected, allowed


def _share(actual: Mapping[str, np.ndarray], expected: dict, allowed: dict, dtype: str) -> float:
    """Largest budget share over the outputs; above 1 (inf when the outputs do not line up) for a miss."""
    if set(actual) != set(expected):
        return math.inf
    worst = 0.0
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for name, reference in expected.items():
            comparison = compare(actual[name], reference, allowed[name], dtype)
            share = comparison.budget_share
            if not comparison.passed and not share > 1.0:  # a shape or a non-finite value, not a size
                share = math.inf
            worst = max(worst, share)
    return worst


def _float64(inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    out = {}
    for name, a in inputs.items():
        a = np.asarray(a)
        out[name] = a.astype(np.float64) if a.dtype.kind == "f" or a.dtype.name == "bfloat16" else a
    return out


def diagnose(case: GoldenCase, inputs: Mapping[str, Any], actual: Mapping[str, Any], dtype: str, *,
             max_variants: int = MAX_VARIANTS, time_limit: float = TIME_LIMIT) -> Diagnosis | None:
    """Name the variant of the spec that a failing output matches, if any.

    Parameters
    ----------
    case : GoldenCase
        The failing case.
    inputs : mapping of str to numpy.ndarray
        The inputs the adapter received (as :func:`posref.conformance.runner.case_arrays` gives them).
    actual : mapping of str to array_like
        What the adapter returned, by output name (``"output"``, or ``"output_0"``, ... for a tuple).
    dtype : str
        The dtype under test.
    max_variants : int, keyword-only
        Most variants evaluated (single ones first, then pairs of two).
    time_limit : float, keyword-only
        Seconds after which no further variant is started.

    Returns
    -------
    Diagnosis or None
        The matching variant with the smallest budget share; None when
        nothing matches, when the output matches the spec itself, for an
        error case, or when the outputs exceed :data:`MAX_ELEMENTS`.

    Raises
    ------
    TypeError, ValueError
        For arguments of the wrong kind; never for what the adapter
        returned or a variant that cannot be evaluated.
    """
    _check_case(case)
    _check_dtype(dtype)
    for name, value in (("inputs", inputs), ("actual", actual)):
        if not isinstance(value, Mapping):
            raise TypeError(f"{name} must be a mapping of names to arrays, got {type(value).__name__}")
    if isinstance(max_variants, bool) or not isinstance(max_variants, int) or max_variants < 1:
        raise ValueError(f"max_variants must be a positive integer, got max_variants={max_variants!r}")
    if isinstance(time_limit, bool) or not isinstance(time_limit, (int, float)) or not time_limit > 0:
        raise ValueError(f"time_limit must be a positive number of seconds, got time_limit={time_limit!r}")
    try:
        return _diagnose(case, inputs, actual, dtype, max_variants, time.perf_counter() + float(time_limit))
    except Exception:  # posref's own failure to diagnose is no reason to lose the case's result
        return None


def _diagnose(case, inputs, actual, dtype, max_variants, deadline) -> Diagnosis | None:
    if case.expect_error is not None:
        return None
    try:
        actual = {n: np.asarray(a) for n, a in actual.items()}
    except Exception:
        return None
    if any(a.dtype.kind not in "iubf" and a.dtype.name != "bfloat16" for a in actual.values()):
        return None
    too_large = sum(a.size for a in actual.values()) > MAX_ELEMENTS
    if too_large or sum(np.size(a) for a in inputs.values()) > 4 * MAX_ELEMENTS:
        return None
    actual = {n: a.astype(np.float64) for n, a in actual.items()}
    call = _Call(case.function, dict(case.params), _float64(inputs))
    context = _arith.precise() if dtype == "float64" else contextlib.nullcontext()
    tried, matches, misses = 0, [], []

    def attempt(variant: Variant) -> float:
        nonlocal tried
        tried += 1
        try:
            expected, allowed = _evaluate(call, variant, call, case.tolerance, dtype)
            share = _share(actual, expected, allowed, dtype)
        except Exception:
            return math.inf
        if share <= 1.0:
            matches.append((share, variant))
        return share

    with context:
        if attempt(Variant("the spec", {}, "convention")) <= 1.0:
            return None  # it passes as is: nothing to diagnose
        singles = variants(case, dtype)
        for variant in singles:
            if tried > max_variants or time.perf_counter() > deadline:
                break
            misses.append((attempt(variant), variant))
        if not matches:
            for pair in _pairs(misses):
                if tried > max_variants or time.perf_counter() > deadline:
                    break
                attempt(pair)
    if not matches:
        return None
    matches.sort(key=lambda m: (m[0], m[1].kind != "convention", len(m[1].overrides)))
    share, best = matches[0]
    return Diagnosis(case.id, case.function, best.label, dict(best.overrides), float(share),
                     tuple((v.label, dict(v.overrides), float(s)) for s, v in matches[1:]), tried)


def _pairs(misses: list[tuple[float, Variant]]) -> list[Variant]:
    """Pairs of two single variants that change different things, the closest misses first."""
    def weight(share: float) -> float:
        return math.log(share) if math.isfinite(share) and share > 0 else 1e3

    out = [(weight(s1) + weight(s2), v1 + v2) for i, (s1, v1) in enumerate(misses) for s2, v2 in misses[i + 1:]
           if v1.combines_with(v2)]
    out.sort(key=lambda pair: pair[0])
    return [v for _, v in out]


# -- identification -----------------------------------------------------------------------------


@dataclass
class Fingerprint:
    """What explains an adapter's results on the golden cases of one function.

    Attributes
    ----------
    function : str
    adapter : str
    dtype : str
    as_spec : list of str
        Cases that pass as they are.
    explained : dict of str to dict
        Case id to the chosen variant (``variant``, ``overrides``, ``share``).
    unexplained : dict of str to str
        Case id to what happened: a failure no variant matches, an error,
        a crash or a timeout.
    not_implemented : list of str
        Cases the adapter does not support.
    skipped : list of str
        Cases whose inputs do not fit the dtype.
    conventions : dict
        Option (or input, output, function) to the value it takes in every
        case that ran: the conventions the implementation follows where
        they differ from some case's request.
    mixed : dict
        Those changed somewhere but not the same in every case.
    """

    function: str
    adapter: str
    dtype: str
    as_spec: list[str] = field(default_factory=list)
    explained: dict[str, dict] = field(default_factory=dict)
    unexplained: dict[str, str] = field(default_factory=dict)
    not_implemented: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    conventions: dict[str, Any] = field(default_factory=dict)
    mixed: dict[str, list] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        """``"spec"``, ``"variant"``, ``"partly"`` (some cases unexplained), ``"none"`` or ``"not implemented"``."""
        if not (self.as_spec or self.explained or self.unexplained):
            return "not implemented"
        if self.unexplained:
            return "partly" if self.as_spec or self.explained else "none"
        return "variant" if self.explained else "spec"

    @property
    def summary(self) -> str:
        """One line: what explains the cases that ran."""
        ran = len(self.as_spec) + len(self.explained) + len(self.unexplained)
        if self.verdict == "not implemented":
            return "not implemented"
        if self.verdict == "spec":
            return f"the spec as asked ({_count(ran, 'case')})"
        if self.verdict == "none":
            return f"no variant explains any of its {_count(ran, 'case')}"
        found = ", ".join(_describe(k, v) for k, v in self.conventions.items())
        counts = f"{len(self.as_spec)} as asked, {len(self.explained)} by a variant"
        if self.explained and not found:
            found = "no variant common to all cases"
        if not self.unexplained:
            return f"{found} ({counts})"
        missing = f"{len(self.unexplained)} of {_count(ran, 'case')} unexplained ({counts})"
        return f"{found}; {missing}" if found else missing

    def as_dict(self) -> dict:
        return _jsonable({"function": self.function, "adapter": self.adapter, "dtype": self.dtype,
                          "verdict": self.verdict, "summary": self.summary, "conventions": self.conventions,
                          "mixed": self.mixed, "as_spec": self.as_spec, "explained": self.explained,
                          "unexplained": self.unexplained, "not_implemented": self.not_implemented,
                          "skipped": self.skipped})


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _describe(key: str, value: Any) -> str:
    if key == "function":
        return f"computes {value}"
    if key.startswith("input.") or key in ("output", "relative_position"):
        return f"{key.removeprefix('input.')} {value}"
    return f"{key}={value!r}"


def _effective(case: GoldenCase, key: str, overrides: Mapping[str, Any]) -> Any:
    """The value ``key`` takes in a case under ``overrides`` (as asked when not overridden)."""
    if key in overrides:
        return overrides[key]
    if key.startswith("input.") or key in ("output", "relative_position", "function"):
        return case.function if key == "function" else "as asked"
    call = _Call(case.function, case.params, case.inputs)
    return _value(call, key)


def _choose(candidates: dict[str, list[tuple[str, dict, float]]]) -> dict[str, tuple[str, dict, float]]:
    """For each case the matching variant that agrees most with the other cases' matches."""
    votes = Counter((k, repr(v)) for options in candidates.values() for _, o, _ in options for k, v in o.items())
    chosen = {}
    for case_id, options in candidates.items():
        chosen[case_id] = max(options, key=lambda m: (sum(votes[(k, repr(v))] for k, v in m[1].items())
                                                      / len(m[1]), -m[2]))
    return chosen


def _fingerprint_conventions(fp: Fingerprint, cases: dict[str, GoldenCase]) -> None:
    order = list(inspect.signature(_spec(fp.function)).parameters)
    keys = sorted({k for e in fp.explained.values() for k in e["overrides"]},
                  key=lambda k: (order.index(k) if k in order else len(order), k))
    ran = fp.as_spec + list(fp.explained)
    for key in keys:
        values = [_effective(cases[c], key, fp.explained.get(c, {}).get("overrides", {})) for c in ran]
        distinct = []
        for v in values:
            if not any(repr(v) == repr(d) for d in distinct):
                distinct.append(v)
        if len(distinct) == 1:
            fp.conventions[key] = distinct[0]
        else:
            fp.mixed[key] = distinct


def _check_timeout(timeout) -> float | None:
    from posref.conformance.runner import check_timeout

    return check_timeout(timeout)


def _check_functions(functions) -> list[str] | None:
    if functions is None:
        return None
    if isinstance(functions, str) or not isinstance(functions, Sequence) or not all(
            isinstance(f, str) for f in functions):
        raise TypeError(f"functions must be a sequence of spec function names or None, got {functions!r}")
    spec_functions()
    unknown = [f for f in functions if f not in SPEC_FUNCTIONS]
    if unknown:
        word = unknown[0]
        close = difflib.get_close_matches(word, list(SPEC_FUNCTIONS), n=5, cutoff=0.6)
        close += [c for c in SPEC_FUNCTIONS if word and word in c and c not in close]
        hint = f"near matches: {', '.join(close[:6])}" if close else "'posref list' names them"
        raise ValueError(f"functions names an unknown spec function {word!r}; {hint}")
    return list(dict.fromkeys(functions))


def identify(adapter, *, functions: Sequence[str] | None = None, timeout: float | None = 60.0,
             progress: Callable[[int, int, str], None] | None = None) -> list[Fingerprint]:
    """Run the golden cases of every function an adapter implements and say which conventions explain them.

    Parameters
    ----------
    adapter : posref.conformance.adapter.Adapter
        An in-process adapter or one from
        :func:`posref.conformance.worker.start_adapter`; its ``dtype`` is
        the dtype of the run.
    functions : sequence of str, optional
        Only these spec functions (default: every one the adapter implements).
    timeout : float or None, keyword-only
        Seconds allowed per case (None: no limit).
    progress : callable, optional
        Called as ``progress(done, total, case_id)`` after each case.

    Returns
    -------
    list of Fingerprint
        One per function, in catalogue order; a function named in
        ``functions`` that the adapter lacks comes back "not implemented".

    Raises
    ------
    TypeError
        If ``adapter`` is not an Adapter, or ``functions`` not a sequence of names.
    ValueError
        If ``functions`` names no spec function (near matches are listed), or ``timeout`` is not positive.
    """
    from posref.conformance.adapter import Adapter
    from posref.conformance.runner import CaseResult, _judge
    from posref.golden.cases import CASES
    from posref.golden.registry import build_cases, case_arrays

    if not isinstance(adapter, Adapter):
        raise TypeError(f"adapter must be a posref Adapter (load_adapter or start_adapter), "
                        f"got {type(adapter).__name__}")
    wanted = _check_functions(functions)
    timeout = _check_timeout(timeout)
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be callable or None, got {type(progress).__name__}")
    dtype = adapter.dtype
    names = wanted or [f.name for f in spec_functions() if adapter.function(f.name) is not None]
    implemented = [n for n in names if adapter.function(n) is not None]
    specs = [s for s in CASES if s.function in implemented and s.expect_error is None]
    low = [dtype] if dtype != "float64" else []
    cases = build_cases(specs, dtypes=low)
    fingerprints = {n: Fingerprint(n, adapter.name, dtype) for n in names}
    for done, case in enumerate(cases, 1):
        fp = fingerprints[case.function]
        arrays = case_arrays(case, dtype)
        if arrays is None:
            fp.skipped.append(case.id)
        else:
            inputs, expected = arrays
            outcome = adapter.call(case.function, inputs, case.params, timeout=timeout)
            result = CaseResult(case.id, case.function, case.family, dtype, "error")
            if timeout is not None and outcome.kind in ("returned", "raised") and outcome.seconds > timeout:
                result.status, result.message = "timeout", f"answered after {outcome.seconds:.3g} s"
            else:
                try:
                    _judge(result, case, outcome, inputs, expected, adapter)
                except Exception as exc:
                    result.status, result.message = "error", f"posref could not judge this output ({exc})"
            if result.status == "pass":
                fp.as_spec.append(case.id)
            elif result.status == "not_implemented":
                fp.not_implemented.append(case.id)
            elif result.status == "fail" and outcome.kind == "returned" and len(outcome.outputs) == len(expected):
                found = diagnose(case, inputs, dict(zip(expected, outcome.outputs)), dtype)
                if found is None:
                    fp.unexplained[case.id] = f"no variant matches ({result.message})"
                else:
                    options = [(found.variant, found.overrides, found.share)] + list(found.alternatives)
                    fp.explained[case.id] = {"candidates": options}
            else:
                fp.unexplained[case.id] = f"{result.status}: {result.message}"
        if progress is not None:
            progress(done, len(cases), case.id)
    by_id = {c.id: c for c in cases}
    for fp in fingerprints.values():
        chosen = _choose({c: e["candidates"] for c, e in fp.explained.items()})
        fp.explained = {c: {"variant": v, "overrides": o, "share": s} for c, (v, o, s) in chosen.items()}
        _fingerprint_conventions(fp, by_id)
    return list(fingerprints.values())


def format_fingerprints(fingerprints: Sequence[Fingerprint]) -> str:
    """The fingerprints as console text: one line per function, then one per case that needed a variant."""
    if isinstance(fingerprints, Fingerprint) or not all(isinstance(f, Fingerprint) for f in fingerprints):
        raise TypeError("fingerprints must be a sequence of Fingerprint")
    if not fingerprints:
        return "no function to identify"
    width = max(len(f.function) for f in fingerprints)
    lines = []
    for fp in fingerprints:
        extra = f"; {len(fp.not_implemented)} not implemented" if fp.not_implemented else ""
        extra += f"; {len(fp.skipped)} skipped" if fp.skipped else ""
        lines.append(f"{fp.function:<{width}}  {fp.verdict:<15}  {fp.summary}{extra}")
        for key, values in fp.mixed.items():
            lines.append(f"  {key} varies: {', '.join(repr(v) for v in values)}")
        for case_id, e in fp.explained.items():
            lines.append(f"  {case_id}: matches the spec with {e['variant']} (share {e['share']:.2g})")
        for case_id, why in fp.unexplained.items():
            lines.append(f"  {case_id}: unexplained, {why[:200]}")
    return "\n".join(lines)


def run_identify(adapter_spec: str, *, functions: Sequence[str] | None = None, dtype: str = "float32",
                 device: str = "cpu", timeout: float | None = 60.0, as_json: bool = False) -> int:
    """Load an adapter in a worker, identify its conventions and print them.

    Parameters
    ----------
    adapter_spec : str
        Built-in adapter name, module, ``module:attribute`` or entry point.
    functions : sequence of str, optional
        Only these spec functions.
    dtype, device : str, keyword-only
        What the adapter computes in and on.
    timeout : float or None, keyword-only
        Seconds allowed per case.
    as_json : bool, keyword-only
        Print JSON (a list of ``Fingerprint.as_dict()``) instead of text.

    Returns
    -------
    int
        0 done, 2 usage error (unknown function, dtype or adapter; a bad
        timeout), 3 internal error of posref.
    """
    from posref.conformance.adapter import DTYPES, AdapterError
    from posref.conformance.worker import start_adapter

    def usage(message: str) -> int:
        print(f"posref identify: {message}", file=sys.stderr)
        return 2

    if not isinstance(adapter_spec, str) or not adapter_spec:
        return usage(f"adapter must be a non-empty string, got {adapter_spec!r}")
    if dtype not in DTYPES:
        return usage(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    try:
        functions = _check_functions(functions)
        timeout = _check_timeout(timeout)
    except (TypeError, ValueError) as exc:
        return usage(str(exc))
    try:
        adapter = start_adapter(adapter_spec, dtype=dtype, device=device)
    except AdapterError as exc:
        return usage(str(exc))
    try:
        with adapter:
            found = identify(adapter, functions=functions, timeout=timeout)
    except Exception as exc:
        print(f"posref identify: internal error ({type(exc).__name__}: {exc}); this is a bug in posref",
              file=sys.stderr)
        return 3
    if as_json:
        print(json.dumps([f.as_dict() for f in found], indent=2))
    else:
        print(f"{adapter.name} {adapter.version}, {dtype} on {device}")
        print(format_fingerprints(found))
    return 0

