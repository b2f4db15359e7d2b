"""One training loop for every experiment of the notebooks.

:func:`train` runs ``steps`` optimizer steps of a model (see :mod:`xentlab.models`) on a dataset
(anything with ``x_train [N, 28, 28]``, ``y_train [N]`` integer labels, ``x_test``, ``y_test``,
e.g. :func:`xentlab.data.load`'s ``Dataset``) and returns a :class:`History`.

Design (this is the hot path):

- The dataset is converted to tensors once; the batches are drawn by index from a seeded
  permutation (one fresh permutation per epoch, ``numpy.random.default_rng(seed)``), held on the
  device as an ``int32 [steps, batch_size]`` table, so every loss or optimizer run with the same
  ``seed``, ``steps`` and ``batch_size`` sees exactly the same batches.
- The step is one ``tf.function`` with no arguments: it reads its batch from the table at a step
  counter variable, so it is traced once and never retraced (:attr:`History.traces` says how many
  times it was traced).
- Non-finite loss or gradients are caught inside the step: the update is skipped and the step
  number is stored in a variable, which Python reads only every ``eval_every`` steps; the run then
  stops and :attr:`History.diverged_at` holds the step. No exception.
- Metrics are computed only every ``eval_every`` steps (and after the last step).
- ``keras.utils.set_random_seed(seed)`` and ``tf.config.experimental.enable_op_determinism()``:
  two runs with the same seed on the same machine give identical histories.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import keras
import numpy as np
import tensorflow as tf

from xentlab import losses

__all__ = ["History", "LossFn", "LOSS_METHODS", "batch_table", "make_loss", "seed_everything",
           "train"]

#: ``(labels_onehot [B, C] float32, logits [B, C] float32) -> scalar`` loss.
LossFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]
LOSS_METHODS = losses.METHODS
REDUCTIONS = ("mean", "sum")


class _Data(Protocol):
    x_train: Any
    y_train: Any
    x_test: Any
    y_test: Any


@dataclass
class History:
    """What :func:`train` measured.

    Every list has one entry per evaluation, at ``step`` = 0, ``eval_every``, 2·``eval_every``, …
    (evaluations happen *before* that step's update, like the document's loop):

    - ``loss``: the training loss of the update made at that step (training mode: dropout on);
    - ``grad_norm``: the global norm of that update's gradients;
    - ``train_accuracy``: accuracy on that step's training batch in evaluation mode (no dropout);
    - ``test_accuracy``: accuracy on the held-out evaluation subset (``eval_size`` examples);
    - ``zero_fraction``: fraction of the softmax outputs of that batch (evaluation mode) that are
      exactly 0.0 in float32.

    ``final_test_accuracy`` is measured after the last update on the *whole* test set,
    ``final_eval_accuracy`` on the evaluation subset (comparable with ``test_accuracy``);
    ``final_loss``/``final_grad_norm`` are those of the last step (of step ``diverged_at`` if the
    run diverged). ``diverged_at`` is the first step whose loss or gradient norm was NaN/Inf: that
    update and all later ones were not applied and training stopped at the next evaluation
    boundary; else None. ``steps_run`` counts the updates applied, ``zero_grad_steps`` how many of
    them had a gradient global norm of exactly 0.0 (every step counts, not only evaluated ones).
    ``traces`` is how many times the compiled step was traced (1 when nothing retraced);
    ``step_seconds`` the wall time of the updates after the first (which includes the tracing),
    evaluations excluded: ``(steps_run - 1) / step_seconds`` is the loop's steady rate (for
    ``python -m xentlab bench``; it varies with the machine, so compare it only within one run).
    """

    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    zero_fraction: list[float] = field(default_factory=list)
    final_test_accuracy: float = float("nan")
    final_eval_accuracy: float = float("nan")
    final_loss: float = float("nan")
    final_grad_norm: float = float("nan")
    steps_run: int = 0
    zero_grad_steps: int = 0
    diverged_at: int | None = None
    traces: int = 0
    step_seconds: float = 0.0
    config: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (for ``record.metric``)."""
        return asdict(self)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy, TF and Keras and make TF's kernels deterministic (for the process)."""
    keras.utils.set_random_seed(int(seed))
    tf.config.experimental.enable_op_determinism()


def make_loss(method: str, *, reduction: str = "mean", epsilon: float = 0.0) -> LossFn:
    """A scalar loss ``(labels_onehot [B, C], logits [B, C]) -> []`` from
    :func:`xentlab.losses.softmax_cross_entropy`.

    ``method``: ``"manual"`` (``-sum(y * log(softmax + epsilon))``), ``"log_softmax"`` or
    ``"fused"``; ``reduction``: ``"mean"`` or ``"sum"`` over the batch (document 002 sums for
    methods 1-2 and averages for 3).
    """
    if method not in LOSS_METHODS:
        raise ValueError(f"unknown loss method {method!r}; choose one of {LOSS_METHODS}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; choose one of {REDUCTIONS}")
    if epsilon < 0:
        raise ValueError(f"epsilon must be >= 0, got {epsilon!r}")
    if epsilon and method != "manual":
        raise ValueError(f"epsilon only applies to method 'manual', not {method!r}")
    reduce = tf.reduce_mean if reduction == "mean" else tf.reduce_sum
    kwargs = {"epsilon": float(epsilon)} if method == "manual" else {}

    def loss_fn(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
        return reduce(losses.softmax_cross_entropy(labels, logits, method=method, **kwargs))

    loss_fn.__name__ = f"{method}_{reduction}" + (f"_eps{epsilon:g}" if epsilon else "")
    return loss_fn


def _optimizer(optimizer: str | keras.optimizers.Optimizer,
               learning_rate: float) -> keras.optimizers.Optimizer:
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer
    if optimizer == "adam":
        return keras.optimizers.Adam(learning_rate)
    if optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate)
    raise ValueError(f"unknown optimizer {optimizer!r}; pass 'adam', 'sgd' or a Keras optimizer")


def batch_table(n: int, batch_size: int, steps: int, seed: int) -> np.ndarray:
    """``int32 [steps, batch_size]``: example indices of each step's batch, from one seeded
    permutation of ``range(n)`` per epoch (epochs concatenated, batches may straddle two)."""
    rng = np.random.default_rng(seed)
    epochs = -(-steps * batch_size // n)
    order = np.concatenate([rng.permutation(n) for _ in range(epochs)])
    return order[: steps * batch_size].reshape(steps, batch_size).astype(np.int32)


def train(
    model: Any,
    data: _Data,
    *,
    loss: LossFn | str,
    steps: int,
    batch_size: int = 128,
    optimizer: str | keras.optimizers.Optimizer = "adam",
    learning_rate: float = 1e-3,
    eval_every: int = 100,
    eval_size: int | None = 1000,
    eval_chunk: int = 500,
    seed: int = 0,
    progress: bool = True,
) -> History:
    """Train ``model`` for ``steps`` steps and return its :class:`History`.

    Args:
        model: callable ``model(x [B, 28, 28] uint8|float, training: bool) -> logits [B, 10]``
            with ``trainable_variables`` (:class:`xentlab.models.RawCNN`, a Keras model).
        data: ``x_train [N, 28, 28]``, ``y_train [N]`` (ints in [0, 10)), ``x_test``, ``y_test``.
        loss: ``(labels_onehot [B, 10] float32, logits [B, 10]) -> scalar``, or a method name
            (``"manual"``, ``"log_softmax"``, ``"fused"``: the batch mean, see :func:`make_loss`).
        steps: number of optimizer steps (> 0).
        batch_size: examples per step (1..N).
        optimizer: ``"adam"``, ``"sgd"`` (with ``learning_rate``) or a fresh Keras optimizer.
        eval_every: evaluate every this many steps (> 0); step 0 is always evaluated.
        eval_size: size of the fixed held-out subset (the first ``eval_size`` test examples)
            used at each evaluation; None = the whole test set. The final accuracy always uses the
            whole test set.
        eval_chunk: evaluation batch size.
        seed: seeds TF/Keras/NumPy and the batch order.
        progress: show a tqdm progress bar on stderr.
    """
    if isinstance(loss, str):
        loss = make_loss(loss)
    if not callable(loss):
        raise ValueError(f"loss must be a callable or a method name in {LOSS_METHODS}, got {loss!r}")
    if not isinstance(steps, (int, np.integer)) or steps <= 0:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if not isinstance(eval_every, (int, np.integer)) or eval_every <= 0:
        raise ValueError(f"eval_every must be a positive integer, got {eval_every!r}")
    n_train, n_test = len(data.y_train), len(data.y_test)
    if not isinstance(batch_size, (int, np.integer)) or not 0 < batch_size <= n_train:
        raise ValueError(
            f"batch_size must be an integer in [1, {n_train}] (the training set size), "
            f"got {batch_size!r}")
    if eval_size is not None and not 0 < eval_size:
        raise ValueError(f"eval_size must be positive or None, got {eval_size!r}")
    if eval_chunk <= 0:
        raise ValueError(f"eval_chunk must be positive, got {eval_chunk!r}")
    if n_test == 0:
        raise ValueError("the dataset has no test examples")

    seed_everything(seed)
    opt = _optimizer(optimizer, learning_rate)
    variables = list(model.trainable_variables)
    opt.build(variables)

    x_train = tf.constant(np.asarray(data.x_train))
    y_train = tf.constant(np.asarray(data.y_train), tf.int32)
    x_test = tf.constant(np.asarray(data.x_test))
    y_test = tf.constant(np.asarray(data.y_test), tf.int32)
    table = tf.constant(batch_table(n_train, int(batch_size), int(steps), seed))
    counter = tf.Variable(0, dtype=tf.int32, trainable=False)
    diverged = tf.Variable(-1, dtype=tf.int32, trainable=False)
    # Per-step loss and gradient norm, written inside the step (one scalar each), read at the end.
    loss_log = tf.Variable(tf.fill([int(steps)], np.float32(np.nan)), trainable=False)
    norm_log = tf.Variable(tf.fill([int(steps)], np.float32(np.nan)), trainable=False)
    num_classes = 10
    traces = [0]

    def batch() -> tuple[tf.Tensor, tf.Tensor]:
        idx = table[counter]
        return tf.gather(x_train, idx), tf.gather(y_train, idx)

    # autograph off: the step has no tensor-dependent Python control flow (tf.cond is explicit),
    # and user loss callables are traced as written.
    @tf.function(autograph=False)
    def step_fn() -> None:
        traces[0] += 1  # Python side effect: runs once per trace, never per step
        x, y = batch()
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            value = tf.cast(loss(tf.one_hot(y, num_classes), logits), tf.float32)
        grads = tape.gradient(value, variables)
        grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables, strict=True)]
        norm = tf.linalg.global_norm(grads)
        finite = tf.math.is_finite(value) & tf.math.is_finite(norm)

        def apply() -> tf.Tensor:
            opt.apply_gradients(zip(grads, variables, strict=True))
            return tf.constant(0)

        def skip() -> tf.Tensor:
            # First non-finite step: remember it. After it, no update is applied any more.
            tf.cond(diverged < 0, lambda: diverged.assign(counter), lambda: diverged)
            return tf.constant(0)

        tf.cond(finite & (diverged < 0), apply, skip)
        loss_log.scatter_nd_update([[counter]], [value])
        norm_log.scatter_nd_update([[counter]], [norm])
        counter.assign_add(1)

    @tf.function(autograph=False)
    def probe_fn() -> tuple[tf.Tensor, tf.Tensor]:
        """This step's batch in evaluation mode: (accuracy, fraction of softmax == 0)."""
        x, y = batch()
        logits = model(x, training=False)
        acc = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1, output_type=tf.int32), y),
                                     tf.float32))
        zero = tf.reduce_mean(tf.cast(tf.equal(tf.nn.softmax(logits), 0.0), tf.float32))
        return acc, zero

    @tf.function(autograph=False, input_signature=[tf.TensorSpec(None, x_test.dtype),
                                  tf.TensorSpec([None], tf.int32)])
    def correct_fn(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        logits = model(x, training=False)
        return tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, 1, output_type=tf.int32), y),
                                     tf.int32))

    def accuracy(limit: int | None) -> float:
        n = n_test if limit is None else min(limit, n_test)
        hits = sum(int(correct_fn(x_test[i:min(i + eval_chunk, n)], y_test[i:min(i + eval_chunk, n)]))
                   for i in range(0, n, eval_chunk))
        return hits / n

    hist = History(config={
        "steps": int(steps), "batch_size": int(batch_size), "eval_every": int(eval_every),
        "eval_size": eval_size, "seed": int(seed), "learning_rate": float(learning_rate),
        "optimizer": optimizer if isinstance(optimizer, str) else type(optimizer).__name__,
        "loss": getattr(loss, "__name__", type(loss).__name__),
    })
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=int(steps), file=sys.stderr, desc=hist.config["loss"], leave=False)

    step = 0
    while step < steps:
        acc, zero = probe_fn()
        test_acc = accuracy(eval_size)
        chunk_end = min(step + int(eval_every), int(steps))
        first = step
        if step == 0:  # the first call traces the step: kept out of step_seconds
            step_fn()
            counter.numpy()
            first = 1
        start = time.perf_counter()
        for _ in range(first, chunk_end):
            step_fn()
        stopped = int(diverged.numpy()) >= 0  # one scalar read per eval_every steps
        hist.step_seconds += time.perf_counter() - start
        hist.step.append(step)
        hist.train_accuracy.append(float(acc))
        hist.zero_fraction.append(float(zero))
        hist.test_accuracy.append(test_acc)
        if bar is not None:
            bar.update(chunk_end - step)
        step = chunk_end
        if stopped:
            break
    if bar is not None:
        bar.close()
    d = int(diverged.numpy())
    hist.diverged_at = d if d >= 0 else None
    hist.steps_run = d if d >= 0 else int(counter.numpy())  # updates actually applied
    last = d if d >= 0 else hist.steps_run - 1
    losses_, norms = loss_log.numpy(), norm_log.numpy()
    hist.loss = [float(losses_[i]) for i in hist.step]
    hist.grad_norm = [float(norms[i]) for i in hist.step]
    hist.zero_grad_steps = int(np.sum(norms[: hist.steps_run] == 0.0))
    hist.final_loss = float(losses_[last])
    hist.final_grad_norm = float(norms[last])
    hist.final_test_accuracy = accuracy(None)
    full = eval_size is None or eval_size >= n_test
    hist.final_eval_accuracy = hist.final_test_accuracy if full else accuracy(eval_size)
    hist.traces = traces[0]
    return hist
