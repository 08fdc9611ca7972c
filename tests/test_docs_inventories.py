"""The intersphinx inventories of the docs: offline, current, and resolving.

``docs/_inventories/`` holds the four inventories ``docs/conf.py`` maps:
Python's and SciPy's copied from Debian's documentation packages, NumPy's
and PyTorch's written by ``build_curated.py`` from ``curated.txt``.  These
tests rebuild the curated ones and compare them with the committed files,
read every inventory with Sphinx's own reader, and build a two-page project
with the docs' intersphinx and numpydoc settings to see the links land on
docs.python.org, numpy.org, docs.scipy.org and docs.pytorch.org.
"""

from __future__ import annotations

import importlib.util
import io
import posixpath
import re
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
INVENTORIES = DOCS / "_inventories"

#: Inventory -> (project name it declares, entries the docs need: (domain:role, name, uri ending)).
NEEDED = {
    "python": ("Python", [
        ("py:function", "math.log", "library/math.html#math.log"),
        ("py:module", "pkgutil", "library/pkgutil.html#module-pkgutil"),
        ("py:class", "int", "library/functions.html#int"),
        ("py:class", "os.PathLike", "library/os.html#os.PathLike"),
        ("std:label", "bltin-boolean-values", "library/stdtypes.html#bltin-boolean-values"),
        ("std:term", "mapping", "glossary.html#term-mapping"),
    ]),
    "scipy": ("SciPy", [
        ("py:module", "scipy.special", "reference/special.html#module-scipy.special"),
        ("py:function", "scipy.integrate.quad", "reference/generated/scipy.integrate.quad.html#scipy.integrate.quad"),
    ]),
    "numpy": ("NumPy", [
        ("py:class", "numpy.ndarray", "reference/generated/numpy.ndarray.html#numpy.ndarray"),
        ("std:term", "array_like", "glossary.html#term-array_like"),
    ]),
    "torch": ("PyTorch", [
        ("py:class", "torch.Tensor", "tensors.html#torch.Tensor"),
        ("py:class", "torch.nn.Embedding", "generated/torch.nn.Embedding.html#torch.nn.Embedding"),
    ]),
}


def _build_curated_module():
    name = "posref_docs_build_curated"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, INVENTORIES / "build_curated.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the class is made
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return sys.modules[name]


def _split(data: bytes) -> tuple[list[bytes], str]:
    """Header lines and decompressed entry text of a version 2 inventory."""
    lines = data.split(b"\n", 4)
    assert len(lines) == 5, "an inventory has four header lines, then the compressed entries"
    return lines[:4], zlib.decompress(lines[4]).decode("utf-8")


def _uri(item) -> str:
    # Sphinx >= 8.2 gives _InventoryItem objects, older versions plain tuples.
    return item.uri if hasattr(item, "uri") else item[2]


def _project(item) -> str:
    return item.project_name if hasattr(item, "project_name") else item[0]


def test_curated_inventories_match_the_curated_list(tmp_path):
    builder = _build_curated_module()
    written = builder.build(tmp_path)
    assert sorted(p.name for p in written) == ["numpy.inv", "torch.inv"]
    for fresh in written:
        committed = INVENTORIES / fresh.name
        assert committed.is_file(), f"{committed} is missing; run python docs/_inventories/build_curated.py"
        fresh_header, fresh_entries = _split(fresh.read_bytes())
        committed_header, committed_entries = _split(committed.read_bytes())
        stale = f"{committed.name} is stale; run python docs/_inventories/build_curated.py and commit it"
        assert committed_header == fresh_header, stale
        assert committed_entries == fresh_entries, stale


def test_curated_list_is_checked_entry_by_entry():
    # Every entry names the address its page was seen at, on the host of
    # its project (or the older pytorch.org/docs host of the same pages).
    builder = _build_curated_module()
    projects = builder.parse((INVENTORIES / "curated.txt").read_text(encoding="utf-8"))
    hosts = {"numpy": ("https://numpy.org/doc/",),
             "torch": ("https://docs.pytorch.org/docs/", "https://pytorch.org/docs/")}
    for key, project in projects.items():
        assert project.entries, key
        for entry in project.entries:
            assert entry.seen_at.startswith(hosts[key]), (key, entry)
            page = entry.uri.split("#", 1)[0]
            assert page.rsplit("/", 1)[-1] in entry.seen_at, (key, entry)


def test_curated_list_rejects_malformed_lines():
    builder = _build_curated_module()
    settings = "[numpy]\nproject = NumPy\nversion = stable\nbase = https://numpy.org/doc/stable/\n"
    with pytest.raises(ValueError, match="line 5: expected 'name domain:role priority uri seen-at'"):
        builder.parse(settings + "numpy.ndarray py:class 1 reference/x.html\n")
    with pytest.raises(ValueError, match="must be relative to base"):
        builder.parse(settings + "numpy.ndarray py:class 1 https://numpy.org/x.html https://numpy.org/x.html\n")
    with pytest.raises(ValueError, match="lacks base"):
        builder.parse("[numpy]\nproject = NumPy\nversion = stable\n")


@pytest.mark.parametrize("name", sorted(NEEDED))
def test_inventory_loads_with_sphinx_and_has_what_the_docs_need(name):
    pytest.importorskip("sphinx", reason="sphinx is not installed; the inventory reader is Sphinx's")
    from sphinx.util.inventory import InventoryFile

    base = f"https://example.invalid/{name}/"
    path = INVENTORIES / f"{name}.inv"
    inventory = InventoryFile.load(io.BytesIO(path.read_bytes()), base, posixpath.join)
    project, needed = NEEDED[name]
    for role, target, uri_end in needed:
        item = inventory.get(role, {}).get(target)
        assert item is not None, f"{path.name} lacks {role} {target}"
        assert _project(item) == project
        assert _uri(item) == base + uri_end, (role, target, _uri(item))


_TINY_MODULE = '''
"""A module of the tiny project."""


def scale(x, /, *, factor=2.0):
    """Scale values.

    Parameters
    ----------
    x : array_like of real, shape ``(T,)``
        The values.
    factor : float, keyword-only
        The factor.

    Returns
    -------
    numpy.ndarray
        ``factor * x``.
    """
    return x
'''

_TINY_INDEX = """
Tiny
====

Links: :class:`numpy.ndarray`, :func:`math.log`, :class:`torch.Tensor`,
:func:`scipy.integrate.quad`, :term:`numpy:array_like`.

Unprefixed labels stay local: :ref:`bltin-boolean-values`.

.. autofunction:: tinymod.scale
"""

_TINY_CONF = """
import runpy
import sys

sys.path.insert(0, {here!r})
_docs = runpy.run_path({conf!r})

extensions = ["sphinx.ext.autodoc", "numpydoc", "sphinx.ext.intersphinx"]
nitpicky = True
for _name in ("intersphinx_mapping", "intersphinx_disabled_reftypes", "numpydoc_xref_param_type",
              "numpydoc_xref_ignore", "numpydoc_xref_aliases", "numpydoc_show_class_members"):
    globals()[_name] = _docs[_name]
# Offline: every inventory is a local file.
assert all("://" not in str(_location) for _, _location in intersphinx_mapping.values()), intersphinx_mapping
"""


def test_docs_mapping_resolves_offline_to_the_four_sites(tmp_path):
    for module in ("sphinx", "numpydoc"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (pip install -e '.[docs]')")
    src = tmp_path / "src"
    src.mkdir()
    (src / "tinymod.py").write_text(_TINY_MODULE, encoding="utf-8")
    (src / "index.rst").write_text(textwrap.dedent(_TINY_INDEX), encoding="utf-8")
    (src / "conf.py").write_text(_TINY_CONF.format(here=str(src), conf=str(DOCS / "conf.py")), encoding="utf-8")
    out = tmp_path / "html"
    completed = subprocess.run(
        [sys.executable, "-m", "sphinx", "-n", "-q", "-b", "html", str(src), str(out)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    # The only warning is the unprefixed label: std references go to an
    # inventory only when they name it (intersphinx_disabled_reftypes).
    warnings = [line for line in completed.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and "bltin-boolean-values" in warnings[0], completed.stderr[-4000:]

    html = (out / "index.html").read_text(encoding="utf-8")
    hrefs = re.findall(r'href="([^"]+)"', html)
    for expected in (
        "https://numpy.org/doc/stable/reference/generated/numpy.ndarray.html#numpy.ndarray",
        "https://numpy.org/doc/stable/glossary.html#term-array_like",
        "https://docs.python.org/3.11/library/math.html#math.log",
        "https://docs.python.org/3.11/library/functions.html#float",
        "https://docs.pytorch.org/docs/stable/tensors.html#torch.Tensor",
        "https://docs.scipy.org/doc/scipy-1.10.1/reference/generated/scipy.integrate.quad.html#scipy.integrate.quad",
    ):
        assert expected in hrefs, f"no link to {expected}"
    # numpydoc links the type fields: ndarray in Returns, array_like and float in Parameters.
    returns = html[html.index("Returns"):]
    assert re.search(r'<dt><a class="reference external" href="https://numpy\.org/doc/stable/reference/generated/'
                     r'numpy\.ndarray\.html#numpy\.ndarray"', returns), "the Returns type is not a link"
    parameters = html[html.index("Parameters"):html.index("Returns")]
    assert "glossary.html#term-array_like" in parameters
    assert "library/functions.html#float" in parameters
