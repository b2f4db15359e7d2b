"""Tests for xentlab.multilabel (pairs, decision rules, metrics, losses)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from xentlab import losses, multilabel
from xentlab.multilabel import (
    MLP,
    choose_per_class_thresholds,
    choose_threshold,
    exact_set_accuracy,
    f1_per_label,
    macro_f1,
    make_pairs,
    per_example_loss,
    predict_sets,
)


def _digits(n: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Fake digit images whose pixels encode their own index, with labels 0..9 cycling."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    images[:, 0, 0] = np.arange(n)  # marker: which source image this is
    return images, (np.arange(n) % 10).astype(np.int64)


# ---------------------------------------------------------------- pairs
def test_pairs_shapes_and_dtypes():
    images, labels = _digits()
    p = make_pairs(images, labels, 37, seed=1)
    assert len(p) == 37
    assert p.x.shape == (37, 28, 56) and p.x.dtype == np.uint8
    assert p.y.shape == (37, 10) and p.y.dtype == np.float32
    assert p.digits.shape == (37, 2) and p.index.shape == (37, 2)


def test_pairs_halves_and_label_sets():
    images, labels = _digits()
    p = make_pairs(images, labels, 400, seed=2)
    np.testing.assert_array_equal(p.x[:, :, :28], images[p.index[:, 0]])
    np.testing.assert_array_equal(p.x[:, :, 28:], images[p.index[:, 1]])
    np.testing.assert_array_equal(p.digits, labels[p.index])
    for y, (a, b) in zip(p.y, p.digits, strict=True):
        assert set(np.flatnonzero(y)) == {a, b}
    same = p.digits[:, 0] == p.digits[:, 1]
    np.testing.assert_array_equal(p.y.sum(1), np.where(same, 1.0, 2.0))
    assert 0 < same.mean() < 0.3  # about one pair in ten has equal digits


def test_pairs_deterministic_by_seed():
    images, labels = _digits()
    a = make_pairs(images, labels, 20, seed=5)
    b = make_pairs(images, labels, 20, seed=5)
    c = make_pairs(images, labels, 20, seed=6)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.index, c.index)


@pytest.mark.parametrize(
    "images, labels, n",
    [
        (np.zeros((4, 28, 27), np.uint8), np.zeros(4, np.int64), 2),  # wrong image shape
        (np.zeros((4, 28, 28), np.uint8), np.zeros(3, np.int64), 2),  # label count
        (np.zeros((4, 28, 28), np.uint8), np.zeros(4, np.float32), 2),  # float labels
        (np.zeros((4, 28, 28), np.uint8), np.array([0, 1, 2, 10]), 2),  # out of range
        (np.zeros((4, 28, 28), np.uint8), np.array([0, -1, 2, 3]), 2),  # negative
        (np.zeros((4, 28, 28), np.uint8), np.zeros(4, np.int64), 0),  # n
        (np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int64), 2),  # empty
    ],
)
def test_pairs_bad_input(images, labels, n):
    with pytest.raises(ValueError):
        make_pairs(images, labels, n, seed=0)


# ---------------------------------------------------------------- decision rules
SCORES = np.array([
    [0.9, 0.8, 0.1],  # two pass at 0.5
    [0.3, 0.2, 0.1],  # none pass -> top-1 (class 0)
    [0.6, 0.7, 0.65],  # three pass
], np.float32)


def test_predict_sets_global_threshold_and_fallback():
    got = predict_sets(SCORES, 0.5)
    np.testing.assert_array_equal(got, [[1, 1, 0], [1, 0, 0], [1, 1, 1]])
    assert got.dtype == bool


def test_predict_sets_max_k_and_per_class():
    np.testing.assert_array_equal(predict_sets(SCORES, 0.5, max_k=2),
                                  [[1, 1, 0], [1, 0, 0], [0, 1, 1]])
    np.testing.assert_array_equal(predict_sets(SCORES, np.array([0.95, 0.5, 0.5])),
                                  [[0, 1, 0], [1, 0, 0], [0, 1, 1]])


def test_predict_sets_never_empty():
    rng = np.random.default_rng(0)
    s = rng.random((200, 10))
    assert predict_sets(s, 2.0).sum(1).min() == 1


@pytest.mark.parametrize(
    "scores, threshold, max_k",
    [
        (np.array([0.1, 0.2]), 0.5, None),  # rank 1
        (np.array([[1, 2]]), 0.5, None),  # integer scores
        (np.array([[np.nan, 0.2]]), 0.5, None),  # NaN
        (SCORES, np.array([0.5, 0.5]), None),  # wrong threshold length
        (SCORES, 0.5, 0),  # max_k
    ],
)
def test_predict_sets_bad_input(scores, threshold, max_k):
    with pytest.raises(ValueError):
        predict_sets(scores, threshold, max_k=max_k)


# ---------------------------------------------------------------- metrics
Y_TRUE = np.array([[1, 1, 0], [1, 0, 0], [0, 1, 1], [0, 0, 1]], bool)
Y_PRED = np.array([[1, 1, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1]], bool)


def test_exact_set_accuracy():
    assert exact_set_accuracy(Y_TRUE, Y_PRED) == 0.5
    assert exact_set_accuracy(Y_TRUE, Y_TRUE) == 1.0


def test_f1_per_label_by_hand():
    # class 0: tp 2, fp 0, fn 0 -> 1; class 1: tp 2, fp 1, fn 0 -> 4/5; class 2: tp 1, fn 1 -> 2/3
    np.testing.assert_allclose(f1_per_label(Y_TRUE, Y_PRED), [1.0, 0.8, 2 / 3])
    assert macro_f1(Y_TRUE, Y_PRED) == pytest.approx((1 + 0.8 + 2 / 3) / 3)


def test_f1_absent_label_never_predicted_is_one_and_all_wrong_is_zero():
    y = np.array([[1, 0], [1, 0]])
    np.testing.assert_allclose(f1_per_label(y, y), [1.0, 1.0])
    np.testing.assert_allclose(f1_per_label(y, 1 - y), [0.0, 0.0])


@pytest.mark.parametrize("y_pred", [Y_PRED[:2], Y_PRED * 2, Y_PRED[:, :2]])
def test_metrics_bad_input(y_pred):
    with pytest.raises(ValueError):
        exact_set_accuracy(Y_TRUE, y_pred)
    with pytest.raises(ValueError):
        f1_per_label(Y_TRUE, y_pred)


def test_choose_threshold_on_separable_scores():
    y = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 1]])
    s = np.array([[0.45, 0.4, 0.1], [0.9, 0.05, 0.05], [0.1, 0.2, 0.7]])
    t, acc = choose_threshold(s, y, np.linspace(0.05, 0.95, 19))
    assert acc == 1.0 and 0.2 < t <= 0.4
    with pytest.raises(ValueError):
        choose_threshold(s, y, np.array([]))


def test_choose_per_class_thresholds():
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    s = np.array([[0.9, 0.2], [0.1, 0.3], [0.8, 0.35], [0.2, 0.1]])
    t = choose_per_class_thresholds(s, y, np.array([0.05, 0.15, 0.25, 0.5, 0.85]))
    np.testing.assert_allclose(t, [0.25, 0.25])
    # last row: nothing passes -> top-1 (class 0)
    np.testing.assert_array_equal(predict_sets(s, t), [[1, 0], [0, 1], [1, 1], [1, 0]])
    with pytest.raises(ValueError):
        choose_per_class_thresholds(s, y[:, :1], np.array([0.5]))


# ---------------------------------------------------------------- losses and network
def test_losses_values_and_linearity():
    y = tf.constant([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    z = tf.constant([[2.0, 1.0, -1.0], [0.5, 0.0, 3.0]])
    sig = multilabel_loss("sigmoid")(y, z).numpy()
    p = 1 / (1 + np.exp(-z.numpy()))
    expected = np.mean(-np.sum(y * np.log(p) + (1 - y) * np.log(1 - p), axis=1))
    assert sig == pytest.approx(expected, rel=1e-5)
    norm = multilabel_loss("softmax_normalised")(y, z).numpy()
    raw = multilabel_loss("softmax_multihot")(y, z).numpy()
    logp = z.numpy() - np.log(np.exp(z.numpy()).sum(1, keepdims=True))
    per = -np.sum(y.numpy() * logp, axis=1)  # raw multi-hot CE per example
    assert raw == pytest.approx(per.mean(), rel=1e-5)
    assert norm == pytest.approx(np.mean(per / y.numpy().sum(1)), rel=1e-5)
    with pytest.raises(ValueError):
        multilabel_loss("hinge")


def multilabel_loss(name):
    return losses.reduced(per_example_loss(name), "mean")


@pytest.mark.parametrize("deterministic", [False, True])
def test_softmax_multihot_gradients(op_determinism, deterministic):
    op_determinism(deterministic)
    y = tf.constant([[1.0, 1.0, 0.0]])
    z = tf.Variable([[2.0, 1.0, -1.0]])
    p = tf.nn.softmax(z).numpy()
    with tf.GradientTape(persistent=True) as tape:
        kernel = multilabel_loss("softmax_multihot")(y, z)
        auto = multilabel_loss("softmax_multihot_autodiff")(y, z)
        public = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=y, logits=z))
    assert float(auto) == pytest.approx(float(kernel), rel=1e-6)  # same value ...
    # ... the kernel back-propagates softmax - y whatever the determinism setting,
    np.testing.assert_allclose(tape.gradient(kernel, z).numpy(), p - y.numpy(), atol=1e-6)
    # autodiff gives the true gradient softmax * sum(y) - y,
    np.testing.assert_allclose(tape.gradient(auto, z).numpy(), 2 * p - y.numpy(), atol=1e-6)
    # and the public op is the kernel by default but log_softmax-composed under op determinism.
    expected = 2 * p - y.numpy() if deterministic else p - y.numpy()
    np.testing.assert_allclose(tape.gradient(public, z).numpy(), expected, atol=1e-6)


def test_mlp_shapes_and_seed():
    x = tf.zeros([3, 28, 56], tf.uint8)
    a, b = MLP(28 * 56, hidden=8, seed=1), MLP(28 * 56, hidden=8, seed=1)
    assert a(x).shape == (3, 10)
    np.testing.assert_array_equal(a.w1.numpy(), b.w1.numpy())
    with pytest.raises(ValueError):
        MLP(0)


def test_losses_table_matches_functions():
    assert set(multilabel.LOSSES) == {"sigmoid", "softmax_normalised", "softmax_multihot",
                                      "softmax_multihot_autodiff"}
    y = tf.constant([[1.0, 0.0, 1.0]])
    z = tf.constant([[0.3, -1.0, 2.0]])
    for name in multilabel.LOSSES:
        assert np.isfinite(float(multilabel_loss(name)(y, z)))
        assert per_example_loss(name)(y, z).shape == (1,)


def test_evaluate_rules_scores_each_rule():
    y = np.array([[1, 0, 0], [0, 1, 1], [1, 1, 0], [0, 0, 1]], np.float32)
    perfect = np.where(y > 0, 0.9, 0.1)
    rows = multilabel.evaluate_rules(perfect, y, perfect, y, np.array([0.5]))
    assert [r["rule"] for r in rows] == list(multilabel.RULES)
    assert all(r["exact"] == 1.0 and r["macro_f1"] == 1.0 and r["exact_one"] == 1.0
               and r["exact_two"] == 1.0 and r["val_exact"] == 1.0 for r in rows)


def test_train_and_evaluate_learns_a_separable_task():
    x, y = _digits(60)
    pairs = {k: make_pairs(x, y, 200, seed=s) for k, s in (("train", 1), ("val", 2), ("test", 3))}
    hist, rows, largest = multilabel.train_and_evaluate(
        "sigmoid", pairs, np.array([0.3, 0.5]), seed=0, hidden=32, steps=40, batch_size=32,
        learning_rate=1e-2)
    assert hist.steps_run == 40 and len(rows) == len(multilabel.RULES) and largest > 0
    assert {r["loss"] for r in rows} == {"sigmoid"} and all(0 <= r["exact"] <= 1 for r in rows)


def test_summarise_means_and_ranges_over_seeds():
    rows = [{"loss": "sigmoid", "seed": s, "rule": rule, "threshold": 0.5, "exact": 0.6 + 0.2 * s,
             "macro_f1": 0.8, "exact_one": 0.9, "exact_two": 0.5 + 0.1 * s, "val_exact": 0.5,
             "val_macro_f1": 0.7}
            for s in (0, 1) for rule in multilabel.RULES]
    summary = multilabel.summarise(rows)
    assert list(summary) == [("sigmoid", rule) for rule in multilabel.RULES]
    entry = summary[("sigmoid", multilabel.RULES[0])]
    assert entry["exact"] == pytest.approx(0.7) and entry["exact_range"] == pytest.approx(0.2)
    assert entry["macro_f1_range"] == 0.0 and entry["exact_two"] == pytest.approx(0.55)
    table = multilabel.format_summary(summary).splitlines()
    assert len(table) == 1 + len(multilabel.RULES) and "0.700 [0.200]" in table[1]


def test_chosen_rules_choose_on_validation_and_report_test():
    def entry(val, test):
        return {"val_exact": val, "exact": test, "val_macro_f1": test, "macro_f1": val}

    r1, r2, r3 = multilabel.RULES
    summary = {("sigmoid", r1): entry(0.5, 0.99), ("sigmoid", r2): entry(0.8, 0.6), ("sigmoid", r3): entry(0.7, 0.9)}
    assert multilabel.chosen_rules(summary) == {"sigmoid": {"rule": r2, "val": 0.8, "test": 0.6}}
    assert multilabel.chosen_rules(summary, "macro_f1")["sigmoid"]["rule"] == r1  # its val_macro_f1 is 0.99


def test_run_study_covers_every_loss_and_seed():
    x, y = _digits(40)
    pairs = {k: make_pairs(x, y, 120, seed=s) for k, s in (("train", 1), ("val", 2), ("test", 3))}
    hists, rows, largest = multilabel.run_study(pairs, np.array([0.5]), seeds=2, hidden=8, steps=3,
                                                batch_size=16, learning_rate=1e-2)
    assert set(hists) == {(n, s) for n in multilabel.LOSSES for s in (0, 1)}
    assert len(rows) == 2 * len(multilabel.LOSSES) * len(multilabel.RULES)
    assert set(largest) == set(multilabel.LOSSES) and all(v > 0 for v in largest.values())


def test_multihot_gradients_kernel_is_softmax_minus_y_and_autodiff_the_true_gradient():
    y = np.array([[1.0, 1.0, 0.0, 0.0]])
    g = multilabel.multihot_gradients([[2.0, 1.0, -1.0, 0.5]], y)
    np.testing.assert_allclose(g["kernel_value"], g["autodiff_value"], rtol=1e-6)  # the same value
    np.testing.assert_allclose(g["kernel_grad"], g["softmax"] - y, atol=1e-6)
    np.testing.assert_allclose(g["autodiff_grad"], 2 * g["softmax"] - y, atol=1e-6)
    lines = multilabel.format_multihot_gradients(g, None).splitlines()
    assert lines[0] == "softmax_cross_entropy_with_logits (fused kernel) on multi-hot labels raises an error: no"
    assert lines[1] == f"value: kernel {float(g['kernel_value'][0]):.5f}, autodiff {float(g['autodiff_value'][0]):.5f}"
    assert lines[2] == f"gradient, kernel  : {np.round(g['kernel_grad'][0], 4)} = softmax - y"
    assert lines[3].endswith("= 2 softmax - y") and len(lines) == 4
    assert multilabel.format_multihot_gradients(g, "InvalidArgumentError: x").splitlines()[0].endswith(
        "raises an error: InvalidArgumentError: x")


@pytest.mark.parametrize("deterministic", [False, True])
def test_multihot_gradients_run_the_kernel_in_every_determinism_setting(op_determinism, deterministic):
    op_determinism(deterministic)
    y = np.array([[1.0, 1.0, 0.0, 0.0]])
    g = multilabel.multihot_gradients([[2.0, 1.0, -1.0, 0.5]], y)
    np.testing.assert_allclose(g["kernel_grad"], g["softmax"] - y, atol=1e-6)


def test_split_pairs_share_no_digit_image_and_format_pairs():
    from types import SimpleNamespace

    x, y = _digits(50)
    ds = SimpleNamespace(x_train=x[:40], y_train=y[:40], x_test=x[40:], y_test=y[40:])
    pairs = multilabel.split_pairs(ds, train=30, val=20, test=10)
    assert [len(pairs[k]) for k in ("train", "val", "test")] == [30, 20, 10]
    assert pairs["train"].index.max() < 32 and pairs["val"].index.max() < 8  # the first 80% / the other 20%
    assert set(pairs["val"].x[:, 0, 0].ravel()) <= set(range(32, 40))  # the marker pixel: source images
    np.testing.assert_array_equal(pairs["test"].x, make_pairs(x[40:], y[40:], 10, seed=103).x)
    lines = multilabel.format_pairs(pairs).splitlines()
    assert lines[0].startswith("train (30, 28, 56)  one-label (equal digits): ") and len(lines) == 3


CHOSEN = {"sigmoid": {"rule": multilabel.RULES[1], "val": 0.8, "test": 0.817},
          "softmax_normalised": {"rule": multilabel.RULES[1], "val": 0.8, "test": 0.835},
          "softmax_multihot": {"rule": multilabel.RULES[0], "val": 0.1, "test": 0.02},
          "softmax_multihot_autodiff": {"rule": multilabel.RULES[1], "val": 0.8, "test": 0.824}}
LARGEST = {"sigmoid": 20.0, "softmax_normalised": 10.0, "softmax_multihot": 2e5, "softmax_multihot_autodiff": 12.0}


def test_format_chosen_lines():
    lines = multilabel.format_chosen(CHOSEN, CHOSEN, LARGEST).splitlines()
    assert lines[0].startswith("rule chosen on validation (exact-set accuracy) and its test score per loss: "
                               "{'sigmoid': ('global threshold, at most 2', 0.817), ")
    assert lines[1].startswith("the same for macro F1: {") and len(lines) == 3
    assert lines[2] == ("largest |test logit|: {'sigmoid': '2e+01', 'softmax_normalised': '1e+01', "
                        "'softmax_multihot': '2e+05', 'softmax_multihot_autodiff': '1e+01'}")


def test_sigmoid_vs_softmax_margins_and_texts():
    best = {n: c["test"] for n, c in CHOSEN.items()}
    f1 = {**best, "sigmoid": 0.92, "softmax_normalised": 0.926}
    s = multilabel.sigmoid_vs_softmax(best, f1)
    assert s == {"sigmoid_best_exact": 0.817, "sigmoid_best_macro_f1": 0.92, "softmax_best_exact": 0.835,
                 "softmax_best_macro_f1": 0.926, "softmax_best_exact_loss": "softmax_normalised",
                 "softmax_best_macro_f1_loss": "softmax_normalised"}
    assert multilabel.margins_line(s).endswith("| margins (sigmoid - softmax) -0.018, -0.006")
    assert multilabel.sigmoid_text(s, seeds=2, steps=1500).endswith(
        "sigmoid 0.817, the better softmax loss of (b) and (d) 0.835 (softmax_normalised); macro F1 0.920 vs 0.926 "
        "(softmax_normalised) (2 seeds, 1,500 steps)")
    # the two metrics' best may come from different losses; (c) never counts, even when it scores highest
    s = multilabel.sigmoid_vs_softmax({**best, "softmax_multihot": 0.99},
                                      {**f1, "softmax_normalised": 0.9, "softmax_multihot_autodiff": 0.95})
    assert (s["softmax_best_exact"], s["softmax_best_exact_loss"]) == (0.835, "softmax_normalised")
    assert (s["softmax_best_macro_f1"], s["softmax_best_macro_f1_loss"]) == (0.95, "softmax_multihot_autodiff")
    assert "F1 0.950 (softmax_multihot_autodiff)" in multilabel.margins_line(s)
    scores = multilabel.multihot_scores(best, LARGEST)
    assert scores["best_exact_multihot_fused_kernel"] == 0.02 and scores["largest_abs_logit_multihot_fused_kernel"] == 2e5
    text = multilabel.labels_distribution_text(best, True)
    assert "is softmax − y;" in text and text.endswith("0.020 with it, 0.824 with the true gradient")
    assert "not softmax − y" in multilabel.labels_distribution_text(best, False)


def test_rule_text_compares_rules_and_losses():
    def entry(exact):
        return {"exact": exact}

    r1, r2, r3 = multilabel.RULES
    summary = {("sigmoid", r1): entry(0.75), ("sigmoid", r2): entry(0.817), ("sigmoid", r3): entry(0.76),
               ("softmax_normalised", r1): entry(0.7), ("softmax_normalised", r2): entry(0.835),
               ("softmax_normalised", r3): entry(0.7), ("softmax_multihot_autodiff", r1): entry(0.72),
               ("softmax_multihot_autodiff", r2): entry(0.824), ("softmax_multihot_autodiff", r3): entry(0.71)}
    md = multilabel.rule_text(summary, CHOSEN, CHOSEN, LARGEST, "partly")
    assert md.startswith("**What it means for the document's rule**")
    assert "+0.030 with 'global threshold', -0.018 with 'global threshold, at most 2', +0.050 with" in md
    assert "(c)'s largest |test logit| is 2e+05 against 1e+01 for (d)" in md
    assert "1. Test exact-set accuracy with each loss's rule chosen on the validation pairs: sigmoid 0.817 (" in md
    assert "the better softmax loss of (b) and (d) 0.835 (softmax_normalised); macro F1 0.817 against 0.835" in md
    assert "3. By the claim's thresholds neither sigmoid nor the better softmax loss came out clearly ahead" in md
    assert ("needs no count of the labels present: with 'global threshold' sigmoid scored 0.750, 0.030 ahead of the "
            "better softmax loss in exact-set accuracy. Across") in md
    assert md.endswith("spans 0.067; across the three working losses with each one's validation-chosen rule it "
                       "spans 0.018: here the rule mattered more than the loss.")
    assert "3. Sigmoid came out ahead" in multilabel.rule_text(summary, CHOSEN, CHOSEN, LARGEST, "reproduced")
    behind = multilabel.rule_text({**summary, ("sigmoid", r1): entry(0.69)}, CHOSEN, CHOSEN, LARGEST, "refuted")
    assert "3. The better softmax loss came out ahead of sigmoid. " in behind and "needs no count" not in behind
    assert ("yet that did not make a plain threshold work better here: with 'global threshold' sigmoid scored 0.690, "
            "0.030 behind the better softmax loss") in behind
    level = multilabel.rule_text({**summary, ("sigmoid", r1): entry(0.72)}, CHOSEN, CHOSEN, LARGEST, "partly")
    assert "sigmoid scored 0.720, level with the better softmax loss" in level
