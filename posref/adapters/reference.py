"""The specification itself as an adapter: every spec function, in float64.

It passes every case by construction and is used to check the runner; it is
also the template for writing an adapter.
"""

import posref

ADAPTER_NAME = "posref-reference"
ADAPTER_VERSION = posref.__version__
ADAPTER_DTYPES = ("float64",)
ADAPTER_DEVICES = ("cpu",)


def available():
    return None


def __getattr__(name):
    if name in posref.SPEC_FUNCTIONS:
        return posref.SPEC_FUNCTIONS[name].function
    raise AttributeError(name)
