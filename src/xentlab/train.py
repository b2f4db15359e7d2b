"""One training loop for every network of the notebooks.

:func:`train` runs ``steps`` optimizer steps of a model (see :mod:`xentlab.models`) on a dataset
(anything with ``x_train, y_train, x_test, y_test``: :func:`xentlab.data.load`'s ``Dataset``, or
:class:`Arrays`) and returns a :class:`History`.

- **Labels.** Integer labels ``y [N]`` reach the loss one-hot (``[B, C]`` float32), or as they
  are with ``sparse=True`` (for :func:`xentlab.losses.sparse_softmax_cross_entropy`). Float
  labels ``y [N, C]`` (soft or multi-hot) reach it as they are.
- **Batches** are drawn by index from a seeded permutation per epoch (:func:`xentlab.data.batch_table`):
  every loss or optimizer run with the same ``seed``, ``steps`` and ``batch_size`` sees exactly
  the same batches.
- **Compiled or eager.** ``compiled=True`` (default) runs the step as one ``tf.function`` with no
  arguments, traced once (:attr:`History.traces`); ``compiled=False`` runs the same Python step
  eagerly (notebook 05: Keras sees probabilities, not the ``Softmax`` op).
- **Divergence.** A NaN/Inf loss or gradient norm is caught inside the step: that update and all
  later ones are skipped, the step is recorded in :attr:`History.diverged_at`, and the loop stops
  at the next evaluation. No exception. Under a ``LossScaleOptimizer`` a non-finite step is
  skipped instead, as Keras does, and counted (:attr:`History.skipped_steps`).
- **Process state is not set here.** Seed with :func:`xentlab.runtime.seed` and choose op
  determinism with :func:`xentlab.runtime.set_op_determinism` first (the notebooks do, in one
  visible line); the loop only seeds its own batch order.
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
from xentlab.data import batch_table

__all__ = ["Arrays", "History", "LossFn", "accuracy", "loss_and_grad_norm",
           "predict_logits", "saturation", "train"]

#: ``(labels [B, C] float32 | [B] int, logits [B, C]) -> scalar``.
LossFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]
_LOG_FIELDS = ("loss", "grad_norm", "zero_grad_fraction", "zero_grad_wrong_fraction")


class _Data(Protocol):
    x_train: Any
    y_train: Any
    x_test: Any
    y_test: Any


@dataclass(frozen=True)
class Arrays:
    """A dataset given as four arrays: ``x_* [N, ...]``, ``y_* [N]`` int or ``[N, C]`` float."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@dataclass
class History:
    """What :func:`train` measured.

    Every list has one entry per evaluation, at ``step`` = 0, ``eval_every``, 2·``eval_every``, …
    (evaluations happen *before* that step's update, like the document's loop):

    - ``loss``, ``grad_norm``: the training loss (training mode: dropout on) and the global norm
      of the parameter gradients of the update made at that step;
    - ``zero_grad_fraction``: fraction of that batch's examples whose gradient with respect to
      their logits is exactly 0; ``zero_grad_wrong_fraction``: the same among the examples the
      network misclassifies (non-zero only when the loss ignores examples it gets wrong: the
      saturation signature of notebook 03's ``log(softmax+1e-10)`` and of Keras' clip; NaN
      when the batch has no misclassified example);
    - ``train_accuracy``: accuracy on that step's training batch in evaluation mode (no dropout);
    - ``test_accuracy``: accuracy on the first ``eval_size`` test examples;
    - ``zero_fraction``: fraction of that batch's softmax outputs (evaluation mode) that are
      exactly 0.0.

    Accuracy is top-1 = label for integer labels, top-1 in the label set for float labels.
    ``final_test_accuracy`` is measured after the last update on the whole test set,
    ``final_eval_accuracy`` on the evaluation subset, and ``test_prediction_counts [C]`` counts how
    often the final network picks each class on the whole test set (a collapsed network picks one:
    its accuracy is that class' share); ``final_loss``/``final_grad_norm`` are those
    of the last step (of step ``diverged_at`` if the run diverged). ``skipped_steps`` counts the
    non-finite steps a ``LossScaleOptimizer`` skipped (it lowers its scale and goes on, as in
    ``Model.fit``: no divergence), ``steps_run`` the updates applied, ``zero_grad_steps`` those with a gradient global norm of exactly 0.0 (every
    step, not only evaluated ones). ``traces``: how many times the compiled step was traced (with
    ``compiled=False``: how many times the Python step ran);
    ``step_seconds``: wall time of the updates after the first (which includes the tracing),
    evaluations excluded.
    """

    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    zero_grad_fraction: list[float] = field(default_factory=list)
    zero_grad_wrong_fraction: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    zero_fraction: list[float] = field(default_factory=list)
    final_test_accuracy: float = float("nan")
    final_eval_accuracy: float = float("nan")
    test_prediction_counts: list[int] = field(default_factory=list)
    final_loss: float = float("nan")
    final_grad_norm: float = float("nan")
    steps_run: int = 0
    skipped_steps: int = 0
    zero_grad_steps: int = 0
    diverged_at: int | None = None
    traces: int = 0
    step_seconds: float = 0.0
    config: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (for ``record.metric``)."""
        return asdict(self)

    def outcome(self) -> dict[str, Any]:
        """A sweep's row: ``accuracy`` (``final_eval_accuracy``), ``zero_fraction_init`` and
        ``grad_norm_init`` (at step 0) and ``diverged_at``."""
        return {"accuracy": self.final_eval_accuracy, "zero_fraction_init": self.zero_fraction[0],
                "grad_norm_init": self.grad_norm[0], "diverged_at": self.diverged_at}


def _correct(logits: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """``bool [B]``: top-1 equals the label (int ``y [B]``) or is in the label set (``[B, C]``)."""
    top = tf.argmax(logits, -1, output_type=tf.int32)
    if y.dtype.is_integer:
        return tf.equal(top, tf.cast(y, tf.int32))
    return tf.gather(y, top, batch_dims=1) > 0


@tf.function(autograph=False, reduce_retracing=True)
def _count_correct(model: Any, x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(tf.cast(_correct(model(x, training=False), y), tf.int32))


def accuracy(model: Any, x: np.ndarray, y: np.ndarray, batch_size: int = 500) -> float:
    """Accuracy of ``model`` (evaluation mode) on ``x [N, ...]``, ``y [N]`` int or ``[N, C]``."""
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"need len(x) == len(y) > 0, got {len(x)} and {len(y)}")
    hits = sum(int(_count_correct(model, tf.constant(x[i:i + batch_size]),
                                  tf.constant(y[i:i + batch_size])))
               for i in range(0, len(x), batch_size))
    return hits / len(x)


def predict_logits(model: Any, x: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Logits ``[N, C]`` of ``model`` on ``x [N, ...]`` (evaluation mode), in batches."""
    return np.concatenate([model(tf.constant(x[i:i + batch_size]), training=False).numpy()
                           for i in range(0, len(x), batch_size)], axis=0)


def loss_and_grad_norm(model: Any, loss: LossFn, x: np.ndarray, y: np.ndarray, *,
                       training: bool = False) -> tuple[float, float]:
    """``(loss, global norm of its parameter gradients)`` of ``loss(one_hot(y) [B, C],
    model(x) [B, C])`` on one batch (integer labels ``y [B]``), the model in evaluation mode
    unless ``training``. The norm is NaN when a gradient is (notebook 03's ε = 0)."""
    with tf.GradientTape() as tape:
        logits = model(x, training=training)
        value = loss(tf.one_hot(y, logits.shape[-1]), logits)
    grads = tape.gradient(value, model.trainable_variables)
    return float(value), float(tf.linalg.global_norm(grads))


def saturation(model: Any, loss: LossFn, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """How saturated ``model``'s softmax is on one batch (evaluation mode): the fraction of rows
    that are exactly one-hot, the largest probability below 1, the fraction of outputs that are
    exactly 0, and the global norm of ``loss``'s parameter gradient (:func:`loss_and_grad_norm`).
    Notebook 03 compares these between TensorFlow's oneDNN and Eigen CPU kernels."""
    p = tf.nn.softmax(model(x, training=False)).numpy()
    below = p[p < 1]
    return {"one_hot_rows": float(np.mean(p.max(axis=-1) == 1.0)),
            "largest_below_1": float(below.max()) if below.size else float("nan"),
            "zero_outputs": float(np.mean(p == 0)),
            "grad_norm": loss_and_grad_norm(model, loss, x, y)[1]}


def _optimizer(optimizer: str | keras.optimizers.Optimizer,
               learning_rate: float) -> keras.optimizers.Optimizer:
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer
    if optimizer in ("adam", "sgd"):
        return {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}[optimizer](learning_rate)
    raise ValueError(f"unknown optimizer {optimizer!r}; pass 'adam', 'sgd' or a Keras optimizer")


def _loss_fn(loss: LossFn | str) -> LossFn:
    if isinstance(loss, str):
        if loss not in losses.METHODS:
            raise ValueError(f"unknown loss method {loss!r}; choose one of {losses.METHODS}")
        return losses.reduced(losses.softmax_cross_entropy, "mean", method=loss)
    if not callable(loss):
        raise ValueError(f"loss must be a callable or a method name in {losses.METHODS}, got {loss!r}")
    return loss


def _check(data: _Data, steps: int, batch_size: int, eval_every: int,
           eval_size: int | None) -> None:
    def positive_int(name: str, v: Any) -> None:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")

    positive_int("steps", steps)
    positive_int("eval_every", eval_every)
    if eval_size is not None:
        positive_int("eval_size", eval_size)
    n = len(data.y_train)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or not 0 < batch_size <= n:
        raise ValueError(f"batch_size must be an integer in [1, {n}] (the training set size), "
                         f"got {batch_size!r}")
    if len(data.y_test) == 0:
        raise ValueError("the dataset has no test examples")


class _Step:
    """One training update (compiled or eager) and an evaluation-mode probe of its batch.

    Reads its batch from the table at ``counter``; writes ``_LOG_FIELDS`` of every step into
    ``log [steps, 4]``; never applies an update once a non-finite one was seen.
    """

    def __init__(self, model: Any, opt: keras.optimizers.Optimizer, loss: LossFn, data: _Data,
                 table: np.ndarray, sparse: bool, compiled: bool):
        self.model, self.opt, self.loss, self.sparse = model, opt, loss, sparse
        self.variables = list(model.trainable_variables)
        self.skips_overflow = isinstance(opt, keras.optimizers.LossScaleOptimizer)
        opt.build(self.variables)
        self.x, self.y = tf.constant(np.asarray(data.x_train)), tf.constant(np.asarray(data.y_train))
        self.table = tf.constant(table)
        self.counter = tf.Variable(0, dtype=tf.int32, trainable=False)
        self.diverged = tf.Variable(-1, dtype=tf.int32, trainable=False)
        self.skipped = tf.Variable(0, dtype=tf.int32, trainable=False)
        self.log = tf.Variable(tf.fill([len(table), len(_LOG_FIELDS)], np.float32(np.nan)),
                               trainable=False)
        self.traces = 0
        wrap = tf.function(autograph=False) if compiled else (lambda f: f)
        self.update, self.probe = wrap(self._update), wrap(self._probe)

    def _batch(self) -> tuple[tf.Tensor, tf.Tensor]:
        idx = self.table[self.counter]
        return tf.gather(self.x, idx), tf.gather(self.y, idx)

    def _labels(self, y: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
        if y.dtype.is_integer and not self.sparse:
            return tf.one_hot(y, tf.shape(logits)[-1], dtype=tf.float32)
        return y

    def _update(self) -> None:
        self.traces += 1  # a Python side effect: once per trace when compiled
        x, y = self._batch()
        with tf.GradientTape() as tape:
            logits = self.model(x, training=True)
            value = tf.cast(self.loss(self._labels(y, logits), logits), tf.float32)
            # x dynamic_scale for a LossScaleOptimizer (its apply divides it out again), else x 1
            scale = tf.cast(self.opt.scale_loss(tf.constant(1.0)), tf.float32)
            scaled = value * scale
        dlogits, *grads = tape.gradient(scaled, [logits, *self.variables])
        grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, self.variables,
                                                                       strict=True)]
        norm = tf.linalg.global_norm([g / scale for g in grads])  # of the unscaled gradients
        zero = tf.reduce_all(tf.equal(tf.zeros_like(logits) if dlogits is None else dlogits, 0.0), -1)
        wrong = tf.logical_not(_correct(logits, y))
        n_wrong = tf.reduce_sum(tf.cast(wrong, tf.float32))
        zero_wrong = tf.where(n_wrong > 0, tf.reduce_sum(tf.cast(zero & wrong, tf.float32))
                              / tf.maximum(n_wrong, 1.0), np.float32(np.nan))  # NaN: none wrong
        # a LossScaleOptimizer skips a non-finite update and lowers its scale itself
        # (keras/src/optimizers/loss_scale_optimizer.py, apply): counted, not a divergence
        finite = tf.math.is_finite(value) & tf.math.is_finite(norm)
        self.skipped.assign_add(tf.cast(self.skips_overflow & ~finite, tf.int32))
        ok = (finite | self.skips_overflow) & (self.diverged < 0)
        tf.cond(ok, lambda: self._apply(grads), self._mark_diverged)
        row = tf.stack([value, norm, tf.reduce_mean(tf.cast(zero, tf.float32)), zero_wrong])
        self.log.scatter_nd_update([[self.counter]], [row])
        self.counter.assign_add(1)

    def _apply(self, grads: list[tf.Tensor]) -> tf.Tensor:
        self.opt.apply_gradients(zip(grads, self.variables, strict=True))
        return tf.constant(0)

    def _mark_diverged(self) -> tf.Tensor:
        """The first non-finite step is remembered; no update is applied after it."""
        self.diverged.assign(tf.where(self.diverged < 0, self.counter, self.diverged))
        return tf.constant(0)

    def _probe(self) -> tuple[tf.Tensor, tf.Tensor]:
        x, y = self._batch()
        logits = self.model(x, training=False)
        return (tf.reduce_mean(tf.cast(_correct(logits, y), tf.float32)),
                tf.reduce_mean(tf.cast(tf.equal(tf.nn.softmax(logits), 0.0), tf.float32)))


def train(model: Any, data: _Data, *, loss: LossFn | str, steps: int, batch_size: int = 128,
          optimizer: str | keras.optimizers.Optimizer = "adam", learning_rate: float = 1e-3,
          eval_every: int = 100, eval_size: int | None = 1000, seed: int = 0,
          sparse: bool = False, compiled: bool = True, progress: bool = True) -> History:
    """Train ``model`` for ``steps`` steps on ``data`` and return its :class:`History`.

    Args:
        model: ``model(x [B, ...], training: bool) -> logits [B, C]`` with
            ``trainable_variables`` (:class:`xentlab.models.RawCNN`, a Keras model, an MLP).
        data: ``x_train``, ``y_train`` (int ``[N]`` or float ``[N, C]``), ``x_test``, ``y_test``.
        loss: ``(labels, logits) -> scalar`` (see :func:`xentlab.losses.reduced`), or a method
            name of :data:`xentlab.losses.METHODS` (its batch mean).
        steps: optimizer steps (> 0); batch_size: examples per step (1..N).
        optimizer: ``"adam"``, ``"sgd"`` (with ``learning_rate``) or a fresh Keras optimizer.
        eval_every: evaluate every this many steps (> 0); step 0 is always evaluated.
        eval_size: evaluate on the first ``eval_size`` test examples (None: all of them); the
            final accuracy always uses the whole test set.
        seed: the batch order (seed TensorFlow with :func:`xentlab.runtime.seed`).
        sparse: pass integer labels to the loss as they are instead of one-hot.
        compiled: run the step as a ``tf.function`` (True) or eagerly (False).
        progress: a tqdm progress bar on stderr.
    """
    loss = _loss_fn(loss)
    _check(data, steps, batch_size, eval_every, eval_size)
    step = _Step(model, _optimizer(optimizer, learning_rate), loss, data,
                 batch_table(len(data.y_train), int(batch_size), int(steps), seed), sparse, compiled)
    x_eval, y_eval = np.asarray(data.x_test)[:eval_size], np.asarray(data.y_test)[:eval_size]
    hist = History(config={
        "steps": int(steps), "batch_size": int(batch_size), "eval_every": int(eval_every),
        "eval_size": eval_size, "seed": int(seed), "learning_rate": float(learning_rate),
        "optimizer": optimizer if isinstance(optimizer, str) else type(optimizer).__name__,
        "loss": getattr(loss, "__name__", type(loss).__name__), "compiled": compiled})
    bar = _progress_bar(progress, steps, hist.config["loss"])
    for start in range(0, steps, eval_every):
        acc, zero = step.probe()
        hist.step.append(start)
        hist.train_accuracy.append(float(acc))
        hist.zero_fraction.append(float(zero))
        hist.test_accuracy.append(accuracy(model, x_eval, y_eval))
        if start == 0:  # the first update traces the step: kept out of step_seconds
            step.update()
            start = int(step.counter.numpy())
        tic = time.perf_counter()
        for _ in range(start, min(hist.step[-1] + eval_every, steps)):
            step.update()
        stopped = int(step.diverged.numpy()) >= 0  # one scalar read per eval_every steps
        hist.step_seconds += time.perf_counter() - tic
        bar.update(min(hist.step[-1] + eval_every, steps) - hist.step[-1])
        if stopped:
            break
    bar.close()
    _finish(hist, step, model, data, x_eval, y_eval)
    return hist


class _NoBar:
    """Stands in for a tqdm bar when ``progress`` is off (tqdm.auto is not even imported: in a
    notebook without ipywidgets it prints a warning into the cell's output)."""

    def update(self, n: int) -> None:
        """Nothing to show."""

    def close(self) -> None:
        """Nothing to close."""


def _progress_bar(progress: bool, steps: int, desc: str) -> Any:
    if not progress:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=int(steps), file=sys.stderr, desc=desc, leave=False)


def _finish(hist: History, step: _Step, model: Any, data: _Data, x_eval: np.ndarray,
            y_eval: np.ndarray) -> None:
    """Fill the per-step columns and final fields of ``hist`` from the step's log."""
    d = int(step.diverged.numpy())
    logged = d if d >= 0 else int(step.counter.numpy())  # steps whose row of the log is filled
    hist.diverged_at = d if d >= 0 else None
    hist.skipped_steps = int(step.skipped.numpy())
    hist.steps_run = logged - hist.skipped_steps
    log = step.log.numpy()
    for j, name in enumerate(_LOG_FIELDS):
        setattr(hist, name, [float(log[i, j]) for i in hist.step])
    last = d if d >= 0 else logged - 1
    hist.final_loss, hist.final_grad_norm = float(log[last, 0]), float(log[last, 1])
    hist.zero_grad_steps = int(np.sum(log[:logged, 1] == 0.0))
    logits = predict_logits(model, np.asarray(data.x_test))
    hist.final_test_accuracy = float(np.mean(_correct(tf.constant(logits), tf.constant(np.asarray(data.y_test)))))
    hist.test_prediction_counts = np.bincount(np.argmax(logits, -1), minlength=logits.shape[-1]).tolist()
    full = len(y_eval) == len(data.y_test)
    hist.final_eval_accuracy = hist.final_test_accuracy if full else accuracy(model, x_eval, y_eval)
    hist.traces = step.traces
