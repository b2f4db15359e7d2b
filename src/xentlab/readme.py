"""The README's generated sections, rewritten from the committed reports (``python -m xentlab readme``).

A generated section sits between ``<!-- name:begin -->`` and ``<!-- name:end -->``; nothing
between the markers is typed by hand, so no number in it can drift from the report it comes from:

- ``notebooks``: one row per notebook: its question (the notebook's H1 title), its sources (from
  its claims) and the verdict counts of the ``ci`` and ``paper`` reports (:func:`notebook_table`);
- ``decision-guide``: ``reports/ci/decision_guide.md`` (notebook 08 writes it);
- ``paper-summary``: ``reports/paper/summary.md`` (the paper report writes it).

``make reports`` runs it after the report; a test checks that it leaves the committed README as it is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from xentlab.config import NOTEBOOKS_DIR, PROJECT_ROOT, REPORTS_DIR

__all__ = ["SECTIONS", "notebook_table", "render", "write"]

#: Short verdict marks for the counts (the ledger's full marks are ``reports.MARKS``).
_MARKS = {"reproduced": "✅", "partly": "⚠️", "refuted": "❌", "untested": "⏸️"}


def _claims(profile: str, reports_dir: Path) -> list[dict[str, Any]]:
    path = reports_dir / profile / "claims.json"
    return json.loads(path.read_text()) if path.exists() else []


def _title(notebook: Path) -> str:
    """The notebook's H1 without its ``# NN · `` prefix."""
    first = "".join(json.loads(notebook.read_text())["cells"][0]["source"]).strip()
    return re.sub(r"^#\s*\d+\s*·\s*", "", first)


def _counts(claims: list[dict[str, Any]]) -> str:
    if not claims:
        return "measurements, no claims"
    return " · ".join(f"{sum(c['verdict'] == v for c in claims)} {mark}" for v, mark in _MARKS.items()
                      if any(c["verdict"] == v for c in claims))


def _sources(claims: list[dict[str, Any]]) -> str:
    names = dict.fromkeys(c["source"] for c in claims)
    shown = [f"`{s[:3]}_…`" if re.match(r"\d{3}_", s) else s for s in names]
    return ", ".join(shown) or "all documents (beyond them)"


def notebook_table(notebooks_dir: Path = NOTEBOOKS_DIR, reports_dir: Path = REPORTS_DIR) -> str:
    """A Markdown table, one row per committed notebook: link, question, sources, and the
    verdict counts of its claims in ``reports/ci`` and ``reports/paper`` (linking each ledger)."""
    by_profile = {p: _claims(p, reports_dir) for p in ("ci", "paper")}
    lines = ["| notebook | question | sources | `ci` verdicts | `paper` verdicts |",
             "|---|---|---|---|---|"]
    for nb in sorted(notebooks_dir.glob("[0-9][0-9]_*.ipynb")):
        mine = {p: [c for c in claims if c["notebook"] == nb.stem] for p, claims in by_profile.items()}
        lines.append(f"| [{nb.stem}](notebooks/{nb.name}) | {_title(nb)} | {_sources(mine['ci'] or mine['paper'])} | "
                     + " | ".join(f"[{_counts(mine[p])}](reports/{p}/README.md)" for p in ("ci", "paper")) + " |")
    return "\n".join(lines)


def _report_file(profile: str, name: str) -> Callable[[], str]:
    return lambda: (REPORTS_DIR / profile / name).read_text().strip()


#: Each generated section's name and what writes it.
SECTIONS: dict[str, Callable[[], str]] = {
    "notebooks": notebook_table,
    "decision-guide": _report_file("ci", "decision_guide.md"),
    "paper-summary": _report_file("paper", "summary.md"),
}


def render(text: str, sections: dict[str, Callable[[], str]] = SECTIONS) -> str:
    """``text`` with every generated section replaced; a section whose markers are missing is an
    error (``ValueError``), never silently skipped."""
    for name, make in sections.items():
        begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
        if begin not in text or end not in text:
            raise ValueError(f"README lacks the markers {begin} … {end}")
        head, rest = text.split(begin, 1)
        text = f"{head}{begin}\n{make()}\n{end}{rest.split(end, 1)[1]}"
    return text


def write(path: Path = PROJECT_ROOT / "README.md") -> bool:
    """Rewrite the generated sections of ``path``; returns whether anything changed."""
    old = path.read_text()
    new = render(old)
    if new != old:
        path.write_text(new)
    return new != old
