"""Document 002's network as plain Keras, trained by Model.fit on a Keras backend
(xentlab.keras_fit)."""

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
