"""The report pipeline end to end on a real training notebook, with the ``smoke`` profile."""

import json

import pytest

from xentlab import profiles, record, reports


@pytest.mark.slow
def test_smoke_profile_runs_a_training_notebook_end_to_end(tmp_path):
    """Notebook 05 trains document 004's network with Keras' losses; ``smoke`` shrinks it to a
    few steps on mnist10k. Every stage runs for real: papermill, the notebook's records, the
    claims with computed verdicts, the figures, provenance and the report's README."""
    name = "05_keras_categorical_crossentropy"
    out = reports.run_reports("smoke", only=["05"], out=tmp_path / "smoke")
    claims = json.loads((out / "claims.json").read_text())
    assert claims and {c["notebook"] for c in claims} == {name}
    assert {c["verdict"] for c in claims} <= set(record.VERDICTS)
    metrics = json.loads((out / "metrics" / f"{name}.json").read_text())
    assert metrics["dataset"]["name"] == "mnist10k" and isinstance(metrics["kernels"]["onednn"], bool)
    assert list((out / "figures").glob(f"{name}_*.png"))
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["profile"] == "smoke"
    assert prov["notebooks"][0]["parameters"] == profiles.PROFILES["smoke"][name]
    assert name in (out / "README.md").read_text()
