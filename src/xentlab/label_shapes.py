"""Labels and shapes of the sigmoid, softmax and sparse cross-entropy ops: notebook 04's helpers.

Document 003 (``003_104f60bfdb9941db.txt``, a 2020 blog post) explains TensorFlow's three
``*_cross_entropy_with_logits`` ops: what a logit is, that the sigmoid op is element-wise, that the
softmax op wants label rows that are distributions and returns ``[batch_size, 1]``, and that the
sparse op takes integer labels ``[batch_size, 1]``. Notebook 04 (``04_sigmoid_softmax_sparse``)
checks each statement; this module holds what the notebook computes or prints in more than a few
lines:

- :func:`logit_lines`, :func:`row_sum_lines`: section 1's printed facts about logit, sigmoid and
  softmax.
- :func:`op_types`, :func:`forward_backward_times`, :func:`timing_lines`, :func:`timing_text`:
  is the sigmoid op a fused kernel, and is either op faster than the textbook form (document 003, line 11: "更高效地计算").
- :func:`multihot_softmax_ce`, :func:`multihot_lines`: the softmax op's value and gradient on a
  multi-hot label row (TensorFlow's docstring: "If they are not, the computation of the gradient
  will be incorrect.").
- :func:`sparse_error`, :func:`sparse_vs_dense`, :func:`docstring_sentence`,
  :func:`broadcast_lines`: the sparse op's labels, and why a ``[batch_size, 1]`` rank matters.
- :func:`kernel_state`, :func:`determinism_lines`: what ``enable_op_determinism()`` changes.
- :func:`closest_pair`: the softmax row and classes used against "independent and exclusive".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from xentlab import bench, notebook

__all__ = [
    "logit_lines", "row_sum_lines", "op_types", "forward_backward_times", "timing_lines", "timing_text",
    "multihot_softmax_ce", "multihot_lines", "sparse_error", "sparse_vs_dense",
    "docstring_sentence", "broadcast_lines", "kernel_state", "determinism_lines", "closest_pair",
]


def logit_lines(p: np.ndarray, logit: np.ndarray, signs_ok: bool) -> str:
    """Five printed lines about ``logit = log(p / (1 - p))`` at probabilities ``p [n]`` (``n``
    odd, the middle one 0.5): ``p`` and ``logit(p)`` rounded to 4 places, whether
    ``sigmoid(logit(p)) == p`` (TensorFlow's sigmoid, ``np.allclose``), ``logit(0.5)`` with
    ``signs_ok`` (negative below 0.5, positive above, as the notebook measured it), and whether
    ``softmax([x, 0])[0] == sigmoid(x)`` on ``x`` = -6, -5, ..., 6 (the two-class softmax is the
    sigmoid)."""
    p, logit = np.asarray(p), np.asarray(logit)
    z2 = np.linspace(-6, 6, 13)
    two_class = tf.nn.softmax(np.stack([z2, np.zeros_like(z2)], axis=1)).numpy()[:, 0]
    return "\n".join([
        f"p           {p}",
        f"logit(p)    {np.round(logit, 4)}",
        f"sigmoid(logit(p)) == p: {bool(np.allclose(tf.sigmoid(logit).numpy(), p))}",
        f"logit(0.5) = {logit[len(logit) // 2]} | negative below 0.5, positive above: {bool(signs_ok)}",
        f"softmax([x, 0])[0] == sigmoid(x): {bool(np.allclose(two_class, tf.sigmoid(z2).numpy()))}",
    ])


def row_sum_lines(softmax_sums: np.ndarray, sigmoid_sums: np.ndarray, softmax_is_distribution: bool,
                  sigmoid_is_not: bool) -> str:
    """Three printed lines: the row sums ``[batch]`` of softmax (5 places) and of sigmoid (3
    places) over one batch of logits, and the two verdicts the notebook computed from them."""
    return (f"row sums, softmax: {np.round(softmax_sums, 5)}\n"
            f"row sums, sigmoid: {np.round(sigmoid_sums, 3)}\n"
            f"softmax rows sum to 1: {softmax_is_distribution} | sigmoid rows do not: {sigmoid_is_not}")


def op_types(fn: Callable[..., Any], *args: Any) -> list[str]:
    """The sorted operation types of ``tf.function(fn)``'s graph traced on ``args``, without the
    bookkeeping ones (``Placeholder``, ``Identity``, ``NoOp``): what the op is built from (a fused
    kernel shows as one ``...CrossEntropy...`` type)."""
    graph = tf.function(fn).get_concrete_function(*args).graph
    return sorted({op.type for op in graph.get_operations()} - {"Placeholder", "Identity", "NoOp"})


def forward_backward_times(
    timed: Mapping[str, tuple[Any, Mapping[str, Callable[[tf.Tensor, tf.Tensor], tf.Tensor]]]],
    logits: tf.Tensor, repeats: int,
) -> dict[str, dict[str, dict[str, float]]]:
    """``{kind: {route: {"min", "median", "max"} ms}}`` of one forward + backward step
    (:func:`xentlab.bench.forward_backward_ms`, ``repeats`` repeats) of each loss route, where
    ``timed[kind] = (labels [batch, C], {route: loss(labels, logits)})`` and ``logits [batch, C]``
    are shared by every kind."""
    return {kind: {route: bench.forward_backward_ms(fn, labels, logits, repeats=repeats)
                   for route, fn in routes.items()} for kind, (labels, routes) in timed.items()}


def timing_lines(times: Mapping[str, Mapping[str, Mapping[str, float]]],
                 outcome: Mapping[str, str]) -> str:
    """One printed line per kind (``"sigmoid"``, ``"softmax"``): median (min–max) milliseconds of
    the ``"op"`` and the ``"textbook"`` route (``times[kind][route]``, :func:`xentlab.bench.forward_backward_ms`)
    and ``outcome[kind]`` (:func:`xentlab.bench.clearly`)."""
    def span(t: Mapping[str, float]) -> str:
        return f"median {t['median']:.2f} ms ({t['min']:.2f}–{t['max']:.2f})"

    return "\n".join(f"{kind}: op {span(t['op'])}, textbook {span(t['textbook'])}: the op is {outcome[kind]}"
                     for kind, t in times.items())


def timing_text(times: Mapping[str, Mapping[str, Mapping[str, float]]], outcome: Mapping[str, str],
                sigmoid_op_types: int) -> str:
    """The ``003.fused-more-efficient`` claim's measured sentence: each kind's op and textbook
    medians (ms) with its outcome, and how many op types the sigmoid op's graph has."""
    return "forward + backward medians, op against textbook: " + "; ".join(
        f"{k} {t['op']['median']:.2f} ms against {t['textbook']['median']:.2f} ms ({outcome[k]})"
        for k, t in times.items()) + (f"; the sigmoid op is a composite of {sigmoid_op_types} "
                                      "elementwise op types, no fused kernel")


def multihot_softmax_ce(logits: Any, labels: Any) -> dict[str, np.ndarray]:
    """``tf.nn.softmax_cross_entropy_with_logits`` on label rows ``labels [n, C]`` that may sum
    to ``s != 1`` (multi-hot), against the value it stands for, both with their gradients.

    Returns ``softmax [n, C]``, the values ``[n]`` ``fused`` (the op), ``autodiff``
    (``-sum(y * log_softmax(z))``) and ``normalised`` (the op on ``y / s``, times ``s``), and the
    gradients w.r.t. ``logits`` ``[n, C]``: ``grad_fused`` (what the op back-propagates: its kernel's
    ``softmax - y``; under op determinism TensorFlow computes the op from ``log_softmax`` and it
    becomes the true one) and ``grad_true`` (of ``autodiff``: ``softmax * s - y``).
    """
    z = tf.convert_to_tensor(logits, tf.float32)
    y = tf.convert_to_tensor(labels, tf.float32)
    s = tf.reduce_sum(y, axis=-1, keepdims=True)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(z)
        fused = tf.nn.softmax_cross_entropy_with_logits(labels=y, logits=z)
        autodiff = -tf.reduce_sum(y * tf.nn.log_softmax(z), axis=-1)
        normalised = tf.nn.softmax_cross_entropy_with_logits(labels=y / s, logits=z)
    return {"softmax": tf.nn.softmax(z).numpy(), "fused": fused.numpy(), "autodiff": autodiff.numpy(),
            "normalised": (normalised * s[:, 0]).numpy(), "grad_fused": tape.gradient(fused, z).numpy(),
            "grad_true": tape.gradient(autodiff, z).numpy()}


def multihot_lines(mh: Mapping[str, np.ndarray], labels: np.ndarray) -> str:
    """Five printed lines for row 0 of :func:`multihot_softmax_ce`'s result ``mh`` on ``labels
    [n, C]``: the labels and softmax, the three values, the true gradient, the op's gradient and
    ``softmax - y`` (4 places)."""
    p = mh["softmax"][0]
    y = np.asarray(labels, dtype=p.dtype)[0]
    s = f"{float(y.sum()):g}"
    return "\n".join([
        f"labels {y} (sum {s}), softmax {np.round(p, 4)}",
        f"value: fused {float(mh['fused'][0]):.5f} = -sum(y log softmax) {float(mh['autodiff'][0]):.5f} "
        f"= {s} x CE(y/{s}) {float(mh['normalised'][0]):.5f}",
        f"gradient of the value, softmax*{s} - y: {np.round(mh['grad_true'][0], 4)}",
        f"gradient the op returns            : {np.round(mh['grad_fused'][0], 4)}",
        f"softmax - y                        : {np.round(p - y, 4)}",
    ])


def sparse_error(labels: Any, logits: Any) -> str | None:
    """The error ``tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)`` raises, as
    ``"ErrorClass: first line"`` (:func:`xentlab.notebook.error_line`), or None if it runs.
    ``labels`` are integer class indices ``[batch]`` (or any shape, to see the op refuse it)."""
    return notebook.error_line(lambda: tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=np.asarray(labels), logits=logits))


def sparse_vs_dense(n: int = 1000, classes: int = 10, seed: int = 11) -> float:
    """Largest ``|sparse op - dense op on one-hot labels|`` over ``n`` random examples (logits
    ``[n, classes]`` ~ N(0, 5) in float32, labels uniform in ``[0, classes)``, ``default_rng(seed)``)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 5, size=(n, classes)).astype(np.float32)
    labels = rng.integers(0, classes, size=n)
    dense = tf.nn.softmax_cross_entropy_with_logits(
        labels=np.eye(classes, dtype=np.float32)[labels], logits=logits)
    sparse = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    return float(np.max(np.abs(dense.numpy() - sparse.numpy())))


def docstring_sentence(fn: Callable[..., Any], start: str, end: str) -> str:
    """The passage of ``fn``'s docstring from ``start`` up to and including ``end`` (their first
    occurrences), whitespace collapsed to single spaces."""
    doc = fn.__doc__ or ""
    return " ".join(doc[doc.index(start):doc.index(end) + len(end)].split())


def broadcast_lines(loss: Any, loss_doc: Any, weights: Any, hits: Any, hits_doc: Any) -> str:
    """Three printed lines on a ``[batch]`` tensor meeting a ``[batch, 1]`` one: ``loss [batch]``
    and ``loss_doc [batch, 1]`` each times ``weights [batch]`` (shapes and means: the second
    broadcasts to ``[batch, batch]``), and the accuracy from ``hits`` (labels ``[batch]`` ==
    predictions) against ``hits_doc`` (labels ``[batch, 1]`` == predictions: ``[batch, batch]``)."""
    right, wrong = loss * weights, loss_doc * weights
    n = hits.shape[0]
    acc, acc_doc = (float(tf.reduce_mean(tf.cast(h, tf.float32))) for h in (hits, hits_doc))
    return "\n".join([
        f"loss {tuple(loss.shape)} * weights {tuple(weights.shape)} -> {tuple(right.shape)}, "
        f"mean {float(tf.reduce_mean(right)):.4f}",
        f"loss {tuple(loss_doc.shape)} * weights {tuple(weights.shape)} -> {tuple(wrong.shape)}, "
        f"mean {float(tf.reduce_mean(wrong)):.4f}  (no error)",
        f"accuracy with labels [{n}]: {acc:.2f}; with labels [{n}, 1]: {acc_doc:.2f} "
        f"(compared all against all, {tuple(hits_doc.shape)})",
    ])


def kernel_state(logits: Any, labels: Any, sparse_labels: Any,
                 sparse_logits: Any) -> tuple[float, np.ndarray, str | None]:
    """What the softmax ops do in the current determinism setting: the public softmax op's value
    and gradient ``[C]`` on row 0 of the multi-hot ``labels [n, C]`` (:func:`multihot_softmax_ce`),
    and the error of the sparse op on out-of-range ``sparse_labels`` (:func:`sparse_error`)."""
    mh = multihot_softmax_ce(logits, labels)
    return float(mh["fused"][0]), mh["grad_fused"][0], sparse_error(sparse_labels, sparse_logits)


def determinism_lines(states: Mapping[str, tuple[float, np.ndarray, str | None]], labels: np.ndarray,
                      sparse_case: str = "sparse label 5 of 5 classes") -> str:
    """Three printed lines per state name (``states[name]`` from :func:`kernel_state`): the
    multi-hot value (5 places) and gradient (4 places) for label row ``labels [C]``, and the
    sparse op's error on ``sparse_case``."""
    row = "[" + ", ".join(f"{v:g}" for v in np.asarray(labels, dtype=float)) + "]"
    return "\n".join(f"{state}:\n  multi-hot {row}: value {value:.5f}, gradient {np.round(grad, 4)}\n"
                     f"  {sparse_case}: {err}" for state, (value, grad, err) in states.items())


def closest_pair(probs: np.ndarray) -> tuple[int, int, int]:
    """``(row, a, b)`` for probabilities ``probs [n, C]``: the row whose runner-up class is most
    likely, and its most likely and runner-up classes."""
    probs = np.asarray(probs)
    r = int(np.argmax(np.sort(probs, axis=1)[:, -2]))
    a, b = (int(k) for k in np.argsort(probs[r])[::-1][:2])
    return r, a, b
