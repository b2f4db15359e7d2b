"""What a notebook hands to the reports: claims, metrics and figures.

A notebook's Setup cell calls :func:`start` (through :func:`xentlab.notebook.setup`); the notebook
then calls :func:`check` (a claim of :data:`xentlab.claims.CLAIMS`, with its measurement and the
condition that decides its verdict; :func:`claim` is what it records), :func:`metric` and
:func:`save_figure`. Everything is written under the run
folder: the one the report runner names in ``$XENTLAB_RUN_DIR``, or, for an interactive or
nbval run, the gitignored scratch folder ``.scratch/`` (never ``reports/``).

Layout of a run folder::

    claims/<notebook>.json    list of claim objects (merged into claims.json by the runner)
    metrics/<notebook>.json   {name: value}
    figures/<notebook>_<name>.png
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from xentlab.config import RUN_DIR_ENV, SCRATCH_DIR

#: ``untested``: the run could not test the claim (e.g. its budget is smaller than the document's);
#: recorded with its reason, never counted as ``partly``.
VERDICTS = ("reproduced", "refuted", "partly", "untested")
#: A claim id: a document number or a published source's prefix (:data:`xentlab.claims.GUIDES`).
_ID = re.compile(r"^(\d{3}|guide|keras|cce)\.[a-z0-9][a-z0-9-]*$")
_notebook: str | None = None


def run_dir() -> Path:
    """The folder this run writes to: ``$XENTLAB_RUN_DIR`` or ``.scratch/``."""
    return Path(os.environ.get(RUN_DIR_ENV) or SCRATCH_DIR)


def start(notebook: str) -> None:
    """Name the notebook whose records follow and clear its previous records."""
    global _notebook
    if not re.fullmatch(r"[0-9A-Za-z_]+", notebook):
        raise ValueError(f"notebook name must be letters, digits and '_', got {notebook!r}")
    _notebook = notebook
    for sub in ("claims", "metrics"):
        (run_dir() / sub / f"{notebook}.json").unlink(missing_ok=True)


def _current() -> str:
    if _notebook is None:
        raise RuntimeError("call xentlab.record.start('<notebook name>') before recording")
    return _notebook


def jsonable(value: Any) -> Any:
    """Convert NumPy/TF scalars and arrays to plain JSON values; non-finite floats become strings."""
    if hasattr(value, "numpy"):  # tf.Tensor
        value = value.numpy()
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # "nan", "inf", "-inf": JSON has no literal for them
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def _read(path: Path, default: Any) -> Any:
    return json.loads(path.read_text()) if path.exists() else default


def _write(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n")
    os.replace(tmp, path)


def verdict(holds: bool, *, partly: bool = False) -> str:
    """Map measured outcomes to a verdict: ``reproduced`` if the claim holds, ``partly`` if it
    holds only in part (``partly=True``), else ``refuted``."""
    if holds:
        return "reproduced"
    return "partly" if partly else "refuted"


def claim(
    id: str,
    source: str,
    statement: str,
    expected: Any,
    measured: Any,
    verdict: str,
    *,
    measured_text: str,
    expected_text: str | None = None,
    section: str = "",
    untested_because: str | None = None,
    citation: str | None = None,
) -> None:
    """Record one checkable claim of a source and its computed verdict.

    ``id`` is ``<document>.<slug>`` (e.g. ``001.same-value``) with ``source`` the seed file
    (e.g. ``001_6f068e826eb9ea52.txt``), or ``guide.<slug>`` for a claim of published
    documentation, with ``source`` its title and ``citation`` its URL (required for ``guide.``
    ids, refused for document ids). ``expected`` is what the source says, ``measured`` what
    the notebook measured, ``verdict`` one of :data:`VERDICTS` (compute it, e.g. with
    :func:`verdict`), ``section`` the notebook heading it is shown under (for links).
    ``measured_text``: one sentence with rounded numbers saying what was measured, for the
    report's ledger (``measured`` keeps the full values); ``expected_text`` the same for
    ``expected`` (by default :func:`plain_text` of it), so that no ledger cell shows JSON.
    ``untested_because``: why this run cannot test the claim (e.g. ``"budget: 300 of 20,000
    steps"``); the recorded verdict is then ``untested`` with that ``reason``, and ``verdict`` is
    kept as ``verdict_at_this_budget`` (what the smaller run showed, for information only).
    Re-recording an id replaces it. Prints one line and returns nothing, so that a cell ending
    in a claim echoes no dict (:func:`claims` returns what was stored).
    """
    if not _ID.match(id):
        raise ValueError(f"claim id must look like '001.some-slug', 'guide.some-slug' or 'keras.some-slug', got {id!r}")
    if id[0].isdigit() == bool(citation):
        raise ValueError("a 'guide.' or 'keras.' claim needs citation='<URL>', and only such a claim takes one")
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
    if not measured_text.strip():
        raise ValueError("a claim needs measured_text: one sentence saying what was measured")
    if verdict == "untested" and not untested_because:
        raise ValueError("an 'untested' verdict needs its reason: pass untested_because='…'")
    notebook = _current()
    entry = {
        "id": id,
        "source": source,
        "statement": statement,
        "expected": jsonable(expected),
        "expected_text": expected_text or plain_text(jsonable(expected)),
        "measured": jsonable(measured),
        "measured_text": measured_text,
        "verdict": verdict,
        "notebook": notebook,
        "section": section,
    }
    if citation:
        entry["citation"] = citation
    if untested_because:
        entry.update(verdict="untested", reason=untested_because, verdict_at_this_budget=verdict)
    _write(
        run_dir() / "claims" / f"{notebook}.json",
        [c for c in claims() if c["id"] != id] + [entry],
    )
    why = f" ({untested_because})" if untested_because else ""
    print(f"[{entry['verdict']}] {id}: {statement}{why}")


_FROM_REGISTRY: Any = object()


def check(id: str, holds: bool | None, *, measured: Any, text: str, partly: bool = False,
          expected: Any = _FROM_REGISTRY, expected_text: str | None = None,
          untested_because: str | None = None) -> None:
    """Record claim ``id`` of :data:`xentlab.claims.CLAIMS` with what the notebook measured and
    the verdict that decides it (printed, not returned: a cell ending in a check echoes nothing).

    ``holds`` is the measured condition (:func:`verdict`: ``reproduced`` when it holds,
    ``partly`` when only ``partly`` does, else ``refuted``; None: ``untested``, with
    ``untested_because``). ``text`` is one sentence with rounded numbers saying what was
    measured; ``measured`` keeps the full values. The statement, section and source come from
    the registry, and so does ``expected`` unless the notebook passes it (values that depend on
    its parameters). See :func:`claim` for ``untested_because``.
    """
    from xentlab import claims

    if id not in claims.CLAIMS:
        raise KeyError(f"claim {id!r} is not in xentlab.claims.CLAIMS; add its statement there")
    c = claims.CLAIMS[id]
    source, citation = claims.source_of(id)
    decided = "untested" if holds is None else verdict(bool(holds), partly=bool(partly))
    claim(id, source, c.statement, c.expected if expected is _FROM_REGISTRY else expected, measured,
          decided, measured_text=text, expected_text=expected_text or c.expected_text,
          section=c.section, untested_because=untested_because, citation=citation)


def dataset(ds: Any) -> None:
    """Record which dataset the notebook used (a ``xentlab.data.Dataset``) for the provenance."""
    metric(
        "dataset",
        {"name": ds.name, "sha256": ds.sha256, "source": ds.source,
         "train": int(len(ds.y_train)), "val": int(len(getattr(ds, "y_val", ()))),
         "test": int(len(ds.y_test))},
    )


def claims() -> list[dict[str, Any]]:
    """The claims this notebook has recorded so far (for its Summary)."""
    return _read(run_dir() / "claims" / f"{_current()}.json", [])


def plain_text(value: Any) -> str:
    """A claim's expected or measured value as text: a dict as ``key value`` pairs (underscores
    as spaces), a list of strings joined by "; ", a string as it is, anything else as JSON."""
    if isinstance(value, dict):
        return ", ".join(f"{k.replace('_', ' ')} {plain_text(v)}" for k, v in value.items())
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return "; ".join(value)
    return value if isinstance(value, str) else json.dumps(value)


def summary() -> dict[str, str]:
    """Show this notebook's claims as a Markdown table (verdict, id, the full statement; the
    measured values, which vary in their last digits between CPUs, are in the report's ledger)
    and return ``{id: verdict}`` for the notebook's checks."""
    from IPython.display import Markdown, display

    recorded = claims()
    display(Markdown(summary_table(recorded)))
    return {c["id"]: c["verdict"] for c in recorded}


def summary_table(recorded: list[dict[str, Any]]) -> str:
    """The Markdown table :func:`summary` shows."""
    from xentlab.reports.render import MARKS, cell

    rows = [f"| {MARKS[c['verdict']]} | `{c['id']}` | {cell(c['statement'], 10_000)} |" for c in recorded]
    return "\n".join(["| verdict | claim | statement |", "|---|---|---|", *rows])


def metric(name: str, value: Any) -> None:
    """Record one named measurement (any JSON-able value, NumPy/TF values converted).

    Returns nothing, so that a notebook cell ending in ``record.metric(...)`` displays nothing:
    full-precision values vary in their last digits across CPUs and would break nbval; the
    notebook prints what it shows, rounded.
    """
    path = run_dir() / "metrics" / f"{_current()}.json"
    metrics = _read(path, {})
    metrics[name] = jsonable(value)
    _write(path, metrics)


def save_text(name: str, text: str) -> Path:
    """Write a text artifact (e.g. ``bench.md``) at the top of the run folder."""
    if not re.fullmatch(r"[0-9A-Za-z_-]+\.(md|txt|json)", name):
        raise ValueError(f"artifact name must look like 'name.md', got {name!r}")
    _current()
    path = run_dir() / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def save_figure(fig: Any, name: str, *, dpi: int = 110) -> Path:
    """Save a Matplotlib figure as ``figures/<notebook>_<name>.png`` and return its path."""
    if not re.fullmatch(r"[0-9A-Za-z_-]+", name):
        raise ValueError(f"figure name must be letters, digits, '_' or '-', got {name!r}")
    path = run_dir() / "figures" / f"{_current()}_{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path
