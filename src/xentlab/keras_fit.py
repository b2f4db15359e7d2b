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

import itertools
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from xentlab import runtime

#: Initialisations: document 002's (every weight and bias from N(0, 1), the output layer's
#: truncated at two standard deviations: a saturated softmax) and Keras' defaults
#: (Glorot-uniform kernels, zero biases).
INITS: tuple[str, ...] = ("stddev 1", "keras default")
#: Document 002's dropout: ``keep_prob = 0.75``.
DROPOUT_RATE: float = 0.25


def build(init: str, seed: int) -> Any:
    """Document 002's CNN as Keras layers (conv 5x5x32, pool, conv 5x5x64, pool, dense 1024,
    dropout 0.25, dense 10 with a softmax activation) with ``init`` (one of :data:`INITS`),
    seeded. Input ``[B, 28, 28]`` pixel values 0-255, output ``[B, 10]`` probabilities."""
    import keras

    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    initializers = keras.initializers

    def kw(k: int, truncated: bool = False) -> dict[str, Any]:
        if init == "keras default":
            return {"kernel_initializer": initializers.GlorotUniform(seed=seed * 100 + k)}
        normal = initializers.TruncatedNormal if truncated else initializers.RandomNormal
        return {"kernel_initializer": normal(stddev=1.0, seed=seed * 100 + k),
                "bias_initializer": normal(stddev=1.0, seed=seed * 100 + 50 + k)}

    layers = keras.layers
    return keras.Sequential([
        keras.Input((28, 28)), layers.Reshape((28, 28, 1)), layers.Rescaling(1 / 255),
        layers.Conv2D(32, 5, padding="same", activation="relu", **kw(1)), layers.MaxPooling2D(2),
        layers.Conv2D(64, 5, padding="same", activation="relu", **kw(2)), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dense(1024, activation="relu", **kw(3)),
        layers.Dropout(DROPOUT_RATE, seed=seed * 100 + 4),
        layers.Dense(10, activation="softmax", **kw(5, truncated=True)),
    ])


def probe_steps(steps: int) -> list[int]:
    """The steps after which a run is probed: 0, about four per decade (1, 2, 3, 6, 10, 18, ...)
    and the last, so that a log-scaled step axis shows early and late training alike."""
    marks = {round(10 ** (k / 4)) for k in range(4 * len(str(steps)) + 1)}
    return sorted({0, steps} | {m for m in marks if m < steps})


def _probe(model: Any, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Accuracy on ``x`` (dropout off), and the fraction of its examples whose true-class
    probability lies below ``keras.config.epsilon()``, the clip of Keras' probability path."""
    import keras

    p = np.asarray(model.predict(x, batch_size=500, verbose=0), np.float64)
    true = p[np.arange(len(y)), y]
    return {"accuracy": float(np.mean(p.argmax(1) == y)),
            "clipped": float(np.mean(true < keras.config.epsilon()))}


def clip_gradient(model: Any, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """The misclassified examples of ``x`` whose true-class probability lies below the clip, and
    the largest absolute gradient of ``CategoricalCrossentropy()`` over them with respect to every
    trainable weight, by this backend's own differentiation (``jax.grad`` of
    ``Model.stateless_call``; ``tf.GradientTape`` on TensorFlow). Zero where the backend clips;
    ``max_abs_gradient`` is None when there is no such example."""
    import keras

    p = np.asarray(model.predict(x, batch_size=500, verbose=0))
    rows = (p[np.arange(len(y)), y] < keras.config.epsilon()) & (p.argmax(1) != y)
    if not rows.any():
        return {"examples": 0, "max_abs_gradient": None}
    xs, targets = x[rows], np.eye(10, dtype=np.float32)[y[rows]]
    loss = keras.losses.CategoricalCrossentropy()
    if keras.backend.backend() == "jax":
        import jax

        fixed = [v.value for v in model.non_trainable_variables]

        def value(trainable: list[Any]) -> Any:
            return loss(targets, model.stateless_call(trainable, fixed, xs, training=False)[0])

        grads = jax.grad(value)([v.value for v in model.trainable_variables])
    else:
        import tensorflow as tf

        with tf.GradientTape() as tape:
            value = loss(targets, model(xs, training=False))
        grads = tape.gradient(value, model.trainable_variables)
    return {"examples": int(rows.sum()),
            "max_abs_gradient": max(float(np.max(np.abs(np.asarray(g)))) for g in grads)}


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
        dataset: str, eval_size: int = 1000, log: str | None = None) -> dict[str, Any]:
    """Train :func:`build` ``(init, seed)``, starting from the weights saved at ``weights`` by
    :func:`save_initial_weights`, with ``Model.fit`` on ``steps`` batches of the training set
    (:func:`xentlab.data.batch_table`, the notebooks' batches) and Adam with ``epsilon=1e-8``
    (TensorFlow 1's default, as the documents ran; unrelated to the clip). Before training,
    :func:`clip_gradient` on the first ``eval_size`` test digits; after each step of
    :func:`probe_steps`, :func:`_probe` on them, each probe appended to the JSON-lines file ``log``
    if given (a long run's progress, kept if it fails). Returns the backend, Keras' epsilon, the
    clip gradient, the probes and the accuracy on the whole test set, as JSON-ready values."""
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
    at_start = clip_gradient(model, x_eval, y_eval)
    probes: list[dict[str, float]] = []
    marks = set(probe_steps(steps))
    start = time.perf_counter()

    def probe(step: int, synced: Any) -> None:  # synced: the model with its weights attached
        probes.append({"step": step, **_probe(synced, x_eval, y_eval)})
        if log:
            with open(log, "a") as f:
                f.write(json.dumps({**probes[-1], "seconds": time.perf_counter() - start}) + "\n")

    class Probe(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if batch + 1 in marks:
                probe(batch + 1, self.model)  # on JAX, Callback.model syncs the weights mid-epoch

    probe(0, model)
    model.fit(batches, epochs=1, shuffle=False, verbose=0, callbacks=[Probe()])
    final = _probe(model, ds.x_test.astype(np.float32), ds.y_test)
    return {"backend": keras.backend.backend(), "init": init, "steps": steps, "epsilon": keras.config.epsilon(),
            "clip_gradient": at_start, "probes": probes, "test_accuracy": final["accuracy"],
            "seconds": time.perf_counter() - start}


def start(backend: str, **kwargs: Any) -> runtime.KernelRun:
    """Start :func:`fit` ``(**kwargs)`` in a fresh process on ``backend`` and return at once
    (``result()`` waits for its dict, for at most ten minutes plus three seconds a step).
    Raises :class:`xentlab.runtime.BackendError` first if the backend cannot run here."""
    return runtime.start_with_keras_backend(runtime.json_call("xentlab.keras_fit", "fit", **kwargs), backend,
                                            timeout=600 + 3 * int(kwargs["steps"]))


def last_change(probes: list[dict[str, float]]) -> int:
    """The step of the last probe whose accuracy differs from the probe's before it (0 if none
    does): where a run's probe curve last moved."""
    moved = [p["step"] for before, p in itertools.pairwise(probes) if p["accuracy"] != before["accuracy"]]
    return int(moved[-1]) if moved else 0


def results_table(results: dict[tuple[str, str], dict[str, Any]]) -> str:
    """A Markdown table of the runs: backend, initialisation, steps, accuracy on the whole test
    set, and the fraction of the probe digits below the clip at the first and the last probe."""
    lines = ["| backend | initialisation | steps | test accuracy (whole test set) | "
             "probe digits below the clip, first probe | … last probe |", "|---|---|---|---|---|---|"]
    lines += [f"| {b} | {init} | {r['steps']:,} | {r['test_accuracy']:.4f} | {r['probes'][0]['clipped']:.3f} | "
              f"{r['probes'][-1]['clipped']:.3f} |" for (b, init), r in results.items()]
    return "\n".join(lines)
