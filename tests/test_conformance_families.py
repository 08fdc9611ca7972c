"""One family, one place: each family's error models, hooks and fuzz strategies live in its own module."""

import subprocess
import sys

import pytest

import posref
from posref._spec import SPEC_FUNCTIONS
from posref.conformance import tolerance
from posref.conformance.families import FAMILY_MODULES
from posref.conformance.families._draw import STRATEGIES
from posref.conformance.fuzz import FUZZ_FUNCTIONS, FUZZ_TOLERANCE
from posref.golden.cases import CASES
from posref.golden.cases_field import FIELD_CASES

PACKAGE = "posref.conformance.families"
FAMILIES = sorted({entry.family for entry in posref.spec_functions()})

#: Every registry keyed by spec function: the hooks of the shared models, and the fuzz strategies.
BY_FUNCTION = {**tolerance.HOOKS, "strategy": STRATEGIES}


def test_every_family_of_the_catalogue_has_its_module_and_every_module_is_a_family():
    assert sorted(FAMILY_MODULES) == FAMILIES
    for family, module in FAMILY_MODULES.items():
        assert module.__name__ == f"{PACKAGE}.{family}"


def test_every_tolerance_class_named_by_a_golden_case_is_registered():
    named = {case.tolerance for case in [*CASES, *FIELD_CASES] if case.expect_error is None}
    missing = sorted(named - set(tolerance.TOLERANCE_CLASSES))
    assert missing == [], f"golden cases name unregistered tolerance classes: {missing}"
    assert set(FUZZ_TOLERANCE.values()) <= set(tolerance.TOLERANCE_CLASSES)


def test_every_spec_function_with_a_valid_golden_case_has_a_registered_strategy():
    with_golden = {case.function for case in CASES if case.expect_error is None}
    missing = sorted(with_golden - set(STRATEGIES))
    assert missing == [], f"no strategy registered for {missing}: add one to {PACKAGE}.<family>"
    assert set(FUZZ_FUNCTIONS) == set(STRATEGIES)


@pytest.mark.parametrize("kind", sorted(BY_FUNCTION))
def test_every_registration_names_a_spec_function_of_its_own_module_s_family(kind):
    registry = BY_FUNCTION[kind]
    for function in registry:
        assert function in SPEC_FUNCTIONS, f"{kind} registered for {function!r}, which is no spec function"
        family = SPEC_FUNCTIONS[function].family
        assert registry.origin(function) == f"{PACKAGE}.{family}", (
            f"{kind} of {function} (family {family}) is registered by {registry.origin(function)}")


def test_no_module_defines_what_is_registered_under_another_family_s_function():
    registered = {}  # id of a registered callable -> functions it is registered under
    for kind, registry in BY_FUNCTION.items():
        for function, value in registry.items():
            hook = value.draw_case if kind == "strategy" else value
            registered.setdefault(id(hook), []).append(function)
    for family, module in FAMILY_MODULES.items():
        for name, value in vars(module).items():
            if callable(value) and getattr(value, "__module__", None) == module.__name__:
                others = [f for f in registered.get(id(value), []) if SPEC_FUNCTIONS[f].family != family]
                assert others == [], f"{module.__name__}.{name} is registered under {others} of another family"


def test_strategies_are_named_after_their_function_and_models_live_in_the_core_or_a_family():
    for function, entry in STRATEGIES.items():
        assert entry.draw_case.__name__ == f"{function}_case"
        assert entry.function == function and entry.tolerance in tolerance.TOLERANCE_CLASSES
    for name in tolerance.TOLERANCE_CLASSES:
        origin = tolerance.TOLERANCE_CLASSES.origin(name)
        assert origin == tolerance.__name__ or origin.removeprefix(f"{PACKAGE}.") in FAMILY_MODULES, (name, origin)


def test_a_name_registered_by_two_modules_is_refused():
    registry = tolerance.Registry("test hook")
    registry.register("apply_rope", len, origin=f"{PACKAGE}.rope")
    registry.register("apply_rope", len, origin=f"{PACKAGE}.rope")  # the same module again: no conflict
    with pytest.raises(ValueError, match="'apply_rope' is registered twice: in .*rope and in .*xpos"):
        registry.register("apply_rope", len, origin=f"{PACKAGE}.xpos")


def test_the_core_imports_the_families_on_first_read_and_the_families_import_no_hypothesis():
    code = (
        "import sys\n"
        "from posref.conformance import tolerance\n"
        f"assert {PACKAGE!r} not in sys.modules\n"
        "assert 'frequency' in tolerance.TOLERANCE_CLASSES\n"
        f"assert {PACKAGE!r} in sys.modules\n"
        "assert 'hypothesis' not in sys.modules, 'a family module imported hypothesis'\n"
        "from posref.conformance.tolerance import dynamic_ntk_alpha_error, rope_budget, t5_near_boundary\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
