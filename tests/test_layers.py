"""posref's layers, checked from the source: dependencies point one way, private names stay home.

The layers, lowest first::

    spec         posref/*.py (the formulas, posref/_*.py helpers), posref/relative/
    tolerance    posref/tolerance/ (the error model; the corpus stores its budgets)
    golden       posref/golden/ (cases, fuzz strategies, the corpus)
    conformance  posref/conformance/ (all but plugin.py)
    doors        posref/cli.py, posref/__main__.py, posref/conformance/plugin.py, posref/adapters/

A module may import its own layer and the layers below it, never one above.
A private name (a path component or imported name starting with ``_``) may
be imported only inside its own layer and its own top-level package
(``posref.tolerance``, ``posref.golden``, ``posref.conformance``,
``posref.adapters``; the spec modules and ``posref/relative/`` are one
package for this), with one documented exception: the public names of the
shared internals :data:`SHARED_INTERNALS` (``posref._arith``,
``posref._validate``), which every layer may import.  Every import counts:
at module level, inside functions, ``import x``, ``from x import y`` and
relative imports.  Dynamic imports (``importlib.import_module`` of a string)
are not seen.  There is no list of allowed exceptions beyond that one.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "posref"

LAYERS = ("spec", "tolerance", "golden", "conformance", "doors")

#: The two private spec modules every layer may import: the correctly rounded elementary functions
#: and exact sums the golden values, the budgets and the diagnoses are computed with (``_arith``), and
#: the argument checks behind every public boundary (``_validate``).  They are shared numerical and
#: validation internals, not part of the spec's public API, so they keep their private names; only
#: their public names may be imported (``from posref import _arith``, ``from posref._validate import
#: ensure_int``).  Nothing else private crosses a layer or a package.
SHARED_INTERNALS = ("posref._arith", "posref._validate")


def module_name(path: pathlib.Path) -> str:
    """``posref/golden/format.py`` -> ``posref.golden.format``; a package's ``__init__.py`` -> the package."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> str | None:
    """The layer of a posref module (dotted name), or None for a module outside posref."""
    parts = module.split(".")
    if parts[0] != "posref":
        return None
    if len(parts) == 1:
        return "spec"
    if parts[1] in ("cli", "__main__", "adapters"):
        return "doors"
    if parts[1] in ("tolerance", "golden"):
        return parts[1]
    if parts[1] == "conformance":
        return "doors" if parts[2:3] == ["plugin"] else "conformance"
    return "spec"  # posref.rope, posref._spec, posref.relative(.*)


def package_of(module: str) -> str:
    """The top-level package a private name belongs to: ``posref.golden`` etc.; the spec is one package."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in ("tolerance", "golden", "conformance", "adapters"):
        return ".".join(parts[:2])
    if len(parts) > 1 and parts[1] in ("cli", "__main__"):
        return module
    return "posref"


def _is_module(dotted: str, root: pathlib.Path) -> bool:
    """Whether ``dotted`` (``posref.x.y``) names a module or package in the tree under ``root``."""
    path = root.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports_of(source: str, module: str, *, is_package: bool = False, root: pathlib.Path = ROOT):
    """Every posref import in ``source`` as ``(line, target module, imported dotted name)``.

    ``from a.b import c`` gives target ``a.b.c`` when that is a module, else ``a.b``; the
    imported name is ``a.b.c`` either way.  Relative imports are resolved against ``module``.
    """
    tree = ast.parse(source)
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "posref":
                    yield node.lineno, alias.name, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] != "posref":
                continue
            for alias in node.names:
                if alias.name == "*":
                    yield node.lineno, base, base
                    continue
                dotted = f"{base}.{alias.name}"
                yield node.lineno, dotted if _is_module(dotted, root) else base, dotted


def _private(dotted: str) -> bool:
    return any(p.startswith("_") and not (p.startswith("__") and p.endswith("__")) for p in dotted.split("."))


def _shared_internal(target: str, name: str) -> bool:
    """Whether ``name`` is a shared internal (:data:`SHARED_INTERNALS`) or a public name of one."""
    return target in SHARED_INTERNALS and (name == target or not _private(name[len(target) + 1:]))


def violations(source: str, path: str, module: str, *, is_package: bool = False,
               root: pathlib.Path = ROOT) -> list[str]:
    """The rule breaks of one module's source, each as ``"file:line: what"``."""
    found = []
    here = layer_of(module)
    for line, target, name in imports_of(source, module, is_package=is_package, root=root):
        there = layer_of(target)
        if there is None or target == module:
            continue
        if LAYERS.index(there) > LAYERS.index(here):
            found.append(f"{path}:{line}: {module} ({here}) imports {name} ({there}), a higher layer")
        crosses = there != here or (here != "spec" and package_of(target) != package_of(module))
        if _private(name) and crosses and not _shared_internal(target, name):
            found.append(f"{path}:{line}: {module} ({here}) imports the private name {name} of {there} "
                         f"({package_of(target)})")
    return found


def _sources():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path, path.relative_to(ROOT).as_posix()


def test_every_posref_module_has_a_layer():
    for path, rel in _sources():
        assert layer_of(module_name(path)) in LAYERS, rel


def test_dependencies_point_down_and_private_names_stay_home():
    found = []
    for path, rel in _sources():
        found += violations(path.read_text(encoding="utf-8"), rel, module_name(path),
                            is_package=path.name == "__init__.py")
    assert not found, "imports against posref's layers:\n" + "\n".join(found)


def test_the_shared_internals_are_spec_modules_and_are_used_across_layers():
    """The exception names two private spec modules, each imported by a layer above the spec."""
    used_from = {internal: set() for internal in SHARED_INTERNALS}
    for internal in SHARED_INTERNALS:
        assert layer_of(internal) == "spec" and _private(internal) and _is_module(internal, ROOT), internal
    for path, _ in _sources():
        module = module_name(path)
        for _, target, _ in imports_of(path.read_text(encoding="utf-8"), module, is_package=path.name == "__init__.py"):
            if target in used_from and layer_of(module) != "spec":
                used_from[target].add(layer_of(module))
    unused = sorted(internal for internal, layers in used_from.items() if not layers)
    assert not unused, f"SHARED_INTERNALS names modules no other layer imports; remove them: {unused}"


def test_the_error_model_is_a_layer_of_its_own():
    """``posref/tolerance/`` sits between the spec and the golden cases; the old path is in conformance."""
    assert layer_of("posref.tolerance") == layer_of("posref.tolerance.rope") == "tolerance"
    assert LAYERS.index("spec") < LAYERS.index("tolerance") < LAYERS.index("golden")
    assert layer_of("posref.conformance.tolerance") == "conformance"
    assert package_of("posref.tolerance.rope") == "posref.tolerance"


# -- the checker itself --------------------------------------------------------------------------------


@pytest.mark.parametrize("source, module, expected", [
    ("import posref.conformance.engine\n", "posref.rope", "posref/x.py:1: posref.rope (spec) imports "
                                                           "posref.conformance.engine (conformance), a higher layer"),
    ("def f():\n    from posref.golden import registry\n", "posref._arith", "posref/x.py:2:"),
    ("from posref.adapters.known import parse_known\n", "posref.conformance.session", "a higher layer"),
    ("from ..cli import main\n", "posref.golden.format", "posref.cli.main (doors), a higher layer"),
    ("from . import plugin\n", "posref.conformance.engine", "posref.conformance.plugin (doors)"),
    ("from posref.conformance.engine import _known_for\n", "posref.conformance.plugin",
     "the private name posref.conformance.engine._known_for"),
    ("from posref.golden.format import _load_manifest\n", "posref.cli", "the private name"),
    ("from posref import _spec\n", "posref.golden.registry", "the private name posref._spec"),
    ("from posref._spec import SPEC_FUNCTIONS\n", "posref.tolerance", "the private name posref._spec.SPEC_FUNCTIONS"),
    ("from posref._version import __version__\n", "posref.conformance.report", "the private name"),
    ("from posref._arith import _kahan\n", "posref.golden.registry", "the private name posref._arith._kahan"),
    ("from posref.adapters._tensors import to_torch\n", "posref.cli", "the private name"),
    ("from posref.golden.registry import Normal\n", "posref.tolerance.rope", "posref.golden.registry.Normal (golden), "
                                                                               "a higher layer"),
    ("from posref.conformance.runner import case_arrays\n", "posref.golden.registry", "a higher layer"),
    ("from posref.conformance import tolerance\n", "posref.golden.format", "(conformance), a higher layer"),
    ("from posref.tolerance.rope import _angle\n", "posref.golden.cases.rope",
     "the private name posref.tolerance.rope._angle"),
    ("from posref.tolerance import _FAMILY_MODULES\n", "posref.golden.strategies", "the private name"),
])
def test_checker_catches_a_planted_import(source, module, expected):
    found = violations(source, "posref/x.py", module)
    assert len(found) == 1 and expected in found[0], found


@pytest.mark.parametrize("source, module", [
    ("import posref.rope\nfrom posref.golden.registry import build_cases\n", "posref.conformance.runner"),
    ("from posref.conformance.engine import check\n", "posref.conformance.plugin"),
    ("from posref.adapters._tensors import to_torch\n", "posref.adapters.timm"),
    ("from posref import _arith\n", "posref.rope"),
    ("from posref._validate import ensure_int\n", "posref.relative.cope"),
    ("from posref import _arith\n", "posref.golden.registry"),
    ("from posref import _arith\n", "posref.tolerance.rope"),
    ("import posref._arith\n", "posref.conformance.diagnose"),
    ("from posref._validate import ensure_int, ensure_real\n", "posref.conformance.fuzz"),
    ("from posref.tolerance import budgets\nfrom posref.golden.strategies import st\n", "posref.golden.cases.rope"),
    ("from posref.tolerance import CaseView\nfrom posref.rope import rope_frequencies\n", "posref.tolerance.xpos"),
    ("from posref.tolerance.rope import rope_pairs\n", "posref.tolerance.xpos"),
    ("from posref import SPEC_FUNCTIONS, SPEC_VERSION, __version__, spec_functions\n", "posref.golden.format"),
    ("from ._safetensors import encode\n", "posref.golden.format"),
    ("import numpy\nfrom transformers.models.bloom import _get_alibi_slopes\n", "posref.adapters.transformers"),
])
def test_checker_allows_what_the_layers_allow(source, module):
    assert violations(source, "posref/x.py", module) == []


def test_relative_imports_resolve_from_the_package():
    imports = list(imports_of("from . import engine\nfrom .. import golden\n", "posref.conformance",
                              is_package=True))
    assert [t for _, t, _ in imports] == ["posref.conformance.engine", "posref.golden"]


def test_moved_names_keep_their_old_homes():
    """Names that moved to their layer are still importable from where they were."""
    import posref.adapters.known as old_known
    import posref.adapters.tensors as tensors
    import posref.conformance.known as known
    import posref.conformance.runner as runner
    import posref.conformance.tolerance as old_tolerance
    import posref.golden as golden
    import posref.golden.format as corpus_format
    import posref.golden.registry as registry
    import posref.tolerance as tolerance

    for name in known.__all__:
        assert getattr(old_known, name) is getattr(known, name)
    assert tensors.round_to is registry.round_to
    assert set(corpus_format.__all__) <= set(golden.__all__)
    assert all(hasattr(golden, name) for name in golden.__all__)
    assert runner.case_arrays is registry.case_arrays and runner.float64_inputs is registry.float64_inputs
    assert old_tolerance.__all__ == tolerance.__all__
    for name in [*tolerance.__all__, "each_output", "spec_param", "rope_budget", "t5_near_boundary",
                 "dynamic_ntk_alpha_error"]:
        assert getattr(old_tolerance, name) is getattr(tolerance, name), name
