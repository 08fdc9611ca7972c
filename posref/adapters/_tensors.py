"""NumPy <-> torch conversions shared by the torch-based built-in adapters.

Imported only from inside adapter functions, so importing an adapter
module never imports torch.
"""

from __future__ import annotations

import numpy as np

__all__ = ["TORCH_DTYPES", "grid_of", "positions_as_int", "to_numpy", "to_torch", "torch_available", "torch_dtype"]

TORCH_DTYPES = ("float64", "float32", "float16", "bfloat16")


def torch_available(package: str, import_name: str) -> str | None:
    """None when torch and ``import_name`` import, else a sentence saying what is missing."""
    import importlib

    for module, label in (("torch", "torch"), (import_name, package)):
        try:
            importlib.import_module(module)
        except Exception as exc:  # ImportError, or a broken install raising something else
            return f"{label} cannot be imported ({type(exc).__name__}: {exc}); pip install {label}"
    return None


def torch_dtype(name: str):
    """The torch dtype called ``name`` (``"float32"``, ``"bfloat16"``, ...)."""
    import torch

    return {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16,
            "bfloat16": torch.bfloat16}[name]


def to_torch(array, dtype: str | None = None, device: str = "cpu"):
    """A torch tensor holding ``array``.

    Floating arrays become ``dtype`` (default: their own dtype).  A bfloat16
    array from ``ml_dtypes`` goes through float32, which holds every
    bfloat16 value exactly, because ``torch.from_numpy`` cannot read it.
    Integer arrays stay int64.
    """
    import torch

    array = np.asarray(array)
    if array.dtype.kind in "iub":
        return torch.from_numpy(np.array(array, dtype=np.int64)).to(device)
    if array.dtype.name == "bfloat16":
        tensor = torch.from_numpy(np.array(array, dtype=np.float32))
        tensor = tensor.to(torch.bfloat16)
    else:
        tensor = torch.from_numpy(np.array(array))
    if dtype is not None:
        tensor = tensor.to(torch_dtype(dtype))
    return tensor.to(device)


def to_numpy(tensor) -> np.ndarray:
    """A NumPy copy of a torch tensor; bfloat16 comes back as float32 (exact)."""
    import torch

    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.to(torch.float32)
    return tensor.numpy().copy()


def positions_as_int(positions, name: str = "positions") -> np.ndarray:
    """``positions`` as int64, or NotImplementedError when they are not whole numbers."""
    positions = np.asarray(positions)
    if positions.dtype.kind in "iu":
        return positions.astype(np.int64)
    as_float = positions.astype(np.float64)
    if not np.all(np.isfinite(as_float)) or not np.all(as_float == np.round(as_float)):
        raise NotImplementedError(f"this library takes integer {name}; fractional {name} cannot be expressed")
    return as_float.astype(np.int64)


def grid_of(positions_2d, library: str):
    """``(H, W, row_offset, col_offset)`` when ``positions_2d`` is a full row-major grid, else NotImplementedError.

    Libraries that build 2-D RoPE from a grid shape (timm, rotary-embedding-torch)
    can only express coordinates ``(r0 + r, c0 + c)`` for every cell of an
    ``H x W`` grid, flattened row by row on the last axis.
    """
    p = np.asarray(positions_2d)
    why = (f"{library} builds 2-D RoPE for a whole H x W grid of integer coordinates, flattened row by row; "
           f"positions_2d of shape {p.shape} is not such a grid")
    if p.ndim != 2 or p.shape[0] != 2 or p.shape[1] == 0:
        raise NotImplementedError(why)
    rows, cols = p[0].astype(np.float64), p[1].astype(np.float64)
    r0, c0 = rows.min(), cols.min()
    height, width = int(rows.max() - r0) + 1, int(cols.max() - c0) + 1
    if height * width != p.shape[1]:
        raise NotImplementedError(why)
    expect_rows = r0 + np.repeat(np.arange(height), width)
    expect_cols = c0 + np.tile(np.arange(width), height)
    if not (np.array_equal(rows, expect_rows) and np.array_equal(cols, expect_cols)):
        raise NotImplementedError(why)
    return height, width, r0, c0
