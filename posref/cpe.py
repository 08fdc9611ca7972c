r"""Conditional positional encoding: the position encoding generator (PEG).

CPVT (Chu et al.) replaces a fixed or learned position table with a
depthwise convolution over the 2-D grid of patch tokens, added back to the
tokens.  Position information comes from the convolution's zero padding and
so follows the input size, which lets the model run at resolutions it was
not trained on.

Shape letters used here: ``B`` batch, ``N`` tokens, ``C`` channels; the
patch grid has ``rows * cols`` tokens in row-major order.
"""

from __future__ import annotations

import numbers

import numpy as np

from posref._spec import refuse_both_options, spec, warn_deprecated_option
from posref._validate import ensure_array, ensure_bool

__all__ = ["peg"]

CPE_REFERENCE = (
    "X. Chu, Z. Tian, B. Zhang, X. Wang, C. Shen, 'Conditional Positional Encodings "
    "for Vision Transformers', 2021 (ICLR 2023), arXiv:2102.10882"
)


def _ensure_grid_shape(grid_shape):
    """Return ``grid_shape`` as a pair of positive Python ints (rows, cols)."""
    if isinstance(grid_shape, (str, bytes)) or not hasattr(grid_shape, "__len__") or len(grid_shape) != 2:
        raise TypeError(
            f"grid_shape must be a pair (rows, cols) of positive integers, got grid_shape={grid_shape!r}"
        )
    rows, cols = grid_shape
    for value in (rows, cols):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
            raise TypeError(
                f"grid_shape must be a pair (rows, cols) of positive integers, got grid_shape={grid_shape!r}"
            )
        if value < 1:
            raise ValueError(
                f"grid_shape must be a pair (rows, cols) of positive integers, got grid_shape={grid_shape!r}"
            )
    return int(rows), int(cols)


@spec(family="cpe", reference=CPE_REFERENCE)
def peg(tokens, weight, bias, /, *, grid_shape, class_token=False, has_class_token=None):
    r"""Position encoding generator (PEG) of CPVT: depthwise conv plus residual.

    The patch tokens are laid back onto their ``rows x cols`` grid, each
    channel is cross-correlated with its own ``k x k`` kernel (zero padding
    ``k // 2``, stride 1, so the grid keeps its size), a per-channel bias is
    added, and the result is added to the tokens.  A class token, when
    present, is not on the grid and passes through unchanged.

    Parameters
    ----------
    tokens : array_like of real, shape ``(B, N, C)``
        Token features.  ``N = rows * cols`` without a class token, or
        ``N = 1 + rows * cols`` with the class token first.  Patch tokens
        are in row-major order (token ``1 + r * cols + s`` or
        ``r * cols + s`` sits at grid cell ``(r, s)``), the order of
        ``x.flatten(2).transpose(1, 2)`` in PyTorch.
    weight : array_like of real, shape ``(C, 1, k, k)``
        Depthwise kernels in the PyTorch layout of
        ``nn.Conv2d(C, C, k, groups=C).weight``: ``weight[c, 0]`` is the
        kernel of channel ``c``.  ``k`` must be odd (CPVT uses ``k = 3``).
    bias : array_like of real, shape ``(C,)``
        Per-channel bias of the convolution (pass zeros for a convolution
        without bias).
    grid_shape : tuple of two int, keyword-only
        ``(rows, cols)`` of the patch grid, both positive.
    class_token : bool, keyword-only
        Whether ``tokens[:, 0]`` is a class token that bypasses the
        convolution.  Default ``False`` (CPVT-GAP and Twins have none; the
        CPVT variant with a class token sets it to ``True``).  The same
        name as in :func:`~posref.sincos_2d_encoding`.
    has_class_token : bool or None, keyword-only
        Deprecated name of ``class_token`` (same meaning); passing it
        warns with :class:`DeprecationWarning`.  Giving it together with
        ``class_token=True`` raises :class:`TypeError`.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(B, N, C)``.

    Raises
    ------
    TypeError
        If an array is not real and numeric, ``grid_shape`` is not a pair of
        integers, ``class_token`` is not a bool, or both ``class_token`` and
        its deprecated name ``has_class_token`` are given.
    ValueError
        If an array has the wrong rank or holds non-finite values, ``weight``
        is not ``(C, 1, k, k)`` with ``k`` odd, ``bias`` is not ``(C,)``,
        ``grid_shape`` has a non-positive entry, or ``N`` does not equal
        ``rows * cols`` (plus one with a class token).

    Notes
    -----
    With :math:`x_{b,c}(r, s)` the grid of channel :math:`c`, taken as zero
    outside the grid, and :math:`p = \lfloor k/2 \rfloor`:

    .. math::

        y_{b,c}(r, s) = x_{b,c}(r, s) + \beta_c
            + \sum_{u=0}^{k-1} \sum_{v=0}^{k-1}
              w_{c,0,u,v}\; x_{b,c}(r + u - p,\; s + v - p)

    This is a cross-correlation (the kernel is not flipped), which is what
    PyTorch ``conv2d`` and the reference code compute.  The reference code
    (``PosCNN`` in Meituan-AutoML/Twins, ``PosConv`` in timm) also allows a
    stride; only stride 1 keeps the residual well defined and is specified
    here.

    References
    ----------
    .. [1] X. Chu, Z. Tian, B. Zhang, X. Wang, C. Shen, "Conditional
       Positional Encodings for Vision Transformers", 2021,
       arXiv:2102.10882, section 3.2 and Algorithm 1.

    Examples
    --------
    One channel on a 2 x 2 grid, a 3 x 3 kernel of ones and no bias: every
    cell sees all four cells (sum 10), then the residual adds itself.

    >>> import numpy as np
    >>> from posref import peg
    >>> tokens = np.array([[[1.0], [2.0], [3.0], [4.0]]])  # (B=1, N=4, C=1)
    >>> peg(tokens, np.ones((1, 1, 3, 3)), [0.0], grid_shape=(2, 2))[0, :, 0]
    array([11., 12., 13., 14.])
    """
    tokens = ensure_array("tokens", tokens, ndim=3)
    weight = ensure_array("weight", weight, ndim=4)
    bias = ensure_array("bias", bias, ndim=1)
    rows, cols = _ensure_grid_shape(grid_shape)
    if has_class_token is None:
        class_token = ensure_bool("class_token", class_token)
    else:
        if class_token is not False:
            refuse_both_options("peg", "has_class_token", "class_token")
        warn_deprecated_option("peg", "has_class_token", "class_token")
        class_token = ensure_bool("has_class_token", has_class_token)
    batch, n, channels = tokens.shape
    k = weight.shape[-1]
    if weight.shape[:2] != (channels, 1) or weight.shape[2] != k or k % 2 == 0:
        raise ValueError(
            f"weight must have shape (C, 1, k, k) = ({channels}, 1, k, k) with k odd "
            f"(C from tokens of shape {tokens.shape}), got shape {weight.shape}"
        )
    if bias.shape != (channels,):
        raise ValueError(
            f"bias must have shape (C,) = ({channels},) (C from tokens of shape {tokens.shape}), "
            f"got shape {bias.shape}"
        )
    expected_n = rows * cols + int(class_token)
    if n != expected_n:
        with_class = " + 1 (class token)" if class_token else ""
        raise ValueError(
            f"tokens must have N = rows * cols{with_class} = {expected_n} tokens for "
            f"grid_shape=({rows}, {cols}), got shape {tokens.shape}"
        )

    start = int(class_token)
    grid = tokens[:, start:, :].reshape(batch, rows, cols, channels)  # (B, rows, cols, C)
    p = k // 2
    padded = np.pad(grid, ((0, 0), (p, p), (p, p), (0, 0)))  # zero padding
    kernel = weight[:, 0].transpose(1, 2, 0)  # (k, k, C)
    y = grid + bias  # residual plus bias, (B, rows, cols, C)
    for u in range(k):
        for v in range(k):
            y = y + kernel[u, v] * padded[:, u : u + rows, v : v + cols, :]
    out = tokens.copy()
    out[:, start:, :] = y.reshape(batch, rows * cols, channels)
    return out
