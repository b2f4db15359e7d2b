"""Tests for xentlab.label_shapes (notebook 04's helpers on the sigmoid, softmax and sparse ops)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from xentlab import label_shapes, losses


def test_logit_identities_hold_for_the_logit_and_fail_off_it():
    p = np.array([0.01, 0.25, 0.5, 0.75, 0.99])
    logit = np.log(p / (1 - p))
    assert label_shapes.logit_identities(p, logit) == {
        "sigmoid(logit(p)) == p": True, "softmax([x, 0])[0] == sigmoid(x)": True}
    assert label_shapes.logit_identities(p, logit + 1)["sigmoid(logit(p)) == p"] is False


def test_logit_lines_prints_the_round_trip_and_the_signs():
    p = np.array([0.01, 0.25, 0.5, 0.75, 0.99])
    logit = np.log(p / (1 - p))
    identities = {label_shapes.ROUND_TRIP: True, label_shapes.TWO_CLASS: True}
    lines = label_shapes.logit_lines(p, logit, True, identities).splitlines()
    assert lines == [
        "p           [0.01 0.25 0.5  0.75 0.99]",
        "logit(p)    [-4.5951 -1.0986  0.      1.0986  4.5951]",
        "sigmoid(logit(p)) == p: True",
        "logit(0.5) = 0.0 | negative below 0.5, positive above: True",
        "softmax([x, 0])[0] == sigmoid(x): True",
    ]
    text = label_shapes.logit_lines(p, logit, False, {**identities, label_shapes.ROUND_TRIP: False})
    assert "== p: False" in text and "positive above: False" in text


def test_row_sum_lines_rounds_each_sum():
    text = label_shapes.row_sum_lines(np.array([1.0, 0.9999999]), np.array([2.21849, 1.5]), True, False)
    assert text == ("row sums, softmax: [1. 1.]\nrow sums, sigmoid: [2.218 1.5  ]\n"
                    "softmax rows sum to 1: True | sigmoid rows do not: False")


def test_op_types_show_the_sigmoid_op_is_a_composite_and_softmax_a_kernel():
    y, z = tf.zeros((2, 3)), tf.ones((2, 3))
    sigmoid = label_shapes.op_types(lambda a, b: tf.nn.sigmoid_cross_entropy_with_logits(labels=a, logits=b), y, z)
    softmax = label_shapes.op_types(lambda a, b: losses.softmax_cross_entropy(a, b, method="fused"), y, z)
    assert "Log1p" in sigmoid and not any("CrossEntropy" in t for t in sigmoid)
    assert "Placeholder" not in sigmoid and sigmoid == sorted(sigmoid)
    assert any("CrossEntropy" in t for t in softmax)


def test_forward_backward_times_has_every_kind_and_route():
    y, z = tf.one_hot([0, 1], 3), tf.zeros((2, 3))
    routes = {"op": lambda a, b: losses.softmax_cross_entropy(a, b, method="fused"),
              "textbook": lambda a, b: losses.softmax_cross_entropy(a, b, method="manual")}
    times = label_shapes.forward_backward_times({"softmax": (y, routes)}, z, repeats=2)
    assert set(times) == {"softmax"} and set(times["softmax"]) == {"op", "textbook"}
    t = times["softmax"]["op"]
    assert 0 < t["min"] <= t["median"] <= t["max"]


def test_timing_lines_and_text():
    times = {"sigmoid": {"op": {"min": 1.0, "median": 1.5, "max": 2.0},
                         "textbook": {"min": 0.5, "median": 0.75, "max": 0.9}}}
    outcome = {"sigmoid": "slower"}
    assert label_shapes.timing_lines(times, outcome) == (
        "sigmoid: op median 1.50 ms (1.00–2.00), textbook median 0.75 ms (0.50–0.90): the op is slower")
    assert label_shapes.timing_lines(times, {"sigmoid": "no clear difference"}).endswith(": no clear difference")
    assert label_shapes.timing_text(times, outcome, 10) == (
        "forward + backward medians, op against textbook: sigmoid 1.50 ms against 0.75 ms (slower); "
        "the sigmoid op is a composite of 10 elementwise op types, no fused kernel")


def test_public_op_multihot_value_is_right_but_without_determinism_its_gradient_is_softmax_minus_y(
        op_determinism):
    op_determinism(False)
    z = np.array([[2.0, 1.0, -1.0, 0.5]], np.float32)
    y = np.array([[1.0, 1.0, 0.0, 0.0]], np.float32)
    mh = label_shapes.public_op_multihot(z, y)
    p = tf.nn.softmax(z).numpy()
    assert set(mh) == {"softmax", "value_public_op", "value_log_softmax", "value_normalised",
                       "grad_public_op", "grad_of_value"}
    np.testing.assert_allclose(mh["softmax"], p, rtol=1e-6)
    np.testing.assert_allclose(mh["value_public_op"], mh["value_log_softmax"], rtol=1e-5)
    np.testing.assert_allclose(mh["value_normalised"], mh["value_log_softmax"], rtol=1e-5)
    np.testing.assert_allclose(mh["grad_public_op"], p - y, atol=1e-6)
    np.testing.assert_allclose(mh["grad_of_value"], 2 * p - y, atol=1e-6)
    op_determinism(True)  # the public op is then composed from log_softmax: its gradient is the true one
    np.testing.assert_allclose(label_shapes.public_op_multihot(z, y)["grad_public_op"], 2 * p - y, atol=1e-6)
    lines = label_shapes.multihot_lines(mh, y).splitlines()
    assert lines[0].startswith("labels [1. 1. 0. 0.] (sum 2), softmax [0.6095")
    assert "= 2 x CE(y/2) 1.99036" in lines[1] and lines[2].startswith("gradient of the value, softmax*2 - y:")
    assert lines[3].split(":")[1] == lines[4].split(":")[1]  # the op returns softmax - y


def test_public_op_value_and_gradient_sparse_error_and_determinism_lines(op_determinism):
    z = np.array([[2.0, 1.0, -1.0, 0.5]], np.float32)
    y = np.array([[1.0, 1.0, 0.0, 0.0]], np.float32)
    logits = np.zeros((4, 5), np.float32)
    op_determinism(False)
    value, grad = label_shapes.public_op_value_and_gradient(z, y)
    err = label_shapes.sparse_error([1, 0, 5, 2], logits)
    p = tf.nn.softmax(z).numpy()[0]
    assert value == pytest.approx(1.99036, abs=1e-5) and err.startswith("InvalidArgumentError: ")
    np.testing.assert_allclose(grad, p - y[0], atol=1e-6)
    op_determinism(True)
    value_det, grad_det = label_shapes.public_op_value_and_gradient(z, y)
    assert value_det == pytest.approx(value, abs=1e-5) and label_shapes.sparse_error([1, 0, 5, 2], logits)
    np.testing.assert_allclose(grad_det, 2 * p - y[0], atol=1e-6)
    text = label_shapes.determinism_lines({"a": (value, grad, "E: x")}, y[0], [1, 0, 5, 2], classes=5)
    assert text.splitlines() == ["a:", f"  multi-hot [1, 1, 0, 0]: value 1.99036, gradient {np.round(grad, 4)}",
                                 "  sparse label 5 of 5 classes: E: x"]
    assert "  sparse labels -1, 7 of 5 classes: E: x" in label_shapes.determinism_lines(
        {"a": (value, grad, "E: x")}, y[0], [-1, 0, 7], classes=5)


def test_sparse_error_none_for_valid_labels_and_message_otherwise():
    logits = np.zeros((4, 5), np.float32)
    assert label_shapes.sparse_error([1, 0, 4, 2], logits) is None
    assert label_shapes.sparse_error(np.array([[1], [0], [4], [2]]), logits).startswith("ValueError: ")
    assert "outside the valid range" in label_shapes.sparse_error([1, -1, 4, 2], logits)


def test_sparse_vs_dense_agree():
    assert label_shapes.sparse_vs_dense(n=50, classes=4, seed=0) < 1e-5


def test_docstring_sentence():
    def f():
        """Intro.  Other values will
        raise on CPU, and NaN on GPU. Tail."""

    assert label_shapes.docstring_sentence(f, "Other values", "on GPU.") == (
        "Other values will raise on CPU, and NaN on GPU.")


def test_broadcast_effects_and_lines_show_the_silent_batch_by_batch():
    loss = tf.constant([1.0, 2.0, 3.0, 4.0])
    weights = tf.constant([1.0, 1.0, 1.0, 1.0])
    labels, predicted = tf.constant([0, 1, 2, 3], tf.int64), tf.constant([0, 1, 0, 0], tf.int64)
    fx = label_shapes.broadcast_effects(loss, tf.reshape(loss, (-1, 1)), weights, tf.equal(labels, predicted),
                                        tf.equal(labels[:, None], predicted))
    assert fx["weighted"].shape == (4,) and fx["weighted_doc"].shape == (4, 4)
    assert (fx["accuracy"], fx["accuracy_doc"]) == (0.5, 0.25) and fx["shapes"]["hits_doc"] == (4, 4)
    text = label_shapes.broadcast_lines(fx)
    assert text.splitlines() == [
        "loss (4,) * weights (4,) -> (4,), mean 2.5000",
        "loss (4, 1) * weights (4,) -> (4, 4), mean 2.5000  (no error)",
        "accuracy with labels [4]: 0.50; with labels [4, 1]: 0.25 (compared all against all, (4, 4))",
    ]


def test_likeliest_runner_up_picks_the_row_with_the_likeliest_second_class():
    probs = np.array([[0.9, 0.05, 0.05], [0.2, 0.35, 0.45], [0.6, 0.3, 0.1]])
    assert label_shapes.likeliest_runner_up(probs) == (1, 2, 1)
    # the runner-up's probability decides, not how close the top two are (row 1's are closer)
    assert label_shapes.likeliest_runner_up(np.array([[0.5, 0.4, 0.1], [0.36, 0.35, 0.29]])) == (0, 0, 1)
