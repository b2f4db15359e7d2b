"""Document 002's experiment: its costs, its optimizer, and a run under each kernel set."""

import numpy as np
import pytest
import tensorflow as tf

from xentlab import collapse, losses, runtime, train


def test_document_loss_sums_methods_1_and_2_and_averages_method_3():
    labels = tf.one_hot([0, 1, 2], 4)
    logits = tf.constant(np.random.default_rng(0).normal(size=(3, 4)), tf.float32)
    per_example = losses.softmax_cross_entropy(labels, logits, method="fused").numpy()
    assert collapse.document_loss("log_softmax")(labels, logits).numpy() == pytest.approx(per_example.sum(), rel=1e-6)
    assert collapse.document_loss("fused")(labels, logits).numpy() == pytest.approx(per_example.mean(), rel=1e-6)
    assert collapse.document_loss("manual")(labels, logits).numpy() == pytest.approx(per_example.sum(), rel=1e-5)
    with pytest.raises(ValueError, match="unknown method"):
        collapse.document_loss("softmax")


def test_tf1_adam_has_tensorflow_1s_epsilon():
    opt = collapse.tf1_adam()
    assert opt.epsilon == 1e-8 and float(opt.learning_rate) == pytest.approx(1e-3)
    assert collapse.tf1_adam() is not opt  # a fresh optimizer per run


@pytest.mark.slow
def test_a_run_in_a_fresh_process_equals_the_same_run_here():
    """Weights, batches and dropout masks depend only on the seed: under the same kernels a
    subprocess run repeats this process' run exactly."""
    from xentlab import config, data

    kw = {"steps": 3, "batch_size": 8, "eval_every": 3, "eval_size": 50, "seed": 1}
    runtime.seed(1)
    with runtime.op_determinism(True):  # as the subprocess runs it
        here = collapse.run("fused", data.load("mnist10k"), **kw)
    same = config.kernel_set()["onednn"]
    there = collapse.run_under_kernels("fused", "mnist10k", onednn=same, **kw)
    assert there["loss"] == here.loss and there["final_test_accuracy"] == here.final_test_accuracy
    with pytest.raises(ValueError, match="unknown dataset"):
        collapse.run_under_kernels("fused", "cifar", onednn=True, **kw)


def _history(acc: float, zero_steps: int, counts: list[int], **kw) -> train.History:
    base = dict(step=[0, 100, 200], grad_norm=[0.0, 0.5, 0.0], train_accuracy=[0.1, 0.12, 0.09],
                test_accuracy=[0.1, 0.11, 0.1], zero_fraction=[0.9, 0.9, 0.8], final_test_accuracy=acc,
                final_eval_accuracy=acc, steps_run=300, zero_grad_steps=zero_steps,
                test_prediction_counts=counts)
    return train.History(**{**base, **kw})


def test_manual_facts_and_the_runs_table():
    collapsed = _history(0.1135, 290, [0] * 4 + [10000] + [0] * 5)
    facts = collapse.manual_facts(collapsed)
    assert facts["classes_predicted"] == 1 and facts["zero_gradient_fraction"] == pytest.approx(290 / 300)
    table = collapse.runs_table({"manual (oneDNN)": collapsed})
    assert "0.1135" in table and "96.7%" in table and "1 of 10" in table


def test_log_comparison_matches_steps_and_measures_the_gap():
    ours = {n: _history(0.98, 0, [1] * 10, step=[0, 1000, 2000], train_accuracy=[0.1, 0.9, 0.97])
            for n in ("log_softmax", "fused")}
    ours["manual"] = _history(0.1, 300, [1] * 10, step=[0, 1000, 2000], train_accuracy=[0.1, 0.12, 0.1])
    doc = {"manual": [(0, 0.1), (1000, 0.15), (3000, 0.1)], "log_softmax": [(1000, 0.92), (2000, 0.99)],
           "fused": [(1000, 0.92), (2000, 0.99)]}
    logs = collapse.log_comparison(ours, doc)
    assert [s for s, *_ in logs["common"]["manual"]] == [0, 1000]
    assert logs["late_gap"]["fused"] == pytest.approx(0.02)


def test_training_text_names_the_class_a_collapsed_network_answers():
    y_test = np.repeat(np.arange(10), 100)
    collapsed = _history(0.1, 290, [0, 0, 1000] + [0] * 7)
    working = {n: _history(0.98, 0, [100] * 10) for n in ("log_softmax", "fused")}
    text = collapse.training_text({"manual": collapsed, **working},
                                  {"oneDNN": collapsed, "Eigen": collapsed}, [0.04, 0.17], y_test,
                                  "mnist", 0.1)
    assert "answers 2 for every one of the 1,000 test digits" in text
    assert "exactly the share of 0s" in text  # every class holds 10% of this test set


def test_kernel_budget_and_summary_texts():
    eigen = {"grad_norm": 0.07, "one_hot_rows": 0.4, "largest_below_1": 0.99999994, "single_row_top": 1.0,
             "zero_outputs": 0.85}
    assert "0.07, not 0" in collapse.kernel_text({"oneDNN": {}, "Eigen": eigen}, 128)
    assert "exactly 0 too" in collapse.kernel_text({"oneDNN": {}, "Eigen": {**eigen, "grad_norm": 0.0}}, 128)
    h = {n: _history(a, 0, [1] * 10) for n, a in zip(collapse.METHODS, (0.1, 0.98, 0.97), strict=True)}
    doc = {"manual": 0.1032, "log_softmax": 0.987, "fused": 0.987}
    assert "the document: 0.1032, 0.987, 0.987 after 20,000" in collapse.budget_text(h, 300, 20000, doc,
                                                                                     untested=True)
    assert "has the document's budget" in collapse.budget_text(h, 20000, 20000, doc, untested=False)
    runs = {k: {"test_accuracy": 0.1, "zero_gradient_fraction": 0.9} for k in ("oneDNN", "Eigen")}
    kw = {"verdicts": {}, "max_abs_logit": 3e3, "positional_swaps": True, "steps": 300}
    text = collapse.summary_text(h, runs, smaller_inits_manual=[0.8, 0.9], untested=True, **kw)
    assert "stays at chance" in text and "untested by this budget" in text and "saturated logits" in text
    trained = collapse.summary_text(h, {**runs, "Eigen": {**runs["Eigen"], "test_accuracy": 0.6}},
                                    smaller_inits_manual=[0.2], untested=False, **kw)
    assert "trains only in part" in trained and "saturated logits" not in trained


def test_positional_call_swaps_labels_and_logits():
    call = collapse.positional_call(0)
    np.testing.assert_array_equal(call["positional"], call["swapped"])
    assert not np.allclose(call["positional"], call["keyword"]) and "labels" in call["signature"]


def test_single_digit_probe_picks_a_wrong_digit_and_caps_method_1():
    from xentlab import data, models

    ds = data.load("mnist10k")
    net = models.RawCNN(init_stddev=1.0, dropout_rate=collapse.DROPOUT_RATE, seed=0)
    probe = collapse.single_digit_probe(net, ds.x_train[:32], ds.y_train[:32])
    assert np.argmax(probe["softmax"]) != ds.y_train[probe["index"]]
    assert probe["method_1"] == pytest.approx(23.02585, abs=2e-6) and probe["method_2"] > 100


def test_sweeps_reuse_the_runs_they_already_have():
    h = {n: _history(0.9, 0, [1] * 10, step=[0, 60], test_accuracy=[0.1, 0.77]) for n in collapse.METHODS}
    rows = collapse.init_sweep(None, h, (1.0,), sweep_steps=60, eval_every=60, steps=300)
    assert rows[(1.0, "fused")]["accuracy"] == 0.77  # read off the document-init run, nothing trained
    doc = {"accuracy": 0.5}
    assert collapse.epsilon_sweep(None, (1e-10,), doc, init_stddev=0.1, sweep_steps=60) == {1e-10: doc}
