"""Where the cross-entropy formulations part: one example with a logit gap Δ, across dtypes.

The example is two classes with logits ``[0, Δ]`` and the label on class 0, so the true class'
probability is ``1 / (1 + e^Δ)`` and the exact loss is ``Δ + log(1 + e^-Δ)`` (≈ Δ). The
``manual`` route of document 001 (softmax, then ``-sum(y * log(p))``) returns ``inf`` once
``e^-Δ`` underflows in the working dtype; the fused op never does. Used by notebook 02.
:func:`sigmoid_sweep` does the same for document 003's sigmoid cross-entropy (notebook 04).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from xentlab.losses import (
    reference_sigmoid_cross_entropy,
    reference_softmax_cross_entropy,
    sigmoid_cross_entropy,
    softmax_cross_entropy,
)

SWEEP_DTYPES: tuple[str, ...] = ("float16", "bfloat16", "float32", "float64")


def gap_logits(deltas: np.ndarray, dtype: str) -> tf.Tensor:
    """Logits ``[n, 2]`` with rows ``[0, Δ_i]`` in ``dtype``."""
    deltas = np.asarray(deltas, dtype=np.float64)
    return tf.cast(tf.stack([tf.zeros_like(deltas), deltas], axis=1), dtype)


def _labels(n: int, dtype: str) -> tf.Tensor:
    return tf.cast(tf.tile([[1.0, 0.0]], [n, 1]), dtype)


def gap_losses(
    deltas: np.ndarray, dtype: str, method: str, *, epsilon: float = 0.0
) -> np.ndarray:
    """Per-example loss ``[n]`` (as float64) of ``method`` at each gap, computed in ``dtype``."""
    logits = gap_logits(deltas, dtype)
    loss = softmax_cross_entropy(_labels(len(deltas), dtype), logits, method=method,
                                 epsilon=epsilon)
    return tf.cast(loss, tf.float64).numpy()


def gap_losses_or_none(
    deltas: np.ndarray, dtype: str, method: str, *, epsilon: float = 0.0
) -> np.ndarray | None:
    """:func:`gap_losses`, or None where TensorFlow has no kernel for this op and dtype on this
    device (it raises ``NotFoundError`` or ``InvalidArgumentError`` then)."""
    try:
        return gap_losses(deltas, dtype, method, epsilon=epsilon)
    except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError):
        return None


def first_where(xs: np.ndarray, mask: np.ndarray) -> float | None:
    """The first ``xs[i]`` where ``mask[i]`` holds (``xs`` increasing), None if nowhere."""
    mask = np.asarray(mask, dtype=bool)
    return float(np.asarray(xs)[np.argmax(mask)]) if mask.any() else None


def gap_gradients(
    deltas: np.ndarray, dtype: str, method: str, *, epsilon: float = 0.0
) -> np.ndarray:
    """Gradient ``[n, 2]`` (as float64) of each example's loss w.r.t. its logits, in ``dtype``.

    The exact gradient is ``softmax(z) - y`` = ``[p0 - 1, 1 - p0]`` ≈ ``[-1, 1]`` for large Δ.
    """
    logits = gap_logits(deltas, dtype)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        loss = softmax_cross_entropy(_labels(len(deltas), dtype), logits, method=method,
                                     epsilon=epsilon)
    return tf.cast(tape.gradient(loss, logits), tf.float64).numpy()


def exact_gap_loss(deltas: np.ndarray) -> np.ndarray:
    """The float64 oracle's loss ``[n]`` at each gap (:func:`xentlab.losses.oracle`), which for
    these rows is ``Δ + log1p(e^-Δ)``."""
    deltas = np.asarray(deltas, dtype=np.float64)
    logits = np.stack([np.zeros_like(deltas), deltas], axis=1)
    return reference_softmax_cross_entropy(np.tile([1.0, 0.0], (len(deltas), 1)), logits)


def first_inf_gap(
    dtype: str, method: str = "manual", *, epsilon: float = 0.0, hi: float = 1000.0
) -> float | None:
    """The smallest gap Δ in ``[0, hi]`` (representable in ``dtype``) where the loss is ``inf``.

    Bisection on Δ; assumes the loss is finite below the threshold and ``inf`` above it (true for
    the manual route, whose only failure is the underflow of ``e^-Δ``). ``None`` if the loss at
    ``hi`` is finite.
    """

    def is_inf(delta: float) -> bool:
        return bool(np.isinf(gap_losses(np.array([delta]), dtype, method, epsilon=epsilon)[0]))

    if not is_inf(hi):
        return None
    lo = 0.0
    for _ in range(60):  # 60 halvings of [0, 1000] reach float64 resolution
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if is_inf(mid) else (mid, hi)
    return float(tf.cast(hi, dtype))  # the first value, in the working dtype, that is inf


def ulp_distance(measured: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Distance in units in the last place of float32 between two float32 arrays (same shape).

    Uses the ordered-integer view of IEEE 754 floats, so it counts representable values between.
    """
    def ordered(x: np.ndarray) -> np.ndarray:
        bits = np.asarray(x, dtype=np.float32).view(np.int32).astype(np.int64)
        return np.where(bits < 0, np.int64(-(2**31)) - bits, bits)

    return np.abs(ordered(measured) - ordered(reference))


def sigmoid_sweep(xs: np.ndarray, label: float, dtype: str) -> dict[str, np.ndarray]:
    """Binary cross-entropy of one label ``z`` at each logit ``xs [n]``, computed in ``dtype``.

    Returns arrays ``[n]``: ``exact`` (the float64 reference
    ``max(x, 0) - x z + log1p(e^-|x|)``), ``fused`` (:func:`sigmoid_cross_entropy`, TF's op),
    ``stable`` (the docstring's formula in NumPy, in ``dtype``) and ``manual`` (sigmoid, then the
    two logs: inf or NaN once ``sigmoid(x)`` rounds to 0 or 1).
    """
    x = np.asarray(xs, dtype=np.float64).astype(dtype)
    z = np.full_like(x, label)
    return {
        "exact": reference_sigmoid_cross_entropy(np.full(len(x), label), xs),
        "fused": sigmoid_cross_entropy(z, x).numpy(),
        "stable": reference_sigmoid_cross_entropy(z, x, dtype),
        "manual": sigmoid_cross_entropy(z, x, method="manual").numpy(),
    }


def nonfinite_edges(xs: np.ndarray, values: np.ndarray) -> list[tuple[float, str]]:
    """Where ``values [n]`` (sampled at increasing ``xs [n]``) stop being finite on each side
    of 0: ``[(edge, kind)]`` with the largest non-finite ``x < 0`` and the smallest non-finite
    ``x > 0`` (those that exist), ``kind`` ``"NaN"`` if every value beyond the edge is NaN,
    else ``"inf"``."""
    xs, values = np.asarray(xs), np.asarray(values)
    bad = ~np.isfinite(values)
    edges = []
    for side, pick in ((xs < 0, np.max), (xs > 0, np.min)):
        if (bad & side).any():
            edge = float(pick(xs[bad & side]))
            beyond = values[xs <= edge] if edge < 0 else values[xs >= edge]
            edges.append((edge, "NaN" if np.isnan(beyond).all() else "inf"))
    return edges
