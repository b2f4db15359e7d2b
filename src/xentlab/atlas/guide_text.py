"""The decision guide's wording: every sentence of :func:`xentlab.atlas.decision_guide` as a
``str.format`` template. The numbers and the choice of sentence come from the measured rows
(:mod:`xentlab.atlas.guide`); nothing here is measured."""

from __future__ import annotations

HEAD = (
    "# Which cross-entropy should I use?\n\nMeasured by `xentlab.atlas.measure()` with TensorFlow "
    "{tensorflow} and Keras {keras} ({classes} classes); errors are against a float64 oracle. "
    "Inputs: label formats, bad labels and reductions on a batch of {batch} with logits drawn from "
    "N(0, 2²) and random labels (NumPy seed {seed}), so their differences from the oracle are those "
    "of this batch; values at a logit gap are one example with logits [0, gap, 0, …] and the true "
    "class 0; an op count is every op of the traced forward-and-gradient graph before Grappler; "
    "`sampled_softmax_loss` runs on a small linear layer (batch {batch}, {sampled_classes} "
    "classes, {classes} sampled, inputs and weights from N(0, 1)), seeded as its bullet says.\n\n"
)
GAP = "a logit gap of {gap:g}"

# What an entry point does with a label format, as a verb phrase.
FORMAT_NOT_MEASURED = "was not measured"
FORMAT_RAISES = "raises {error}"
FORMAT_EXACT = "equals the oracle (max abs error {error})"
FORMAT_WRONG_SHAPE = "is accepted silently with shape {shape} instead of {expected_shape}"
FORMAT_DIFFERS = "is accepted silently but differs from the oracle by up to {error}"

# Value and gradient at a gap.
EXACT_NOT_MEASURED = "(not measured)"
EXACT = "relative error {rel_error} and {grad} (max abs error {grad_error})"
GRAD_FINITE, GRAD_NOT_FINITE = "a finite gradient", "a gradient that is not finite"

KERNEL_SAME = ", whose traced graph runs the same {kernels} kernel"
KERNEL_NONE = ", whose traced graph has no fused kernel"

# A label equal to C.
BAD_RAISES_WITH_MESSAGE = "raises {error} ('{message}')"
BAD_RAISES = "raises {error}"
BAD_NONFINITE = "returns {outcome}"
BAD_SILENT = "returns a finite number silently ({value})"

INTEGER = (
    "- **Integer class labels `[B]`, model outputs logits**: call `{sparse}` (or `{keras_sparse}`"
    "{keras_kernel}), because at {gap_text} in float32 it has {exact}. Labels shaped `[B,1]`: the "
    "tf.nn op {column_op}; the Keras loss squeezes them and {column_keras}."
)
INTEGER_BAD_SAME = "{eager} eagerly and under tf.function"
INTEGER_BAD_DIFFER = "{eager} eagerly and {function} under tf.function"
INTEGER_BAD = " A label equal to C {both}"
INTEGER_BAD_DETERMINISM = "; with op determinism on (the composite path) it {determinism}."

DENSE = (
    "- **One-hot or soft labels `[B,C]`, model outputs logits**: call `{softmax}` (or `{keras_cce}`"
    "{keras_kernel}), because at {gap_text} in float32 it has {exact}; with soft labels it {soft}."
)
DENSE_SMOOTHING = (" Label smoothing: `{keras_smooth}` matches the smoothed oracle (relative error "
                   "{rel_error}).")
DENSE_INDICES = (" Never pass class indices: `[B]` {index}, and `[B,1]` {column} (the index is "
                 "broadcast over the classes: the loss is -index * sum(log p)).")

MULTILABEL = (
    "- **Multi-hot labels `[B,C]` (several classes present), model outputs logits**: call "
    "`{sigmoid}` (per class, `[B,C]`) or `{keras_bce}` (mean over classes, `[B]`), because on "
    "multi-hot labels it {multi_hot} and at {gap_text} it has {exact}. Softmax cross-entropy given "
    "the same multi-hot labels {softmax_multi_hot} (the oracle normalises the targets; the op adds "
    "-log p over every positive)."
)

PROBABILITIES = (
    "- **You only have probabilities** (Keras `from_logits=False`): expect a capped loss. "
    "`{keras_probs}` clips them to [1e-7, 1 - 1e-7]: at a logit gap of 100 it returns {value} "
    "(exact: {oracle}) and its gradient is {grad}, so a confidently wrong example stops learning. "
    "Pass logits with `from_logits=True` instead."
)
GRAD_ZERO, GRAD_AT_MOST = "exactly 0", "at most {grad}"
PROBABILITIES_KERAS_SOFTMAX = (
    " Eagerly, only probabilities made by `keras.ops.softmax` (or a Keras softmax layer) escape the "
    "cap, because they carry their logits (`_keras_logits`): {value} there."
)
PROBABILITIES_GRAPH = (
    " Inside `tf.function` Keras also finds the logits behind a `tf.nn.softmax` op: the traced "
    "graph runs {kernels} and returns {value}, so the same code gives different losses eagerly and "
    "in a graph."
)

DTYPE = (
    "- **Mixed precision (float16 logits)**: `{softmax}` returns {tfnn_dtype} (relative error "
    "{rel_error} at {gap_text}); `{keras_cce}` returns {keras_dtype}, because Keras' `Loss` objects "
    "cast their inputs to floatx first."
)
DTYPE_KERAS_SOFTMAX = (" That cast drops `keras.ops.softmax`'s logits: on float16 probabilities "
                       "the loss is capped again ({value} at a gap of 100).")
DTYPE_OPS = " `keras.ops` keeps float16, where `from_logits=False` caps at {value}"
DTYPE_OPS_BCE = (" and `{ops_bce}` returns {value} with a gradient that is not finite: 1 - 1e-7 "
                 "rounds to 1 in float16, so the clip no longer keeps log(1 - p) finite")

AVOID = "- **Avoid**:\n"
AVOID_ITEM = "  - {item}."
AVOID_MANUAL = ("`{manual}`: at a logit gap of 100 in float32 it returns {value} eagerly, with a "
                "gradient that is {grad}")
AVOID_MANUAL_MODES = ("; a `tf.function` that computes only the loss returns {forward} (exact: "
                      "{oracle}){rewrite}, and one that also computes its gradient returns "
                      "{with_gradient}{no_rewrite}: the same code gives different losses by mode, "
                      "and a training step, which computes the gradient, gets the failure")
AVOID_MANUAL_REWRITE = (", because Grappler rewrites `log(softmax(x))` into `log_softmax(x)` when "
                        "nothing else reads the softmax")
AVOID_MANUAL_NO_REWRITE = " (the gradient reads the softmax, so no rewrite)"
AVOID_FOCAL = ("expecting `{focal}` to use the logits: it applies softmax and then the same clip, "
               "so at a gap of 100 it returns {value} (exact: {oracle}) with gradient {grad}, just "
               "where focal loss should focus")
AVOID_WEIGHTED = ("`{weighted}` at logits exactly 0 (e.g. a zero-initialised output layer): its "
                  "gradient is off by {weighted_error} (`abs` and `relu` have subgradient 0 "
                  "there); `{sigmoid}` is off by {sigmoid_error}")
AVOID_SAMPLED = ("`tf.nn.sampled_softmax_loss` as an evaluation loss: it is a training-time "
                 "approximation, {low:.0%} to {high:.0%} {side} full softmax cross-entropy on the "
                 "same linear layer over {calls} calls here; {unseeded} successive unseeded calls "
                 "gave {distinct} different values")
AVOID_SAMPLED_OP_SEED = ", and so did calls with an op seed alone (eagerly)"
AVOID_SAMPLED_RESET = "; only `tf.random.set_seed` before each call repeats a value"
AVOID_AVERAGE = ("`tf.nn.compute_average_loss` on an element-wise `{shape}` loss: it divides the "
                 "sum by {divisor:.0f} (the first dimension), not by the {elements} elements; "
                 "reduce over the classes first")
AVOID_DETERMINISM = ("expecting the fused kernels under op determinism "
                     "(`tf.config.experimental.enable_op_determinism()`): the traced graph of "
                     "`{sparse}` then has no fused op but a LogSoftmax composite ({on} ops instead "
                     "of {off}), and so does every Keras loss built on it")

# The short table of :func:`xentlab.atlas.decision_table` (the README's answer).
TABLE_HEAD = ("| labels | the model outputs | call | why (measured) |\n"
              "|---|---|---|---|\n")
TABLE_ROW = "| {labels} | {outputs} | {call} | {why} |\n"
TABLE_EXACT = "exact at {gap_text} (relative error {rel_error}), {grad}"
TABLE_INDEPENDENT = "classes independent; " + TABLE_EXACT
TABLE_PROBABILITIES = ("on plain probabilities `{keras_probs}` clips them: {value} at a logit gap of "
                       "100 (exact: {oracle}), gradient {grad}")
TABLE_LOGITS_INSTEAD = "output logits instead and use the one-hot row (`from_logits=True`)"

BACKENDS = ("- **The same Keras code on JAX** (`KERAS_BACKEND=jax`): Keras' TensorFlow backend reads the "
            "logits behind a Keras softmax; its JAX backend clips. With a `Dense(C, activation=\"softmax\")` "
            "head and `{cce}` at a logit gap of {gap:g}, TensorFlow returns {tf_value} (exact: {exact}) "
            "eagerly, compiled and in `Model.fit`, JAX {jax_value} with a gradient that is {jax_grad}. "
            "In float32 at that gap, {count} of {total} Keras calls measured give different values on the two "
            "backends: {calls}.{bad} For one model definition that computes the same loss on both, output "
            "logits and pass `from_logits=True`: {same}.\n")
BACKENDS_BAD = (" A label equal to C (on a CPU): TensorFlow {tf_bad}, JAX {jax_bad}, so on JAX the example adds "
                "nothing to the loss yet still counts in the batch mean's divisor.")
BACKENDS_SAME = "every `from_logits=True` call measured gives the same value on both"
BACKENDS_SAME_EXCEPT = ("every `from_logits=True` call measured gives the same value on both except {calls}, "
                        "which apply a sigmoid themselves and then the backend's probability path")
TABLE_BACKEND = ("in `Model.fit` at a logit gap of {gap:g}: JAX {jax_value}, TensorFlow {tf_value} (exact {exact}); "
                 "JAX's gradient (measured eagerly) is {grad}")
