"""The pytest door to the conformance suite.

Installed with posref (entry point ``pytest11``), it adds options and, when
``--posref-adapter`` is given, one test item per golden case::

    pytest --posref-adapter mylib.posref_adapter --posref-dtype bfloat16

Item ids are stable: ``posref[<dtype>]::<case id>`` for golden cases and
``posref[<dtype>]::fuzz.<function>`` for the hypothesis differential cases
of a function (``--posref-max-examples``, ``--posref-seed``).  Items use the same
runner, error model and worker process as ``posref check``, and agree with
it: ``pass`` passes; ``fail``, ``error``, ``crash`` and ``timeout`` fail;
``lenient`` passes with a :class:`PosrefLenientWarning` (fails under
``--posref-strict``); "not implemented" and "skipped" cases are pytest
skips; expected failures (``--posref-xfails``) are xfails.  Option
mistakes (an unknown family, an unknown id in the xfails file, a timeout
that is not a positive finite number) are usage errors, as with ``posref
check``.  ``--posref-in-process`` calls the adapter in pytest's own process,
for debugging.  Without ``--posref-adapter`` the plugin adds nothing.
"""

from __future__ import annotations

import warnings

import pytest


class PosrefLenientWarning(UserWarning):
    """An invalid input was accepted (status ``lenient``): reported, and a failure only with ``--posref-strict``."""


def pytest_addoption(parser: pytest.Parser) -> None:
    from posref.conformance.session import count, seconds

    group = parser.getgroup("posref", "posref conformance")
    group.addoption("--posref-adapter", default=None,
                    help="adapter to check: built-in name, module, module:attribute or entry point")
    group.addoption("--posref-dtype", default="float32", choices=["float64", "float32", "float16", "bfloat16"],
                    help="dtype the adapter computes in (default float32)")
    group.addoption("--posref-device", default="cpu", help="device the adapter computes on (default cpu)")
    group.addoption("--posref-family", action="append", default=None, help="only this family (repeatable)")
    group.addoption("--posref-corpus", default=None, help="read cases from this golden corpus directory")
    group.addoption("--posref-xfails", default=None,
                    help="file of case ids expected to fail; every id must name a case")
    group.addoption("--posref-timeout", type=seconds, default=60.0,
                    help="seconds per case, positive and finite (default 60); the worker is killed past it")
    group.addoption("--posref-max-examples", type=count, default=25,
                    help="hypothesis differential cases per function (0: golden cases only; default 25)")
    group.addoption("--posref-seed", type=count, default=0, help="hypothesis seed, 0 or more (default 0)")
    group.addoption("--posref-strict", action="store_true", default=False,
                    help="fail cases whose invalid input was accepted (lenient), as posref check --strict")
    group.addoption("--posref-in-process", action="store_true", default=False,
                    help="for debugging: call the adapter in pytest's own process (no protection from crashes)")


def _verdict(result, strict: bool) -> None:
    """Turn a CaseResult into the pytest outcome ``posref check`` would give it."""
    if result.status in ("not_implemented", "skipped"):
        pytest.skip(f"{result.status.replace('_', ' ')}: {result.message}")
    if result.status == "lenient" and not strict:
        warnings.warn(PosrefLenientWarning(f"{result.case_id}: {result.message}"), stacklevel=1)
        return
    if result.status not in ("pass", "xpass"):
        raise PosrefCaseFailure(result)


class PosrefCaseItem(pytest.Item):
    """One golden case run against the adapter."""

    def __init__(self, *, case, adapter, timeout, expected_failure, strict=False, **kwargs):
        super().__init__(**kwargs)
        self.case = case
        self.adapter = adapter
        self.timeout = timeout
        self.strict = strict
        if expected_failure:
            self.add_marker(pytest.mark.xfail(reason="listed in --posref-xfails", strict=False))

    def runtest(self) -> None:
        from posref.conformance.runner import run_case

        _verdict(run_case(self.adapter, self.case, timeout=self.timeout), self.strict)

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, PosrefCaseFailure):
            r = excinfo.value.result
            lines = [f"{r.status}: {r.message}", f"function {r.function}, dtype {r.dtype}"]
            for name, c in r.outputs.items():
                lines.append(f"  {name}: max abs {c['max_abs_error']:.3g}, max rel {c['max_rel_error']:.3g}, "
                             f"max ULP {c['max_ulp']:.3g}, budget share {c['budget_share']:.3g}")
            lines.append(f"reproduce: {r.repro}")
            return "\n".join(lines)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, f"posref[{self.adapter.dtype}]::{self.case.id}"


class PosrefFuzzItem(pytest.Item):
    """Hypothesis differential cases of one function, shrunk to a minimal failure."""

    def __init__(self, *, function, adapter, timeout, max_examples, seed, **kwargs):
        super().__init__(**kwargs)
        self.function = function
        self.adapter = adapter
        self.timeout = timeout
        self.max_examples = max_examples
        self.seed = seed

    def runtest(self) -> None:
        from posref.conformance.fuzz import fuzz

        for result in fuzz(self.adapter, functions=[self.function], max_examples=self.max_examples,
                           seed=self.seed, timeout=self.timeout):
            _verdict(result, strict=True)

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
    from posref.conformance.session import UsageError, fuzz_functions, read_xfails, select_cases

    dtype = config.getoption("--posref-dtype")
    device = config.getoption("--posref-device")
    try:  # the options first, as posref check does: no adapter code runs for a mistake
        selection = select_cases(corpus=config.getoption("--posref-corpus"),
                                 families=config.getoption("--posref-family"))
        xfail_file = config.getoption("--posref-xfails")
        xfails = set(read_xfails(xfail_file, selection.known_ids)) if xfail_file else set()
    except UsageError as exc:
        raise pytest.UsageError(f"posref: {exc}") from None
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
    if max_examples > 0:
        for function in fuzz_functions(selection):
            items.append(PosrefFuzzItem.from_parent(
                session, name=f"posref[{dtype}]::fuzz.{function}", function=function, adapter=adapter,
                timeout=timeout, max_examples=max_examples, seed=config.getoption("--posref-seed"),
            ))
    for case in cases:
        items.append(PosrefCaseItem.from_parent(
            session, name=f"posref[{dtype}]::{case.id}", case=case, adapter=adapter, timeout=timeout,
            expected_failure=case.id in xfails, strict=config.getoption("--posref-strict"),
        ))
