"""Notebook 05's helpers: document 004, Keras' ``categorical_crossentropy`` explained.

Document 004 (``004_e0833cf8a2010675.txt``, the Keras categorical_crossentropy Q&A) quotes Keras 2's
backend ``categorical_crossentropy(output, target, from_logits=False)`` (lines 9–35: renormalise,
clip to ``[_EPSILON, 1 - _EPSILON]`` (the document gives no value; Keras' default epsilon is 1e-7),
``-sum(target * log(output))`` per example, or
``tf.nn.softmax_cross_entropy_with_logits`` with ``from_logits``), and its answer says the target is
one-hot (line 51, with the example ``tf.one_hot([3], 5)``), that there is no 1/N (line 57) and that
``softmax_cross_entropy_with_logits_v2`` avoids the numerical problems (line 70). Notebook
``05_keras_categorical_crossentropy`` measures each against Keras 3 (``keras.losses``) and
:func:`xentlab.losses.keras2_categorical_crossentropy` (the quoted algorithm). This module holds the
measurements the notebook would otherwise compute inline, and the lines it prints:

- :func:`compare_versions` (:class:`VersionComparison`): Keras 2's algorithm vs Keras 3 vs the fused
  op vs the float64 oracle;
- :func:`scaled_losses`, :func:`format_scaled`: renormalisation (scaled "probabilities");
- :func:`clip_sweep` (:class:`ClipSweep`): loss and gradient over a margin, the clip's ceiling;
- :func:`softmax_cases` (:class:`SoftmaxCases`): how a softmax output reaches
  ``CategoricalCrossentropy()`` and what Keras recovers from it; :func:`loss_and_warnings`;
- :func:`training_losses`, :func:`train_four_ways`, :func:`format_training`: document 002's network
  trained with Keras' loss four ways;
- :func:`reductions`, :func:`label_smoothing` (:class:`Smoothing`), :func:`format_reductions`: the
  1/N and the ``Loss``
  class' reductions;
- :func:`target_errors`: one-hot, soft and smoothed targets against the float64 oracle;
- :func:`v1_against_v2` (:class:`V1V2`): ``softmax_cross_entropy_with_logits`` v1 vs v2.

Keras sources: ``keras/src/backend/tensorflow/nn.py`` (``categorical_crossentropy``,
``_get_logits``), ``keras/src/losses/losses.py`` (``CategoricalCrossentropy``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from xentlab import losses, runtime, train
from xentlab.models import RawCNN

__all__ = [
    "VersionComparison", "compare_versions", "scaled_losses", "format_scaled", "ClipSweep",
    "clip_sweep", "TfSoftmax", "evaluate_loss", "softmax_in_function_loss", "SoftmaxCases",
    "softmax_cases", "loss_and_warnings", "training_losses", "train_four_ways", "format_training",
    "reductions", "Smoothing", "label_smoothing", "format_reductions", "target_errors", "V1V2", "v1_against_v2",
]

keras2_cce = losses.keras2_categorical_crossentropy  # the document's algorithm
keras3_cce = keras.losses.categorical_crossentropy  # Keras 3's function


@dataclass(frozen=True)
class VersionComparison:
    """Keras 2's algorithm against Keras 3 on the same rows (see :func:`compare_versions`).

    ``rows``: ``{"probabilities": (Keras 2, Keras 3), "from_logits=True": (Keras 2, Keras 3)}``,
    each ``[B]``; ``diff_prob``, ``diff_logit``: largest ``|Keras 2 - Keras 3|`` of each row;
    ``diff_fused``: largest ``|Keras 3 from_logits - tf.nn.softmax_cross_entropy_with_logits|``;
    ``err_oracle``/``err_oracle_keras2``: largest error of Keras 3 / of Keras 2's algorithm (the
    document's) on probabilities against the float64 oracle.
    """

    rows: dict[str, tuple[np.ndarray, np.ndarray]]
    diff_prob: float
    diff_logit: float
    diff_fused: float
    err_oracle: float
    err_oracle_keras2: float

    def text(self) -> str:
        """The printed table (two lines per row) and the three differences."""
        lines = []
        for name, (k2, k3) in self.rows.items():
            lines += [f"{name:18s} Keras 2: {np.round(k2, 4)}", f"{'':18s} Keras 3: {np.round(k3, 4)}"]
        return "\n".join(lines + [
            f"max |Keras 2 - Keras 3|: probabilities {self.diff_prob:.1e}, from_logits "
            f"{self.diff_logit:.1e}",
            f"max |Keras 3 from_logits - tf.nn.softmax_cross_entropy_with_logits| = {self.diff_fused:.1e}",
            f"max |Keras 3 on probabilities - float64 oracle| < 1e-5: {self.err_oracle < 1e-5}"])


def compare_versions(target: np.ndarray, logits: np.ndarray) -> VersionComparison:
    """Score ``target`` (``[B, C]`` one-hot) against ``softmax(logits)`` (a NumPy array: no logits
    attached) and against ``logits`` (``[B, C]``, ``from_logits=True``) with Keras 2's algorithm
    (document 004, lines 23–35) and Keras 3's ``keras.losses.categorical_crossentropy``."""
    probs = tf.nn.softmax(logits).numpy()
    exact = losses.reference_softmax_cross_entropy(target, logits)  # float64 oracle
    rows = {
        "probabilities": (keras2_cce(target, probs).numpy(), keras3_cce(target, probs).numpy()),
        "from_logits=True": (keras2_cce(target, logits, from_logits=True).numpy(),
                             keras3_cce(target, logits, from_logits=True).numpy()),
    }
    fused = tf.nn.softmax_cross_entropy_with_logits(labels=target, logits=logits).numpy()
    return VersionComparison(
        rows,
        diff_prob=float(np.max(np.abs(rows["probabilities"][0] - rows["probabilities"][1]))),
        diff_logit=float(np.max(np.abs(rows["from_logits=True"][0] - rows["from_logits=True"][1]))),
        diff_fused=float(np.max(np.abs(keras3_cce(target, logits, from_logits=True).numpy() - fused))),
        err_oracle=float(np.max(np.abs(rows["probabilities"][1] - exact))),
        err_oracle_keras2=float(np.max(np.abs(rows["probabilities"][0] - exact))))


def scaled_losses(target: np.ndarray, probs: np.ndarray, scales: Sequence[float],
                  ) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """``{scale: (Keras 2, Keras 3)}``: each ``[B]`` loss of ``target`` (``[B, C]``) against
    ``probs * scale`` (``[B, C]``); renormalisation (document 004, line 25) makes them equal."""
    return {s: (keras2_cce(target, probs * s).numpy(), keras3_cce(target, probs * s).numpy())
            for s in scales}


def format_scaled(scaled: Mapping[float, tuple[np.ndarray, np.ndarray]]) -> str:
    """The printed table of :func:`scaled_losses`: a header and one line per scale."""
    return "\n".join(
        [f"{'output':>28s}  {'Keras 2':>16s}  {'Keras 3':>16s}"]
        + [f"{'probabilities x ' + format(s, 'g'):>28s}  {np.round(k2, 5)!s:>16s}  "
           f"{np.round(k3, 5)!s:>16s}" for s, (k2, k3) in scaled.items()])


@dataclass(frozen=True)
class ClipSweep:
    """One example per margin ``m`` (see :func:`clip_sweep`); arrays ``[n]``.

    ``loss_keras3``/``loss_keras2``: Keras 3 / Keras 2 on eager ``tf.nn.softmax`` probabilities
    (clipped); ``loss_fused``: Keras 3 with ``from_logits=True``; ``exact``: ``softplus(m)`` in
    float64; ``grad_clip``/``grad_fused``: d loss / d z_true of the Keras 3 clipped and fused losses;
    ``perfect``: the clipped loss of a perfect prediction (``-log(1 - 1e-7)`` in float32).
    """

    margins: np.ndarray
    loss_keras3: np.ndarray
    loss_keras2: np.ndarray
    loss_fused: np.ndarray
    exact: np.ndarray
    grad_clip: np.ndarray
    grad_fused: np.ndarray
    perfect: float

    @property
    def dead_from(self) -> float:
        """The smallest margin whose clipped gradient is exactly 0 (NaN if none is)."""
        dead = self.margins[self.grad_clip == 0.0]
        return float(dead.min()) if dead.size else float("nan")

    def text(self, ceiling: float) -> str:
        """The printed lines: the ceiling ``-log(eps)``, the largest clipped losses, the exact and
        fused loss at the largest margin, where the gradient is exactly 0 (and the fused gradient
        there; or that it never is), a perfect prediction's loss."""
        beyond = self.margins >= self.dead_from
        if np.isnan(self.dead_from):
            dead = "d loss/d z_true is never exactly 0 on these margins"
        else:
            dead = (f"d loss/d z_true is exactly 0 for every margin >= {self.dead_from:.1f} "
                    f"(all {int(np.sum(beyond))} of them: {bool(np.all(self.grad_clip[beyond] == 0))}); "
                    f"fused gradient there: {self.grad_fused[beyond].min():.4f} .. "
                    f"{self.grad_fused[beyond].max():.4f}")
        return "\n".join([
            f"-log(1e-7) in float32 = {ceiling:.6f}",
            f"largest clipped loss (Keras 3 / Keras 2) = {self.loss_keras3.max():.6f} / "
            f"{self.loss_keras2.max():.6f}",
            f"exact loss at m = {self.margins[-1]:g}: {self.exact[-1]:.4f}, fused: {self.loss_fused[-1]:.4f}",
            dead,
            f"a perfect prediction still costs -log(1 - 1e-7) in float32 = {self.perfect:.3e}"])


def clip_sweep(margins: np.ndarray) -> ClipSweep:
    """Two classes, logits ``[0, m]`` for each margin ``m`` of ``margins`` (float32 ``[n]``), the true
    class the first: ``p_true = sigmoid(-m)``, exact loss ``softplus(m)``. The softmax is
    ``tf.nn.softmax`` in eager mode, so Keras sees only probabilities and clips them."""
    margins = np.asarray(margins, np.float32)
    z = tf.Variable(np.stack([np.zeros_like(margins), margins], axis=1))
    y2 = np.tile(np.array([[1.0, 0.0]], np.float32), (len(margins), 1))
    with tf.GradientTape(persistent=True) as tape:
        loss_keras3 = keras3_cce(y2, tf.nn.softmax(z))  # eager: probabilities only
        loss_keras2 = keras2_cce(y2, tf.nn.softmax(z))
        loss_fused = keras3_cce(y2, z, from_logits=True)
    grad_clip = tape.gradient(loss_keras3, z).numpy()[:, 0]
    grad_fused = tape.gradient(loss_fused, z).numpy()[:, 0]
    one = np.array([[1.0, 0.0]], np.float32)
    return ClipSweep(margins, loss_keras3.numpy(), loss_keras2.numpy(), loss_fused.numpy(),
                     np.logaddexp(0.0, margins.astype(np.float64)), grad_clip, grad_fused,
                     float(keras3_cce(one, one)[0]))


class TfSoftmax(keras.layers.Layer):
    """A layer returning a raw ``tf.nn.softmax`` (no ``_keras_logits`` attached)."""

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return tf.nn.softmax(inputs)


def evaluate_loss(y: tf.Tensor, z: tf.Tensor, *, run_eagerly: bool) -> float:
    """``model.evaluate(z, y)`` of a one-layer model whose layer is :class:`TfSoftmax`, compiled
    with ``CategoricalCrossentropy()`` (graph, or eager with ``run_eagerly=True``)."""
    inp = keras.Input((z.shape[-1],))
    model = keras.Model(inp, TfSoftmax()(inp))
    model.compile(loss=keras.losses.CategoricalCrossentropy(), run_eagerly=run_eagerly)
    return float(model.evaluate(z, y, verbose=0))


def softmax_in_function_loss(y: tf.Tensor, z: tf.Tensor) -> float:
    """``CategoricalCrossentropy()(y, tf.nn.softmax(z))`` inside a ``tf.function``: Keras sees the
    ``Softmax`` op (``_get_logits``) and scores its input."""
    cce = keras.losses.CategoricalCrossentropy()

    @tf.function
    def graph_loss(z: tf.Tensor) -> tf.Tensor:
        return cce(y, tf.nn.softmax(z))

    return float(graph_loss(z))


@dataclass(frozen=True)
class SoftmaxCases:
    """The loss of one set of logits reaching ``CategoricalCrossentropy()`` by six routes.

    ``cases``: ``(how the output reaches the loss, what Keras sees, loss)``;
    ``keras_layer_has_logits``/``tf_softmax_has_logits``: whether a ``keras.layers.Softmax`` output
    and a ``tf.nn.softmax`` output carry ``_keras_logits``.
    """

    cases: list[tuple[str, str, float]]
    keras_layer_has_logits: bool
    tf_softmax_has_logits: bool

    def text(self, exact: float) -> str:
        """The printed table, under a line with the exact loss and the two attribute checks."""
        return "\n".join(
            [f"exact loss (float64 oracle) = {exact:.4f};  has _keras_logits: Keras Softmax layer "
             f"output {self.keras_layer_has_logits}, tf.nn.softmax output {self.tf_softmax_has_logits}",
             f"{'how the output reaches CategoricalCrossentropy()':46s} {'what Keras sees':26s} {'loss':>8s}"]
            + [f"{name:46s} {sees:26s} {value:8.4f}" for name, sees, value in self.cases])


def softmax_cases(y: tf.Tensor, z: tf.Tensor) -> SoftmaxCases:
    """Labels ``y`` and logits ``z`` (``[B, C]``; notebook 05: one example) through: a
    ``keras.layers.Softmax`` output (eager), ``tf.nn.softmax`` inside a ``tf.function``,
    ``tf.nn.softmax`` eagerly, ``model.evaluate`` of a :class:`TfSoftmax` model (graph and
    ``run_eagerly=True``), and ``from_logits=True`` on the logits. Losses are batch means."""
    cce = keras.losses.CategoricalCrossentropy()
    keras_softmax_out = keras.layers.Softmax()(z)
    cases = [
        ("keras.layers.Softmax output, eager", "_keras_logits attribute",
         float(cce(y, keras_softmax_out))),
        ("tf.nn.softmax inside tf.function", "op type 'Softmax'", softmax_in_function_loss(y, z)),
        ("tf.nn.softmax, eager", "probabilities only", float(cce(y, tf.nn.softmax(z)))),
        ("model.evaluate, tf.nn.softmax layer (graph)", "op type 'Softmax'",
         evaluate_loss(y, z, run_eagerly=False)),
        ("model.evaluate, same, run_eagerly=True", "probabilities only",
         evaluate_loss(y, z, run_eagerly=True)),
        ("from_logits=True on the logits", "logits",
         float(keras.losses.CategoricalCrossentropy(from_logits=True)(y, z))),
    ]
    return SoftmaxCases(cases, hasattr(keras_softmax_out, "_keras_logits"),
                        hasattr(tf.nn.softmax(z), "_keras_logits"))


def loss_and_warnings(fn: Callable[[], Any]) -> tuple[float, list[str]]:
    """``float(fn())`` and the messages of every warning it raised (all recorded)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = float(fn())
    return value, [str(w.message) for w in caught]


def training_losses() -> dict[str, tuple[Callable[[tf.Tensor, tf.Tensor], tf.Tensor], bool]]:
    """The four ways notebook 05 trains with Keras' ``CategoricalCrossentropy()`` (batch mean):
    ``name: (loss(y, z) on the logits z, compiled step?)``: a Keras softmax layer (compiled),
    ``tf.nn.softmax`` in an eager loop and in a ``tf.function`` loop, and ``from_logits=True``."""
    cce = keras.losses.CategoricalCrossentropy()
    cce_logits = keras.losses.CategoricalCrossentropy(from_logits=True)
    softmax_layer = keras.layers.Softmax()
    return {
        "Keras softmax layer": (lambda y, z: cce(y, softmax_layer(z)), True),
        "tf.nn.softmax, eager loop": (lambda y, z: cce(y, tf.nn.softmax(z)), False),
        "tf.nn.softmax, tf.function loop": (lambda y, z: cce(y, tf.nn.softmax(z)), True),
        "from_logits=True": (cce_logits, True),
    }


def train_four_ways(ds: Any, *, steps: int, batch_size: int, learning_rate: float, seed: int,
                    eval_every: int, progress: bool) -> dict[str, train.History]:
    """Train document 002's raw-variable CNN (:class:`xentlab.models.RawCNN`, stddev-1 weights)
    once per loss of :func:`training_losses`, each run from :func:`xentlab.runtime.seed` ``(seed)``
    (the process' seeds change), with Adam on the same batches; evaluations on the first 500 test
    digits every ``eval_every`` steps. Op determinism is the caller's (notebook 05 turns it on).
    Returns ``{name: History}``."""
    histories = {}
    for name, (loss_fn, compiled) in training_losses().items():
        runtime.seed(seed)  # Python, NumPy, TensorFlow and Keras
        histories[name] = train.train(
            RawCNN(seed=seed), ds, loss=loss_fn, steps=steps, batch_size=batch_size,
            learning_rate=learning_rate, seed=seed, compiled=compiled, eval_every=eval_every,
            eval_size=500, progress=progress)
    return histories


def format_training(histories: Mapping[str, train.History]) -> str:
    """The printed table: per run the final test accuracy, the last logged loss, and the mean
    fraction of examples with an exactly zero logit gradient, overall and among the misclassified."""
    lines = [f"{'run':32s} {'test acc':>8s} {'final loss':>10s} {'zero-grad, all':>14s} "
             f"{'zero-grad, wrong':>16s}"]
    for name, h in histories.items():
        zero_all, zero_wrong = np.mean(h.zero_grad_fraction), np.nanmean(h.zero_grad_wrong_fraction)
        lines.append(f"{name:32s} {h.final_test_accuracy:8.1%} {h.loss[-1]:10.1f} {zero_all:14.0%} "
                     f"{zero_wrong:16.0%}")
    return "\n".join(lines)


REDUCTIONS = ("sum_over_batch_size", "sum", "none")


def reductions(target: np.ndarray, probs: np.ndarray) -> dict[str, np.ndarray]:
    """``CategoricalCrossentropy(reduction=r)(target, probs)`` for each ``r`` of
    ``("sum_over_batch_size", "sum", "none")``: scalars, scalars, ``[B]``."""
    return {r: keras.losses.CategoricalCrossentropy(reduction=r)(target, probs).numpy()
            for r in REDUCTIONS}


@dataclass(frozen=True)
class Smoothing:
    """Keras' ``label_smoothing`` against the smoothed targets by hand (see :func:`label_smoothing`).

    ``keras``, ``by_hand``: ``[B]``; ``smoothing``: the factor; ``classes``: ``C``, from the
    target's last axis.
    """

    keras: np.ndarray
    by_hand: np.ndarray
    smoothing: float
    classes: int


def label_smoothing(target: np.ndarray, probs: np.ndarray, smoothing: float) -> Smoothing:
    """``CategoricalCrossentropy(label_smoothing=smoothing, reduction="none")`` and
    ``categorical_crossentropy`` on the targets ``(1 - smoothing) * target + smoothing / C``
    (``target``, ``probs``: ``[B, C]``), as a :class:`Smoothing`."""
    classes = int(target.shape[-1])
    smooth = keras.losses.CategoricalCrossentropy(label_smoothing=smoothing, reduction="none")(
        target, probs).numpy()
    by_hand = keras3_cce(target * (1 - smoothing) + smoothing / classes, probs).numpy()
    return Smoothing(smooth, by_hand, smoothing, classes)


def format_reductions(reduced: Mapping[str, np.ndarray], per_example: np.ndarray,
                      smoothed: Smoothing) -> str:
    """The printed lines: each reduction's shape and value, the vector's mean and sum (``[B]``
    ``per_example``), the class' default reduction, and label smoothing (:func:`label_smoothing`)
    against the smoothed targets by hand."""
    lines = []
    for reduction, value in reduced.items():
        shown = f"{float(value):.4f}" if value.ndim == 0 else np.round(value, 4)
        lines.append(f"CategoricalCrossentropy(reduction={reduction!r}) -> shape {value.shape}, "
                     f"value {shown}")
    a = smoothed.smoothing
    return "\n".join(lines + [
        f"mean of the vector = {per_example.mean():.4f}, sum = {per_example.sum():.4f}",
        f"default reduction: {keras.losses.CategoricalCrossentropy().reduction}",
        f"label_smoothing={a:g} == targets {1 - a:g}*y + {a:g}/{smoothed.classes}: max diff "
        f"{np.max(np.abs(smoothed.keras - smoothed.by_hand)):.1e}; first example "
        f"{per_example[0]:.4f} -> {smoothed.keras[0]:.4f}"])


def target_errors(targets: Mapping[str, np.ndarray], logits: np.ndarray,
                  ) -> tuple[dict[str, float], str]:
    """For each target row (``[1, C]``), Keras 3's loss on ``tf.nn.softmax(logits)`` (``[1, C]``)
    and its error against the float64 oracle: ``({name: |Keras - exact|}, printed lines)``."""
    errors, lines = {}, []
    for name, t in targets.items():
        value = float(keras3_cce(t, tf.nn.softmax(logits))[0])
        errors[name] = abs(value - float(losses.reference_softmax_cross_entropy(t, logits)[0]))
        lines.append(f"{name:13s} target {np.round(t[0], 2)}: Keras {value:.4f}, "
                     f"|Keras - exact| < 1e-5: {errors[name] < 1e-5}")
    return errors, "\n".join(lines)


@dataclass(frozen=True)
class V1V2:
    """``tf.nn.softmax_cross_entropy_with_logits`` (v2) against ``tf.compat.v1.nn``'s (v1).

    ``same_values``: identical losses; ``v2_label_grad``: v2's gradient into the labels is
    ``-log_softmax(logits)``; ``v1_label_grad``: v1's (None: v1 stops the gradient into the labels).
    """

    same_values: bool
    v2_label_grad: bool
    v1_label_grad: Any

    def text(self) -> str:
        """The three printed lines."""
        return "\n".join([
            f"tf.nn.softmax_cross_entropy_with_logits: gradient into the labels = "
            f"-log_softmax(logits): {self.v2_label_grad}",
            f"tf.compat.v1.nn.softmax_cross_entropy_with_logits: gradient into the labels: "
            f"{self.v1_label_grad}",
            f"v1 and v2 compute the same loss values: {self.same_values}"])


def v1_against_v2(labels: np.ndarray, logits: np.ndarray) -> V1V2:
    """Both ops on ``labels`` (a variable, ``[B, C]``) and ``logits`` (``[B, C]``), with their
    gradients into the labels. TensorFlow 1.5 added v2 (it back-propagates into the labels) and
    made v1 wrap them in ``stop_gradient`` (``tensorflow/python/ops/nn_ops.py``)."""
    labels_var = tf.Variable(labels)
    with tf.GradientTape(persistent=True) as tape:
        v2_loss = tf.nn.softmax_cross_entropy_with_logits(labels=labels_var, logits=logits)
        v1_loss = tf.compat.v1.nn.softmax_cross_entropy_with_logits(labels=labels_var, logits=logits)
    g_v2, g_v1 = tape.gradient(v2_loss, labels_var), tape.gradient(v1_loss, labels_var)
    return V1V2(
        same_values=bool(np.array_equal(v2_loss.numpy(), v1_loss.numpy())),
        v2_label_grad=g_v2 is not None and bool(np.allclose(g_v2, -tf.nn.log_softmax(logits), atol=1e-6)),
        v1_label_grad=g_v1)
