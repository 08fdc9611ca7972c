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
    The dtypes it can compute in, a subset of ``("float64", "float32",
    "float16", "bfloat16")``.
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
"""

from __future__ import annotations

import importlib
import importlib.metadata
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Adapter", "AdapterError", "load_adapter", "to_numpy", "DTYPES"]

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
}


class AdapterError(ValueError):
    """An adapter could not be found, loaded or configured."""


@dataclass
class Adapter:
    """A loaded, configured adapter."""

    target: Any
    name: str
    version: str
    dtype: str
    device: str
    source: str

    def function(self, name: str):
        """The adapter's implementation of spec function ``name``, or None."""
        candidate = getattr(self.target, name, None)
        return candidate if callable(candidate) else None


def _import_target(spec: str) -> Any:
    if spec in BUILTIN:
        spec = BUILTIN[spec]
    module_name, _, attribute = spec.partition(":")
    try:
        target = importlib.import_module(module_name)
    except ImportError as exc:
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


def load_adapter(spec: str, *, dtype: str = "float32", device: str = "cpu") -> Adapter:
    """Import and configure the adapter named by ``spec``.

    Raises
    ------
    AdapterError
        If it cannot be imported, cannot compute in ``dtype`` on ``device``,
        or says it is unavailable here.
    """
    if not isinstance(spec, str) or not spec:
        raise AdapterError(f"adapter must be a non-empty string, got {spec!r}")
    if dtype not in DTYPES:
        raise AdapterError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    target = _import_target(spec)
    why_not = getattr(target, "available", lambda: None)()
    if why_not:
        raise AdapterError(f"adapter {spec!r} cannot run here: {why_not}")
    dtypes = tuple(getattr(target, "ADAPTER_DTYPES", ("float32",)))
    devices = tuple(getattr(target, "ADAPTER_DEVICES", ("cpu",)))
    if dtype not in dtypes:
        raise AdapterError(f"adapter {spec!r} computes in {', '.join(dtypes)}; dtype {dtype!r} is not among them")
    if device not in devices:
        raise AdapterError(f"adapter {spec!r} runs on {', '.join(devices)}; device {device!r} is not among them")
    factory = getattr(target, "make_adapter", None)
    configured = factory(dtype=dtype, device=device) if callable(factory) else target
    return Adapter(
        target=configured,
        name=str(getattr(target, "ADAPTER_NAME", spec)),
        version=str(getattr(target, "ADAPTER_VERSION", "unknown")),
        dtype=dtype,
        device=device,
        source=spec,
    )


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
