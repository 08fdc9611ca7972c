"""Fuzz strategies: the random counterpart of the golden cases, their registration and drawing helpers.

A golden case is one fixed call of a spec function; a strategy draws
random valid calls of it, which ``posref check`` runs after the golden
cases (:mod:`posref.conformance.fuzz`).  Each family's strategies live
with its golden cases, in ``posref/golden/cases/<family>.py``, one per
spec function, registered with :func:`strategy`::

    @strategy("rope_frequencies", tolerance="frequency")
    def rope_frequencies_case(draw, ctx):
        params = {"dim": draw(even(2, 256)), "base": draw(bases())}
        return ctx.case(draw, {}, params)

``draw`` is hypothesis' draw function; ``ctx`` turns the drawn inputs
and parameters into a :class:`~posref.golden.registry.CaseSpec` with
``ctx.case(draw, inputs, params, tolerance=None)``.  The fuzzer passes a
``DrawContext`` of :mod:`posref.conformance.fuzz`, which also keeps the
case inside the options the adapter under test declares
(``ADAPTER_OPTIONS``).  ``tolerance`` is the class of the function's
golden cases, which the drawn cases are judged under
(``posref.conformance.fuzz.FUZZ_TOLERANCE``).

:data:`STRATEGIES` is complete whenever it is read: its first read imports
:mod:`posref.golden.cases`, which imports every family's module.

hypothesis is a test dependency, and the case modules are imported to
build the golden corpus too (``posref golden generate``): nothing here
imports it before a strategy is built.  ``st`` is
``hypothesis.strategies``, imported on first use, and ``composite`` is
hypothesis' ``@composite``, applied when the decorated function is called.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from posref.golden.registry import Arange, CaseSpec, Values
from posref.tolerance import Registry

__all__ = [
    "COMMON_BASES",
    "MAX_POSITION",
    "SHORT_POSITION",
    "STRATEGIES",
    "Strategy",
    "bases",
    "composite",
    "even",
    "lead_shape",
    "lengths",
    "load_cases",
    "model_bases",
    "position",
    "positions_1d",
    "positions_nd",
    "query_key_positions",
    "scaling_factors",
    "st",
    "strategy",
]

#: Largest position a fuzzed RoPE, sinusoidal, ALiBi, T5 or Shaw case uses (about one million).
MAX_POSITION = 2**20

#: Largest position of a fuzzed xPos case: xPos scales grow like
#: ``zeta ** (position / scale_base)`` and leave float32's range at long
#: positions for small scale bases, which the spec rejects.
SHORT_POSITION = 4096

#: Bases of released models; drawn alongside arbitrary bases in [2, 1e7].
COMMON_BASES = (10_000.0, 500_000.0, 1_000_000.0, 10.0)


# -- registration ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Strategy:
    """The registered strategy of one spec function.

    ``draw_case(draw, ctx)`` returns a drawn
    :class:`~posref.golden.registry.CaseSpec`; ``tolerance`` is the class
    the drawn cases are judged under.
    """

    function: str
    tolerance: str
    draw_case: Callable[[Any, Any], CaseSpec]


def load_cases() -> None:
    """Import every family module of :mod:`posref.golden.cases`, so that all strategies are registered."""
    import posref.golden.cases  # noqa: F401  (each family module registers its strategies on import)


#: The strategy of every fuzzed spec function, registered with :func:`strategy`.
STRATEGIES: Registry[Strategy] = Registry("fuzz strategy", load=load_cases)


def strategy(function: str, *, tolerance: str) -> Callable[[Callable], Callable]:
    """Register the decorated ``draw_case(draw, ctx)`` as the strategy of spec function ``function``.

    Parameters
    ----------
    function : str
        A spec function of the registering module's family (the module is
        ``posref/golden/cases/<family>.py``).
    tolerance : str
        The tolerance class of the function's golden cases; a drawn case may
        name another (``ctx.case(..., tolerance=...)``).

    Returns
    -------
    callable
        The decorator; it returns the function unchanged.
    """
    def register(draw_case: Callable) -> Callable:
        STRATEGIES.register(function, Strategy(function, tolerance, draw_case), origin=draw_case.__module__)
        return draw_case

    return register


class _LazyStrategies:
    """``hypothesis.strategies``, imported on the first attribute read."""

    def __getattr__(self, name: str) -> Any:
        from hypothesis import strategies

        return getattr(strategies, name)


#: ``hypothesis.strategies``, imported when a strategy is first built.
st: Any = _LazyStrategies()


def composite(definition: Callable) -> Callable:
    """hypothesis' ``@composite``, applied when the decorated function is called (not at import)."""

    built: list[Callable] = []

    @functools.wraps(definition)
    def build(*args: Any, **kwargs: Any):
        if not built:
            built.append(st.composite(definition))
        return built[0](*args, **kwargs)

    return build


# -- drawing helpers -------------------------------------------------------------------------


def even(low: int, high: int):
    """Even integers in ``[low, high]``."""
    return st.integers(low // 2, high // 2).map(lambda k: 2 * k)


def bases():
    """RoPE bases: those of released models, or any in [2, 1e7]."""
    return st.one_of(st.sampled_from(COMMON_BASES), st.floats(2.0, 1e7))


def model_bases():
    """Bases of released models only, no tiny ones (for models without an angle term in their budget)."""
    return st.one_of(st.sampled_from(COMMON_BASES[:3]), st.floats(1000.0, 1e7))


def scaling_factors():
    """Context-extension factors of the RoPE scaling rules."""
    return st.one_of(st.sampled_from((1.0, 2.0, 4.0, 8.0, 16.0, 32.0)), st.floats(1.0, 64.0))


def lengths():
    """Original context lengths (``original_max_position_embeddings``)."""
    return st.one_of(st.sampled_from((2048, 4096, 8192, 32_768, 131_072)), st.integers(1, 262_144))


def position(high: int):
    """One position up to ``high``: small, one of the golden cases' hard positions, or any."""
    from posref.golden.cases import HARD_POSITIONS

    hard = [p for p in HARD_POSITIONS if p <= high]
    return st.one_of(st.integers(0, min(64, high)), st.sampled_from(hard), st.integers(0, high))


@composite
def positions_1d(draw, length: int, high: int = MAX_POSITION):
    """``length`` positions: a run ``start, start + 1, ...`` or arbitrary values."""
    if not draw(st.booleans()):
        start = draw(position(max(high - length + 1, 0)))
        return Arange(start, start + length)
    return Values(draw(st.lists(position(high), min_size=length, max_size=length)), "int64")


@composite
def positions_nd(draw, high: int = MAX_POSITION):
    """Positions of shape (T,) or (B, T)."""
    length = draw(st.integers(1, 8))
    if not draw(st.booleans()):
        return draw(positions_1d(length, high))
    rows = draw(st.integers(1, 3))
    row = st.lists(position(high), min_size=length, max_size=length)
    return Values(draw(st.lists(row, min_size=rows, max_size=rows)), "int64")


def lead_shape():
    """Leading (batch, head) dimensions: none, one or two, each 1 to 3."""
    return st.lists(st.integers(1, 3), max_size=2).map(tuple)


@composite
def query_key_positions(draw, high: int = MAX_POSITION):
    """``query_positions`` (1 to 8) and ``key_positions`` (1 to 12) of a relative scheme."""
    return {"query_positions": draw(positions_1d(draw(st.integers(1, 8)), high)),
            "key_positions": draw(positions_1d(draw(st.integers(1, 12)), high))}
