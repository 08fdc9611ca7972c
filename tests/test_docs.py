"""The documentation builds without warnings, offline, and its examples run.

The build is the one of ``docs/conf.py``: warnings are errors, every cross
reference must resolve (``-n``), the figures are drawn by posref itself.
The examples (``>>>`` blocks) of the hand-written pages are run as
doctests; the docstrings' own examples run through ``--doctest-modules``.
"""

from __future__ import annotations

import doctest
import importlib.metadata
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"

#: Distributions the build needs (the ``docs`` extra of pyproject.toml).
#: ``sphinx-mathjax-offline`` ships the MathJax files the pages load
#: locally instead of from a CDN.
TOOLCHAIN = ("sphinx", "furo", "numpydoc", "matplotlib", "sphinx-mathjax-offline")


def _missing_toolchain() -> list[str]:
    missing = []
    for name in TOOLCHAIN:
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    return missing


def _pages() -> list[Path]:
    skip = {"_build", "generated", "examples", "_templates"}
    return sorted(p for p in DOCS.rglob("*.rst") if not skip.intersection(p.relative_to(DOCS).parts))


@pytest.fixture(scope="module")
def built_site(tmp_path_factory):
    if importlib.util.find_spec("sphinx") is None:
        pytest.skip("sphinx is not installed (pip install -e '.[docs]'); the documentation cannot be built")
    missing = _missing_toolchain()
    if missing:
        pytest.skip(f"documentation toolchain incomplete, missing: {', '.join(missing)} (pip install -e '.[docs]')")
    out = tmp_path_factory.mktemp("html")
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-b", "html", str(DOCS), str(out)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600, env=_build_env())
    assert completed.returncode == 0, (
        f"sphinx-build failed (exit {completed.returncode}):\n{completed.stdout[-4000:]}\n{completed.stderr[-8000:]}"
    )
    return out


def _build_env() -> dict[str, str]:
    import os

    env = dict(os.environ)
    env["MPLBACKEND"] = "Agg"
    env.pop("PYTHONWARNINGS", None)
    return env


def test_sphinx_build_is_clean_and_offline(built_site):
    for page in (
        "index.html",
        "quickstart.html",
        "families/rope.html",
        "families/alibi.html",
        "families/rope_scaling.html",
        "guides/golden.html",
        "guides/checking.html",
        "guides/tolerance.html",
        "guides/conventions.html",
        "api/index.html",
        "api/generated/posref.apply_rope.html",
        "changelog.html",
    ):
        assert (built_site / page).is_file(), f"{page} was not built"

    # Every spec function has its generated page.
    import posref

    for entry in posref.spec_functions():
        assert (built_site / "api" / "generated" / f"posref.{entry.name}.html").is_file(), entry.name

    # Math is served from the site itself, and no page loads a remote script.
    assert (built_site / "_static" / "mathjax" / "tex-chtml.js").is_file()
    script_src = re.compile(r"<script\b[^>]*\bsrc\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
    remote = []
    math_pages = 0
    for page in built_site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        for src in script_src.findall(text):
            if re.match(r"(https?:)?//", src) or "cdn" in src.lower():
                remote.append(f"{page.relative_to(built_site)}: {src}")
            if "mathjax/tex-chtml.js" in src:
                math_pages += 1
    assert not remote, "pages load remote scripts:\n" + "\n".join(remote)
    assert math_pages > 10, "MathJax is not included where math is shown"

    # The figures were drawn at build time.
    rope = (built_site / "families" / "rope.html").read_text(encoding="utf-8")
    assert re.search(r"<img[^>]+src=\"[^\"]+\.png\"", rope), "the RoPE page has no figure"
    assert len(list(built_site.rglob("*.png"))) >= 12


def _pages_with_examples() -> list[Path]:
    return [p for p in _pages() if ">>> " in p.read_text(encoding="utf-8")]


@pytest.mark.parametrize("page", _pages_with_examples(), ids=lambda p: str(p.relative_to(DOCS)))
def test_page_examples_run(page):
    parser = doctest.DocTestParser()
    text = page.read_text(encoding="utf-8")
    test = parser.get_doctest(text, {"__name__": "__docs__"}, str(page.relative_to(DOCS)), str(page), 0)
    assert test.examples
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    output: list[str] = []
    result = runner.run(test, out=output.append)
    assert result.failed == 0, "".join(output)


def test_every_page_is_reachable():
    # The family pages must all be listed in the family index and the
    # guides in the root toctree; a page outside every toctree is a
    # Sphinx warning, so this mainly guards the test list above.
    pages = {str(p.relative_to(DOCS).with_suffix("")) for p in _pages()}
    for required in ("index", "quickstart", "changelog", "guides/conventions", "guides/golden",
                     "guides/checking", "guides/tolerance", "guides/matrix", "guides/cli",
                     "guides/versioning", "api/index", "families/index"):
        assert required in pages, required
    families = {p for p in pages if p.startswith("families/") and p != "families/index"}
    index = (DOCS / "families" / "index.rst").read_text(encoding="utf-8")
    for page in families:
        assert re.search(rf"^\s+{re.escape(page.split('/', 1)[1])}\s*$", index, re.MULTILINE), page


def test_markdown_matrix_include_reads_report_tables():
    # The conformance-matrix page includes a generated Markdown file through
    # posref_docs.markdown_to_nodes; it must keep headings, tables and code.
    pytest.importorskip("sphinx", reason="sphinx is not installed; the docs extension cannot be imported")
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        import posref_docs
    finally:
        sys.path.remove(str(DOCS / "_ext"))
    from docutils import nodes

    text = (
        "# Conformance of mylib 1.0 (float32, cpu)\n\n"
        "posref 0.1.0, spec 1.0. 3 pass\n\n"
        "| function | cases | pass | max abs error |\n"
        "| --- | ---: | ---: | ---: |\n"
        "| `apply_rope` | 2 | 2 | 1.19e-07 |\n"
        "| `alibi_bias` | 1 | 1 | 0.00e+00 |\n"
    )
    result = posref_docs.markdown_to_nodes(text, posref_docs._markdown_inline)
    assert [type(n) for n in result] == [nodes.rubric, nodes.paragraph, nodes.table]
    assert result[0].astext() == "Conformance of mylib 1.0 (float32, cpu)"
    rows = list(result[2].findall(nodes.row))
    assert [[e.astext() for e in row.findall(nodes.entry)] for row in rows] == [
        ["function", "cases", "pass", "max abs error"],
        ["apply_rope", "2", "2", "1.19e-07"],
        ["alibi_bias", "1", "1", "0.00e+00"],
    ]
    assert list(rows[1].findall(nodes.literal))[0].astext() == "apply_rope"


def test_markdown_matrix_lists_bold_and_tables_per_library():
    # No raw Markdown in the matrix page: list items are list items, **x** is bold, the title is the
    # page's own, and the wide table is split into one narrow table per library.
    pytest.importorskip("sphinx", reason="sphinx is not installed; the docs extension cannot be imported")
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        import posref_docs
    finally:
        sys.path.remove(str(DOCS / "_ext"))
    from docutils import nodes

    text = (
        "# Conformance matrix\n\nLegend.\n\n"
        "| library | version | function | float32 |\n| --- | --- | --- | --- |\n"
        "| a | 1.0 | `f` | pass (0.1) |\n| a | 1.0 | `g` | known (2), lenient |\n| b | 2.0 | `f` | n/i |\n\n"
        "## Known divergences\n\n- **a** `g.case` (fail) [float32]: a reason\n  that goes on\n- **b** `f.x`: other\n"
    )
    result = posref_docs.markdown_to_nodes(text, posref_docs._markdown_inline, group_by="library", skip_title=True)
    assert [type(n) for n in result] == [nodes.paragraph, nodes.rubric, nodes.table, nodes.rubric, nodes.table,
                                         nodes.rubric, nodes.bullet_list]
    assert [result[1].astext(), result[3].astext()] == ["a 1.0", "b 2.0"]
    header = [e.astext() for e in next(result[2].findall(nodes.row)).findall(nodes.entry)]
    assert header == ["function", "float32"]
    items = list(result[6].findall(nodes.list_item))
    assert [i.astext() for i in items] == ["a g.case (fail) [float32]: a reason that goes on", "b f.x: other"]
    assert list(items[0].findall(nodes.strong))[0].astext() == "a"
    assert "**" not in "".join(n.astext() for n in result) and "- " not in result[6].astext()


def test_every_family_has_a_page():
    # Each family of the spec catalogue is presented on some page under
    # docs/families/ (its autosummary table comes from the catalogue, so
    # only a family nobody wrote a page for can be missing).
    import posref

    listed = set()
    for page in (DOCS / "families").glob("*.rst"):
        listed.update(re.findall(r"^\.\. posref-functions:: (\S+)\s*$", page.read_text(encoding="utf-8"), re.MULTILINE))
    families = {entry.family for entry in posref.spec_functions()}
    assert not families - listed, f"families without a page under docs/families/: {sorted(families - listed)}"


def test_every_divergence_on_the_matrix_page_links_its_known_list(built_site):
    import html
    import re

    matrix = (built_site / "guides" / "matrix.html").read_text(encoding="utf-8")
    known = (built_site / "guides" / "known.html").read_text(encoding="utf-8")
    anchors = set(re.findall(r'id="(known-[a-z0-9-]+-(?:float64|float32|float16|bfloat16))"', known))
    shipped = sorted((DOCS.parent / "posref" / "adapters" / "known").glob("*.txt"))
    assert len(anchors) == len(shipped), "one section per shipped known list"
    for path in shipped:  # each section shows its file's reasons
        first_reason = next(line for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("#"))
        assert html.escape(first_reason[:40], quote=False) in known, path.name
    items = re.findall(r"<li><p><strong>\w+</strong> <code[^>]*>.*?</code> \([a-z_]+\) \[[a-z0-9, ]+\]:(.*?)</p>",
                       matrix, re.S)
    assert items and all("known list: " in item for item in items), "every divergence links its known lists"
    targets = re.findall(r'href="known\.html#(known-[a-z0-9-]+)"', matrix)
    assert targets and set(targets) <= anchors
