"""Document 002's network as plain Keras, trained by Model.fit on a Keras backend
(xentlab.keras_fit)."""

import json

import numpy as np
import pytest

from xentlab import keras_fit


def test_build_rejects_an_unknown_initialisation():
    with pytest.raises(ValueError, match="init must be one of"):
        keras_fit.build("he normal", 0)


def test_the_document_initialisation_saturates_and_weights_round_trip(tmp_path):
    model = keras_fit.build("stddev 1", 0)
    kernel = model.get_weights()[0]
    assert abs(float(np.std(kernel)) - 1.0) < 0.05  # every weight from N(0, 1)
    path = keras_fit.save_initial_weights("stddev 1", 0, tmp_path / "w.npz")
    with np.load(path) as saved:
        assert [saved[f"arr_{i}"].shape for i in range(len(saved.files))] == [w.shape for w in model.get_weights()]
        assert np.array_equal(saved["arr_0"], kernel)  # same seed, same weights on one backend


def test_results_table():
    probes = [{"step": 0, "accuracy": 0.1, "loss": 14.0, "clipped": 0.9}, {"step": 10, "accuracy": 0.1, "loss": 14.0, "clipped": 0.95}]
    text = keras_fit.results_table({("jax", "stddev 1"): {"test_accuracy": 0.0982, "probes": probes}})
    assert "| jax | stddev 1 | 0.0982 | 0.900 | 0.950 |" in text


def test_batches_follow_the_batch_table():
    x = np.arange(20 * 28 * 28, dtype=np.uint8).reshape(20, 28, 28)
    y = np.arange(20) % 10
    table = np.array([[3, 1], [0, 19]])
    batches = keras_fit._batches(x, y, table)
    assert len(batches) == 2
    images, labels = batches[1]
    assert images.dtype == np.float32 and images.shape == (2, 28, 28)
    assert np.array_equal(images, x[[0, 19]].astype(np.float32))
    assert np.array_equal(labels.argmax(1), [0, 9]) and labels.sum() == 2


@pytest.mark.slow
def test_fit_logs_every_probe_and_reports_the_run(tmp_path):
    weights = keras_fit.save_initial_weights("keras default", 0, tmp_path / "w.npz")
    log = tmp_path / "fit.jsonl"
    r = keras_fit.fit(init="keras default", weights=str(weights), steps=4, batch_size=16, learning_rate=1e-3,
                      seed=0, dataset="mnist10k", eval_every=2, eval_size=50, log=str(log))
    assert [p["step"] for p in r["probes"]] == [0, 2, 4]
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [0, 2, 4]
    assert r["backend"] == "tensorflow" and r["steps"] == 4 and 0.0 <= r["test_accuracy"] <= 1.0
