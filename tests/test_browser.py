"""JupyterLab as a reader uses it, in headless Chromium (``make site-check`` runs these tests).

Needs Debian's chromium (``make chromium``); ``make test`` deselects them (marker ``browser``).
"""

import subprocess

import pytest

from xentlab.config import PROJECT_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _status() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, check=True).stdout


def test_the_site_check_finds_broken_links_anchors_and_images(tmp_path):
    from xentlab.browser import check_site

    (tmp_path / "index.html").write_text('<meta http-equiv="refresh" content="0; url=README.html">')
    (tmp_path / "README.html").write_text(
        '<h1 id="top">x</h1><a href="#top">ok</a> <a href="page.html#there">ok</a> '
        '<a href="page.html#nowhere">bad anchor</a> <a href="gone.html">bad link</a> '
        '<a href="https://example.org/">outside</a>')
    (tmp_path / "page.html").write_text('<p id="there">p</p><img src="missing.png"><p>| a | b |</p>'
                                         '<table><tr><td><p>|a − b|: 0.1</p></td></tr></table>')
    report = check_site(tmp_path, search_term=None, screenshot_page="page.html")
    assert report.broken_links == ["README.html -> gone.html"]
    assert report.broken_anchors == ["README.html -> page.html#nowhere"]
    assert [i.split(": ")[0] for i in report.broken_images] == ["page.html"]
    assert any("missing.png" in e for e in report.console_errors)
    assert report.raw_markdown == ["page.html: | a | b |"]
    assert sorted(report.pages) == ["README.html", "page.html"]


def test_jupyterlab_runs_notebook_08_and_leaves_the_tree_clean():
    """JupyterLab, rooted and configured as ``make lab`` starts it, opens notebook 08 unmodified,
    runs every cell without an error output, and leaves ``git status`` as it was (no autosave,
    no checkpoint or settings file in the tree)."""
    from xentlab.browser import lab_run_notebook, lab_server

    before = _status()
    with lab_server(PROJECT_ROOT) as url:
        result = lab_run_notebook(url, PROJECT_ROOT, "notebooks/08_which_cross_entropy.ipynb")
    assert not result["dirty_on_open"], "JupyterLab marked the committed notebook modified on opening it"
    assert result["errors"] == []
    assert result["cells_run"] == result["code_cells"] > 0
    assert _status() == before
