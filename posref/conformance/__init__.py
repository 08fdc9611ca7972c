"""The conformance suite: check an implementation of a position encoding against the spec.

:func:`check` is the engine behind ``posref check`` and the pytest plugin;
:mod:`~posref.conformance.runner` holds the statuses,
:mod:`~posref.conformance.tolerance` the error model that sets each budget.
"""

from __future__ import annotations

__all__ = ["CheckRun", "check"]


def __getattr__(name: str):
    if name in __all__:  # imported on first use: the pytest plugin imports this package at every start
        from posref.conformance import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'posref.conformance' has no attribute {name!r}")
