"""The in-memory form of one golden case."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["GoldenCase", "LOW_PRECISION_DTYPES"]

#: Dtypes whose rounded copies of the floating inputs every case carries.
LOW_PRECISION_DTYPES = ("float32", "float16", "bfloat16")


@dataclass(frozen=True)
class GoldenCase:
    """One call of one spec function, with its inputs and expected outputs.

    Attributes
    ----------
    id : str
        Unique, stable, filesystem-safe id: ``[a-z0-9_.-]+`` (e.g.
        ``"rope.apply_rope.half.long_context"``).
    function : str
        Name of the spec function (a key of ``posref.SPEC_FUNCTIONS``).
    family : str
        Family of that function.
    params : dict
        Keyword arguments, JSON-serialisable (str, int, float, bool, None,
        lists of those).
    inputs : dict of str to numpy.ndarray
        Positional arguments in call order (dicts keep insertion order),
        float64 or int64.
    outputs : dict of str to numpy.ndarray
        Expected float64 (or int64) results computed from ``inputs``: one
        entry ``"output"`` for a single array, ``"output_0"``,
        ``"output_1"``, ... for a tuple.  Empty for an error case.
    rounded : dict of str to dict of str to numpy.ndarray
        For each dtype in :data:`LOW_PRECISION_DTYPES`: the floating inputs
        rounded to that dtype (stored in that dtype) and the float64
        outputs the spec gives for those rounded inputs, keyed
        ``"inputs.<name>"`` and ``"outputs.<name>"``.
    budgets : dict of str to dict of str to numpy.ndarray
        For each dtype an implementation can be checked in (``float64`` and
        the :data:`LOW_PRECISION_DTYPES` whose inputs fit): the float64
        per-element allowed absolute error of every output, from posref's
        error model (:mod:`posref.conformance.tolerance`) for the inputs
        and expected outputs of that dtype.  ``posref check`` judges with
        these numbers, and so can a test in another language.  Empty for an
        error case and for cases read from a version 1 corpus.
    tolerance : str
        Name of the tolerance class the comparison uses.
    expect_error : str or None
        ``"ValueError"`` or ``"TypeError"`` for a case that a conforming
        implementation must reject; ``None`` otherwise.
    error_match : str or None
        A fragment the error message must contain (usually the parameter name).
    description : str
        One line saying what the case exercises.
    seed : int
        Seed of the case's own random generator (0 when it draws nothing).
    """

    id: str
    function: str
    family: str
    params: dict[str, Any]
    inputs: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]
    rounded: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    tolerance: str = "default"
    budgets: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    expect_error: str | None = None
    error_match: str | None = None
    description: str = ""
    seed: int = 0
