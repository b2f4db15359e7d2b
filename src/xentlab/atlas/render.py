"""Rendering the atlas' rows: selection, markdown tables and one-word cells."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from xentlab.atlas.measure import (
    Atlas,
)
from xentlab.atlas.registry import (
    Row,
)

# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def select(rows: Sequence[Row], **where: Any) -> list[Row]:
    """The rows whose fields equal every ``where`` item."""
    return [r for r in rows if all(r.get(k) == v for k, v in where.items())]


def one(rows: Sequence[Row], **where: Any) -> Row:
    """The single row matching ``where``; ``KeyError`` if none or several."""
    found = select(rows, **where)
    if len(found) != 1:
        raise KeyError(f"{len(found)} rows match {where}")
    return found[0]


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(str(x) for x in v)
    return str(v).replace("|", "\\|").replace("\n", " ")


def table(rows: Sequence[Row], columns: Sequence[str] | None = None) -> str:
    """A markdown table of ``rows`` (all fields, in first-seen order, unless ``columns``)."""
    if not rows:
        return "(no rows)\n"
    if columns is None:
        columns = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


#: The columns :func:`tables` shows per section (all fields are in the rows).
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "entries": ("name", "expects", "family", "labels", "output", "note"),
    "label_formats": ("entry", "format", "accepted", "error", "shape", "expected_shape",
                      "matches_oracle", "max_abs_error"),
    "extremes": ("entry", "dtype", "row", "result_dtype", "value", "oracle", "rel_error",
                 "grad_abs_error", "grad_max_abs", "value_finite", "grad_finite", "error"),
    "bad_labels": ("entry", "case", "mode", "determinism", "outcome", "error", "value"),
    "graphs": ("entry", "determinism", "fused_kernel", "kernels", "log_softmax", "n_ops",
               "value", "grad_max_abs", "error"),
    "modes": ("mode", "value", "oracle", "value_finite", "grad_finite", "log_softmax"),
    "reductions": ("entry", "call", "per_example_shape", "reduced_shape", "reduced", "sum",
                   "divisor", "note"),
    "sampled": ("setting", "call", "num_sampled", "value", "full", "rel_diff"),
    "backends": ("backend", "entry", "mode", "dtype", "gap", "value", "oracle", "rel_error",
                 "grad_abs_error", "grad_max_abs", "error"),
}


def tables(atlas: Atlas) -> dict[str, str]:
    """Markdown tables of every section, with :data:`TABLE_COLUMNS`."""
    return {s: table(getattr(atlas, s), TABLE_COLUMNS[s]) for s in Atlas.SECTIONS}


def matrix(rows: Sequence[Row], index: str, column: str, cell: Callable[[Row], str]) -> str:
    """A markdown pivot of ``rows``: one line per value of ``index``, one column per value of
    ``column`` (first-seen order), ``cell(row)`` in each (empty where no row matches)."""
    keys = list(dict.fromkeys(r[index] for r in rows))
    cols = list(dict.fromkeys(r[column] for r in rows))
    at = {(r[index], r[column]): r for r in rows}
    lines = ["| " + " | ".join([index, *map(_cell, cols)]) + " |", "|" + "---|" * (len(cols) + 1)]
    lines += ["| " + " | ".join([_cell(k), *(_cell(cell(at[k, c])) if (k, c) in at else "" for c in cols)])
              + " |" for k in keys]
    return "\n".join(lines) + "\n"


def label_format_cell(r: Row) -> str:
    """A :func:`label_formats` row in a word: ``ok``, ``differs by X`` (accepted, not the oracle's
    value for what the format means) or ``raises <Error>``."""
    if not r["accepted"]:
        return f"raises {r['error']}"
    return "ok" if r["matches_oracle"] else f"differs by {r['max_abs_error']:.3g}"


#: The error an :func:`extremes_cell` calls ``ok`` per dtype: 1e-3, or four rounding units
#: (machine epsilon 2**-10 for float16, 2**-7 for bfloat16) where that is larger.
CELL_TOLERANCE = {"float32": 1e-3, "float64": 1e-3, "float16": 4 * 2.0**-10, "bfloat16": 4 * 2.0**-7}


def extremes_cell(r: Row) -> str:
    """An :func:`extremes` row in a word: ``ok`` (relative value error and gradient error within
    :data:`CELL_TOLERANCE` of the row's dtype), else the value against the exact one, and
    ``grad 0`` where the gradient vanished although the exact one does not."""
    if r["error"]:
        return f"raises {r['error']}"
    if not r["value_finite"]:
        return fmt_value(r["value"])
    tol = CELL_TOLERANCE.get(r.get("dtype", "float32"), 1e-3)
    dead = r["grad_max_abs"] == 0 and r["oracle_grad_max_abs"] > 0
    if r["rel_error"] < tol and r["grad_finite"] and r["grad_abs_error"] < tol:
        return "ok"
    text = f"{r['value']:.4g} (exact {r['oracle']:.4g})" if r["rel_error"] >= tol else "value ok"
    return text + ("; grad 0" if dead else "" if r["grad_finite"] else "; grad not finite")


def bad_label_cell(r: Row) -> str:
    """A :func:`bad_labels` row in a word: ``raises <Error>``, ``nan``, ``inf`` or ``silent <value>``."""
    if r["outcome"] == "raises":
        return f"raises {r['error']}"
    return r["outcome"] if r["outcome"] in ("nan", "inf") else f"silent {fmt_value(r['value'])}"


def graph_cell(r: Row) -> str:
    """A :func:`graphs` row in a word: which path the traced forward + backward graph runs."""
    if r["error"]:
        return f"raises {r['error']}"
    return f"{'fused kernel' if r['fused_kernel'] else 'no fused kernel'} ({r['n_ops']} ops)"


def fmt_small(x: float | None) -> str:
    """An error: ``"< 1e-6"`` below 1e-6, else one significant digit; inf/NaN spelled out."""
    if x is None or math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "inf"
    if x == 0:
        return "0"
    return "< 1e-6" if abs(x) < 1e-6 else f"{x:.1g}"


def fmt_value(x: float | None) -> str:
    """A loss value: three decimals (``16.118``); inf/NaN spelled out."""
    if x is None or math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.3f}"
