"""The papermill report runner: ``python -m xentlab reports``.

Runs each notebook (kernel ``python3``, cwd ``notebooks/``) with a profile's parameters into a
temporary folder next to the destination, then adds HTML, merges the claims into
``claims.json`` and writes ``README.md`` (provenance, claims ledger, figures). Only when every
notebook succeeded does the folder replace ``reports/<profile>/``; on failure the previous report
is left untouched and the run is kept in ``reports/<profile>.failed/`` for inspection.

A report is made of one part per notebook (its executed notebook, HTML, figures, metrics,
``claims/<notebook>.json`` and ``parts/<notebook>.json``, its provenance row). ``--only NN``
starts from a copy of the existing report, replaces those notebooks' parts and rebuilds
``claims.json``, ``provenance.json`` and ``README.md`` from all parts, so a report that needs
several sittings (the ``paper`` profile) can be finished notebook by notebook.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
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
from xentlab.profiles import PROFILES, Params

KERNEL = "python3"


class ReportError(RuntimeError):
    """A report run failed; the message names the notebook, the cell and the error."""


def _utc_now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())


@dataclass(frozen=True)
class NotebookRun:
    name: str
    seconds: float
    parameters: Params
    finished_utc: str = field(default_factory=_utc_now)  # made right after the notebook ran


def discover(notebooks_dir: Path = NOTEBOOKS_DIR) -> list[Path]:
    """The report notebooks, in reading order: ``NN_topic.ipynb``."""
    return sorted(notebooks_dir.glob("[0-9][0-9]_*.ipynb"))


def select(notebooks: list[Path], only: list[str] | None) -> list[Path]:
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
            f"{err.ename}: {err.evalue}"
        ) from err


def _html(executed: Path, dest: Path) -> None:
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(executed, as_version=4))
    dest.write_text(body)


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


def part(run: NotebookRun, run_dir: Path, commit: str) -> dict[str, Any]:
    """One notebook's provenance row: what ran (commit, parameters, dataset), where (versions,
    machine, CPU flags), when and for how long."""
    metrics_path = run_dir / "metrics" / f"{run.name}.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    return {
        "name": run.name, "seconds": round(run.seconds, 1), "parameters": run.parameters,
        "git_commit": commit, "created_utc": run.finished_utc,
        "python": platform.python_version(), "tensorflow": _version("tensorflow-cpu", "tensorflow"),
        "keras": _version("keras"), "numpy": _version("numpy"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}",
        "processor": _cpu_model(), "cpu_flags": [f for f, on in cpu_features().items() if on],
        "kernels": metrics.get("kernels"), "dataset": metrics.get("dataset"),
    }


def kernels_text(nb: dict[str, Any], *, short: bool = False) -> str:
    """Which CPU kernels a part ran (``nb["kernels"]``, :func:`xentlab.config.kernel_set`):
    ``"oneDNN kernels"`` or ``"Eigen kernels"`` when ``short``, else the name and why (the
    variable, or TensorFlow's default) with the default the deciding CPU flags give."""
    k = nb.get("kernels")
    if not k:
        return "kernels not recorded"
    name = "oneDNN" if k["onednn"] else "Eigen"
    if short:
        return f"{name} kernels"
    if k.get("TF_ENABLE_ONEDNN_OPTS") is not None:
        why = f"TF_ENABLE_ONEDNN_OPTS={k['TF_ENABLE_ONEDNN_OPTS']}"
    else:
        why = "TensorFlow's default"
    default = "oneDNN" if k["onednn_default"] else "Eigen"
    flags = ", ".join(k["deciding_flags"]) or "none of the deciding flags"
    return f"{name} ({why}; the default here: {default}, from {flags})"


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


def _cell(value: Any, width: int = 70) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def _anchor(section: str) -> str:
    """Jupyter's heading anchor: the rendered text (no code backticks), spaces as hyphens."""
    return section.strip().replace("`", "").replace(" ", "-")


#: How a verdict is shown in the reports' tables (the ones to look at in bold).
MARKS = {"reproduced": "✅ reproduced", "partly": "⚠️ **partly**", "refuted": "❌ **refuted**",
         "untested": "⏸️ untested"}


def render_readme(prov: dict[str, Any], claims: list[dict[str, Any]], figures: list[Path]) -> str:
    """The report's README.md: the claims ledger first, then provenance and figures."""
    counts = {v: sum(c["verdict"] == v for c in claims) for v in MARKS}
    lines = [
        f"# xentlab report — profile `{prov['profile']}`",
        "",
        f"Generated by `python -m xentlab reports --profile {prov['profile']}` at "
        f"{prov['created_utc']} UTC from commit `{prov['git_commit']}`.",
        "",
        "## Claims ledger",
        "",
        f"{len(claims)} claims: {counts['reproduced']} reproduced, {counts['partly']} partly "
        f"true, {counts['refuted']} refuted, {counts['untested']} untested by this profile's "
        "budget. Verdicts are computed in the notebooks from what they measured; each row links to "
        "the executed notebook and to its HTML copy at the section that shows the claim "
        "(`claims.json` holds the full measured values).",
    ]
    for source in sorted({c["source"] for c in claims}, key=lambda s: (not s[:3].isdigit(), s)):
        cited = next((c["citation"] for c in claims if c["source"] == source and c.get("citation")), None)
        lines += [
            "",
            f"### [{source}]({cited})" if cited else f"### Document `{source}`",
            "",
            "| id | claim | expected | measured | verdict |",
            "|---|---|---|---|---|",
        ]
        for c in (c for c in claims if c["source"] == source):
            anchor = "#" + _anchor(c["section"]) if c.get("section") else ""
            link = f"notebooks/{c['notebook']}.ipynb"
            lines.append(
                f"| [`{c['id']}`]({link}) ([html](html/{c['notebook']}.html{anchor})) | "
                f"{_cell(c['statement'], 110)} | {_cell(c.get('expected_text') or _plain(c['expected']))} | "
                f"{_cell(c.get('measured_text') or c['measured'], 240)} | {MARKS[c['verdict']]}"
                + (f" ({_cell(c['reason'])})" if c.get("reason") else "") + " |"
            )
    lines += [
        "",
        "## Provenance",
        "",
        f"- Python {prov['python']}, TensorFlow {prov['tensorflow']}, Keras {prov['keras']}, "
        f"NumPy {prov['numpy']}",
        f"- Machine: {prov['machine']} ({prov['processor']})",
    ]
    for ds in prov["datasets"].values():
        lines.append(
            f"- Dataset `{ds['name']}` ({ds['train']} train / {ds['test']} test, from "
            f"{ds['source']}), SHA-256 `{ds['sha256']}`"
        )
    lines += ["", "| notebook | wall time (s) | parameters | commit | run (UTC) | CPU flags | CPU kernels |",
              "|---|---|---|---|---|---|---|"]
    for nb in prov["notebooks"]:
        params = json.dumps(nb["parameters"]) if nb["parameters"] else "defaults"
        lines.append(
            f"| [{nb['name']}](html/{nb['name']}.html) | {nb['seconds']} | {_cell(params, 90)} | "
            f"`{str(nb.get('git_commit', 'unknown'))[:12]}` | {nb.get('created_utc', '')} | "
            f"{', '.join(nb.get('cpu_flags', [])) or '—'} | {kernels_text(nb)} |"
        )
    if figures:
        lines += ["", "## Figures", ""]
        for fig in figures:
            lines += [f"### {fig.stem}", "", f"![{fig.stem}](figures/{fig.name})", ""]
    return "\n".join(lines).rstrip() + "\n"


def _plain(value: Any) -> str:
    """A claim's expected or measured value as text: a dict as ``key value`` pairs."""
    if isinstance(value, dict):
        return ", ".join(f"{k.replace('_', ' ')} {_plain(v)}" for k, v in value.items())
    return value if isinstance(value, str) else json.dumps(value)


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def render_summary(prov: dict[str, Any], claims: list[dict[str, Any]], base: str) -> str:
    """A short results table for the project README: one row per notebook (what ran, how long,
    on which CPU), then every claim with the source's number beside this run's. Links are
    relative to the README, the report sitting at ``base`` (e.g. ``reports/paper/``)."""
    counts = ", ".join(f"{sum(c['verdict'] == v for c in claims)} {v}" for v in MARKS)
    lines = [f"Profile `{prov['profile']}`, {len(claims)} claims: {counts}. TensorFlow "
             f"{prov['tensorflow']}, Keras {prov['keras']}; the full report is "
             f"[{base}README.md]({base}README.md).", "",
             "| notebook | parameters (beyond the defaults) | dataset | wall time | CPU | commit |",
             "|---|---|---|---|---|---|"]
    for nb in prov["notebooks"]:
        cpu = f"{nb.get('processor', 'unknown')} ({kernels_text(nb, short=True)})"
        dataset = (nb.get("dataset") or {}).get("name", "—")
        lines.append(
            f"| [{nb['name']}]({base}html/{nb['name']}.html) | {_cell(_plain(nb['parameters'] or 'defaults'), 90)} | "
            f"{dataset} | {_duration(nb['seconds'])} | {cpu} | `{str(nb.get('git_commit', 'unknown'))[:7]}` |")
    lines += ["", "| claim | the source says | this run measured | verdict |", "|---|---|---|---|"]
    for c in claims:
        anchor = "#" + _anchor(c["section"]) if c.get("section") else ""
        lines.append(
            f"| [`{c['id']}`]({base}html/{c['notebook']}.html{anchor}): {_cell(c['statement'], 90)} | "
            f"{_cell(c.get('expected_text') or _plain(c['expected']), 80)} | {_cell(c.get('measured_text') or _plain(c['measured']), 160)} | "
            f"{MARKS[c['verdict']]}" + (f" ({_cell(c['reason'], 90)})" if c.get("reason") else "") + " |")
    return "\n".join(lines) + "\n"


def run_reports(
    profile: str = "ci",
    *,
    only: list[str] | None = None,
    dataset: str | None = None,
    out: Path | None = None,
    notebooks_dir: Path = NOTEBOOKS_DIR,
    profiles: dict[str, dict[str, Params]] = PROFILES,
    html: bool = True,
) -> Path:
    """Run the notebooks of ``profile`` into ``out`` (default ``reports/<profile>/``) atomically.

    Raises ``ValueError`` for a bad profile, notebook or parameter before anything runs, and
    ``ReportError`` when a notebook fails (the previous report is left as it was).
    """
    notebooks = select(discover(notebooks_dir), only)
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
    current = "assembling the report"
    try:
        for i, (nb, params) in enumerate(plan, 1):
            current = nb.name
            print(f"[{i}/{len(plan)}] {nb.stem} ...", flush=True)
            start = time.perf_counter()
            _execute(nb, tmp / "notebooks" / nb.name, params, tmp)
            runs.append(NotebookRun(nb.stem, time.perf_counter() - start, params))
            print(f"[{i}/{len(plan)}] {nb.stem} done in {runs[-1].seconds:.1f} s", flush=True)
        current = "assembling the report"
        _assemble(tmp, profile, runs, commit, html, os.path.relpath(out, PROJECT_ROOT) + "/")
        _replace(tmp, out)
    except BaseException as err:
        failed = out.parent / f"{out.name}.failed"
        shutil.rmtree(failed, ignore_errors=True)
        tmp.rename(failed)
        if isinstance(err, ReportError):
            kept = failed / "notebooks" / current
            raise ReportError(f"{err}\n  executed notebook kept at {kept}; {out} untouched") from err
        print(f"report failed while {current}: run kept in {failed}; {out} untouched",
              file=sys.stderr)
        raise
    return out


def _part_files(run_dir: Path, stem: str) -> list[Path]:
    """Every file of notebook ``stem``'s part of a report."""
    named = [run_dir / "notebooks" / f"{stem}.ipynb", run_dir / "html" / f"{stem}.html",
             run_dir / "metrics" / f"{stem}.json", run_dir / "claims" / f"{stem}.json",
             run_dir / "parts" / f"{stem}.json"]
    return named + sorted(run_dir.glob(f"figures/{stem}_*")) + sorted(run_dir.glob(f"logs/{stem}.*"))


def keep_parts(previous: Path, tmp: Path, replaced: list[str]) -> None:
    """Start ``tmp`` as a copy of the report ``previous`` without the parts of ``replaced``.

    A report written before reports had parts (one ``claims.json``, one provenance) is split
    first: its claims by their ``notebook``, its provenance into one row per notebook with the
    report's shared fields."""
    shutil.copytree(previous, tmp)
    if not (tmp / "claims").exists() and (tmp / "claims.json").exists():
        (tmp / "claims").mkdir()
        for claim in json.loads((tmp / "claims.json").read_text()):
            path = tmp / "claims" / f"{claim['notebook']}.json"
            rows = json.loads(path.read_text()) if path.exists() else []
            path.write_text(json.dumps(rows + [claim], indent=2) + "\n")
    if not (tmp / "parts").exists() and (tmp / "provenance.json").exists():
        (tmp / "parts").mkdir()
        prov = json.loads((tmp / "provenance.json").read_text())
        for row in prov.get("notebooks", []):
            metrics_path = tmp / "metrics" / f"{row['name']}.json"
            dataset = json.loads(metrics_path.read_text()).get("dataset") if metrics_path.exists() else None
            shared = {k: prov.get(k) for k in ("git_commit", "created_utc", "python", "tensorflow",
                                                "keras", "numpy", "machine", "processor")}
            (tmp / "parts" / f"{row['name']}.json").write_text(
                json.dumps({**shared, **row, "dataset": dataset}, indent=2) + "\n")
    for stem in replaced:
        for path in _part_files(tmp, stem):
            path.unlink(missing_ok=True)


def _assemble(tmp: Path, profile: str, runs: list[NotebookRun], commit: str, html: bool, base: str) -> None:
    """The parts of the notebooks just run (HTML copy, provenance row), then ``claims.json``,
    ``provenance.json``, ``README.md`` and ``summary.md`` (links relative to the project root,
    the report being at ``base``) rebuilt from every part in ``tmp``."""
    (tmp / "parts").mkdir(exist_ok=True)
    for run in runs:
        if html:
            (tmp / "html").mkdir(exist_ok=True)
            _html(tmp / "notebooks" / f"{run.name}.ipynb", tmp / "html" / f"{run.name}.html")
        (tmp / "parts" / f"{run.name}.json").write_text(json.dumps(part(run, tmp, commit), indent=2) + "\n")
    claims = merge_claims(tmp)
    (tmp / "claims.json").write_text(json.dumps(claims, indent=2) + "\n")
    parts = [json.loads(p.read_text()) for p in sorted((tmp / "parts").glob("*.json"))]
    prov = provenance(profile, parts)
    (tmp / "provenance.json").write_text(json.dumps(prov, indent=2) + "\n")
    figures = sorted((tmp / "figures").glob("*.png"))
    (tmp / "README.md").write_text(render_readme(prov, claims, figures))
    (tmp / "summary.md").write_text(render_summary(prov, claims, base))


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


#: Metric keys that measure the machine rather than the experiment (excluded from comparisons).
#: A claim's ``measured_text`` is its ``measured`` values as a sentence, which may round a timing
#: (09's bfloat16 speed ratio): ``measured`` is compared instead, without its timing keys.
VOLATILE = re.compile(r"seconds|(^|_)ms(_min|_max)?$|per_s$|gflops|gbs|bandwidth|over_keras|peak|timing"
                      r"|^measured_text$")


def comparable(value: Any) -> Any:
    """``value`` without the keys matching :data:`VOLATILE` (recursively)."""
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items() if not VOLATILE.search(k)}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    return value


def differences(a: Any, b: Any, where: str = "") -> list[str]:
    """Paths at which two JSON values differ (``where`` prefixes them)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{where}.{k}: only in {'first' if k in a else 'second'} run"
               for k in sorted(set(a) ^ set(b))]
        for k in sorted(set(a) & set(b)):
            out += differences(a[k], b[k], f"{where}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True))
                for d in differences(x, y, f"{where}[{i}]")]
    return [] if a == b else [f"{where}: {json.dumps(a)[:80]} != {json.dumps(b)[:80]}"]


def reproduce_check(
    profile: str = "ci", *, only: list[str] | None = None, keep: Path | None = None
) -> list[str]:
    """Run ``profile`` twice into temporary folders; return the differing metric/claim keys.

    Timing and provenance are excluded (:data:`VOLATILE`; ``provenance.json`` is not compared).
    ``keep``: write the first run there as a full report (with HTML) instead of a temporary folder.
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="xentlab-reproduce-") as tmp:
        runs = [
            run_reports(profile, only=only, out=keep, html=True) if keep is not None
            else run_reports(profile, only=only, out=Path(tmp) / "first", html=False),
            run_reports(profile, only=only, out=Path(tmp) / "second", html=False),
        ]
        files = sorted({p.relative_to(r) for r in runs for p in r.glob("metrics/*.json")})
        out = []
        for rel in [*files, Path("claims.json")]:
            a, b = (json.loads((r / rel).read_text()) if (r / rel).exists() else None
                    for r in runs)
            out += differences(comparable(a), comparable(b), str(rel))
        return out
