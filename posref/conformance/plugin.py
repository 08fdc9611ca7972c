"""The pytest door to the conformance suite.

Installed with posref (entry point ``pytest11``), it adds options and, when
``--posref-adapter`` is given, one test item per golden case::

    pytest --posref-adapter mylib.posref_adapter --posref-dtype bfloat16

Item ids are stable: ``posref[<dtype>]::<case id>`` for golden cases and
``posref[<dtype>]::fuzz.<function>`` for the hypothesis differential cases
of a function (``--posref-max-examples``, ``--posref-seed``).  Items use the same
runner and error model as ``posref check``: "not implemented" and "skipped"
cases are reported as pytest skips, expected failures (``--posref-xfails``)
as xfails.  Without ``--posref-adapter`` the plugin adds nothing.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("posref", "posref conformance")
    group.addoption("--posref-adapter", default=None,
                    help="adapter to check: built-in name, module, module:attribute or entry point")
    group.addoption("--posref-dtype", default="float32", choices=["float64", "float32", "float16", "bfloat16"],
                    help="dtype the adapter computes in (default float32)")
    group.addoption("--posref-device", default="cpu", help="device the adapter computes on (default cpu)")
    group.addoption("--posref-family", action="append", default=None, help="only this family (repeatable)")
    group.addoption("--posref-corpus", default=None, help="read cases from this golden corpus directory")
    group.addoption("--posref-xfails", default=None, help="file of case ids expected to fail")
    group.addoption("--posref-timeout", type=float, default=60.0, help="seconds per case (default 60)")
    group.addoption("--posref-max-examples", type=int, default=25,
                    help="hypothesis differential cases per function (0: golden cases only; default 25)")
    group.addoption("--posref-seed", type=int, default=0, help="hypothesis seed (default 0)")


class PosrefCaseItem(pytest.Item):
    """One golden case run against the adapter."""

    def __init__(self, *, case, adapter, timeout, expected_failure, **kwargs):
        super().__init__(**kwargs)
        self.case = case
        self.adapter = adapter
        self.timeout = timeout
        if expected_failure:
            self.add_marker(pytest.mark.xfail(reason="listed in --posref-xfails", strict=False))

    def runtest(self) -> None:
        from posref.conformance.runner import run_case

        result = run_case(self.adapter, self.case, timeout=self.timeout)
        if result.status in ("not_implemented", "skipped"):
            pytest.skip(f"{result.status.replace('_', ' ')}: {result.message}")
        if result.status != "pass":
            raise PosrefCaseFailure(result)

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
            if result.status == "not_implemented":
                pytest.skip(f"not implemented: {result.message}")
            if result.status != "pass":
                raise PosrefCaseFailure(result)

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
    from posref.cli import _read_xfails, _registry_cases
    from posref.conformance.adapter import AdapterError, load_adapter
    from posref.golden import read_corpus

    dtype = config.getoption("--posref-dtype")
    try:
        adapter = load_adapter(spec, dtype=dtype, device=config.getoption("--posref-device"))
    except AdapterError as exc:
        raise pytest.UsageError(str(exc)) from None
    families = config.getoption("--posref-family")
    corpus = config.getoption("--posref-corpus")
    if corpus:
        cases = [c for c in read_corpus(corpus) if families is None or c.family in families]
    else:
        cases = _registry_cases(families, [dtype] if dtype != "float64" else [], None)
    xfail_file = config.getoption("--posref-xfails")
    xfails = set(_read_xfails(xfail_file)) if xfail_file else set()
    max_examples = config.getoption("--posref-max-examples")
    if max_examples > 0:
        from posref._spec import SPEC_FUNCTIONS
        from posref.conformance.fuzz import FUZZ_FUNCTIONS

        for function in FUZZ_FUNCTIONS:
            if families is None or SPEC_FUNCTIONS[function].family in families:
                items.append(PosrefFuzzItem.from_parent(
                    session, name=f"posref[{dtype}]::fuzz.{function}", function=function, adapter=adapter,
                    timeout=config.getoption("--posref-timeout"), max_examples=max_examples,
                    seed=config.getoption("--posref-seed"),
                ))
    for case in cases:
        items.append(PosrefCaseItem.from_parent(
            session, name=f"posref[{dtype}]::{case.id}", case=case, adapter=adapter,
            timeout=config.getoption("--posref-timeout"), expected_failure=case.id in xfails,
        ))
