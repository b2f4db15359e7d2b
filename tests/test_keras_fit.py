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
    probes = [{"step": 0, "accuracy": 0.1, "clipped": 0.9}, {"step": 10, "accuracy": 0.1, "clipped": 0.95}]
    text = keras_fit.results_table({("jax", "stddev 1"): {"steps": 10, "test_accuracy": 0.0982, "probes": probes}})
    assert "| jax | stddev 1 | 10 | 0.0982 | 0.900 | 0.950 |" in text


def test_probe_steps_are_about_four_per_decade_from_zero_to_the_last():
    assert keras_fit.probe_steps(100) == [0, 1, 2, 3, 6, 10, 18, 32, 56, 100]
    assert keras_fit.probe_steps(1) == [0, 1]
    long = keras_fit.probe_steps(20_000)
    assert long[0] == 0 and long[-1] == 20_000 and long == sorted(set(long)) and len(long) == 20


def test_the_document_network_is_built_as_document_002():
    model = keras_fit.build("stddev 1", 0)
    dropout = [layer for layer in model.layers if layer.__class__.__name__ == "Dropout"]
    assert [d.rate for d in dropout] == [0.25]  # keep_prob = 0.75
    out_kernel = model.layers[-1].get_weights()[0]
    assert np.max(np.abs(out_kernel)) <= 2.0  # truncated_normal: cut at two standard deviations


def test_clip_gradient_is_nonzero_on_tensorflow_which_reads_the_logits():
    model = keras_fit.build("stddev 1", 0)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (64, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 64)
    found = keras_fit.clip_gradient(model, x, y)
    assert found["examples"] > 0 and found["max_abs_gradient"] > 0


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
                      seed=0, dataset="mnist10k", eval_size=50, log=str(log))
    assert [p["step"] for p in r["probes"]] == [0, 1, 2, 3, 4]
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [0, 1, 2, 3, 4]
    assert r["backend"] == "tensorflow" and r["steps"] == 4 and 0.0 <= r["test_accuracy"] <= 1.0


@pytest.mark.slow
def test_on_jax_a_confident_mistake_passes_no_gradient(tmp_path):
    weights = keras_fit.save_initial_weights("stddev 1", 0, tmp_path / "w.npz")
    r = keras_fit.start("jax", init="stddev 1", weights=str(weights), steps=1, batch_size=8,
                        learning_rate=1e-3, seed=0, dataset="mnist10k", eval_size=100).result()
    assert r["backend"] == "jax" and r["clip_gradient"]["examples"] > 0
    assert r["clip_gradient"]["max_abs_gradient"] == 0.0


def test_last_change_is_the_step_where_the_probe_accuracy_last_moved():
    probes = [{"step": s, "accuracy": a} for s, a in ((0, 0.1), (1, 0.1), (10, 0.3), (100, 0.3), (1000, 0.3))]
    assert keras_fit.last_change(probes) == 10
    assert keras_fit.last_change(probes[:2]) == 0
