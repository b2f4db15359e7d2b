"""Sphinx configuration of the static site (``make site``): the README as the landing page, the
committed executed notebooks (never re-executed), the docs, the decision guide and both reports.

The source folder is the repository's root (``sphinx-build -c docs/site . build/site``), so every
relative link between README, docs, notebooks and reports resolves as it does on a code host.
"""

from __future__ import annotations

project = "xentlab"
author = "xentlab"
root_doc = "README"
extensions = ["myst_nb"]

#: Only these files are pages; everything else in the repository is not part of the site.
include_patterns = [
    "README.md",
    "docs/*.md",
    "data/README.md",
    "notebooks/[0-9][0-9]_*.ipynb",
    "reports/ci/README.md", "reports/ci/decision_guide.md", "reports/ci/bench.md",
    "reports/ci/notebooks/*.ipynb",
    "reports/paper/README.md", "reports/paper/summary.md", "reports/paper/decision_guide.md",
    "reports/paper/bench.md", "reports/paper/notebooks/*.ipynb",
]
exclude_patterns = ["build", ".venv", "**/.ipynb_checkpoints"]

nb_execution_mode = "off"  # the committed outputs are the content: nothing is re-executed
nb_merge_streams = True
# Markdown outputs (Summary tables, the decision guide) rendered as MyST, with tables and maths;
# myst-nb's default, "commonmark", shows a table as lines of pipes.
nb_render_markdown_format = "myst"
myst_heading_anchors = 3  # section anchors, as the ledgers and notebooks link them:
myst_heading_slug_func = "xentlab.reports.render.heading_slug"  # the ledgers' own slug function
myst_enable_extensions = ["dollarmath", "amsmath"]
suppress_warnings = ["mystnb.unknown_mime_type"]

html_theme = "furo"
html_title = "xentlab: cross-entropy losses in TensorFlow, reproduced"
html_show_sourcelink = False
# MathJax from the site itself (the Makefile unpacks the npm package into build/mathjax/), so the
# site renders its maths offline.
html_static_path = ["../../build/mathjax"]
mathjax_path = "es5/tex-mml-chtml.js"

#: The site's navigation, added to the README when the site is built (the README itself stays
#: plain Markdown for code hosts and editors).
TOCTREE = """

```{toctree}
:hidden:
:caption: Notebooks
:glob:

notebooks/[0-9]*
```

```{toctree}
:hidden:
:caption: Reference

reports/ci/decision_guide
docs/glossary
docs/guarantees
docs/reports
docs/data
data/README
docs/contributing
```

```{toctree}
:hidden:
:caption: Reports
:glob:

reports/ci/README
reports/ci/bench
reports/paper/README
reports/paper/summary
reports/paper/decision_guide
reports/paper/bench
```
"""

#: Each report's executed notebooks, listed under the report's README in the navigation.
REPORT_NOTEBOOKS = """

```{toctree}
:hidden:
:glob:

notebooks/*
```
"""


def _add_toctree(app, docname: str, source: list[str]) -> None:
    if docname == root_doc:
        source[0] += TOCTREE
    elif docname in ("reports/ci/README", "reports/paper/README"):
        source[0] += REPORT_NOTEBOOKS


def _redirect_index(app, exception) -> None:
    """``index.html`` sends a browser to the landing page (``README.html``)."""
    if exception is None and app.builder.format == "html":
        (app.outdir / "index.html").write_text(
            '<!DOCTYPE html><meta charset="utf-8"><title>xentlab</title>'
            '<meta http-equiv="refresh" content="0; url=README.html">'
            '<a href="README.html">xentlab</a>\n')


def setup(app):
    app.connect("source-read", _add_toctree)
    app.connect("build-finished", _redirect_index)
