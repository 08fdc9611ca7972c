"""The error model by family: the core in ``posref/tolerance/__init__.py``, a family's own models in its module.

A family whose rounding needs a model or a hook of its own has
``posref/tolerance/<family>.py``; the core holds the models of no family.
The modules are found by discovery and imported on the first read of a
registry, and the error model imports nothing of the layers above it.
"""

import subprocess
import sys

import pytest

import posref
import posref.tolerance as tolerance
from posref import SPEC_FUNCTIONS
from posref.conformance.fuzz import FUZZ_TOLERANCE
from posref.golden.cases import CASES
from posref.golden.cases_field import FIELD_CASES

PACKAGE = "posref.tolerance"
FAMILIES = sorted({entry.family for entry in posref.spec_functions()})
FAMILY_MODULES = tolerance.load_families()

#: Every registry keyed by spec function: the hooks of the shared models.
HOOKS = dict(tolerance.HOOKS)


def test_every_module_is_named_after_a_family_of_the_catalogue():
    assert FAMILY_MODULES, "no family module found under posref/tolerance/"
    unknown = sorted(set(FAMILY_MODULES) - set(FAMILIES))
    assert unknown == [], f"modules of posref/tolerance/ named after no family of the catalogue: {unknown}"
    for family, module in FAMILY_MODULES.items():
        assert module.__name__ == f"{PACKAGE}.{family}"


def test_every_family_module_registers_something():
    """A module exists for a family's own models or hooks; a family judged by shared models alone has none."""
    origins = {registry.origin(name) for registry in (tolerance.TOLERANCE_CLASSES, *HOOKS.values())
               for name in registry}
    empty = sorted(family for family, module in FAMILY_MODULES.items() if module.__name__ not in origins)
    assert empty == [], f"family modules that register no model and no hook: {empty}"


def test_every_tolerance_class_named_by_a_golden_or_fuzzed_case_is_registered():
    named = {case.tolerance for case in [*CASES, *FIELD_CASES] if case.expect_error is None}
    missing = sorted(named - set(tolerance.TOLERANCE_CLASSES))
    assert missing == [], f"golden cases name unregistered tolerance classes: {missing}"
    assert set(FUZZ_TOLERANCE.values()) <= set(tolerance.TOLERANCE_CLASSES)


@pytest.mark.parametrize("kind", sorted(HOOKS))
def test_every_hook_names_a_spec_function_of_its_own_module_s_family(kind):
    registry = HOOKS[kind]
    for function in registry:
        assert function in SPEC_FUNCTIONS, f"{kind} registered for {function!r}, which is no spec function"
        family = SPEC_FUNCTIONS[function].family
        assert registry.origin(function) == f"{PACKAGE}.{family}", (
            f"{kind} of {function} (family {family}) is registered by {registry.origin(function)}")


def test_no_module_defines_what_is_registered_under_another_family_s_function():
    registered = {}  # id of a registered hook -> functions it is registered under
    for registry in HOOKS.values():
        for function, hook in registry.items():
            registered.setdefault(id(hook), []).append(function)
    for family, module in FAMILY_MODULES.items():
        for name, value in vars(module).items():
            if callable(value) and getattr(value, "__module__", None) == module.__name__:
                others = [f for f in registered.get(id(value), []) if SPEC_FUNCTIONS[f].family != family]
                assert others == [], f"{module.__name__}.{name} is registered under {others} of another family"


def test_models_live_in_the_core_or_a_family_module():
    for name in tolerance.TOLERANCE_CLASSES:
        origin = tolerance.TOLERANCE_CLASSES.origin(name)
        assert origin == PACKAGE or origin.removeprefix(f"{PACKAGE}.") in FAMILY_MODULES, (name, origin)
    core = sorted(n for n in tolerance.TOLERANCE_CLASSES if tolerance.TOLERANCE_CLASSES.origin(n) == PACKAGE)
    assert core == ["contraction", "elementwise", "exact", "gather"]


def test_a_name_registered_by_two_modules_is_refused():
    registry = tolerance.Registry("test hook", load=lambda: None)
    registry.register("apply_rope", len, origin=f"{PACKAGE}.rope")
    registry.register("apply_rope", len, origin=f"{PACKAGE}.rope")  # the same module again: no conflict
    with pytest.raises(ValueError, match="'apply_rope' is registered twice: in .*rope and in .*xpos"):
        registry.register("apply_rope", len, origin=f"{PACKAGE}.xpos")


def test_a_registry_loads_its_modules_on_every_read():
    loads = []
    registry = tolerance.Registry("test hook", load=lambda: loads.append(1))
    registry.register("nope", len, origin="somewhere")
    assert "nope" in registry and registry["nope"] is len and list(registry) == ["nope"] and len(registry) == 1
    assert registry.origin("nope") == "somewhere" and len(loads) >= 5


def test_the_old_path_re_exports_the_core():
    import posref.conformance.tolerance as old

    assert old.__all__ == tolerance.__all__
    for name in tolerance.__all__:
        assert getattr(old, name) is getattr(tolerance, name), name
    assert old.rope_budget is FAMILY_MODULES["rope"].rope_budget
    assert old.t5_near_boundary is FAMILY_MODULES["t5"].t5_near_boundary
    assert old.dynamic_ntk_alpha_error is FAMILY_MODULES["rope_scaling"].dynamic_ntk_alpha_error
    with pytest.raises(AttributeError):
        old.no_such_name  # noqa: B018


def test_the_core_imports_the_families_on_first_read_and_nothing_above_it():
    code = (
        "import sys\n"
        "from posref.conformance import tolerance\n"
        "import posref.tolerance\n"
        "loaded = lambda prefix: sorted(m for m in sys.modules if m.startswith(prefix))\n"
        f"assert loaded({PACKAGE + '.'!r}) == [], loaded({PACKAGE + '.'!r})\n"
        "assert 'frequency' in tolerance.TOLERANCE_CLASSES\n"
        f"assert {PACKAGE + '.rope'!r} in sys.modules and {PACKAGE + '.xpos'!r} in sys.modules\n"
        "assert loaded('posref.golden') == [], loaded('posref.golden')\n"
        "assert loaded('posref.conformance.') == ['posref.conformance.tolerance'], loaded('posref.conformance.')\n"
        "assert 'hypothesis' not in sys.modules, 'an error model imported hypothesis'\n"
        "from posref.conformance.tolerance import dynamic_ntk_alpha_error, rope_budget, t5_near_boundary\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_model_judges_a_view_through_the_registry():
    import numpy as np

    p = np.array([0, 1, 1000])
    view = tolerance.CaseView("rope_angles", {"dim": 8}, {"positions": p}, {"output": posref.rope_angles(p, 8)})
    budget = tolerance.budgets(view, "angle", "float32")["output"]
    assert budget.shape == (3, 4) and np.all(budget[0] == 0) and np.all(budget[2] > budget[1])
