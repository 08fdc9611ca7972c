"""posref's layers, checked from the source: dependencies point one way, private names stay home.

The layers, lowest first::

    spec         posref/*.py (the formulas, posref/_*.py helpers), posref/relative/
    golden       posref/golden/
    conformance  posref/conformance/ (all but plugin.py)
    doors        posref/cli.py, posref/__main__.py, posref/conformance/plugin.py, posref/adapters/

A module may import its own layer and the layers below it, never one above.
A private name (a path component or imported name starting with ``_``) may
be imported only inside its own layer and its own top-level package
(``posref.golden``, ``posref.conformance``, ``posref.adapters``; the spec
modules and ``posref/relative/`` are one package for this).  Every import
counts: at module level, inside functions, ``import x``, ``from x import y``
and relative imports.  Dynamic imports (``importlib.import_module`` of a
string) are not seen.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "posref"

LAYERS = ("spec", "golden", "conformance", "doors")

#: Imports that break the rules today and have an owner changing them; each entry is
#: (importing file, imported dotted name).  Remove an entry when its import is gone: the
#: test fails on an entry that no longer matches, so the list can only shrink.
_PENDING = {
    # the error model (tolerance.py, families/: another engineer's work in progress): spec internals
    ("posref/conformance/tolerance.py", "posref._arith"),
    ("posref/conformance/tolerance.py", "posref._spec.SPEC_FUNCTIONS"),
    ("posref/conformance/tolerance.py", "posref._spec.spec_functions"),
    ("posref/conformance/families/alibi.py", "posref._arith"),
    ("posref/conformance/families/attention.py", "posref._arith"),
    ("posref/conformance/families/fire.py", "posref._arith"),
    ("posref/conformance/families/fope.py", "posref._arith"),
    ("posref/conformance/families/kerple.py", "posref._arith"),
    ("posref/conformance/families/rope.py", "posref._arith"),
    ("posref/conformance/families/rope_scaling.py", "posref._arith"),
    ("posref/conformance/families/sandwich.py", "posref._arith"),
    ("posref/conformance/families/sinusoidal.py", "posref._arith"),
    ("posref/conformance/families/t5.py", "posref._arith"),
    ("posref/conformance/families/xpos.py", "posref._arith"),
    # golden -> conformance: the corpus stores the error model's budgets (the tolerance model and the
    # runner's case arrays belong below golden, or the budgets above it)
    ("posref/golden/format.py", "posref.conformance.tolerance.CaseView"),
    ("posref/golden/format.py", "posref.conformance.tolerance.budgets"),
    ("posref/golden/registry.py", "posref.conformance.runner.case_arrays"),
    ("posref/golden/registry.py", "posref.conformance.runner.float64_inputs"),
    ("posref/golden/registry.py", "posref.conformance.tolerance.TOLERANCE_CLASSES"),
    ("posref/golden/registry.py", "posref.conformance.tolerance.CaseView"),
    ("posref/golden/registry.py", "posref.conformance.tolerance.budgets"),
    ("posref/golden/registry.py", "posref.conformance.tolerance.round_budget"),
    # conformance -> adapters: the parser moved to posref.conformance.known (one-line import change)
    ("posref/conformance/matrix.py", "posref.adapters.known.known_file"),
    ("posref/conformance/matrix.py", "posref.adapters.known.parse_known"),
    # spec internals with no public home yet: precise arithmetic and argument validation
    ("posref/conformance/diagnose.py", "posref._arith"),
    ("posref/golden/format.py", "posref._arith"),
    ("posref/golden/registry.py", "posref._arith"),
    ("posref/conformance/fuzz.py", "posref._validate.ensure_int"),
    ("posref/conformance/fuzz.py", "posref._validate.ensure_real"),
    ("posref/golden/format.py", "posref._validate.ensure_bool"),
    ("posref/golden/format.py", "posref._validate.ensure_choice"),
    ("posref/golden/format.py", "posref._validate.ensure_int"),
    # public names through their private module: import them from posref instead (one-line changes)
    ("posref/conformance/adapter.py", "posref._spec.SPEC_FUNCTIONS"),
    ("posref/conformance/adapter.py", "posref._spec.spec_functions"),
    ("posref/conformance/fuzz.py", "posref._spec.SPEC_FUNCTIONS"),
    ("posref/conformance/fuzz.py", "posref._spec.spec_functions"),
    ("posref/conformance/runner.py", "posref._spec.SPEC_FUNCTIONS"),
    ("posref/conformance/runner.py", "posref._spec.spec_functions"),
    ("posref/conformance/worker.py", "posref._spec.SPEC_FUNCTIONS"),
    ("posref/golden/registry.py", "posref._spec.SPEC_FUNCTIONS"),
    ("posref/golden/registry.py", "posref._spec.spec_functions"),
    ("posref/conformance/report.py", "posref._version.SPEC_VERSION"),
    ("posref/conformance/report.py", "posref._version.__version__"),
    ("posref/golden/format.py", "posref._version.SPEC_VERSION"),
    ("posref/golden/format.py", "posref._version.__version__"),
}


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
    if parts[1] == "golden":
        return "golden"
    if parts[1] == "conformance":
        return "doors" if parts[2:3] == ["plugin"] else "conformance"
    return "spec"  # posref.rope, posref._spec, posref.relative(.*)


def package_of(module: str) -> str:
    """The top-level package a private name belongs to: ``posref.golden`` etc.; the spec is one package."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in ("golden", "conformance", "adapters"):
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


def violations(source: str, path: str, module: str, *, is_package: bool = False, root: pathlib.Path = ROOT,
               pending=frozenset()) -> list[str]:
    """The rule breaks of one module's source, each as ``"file:line: what"``; ``pending`` ones are left out."""
    found = []
    here = layer_of(module)
    for line, target, name in imports_of(source, module, is_package=is_package, root=root):
        there = layer_of(target)
        if there is None or target == module or (path, name) in pending:
            continue
        if LAYERS.index(there) > LAYERS.index(here):
            found.append(f"{path}:{line}: {module} ({here}) imports {name} ({there}), a higher layer")
        crosses = there != here or (here != "spec" and package_of(target) != package_of(module))
        if _private(name) and crosses:
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
                            is_package=path.name == "__init__.py", pending=_PENDING)
    assert not found, "imports against posref's layers:\n" + "\n".join(found)


def test_pending_allowances_are_still_needed():
    """An entry of ``_PENDING`` whose import is gone must leave the list."""
    seen = set()
    for path, rel in _sources():
        for _, _, name in imports_of(path.read_text(encoding="utf-8"), module_name(path),
                                     is_package=path.name == "__init__.py"):
            seen.add((rel, name))
    stale = sorted(_PENDING - seen)
    assert not stale, f"_PENDING lists imports that are gone; remove them: {stale}"


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
    ("from posref import _arith\n", "posref.golden.registry", "the private name posref._arith"),
    ("from posref.adapters._tensors import to_torch\n", "posref.cli", "the private name"),
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
    ("from ._safetensors import encode\n", "posref.golden.format"),
    ("import numpy\nfrom transformers.models.bloom import _get_alibi_slopes\n", "posref.adapters.transformers"),
])
def test_checker_allows_what_the_layers_allow(source, module):
    assert violations(source, "posref/x.py", module) == []


@pytest.mark.parametrize("source, name", [
    ("from posref.rope import _rotated_channels\n", "posref.rope._rotated_channels"),
    ("from posref.conformance.tolerance import budgets\n", "posref.conformance.tolerance.budgets"),
])
def test_pending_entries_are_not_reported(source, name):
    assert violations(source, "posref/golden/t.py", "posref.golden.t")
    assert not violations(source, "posref/golden/t.py", "posref.golden.t", pending={("posref/golden/t.py", name)})


def test_relative_imports_resolve_from_the_package():
    imports = list(imports_of("from . import engine\nfrom .. import golden\n", "posref.conformance",
                              is_package=True))
    assert [t for _, t, _ in imports] == ["posref.conformance.engine", "posref.golden"]


def test_moved_names_keep_their_old_homes():
    """Names that moved to their layer are still importable from where they were."""
    import posref.adapters.known as old_known
    import posref.adapters.tensors as tensors
    import posref.conformance.known as known
    import posref.golden as golden
    import posref.golden.format as corpus_format
    import posref.golden.registry as registry

    for name in known.__all__:
        assert getattr(old_known, name) is getattr(known, name)
    assert tensors.round_to is registry.round_to
    assert set(corpus_format.__all__) <= set(golden.__all__)
    assert all(hasattr(golden, name) for name in golden.__all__)
