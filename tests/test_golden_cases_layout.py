"""The golden cases live one family to a module: ``posref/golden/cases/<family>.py``.

Each module is named after a family of the catalogue and holds that
family's cases only, and the fuzz strategies of that family's functions
(the random counterpart of the fixed cases); every family has one; the
package collects them all, found by ``pkgutil`` and not by a list kept by
hand; a module's cases do not depend on what was imported before it.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import subprocess
import sys

import pytest

import posref
import posref.golden.cases as package
import posref.golden.strategies as strategies
from posref.golden.registry import CaseSpec
from posref.tolerance import TOLERANCE_CLASSES, Registry

CATALOGUE = {entry.name: entry.family for entry in posref.spec_functions()}
FAMILIES = sorted(set(CATALOGUE.values()))
NAMES = sorted(info.name for info in pkgutil.iter_modules(package.__path__))
FAMILY_NAMES = [name for name in NAMES if not name.startswith("_")]
MODULES = {name: importlib.import_module(f"posref.golden.cases.{name}") for name in NAMES}


def test_every_module_is_named_after_a_family():
    unknown = sorted(set(FAMILY_NAMES) - set(FAMILIES))
    assert not unknown, f"modules of posref/golden/cases/ named after no family of the catalogue: {unknown}"


def test_every_family_has_a_case_module():
    missing = sorted(set(FAMILIES) - set(FAMILY_NAMES))
    assert not missing, f"families without posref/golden/cases/<family>.py: {missing}"


def test_helper_modules_hold_no_cases():
    for name in NAMES:
        if name.startswith("_"):
            assert not hasattr(MODULES[name], "CASES"), f"{name} is not collected (leading _) but defines CASES"


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_every_case_of_a_module_is_of_its_family(name):
    module = MODULES[name]
    assert isinstance(module.CASES, list) and module.CASES, f"{name}.CASES must be a non-empty list"
    for case in module.CASES:
        assert isinstance(case, CaseSpec), (name, case)
        assert case.function in CATALOGUE, f"{name}: {case.id} is of {case.function!r}, no spec function"
        assert CATALOGUE[case.function] == name, (
            f"{name}: {case.id} is of {case.function}, family {CATALOGUE[case.function]}")
    not_golden = getattr(module, "NOT_GOLDEN", {})
    assert isinstance(not_golden, dict), f"{name}.NOT_GOLDEN must be a dict"
    for function, reason in not_golden.items():
        assert CATALOGUE.get(function) == name, f"{name}.NOT_GOLDEN names {function!r}, not of this family"
        assert isinstance(reason, str) and reason.strip(), f"{name}.NOT_GOLDEN[{function!r}] gives no reason"


def test_the_package_collects_every_module_in_family_order():
    assert list(package.FAMILY_MODULES) == FAMILY_NAMES
    assert all(package.FAMILY_MODULES[name] is MODULES[name] for name in FAMILY_NAMES)
    expected = [case for name in FAMILY_NAMES for case in MODULES[name].CASES]
    assert [id(c) for c in package.CASES] == [id(c) for c in expected]
    reasons = {f: r for name in FAMILY_NAMES for f, r in getattr(MODULES[name], "NOT_GOLDEN", {}).items()}
    assert package.NOT_GOLDEN == reasons


def test_public_names_stay_importable():
    from posref.golden.cases import CASES, HARD_POSITIONS, NOT_GOLDEN
    from posref.golden.cases._common import HARD_POSITIONS as shared

    assert CASES and NOT_GOLDEN and HARD_POSITIONS is shared
    assert HARD_POSITIONS == [0, 1, 4095, 4096, 8191, 8192, 32768, 131071, 999_999, 1_048_575]


def test_every_spec_function_has_a_valid_case_or_a_reason():
    valid = {c.function for c in package.CASES if c.expect_error is None}
    without = sorted(set(CATALOGUE) - valid - set(package.NOT_GOLDEN))
    assert not without, f"functions with neither a valid golden case nor a NOT_GOLDEN reason: {without}"
    both = sorted(valid & set(package.NOT_GOLDEN))
    assert not both, f"functions with golden cases that NOT_GOLDEN says have none: {both}"


def test_case_ids_are_unique():
    ids = [c.id for c in package.CASES]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicates, f"case ids in more than one place: {duplicates}"


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_a_module_alone_gives_the_same_cases(name, monkeypatch):
    # run the module's file afresh, under another name: its cases must not depend on what ran before;
    # its strategies register into a registry of their own (the real one refuses a second module)
    fresh_strategies = Registry("fuzz strategy", load=lambda: None)
    monkeypatch.setattr(strategies, "STRATEGIES", fresh_strategies)
    path = MODULES[name].__file__
    spec = importlib.util.spec_from_file_location(f"_posref_fresh_{name}", path)
    fresh = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fresh)
    monkeypatch.undo()
    assert fresh.CASES == MODULES[name].CASES
    assert getattr(fresh, "NOT_GOLDEN", {}) == getattr(MODULES[name], "NOT_GOLDEN", {})
    registered = {f: s.tolerance for f, s in strategies.STRATEGIES.items()
                  if s.draw_case.__module__ == MODULES[name].__name__}
    assert {f: s.tolerance for f, s in fresh_strategies.items()} == registered


# -- fuzz strategies ---------------------------------------------------------------------------------


def test_every_function_with_a_valid_case_has_a_strategy():
    valid = {c.function for c in package.CASES if c.expect_error is None}
    missing = sorted(valid - set(strategies.STRATEGIES))
    assert not missing, (f"functions with valid golden cases but no strategy: {missing}; add a "
                         f"@strategy(\"<function>\", tolerance=...) to posref/golden/cases/<family>.py")


def test_every_strategy_is_registered_by_its_family_s_module_under_its_function_s_name():
    for function, entry in strategies.STRATEGIES.items():
        assert function in CATALOGUE, f"a strategy is registered for {function!r}, which is no spec function"
        module = f"posref.golden.cases.{CATALOGUE[function]}"
        assert strategies.STRATEGIES.origin(function) == module == entry.draw_case.__module__, (
            f"the strategy of {function} is registered by {strategies.STRATEGIES.origin(function)}, not {module}")
        assert entry.function == function and entry.draw_case.__name__ == f"{function}_case"
        assert entry.tolerance in TOLERANCE_CLASSES, f"{function}: unregistered tolerance class {entry.tolerance!r}"


def test_a_strategy_draws_with_the_tolerance_of_its_function_s_golden_cases():
    by_function: dict[str, set[str]] = {}
    for case in package.CASES:
        if case.expect_error is None:
            by_function.setdefault(case.function, set()).add(case.tolerance)
    for function, entry in strategies.STRATEGIES.items():
        if function in by_function:
            assert entry.tolerance in by_function[function], (function, entry.tolerance, by_function[function])


def test_importing_the_cases_imports_no_hypothesis():
    code = (
        "import sys\n"
        "import posref.golden.cases\n"
        "from posref.golden.strategies import STRATEGIES\n"
        "assert len(STRATEGIES) > 0\n"
        "assert 'hypothesis' not in sys.modules, 'a golden cases module imported hypothesis'\n"
        "assert not [m for m in sys.modules if m.startswith('posref.conformance')], 'golden imported conformance'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_strategies_registry_loads_the_case_modules_itself():
    code = (
        "import sys\n"
        "from posref.golden.strategies import STRATEGIES\n"
        "assert 'posref.golden.cases' not in sys.modules\n"
        "assert 'apply_rope' in STRATEGIES\n"
        "assert 'posref.golden.cases.rope' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
