"""Notebook 05's helpers (xentlab.keras_cce): Keras 2 vs Keras 3 categorical cross-entropy, the
clip, what Keras recovers from softmax outputs, the training runs, reductions, targets, v1 vs v2."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf

from xentlab import keras_cce
from xentlab.train import History

CEILING = float(-np.log(np.float32(1e-7)))


def test_compare_versions_agree_on_ordinary_inputs():
    rng = np.random.default_rng(4)
    logits = rng.normal(0.0, 3.0, size=(6, 5)).astype(np.float32)
    target = np.eye(5, dtype=np.float32)[rng.integers(0, 5, size=6)]
    v = keras_cce.compare_versions(target, logits)
    assert list(v.rows) == ["probabilities", "from_logits=True"]
    assert v.rows["probabilities"][1].shape == (6,)
    assert v.diff_prob <= 1e-6 and v.diff_logit == 0.0 and v.diff_fused == 0.0 and v.err_oracle < 1e-5
    assert v.rows["probabilities"][0].shape == (6,) and v.err_oracle_keras2 < 1e-5  # the document's algorithm
    lines = v.text().splitlines()
    assert len(lines) == 7
    assert lines[0] == f"{'probabilities':18s} Keras 2: {np.round(v.rows['probabilities'][0], 4)}"
    assert lines[1].startswith(" " * 18 + " Keras 3: [")
    assert lines[6] == "max |Keras 3 on probabilities - float64 oracle| < 1e-5: True"


def test_scaled_losses_are_equal_after_renormalisation():
    p = np.array([[0.2, 0.3, 0.5], [0.7, 0.2, 0.1]], np.float32)
    t = np.array([[0, 0, 1], [0, 1, 0]], np.float32)
    scaled = keras_cce.scaled_losses(t, p, (1.0, 250.0))
    for k2, k3 in scaled.values():
        np.testing.assert_allclose(k2, -np.log([0.5, 0.2]), rtol=1e-6)
        np.testing.assert_allclose(k3, -np.log([0.5, 0.2]), rtol=1e-6)
    lines = keras_cce.format_scaled(scaled).splitlines()
    assert lines[0] == f"{'output':>28s}  {'Keras 2':>16s}  {'Keras 3':>16s}"
    assert lines[2] == "         probabilities x 250  [0.69315 1.60944]  [0.69315 1.60944]"


def test_clip_sweep_caps_the_loss_and_kills_the_gradient():
    margins = np.array([-2.0, 0.0, 10.0, 20.0, 30.0], np.float32)
    c = keras_cce.clip_sweep(margins)
    assert c.loss_keras3.max() == pytest.approx(CEILING, abs=1e-5)
    assert c.loss_keras2.max() == pytest.approx(CEILING, abs=1e-5)
    np.testing.assert_allclose(c.exact, np.logaddexp(0.0, margins.astype(np.float64)))
    np.testing.assert_allclose(c.loss_fused, c.exact, rtol=1e-5)
    assert c.dead_from == 20.0 and np.all(c.grad_clip[3:] == 0.0) and np.all(c.grad_clip[:3] != 0.0)
    np.testing.assert_allclose(c.grad_fused[3:], -1.0, atol=1e-6)
    assert c.perfect == pytest.approx(1.192e-7, rel=1e-3)
    lines = c.text(CEILING).splitlines()
    assert lines[0] == "-log(1e-7) in float32 = 16.118095"
    assert lines[2] == "exact loss at m = 30: 30.0000, fused: 30.0000"
    assert lines[3] == ("d loss/d z_true is exactly 0 for every margin >= 20.0 (all 2 of them: True); "
                        "fused gradient there: -1.0000 .. -1.0000")
    assert lines[4] == "a perfect prediction still costs -log(1 - 1e-7) in float32 = 1.192e-07"
    alive = keras_cce.clip_sweep(np.array([0.0, 1.0], np.float32))  # no gradient is exactly 0
    assert np.isnan(alive.dead_from)
    assert alive.text(CEILING).splitlines()[3] == "d loss/d z_true is never exactly 0 on these margins"


def test_softmax_cases_keras_recovers_the_logits_except_from_eager_probabilities():
    z = tf.constant([[30.0, 0.0, -30.0]])
    y = tf.constant([[0.0, 0.0, 1.0]])
    r = keras_cce.softmax_cases(y, z)
    assert [round(v, 3) for _, _, v in r.cases] == [60.0, 60.0, round(CEILING, 3), 60.0,
                                                    round(CEILING, 3), 60.0]
    assert r.keras_layer_has_logits and not r.tf_softmax_has_logits
    lines = r.text(60.0).splitlines()
    assert lines[0] == ("exact loss (float64 oracle) = 60.0000;  has _keras_logits: Keras Softmax "
                        "layer output True, tf.nn.softmax output False")
    assert lines[4] == f"{'tf.nn.softmax, eager':46s} {'probabilities only':26s} {CEILING:8.4f}"


def test_loss_and_warnings_records_every_warning():
    def warn_twice() -> float:
        warnings.warn("one", stacklevel=1)
        warnings.warn("one", stacklevel=1)
        return 2
    assert keras_cce.loss_and_warnings(warn_twice) == (2.0, ["one", "one"])
    z, y = tf.constant([[30.0, 0.0, -30.0]]), tf.constant([[0.0, 0.0, 1.0]])
    value, messages = keras_cce.loss_and_warnings(
        lambda: keras.losses.CategoricalCrossentropy(from_logits=True)(y, keras.layers.Softmax()(z)))
    assert value == pytest.approx(60.0, abs=1e-3) and len(messages) == 1 and "from_logits=True" in messages[0]


def test_training_losses_are_the_four_ways():
    runs = keras_cce.training_losses()
    assert {n: c for n, (_, c) in runs.items()} == {
        "Keras softmax layer": True, "tf.nn.softmax, eager loop": False,
        "tf.nn.softmax, tf.function loop": True, "from_logits=True": True}
    y = tf.one_hot([2], 3)
    z = tf.constant([[30.0, 0.0, -30.0]])
    values = {n: float(fn(y, z)) for n, (fn, _) in runs.items()}
    assert values["tf.nn.softmax, eager loop"] == pytest.approx(CEILING, abs=1e-4)
    assert values["from_logits=True"] == pytest.approx(60.0) == values["Keras softmax layer"]


def test_train_four_ways_runs_each_loss_from_the_same_seed(op_determinism):
    rng = np.random.default_rng(0)
    ds = SimpleNamespace(x_train=rng.integers(0, 256, (64, 28, 28)).astype(np.uint8),
                         y_train=rng.integers(0, 10, 64), x_test=rng.integers(0, 256, (16, 28, 28)).astype(np.uint8),
                         y_test=rng.integers(0, 10, 16))
    h = keras_cce.train_four_ways(ds, steps=2, batch_size=8, learning_rate=1e-3, seed=0,
                                  eval_every=1, progress=False)
    assert list(h) == list(keras_cce.training_losses())
    assert h["Keras softmax layer"].loss == h["from_logits=True"].loss == h["tf.nn.softmax, tf.function loop"].loss
    assert h["tf.nn.softmax, eager loop"].loss[0] <= CEILING + 1e-4  # clipped: capped
    assert h["from_logits=True"].loss[0] > CEILING  # stddev-1 logits: a wrong example costs its margin


def test_format_training():
    h = History(loss=[5.0, 4636.1], zero_grad_fraction=[0.5, 0.75],
                zero_grad_wrong_fraction=[0.0, float("nan")], final_test_accuracy=0.917)
    lines = keras_cce.format_training({"from_logits=True": h}).splitlines()
    assert lines[0] == "run                              test acc final loss zero-grad, all zero-grad, wrong"
    assert lines[1] == "from_logits=True                    91.7%     4636.1            62%               0%"


def test_reductions_label_smoothing_and_their_lines():
    rng = np.random.default_rng(7)
    t = np.eye(5, dtype=np.float32)[rng.integers(0, 5, size=10)]
    p = tf.nn.softmax(rng.normal(size=(10, 5)).astype(np.float32)).numpy()
    per_example = keras.losses.categorical_crossentropy(t, p).numpy()
    r = keras_cce.reductions(t, p)
    assert list(r) == ["sum_over_batch_size", "sum", "none"]
    assert r["sum_over_batch_size"] == pytest.approx(per_example.mean(), abs=1e-6)
    assert r["sum"] == pytest.approx(per_example.sum(), abs=1e-5)
    np.testing.assert_allclose(r["none"], per_example)
    smooth = keras_cce.label_smoothing(t, p, 0.1)
    assert smooth.classes == 5 and smooth.smoothing == 0.1
    np.testing.assert_array_equal(  # the same targets as the notebook's 0.9 * y + 0.1 / 5
        smooth.by_hand, keras.losses.categorical_crossentropy(t * 0.9 + 0.1 / 5, p).numpy())
    np.testing.assert_allclose(smooth.keras, smooth.by_hand, atol=1e-6)
    lines = keras_cce.format_reductions(r, per_example, smooth).splitlines()
    assert lines[0] == f"CategoricalCrossentropy(reduction='sum_over_batch_size') -> shape (), value {per_example.mean():.4f}"
    assert lines[2] == f"CategoricalCrossentropy(reduction='none') -> shape (10,), value {np.round(r['none'], 4)}"
    assert lines[4] == "default reduction: sum_over_batch_size"
    assert lines[5].startswith("label_smoothing=0.1 == targets 0.9*y + 0.1/5: max diff ")


def test_target_errors_soft_targets_are_exact_too():
    logits = np.array([[2.0, 1.0, 0.5, -1.0, 0.0]], np.float32)
    targets = {"one-hot": np.eye(5, dtype=np.float32)[[3]],
               "soft": np.array([[0.7, 0.2, 0.1, 0.0, 0.0]], np.float32)}
    errors, text = keras_cce.target_errors(targets, logits)
    assert list(errors) == ["one-hot", "soft"] and max(errors.values()) < 1e-5
    assert text.splitlines()[1] == "soft          target [0.7 0.2 0.1 0.  0. ]: Keras 0.9244, |Keras - exact| < 1e-5: True"


def test_v1_against_v2_differ_only_in_the_gradient_into_the_labels():
    v = keras_cce.v1_against_v2(np.array([[0.7, 0.2, 0.1, 0.0, 0.0]], np.float32),
                                np.array([[2.0, 1.0, 0.5, -1.0, 0.0]], np.float32))
    assert v.same_values and v.v2_label_grad and v.v1_label_grad is None
    assert v.text().splitlines() == [
        "tf.nn.softmax_cross_entropy_with_logits: gradient into the labels = -log_softmax(logits): True",
        "tf.compat.v1.nn.softmax_cross_entropy_with_logits: gradient into the labels: None",
        "v1 and v2 compute the same loss values: True"]
