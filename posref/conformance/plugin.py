"""The pytest door to the conformance suite.

Installed with posref (entry point ``pytest11``), it adds options and, when
``--posref-adapter`` is given, one test item per golden case::

    pytest --posref-adapter mylib.posref_adapter --posref-dtype bfloat16

Item ids are stable: ``posref[<dtype>]::<case id>`` for golden cases and
``posref[<dtype>]::fuzz.<function>`` for the hypothesis differential cases
of a function (``--posref-max-examples``, ``--posref-seed``).  Every item
calls :func:`posref.conformance.check`, the engine of ``posref check``,
with the same options, so the two agree case by case: ``pass`` passes;
``fail``, ``crash``, ``timeout``, ``wrong_error`` and ``error`` fail;
``known`` (a listed divergence: a built-in adapter's own list, and
``--posref-known`` files) is an xfail with its reason; ``lenient`` and
``fixed`` pass with a :class:`PosrefLenientWarning`; under
``--posref-strict`` ``lenient``, ``known`` and ``fixed`` fail, as under
``posref check --strict``; ``not_implemented`` and ``skipped`` are pytest
skips.  Option mistakes (an unknown family, function or case, an unknown id
in a known file, a timeout that is not a positive finite number) are usage
errors, as with ``posref check``.  ``--posref-in-process`` calls the adapter in pytest's own process,
for debugging.  Without ``--posref-adapter`` the plugin adds nothing.
"""

from __future__ import annotations

import warnings

import pytest


class PosrefLenientWarning(UserWarning):
    """An invalid input was accepted (``lenient``), or a known divergence passes now (``fixed``): reported, and
    a failure only with ``--posref-strict``."""


def pytest_addoption(parser: pytest.Parser) -> None:
    from posref.conformance.session import count, seconds

    group = parser.getgroup("posref", "posref conformance")
    group.addoption("--posref-adapter", default=None,
                    help="adapter to check: built-in name, module, module:attribute or entry point")
    group.addoption("--posref-dtype", default="float32", choices=["float64", "float32", "float16", "bfloat16"],
                    help="dtype the adapter computes in (default float32)")
    group.addoption("--posref-device", default="cpu", help="device the adapter computes on (default cpu)")
    group.addoption("--posref-family", action="append", default=None, help="only this family (repeatable)")
    group.addoption("--posref-function", action="append", default=None, help="only this spec function (repeatable)")
    group.addoption("--posref-case", action="append", default=None, help="only this case id (repeatable)")
    group.addoption("--posref-corpus", default=None, help="read cases from this golden corpus directory")
    group.addoption("--posref-known", "--posref-xfails", dest="posref_known", action="append", default=None,
                    help="file of known divergences (case id  # reason); every id must name a case (repeatable; "
                         "added to a built-in adapter's own list)")
    group.addoption("--posref-ignore-known", action="store_true", default=False,
                    help="do not apply a built-in adapter's own list of known divergences")
    group.addoption("--posref-timeout", type=seconds, default=60.0,
                    help="seconds per case, positive and finite (default 60); the worker is killed past it")
    group.addoption("--posref-max-examples", type=count, default=25,
                    help="hypothesis differential cases per function (0: golden cases only; default 25)")
    group.addoption("--posref-seed", type=count, default=0, help="hypothesis seed, 0 or more (default 0)")
    group.addoption("--posref-strict", action="store_true", default=False,
                    help="also fail lenient, known and fixed cases, as posref check --strict")
    group.addoption("--posref-in-process", action="store_true", default=False,
                    help="for debugging: call the adapter in pytest's own process (no protection from crashes)")


def _verdict(result, strict: bool) -> None:
    """Turn a CaseResult into the pytest outcome that ``posref check`` gives it."""
    from posref.conformance.runner import STRICT_FAILING

    if result.status in ("not_implemented", "skipped"):
        pytest.skip(f"{result.status.replace('_', ' ')}: {result.message}")
    if result.status == "pass":
        return
    if result.status in STRICT_FAILING and result.status in ("lenient", "known", "fixed") and not strict:
        if result.status == "known":
            pytest.xfail(f"known divergence ({result.observed}): {result.reason or result.message}")
        warnings.warn(PosrefLenientWarning(f"{result.case_id} ({result.status}): {result.message}"), stacklevel=1)
        return
    raise PosrefCaseFailure(result)


def _check(adapter, **options):
    """:func:`posref.conformance.check` for one item; Ctrl-C and posref's own failure end the item."""
    from posref.conformance.engine import check

    run = check(adapter, **options)
    if run.interrupted:
        raise KeyboardInterrupt
    if run.internal_error:
        raise RuntimeError(f"posref failed: {run.internal_error}")
    return run


class PosrefCaseItem(pytest.Item):
    """One golden case run against the adapter."""

    def __init__(self, *, case, adapter, timeout, known, strict=False, **kwargs):
        super().__init__(**kwargs)
        self.case = case
        self.adapter = adapter
        self.timeout = timeout
        self.known = known
        self.strict = strict

    def runtest(self) -> None:
        run = _check(self.adapter, cases=[self.case], known=self.known, max_examples=0, timeout=self.timeout)
        _verdict(run.results[0], self.strict)

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, PosrefCaseFailure):
            r = excinfo.value.result
            lines = [f"{r.status}: {r.message}", f"function {r.function}, dtype {r.dtype}"]
            for name, c in r.outputs.items():
                lines.append(f"  {name}: max abs {c['max_abs_error']:.3g}, max rel {c['max_rel_error']:.3g}, "
                             f"max ULP {c['max_ulp']:.3g}, budget share {c['budget_share']:.3g}")
            if r.diagnosis:
                lines.append(f"diagnosis: {r.diagnosis.get('text', '')}")
            if r.status == "known":
                lines.append(f"known divergence: {r.reason}")
            lines.append(f"reproduce: {r.repro}")
            return "\n".join(lines)
        return pytest.Item.repr_failure(self, excinfo)  # also PosrefFuzzItem's, which borrows this method

    def reportinfo(self):
        return self.path, None, f"posref[{self.adapter.dtype}]::{self.case.id}"


class PosrefFuzzItem(pytest.Item):
    """Hypothesis differential cases of one function, each failure shrunk to a minimal example."""

    def __init__(self, *, function, adapter, timeout, max_examples, seed, known=None, strict=False, **kwargs):
        super().__init__(**kwargs)
        self.function = function
        self.adapter = adapter
        self.timeout = timeout
        self.max_examples = max_examples
        self.seed = seed
        self.known = known or {}
        self.strict = strict

    def runtest(self) -> None:
        run = _check(self.adapter, functions=[self.function], golden=False, known=self.known,
                     max_examples=self.max_examples, seed=self.seed, timeout=self.timeout)
        for result in run.results:
            _verdict(result, self.strict)

    repr_failure = PosrefCaseItem.repr_failure

    def reportinfo(self):
        return self.path, None, f"posref[{self.adapter.dtype}]::fuzz.{self.function}"


class PosrefCaseFailure(Exception):
    def __init__(self, result):
        super().__init__(result.message)
        self.result = result


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    spec = config.getoption("--posref-adapter")
    if not spec:
        return
    from posref.conformance.adapter import AdapterError, load_adapter
    from posref.conformance.session import UsageError, fuzz_functions, plan_check

    dtype = config.getoption("--posref-dtype")
    device = config.getoption("--posref-device")
    try:  # the options first, as posref check does: no adapter code runs for a mistake
        plan = plan_check(spec, dtype=dtype, corpus=config.getoption("--posref-corpus"),
                          families=config.getoption("--posref-family"),
                          functions=config.getoption("--posref-function"),
                          case_ids=config.getoption("--posref-case"),
                          known_files=config.getoption("posref_known") or [],
                          builtin_known=not config.getoption("--posref-ignore-known"),
                          known_option="--posref-known")
    except UsageError as exc:
        raise pytest.UsageError(f"posref: {exc}") from None
    selection, known = plan.selection, plan.known
    try:
        if config.getoption("--posref-in-process"):
            adapter = load_adapter(spec, dtype=dtype, device=device)
        else:
            from posref.conformance.worker import start_adapter

            adapter = start_adapter(spec, dtype=dtype, device=device)
    except AdapterError as exc:
        raise pytest.UsageError(f"posref: {exc}") from None
    config.add_cleanup(adapter.close)
    cases = selection.build(dtype)
    timeout = config.getoption("--posref-timeout")
    max_examples = config.getoption("--posref-max-examples")
    if max_examples > 0 and not selection.case_ids:
        for function in fuzz_functions(selection):
            if adapter.function(function) is None:
                continue
            items.append(PosrefFuzzItem.from_parent(
                session, name=f"posref[{dtype}]::fuzz.{function}", function=function, adapter=adapter,
                timeout=timeout, max_examples=max_examples, seed=config.getoption("--posref-seed"),
                known=known, strict=config.getoption("--posref-strict"),
            ))
    for case in cases:
        items.append(PosrefCaseItem.from_parent(
            session, name=f"posref[{dtype}]::{case.id}", case=case, adapter=adapter, timeout=timeout,
            known=known, strict=config.getoption("--posref-strict"),
        ))
