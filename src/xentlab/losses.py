"""The cross-entropy formulations that five TensorFlow Q&A documents compare.

Every loss is per-example (unreduced) and takes its arguments in TensorFlow's order,
``(labels, logits)``. The documents:

* 000 -- why ``reduce_mean`` over ``sparse_softmax_cross_entropy_with_logits``
* 001 -- manual softmax + cross-entropy vs ``softmax_cross_entropy_with_logits`` (16.478533)
* 002 -- MNIST CNN: ``log(softmax + 1e-10)`` collapses to 10 %, log_softmax / fused reach 98.7 %
* 003 -- sigmoid vs softmax vs sparse softmax cross-entropy
* 004 -- Keras 2 ``categorical_crossentropy``: from_logits, epsilon clipping, renormalisation, no 1/N

Shapes: ``[..., C]`` logits give ``[...]`` losses (the class axis removed); "batch" below means
those leading dimensions. Floating dtypes float16, bfloat16, float32 and float64 all run through
TensorFlow's own kernels: on CPU in TF 2.21 the fused softmax, sparse softmax and sigmoid kernels
all accept float16 and bfloat16 and return that dtype, so nothing is upcast here.

Bad input raises ``ValueError`` naming the problem. Static checks (dtype, rank, shape) run
always, also while ``tf.function`` traces; checks on label *values* run only where the values
are known (eager tensors, NumPy arrays, lists, constants).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.types.experimental import TensorLike

__all__ = [
    "FOCAL_ALPHA",
    "FOCAL_GAMMA",
    "METHODS",
    "ORACLE_FAMILIES",
    "REDUCTIONS",
    "SIGMOID_METHODS",
    "SPARSE_METHODS",
    "keras2_categorical_crossentropy",
    "linear_cross_entropy",
    "logit_gradient",
    "manual_softmax_cross_entropy",
    "oracle",
    "reduced",
    "reference_sigmoid_cross_entropy",
    "reference_softmax_cross_entropy",
    "relative_errors",
    "sigmoid_cross_entropy",
    "softmax_cross_entropy",
    "sparse_softmax_cross_entropy",
]

#: The softmax cross-entropy formulations of documents 001 and 002.
METHODS: tuple[str, ...] = ("manual", "log_softmax", "fused")
#: The sparse (integer-label) formulations: the fused kernel, and ``logsumexp(z) - z[y]``.
SPARSE_METHODS: tuple[str, ...] = ("fused", "logsumexp_gather")
#: The sigmoid cross-entropy formulations of document 003.
SIGMOID_METHODS: tuple[str, ...] = ("manual", "fused")
#: How :func:`reduced` turns a per-example loss into a scalar.
REDUCTIONS: tuple[str, ...] = ("mean", "sum")


def _fmt_shape(shape: tf.TensorShape) -> str:
    if shape.rank is None:
        return "<unknown rank>"
    return "[" + ", ".join("None" if d is None else str(d) for d in shape.as_list()) + "]"


def _check_method(method: str, valid: tuple[str, ...]) -> None:
    if method not in valid:
        raise ValueError(f"unknown method {method!r}; expected one of {valid}")


def _check_epsilon(epsilon: float) -> None:
    if not epsilon >= 0:  # also rejects NaN
        raise ValueError(f"epsilon must be non-negative, got {epsilon}")


def _floating(x: TensorLike, name: str, min_rank: int = 1) -> tf.Tensor:
    x = tf.convert_to_tensor(x)
    if not x.dtype.is_floating:
        raise ValueError(f"{name} must be floating point, got {x.dtype.name}")
    if x.shape.rank is not None and x.shape.rank < min_rank:
        raise ValueError(
            f"{name} must have at least {min_rank} axis (the classes), got shape {_fmt_shape(x.shape)}"
        )
    return x


def _dense_labels(labels: TensorLike, logits: tf.Tensor, name: str = "labels") -> tf.Tensor:
    """Convert ``labels`` to a tensor of ``logits``' shape and dtype."""
    labels = tf.convert_to_tensor(labels)
    if not (labels.dtype.is_floating or labels.dtype.is_integer or labels.dtype.is_bool):
        raise ValueError(f"{name} must be numeric, got {labels.dtype.name}")
    if not labels.shape.is_compatible_with(logits.shape):
        raise ValueError(
            f"{name} and logits must have the same shape, got {name} "
            f"{_fmt_shape(labels.shape)} and logits {_fmt_shape(logits.shape)}"
        )
    return tf.cast(labels, logits.dtype)


def _check_axis(axis: int, rank: int | None) -> None:
    if rank is None and axis != -1:
        raise ValueError(f"axis {axis} needs logits of known rank (only axis=-1 works without)")
    if rank is not None and not -rank <= axis < rank:
        raise ValueError(f"axis {axis} is out of range for logits of rank {rank}")


def softmax_cross_entropy(
    labels: TensorLike,
    logits: TensorLike,
    *,
    method: str = "fused",
    epsilon: float = 0.0,
    axis: int = -1,
) -> tf.Tensor:
    """Softmax cross-entropy per example (documents 001, 002, 003).

    Args:
        labels: ``[..., C]`` class probabilities (one-hot or soft), same shape as ``logits``;
            cast to ``logits``' dtype.
        logits: ``[..., C]`` unnormalised scores, floating point (float16/bfloat16/32/64).
        method: one of :data:`METHODS`:

            * ``"manual"``: ``-reduce_sum(labels * log(softmax(logits) + epsilon), axis)``,
              exactly as documents 001 and 002 write it. Where softmax underflows to 0 the
              loss is ``inf`` (true class) or ``NaN`` (``0 * log(0)`` on a zero-label class)
              and the gradient is NaN; with ``epsilon > 0`` it is capped at ``-log(epsilon)``
              and its gradient there is exactly 0 (TF's SIMD log makes the float32 cap
              23.025852 in full packets, 23.02585 elsewhere). ``epsilon`` is converted to the
              logits' dtype, so 1e-10 becomes 0 in float16 and the cap disappears. Softmax
              underflows at a logit gap of about 17.5 in float16, about 87 in float32 and
              bfloat16 (TF flushes denormals on CPU; notebook 02 measures 86.6 with oneDNN's
              float32 kernels and 87.3 with Eigen's), 708.5 in float64.
              Under ``tf.function`` Grappler's arithmetic optimizer rewrites
              ``log(softmax(x))`` (``epsilon=0`` adds nothing) into ``log_softmax(x)`` when
              nothing else uses the softmax: a forward-only graph with ``epsilon=0`` returns a finite loss; a graph
              that also takes the gradient keeps ``inf`` and the NaN gradient.
            * ``"log_softmax"``: ``-reduce_sum(labels * tf.nn.log_softmax(logits, axis), axis)``.
            * ``"fused"``: TensorFlow's fused ``SoftmaxCrossEntropyWithLogits`` kernel, forward
              and its registered gradient (the kernel's own ``softmax - labels`` output), in
              every mode: eager, ``tf.function`` and under op determinism. It is called
              through ``tf.raw_ops`` because ``tf.nn.softmax_cross_entropy_with_logits``
              does *not* run the kernel once
              ``tf.config.experimental.enable_op_determinism()`` is on: it then composes
              ``-reduce_sum(labels * log_softmax(logits))`` instead (``nn_ops.py``,
              ``softmax_cross_entropy_with_logits_v2_helper``). On a GPU with op determinism
              the kernel itself raises ``UnimplementedError`` (``core/kernels/xent_op.cc``):
              an error, never a substitute.
        epsilon: added inside the log by ``"manual"`` only (ignored by the others); >= 0.
        axis: the class axis.

    Returns:
        ``logits.shape`` without ``axis``, in ``logits``' dtype.
    """
    _check_method(method, METHODS)
    _check_epsilon(epsilon)
    logits = _floating(logits, "logits")
    labels = _dense_labels(labels, logits)
    _check_axis(axis, logits.shape.rank)
    if method == "manual":
        return manual_softmax_cross_entropy(labels, logits, epsilon=epsilon, axis=axis)
    if method == "log_softmax":
        return -tf.reduce_sum(labels * tf.nn.log_softmax(logits, axis=axis), axis)
    return _fused_kernel(labels, logits, axis)


def manual_softmax_cross_entropy(labels: TensorLike, logits: TensorLike, *, epsilon: float = 0.0,
                                 axis: int = -1) -> tf.Tensor:
    """``-reduce_sum(labels * log(softmax(logits) + epsilon), axis)`` exactly as a user writes
    it (documents 001 and 002), with no input checks: TensorFlow's own broadcasting and errors
    apply (what the atlas measures). ``epsilon = 0`` writes no ``Add``, so the graph is the
    documents' ``log(softmax)``. :func:`softmax_cross_entropy` with ``method="manual"`` checks its
    inputs and calls this; see it for where the formula fails."""
    probs = tf.nn.softmax(logits, axis=axis)
    if epsilon:
        probs = probs + epsilon
    return -tf.reduce_sum(labels * tf.math.log(probs), axis)


def _fused_kernel(labels: tf.Tensor, logits: tf.Tensor, axis: int) -> tf.Tensor:
    """``SoftmaxCrossEntropyWithLogits`` on ``[..., C]`` (any class axis): the kernel takes a
    ``[batch, C]`` matrix, so the class axis is moved last and the rest flattened, as
    ``tf.nn.softmax_cross_entropy_with_logits`` does; its loss output is reshaped back."""
    rank = logits.shape.rank
    if rank is not None and axis % rank != rank - 1:
        perm = [d for d in range(rank) if d != axis % rank] + [axis % rank]
        logits, labels = tf.transpose(logits, perm), tf.transpose(labels, perm)
    batch_shape = tf.shape(logits)[:-1]
    classes = tf.shape(logits)[-1:]
    flat = tf.concat([[-1], classes], 0)
    loss, _ = tf.raw_ops.SoftmaxCrossEntropyWithLogits(
        features=tf.reshape(logits, flat), labels=tf.reshape(labels, flat))
    loss = tf.reshape(loss, batch_shape)
    if rank is not None:
        loss.set_shape(logits.shape[:-1])
    return loss


def _check_label_range(labels: tf.Tensor, num_classes: int, *, why: str = "",
                       ignore_index: int | None = None) -> None:
    """Raise ``ValueError`` if ``labels`` is known when traced (eager, or a constant) and holds a
    value outside ``[0, num_classes)`` other than ``ignore_index``; ``why`` ends the message."""
    values = tf.get_static_value(labels)
    if values is not None:
        bad = values[((values < 0) | (values >= num_classes)) & (values != ignore_index)]
        if bad.size:
            raise ValueError(f"label value {bad.flat[0]} is outside the valid range [0, {num_classes}){why}")


def sparse_softmax_cross_entropy(labels: TensorLike, logits: TensorLike, *,
                                 method: str = "fused") -> tf.Tensor:
    """Softmax cross-entropy per example from integer labels (documents 000, 003): with
    ``method="fused"`` TensorFlow's ``SparseSoftmaxCrossEntropyWithLogits`` kernel, with
    ``"logsumexp_gather"`` ``reduce_logsumexp(logits) - gather(logits, labels)`` (two
    library ops, no fused kernel: what a compiler sees when it fuses the loss itself).

    The kernel and its registered gradient run in every mode, op determinism included (called
    through ``tf.raw_ops``: under op determinism ``tf.nn.sparse_softmax_cross_entropy_with_logits``
    composes ``log_softmax`` and a gather instead, ``nn_ops.py``,
    ``_sparse_softmax_cross_entropy_with_rank_2_logits``). On a GPU with op determinism the
    kernel raises ``UnimplementedError`` (``core/kernels/sparse_xent_op.cc``).

    Args:
        labels: ``[batch]`` integer class indices in ``[0, C)`` (checked when the values are
            known; under ``tf.function`` TF's CPU kernel raises ``InvalidArgumentError``
            instead, and GPU kernels return NaN).
        logits: ``[batch, C]`` floating point.

    Returns:
        ``[batch]`` in ``logits``' dtype; equal to the dense loss on ``one_hot(labels)``.
    """
    _check_method(method, SPARSE_METHODS)
    logits = _floating(logits, "logits")
    labels = tf.convert_to_tensor(labels)
    if not labels.dtype.is_integer:
        raise ValueError(f"labels must be integer class indices, got {labels.dtype.name}")
    expected = logits.shape[:-1]
    if not labels.shape.is_compatible_with(expected):
        hint = ""
        if (
            labels.shape.rank is not None
            and labels.shape.rank == expected.rank + 1
            and labels.shape[:-1].is_compatible_with(expected)
            and labels.shape[-1] in (1, None)
        ):
            hint = "; squeeze the last axis (tf.squeeze(labels, -1))"
        raise ValueError(
            f"labels must have shape [batch] = {_fmt_shape(expected)} (logits' shape without "
            f"the class axis), got {_fmt_shape(labels.shape)}{hint}"
        )
    num_classes = logits.shape[-1]
    if num_classes is not None:
        _check_label_range(labels, num_classes, why=f" (num_classes = logits.shape[-1] = {num_classes})")
    if method == "logsumexp_gather":
        picked = tf.gather(logits, labels, axis=-1, batch_dims=labels.shape.rank)
        return tf.reduce_logsumexp(logits, axis=-1) - picked
    if labels.dtype not in (tf.int32, tf.int64):  # the kernel takes only these two
        labels = tf.cast(labels, tf.int64)
    loss, _ = tf.raw_ops.SparseSoftmaxCrossEntropyWithLogits(
        features=tf.reshape(logits, tf.concat([[-1], tf.shape(logits)[-1:]], 0)),
        labels=tf.reshape(labels, [-1]))
    loss = tf.reshape(loss, tf.shape(labels))
    loss.set_shape(labels.shape)
    return loss


def reduced(
    fn: Callable[..., tf.Tensor], reduction: str = "mean", **kwargs: Any
) -> Callable[[TensorLike, TensorLike], tf.Tensor]:
    """The one place a per-example loss becomes a scalar (like Keras' ``LossFunctionWrapper``).

    Args:
        fn: a per-example loss ``fn(labels, logits, **kwargs) -> [batch]``, e.g.
            :func:`softmax_cross_entropy`.
        reduction: ``"mean"`` (``tf.reduce_mean``: document 000's ``reduce_mean``, document
            002's method 3) or ``"sum"`` (``tf.reduce_sum``: document 002's methods 1 and 2).
        **kwargs: passed to ``fn`` on every call (e.g. ``method="manual", epsilon=1e-10``).

    Returns:
        ``loss(labels, logits) -> []``, named e.g. ``"softmax_cross_entropy_manual_eps1e-10_sum"``.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; choose one of {REDUCTIONS}")
    if not callable(fn):
        raise ValueError(f"fn must be a per-example loss function, got {fn!r}")
    reduce = tf.reduce_mean if reduction == "mean" else tf.reduce_sum

    def loss(labels: TensorLike, logits: TensorLike) -> tf.Tensor:
        return reduce(fn(labels, logits, **kwargs))

    parts = [getattr(fn, "__name__", type(fn).__name__)]
    parts += [f"{v}" if k == "method" else f"{k[:3]}{v:g}" if isinstance(v, float) else f"{k}{v}"
              for k, v in kwargs.items()]
    loss.__name__ = "_".join([*parts, reduction])
    return loss


def sigmoid_cross_entropy(
    labels: TensorLike, logits: TensorLike, *, method: str = "fused"
) -> tf.Tensor:
    """Element-wise sigmoid (binary) cross-entropy (document 003).

    Args:
        labels: targets ``z`` in [0, 1], same shape as ``logits``; cast to its dtype.
        logits: ``x``, any shape, floating point.
        method: one of :data:`SIGMOID_METHODS`:

            * ``"fused"``: ``tf.nn.sigmoid_cross_entropy_with_logits``, the stable
              ``max(x, 0) - x * z + log(1 + exp(-|x|))``.
            * ``"manual"``: ``-(z * log(sigmoid(x)) + (1 - z) * log(1 - sigmoid(x)))``
              exactly. Once ``sigmoid(x)`` rounds to 1 (x >= 16.75 in float32) or to 0
              (x <= -87.5) one log is ``-inf``: the loss is ``inf`` for a soft label or a
              wrong hard label, and ``NaN`` (``0 * -inf``) for a correct hard label.

    Returns:
        ``logits``' shape and dtype.
    """
    _check_method(method, SIGMOID_METHODS)
    logits = _floating(logits, "logits", min_rank=0)
    labels = _dense_labels(labels, logits)
    if method == "manual":
        p = tf.math.sigmoid(logits)
        return -(labels * tf.math.log(p) + (1 - labels) * tf.math.log(1 - p))
    return tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)


def keras2_categorical_crossentropy(
    target: TensorLike,
    output: TensorLike,
    *,
    from_logits: bool = False,
    epsilon: float = 1e-7,
) -> tf.Tensor:
    """Keras 2's backend ``categorical_crossentropy`` as document 004 quotes it.

    Without ``from_logits``, ``output`` is renormalised to sum to 1 along the last axis,
    clipped to ``[epsilon, 1 - epsilon]`` (so the loss is capped at ``-log(epsilon)``, about
    16.118095 in float32, and its gradient is 0 beyond the clip), and
    ``-reduce_sum(target * log(output), -1)`` is returned; no 1/N (the mean is the caller's).
    With ``from_logits`` it is ``tf.nn.softmax_cross_entropy_with_logits``. (Real Keras 2
    also, in graph mode, reached back through a ``Softmax`` op to its logits; that trick is
    not reproduced here.)

    Args:
        target: ``[batch, C]`` class probabilities; cast to ``output``'s dtype.
        output: ``[batch, C]`` probabilities (or logits with ``from_logits=True``), floating.
        from_logits: whether ``output`` holds logits.
        epsilon: the clip, in ``[0, 0.5)``; converted to ``output``'s dtype.

    Returns:
        ``[batch]`` in ``output``'s dtype.
    """
    _check_epsilon(epsilon)
    if epsilon >= 0.5:
        raise ValueError(
            f"epsilon must be < 0.5 so that [epsilon, 1 - epsilon] is not empty, got {epsilon}"
        )
    output = _floating(output, "output")
    target = _dense_labels(target, output, name="target")
    if from_logits:
        return tf.nn.softmax_cross_entropy_with_logits(labels=target, logits=output)
    output = output / tf.reduce_sum(output, axis=-1, keepdims=True)
    output = tf.clip_by_value(output, epsilon, 1.0 - epsilon)
    return -tf.reduce_sum(target * tf.math.log(output), axis=-1)


# --------------------------------------------------------------------------------------------
# The float64 oracle: every verdict compares a formulation with these
# --------------------------------------------------------------------------------------------

#: Keras' focal-loss defaults (``keras/src/losses/losses.py``, ``CategoricalFocalCrossentropy``
#: and ``BinaryFocalCrossentropy``): ``alpha`` 0.25, ``gamma`` 2.0.
FOCAL_ALPHA, FOCAL_GAMMA = 0.25, 2.0
#: The loss families :func:`oracle` computes.
ORACLE_FAMILIES: tuple[str, ...] = ("softmax", "sigmoid", "categorical_focal", "binary_focal")


def _log_softmax64(z: np.ndarray) -> np.ndarray:
    """``log_softmax(z)`` ``[..., C]`` in float64: ``z - max - log1p(sum of the others' exp(z -
    max))``. The largest term's ``exp(0) = 1`` is left out of the sum and taken by ``log1p``,
    so a confident row keeps its tiny loss (``log(1 + 1e-20)`` would round to 0)."""
    top = np.argmax(z, axis=-1)[..., None]
    m = np.take_along_axis(z, top, axis=-1)
    e = np.exp(z - m)
    np.put_along_axis(e, top, 0.0, axis=-1)
    return z - m - np.log1p(e.sum(axis=-1, keepdims=True))


def _log_sigmoid64(z: np.ndarray) -> np.ndarray:
    """``log(sigmoid(z)) = -softplus(-z)``, stable for any finite ``z``."""
    return -(np.maximum(-z, 0.0) + np.log1p(np.exp(-np.abs(z))))


def _softmax_oracle(t: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[...]`` value ``-sum(t log_softmax(z))``, ``[..., C]`` gradient ``sum(t) softmax(z) - t``."""
    ls = _log_softmax64(z)
    return -(t * ls).sum(-1), t.sum(-1, keepdims=True) * np.exp(ls) - t


def _sigmoid_oracle(t: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Element-wise value ``-(t log s + (1-t) log(1-s))``, gradient ``s - t``."""
    value = -(t * _log_sigmoid64(z) + (1 - t) * _log_sigmoid64(-z))
    return value, np.exp(_log_sigmoid64(z)) - t


def _categorical_focal_oracle(t: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keras' ``categorical_focal_crossentropy`` without its clip: ``[...]`` value
    ``sum(alpha (1-p)^gamma (-t log p))`` and its ``[..., C]`` gradient through the softmax
    (``a_j = f'(p_j) p_j``, ``grad_k = a_k - p_k sum_j a_j``)."""
    logp = _log_softmax64(z)
    p, q = np.exp(logp), -np.expm1(logp)  # q = 1 - p without cancellation
    value = (FOCAL_ALPHA * q**FOCAL_GAMMA * (-t * logp)).sum(-1)
    a = FOCAL_ALPHA * t * (FOCAL_GAMMA * q ** (FOCAL_GAMMA - 1) * p * logp - q**FOCAL_GAMMA)
    return value, a - p * a.sum(-1, keepdims=True)


def _binary_focal_oracle(t: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keras' ``binary_focal_crossentropy`` (no class balancing) without its clip: element-wise
    ``(1 - p_t)^gamma bce`` and its gradient."""
    bce, dbce = _sigmoid_oracle(t, z)
    s, r = np.exp(_log_sigmoid64(z)), np.exp(_log_sigmoid64(-z))  # s and 1 - s
    one_minus_pt = t * r + (1 - t) * s
    factor = one_minus_pt**FOCAL_GAMMA
    dfactor = FOCAL_GAMMA * one_minus_pt ** (FOCAL_GAMMA - 1) * (1 - 2 * t) * s * r
    return factor * bce, factor * dbce + bce * dfactor


_ORACLES = {"softmax": _softmax_oracle, "sigmoid": _sigmoid_oracle,
            "categorical_focal": _categorical_focal_oracle, "binary_focal": _binary_focal_oracle}


def oracle(family: str, target: TensorLike, logits: TensorLike) -> tuple[np.ndarray, np.ndarray]:
    """Float64 NumPy value and gradient of a cross-entropy, from the exact formula (no clip, no
    epsilon): the reference every verdict compares a formulation with.

    Args:
        family: one of :data:`ORACLE_FAMILIES`.
        target: ``[..., C]`` the class distribution (softmax families) or per-class targets in
            [0, 1] (sigmoid families); any array-like or tensor.
        logits: ``[..., C]`` logits, any dtype (computed in float64).

    Returns:
        ``(value, gradient)``: value ``[...]`` for the softmax families, ``[..., C]`` element-wise
        for the sigmoid ones; gradient ``[..., C]`` of ``sum(value)`` with respect to the logits.
    """
    if family not in _ORACLES:
        raise ValueError(f"unknown family {family!r}; choose one of {ORACLE_FAMILIES}")
    return _ORACLES[family](np.asarray(target, np.float64), np.asarray(logits, np.float64))


def reference_softmax_cross_entropy(labels: TensorLike, logits: TensorLike) -> np.ndarray:
    """The float64 oracle's softmax cross-entropy value (:func:`oracle`): ``[..., C]`` in,
    ``[...]`` float64 out; never overflows for finite logits."""
    return oracle("softmax", labels, logits)[0]


def reference_sigmoid_cross_entropy(labels: TensorLike, logits: TensorLike,
                                    dtype: str = "float64") -> np.ndarray:
    """``max(x, 0) - x z + log1p(exp(-|x|))`` element-wise, in NumPy, computed in ``dtype``: the
    formula ``tf.nn.sigmoid_cross_entropy_with_logits`` documents and composes
    (``tensorflow/python/ops/nn_impl.py``). In float64 it is the oracle's value (:func:`oracle`,
    ``"sigmoid"``) to within rounding."""
    x = np.asarray(logits, dtype=np.float64).astype(dtype)
    z = np.asarray(labels, dtype=np.float64).astype(dtype)
    return (np.maximum(x, 0) - x * z + np.log1p(np.exp(-np.abs(x)))).astype(dtype)


def logit_gradient(labels: TensorLike, logits: TensorLike, **kwargs: Any) -> tuple[float, np.ndarray]:
    """``(sum of the per-example losses, its gradient with respect to the logits [..., C])`` of
    :func:`softmax_cross_entropy` (``kwargs``: ``method``, ``epsilon``, ``axis``), float32."""
    z = tf.Variable(logits, dtype=tf.float32)
    with tf.GradientTape() as tape:
        loss = reduced(softmax_cross_entropy, "sum", **kwargs)(labels, z)
    return float(loss), tape.gradient(loss, z).numpy()


def relative_errors(labels: TensorLike, logits: TensorLike, *,
                    epsilon: float = 1e-10) -> dict[str, float]:
    """Largest relative error ``|loss − oracle| / max(1, |oracle|)`` over the examples of each
    :data:`METHODS` route against :func:`reference_softmax_cross_entropy` (``"manual"`` with
    ``epsilon``, document 002's 1e-10 by default). Labels and logits ``[N, C]``."""
    ref = reference_softmax_cross_entropy(labels, logits)
    out = {}
    for method in METHODS:
        eps = epsilon if method == "manual" else 0.0
        val = softmax_cross_entropy(labels, logits, method=method, epsilon=eps).numpy()
        out[method] = float(np.max(np.abs(val - ref) / np.maximum(1.0, np.abs(ref))))
    return out


def _vocabulary_blocks(num_classes: int, block_size: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` column ranges of ``block_size`` covering ``range(num_classes)``."""
    return [(s, min(s + block_size, num_classes)) for s in range(0, num_classes, block_size)]


def linear_cross_entropy(labels: TensorLike, hidden: TensorLike, weights: TensorLike,
                         bias: TensorLike | None = None, *, block_size: int = 4096,
                         label_smoothing: float = 0.0, ignore_index: int | None = None) -> tf.Tensor:
    """Softmax cross-entropy per token of the logits ``hidden @ weights + bias``, exact, without
    ever holding the ``[N, C]`` logits: the vocabulary is taken ``block_size`` columns at a time.

    Forward: the log-sum-exp over the vocabulary is accumulated block by block (an online
    log-sum-exp: a running maximum and a rescaled running sum), and the correct token's logit
    is one indexed dot product, ``hidden[i] · weights[:, labels[i]] + bias[labels[i]]``.
    Backward (``tf.custom_gradient``): each block's logits are recomputed from ``hidden`` and
    that block of ``weights``, turned into the block's gradient
    ``g_i (softmax_ic - (1 - ε) [c = y_i] - ε / C)``, and multiplied out into ``d hidden``
    (accumulated in float32) and that block of ``d weights``; the blocks of ``d weights`` are
    concatenated at the end. In a ``tf.function`` each block waits for the previous one
    (``tf.control_dependencies``), so the temporaries are a few ``[N, block_size]`` arrays; under
    XLA it holds about as much as the materialised op (notebook 10 measures this), as if the compiler
    merged the backward pass's recomputed logits with the forward pass's (common-subexpression
    elimination) and kept them all; the HLO was not inspected. This is the method of Cut Cross-Entropy (Wijmans et al., 2024,
    arXiv 2411.09009), written with TensorFlow ops rather than a fused kernel.

    Args:
        labels: ``[N]`` integer token ids in ``[0, C)`` (or ``ignore_index``). Checked when the
            values are known; otherwise TensorFlow's CPU gather raises ``InvalidArgumentError``,
            and under XLA (whose gather clamps) the token's loss is NaN.
        hidden: ``[N, H]`` floating point (float16 or bfloat16 are multiplied in their dtype, and
            the log-sum-exp and ``d hidden`` are accumulated in float32).
        weights: ``[H, C]``, the output layer's kernel, in ``hidden``'s dtype (a float32 kernel with
            float16 or bfloat16 ``hidden``, as a Keras mixed-precision layer keeps it, is cast to
            that dtype for the products).
        bias: ``[C]`` or None.
        block_size: vocabulary columns per block, at least 1.
        label_smoothing: ε in [0, 1]: the target is ``(1 - ε) one_hot + ε / C`` (Keras'
            ``label_smoothing``); the smoothing term needs only ``hidden @ mean_c(weights)``.
        ignore_index: a label value (e.g. padding) whose token gets loss 0 and no gradient.

    Returns:
        ``[N]`` float32; equal, to float32 rounding, to
        ``sparse_softmax_cross_entropy_with_logits(labels, hidden @ weights + bias)``.
    """
    if not isinstance(block_size, (int, np.integer)) or block_size < 1:
        raise ValueError(f"block_size must be an integer of at least 1, got {block_size!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    h = _floating(hidden, "hidden", min_rank=2)
    w = tf.convert_to_tensor(weights, dtype_hint=h.dtype)
    y = tf.convert_to_tensor(labels)
    if w.dtype == tf.float32 and h.dtype in (tf.float16, tf.bfloat16):
        w = tf.cast(w, h.dtype)  # a mixed-precision layer's float32 kernel, used in the compute dtype
    if h.shape.rank != 2 or w.shape.rank != 2:
        raise ValueError(f"hidden must be [N, H] and weights [H, C], got {_fmt_shape(h.shape)} "
                         f"and {_fmt_shape(w.shape)}")
    if w.dtype != h.dtype:
        raise ValueError(f"weights must have hidden's dtype {h.dtype.name}, got {w.dtype.name}")
    if not h.shape[1:].is_compatible_with(w.shape[:1]):
        raise ValueError(f"hidden's H = {h.shape[1]} must equal weights' H = {w.shape[0]} "
                         f"(hidden [N, H], weights [H, C])")
    if not y.dtype.is_integer or not y.shape.is_compatible_with(h.shape[:1]):
        raise ValueError(f"labels must be integer token ids of shape [N] = [{h.shape[0]}], "
                         f"got {y.dtype.name} {_fmt_shape(y.shape)}")
    num_classes = w.shape[1]
    if num_classes is None:
        raise ValueError("weights' vocabulary size C must be known when the function is traced")
    b = tf.zeros([num_classes], h.dtype) if bias is None else tf.convert_to_tensor(bias, dtype_hint=h.dtype)
    if b.dtype != h.dtype or not b.shape.is_compatible_with([num_classes]):
        raise ValueError(f"bias must be [C] = [{num_classes}] in {h.dtype.name}, got "
                         f"{b.dtype.name} {_fmt_shape(b.shape)}")
    _check_label_range(y, num_classes, ignore_index=ignore_index)
    y = tf.cast(y, tf.int32)
    keep = tf.ones_like(y, tf.bool) if ignore_index is None else tf.not_equal(y, ignore_index)
    valid = (y >= 0) & (y < num_classes)
    y = tf.where(keep, y, 0)
    spans = _vocabulary_blocks(num_classes, int(block_size))
    eps = float(label_smoothing)
    f32 = tf.float32

    def block_logits(h: tf.Tensor, w: tf.Tensor, b: tf.Tensor, start: int, stop: int) -> tf.Tensor:
        return tf.cast(tf.matmul(h, w[:, start:stop]) + b[start:stop], f32)  # [N, stop - start]

    @tf.custom_gradient
    def loss_fn(h: tf.Tensor, w: tf.Tensor, b: tf.Tensor) -> Any:
        # eagerly, a tape records the ops inside a custom gradient and keeps their tensors: not these
        h, w, b = tf.stop_gradient(h), tf.stop_gradient(w), tf.stop_gradient(b)
        top = tf.fill(tf.shape(y), -np.inf)
        total = tf.zeros(tf.shape(y), f32)
        for start, stop in spans:  # online log-sum-exp, one block after the other
            with tf.control_dependencies([total]):  # in a graph: not before the previous block is reduced
                z = block_logits(h, w, b, start, stop)
            new_top = tf.maximum(top, tf.reduce_max(z, axis=1))
            rescale = tf.where(top == new_top, 1.0, tf.exp(top - new_top))  # 1, not NaN, while both are -inf
            total = total * rescale + tf.reduce_sum(tf.exp(z - new_top[:, None]), axis=1)
            top = new_top
        lse = top + tf.math.log(total)
        true_logit = tf.cast(tf.einsum("nh,hn->n", h, tf.gather(w, y, axis=1)) + tf.gather(b, y), f32)
        loss = lse - (1.0 - eps) * true_logit
        if eps:
            mean_logit = tf.cast(tf.linalg.matvec(h, tf.reduce_mean(w, axis=1)) + tf.reduce_mean(b), f32)
            loss -= eps * mean_logit
        loss = tf.where(keep, tf.where(valid, loss, np.nan), 0.0)

        def grad(upstream: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
            g = tf.where(keep, tf.cast(upstream, f32), 0.0)[:, None]  # [N, 1]
            dh = tf.zeros(tf.shape(h), f32)
            dw, db = [], []
            for start, stop in spans:
                with tf.control_dependencies([dh, *dw[-1:]]):  # one block at a time, as in the forward pass
                    z = block_logits(h, w, b, start, stop)
                    target = tf.one_hot(y - start, stop - start)  # zeros where the label is in another block
                    if eps:
                        target = (1.0 - eps) * target + eps / num_classes
                dz32 = g * (tf.exp(z - lse[:, None]) - target)  # [N, block]
                dz = tf.cast(dz32, h.dtype)
                dh += tf.cast(tf.matmul(dz, w[:, start:stop], transpose_b=True), f32)
                dw.append(tf.matmul(h, dz, transpose_a=True))
                db.append(tf.reduce_sum(dz32, axis=0))
            # dW's blocks are concatenated at the end, so dW exists twice for that moment (a
            # tf.tensor_scatter_nd_update per block, tried instead, copied the whole of dW each time)
            return tf.cast(dh, h.dtype), tf.concat(dw, axis=1), tf.cast(tf.concat(db, axis=0), b.dtype)

        return loss, grad

    return loss_fn(h, w, b)
