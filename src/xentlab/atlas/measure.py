"""The atlas' measurements (label formats, extreme logits, bad labels, graphs, modes, reductions,
``sampled_softmax_loss``) and :func:`measure`, which runs them all into an :class:`Atlas`."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from xentlab import runtime
from xentlab.atlas import backends
from xentlab.atlas.registry import (
    DTYPES,
    FUSED_OPS,
    GAPS,
    LABEL_FORMATS,
    MANUAL,
    MATCH_TOL,
    SAMPLED_OP_SEED,
    EntryPoint,
    Row,
    _attempt,
    _f64,
    _forward_backward,
    _label_tensor,
    _resolve,
    _shape,
    _traced,
    _without_op_determinism,
    entry,
    entry_rows,
    format_labels,
    format_target,
    log,
    make_labels,
    oracle,
    to_outputs,
)

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


def extreme_rows(classes: int, seed: int) -> list[tuple[str, float | None, np.ndarray, int]]:
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
def extremes(entries: Sequence[EntryPoint | str] | None = None, *, classes: int = 5,
             dtypes: Sequence[str] = DTYPES, seed: int = 0) -> list[Row]:
    """Value and gradient of each entry point, eagerly, in each dtype, at each
    :func:`extreme_rows` row (a batch of one), against the float64 :func:`oracle`; op
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
    specs = extreme_rows(classes, seed)
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
            with runtime.op_determinism(det), runtime.quiet_tensorflow_logger():
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
            with runtime.op_determinism(det), runtime.quiet_tensorflow_logger():
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
            with runtime.quiet_tensorflow_logger():
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
    ``tf.random.set_seed(seed)`` before every call with ``seed=7`` (the previous global seed is
    set again after each call: :func:`xentlab.runtime.tensorflow_seed`). The first two settings' values repeat from run to run only when the
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
            with runtime.tensorflow_seed(seed) if reset else contextlib.nullcontext():
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
        extremes: :func:`extremes`.
        bad_labels: :func:`bad_labels`.
        graphs: :func:`graphs`.
        modes: :func:`modes`.
        reductions: :func:`reductions`.
        sampled: :func:`sampled`.
        backends: :func:`xentlab.atlas.backends.compare`: the Keras entry points on each Keras
            backend measured (none unless ``measure(keras_backends=...)`` names them).
        settings: batch, classes, seed, dtypes, gaps, TensorFlow and Keras versions.
        seconds: wall time of each measurement (not used by :func:`decision_guide`).
    """

    entries: list[Row]
    label_formats: list[Row]
    extremes: list[Row]
    bad_labels: list[Row]
    graphs: list[Row]
    modes: list[Row]
    reductions: list[Row]
    sampled: list[Row]
    settings: dict[str, Any]
    seconds: dict[str, float]
    backends: list[Row] = field(default_factory=list)

    #: The row lists, in rendering order.
    SECTIONS = ("entries", "label_formats", "extremes", "bad_labels", "graphs", "modes",
                "reductions", "sampled", "backends")


def measure(*, batch: int = 8, classes: int = 5, seed: int = 0,
            entries: Sequence[EntryPoint | str] | None = None,
            dtypes: Sequence[str] = DTYPES, keras_backends: Sequence[str] = ()) -> Atlas:
    """Run every measurement with fixed seeds (about 7 s on a 2-core CPU for all entry points,
    and about 20 s more, in processes beside it, with ``keras_backends=("tensorflow", "jax")``).

    Op determinism is off for every section except the rows that say ``determinism=True``;
    the previous state is restored. TensorFlow's global seed is set to ``seed`` before each
    section, so the random ``sampled_softmax_loss`` rows repeat from run to run.

    Args:
        batch: ``B`` of the label-format, bad-label and reduction batches (``!= classes``, so
            that a ``[B]`` tensor cannot broadcast against ``[B, C]`` by accident).
        classes: ``C`` (>= 3) of every measurement except :func:`sampled` (``2 C``).
        seed: NumPy and TensorFlow seed.
        entries: a subset of :data:`ENTRY_POINTS` (names or entries); all by default.
        dtypes: the dtypes of :func:`extremes`.
        keras_backends: Keras backends (:data:`xentlab.runtime.KERAS_BACKENDS`) on which
            :func:`xentlab.atlas.backends.compare` measures the Keras entry points, each in a
            fresh process started first (so it runs beside this process' measurements).
    """
    if batch == classes:
        raise ValueError(f"batch and classes must differ (got {batch} for both)")
    if classes < 3:
        raise ValueError(f"classes must be >= 3, got {classes}")
    chosen = _resolve(entries)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    pending = backends.start(keras_backends, classes=classes) if keras_backends else []

    def run(section: str, fn: Callable[[], list[Row]]) -> list[Row]:
        start = time.perf_counter()
        with runtime.tensorflow_seed(seed), runtime.op_determinism(False):
            rows = fn()
        seconds[section] = time.perf_counter() - start
        log.info("%s: %d rows in %.1f s", section, len(rows), seconds[section])
        return rows

    atlas = Atlas(
        entries=entry_rows(chosen),
        label_formats=run("label_formats", lambda: label_formats(
            chosen, batch=batch, classes=classes, seed=seed)),
        extremes=run("extremes", lambda: extremes(chosen, classes=classes, dtypes=dtypes,
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
    atlas.backends = [row for run in pending for row in run.result()]
    if keras_backends:  # wall time from their start, beside the sections above
        seconds["backends"] = time.perf_counter() - started
    return atlas


