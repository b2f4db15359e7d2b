"""The README's generated sections, rewritten from the committed reports (``python -m xentlab readme``).

A generated section sits between ``<!-- name:begin -->`` and ``<!-- name:end -->``; nothing
between the markers is typed by hand, so no number in it can drift from the report it comes from:

- ``timing``: how long the last ``ci`` report took, on which CPU (:func:`timing`);
- ``decision-table``: the decision guide's answer as a short table, from the atlas rows of the
  ``ci`` report (:func:`xentlab.atlas.decision_table`);
- ``notebooks``: one row per notebook: its question (the notebook's H1 title), its sources (from
  its claims), its ``ci`` wall time and the verdict counts of the ``ci`` and ``paper`` reports
  (:func:`notebook_table`);
- ``headline``: document 002's comparison at the documents' scale, from the ``paper`` report's
  claims (:func:`headline`).

``make reports`` runs it after the report; a test checks that it leaves the committed README as it is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from xentlab.config import NOTEBOOKS_DIR, PROJECT_ROOT, REPORTS_DIR
from xentlab.reports.render import duration

__all__ = ["SECTIONS", "headline", "notebook_table", "render", "timing", "write"]

#: Short verdict marks for the counts (the ledger's full marks are ``reports.MARKS``).
_MARKS = {"reproduced": "✅", "partly": "⚠️", "refuted": "❌", "untested": "⏸️"}

#: Document 002's three methods, as its claims name them, in the headline's order.
_HEADLINE = (("002.manual-collapses", "(1) `reduce_sum(-y * log(softmax + 1e-10))`"),
             ("002.log-softmax-trains", "(2) `log_softmax`"),
             ("002.fused-trains", "(3) `softmax_cross_entropy_with_logits`"))


def _read(profile: str, name: str, reports_dir: Path) -> Any:
    path = reports_dir / profile / name
    return json.loads(path.read_text()) if path.exists() else None


def _claims(profile: str, reports_dir: Path) -> list[dict[str, Any]]:
    return _read(profile, "claims.json", reports_dir) or []


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
    """A Markdown table, one row per committed notebook: link, question, sources, the notebook's
    wall time in the ``ci`` report ("shared": beside another notebook) and the verdict counts of
    its claims in ``reports/ci`` and ``reports/paper`` (linking each ledger)."""
    by_profile = {p: _claims(p, reports_dir) for p in ("ci", "paper")}
    rows = {nb["name"]: nb for nb in (_read("ci", "provenance.json", reports_dir) or {}).get("notebooks", [])}
    lines = ["| notebook | question | sources | `ci` time | `ci` verdicts | `paper` verdicts |",
             "|---|---|---|---|---|---|"]
    ran = {p: {part.stem for part in (reports_dir / p / "parts").glob("*.json")} for p in ("ci", "paper")}
    for nb in sorted(notebooks_dir.glob("[0-9][0-9]_*.ipynb")):
        mine = {p: [c for c in claims if c["notebook"] == nb.stem] for p, claims in by_profile.items()}
        row = rows.get(nb.stem)
        took = "—" if row is None else duration(row["seconds"]) + ("" if row.get("alone", True) else " (shared)")
        verdicts = [f"[{_counts(mine[p])}](reports/{p}/README.md)" if nb.stem in ran[p] or mine[p] else "not run yet"
                    for p in ("ci", "paper")]
        lines.append(f"| [{nb.stem}](notebooks/{nb.name}) | {_title(nb)} | {_sources(mine['ci'] or mine['paper'])} | "
                     f"{took} | " + " | ".join(verdicts) + " |")
    return "\n".join(lines)


def timing(reports_dir: Path = REPORTS_DIR) -> str:
    """One sentence: the ``ci`` report's total notebook time, its CPU and kernel set, and, when one
    ``reports`` run made every part (each part's ``run``), that run's wall-clock time."""
    prov = _read("ci", "provenance.json", reports_dir)
    if not prov:
        return "No `ci` report yet: run `make reports`."
    nbs = prov["notebooks"]
    onednn = {bool(nb.get("kernels", {}).get("onednn")) for nb in nbs}
    kernels = {frozenset({True}): "oneDNN's kernels", frozenset({False}): "Eigen's kernels"}.get(frozenset(onednn), "both kernel sets")
    beside = sum(not nb.get("alone", True) for nb in nbs)
    runs = [nb.get("run") for nb in nbs]
    one = runs[0] if runs and runs[0] and all(r == runs[0] for r in runs) else None
    clauses = ([f"{beside} of them ran beside another notebook (`--jobs`), so their times, marked \"shared\" in the "
                "table, include a shared CPU"] if beside else [])
    clauses += [f"one run made them all, in {one['seconds'] / 60:.1f} min (`--jobs {one['jobs']}`)"] if one else []
    shared = "".join(f"; {c}" for c in clauses)
    return (f"The committed `ci` report's {len(nbs)} notebooks add up to {duration(sum(nb['seconds'] for nb in nbs))}{shared}, "
            f"on {prov['processor']} ({prov['machine']}, {kernels}); each notebook's time is in the "
            f"[table below](#notebooks) and its provenance in [`reports/ci/`](reports/ci/README.md).")


def decision_table(reports_dir: Path = REPORTS_DIR) -> str:
    """The decision guide's short table, from the atlas rows that notebook 08 saved in the ``ci``
    report's metrics, and notebook 10's row for large vocabularies."""
    from xentlab.atlas import Atlas
    from xentlab.atlas import decision_table as table

    metrics = _read("ci", "metrics/08_which_cross_entropy.json", reports_dir)
    if not metrics:
        return "No atlas in `reports/ci` yet: run `make reports`."
    text = table(Atlas(**{s: metrics["atlas"][s] for s in Atlas.SECTIONS}, settings={}, seconds={}))
    vocabulary = _read("ci", "metrics/10_vocabulary_scale.json", reports_dir)
    if vocabulary and "finding" in vocabulary:  # notebook 10's measured answer for large vocabularies
        from xentlab.vocab import decision_row

        text += decision_row(vocabulary["finding"])
    return text.strip()


def _accuracy(measured: dict[str, Any]) -> str:
    zero = measured.get("zero_gradient_fraction")
    return f"{measured['test_accuracy']:.4f}" + (f" ({zero:.1%} of updates with an exactly zero gradient)"
                                                  if zero is not None else "")


def headline(reports_dir: Path = REPORTS_DIR) -> str:
    """Document 002's three methods at the ``paper`` budget: what the document printed beside the
    ``paper`` report's measurement (both kernel sets for method (1), where the report has both)."""
    claims = {c["id"]: c for c in _claims("paper", reports_dir)}
    if not all(i in claims for i, _ in _HEADLINE):
        return "No `paper` part of notebook 03 yet: run `python -m xentlab reports --profile paper --only 03`."
    run = claims[_HEADLINE[0][0]]["measured"]
    lines = [f"Test accuracy after {run['steps']:,} steps of batch {run['batch_size']} on `{run['dataset']}` "
             "([`reports/paper`](reports/paper/README.md), notebook 03):", "",
             "| method | the document | measured here | verdict |", "|---|---|---|---|"]
    for claim_id, method in _HEADLINE:
        c = claims[claim_id]
        m = c["measured"]
        by_kernels = {k: m[k] for k in ("oneDNN", "Eigen") if isinstance(m.get(k), dict)}
        here = ("; ".join(f"{k}: {_accuracy(v)}" for k, v in by_kernels.items()) if by_kernels
                else _accuracy(m))
        lines.append(f"| {method} | {c['expected']['test_accuracy']} | {here} | {_MARKS[c['verdict']]} {c['verdict']} |")
    return "\n".join(lines)


#: Each generated section's name and what writes it.
SECTIONS: dict[str, Callable[[], str]] = {
    "timing": timing,
    "decision-table": decision_table,
    "notebooks": notebook_table,
    "headline": headline,
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
