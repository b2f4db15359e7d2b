"""Document 002's CNN written as plain Keras 3 (a ``Dense(10, activation="softmax")`` head and
``CategoricalCrossentropy()``, trained by ``Model.fit``), run on the Keras backend of the process.

This is the code a Keras user writes, and nothing in it names a backend: :func:`start` runs it
under TensorFlow or JAX, each in a fresh process (:func:`xentlab.runtime.start_with_keras_backend`),
so that the same seeds, batches and steps meet each backend's ``categorical_crossentropy``
(``keras/src/backend/tensorflow/nn.py`` reads the logits behind the softmax,
``keras/src/backend/jax/nn.py`` clips the probabilities: see :mod:`xentlab.atlas.backends`).
Shapes: images ``[N, 28, 28]`` uint8, labels ``[N]`` int.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from xentlab import runtime

#: Initialisations: document 002's (every weight and bias from N(0, 1): a saturated softmax) and
#: Keras' defaults (Glorot-uniform kernels, zero biases).
INITS: tuple[str, ...] = ("stddev 1", "keras default")
#: The clip of Keras' probability path (``keras.config.epsilon()``).
EPSILON: float = 1e-7


def build(init: str, seed: int) -> Any:
    """The CNN (conv 5x5x32, pool, conv 5x5x64, pool, dense 1024, dropout 0.5, dense 10 with a
    softmax activation) with ``init`` (one of :data:`INITS`), seeded."""
    import keras

    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    normal = init == "stddev 1"

    def kw(k: int) -> dict[str, Any]:
        if not normal:
            return {"kernel_initializer": keras.initializers.GlorotUniform(seed=seed * 100 + k)}
        return {"kernel_initializer": keras.initializers.RandomNormal(stddev=1.0, seed=seed * 100 + k),
                "bias_initializer": keras.initializers.RandomNormal(stddev=1.0, seed=seed * 100 + 50 + k)}

    layers = keras.layers
    return keras.Sequential([
        keras.Input((28, 28)), layers.Reshape((28, 28, 1)), layers.Rescaling(1 / 255),
        layers.Conv2D(32, 5, padding="same", activation="relu", **kw(1)), layers.MaxPooling2D(2),
        layers.Conv2D(64, 5, padding="same", activation="relu", **kw(2)), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dense(1024, activation="relu", **kw(3)),
        layers.Dropout(0.5, seed=seed * 100 + 4), layers.Dense(10, activation="softmax", **kw(5)),
    ])


def _probe(model: Any, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Accuracy, the mean loss as Keras' ``categorical_crossentropy`` of this backend computes it
    on the model's probabilities, and the fraction of examples whose true-class probability lies
    below the clip (their loss is the ceiling -ln(1e-7) and their gradient through the clip 0)."""
    import keras

    p = np.asarray(model.predict(x, batch_size=500, verbose=0), np.float64)
    true = p[np.arange(len(y)), y]
    loss = keras.losses.CategoricalCrossentropy()(np.eye(10, dtype=np.float32)[y], p.astype(np.float32))
    return {"accuracy": float(np.mean(p.argmax(1) == y)), "loss": float(np.asarray(loss)),
            "clipped": float(np.mean(true < EPSILON))}


def save_initial_weights(init: str, seed: int, path: Path) -> Path:
    """Build the model on this process' backend and save its weights to ``path`` (``.npz``), so
    that every backend starts from the same numbers: the same Keras seed draws different weights
    on TensorFlow and on JAX, whose random generators differ."""
    model = build(init, seed)
    np.savez(path, *[np.asarray(w) for w in model.get_weights()])
    return path


def _batches(x: np.ndarray, y: np.ndarray, table: np.ndarray) -> Any:
    """A ``keras.utils.PyDataset`` yielding step ``i``'s batch of ``table`` (images float32
    ``[B, 28, 28]``, one-hot labels ``[B, 10]``), built as it is asked for: 20,000 steps of 128
    images held at once would be 8 GB in float32."""
    import keras

    class Batches(keras.utils.PyDataset):
        def __len__(self) -> int:
            return len(table)

        def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
            rows = table[i]
            return x[rows].astype(np.float32), np.eye(10, dtype=np.float32)[y[rows]]

    return Batches()


def fit(*, init: str, weights: str, steps: int, batch_size: int, learning_rate: float, seed: int,
        dataset: str, eval_every: int, eval_size: int = 1000, log: str | None = None) -> dict[str, Any]:
    """Train :func:`build` ``(init, seed)``, starting from the weights saved at ``weights`` by
    :func:`save_initial_weights`, with ``Model.fit`` on ``steps`` batches of the training set
    (:func:`xentlab.data.batch_table`, the notebooks' batches), Adam with ε = 1e-8 (TensorFlow 1's,
    as the documents ran), and probe it (:func:`_probe`) on the first ``eval_size`` test digits
    every ``eval_every`` steps, appending each probe to the JSON-lines file ``log`` if given (a
    long run's progress, kept if it fails). Returns the backend, the probes and the final accuracy
    on the whole test set, as JSON-ready values."""
    import keras

    from xentlab import data

    ds = data.load(dataset)
    keras.utils.set_random_seed(seed)
    model = build(init, seed)
    with np.load(weights) as saved:
        model.set_weights([saved[f"arr_{i}"] for i in range(len(saved.files))])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, epsilon=1e-8),
                  loss=keras.losses.CategoricalCrossentropy())
    batches = _batches(ds.x_train, ds.y_train, data.batch_table(len(ds.x_train), batch_size, steps, seed))
    x_eval, y_eval = ds.x_test[:eval_size].astype(np.float32), ds.y_test[:eval_size]
    probes: list[dict[str, float]] = []
    start = time.perf_counter()

    def probe(step: int, synced: Any) -> None:  # synced: the model with its weights attached
        probes.append({"step": step, **_probe(synced, x_eval, y_eval)})
        if log:
            with open(log, "a") as f:
                f.write(json.dumps({**probes[-1], "seconds": time.perf_counter() - start}) + "\n")

    class Probe(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if (batch + 1) % eval_every == 0 or batch + 1 == steps:
                probe(batch + 1, self.model)  # on JAX, Callback.model syncs the weights mid-epoch

    probe(0, model)
    model.fit(batches, epochs=1, shuffle=False, verbose=0, callbacks=[Probe()])
    final = _probe(model, ds.x_test.astype(np.float32), ds.y_test)
    return {"backend": keras.backend.backend(), "init": init, "steps": steps, "probes": probes,
            "test_accuracy": final["accuracy"], "seconds": time.perf_counter() - start}


def start(backend: str, **kwargs: Any) -> runtime.KernelRun:
    """Start :func:`fit` ``(**kwargs)`` in a fresh process on ``backend`` and return at once
    (``result()`` waits for its dict). Raises :class:`xentlab.runtime.BackendError` first if the
    backend cannot run here."""
    code = f"import json; from xentlab import keras_fit; print(json.dumps(keras_fit.fit(**{json.dumps(kwargs)})))"
    return runtime.start_with_keras_backend(code, backend, timeout=6 * 3600)


def results_table(results: dict[tuple[str, str], dict[str, Any]]) -> str:
    """A Markdown table of the runs: backend, initialisation, test accuracy, and the fraction of
    probe digits below the clip at the start and at the end."""
    lines = ["| backend | initialisation | test accuracy | below the clip, first probe | below the clip, last probe |",
             "|---|---|---|---|---|"]
    lines += [f"| {b} | {init} | {r['test_accuracy']:.4f} | {r['probes'][0]['clipped']:.3f} | "
              f"{r['probes'][-1]['clipped']:.3f} |" for (b, init), r in results.items()]
    return "\n".join(lines)
