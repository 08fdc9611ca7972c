"""Multi-axis encodings (M-RoPE, axial RoPE, 2-D sin-cos): their hooks of the shared models.

M-RoPE and axial RoPE are judged by the ``angle`` and ``rope`` models of
:mod:`posref.tolerance.rope`, 2-D sin-cos tables by the
``sinusoidal`` model of :mod:`posref.tolerance.sinusoidal`;
this module says which coordinate drives each pair or channel.
"""

from __future__ import annotations

import numpy as np

from posref.tolerance import CaseView, input_array, rotary_pairs, sinusoid_channels, spec_param
from posref.tolerance.rope import rotary_width

__all__: list[str] = []


@rotary_pairs("mrope_angles")
@rotary_pairs("apply_mrope")
def _mrope_pairs(view: CaseView) -> tuple[np.ndarray, np.ndarray]:
    """M-RoPE: pair i turns by p_a(i) * theta_i, with a(i) the coordinate its section assigns."""
    from posref.multiaxis import mrope_angles
    from posref.rope import rope_frequencies

    dim, base = rotary_width(view), float(spec_param(view, "base"))
    section = [int(s) for s in view.params["mrope_section"]]
    phi = mrope_angles(input_array(view, "positions"), dim, base=base, mrope_section=section,
                       section_order=_section_order(view))
    return phi, rope_frequencies(dim, base=base)


def _section_order(view: CaseView) -> str:
    """``section_order`` of an M-RoPE case, or the one its deprecated ``interleaved`` flag names."""
    interleaved = view.params.get("interleaved")
    if interleaved is not None:
        return "round_robin" if interleaved else "blocks"
    return spec_param(view, "section_order")


@rotary_pairs("axial_rope_angles")
@rotary_pairs("apply_axial_rope")
def _axial_pairs(view: CaseView) -> tuple[np.ndarray, np.ndarray]:
    """Axial RoPE: the first dim/4 pairs turn with one coordinate, the last dim/4 with the other."""
    from posref.multiaxis import axial_rope_angles

    dim = rotary_width(view)
    options = {name: spec_param(view, name) for name in ("axis_order", "frequencies")}
    options["base"] = float(spec_param(view, "base"))
    theta = axial_rope_angles(np.ones(2), dim, **options)  # the angles at coordinates (1, 1) are the frequencies
    return axial_rope_angles(input_array(view, "positions_2d"), dim, **options), theta


@sinusoid_channels("sincos_2d_encoding")
def _sincos_2d_channels(view: CaseView) -> tuple[np.ndarray, np.ndarray]:
    """``sincos_2d_encoding``: each channel block reads the grid coordinate the spec gives it.

    The class-token row (all zeros in the spec) gets angle 0 and frequency 0,
    which the ``sinusoidal`` model turns into a budget of 0.
    """
    from posref.rope import rope_frequencies

    height, width = (int(v) for v in view.params["grid_shape"])
    dim = int(view.params["dim"])
    omega = rope_frequencies(dim // 2, base=float(spec_param(view, "base")))  # (dim/4,)
    rows, cols = np.divmod(np.arange(height * width, dtype=np.float64), width)  # row-major tokens
    a, b = (cols, rows) if spec_param(view, "axis_order") == "xy" else (rows, cols)
    blocks = (a, a, b, b) if spec_param(view, "grouping") == "axis" else (a, b, a, b)
    phi = np.concatenate([c[:, None] * omega for c in blocks], axis=1)  # (H*W, dim)
    theta = np.broadcast_to(np.tile(omega, 4), phi.shape)
    if spec_param(view, "class_token"):
        phi = np.concatenate([np.zeros((1, dim)), phi])
        theta = np.concatenate([np.zeros((1, dim)), theta])
    return phi, theta
