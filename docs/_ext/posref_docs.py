"""Sphinx helpers for the posref documentation.

Everything here exists so that the pages are built from the package itself
and cannot drift from it:

* ``posref-functions``: an autosummary table of one family (or one
  module's ``__all__``), read from the spec catalogue at build time;
* ``posref-catalogue``: the table of every family, its functions and its
  paper;
* ``posref-api-index``: the autosummary tables of every family;
* ``posref-cli``: the ``--help`` text of every ``posref`` command, taken
  from the argument parser;
* ``posref-markdown``: a Markdown file (pipe tables, headings, paragraphs)
  that may not exist yet, with a fallback written in the directive body;
* one stub page per public function under ``api/generated/`` (the
  autosummary output directory);
* a fallback that resolves a reference to a public function written with
  its defining module (``posref.rope.apply_rope``) or bare
  (``apply_rope``) to its public name ``posref.apply_rope``;
* module docstrings are rendered as plain reStructuredText, bypassing
  numpydoc, which only knows the sections of function docstrings and would
  drop the others;
* MathJax served from the build itself (see :func:`use_offline_mathjax`);
* every ``arXiv:NNNN.NNNNN`` (or ``arXiv NNNN.NNNNN``) in a page or a
  docstring becomes a link to the paper's abstract page (:class:`ArxivLinks`);
* a constant documented under a name that re-exports it
  (``posref.SPEC_VERSION``, ``posref.golden.format.SCHEMA_VERSION``) gets
  the ``#:`` comment written where it is defined, not the docstring of
  ``str`` or ``int`` (:func:`constant_comment`);
* ``posref-family-map``: where each family's pieces live (spec module,
  golden cases, error-model classes, fuzzed functions, docs page), read
  from the package at build time;
* :data:`PLOT_TEMPLATE`, the plot directive's output: the figure with its
  caption, and the plotting code as a download linked from the caption.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import os
import re
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx import addnodes
from sphinx.errors import ExtensionError
from sphinx.transforms import SphinxTransform
from sphinx.util.docutils import SphinxDirective


#: The PyPI distribution that ships MathJax 3 (tex-chtml.js and its fonts).
MATHJAX_DISTRIBUTION = "sphinx-mathjax-offline"
MATHJAX_SUBDIR = "sphinx-mathjax-offline/static"

GENERATED = "api/generated"


# -- offline MathJax ---------------------------------------------------------------------------


def find_mathjax_static() -> Path | None:
    """Return the directory holding ``mathjax/tex-chtml.js``, or None."""
    override = os.environ.get("POSREF_MATHJAX_STATIC")
    candidates = [Path(override)] if override else []
    try:
        dist = importlib.metadata.distribution(MATHJAX_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        pass
    else:
        candidates.append(Path(str(dist.locate_file(MATHJAX_SUBDIR))))
    for candidate in candidates:
        if (candidate / "mathjax" / "tex-chtml.js").is_file():
            return candidate
    return None


def use_offline_mathjax(app, config) -> None:
    """Serve MathJax from ``_static/mathjax`` of the build instead of a CDN.

    The MathJax 3 files come from the PyPI package ``sphinx-mathjax-offline``
    (used only as a data source; its own Sphinx hook is not loaded), or from
    a directory named by the environment variable ``POSREF_MATHJAX_STATIC``
    that contains ``mathjax/tex-chtml.js``.
    """
    static = find_mathjax_static()
    if static is None:
        raise ExtensionError(
            "the posref docs render math offline and need MathJax 3: "
            f"pip install {MATHJAX_DISTRIBUTION} (it is part of posref's 'docs' and 'test' extras), "
            "or set POSREF_MATHJAX_STATIC to a directory containing mathjax/tex-chtml.js"
        )
    config.html_static_path = list(config.html_static_path) + [str(static)]
    config.mathjax_path = "mathjax/tex-chtml.js"


# -- figures ---------------------------------------------------------------------------------


#: Output of matplotlib's plot directive (``plot_template`` in conf.py): the
#: figure with its ``:caption:`` and ``:alt:``, and, in HTML, a link to the
#: plotting code at the end of the caption instead of the code itself above
#: the figure.  The variables are those of the directive's own template.
PLOT_TEMPLATE = """
{{ source_code }}

.. only:: html

   {% for img in images %}
   .. figure:: {{ build_dir }}/{{ img.basename }}.{{ default_fmt }}
      {% for option in options -%}
      {{ option }}
      {% endfor %}

      {% if caption %}{{ caption }}{% if src_name and loop.first %} {% endif %}{% endif -%}
      {% if src_name and loop.first %}(:download:`plotting code <{{ build_dir }}/{{ src_name }}>`){% endif %}
   {% endfor %}

.. only:: not html

   {% for img in images %}
   .. figure:: {{ build_dir }}/{{ img.basename }}.*
      {% for option in options -%}
      {{ option }}
      {% endfor -%}

      {{ caption }}
   {% endfor %}
"""


# -- arXiv links -------------------------------------------------------------------------------


#: A paper cited by its arXiv identifier: ``arXiv:2104.09864`` or ``arXiv 2104.09864``
#: (a line break may follow the colon), with an optional version suffix.
ARXIV_ID = re.compile(r"\barXiv(?::\s*|\s+)(\d{4}\.\d{4,5})(v\d+)?\b")
ARXIV_URL = "https://arxiv.org/abs/{}"

#: Nodes whose text is never turned into a link: code, math, existing links.
_NO_LINKS = (nodes.FixedTextElement, nodes.literal, nodes.math, nodes.reference, nodes.raw,
             nodes.target, nodes.comment, addnodes.pending_xref, addnodes.desc_signature)


class ArxivLinks(SphinxTransform):
    """Link every arXiv identifier of the running text to its abstract page.

    Pages and docstrings cite papers as ``arXiv:NNNN.NNNNN``; the citation
    text stays as written and becomes a link to
    ``https://arxiv.org/abs/NNNN.NNNNN``.  Code, math and text that is
    already a link are left alone.
    """

    default_priority = 700

    def apply(self, **kwargs) -> None:
        for text in list(self.document.findall(nodes.Text)):
            if not ARXIV_ID.search(text) or _inside(text, _NO_LINKS):
                continue
            parts: list[nodes.Node] = []
            last = 0
            for match in ARXIV_ID.finditer(text):
                if match.start() > last:
                    parts.append(nodes.Text(text[last:match.start()]))
                cited = match.group(0)
                parts.append(nodes.reference(cited, cited, refuri=ARXIV_URL.format(match.group(1) + (match.group(2) or "")),
                                             classes=["arxiv"]))
                last = match.end()
            if last < len(text):
                parts.append(nodes.Text(text[last:]))
            text.parent.replace(text, parts)


def _inside(node: nodes.Node, kinds: tuple[type, ...]) -> bool:
    parent = node.parent
    while parent is not None:
        if isinstance(parent, kinds):
            return True
        parent = parent.parent
    return False


# -- module constants --------------------------------------------------------------------------


def _attribute_comments(modname: str) -> dict[str, list[str]]:
    from sphinx.pycode import ModuleAnalyzer, PycodeError

    try:
        analyzer = ModuleAnalyzer.for_module(modname)
        return {name: list(lines) for (cls, name), lines in analyzer.find_attr_docs().items() if not cls}
    except PycodeError:
        return {}


def constant_comment(name: str, obj) -> list[str] | None:
    """The ``#:`` comment of the posref module that defines the constant ``name``, or None.

    autodoc reads ``#:`` comments only in the module a constant is documented
    under; posref documents constants where users import them from
    (``posref.SPEC_VERSION``), which re-export them from the module that
    assigns them (``posref._version``).  Without this, such a constant shows
    the docstring of its type (``str(object='') -> str``).
    """
    import sys

    modname, _, attr = name.rpartition(".")
    if attr in _attribute_comments(modname):
        return None  # autodoc found it already
    for other in sorted(m for m in list(sys.modules) if m == "posref" or m.startswith("posref.")):
        module = sys.modules.get(other)
        if module is None or getattr(module, attr, _MISSING) is not obj:
            continue
        comment = _attribute_comments(other).get(attr)
        if comment:
            return comment
    return None


_MISSING = object()


def _document_constant(app, what, name, obj, options, lines) -> None:
    if what == "data" and name.startswith("posref."):
        comment = constant_comment(name, obj)
        if comment:
            lines[:] = comment


# -- generated stub pages ----------------------------------------------------------------------


def public_functions() -> list:
    import posref

    return posref.spec_functions()


def write_stubs(app) -> None:
    """Write one autodoc page per public spec function into ``api/generated``."""
    out = Path(app.srcdir) / GENERATED
    out.mkdir(parents=True, exist_ok=True)
    wanted = set()
    for entry in public_functions():
        fullname = f"posref.{entry.name}"
        text = (
            f"{fullname}\n{'=' * len(fullname)}\n\n"
            ".. currentmodule:: posref\n\n"
            f".. autofunction:: {entry.name}\n"
        )
        path = out / f"{fullname}.rst"
        wanted.add(path.name)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    for stale in out.glob("posref.*.rst"):
        if stale.name not in wanted:
            stale.unlink()


# -- numpydoc only for functions and classes ---------------------------------------------------


_RAW_MODULE_DOCS: dict[int, list[str]] = {}


def _keep_module_docstring(app, what, name, obj, options, lines) -> None:
    if what == "module":
        _RAW_MODULE_DOCS[id(lines)] = list(lines)


def _restore_module_docstring(app, what, name, obj, options, lines) -> None:
    if what == "module":
        raw = _RAW_MODULE_DOCS.pop(id(lines), None)
        if raw is not None:
            lines[:] = raw


# -- references to public functions ------------------------------------------------------------


def resolve_public_name(app, env, node, contnode):
    """Resolve a reference to a posref object through its re-exports.

    posref re-exports names: spec functions live at ``posref.<name>`` but
    are defined in ``posref.<module>``, and ``posref.golden`` re-exports
    the names of ``posref.golden.format``.  A reference written with any
    of these paths, or bare inside a posref docstring, resolves to the one
    place the object is documented: ``posref.<name>`` for spec functions,
    otherwise the documented ``posref...<name>`` whose module path shares
    the longest prefix with the reference (or with the current module).
    """
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "").lstrip(".~")
    head, _, last = target.rpartition(".")
    if head and not head.startswith("posref"):
        return None
    import posref

    domain = env.get_domain("py")
    if last in posref.SPEC_FUNCTIONS:
        found = f"posref.{last}"
    else:
        candidates = [name for name in domain.objects if name.startswith("posref.") and name.endswith("." + last)]
        if not candidates:
            return None
        context = head or node.get("py:module") or ""

        def shared(name: str) -> int:
            return len(os.path.commonprefix([name, context]))

        found = max(sorted(candidates), key=shared)
    return domain.resolve_xref(env, node["refdoc"], app.builder, "obj", found, node, contnode)


# -- directives --------------------------------------------------------------------------------


def _names_for(argument: str) -> list[str]:
    if "." in argument:
        module = importlib.import_module(argument)
        names = list(getattr(module, "__all__", []))
        if not names:
            raise ValueError(f"module {argument} has an empty __all__")
        return names
    import posref

    names = sorted(entry.name for entry in posref.spec_functions(argument))
    if not names:
        known = sorted({entry.family for entry in posref.spec_functions()})
        raise ValueError(f"unknown family {argument!r}; known: {', '.join(known)}")
    return names


class FunctionsDirective(SphinxDirective):
    """Autosummary table of the public functions of a family or module.

    The argument is a family name of the spec catalogue (``rope``) or a
    dotted module name whose ``__all__`` is listed (``posref.rope``).
    Spec functions are listed under their public name ``posref.<name>``.
    """

    required_arguments = 1
    has_content = False

    def run(self):
        argument = self.arguments[0]
        try:
            names = _names_for(argument)
        except (ImportError, ValueError) as exc:
            raise self.error(f"posref-functions: {exc}") from exc
        import posref

        current = self.env.ref_context.get("py:module")
        lines = [".. autosummary::", "   :nosignatures:", ""]
        for name in names:
            module = "posref" if name in posref.SPEC_FUNCTIONS else argument
            lines.append(f"   {name}" if module == current else f"   ~{module}.{name}")
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source="posref-functions"), self.content_offset, container)
        return container.children


#: Display names of the families; a family missing here shows its key.
FAMILY_TITLES = {
    "sinusoidal": "Sinusoidal",
    "learned": "Learned",
    "fourier": "Fourier features",
    "shaw": "Shaw relative representations",
    "t5": "T5 relative bias",
    "alibi": "ALiBi",
    "rope": "RoPE",
    "rope_scaling": "RoPE scaling",
    "xpos": "xPos",
    "multiaxis": "Multi-axis",
    "fope": "FoPE",
    "cpe": "Conditional position encoding",
    "transformer_xl": "Transformer-XL",
    "deberta": "DeBERTa",
    "kerple": "KERPLE",
    "sandwich": "Sandwich",
    "fire": "FIRE",
    "cope": "CoPE",
    "nope": "NoPE",
    "attention": "Reference attention",
}


class ApiIndexDirective(SphinxDirective):
    """One autosummary table per family, for every family of the catalogue.

    Families listed in :data:`FAMILY_TITLES` come first, in that order; any
    other family follows under its own name, so a new family is listed
    without editing the docs.
    """

    has_content = False

    def run(self):
        import posref

        families: dict[str, list[str]] = {}
        for entry in posref.spec_functions():
            families.setdefault(entry.family, []).append(entry.name)
        order = [f for f in FAMILY_TITLES if f in families] + sorted(f for f in families if f not in FAMILY_TITLES)
        current = self.env.ref_context.get("py:module")
        lines: list[str] = []
        for family in order:
            lines += [f".. rubric:: {FAMILY_TITLES.get(family, family)}", "", ".. autosummary::", "   :nosignatures:", ""]
            lines += [f"   {n}" if current == "posref" else f"   ~posref.{n}" for n in sorted(families[family])]
            lines.append("")
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source="posref-api-index"), self.content_offset, container)
        return container.children


class CatalogueDirective(SphinxDirective):
    """Table of every family: its functions and the paper it follows.

    Each family links the page under ``families/`` that lists its functions
    (``.. posref-functions:: <family>``), found by :func:`family_pages`;
    ``:pages: family=doc, ...`` overrides it.
    """

    has_content = False
    option_spec = {"pages": directives.unchanged}

    def run(self):
        import posref

        families: dict[str, list] = {}
        for entry in posref.spec_functions():
            families.setdefault(entry.family, []).append(entry)
        pages = family_pages(self.env.srcdir)
        for page in set(pages.values()):
            self.env.note_dependency(str(Path(self.env.srcdir) / f"{page}.rst"))
        for item in (self.options.get("pages") or "").split(","):
            if "=" in item:
                family, doc = item.split("=", 1)
                pages[family.strip()] = doc.strip()
        lines = [".. list-table::", "   :header-rows: 1", "   :widths: 15 45 40", "",
                 "   * - family", "     - functions", "     - reference"]
        for family, entries in families.items():
            label = f":doc:`{family} <{pages[family]}>`" if family in pages else f"``{family}``"
            functions = ", ".join(f":func:`~posref.{e.name}`" for e in entries)
            references = list(dict.fromkeys(e.reference for e in entries))
            if len(references) > 2:
                reference = f"{len(references)} papers, see the family page"
            else:
                # Escape "A. Author" so that it is not read as an enumerated list.
                reference = "; ".join(re.sub(r"^([A-Z])\.", r"\1\\.", r.replace("*", r"\*")) for r in references)
            lines += [f"   * - {label}", f"     - {functions}", f"     - {reference}"]
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source="posref-catalogue"), self.content_offset, container)
        return container.children


def family_pages(srcdir) -> dict[str, str]:
    """Map each family to the document under ``families/`` that lists its functions."""
    pages = {}
    for page in sorted((Path(srcdir) / "families").glob("*.rst")):
        text = page.read_text(encoding="utf-8")
        for family in re.findall(r"^\.\. posref-functions:: (\S+)\s*$", text, re.MULTILINE):
            pages.setdefault(family, f"families/{page.stem}")
    return pages


class FamilyMapDirective(SphinxDirective):
    """Where each family's pieces live, read from the package when the docs are built.

    One row per family of the spec catalogue: its spec module(s), the file
    and number of its golden cases (valid and invalid), the error-model
    classes those cases name (and the family's own error-model module, if it
    has one), how many of its functions have a fuzz strategy, and its
    documentation page.
    """

    has_content = False

    def run(self):
        import posref
        from posref.conformance.fuzz import FUZZ_FUNCTIONS
        from posref.golden.cases import CASES, FAMILY_MODULES, NOT_GOLDEN

        case_files = {c.id: f"posref/golden/cases/{name}.py" for name, module in FAMILY_MODULES.items()
                      for c in module.CASES}
        families: dict[str, list] = {}
        for entry in posref.spec_functions():
            families.setdefault(entry.family, []).append(entry)
        order = [f for f in FAMILY_TITLES if f in families] + sorted(f for f in families if f not in FAMILY_TITLES)
        pages = family_pages(self.env.srcdir)
        for page in pages.values():
            self.env.note_dependency(str(Path(self.env.srcdir) / f"{page}.rst"))
        lines = [".. list-table::", "   :header-rows: 1", "   :widths: 16 20 22 22 8 12", "",
                 "   * - family", "     - spec module", "     - golden cases (valid + invalid)",
                 "     - error-model classes", "     - fuzzed", "     - page"]
        for family in order:
            entries = families[family]
            names = {e.name for e in entries}
            cases = [c for c in CASES if c.function in names]
            valid = sum(c.expect_error is None for c in cases)
            files = sorted({case_files[c.id] for c in cases})
            golden = f"{valid} + {len(cases) - valid} in " + ", ".join(f"``{f}``" for f in files) if cases else "none"
            skipped = sorted(names & set(NOT_GOLDEN))
            if skipped:
                golden += "; none for " + ", ".join(f"``{n}``" for n in skipped)
            classes = sorted({c.tolerance for c in cases if c.expect_error is None and c.tolerance})
            own_model = importlib.util.find_spec(f"posref.tolerance.{family}") is not None
            if own_model:
                classes_text = ", ".join(f"``{c}``" for c in classes) + f" (``posref/tolerance/{family}.py``)"
            else:
                classes_text = ", ".join(f"``{c}``" for c in classes) or "none"
            modules = sorted({e.module for e in entries})
            fuzzed = sum(e.name in FUZZ_FUNCTIONS for e in entries)
            page = f":doc:`/{pages[family]}`" if family in pages else "none"
            lines += [f"   * - ``{family}``",
                      "     - " + ", ".join(f"``{m.replace('.', '/')}.py``" for m in modules),
                      f"     - {golden}",
                      f"     - {classes_text}",
                      f"     - {fuzzed} of {len(entries)}",
                      f"     - {page}"]
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source="posref-family-map"), self.content_offset, container)
        return container.children


def _subcommands(parser: argparse.ArgumentParser):
    yield parser.prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _subcommands(sub)


class CliDirective(SphinxDirective):
    """The ``--help`` text of ``posref`` and of every subcommand."""

    has_content = False

    def run(self):
        from posref.cli import build_parser

        old = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = "88"
        try:
            parser = build_parser()
            result = []
            for prog, sub in _subcommands(parser):
                section = nodes.rubric(text=prog)
                text = sub.format_help().rstrip()
                block = nodes.literal_block(text, text)
                block["language"] = "text"
                result += [section, block]
        finally:
            if old is None:
                os.environ.pop("COLUMNS", None)
            else:
                os.environ["COLUMNS"] = old
        return result


_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


def _split_row(line: str) -> list[str]:
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|"):
        line = line[:-1]
    return [cell.strip() for cell in line.split("|")]


def _table(header: list[str], rows: list[list[str]], inline) -> nodes.table:
    width = len(header)
    table = nodes.table()
    group = nodes.tgroup(cols=width)
    table += group
    for _ in range(width):
        group += nodes.colspec(colwidth=1)
    thead, tbody = nodes.thead(), nodes.tbody()
    for target, cells_rows in ((thead, [header]), (tbody, rows)):
        for cells in cells_rows:
            row = nodes.row()
            cells = (cells + [""] * width)[:width]
            for cell in cells:
                entry = nodes.entry()
                entry += nodes.paragraph("", "", *inline(cell))
                row += entry
            target += row
    group += thead
    group += tbody
    return table


def _grouped_tables(header: list[str], rows: list[list[str]], inline, group_by: str) -> list[nodes.Node]:
    """One rubric and table per value of the ``group_by`` column (with ``version`` folded into the rubric)."""
    key = header.index(group_by)
    drop = {key} | ({header.index("version")} if "version" in header else set())
    kept = [i for i in range(len(header)) if i not in drop]
    groups: dict[tuple[str, str], list[list[str]]] = {}
    for row in rows:
        row = (row + [""] * len(header))[: len(header)]
        version = row[header.index("version")] if "version" in header else ""
        groups.setdefault((row[key], version), []).append([row[i] for i in kept])
    out: list[nodes.Node] = []
    for (name, version), members in groups.items():
        title = f"{name} {version}".strip()
        section_id = nodes.make_id(f"matrix-{name}")
        rubric = nodes.rubric("", "", *inline(title), ids=[section_id])
        out += [rubric, _table([header[i] for i in kept], members, inline)]
    return out


def markdown_to_nodes(text: str, inline, *, group_by: str | None = None, skip_title: bool = False) -> list[nodes.Node]:
    """Headings, pipe tables, bullet lists and paragraphs of a Markdown text as docutils nodes.

    ``inline(text)`` turns a cell, item or paragraph into inline nodes.
    ``group_by`` names a table column to split a table by (one table per
    value); ``skip_title`` drops the first level-1 heading (the page has its
    own).  This is enough for the generated conformance matrix.
    """
    lines = text.splitlines()
    result: list[nodes.Node] = []
    i = 0
    titled = False
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        if line.lstrip().startswith("#"):
            level = len(line.lstrip()) - len(line.lstrip().lstrip("#"))
            if skip_title and level == 1 and not titled:
                titled = True
                i += 1
                continue
            result.append(nodes.rubric("", "", *inline(line.lstrip("# ").strip())))
            i += 1
            continue
        if "|" in line and i + 1 < len(lines) and _TABLE_RULE.match(lines[i + 1]):
            header = _split_row(line)
            rows = []
            i += 2
            while i < len(lines) and "|" in lines[i] and lines[i].strip():
                rows.append(_split_row(lines[i]))
                i += 1
            if group_by and group_by in header:
                result += _grouped_tables(header, rows, inline, group_by)
            else:
                result.append(_table(header, rows, inline))
            continue
        if line.lstrip().startswith(("- ", "* ")):
            bullets = nodes.bullet_list()
            while i < len(lines) and lines[i].lstrip().startswith(("- ", "* ")):
                item_text = lines[i].lstrip()[2:].strip()
                i += 1
                while i < len(lines) and lines[i].startswith("  ") and lines[i].strip():  # continuation lines
                    item_text += " " + lines[i].strip()
                    i += 1
                item = nodes.list_item()
                item += nodes.paragraph("", "", *inline(item_text), *_known_list_links(item_text))
                bullets += item
            result.append(bullets)
            continue
        paragraph = []
        while (i < len(lines) and lines[i].strip() and not lines[i].lstrip().startswith("#")
               and not lines[i].lstrip().startswith(("- ", "* "))):
            paragraph.append(lines[i].strip())
            i += 1
            if i < len(lines) and "|" in lines[i] and i + 1 < len(lines) and _TABLE_RULE.match(lines[i + 1]):
                break
        result.append(nodes.paragraph("", "", *inline(" ".join(paragraph))))
    return result


_INLINE = re.compile(r"`([^`]+)`|\*\*([^*]+)\*\*")
#: A divergence of the matrix: ``**library** `case id` (status) [dtype, dtype]: reason``.
_DIVERGENCE = re.compile(r"^\*\*(?P<library>\w+)\*\* `[^`]+` \([a-z_]+\) \[(?P<dtypes>[a-z0-9, ]+)\]:")


def _known_dir() -> Path:
    from posref.conformance.known import KNOWN_DIR

    return Path(KNOWN_DIR)


def known_label(library: str, dtype: str) -> str:
    """The label of one known-divergence list on the known-lists page."""
    return f"known-{library}-{dtype}".replace("_", "-")


def _known_list_links(item_text: str) -> list[nodes.Node]:
    """For a divergence of the matrix, links to the known lists that hold it (one per dtype)."""
    match = _DIVERGENCE.match(item_text)
    if not match:
        return []
    library = match["library"]
    dtypes = [d.strip() for d in match["dtypes"].split(",")]
    dtypes = [d for d in dtypes if (_known_dir() / f"{library}-{d}.txt").is_file()]
    if not dtypes:
        return []
    out: list[nodes.Node] = [nodes.Text(" (known list: ")]
    for n, dtype in enumerate(dtypes):
        if n:
            out.append(nodes.Text(", "))
        xref = addnodes.pending_xref("", refdomain="std", reftype="ref", reftarget=known_label(library, dtype),
                                     refexplicit=True, refwarn=True)
        xref += nodes.inline(dtype, dtype)
        out.append(xref)
    out.append(nodes.Text(")"))
    return out


class KnownListsDirective(SphinxDirective):
    """Every known-divergence list shipped with the built-in adapters, one section each, as the files read.

    Each section carries the label :func:`known_label` gives, which the
    divergences of the matrix page link to.
    """

    has_content = False

    def run(self):
        lines: list[str] = []
        for path in sorted(_known_dir().glob("*.txt")):
            library, _, dtype = path.stem.rpartition("-")
            self.env.note_dependency(str(path))
            title = f"{library}, {dtype}"
            lines += [f".. _{known_label(library, dtype)}:", "", title, "~" * len(title), "",
                      f"``posref/adapters/known/{path.name}``", "", ".. code-block:: text", ""]
            body = path.read_text(encoding="utf-8").splitlines() or ["(empty)"]
            lines += [f"   {line}" if line.strip() else "" for line in body] + [""]
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source="posref-known-lists"), self.content_offset, container,
                                match_titles=True)
        return container.children


def _markdown_inline(text: str) -> list[nodes.Node]:
    parts: list[nodes.Node] = []
    last = 0
    for match in _INLINE.finditer(text):
        if match.start() > last:
            parts.append(nodes.Text(text[last:match.start()]))
        if match.group(1) is not None:
            parts.append(nodes.literal(match.group(1), match.group(1)))
        else:
            parts.append(nodes.strong(match.group(2), match.group(2)))
        last = match.end()
    if last < len(text):
        parts.append(nodes.Text(text[last:]))
    return parts


class MarkdownDirective(SphinxDirective):
    """Include a Markdown file if it exists; otherwise render the directive's body.

    The path is relative to the current document.  Only headings, pipe
    tables, bullet lists, paragraphs, code spans and bold text are
    interpreted; ``:group-by: COLUMN`` splits a table into one table per
    value of that column, and ``:skip-title:`` drops the first level-1
    heading.
    """

    required_arguments = 1
    has_content = True
    option_spec = {"group-by": directives.unchanged, "skip-title": directives.flag}

    def run(self):
        relative, absolute = self.env.relfn2path(self.arguments[0], self.env.docname)
        path = Path(absolute)
        self.env.note_dependency(relative)
        if path.is_file():
            return markdown_to_nodes(path.read_text(encoding="utf-8"), _markdown_inline,
                                     group_by=self.options.get("group-by"),
                                     skip_title="skip-title" in self.options)
        container = nodes.container()
        self.state.nested_parse(self.content, self.content_offset, container)
        return container.children


def setup(app):
    app.connect("config-inited", use_offline_mathjax)
    app.connect("builder-inited", write_stubs)
    app.connect("autodoc-process-docstring", _keep_module_docstring, priority=100)
    app.connect("autodoc-process-docstring", _restore_module_docstring, priority=900)
    app.connect("autodoc-process-docstring", _document_constant, priority=50)
    app.connect("missing-reference", resolve_public_name)
    app.add_transform(ArxivLinks)
    app.add_directive("posref-family-map", FamilyMapDirective)
    app.add_directive("posref-functions", FunctionsDirective)
    app.add_directive("posref-catalogue", CatalogueDirective)
    app.add_directive("posref-api-index", ApiIndexDirective)
    app.add_directive("posref-cli", CliDirective)
    app.add_directive("posref-markdown", MarkdownDirective)
    app.add_directive("posref-known-lists", KnownListsDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
