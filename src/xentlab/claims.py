"""Every claim the notebooks test: what the source says, where it is shown, what it expects.

A notebook measures and decides; the words of each claim live here, so that a claim reads the
same in its notebook, in the report's ledger and in the README. :func:`xentlab.record.check`
records a claim by its id from :data:`CLAIMS`, with the measurement and the computed verdict.

Ids are ``<document>.<slug>`` for the five documents (:data:`xentlab.documents.DOCUMENTS`) and
``guide.<slug>`` for published guidance (:data:`GUIDES`). ``expected`` holds the document's
values (from :func:`xentlab.documents.value`) where they are fixed; a notebook passes
``expected=`` itself where they depend on its parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xentlab import documents

__all__ = ["CLAIMS", "GUIDES", "Claim", "source_of"]

#: Published guidance claims are checked against: ``guide.`` id prefix -> (title, URL).
GUIDES: dict[str, tuple[str, str]] = {
    "guide": (
        "TensorFlow guide: Mixed precision",
        "https://www.tensorflow.org/guide/mixed_precision",
    ),
    "keras": (
        "Keras 3.15.1: its documentation and backend sources",
        "https://github.com/keras-team/keras/tree/v3.15.1/keras/src/backend",
    ),
    "cce": (
        "Wijmans et al. (2024), Cut Your Losses in Large-Vocabulary Language Models",
        "https://arxiv.org/abs/2411.09009",
    ),
}


@dataclass(frozen=True)
class Claim:
    """One claim of a source.

    Attributes:
        statement: what the source says, in one sentence (quoted where the source is quoted).
        section: the notebook heading the claim is tested under (the ledger links to it).
        expected: the source's own values (None: the notebook passes them).
        expected_text: ``expected`` as a sentence, where its plain rendering would not read as one.
    """

    statement: str
    section: str
    expected: Any = None
    expected_text: str | None = None


def source_of(claim_id: str) -> tuple[str, str | None]:
    """``(source, citation)`` of a claim id: the seed file of a document, or a guide's title and
    URL."""
    prefix = claim_id.split(".", 1)[0]
    if prefix in GUIDES:
        return GUIDES[prefix]
    return documents.DOCUMENTS[prefix], None


#: Claim id -> :class:`Claim`, in the notebooks' order.
CLAIMS: dict[str, Claim] = {
    "000.per-example-vector": Claim(
        "sparse_softmax_cross_entropy_with_logits returns one loss per example: shape (10,) "
        "for a batch of 10",
        "1. The document's network on one batch of 10 digits",
        expected={"shape": [10]},
    ),
    "000.mean-is-batch-average": Claim(
        "reduce_mean of the per-example vector is the batch's average loss (sum / N)",
        "1. The document's network on one batch of 10 digits",
        expected="mean == sum / 10",
    ),
    "000.graph-shapes": Claim(
        "print(sparse_vector) and print(cross_entropy) on the graph show a vector of shape (?,) and a "
        "scalar of shape ()",
        "1. The document's network on one batch of 10 digits",
        expected=[documents.value("000.sparse_vector_repr"), documents.value("000.mean_repr")],
    ),
    "000.sum-then-mean": Claim(
        '"我们应该计算它的求和,这就是为什么我们应该使用reduce_mean" (we should compute its sum, which is why we use '
        "reduce_mean)",
        "1. The document's network on one batch of 10 digits",
        expected="reduce_mean computes the vector's sum",
    ),
    "000.printed-vector": Claim(
        "print(sparse_vector) shows ten per-example losses (2.079 to 2.395) whose mean is the printed "
        "cross_entropy 2.2959247",
        "1. The document's network on one batch of 10 digits",
        expected={"per_example": documents.value("000.per_example_losses"),
                  "mean": documents.value("000.mean")},
    ),
    "000.initial-loss": Claim(
        "at initialisation the mean loss of a batch of 10 is about 2.2959",
        "1. The document's network on one batch of 10 digits",
        expected={"document": documents.value("000.mean")},
    ),
    "001.same-value": Claim(
        "On the 5×3 toy, softmax then -sum(y*log(y)) and softmax_cross_entropy_with_logits both print 16.478533",
        "1. The document's toy",
        expected=f"{documents.value('001.cross_entropy_manual')} and {documents.value('001.cross_entropy_fused')}",
    ),
    "001.softmax-printout": Claim(
        "The printed softmax of the toy (step1:softmax result)",
        "1. The document's toy",
        expected="the post's 15 values at 8 significant digits (TensorFlow 1, graph mode)",
    ),
    "001.fused-equals-composite": Claim(
        "softmax_cross_entropy_with_logits is 'the same' loss as softmax followed by cross-entropy",
        "4. Where the two routes part: the logit gap",
        expected="same value for any logits",
    ),
    "002.toy-log-zero": Claim(
        "softmax([1, 1000]) is [0, 1] in float32; sum(log(softmax + 1e-10)) = -23.02585, "
        "sum(log_softmax) = -999.0",
        "1. The toy: `softmax([1, 1000])`",
        expected={
            "softmax": documents.value("002.toy_softmax"),
            "method_1": str(documents.value("002.toy_method1_cost")),
            "method_2": str(documents.value("002.toy_method2_cost")),
        },
    ),
    "002.single-digit-probe": Claim(
        "one training digit through the untrained network (keep_prob 0.75): softmax exactly one-hot, "
        "method_1 = 23.02585, method_2 = 17056.938",
        "2. One MNIST digit through the untrained network",
    ),
    "002.manual-collapses": Claim(
        "method (1), reduce_sum(-y*log(softmax + 1e-10)), does not train: test accuracy 0.1032 "
        "after 20,000 steps",
        "4. The training run, as the document ran it",
        expected={"test_accuracy": documents.value("002.test_accuracy_method1")},
        expected_text="test accuracy 0.1032 after 20,000 steps (TensorFlow 0.x, an Eigen softmax)",
    ),
    "002.training-log": Claim(
        "the printed training logs (every 100 of 20,000 steps): method (1) stays at chance "
        "(0.039 to 0.172), methods (2) and (3) climb to about 0.99",
        "4. The training run, as the document ran it",
    ),
    "002.log-softmax-trains": Claim(
        "method (2), log_softmax trains the CNN to test accuracy 0.987 after 20,000 steps",
        "4. The training run, as the document ran it",
    ),
    "002.fused-trains": Claim(
        "method (3), the fused op trains the CNN to test accuracy 0.987 after 20,000 steps",
        "4. The training run, as the document ran it",
    ),
    "002.positional-call": Claim(
        "method (3), softmax_cross_entropy_with_logits(pred, y), computes the loss of the logits pred "
        "against the labels y",
        "Method (3) as written: a positional call",
        expected="the same as labels=y, logits=pred",
    ),
    "002.same-math": Claim(
        '"在数学上,这些方法是相同的" (mathematically, these methods are the same)',
        '5. "Mathematically the same"? Same function, different numerics',
        expected="the same values, in exact arithmetic and in float32",
    ),
    "003.logit-sign": Claim(
        "logit maps [0, 1] to the reals: logit(0.5) = 0, negative for p < 0.5, positive for p > 0.5",
        "1. Logit, sigmoid and softmax",
        expected={"logit(0.5)": 0.0, "sign": "sign(p - 0.5)"},
    ),
    "003.softmax-distribution": Claim(
        "Softmax outputs form a valid probability distribution per row; sigmoid outputs do not sum to 1",
        "1. Logit, sigmoid and softmax",
        expected="softmax row sums = 1, sigmoid row sums != 1",
    ),
    "003.sigmoid-elementwise": Claim(
        "sigmoid_cross_entropy_with_logits is element-wise: the loss has the labels' shape "
        "[batch_size, num_classes], one binary cross-entropy per class",
        "2. `sigmoid_cross_entropy_with_logits`: one binary problem per class",
    ),
    "003.fused-inside": Claim(
        "Pass raw logits, not sigmoid outputs: the op applies the sigmoid internally "
        "(不要将网络输出进行sigmoid或者softmax)",
        "2. `sigmoid_cross_entropy_with_logits`: one binary problem per class",
        expected="on raw logits the op is finite and exact where sigmoid-then-log is not (this "
        "repository's test of why the advice is right; the document gives efficiency as the reason)",
    ),
    "003.fused-more-efficient": Claim(
        "the ops compute the sigmoid or softmax internally, more efficiently than applying it yourself "
        "(这些过程可以在函数内部更高效地计算)",
        "2. `sigmoid_cross_entropy_with_logits`: one binary problem per class",
        expected="each op faster than its activation followed by the cross-entropy (forward + backward)",
    ),
    "003.softmax-ce-shape": Claim(
        "softmax_cross_entropy_with_logits returns a loss of shape [batch_size, 1]",
        "3. `softmax_cross_entropy_with_logits`: shape `[batch_size]`, and multi-hot labels",
        expected="[batch_size, 1]",
    ),
    "003.sparse-label-shape": Claim(
        "sparse_softmax_cross_entropy_with_logits takes labels of shape [batch_size, 1]",
        "4. `sparse_softmax_cross_entropy_with_logits`: integer labels of shape `[batch_size]`",
        expected="[batch_size, 1]",
    ),
    "003.sparse-equals-onehot": Claim(
        "sparse_softmax_cross_entropy_with_logits on integer labels equals "
        "softmax_cross_entropy_with_logits on their one-hot encoding",
        "4. `sparse_softmax_cross_entropy_with_logits`: integer labels of shape `[batch_size]`",
        expected="equal",
    ),
    "003.sparse-label-range": Claim(
        "Each sparse label is a class index in [0, num_classes)",
        "4. `sparse_softmax_cross_entropy_with_logits`: integer labels of shape `[batch_size]`",
        expected="indices outside [0, num_classes) rejected",
    ),
    "003.independent-exclusive": Claim(
        "softmax's classes are independent and mutually exclusive (独立而且互斥)",
        '5. "Independent and mutually exclusive"?',
        expected="P(A and B) = 0 (互斥, line 19) and P(A and B) = P(A)·P(B) (独立, line 17)",
    ),
    "003.voc-one-class": Claim(
        "VOC classification, like ImageNet, CIFAR-10 and MNIST, gives each image exactly one class "
        "(比如VOC classification、Imagenet、CIFAR-10甚至MNIST … 一张图就对应着一个类)",
        '5. "Independent and mutually exclusive"?',
        expected="one class per PASCAL VOC classification image",
    ),
    "004.from-logits-calls-fused": Claim(
        "With from_logits=True the code calls tf.nn.softmax_cross_entropy_with_logits",
        "1. The document's Keras 2 code and Keras 3.15's, side by side",
        expected="identical to tf.nn.softmax_cross_entropy_with_logits",
    ),
    "004.formula-per-example": Claim(
        "On softmax probabilities the code computes -sum_j t_j log p_j per example (the formula without 1/N)",
        "1. The document's Keras 2 code and Keras 3.15's, side by side",
        expected="equal to the exact per-example cross-entropy",
    ),
    "004.keras-renormalises": Claim(
        "Without from_logits the output is divided by its sum over the classes before the log",
        '2. Renormalisation: scaled "probabilities" give the same loss',
        expected="loss unchanged when the output is scaled by a positive constant",
    ),
    "004.keras-clips-epsilon": Claim(
        "Without from_logits the output is clipped to [_EPSILON, 1 - _EPSILON] (Keras' default "
        "epsilon: 1e-7)",
        "3. Clipping at ε = 1e-7: a 16.118 ceiling and a dead gradient",
        expected={"loss_ceiling": "-log(1e-7) = 16.118", "gradient_beyond_clip": 0.0},
    ),
    "004.from-logits-stabler": Claim(
        "Computing softmax and cross-entropy together (from_logits=True, the fused op) avoids the "
        "numerical problems of the from_logits=False code",
        "4. What Keras 3 does with softmax outputs",
        expected="fused exact where the probability route is wrong",
    ),
    "004.no-1-over-n": Claim(
        "The code does not average over the inputs (no 1/N): a [10, 5] input gives a [10] output; "
        "call tf.reduce_mean yourself",
        "7. 1/N: one loss per example; the mean belongs to the `Loss` object",
        expected={"output_shape": [10]},
    ),
    "004.one-hot-example": Claim(
        "tf.one_hot([3], 5) produces [0, 0, 1, 0, 0]",
        "8. `tf.one_hot([3], 5)`",
        expected=[0, 0, 1, 0, 0],
    ),
    "004.target-one-hot": Claim(
        "the target is one-hot (目标是一个热点): label n is the vector v with v[n] = 1 and 0 elsewhere "
        "(our reading of the garbled \"v[n] = 10在其他任何地方\", line 51)",
        '9. "The target is one-hot"',
        expected="tf.one_hot encodes label n so, and Keras' categorical cross-entropy expects that encoding",
    ),
    "004.v2-op": Claim(
        "use tf.softmax_cross_entropy_with_logits_v2 (您应该使用tf.softmax_cross_entropy_with_logits_v2): "
        "the combined function solves the numerical problems of the from_logits=False code",
        "10. `softmax_cross_entropy_with_logits_v2`",
        expected="a v2 op that fixes the numerics",
    ),
    "003.multilabel-sigmoid": Claim(
        "For independent, non-exclusive classes (several present in one image) use sigmoid cross-entropy; "
        "softmax cross-entropy is for exclusive classes",
        "1. Beyond the document: a real multi-label task, sigmoid vs softmax",
        expected="sigmoid better than softmax on a multi-label task",
    ),
    "003.softmax-labels-distribution": Claim(
        "softmax_cross_entropy_with_logits needs each label row to be a valid probability distribution "
        "(e.g. one-hot)",
        "1. Beyond the document: a real multi-label task, sigmoid vs softmax",
        expected="multi-hot label rows are not valid input for the softmax op",
    ),
    "guide.float32-output": Claim(
        "A 16-bit output can make evaluation accuracy worse than a float32 output (the guide's reason to "
        "keep the output, and its softmax, in float32)",
        "2. Does the output layer need float32?",
        expected="some formulation loses accuracy with 16-bit logits and keeps it with the float32 output",
    ),
    "guide.float16-loss-scaling": Claim(
        "With mixed_float16, small gradients underflow to zero; loss scaling keeps them",
        "3. Loss scaling: which gradients underflow?",
        expected="gradient elements lost to float16's range without loss scaling, kept with it",
    ),
    "guide.bfloat16-no-loss-scaling": Claim(
        "mixed_bfloat16 needs no loss scaling: bfloat16 has float32's exponent range",
        "3. Loss scaling: which gradients underflow?",
        expected="no gradient element lost to bfloat16's range where float16 loses some",
    ),
    "guide.bfloat16-faster-cpu": Claim(
        "bfloat16 runs faster than float32 on recent Intel CPUs (AMX)",
        "4. Is bfloat16 faster on this CPU?",
        expected="a bfloat16 training step faster than a float32 one on such a CPU",
    ),
    "keras.multi-backend": Claim(
        "\"The ability to dynamically select the backend that will deliver the best performance for "
        "your model without having to change anything to your code\" (Introducing Keras 3.0, "
        "keras.io/keras_3); our reading: the same model code trains alike on each backend",
        "6. The same Keras model on TensorFlow and on JAX",
        expected="test accuracies within 0.02 of each other on TensorFlow and JAX, from the same weights "
                 "and batches, for each initialisation",
    ),
    "keras.tf-reads-logits": Claim(
        "With from_logits=False, Keras' TensorFlow backend computes categorical_crossentropy from the "
        "logits behind an output that carries _keras_logits (Keras' softmax activation) or, in a traced "
        "graph, behind a Softmax op (keras/src/backend/tensorflow/nn.py, _get_logits, lines 1262-1295)",
        "6. The same Keras model on TensorFlow and on JAX",
        expected="the saturated network's confidently wrong digits pass gradient, and it trains in Model.fit",
    ),
    "keras.jax-clips": Claim(
        "With from_logits=False, Keras' JAX backend renormalises, clips the probabilities to "
        "[1e-7, 1 - 1e-7] and takes the log (keras/src/backend/jax/nn.py, lines 983-986): it never "
        "looks for logits, so a confident mistake passes no gradient",
        "6. The same Keras model on TensorFlow and on JAX",
        expected="exactly zero gradient from the saturated network's confidently wrong digits",
    ),
    "cce.exact-and-lean": Claim(
        "Cross-entropy computed without materialising the logits (the correct token's logit as an "
        "indexed dot product, the log-sum-exp accumulated over vocabulary blocks, the backward pass "
        "recomputing each block) is exact and needs a small fraction of the materialised loss' "
        "memory (Gemma 2 (2B): 24 GB to 1 MB for the loss computation)",
        "3. Exact where the materialised op ran, and what it costs",
        expected="loss and gradients equal to the materialised op's; memory beyond the must-exist bytes "
                 "at most 5% of the materialised op's at the largest size measured with both",
    ),
}
