"""Document 002's experiment: its costs, its optimizer, and a run under each kernel set."""

import numpy as np
import pytest
import tensorflow as tf

from xentlab import collapse, losses, runtime


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
    there = collapse.run_with_kernels("fused", "mnist10k", onednn=same, **kw)
    assert there["loss"] == here.loss and there["final_test_accuracy"] == here.final_test_accuracy
    with pytest.raises(ValueError, match="unknown dataset"):
        collapse.run_with_kernels("fused", "cifar", onednn=True, **kw)
