"""xentlab.record writes claims, metrics and figures under the run folder."""

import json
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest

from xentlab import record
from xentlab.config import RUN_DIR_ENV


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(RUN_DIR_ENV, str(tmp_path))
    record.start("99_test")
    return tmp_path


def test_claim_is_written_and_replaced_by_id(run_dir):
    record.claim("001.same-value", "001_x.txt", "both give 16.478533", 16.478533,
                 np.float32(16.478533), record.verdict(True), measured_text="16.478533")
    record.claim("001.same-value", "001_x.txt", "both give 16.478533", 16.478533, 1.0, "refuted",
                 measured_text="1.0")
    claims = json.loads((run_dir / "claims" / "99_test.json").read_text())
    assert len(claims) == 1 and claims[0]["verdict"] == "refuted"
    assert claims[0]["notebook"] == "99_test" and claims[0]["measured_text"] == "1.0"


def test_bad_claims_are_rejected(run_dir):
    with pytest.raises(ValueError, match="verdict must be one of"):
        record.claim("001.x", "s", "st", 1, 1, "true", measured_text="1")
    with pytest.raises(ValueError, match="claim id"):
        record.claim("same value", "s", "st", 1, 1, "reproduced", measured_text="1")
    with pytest.raises(ValueError, match="measured_text"):
        record.claim("001.x", "s", "st", 1, 1, "reproduced", measured_text=" ")
    with pytest.raises(ValueError, match="citation"):
        record.claim("guide.x", "A guide", "st", 1, 1, "reproduced", measured_text="1")
    with pytest.raises(ValueError, match="citation"):
        record.claim("001.x", "s", "st", 1, 1, "reproduced", measured_text="1", citation="https://a")


def test_guide_claim_keeps_its_citation(run_dir):
    record.claim("guide.float32-softmax", "Mixed precision guide", "st", 1, 1, "reproduced",
                 measured_text="1", citation="https://example.org/guide")
    (entry,) = record.claims()
    assert entry["citation"] == "https://example.org/guide" and entry["source"] == "Mixed precision guide"


def test_verdict_rule():
    assert record.verdict(True) == "reproduced"
    assert record.verdict(False) == "refuted"
    assert record.verdict(False, partly=True) == "partly"


def test_metrics_convert_numpy_and_non_finite(run_dir):
    record.metric("acc", np.float32(0.5))
    record.metric("curve", np.array([1.0, math.inf, math.nan]))
    metrics = json.loads((run_dir / "metrics" / "99_test.json").read_text())
    assert metrics == {"acc": 0.5, "curve": [1.0, "inf", "nan"]}


def test_start_clears_previous_records(run_dir):
    record.metric("a", 1)
    record.start("99_test")
    record.metric("b", 2)
    assert json.loads((run_dir / "metrics" / "99_test.json").read_text()) == {"b": 2}


def test_save_figure(run_dir):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    path = record.save_figure(fig, "line")
    plt.close(fig)
    assert path == run_dir / "figures" / "99_test_line.png" and path.stat().st_size > 0


def test_recording_before_start_is_an_error(monkeypatch):
    monkeypatch.setattr(record, "_notebook", None)
    with pytest.raises(RuntimeError, match="record.start"):
        record.metric("x", 1)


def test_default_run_dir_is_scratch_not_reports(monkeypatch):
    monkeypatch.delenv(RUN_DIR_ENV, raising=False)
    assert record.run_dir().name == ".scratch"


def test_save_text(run_dir):
    assert record.save_text("bench.md", "# hi\n").read_text() == "# hi\n"
    with pytest.raises(ValueError, match="artifact name"):
        record.save_text("../escape.md", "x")


def test_summary_shows_each_claim_as_a_table_row_and_returns_the_verdicts(run_dir, capsys):
    record.claim("001.a", "s.txt", "short | piped", 1, 1, "reproduced", measured_text="1")
    record.claim("001.longer-id", "s.txt", "x" * 300, 1, 2, "refuted", measured_text="2")
    assert record.summary() == {"001.a": "reproduced", "001.longer-id": "refuted"}
    assert record.summary_table(record.claims()).splitlines() == [
        "| verdict | claim | statement |", "|---|---|---|",
        "| ✅ reproduced | `001.a` | short \\| piped |", "| ❌ **refuted** | `001.longer-id` | " + "x" * 300 + " |"]


def test_untested_claim_keeps_its_reason_and_the_budget_verdict(run_dir, capsys):
    with pytest.raises(ValueError, match="needs its reason"):
        record.claim("002.a", "s.txt", "trains to 0.987", 0.987, 0.94, "untested",
                     measured_text="0.94")
    record.claim("002.a", "s.txt", "trains to 0.987", 0.987, 0.94, "partly", measured_text="0.94",
                 untested_because="budget: 300 of 20,000 steps")
    (c,) = record.claims()
    assert (c["verdict"], c["reason"], c["verdict_at_this_budget"]) == (
        "untested", "budget: 300 of 20,000 steps", "partly")
    assert capsys.readouterr().out.strip().endswith("(budget: 300 of 20,000 steps)")
    assert "untested" in record.VERDICTS


def test_plain_text_reads_as_text():
    assert record.plain_text({"document": 2.2959247}) == "document 2.2959247"
    assert record.plain_text(['Tensor("a")', 'Tensor("b")']) == 'Tensor("a"); Tensor("b")'
    assert record.plain_text([0, 1]) == "[0, 1]"
    assert record.plain_text("as is") == "as is"
