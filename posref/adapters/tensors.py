"""Arrays in and out of PyTorch and JAX, for adapters: bfloat16 included.

posref hands an adapter NumPy arrays.  Floating inputs come in the dtype
under test, and bfloat16 arrives as NumPy's ``ml_dtypes.bfloat16``, which
``torch.as_tensor`` and ``torch.from_numpy`` reject.  These functions make
the conversion exact both ways: every bfloat16 value goes through float32,
which holds it exactly.  Integer arrays (positions) become int64 tensors.
They import torch or JAX only when called.  ``round_to`` (the same function
as :func:`~posref.golden.registry.round_to`) rounds a float64 array to a
dtype as posref rounds inputs, to nearest even.

>>> import numpy as np, ml_dtypes
>>> from posref.adapters.tensors import to_torch, from_torch
>>> x = np.array([1.0, 2.0 ** -8, 3.0], dtype=ml_dtypes.bfloat16)
>>> t = to_torch(x)                                  # doctest: +SKIP
>>> t.dtype, from_torch(t).dtype                     # doctest: +SKIP
(torch.bfloat16, dtype(bfloat16))
"""

from __future__ import annotations

import numpy as np

from posref.adapters._tensors import positions_as_int, torch_dtype
from posref.golden.registry import round_to

__all__ = ["from_jax", "from_torch", "positions_as_int", "round_to", "to_jax", "to_torch", "torch_dtype"]

_FLOATS = ("float64", "float32", "float16", "bfloat16")


def _check_dtype(dtype) -> None:
    if dtype is not None and dtype not in _FLOATS:
        raise ValueError(f"dtype must be None or one of {', '.join(_FLOATS)}, got dtype={dtype!r}")


def _as_array(array, name: str = "array") -> np.ndarray:
    try:
        out = np.asarray(array)
    except Exception as exc:
        raise TypeError(f"{name} must be a NumPy array or array-like, got {type(array).__name__}") from exc
    if out.dtype.kind not in "biuf" and out.dtype.name != "bfloat16":
        raise TypeError(f"{name} must hold booleans, integers or reals, got dtype {out.dtype}")
    return out


def to_torch(array, dtype: str | None = None, device: str = "cpu"):
    """A torch tensor holding ``array``: floating arrays in ``dtype`` (default their own), integers as int64.

    Parameters
    ----------
    array : array_like
        A NumPy array, bfloat16 (``ml_dtypes``) included.
    dtype : {None, "float64", "float32", "float16", "bfloat16"}
        The floating dtype of the tensor; None keeps the array's.
    device : str, default "cpu"
        Where the tensor goes.
    """
    from posref.adapters._tensors import to_torch as convert

    _check_dtype(dtype)
    if not isinstance(device, str):
        raise TypeError(f"device must be a str such as 'cpu' or 'cuda', got {device!r}")
    return convert(_as_array(array), dtype, device)


def from_torch(tensor, dtype: str | None = None) -> np.ndarray:
    """A NumPy copy of a torch tensor, bfloat16 kept as ``ml_dtypes.bfloat16`` (or cast to ``dtype``)."""
    import ml_dtypes
    import torch

    _check_dtype(dtype)
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"tensor must be a torch.Tensor, got {type(tensor).__name__}")
    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        out = tensor.to(torch.float32).numpy().astype(ml_dtypes.bfloat16)
    else:
        out = tensor.numpy().copy()
    return out if dtype is None else out.astype(ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype)


def to_jax(array, dtype: str | None = None):
    """A JAX array holding ``array``: floating arrays in ``dtype`` (default their own), integers unchanged.

    float64 needs ``jax.config.update("jax_enable_x64", True)`` (JAX computes in float32 otherwise);
    it is refused without it, rather than silently rounded.
    """
    import jax
    import jax.numpy as jnp

    _check_dtype(dtype)
    array = _as_array(array)
    target = dtype or (array.dtype.name if array.dtype.kind == "f" or array.dtype.name == "bfloat16" else None)
    if target == "float64" and not jax.config.jax_enable_x64:
        raise ValueError("dtype float64 needs jax.config.update('jax_enable_x64', True); JAX would round to float32")
    if target is None:
        return jnp.asarray(array)
    return jnp.asarray(array).astype(jnp.dtype(target))


def from_jax(value, dtype: str | None = None) -> np.ndarray:
    """A NumPy copy of a JAX array (bfloat16 stays ``ml_dtypes.bfloat16``), cast to ``dtype`` if given."""
    import ml_dtypes

    _check_dtype(dtype)
    out = np.array(value)
    if out.dtype.kind not in "biuf" and out.dtype.name != "bfloat16":
        raise TypeError(f"value must be a JAX array of booleans, integers or reals, got dtype {out.dtype}")
    return out if dtype is None else out.astype(ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype)
