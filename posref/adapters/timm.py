"""Adapter for timm, PyTorch Image Models (``pip install --no-deps timm==1.0.31``).

Checked with timm 1.0.31 on torch 2.13.0 (CPU); both pinned in
``conformance/constraints.txt``.

What it maps, and the library's conventions
-------------------------------------------

``apply_axial_rope``
    ``timm.layers.pos_embed_sincos.RotaryEmbeddingCat`` in language mode
    (``in_pixels=False``: bands :math:`T^{-k/(D/4)}` with ``temperature =
    base``, integer grid coordinates plus ``grid_offset``), applied with
    ``apply_rot_embed_cat`` as EVA-02 does.  The angle blocks are
    ``[first grid axis, second grid axis]``: ``grid_indexing="ij"`` (the
    default) is posref ``axis_order="yx"``, ``"xy"`` is ``"xy"``.  Pairs
    are interleaved by default (posref ``layout="interleaved"``);
    ``rotate_half=True`` is ``layout="half"``.  timm builds the table for a
    whole ``H x W`` grid with one offset for both axes, so only such
    coordinates can be expressed.  timm's default pixel mode (coordinates in
    ``[-1, 1]``, bands :math:`\\pi 2^k`) is another formula and is not mapped.
``sincos_2d_encoding``
    ``build_sincos2d_pos_embed``: bands :math:`T^{-k/(D/4)}`, the row
    coordinate first (posref ``axis_order="yx"``) and all sines before all
    cosines (``grouping="sin_cos"``); ``interleave_sin_cos=True`` is
    ``grouping="axis"``.  ``reverse_coord=True`` puts the column first *and*
    lists the tokens column by column; the adapter maps it to
    ``axis_order="xy"`` and puts the rows back in row-major order.  No class
    token row.
``peg``
    ``timm.models.twins.PosConv``: a 3 x 3 depthwise ``Conv2d`` with bias,
    stride 1, padding 1, plus the residual, on the patch tokens in
    row-major order.  The adapter loads the case's kernel and bias into the
    convolution.  Twins has no class token; for ``class_token=True``
    the adapter passes only the patch tokens to ``PosConv`` and leaves the
    class token as it is, as CPVT does.  Kernels other than 3 x 3 cannot be
    expressed.

Precision: frequency bands and angles are float32 in timm whatever the
model dtype; inputs arrive in the dtype under test and
``apply_rot_embed`` casts only the finished rotation back to it.

torchvision: ``import timm`` imports torchvision (for its data pipeline and
``FrozenBatchNorm2d``).  The torchvision wheels on PyPI are built against
one CUDA torch each and fail to import next to the CPU torch pinned here.
When ``import torchvision`` fails, the adapter imports timm with inert
stand-ins for torchvision's modules (anything taken from them raises
``ImportError`` when used) and removes the stand-ins afterwards; none of the
code mapped here touches torchvision.

Divergences found
-----------------

Listed in ``posref/adapters/known/timm-<dtype>.txt``: only that
``build_sincos2d_pos_embed([0, 4], 8)`` returns an empty table instead of
rejecting the empty grid (``sincos_2d_encoding.invalid.grid_shape``).
Every mapped value case passes in float32, float16 and bfloat16.  Cases the
library cannot express are reported not implemented (5 x 5 PEG kernels,
the class-token row of the 2-D table, coordinates that are not a whole
grid).
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import sys
import types

import numpy as np

from posref.adapters._tensors import grid_of, to_numpy, to_torch, torch_dtype

ADAPTER_NAME = "timm"
ADAPTER_VERSION = "1.0.31"
ADAPTER_DTYPES = ("float32", "float16", "bfloat16")
ADAPTER_DEVICES = ("cpu", "cuda")

#: The options timm can express (see the module docstring); fuzzing draws inside them.
ADAPTER_OPTIONS = {
    "apply_axial_rope": {"frequencies": ["per_axis"]},
    "sincos_2d_encoding": {"class_token": "default"},
}


# -- importing timm without a working torchvision ------------------------------------------


class _Missing(type):
    """A stand-in class for anything taken from torchvision: usable in class statements, fails when called."""

    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _stand_in(f"{cls.__name__}.{name}")

    def __call__(cls, *args, **kwargs):
        raise ImportError(f"{cls.__name__} needs torchvision, which cannot be imported here")


def _stand_in(name):
    return _Missing(name, (), {"__module__": "torchvision"})


class _StandInModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _stand_in(f"{self.__name__}.{name}")


class _StandInFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname == "torchvision" or fullname.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _StandInModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        return None


@contextlib.contextmanager
def _torchvision_stand_ins():
    finder = _StandInFinder()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]


def _library():
    """``(timm.layers.pos_embed_sincos, timm.models.twins)``."""
    if "timm" not in sys.modules:
        try:
            import torchvision  # noqa: F401
        except Exception:
            with _torchvision_stand_ins():
                import timm  # noqa: F401
    from timm.layers import pos_embed_sincos
    from timm.models import twins

    return pos_embed_sincos, twins


def available():
    try:
        import torch  # noqa: F401
    except Exception as exc:
        return f"torch cannot be imported ({type(exc).__name__}: {exc})"
    try:
        _library()
    except Exception as exc:
        return f"timm cannot be imported ({type(exc).__name__}: {exc}); pip install --no-deps timm"
    return None


def make_adapter(*, dtype, device):
    return TimmAdapter(dtype=dtype, device=device)


class TimmAdapter:
    """timm's position encodings, called like posref's spec functions."""

    def __init__(self, *, dtype, device):
        self.dtype = dtype
        self.device = device

    def apply_axial_rope(self, x, positions_2d, /, *, base=10_000.0, axis_order="xy", frequencies="per_axis",
                         layout="interleaved"):
        import torch

        if frequencies != "per_axis":
            raise NotImplementedError("timm gives both axes the same bands (frequencies='per_axis')")
        height, width, r0, c0 = grid_of(positions_2d, "timm")
        if r0 != c0:
            raise NotImplementedError("timm shifts both grid axes by the same grid_offset")
        pos_embed_sincos, _ = _library()
        x = np.asarray(x)
        rope = pos_embed_sincos.RotaryEmbeddingCat(
            x.shape[-1], temperature=base, in_pixels=False, grid_offset=float(r0),
            grid_indexing="ij" if axis_order == "yx" else "xy", rotate_half=layout == "half",
        ).to(self.device)
        with torch.no_grad():
            emb = rope.get_embed((height, width))  # (H*W, 2D): [sin, cos], float32
            out = pos_embed_sincos.apply_rot_embed_cat(to_torch(x, self.dtype, self.device), emb,
                                                       half=layout == "half")
        return to_numpy(out)

    def sincos_2d_encoding(self, grid_shape, dim, /, *, base=10_000.0, axis_order="xy", grouping="axis",
                           class_token=False):
        if class_token:
            raise NotImplementedError("timm's build_sincos2d_pos_embed has no class-token row")
        pos_embed_sincos, _ = _library()
        height, width = (int(v) for v in grid_shape)
        table = pos_embed_sincos.build_sincos2d_pos_embed(
            [height, width], dim=dim, temperature=base, reverse_coord=axis_order == "xy",
            interleave_sin_cos=grouping == "axis", device=self.device, dtype=torch_dtype(self.dtype),
        )
        table = to_numpy(table)
        if axis_order == "xy":  # reverse_coord lists the tokens column by column
            table = table.reshape(width, height, dim).transpose(1, 0, 2).reshape(height * width, dim)
        return table

    def peg(self, tokens, weight, bias, /, *, grid_shape, class_token=False, has_class_token=None):
        import torch

        if has_class_token is not None:  # the spec's deprecated name for class_token
            class_token = has_class_token
        weight = np.asarray(weight)
        if weight.shape[-2:] != (3, 3):
            raise NotImplementedError("timm's Twins PosConv is a 3 x 3 depthwise convolution")
        _, twins = _library()
        tokens = np.asarray(tokens)
        channels = tokens.shape[-1]
        module = twins.PosConv(channels, channels, stride=1).to(device=self.device, dtype=torch_dtype(self.dtype))
        start = int(bool(class_token))
        with torch.no_grad():
            module.proj[0].weight.copy_(to_torch(weight, self.dtype, self.device))
            module.proj[0].bias.copy_(to_torch(bias, self.dtype, self.device))
            patches = module(to_torch(tokens[:, start:], self.dtype, self.device), tuple(int(v) for v in grid_shape))
        out = to_numpy(patches)
        if start:
            out = np.concatenate([np.asarray(tokens[:, :1], dtype=out.dtype), out], axis=1)
        return out
