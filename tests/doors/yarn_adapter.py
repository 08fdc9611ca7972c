"""An adapter whose YaRN attention factor follows Hugging Face's rule for ``mscale`` alone.

``mscale`` is used only when ``mscale_all_dim`` is set too; otherwise the
factor is the paper's ``0.1 ln s + 1``.  Everything else conforms.
"""

import math

ADAPTER_NAME = "yarn-hf-rule"
ADAPTER_VERSION = "1"
ADAPTER_DTYPES = ("float64",)


def _g(s, m):
    return 0.1 * m * math.log(s) + 1.0 if s > 1.0 else 1.0


def yarn_attention_factor(scaling_factor, /, *, mscale=1.0, mscale_all_dim=0.0, attention_factor=None):
    if scaling_factor <= 0 or mscale < 0 or mscale_all_dim < 0:
        raise ValueError("scaling_factor must be positive and mscale, mscale_all_dim non-negative")
    if attention_factor is not None:
        if attention_factor <= 0:
            raise ValueError("attention_factor must be positive")
        return float(attention_factor)
    if mscale_all_dim == 0.0:
        return _g(scaling_factor, 1.0)
    return _g(scaling_factor, mscale) / _g(scaling_factor, mscale_all_dim)
