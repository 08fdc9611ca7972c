"""The built documentation is comfortable to read: figures, search, links, copy buttons, the contributor page.

Every figure drawn by a ``.. plot::`` block has real alt text (not its file
name), a caption, and a PNG of at least 150 dpi; its plotting code is linked
from the caption, not printed above it.  The family pages rank first in the
search for their own method names, papers cited by arXiv id are links,
module constants show their own documentation, the copy button strips
prompts, and the contributor page names every family of the catalogue.

The site is built once for this module, like ``tests/test_docs.py`` does
(warnings are errors).  Set ``POSREF_DOCS_HTML`` to the output directory of
an existing build of the current tree to check that build instead.
"""

from __future__ import annotations

import html
import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

#: Distributions the build needs (the ``docs`` extra of pyproject.toml).
TOOLCHAIN = ("sphinx", "furo", "numpydoc", "matplotlib", "sphinx-mathjax-offline", "sphinx-copybutton")

#: Pages whose figures do not meet the rules yet, with the reason; strict,
#: so that the entry must go once the page is fixed.
FIGURES_PENDING: dict[str, str] = {}

#: A search term and the page that must rank first for it.
SEARCH_TERMS = {
    "yarn": "families/rope_scaling",
    "ntk": "families/rope_scaling",
    "longrope": "families/rope_scaling",
    "alibi": "families/alibi",
    "xpos": "families/xpos",
    "rope": "families/rope",
    "fope": "families/fope",
    "t5": "families/t5",
    "shaw": "families/shaw",
    "cpe": "families/cpe",
    "peg": "families/cpe",
    "sinusoidal": "families/sinusoidal",
    "m-rope": "families/multiaxis",
    "kerple": "families/relative",
    "fire": "families/relative",
    "cope": "families/relative",
    "deberta": "families/relative",
}


def _missing_toolchain() -> list[str]:
    missing = []
    for name in TOOLCHAIN:
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    return missing


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    given = os.environ.get("POSREF_DOCS_HTML")
    if given:
        path = Path(given)
        assert (path / "searchindex.js").is_file(), f"POSREF_DOCS_HTML={given} holds no HTML build"
        return path
    if importlib.util.find_spec("sphinx") is None:
        pytest.skip("sphinx is not installed (pip install -e '.[docs]'); the documentation cannot be built")
    missing = _missing_toolchain()
    if missing:
        pytest.skip(f"documentation toolchain incomplete, missing: {', '.join(missing)} (pip install -e '.[docs]')")
    out = tmp_path_factory.mktemp("html")
    env = dict(os.environ, MPLBACKEND="Agg")
    env.pop("PYTHONWARNINGS", None)
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-b", "html", str(DOCS), str(out)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    assert completed.returncode == 0, (
        f"sphinx-build failed (exit {completed.returncode}):\n{completed.stdout[-4000:]}\n{completed.stderr[-8000:]}"
    )
    return out


# -- reading the HTML ----------------------------------------------------------------------------


class _Figures(HTMLParser):
    """The ``<figure>`` elements of a page: their images, caption text and caption links."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.figures: list[dict] = []
        self._figure: dict | None = None
        self._in_caption = 0
        self._skip = 0  # inside the caption's headerlink

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "figure":
            self._figure = {"images": [], "caption": "", "links": []}
            self.figures.append(self._figure)
        elif self._figure is None:
            return
        elif tag == "img":
            self._figure["images"].append(attrs)
        elif tag == "figcaption":
            self._in_caption += 1
        elif tag == "a" and self._in_caption:
            self._figure["links"].append(attrs)
            if "headerlink" in (attrs.get("class") or ""):
                self._skip += 1

    def handle_endtag(self, tag):
        if tag == "figure":
            self._figure = None
        elif tag == "figcaption" and self._in_caption:
            self._in_caption -= 1
        elif tag == "a" and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if self._figure is not None and self._in_caption and not self._skip:
            self._figure["caption"] += data


def figures_of(page: Path) -> list[dict]:
    parser = _Figures()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.figures


def _text(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", markup))


def _png_size_and_dpi(path: Path) -> tuple[int, int, float | None]:
    """Width, height and resolution (pHYs chunk, dots per inch) of a PNG file."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    at = data.find(b"pHYs")
    dpi = None
    if at > 0:
        x_per_unit = int.from_bytes(data[at + 4:at + 8], "big")
        if data[at + 12] == 1:  # unit: metre
            dpi = x_per_unit * 0.0254
    return width, height, dpi


def _plot_pages() -> list[Path]:
    skip = {"_build", "generated", "examples", "_templates"}
    return sorted(p for p in DOCS.rglob("*.rst")
                  if not skip.intersection(p.relative_to(DOCS).parts) and ".. plot::" in p.read_text(encoding="utf-8"))


def _plot_blocks(page: Path) -> list[str]:
    """The source of every ``.. plot::`` block of a page (directive line, options and code)."""
    blocks, current = [], None
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith(".. plot::"):
            current = [line]
            blocks.append(current)
        elif current is not None and (not line.strip() or line.startswith(" ")):
            current.append(line)
        else:
            current = None
    return ["\n".join(block) for block in blocks]


def _page_params():
    params = []
    for page in _plot_pages():
        name = str(page.relative_to(DOCS))
        marks = [pytest.mark.xfail(strict=True, reason=FIGURES_PENDING[name])] if name in FIGURES_PENDING else []
        params.append(pytest.param(page, id=name, marks=marks))
    return params


# -- figures -------------------------------------------------------------------------------------


_IMAGE_PATH = re.compile(r"^[\w./\\-]+\.(png|svg|jpe?g|gif|pdf)$", re.IGNORECASE)


def test_every_family_page_has_a_figure():
    pages = {p.relative_to(DOCS).as_posix() for p in _plot_pages()}
    families = {p.relative_to(DOCS).as_posix() for p in (DOCS / "families").glob("*.rst")} - {"families/index.rst"}
    assert families <= pages, f"family pages without a figure: {sorted(families - pages)}"
    assert sum(len(_plot_blocks(p)) for p in _plot_pages()) >= 15


@pytest.mark.parametrize("page", _page_params())
def test_figures_have_alt_text_caption_and_resolution(site, page):
    html_page = site / page.relative_to(DOCS).with_suffix(".html")
    figures = [f for f in figures_of(html_page) if any("plot-directive" in (i.get("class") or "") for i in f["images"])]
    assert len(figures) == len(_plot_blocks(page)), f"{html_page.name}: not every plot became a figure"
    for number, figure in enumerate(figures, 1):
        where = f"{html_page.relative_to(site)}, figure {number}"
        # Alt text that describes the figure, not the image's file name.
        for image in figure["images"]:
            alt = (image.get("alt") or "").strip()
            assert alt, f"{where}: no alt text"
            assert not _IMAGE_PATH.match(alt) and "plot_directive" not in alt, f"{where}: alt text is a file path: {alt}"
            assert len(alt.split()) >= 8, f"{where}: alt text too short to describe the figure: {alt!r}"
        # A caption that says what to see, besides the link to the plotting code.
        caption = " ".join(figure["caption"].replace("(plotting code)", " ").split())
        assert len(caption.split()) >= 8, f"{where}: no caption, or a caption too short: {caption!r}"
        downloads = [a for a in figure["links"] if a.get("href", "").endswith(".py")]
        assert downloads, f"{where}: the caption does not link the plotting code"
        assert (html_page.parent / downloads[0]["href"]).is_file(), f"{where}: {downloads[0]['href']} is missing"
        # Sharp images: SVG, or PNG of at least 150 dpi (900 pixels for a 6-inch figure).
        for image in figure["images"]:
            source = html_page.parent / image["src"]
            assert source.is_file(), f"{where}: {image['src']} is missing"
            if source.suffix.lower() == ".svg":
                continue
            assert source.suffix.lower() == ".png", f"{where}: {source.name} is neither SVG nor PNG"
            width, _, dpi = _png_size_and_dpi(source)
            if dpi is None:
                assert width >= 900, f"{where}: {source.name} is {width} px wide and declares no resolution"
            else:
                assert dpi >= 149.5, f"{where}: {source.name} is {dpi:.0f} dpi"
    # The plotting code is linked, not printed on the page.
    body = html_page.read_text(encoding="utf-8")
    for block in _plot_blocks(page):
        _options, _, source = block.partition("\n\n")  # the options end at the first blank line
        code = [line.strip() for line in source.splitlines() if line.strip()]
        longest = html.escape(max(code, key=len), quote=False)
        assert longest not in body, f"{html_page.relative_to(site)} shows the plotting code: {longest}"


@pytest.mark.parametrize("page", _page_params())
def test_plots_label_their_axes_and_use_readable_legends(page):
    for number, block in enumerate(_plot_blocks(page), 1):
        where = f"{page.relative_to(DOCS)}, figure {number}"
        assert "xlabel" in block and ("ylabel" in block), f"{where}: axes without labels"
        small = [int(size) for size in re.findall(r"fontsize\s*=\s*(\d+)", block) if int(size) < 9]
        assert not small, f"{where}: text smaller than 9 pt ({small})"
        for option in (":caption:", ":alt:"):
            assert option in block, f"{where}: no {option}"


# -- search --------------------------------------------------------------------------------------


def _search_index(site: Path) -> dict:
    text = (site / "searchindex.js").read_text(encoding="utf-8")
    return json.loads(text[text.index("(") + 1:text.rindex(")")])


def _title_and_index_scores(index: dict, query: str) -> dict[str, int]:
    """Best score of each document for ``query`` from titles and index entries, as Sphinx's searchtools.js."""
    docnames, titles = index["docnames"], index["titles"]
    scores: dict[str, int] = {}

    def note(doc: int, score: int) -> None:
        name = docnames[doc]
        scores[name] = max(scores.get(name, 0), score)

    q = query.lower().strip()
    for title, found in index["alltitles"].items():
        if q in title.lower().strip() and len(q) >= len(title) / 2:
            for doc, _anchor in found:
                note(doc, round(15 * len(q) / len(title)) + (titles[doc] == title))
    for entry, found in index["indexentries"].items():
        if q in entry and len(q) >= len(entry) / 2:
            for doc, _anchor, main in found:
                if main:
                    note(doc, round(100 * len(q) / len(entry)))
    return scores


@pytest.mark.parametrize("term", sorted(SEARCH_TERMS))
def test_family_pages_rank_first_for_their_method_names(site, term):
    index = _search_index(site)
    page = SEARCH_TERMS[term]
    doc = index["docnames"].index(page)
    # The term is one of the page's title terms or main index entries...
    in_title = doc in (lambda found: found if isinstance(found, list) else [found])(index["titleterms"].get(term, []))
    in_index = any(d == doc and main for d, _anchor, main in index["indexentries"].get(term, []))
    assert in_title or in_index, f"{term!r} is neither a title term nor a main index entry of {page}"
    # ... and no other page scores as high for it.
    scores = _title_and_index_scores(index, term)
    best = max(scores.values())
    assert scores.get(page) == best, f"{page} scores {scores.get(page)} for {term!r}; best: {scores}"
    assert [name for name, score in scores.items() if score == best] == [page], scores


def test_family_pages_carry_keywords(site):
    for page in sorted((DOCS / "families").glob("*.rst")):
        if page.stem == "index":
            continue
        text = (site / "families" / f"{page.stem}.html").read_text(encoding="utf-8")
        metas = re.findall(r"<meta\b[^>]*>", text)
        assert any('name="keywords"' in m and re.search(r'content="[^"]+"', m) for m in metas), (
            f"{page.stem}: no keywords meta")


# -- links, constants, copy button, equations ----------------------------------------------------------


_ARXIV = re.compile(r"arXiv(?::\s*|\s+)(\d{4}\.\d{4,5})")


def test_arxiv_citations_are_links(site):
    pages = sorted((site / "families").glob("*.html")) + sorted((site / "api" / "generated").glob("*.html"))
    pages += [site / "index.html"]
    linked = 0
    for page in pages:
        body = page.read_text(encoding="utf-8")
        body = re.sub(r"<(pre|code|script)\b.*?</\1>", "", body, flags=re.DOTALL)
        links = dict(re.findall(r'<a [^>]*href="https://arxiv\.org/abs/([\d.v]+)"[^>]*>(.*?)</a>', body, re.DOTALL))
        for match in _ARXIV.finditer(_text(body)):
            assert match.group(1) in links, f"{page.relative_to(site)}: arXiv:{match.group(1)} is not a link"
        for identifier, text in links.items():
            assert identifier.split("v")[0] in _text(text), f"{page.relative_to(site)}: link {identifier} reads {text!r}"
        linked += len(links)
    assert linked >= 30


def test_module_constants_show_their_own_documentation(site):
    import posref

    for page, names in {"api/index.html": ("SPEC_VERSION", "__version__"),
                        "guides/golden.html": ("MANIFEST_SCHEMA", "SCHEMA_VERSION")}.items():
        text = " ".join(_text((site / page).read_text(encoding="utf-8")).split())
        for builtin in ("str(object=", "int([x])", "dict() ->"):
            assert builtin not in text, f"{page} shows the docstring of a builtin type ({builtin})"
        for name in names:
            assert name in text, f"{page} does not document {name}"
    text = " ".join(_text((site / "api" / "index.html").read_text(encoding="utf-8")).split())
    assert "Version of the mathematical specification" in text and "Version of the posref package" in text
    assert posref.SPEC_VERSION in text


def test_copy_button_strips_prompts(site):
    script = (site / "_static" / "copybutton.js").read_text(encoding="utf-8")
    assert re.search(r"formatCopyText\(text, '>>> \|\\\\\.\\\\\.\\\\\. \|\\\\\$ ', true, true, true", script), (
        "the copy button is not set to strip '>>> ', '... ' and '$ ' prompts")
    assert "let exclude = '.linenos';" in script, "prompt spans must stay visible to the copy button"
    assert "copybutton.js" in (site / "index.html").read_text(encoding="utf-8")


def test_apply_rope_equation_is_split_over_lines(site):
    text = (site / "api" / "generated" / "posref.apply_rope.html").read_text(encoding="utf-8")
    assert r"\begin{aligned}" in text and r"\phi_i &amp;= (p + p_0)" in text


# -- contributor page ----------------------------------------------------------------------------


def test_contributor_page_names_every_family(site):
    import posref

    page = site / "guides" / "contributing.html"
    assert page.is_file(), "guides/contributing was not built"
    markup = page.read_text(encoding="utf-8")
    text = _text(markup)
    families = sorted({entry.family for entry in posref.spec_functions()})
    missing = [family for family in families if not re.search(rf"(?<![\w]){re.escape(family)}(?![\w])", text)]
    assert not missing, f"families not named on the contributor page: {missing}"
    for piece in ("posref/golden/cases/<family>.py", "posref/tolerance/<family>.py", "posref/golden/strategies.py",
                  "tests/test_<family>.py", "tests/meta/broken.py", "docs/families/", "tests/test_layers.py",
                  "tests/test_family_layout.py"):
        assert piece in text, f"the contributor page does not say where {piece} fits"
    # Each family's row links the page that documents it.
    for family in families:
        row = re.search(rf"<tr[^>]*>\s*<td><p><code[^>]*><span class=\"pre\">{re.escape(family)}</span></code></p></td>"
                        r"(.*?)</tr>", markup, re.DOTALL)
        assert row, f"no row for {family} in the table of the contributor page"
        assert 'href="../families/' in row.group(1), f"the row of {family} links no family page"
