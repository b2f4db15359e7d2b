"""Labels and shapes of the sigmoid, softmax and sparse cross-entropy ops: notebook 04's helpers.

Document 003 (``003_104f60bfdb9941db.txt``, a 2020 blog post) explains TensorFlow's three
``*_cross_entropy_with_logits`` ops: what a logit is, that the sigmoid op is element-wise, that the
softmax op wants label rows that are distributions and returns ``[batch_size, 1]``, and that the
sparse op takes integer labels ``[batch_size, 1]``. Notebook 04 (``04_sigmoid_softmax_sparse``)
checks each statement; this module holds what the notebook computes or prints in more than a few
lines:

- :func:`logit_identities`, :func:`logit_lines`, :func:`row_sum_lines`: section 1's checks and
  printed facts about logit, sigmoid and softmax.
- :func:`op_types`, :func:`forward_backward_times`, :func:`timing_lines`, :func:`timing_text`:
  is the sigmoid op a fused kernel, and is either op faster than the textbook form (document 003, line 11: "更高效地计算").
- :func:`public_op_multihot`, :func:`multihot_lines`: the public softmax op's value and gradient
  on a multi-hot label row (TensorFlow's docstring: "If they are not, the computation of the
  gradient will be incorrect.").
- :func:`sparse_error`, :func:`sparse_vs_dense`, :func:`docstring_sentence`,
  :func:`broadcast_effects`, :func:`broadcast_lines`: the sparse op's labels, and why a
  ``[batch_size, 1]`` rank matters.
- :func:`public_op_value_and_gradient`, :func:`sparse_error`, :func:`determinism_lines`: what
  ``enable_op_determinism()`` changes.
- :func:`likeliest_runner_up`: the softmax row and classes used against "independent and exclusive".

Not to be confused with :func:`xentlab.multilabel.multihot_gradients` (notebook 07), which runs
the fused kernel through ``tf.raw_ops`` and so returns the kernel's gradient in every determinism
setting; :func:`public_op_multihot` runs the public ``tf.nn`` op, whose gradient depends on it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from xentlab import bench, notebook

__all__ = [
    "logit_identities", "logit_lines", "row_sum_lines", "op_types", "forward_backward_times", "timing_lines",
    "timing_text", "public_op_multihot", "multihot_lines", "sparse_error", "sparse_vs_dense",
    "docstring_sentence", "broadcast_effects", "broadcast_lines", "public_op_value_and_gradient",
    "determinism_lines", "likeliest_runner_up",
]

#: The two identities :func:`logit_identities` checks, as printed.
ROUND_TRIP, TWO_CLASS = "sigmoid(logit(p)) == p", "softmax([x, 0])[0] == sigmoid(x)"


def logit_identities(p: np.ndarray, logit: np.ndarray) -> dict[str, bool]:
    """``{ROUND_TRIP: ..., TWO_CLASS: ...}``: whether TensorFlow's sigmoid inverts ``logit [n]``
    back to the probabilities ``p [n]`` (``np.allclose``), and whether the two-class softmax is
    the sigmoid, ``softmax([x, 0])[0] == sigmoid(x)`` on ``x`` = -6, -5, ..., 6 (``np.allclose``)."""
    z2 = np.linspace(-6, 6, 13)
    two_class = tf.nn.softmax(np.stack([z2, np.zeros_like(z2)], axis=1)).numpy()[:, 0]
    return {ROUND_TRIP: bool(np.allclose(tf.sigmoid(np.asarray(logit)).numpy(), p)),
            TWO_CLASS: bool(np.allclose(two_class, tf.sigmoid(z2).numpy()))}


def logit_lines(p: np.ndarray, logit: np.ndarray, signs_ok: bool, identities: Mapping[str, bool]) -> str:
    """Five printed lines about ``logit = log(p / (1 - p))`` at probabilities ``p [n]`` (``n``
    odd, the middle one 0.5): ``p`` and ``logit(p)`` rounded to 4 places, the round trip of
    :func:`logit_identities` (``identities``), ``logit(0.5)`` with ``signs_ok`` (negative below
    0.5, positive above), and its two-class identity; the notebook measured all three."""
    p, logit = np.asarray(p), np.asarray(logit)
    return "\n".join([
        f"p           {p}",
        f"logit(p)    {np.round(logit, 4)}",
        f"{ROUND_TRIP}: {identities[ROUND_TRIP]}",
        f"logit(0.5) = {logit[len(logit) // 2]} | negative below 0.5, positive above: {bool(signs_ok)}",
        f"{TWO_CLASS}: {identities[TWO_CLASS]}",
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
    and ``outcome[kind]`` (:func:`xentlab.bench.clearly`: "the op is faster", "the op is slower"
    or "no clear difference")."""
    def span(t: Mapping[str, float]) -> str:
        return f"median {t['median']:.2f} ms ({t['min']:.2f}–{t['max']:.2f})"

    def said(o: str) -> str:
        return f"the op is {o}" if o in ("faster", "slower") else o

    return "\n".join(f"{kind}: op {span(t['op'])}, textbook {span(t['textbook'])}: {said(outcome[kind])}"
                     for kind, t in times.items())


def timing_text(times: Mapping[str, Mapping[str, Mapping[str, float]]], outcome: Mapping[str, str],
                sigmoid_op_types: int) -> str:
    """The ``003.fused-more-efficient`` claim's measured sentence: each kind's op and textbook
    medians (ms) with its outcome, and how many op types the sigmoid op's graph has."""
    return "forward + backward medians, op against textbook: " + "; ".join(
        f"{k} {t['op']['median']:.2f} ms against {t['textbook']['median']:.2f} ms ({outcome[k]})"
        for k, t in times.items()) + (f"; the sigmoid op is a composite of {sigmoid_op_types} "
                                      "elementwise op types, no fused kernel")


def public_op_multihot(logits: Any, labels: Any) -> dict[str, np.ndarray]:
    """The public op ``tf.nn.softmax_cross_entropy_with_logits`` on label rows ``labels [n, C]``
    that may sum to ``s != 1`` (multi-hot), against the value it stands for, both with their
    gradients w.r.t. ``logits [n, C]``, eagerly.

    Which computation runs depends on TensorFlow's op determinism: off (TensorFlow's default,
    and how notebook 04 calls this function in section 3, before it enables determinism), the
    public op dispatches to the fused kernel ``SoftmaxCrossEntropyWithLogits``, whose gradient is
    ``softmax - y``; on, TensorFlow composes it as ``-reduce_sum(y * log_softmax(z))``, whose
    gradient is the true one. (:func:`xentlab.multilabel.multihot_gradients` instead calls the
    kernel through ``tf.raw_ops`` and gets ``softmax - y`` in every setting.)

    Returns ``softmax [n, C]``; the values ``[n]`` ``value_public_op`` (the public op),
    ``value_log_softmax`` (``-sum(y * log_softmax(z))``) and ``value_normalised`` (the public op
    on ``y / s``, times ``s``); and the gradients ``[n, C]`` ``grad_public_op`` (what the public
    op back-propagates in the current determinism setting) and ``grad_of_value`` (of
    ``value_log_softmax``: ``softmax * s - y``).
    """
    z = tf.convert_to_tensor(logits, tf.float32)
    y = tf.convert_to_tensor(labels, tf.float32)
    s = tf.reduce_sum(y, axis=-1, keepdims=True)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(z)
        public = tf.nn.softmax_cross_entropy_with_logits(labels=y, logits=z)
        by_log_softmax = -tf.reduce_sum(y * tf.nn.log_softmax(z), axis=-1)
        normalised = tf.nn.softmax_cross_entropy_with_logits(labels=y / s, logits=z)
    return {"softmax": tf.nn.softmax(z).numpy(), "value_public_op": public.numpy(),
            "value_log_softmax": by_log_softmax.numpy(), "value_normalised": (normalised * s[:, 0]).numpy(),
            "grad_public_op": tape.gradient(public, z).numpy(), "grad_of_value": tape.gradient(by_log_softmax, z).numpy()}


def multihot_lines(mh: Mapping[str, np.ndarray], labels: np.ndarray) -> str:
    """Five printed lines for row 0 of :func:`public_op_multihot`'s result ``mh`` on ``labels
    [n, C]``: the labels and softmax, the three values, the gradient of the value, the public
    op's gradient and ``softmax - y`` (4 places)."""
    p = mh["softmax"][0]
    y = np.asarray(labels, dtype=p.dtype)[0]
    s = f"{float(y.sum()):g}"
    return "\n".join([
        f"labels {y} (sum {s}), softmax {np.round(p, 4)}",
        f"value: fused {float(mh['value_public_op'][0]):.5f} = -sum(y log softmax) "
        f"{float(mh['value_log_softmax'][0]):.5f} = {s} x CE(y/{s}) {float(mh['value_normalised'][0]):.5f}",
        f"gradient of the value, softmax*{s} - y: {np.round(mh['grad_of_value'][0], 4)}",
        f"gradient the op returns            : {np.round(mh['grad_public_op'][0], 4)}",
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


def broadcast_effects(loss: Any, loss_doc: Any, weights: Any, hits: Any, hits_doc: Any) -> dict[str, Any]:
    """What a ``[batch]`` tensor meeting a ``[batch, 1]`` one computes: ``loss [batch]`` and
    ``loss_doc [batch, 1]`` each times ``weights [batch]`` (``weighted``, ``weighted_doc``: the
    second broadcasts to ``[batch, batch]``), and the accuracy (mean of the booleans) of ``hits``
    (labels ``[batch]`` == predictions) and of ``hits_doc`` (labels ``[batch, 1]`` == predictions:
    ``[batch, batch]``); ``shapes`` holds the inputs' shapes as tuples."""
    return {"weighted": (loss * weights).numpy(), "weighted_doc": (loss_doc * weights).numpy(),
            "accuracy": float(tf.reduce_mean(tf.cast(hits, tf.float32))),
            "accuracy_doc": float(tf.reduce_mean(tf.cast(hits_doc, tf.float32))),
            "shapes": {name: tuple(t.shape) for name, t in (("loss", loss), ("loss_doc", loss_doc),
                                                             ("weights", weights), ("hits_doc", hits_doc))}}


def broadcast_lines(effects: Mapping[str, Any]) -> str:
    """Three printed lines from :func:`broadcast_effects`: each weighted loss's shape and mean (4
    places), and the two accuracies (2 places)."""
    shapes, n = effects["shapes"], effects["shapes"]["loss"][0]
    return "\n".join([
        f"loss {shapes['loss']} * weights {shapes['weights']} -> {effects['weighted'].shape}, "
        f"mean {float(np.mean(effects['weighted'])):.4f}",
        f"loss {shapes['loss_doc']} * weights {shapes['weights']} -> {effects['weighted_doc'].shape}, "
        f"mean {float(np.mean(effects['weighted_doc'])):.4f}  (no error)",
        f"accuracy with labels [{n}]: {effects['accuracy']:.2f}; with labels [{n}, 1]: {effects['accuracy_doc']:.2f} "
        f"(compared all against all, {shapes['hits_doc']})",
    ])


def public_op_value_and_gradient(logits: Any, labels: Any) -> tuple[float, np.ndarray]:
    """Row 0's value and gradient ``[C]`` of the public op ``tf.nn.softmax_cross_entropy_with_logits``
    on multi-hot ``labels [n, C]`` in the current determinism setting (:func:`public_op_multihot`)."""
    mh = public_op_multihot(logits, labels)
    return float(mh["value_public_op"][0]), mh["grad_public_op"][0]


def determinism_lines(states: Mapping[str, tuple[float, np.ndarray, str | None]], labels: np.ndarray,
                      sparse_labels: Any, classes: int) -> str:
    """Three printed lines per state name: ``states[name] = (value, gradient [C], error)`` from
    :func:`public_op_value_and_gradient` on the multi-hot label row ``labels [C]`` (value 5 places,
    gradient 4) and :func:`sparse_error` on ``sparse_labels [batch]`` with ``classes`` classes
    (the line names the labels outside ``[0, classes)``)."""
    row = "[" + ", ".join(f"{v:g}" for v in np.asarray(labels, dtype=float)) + "]"
    bad = [int(v) for v in np.asarray(sparse_labels).ravel() if not 0 <= v < classes]
    case = f"sparse label{'s' if len(bad) > 1 else ''} {', '.join(map(str, bad)) or 'none'} of {classes} classes"
    return "\n".join(f"{state}:\n  multi-hot {row}: value {value:.5f}, gradient {np.round(grad, 4)}\n"
                     f"  {case}: {err}" for state, (value, grad, err) in states.items())


def likeliest_runner_up(probs: np.ndarray) -> tuple[int, int, int]:
    """``(row, a, b)`` for probabilities ``probs [n, C]``: the row whose second most likely class
    has the highest probability of any row's, its most likely class ``a`` and that runner-up ``b``."""
    probs = np.asarray(probs)
    r = int(np.argmax(np.sort(probs, axis=1)[:, -2]))
    a, b = (int(k) for k in np.argsort(probs[r])[::-1][:2])
    return r, a, b
