"""Notebook 01's helpers (xentlab.batch_mean): agreement, comparison with document 000, the
sum-vs-mean sweep, its table, summary and prose."""

from __future__ import annotations

from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf

from xentlab import batch_mean, documents
from xentlab.train import History

LN10 = float(np.log(10.0))


def test_agreement_errors_against_the_oracle_and_xentlab_losses_and_their_text():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, size=6)
    logits = tf.constant(rng.normal(size=(6, 10)), tf.float32)
    vector = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    err_oracle, err_losses = batch_mean.agreement_errors(labels, logits, vector)
    assert err_oracle <= 1e-5 and err_losses <= 1e-6
    assert batch_mean.agreement_text(err_oracle, err_losses) == (
        "per-example losses match the float64 oracle (within 1e-5): True\n"
        "xentlab.losses.sparse_softmax_cross_entropy agrees: True")
    off = batch_mean.agreement_errors(labels, logits, vector + 1e-3)
    assert off == (pytest.approx(1e-3, rel=1e-2), pytest.approx(1e-3, rel=1e-2))
    assert batch_mean.agreement_text(*off).count("False") == 2


def test_compare_with_document_reproduces_the_documents_self_consistency():
    doc = np.array(documents.value("000.per_example_losses"), np.float32)
    doc_mean = documents.value("000.mean")
    ours = doc + np.float32(0.01)
    c = batch_mean.compare_with_document(ours, doc, float(np.mean(ours)), doc_mean)
    assert c.document_consistent  # document 000's printed mean is the reduce_mean of its vector
    assert c.se_document == pytest.approx(doc.std(ddof=1) / np.sqrt(10), rel=1e-6)
    assert c.se_ours == pytest.approx(c.se_document, rel=1e-4)  # a shift keeps the spread
    assert c.se_diff == pytest.approx(np.hypot(c.se_ours, c.se_document))
    assert not batch_mean.compare_with_document(ours, doc, 0.0, doc_mean + 0.1).document_consistent
    with pytest.raises(ValueError, match="at least 2"):
        batch_mean.compare_with_document(ours[:1], doc, 0.0, doc_mean)


def test_comparison_texts_are_the_notebooks_lines():
    doc = np.array([2.0, 2.2], np.float32)
    ours = np.array([2.1, 2.3], np.float32)
    c = batch_mean.Comparison(ours, doc, 2.2, 2.1, True, 0.1, 0.1, float(np.hypot(0.1, 0.1)))
    lines = c.lines(2.25, LN10).splitlines()
    assert lines[0] == f"document's ten losses: {doc} -> printed mean 2.1"
    assert lines[1] == f"ours (dropout on):     {np.round(ours, 4)} -> mean 2.2000 (2.2500 dropout off)"
    assert lines[2] == "reduce_mean of the document's ten printed values == its printed mean: True"
    assert lines[3] == ("ours - document = +0.1000 (standard error 0.1414); "
                        "ours - ln 10 = -0.1026 (standard error 0.1000)")
    assert c.printed_vector_text() == (
        "our ten losses 2.100 to 2.300, mean 2.2000; difference from the document's mean +0.1000 "
        "(standard error 0.1414); its printed mean is the reduce_mean of its vector: True")
    assert c.initial_loss_text(LN10) == (
        "mean 2.2000 (dropout on) against the document's 2.1000: difference +0.1000, standard "
        "error 0.1414; mean − ln 10 = -0.1026")


def test_optimizer_for():
    assert batch_mean.optimizer_for("sgd", 0.1, 1e-3) == "sgd"
    assert batch_mean.optimizer_for("adam", 0.1, 1e-3) == "adam"
    opt = batch_mean.optimizer_for("adam, large eps", 0.01, 1e-3)
    assert isinstance(opt, keras.optimizers.Adam) and opt.epsilon == 1e-3
    with pytest.raises(ValueError, match="unknown optimizer"):
        batch_mean.optimizer_for("rmsprop", 0.1, 1e-3)


def _tiny_data(n: int = 64) -> SimpleNamespace:
    rng = np.random.default_rng(0)
    return SimpleNamespace(x_train=rng.integers(0, 256, (n, 28, 28)).astype(np.uint8),
                           y_train=rng.integers(0, 10, n), x_test=rng.integers(0, 256, (32, 28, 28)).astype(np.uint8),
                           y_test=rng.integers(0, 10, 32))


def _tiny_net(*, seed: int, units: int) -> keras.Model:
    model = keras.Sequential([keras.layers.Input((28, 28)), keras.layers.Flatten(),
                              keras.layers.Rescaling(1 / 255),
                              keras.layers.Dense(units, kernel_initializer=keras.initializers.GlorotUniform(seed))])
    return model


def test_run_sweep_trains_every_optimizer_batch_size_and_reduction_in_order():
    sweep, trained = batch_mean.run_sweep(
        _tiny_data(), {"sgd": 0.1, "adam, large eps": 0.01},
        {"sgd": ("mean", "sum", "sum/B"), "adam, large eps": ("mean", "sum")},
        batch_sizes=[4, 8], examples_per_run=16, adam_large_epsilon=1e-3, width={"units": 10},
        eval_size=16, seed=0, progress=False, build=_tiny_net)
    assert list(sweep) == [("sgd", 4, "mean"), ("sgd", 4, "sum"), ("sgd", 4, "sum/B"),
                           ("sgd", 8, "mean"), ("sgd", 8, "sum"), ("sgd", 8, "sum/B"),
                           ("adam, large eps", 4, "mean"), ("adam, large eps", 4, "sum"),
                           ("adam, large eps", 8, "mean"), ("adam, large eps", 8, "sum")]
    assert list(trained) == list(sweep)
    assert [sweep[k].config["steps"] for k in sweep] == [4, 4, 4, 2, 2, 2, 4, 4, 2, 2]
    assert sweep["sgd", 8, "sum/B"].config["learning_rate"] == pytest.approx(0.1 / 8)
    assert sweep["sgd", 8, "sum"].config["learning_rate"] == pytest.approx(0.1)
    assert sweep["adam, large eps", 4, "sum"].config["optimizer"] == "Adam"
    # the same weights and batches: the sum's loss is the batch size times the mean's at step 0
    assert sweep["sgd", 4, "sum"].loss[0] == pytest.approx(4 * sweep["sgd", 4, "mean"].loss[0], rel=1e-5)


def _history(acc: float, diverged_at: int | None = None) -> History:
    return History(final_test_accuracy=acc, diverged_at=diverged_at, final_loss=0.5,
                   config={"steps": 3})


def _fake_sweep() -> dict:
    acc = {("sgd", 16): (0.94, 0.11, 0.94), ("sgd", 128): (0.84, 0.11, 0.83),
           ("adam", 16): (0.95, 0.955), ("adam", 128): (0.91, 0.909),
           ("adam, large eps", 16): (0.949, 0.955), ("adam, large eps", 128): (0.817, 0.91)}
    sweep = {}
    for (opt, b), values in acc.items():
        for variant, a in zip(("mean", "sum", "sum/B"), values, strict=False):
            sweep[opt, b, variant] = _history(a, 7 if (opt, b, variant) == ("sgd", 128, "sum") else None)
    return sweep


class _Constant:
    """A 'model' whose logits are a constant row (spread 0) or vary with the input."""

    def __init__(self, constant: bool):
        self.constant = constant

    def __call__(self, x: np.ndarray) -> np.ndarray:
        z = np.zeros((len(x), 10), np.float32)
        return z if self.constant else z + np.arange(len(x), dtype=np.float32)[:, None]


def test_accuracy_table_summary_and_texts():
    sweep = _fake_sweep()
    trained = {k: _Constant(k == ("sgd", 16, "sum")) for k in sweep}
    table = batch_mean.accuracy_table(sweep, trained, np.zeros((5, 28, 28), np.uint8))
    assert list(table) == [",".join(map(str, k)) for k in sweep]
    assert table["sgd,16,sum"] == {"test_accuracy": 0.11, "diverged_at": None, "final_loss": 0.5,
                                   "steps": 3, "logit_spread": 0.0, "spread_examples": 5}
    assert table["sgd,16,mean"]["logit_spread"] == pytest.approx(np.std(np.arange(5)))

    text = batch_mean.format_accuracy_table(sweep, 8192).splitlines()
    assert text[0] == "test accuracy after 8192 examples (NaN/Inf stops a run: 'div@step')"
    assert text[1] == "optimizer       batch        mean         sum   sum, lr/B"
    assert text[2] == "sgd                16       0.940       0.110       0.940"
    assert text[3] == "sgd               128       0.840   0.110 div@7       0.830"
    assert text[6] == "adam, large eps    16       0.949       0.955"

    s = batch_mean.summarise(sweep, table, [16, 128])
    assert s.adam_gap == pytest.approx(0.005)
    assert s.eps_lead == pytest.approx({16: 0.006, 128: 0.093})
    assert s.eps_gap == pytest.approx(0.093)
    assert s.sgd_rescaled_gap == pytest.approx(0.01)
    assert s.sgd_sum_loss == pytest.approx(0.73)
    assert s.dead == [16] and s.mean_falls and s.spread_examples == 5
    assert list(s.metric()) == ["adam_max_gap", "adam_large_eps_max_lead_of_sum", "sgd_rescaled_max_gap",
                                "sgd_sum_min_accuracy_loss", "sgd_sum_constant_prediction_batch_sizes"]
    assert batch_mean.summary_text(s, 1e-3).splitlines() == [
        "Adam: largest |accuracy(sum) - accuracy(mean)| = 0.005; with eps 0.001: the sum ahead of "
        "the mean by up to 0.093",
        "SGD: largest |accuracy(sum, lr/B) - accuracy(mean)| = 0.010; sum at the mean's lr is worse "
        "by at least 0.73",
        "SGD sum at the mean's lr: constant prediction (logit spread < 1e-3) at batch sizes [16]"]

    md = batch_mean.sweep_markdown(s, batch_sizes=[16, 128], sgd_learning_rate=0.05,
                                   adam_large_epsilon=1e-3, examples_per_run=8192).splitlines()
    assert len(md) == 4
    assert "(16× to 128× here)" in md[0] and "at batch sizes [16] the network ends" in md[0]
    assert "across 5 test digits" in md[0] and "worse by at least 0.73" in md[0]
    assert "+0.006 at batch 16, +0.093 at batch 128" in md[2] and "8,192 examples" in md[2]
    assert "the sum ahead at every batch size tried" in md[2]
    assert md[3].endswith("falls with the batch size for every optimizer.")
    every = batch_mean.SweepSummary(**{**s.__dict__, "dead": [16, 128], "mean_falls": False})
    md = batch_mean.sweep_markdown(every, batch_sizes=[16, 128], sgd_learning_rate=0.05,
                                   adam_large_epsilon=1e-3, examples_per_run=8192).splitlines()
    assert "at every batch size tried the network" in md[0] and md[3].endswith("batch size).")
    # a difference of the other sign is worded as such (no "leads by -0.001", "worse by at least -0.02")
    behind = batch_mean.SweepSummary(**{**s.__dict__, "sgd_sum_loss": -0.02, "eps_gap": -0.001,
                                        "eps_lead": {16: -0.001, 128: 0.0}})
    lines = batch_mean.summary_text(behind, 1e-3).splitlines()
    assert lines[0].endswith("the sum not ahead of the mean at any batch size (largest difference -0.001)")
    assert lines[1].endswith("not worse at every batch size (smallest accuracy loss -0.02)")
    md = batch_mean.sweep_markdown(behind, batch_sizes=[16, 128], sgd_learning_rate=0.05,
                                   adam_large_epsilon=1e-3, examples_per_run=8192).splitlines()
    assert "worse by at least" not in md[0] and "(the sum ahead at no batch size;" in md[2]
    alive = batch_mean.SweepSummary(**{**s.__dict__, "dead": []})
    assert "nothing stops" not in batch_mean.sweep_markdown(
        alive, batch_sizes=[16, 128], sgd_learning_rate=0.05, adam_large_epsilon=1e-3,
        examples_per_run=8192)


def test_mean_loss_is_the_documents_reduce_mean():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(4, 10)).astype(np.float32)
    labels = np.array([1, 0, 9, 3], np.int64)
    expected = float(np.mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)))
    assert batch_mean.mean_loss(lambda x: tf.constant(x), logits, labels) == pytest.approx(expected, rel=1e-6)
