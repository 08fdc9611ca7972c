"""The documentation, as a reader sees it in a browser at 1280 px.

The site is built once (the build of ``docs/conf.py``), served from a local
HTTP server, and five pages are loaded in headless Chromium with a 1280 px
wide viewport: the landing page, the conformance matrix, the RoPE family,
the tolerance guide and the walkthrough.  On each page, after MathJax has
typeset every formula and the fonts have loaded, a small probe script
(added to a copy of the page) measures the layout and collects the visible
text; Chromium prints the resulting DOM (``--dump-dom``) and the probe's
JSON summary is read back from it.  The checks:

* no raw Markdown in the visible text outside code blocks (a line starting
  with ``- **`` or ``## ``, ``**bold**``, a ``| --- |`` table rule,
  `` `code` `` in backticks);
* nothing wider than the viewport: ``scrollWidth <= innerWidth`` for the
  page, and no element sticking out of the viewport or out of the text
  column unless a scrolling container of its own holds it (the failure
  lists the offending elements: tag, class, width);
* every formula typeset by MathJax: no ``\\(``, ``\\[`` or ``$$`` left in
  the text, no math element without its ``mjx-container``, no TeX error,
  and ``mjx-container`` elements on every page with math;
* every image loaded; every figure has a caption and every image a
  non-empty ``alt`` that is not a file path.

Chromium comes from the Debian package ``chromium`` (``.ci/run`` installs
it when ``apt-get`` is available; ``POSREF_CHROMIUM`` names another
binary); without a Chromium binary the tests are skipped.  Set ``POSREF_DOCS_SCREENSHOTS`` to a directory to also get a
full-page screenshot of each page at 1280 px.
"""

from __future__ import annotations

import functools
import html
import http.server
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"

VIEWPORT_WIDTH = 1280
VIEWPORT_HEIGHT = 900

#: The pages a reader meets first, and the widest ones (tables, code, equations).
PAGES = (
    "index.html",
    "guides/matrix.html",
    "families/rope.html",
    "guides/tolerance.html",
    "guides/walkthrough.html",
)

#: Pages that must show typeset math.
MATH_PAGES = ("families/rope.html", "guides/tolerance.html")

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")

PROBE_ID = "posref-probe"

#: Runs after MathJax's first typeset and the web fonts; appends the JSON
#: summary as ``<pre id="posref-probe">``.  Kept in plain ES5-ish JavaScript.
PROBE_SCRIPT = r"""
<script>
(function () {
  "use strict";
  var W = window.innerWidth;
  function describe(el) {
    var r = el.getBoundingClientRect();
    var cls = (typeof el.className === "string" ? el.className : (el.getAttribute("class") || "")).trim();
    var text = (el.textContent || "").replace(/\s+/g, " ").trim().slice(0, 60);
    return {tag: el.tagName.toLowerCase(), cls: cls, id: el.id || "", left: Math.round(r.left),
            right: Math.round(r.right), width: Math.round(r.width), text: text};
  }
  function scrolls(el) {
    var ox = getComputedStyle(el).overflowX;
    return ox === "auto" || ox === "scroll" || ox === "hidden" || ox === "clip";
  }
  function fixedAncestor(el) {
    for (var a = el; a && a !== document.body; a = a.parentElement) {
      if (getComputedStyle(a).position === "fixed") return a;
    }
    return null;
  }
  // Elements that stick out of [lo, hi] and are not held by a clipping or
  // scrolling container (below `stop`) that itself fits.
  function sticking(root, lo, hi, stop) {
    var out = [];
    var all = root.querySelectorAll("*");
    for (var i = 0; i < all.length; i++) {
      var el = all[i];
      var r = el.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue;
      if (r.right <= hi + 1 && r.left >= lo - 1) continue;
      var held = false;
      // The root and the body are the viewport itself: what they clip
      // still counts in the page's scrollWidth.
      for (var a = el.parentElement; a && a !== stop && a !== document.body && a !== document.documentElement;
           a = a.parentElement) {
        if (scrolls(a)) {
          var ar = a.getBoundingClientRect();
          if (ar.right <= hi + 1 && ar.left >= lo - 1) { held = true; break; }
        }
      }
      if (held) continue;
      var fixed = fixedAncestor(el);
      if (fixed) {
        var fr = fixed.getBoundingClientRect();
        if (fr.left >= W || fr.right <= 0) continue;  // an off-canvas drawer, not shown
      }
      out.push(el);
    }
    // Report the outermost offenders only (a wide table, not each cell).
    return out.filter(function (el) {
      for (var a = el.parentElement; a; a = a.parentElement) if (out.indexOf(a) >= 0) return false;
      return true;
    }).map(describe);
  }
  function visibleText() {
    // The visible text outside code blocks and typeset math.
    var style = document.createElement("style");
    style.textContent = "pre, div.highlight, mjx-container, #" + "posref-probe" + " { display: none !important; }";
    document.head.appendChild(style);
    var text = document.body.innerText;
    style.remove();
    return text;
  }
  function probe() {
    var article = document.querySelector("article[role=main]") || document.querySelector("article") || document.body;
    var ar = article.getBoundingClientRect();
    // The theme lets headings and tables bleed a few pixels into the
    // margin (their link anchors, their scroll padding): 0.75em of slack.
    var slack = 0.75 * parseFloat(getComputedStyle(document.documentElement).fontSize);
    var colLeft = ar.left - slack, colRight = ar.right + slack;
    var maths = document.querySelectorAll(".math");
    var unrendered = [];
    for (var i = 0; i < maths.length; i++) {
      if (!maths[i].querySelector("mjx-container")) unrendered.push((maths[i].textContent || "").trim().slice(0, 80));
    }
    var errors = [];
    var merr = document.querySelectorAll("mjx-merror");
    for (var j = 0; j < merr.length; j++) errors.push(merr[j].getAttribute("data-mjx-error") || merr[j].textContent);
    var figures = [];
    var figs = document.querySelectorAll("figure, div.figure");
    for (var k = 0; k < figs.length; k++) {
      var cap = figs[k].querySelector("figcaption, .caption");
      var img = figs[k].querySelector("img");
      figures.push({caption: cap ? cap.textContent.replace(/\s+/g, " ").trim() : "",
                    img: img ? img.getAttribute("src") : ""});
    }
    var images = [];
    var imgs = document.querySelectorAll("img");
    for (var m = 0; m < imgs.length; m++) {
      images.push({src: imgs[m].getAttribute("src"), alt: imgs[m].getAttribute("alt"),
                   loaded: imgs[m].complete && imgs[m].naturalWidth > 0});
    }
    return {
      innerWidth: W,
      scrollWidth: document.documentElement.scrollWidth,
      scrollHeight: document.documentElement.scrollHeight,
      mathjax: !!(window.MathJax && window.MathJax.version),
      mathjaxVersion: (window.MathJax && window.MathJax.version) || "",
      beyondViewport: sticking(document.body, 0, W, null),
      column: [Math.round(colLeft), Math.round(colRight)],
      beyondColumn: sticking(article, colLeft, colRight, article),
      mathElements: maths.length,
      mjxContainers: document.querySelectorAll("mjx-container").length,
      unrendered: unrendered,
      texErrors: errors,
      figures: figures,
      images: images,
      text: visibleText()
    };
  }
  function report(summary) {
    var pre = document.createElement("pre");
    pre.id = "posref-probe";
    pre.textContent = JSON.stringify(summary);
    document.body.appendChild(pre);
  }
  window.addEventListener("load", function () {
    var mj = window.MathJax;
    var ready = (mj && mj.startup && mj.startup.promise) ? mj.startup.promise : Promise.resolve();
    ready.then(function () { return document.fonts ? document.fonts.ready : null; })
      .then(function () {
        // A timer, not an animation frame: timers run under Chromium's
        // virtual time, frames are not always produced headless.
        setTimeout(function () {
          try { report(probe()); } catch (e) { report({error: String(e && e.stack || e)}); }
        }, 100);
      }, function (e) { report({error: "MathJax failed: " + String(e)}); });
  });
})();
</script>
"""


# -- fixtures ----------------------------------------------------------------------------------


def find_chromium() -> str | None:
    """Return the path of a Chromium (or Chrome) binary, or None."""
    override = os.environ.get("POSREF_CHROMIUM")
    if override and shutil.which(override):
        return shutil.which(override)
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def chromium() -> str:
    found = find_chromium()
    if found is None:
        pytest.skip(
            "no Chromium binary found (looked for " + ", ".join(CHROMIUM_NAMES) + "); "
            "install it with `apt-get install -y --no-install-recommends chromium` "
            "(.ci/run does so where apt-get is available) or name one in POSREF_CHROMIUM"
        )
    return found


@pytest.fixture(scope="module")
def site(chromium, tmp_path_factory) -> Path:
    if importlib.util.find_spec("sphinx") is None:
        pytest.skip("sphinx is not installed (pip install -e '.[docs]'); the documentation cannot be built")
    out = tmp_path_factory.mktemp("browser-html")
    env = dict(os.environ)
    env["MPLBACKEND"] = "Agg"
    env.pop("PYTHONWARNINGS", None)
    command = [sys.executable, "-m", "sphinx", "-q", "-b", "html", "-W", "--keep-going", str(DOCS), str(out)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    assert completed.returncode == 0, (
        f"sphinx-build failed (exit {completed.returncode}):\n{completed.stdout[-4000:]}\n{completed.stderr[-8000:]}"
    )
    for page in PAGES:
        assert (out / page).is_file(), f"{page} was not built"
    return out


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="module")
def base_url(site):
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _chromium_command(chromium: str, profile: Path, height: int = VIEWPORT_HEIGHT) -> list[str]:
    return [
        chromium,
        "--headless=new",
        "--disable-gpu",
        "--no-sandbox",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-dev-shm-usage",
        "--disable-extensions",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--window-size={VIEWPORT_WIDTH},{height}",
        "--virtual-time-budget=15000",
    ]


def _probe_copy(site: Path, page: str) -> str:
    """Write a copy of ``page`` next to it with the probe script; return its path."""
    source = site / page
    text = source.read_text(encoding="utf-8")
    assert "</body>" in text, f"{page} has no </body>"
    probe = source.with_name(source.stem + ".posref-probe.html")
    head, _, tail = text.rpartition("</body>")
    probe.write_text(head + PROBE_SCRIPT + "</body>" + tail, encoding="utf-8")
    return str(probe.relative_to(site).as_posix())


@pytest.fixture(scope="module")
def probed(chromium, site, base_url, tmp_path_factory):
    """The probe's summary of each page, measured once per page on demand."""
    cache: dict[str, dict] = {}
    profile = tmp_path_factory.mktemp("chromium-profile")
    shots = os.environ.get("POSREF_DOCS_SCREENSHOTS")

    def get(page: str) -> dict:
        if page in cache:
            return cache[page]
        url = base_url + _probe_copy(site, page)
        command = _chromium_command(chromium, profile) + ["--dump-dom", url]
        # A loaded machine can make Chromium print the DOM before the probe
        # has run; one more try with a fresh start is enough.
        for _ in range(2):
            completed = subprocess.run(command, capture_output=True, text=True, timeout=180)
            match = re.search(rf'<pre id="{PROBE_ID}">(.*?)</pre>', completed.stdout, re.DOTALL)
            if match:
                break
        stderr = "\n".join(line for line in completed.stderr.splitlines() if "dbus" not in line.lower())
        assert match, (
            f"the probe did not report on {page} (Chromium exit {completed.returncode}, "
            f"{len(completed.stdout)} characters of DOM); stderr tail:\n{stderr[-3000:]}"
        )
        summary = json.loads(html.unescape(match.group(1)))
        assert "error" not in summary, f"the probe failed on {page}: {summary['error']}"
        assert summary["innerWidth"] == VIEWPORT_WIDTH, f"viewport is {summary['innerWidth']} px wide, not {VIEWPORT_WIDTH}"
        if shots:
            _screenshot(chromium, profile, base_url + page, Path(shots), page, summary["scrollHeight"])
        cache[page] = summary
        return summary

    return get


def _screenshot(chromium: str, profile: Path, url: str, directory: Path, page: str, height: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / (page.replace("/", "_").removesuffix(".html") + ".png")
    height = max(VIEWPORT_HEIGHT, min(int(height), 12000))
    command = _chromium_command(chromium, profile, height) + [f"--screenshot={target}", url]
    subprocess.run(command, capture_output=True, text=True, timeout=180)


# -- checks ------------------------------------------------------------------------------------

#: Raw Markdown that should have become markup: (name, pattern over the visible text).
MARKDOWN_MARKERS = (
    ("a line starting with '- **'", re.compile(r"^[ \t]*- \*\*", re.MULTILINE)),
    ("**bold** markers", re.compile(r"(?<![\w*])\*\*(?=[^\s*])[^*\n]+?(?<=\S)\*\*(?![\w*])")),
    ("a '| --- |' table rule", re.compile(r"\|[ \t]*:?-{3,}:?[ \t]*\|")),
    ("a Markdown heading ('## ')", re.compile(r"^[ \t]*#{2,6}[ \t]", re.MULTILINE)),
    ("`code` in backticks", re.compile(r"`[^`\s][^`\n]*`")),
)


def _context(text: str, start: int, end: int) -> str:
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    return text[line_start : line_end if line_end >= 0 else len(text)].strip()[:160]


@pytest.mark.parametrize("page", PAGES)
def test_no_raw_markdown_in_visible_text(probed, page):
    text = probed(page)["text"]
    found = []
    for name, pattern in MARKDOWN_MARKERS:
        for match in pattern.finditer(text):
            found.append(f"{name}: {_context(text, match.start(), match.end())!r}")
    assert not found, f"{page} shows raw Markdown:\n  " + "\n  ".join(found[:20])


def _elements(items: list[dict]) -> str:
    return "\n  ".join(
        f"<{e['tag']}{' id=' + e['id'] if e['id'] else ''} class={e['cls']!r}> "
        f"width {e['width']} px (x {e['left']}..{e['right']}): {e['text']!r}"
        for e in items[:25]
    )


@pytest.mark.parametrize("page", PAGES)
def test_nothing_wider_than_the_viewport(probed, page):
    summary = probed(page)
    beyond = summary["beyondViewport"]
    assert summary["scrollWidth"] <= summary["innerWidth"] and not beyond, (
        f"{page} at {summary['innerWidth']} px: scrollWidth {summary['scrollWidth']} px; "
        f"elements beyond the viewport:\n  {_elements(beyond)}"
    )


@pytest.mark.parametrize("page", PAGES)
def test_content_stays_in_its_column(probed, page):
    # Wide tables, code and equations scroll inside their own box instead
    # of running past the text column (into the table of contents).
    summary = probed(page)
    beyond = summary["beyondColumn"]
    left, right = summary["column"]
    assert not beyond, f"{page}: elements running out of the text column (x {left}..{right}):\n  {_elements(beyond)}"


@pytest.mark.parametrize("page", PAGES)
def test_math_is_typeset(probed, page):
    summary = probed(page)
    text = summary["text"]
    raw = [
        f"{marker!r}: {_context(text, i, i + len(marker))!r}"
        for marker in ("\\(", "\\[", "$$")
        for i in [m.start() for m in re.finditer(re.escape(marker), text)]
    ]
    assert not raw, f"{page} shows untypeset TeX:\n  " + "\n  ".join(raw[:20])
    assert not summary["unrendered"], f"{page}: math elements MathJax did not typeset: {summary['unrendered'][:10]}"
    assert not summary["texErrors"], f"{page}: TeX errors: {summary['texErrors'][:10]}"
    if page in MATH_PAGES or summary["mathElements"]:
        assert summary["mathjax"], f"{page} has math but MathJax did not load"
        assert summary["mjxContainers"] > 0, f"{page} has math but no mjx-container"
        assert summary["mjxContainers"] >= summary["mathElements"]


@pytest.mark.parametrize("page", PAGES)
def test_images_load(probed, page):
    broken = [image["src"] for image in probed(page)["images"] if not image["loaded"]]
    assert not broken, f"{page}: images that did not load: {broken}"


#: An alt text that is a file name or path (one word with a slash, or ending
#: in an image suffix), as the plot directive writes when none is given.
_PATHLIKE = re.compile(r"^\S*([/\\]\S*|\.(png|jpe?g|gif|svg|webp|pdf))$", re.IGNORECASE)

@pytest.mark.parametrize("page", PAGES)
def test_figures_have_captions_and_alt_text(probed, page):
    summary = probed(page)
    # A caption says something: not only the link to the plotting code.
    problems = [
        f"figure without a caption (image {f['img']}): {f['caption']!r}"
        for f in summary["figures"]
        if not re.search(r"\w{2,}", re.sub(r"\([^()]*\)|¶", "", f["caption"]))
    ]
    for image in summary["images"]:
        alt = (image["alt"] or "").strip()
        if not alt:
            problems.append(f"image without alt text: {image['src']}")
        elif _PATHLIKE.search(alt):
            problems.append(f"image whose alt text is a file path: {alt!r}")
    assert not problems, f"{page}:\n  " + "\n  ".join(problems)
