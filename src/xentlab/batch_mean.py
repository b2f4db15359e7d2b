"""Notebook 01's helpers: document 000, why ``reduce_mean`` over the per-example loss vector.

Document 000 (``000_0c37df1317e85c45.txt``, the reduce_mean Q&A) runs a ``tf.layers`` MNIST CNN
on one batch of 10 digits and prints the per-example vector of
``tf.nn.sparse_softmax_cross_entropy_with_logits`` (lines 65–67, 79–82) and its ``reduce_mean``
(line 84). Notebook ``01_batch_mean`` reruns that and then measures what sum vs mean changes in
training. This module holds what the notebook would otherwise compute inline:

- :func:`agreement_errors`, :func:`agreement_text`: the batch's losses against the float64 oracle
  and ``xentlab.losses`` (the errors, and the two lines printed from them);
- :func:`mean_loss`: the document's ``reduce_mean`` of the per-example loss for another network;
- :func:`compare_with_document` (:class:`Comparison`): our ten losses against the document's ten,
  as two samples (standard errors of the means), with the texts the notebook prints and records;
- :func:`run_sweep`: the sum-vs-mean training sweep (optimizer × batch size × reduction);
- :func:`accuracy_table`, :func:`format_accuracy_table`: its final accuracies and logit spread;
- :func:`summarise` (:class:`SweepSummary`), :func:`summary_text`, :func:`sweep_markdown`: the
  sweep's differences, printed and as the prose under the table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from xentlab import losses, models, train

__all__ = [
    "Comparison", "SweepSummary", "agreement_errors", "agreement_text", "mean_loss", "compare_with_document", "optimizer_for",
    "run_sweep", "accuracy_table", "format_accuracy_table", "summarise", "summary_text",
    "sweep_markdown",
]

SweepKey = tuple[str, int, str]
"""``(optimizer, batch size, reduction)``: optimizer ``"sgd"``, ``"adam"`` or ``"adam, large eps"``;
reduction ``"mean"``, ``"sum"`` or ``"sum/B"`` (the sum at the learning rate divided by the batch
size)."""


def agreement_errors(labels: np.ndarray, logits: tf.Tensor, per_example: tf.Tensor,
                     ) -> tuple[float, float]:
    """``(error against the oracle, error of xentlab.losses)``: the largest ``|per_example -
    oracle|``, with the float64 oracle :func:`xentlab.losses.reference_softmax_cross_entropy`, and
    the largest ``|xentlab.losses.sparse_softmax_cross_entropy - per_example|``.

    ``labels``: integer ``[B]``; ``logits``: float32 ``[B, C]``; ``per_example``: ``[B]``, from
    ``tf.nn.sparse_softmax_cross_entropy_with_logits``.
    """
    vector = np.asarray(per_example)
    z = np.asarray(logits)
    oracle = losses.reference_softmax_cross_entropy(np.eye(z.shape[-1])[labels], z)
    ours = losses.sparse_softmax_cross_entropy(labels, logits).numpy()
    return float(np.max(np.abs(vector - oracle))), float(np.max(np.abs(ours - vector)))


def agreement_text(err_oracle: float, err_losses: float) -> str:
    """Two printed lines from :func:`agreement_errors`: the per-example losses match the float64
    oracle within 1e-5, and ``xentlab.losses.sparse_softmax_cross_entropy`` agrees within 1e-6."""
    return (f"per-example losses match the float64 oracle (within 1e-5): {err_oracle <= 1e-5}\n"
            f"xentlab.losses.sparse_softmax_cross_entropy agrees: {err_losses <= 1e-6}")


def mean_loss(model: Callable[[np.ndarray], tf.Tensor], x: np.ndarray, labels: np.ndarray) -> float:
    """``tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, model(x)))`` as
    document 000 computes it (lines 65–67; labels cast to int32): ``x`` ``[B, 784]`` (or
    ``[B, 28, 28]``), integer ``labels`` ``[B]``, ``model(x)`` logits ``[B, C]``."""
    return float(tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int32), logits=model(x))))


@dataclass(frozen=True)
class Comparison:
    """Our batch of ten losses against the document's ten (document 000, lines 82 and 84).

    ``ours``, ``document``: float32 ``[10]``; ``mean``: our ``reduce_mean``; ``document_mean``: the
    document's printed mean (2.2959247). ``document_consistent``: the float32 ``reduce_mean`` of
    the document's ten printed values equals its printed mean. ``se_*``: standard errors of each
    mean of ten (``std(ddof=1) / sqrt(n)``, the spread within one batch: it leaves out the variation
    between random initialisations) and of their difference (``hypot`` of the two).
    """

    ours: np.ndarray
    document: np.ndarray
    mean: float
    document_mean: float
    document_consistent: bool
    se_ours: float
    se_document: float
    se_diff: float

    def lines(self, mean_no_dropout: float, ln10: float) -> str:
        """The four lines notebook 01 prints: both vectors and means, the document's
        self-consistency, and the differences (from the document, from ``ln10``) with their
        standard errors."""
        return "\n".join([
            f"document's ten losses: {self.document} -> printed mean {self.document_mean}",
            f"ours (dropout on):     {np.round(self.ours, 4)} -> mean {self.mean:.4f} "
            f"({mean_no_dropout:.4f} dropout off)",
            f"reduce_mean of the document's ten printed values == its printed mean: "
            f"{self.document_consistent}",
            f"ours - document = {self.mean - self.document_mean:+.4f} (standard error "
            f"{self.se_diff:.4f}); ours - ln 10 = {self.mean - ln10:+.4f} (standard error "
            f"{self.se_ours:.4f})"])

    def printed_vector_text(self) -> str:
        """The measured sentence of claim ``000.printed-vector``."""
        return (f"our ten losses {self.ours.min():.3f} to {self.ours.max():.3f}, mean "
                f"{self.mean:.4f}; difference from the document's mean "
                f"{self.mean - self.document_mean:+.4f} (standard error {self.se_diff:.4f}); its "
                f"printed mean is the reduce_mean of its vector: {self.document_consistent}")

    def initial_loss_text(self, ln10: float) -> str:
        """The measured sentence of claim ``000.initial-loss``."""
        return (f"mean {self.mean:.4f} (dropout on) against the document's "
                f"{self.document_mean:.4f}: difference {self.mean - self.document_mean:+.4f}, "
                f"standard error {self.se_diff:.4f}; mean − ln 10 = {self.mean - ln10:+.4f}")


def compare_with_document(ours: np.ndarray, document: np.ndarray, mean: float,
                          document_mean: float) -> Comparison:
    """Compare two batches of per-example losses as samples (see :class:`Comparison`).

    ``ours``, ``document``: ``[n]`` (n >= 2) losses; ``mean``: our ``reduce_mean`` as the notebook
    computed it; ``document_mean``: the document's printed mean (``documents.value("000.mean")``).
    """
    ours = np.asarray(ours, np.float32)
    document = np.asarray(document, np.float32)
    if ours.ndim != 1 or document.ndim != 1 or min(len(ours), len(document)) < 2:
        raise ValueError(f"need two vectors of at least 2 losses, got shapes {ours.shape} and "
                         f"{document.shape}")
    consistent = bool(tf.reduce_mean(document).numpy() == np.float32(document_mean))
    se_doc, se_ours = (float(v.std(ddof=1) / np.sqrt(len(v))) for v in (document, ours))
    return Comparison(ours, document, float(mean), float(document_mean), consistent,
                      se_ours, se_doc, float(np.hypot(se_doc, se_ours)))


def optimizer_for(name: str, learning_rate: float, large_epsilon: float) -> str | keras.optimizers.Adam:
    """The optimizer of a sweep run: ``"sgd"`` and ``"adam"`` by name (built by
    :func:`xentlab.train.train` with its learning rate), ``"adam, large eps"`` as a fresh Keras
    ``Adam(learning_rate, epsilon=large_epsilon)`` (Keras' default epsilon is 1e-7)."""
    if name == "adam, large eps":
        return keras.optimizers.Adam(learning_rate, epsilon=large_epsilon)
    if name not in ("sgd", "adam"):
        raise ValueError(f"unknown optimizer {name!r}: expected 'sgd', 'adam' or 'adam, large eps'")
    return name


def run_sweep(ds: Any, optimizers: Mapping[str, float], variants: Mapping[str, Sequence[str]], *,
              batch_sizes: Sequence[int], examples_per_run: int, adam_large_epsilon: float,
              width: Mapping[str, Any], eval_size: int, seed: int, progress: bool,
              build: Callable[..., Any] = models.layers_cnn,
              ) -> tuple[dict[SweepKey, train.History], dict[SweepKey, Any]]:
    """Train one network per ``(optimizer, batch size, reduction)`` (in that nested order) and
    return ``(histories, trained models)`` keyed as :data:`SweepKey`.

    Every run builds ``build(seed=seed, **width)`` (document 000's CNN at the sweep's width), the
    same seed and batch order, and trains ``examples_per_run // batch size`` steps on ``ds`` with
    the per-example softmax cross-entropy reduced by ``"mean"`` or ``"sum"``
    (:func:`xentlab.losses.reduced`); ``"sum/B"`` is the sum at the optimizer's learning rate
    (``optimizers[name]``) divided by the batch size. Evaluations: 8 per run on the first
    ``eval_size`` test digits. A run whose loss turns NaN/Inf stops (``History.diverged_at``).
    """
    sweep: dict[SweepKey, train.History] = {}
    trained: dict[SweepKey, Any] = {}
    for opt, lr in optimizers.items():
        for b in batch_sizes:
            for variant in variants[opt]:
                steps = examples_per_run // b
                model = build(seed=seed, **width)
                sweep[(opt, b, variant)] = train.train(
                    model, ds, loss=losses.reduced(losses.softmax_cross_entropy,
                                                   "mean" if variant == "mean" else "sum"),
                    steps=steps, batch_size=b, optimizer=optimizer_for(opt, lr, adam_large_epsilon),
                    learning_rate=lr / b if variant == "sum/B" else lr,
                    eval_every=max(1, steps // 8), eval_size=eval_size, seed=seed, progress=progress)
                trained[(opt, b, variant)] = model
    return sweep, trained


def accuracy_table(sweep: Mapping[SweepKey, train.History], trained: Mapping[SweepKey, Any],
                   x: np.ndarray) -> dict[str, dict[str, Any]]:
    """One row per run, keyed ``"optimizer,batch,reduction"`` in the sweep's order: final test
    accuracy, ``diverged_at``, final loss, steps, and ``logit_spread``: the largest standard
    deviation across the examples ``x`` (``[n, 28, 28]``; notebook 01: 500 test digits) of any
    logit of the trained model (about 0: the network predicts a constant distribution), and
    ``spread_examples``: ``len(x)``."""
    table = {}
    for (opt, b, variant), h in sweep.items():
        z = np.asarray(trained[(opt, b, variant)](x))
        table[f"{opt},{b},{variant}"] = {
            "test_accuracy": h.final_test_accuracy, "diverged_at": h.diverged_at,
            "final_loss": h.final_loss, "steps": h.config["steps"],
            "logit_spread": float(np.std(z, axis=0).max()), "spread_examples": int(len(x))}
    return table


def format_accuracy_table(sweep: Mapping[SweepKey, train.History], examples_per_run: int) -> str:
    """The printed table: a title, a header, one line per (optimizer, batch size) with the test
    accuracy of each reduction (mean, sum, sum at lr/B) and ``div@step`` after a diverged run."""
    rows: dict[tuple[str, int], list[str]] = {}
    for (opt, b, _), h in sweep.items():
        rows.setdefault((opt, b), []).append(
            f"{h.final_test_accuracy:.3f}"
            + (f" div@{h.diverged_at}" if h.diverged_at is not None else ""))
    return "\n".join(
        [f"test accuracy after {examples_per_run} examples (NaN/Inf stops a run: 'div@step')",
         f"{'optimizer':15s} {'batch':>5s}   {'mean':>9s}   {'sum':>9s}   {'sum, lr/B':>9s}"]
        + [f"{opt:15s} {b:5d}   " + "   ".join(f"{c:>9s}" for c in cells)
           for (opt, b), cells in rows.items()])


@dataclass(frozen=True)
class SweepSummary:
    """The sweep's differences in final test accuracy (fractions; see :func:`summarise`).

    - ``adam_gap``: largest ``|acc(adam, sum) - acc(adam, mean)|`` over batch sizes;
    - ``eps_lead``: per batch size, ``acc(sum) - acc(mean)`` for Adam with the large epsilon;
      ``eps_gap`` its largest value;
    - ``sgd_rescaled_gap``: largest ``|acc(sgd, sum/B) - acc(sgd, mean)|``;
    - ``sgd_sum_loss``: smallest ``acc(sgd, mean) - acc(sgd, sum)``;
    - ``dead``: batch sizes at which SGD with the sum at the mean's learning rate predicts a
      constant distribution (logit spread below 1e-3), in the sweep's order;
    - ``mean_falls``: for every optimizer, the mean's accuracy does not rise with the batch size;
    - ``spread_examples``: how many examples the logit spread was measured on.
    """

    adam_gap: float
    eps_gap: float
    eps_lead: dict[int, float]
    sgd_rescaled_gap: float
    sgd_sum_loss: float
    dead: list[int]
    mean_falls: bool
    spread_examples: int

    def metric(self) -> dict[str, Any]:
        """What notebook 01 records as its ``sum_vs_mean_summary`` metric."""
        return {"adam_max_gap": self.adam_gap, "adam_large_eps_max_lead_of_sum": self.eps_gap,
                "sgd_rescaled_max_gap": self.sgd_rescaled_gap,
                "sgd_sum_min_accuracy_loss": self.sgd_sum_loss,
                "sgd_sum_constant_prediction_batch_sizes": self.dead}


def summarise(sweep: Mapping[SweepKey, train.History], table: Mapping[str, Mapping[str, Any]],
              batch_sizes: Sequence[int]) -> SweepSummary:
    """Reduce the sweep (every optimizer of :func:`optimizer_for` with its reductions, at every
    batch size) and its :func:`accuracy_table` to a :class:`SweepSummary`."""
    acc = {key: h.final_test_accuracy for key, h in sweep.items()}
    eps_lead = {b: acc["adam, large eps", b, "sum"] - acc["adam, large eps", b, "mean"]
                for b in batch_sizes}
    ordered = sorted(batch_sizes)
    optimizers = list(dict.fromkeys(k[0] for k in sweep))
    return SweepSummary(
        adam_gap=max(abs(acc["adam", b, "sum"] - acc["adam", b, "mean"]) for b in batch_sizes),
        eps_gap=max(eps_lead.values()), eps_lead=eps_lead,
        sgd_rescaled_gap=max(abs(acc["sgd", b, "sum/B"] - acc["sgd", b, "mean"]) for b in batch_sizes),
        sgd_sum_loss=min(acc["sgd", b, "mean"] - acc["sgd", b, "sum"] for b in batch_sizes),
        dead=[b for b in batch_sizes if table[f"sgd,{b},sum"]["logit_spread"] < 1e-3],
        mean_falls=all(acc[o, b1, "mean"] >= acc[o, b2, "mean"]
                       for o in optimizers for b1, b2 in zip(ordered, ordered[1:], strict=False)),
        spread_examples=min(row["spread_examples"] for row in table.values()))


def _sum_loss_words(sgd_sum_loss: float) -> str:
    """The SGD sum at the mean's learning rate against the mean, worded from the sign of
    ``SweepSummary.sgd_sum_loss`` (the smallest ``acc(mean) - acc(sum)``)."""
    if sgd_sum_loss > 0:
        return f"worse by at least {sgd_sum_loss:.2f}"
    return f"not worse at every batch size (smallest accuracy loss {sgd_sum_loss:+.2f})"


def _eps_lead_words(eps_gap: float) -> str:
    """Adam with the large epsilon: the sum against the mean, worded from the sign of
    ``SweepSummary.eps_gap`` (the largest ``acc(sum) - acc(mean)``)."""
    if eps_gap > 0:
        return f"the sum ahead of the mean by up to {eps_gap:.3f}"
    return f"the sum not ahead of the mean at any batch size (largest difference {eps_gap:+.3f})"


def summary_text(s: SweepSummary, adam_large_epsilon: float) -> str:
    """The three printed lines under the accuracy table (the words of a difference follow its
    sign)."""
    return (f"Adam: largest |accuracy(sum) - accuracy(mean)| = {s.adam_gap:.3f}; with eps "
            f"{adam_large_epsilon:g}: {_eps_lead_words(s.eps_gap)}\n"
            f"SGD: largest |accuracy(sum, lr/B) - accuracy(mean)| = {s.sgd_rescaled_gap:.3f}; "
            f"sum at the mean's lr is {_sum_loss_words(s.sgd_sum_loss)}\n"
            f"SGD sum at the mean's lr: constant prediction (logit spread < 1e-3) at batch sizes "
            f"{s.dead}")


def sweep_markdown(s: SweepSummary, *, batch_sizes: Sequence[int], sgd_learning_rate: float,
                   adam_large_epsilon: float, examples_per_run: int) -> str:
    """The sweep's findings as four markdown bullets (SGD, Adam, Adam with a large epsilon, the
    batch size), worded from this run's measurements (the numbers, the sentences a measurement
    decides, and the words of each difference, chosen from its sign)."""
    def where(bs: Sequence[int]) -> str:
        return "every batch size tried" if list(bs) == list(batch_sizes) else f"batch sizes {list(bs)}"

    sgd = (f"- **SGD**: with the sum, the step is the batch size times the mean's step "
           f"({min(batch_sizes)}× to {max(batch_sizes)}× here). At the mean's learning rate "
           f"({sgd_learning_rate:g}) the summed loss is {_sum_loss_words(s.sgd_sum_loss)} in "
           "test accuracy")
    if s.dead:
        sgd += (f"; at {where(s.dead)} the network ends predicting the same distribution for every "
                f"digit (the spread of its logits across {s.spread_examples:,} test digits is below "
                "1e-3) with no NaN or error, so nothing stops the run")
    sgd += (f". With the learning rate divided by the batch size the sum is the mean (largest "
            f"accuracy difference {s.sgd_rescaled_gap:.3f}): sum vs mean is a learning-rate scale.")
    adam = (f"- **Adam**: sum and mean differ by at most {s.adam_gap:.3f} in test accuracy. Adam "
            "divides each parameter's step by the running RMS of its gradient, so a constant factor "
            "cancels, except against the `epsilon` in the denominator (1e-7 by default).")
    ahead = [b for b, v in s.eps_lead.items() if v > 0]
    large = (f"- **Adam with epsilon {adam_large_epsilon:g}**: the step is `m / (sqrt(v) + eps)`, "
             "and the mean's gradients are N times smaller than the sum's, so `eps` damps them "
             f"more. Test accuracy of the sum minus the mean's after {examples_per_run:,} examples: "
             + ", ".join(f"{v:+.3f} at batch {b}" for b, v in s.eps_lead.items())
             + (f" (the sum ahead at {where(ahead)}" if ahead else " (the sum ahead at no batch size")
             + f"; default Adam's largest gap: {s.adam_gap:.3f}).")
    steps_note = ("- At an equal number of examples a smaller batch takes more steps "
                  "(`examples_per_run` / batch size)"
                  + (", and here the mean's test accuracy falls with the batch size for every "
                     "optimizer." if s.mean_falls else "."))
    return "\n".join([sgd, adam, large, steps_note])
