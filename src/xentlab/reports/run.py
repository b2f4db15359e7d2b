"""The papermill report runner: ``python -m xentlab reports`` and ``python -m xentlab notebooks``.

Runs each notebook (kernel ``python3``, cwd ``notebooks/``) with a profile's parameters into a
temporary folder next to the destination (relative links in the executed copies rewritten to
resolve from there), then merges the claims into ``claims.json`` and writes ``README.md`` and
``summary.md`` (:mod:`xentlab.reports.render`). The static site (``make site``) shows the executed
notebooks; no HTML is exported here.
Only when every notebook succeeded does the folder replace ``reports/<profile>/``; on failure the
previous report is left untouched and the run is kept in ``reports/<profile>.failed/``.

A report is made of one part per notebook (its executed notebook, figures, metrics,
``claims/<notebook>.json`` and ``parts/<notebook>.json``, its provenance row). ``--only NN``
starts from a copy of the existing report, replaces those notebooks' parts and rebuilds
``claims.json``, ``provenance.json`` and ``README.md`` from all parts, so a report that needs
several sittings (the ``paper`` profile) can be finished notebook by notebook; :func:`rebuild`
rewrites those files from the parts alone, running nothing.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from xentlab import runtime
from xentlab.config import (
    NOTEBOOKS_DIR,
    PROJECT_ROOT,
    REPORTS_DIR,
    RUN_DIR_ENV,
    SCRATCH_DIR,
    cpu_features,
)
from xentlab.profiles import PROFILES, TIMED, Params
from xentlab.reports.render import render_readme, render_summary

KERNEL = "python3"



class ReportError(RuntimeError):
    """A report run failed; the message names the notebook, the cell and the error."""

    def __init__(self, message: str, notebook: str = "") -> None:
        super().__init__(message)
        self.notebook = notebook  # the failed notebook's stem (kept when pickled from a worker)



def _utc_now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())



@dataclass(frozen=True)

class NotebookRun:
    name: str
    seconds: float
    parameters: Params
    alone: bool = True  # False: other notebooks ran beside it (``--jobs``)
    finished_utc: str = field(default_factory=_utc_now)  # made right after the notebook ran



def discover(notebooks_dir: Path = NOTEBOOKS_DIR) -> list[Path]:
    """The report notebooks, in reading order: ``NN_topic.ipynb``."""
    return sorted(notebooks_dir.glob("[0-9][0-9]_*.ipynb"))



def select_notebooks(notebooks: list[Path], only: list[str] | None) -> list[Path]:
    """Keep the notebooks named in ``only`` (full stem, ``NN`` prefix or stem with ``.ipynb``)."""
    if not only:
        return notebooks
    chosen = []
    for want in only:
        want = want.removesuffix(".ipynb")
        hits = [nb for nb in notebooks if nb.stem == want or nb.stem.split("_", 1)[0] == want]
        if not hits:
            names = ", ".join(nb.stem for nb in notebooks)
            raise ValueError(f"unknown notebook {want!r}; available: {names}")
        chosen += [nb for nb in hits if nb not in chosen]
    return chosen



def notebook_parameters(
    notebook: Path, profile: str, dataset: str | None, profiles: dict[str, dict[str, Params]]
) -> Params:
    """The profile's parameters for ``notebook``, checked against its ``parameters`` cell."""
    import papermill

    if profile not in profiles:
        raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(profiles)}")
    params = dict(profiles[profile].get(notebook.stem, {}))
    declared = papermill.inspect_notebook(str(notebook))
    if dataset is not None and "dataset" in declared:
        params["dataset"] = dataset
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise ValueError(
            f"profile {profile!r} sets {unknown} for {notebook.stem}, which has no such "
            f"parameter (it declares {sorted(declared)})"
        )
    return params



@contextmanager

def kernel_stderr_to(log: Path) -> Iterator[None]:
    """Send file descriptor 2 (inherited by the kernels started inside) to ``log``.

    TensorFlow 2.21 writes its oneDNN notice to stderr before absl logging is initialised, where
    ``TF_CPP_MIN_LOG_LEVEL`` cannot silence it; the kernel's C-level stderr is kept in the run's
    ``logs/`` instead of cluttering the terminal (Python-level stderr is still in the notebook).
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    with open(log, "ab") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)



def _execute(notebook: Path, output: Path, params: Params, run_dir: Path) -> None:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    try:
        with (runtime.environment(**{RUN_DIR_ENV: str(run_dir)}, **runtime.tensorflow_environment()),
              kernel_stderr_to(run_dir / "logs" / f"{notebook.stem}.stderr.log")):
            papermill.execute_notebook(
                str(notebook),
                str(output),
                parameters=params,
                kernel_name=KERNEL,
                cwd=str(notebook.parent),
                progress_bar=False,
            )
    except PapermillExecutionError as err:
        raise ReportError(
            f"{notebook.stem}: cell {err.cell_index} (execution count {err.exec_count}) raised "
            f"{err.ename}: {err.evalue}", notebook.stem
        ) from err


def _report_error(err: BaseException, stem: str) -> ReportError:
    """``err`` as a :class:`ReportError` naming notebook ``stem`` (a failing cell already is one)."""
    if isinstance(err, ReportError):
        return err
    return ReportError(f"{stem}: {type(err).__name__}: {err}", stem)


def _run_one(notebook: Path, params: Params, run_dir: Path, dest: Path, alone: bool) -> NotebookRun:
    """Execute ``notebook`` into ``run_dir/notebooks`` (links rewritten to resolve from ``dest``)."""
    start = time.perf_counter()
    try:
        _execute(notebook, run_dir / "notebooks" / notebook.name, params, run_dir)
    except ReportError:
        raise
    except Exception as err:  # e.g. a dead kernel: the error names the notebook all the same
        raise _report_error(err, notebook.stem) from err
    relink_notebook(run_dir / "notebooks" / notebook.name, notebook.parent, dest)
    return NotebookRun(notebook.stem, time.perf_counter() - start, params, alone=alone)


Step = tuple[Path, Params]


def _batches(plan: list[Step], jobs: int, timed: frozenset[str]) -> list[list[Step]]:
    """The order of a report run: with ``jobs`` 1, each notebook alone in reading order; above 1,
    the notebooks not in ``timed`` as one batch (run ``jobs`` at a time), then each timed one alone."""
    if jobs == 1:
        return [[step] for step in plan]
    shared = [step for step in plan if step[0].stem not in timed]
    return ([shared] if shared else []) + [[step] for step in plan if step[0].stem in timed]


def _run_batch(batch: list[Step], run_dir: Path, dest: Path, label: dict[str, str], jobs: int) -> list[NotebookRun]:
    """Run one batch of :func:`_batches`: a single notebook in this process, several in at most
    ``jobs`` worker processes (each sends its kernel's stderr to its own log), a new one started
    whenever one ends. After a failure no other notebook starts; the running ones are finished
    (each failure is printed) and the first failure is raised."""
    if len(batch) == 1:
        nb, params = batch[0]
        print(f"{label[nb.stem]} ...", flush=True)
        run = _run_one(nb, params, run_dir, dest, alone=True)
        print(f"{label[nb.stem]} done in {run.seconds:.1f} s", flush=True)
        return [run]
    workers = min(jobs, len(batch))
    waiting, running, runs = list(batch), {}, []
    failure: ReportError | None = None
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        while running or (waiting and failure is None):
            while waiting and failure is None and len(running) < workers:
                nb, params = waiting.pop(0)
                print(f"{label[nb.stem]} ... (beside others)", flush=True)
                running[pool.submit(_run_one, nb, params, run_dir, dest, False)] = nb.stem
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                stem = running.pop(future)
                try:
                    runs.append(future.result())
                    print(f"{label[stem]} done in {runs[-1].seconds:.1f} s", flush=True)
                except Exception as err:  # a failing cell, or a worker that died (BrokenProcessPool)
                    failure = failure or _report_error(err, stem)
                    waits = f"; waiting for {', '.join(running.values())}" if running else ""
                    print(f"{label[stem]} failed{waits}", flush=True)
    except BaseException:  # e.g. Ctrl-C, which the workers receive too: do not wait for them
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    if failure is not None:
        raise failure
    return runs



_LINK = re.compile(r"(\]\()([^)\s]+)(\))")


def relink(markdown: str, source_dir: Path, dest_dir: Path) -> str:
    """``markdown`` (a notebook cell written in ``source_dir``) with each relative link target
    rewritten to resolve from ``dest_dir``; links to a notebook beside it (``02_….ipynb``), to
    anchors and to URLs are kept."""

    def fix(m: re.Match[str]) -> str:
        target = m[2]
        path, _, anchor = target.partition("#")
        if not path or "://" in path or path.startswith("mailto:") or "/" not in path and path.endswith(".ipynb"):
            return m[0]
        new = os.path.relpath((source_dir / path).resolve(), dest_dir.resolve())
        return f"{m[1]}{new}{'#' + anchor if anchor else ''}{m[3]}"

    return _LINK.sub(fix, markdown)


def relink_notebook(path: Path, source_dir: Path, dest_dir: Path) -> None:
    """Apply :func:`relink` to every markdown cell of the notebook at ``path``."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = relink(cell.source, source_dir, dest_dir)
    nbformat.write(nb, path)



def merge_claims(run_dir: Path) -> list[dict[str, Any]]:
    """Merge ``claims/<notebook>.json`` into one list sorted by claim id."""
    claims: list[dict[str, Any]] = []
    for path in sorted((run_dir / "claims").glob("*.json")):
        claims += json.loads(path.read_text())
    return sorted(claims, key=lambda c: c["id"])



def _git_commit() -> str:
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT,
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return sha + (" (with uncommitted changes)" if dirty else "")



def part(run: NotebookRun, run_dir: Path, commit: str, invocation: dict[str, Any]) -> dict[str, Any]:
    """One notebook's provenance row: what ran (commit, parameters, dataset), where (versions,
    machine, CPU flags), when and for how long; ``invocation``, the ``reports`` run that made it
    (its start, the ``jobs`` asked for and the wall-clock seconds of its notebooks, the report's
    assembly excluded), shared by every part that run made."""
    metrics_path = run_dir / "metrics" / f"{run.name}.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    return {
        "name": run.name, "seconds": round(run.seconds, 1), "alone": run.alone, "parameters": run.parameters,
        "git_commit": commit, "created_utc": run.finished_utc,
        "python": platform.python_version(), "tensorflow": _version("tensorflow-cpu", "tensorflow"),
        "keras": _version("keras"), "numpy": _version("numpy"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}",
        "processor": _cpu_model(), "cpu_flags": [f for f, on in cpu_features().items() if on],
        "kernels": metrics.get("kernels"), "dataset": metrics.get("dataset"), "run": invocation,
    }



def provenance(profile: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The report's provenance from its notebooks' parts (:func:`part`): shared fields once
    (several values are listed, e.g. when parts were run from different commits), the rows
    per notebook."""

    def shared(key: str) -> str:
        values = list(dict.fromkeys(str(p.get(key, "unknown")) for p in parts))
        return values[0] if len(values) == 1 else "several: " + ", ".join(values)

    datasets = {p["dataset"]["name"]: p["dataset"] for p in parts if p.get("dataset")}
    return {
        "profile": profile,
        "git_commit": shared("git_commit"),
        "created_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        **{key: shared(key) for key in ("python", "tensorflow", "keras", "numpy", "machine", "processor")},
        "datasets": datasets,
        "notebooks": sorted(parts, key=lambda p: p["name"]),
    }



def _version(*distributions: str) -> str:
    """Installed version of the first distribution found (without importing it)."""
    for name in distributions:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"



def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"



def run_reports(
    profile: str = "ci",
    *,
    only: list[str] | None = None,
    dataset: str | None = None,
    out: Path | None = None,
    jobs: int = 1,
    notebooks_dir: Path = NOTEBOOKS_DIR,
    profiles: dict[str, dict[str, Params]] = PROFILES,
    timed: frozenset[str] = TIMED,
) -> Path:
    """Run the notebooks of ``profile`` into ``out`` (default ``reports/<profile>/``) atomically.

    ``jobs`` > 1 runs that many notebooks at once, each in its own process, except those named in
    ``timed`` (their results are times and memory peaks), which run afterwards one at a time.
    Raises ``ValueError`` for a bad profile, notebook, parameter or ``jobs`` before anything runs,
    and ``ReportError`` when a notebook fails (the previous report is left as it was; with
    ``jobs`` > 1 the notebooks already running are finished first, and no other one starts).
    """
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    notebooks = select_notebooks(discover(notebooks_dir), only)
    if not notebooks:
        raise ValueError(f"no notebooks found in {notebooks_dir}")
    if dataset is not None:
        from xentlab.data import DATASETS

        if dataset not in DATASETS:
            raise ValueError(f"unknown dataset {dataset!r}; choose one of {list(DATASETS)}")
    plan = [(nb, notebook_parameters(nb, profile, dataset, profiles)) for nb in notebooks]
    # Absolute: the kernels run in notebooks/, and papermill changes the working directory.
    out = (Path(out) if out is not None else REPORTS_DIR / profile).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".tmp-{out.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    if only and out.exists():  # replace these notebooks' parts, keep the others
        keep_parts(out, tmp, [nb.stem for nb, _ in plan])
    (tmp / "notebooks").mkdir(parents=True, exist_ok=True)
    runs: list[NotebookRun] = []
    commit = _git_commit()  # the code the notebooks run, before anything can change
    started, started_utc = time.perf_counter(), _utc_now()
    label = {nb.stem: f"[{i}/{len(plan)}] {nb.stem}" for i, (nb, _) in enumerate(plan, 1)}
    current = "assembling the report"
    try:
        for batch in _batches(plan, jobs, timed):
            current = "running " + ", ".join(nb.stem for nb, _ in batch)
            runs += _run_batch(batch, tmp, out / "notebooks", label, jobs)
        current = "assembling the report"
        invocation = {"started_utc": started_utc, "jobs": jobs, "seconds": round(time.perf_counter() - started, 1)}
        _assemble(tmp, profile, runs, commit, invocation)
        _replace(tmp, out)
    except BaseException as err:
        failed = out.parent / f"{out.name}.failed"
        shutil.rmtree(failed, ignore_errors=True)
        tmp.rename(failed)
        if isinstance(err, ReportError):
            kept = failed / "notebooks" / f"{err.notebook}.ipynb"
            raise ReportError(f"{err}\n  executed notebook kept at {kept}; {out} untouched", err.notebook) from err
        print(f"report failed while {current}: run kept in {failed}; {out} untouched",
              file=sys.stderr)
        raise
    return out



def _part_files(run_dir: Path, stem: str) -> list[Path]:
    """Every file (and folder: a notebook's own logs) of notebook ``stem``'s part of a report."""
    named = [run_dir / "notebooks" / f"{stem}.ipynb", run_dir / "metrics" / f"{stem}.json",
             run_dir / "claims" / f"{stem}.json", run_dir / "parts" / f"{stem}.json", run_dir / "logs" / stem]
    return named + sorted(run_dir.glob(f"figures/{stem}_*")) + sorted(run_dir.glob(f"logs/{stem}.*"))



def keep_parts(previous: Path, tmp: Path, replaced: list[str]) -> None:
    """Start ``tmp`` as a copy of the report ``previous`` without the parts of ``replaced`` (nor
    the HTML copies that reports once had)."""
    shutil.copytree(previous, tmp, ignore=shutil.ignore_patterns("html"))
    for stem in replaced:
        for path in _part_files(tmp, stem):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)


def _assemble(tmp: Path, profile: str, runs: list[NotebookRun], commit: str, invocation: dict[str, Any]) -> None:
    """The parts of the notebooks just run (their provenance rows), then :func:`rebuild`."""
    (tmp / "parts").mkdir(exist_ok=True)
    for run in runs:
        (tmp / "parts" / f"{run.name}.json").write_text(json.dumps(part(run, tmp, commit, invocation), indent=2) + "\n")
    rebuild(tmp, profile)


def rebuild(run_dir: Path, profile: str) -> None:
    """Rewrite ``claims.json``, ``provenance.json``, ``README.md`` and ``summary.md`` of the report
    at ``run_dir`` from its parts (``python -m xentlab reports --rebuild``): nothing is run."""
    claims = merge_claims(run_dir)
    (run_dir / "claims.json").write_text(json.dumps(claims, indent=2) + "\n")
    parts = [json.loads(p.read_text()) for p in sorted((run_dir / "parts").glob("*.json"))]
    prov = provenance(profile, parts)
    (run_dir / "provenance.json").write_text(json.dumps(prov, indent=2) + "\n")
    figures = sorted((run_dir / "figures").glob("*.png"))
    (run_dir / "README.md").write_text(render_readme(prov, claims, figures))
    (run_dir / "summary.md").write_text(render_summary(prov, claims))



def _replace(new: Path, dest: Path) -> None:
    """Move ``new`` into place at ``dest``; the previous ``dest`` is restored if that fails."""
    old = dest.parent / f".old-{dest.name}-{os.getpid()}"
    if dest.exists():
        dest.rename(old)
    try:
        new.rename(dest)
    except BaseException:
        if old.exists():
            old.rename(dest)
        raise
    shutil.rmtree(old, ignore_errors=True)



def execute_in_place(notebooks: list[Path]) -> None:
    """Re-execute committed notebooks in place with their default parameters (``make
    notebooks``); records go to the scratch folder. Stops at the first failing notebook."""
    import nbformat
    from nbclient import NotebookClient

    for i, path in enumerate(notebooks, 1):
        print(f"[{i}/{len(notebooks)}] {path.stem} ...", flush=True)
        start = time.perf_counter()
        nb = nbformat.read(path, as_version=4)
        with (runtime.environment(**{RUN_DIR_ENV: str(SCRATCH_DIR)}, **runtime.tensorflow_environment()),
              kernel_stderr_to(SCRATCH_DIR / "logs" / f"{path.stem}.stderr.log")):
            NotebookClient(
                nb, kernel_name=KERNEL, timeout=None,
                resources={"metadata": {"path": str(path.parent)}},
            ).execute()
        nbformat.write(nb, path)
        print(f"[{i}/{len(notebooks)}] {path.stem} done in {time.perf_counter() - start:.1f} s")
    sys.stdout.flush()
