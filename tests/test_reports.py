"""The papermill runner on tiny test notebooks: success, failure, atomicity, bad input."""

import json
import os
from pathlib import Path

import nbformat
import papermill
import pytest

from xentlab import reports
from xentlab.config import NOTEBOOKS_DIR
from xentlab.profiles import PROFILES

SETUP = "import os\nfrom xentlab import record\nrecord.start({name!r})\nrecord.metric('launcher', os.getppid())"
OK_BODY = """\
if not isinstance(n, int) or n <= 0:
    raise ValueError(f"n must be a positive int, got {n!r}")
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
record.metric("n", n)
record.claim("999.n-positive", "999_test.txt", "n is positive", "> 0", n, record.verdict(n > 0),
             measured_text=f"n = {n}", section="Check")
fig, ax = plt.subplots()
ax.plot(range(n))
record.save_figure(fig, "line")
print("n =", n)
"""


def make_notebook(folder, name, body, params="n = 2"):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    param_cell = nbformat.v4.new_code_cell(params)
    param_cell.metadata["tags"] = ["parameters"]
    nb.cells = [
        nbformat.v4.new_markdown_cell(f"# {name}"),
        nbformat.v4.new_code_cell(SETUP.format(name=name)),
        param_cell,
        nbformat.v4.new_code_cell(body),
    ]
    nbformat.write(nb, folder / f"{name}.ipynb")


@pytest.fixture
def notebooks(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    make_notebook(folder, "01_ok", OK_BODY)
    make_notebook(folder, "02_fail", "print('before')\n1 / 0")
    return folder


SMOKE = {"smoke": {"01_ok": {"n": 3}}, "ci": {}}


@pytest.mark.slow
def test_smoke_profile_writes_a_complete_report(notebooks, tmp_path):
    out = reports.run_reports("smoke", only=["01"], out=tmp_path / "rep", notebooks_dir=notebooks,
                              profiles=SMOKE)
    claims = json.loads((out / "claims.json").read_text())
    assert [c["id"] for c in claims] == ["999.n-positive"]
    assert claims[0]["notebook"] == "01_ok" and claims[0]["measured"] == 3
    assert json.loads((out / "metrics" / "01_ok.json").read_text())["n"] == 3
    assert (out / "figures" / "01_ok_line.png").exists()
    assert not (out / "html").exists()  # the site shows the executed notebooks
    assert (out / "notebooks" / "01_ok.ipynb").exists()
    readme = (out / "README.md").read_text()
    assert "## Claims ledger" in readme and "999.n-positive" in readme and "TensorFlow" in readme
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["profile"] == "smoke" and prov["notebooks"][0]["parameters"] == {"n": 3}
    summary = (out / "summary.md").read_text()
    assert "[`999.n-positive`](notebooks/01_ok.ipynb#check)" in summary


@pytest.mark.slow
def test_failure_keeps_previous_report_and_the_failed_notebook(notebooks, tmp_path, capsys):
    out = tmp_path / "rep"
    out.mkdir()
    (out / "README.md").write_text("previous report")
    with pytest.raises(reports.ReportError) as err:
        reports.run_reports("ci", out=out, notebooks_dir=notebooks, profiles=SMOKE)
    message = str(err.value)
    assert "02_fail" in message and "ZeroDivisionError" in message and "cell" in message
    assert (out / "README.md").read_text() == "previous report"
    assert (tmp_path / "rep.failed" / "notebooks" / "02_fail.ipynb").exists()
    assert not list(tmp_path.glob(".tmp-*"))
    assert "[1/2] 01_ok done in" in capsys.readouterr().out


@pytest.mark.slow
def test_wrongly_typed_parameter_fails_with_the_notebooks_message(notebooks, tmp_path):
    profiles = {"ci": {"01_ok": {"n": "three"}}}
    with pytest.raises(reports.ReportError, match="n must be a positive int"):
        reports.run_reports("ci", only=["01_ok"], out=tmp_path / "rep", notebooks_dir=notebooks,
                            profiles=profiles)
    assert not (tmp_path / "rep").exists()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"profile": "nightly"}, "unknown profile"),
        ({"only": ["07"]}, "unknown notebook"),
        ({"dataset": "cifar"}, "unknown dataset"),
    ],
)
def test_bad_arguments_fail_before_running(notebooks, tmp_path, kwargs, match):
    kwargs = {"profile": "ci", **kwargs}
    with pytest.raises(ValueError, match=match):
        reports.run_reports(out=tmp_path / "rep", notebooks_dir=notebooks, profiles=SMOKE,
                            **kwargs)
    assert not list(tmp_path.glob("rep*"))


def test_profile_parameter_must_exist_in_the_notebook(notebooks, tmp_path):
    with pytest.raises(ValueError, match="no such parameter"):
        reports.run_reports("ci", out=tmp_path / "rep", notebooks_dir=notebooks,
                            profiles={"ci": {"01_ok": {"steps": 5}}})


def test_every_profile_parameter_is_declared_by_its_notebook():
    for profile, per_notebook in PROFILES.items():
        for stem, params in per_notebook.items():
            path = NOTEBOOKS_DIR / f"{stem}.ipynb"
            assert path.exists(), f"profile {profile} names missing notebook {stem}"
            declared = papermill.inspect_notebook(str(path))
            assert set(params) <= set(declared), f"{profile}/{stem}: {set(params) - set(declared)}"


def test_readme_ledger_groups_by_document_and_flags_refuted():
    claims = [
        {"id": "001.a", "source": "001_x.txt", "statement": "s", "expected": 1, "measured": 2,
         "measured_text": "two, rounded", "verdict": "refuted", "notebook": "02_n", "section": "Where they part"},
        {"id": "000.b", "source": "000_y.txt", "statement": "t", "expected": 1, "measured": 1,
         "verdict": "reproduced", "notebook": "01_n", "section": ""},
        {"id": "002.c", "source": "002_z.txt", "statement": "u", "expected": 1, "measured": 1,
         "verdict": "untested", "reason": "budget: 300 of 20,000 steps", "notebook": "03_n",
         "section": ""},
    ]
    prov = {"profile": "ci", "created_utc": "now", "git_commit": "abc", "python": "3.11",
            "tensorflow": "2", "keras": "3", "numpy": "2", "machine": "m", "processor": "p",
            "datasets": {}, "notebooks": []}
    text = reports.render_readme(prov, claims, [])
    assert text.index("000_y.txt") < text.index("001_x.txt")
    assert "❌ **refuted**" in text and "[`001.a`](notebooks/02_n.ipynb#where-they-part)" in text and "| two, rounded |" in text
    assert "1 reproduced, 0 partly true, 1 refuted, 1 untested" in text
    assert "⏸️ untested (budget: 300 of 20,000 steps) |" in text


def test_readme_ledger_puts_cited_sources_after_the_documents():
    claims = [
        {"id": "guide.a", "source": "Mixed precision", "citation": "https://example.org/mp",
         "statement": "s", "expected": 1, "measured": 1, "measured_text": "m", "verdict": "reproduced",
         "notebook": "09_n", "section": "1. `tf` first"},
        {"id": "004.b", "source": "004_y.txt", "statement": "t", "expected": 1, "measured": 1,
         "measured_text": "m", "verdict": "reproduced", "notebook": "05_n", "section": ""},
    ]
    prov = {"profile": "ci", "created_utc": "now", "git_commit": "abc", "python": "3.11",
            "tensorflow": "2", "keras": "3", "numpy": "2", "machine": "m", "processor": "p",
            "datasets": {}, "notebooks": []}
    text = reports.render_readme(prov, claims, [])
    assert text.index("### Document `004_y.txt`") < text.index("### [Mixed precision](https://example.org/mp)")
    assert "(notebooks/09_n.ipynb#1-tf-first)" in text


def test_summary_lists_runs_and_sets_each_claim_beside_the_source():
    claims = [
        {"id": "002.a", "source": "002_x.txt", "statement": "trains to 0.987", "verdict": "partly",
         "expected": {"test_accuracy": 0.987, "tolerance": 0.01}, "measured": {"test_accuracy": 0.97},
         "measured_text": "test accuracy 0.970 after 20,000 steps", "notebook": "03_n",
         "section": "4. The `run`"},
        {"id": "002.b", "source": "002_x.txt", "statement": "s", "expected": 1, "measured": {"x": 1},
         "verdict": "untested", "reason": "budget: 300 steps", "notebook": "03_n", "section": ""},
    ]
    row = {"name": "03_n", "seconds": 4000.0, "parameters": {"steps": 20000}, "git_commit": "abcdef123456",
           "processor": "Some CPU", "cpu_flags": ["avx2", "avx512f", "amx_bf16"],
           "dataset": {"name": "mnist"}}
    eigen = {"onednn": False, "TF_ENABLE_ONEDNN_OPTS": "0", "deciding_flags": [], "onednn_default": False}
    prov = {"profile": "paper", "tensorflow": "2", "keras": "3",
            "notebooks": [row, dict(row, name="01_n", seconds=61.0, parameters={}, kernels=eigen)]}
    text = reports.render_summary(prov, claims)
    assert text.startswith("# Summary of the `paper` report")
    assert "2 claims: 0 reproduced, 1 partly, 0 refuted, 1 untested" in text
    assert "| [03_n](notebooks/03_n.ipynb) | steps 20000 | mnist | 1 h 7 min | Some CPU (kernels not recorded) | `abcdef1` |" in text
    assert "| defaults | mnist | 61 s | Some CPU (Eigen kernels) |" in text
    assert ("| [`002.a`](notebooks/03_n.ipynb#4-the-run): trains to 0.987 | test accuracy 0.987, "
            "tolerance 0.01 | test accuracy 0.970 after 20,000 steps | ⚠️ **partly** |") in text
    assert "| x 1 | ⏸️ untested (budget: 300 steps) |" in text


def test_kernels_text_names_the_kernel_set_and_why():
    on = {"kernels": {"onednn": True, "TF_ENABLE_ONEDNN_OPTS": None,
                      "deciding_flags": ["avx512_vnni", "avx512_bf16"], "onednn_default": True}}
    assert reports.kernels_text(on) == ("oneDNN (TensorFlow's default; the default here: oneDNN, "
                                        "from avx512_vnni, avx512_bf16)")
    off = {"kernels": {"onednn": False, "TF_ENABLE_ONEDNN_OPTS": "0", "deciding_flags": [],
                       "onednn_default": False}}
    assert reports.kernels_text(off) == ("Eigen (TF_ENABLE_ONEDNN_OPTS=0; the default here: Eigen, "
                                         "from none of the deciding flags)")
    assert reports.kernels_text({}, short=True) == "kernels not recorded"


def test_differences_name_the_keys_and_skip_timing():
    a = {"acc": 0.5, "seconds": 1.0, "curve": [1, 2], "timing": {"ms": 3}}
    b = {"acc": 0.6, "seconds": 2.0, "curve": [1, 3], "timing": {"ms": 4}, "extra": 1}
    diffs = reports.differences(reports.comparable(a), reports.comparable(b), "m.json")
    assert diffs == ["m.json.extra: only in second run", "m.json.acc: 0.5 != 0.6",
                     "m.json.curve[1]: 2 != 3"]
    assert reports.differences(reports.comparable(a), reports.comparable(dict(a, seconds=9))) == []
    claim = {"id": "guide.x", "measured": {"ratio_timing": 0.75, "flags": "amx"}, "measured_text": "0.75x"}
    assert reports.comparable(claim) == {"id": "guide.x", "measured": {"flags": "amx"}}
    assert reports.comparable({"ms_min": 1.0, "ms_max": 2.0, "msg": "kept"}) == {"msg": "kept"}


@pytest.mark.slow
def test_reproduce_check_on_a_deterministic_notebook(notebooks, monkeypatch):
    monkeypatch.setattr("xentlab.reports.run.discover", lambda notebooks_dir=None: [notebooks / "01_ok.ipynb"])
    assert reports.reproduce_check("ci") == []


@pytest.mark.slow
def test_relative_out_folder_keeps_the_records(notebooks, tmp_path, monkeypatch):
    """The kernels run in the notebooks' folder: a relative --out must still collect records."""
    monkeypatch.chdir(tmp_path)
    out = reports.run_reports("smoke", only=["01"], out=Path("rel"), notebooks_dir=notebooks,
                              profiles=SMOKE)
    assert out == tmp_path / "rel"
    assert [c["id"] for c in json.loads((out / "claims.json").read_text())] == ["999.n-positive"]


@pytest.mark.slow
def test_failure_while_assembling_keeps_the_previous_report(notebooks, tmp_path, monkeypatch):
    out = tmp_path / "rep"
    out.mkdir()
    (out / "README.md").write_text("previous report")

    def broken(*args):
        raise KeyError("statement")

    monkeypatch.setattr("xentlab.reports.run.render_readme", broken)
    with pytest.raises(KeyError):
        reports.run_reports("smoke", only=["01"], out=out, notebooks_dir=notebooks,
                            profiles=SMOKE)
    assert (out / "README.md").read_text() == "previous report"
    assert (tmp_path / "rep.failed" / "notebooks" / "01_ok.ipynb").exists()
    assert not list(tmp_path.glob(".tmp-*"))


@pytest.fixture
def two_notebooks(tmp_path):
    folder = tmp_path / "notebooks2"
    folder.mkdir()
    make_notebook(folder, "01_ok", OK_BODY)
    make_notebook(folder, "03_ok", OK_BODY.replace("999.n-positive", "998.n-positive"))
    make_notebook(folder, "04_fail", "1 / 0")
    return folder


@pytest.mark.slow
def test_only_replaces_that_notebooks_part_and_keeps_the_others(two_notebooks, tmp_path):
    out = tmp_path / "rep"
    reports.run_reports("ci", only=["01", "03"], out=out, notebooks_dir=two_notebooks, profiles={"ci": {}})
    kept = (out / "notebooks" / "01_ok.ipynb").read_text()
    profiles = {"ci": {"03_ok": {"n": 5}}}
    reports.run_reports("ci", only=["03"], out=out, notebooks_dir=two_notebooks, profiles=profiles)
    assert (out / "notebooks" / "01_ok.ipynb").read_text() == kept  # not re-run
    claims = {c["id"]: c for c in json.loads((out / "claims.json").read_text())}
    assert claims["999.n-positive"]["measured"] == 2 and claims["998.n-positive"]["measured"] == 5
    prov = json.loads((out / "provenance.json").read_text())
    rows = {r["name"]: r for r in prov["notebooks"]}
    assert rows["01_ok"]["parameters"] == {} and rows["03_ok"]["parameters"] == {"n": 5}
    assert {"git_commit", "created_utc", "cpu_flags", "processor"} <= set(rows["03_ok"])
    readme = (out / "README.md").read_text()
    assert "999.n-positive" in readme and "998.n-positive" in readme and "| CPU flags |" in readme
    # a failing notebook leaves every part as it was
    before = {f: (out / f).read_text() for f in ("claims.json", "provenance.json", "README.md")}
    with pytest.raises(reports.ReportError):
        reports.run_reports("ci", only=["04"], out=out, notebooks_dir=two_notebooks, profiles=profiles)
    assert {f: (out / f).read_text() for f in before} == before
    assert not (out / "notebooks" / "04_fail.ipynb").exists()


@pytest.mark.slow
def test_jobs_run_notebooks_side_by_side_and_the_timed_ones_alone(two_notebooks, tmp_path, capsys):
    make_notebook(two_notebooks, "02_ok", OK_BODY.replace("999.n-positive", "997.n-positive"))
    out = tmp_path / "rep"
    reports.run_reports("ci", only=["01", "02", "03"], out=out, notebooks_dir=two_notebooks,
                        profiles={"ci": {"01_ok": {"n": 4}}}, jobs=2, timed=frozenset({"02_ok"}))
    rows = {r["name"]: r for r in json.loads((out / "provenance.json").read_text())["notebooks"]}
    assert {n: r["alone"] for n, r in rows.items()} == {"01_ok": False, "02_ok": True, "03_ok": False}
    assert rows["01_ok"]["parameters"] == {"n": 4}
    assert {c["id"] for c in json.loads((out / "claims.json").read_text())} == {
        "997.n-positive", "998.n-positive", "999.n-positive"}
    # which process started each notebook's kernel: the shared ones a worker each, the timed one this one
    launcher = {n: json.loads((out / "metrics" / f"{n}.json").read_text())["launcher"] for n in rows}
    assert launcher["02_ok"] == os.getpid() and os.getpid() not in (launcher["01_ok"], launcher["03_ok"])
    assert launcher["01_ok"] != launcher["03_ok"]
    printed = capsys.readouterr().out
    assert "[1/3] 01_ok ... (beside others)" in printed and "[3/3] 03_ok ... (beside others)" in printed
    assert printed.rindex("03_ok done in") < printed.index("[2/3] 02_ok ...")
    # every part names the one run that made it: its jobs and its wall-clock time
    run = rows["01_ok"]["run"]
    assert all(r["run"] == run for r in rows.values()) and run["jobs"] == 2
    assert run["seconds"] >= max(r["seconds"] for r in rows.values())
    reports.run_reports("ci", only=["01"], out=out, notebooks_dir=two_notebooks, profiles=SMOKE)
    rows = {r["name"]: r for r in json.loads((out / "provenance.json").read_text())["notebooks"]}
    assert rows["01_ok"]["run"]["jobs"] == 1 and rows["02_ok"]["run"] == run


@pytest.mark.slow
def test_after_a_failure_beside_others_no_notebook_starts_and_the_report_is_kept(two_notebooks, tmp_path, capsys):
    make_notebook(two_notebooks, "05_slow", "import time\ntime.sleep(8)")
    make_notebook(two_notebooks, "06_never", "print('ran')")
    out = tmp_path / "rep"
    out.mkdir()
    (out / "README.md").write_text("previous report")
    with pytest.raises(reports.ReportError, match="04_fail: cell .* ZeroDivisionError") as err:
        reports.run_reports("ci", only=["04", "05", "06"], out=out, notebooks_dir=two_notebooks,
                            profiles={"ci": {}}, jobs=2)
    assert err.value.notebook == "04_fail"
    failed = tmp_path / "rep.failed" / "notebooks"
    assert str(failed / "04_fail.ipynb") in str(err.value) and (failed / "04_fail.ipynb").exists()
    assert (failed / "05_slow.ipynb").exists() and not (failed / "06_never.ipynb").exists()
    assert "[1/3] 04_fail failed; waiting for 05_slow" in capsys.readouterr().out
    assert (out / "README.md").read_text() == "previous report"


def test_an_error_outside_a_cell_names_its_notebook(notebooks, tmp_path, monkeypatch):
    def dead_kernel(*args):
        raise RuntimeError("Kernel died before replying to kernel_info")

    monkeypatch.setattr("xentlab.reports.run._execute", dead_kernel)
    with pytest.raises(reports.ReportError, match="01_ok: RuntimeError: Kernel died") as err:
        reports.run_reports("ci", only=["01"], out=tmp_path / "rep", notebooks_dir=notebooks, profiles=SMOKE)
    assert err.value.notebook == "01_ok"


def test_jobs_below_one_fail_before_running(notebooks, tmp_path):
    with pytest.raises(ValueError, match="jobs must be at least 1"):
        reports.run_reports("ci", out=tmp_path / "rep", notebooks_dir=notebooks, profiles=SMOKE, jobs=0)


def test_every_notebook_whose_claims_rest_on_times_or_memory_runs_alone():
    from xentlab.profiles import TIMED
    from xentlab.reports import comparable

    assert TIMED <= {nb.stem for nb in reports.discover()}
    claims = json.loads((Path(NOTEBOOKS_DIR).parent / "reports" / "ci" / "claims.json").read_text())
    timed_claims = {c["notebook"] for c in claims if comparable(c.get("measured")) != c.get("measured")}
    assert timed_claims and timed_claims <= TIMED, timed_claims - TIMED


def test_relink_rewrites_relative_links_for_the_reports_folder(tmp_path):
    src, dest = tmp_path / "notebooks", tmp_path / "reports" / "ci" / "notebooks"
    text = ("See the [glossary](../docs/glossary.md#ulp), [02](02_b.ipynb), [a site](https://x.org/a.md), "
            "[here](#top) and [the README](../README.md).")
    assert reports.relink(text, src, dest) == (
        "See the [glossary](../../../docs/glossary.md#ulp), [02](02_b.ipynb), [a site](https://x.org/a.md), "
        "[here](#top) and [the README](../../../README.md).")


def test_rebuild_rewrites_the_reports_files_from_its_parts(tmp_path):
    """``rebuild`` regenerates claims.json, provenance.json, README.md and summary.md from parts."""
    run = tmp_path / "rep"
    for sub in ("claims", "parts"):
        (run / sub).mkdir(parents=True)
    claim = {"id": "999.a", "source": "999_x.txt", "statement": "s", "expected": 1, "measured": 1,
             "measured_text": "m", "verdict": "reproduced", "notebook": "01_ok", "section": "Check"}
    (run / "claims" / "01_ok.json").write_text(json.dumps([claim]))
    part = {"name": "01_ok", "seconds": 3.0, "parameters": {}, "git_commit": "abc", "created_utc": "t",
            "python": "3.11", "tensorflow": "2", "keras": "3", "numpy": "2", "machine": "m",
            "processor": "p", "cpu_flags": []}
    (run / "parts" / "01_ok.json").write_text(json.dumps(part))
    reports.rebuild(run, "ci")
    assert json.loads((run / "claims.json").read_text()) == [claim]
    assert "[`999.a`](notebooks/01_ok.ipynb#check)" in (run / "README.md").read_text()
    assert (run / "summary.md").read_text().startswith("# Summary of the `ci` report")
    assert json.loads((run / "provenance.json").read_text())["notebooks"][0]["name"] == "01_ok"


def test_a_ledger_cell_is_one_line_cut_at_a_space():
    from xentlab.reports.render import cell

    assert cell("a | b\nc") == "a \\| b c"
    assert cell("one two three four", 12) == "one two …"
    assert len(cell("word " * 40, 50)) <= 50
