"""Sphinx configuration of the posref documentation.

Build (warnings are errors, every cross reference must resolve)::

    python -m sphinx -W --keep-going -n -b html docs docs/_build/html

Math is rendered by MathJax 3 served from the built site itself, never from
a CDN, so the pages work offline and the build needs no network.  The
MathJax files come from the PyPI package ``sphinx-mathjax-offline`` (a
plain ``pip install``, listed in posref's ``docs`` and ``test`` extras);
``_ext/posref_docs.py`` copies them into ``_static/mathjax`` and points
``mathjax_path`` there.  The alternatives were weighed: ``sphinx.ext.imgmath``
needs a LaTeX installation and ``dvipng`` (hundreds of MB of Debian
packages), and Debian's ``libjs-mathjax`` is MathJax 2, which needs a
different configuration and a system package, not a pip one.

Examples: the ``>>>`` blocks of the hand-written pages are run by
``tests/test_docs.py`` (stdlib doctest, one test per page), and the
docstrings' examples by ``pytest --doctest-modules``; so the build itself
does not use ``sphinx.ext.doctest``.  Figures are drawn at build time by
matplotlib's plot directive from posref's own functions; each one carries
a caption and alt text written on its page, and its source is a download
linked from the caption rather than a code block above it.

The copy button of code blocks (``sphinx-copybutton``, in the ``docs`` and
``test`` extras) copies only the input lines, without their ``>>>``,
``...`` or ``$`` prompts.

Links to Python, NumPy, SciPy and PyTorch go through intersphinx, from
inventories kept in ``_inventories/``, so the build still needs no network.
Python's (3.11) and SciPy's (1.10.1) are the ``objects.inv`` files of
Debian's ``python3.11-doc`` and ``python-scipy-doc`` packages, copied as
they are, and the links point at those versions of the docs.  NumPy and
PyTorch have no offline inventory: ``_inventories/build_curated.py`` writes
a small one for each from ``_inventories/curated.txt``, the checked list of
the objects these pages name, and the links point at their "stable" docs.
numpydoc turns ``numpy.ndarray``, ``array_like`` and the Python builtins of
the type fields into links.  ``tests/test_docs_inventories.py`` rebuilds the
curated inventories and resolves a few links through this mapping.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))

import posref  # noqa: E402
from posref_docs import PLOT_TEMPLATE  # noqa: E402

project = "posref"
author = "the posref authors"
copyright = "the posref authors"  # noqa: A001
version = posref.__version__
release = f"{posref.__version__} (spec {posref.SPEC_VERSION})"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "matplotlib.sphinxext.plot_directive",
    "sphinx_copybutton",
    "posref_docs",
    # Last: posref_docs' handler of unresolved references (posref's
    # re-exports) must see a reference before the external inventories do.
    "sphinx.ext.intersphinx",
]

exclude_patterns = ["_build", "_measured", "examples", "Thumbs.db", ".DS_Store"]
root_doc = "index"
nitpicky = True
default_role = "code"

# -- autodoc / autosummary / numpydoc ----------------------------------------------------------
# Function pages are written by posref_docs into api/generated (git-ignored),
# one per entry of the spec catalogue, so a new function gets its page
# without touching the docs.
autosummary_generate = True
autosummary_imported_members = False
autodoc_typehints = "none"
autodoc_member_order = "bysource"
add_module_names = False
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_use_plots = False
# Type fields link the names listed here (and numpydoc's own aliases of the
# Python builtins and of array_like) and leave every other word as text.
numpydoc_xref_param_type = True
numpydoc_xref_ignore = "all"
numpydoc_xref_aliases = {
    "numpy.ndarray": ":class:`numpy.ndarray`",
    "callable": ":func:`callable <python:callable>`",  # numpydoc's own alias shows "callable()"
    "mapping": ":term:`python:mapping`",
    "bytes": ":class:`python:bytes`",
    "bytearray": ":class:`python:bytearray`",
    "memoryview": ":class:`python:memoryview`",
    "frozenset": ":class:`python:frozenset`",
    "os.PathLike": ":class:`os.PathLike`",
    "pathlib.Path": ":class:`pathlib.Path`",
}

# -- intersphinx -------------------------------------------------------------------------------
# Every inventory is a local file (see the module docstring); the URLs are
# where the links land.  Python and SciPy: the versions the inventories
# come from.  NumPy and PyTorch: "stable", as the curated entries were
# checked there.
INVENTORIES = HERE / "_inventories"
intersphinx_mapping = {
    "python": ("https://docs.python.org/3.11/", str(INVENTORIES / "python.inv")),
    "scipy": ("https://docs.scipy.org/doc/scipy-1.10.1/", str(INVENTORIES / "scipy.inv")),
    "numpy": ("https://numpy.org/doc/stable/", str(INVENTORIES / "numpy.inv")),
    "torch": ("https://docs.pytorch.org/docs/stable/", str(INVENTORIES / "torch.inv")),
}
# Labels, terms and documents (the std domain) resolve externally only when
# written with the inventory's name (``:ref:`python:...```), so a broken
# local label cannot silently land on the Python docs.
intersphinx_disabled_reftypes = ["std:*"]

# -- matplotlib plot directive -----------------------------------------------------------------
# Figures are PNG at 160 dpi (a 6-inch figure is 960 pixels wide, sharp
# when the theme scales it to the text column).  The plotting code is not
# shown above the figure; PLOT_TEMPLATE links it from the caption instead.
plot_include_source = False
plot_html_show_source_link = True
plot_html_show_formats = False
plot_formats = [("png", 160)]
plot_template = PLOT_TEMPLATE
plot_pre_code = "import numpy as np\nimport matplotlib.pyplot as plt\nimport posref\n"
plot_rcparams = {
    "figure.figsize": (6.0, 3.2),
    "figure.autolayout": True,
    "font.size": 9,
    "legend.fontsize": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
}
plot_apply_rcparams = True

# -- copy button -------------------------------------------------------------------------------
# Copy only what a reader types: the prompts of Python sessions (">>> ",
# "... ") and of shells ("$ ") are stripped, and output lines are skipped.
# The prompts must stay in the text the button reads (the default exclude
# list drops Pygments' prompt spans, ".gp", which would make every output
# line look like input).
copybutton_exclude = ".linenos"
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True
copybutton_only_copy_prompt_lines = True
copybutton_remove_prompts = True

# -- HTML --------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"posref {posref.__version__}"
html_static_path: list[str] = ["_static"]  # posref_docs appends the MathJax directory
html_css_files = ["posref-layout.css"]  # wide tables, code and equations scroll in their own box
html_show_sourcelink = False
html_copy_source = False
mathjax3_config = {"tex": {"tags": "none"}}
