"""Adapters: how posref finds and calls the implementation under test.

An adapter is any object (a module is fine) that has functions named like
posref's spec functions, called the same way: data positional, options by
keyword, NumPy arrays in, anything ``numpy.asarray`` or DLPack can read out.
It may implement a subset; what it lacks is reported "not implemented".

It describes itself with four attributes (module-level names in a module):

``ADAPTER_NAME``
    What reports call it, e.g. ``"transformers"``.
``ADAPTER_VERSION``
    The version of the library it wraps.
``ADAPTER_DTYPES``
    The dtypes it can compute in: a tuple (or list), a subset of
    ``("float64", "float32", "float16", "bfloat16")``; default
    ``("float32",)``.
``ADAPTER_DEVICES``
    Devices it can run on, e.g. ``("cpu", "cuda")``; default ``("cpu",)``.

An adapter that needs to know the dtype or device before it is used (a torch
module that builds caches, say) exposes ``make_adapter(*, dtype, device)``
returning the configured adapter object.  ``available()`` (optional) returns
``None`` when the adapter can run here and otherwise a sentence saying why
not (library missing, no GPU), so that it is skipped with that reason.

Adapters are named by ``module``, ``module:attribute``, or the name of an
entry point in the ``posref.adapters`` group.  Built-in adapters live in
:mod:`posref.adapters` and import their frameworks only when used.

:func:`load_adapter` imports and configures an adapter *in the calling
process*: what ``posref check --in-process`` and the Python examples use.
``posref check``, the pytest plugin and ``posref matrix`` run adapters in a
worker process instead (:mod:`posref.conformance.worker`), so that an
adapter that crashes, hangs or rewrites posref costs one case and no more.
Both call the adapter through :func:`invoke`, which copies the inputs,
converts the outputs to NumPy inside its ``try`` and notes whether the
adapter changed its inputs.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.metadata
import inspect
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Adapter", "AdapterError", "Outcome", "invoke", "load_adapter", "to_numpy", "DTYPES"]

DTYPES = ("float64", "float32", "float16", "bfloat16")

#: Short names of the built-in adapters, for ``--adapter NAME``.
BUILTIN = {
    "reference": "posref.adapters.reference",
    "transformers": "posref.adapters.transformers",
    "torchtune": "posref.adapters.torchtune",
    "x_transformers": "posref.adapters.x_transformers",
    "rotary_embedding_torch": "posref.adapters.rotary_embedding_torch",
    "timm": "posref.adapters.timm",
    "keras_hub": "posref.adapters.keras_hub",
    "onnx_reference": "posref.adapters.onnx_reference",
    "onnxruntime": "posref.adapters.onnxruntime",
    "liger_kernel": "posref.adapters.liger_kernel",
    "flash_attn": "posref.adapters.flash_attn",
    "mlx": "posref.adapters.mlx",
    "vllm": "posref.adapters.vllm",
    "ggml": "posref.adapters.ggml",
    "megatron_core": "posref.adapters.megatron_core",
    "mistral_inference": "posref.adapters.mistral_inference",
    "equinox": "posref.adapters.equinox",
    "penzai": "posref.adapters.penzai",
    "gemma": "posref.adapters.gemma",
    "torchtitan": "posref.adapters.torchtitan",
    "litgpt": "posref.adapters.litgpt",
}

#: Longest exception message kept in a result.
_MESSAGE_LIMIT = 2000


class AdapterError(ValueError):
    """An adapter could not be found, loaded or configured."""


@dataclass
class Outcome:
    """What one call of an adapter function came to, before any judging.

    ``kind`` is ``"returned"`` (``outputs`` holds one array per output,
    ``is_tuple`` says whether a tuple came back), ``"raised"`` (the
    exception's class name, the module-qualified names of its classes in
    ``error_classes``, its message; ``stage`` is ``"call"`` or
    ``"conversion"`` when turning the result into NumPy raised), and, from
    the worker's parent only, ``"crash"`` and ``"timeout"`` (``message``
    says how).  ``mutated`` names the inputs the adapter changed in place.
    """

    kind: str
    outputs: list = field(default_factory=list)
    is_tuple: bool = False
    error_type: str = ""
    error_classes: tuple[str, ...] = ()
    message: str = ""
    stage: str = "call"
    mutated: tuple[str, ...] = ()
    seconds: float = 0.0

    def raised(self, qualified_name: str) -> bool:
        """Whether the exception is an instance of the class ``module.qualname`` (``builtins.ValueError``)."""
        return self.kind == "raised" and qualified_name in self.error_classes


class _Timeout(BaseException):
    """Raised by the in-process alarm; a BaseException so that ``except Exception`` in the adapter lets it pass."""


@contextlib.contextmanager
def _time_limit(seconds: float | None) -> Iterator[None]:
    """Raise _Timeout in the main thread after ``seconds`` (POSIX only; else no limit).

    Best effort, for the in-process debugging mode only: a loop in C, or code
    that swallows BaseException, is not stopped.  The worker mode kills.
    """
    usable = (seconds is not None and hasattr(signal, "SIGALRM")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def on_alarm(signum, frame):
        raise _Timeout()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, min(seconds, 1e7))  # setitimer cannot take 1e300
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass(eq=False)
class Adapter:
    """A loaded, configured adapter, called in this process."""

    target: Any
    name: str
    version: str
    dtype: str
    device: str
    source: str
    #: The options it declares it supports (``ADAPTER_OPTIONS``, checked by ``declared_options``):
    #: ``{function: {option: tuple of allowed values, or DEFAULT_ONLY}}``; empty when it declares none.
    options: dict = field(default_factory=dict)

    def function(self, name: str):
        """The adapter's implementation of spec function ``name``, or None."""
        candidate = getattr(self.target, name, None)
        return candidate if callable(candidate) else None

    def call(self, function: str, inputs: Mapping[str, np.ndarray], params: Mapping[str, Any], *,
             timeout: float | None = None) -> Outcome:
        """Call ``function`` on copies of ``inputs`` in this process (a best-effort SIGALRM timeout)."""
        implementation = self.function(function)
        start = time.perf_counter()
        try:
            with _time_limit(timeout):
                outcome = invoke(implementation, function, inputs, params, catch=Exception)
        except _Timeout:
            return Outcome("timeout", message=f"no answer within {timeout:g} s (in-process alarm)",
                           seconds=time.perf_counter() - start)
        if timeout is not None and outcome.seconds > timeout:  # it swallowed the alarm, or answered late
            return Outcome("timeout", message=f"answered after {outcome.seconds:.3g} s, over the {timeout:g} s limit",
                           seconds=outcome.seconds)
        return outcome

    def close(self) -> None:
        """Nothing to release for an in-process adapter (a worker adapter stops its process)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _text(value: Any) -> str:
    """``str(value)``, cut to a readable length, even if ``__str__`` raises."""
    try:
        text = str(value)
    except BaseException:  # an adapter's exception with a broken __str__
        text = "<the message could not be read>"
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")  # no lone surrogates in reports
    return text if len(text) <= _MESSAGE_LIMIT else text[:_MESSAGE_LIMIT] + " [...]"


def _class_names(cls: type) -> tuple[str, ...]:
    names = []
    for klass in getattr(cls, "__mro__", (cls,)):
        try:
            names.append(f"{klass.__module__}.{klass.__qualname__}")
        except BaseException:  # pragma: no cover - a class with hostile attributes
            names.append("?")
    return tuple(names)


def _mutated(inputs: Mapping[str, np.ndarray], pristine: Mapping[str, np.ndarray]) -> tuple[str, ...]:
    changed = []
    for name, before in pristine.items():
        after = inputs[name]
        if not (after.shape == before.shape and after.dtype == before.dtype
                and after.tobytes() == before.tobytes()):
            changed.append(name)
    return tuple(changed)


@functools.lru_cache(maxsize=None)
def _positional_names(function: str) -> tuple[str, ...]:
    """The positional-only parameters of spec function ``function``, in order."""
    from posref import SPEC_FUNCTIONS, spec_functions

    if function not in SPEC_FUNCTIONS:
        spec_functions()
    names = []
    for parameter in inspect.signature(SPEC_FUNCTIONS[function].function).parameters.values():
        if parameter.kind is not inspect.Parameter.POSITIONAL_ONLY:
            break
        names.append(parameter.name)
    return tuple(names)


def _call_like(implementation, positional: tuple[str, ...], inputs: Mapping[str, Any],
               params: Mapping[str, Any]) -> Any:
    """Call ``implementation`` the way the spec function is called.

    The rule of :func:`posref.golden.registry.call_with` (which the worker
    does not import: it would load ml_dtypes, a second of start-up, for
    nothing): positional-only parameters are filled in order from the
    inputs, or for positional scalars such as ``dim`` from the parameters;
    the rest go by keyword.
    """
    params = dict(params)
    remaining = dict(inputs)
    arguments = []
    for name in positional:
        if name in remaining:
            arguments.append(remaining.pop(name))
        elif name in params:
            arguments.append(params.pop(name))
        else:
            break
    return implementation(*arguments, **remaining, **params)


def invoke(implementation, function: str, inputs: Mapping[str, np.ndarray], params: Mapping[str, Any], *,
           catch: type[BaseException] = BaseException) -> Outcome:
    """Call ``implementation`` the way spec function ``function`` is called, and capture what happens.

    The adapter gets copies of ``inputs``; afterwards they are compared with
    the originals, byte for byte, and the names of those it changed are in
    ``Outcome.mutated``.  Its result is converted to NumPy
    (:func:`to_numpy`) inside the same ``try``, so a framework error raised
    while reading a tensor back (a CUDA error surfaces there) is captured too.
    Exceptions that are instances of ``catch`` are captured; the worker
    captures every ``BaseException`` (``SystemExit``, ``KeyboardInterrupt``
    raised by the adapter), the in-process mode only ``Exception``.
    """
    own = {name: np.array(array, copy=True) for name, array in inputs.items()}
    pristine = {name: np.array(array, copy=True) for name, array in inputs.items()}
    positional = _positional_names(function)
    start = time.perf_counter()
    stage = "call"
    try:
        raw = _call_like(implementation, positional, own, params)
        stage = "conversion"
        converted = to_numpy(raw)
        if isinstance(converted, tuple):
            outputs, is_tuple = list(converted), True
        else:
            outputs, is_tuple = [converted], False
        for index, output in enumerate(outputs):
            if not isinstance(output, np.ndarray):
                raise TypeError(f"output {index} is a tuple of {len(output)} values; return one array per output")
    except _Timeout:
        raise
    except catch as exc:
        seconds = time.perf_counter() - start
        return Outcome("raised", error_type=type(exc).__name__, error_classes=_class_names(type(exc)),
                       message=_text(exc), stage=stage, mutated=_mutated(own, pristine), seconds=seconds)
    seconds = time.perf_counter() - start
    return Outcome("returned", outputs=outputs, is_tuple=is_tuple, mutated=_mutated(own, pristine), seconds=seconds)


def _load_file(spec: str, path_text: str) -> Any:
    """The module of a Python file, loaded under a name of its own (``posref_adapter_<stem>_<hash>``)."""
    import hashlib
    import importlib.util

    path = os.path.abspath(path_text)
    if not os.path.isfile(path):
        raise AdapterError(f"adapter {spec!r}: {path_text} is not a file")
    stem = re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
    name = f"posref_adapter_{stem}_{hashlib.sha256(path.encode()).hexdigest()[:8]}"
    if name in sys.modules:
        return sys.modules[name]
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise AdapterError(f"adapter {spec!r}: {path_text} cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    directory = os.path.dirname(path)
    if directory not in sys.path:  # its own helper modules next to it import, as under pytest
        sys.path.insert(0, directory)
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _import_target(spec: str) -> Any:
    if spec in BUILTIN:
        spec = BUILTIN[spec]
    module_name, _, attribute = spec.partition(":")
    if module_name.endswith(".py") or os.sep in module_name or (os.altsep and os.altsep in module_name):
        target = _load_file(spec, module_name)  # --adapter path/to/my_adapter.py[:attribute]
        module_name = os.path.basename(module_name)
    else:
        if os.getcwd() not in sys.path and "" not in sys.path:  # the current directory, as pytest's rootdir
            sys.path.insert(0, os.getcwd())
        try:
            target = importlib.import_module(module_name)
        except ImportError as exc:
            target = None
            import_error = exc
    if target is None:
        exc = import_error
        points = importlib.metadata.entry_points(group="posref.adapters")
        for point in points:
            if point.name == spec:
                return point.load()
        raise AdapterError(
            f"adapter must be a built-in name ({', '.join(sorted(BUILTIN))}), an importable module, "
            f"'module:attribute', or a 'posref.adapters' entry point; importing {module_name!r} failed: {exc}"
        ) from exc
    if attribute:
        try:
            for part in attribute.split("."):
                target = getattr(target, part)
        except AttributeError:
            raise AdapterError(f"adapter {spec!r}: module {module_name!r} has no attribute {attribute!r}") from None
    return target


def _names(spec: str, target: Any, attribute: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """A declared tuple of names (``ADAPTER_DTYPES``, ``ADAPTER_DEVICES``), checked."""
    value = getattr(target, attribute, default)
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list, frozenset, set)):
        raise AdapterError(f"adapter {spec!r}: {attribute} must be a tuple of names, e.g. ('float32',), "
                           f"got {value!r}")
    if not all(isinstance(v, str) for v in value):
        raise AdapterError(f"adapter {spec!r}: {attribute} must hold names (strings), got {value!r}")
    return tuple(value)


def declared_dtypes(spec: str, target: Any) -> tuple[str, ...]:
    """The dtypes ``target`` declares, checked: a tuple of known dtype names."""
    dtypes = _names(spec, target, "ADAPTER_DTYPES", ("float32",))
    unknown = [d for d in dtypes if d not in DTYPES]
    if unknown:
        raise AdapterError(f"adapter {spec!r}: ADAPTER_DTYPES must be among {', '.join(DTYPES)}, "
                           f"got {', '.join(map(repr, unknown))}")
    return dtypes


#: The marker of ``ADAPTER_OPTIONS`` for an option the adapter supports at its default value only.
DEFAULT_ONLY = "default"


class AdapterOptionsTypeError(AdapterError, TypeError):
    """``ADAPTER_OPTIONS`` has the wrong type somewhere (an :class:`AdapterError` and a ``TypeError``)."""


def _option_value(value: Any) -> bool:
    """Whether ``value`` may be listed in ``ADAPTER_OPTIONS``: a JSON scalar, or a list of them."""
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return value == value and abs(value) != float("inf")
    if isinstance(value, (list, tuple)):
        return all(_option_value(v) and not isinstance(v, (list, tuple)) for v in value)
    return False


def _option_key(value: Any) -> Any:
    """A hashable, JSON-stable form of an allowed value (lists become tuples)."""
    return tuple(value) if isinstance(value, list) else value


def check_options(spec: str, declared: Any) -> dict[str, dict[str, Any]]:
    """Check an ``ADAPTER_OPTIONS`` declaration and return it normalised.

    The declaration maps spec function names to ``{option: allowed}``, where
    ``option`` is a keyword parameter of that spec function and ``allowed``
    is a non-empty list (or tuple) of the values the adapter supports
    (numbers, strings, booleans, None, or lists of those), or the marker
    :data:`DEFAULT_ONLY` (``"default"``) when it supports only the spec's
    default.  Options not named are unrestricted; functions not named too.

    Returns
    -------
    dict
        ``{function: {option: tuple of allowed values, or DEFAULT_ONLY}}``,
        with list values as tuples.

    Raises
    ------
    AdapterOptionsTypeError
        (a ``TypeError`` and an :class:`AdapterError`) if the declaration,
        an entry or a value has the wrong type.
    AdapterError
        (a ``ValueError``) if it names an unknown function or option, lists
        no values, or marks as default-only an option without a default.
    """
    from posref import SPEC_FUNCTIONS, spec_functions

    where = f"adapter {spec!r}: ADAPTER_OPTIONS"
    if not isinstance(declared, Mapping):
        raise AdapterOptionsTypeError(
            f"{where} must be a dict {{function: {{option: [allowed values] or {DEFAULT_ONLY!r}}}}}, "
            f"got {type(declared).__name__}")
    spec_functions()
    checked: dict[str, dict[str, Any]] = {}
    for function, options in declared.items():
        if not isinstance(function, str):
            raise AdapterOptionsTypeError(f"{where} keys must be spec function names (strings), got {function!r}")
        if function not in SPEC_FUNCTIONS:
            raise AdapterError(f"{where} names function {function!r}, which is not a posref spec function "
                               "('posref list' names them)")
        if not isinstance(options, Mapping):
            raise AdapterOptionsTypeError(f"{where}[{function!r}] must be a dict {{option: [allowed values] or "
                                          f"{DEFAULT_ONLY!r}}}, got {type(options).__name__}")
        parameters = inspect.signature(SPEC_FUNCTIONS[function].function).parameters
        checked[function] = {}
        for option, allowed in options.items():
            if not isinstance(option, str):
                raise AdapterOptionsTypeError(f"{where}[{function!r}] keys must be option names (strings), "
                                              f"got {option!r}")
            parameter = parameters.get(option)
            if parameter is None or parameter.kind is not inspect.Parameter.KEYWORD_ONLY:
                keywords = [n for n, p in parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
                raise AdapterError(f"{where}[{function!r}] names option {option!r}, which is not a keyword option "
                                   f"of {function} (its options: {', '.join(keywords) or 'none'})")
            name = f"{where}[{function!r}][{option!r}]"
            if isinstance(allowed, str):
                if allowed != DEFAULT_ONLY:
                    raise AdapterError(f"{name} must be a list of allowed values or {DEFAULT_ONLY!r} (only the "
                                       f"default), got {allowed!r}; write [{allowed!r}] for that one value")
                if parameter.default is inspect.Parameter.empty:
                    raise AdapterError(f"{name} is {DEFAULT_ONLY!r}, but option {option!r} of {function} has no "
                                       "default; list the allowed values")
                checked[function][option] = DEFAULT_ONLY
                continue
            if not isinstance(allowed, (list, tuple)):
                raise AdapterOptionsTypeError(f"{name} must be a list of allowed values or {DEFAULT_ONLY!r} "
                                              f"(only the default), got {type(allowed).__name__}")
            if not allowed:
                raise AdapterError(f"{name} lists no values; leave option {option!r} out if any value is allowed, "
                                   f"or write {DEFAULT_ONLY!r} for the default only")
            bad = [v for v in allowed if not _option_value(v)]
            if bad:
                raise AdapterOptionsTypeError(f"{name} must hold numbers, strings, booleans, None or lists of "
                                              f"them, got {bad[0]!r}")
            checked[function][option] = tuple(_option_key(v) for v in allowed)
    return checked


def declared_options(spec: str, *targets: Any) -> dict[str, dict[str, Any]]:
    """The options the first of ``targets`` that has ``ADAPTER_OPTIONS`` declares, checked (:func:`check_options`).

    ``targets`` are the configured adapter object, then the module it came
    from; none declaring means ``{}`` (every option may be drawn).
    """
    for target in targets:
        declared = getattr(target, "ADAPTER_OPTIONS", None)
        if declared is not None:
            return check_options(spec, declared)
    return {}


def options_as_json(options: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """A normalised declaration in JSON form (tuples as lists), for the worker's replies."""
    return {function: {option: (allowed if isinstance(allowed, str)
                                else [list(v) if isinstance(v, tuple) else v for v in allowed])
                       for option, allowed in entries.items()}
            for function, entries in options.items()}


def load_adapter(spec: str, *, dtype: str = "float32", device: str = "cpu") -> Adapter:
    """Import and configure the adapter named by ``spec``, in this process.

    Raises
    ------
    AdapterError
        If it cannot be imported, declares its dtypes or devices as anything
        but a tuple of names, cannot compute in ``dtype`` on ``device``, says
        it is unavailable here, its ``make_adapter`` returns None, or it
        implements none of posref's spec functions.
    """
    from posref import SPEC_FUNCTIONS, spec_functions

    if not isinstance(spec, str) or not spec:
        raise AdapterError(f"adapter must be a non-empty string, got {spec!r}")
    if dtype not in DTYPES:
        raise AdapterError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    target = _import_target(spec)
    why_not = getattr(target, "available", lambda: None)()
    if why_not:
        raise AdapterError(f"adapter {spec!r} cannot run here: {why_not}")
    dtypes = declared_dtypes(spec, target)
    devices = _names(spec, target, "ADAPTER_DEVICES", ("cpu",))
    if dtype not in dtypes:
        raise AdapterError(f"adapter {spec!r} computes in {', '.join(dtypes)}; dtype {dtype!r} is not among them")
    if device not in devices:
        raise AdapterError(f"adapter {spec!r} runs on {', '.join(devices)}; device {device!r} is not among them")
    factory = getattr(target, "make_adapter", None)
    configured = factory(dtype=dtype, device=device) if callable(factory) else target
    if configured is None:
        raise AdapterError(f"adapter {spec!r}: make_adapter(dtype={dtype!r}, device={device!r}) returned None, "
                           "not an adapter object")
    adapter = Adapter(
        target=configured,
        name=str(getattr(target, "ADAPTER_NAME", spec)),
        version=str(getattr(target, "ADAPTER_VERSION", "unknown")),
        dtype=dtype,
        device=device,
        source=spec,
        options=declared_options(spec, configured, target),
    )
    spec_functions()
    if not any(adapter.function(name) is not None for name in SPEC_FUNCTIONS):
        raise AdapterError(f"adapter {spec!r} implements none of posref's spec functions "
                           f"(an object of type {type(configured).__name__}); 'posref list' names them")
    return adapter


def to_numpy(value: Any) -> Any:
    """Convert an adapter's result (array, tensor, tuple of them) to NumPy.

    Tries ``numpy.asarray`` first, then DLPack (``numpy.from_dlpack``), then
    a ``.detach().cpu()`` for framework tensors on another device.  A tuple
    is read as several outputs (one array each); a list as one array.
    """
    if isinstance(value, tuple):  # a tuple is several outputs (cos and sin, say), a list one array
        return tuple(to_numpy(v) for v in value)
    for convert in (_via_asarray, _via_dlpack, _via_cpu):
        result = convert(value)
        if result is not None:
            return result
    raise TypeError(f"output of type {type(value).__name__} cannot be read by NumPy or DLPack")


def _via_asarray(value):
    try:
        array = np.asarray(value)
    except Exception:
        return None
    return None if array.dtype == object else array


def _via_dlpack(value):
    if not hasattr(value, "__dlpack__"):
        return None
    try:
        return np.from_dlpack(value)
    except Exception:
        return None


def _via_cpu(value):
    detach = getattr(value, "detach", None)
    if detach is None:
        return None
    tensor = detach().cpu()
    if str(getattr(tensor, "dtype", "")) == "torch.bfloat16":
        tensor = tensor.float()
    return _via_asarray(tensor.numpy())
