"""What the five source documents printed, copied verbatim, with where each value comes from.

The documents are Chinese Q&A threads and blog posts about TensorFlow's cross-entropy ops. They
live outside this repository (``shared/seeds/<id>_<hash>.txt``) and are never read at run time:
every number and claim a notebook checks is copied here, with the seed file name and the 1-based
line range it was copied from, so a reader can look it up. ``tests/test_documents.py`` checks each
value against the seed files when they are present.

- :data:`PRINTED`: ``"<doc>.<name>"`` -> :class:`Printed` (value, source, lines, note).
- :func:`value`: ``PRINTED[key].value``, with a helpful :class:`KeyError`.
- :data:`EXCERPTS` / :func:`excerpt_markdown`: a short verbatim excerpt of each document's key code
  and output, for the top of a notebook.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Printed", "DOCUMENTS", "PRINTED", "EXCERPT_PARTS", "EXCERPTS", "EXCERPT_SEPARATOR",
    "value", "excerpt", "excerpt_lines", "excerpt_markdown",
]

#: Document id -> seed file name.
DOCUMENTS: dict[str, str] = {
    "000": "000_0c37df1317e85c45.txt",  # Q&A: why reduce_mean over sparse_softmax_cross_entropy_with_logits
    "001": "001_6f068e826eb9ea52.txt",  # blog: softmax + manual cross-entropy == softmax_cross_entropy_with_logits
    "002": "002_ca8a58ff690c3f70.txt",  # Q&A: three MNIST CNN losses, the manual one does not learn
    "003": "003_104f60bfdb9941db.txt",  # blog: sigmoid / softmax / sparse_softmax cross-entropy
    "004": "004_e0833cf8a2010675.txt",  # Q&A: Keras categorical_crossentropy explained
}


@dataclass(frozen=True)
class Printed:
    """One value a document printed (or stated), copied verbatim.

    Attributes:
        value: the number(s) exactly as printed (float, int, list) or the verbatim text (str).
        source: the seed file name, one of :data:`DOCUMENTS`' values.
        lines: 1-based first and last line of the seed file the value is on.
        note: one sentence saying what it is.
    """

    value: Any
    source: str
    lines: tuple[int, int]
    note: str


def _at(doc: str, first: int, last: int | None = None) -> tuple[str, tuple[int, int]]:
    """The ``(source, lines)`` of document ``doc``, lines ``first``..``last`` (default: one line)."""
    return DOCUMENTS[doc], (first, first if last is None else last)


def _log(accuracies: tuple[float, ...]) -> list[tuple[int, float]]:
    """Pair document 002's printed training accuracies with their steps (0, 100, ..., 19900)."""
    assert len(accuracies) == 200
    return list(zip(range(0, 20000, 100), accuracies, strict=True))


# Document 002, lines 94-293: "step <i>, training accuracy :<acc>" while training with method (1).
_LOG_METHOD1 = (
    0.109375, 0.0703125, 0.0546875, 0.109375, 0.132812, 0.0390625, 0.0859375, 0.0703125,
    0.109375, 0.101562, 0.140625, 0.0703125, 0.117188, 0.109375, 0.132812, 0.101562, 0.109375,
    0.125, 0.117188, 0.0859375, 0.078125, 0.09375, 0.117188, 0.0546875, 0.117188, 0.0859375,
    0.0703125, 0.078125, 0.117188, 0.09375, 0.0546875, 0.09375, 0.117188, 0.0703125, 0.125,
    0.132812, 0.0859375, 0.078125, 0.0859375, 0.109375, 0.101562, 0.140625, 0.0859375, 0.125,
    0.109375, 0.0859375, 0.09375, 0.117188, 0.132812, 0.0625, 0.09375, 0.078125, 0.09375,
    0.0859375, 0.0703125, 0.109375, 0.132812, 0.09375, 0.117188, 0.0703125, 0.078125, 0.078125,
    0.0703125, 0.09375, 0.09375, 0.117188, 0.0859375, 0.117188, 0.0859375, 0.078125, 0.109375,
    0.09375, 0.117188, 0.140625, 0.101562, 0.0703125, 0.101562, 0.0703125, 0.078125, 0.0859375,
    0.117188, 0.101562, 0.101562, 0.125, 0.125, 0.101562, 0.078125, 0.046875, 0.0859375,
    0.109375, 0.101562, 0.132812, 0.109375, 0.109375, 0.0859375, 0.101562, 0.117188, 0.0703125,
    0.0625, 0.0859375, 0.0625, 0.09375, 0.0859375, 0.09375, 0.078125, 0.148438, 0.101562, 0.125,
    0.109375, 0.109375, 0.0625, 0.0859375, 0.078125, 0.148438, 0.078125, 0.109375, 0.117188,
    0.09375, 0.078125, 0.0859375, 0.148438, 0.0859375, 0.09375, 0.101562, 0.078125, 0.109375,
    0.078125, 0.101562, 0.0625, 0.101562, 0.109375, 0.125, 0.0703125, 0.117188, 0.101562,
    0.140625, 0.132812, 0.109375, 0.148438, 0.09375, 0.109375, 0.0625, 0.125, 0.09375, 0.101562,
    0.132812, 0.09375, 0.132812, 0.148438, 0.109375, 0.117188, 0.125, 0.117188, 0.109375,
    0.0859375, 0.148438, 0.078125, 0.117188, 0.0859375, 0.09375, 0.078125, 0.109375, 0.101562,
    0.125, 0.109375, 0.109375, 0.078125, 0.117188, 0.125, 0.109375, 0.132812, 0.109375,
    0.117188, 0.148438, 0.0859375, 0.109375, 0.09375, 0.09375, 0.101562, 0.078125, 0.148438,
    0.09375, 0.171875, 0.101562, 0.078125, 0.109375, 0.0859375, 0.078125, 0.101562, 0.140625,
    0.0546875, 0.0859375, 0.0859375, 0.0859375, 0.078125, 0.117188, 0.078125, 0.117188,
    0.0859375, 0.148438,
)

# Document 002, lines 296-495: the one log shown for methods (2) and (3) ("和方法(2)和(3)是这样的").
_LOG_METHOD23 = (
    0.101562, 0.789062, 0.875, 0.921875, 0.929688, 0.953125, 0.960938, 0.96875, 0.960938,
    0.984375, 0.984375, 0.96875, 0.984375, 0.960938, 0.984375, 1.0, 1.0, 0.992188, 0.96875,
    0.96875, 1.0, 0.984375, 0.96875, 0.984375, 0.984375, 0.96875, 0.992188, 0.984375, 0.96875,
    0.984375, 0.992188, 0.976562, 1.0, 0.984375, 0.984375, 0.984375, 0.992188, 0.984375,
    0.984375, 0.984375, 0.96875, 1.0, 1.0, 1.0, 0.984375, 1.0, 0.984375, 0.984375, 1.0, 1.0,
    1.0, 0.984375, 0.992188, 0.992188, 1.0, 1.0, 1.0, 1.0, 1.0, 0.992188, 1.0, 1.0, 0.992188,
    0.992188, 0.992188, 0.992188, 0.992188, 1.0, 1.0, 1.0, 1.0, 1.0, 0.992188, 0.992188, 1.0,
    1.0, 0.992188, 1.0, 0.984375, 1.0, 1.0, 0.992188, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
    1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.992188, 0.992188, 1.0, 1.0, 1.0, 1.0, 0.992188, 1.0, 1.0,
    1.0, 0.992188, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.992188, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
    1.0, 0.992188, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.992188, 1.0, 1.0, 1.0, 1.0,
    1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
    0.992188, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.992188, 1.0, 1.0,
    1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
    0.992188, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
)

#: Key ``"<doc>.<name>"`` -> what the document printed or stated there.
PRINTED: dict[str, Printed] = {
    # --- 000: a TF1 CNN on MNIST (untrained), one batch of 10 through sparse_softmax_cross_entropy_with_logits
    "000.per_example_losses": Printed(
        [2.2213464, 2.2676413, 2.3555744, 2.3196406, 2.0794516,
         2.394274, 2.266591, 2.3139718, 2.345526, 2.3952296],
        *_at("000", 82),
        "The per-example losses sparse_softmax_cross_entropy_with_logits printed for a batch of 10.",
    ),
    "000.mean": Printed(
        2.2959247, *_at("000", 84),
        "tf.reduce_mean of those ten losses, as printed (their float32 mean is the same value).",
    ),
    "000.batch_size": Printed(
        10, *_at("000", 74), "The batch size the losses were printed for (mnist.train.next_batch(10)).",
    ),
    "000.dropout_call": Printed(
        "h_fc1_drop = tf.nn.dropout(h_fc1, 0.5)", *_at("000", 57),
        "Dropout with a fixed keep probability of 0.5 (the keep_prob placeholder is unused), "
        "so the printed losses were computed with dropout active.",
    ),
    "000.sum_then_mean": Printed(
        "sparse_vector是一个向量,我们应该计算它的求和,这就是为什么我们应该使用reduce_mean.", *_at("000", 21),
        "The answer: the vector should be summed, which is why reduce_mean is used.",
    ),
    "000.sparse_vector_repr": Printed(
        'Tensor("SparseSoftmaxCrossEntropyWithLogits/SparseSoftmaxCrossEntropyWithLogits:0", '
        "shape=(?,), dtype=float32)",
        *_at("000", 71),
        "The (commented) TF1 graph repr of the per-example loss: a vector of shape (batch,).",
    ),
    "000.mean_repr": Printed(
        'Tensor("Mean:0", shape=(), dtype=float32)', *_at("000", 72),
        "The (commented) TF1 graph repr of its reduce_mean: a scalar.",
    ),
    # --- 001: softmax then manual cross-entropy vs softmax_cross_entropy_with_logits
    "001.logits": Printed(
        [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [7.0, 4.0, 5.0], [7.0, 88.0, 5.0]],
        *_at("001", 23), "The input logits constant, 5 rows of 3 classes.",
    ),
    "001.labels": Printed(
        [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]],
        *_at("001", 27), "The one-hot labels constant (the last row's true class has logit 7 vs 88).",
    ),
    "001.softmax": Printed(
        [[9.0030573e-02, 2.4472848e-01, 6.6524094e-01],
         [9.0030573e-02, 2.4472848e-01, 6.6524094e-01],
         [9.0030573e-02, 2.4472848e-01, 6.6524094e-01],
         [8.4379470e-01, 4.2010065e-02, 1.1419519e-01],
         [6.6396770e-36, 1.0000000e+00, 8.9858262e-37]],
        *_at("001", 47, 51), "The printed tf.nn.softmax of the logits (float32).",
    ),
    "001.cross_entropy_manual": Printed(
        16.478533, *_at("001", 53),
        "reduce_mean(-reduce_sum(y_*log(softmax), axis=1)), the two-step cross-entropy.",
    ),
    "001.cross_entropy_fused": Printed(
        16.478533, *_at("001", 55),
        "reduce_mean(softmax_cross_entropy_with_logits(logits=logits, labels=y_)), the fused op.",
    ),
    # --- 002: MNIST CNN trained with three formulations of the same loss
    "002.method1_code": Printed(
        "cross_entropy_cnn = - y * tf.log(softmax + 1e-10)", *_at("002", 4),
        "Method (1): softmax, then log with a 1e-10 epsilon (reported as not learning).",
    ),
    "002.method1_epsilon": Printed(1e-10, *_at("002", 4), "The epsilon method (1) adds inside the log."),
    "002.method2_code": Printed(
        "cross_entropy_cnn = -y * tf.nn.log_softmax(pred)", *_at("002", 7),
        "Method (2): log_softmax of the logits.",
    ),
    "002.positional_call": Printed(
        "cost = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(pred, y))", *_at("002", 10),
        "Method (3) calls softmax_cross_entropy_with_logits positionally (logits, labels): "
        "the TF 0.x signature; TF >= 1.0 rejects positional arguments.",
    ),
    "002.positional_call_in_program": Printed(
        "# cost = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(pred, y)) #(method (3)",
        *_at("002", 71), "The same positional call, commented out in the full program.",
    ),
    "002.active_method_in_program": Printed(
        "cross_entropy_cnn = -y * tf.nn.log_softmax(pred) #method (2)", *_at("002", 74),
        "The loss line left active in the program as posted: method (2), summed (reduce_sum).",
    ),
    "002.learning_rate": Printed(0.001, *_at("002", 16), "Adam's learning rate."),
    "002.training_iters": Printed(20000, *_at("002", 17), "The declared number of training iterations."),
    "002.steps": Printed(20000, *_at("002", 84), "The steps the loop actually runs: range(20000)."),
    "002.batch_size_declared": Printed(
        100, *_at("002", 18), "The declared batch_size (unused: the loop draws 128).",
    ),
    "002.batch_size": Printed(
        128, *_at("002", 85), "The batch size the loop uses (mnist.train.next_batch(128)).",
    ),
    "002.display_step_declared": Printed(
        10, *_at("002", 19), "The declared display_step (unused: the loop logs every 100 steps).",
    ),
    "002.log_every": Printed(100, *_at("002", 86), "The loop logs the batch accuracy when i % 100 == 0."),
    "002.dropout_declared": Printed(
        0.75, *_at("002", 23), "dropout = 0.75, documented as the probability to keep units.",
    ),
    "002.keep_prob": Printed(0.75, *_at("002", 90), "The keep_prob fed to the training step."),
    "002.keep_prob_eval": Printed(
        1.0, *_at("002", 87), "The keep_prob fed when measuring the logged training-batch accuracy.",
    ),
    "002.training_log_method1": Printed(
        _log(_LOG_METHOD1), *_at("002", 94, 293),
        "(step, training-batch accuracy) pairs printed while training with method (1); chance level.",
    ),
    "002.test_accuracy_method1": Printed(
        0.1032, *_at("002", 294), "Test accuracy after 20000 steps with method (1).",
    ),
    "002.training_log_method23": Printed(
        _log(_LOG_METHOD23), *_at("002", 296, 495),
        "(step, training-batch accuracy) pairs of the single log shown for methods (2) and (3).",
    ),
    "002.test_accuracy_method23": Printed(
        0.987, *_at("002", 496), "Test accuracy after 20000 steps with methods (2) and (3).",
    ),
    "002.toy_labels": Printed([0, 1], *_at("002", 514), "Answer 1's toy label constant y."),
    "002.toy_logits": Printed([1.0, 1000.0], *_at("002", 516), "Answer 1's toy logits pred."),
    "002.toy_softmax": Printed(
        [0.0, 1.0], *_at("002", 530), "softmax([1, 1000]) as printed: the small entry underflows to 0.",
    ),
    "002.toy_method1_cost": Printed(
        -23.02585, *_at("002", 531),
        "reduce_sum(log(softmax + 1e-10)) on the toy logits: log(1e-10) for the underflowed entry.",
    ),
    "002.toy_method2_cost": Printed(
        -999.0, *_at("002", 532), "reduce_sum(log_softmax(pred)) on the toy logits: exact, 1 - 1000.",
    ),
    "002.single_digit_keep_prob": Printed(
        0.75, *_at("002", 543, 545), "The keep_prob fed for the single-image comparison (dropout on).",
    ),
    "002.single_digit_softmax": Printed(
        [[0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]], *_at("002", 547),
        "The untrained network's softmax for one MNIST image: saturated, one-hot at class 4.",
    ),
    "002.single_digit_method1": Printed(
        23.02585, *_at("002", 548), "Method (1)'s cost on that image: -log(1e-10), capped by the epsilon.",
    ),
    "002.single_digit_method2": Printed(
        17056.938, *_at("002", 549), "Method (2)'s cost on the same image: the uncapped cross-entropy.",
    ),
    # --- 003: sigmoid vs softmax vs sparse_softmax cross-entropy (blog)
    "003.computed_internally_more_efficiently": Printed(
        "也暗示用户不要将网络输出进行sigmoid或者softmax,这些过程可以在函数内部更高效地计算", *_at("003", 11),
        "Claim: don't apply sigmoid/softmax to the network output, the op computes it internally "
        "more efficiently.",
    ),
    "003.independent_not_exclusive": Printed(
        "独立不互斥", *_at("003", 32),
        "sigmoid_cross_entropy_with_logits is for classes that are independent, not mutually exclusive.",
    ),
    "003.multilabel_label_example": Printed(
        [1, 1, 0, 0, 1], *_at("003", 34), "The example multi-hot label for a 5-class multi-label task.",
    ),
    "003.sigmoid_loss_shape": Printed(
        "方法返回的loss的形状和labels是相同的,也是[batch_size, num_classes]", *_at("003", 36),
        "Claim: the sigmoid loss is element-wise, shaped like the labels [batch_size, num_classes].",
    ),
    "003.softmax_signature_dim": Printed(
        "    dim=-1,", *_at("003", 44),
        "The quoted softmax_cross_entropy_with_logits signature has _sentinel and dim=-1 (TF 1.x).",
    ),
    "003.independent_and_exclusive": Printed(
        "独立而且互斥", *_at("003", 48),
        "softmax_cross_entropy_with_logits is for classes that are independent and mutually exclusive.",
    ),
    "003.voc_one_class": Printed(
        "比如VOC classification、Imagenet、CIFAR-10甚至MNIST", *_at("003", 48),
        "Claim: VOC classification, like ImageNet, CIFAR-10 and MNIST, gives each image one class.",
    ),
    "003.imagenet_classes": Printed(
        1000, *_at("003", 50), "ILSVRC2012's number of classes, the one-hot label's length.",
    ),
    "003.softmax_loss_shape": Printed(
        "最后得到的是形状为[batch_size, 1]的loss", *_at("003", 52),
        "Claim: the softmax loss has shape [batch_size, 1] (TF returns [batch_size]).",
    ),
    "003.sparse_labels_shape": Printed(
        "但是labels的形状是[batch_size, 1]", *_at("003", 63),
        "Claim: sparse labels have shape [batch_size, 1] (TF wants [batch_size]).",
    ),
    "003.one_hot_use_dense": Printed(
        "如果已经对label进行了one hot编码,则可以直接使用tf.nn.softmax_cross_entropy_with_logits",
        *_at("003", 65), "Claim: with one-hot labels use the dense softmax op.",
    ),
    # --- 004: Keras categorical_crossentropy explained (Q&A, 2019-06-27)
    "004.epsilon_symbol": Printed(
        "epsilon = _to_tensor(_EPSILON, output.dtype.base_dtype)", *_at("004", 29),
        "Keras clips probabilities to [_EPSILON, 1 - _EPSILON]; the document gives no numeric value.",
    ),
    "004.clip": Printed(
        "output = tf.clip_by_value(output, epsilon, 1. - epsilon)", *_at("004", 30),
        "The clipping line of the probability branch (from_logits=False).",
    ),
    "004.manual_formula": Printed(
        "return - tf.reduce_sum(target * tf.log(output),", *_at("004", 31),
        "The manual cross-entropy of the probability branch, per example (last axis).",
    ),
    "004.from_logits_branch": Printed(
        "return tf.nn.softmax_cross_entropy_with_logits(labels=target,", *_at("004", 34),
        "With from_logits=True Keras calls the fused TF op.",
    ),
    "004.target_one_hot": Printed(
        "目标是一个热点。", *_at("004", 51),
        "Claim: the target is one-hot (machine-translated as 'a hot spot').",
    ),
    "004.one_hot_example": Printed(
        "tf.one_hot([3],5)将产生向量[0, 0, 1, 0, 0]", *_at("004", 51),
        "Claim: tf.one_hot([3], 5) gives [0, 0, 1, 0, 0] (it gives [[0, 0, 0, 1, 0]]).",
    ),
    "004.output_shape_example": Printed(
        "如果输入的形状为[10, 5],则输出的形状为[10]", *_at("004", 57),
        "Claim: input [10, 5] gives output [10]; the caller must reduce_mean itself.",
    ),
    "004.use_v2": Printed(
        "您应该使用tf.softmax_cross_entropy_with_logits_v2", *_at("004", 70),
        "Pointer to softmax_cross_entropy_with_logits_v2 (written without .nn) for numerical safety.",
    ),
}

#: The separator line written between two non-adjacent parts of an excerpt.
EXCERPT_SEPARATOR = "…"

#: Excerpt key -> parts of the excerpt: (first line in the seed file, the lines verbatim). A key is
#: a document id, or a document id and a topic (``"003.multilabel"``) where two notebooks quote
#: different passages of one document.
EXCERPT_PARTS: dict[str, tuple[tuple[int, tuple[str, ...]], ...]] = {
    "000": (
        (65, (
            "sparse_vector = tf.nn.sparse_softmax_cross_entropy_with_logits(",
            "            labels=tf.cast(y_, dtype=tf.int32), logits=y_conv)",
            "cross_entropy = tf.reduce_mean(sparse_vector)",
        )),
        (74, ("batch = mnist.train.next_batch(10)",)),
        (79, (
            "print(sparse_vector)",
            "print(cross_entropy)",
            "",
            "输出是 [2.2213464 2.2676413 2.3555744 2.3196406 2.0794516 2.394274 2.266591 2.3139718 "
            "2.345526 2.3952296]",
            "",
            "2.2959247",
        )),
    ),
    "001": (
        (23, (
            "logits=tf.constant([[1.0,2.0,3.0],[1.0,2.0,3.0],[1.0,2.0,3.0],[7.0,4.0,5.0],"
            "[7.0,88.0,5.0]])",
        )),
        (29, (
            "cross_entropy = tf.reduce_mean(-tf.reduce_sum(y_*tf.log(y), axis=1))",
            "#do cross_entropy just one step",
            "cross_entropy2=tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(logits=logits, "
            "labels=y_))#dont forget tf.reduce_sum()!!",
        )),
        (47, (
            "[[9.0030573e-02 2.4472848e-01 6.6524094e-01]",
            " [9.0030573e-02 2.4472848e-01 6.6524094e-01]",
            " [9.0030573e-02 2.4472848e-01 6.6524094e-01]",
            " [8.4379470e-01 4.2010065e-02 1.1419519e-01]",
            " [6.6396770e-36 1.0000000e+00 8.9858262e-37]]",
            "step2:cross_entropy result=",
            "16.478533",
            "Function(softmax_cross_entropy_with_logits) result=",
            "16.478533",
        )),
    ),
    "002": (
        (2, (
            "(1)结果不好",
            "softmax = tf.nn.softmax(pred)",
            "cross_entropy_cnn = - y * tf.log(softmax + 1e-10)",
            "cost = tf.reduce_sum(cross_entropy_cnn)",
            "(2)效果不错",
            "cross_entropy_cnn = -y * tf.nn.log_softmax(pred)",
            "cost = tf.reduce_sum(cross_entropy_cnn)",
            "(3)效果不错",
            "cost = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(pred, y))",
        )),
        (294, ("test accuracy :0.1032", "和方法(2)和(3)是这样的:")),
        (496, ("test accuracy :0.987",)),
    ),
    "003": (
        (11, (
            '在tensorflow里的"logits"指的其实是,该方法是在logit(还未进行softmax)数值上使用softmax或者'
            "sigmoid来进行normalization的,也暗示用户不要将网络输出进行sigmoid或者softmax,"
            "这些过程可以在函数内部更高效地计算。",
        )),
        (38, (
            "2、tf.nn.softmax_cross_entropy_with_logits",
            "",
            "softmax_cross_entropy_with_logits(",
            "    _sentinel=None,",
            "    labels=None,",
            "    logits=None,",
            "    dim=-1,",
            "    name=None",
            ")",
            "",
            "1).独立互斥:计算网络输出logits和标签labels的softmax cross entropy loss,衡量独立互斥离散分类任务的误差,"
            "说独立互斥离散分类任务是因为,在这些任务中类与类之间是独立而且互斥的,"
            "比如VOC classification、Imagenet、CIFAR-10甚至MNIST,这些都是多分类任务,"
            "但是一张图就对应着一个类,class在图片中是否存在是独立的,并且一张图中只能有一个class,"
            "所以是独立且互斥事件。",
        )),
    ),
    "004": (
        (29, (
            "    epsilon = _to_tensor(_EPSILON, output.dtype.base_dtype)",
            "    output = tf.clip_by_value(output, epsilon, 1. - epsilon)",
            "    return - tf.reduce_sum(target * tf.log(output),",
            "                           reduction_indices=len(output.get_shape()) - 1)",
            "else:",
            "    return tf.nn.softmax_cross_entropy_with_logits(labels=target,",
            "                                                   logits=output)",
        )),
        (51, (
            "目标是一个热点。这意味着数字n由向量v表示,其中v[n] = 10在其他任何地方。 n是标签的类别。"
            "在TensoFlow中有一个名为tf.one_hot的函数可以获取这种编码。"
            "例如,tf.one_hot([3],5)将产生向量[0, 0, 1, 0, 0]",
        )),
        (70, (
            "您应该使用tf.softmax_cross_entropy_with_logits_v2,因为您提供的代码(设置from_logits=False时)"
            "可能会导致数字错误。组合函数可以解决所有这些数字问题。",
        )),
    ),
    "003.multilabel": (
        (32, (
            "1). 独立不互斥:计算网络输出logits和标签labels的sigmoid cross entropy loss,"
            "衡量独立不互斥离散分类任务的误差,说独立不互斥离散分类任务是因为,在这些任务中类与类之间是独立但是不互斥的,"
            "拿多分类任务中的多目标检测来举例子,一张图中可以有各种instance,比如有一只狗和一只猫。",
            "",
            "2). label的形式:对于一个总共有五类的多目标检测任务,假如网络的输出层有5个节点,"
            "label的形式是[1,1,0,0,1]这种,1表示该图片有某种instance,0表示没有。那么,"
            "每个instance在这张图中有没有这显然是独立事件,但是多个instance可以存在一张图中,"
            "这就说明事件们并不是互斥的。所以我们可以直接将网络的输出用作该方法的logits输入,"
            "从而进行输出与label的cross entropy loss。更加直白的来说,"
            "这种网络的输入不需要进行one hot处理,网络输出即是函数logits参数的输入。",
        )),
        (48, (
            "1).独立互斥:计算网络输出logits和标签labels的softmax cross entropy loss,"
            "衡量独立互斥离散分类任务的误差,说独立互斥离散分类任务是因为,在这些任务中类与类之间是独立而且互斥的,"
            "比如VOC classification、Imagenet、CIFAR-10甚至MNIST,"
            "这些都是多分类任务,但是一张图就对应着一个类,class在图片中是否存在是独立的,"
            "并且一张图中只能有一个class,所以是独立且互斥事件。",
            "",
            "2).label形式:该函数要求每一个label都是一个有效的概率分布,"
            "对于Imagenet中的ILSVRC2012这种任务,那么label应该就对应一个one hot编码,"
            "ILSVRC2012提供的数据集中一共有1000个类,那么label就应该是一个1x1000的vector,"
            "形式为[0,0,...,1,0,....0],1000个元素中有且只有一个元素是1,其余都是0。"
            "这样要求的原因很简单,因为网络的输出要进行softmax,得到的就是一个有效的概率分布,"
            "这里不同与sigmoid,因为sigmoid并没有保证网络所有的输出经过sigmoid后和为1,"
            "不是一个有效的概率分布。",
        )),
    ),
}

#: Document id -> its excerpt as one string, parts joined by a :data:`EXCERPT_SEPARATOR` line.
EXCERPTS: dict[str, str] = {
    doc: f"\n{EXCERPT_SEPARATOR}\n".join("\n".join(lines) for _, lines in parts)
    for doc, parts in EXCERPT_PARTS.items()
}


def value(key: str) -> Any:
    """Return ``PRINTED[key].value``; an unknown key raises :class:`KeyError` naming near keys."""
    try:
        return PRINTED[key].value
    except KeyError:
        near = difflib.get_close_matches(key, PRINTED, n=5, cutoff=0.5)
        if not near:
            near = [k for k in PRINTED if k.split(".")[0] == key.split(".")[0]]
        hint = ", ".join(near) if near else ", ".join(sorted(PRINTED))
        raise KeyError(f"no printed value {key!r}; near keys: {hint}") from None


def excerpt_lines(doc: str) -> tuple[tuple[int, int], ...]:
    """The 1-based ``(first, last)`` seed-file line ranges of excerpt ``doc`` (a key of
    :data:`EXCERPT_PARTS`: ``"003"`` or ``"003.multilabel"``)."""
    if doc not in EXCERPT_PARTS:
        raise ValueError(f"unknown document {doc!r}; expected one of {sorted(EXCERPT_PARTS)}")
    return tuple((first, first + len(lines) - 1) for first, lines in EXCERPT_PARTS[doc])


def excerpt_markdown(doc: str) -> str:
    """Document ``doc``'s excerpt as a Markdown block quote: an attribution, then a fenced block.

    >>> print(excerpt_markdown("002").splitlines()[0])
    > Document 002 (`002_ca8a58ff690c3f70.txt`, lines 2–10, 294–295, 496):
    """
    ranges = ", ".join(f"{a}–{b}" if b > a else f"{a}" for a, b in excerpt_lines(doc))
    body = [f"Document {doc[:3]} (`{DOCUMENTS[doc[:3]]}`, lines {ranges}):", "", "```text",
            *EXCERPTS[doc].split("\n"), "```"]
    return "\n".join(f"> {line}" if line else ">" for line in body)


def excerpt(doc: str) -> Any:
    """:func:`excerpt_markdown` as an IPython ``Markdown`` object: a notebook cell ending in
    ``documents.excerpt("002")`` renders the excerpt."""
    from IPython.display import Markdown

    return Markdown(excerpt_markdown(doc))
