"""Checks in a real browser: the static site (``make site-check``) and a notebook run in
JupyterLab (``tests/test_browser.py``), both in headless Chromium.

Chromium is Debian's package (``make chromium`` installs it where missing); Playwright's Python
API drives it through ``executable_path``, so Playwright's own browser download is never needed.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urldefrag, urlparse

__all__ = ["SiteReport", "check_site", "chromium_path", "lab_run_notebook", "lab_server", "serve"]

#: Where Debian's ``chromium`` package puts the browser; ``CHROMIUM`` overrides it.
CHROMIUM = "/usr/bin/chromium"


def chromium_path() -> str:
    """The Chromium binary (``$CHROMIUM``, else ``/usr/bin/chromium``, else ``chromium`` on PATH);
    ``FileNotFoundError`` naming the install command when there is none."""
    for candidate in (os.environ.get("CHROMIUM"), CHROMIUM, shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    raise FileNotFoundError("no Chromium found: run `make chromium` (Debian's chromium package) "
                            "or set CHROMIUM to a Chromium binary")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(url: str, proc: subprocess.Popen[Any], timeout: float) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server for {url} exited with code {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2)  # noqa: S310 (a local server)
            return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


@contextmanager
def _process(args: list[str], url: str, timeout: float, **kw: Any) -> Iterator[None]:
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
    try:
        _wait_for(url, proc, timeout)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on a free local port; yields the base URL."""
    import sys

    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    with _process([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                   "--directory", str(folder)], url, 30):
        yield url


@contextmanager
def _browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class SiteReport:
    """What :func:`check_site` found. Every list is empty on a good site.

    Attributes:
        pages: the pages loaded.
        console_errors: ``page: message`` for each console error or failed request.
        broken_links: ``page -> target`` for each internal link whose file is missing.
        broken_anchors: ``page -> target#id`` for each internal link whose id is not on its page.
        broken_images: ``page: src`` for each image that did not load.
        raw_markdown: ``page: text`` for each paragraph outside a table cell that starts with ``|`` (a Markdown table
            shown as text).
        search_hits: how many results the site's search gave for ``search_term``.
        screenshots: the screenshots saved.
    """

    pages: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    broken_links: list[str] = field(default_factory=list)
    broken_anchors: list[str] = field(default_factory=list)
    broken_images: list[str] = field(default_factory=list)
    raw_markdown: list[str] = field(default_factory=list)
    search_hits: int = 0
    screenshots: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        """Every problem found, one line each."""
        return (self.console_errors + self.broken_links + self.broken_anchors + self.broken_images
                + self.raw_markdown)


_IDS = re.compile(r"""\sid=["']([^"']+)["']""")
# a paragraph that starts with "|", unless it is a table cell's (an escaped pipe, e.g. |a − b|)
_RAW_TABLE = re.compile(r"(?<!<td>)<p>\s*(\|[^<]{0,60})")


def _internal_links(html: str) -> list[str]:
    return [h for h in re.findall(r"""<a\s[^>]*href=["']([^"']+)["']""", html)
            if not urlparse(h).scheme and not h.startswith(("mailto:", "javascript:"))]


def check_site(site: Path, *, search_term: str | None = "from_logits", screenshot_page: str =
               "notebooks/03_log_zero_collapse.html") -> SiteReport:
    """Load every HTML page of the built site at ``site`` in headless Chromium and check it.

    Links and anchors are checked from the files (every ``href`` to a page of the site must name
    an existing file and an ``id`` on it); pages are loaded in the browser for console errors,
    failed requests and HTTP errors (a missing ``favicon.ico``, which browsers ask for unasked,
    excepted) and images (each ``<img>`` must have a natural width); the search page must
    find ``search_term`` (None: not searched). Screenshots of the landing page and of ``screenshot_page`` at its first
    figure are saved in ``site/_screenshots/``.
    """
    site = site.resolve()
    report = SiteReport()
    pages = sorted(p for p in site.rglob("*.html") if "_static" not in p.parts and "_screenshots" not in p.parts)
    ids = {p: set(_IDS.findall(p.read_text(errors="replace"))) for p in pages}
    for page in pages:
        rel = page.relative_to(site).as_posix()
        report.raw_markdown += [f"{rel}: {m}" for m in _RAW_TABLE.findall(page.read_text(errors="replace"))]
        for href in _internal_links(page.read_text(errors="replace")):
            path, anchor = urldefrag(unquote(href))
            target = (page.parent / path).resolve() if path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                report.broken_links.append(f"{rel} -> {href}")
            elif anchor and target.suffix == ".html" and anchor not in ids.get(target, set()):
                report.broken_anchors.append(f"{rel} -> {href}")
    shots = site / "_screenshots"
    shots.mkdir(exist_ok=True)
    with serve(site) as base, _browser() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        current = {"url": ""}
        page.on("console", lambda m: m.type == "error" and not m.text.startswith("Failed to load resource")
                and report.console_errors.append(f"{current['url']}: {m.text}"))
        page.on("response", lambda r: r.status >= 400 and not r.url.endswith("/favicon.ico")
                and report.console_errors.append(f"{current['url']}: HTTP {r.status} for {r.url}"))
        page.on("requestfailed", lambda r: report.console_errors.append(
            f"{current['url']}: failed request {r.url} ({r.failure})"))
        current["url"] = "index.html"
        page.goto(base + "index.html")
        page.wait_for_url("**/README.html")  # the landing page's redirect
        for p in pages:
            rel = p.relative_to(site).as_posix()
            if rel == "index.html":
                continue
            current["url"] = rel
            page.goto(base + rel, wait_until="networkidle")  # MathJax's fonts load after "load"
            report.pages.append(rel)
            for src in page.eval_on_selector_all(
                    "img", "els => els.filter(e => !(e.complete && e.naturalWidth > 0)).map(e => e.src)"):
                report.broken_images.append(f"{rel}: {src}")
            if rel in ("README.html", screenshot_page):
                if rel == screenshot_page and page.locator("img").count():  # show a figure
                    page.locator("img").first.scroll_into_view_if_needed()
                out = shots / (Path(rel).stem + ".png")
                page.screenshot(path=str(out), full_page=False)
                report.screenshots.append(str(out))
        if search_term is not None:
            current["url"] = "search.html"
            page.goto(base + f"search.html?q={search_term}", wait_until="load")
            page.wait_for_selector("#search-results p, #search-results .search-summary", timeout=30_000)
            report.search_hits = page.locator("#search-results ul.search li").count()
    return report


@contextmanager
def lab_server(root: Path, *, timeout: float = 120) -> Iterator[str]:
    """JupyterLab started as ``make lab`` starts it (root folder ``root``, autosave off through the
    venv's ``overrides.json``), without a browser or token, on a free local port; yields its URL."""
    import sys

    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    args = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
            f"--ServerApp.root_dir={root}", "--IdentityProvider.token=", "--ServerApp.password=",
            "--ServerApp.disable_check_xsrf=True"]
    if os.geteuid() == 0:
        args.append("--allow-root")
    with _process(args, url + "lab", timeout, cwd=root):
        yield url


def lab_run_notebook(url: str, root: Path, notebook: str, *, timeout: float = 600) -> dict[str, Any]:
    """Open ``notebook`` (a path under the server's root ``root``) in JupyterLab at ``url``, run all its
    cells from the Run menu, wait until every code cell has run and the kernel is idle, then close
    the browser without saving.

    Returns ``{"dirty_on_open": bool, "cells_run": int, "code_cells": int, "errors": [str]}``:
    whether JupyterLab marked the notebook modified before anything ran, how many code cells got
    an execution count, and the text of every error output (a traceback, or a line starting
    with an ``…Error`` or ``…Exception`` name, as a one-line ``ParameterError`` shows).
    """
    with _browser() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}lab/tree/{notebook}", wait_until="load")
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=120_000)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
        # the tab is marked modified for a moment while the notebook loads: judge once all its
        # code cells are attached
        import nbformat

        expected = sum(c.cell_type == "code" for c in nbformat.read(root / notebook, as_version=4).cells)
        page.wait_for_function(f"document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell').length >= {expected}",
                               timeout=120_000)
        page.wait_for_timeout(2000)
        dirty = page.locator(".jp-NotebookPanel-toolbar, .lm-TabBar-tab.jp-mod-dirty").evaluate_all(
            "els => els.some(e => e.classList.contains('jp-mod-dirty'))")
        page.locator(".jp-NotebookPanel .jp-Cell").first.click()
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        code_cells = page.locator(".jp-NotebookPanel .jp-CodeCell").count()
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while True:
            # textContent, not innerText: JupyterLab skips rendering off-screen cells
            prompts = page.locator(".jp-NotebookPanel .jp-CodeCell .jp-InputPrompt").all_text_contents()
            ran = sum(bool(re.fullmatch(r"\s*\[\d+\]:?\s*", p)) for p in prompts)
            idle = page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").count() > 0
            if ran != last:
                last, since = ran, time.monotonic()
            # done, or stopped: an error ends "Run All", and the kernel then idles with cells left
            if idle and (ran == code_cells or time.monotonic() - since > 30):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{notebook}: {ran} of {code_cells} cells ran within {timeout:.0f} s")
            time.sleep(2)
        # JupyterLab renders an error output as stderr text (the traceback): tell the two apart
        # by the traceback's header or an ``…Error``/``…Exception`` line.
        stderr = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
        errors = [t for t in stderr.all_text_contents() if _ERROR.search(t)]
        return {"dirty_on_open": dirty, "cells_run": ran, "code_cells": code_cells, "errors": errors}


_ERROR = re.compile(r"Traceback \(most recent call last\)|^\w*(Error|Exception)\b", re.MULTILINE)
