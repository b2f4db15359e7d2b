"""A minimal, seeded training loop for the small experiments of notebooks 04 and 05.

``fit`` trains any ``tf.Module``-like model (``model(x, training=...) -> logits``) with Adam on
a loss written as ``loss_fn(labels, logits) -> scalar``. It exists so that a notebook can choose
how the loss sees the network's output (through a Keras softmax layer, through ``tf.nn.softmax``,
or from the logits) and whether the step is compiled (``tf.function``) or eager: notebook 05
shows that this choice decides whether Keras can recover the logits behind a softmax.

Besides the loss it records, per logged step, the fraction of examples whose gradient with respect
to their logits is exactly zero, the same fraction among the *misclassified* examples (nonzero only
when the loss ignores examples it gets wrong: the saturation signature of notebook 03's
``log(softmax+1e-10)`` and of Keras' clip at ``1e-7``), and the global gradient norm.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from xentlab.train import seed_everything  # re-exported: notebooks 04 and 05 import it here

__all__ = ["FitHistory", "fit", "predict_logits", "seed_everything"]

LossFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


@dataclass
class FitHistory:
    """What :func:`fit` measured at each logged step (lists of equal length)."""

    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    batch_accuracy: list[float] = field(default_factory=list)
    zero_grad_fraction: list[float] = field(default_factory=list)
    zero_grad_wrong_fraction: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)


def predict_logits(model: Callable[..., tf.Tensor], x: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Logits ``[N, C]`` of ``model`` on ``x`` (inference mode), computed in batches."""
    parts = [model(tf.constant(x[i:i + batch_size]), training=False).numpy()
             for i in range(0, len(x), batch_size)]
    return np.concatenate(parts, axis=0)


def fit(
    model: tf.Module,
    loss_fn: LossFn,
    x: np.ndarray,
    y: np.ndarray,
    *,
    steps: int,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    seed: int = 0,
    compiled: bool = True,
    log_every: int = 10,
    progress: bool = False,
) -> FitHistory:
    """Train ``model`` for ``steps`` Adam steps on minibatches of ``(x, y)``; return a FitHistory.

    Args:
        model: callable ``model(x_batch, training=bool) -> logits [B, C]`` with
            ``trainable_variables``.
        loss_fn: ``loss_fn(labels [B, C], logits [B, C]) -> scalar``; it decides how the output
            reaches the loss (e.g. ``cce(labels, tf.nn.softmax(logits))``).
        x, y: training inputs ``[N, ...]`` and float labels ``[N, C]``.
        compiled: run the step as a ``tf.function`` (graph) if True, eagerly if False.
        log_every: record the history every this many steps (and at the last step).

    Batches are drawn by a NumPy generator seeded with ``seed`` (reshuffled each epoch).
    """
    if steps < 1 or batch_size < 1 or log_every < 1:
        raise ValueError("steps, batch_size and log_every must be >= 1")
    if len(x) != len(y) or len(x) < batch_size:
        raise ValueError(f"need len(x) == len(y) >= batch_size, got {len(x)}, {len(y)}, {batch_size}")
    optimizer = keras.optimizers.Adam(learning_rate)
    variables = list(model.trainable_variables)

    def step(xb: tf.Tensor, yb: tf.Tensor) -> tuple[tf.Tensor, ...]:
        with tf.GradientTape() as tape:
            logits = model(xb, training=True)
            loss = loss_fn(yb, logits)
        grads = tape.gradient(loss, [logits, *variables])
        dlogits, grads = grads[0], grads[1:]
        grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables, strict=True)]
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        if dlogits is None:
            dlogits = tf.zeros_like(logits)
        zero_rows = tf.reduce_all(tf.equal(dlogits, 0.0), axis=-1)
        # top-1 prediction is one of the true labels (one-hot: ordinary accuracy)
        correct = tf.gather(yb, tf.argmax(logits, -1), batch_dims=1) > 0
        wrong = tf.logical_not(correct)
        zero_wrong = tf.reduce_sum(tf.cast(zero_rows & wrong, tf.float32)) / tf.maximum(
            tf.reduce_sum(tf.cast(wrong, tf.float32)), 1.0)
        return (loss, tf.reduce_mean(tf.cast(correct, tf.float32)),
                tf.reduce_mean(tf.cast(zero_rows, tf.float32)), zero_wrong,
                tf.linalg.global_norm(grads))

    run = tf.function(step) if compiled else step
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    pos = 0
    hist = FitHistory()
    iterator = range(1, steps + 1)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, leave=False)
    for i in iterator:
        if pos + batch_size > len(x):
            order, pos = rng.permutation(len(x)), 0
        idx = order[pos:pos + batch_size]
        pos += batch_size
        loss, acc, zero, zero_wrong, norm = run(tf.constant(x[idx]), tf.constant(y[idx], tf.float32))
        if i % log_every == 0 or i == steps or i == 1:
            hist.step.append(i)
            hist.loss.append(float(loss))
            hist.batch_accuracy.append(float(acc))
            hist.zero_grad_fraction.append(float(zero))
            hist.zero_grad_wrong_fraction.append(float(zero_wrong))
            hist.grad_norm.append(float(norm))
    return hist
