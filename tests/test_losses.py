"""Tests for xentlab.losses: the documents' numbers, a float64 oracle, failure modes, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import example, given, settings
from hypothesis import strategies as st

from xentlab import losses
from xentlab.losses import (
    METHODS,
    REDUCTIONS,
    SIGMOID_METHODS,
    keras2_categorical_crossentropy,
    reduced,
    reference_softmax_cross_entropy,
    sigmoid_cross_entropy,
    softmax_cross_entropy,
    sparse_softmax_cross_entropy,
)

SETTINGS = settings(max_examples=50, deadline=None)
DTYPES = [tf.float16, tf.bfloat16, tf.float32, tf.float64]
DTYPE_IDS = [d.name for d in DTYPES]
#: Unit roundoff of each dtype (half the spacing at 1): 2**-11, 2**-8, 2**-24, 2**-53.
UNIT_ROUNDOFF = {
    tf.float16: 2.0**-11,
    tf.bfloat16: 2.0**-8,
    tf.float32: 2.0**-24,
    tf.float64: 2.0**-53,
}
#: Tolerance factor on top of roundoff x scale. A handful of roundings (subtract max, exp, sum,
#: log, multiply, sum over <= 6 classes), each <= one roundoff of the term's magnitude; observed
#: worst case ~2 over 1500 examples per dtype, so 8 leaves a 4x margin. The float64 case also
#: absorbs the oracle's own rounding.
FACTOR = 8
#: Smallest normal number of each dtype (NumPy's finfo does not know bfloat16).
TINY = {tf.float16: 2.0**-14, tf.bfloat16: 2.0**-126, tf.float32: 2.0**-126, tf.float64: 2.0**-1022}

# Document 001's toy problem.
DOC001_LOGITS = [[1, 2, 3], [1, 2, 3], [1, 2, 3], [7, 4, 5], [7, 88, 5]]
DOC001_LABELS = [[0, 0, 1], [0, 0, 1], [0, 0, 1], [1, 0, 0], [1, 0, 0]]


def _cast(x, dtype: tf.DType) -> tf.Tensor:
    return tf.cast(tf.constant(np.asarray(x, dtype=np.float64)), dtype)


def _f64(t: tf.Tensor) -> np.ndarray:
    return tf.cast(t, tf.float64).numpy()


def _tol(dtype: tf.DType, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-row absolute tolerance: FACTOR x roundoff x the magnitude of the row's terms.

    Every log-softmax entry is ``(z - max) - log(sum)``, so the terms are bounded by the row's
    logit range plus ``log(C)``; the loss weighs them by ``sum(labels)``.
    """
    span = np.ptp(logits, axis=-1) + np.log(logits.shape[-1]) + 1
    weight = np.maximum(1.0, np.abs(labels).sum(-1))
    return FACTOR * UNIT_ROUNDOFF[dtype] * span * weight


def _assert_within(got: np.ndarray, want: np.ndarray, tol: np.ndarray) -> None:
    err = np.abs(got - want)
    assert np.all(err <= tol), f"err {err} > tol {tol}; got {got}, want {want}"


# Rows: ordinary logits, huge magnitudes (gaps up to 2e4), and all-equal rows.
_ELEMENT = st.one_of(st.floats(-30, 30), st.floats(-1e4, 1e4), st.sampled_from([-1e4, 0.0, 1e4]))


@st.composite
def problems(draw, soft: bool = True):
    """(logits [B, C] float64, labels [B, C] float64, classes [B] int) with B <= 4, C <= 6."""
    batch, n = draw(st.integers(1, 4)), draw(st.integers(2, 6))
    rows = []
    for _ in range(batch):
        if draw(st.booleans()):
            rows.append(draw(st.lists(_ELEMENT, min_size=n, max_size=n)))
        else:
            rows.append([draw(st.floats(-1e4, 1e4))] * n)
    classes = np.array(draw(st.lists(st.integers(0, n - 1), min_size=batch, max_size=batch)))
    if soft and draw(st.booleans()):
        weights = draw(
            st.lists(
                st.lists(st.floats(0, 1), min_size=n, max_size=n), min_size=batch, max_size=batch
            )
        )
        w = np.array(weights) + 1e-3
        labels = w / w.sum(-1, keepdims=True)
    else:
        labels = np.eye(n)[classes]
    return np.array(rows, dtype=np.float64), labels, classes


ADVERSARIAL = (
    np.array([[1e4, -1e4, 0.0], [5.0, 5.0, 5.0], [-1e4, -1e4, -1e4], [1.0, 1000.0, 2.0]]),
    np.eye(3)[[1, 0, 2, 0]],
    np.array([1, 0, 2, 0]),
)


# --- the documents' exact numbers -------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_document_001_toy_mean_is_16_478533(method):
    logits = np.array(DOC001_LOGITS, dtype=np.float32)
    labels = np.array(DOC001_LABELS, dtype=np.float32)
    loss = softmax_cross_entropy(labels, logits, method=method)
    assert loss.shape == (5,) and loss.dtype == tf.float32
    mean = tf.reduce_mean(loss).numpy()
    assert str(np.float32(mean)) == "16.478533"


def test_document_002_toy_log_of_softmax_plus_1e_10():
    logits = tf.constant([1.0, 1000.0])
    softmax = tf.nn.softmax(logits).numpy()
    np.testing.assert_array_equal(softmax, [0.0, 1.0])
    assert str(np.float32(tf.reduce_sum(tf.math.log(softmax + 1e-10)).numpy())) == "-23.02585"
    assert tf.reduce_sum(tf.nn.log_softmax(logits)).numpy() == -999.0
    # Through the loss functions (label on the losing class 0):
    labels = [[1.0, 0.0]]
    manual = softmax_cross_entropy(labels, [[1.0, 1000.0]], method="manual", epsilon=1e-10)
    assert str(np.float32(manual.numpy()[0])) == "23.02585"
    for method in ("log_softmax", "fused"):
        assert softmax_cross_entropy(labels, [[1.0, 1000.0]], method=method).numpy()[0] == 999.0


# --- stable forms against the float64 oracle --------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("method", ["log_softmax", "fused"])
@SETTINGS
@given(problem=problems())
@example(problem=ADVERSARIAL)
def test_stable_methods_match_float64_oracle(method, dtype, problem):
    logits, labels, _ = problem
    z, y = _cast(logits, dtype), _cast(labels, dtype)
    got = softmax_cross_entropy(y, z, method=method)
    assert got.dtype == dtype and got.shape == (len(logits),)
    # The oracle sees the same dtype-rounded inputs, so only the computation's error is measured.
    zq, yq = _f64(z), _f64(y)
    _assert_within(_f64(got), reference_softmax_cross_entropy(yq, zq), _tol(dtype, zq, yq))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("method", ["log_softmax", "fused"])
@SETTINGS
@given(problem=problems())
@example(problem=ADVERSARIAL)
def test_stable_gradient_is_softmax_minus_labels(method, dtype, problem):
    logits, labels, _ = problem
    z, y = _cast(logits, dtype), _cast(labels, dtype)
    with tf.GradientTape() as tape:
        tape.watch(z)
        loss = softmax_cross_entropy(y, z, method=method)
    grad = _f64(tape.gradient(loss, z))
    zq, yq = _f64(z), _f64(y)
    p = np.exp(zq - zq.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    want = yq.sum(-1, keepdims=True) * p - yq  # = softmax - labels when labels sum to 1
    # Entries are in [-1, 1]; each softmax entry p carries relative error ~ roundoff x |z - max|,
    # i.e. absolute error <= roundoff x max_t(t e^-t) < roundoff, so FACTOR x roundoff suffices.
    tol = FACTOR * UNIT_ROUNDOFF[dtype] * np.maximum(1.0, np.abs(yq).sum(-1, keepdims=True))
    _assert_within(grad, want, tol)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@SETTINGS
@given(problem=problems(soft=False))
@example(problem=ADVERSARIAL)
def test_sparse_equals_one_hot_dense(dtype, problem):
    logits, labels, classes = problem
    z = _cast(logits, dtype)
    sparse = sparse_softmax_cross_entropy(classes, z)
    dense = softmax_cross_entropy(labels, z, method="fused")
    assert sparse.dtype == dtype and sparse.shape == dense.shape == (len(classes),)
    zq = _f64(z)
    _assert_within(_f64(sparse), _f64(dense), _tol(dtype, zq, labels))
    _assert_within(
        _f64(sparse), reference_softmax_cross_entropy(labels, zq), _tol(dtype, zq, labels)
    )


# --- the fused kernels, in every mode ---------------------------------------------------------


def _traced_value_and_grad(loss_fn, labels, logits):
    """Trace ``loss_fn`` and its gradient w.r.t. the logits in one ``tf.function``; return the
    concrete function, the set of op types in its graph, the loss and the gradient."""

    @tf.function
    def value_and_grad(y, z):
        with tf.GradientTape() as tape:
            tape.watch(z)
            loss = loss_fn(y, z)
        return loss, tape.gradient(loss, z)

    concrete = value_and_grad.get_concrete_function(labels, logits)
    types = {op.type for op in concrete.graph.get_operations()}
    return concrete, types, *concrete(labels, logits)


def _kernel_backprop_is_used(concrete, kernel: str) -> bool:
    """Whether the graph consumes the kernel's second output (its ``softmax - labels``
    backprop), which only the kernel's registered gradient does."""
    (op,) = [op for op in concrete.graph.get_operations() if op.type == kernel]
    return bool(op.outputs[1].consumers())


_XENT_LOGITS = tf.constant([[0.5, -1.0, 2.0, 0.0], [1.0, 1.0, 1.0, 1.0], [3.0, -2.0, 0.0, 1.0]])
_XENT_CLASSES = tf.constant([2, 0, 1])


# Op determinism is process-wide; the op_determinism fixture (conftest.py) restores the previous
# state (xentlab.runtime.op_determinism).
@pytest.mark.parametrize("deterministic", [False, True])
def test_fused_runs_the_kernel_and_its_gradient(op_determinism, deterministic):
    op_determinism(deterministic)
    # Multi-hot labels (each row sums to 2) tell the kernel's gradient from the true one: the
    # kernel's backprop output is softmax - labels whatever the labels sum to, while the
    # gradient of -sum(labels * log_softmax) is sum(labels) * softmax - labels.
    labels = tf.constant([[1.0, 1.0, 0.0, 0.0]] * 3)
    concrete, types, loss, grad = _traced_value_and_grad(
        lambda y, z: softmax_cross_entropy(y, z, method="fused"), labels, _XENT_LOGITS
    )
    assert "SoftmaxCrossEntropyWithLogits" in types
    assert _kernel_backprop_is_used(concrete, "SoftmaxCrossEntropyWithLogits")
    np.testing.assert_allclose(
        loss.numpy(), reference_softmax_cross_entropy(labels, _XENT_LOGITS), rtol=1e-6
    )
    p = tf.nn.softmax(_XENT_LOGITS).numpy()
    np.testing.assert_allclose(grad.numpy(), p - labels.numpy(), rtol=1e-6, atol=1e-6)
    assert np.abs(grad.numpy() - (2 * p - labels.numpy())).max() > 0.1  # not the true gradient


@pytest.mark.parametrize("deterministic", [False, True])
def test_sparse_runs_the_kernel_and_its_gradient(op_determinism, deterministic):
    op_determinism(deterministic)  # see test_fused_runs_the_kernel_and_its_gradient
    concrete, types, loss, grad = _traced_value_and_grad(
        sparse_softmax_cross_entropy, _XENT_CLASSES, _XENT_LOGITS
    )
    assert "SparseSoftmaxCrossEntropyWithLogits" in types
    assert _kernel_backprop_is_used(concrete, "SparseSoftmaxCrossEntropyWithLogits")
    # tf.nn's deterministic composite is log_softmax + gather; none of it is traced here.
    assert not types & {"LogSoftmax", "Softmax", "GatherV2"}
    one_hot = np.eye(4)[_XENT_CLASSES.numpy()]
    np.testing.assert_allclose(
        loss.numpy(), reference_softmax_cross_entropy(one_hot, _XENT_LOGITS), rtol=1e-6
    )
    p = tf.nn.softmax(_XENT_LOGITS).numpy()
    np.testing.assert_allclose(grad.numpy(), p - one_hot, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("loss_fn", "kernel", "labels"),
    [
        (
            tf.nn.softmax_cross_entropy_with_logits,
            "SoftmaxCrossEntropyWithLogits",
            tf.one_hot(_XENT_CLASSES, 4),
        ),
        (
            tf.nn.sparse_softmax_cross_entropy_with_logits,
            "SparseSoftmaxCrossEntropyWithLogits",
            _XENT_CLASSES,
        ),
    ],
    ids=["dense", "sparse"],
)
def test_tf_nn_drops_the_kernel_under_op_determinism(op_determinism, loss_fn, kernel, labels):
    """Why losses.py calls tf.raw_ops: under op determinism tf.nn's cross-entropy functions
    compose log_softmax (TF 2.21 nn_ops.py) instead of running the fused kernel."""

    def call(y, z):
        return loss_fn(labels=y, logits=z)

    op_determinism(False)
    _, types, _, _ = _traced_value_and_grad(call, labels, _XENT_LOGITS)
    assert kernel in types
    op_determinism(True)  # see test_fused_runs_the_kernel_and_its_gradient
    _, types, loss, _ = _traced_value_and_grad(call, labels, _XENT_LOGITS)
    assert kernel not in types
    assert "LogSoftmax" in types
    np.testing.assert_allclose(
        loss.numpy(),
        reference_softmax_cross_entropy(tf.one_hot(_XENT_CLASSES, 4), _XENT_LOGITS),
        rtol=1e-6,
    )


@pytest.mark.parametrize("form", ["log_softmax", "fused", "sparse"])
def test_gradient_matches_finite_differences_in_float64(rng, form):
    """tf.test.compute_gradient: the analytic Jacobian (d loss_i / d logits_jk) against
    central differences, float64, moderate logits, soft labels summing to 1."""
    logits = tf.constant(3 * rng.normal(size=(3, 5)))
    labels = rng.dirichlet(np.ones(5), size=3)
    classes = rng.integers(0, 5, size=3)
    if form == "sparse":

        def loss(z):
            return sparse_softmax_cross_entropy(classes, z)

    else:

        def loss(z):
            return softmax_cross_entropy(labels, z, method=form)

    ((analytic,), (numeric,)) = tf.test.compute_gradient(loss, [logits])
    assert analytic.shape == numeric.shape == (3, 15)
    assert analytic.dtype == np.float64
    assert np.abs(analytic).max() > 0.1  # not trivially zero
    assert np.abs(analytic - numeric).max() < 1e-6


# --- manual: the documented failure ----------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@SETTINGS
@given(problem=problems(soft=False))
@example(problem=ADVERSARIAL)
def test_manual_fails_exactly_where_softmax_underflows(dtype, problem):
    logits, labels, classes = problem
    z, y = _cast(logits, dtype), _cast(labels, dtype)
    p = _f64(tf.nn.softmax(z))
    rows = np.arange(len(classes))
    true_zero = p[rows, classes] == 0
    off_zero = ((p == 0) & (labels == 0)).any(-1)  # 0 * log(0) = NaN on a zero-label class

    loss = _f64(softmax_cross_entropy(y, z, method="manual"))
    np.testing.assert_array_equal(np.isnan(loss), off_zero)
    np.testing.assert_array_equal(np.isposinf(loss), true_zero & ~off_zero)
    # Where every probability is a normal number, manual is as accurate as the stable forms.
    normal = (p >= TINY[dtype]).all(-1)
    zq = _f64(z)
    want = reference_softmax_cross_entropy(labels, zq)
    _assert_within(loss[normal], want[normal], _tol(dtype, zq, labels)[normal])

    capped = _f64(softmax_cross_entropy(y, z, method="manual", epsilon=1e-10))
    if dtype == tf.float16:
        # 1e-10 rounds to 0 in float16 (smallest subnormal ~6e-8): the cap disappears.
        np.testing.assert_array_equal(capped, loss)
    else:
        assert np.all(np.isfinite(capped))
        # Capped at -log(epsilon) in the dtype, to within one ulp: TF's CPU log is 1 ulp off
        # in full SIMD packets (float32 23.025852 instead of 23.02585, see the test below).
        cap = -_f64(tf.math.log(tf.constant(1e-10, dtype)))
        assert np.all(np.abs(capped[true_zero] - cap) <= 2 * UNIT_ROUNDOFF[dtype] * cap)
        if dtype == tf.float32:
            assert str(np.float32(cap)) == "23.02585"


def test_manual_gradient_at_saturation():
    logits = tf.constant([[1.0, 1000.0]])
    labels = tf.constant([[1.0, 0.0]])
    for epsilon, check in ((1e-10, lambda g: np.all(g == 0)), (0.0, lambda g: np.all(np.isnan(g)))):
        with tf.GradientTape() as tape:
            tape.watch(logits)
            loss = softmax_cross_entropy(labels, logits, method="manual", epsilon=epsilon)
        grad = tape.gradient(loss, logits).numpy()
        assert check(grad), (epsilon, grad)


@pytest.mark.parametrize(
    ("dtype", "gap", "finite"),
    [
        (tf.float16, 17.0, True),
        (tf.float16, 18.0, False),  # float16 softmax underflows at a gap of ~17.5 ...
        (tf.bfloat16, 86.0, True),
        (tf.bfloat16, 88.0, False),
        (tf.float32, 86.0, True),
        (tf.float32, 88.0, False),  # ... float32 at ~86.75 (denormals are flushed on CPU) ...
        (tf.float64, 708.0, True),
        (tf.float64, 710.0, False),  # ... float64 at ~708.5.
    ],
)
def test_manual_underflow_gap_per_dtype(dtype, gap, finite):
    loss = softmax_cross_entropy(
        _cast([[1.0, 0.0]], dtype), _cast([[0.0, gap]], dtype), method="manual"
    )
    # (float16 at gap 17 is finite but inaccurate: softmax is the subnormal 6e-8, loss 16.64.)
    assert bool(np.isfinite(_f64(loss))[0]) == finite
    capped = softmax_cross_entropy(
        _cast([[1.0, 0.0]], dtype), _cast([[0.0, gap]], dtype), method="manual", epsilon=1e-10
    )
    # epsilon=1e-10 rounds to 0 in float16, so it does not help there.
    assert bool(np.isfinite(_f64(capped))[0]) == (finite or dtype != tf.float16)


def test_manual_cap_is_one_ulp_off_in_simd_packets():
    """Pinned TF behaviour: the cap's exact digits depend on where the element sits.

    TF's vectorised CPU log returns -23.025852 for 1e-10 (1 ulp from the correctly rounded
    -23.02585 that NumPy and the scalar tail give). Document 002's two-element toy takes the
    scalar path; a [50, 10] MNIST batch puts nearly every element in a full packet.
    """
    logits = np.tile(np.float32([1.0, 1000.0]), (8, 1))  # 16 elements
    labels = np.tile(np.float32([1.0, 0.0]), (8, 1))
    capped = softmax_cross_entropy(labels, logits, method="manual", epsilon=1e-10).numpy()
    assert {str(v) for v in capped} <= {"23.02585", "23.025852"}
    single = softmax_cross_entropy(labels[:1], logits[:1], method="manual", epsilon=1e-10)
    assert str(single.numpy()[0]) == "23.02585"


def test_manual_under_tf_function_grappler_rewrites_log_softmax():
    """Pinned TF behaviour: in a graph, Grappler's arithmetic optimizer turns
    log(softmax(x) + 0) into log_softmax(x) -- but only when nothing else (a gradient) needs
    the softmax, so evaluation-only graphs see a finite loss and training graphs do not."""
    logits = tf.constant([[1.0, 1000.0]])
    labels = tf.constant([[1.0, 0.0]])

    @tf.function
    def value(epsilon):
        return softmax_cross_entropy(labels, logits, method="manual", epsilon=epsilon)

    assert value(0.0).numpy()[0] == 999.0  # eager gives inf
    assert str(value(1e-10).numpy()[0]) == "23.02585"  # no rewrite with a real epsilon

    @tf.function
    def value_and_grad(epsilon):
        with tf.GradientTape() as tape:
            tape.watch(logits)
            loss = softmax_cross_entropy(labels, logits, method="manual", epsilon=epsilon)
        return loss, tape.gradient(loss, logits)

    loss, grad = value_and_grad(0.0)
    assert loss.numpy()[0] == np.inf  # as in eager
    assert np.all(np.isnan(grad.numpy()))
    loss, grad = value_and_grad(1e-10)
    assert str(np.float32(loss.numpy()[0])) == "23.02585"  # no rewrite with a real epsilon
    assert np.all(grad.numpy() == 0)


# --- shapes, axis, dtypes, input kinds -------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("axis", [0, 1, -2, -1])
def test_methods_match_oracle_on_any_axis_eager_and_traced(run_mode, rng, method, axis):
    """Rank-3 logits, soft labels, the class axis anywhere (the fused kernel needs it moved last
    and the rest flattened): eager and ``tf.function`` both agree with the float64 oracle."""
    logits = (3 * rng.normal(size=(2, 3, 4))).astype(np.float32)
    batch = tuple(np.delete(logits.shape, axis))
    labels = np.moveaxis(rng.dirichlet(np.ones(logits.shape[axis]), size=batch), -1, axis)
    labels = labels.astype(np.float32)
    loss = run_mode(lambda y, z: softmax_cross_entropy(y, z, method=method, axis=axis))
    got = loss(labels, logits)
    want = reference_softmax_cross_entropy(
        np.moveaxis(labels, axis, -1), np.moveaxis(logits, axis, -1)
    )
    assert got.shape == want.shape == batch and got.dtype == tf.float32
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 4)])
def test_sparse_equals_dense_eager_and_traced(run_mode, rng, shape):
    logits = (3 * rng.normal(size=shape)).astype(np.float32)
    classes = rng.integers(0, shape[-1], size=shape[:-1])
    one_hot = np.eye(shape[-1], dtype=np.float32)[classes]
    sparse = run_mode(sparse_softmax_cross_entropy)(classes, logits)
    dense = run_mode(softmax_cross_entropy)(one_hot, logits)
    assert sparse.shape == dense.shape == shape[:-1]
    np.testing.assert_allclose(sparse.numpy(), dense.numpy(), rtol=1e-6, atol=1e-6)
    want = reference_softmax_cross_entropy(one_hot, logits)
    np.testing.assert_allclose(sparse.numpy(), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("method", "spec", "axis"),
    [(m, [None, 3], -1) for m in METHODS]
    + [(m, [None, 3, 4], 1) for m in METHODS]
    + [("sparse", [None, 3], -1)],
)
def test_unknown_batch_dim_gives_batch_shape(rng, method, spec, axis):
    """Traced once with an unknown batch size: the static output shape keeps ``None`` (not an
    unknown rank), and every batch size, 0 included, runs through the one graph."""
    if method == "sparse":
        signature = [tf.TensorSpec(spec[:-1], tf.int32), tf.TensorSpec(spec, tf.float32)]
        loss = tf.function(sparse_softmax_cross_entropy, input_signature=signature)
    else:
        signature = [tf.TensorSpec(spec, tf.float32)] * 2
        loss = tf.function(
            lambda y, z: softmax_cross_entropy(y, z, method=method, axis=axis),
            input_signature=signature,
        )
    expected = [d for i, d in enumerate(spec) if i != axis % len(spec)]
    assert loss.get_concrete_function().structured_outputs.shape.as_list() == expected
    for batch in (0, 1, 4):
        shape = (batch, *spec[1:])
        logits = (3 * rng.normal(size=shape)).astype(np.float32)
        moved = np.moveaxis(logits, axis, -1)
        classes = rng.integers(0, moved.shape[-1], size=moved.shape[:-1])
        one_hot = np.eye(moved.shape[-1], dtype=np.float32)[classes]
        labels = classes.astype(np.int32) if method == "sparse" else np.moveaxis(one_hot, -1, axis)
        got = loss(labels, logits)
        assert got.shape == moved.shape[:-1]
        want = reference_softmax_cross_entropy(one_hot, moved)
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-5)
    assert loss.experimental_get_tracing_count() == 1


@pytest.mark.parametrize("method", METHODS)
def test_axis_other_than_last_needs_a_known_rank(method):
    """With an unknown rank an axis other than -1 cannot be checked or moved: a clear error."""
    loss = tf.function(
        lambda y, z: softmax_cross_entropy(y, z, method=method, axis=0),
        input_signature=[tf.TensorSpec(None, tf.float32)] * 2,
    )
    with pytest.raises(ValueError, match="axis 0 needs logits of known rank"):
        loss(np.float32([[1.0, 0.0]]), np.float32([[0.0, 1.0]]))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_fused_and_sparse_keep_the_dtype(run_mode, rng, dtype):
    """No upcast: the kernels run in float16, bfloat16, float32 and float64, forward and
    gradient, eager and traced."""
    logits = _cast(3 * rng.normal(size=(4, 5)), dtype)
    classes = rng.integers(0, 5, size=4)
    labels = _cast(np.eye(5)[classes], dtype)

    def value_and_grad(y, z, c):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(z)
            dense = softmax_cross_entropy(y, z, method="fused")
            sparse = sparse_softmax_cross_entropy(c, z)
        return dense, sparse, tape.gradient(dense, z), tape.gradient(sparse, z)

    dense, sparse, dense_grad, sparse_grad = run_mode(value_and_grad)(labels, logits, classes)
    assert dense.dtype == sparse.dtype == dense_grad.dtype == sparse_grad.dtype == dtype
    assert dense.shape == sparse.shape == (4,)
    assert dense_grad.shape == sparse_grad.shape == (4, 5)
    zq, yq = _f64(logits), _f64(labels)
    want = reference_softmax_cross_entropy(yq, zq)
    _assert_within(_f64(dense), want, _tol(dtype, zq, yq))
    _assert_within(_f64(sparse), want, _tol(dtype, zq, yq))
    p = np.exp(zq - zq.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    for grad in (dense_grad, sparse_grad):
        _assert_within(_f64(grad), p - yq, FACTOR * UNIT_ROUNDOFF[dtype])


def test_inputs_may_be_lists_numpy_or_tensors():
    want = reference_softmax_cross_entropy(DOC001_LABELS, DOC001_LOGITS)
    logits = [[float(v) for v in row] for row in DOC001_LOGITS]
    for labels in (DOC001_LABELS, np.array(DOC001_LABELS), tf.constant(DOC001_LABELS)):
        got = softmax_cross_entropy(labels, logits).numpy()  # int labels are cast to float32
        np.testing.assert_allclose(got, want, rtol=1e-6)
    sparse = sparse_softmax_cross_entropy(np.argmax(DOC001_LABELS, -1).astype(np.uint8), logits)
    np.testing.assert_allclose(sparse.numpy(), want, rtol=1e-6)


def test_reference_is_float64_for_any_input():
    got = reference_softmax_cross_entropy(tf.constant([[0.0, 1.0]], tf.bfloat16), [[1e4, 0]])
    assert got.dtype == np.float64
    assert got[0] == 1e4


# --- sigmoid ---------------------------------------------------------------------------------


@SETTINGS
@given(
    x=st.lists(st.floats(-5, 5), min_size=1, max_size=8),
    z=st.lists(st.floats(0, 1), min_size=8, max_size=8),
)
def test_sigmoid_manual_equals_fused_for_moderate_x(x, z):
    z = z[: len(x)]
    fused = sigmoid_cross_entropy(z, np.float32(x)).numpy()
    manual = sigmoid_cross_entropy(z, np.float32(x), method="manual").numpy()
    # log(1 - sigmoid(x)) loses ~roundoff / (1 - sigmoid(5)) ~ 1e-5 absolutely at x = 5.
    tol = FACTOR * UNIT_ROUNDOFF[tf.float32] / (1 - 1 / (1 + math.exp(-5)))
    np.testing.assert_allclose(manual, fused, rtol=0, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@SETTINGS
@given(
    x=st.lists(st.floats(-200, 200), min_size=1, max_size=8),
    z=st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0]), min_size=8, max_size=8),
)
@example(x=[-200.0, -100.0, -20.0, 0.0, 20.0, 100.0, 200.0, 17.0], z=[0.0, 1.0, 0.5] + [0.25] * 5)
def test_sigmoid_fused_finite_manual_overflows(dtype, x, z):
    xt, zt = _cast(x, dtype), _cast(z[: len(x)], dtype)
    xq, zq = _f64(xt), _f64(zt)
    fused = _f64(sigmoid_cross_entropy(zt, xt))
    assert np.all(np.isfinite(fused))
    want = np.maximum(xq, 0) - xq * zq + np.log1p(np.exp(-np.abs(xq)))
    _assert_within(fused, want, FACTOR * UNIT_ROUNDOFF[dtype] * (np.abs(xq) + 1))
    # Manual is non-finite exactly where sigmoid(x) rounds to 0 or 1 in the dtype.
    p = _f64(tf.math.sigmoid(xt))
    manual = _f64(sigmoid_cross_entropy(zt, xt, method="manual"))
    saturated = (p == 0) | (p == 1)
    np.testing.assert_array_equal(~np.isfinite(manual), saturated)
    # NaN (0 * -inf) for the correctly classified hard label, inf otherwise.
    nan = ((p == 1) & (zq == 1)) | ((p == 0) & (zq == 0))
    np.testing.assert_array_equal(np.isnan(manual), nan)
    assert np.all(manual[saturated & ~nan] == np.inf)


def test_sigmoid_manual_float32_overflow_points():
    x = np.float32([16.5, 17.0, 20.0, -87.0, -88.0, -200.0])
    half = sigmoid_cross_entropy(np.full(6, 0.5), x, method="manual").numpy()
    assert np.all(np.isfinite(half[[0, 3]])) and np.all(half[[1, 2, 4, 5]] == np.inf)
    assert sigmoid_cross_entropy([0.0], [20.0], method="manual").numpy()[0] == np.inf
    assert np.isnan(sigmoid_cross_entropy([1.0], [20.0], method="manual").numpy()[0])
    assert sigmoid_cross_entropy([1.0], [-200.0], method="manual").numpy()[0] == np.inf
    assert np.isnan(sigmoid_cross_entropy([0.0], [-200.0], method="manual").numpy()[0])


@pytest.mark.parametrize("method", SIGMOID_METHODS)
@pytest.mark.parametrize("shape", [(), (3,), (2, 3, 4)])
def test_sigmoid_shape_equals_labels_shape(method, shape):
    labels = np.random.default_rng(1).uniform(size=shape).astype(np.float32)
    logits = np.random.default_rng(2).normal(size=shape).astype(np.float32)
    assert sigmoid_cross_entropy(labels, logits, method=method).shape == labels.shape


# --- Keras 2 categorical_crossentropy --------------------------------------------------------


def test_keras2_renormalises():
    rng = np.random.default_rng(3)
    probs = tf.nn.softmax(rng.normal(size=(4, 5)).astype(np.float32)).numpy()
    target = np.eye(5, dtype=np.float32)[rng.integers(0, 5, size=4)]
    base = keras2_categorical_crossentropy(target, probs).numpy()
    for scale in (1e-3, 0.5, 7.0, 1e3):
        np.testing.assert_allclose(
            keras2_categorical_crossentropy(target, probs * scale), base, rtol=1e-6
        )


def test_keras2_caps_at_minus_log_epsilon_with_zero_gradient():
    target = tf.constant([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    output = tf.constant([[0.0, 1.0], [0.0, 0.5], [1e-9, 1.0]])  # all below the 1e-7 clip
    with tf.GradientTape() as tape:
        tape.watch(output)
        loss = keras2_categorical_crossentropy(target, output)
    assert [str(np.float32(v)) for v in loss.numpy()] == ["16.118095"] * 3
    assert np.all(tape.gradient(loss, output).numpy() == 0)


@SETTINGS
@given(problem=problems())
def test_keras2_from_logits_equals_fused_and_probs_agree(problem):
    logits, labels, _ = problem
    logits, labels = logits.astype(np.float32), labels.astype(np.float32)
    fused = softmax_cross_entropy(labels, logits).numpy()
    np.testing.assert_array_equal(
        keras2_categorical_crossentropy(labels, logits, from_logits=True).numpy(), fused
    )
    # On probabilities the clip only bites where a probability is below 1e-7.
    probs = tf.nn.softmax(logits).numpy()
    ok = (probs >= 1e-6).all(-1)
    got = keras2_categorical_crossentropy(labels, probs).numpy()
    np.testing.assert_allclose(got[ok], fused[ok], rtol=1e-5, atol=1e-5)


def test_keras2_matches_keras3_tensorflow_backend():
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(4)
    output = rng.uniform(size=(6, 4)).astype(np.float32)
    output[0, 0] = 0.0
    target = np.eye(4, dtype=np.float32)[[0, 1, 2, 3, 0, 1]]
    np.testing.assert_allclose(
        keras2_categorical_crossentropy(target, output).numpy(),
        keras.ops.convert_to_numpy(keras.ops.categorical_crossentropy(target, output)),
        rtol=1e-6,
    )


# --- reduced ---------------------------------------------------------------------------------


def test_reductions_are_mean_and_sum():
    assert REDUCTIONS == ("mean", "sum")


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_reduced_mean_and_sum(run_mode, rng, reduction):
    logits = (3 * rng.normal(size=(6, 4))).astype(np.float32)
    classes = rng.integers(0, 4, size=6)
    one_hot = np.eye(4, dtype=np.float32)[classes]
    per_example = reference_softmax_cross_entropy(one_hot, logits)
    want = per_example.mean() if reduction == "mean" else per_example.sum()
    for fn, labels in ((softmax_cross_entropy, one_hot), (sparse_softmax_cross_entropy, classes)):
        got = run_mode(reduced(fn, reduction))(labels, logits)
        assert got.shape == () and got.dtype == tf.float32
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)


def test_reduced_default_is_mean_document_001():
    loss = reduced(softmax_cross_entropy)
    assert loss.__name__ == "softmax_cross_entropy_mean"
    assert str(np.float32(loss(DOC001_LABELS, np.float32(DOC001_LOGITS)).numpy())) == "16.478533"


def test_reduced_forwards_kwargs(rng):
    labels, logits = [[1.0, 0.0]] * 2, [[1.0, 1000.0]] * 2  # document 002's toy, twice
    assert reduced(softmax_cross_entropy, "sum")(labels, logits).numpy() == 1998.0
    manual = reduced(softmax_cross_entropy, "sum", method="manual")
    assert manual(labels, logits).numpy() == np.inf
    capped = reduced(softmax_cross_entropy, "sum", method="manual", epsilon=1e-10)
    np.testing.assert_allclose(capped(labels, logits).numpy(), 2 * 23.02585, rtol=1e-6)
    # axis too: the class axis first is the transpose of the class axis last.
    z = rng.normal(size=(5, 3)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, size=5)]
    np.testing.assert_allclose(
        reduced(softmax_cross_entropy, "sum", axis=0)(y.T, z.T).numpy(),
        reduced(softmax_cross_entropy, "sum")(y, z).numpy(),
        rtol=1e-6,
    )


@pytest.mark.parametrize(
    ("fn", "reduction", "kwargs", "name"),
    [
        (
            softmax_cross_entropy,
            "sum",
            {"method": "manual", "epsilon": 1e-10},
            "softmax_cross_entropy_manual_eps1e-10_sum",
        ),
        (softmax_cross_entropy, "mean", {"method": "fused"}, "softmax_cross_entropy_fused_mean"),
        (
            softmax_cross_entropy,
            "mean",
            {"method": "log_softmax"},
            "softmax_cross_entropy_log_softmax_mean",
        ),
        (sparse_softmax_cross_entropy, "sum", {}, "sparse_softmax_cross_entropy_sum"),
    ],
)
def test_reduced_name(fn, reduction, kwargs, name):
    assert reduced(fn, reduction, **kwargs).__name__ == name


def test_reduced_names_are_distinct():
    names = {
        reduced(softmax_cross_entropy, r, method=m).__name__ for m in METHODS for r in REDUCTIONS
    }
    names.add(reduced(softmax_cross_entropy, "mean", method="manual", epsilon=1e-10).__name__)
    assert len(names) == len(METHODS) * len(REDUCTIONS) + 1


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (
            (softmax_cross_entropy, "max"),
            r"unknown reduction 'max'; choose one of \('mean', 'sum'\)",
        ),
        ((softmax_cross_entropy, "Mean"), "unknown reduction 'Mean'"),
        ((softmax_cross_entropy, None), "unknown reduction None"),
        (("softmax_cross_entropy",), "fn must be a per-example loss function"),
        ((None, "sum"), "fn must be a per-example loss function, got None"),
    ],
)
def test_reduced_bad_arguments_raise_value_error(args, match):
    with pytest.raises(ValueError, match=match):
        reduced(*args)


# --- bad input -------------------------------------------------------------------------------

_LOGITS = np.zeros((2, 3), np.float32)
_ONE_HOT = np.eye(3, dtype=np.float32)[[0, 1]]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda: sparse_softmax_cross_entropy([0, 3], _LOGITS),
            r"label value 3 is outside the valid range \[0, 3\)",
        ),
        (
            lambda: sparse_softmax_cross_entropy([-1, 0], _LOGITS),
            r"label value -1 is outside the valid range \[0, 3\)",
        ),
        (
            lambda: sparse_softmax_cross_entropy([[0], [1]], _LOGITS),
            r"labels must have shape \[batch\] = \[2\].*got \[2, 1\]; squeeze the last axis",
        ),
        (lambda: sparse_softmax_cross_entropy([0, 1, 2], _LOGITS), r"labels must have shape"),
        (
            lambda: sparse_softmax_cross_entropy([0.0, 1.0], _LOGITS),
            "labels must be integer class indices, got float32",
        ),
        (
            lambda: sparse_softmax_cross_entropy([0, 1], np.zeros((2, 3), np.int32)),
            "logits must be floating point, got int32",
        ),
        (
            lambda: softmax_cross_entropy(_ONE_HOT, np.zeros((2, 3), np.int32)),
            "logits must be floating point, got int32",
        ),
        (
            lambda: softmax_cross_entropy(_ONE_HOT[:, :2], _LOGITS),
            r"labels and logits must have the same shape, got labels \[2, 2\] and logits \[2, 3\]",
        ),
        (
            lambda: softmax_cross_entropy(_ONE_HOT, _LOGITS, method="naive"),
            r"unknown method 'naive'; expected one of \('manual', 'log_softmax', 'fused'\)",
        ),
        (
            lambda: softmax_cross_entropy(_ONE_HOT, _LOGITS, method="manual", epsilon=-1e-10),
            "epsilon must be non-negative",
        ),
        (lambda: softmax_cross_entropy(_ONE_HOT, _LOGITS, axis=2), "axis 2 is out of range"),
        (lambda: softmax_cross_entropy(1.0, 0.0), "logits must have at least 1 axis"),
        (lambda: softmax_cross_entropy(["a", "b"], [0.0, 1.0]), "labels must be numeric"),
        (lambda: sigmoid_cross_entropy([0.0, 1.0], _LOGITS), "same shape"),
        (
            lambda: sigmoid_cross_entropy(_ONE_HOT, _LOGITS, method="log_softmax"),
            r"unknown method 'log_softmax'; expected one of \('manual', 'fused'\)",
        ),
        (
            lambda: sigmoid_cross_entropy(_ONE_HOT, np.zeros((2, 3), np.int64)),
            "logits must be floating point, got int64",
        ),
        (
            lambda: keras2_categorical_crossentropy(_ONE_HOT, _LOGITS, epsilon=-1.0),
            "epsilon must be non-negative",
        ),
        (
            lambda: keras2_categorical_crossentropy(_ONE_HOT, _LOGITS, epsilon=0.5),
            "epsilon must be < 0.5",
        ),
        (
            lambda: keras2_categorical_crossentropy(_ONE_HOT, [[1, 2, 3], [4, 5, 6]]),
            "output must be floating point, got int32",
        ),
        (
            lambda: keras2_categorical_crossentropy(_ONE_HOT[:1], _LOGITS),
            "target and logits must have the same shape",
        ),
    ],
)
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_static_checks_run_under_tf_function_value_checks_do_not():
    def traced(label_shape):
        return tf.function(
            sparse_softmax_cross_entropy,
            input_signature=[
                tf.TensorSpec(label_shape, tf.int32),
                tf.TensorSpec([None, 3], tf.float32),
            ],
        )

    with pytest.raises(ValueError, match="squeeze the last axis"):
        traced([None, 1]).get_concrete_function()
    dense = tf.function(
        softmax_cross_entropy,
        input_signature=[tf.TensorSpec([None, 3], tf.float32), tf.TensorSpec([None, 3], tf.int32)],
    )
    with pytest.raises(ValueError, match="logits must be floating point, got int32"):
        dense.get_concrete_function()
    # Label values are unknown while tracing: TF's CPU kernel rejects them itself at run time.
    with pytest.raises(tf.errors.InvalidArgumentError, match="outside the valid range"):
        traced([None])(tf.constant([0, 3]), tf.zeros((2, 3)))
    np.testing.assert_allclose(
        traced([None])(tf.constant([0, 2]), tf.zeros((2, 3))).numpy(), [math.log(3)] * 2, rtol=1e-6
    )


def test_logit_gradient_of_the_saturated_toy():
    # document 002's toy [1, 1000]: the fused gradient is softmax - y, the manual one with eps 1e-10 is 0
    value, grad = losses.logit_gradient([[1.0, 0.0]], [[1.0, 1000.0]], method="fused")
    assert value == 999.0 and grad.tolist() == [[-1.0, 1.0]]
    value, grad = losses.logit_gradient([[1.0, 0.0]], [[1.0, 1000.0]], method="manual", epsilon=1e-10)
    assert abs(value - 23.02585) < 2e-6 and grad.tolist() == [[0.0, 0.0]]


def test_relative_errors_small_for_moderate_logits_and_large_for_manual_when_saturated():
    y = np.eye(3, dtype=np.float32)[[0, 1]]
    small = losses.relative_errors(y, np.array([[1.0, 2.0, 0.5], [0.1, -1.0, 2.0]], np.float32))
    assert set(small) == set(losses.METHODS) and max(small.values()) < 1e-6
    saturated = losses.relative_errors(y, np.array([[0.0, 500.0, 0.0], [0.0, 500.0, 0.0]], np.float32))
    assert saturated["manual"] > 0.5 and saturated["fused"] < 1e-6


# ------------------------------------------------------------------ the float64 oracle family
@pytest.mark.parametrize("family", losses.ORACLE_FAMILIES)
def test_oracle_gradient_matches_central_differences(family, rng):
    z = rng.normal(0.0, 2.0, (3, 4))
    t = rng.random((3, 4)) if "sigmoid" in family or "binary" in family else np.eye(4)[[0, 3, 1]]
    value, grad = losses.oracle(family, t, z)
    h = 1e-6
    numeric = np.zeros_like(z)
    for idx in np.ndindex(*z.shape):
        up, down = z.copy(), z.copy()
        up[idx] += h
        down[idx] -= h
        numeric[idx] = (losses.oracle(family, t, up)[0].sum() - losses.oracle(family, t, down)[0].sum()) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)
    assert value.shape == ((3,) if family in ("softmax", "categorical_focal") else (3, 4))


def test_oracle_keeps_the_tiny_loss_of_a_confident_row():
    """log1p, not log(1 + x): the loss of a right answer by a gap of 50 is e^-50, not 0."""
    value = losses.reference_softmax_cross_entropy([[0.0, 1.0]], [[0.0, 50.0]])
    assert value[0] == pytest.approx(np.exp(-50.0), rel=1e-12)
    with pytest.raises(ValueError, match="unknown family"):
        losses.oracle("hinge", [[1.0]], [[0.0]])


def test_reference_sigmoid_is_the_oracle_in_float64_and_rounds_in_float32(rng):
    x = rng.normal(0.0, 30.0, 200)
    z = rng.random(200)
    np.testing.assert_allclose(losses.reference_sigmoid_cross_entropy(z, x),
                               losses.oracle("sigmoid", z, x)[0], rtol=1e-13, atol=1e-300)
    low = losses.reference_sigmoid_cross_entropy(z, x, "float32")
    assert low.dtype == np.float32


def test_logsumexp_gather_equals_the_sparse_kernel(rng):
    z = tf.constant(rng.normal(0.0, 5.0, (6, 7)), tf.float32)
    y = tf.constant(rng.integers(0, 7, 6))
    fused, grad_f = _value_and_grad(losses.sparse_softmax_cross_entropy, y, z)
    gather, grad_g = _value_and_grad(
        lambda a, b: losses.sparse_softmax_cross_entropy(a, b, method="logsumexp_gather"), y, z)
    np.testing.assert_allclose(gather, fused, rtol=1e-5)
    np.testing.assert_allclose(grad_g, grad_f, atol=1e-6)
    with pytest.raises(ValueError, match="outside the valid range"):
        losses.sparse_softmax_cross_entropy([7, 0, 0, 0, 0, 0], z, method="logsumexp_gather")
    with pytest.raises(ValueError, match="unknown method"):
        losses.sparse_softmax_cross_entropy(y, z, method="manual")


def _value_and_grad(fn, labels, logits):
    with tf.GradientTape() as tape:
        tape.watch(logits)
        value = fn(labels, logits)
        total = tf.reduce_sum(value)
    return value.numpy(), tape.gradient(total, logits).numpy()


def test_manual_formula_is_the_checked_manual_route_without_its_checks():
    y, z = np.eye(3, dtype=np.float32)[[0, 2]], np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 9.0]], np.float32)
    np.testing.assert_array_equal(losses.manual_softmax_cross_entropy(y, z, epsilon=1e-10),
                                  losses.softmax_cross_entropy(y, z, method="manual", epsilon=1e-10))
    column = np.ones((2, 1), np.float32)  # [B, 1] labels: TensorFlow broadcasts, the checked route refuses
    assert losses.manual_softmax_cross_entropy(column, z).shape == (2,)
    with pytest.raises(ValueError):
        losses.softmax_cross_entropy(column, z, method="manual")
