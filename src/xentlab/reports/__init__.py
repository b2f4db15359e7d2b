"""Reports: run the notebooks with papermill into ``reports/<profile>/`` (:mod:`.run`), render
their README and summary (:mod:`.render`), and check that a profile reproduces (:mod:`.reproduce`)."""

from __future__ import annotations

from xentlab.reports.render import MARKS, heading_slug, kernels_text, render_readme, render_summary
from xentlab.reports.reproduce import VOLATILE, comparable, differences, reproduce_check
from xentlab.reports.run import (
    KERNEL,
    NotebookRun,
    ReportError,
    discover,
    execute_in_place,
    keep_parts,
    notebook_parameters,
    provenance,
    rebuild,
    relink,
    relink_notebook,
    run_reports,
    select_notebooks,
)

__all__ = ["KERNEL", "MARKS", "VOLATILE", "NotebookRun", "ReportError", "comparable", "differences",
           "discover", "execute_in_place", "heading_slug", "keep_parts", "kernels_text", "notebook_parameters",
           "provenance", "rebuild", "relink", "relink_notebook", "render_readme", "render_summary", "reproduce_check", "run_reports",
           "select_notebooks"]
