"""A measured atlas of TensorFlow's cross-entropy entry points: which one should I call?

Every ``tf.nn`` / ``keras.losses`` / ``keras.ops`` cross-entropy a TensorFlow 2.21 / Keras 3 user
meets is one :class:`EntryPoint` of :data:`ENTRY_POINTS`: a uniform adapter
``fn(labels, outputs)`` (``outputs`` are logits or probabilities, as ``expects`` says) plus the
call as a user writes it. The measurements run the adapters and compare them with a float64
NumPy oracle (:func:`oracle`, log-sum-exp form, with the loss' own label smoothing and focal
terms); every cell of the atlas is produced by running code:

* :func:`label_formats`: integer ``[B]``, integer ``[B,1]``, one-hot, soft and multi-hot labels:
  accepted or raised, output shape, equal to the oracle of what the format means.
* :func:`accuracy`: value and gradient at logit gaps 10, 100, 1000 (and a moderate row and
  all-zero logits) in float32, float16 and bfloat16.
* :func:`bad_labels`: labels ``C`` and ``-1``, NaN, a wrong rank; eager and ``tf.function``.
* :func:`graphs`: the op types of the traced forward+gradient graph with and without op
  determinism, and whether TensorFlow's fused kernel is in it.
* :func:`reductions`: what the default reduction divides by (Keras' ``Loss`` objects,
  ``tf.nn.compute_average_loss``, ``ignore_class``).
* :func:`sampled`: ``tf.nn.sampled_softmax_loss`` against full softmax cross-entropy on the same
  logits of a tiny linear layer, and its randomness.

:func:`measure` runs them all into an :class:`Atlas`; :func:`tables` / :func:`table` /
:func:`matrix` (with :func:`format_cell`, :func:`accuracy_cell`, :func:`bad_label_cell`,
:func:`graph_cell`) render it; :func:`decision_guide` writes the "call Z because <number>" rules from
the measured rows. Shapes: ``B`` examples, ``C`` classes.

Internals cited in docstrings were read in the installed TensorFlow 2.21.0 and Keras 3.15.1
sources (``site-packages``) and checked against the public ``tensorflow/tensorflow`` and
``keras-team/keras`` repositories:

* ``tensorflow/python/ops/nn_ops.py``: ``softmax_cross_entropy_with_logits_v2_helper`` and
  ``_sparse_softmax_cross_entropy_with_rank_2_logits`` branch on
  ``config.is_op_determinism_enabled()``: with it on they compose ``log_softmax_v2`` (plus, for
  the sparse op, a ``gather`` and a ``where`` that forces NaN on out-of-range labels) instead of
  the ``SoftmaxCrossEntropyWithLogits`` / ``SparseSoftmaxCrossEntropyWithLogits`` kernels.
  ``sparse_softmax_cross_entropy_with_logits`` (v1, which v2 calls) computes float16 logits in
  float32 and casts the loss back.
* ``tensorflow/python/ops/nn_impl.py``: ``weighted_cross_entropy_with_logits_v2`` computes
  ``(1 - z) x + l (log1p(exp(-|x|)) + relu(-x))``, whose gradient at ``x = 0`` takes the
  subgradient 0 of ``abs`` and ``relu`` (``sigmoid_cross_entropy_with_logits_v2`` branches with
  ``where(x >= 0, ...)`` instead); ``sampled_softmax_loss_v2`` -> ``sampled_softmax_loss`` builds
  sampled logits with ``_compute_sampled_logits`` (``log_uniform_candidate_sampler``,
  ``subtract_log_q=True``) and applies ``softmax_cross_entropy_with_logits_v2`` to them ("for
  training only ... generally an underestimate of the full softmax loss").
* ``tensorflow/python/ops/nn_impl_distribute.py``: ``compute_average_loss`` divides
  ``reduce_sum(per_example_loss)`` by ``shape(per_example_loss)[0] * num_replicas_in_sync``
  unless ``global_batch_size`` is given.
* ``keras/src/backend/tensorflow/nn.py``: ``categorical_crossentropy``,
  ``sparse_categorical_crossentropy``, ``binary_crossentropy`` call the ``tf.nn`` ops with
  ``from_logits=True``; otherwise they clip to ``[epsilon, 1 - epsilon]`` (``epsilon`` 1e-7), so a
  wrong example's loss stops at ``-log(1e-7)`` = 16.118 with zero gradient. ``_get_logits``
  first reads the logits behind the probabilities: a tensor's ``_keras_logits`` attribute (set by
  ``softmax``/``sigmoid`` there, i.e. ``keras.ops.softmax``, also eagerly) or, in a graph, the
  input of a ``Softmax``/``Sigmoid`` op.
* ``keras/src/losses/loss.py``: ``Loss.__call__`` converts ``y_true`` and ``y_pred`` to the
  loss' dtype (``keras.config.floatx()``, float32) before ``call``; ``apply_mask`` makes the
  default ``"sum_over_batch_size"`` divide by the number of unmasked entries.
* ``keras/src/losses/losses.py``: ``categorical_focal_crossentropy`` with ``from_logits=True``
  applies ``ops.softmax`` and then the same clip; ``binary_focal_crossentropy`` applies
  ``ops.sigmoid``, whose ``_keras_logits`` lets ``binary_crossentropy`` use the logits;
  ``sparse_categorical_crossentropy`` with ``ignore_class`` zeroes the ignored entries and sets
  a mask.

Measurements that touch process-wide state restore it: op determinism is pinned off (or on, for
the rows that say so) and restored; :func:`measure` sets TensorFlow's global seed
(``tf.random.set_seed``), as :func:`xentlab.train.seed_everything` does. Progress goes to the
``logging`` logger ``"xentlab.atlas"``.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import tensorflow as tf

__all__ = [
    "Atlas",
    "DTYPES",
    "ENTRY_POINTS",
    "EntryPoint",
    "FUSED_OPS",
    "GAPS",
    "LABEL_FORMATS",
    "accuracy",
    "bad_labels",
    "GUIDE_ENTRIES",
    "Labels",
    "accuracy_rows",
    "decision_guide",
    "entry",
    "entry_rows",
    "format_labels",
    "format_target",
    "matrix",
    "format_cell",
    "accuracy_cell",
    "CELL_TOLERANCE",
    "bad_label_cell",
    "graph_cell",
    "graphs",
    "label_formats",
    "make_labels",
    "measure",
    "one",
    "op_determinism",
    "oracle",
    "reductions",
    "sampled",
    "select",
    "table",
    "tables",
    "to_outputs",
]

log = logging.getLogger("xentlab.atlas")

Row = dict[str, Any]
LossFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]

#: The label formats of :func:`label_formats` (``B`` examples, ``C`` classes).
LABEL_FORMATS: tuple[str, ...] = (
    "int [B]", "int [B,1]", "one-hot [B,C]", "soft [B,C]", "multi-hot [B,C]",
)
#: The dtypes :func:`accuracy` computes in.
DTYPES: tuple[str, ...] = ("float32", "float16", "bfloat16")
#: Logit gaps of :func:`accuracy`: the true class trails the largest logit by this much.
GAPS: tuple[float, ...] = (10.0, 100.0, 1000.0)
#: TensorFlow's fused softmax cross-entropy kernels (op types in a graph).
FUSED_OPS: tuple[str, ...] = ("SoftmaxCrossEntropyWithLogits", "SparseSoftmaxCrossEntropyWithLogits")
#: Keras' clip for probabilities (``keras.config.epsilon()``).
KERAS_EPSILON: float = 1e-7
#: The label-smoothing variant's setting.
SMOOTHING: float = 0.1
#: Keras' focal defaults (``CategoricalFocalCrossentropy`` and ``BinaryFocalCrossentropy``).
FOCAL_ALPHA, FOCAL_GAMMA = 0.25, 2.0
#: Op-level seed of the ``sampled_softmax_loss`` adapter.
SAMPLED_OP_SEED: int = 7
#: Value tolerance (absolute and relative) for "equals the oracle" in float32.
MATCH_TOL: float = 1e-5


# --------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntryPoint:
    """One cross-entropy call as a user writes it, behind the uniform adapter ``fn``.

    Attributes:
        name: the call, e.g. ``"keras.losses.CategoricalCrossentropy(from_logits=True)"``.
        expects: ``"logits"`` or ``"probabilities"`` (what ``fn``'s second argument is).
        family: ``"softmax"`` (dense class distributions), ``"sparse"`` (class indices) or
            ``"sigmoid"`` (independent binary targets per class).
        api: ``"tf.nn"``, ``"keras.losses"``, ``"keras.ops"`` or ``"manual"``.
        labels: the label format it is meant for (one of :data:`LABEL_FORMATS`).
        output: what ``fn`` returns for ``[B, C]`` outputs: ``"[B]"``, ``"[B,C]"`` (element-wise)
            or ``"[]"`` (reduced).
        loss: the oracle's formula: ``"softmax"``, ``"sigmoid"``, ``"categorical_focal"`` or
            ``"binary_focal"``.
        fn: ``fn(labels, outputs) -> output``; Keras ``Loss`` objects are called with
            ``reduction=None`` so that every example is visible.
        smoothing: the label smoothing the call applies (its oracle applies it too).
        activation: how probabilities are made from logits for ``expects="probabilities"``:
            ``"tf.nn"`` (``tf.nn.softmax`` / ``tf.math.sigmoid``: plain probabilities) or
            ``"keras.ops"`` (``keras.ops.softmax``, which tags its output with the logits).
        default_call: the Keras ``Loss`` object (or ``None``) with its default reduction.
        note: what else to know.
    """

    name: str
    expects: str
    family: str
    api: str
    labels: str
    output: str
    loss: str
    fn: LossFn = field(repr=False, compare=False)
    smoothing: float = 0.0
    activation: str = "tf.nn"
    default_call: LossFn | None = field(default=None, repr=False, compare=False)
    note: str = ""


def _keras_loss(cls: type, **kwargs: Any) -> tuple[LossFn, LossFn]:
    """(per-example adapter with ``reduction=None``, the object with its default reduction)."""
    per_example = cls(reduction=None, **kwargs)
    default = cls(**kwargs)
    return (lambda y, p: per_example(y, p)), (lambda y, p: default(y, p))


def _kwargs_text(**kwargs: Any) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())


def _keras_entries() -> list[EntryPoint]:
    """``keras.losses`` classes x ``from_logits`` (+ one label-smoothing variant each)."""
    specs = [  # class, family, labels, output, oracle, smoothing-capable
        (keras.losses.CategoricalCrossentropy, "softmax", "one-hot [B,C]", "[B]", "softmax", True),
        (keras.losses.SparseCategoricalCrossentropy, "sparse", "int [B]", "[B]", "softmax", False),
        (keras.losses.BinaryCrossentropy, "sigmoid", "multi-hot [B,C]", "[B]", "sigmoid", True),
        (keras.losses.CategoricalFocalCrossentropy, "softmax", "one-hot [B,C]", "[B]",
         "categorical_focal", True),
        (keras.losses.BinaryFocalCrossentropy, "sigmoid", "multi-hot [B,C]", "[B]",
         "binary_focal", True),
    ]
    out = []
    for cls, family, labels, output, loss, smooths in specs:
        variants: list[dict[str, Any]] = [{"from_logits": True}, {"from_logits": False}]
        if smooths:
            variants.append({"from_logits": True, "label_smoothing": SMOOTHING})
        if cls is keras.losses.SparseCategoricalCrossentropy:
            variants.append({"from_logits": True, "ignore_class": -1})
        for kw in variants:
            fn, default = _keras_loss(cls, **kw)
            note = "measured per example (reduction=None); default reduction: see reductions()"
            if "ignore_class" in kw:
                note += "; labels equal to ignore_class get loss 0 and are masked out of the mean"
            out.append(EntryPoint(
                name=f"keras.losses.{cls.__name__}({_kwargs_text(**kw)})",
                expects="logits" if kw["from_logits"] else "probabilities",
                family=family, api="keras.losses", labels=labels, output=output, loss=loss,
                fn=fn, smoothing=kw.get("label_smoothing", 0.0), default_call=default, note=note,
            ))
    fn, default = _keras_loss(keras.losses.CategoricalCrossentropy, from_logits=False)
    out.append(EntryPoint(
        name="keras.losses.CategoricalCrossentropy(from_logits=False) on keras.ops.softmax(logits)",
        expects="probabilities", family="softmax", api="keras.losses", labels="one-hot [B,C]",
        output="[B]", loss="softmax", fn=fn, activation="keras.ops", default_call=default,
        note="keras.ops.softmax (and a Keras softmax layer) tags its output with _keras_logits; "
             "the loss reads the logits behind it",
    ))
    return out


def _keras_ops_entries() -> list[EntryPoint]:
    """``keras.ops.*_crossentropy`` x ``from_logits``."""
    specs = [
        (keras.ops.categorical_crossentropy, "softmax", "one-hot [B,C]", "[B]"),
        (keras.ops.sparse_categorical_crossentropy, "sparse", "int [B]", "[B]"),
        (keras.ops.binary_crossentropy, "sigmoid", "multi-hot [B,C]", "[B,C]"),
    ]
    out = []
    for op, family, labels, output in specs:
        for from_logits in (True, False):
            out.append(EntryPoint(
                name=f"keras.ops.{op.__name__}(target, output, from_logits={from_logits})",
                expects="logits" if from_logits else "probabilities", family=family,
                api="keras.ops", labels=labels, output=output,
                loss="sigmoid" if family == "sigmoid" else "softmax",
                fn=lambda y, p, op=op, fl=from_logits: op(y, p, from_logits=fl),
                note="keeps the inputs' dtype (no cast to floatx)",
            ))
    return out


def _sampled_adapter(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """``tf.nn.sampled_softmax_loss`` through an identity linear layer (``weights = I [C, C]``,
    ``biases = 0``), so that its ``inputs`` are the logits; ``num_sampled = C // 2``."""
    classes = int(logits.shape[-1])
    return tf.nn.sampled_softmax_loss(
        weights=tf.eye(classes, dtype=logits.dtype), biases=tf.zeros([classes], logits.dtype),
        labels=labels, inputs=logits, num_sampled=max(1, classes // 2), num_classes=classes,
        seed=SAMPLED_OP_SEED,
    )


def _tf_nn_entries() -> list[EntryPoint]:
    nn = tf.nn
    return [
        EntryPoint("tf.nn.softmax_cross_entropy_with_logits(labels, logits)", "logits", "softmax",
                   "tf.nn", "one-hot [B,C]", "[B]", "softmax",
                   lambda y, z: nn.softmax_cross_entropy_with_logits(labels=y, logits=z)),
        EntryPoint("tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)", "logits",
                   "sparse", "tf.nn", "int [B]", "[B]", "softmax",
                   lambda y, z: nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=z)),
        EntryPoint("tf.nn.sigmoid_cross_entropy_with_logits(labels, logits)", "logits", "sigmoid",
                   "tf.nn", "multi-hot [B,C]", "[B,C]", "sigmoid",
                   lambda y, z: nn.sigmoid_cross_entropy_with_logits(labels=y, logits=z)),
        EntryPoint("tf.nn.weighted_cross_entropy_with_logits(labels, logits, pos_weight=1.0)",
                   "logits", "sigmoid", "tf.nn", "multi-hot [B,C]", "[B,C]", "sigmoid",
                   lambda y, z: nn.weighted_cross_entropy_with_logits(y, z, pos_weight=1.0),
                   note="pos_weight=1 makes it sigmoid cross-entropy; pos_weight scales the "
                        "positive term"),
        EntryPoint("tf.nn.compute_average_loss(tf.nn.sparse_softmax_cross_entropy_with_logits("
                   "labels, logits))", "logits", "sparse", "tf.nn", "int [B]", "[]", "softmax",
                   lambda y, z: nn.compute_average_loss(
                       nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=z)),
                   note="sum / global batch size (first dimension x replicas): see reductions()"),
        EntryPoint("tf.nn.sampled_softmax_loss(weights, biases, labels, inputs, num_sampled, "
                   "num_classes)", "logits", "sparse", "tf.nn", "int [B,1]", "[B]", "softmax",
                   _sampled_adapter,
                   note=f"training-time approximation (num_sampled = C // 2 log-uniform "
                        f"negatives, seed={SAMPLED_OP_SEED}); oracle = full softmax CE; see "
                        f"sampled()"),
    ]


def _manual_entries() -> list[EntryPoint]:
    return [EntryPoint(
        "-tf.reduce_sum(labels * tf.math.log(tf.nn.softmax(logits)), axis=-1)", "logits",
        "softmax", "manual", "one-hot [B,C]", "[B]", "softmax",
        lambda y, z: -tf.reduce_sum(y * tf.math.log(tf.nn.softmax(z)), axis=-1),
        note="what documents 001/002 write by hand; for comparison",
    )]


#: Every entry point of the atlas.
ENTRY_POINTS: tuple[EntryPoint, ...] = tuple(
    _tf_nn_entries() + _keras_entries() + _keras_ops_entries() + _manual_entries()
)


def entry(name: str) -> EntryPoint:
    """The :data:`ENTRY_POINTS` entry called ``name`` (exact), else ``KeyError``."""
    for e in ENTRY_POINTS:
        if e.name == name:
            return e
    raise KeyError(f"no entry point named {name!r}")


def entry_rows(entries: Sequence[EntryPoint] = ENTRY_POINTS) -> list[Row]:
    """The registry as rows: name, api, expects, family, labels, output, smoothing,
    activation, note."""
    return [
        {"name": e.name, "api": e.api, "expects": e.expects, "family": e.family,
         "labels": e.labels, "output": e.output, "smoothing": e.smoothing,
         "activation": e.activation if e.expects == "probabilities" else "",
         "note": e.note}
        for e in entries
    ]


def _resolve(entries: Sequence[EntryPoint | str] | None) -> list[EntryPoint]:
    if entries is None:
        return list(ENTRY_POINTS)
    return [entry(e) if isinstance(e, str) else e for e in entries]


def to_outputs(e: EntryPoint, logits: tf.Tensor) -> tf.Tensor:
    """What ``e.fn`` receives: the logits, or probabilities made from them in their dtype."""
    if e.expects == "logits":
        return logits
    if e.family == "sigmoid":
        return keras.ops.sigmoid(logits) if e.activation == "keras.ops" else tf.math.sigmoid(logits)
    return keras.ops.softmax(logits) if e.activation == "keras.ops" else tf.nn.softmax(logits)


# --------------------------------------------------------------------------------------------
# The float64 oracle
# --------------------------------------------------------------------------------------------


def _log_softmax(z: np.ndarray) -> np.ndarray:
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _log_sigmoid(z: np.ndarray) -> np.ndarray:
    """``log(sigmoid(z)) = -softplus(-z)``, stable for any finite ``z``."""
    return -(np.maximum(-z, 0.0) + np.log1p(np.exp(-np.abs(z))))


def _softmax_ce(t: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[B]`` value ``-sum(t log_softmax(z))``, ``[B,C]`` gradient ``sum(t) softmax(z) - t``."""
    ls = _log_softmax(z)
    return -(t * ls).sum(-1), t.sum(-1, keepdims=True) * np.exp(ls) - t


def _sigmoid_ce(t: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Element-wise ``[B,C]`` value ``-(t log s + (1-t) log(1-s))``, gradient ``s - t``."""
    value = -(t * _log_sigmoid(z) + (1 - t) * _log_sigmoid(-z))
    return value, np.exp(_log_sigmoid(z)) - t


def _categorical_focal(t: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keras' ``categorical_focal_crossentropy`` without its clip: ``[B]`` value
    ``sum(alpha (1-p)^gamma (-t log p))`` and its ``[B,C]`` gradient through the softmax
    (``a_j = f'(p_j) p_j``, ``grad_k = a_k - p_k sum_j a_j``)."""
    logp = _log_softmax(z)
    p, q = np.exp(logp), -np.expm1(logp)  # q = 1 - p without cancellation
    value = (FOCAL_ALPHA * q**FOCAL_GAMMA * (-t * logp)).sum(-1)
    a = FOCAL_ALPHA * t * (FOCAL_GAMMA * q ** (FOCAL_GAMMA - 1) * p * logp - q**FOCAL_GAMMA)
    return value, a - p * a.sum(-1, keepdims=True)


def _binary_focal(t: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keras' ``binary_focal_crossentropy`` (no class balancing) without its clip: element-wise
    ``(1 - p_t)^gamma bce`` and its gradient."""
    bce, dbce = _sigmoid_ce(t, z)
    s, r = np.exp(_log_sigmoid(z)), np.exp(_log_sigmoid(-z))  # s and 1 - s
    one_minus_pt = t * r + (1 - t) * s
    factor = one_minus_pt**FOCAL_GAMMA
    dfactor = FOCAL_GAMMA * one_minus_pt ** (FOCAL_GAMMA - 1) * (1 - 2 * t) * s * r
    return factor * bce, factor * dbce + bce * dfactor


_ORACLES = {"softmax": _softmax_ce, "sigmoid": _sigmoid_ce,
            "categorical_focal": _categorical_focal, "binary_focal": _binary_focal}


def oracle(e: EntryPoint, target: np.ndarray, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float64 value and gradient of what ``e`` computes, from the exact formula.

    Args:
        e: the entry point; its ``loss``, ``smoothing`` and ``output`` pick the formula, the
            label smoothing (``t (1 - s) + s / C`` for softmax losses, ``t (1 - s) + s / 2``
            for sigmoid losses, as Keras smooths) and the reduction (mean over classes for a
            ``"[B]"`` sigmoid loss, ``sum / B`` for ``"[]"``).
        target: ``[B, C]`` the class distribution (or per-class targets) the labels mean.
        logits: ``[B, C]`` the logits (as represented in the dtype computed in).

    Returns:
        ``(value, gradient)``: value in ``e.output``'s shape, gradient ``[B, C]`` of
        ``sum(value)`` with respect to the logits. No clipping: Keras' clip shows as error.
    """
    t = np.asarray(target, np.float64)
    z = np.asarray(logits, np.float64)
    classes = z.shape[-1]
    if e.smoothing:
        spread = classes if e.loss in ("softmax", "categorical_focal") else 2
        t = t * (1 - e.smoothing) + e.smoothing / spread
    value, grad = _ORACLES[e.loss](t, z)
    if value.ndim == 2 and e.output != "[B,C]":  # Keras' binary losses: mean over classes
        value, grad = value.mean(-1), grad / classes
    if e.output == "[]":
        value, grad = value.sum() / z.shape[0], grad / z.shape[0]
    return value, grad


# --------------------------------------------------------------------------------------------
# Running an entry point
# --------------------------------------------------------------------------------------------


@contextmanager
def op_determinism(on: bool) -> Iterator[None]:
    """Set TensorFlow's op determinism for the block, then restore the previous state.

    ``tf.config.experimental.enable_op_determinism`` is public; its undo,
    ``disable_op_determinism``, is not exported in TF 2.21 (``tf.config.experimental`` has only
    ``enable_op_determinism``) and is taken from ``tensorflow/python/framework/config.py``.
    """
    from tensorflow.python.framework import config as tf_config

    before = tf_config.is_op_determinism_enabled()
    (tf_config.enable_op_determinism if on else tf_config.disable_op_determinism)()
    try:
        yield
    finally:
        (tf_config.enable_op_determinism if before else tf_config.disable_op_determinism)()


def _without_op_determinism(fn: Callable[..., list[Row]]) -> Callable[..., list[Row]]:
    """Run a measurement with op determinism off (the fused kernels), restoring the state."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> list[Row]:
        with op_determinism(False):
            return fn(*args, **kwargs)

    return wrapper


def _forward_backward(e: EntryPoint, labels: tf.Tensor, logits: tf.Tensor
                      ) -> tuple[tf.Tensor, tf.Tensor]:
    """``(e.fn(labels, outputs), d sum(loss) / d logits)``; a disconnected gradient is 0."""
    with tf.GradientTape() as tape:
        tape.watch(logits)
        loss = e.fn(labels, to_outputs(e, logits))
    grad = tape.gradient(loss, logits)
    return loss, tf.zeros_like(logits) if grad is None else grad


_NODE_PREFIX = re.compile(r"\{\{function_node [^}]*\}\}\s*")
_OP_SUFFIX = re.compile(r"\s*\[Op:[^\]]*\]( name: ?\S*)?\s*$")


def _error_fields(exc: BaseException) -> Row:
    """``{"error": class name, "message": first line}`` without TF's ``{{function_node ..}}``
    prefix and ``[Op:..] name:`` suffix (the latter names the op: kept as ``op`` in the text)."""
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    first = _NODE_PREFIX.sub("", lines[0]) if lines else ""
    op = re.search(r"\[Op:(\w+)\]", first)
    message = _OP_SUFFIX.sub("", first) + (f" (op {op.group(1)})" if op else "")
    return {"error": type(exc).__name__, "message": message[:200]}


def _attempt(fn: Callable[..., Any], *args: Any) -> tuple[Any, Row]:
    """``(fn(*args) or None, {"error", "message", "warning"})``; never raises ``Exception``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result, info = fn(*args), {"error": None, "message": None}
        except Exception as exc:  # noqa: BLE001 - recording what the call raises is the point
            result, info = None, _error_fields(exc)
    info["warning"] = str(caught[0].message).splitlines()[0][:200] if caught else None
    return result, info


@contextmanager
def _quiet_tf_logger() -> Iterator[None]:
    """Silence TensorFlow's Python logger (its "triggered tf.function retracing" warning, which
    tracing one fresh function per entry point on purpose sets off) for the block."""
    tf_log = logging.getLogger("tensorflow")
    before = tf_log.level
    tf_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        tf_log.setLevel(before)


def _traced(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A fresh ``tf.function`` of ``fn`` (AutoGraph off: the adapters have no Python control
    flow on tensors; a fresh wrapper per call keeps TF's retracing warning quiet)."""
    return tf.function(lambda *args: fn(*args), autograph=False)


def _shape(t: tf.Tensor | np.ndarray) -> str:
    return "[" + ",".join(str(d) for d in np.shape(t)) + "]"


def _f64(t: tf.Tensor) -> np.ndarray:
    return tf.cast(t, tf.float64).numpy()


# --------------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Labels:
    """One batch of labels in every format's raw material.

    Attributes:
        index: int64 ``[B]`` class indices.
        soft: float64 ``[B, C]`` rows summing to 1.
        multi_hot: float64 ``[B, C]`` two ones per row (one of them at ``index``).
    """

    index: np.ndarray
    soft: np.ndarray
    multi_hot: np.ndarray

    @property
    def classes(self) -> int:
        return self.soft.shape[-1]

    def one_hot(self) -> np.ndarray:
        return np.eye(self.classes)[self.index]


def make_labels(batch: int, classes: int, rng: np.random.Generator) -> Labels:
    """Random labels ``[B]`` / ``[B, C]`` (``classes >= 2``)."""
    index = rng.integers(0, classes, batch).astype(np.int64)
    soft = rng.dirichlet(np.ones(classes), batch)
    other = (index + rng.integers(1, classes, batch)) % classes
    multi_hot = np.eye(classes)[index] + np.eye(classes)[other]
    return Labels(index, soft, multi_hot)


def format_labels(fmt: str, labels: Labels) -> np.ndarray:
    """The labels as a user holds them in format ``fmt``: int64 or float32."""
    arrays = {
        "int [B]": labels.index, "int [B,1]": labels.index[:, None],
        "one-hot [B,C]": labels.one_hot(), "soft [B,C]": labels.soft,
        "multi-hot [B,C]": labels.multi_hot,
    }
    x = arrays[fmt]
    return x.astype(np.int64) if fmt.startswith("int") else x.astype(np.float32)


def format_target(fmt: str, labels: Labels, family: str) -> np.ndarray:
    """``[B, C]`` float64: what format ``fmt`` means to a loss of ``family``.

    Class indices mean one-hot rows; soft rows mean themselves; multi-hot means per-class targets
    to a sigmoid loss and the normalised distribution (each positive equally likely) to a
    softmax loss, so a softmax loss that sums ``-log p`` over both positives is visible.
    """
    if fmt.startswith("int") or fmt.startswith("one-hot"):
        return labels.one_hot()
    if fmt.startswith("soft"):
        return labels.soft
    if family == "sigmoid":
        return labels.multi_hot
    return labels.multi_hot / labels.multi_hot.sum(-1, keepdims=True)


def _label_tensor(x: np.ndarray, dtype: tf.DType) -> tf.Tensor:
    """Integer labels as int64; float labels in the computing dtype (as tf.nn requires)."""
    if np.issubdtype(x.dtype, np.integer):
        return tf.constant(x, tf.int64)
    return tf.cast(tf.constant(x, tf.float32), dtype)


# --------------------------------------------------------------------------------------------
# 1. Label formats
# --------------------------------------------------------------------------------------------


@_without_op_determinism
def label_formats(entries: Sequence[EntryPoint | str] | None = None, *, batch: int = 8,
                  classes: int = 5, seed: int = 0) -> list[Row]:
    """Each entry point x each of :data:`LABEL_FORMATS`, eagerly in float32, op determinism off
    (restored after).

    Logits ``[B, C]`` are ``N(0, 2)``; the labels of every format encode the same classes.

    Returns:
        One row per (entry, format): ``entry``, ``format``, ``native`` (the format the entry is
        meant for), ``accepted`` (ran without exception), ``error`` / ``message`` (exception
        class and first line), ``warning``, ``shape`` and ``dtype`` of the output,
        ``expected_shape``, ``matches_oracle`` (shape equal and values within
        :data:`MATCH_TOL` of :func:`oracle` on :func:`format_target`; None when it raised) and
        ``max_abs_error`` (None when the shapes differ).
    """
    rng = np.random.default_rng(seed)
    logits64 = rng.normal(0.0, 2.0, (batch, classes)).astype(np.float32).astype(np.float64)
    labels = make_labels(batch, classes, rng)
    logits = tf.constant(logits64, tf.float32)
    rows = []
    for e in _resolve(entries):
        outputs = to_outputs(e, logits)
        for fmt in LABEL_FORMATS:
            y = _label_tensor(format_labels(fmt, labels), tf.float32)
            out, info = _attempt(e.fn, y, outputs)
            expected, _ = oracle(e, format_target(fmt, labels, e.family), logits64)
            row: Row = {"entry": e.name, "format": fmt, "native": fmt == e.labels,
                        "accepted": out is not None, **info, "shape": None, "dtype": None,
                        "expected_shape": _shape(expected), "matches_oracle": None,
                        "max_abs_error": None}
            if out is not None:
                value = _f64(out)
                row.update(shape=_shape(value), dtype=out.dtype.name)
                if value.shape == expected.shape:
                    err = float(np.max(np.abs(value - expected)))
                    ok = bool(np.allclose(value, expected, rtol=MATCH_TOL, atol=MATCH_TOL))
                    row.update(max_abs_error=err, matches_oracle=ok)
                else:
                    row["matches_oracle"] = False
            rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------
# 2. Accuracy at extreme logits
# --------------------------------------------------------------------------------------------


def accuracy_rows(classes: int, seed: int) -> list[tuple[str, float | None, np.ndarray, int]]:
    """``(row name, gap, logits [C], true class)``: a moderate row (``N(0, 2)`` logits, a
    random class), all-zero logits (a zero-initialised output layer's first step) and, for
    each of :data:`GAPS`, ``[0, g, 0, ...]`` with the true class 0."""
    rng = np.random.default_rng(seed + 1)
    rows: list[tuple[str, float | None, np.ndarray, int]] = [
        ("moderate", None, rng.normal(0.0, 2.0, classes), int(rng.integers(0, classes))),
        ("zero logits", 0.0, np.zeros(classes), 0)]
    for g in GAPS:
        z = np.zeros(classes)
        z[1] = g
        rows.append((f"gap {g:g}", g, z, 0))
    return rows


def _native_labels(e: EntryPoint, index: np.ndarray, classes: int) -> np.ndarray:
    """Labels for ``index`` in the entry's native format (dense: one-hot, float32)."""
    if e.labels == "int [B]":
        return index.astype(np.int64)
    if e.labels == "int [B,1]":
        return index.astype(np.int64)[:, None]
    return np.eye(classes, dtype=np.float32)[index]


def _rel_error(value: np.ndarray, ref: np.ndarray) -> float:
    """Normwise relative error ``max|value - ref| / max|ref|`` (inf/NaN stay inf/NaN)."""
    scale = float(np.max(np.abs(ref)))
    err = float(np.max(np.abs(value - ref)))
    return err / scale if scale > 0 else err


@_without_op_determinism
def accuracy(entries: Sequence[EntryPoint | str] | None = None, *, classes: int = 5,
             dtypes: Sequence[str] = DTYPES, seed: int = 0) -> list[Row]:
    """Value and gradient of each entry point, eagerly, in each dtype, at each
    :func:`accuracy_rows` row (a batch of one), against the float64 :func:`oracle`; op
    determinism off (restored after).

    The logits are cast to the dtype first (probabilities are made from them in that dtype, by
    ``e.activation``); the oracle uses the logits as that dtype represents them; dense labels
    are cast to the dtype, integer labels stay int64. The gradient is taken with respect to
    the logits (through the softmax/sigmoid for probability entries).

    Returns:
        One row per (entry, dtype, row): ``entry``, ``expects``, ``family``, ``dtype``, ``row``,
        ``gap``, ``result_dtype``, ``value``, ``oracle``, ``rel_error`` (normwise, see
        :func:`_rel_error`), ``grad_abs_error`` (max abs), ``grad_max_abs``,
        ``oracle_grad_max_abs``, ``value_finite``, ``grad_finite``, ``error``, ``message``.
        ``value`` and ``oracle`` are the sum of the row's output (one number per example).
    """
    rows = []
    specs = accuracy_rows(classes, seed)
    for e in _resolve(entries):
        for dtype_name in dtypes:
            dtype = tf.as_dtype(dtype_name)
            for name, gap, z, true in specs:
                logits = tf.cast(tf.constant(z[None, :], tf.float64), dtype)
                z_rep = _f64(logits)
                labels = _label_tensor(_native_labels(e, np.array([true]), classes), dtype)
                ref, ref_grad = oracle(e, np.eye(classes)[[true]], z_rep)
                result, info = _attempt(_forward_backward, e, labels, logits)
                row: Row = {"entry": e.name, "expects": e.expects, "family": e.family,
                            "dtype": dtype_name, "row": name, "gap": gap, "result_dtype": None,
                            "value": None, "oracle": float(np.sum(ref)), "rel_error": None,
                            "grad_abs_error": None, "grad_max_abs": None,
                            "oracle_grad_max_abs": float(np.max(np.abs(ref_grad))),
                            "value_finite": None, "grad_finite": None,
                            "error": info["error"], "message": info["message"]}
                if result is None:
                    rows.append(row)
                    continue
                loss, grad = result
                value, g = _f64(loss), _f64(grad)
                row.update(
                    result_dtype=loss.dtype.name, value=float(np.sum(value)),
                    rel_error=_rel_error(value, ref) if value.shape == ref.shape else math.nan,
                    grad_abs_error=float(np.max(np.abs(g - ref_grad))),
                    grad_max_abs=float(np.max(np.abs(g))),
                    value_finite=bool(np.all(np.isfinite(value))),
                    grad_finite=bool(np.all(np.isfinite(g))),
                )
                rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------
# 3. Bad labels
# --------------------------------------------------------------------------------------------

#: The cases of :func:`bad_labels`.
BAD_CASES: tuple[str, ...] = ("label = C", "label = -1", "NaN label", "wrong rank")


def _bad_label_array(e: EntryPoint, case: str, index: np.ndarray, classes: int) -> np.ndarray:
    """Labels for ``case`` in ``e``'s native format; the bad value sits in row 0.

    Out-of-range indices reach a dense loss as ``tf.one_hot`` would encode them (an all-zero
    row); NaN goes into a float copy of the labels (integer formats become float, as labels
    read from a float array would); a wrong rank stacks the labels twice (an extra leading
    axis of 2)."""
    index = index.copy()
    if case in ("label = C", "label = -1"):
        index[0] = classes if case == "label = C" else -1
        if e.labels.startswith("int"):
            return _native_labels(e, index, classes)
        dense = np.zeros((len(index), classes), np.float32)
        ok = (index >= 0) & (index < classes)
        dense[np.flatnonzero(ok), index[ok]] = 1.0
        return dense
    good = _native_labels(e, index, classes)
    if case == "NaN label":
        bad = good.astype(np.float32)
        bad.reshape(len(index), -1)[0, 0] = np.nan
        return bad
    return np.stack([good, good])


def _outcome(out: tf.Tensor | None) -> tuple[str, float | None, str | None]:
    """``("raises" | "nan" | "inf" | "finite", first element, shape)``."""
    if out is None:
        return "raises", None, None
    value = _f64(out)
    first = float(value.reshape(-1)[0]) if value.size else None
    if np.any(np.isnan(value)):
        return "nan", first, _shape(value)
    if np.any(np.isinf(value)):
        return "inf", first, _shape(value)
    return "finite", first, _shape(value)


def bad_labels(entries: Sequence[EntryPoint | str] | None = None, *, batch: int = 4,
               classes: int = 5, seed: int = 0, modes: Sequence[str] = ("eager", "function"),
               ) -> list[Row]:
    """Each entry point x :data:`BAD_CASES` x mode (eager, ``tf.function``), float32, op
    determinism off; the out-of-range cases are repeated with op determinism on for entries
    that take integer labels. That composite (``nn_ops.py``,
    ``_sparse_softmax_cross_entropy_with_rank_2_logits``) forces NaN on out-of-range labels with
    a ``where``, but on CPU its ``gather`` raises ``InvalidArgumentError`` first (measured here;
    the rows record which op raised).

    Returns:
        One row per run: ``entry``, ``case``, ``mode``, ``determinism``, ``outcome``
        (``"raises"``, ``"nan"``, ``"inf"`` or ``"finite"``: anything NaN / inf in the output,
        else a finite number returned silently), ``error``, ``message``, ``warning``, ``shape``,
        ``value`` (the output's first element: row 0 holds the bad label).
    """
    rng = np.random.default_rng(seed + 2)
    logits = tf.constant(rng.normal(0.0, 2.0, (batch, classes)), tf.float32)
    index = rng.integers(0, classes, batch)
    rows = []
    for e in _resolve(entries):
        outputs = to_outputs(e, logits)
        runs = [(case, mode, False) for case in BAD_CASES for mode in modes]
        if e.labels.startswith("int"):
            runs += [(case, mode, True) for case in BAD_CASES[:2] for mode in modes]
        for case, mode, det in runs:
            y = _label_tensor(_bad_label_array(e, case, index, classes), tf.float32)
            call = e.fn if mode == "eager" else _traced(e.fn)
            with op_determinism(det), _quiet_tf_logger():
                out, info = _attempt(call, y, outputs)
            outcome, value, shape = _outcome(out)
            rows.append({"entry": e.name, "case": case, "mode": mode, "determinism": det,
                         "outcome": outcome, **info, "shape": shape, "value": value})
    return rows


# --------------------------------------------------------------------------------------------
# 4. Graphs and op determinism
# --------------------------------------------------------------------------------------------


def graphs(entries: Sequence[EntryPoint | str] | None = None, *, classes: int = 5,
           gap: float = 100.0) -> list[Row]:
    """Trace forward + gradient of each entry point in a ``tf.function`` with op determinism
    off and on, list the graph's op types and run it on a one-example batch at logit ``gap``.

    TF 2.21's ``tf.nn.softmax_cross_entropy_with_logits`` and
    ``tf.nn.sparse_softmax_cross_entropy_with_logits`` choose at trace time: the fused kernels
    without op determinism, a ``log_softmax`` composite with it (``nn_ops.py``,
    ``softmax_cross_entropy_with_logits_v2_helper`` and
    ``_sparse_softmax_cross_entropy_with_rank_2_logits``). Keras' losses reach the kernels
    through them (``keras/src/backend/tensorflow/nn.py``); with ``from_logits=False`` Keras'
    ``_get_logits`` finds the ``Softmax`` op behind the probabilities in a graph and uses its
    input, so the graph holds the kernel as well.

    Returns:
        One row per (entry, determinism): ``entry``, ``determinism``, ``fused_kernel`` (a
        :data:`FUSED_OPS` op is in the graph), ``kernels`` (which), ``log_softmax`` (a
        ``LogSoftmax`` op is), ``n_ops``, ``op_types`` (sorted, unique), ``value`` (the sum of
        the graph's loss at ``gap``, float32), ``grad_max_abs``, ``error``, ``message``.
    """
    z = np.zeros((1, classes), np.float32)
    z[0, 1] = gap
    logits = tf.constant(z)
    rows = []
    for e in _resolve(entries):
        labels = _label_tensor(_native_labels(e, np.array([0]), classes), tf.float32)
        for det in (False, True):
            with op_determinism(det), _quiet_tf_logger():
                traced = _traced(lambda y, x, e=e: _forward_backward(e, y, x))
                concrete, info = _attempt(traced.get_concrete_function, labels, logits)
                result = None
                if concrete is not None:
                    result, info = _attempt(concrete, labels, logits)
            row: Row = {"entry": e.name, "determinism": det, "fused_kernel": None,
                        "kernels": None, "log_softmax": None, "n_ops": None, "op_types": None,
                        "value": None, "grad_max_abs": None,
                        "error": info["error"], "message": info["message"]}
            if concrete is not None:
                types = sorted({op.type for op in concrete.graph.get_operations()})
                kernels = [k for k in FUSED_OPS if k in types]
                row.update(fused_kernel=bool(kernels), kernels=kernels,
                           log_softmax="LogSoftmax" in types,
                           n_ops=len(concrete.graph.get_operations()), op_types=types)
            if result is not None:
                loss, grad = result
                row.update(value=float(np.sum(_f64(loss))),
                           grad_max_abs=float(np.max(np.abs(_f64(grad)))))
            rows.append(row)
    return rows


#: The three ways :func:`modes` runs the manual formula.
MODES = ("eager", "tf.function, forward only", "tf.function, with its gradient")


def _optimized_op_types(concrete: Any) -> list[str]:
    """Op types of ``concrete``'s graph after Grappler's default optimizations (what a
    ``tf.function`` runs), via ``tensorflow/python/grappler/tf_optimizer.py``'s
    ``OptimizeGraph`` with its outputs as the fetch nodes."""
    from tensorflow.core.protobuf import config_pb2
    from tensorflow.python.grappler import tf_optimizer

    graph = concrete.graph
    meta = tf.compat.v1.train.export_meta_graph(graph_def=graph.as_graph_def(add_shapes=True),
                                                graph=graph)
    meta.collection_def["train_op"].node_list.value.extend(t.name for t in concrete.outputs)
    optimized = tf_optimizer.OptimizeGraph(config_pb2.ConfigProto(), meta)
    return sorted({node.op for node in optimized.node})


@_without_op_determinism
def modes(*, classes: int = 5, gap: float = 100.0) -> list[Row]:
    """The manual formula (:data:`MANUAL`) at a float32 logit ``gap`` (a confident mistake, one
    example), in each of :data:`MODES`. Grappler's arithmetic optimizer rewrites ``Log(Softmax(x))`` into
    ``LogSoftmax(x)`` when nothing else reads the softmax (``LogSoftmaxStage`` in
    ``tensorflow/core/grappler/optimizers/arithmetic_optimizer.cc``): in a forward-only graph,
    not when the gradient (which reads the softmax) is in the same graph, never eagerly.

    Returns:
        One row per mode: ``mode``, ``value``, ``oracle``, ``value_finite``, ``grad_finite``
        (None when the mode computes no gradient), ``log_softmax`` (the optimized graph runs
        ``LogSoftmax``; None eagerly), ``op_types`` (of the optimized graph).
    """
    z = np.zeros((1, classes), np.float32)
    z[0, 1] = gap
    logits, labels = tf.constant(z), tf.one_hot([0], classes)
    manual = entry(MANUAL)
    forward = manual.fn

    def with_gradient(y: tf.Tensor, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = forward(y, x)
        return value, tape.gradient(value, x)

    ref = float(np.sum(oracle(manual, np.eye(classes)[[0]], z)[0]))
    rows = []
    for mode in MODES:
        ops = None
        if mode == "eager":
            value, grad = with_gradient(labels, logits)
        else:
            fn = forward if mode == MODES[1] else with_gradient
            with _quiet_tf_logger():
                concrete = _traced(fn).get_concrete_function(labels, logits)
            out = concrete(labels, logits)
            value, grad = (out, None) if mode == MODES[1] else out
            ops = _optimized_op_types(concrete)
        rows.append({"mode": mode, "value": float(np.sum(_f64(value))), "oracle": ref,
                     "value_finite": bool(np.all(np.isfinite(_f64(value)))),
                     "grad_finite": None if grad is None else bool(np.all(np.isfinite(_f64(grad)))),
                     "log_softmax": None if ops is None else "LogSoftmax" in ops, "op_types": ops})
    return rows


# --------------------------------------------------------------------------------------------
# Reductions
# --------------------------------------------------------------------------------------------


@_without_op_determinism
def reductions(entries: Sequence[EntryPoint | str] | None = None, *, batch: int = 8,
               classes: int = 5, seed: int = 0) -> list[Row]:
    """What a reducing call divides the sum of the per-example losses by.

    For every entry with a Keras ``default_call`` (``reduction="sum_over_batch_size"``) and for
    ``tf.nn.compute_average_loss``: the per-example output (``reduction=None``), the default
    call's output, and ``divisor = sum(per-example) / reduced``. Extra rows:
    ``SparseCategoricalCrossentropy(ignore_class=-1)`` with three labels equal to -1,
    ``compute_average_loss`` over an element-wise ``[B, C]`` sigmoid loss, and with
    ``global_batch_size=4B``.

    Returns:
        Rows: ``entry``, ``call``, ``per_example_shape``, ``reduced_shape``, ``reduced``,
        ``sum``, ``divisor``, ``elements`` (number of per-example values), ``note``.
    """
    rng = np.random.default_rng(seed + 3)
    logits = tf.constant(rng.normal(0.0, 2.0, (batch, classes)), tf.float32)
    index = rng.integers(0, classes, batch)

    def row(name: str, call: str, per_example: tf.Tensor, reduced: tf.Tensor, note: str = ""
            ) -> Row:
        total = float(np.sum(_f64(per_example)))
        value = float(_f64(reduced))
        return {"entry": name, "call": call, "per_example_shape": _shape(per_example),
                "reduced_shape": _shape(reduced), "reduced": value, "sum": total,
                "divisor": round(total / value, 3) if value else math.nan,
                "elements": int(np.size(per_example)), "note": note}

    rows = []
    for e in _resolve(entries):
        y = _label_tensor(_native_labels(e, index, classes), tf.float32)
        outputs = to_outputs(e, logits)
        if e.default_call is not None:
            rows.append(row(e.name, "default reduction (sum_over_batch_size)", e.fn(y, outputs),
                            e.default_call(y, outputs)))
            if "ignore_class=-1" in e.name:
                ignored = index.copy()
                ignored[:3] = -1
                y_ign = _label_tensor(ignored, tf.float32)
                rows.append(row(e.name, "default reduction, 3 labels = ignore_class",
                                e.fn(y_ign, outputs), e.default_call(y_ign, outputs),
                                "ignored examples have loss 0 and leave the divisor"))
        elif e.output == "[]":  # compute_average_loss
            per_ex = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
            rows.append(row(e.name, "compute_average_loss(per_example [B])", per_ex,
                            e.fn(y, logits)))
            dense = tf.constant(np.eye(classes, dtype=np.float32)[index])
            elementwise = tf.nn.sigmoid_cross_entropy_with_logits(labels=dense, logits=logits)
            rows.append(row(e.name, "compute_average_loss(sigmoid CE [B,C])", elementwise,
                            tf.nn.compute_average_loss(elementwise),
                            "divides by the first dimension only"))
            rows.append(row(e.name, f"compute_average_loss(per_example [B], "
                                    f"global_batch_size={4 * batch})", per_ex,
                            tf.nn.compute_average_loss(per_ex, global_batch_size=4 * batch)))
    return rows


# --------------------------------------------------------------------------------------------
# sampled_softmax_loss
# --------------------------------------------------------------------------------------------


@_without_op_determinism
def sampled(*, batch: int = 8, classes: int = 10, features: int = 4, calls: int = 3,
            seed: int = 0) -> list[Row]:
    """``tf.nn.sampled_softmax_loss`` on a tiny linear layer against full softmax CE.

    ``x [B, D]``, ``weights [C, D]``, ``biases [C]`` from ``N(0, 1)``; the full loss is
    ``sparse_softmax_cross_entropy_with_logits`` on ``x @ weights^T + biases``; the sampled loss
    draws ``num_sampled = C // 2`` log-uniform negatives per batch. Each setting is called
    ``calls`` times in a row, eagerly: ``seed=None``; ``seed=7`` (op seed only); and
    ``tf.random.set_seed(seed)`` before every call with ``seed=7`` (which leaves TensorFlow's
    global seed set). The first two settings' values repeat from run to run only when the
    global seed was set before the call, as :func:`measure` does.

    Returns:
        One row per call: ``setting``, ``call``, ``num_sampled``, ``value`` (batch mean),
        ``full`` (batch mean of the full loss), ``rel_diff`` (``|value - full| / full``).
    """
    rng = np.random.default_rng(seed + 4)
    x = tf.constant(rng.normal(size=(batch, features)), tf.float32)
    w = tf.constant(rng.normal(size=(classes, features)), tf.float32)
    b = tf.constant(rng.normal(size=classes), tf.float32)
    labels = tf.constant(rng.integers(0, classes, (batch, 1)), tf.int64)
    logits = tf.matmul(x, w, transpose_b=True) + b
    full = float(tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels[:, 0], logits=logits)))
    num_sampled = max(1, classes // 2)
    settings: list[tuple[str, int | None, bool]] = [
        ("seed=None", None, False), (f"seed={SAMPLED_OP_SEED}", SAMPLED_OP_SEED, False),
        (f"tf.random.set_seed({seed}); seed={SAMPLED_OP_SEED}", SAMPLED_OP_SEED, True),
    ]
    rows = []
    for setting, op_seed, reset in settings:
        for k in range(calls):
            if reset:
                tf.random.set_seed(seed)
            value = float(tf.reduce_mean(tf.nn.sampled_softmax_loss(
                weights=w, biases=b, labels=labels, inputs=x, num_sampled=num_sampled,
                num_classes=classes, seed=op_seed)))
            rows.append({"setting": setting, "call": k, "num_sampled": num_sampled,
                         "value": value, "full": full, "rel_diff": abs(value - full) / full})
    return rows


# --------------------------------------------------------------------------------------------
# The atlas
# --------------------------------------------------------------------------------------------


@dataclass
class Atlas:
    """Every measurement's rows (see each function for the fields).

    Attributes:
        entries: :func:`entry_rows`.
        label_formats: :func:`label_formats`.
        accuracy: :func:`accuracy`.
        bad_labels: :func:`bad_labels`.
        graphs: :func:`graphs`.
        modes: :func:`modes`.
        reductions: :func:`reductions`.
        sampled: :func:`sampled`.
        settings: batch, classes, seed, dtypes, gaps, TensorFlow and Keras versions.
        seconds: wall time of each measurement (not used by :func:`decision_guide`).
    """

    entries: list[Row]
    label_formats: list[Row]
    accuracy: list[Row]
    bad_labels: list[Row]
    graphs: list[Row]
    modes: list[Row]
    reductions: list[Row]
    sampled: list[Row]
    settings: dict[str, Any]
    seconds: dict[str, float]

    #: The row lists, in rendering order.
    SECTIONS = ("entries", "label_formats", "accuracy", "bad_labels", "graphs", "modes",
                "reductions", "sampled")


def measure(*, batch: int = 8, classes: int = 5, seed: int = 0,
            entries: Sequence[EntryPoint | str] | None = None,
            dtypes: Sequence[str] = DTYPES) -> Atlas:
    """Run every measurement with fixed seeds (about 7 s on a 2-core CPU for all entry points).

    Op determinism is off for every section except the rows that say ``determinism=True``;
    the previous state is restored. TensorFlow's global seed is set to ``seed`` before each
    section, so the random ``sampled_softmax_loss`` rows repeat from run to run.

    Args:
        batch: ``B`` of the label-format, bad-label and reduction batches (``!= classes``, so
            that a ``[B]`` tensor cannot broadcast against ``[B, C]`` by accident).
        classes: ``C`` (>= 3) of every measurement except :func:`sampled` (``2 C``).
        seed: NumPy and TensorFlow seed.
        entries: a subset of :data:`ENTRY_POINTS` (names or entries); all by default.
        dtypes: the dtypes of :func:`accuracy`.
    """
    if batch == classes:
        raise ValueError(f"batch and classes must differ (got {batch} for both)")
    if classes < 3:
        raise ValueError(f"classes must be >= 3, got {classes}")
    chosen = _resolve(entries)
    seconds: dict[str, float] = {}

    def run(section: str, fn: Callable[[], list[Row]]) -> list[Row]:
        tf.random.set_seed(seed)
        start = time.perf_counter()
        with op_determinism(False):
            rows = fn()
        seconds[section] = time.perf_counter() - start
        log.info("%s: %d rows in %.1f s", section, len(rows), seconds[section])
        return rows

    atlas = Atlas(
        entries=entry_rows(chosen),
        label_formats=run("label_formats", lambda: label_formats(
            chosen, batch=batch, classes=classes, seed=seed)),
        accuracy=run("accuracy", lambda: accuracy(chosen, classes=classes, dtypes=dtypes,
                                                  seed=seed)),
        bad_labels=run("bad_labels", lambda: bad_labels(chosen, batch=batch, classes=classes,
                                                        seed=seed)),
        graphs=run("graphs", lambda: graphs(chosen, classes=classes)),
        modes=run("modes", lambda: modes(classes=classes)),
        reductions=run("reductions", lambda: reductions(chosen, batch=batch, classes=classes,
                                                        seed=seed)),
        sampled=run("sampled", lambda: sampled(batch=batch, classes=2 * classes, seed=seed)),
        settings={"batch": batch, "classes": classes, "seed": seed, "dtypes": list(dtypes),
                  "gaps": list(GAPS), "tensorflow": tf.__version__, "keras": keras.__version__},
        seconds=seconds,
    )
    return atlas


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def select(rows: Sequence[Row], **where: Any) -> list[Row]:
    """The rows whose fields equal every ``where`` item."""
    return [r for r in rows if all(r.get(k) == v for k, v in where.items())]


def one(rows: Sequence[Row], **where: Any) -> Row:
    """The single row matching ``where``; ``KeyError`` if none or several."""
    found = select(rows, **where)
    if len(found) != 1:
        raise KeyError(f"{len(found)} rows match {where}")
    return found[0]


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(str(x) for x in v)
    return str(v).replace("|", "\\|").replace("\n", " ")


def table(rows: Sequence[Row], columns: Sequence[str] | None = None) -> str:
    """A markdown table of ``rows`` (all fields, in first-seen order, unless ``columns``)."""
    if not rows:
        return "(no rows)\n"
    if columns is None:
        columns = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


#: The columns :func:`tables` shows per section (all fields are in the rows).
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "entries": ("name", "expects", "family", "labels", "output", "note"),
    "label_formats": ("entry", "format", "accepted", "error", "shape", "expected_shape",
                      "matches_oracle", "max_abs_error"),
    "accuracy": ("entry", "dtype", "row", "result_dtype", "value", "oracle", "rel_error",
                 "grad_abs_error", "grad_max_abs", "value_finite", "grad_finite", "error"),
    "bad_labels": ("entry", "case", "mode", "determinism", "outcome", "error", "value"),
    "graphs": ("entry", "determinism", "fused_kernel", "kernels", "log_softmax", "n_ops",
               "value", "grad_max_abs", "error"),
    "modes": ("mode", "value", "oracle", "value_finite", "grad_finite", "log_softmax"),
    "reductions": ("entry", "call", "per_example_shape", "reduced_shape", "reduced", "sum",
                   "divisor", "note"),
    "sampled": ("setting", "call", "num_sampled", "value", "full", "rel_diff"),
}


def tables(atlas: Atlas) -> dict[str, str]:
    """Markdown tables of every section, with :data:`TABLE_COLUMNS`."""
    return {s: table(getattr(atlas, s), TABLE_COLUMNS[s]) for s in Atlas.SECTIONS}


def matrix(rows: Sequence[Row], index: str, column: str, cell: Callable[[Row], str]) -> str:
    """A markdown pivot of ``rows``: one line per value of ``index``, one column per value of
    ``column`` (first-seen order), ``cell(row)`` in each (empty where no row matches)."""
    keys = list(dict.fromkeys(r[index] for r in rows))
    cols = list(dict.fromkeys(r[column] for r in rows))
    at = {(r[index], r[column]): r for r in rows}
    lines = ["| " + " | ".join([index, *map(_cell, cols)]) + " |", "|" + "---|" * (len(cols) + 1)]
    lines += ["| " + " | ".join([_cell(k), *(_cell(cell(at[k, c])) if (k, c) in at else "" for c in cols)])
              + " |" for k in keys]
    return "\n".join(lines) + "\n"


def format_cell(r: Row) -> str:
    """A :func:`label_formats` row in a word: ``ok``, ``differs by X`` (accepted, not the oracle's
    value for what the format means) or ``raises <Error>``."""
    if not r["accepted"]:
        return f"raises {r['error']}"
    return "ok" if r["matches_oracle"] else f"differs by {r['max_abs_error']:.3g}"


#: The error an :func:`accuracy_cell` calls ``ok`` per dtype: 1e-3, or four rounding units
#: (machine epsilon 2**-10 for float16, 2**-7 for bfloat16) where that is larger.
CELL_TOLERANCE = {"float32": 1e-3, "float64": 1e-3, "float16": 4 * 2.0**-10, "bfloat16": 4 * 2.0**-7}


def accuracy_cell(r: Row) -> str:
    """An :func:`accuracy` row in a word: ``ok`` (relative value error and gradient error within
    :data:`CELL_TOLERANCE` of the row's dtype), else the value against the exact one, and
    ``grad 0`` where the gradient vanished although the exact one does not."""
    if r["error"]:
        return f"raises {r['error']}"
    if not r["value_finite"]:
        return _fmt_value(r["value"])
    tol = CELL_TOLERANCE.get(r.get("dtype", "float32"), 1e-3)
    dead = r["grad_max_abs"] == 0 and r["oracle_grad_max_abs"] > 0
    if r["rel_error"] < tol and r["grad_finite"] and r["grad_abs_error"] < tol:
        return "ok"
    text = f"{r['value']:.4g} (exact {r['oracle']:.4g})" if r["rel_error"] >= tol else "value ok"
    return text + ("; grad 0" if dead else "" if r["grad_finite"] else "; grad not finite")


def bad_label_cell(r: Row) -> str:
    """A :func:`bad_labels` row in a word: ``raises <Error>``, ``NaN``, ``inf`` or ``silent <value>``."""
    if r["outcome"] == "raises":
        return f"raises {r['error']}"
    return r["outcome"] if r["outcome"] in ("nan", "inf") else f"silent {_fmt_value(r['value'])}"


def graph_cell(r: Row) -> str:
    """A :func:`graphs` row in a word: which path the traced forward + backward graph runs."""
    if r["error"]:
        return f"raises {r['error']}"
    return f"{'fused kernel' if r['fused_kernel'] else 'no fused kernel'} ({r['n_ops']} ops)"


# --------------------------------------------------------------------------------------------
# The decision guide
# --------------------------------------------------------------------------------------------




def _fmt_small(x: float | None) -> str:
    """An error: ``"< 1e-6"`` below 1e-6, else one significant digit; inf/NaN spelled out."""
    if x is None or math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "inf"
    if x == 0:
        return "0"
    return "< 1e-6" if abs(x) < 1e-6 else f"{x:.1g}"


def _fmt_value(x: float | None) -> str:
    """A loss value: three decimals (``16.118``); inf/NaN spelled out."""
    if x is None or math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.3f}"


SPARSE = "tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)"
SOFTMAX = "tf.nn.softmax_cross_entropy_with_logits(labels, logits)"
SIGMOID = "tf.nn.sigmoid_cross_entropy_with_logits(labels, logits)"
WEIGHTED = "tf.nn.weighted_cross_entropy_with_logits(labels, logits, pos_weight=1.0)"
AVERAGE = ("tf.nn.compute_average_loss(tf.nn.sparse_softmax_cross_entropy_with_logits("
           "labels, logits))")
KERAS_SPARSE = "keras.losses.SparseCategoricalCrossentropy(from_logits=True)"
KERAS_CCE = "keras.losses.CategoricalCrossentropy(from_logits=True)"
KERAS_CCE_SMOOTH = "keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)"
KERAS_CCE_PROBS = "keras.losses.CategoricalCrossentropy(from_logits=False)"
KERAS_CCE_KERAS_SOFTMAX = (
    "keras.losses.CategoricalCrossentropy(from_logits=False) on keras.ops.softmax(logits)")
KERAS_BCE = "keras.losses.BinaryCrossentropy(from_logits=True)"
KERAS_FOCAL = "keras.losses.CategoricalFocalCrossentropy(from_logits=True)"
OPS_CCE_PROBS = "keras.ops.categorical_crossentropy(target, output, from_logits=False)"
OPS_BCE_PROBS = "keras.ops.binary_crossentropy(target, output, from_logits=False)"
MANUAL = "-tf.reduce_sum(labels * tf.math.log(tf.nn.softmax(logits)), axis=-1)"
#: The entry points :func:`decision_guide` quotes: ``measure(entries=GUIDE_ENTRIES)`` gives the
#: same guide as a full :func:`measure`.
GUIDE_ENTRIES: tuple[str, ...] = (
    SPARSE, SOFTMAX, SIGMOID, WEIGHTED, AVERAGE, KERAS_SPARSE, KERAS_CCE, KERAS_CCE_SMOOTH,
    KERAS_CCE_PROBS, KERAS_CCE_KERAS_SOFTMAX, KERAS_BCE, KERAS_FOCAL, OPS_CCE_PROBS,
    OPS_BCE_PROBS, MANUAL,
)


def _acc(atlas: Atlas, name: str, row: str, dtype: str = "float32") -> Row | None:
    """The accuracy row, or None when it was not measured or the call raised."""
    found = [r for r in select(atlas.accuracy, entry=name, row=row, dtype=dtype)
             if not r.get("error")]
    return found[0] if found else None


def _graph(atlas: Atlas, name: str, determinism: bool = False) -> Row | None:
    found = select(atlas.graphs, entry=name, determinism=determinism)
    return found[0] if found and found[0]["op_types"] is not None else None


def _format_text(atlas: Atlas, name: str, fmt: str) -> str:
    """What ``name`` does with labels in ``fmt``, as a verb phrase."""
    found = select(atlas.label_formats, entry=name, format=fmt)
    if not found:
        return "was not measured"
    r = found[0]
    if not r["accepted"]:
        return f"raises {r['error']}"
    if r["matches_oracle"]:
        return f"equals the oracle (max abs error {_fmt_small(r['max_abs_error'])})"
    if r["max_abs_error"] is None:
        return f"is accepted silently with shape {r['shape']} instead of {r['expected_shape']}"
    return (f"is accepted silently but differs from the oracle by up to "
            f"{_fmt_value(r['max_abs_error'])}")


def _exact_text(r: Row | None) -> str:
    if r is None:
        return "(not measured)"
    grad = "a finite gradient" if r["grad_finite"] else "a gradient that is not finite"
    return (f"relative error {_fmt_small(r['rel_error'])} and {grad} (max abs error "
            f"{_fmt_small(r['grad_abs_error'])})")


def _kernel_text(atlas: Atlas, name: str) -> str:
    g = _graph(atlas, name)
    if g is None:
        return ""
    if g["fused_kernel"]:
        return f", whose traced graph runs the same {', '.join(g['kernels'])} kernel"
    return ", whose traced graph has no fused kernel"


def _bad_text(atlas: Atlas, name: str, mode: str, determinism: bool) -> str | None:
    found = select(atlas.bad_labels, entry=name, case="label = C", mode=mode,
                   determinism=determinism)
    if not found:
        return None
    r = found[0]
    if r["outcome"] == "raises":
        return f"raises {r['error']} ('{r['message']}')" if determinism else f"raises {r['error']}"
    if r["outcome"] in ("nan", "inf"):
        return f"returns {r['outcome'].upper() if r['outcome'] == 'nan' else 'inf'}"
    return f"returns a finite number silently ({_fmt_value(r['value'])})"


def _rule_integer(atlas: Atlas, gap: str, gap_text: str) -> str:
    text = (f"- **Integer class labels `[B]`, model outputs logits**: call `{SPARSE}` (or "
            f"`{KERAS_SPARSE}`{_kernel_text(atlas, KERAS_SPARSE)}), because at {gap_text} in "
            f"float32 it has {_exact_text(_acc(atlas, SPARSE, gap))}. Labels shaped `[B,1]`: "
            f"the tf.nn op {_format_text(atlas, SPARSE, 'int [B,1]')}; the Keras loss squeezes "
            f"them and {_format_text(atlas, KERAS_SPARSE, 'int [B,1]')}.")
    eager, func = _bad_text(atlas, SPARSE, "eager", False), _bad_text(atlas, SPARSE, "function", False)
    det = _bad_text(atlas, SPARSE, "eager", True)
    if eager and func:
        both = (f"{eager} eagerly and under tf.function" if eager == func
                else f"{eager} eagerly and {func} under tf.function")
        text += f" A label equal to C {both}"
        text += f"; with op determinism on (the composite path) it {det}." if det else "."
    return text


def _rule_dense(atlas: Atlas, gap: str, gap_text: str) -> str:
    text = (f"- **One-hot or soft labels `[B,C]`, model outputs logits**: call `{SOFTMAX}` (or "
            f"`{KERAS_CCE}`{_kernel_text(atlas, KERAS_CCE)}), because at {gap_text} in float32 "
            f"it has {_exact_text(_acc(atlas, SOFTMAX, gap))}; with soft labels it "
            f"{_format_text(atlas, SOFTMAX, 'soft [B,C]')}.")
    smooth = _acc(atlas, KERAS_CCE_SMOOTH, gap)
    if smooth is not None:
        text += (f" Label smoothing: `{KERAS_CCE_SMOOTH}` matches the smoothed oracle "
                 f"(relative error {_fmt_small(smooth['rel_error'])}).")
    text += (f" Never pass class indices: `[B]` {_format_text(atlas, SOFTMAX, 'int [B]')}, and "
             f"`[B,1]` {_format_text(atlas, SOFTMAX, 'int [B,1]')} (the index is broadcast "
             f"over the classes: the loss is -index * sum(log p)).")
    return text


def _rule_multilabel(atlas: Atlas, gap: str, gap_text: str) -> str:
    return (f"- **Multi-hot labels `[B,C]` (several classes present), model outputs logits**: "
            f"call `{SIGMOID}` (per class, `[B,C]`) or `{KERAS_BCE}` (mean over classes, `[B]`), "
            f"because on multi-hot labels it {_format_text(atlas, SIGMOID, 'multi-hot [B,C]')} "
            f"and at {gap_text} it has {_exact_text(_acc(atlas, SIGMOID, gap))}. Softmax "
            f"cross-entropy given the same multi-hot labels "
            f"{_format_text(atlas, SOFTMAX, 'multi-hot [B,C]')} (the oracle normalises the "
            f"targets; the op adds -log p over every positive).")


def _rule_probabilities(atlas: Atlas) -> str:
    r = _acc(atlas, KERAS_CCE_PROBS, "gap 100")
    if r is None:
        return ""
    grad = "exactly 0" if r["grad_max_abs"] == 0 else f"at most {_fmt_small(r['grad_max_abs'])}"
    text = (f"- **You only have probabilities** (Keras `from_logits=False`): expect a capped "
            f"loss. `{KERAS_CCE_PROBS}` clips them to [1e-7, 1 - 1e-7]: at a logit gap of 100 "
            f"it returns {_fmt_value(r['value'])} (exact: {_fmt_value(r['oracle'])}) and its "
            f"gradient is {grad}, so a confidently wrong example stops learning. Pass logits "
            f"with `from_logits=True` instead.")
    k = _acc(atlas, KERAS_CCE_KERAS_SOFTMAX, "gap 100")
    if k is not None:
        text += (f" Eagerly, only probabilities made by `keras.ops.softmax` (or a Keras softmax "
                 f"layer) escape the cap, because they carry their logits (`_keras_logits`): "
                 f"{_fmt_value(k['value'])} there.")
    g = _graph(atlas, KERAS_CCE_PROBS)
    if g is not None and g["fused_kernel"]:
        text += (f" Inside `tf.function` Keras also finds the logits behind a `tf.nn.softmax` "
                 f"op: the traced graph runs {', '.join(g['kernels'])} and returns "
                 f"{_fmt_value(g['value'])}, so the same code gives different losses eagerly "
                 f"and in a graph.")
    return text


def _rule_dtype(atlas: Atlas, gap: str, gap_text: str) -> str:
    if "float16" not in atlas.settings.get("dtypes", []):
        return ""
    tfnn, keras_loss = _acc(atlas, SOFTMAX, gap, "float16"), _acc(atlas, KERAS_CCE, gap, "float16")
    if tfnn is None or keras_loss is None:
        return ""
    text = (f"- **Mixed precision (float16 logits)**: `{SOFTMAX}` returns {tfnn['result_dtype']} "
            f"(relative error {_fmt_small(tfnn['rel_error'])} at {gap_text}); `{KERAS_CCE}` "
            f"returns {keras_loss['result_dtype']}, because Keras' `Loss` objects cast their "
            f"inputs to floatx first.")
    k = _acc(atlas, KERAS_CCE_KERAS_SOFTMAX, "gap 100", "float16")
    if k is not None and k["value"] != k["oracle"]:
        text += (f" That cast drops `keras.ops.softmax`'s logits: on float16 probabilities the "
                 f"loss is capped again ({_fmt_value(k['value'])} at a gap of 100).")
    ops_cce, ops_bce = _acc(atlas, OPS_CCE_PROBS, "gap 100", "float16"), _acc(
        atlas, OPS_BCE_PROBS, "gap 100", "float16")
    if ops_cce is not None:
        text += (f" `keras.ops` keeps float16, where `from_logits=False` caps at "
                 f"{_fmt_value(ops_cce['value'])}")
        if ops_bce is not None and not ops_bce["value_finite"]:
            text += (f" and `{OPS_BCE_PROBS}` returns {_fmt_value(ops_bce['value'])} with a "
                     f"gradient that is not finite: 1 - 1e-7 rounds to 1 in float16, so the clip "
                     f"no longer keeps log(1 - p) finite")
        text += "."
    return text


def _avoid_items(atlas: Atlas) -> list[str]:
    items = []
    m = _acc(atlas, MANUAL, "gap 100")
    if m is not None and not (m["value_finite"] and m["grad_finite"]):
        text = (f"`{MANUAL}`: at a logit gap of 100 in float32 it returns "
                f"{_fmt_value(m['value'])} eagerly, with a gradient that is "
                f"{'finite' if m['grad_finite'] else 'not finite'}")
        by_mode = {r["mode"]: r for r in atlas.modes}
        fwd, both = by_mode.get(MODES[1]), by_mode.get(MODES[2])
        if fwd is not None and both is not None:
            text += (f"; a `tf.function` that computes only the loss returns {_fmt_value(fwd['value'])} "
                     f"(exact: {_fmt_value(fwd['oracle'])})" + (
                         ", because Grappler rewrites `log(softmax(x))` into `log_softmax(x)` when nothing "
                         "else reads the softmax" if fwd["log_softmax"] else "")
                     + f", and one that also computes its gradient returns {_fmt_value(both['value'])}"
                     + (" (the gradient reads the softmax, so no rewrite)" if not both["log_softmax"] else "")
                     + ": the same code gives different losses by mode, and a training step, which computes the gradient, gets the failure")
        items.append(text)
    f = _acc(atlas, KERAS_FOCAL, "gap 100")
    if f is not None and f["rel_error"] > 0.5:
        grad = "exactly 0" if f["grad_max_abs"] == 0 else _fmt_small(f["grad_max_abs"])
        items.append(f"expecting `{KERAS_FOCAL}` to use the logits: it applies softmax and then "
                     f"the same clip, so at a gap of 100 it returns {_fmt_value(f['value'])} "
                     f"(exact: {_fmt_value(f['oracle'])}) with gradient {grad}, just where focal "
                     f"loss should focus")
    w, s = _acc(atlas, WEIGHTED, "zero logits"), _acc(atlas, SIGMOID, "zero logits")
    if w is not None and s is not None and w["grad_abs_error"] > 0.1:
        items.append(f"`{WEIGHTED}` at logits exactly 0 (e.g. a zero-initialised output layer): "
                     f"its gradient is off by {_fmt_small(w['grad_abs_error'])} (`abs` and `relu` "
                     f"have subgradient 0 there); `{SIGMOID}` is off by "
                     f"{_fmt_small(s['grad_abs_error'])}")
    rows = atlas.sampled
    if rows:
        unseeded = select(rows, setting="seed=None")
        op_seed = [r for r in rows if r["setting"] == f"seed={SAMPLED_OP_SEED}"]
        reset = [r for r in rows if r["setting"].startswith("tf.random.set_seed")]
        side = "below" if all(r["value"] < r["full"] for r in rows) else "off"
        text = (f"`tf.nn.sampled_softmax_loss` as an evaluation loss: it is a training-time "
                f"approximation, {min(r['rel_diff'] for r in rows):.0%} to "
                f"{max(r['rel_diff'] for r in rows):.0%} {side} full softmax cross-entropy on "
                f"the same linear layer over {len(rows)} calls here; {len(unseeded)} successive unseeded calls gave "
                f"{len({r['value'] for r in unseeded})} different values")
        if len({r["value"] for r in op_seed}) > 1:
            text += ", and so did calls with an op seed alone (eagerly)"
        if len({r["value"] for r in reset}) == 1:
            text += "; only `tf.random.set_seed` before each call repeats a value"
        items.append(text)
    red = [r for r in atlas.reductions if r["call"] == "compute_average_loss(sigmoid CE [B,C])"]
    if red:
        r = red[0]
        items.append(f"`tf.nn.compute_average_loss` on an element-wise `{r['per_example_shape']}` "
                     f"loss: it divides the sum by {r['divisor']:.0f} (the first dimension), not "
                     f"by the {r['elements']} elements; reduce over the classes first")
    on, off = _graph(atlas, SPARSE, True), _graph(atlas, SPARSE, False)
    if on is not None and off is not None and off["fused_kernel"] and not on["fused_kernel"]:
        items.append(f"expecting the fused kernels under op determinism "
                     f"(`tf.config.experimental.enable_op_determinism()`): the traced graph of "
                     f"`{SPARSE}` then has no fused op but a LogSoftmax composite "
                     f"({on['n_ops']} ops instead of {off['n_ops']}), and so does every Keras "
                     f"loss built on it")
    return items


def decision_guide(atlas: Atlas) -> str:
    """A markdown "which cross-entropy should I call?" guide written from ``atlas``' rows.

    Every number in it is formatted from a measured row (errors below 1e-6 print as
    ``"< 1e-6"``, others with one significant digit, loss values with three decimals), so the
    text is the same for every run on one machine. Rules whose rows were not measured are left
    out; ``measure(entries=GUIDE_ENTRIES)`` measures all that it quotes.

    Returns:
        Markdown: a heading, one bullet per rule ("Labels like X, model output Y: call Z,
        because <measured reason>"), and an "Avoid" list.
    """
    measured = [g for g in GAPS if _acc(atlas, SPARSE, f"gap {g:g}") is not None]
    g = max(measured) if measured else max(GAPS)
    gap, gap_text = f"gap {g:g}", f"a logit gap of {g:g}"
    rules = [_rule_integer(atlas, gap, gap_text), _rule_dense(atlas, gap, gap_text),
             _rule_multilabel(atlas, gap, gap_text), _rule_probabilities(atlas),
             _rule_dtype(atlas, gap, gap_text)]
    avoid = _avoid_items(atlas)
    if avoid:
        rules.append("- **Avoid**:\n" + "\n".join(f"  - {i}." for i in avoid))
    s = atlas.settings
    head = (f"## Which cross-entropy should I use?\n\nMeasured by `xentlab.atlas.measure()` "
            f"with TensorFlow {s['tensorflow']} and Keras {s['keras']} ({s['classes']} classes); "
            f"errors are against a float64 oracle. Inputs: label formats, bad labels and reductions "
            f"on a batch of {s['batch']} with logits drawn from N(0, 2²) and random labels (NumPy seed "
            f"{s['seed']}), so their differences from the oracle are those of this batch; values at a logit "
            f"gap are one example with logits [0, gap, 0, …] and the true class 0; an op count is every op "
            f"of the traced forward-and-gradient graph before Grappler; `sampled_softmax_loss` runs on a "
            f"small linear layer (batch {s['batch']}, {2 * s['classes']} classes, {s['classes']} sampled, "
            f"inputs and weights from N(0, 1)), seeded as its bullet says.\n\n")
    return head + "\n".join(r for r in rules if r) + "\n"
