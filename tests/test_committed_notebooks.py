"""The committed notebooks are nbval's references: executed, parameterised, error-free."""

import json
import re

import pytest

from xentlab.config import NOTEBOOKS_DIR

NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS, f"no notebooks in {NOTEBOOKS_DIR}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_code_cell_was_executed(path):
    cells = json.loads(path.read_text())["cells"]
    unrun = [i for i, c in enumerate(cells) if c["cell_type"] == "code" and c["execution_count"] is None]
    assert not unrun, f"{path.name}: code cells {unrun} have no execution count (re-run `make notebooks`)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_structure(path):
    nb = json.loads(path.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    tagged = [i for i, c in enumerate(code) if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: needs exactly one cell tagged 'parameters'"
    errors = [o for c in code for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors, f"{path.name}: committed outputs contain errors"
    first = "".join(nb["cells"][0]["source"])
    assert first.startswith(f"# {path.stem[:2]} · "), f"{path.name}: must open with '# NN · title'"
    top = ["".join(c["source"]) for c in nb["cells"][:4] if c["cell_type"] == "markdown"]
    assert any(t.startswith("**TL;DR**") for t in top), f"{path.name}: needs a TL;DR at the top"
    assert "Back to the index" in "".join(nb["cells"][-1]["source"]), f"{path.name}: end with links"
    counts = [c["execution_count"] for c in code]
    assert counts == sorted(counts), f"{path.name}: cells were executed out of order"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_nbval_markers_are_exact(path):
    """nbval only honours a comment that is exactly the marker (`# NBVAL_IGNORE_OUTPUT`); a marker
    with a trailing note is silently ignored and the cell is compared after all."""
    for cell in json.loads(path.read_text())["cells"]:
        for line in "".join(cell["source"]).splitlines():
            if "NBVAL_" in line and line.lstrip().startswith("#"):
                assert line.strip().lstrip("#").strip().startswith("NBVAL_") and " " not in line.strip().lstrip("#").strip(), (
                    f"{path.name}: {line.strip()!r} is not an exact nbval marker; put the reason on the next line"
                )


#: What differs between machines and must not appear in an output nbval compares: CPU flags and
#: models, architectures, absolute paths, durations and rates. (``s elapsed`` is sanitized.)
MACHINE_SPECIFIC = re.compile(
    r"\b(avx\w*|amx_\w+|sse\d\w*|fma|Xeon|EPYC|Ryzen|Core\(TM\)|GenuineIntel|AuthenticAMD|x86_64|"
    r"aarch64)\b|/work/|/tmp/|/home/|/root/|\b\d+(\.\d+)?\s?(ms|µs|us|ns|seconds?|sec|min)\b|"
    r"\d+(\.\d+)?\s?s\b(?! elapsed)|GFLOP|GB/s|it/s")


def machine_specific_outputs(nb: dict) -> list[str]:
    """``"cell N: 'text'"`` for every machine-specific match (:data:`MACHINE_SPECIFIC`) in the
    outputs of code cells that nbval compares (not ``# NBVAL_IGNORE_OUTPUT`` / ``# NBVAL_SKIP``)."""
    found = []
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    for i, cell in enumerate(code):
        src = "".join(cell["source"])
        if "NBVAL_IGNORE_OUTPUT" in src or "NBVAL_SKIP" in src:
            continue
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            text = "".join(out.get("text", "")) + "".join(data.get("text/plain", "")) + "".join(
                data.get("text/markdown", ""))
            found += [f"cell {i}: {m.group(0)!r}" for m in MACHINE_SPECIFIC.finditer(text)]
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_compared_output_depends_on_the_machine(path):
    """A compared output holding CPU flags, paths or timings is red on every other machine."""
    found = machine_specific_outputs(json.loads(path.read_text()))
    assert not found, f"{path.name}: machine-specific output nbval compares (print it in an " \
        f"ignored cell and assert instead): {found}"


@pytest.mark.parametrize("planted", ["CPU features: avx2, avx512f, amx_bf16\n", "AMD EPYC 9R14\n",
                                     "wrote /tmp/x.json\n", "one step took 41.2 ms\n"])
def test_the_machine_specific_scan_catches_a_planted_print(planted):
    cell = {"cell_type": "code", "source": "print(x)", "outputs": [{"output_type": "stream",
                                                                  "name": "stdout", "text": planted}]}
    assert machine_specific_outputs({"cells": [cell]})
    ignored = dict(cell, source="# NBVAL_IGNORE_OUTPUT\nprint(x)")
    assert not machine_specific_outputs({"cells": [ignored]})


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_parses_every_parameter(path):
    """papermill silently drops a parameter whose line it cannot parse (e.g. an apostrophe in
    the comment); such a parameter could not be set by a profile."""
    import papermill

    cell = next(c for c in json.loads(path.read_text())["cells"]
                if "parameters" in c["metadata"].get("tags", []))
    assigned = [line.split("=")[0].strip() for line in "".join(cell["source"]).splitlines()
                if "=" in line and not line.lstrip().startswith("#")]
    assert list(papermill.inspect_notebook(str(path))) == assigned


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_setup_pins_onednn_before_tensorflow(path):
    """TensorFlow picks oneDNN or Eigen CPU kernels by CPU unless TF_ENABLE_ONEDNN_OPTS is set
    before it loads; the two print different digits (docs/glossary.md). The parameters cell comes
    first (papermill injects its overrides after it); the next code cell calls ``notebook.setup``
    with the parameters (checked before anything else) before its first TensorFlow or Keras
    import, so a kernel started by JupyterLab (no Makefile, no conftest) runs the kernels the
    committed outputs came from."""
    code = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    assert "parameters" in code[0]["metadata"].get("tags", []), f"{path.name}: parameters cell first"
    setup_cell = "".join(code[1]["source"])
    setup = setup_cell.find(f'notebook.setup("{path.stem}", globals(),')
    imports = [i for i in (setup_cell.find("import tensorflow"), setup_cell.find("import keras"),
                           setup_cell.find("from keras")) if i >= 0]
    assert 0 <= setup < min(imports, default=len(setup_cell)), (
        f"{path.name}: the Setup cell must call notebook.setup({path.stem!r}, globals(), ...) "
        "before importing TF")


def test_notebook_setup_applies_the_tensorflow_environment():
    from xentlab import notebook, runtime

    assert "set_tensorflow_environment()" in __import__("inspect").getsource(notebook.setup)
    assert runtime.TF_ENVIRONMENT["TF_ENABLE_ONEDNN_OPTS"] == "1"


def test_makefile_pins_onednn_unless_the_user_sets_it():
    makefile = (NOTEBOOKS_DIR.parent / "Makefile").read_text()
    assert "export TF_ENABLE_ONEDNN_OPTS ?= 1" in makefile


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_document_notebook_opens_with_its_excerpt(path):
    """A notebook that checks a document's claims shows, in its second cell, one of the excerpts
    ``xentlab.documents`` holds for that document (e.g. ``"003"`` or ``"003.multilabel"``), so the
    two cannot drift apart."""
    from xentlab import documents

    cells = json.loads(path.read_text())["cells"]
    from xentlab.claims import GUIDES

    docs = {claim_id.split(".")[0] for claim_id in _checked_ids(cells)} - set(GUIDES)
    if not docs:
        pytest.skip(f"{path.name} reproduces no document")
    assert len(docs) == 1, f"{path.name} checks claims of several documents: {sorted(docs)}"
    keys = [k for k in documents.EXCERPTS if k.split(".")[0] in docs]
    assert any(documents.excerpt_markdown(k) in "".join(cells[1]["source"]) for k in keys), (
        f"{path.name}: its second cell shows none of the excerpts {keys}")


def _relative_links(text):
    import re

    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if not target.startswith(("http://", "https://", "#", "mailto:")):
            yield target.split("#")[0]


def test_relative_links_resolve():
    """Links in README, the glossary and the notebooks' markdown point to files that exist."""
    from xentlab.config import PROJECT_ROOT

    pages = [PROJECT_ROOT / "README.md", PROJECT_ROOT / "docs" / "glossary.md"]
    broken = [f"{page.name}: {t}" for page in pages for t in _relative_links(page.read_text())
              if not (page.parent / t).exists()]
    for path in NOTEBOOKS:
        text = "".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"]
                       if c["cell_type"] == "markdown")
        broken += [f"{path.name}: {t}" for t in _relative_links(text) if not (path.parent / t).exists()]
    assert not broken, broken


def _checked_ids(cells: list[dict]) -> set[str]:
    """The claim ids a notebook records: string constants passed first to ``record.check``, and
    ``"<doc>.<slug>"`` constants it loops over (e.g. ``for name, claim_id in ((..., "002.x"), ...)``)."""
    import ast

    from xentlab import claims

    found = set()
    for c in cells:
        if c["cell_type"] != "code":
            continue
        src = "\n".join(line for line in "".join(c["source"]).splitlines()
                        if not line.lstrip().startswith(("%", "!")))
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in claims.CLAIMS:
                found.add(node.value)
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_claim_sections_are_numbered_headings(path):
    """A claim's ``section`` (in :data:`xentlab.claims.CLAIMS`) is the report's link anchor: it must
    be a heading of the notebook that checks the claim, and sections are numbered in one style
    ('## 1. Title'; Setup and Summary unnumbered)."""
    import re

    cells = json.loads(path.read_text())["cells"]
    headings = {line.lstrip("#").strip().replace("`", "") for c in cells if c["cell_type"] == "markdown"
                for line in "".join(c["source"]).splitlines() if line.startswith("##")}
    from xentlab import claims

    ids = _checked_ids(cells)
    missing = {claims.CLAIMS[i].section.replace("`", "") for i in ids} - headings
    assert not missing, f"{path.name}: claim sections that are no heading: {sorted(missing)}"
    top = [line[3:] for c in cells if c["cell_type"] == "markdown"
           for line in "".join(c["source"]).splitlines() if line.startswith("## ")]
    unnumbered = [t for t in top if not re.match(r"\d+\. ", t) and t not in {"Setup", "Summary", "Claims"}]
    assert not unnumbered, f"{path.name}: sections without a number: {unnumbered}"


def test_the_readmes_generated_sections_are_up_to_date():
    """The timing line, the decision table, the notebooks table and document 002's headline between
    the README's markers are what ``python -m xentlab readme`` writes from the committed reports,
    verbatim: no number in them is typed by hand (run ``make reports`` or ``python -m xentlab
    readme`` after a report)."""
    from xentlab import readme
    from xentlab.config import PROJECT_ROOT

    text = (PROJECT_ROOT / "README.md").read_text()
    assert readme.render(text) == text, "README's generated sections are stale: run python -m xentlab readme"
    guide = (PROJECT_ROOT / "reports" / "ci" / "decision_guide.md").read_text()
    assert guide.startswith("# Which cross-entropy should I use?")


def test_the_readme_is_short_and_its_prose_holds_no_number():
    """At most 15 KB; outside the generated sections, code and link targets, no number but a
    notebook's (``01``), a document's (``002``) or a version required (``Python 3.11``,
    ``TensorFlow 2``): every measured number is generated."""
    import re

    from xentlab.config import PROJECT_ROOT

    text = (PROJECT_ROOT / "README.md").read_text()
    assert len(text.encode()) <= 15 * 1024
    prose = re.sub(r"<!-- ([a-z-]+):begin -->.*?<!-- \1:end -->", "", text, flags=re.S)
    prose = re.sub(r"```.*?```|`[^`]*`|\]\([^)]*\)", "", prose, flags=re.S)  # code, link targets
    prose = re.sub(r"\b(Python|TensorFlow|Keras) \d[\d.]*", "", prose)  # versions required
    numbers = [n for n in re.findall(r"\d[\d.,]*\d|\d", prose) if not re.fullmatch(r"0\d|00\d", n)]
    assert not numbers, f"numbers typed into the README's prose: {numbers}"


def test_readme_render_replaces_between_markers_and_refuses_missing_ones():
    from xentlab import readme

    text = "a\n<!-- x:begin -->\nold\n<!-- x:end -->\nb"
    assert readme.render(text, {"x": lambda: "new"}) == "a\n<!-- x:begin -->\nnew\n<!-- x:end -->\nb"
    with pytest.raises(ValueError, match="lacks the markers"):
        readme.render("no markers", {"x": lambda: "new"})


def test_notebook_table_counts_each_notebooks_verdicts(tmp_path):
    from xentlab import readme

    nbs, reps = tmp_path / "notebooks", tmp_path / "reports"
    nbs.mkdir()
    (nbs / "01_a.ipynb").write_text(json.dumps({"cells": [{"source": ["# 01 · Why mean?"]}]}))
    for profile, verdicts in (("ci", ["reproduced", "untested"]), ("paper", ["reproduced", "refuted"])):
        (reps / profile).mkdir(parents=True)
        (reps / profile / "claims.json").write_text(json.dumps(
            [{"notebook": "01_a", "source": "000_x.txt", "verdict": v} for v in verdicts]))
    (reps / "ci" / "provenance.json").write_text(json.dumps({"notebooks": [{"name": "01_a", "seconds": 95.0}]}))
    row = readme.notebook_table(nbs, reps).splitlines()[2]
    assert row == ("| [01_a](notebooks/01_a.ipynb) | Why mean? | `000_…` | 2 min | [1 ✅ · 1 ⏸️](reports/ci/README.md) | "
                   "[1 ✅ · 1 ❌](reports/paper/README.md) |")
    (reps / "ci" / "provenance.json").write_text(json.dumps(
        {"notebooks": [{"name": "01_a", "seconds": 95.0, "alone": False}]}))
    assert "| 2 min (shared) |" in readme.notebook_table(nbs, reps)


def test_readme_timing_and_headline_come_from_the_reports(tmp_path):
    from xentlab import readme

    reps = tmp_path / "reports"
    assert "make reports" in readme.timing(reps) and "--only 03" in readme.headline(reps)
    (reps / "ci").mkdir(parents=True)
    eigen, onednn = {"onednn": False}, {"onednn": True}
    (reps / "ci" / "provenance.json").write_text(json.dumps({
        "processor": "Some CPU", "machine": "x86_64, 2 CPUs, Linux",
        "notebooks": [{"name": "01_a", "seconds": 100.0, "kernels": onednn},
                      {"name": "02_b", "seconds": 260.0, "kernels": eigen}]}))
    assert readme.timing(reps).startswith(
        "The committed `ci` report's 2 notebooks add up to 6 min, on Some CPU (x86_64, 2 CPUs, Linux, both kernel sets)")
    prov = json.loads((reps / "ci" / "provenance.json").read_text())
    prov["notebooks"][0]["alone"] = False
    (reps / "ci" / "provenance.json").write_text(json.dumps(prov))
    assert readme.timing(reps).startswith("The committed `ci` report's 2 notebooks add up to 6 min; 1 of them ran beside")
    assert "one run made them all" not in readme.timing(reps)
    prov["notebooks"][0]["run"] = {"started_utc": "2026-01-01 10:00:00", "jobs": 2, "seconds": 300.0}
    (reps / "ci" / "provenance.json").write_text(json.dumps(prov))  # a part from before runs were recorded
    assert "one run made them all" not in readme.timing(reps)
    prov["notebooks"][1]["run"] = dict(prov["notebooks"][0]["run"])
    (reps / "ci" / "provenance.json").write_text(json.dumps(prov))
    assert "include a shared CPU; one run made them all, in 5.0 min (`--jobs 2`), on Some CPU" in readme.timing(reps)
    prov["notebooks"][1]["run"] = {"started_utc": "2026-01-02 10:00:00", "jobs": 1, "seconds": 260.0}
    (reps / "ci" / "provenance.json").write_text(json.dumps(prov))  # parts of two runs: no run time
    assert "one run made them all" not in readme.timing(reps)
    run = {"dataset": "mnist", "steps": 20000, "batch_size": 128}
    claims = [
        {"id": "002.manual-collapses", "expected": {"test_accuracy": 0.1032}, "verdict": "reproduced",
         "measured": {**run, "oneDNN": {"test_accuracy": 0.0982, "zero_gradient_fraction": 0.99},
                      "Eigen": {"test_accuracy": 0.1135, "zero_gradient_fraction": 0.0}}},
        {"id": "002.log-softmax-trains", "expected": {"test_accuracy": 0.987}, "verdict": "partly",
         "measured": {**run, "test_accuracy": 0.9912}},
        {"id": "002.fused-trains", "expected": {"test_accuracy": 0.987}, "verdict": "reproduced",
         "measured": {**run, "test_accuracy": 0.9901}}]
    (reps / "paper").mkdir()
    (reps / "paper" / "claims.json").write_text(json.dumps(claims))
    lines = readme.headline(reps).splitlines()
    assert lines[0].startswith("Test accuracy after 20,000 steps of batch 128 on `mnist`")
    assert lines[4] == ("| (1) `reduce_sum(-y * log(softmax + 1e-10))` | 0.1032 | oneDNN: 0.0982 (99.0% of updates "
                        "with an exactly zero gradient); Eigen: 0.1135 (0.0% of updates with an exactly zero "
                        "gradient) | ✅ reproduced |")
    assert lines[5] == "| (2) `log_softmax` | 0.987 | 0.9912 | ⚠️ partly |"


def test_readme_links_every_notebook():
    from xentlab.config import PROJECT_ROOT

    readme = (PROJECT_ROOT / "README.md").read_text()
    missing = [p.name for p in NOTEBOOKS if f"](notebooks/{p.name})" not in readme]
    assert not missing, f"README's notebook table does not link {missing}"


def test_every_registered_claim_is_checked_by_exactly_one_notebook():
    from xentlab import claims

    owners: dict[str, list[str]] = {}
    for path in NOTEBOOKS:
        for claim_id in _checked_ids(json.loads(path.read_text())["cells"]):
            owners.setdefault(claim_id, []).append(path.stem)
    assert set(owners) == set(claims.CLAIMS), sorted(set(claims.CLAIMS) ^ set(owners))
    assert all(len(v) == 1 for v in owners.values()), {k: v for k, v in owners.items() if len(v) > 1}


#: Terms a notebook may use that a reader may not know, each with the glossary heading (its anchor)
#: that defines it. A term that a notebook uses and whose heading is missing fails the test below.
GLOSSARY_TERMS = {
    "logit": "logit", "one-hot": "one-hot-soft-label-label-smoothing",
    "soft label": "one-hot-soft-label-label-smoothing", "label smoothing": "one-hot-soft-label-label-smoothing",
    "nats": "nat-decade", "decades": "nat-decade", "per-example": "per-example-loss-reduction",
    "ulp": "ulp", "subnormal": "underflow-subnormal-flush-to-zero", "flush": "underflow-subnormal-flush-to-zero",
    "logit gap": "logit-gap-saturated-softmax", "saturated": "logit-gap-saturated-softmax",
    "logsumexp": "log-sum-exp-logsumexp", "log-sum-exp": "log-sum-exp-logsumexp", "oracle": "oracle",
    "clip": "clipping-epsilon-ε-renormalisation", "renormalis": "clipping-epsilon-ε-renormalisation",
    "oneDNN": "onednn-and-eigen-kernels", "kernel set": "onednn-and-eigen-kernels",
    "op determinism": "op-determinism", "Grappler": "grappler", "XLA": "xla", "fused": "fused-kernel",
    "composite": "composite", "traced graph": "traced-graph-constant-folding",
    "constant folding": "traced-graph-constant-folding", "subgradient": "subgradient", "focal": "focal-loss",
    "zero gradient": "zero-gradient-fraction-gradient-norm", "gradient norm": "zero-gradient-fraction-gradient-norm",
    "floor": "floor-and-bandwidth-bound", "bandwidth": "floor-and-bandwidth-bound",
    "multi-hot": "multi-hot-label-exact-set-accuracy-macro-f1-decision-threshold",
    "macro F1": "multi-hot-label-exact-set-accuracy-macro-f1-decision-threshold",
    "entry point": "entry-point", "mixed precision": "mixed-precision-dtype-policy-bfloat16",
    "bfloat16": "mixed-precision-dtype-policy-bfloat16", "loss scal": "loss-scaling",
    "papermill": "papermill", "nbval": "nbval", "profile": "profile", "verdict": "verdict",
    "sum_over_batch_size": "per-example-loss-reduction", "ignore_class": "per-example-loss-reduction",
    "_keras_logits": "clipping-epsilon-ε-renormalisation", "broadcast": "broadcasting",
    "dropout": "dropout-keep_prob", "keep_prob": "dropout-keep_prob", "sampled softmax": "sampled-softmax",
    "relative error": "relative-error", "KERAS_BACKEND": "keras-backend",
    "materialis": "materialised-logits-chunked-cross-entropy-custom-gradient",
    "custom_gradient": "materialised-logits-chunked-cross-entropy-custom-gradient",
}


def test_the_glossary_defines_every_term_the_notebooks_use():
    """Each term of :data:`GLOSSARY_TERMS` that a committed notebook's text uses (its markdown or
    what it prints) has its heading in docs/glossary.md; the failure lists the terms it lacks."""
    import re

    from xentlab.config import PROJECT_ROOT
    from xentlab.reports import heading_slug

    glossary = (PROJECT_ROOT / "docs" / "glossary.md").read_text()
    anchors = {heading_slug(line[3:]) for line in glossary.splitlines() if line.startswith("## ")}
    text = ""
    for path in NOTEBOOKS:
        for c in json.loads(path.read_text())["cells"]:
            text += "".join(c["source"]) if c["cell_type"] == "markdown" else ""
            for o in c.get("outputs", []):
                text += "".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/markdown", ""))
    used = {t for t in GLOSSARY_TERMS if re.search(r"\b" + re.escape(t), text, re.IGNORECASE)}
    lacking = sorted(t for t in used if GLOSSARY_TERMS[t] not in anchors)
    assert not lacking, f"terms the notebooks use and docs/glossary.md lacks: {lacking}"


@pytest.mark.parametrize("profile", ["ci", "paper"])
def test_no_ledger_cell_shows_json(profile):
    """Every expected and measured cell of a committed report's ledger reads as text
    (``expected_text`` / ``measured_text``), not as a JSON object."""
    from xentlab.config import REPORTS_DIR

    rows = [line for line in (REPORTS_DIR / profile / "README.md").read_text().splitlines()
            if line.startswith("| [`")]
    assert rows
    shown = [line for line in rows if '{"' in line or '": ' in line or '["' in line]
    assert not shown, shown[:3]
