"""The atlas' entry points: every TensorFlow / Keras cross-entropy call as an :class:`EntryPoint`
(:data:`ENTRY_POINTS`), the float64 oracle of each (:func:`oracle`, from
:func:`xentlab.losses.oracle`), and how an entry is called (labels, outputs, errors)."""

from __future__ import annotations

import functools
import logging
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from xentlab import losses, runtime

log = logging.getLogger("xentlab.atlas")

Row = dict[str, Any]
LossFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]

#: The label formats of :func:`label_formats` (``B`` examples, ``C`` classes).
LABEL_FORMATS: tuple[str, ...] = (
    "int [B]", "int [B,1]", "one-hot [B,C]", "soft [B,C]", "multi-hot [B,C]",
)
#: The dtypes :func:`extremes` computes in.
DTYPES: tuple[str, ...] = ("float32", "float16", "bfloat16")
#: Logit gaps of :func:`extremes`: the true class trails the largest logit by this much.
GAPS: tuple[float, ...] = (10.0, 100.0, 1000.0)
#: TensorFlow's fused softmax cross-entropy kernels (op types in a graph).
FUSED_OPS: tuple[str, ...] = ("SoftmaxCrossEntropyWithLogits", "SparseSoftmaxCrossEntropyWithLogits")
#: Keras' clip for probabilities (``keras.config.epsilon()``).
KERAS_EPSILON: float = 1e-7
#: The label-smoothing variant's setting.
SMOOTHING: float = 0.1
#: Keras' focal defaults (``CategoricalFocalCrossentropy`` and ``BinaryFocalCrossentropy``).
FOCAL_ALPHA, FOCAL_GAMMA = losses.FOCAL_ALPHA, losses.FOCAL_GAMMA
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
        losses.manual_softmax_cross_entropy,
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
# The float64 oracle (xentlab.losses.oracle) for an entry point
# --------------------------------------------------------------------------------------------


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
    value, grad = losses.oracle(e.loss, t, z)
    if value.ndim == 2 and e.output != "[B,C]":  # Keras' binary losses: mean over classes
        value, grad = value.mean(-1), grad / classes
    if e.output == "[]":
        value, grad = value.sum() / z.shape[0], grad / z.shape[0]
    return value, grad


# --------------------------------------------------------------------------------------------
# Running an entry point
# --------------------------------------------------------------------------------------------


def _without_op_determinism(fn: Callable[..., list[Row]]) -> Callable[..., list[Row]]:
    """Run a measurement with op determinism off (the fused kernels), restoring the state."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> list[Row]:
        with runtime.op_determinism(False):
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


#: The calls the notebooks and the decision guide name (as :attr:`EntryPoint.name`).
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
