"""A measured atlas of TensorFlow's cross-entropy entry points: which one should I call?

Every ``tf.nn`` / ``keras.losses`` / ``keras.ops`` cross-entropy a TensorFlow 2.21 / Keras 3 user
meets is one :class:`EntryPoint` of :data:`ENTRY_POINTS`: a uniform adapter
``fn(labels, outputs)`` (``outputs`` are logits or probabilities, as ``expects`` says) plus the
call as a user writes it. The measurements run the adapters and compare them with a float64
NumPy oracle (:func:`oracle`, log-sum-exp form, with the loss' own label smoothing and focal
terms); every cell of the atlas is produced by running code:

* :func:`label_formats`: integer ``[B]``, integer ``[B,1]``, one-hot, soft and multi-hot labels:
  accepted or raised, output shape, equal to the oracle of what the format means.
* :func:`extremes`: value and gradient at logit gaps 10, 100, 1000 (and a moderate row and
  all-zero logits) in float32, float16 and bfloat16.
* :func:`bad_labels`: labels ``C`` and ``-1``, NaN, a wrong rank; eager and ``tf.function``.
* :func:`graphs`: the op types of the traced forward+gradient graph with and without op
  determinism, and whether TensorFlow's fused kernel is in it.
* :func:`reductions`: what the default reduction divides by (Keras' ``Loss`` objects,
  ``tf.nn.compute_average_loss``, ``ignore_class``).
* :func:`sampled`: ``tf.nn.sampled_softmax_loss`` against full softmax cross-entropy on the same
  logits of a tiny linear layer, and its randomness.

:func:`measure` runs them all into an :class:`Atlas`; :func:`tables` / :func:`table` /
:func:`matrix` (with :func:`label_format_cell`, :func:`extremes_cell`, :func:`bad_label_cell`,
:func:`graph_cell`) render it; :func:`decision_guide` writes the "call Z because <number>" rules from
the measured rows. Shapes: ``B`` examples, ``C`` classes.

Internals cited in docstrings were read in the installed TensorFlow 2.21.0 and Keras 3.15.1
sources (``site-packages``) and checked against the public ``tensorflow/tensorflow`` and
``keras-team/keras`` repositories:

* ``tensorflow/python/ops/nn_ops.py``: ``softmax_cross_entropy_with_logits_v2_helper`` and
  ``_sparse_softmax_cross_entropy_with_rank_2_logits`` branch on
  ``config.is_op_determinism_enabled()``: with it on they compose ``log_softmax_v2`` (plus, for
  the sparse op, a ``gather`` and a ``where`` that forces NaN on out-of-range labels) instead of
  the ``SoftmaxCrossEntropyWithLogits`` / ``SparseSoftmaxCrossEntropyWithLogits`` kernels.
  ``sparse_softmax_cross_entropy_with_logits`` (v1, which v2 calls) computes float16 logits in
  float32 and casts the loss back.
* ``tensorflow/python/ops/nn_impl.py``: ``weighted_cross_entropy_with_logits_v2`` computes
  ``(1 - z) x + l (log1p(exp(-|x|)) + relu(-x))``, whose gradient at ``x = 0`` takes the
  subgradient 0 of ``abs`` and ``relu`` (``sigmoid_cross_entropy_with_logits_v2`` branches with
  ``where(x >= 0, ...)`` instead); ``sampled_softmax_loss_v2`` -> ``sampled_softmax_loss`` builds
  sampled logits with ``_compute_sampled_logits`` (``log_uniform_candidate_sampler``,
  ``subtract_log_q=True``) and applies ``softmax_cross_entropy_with_logits_v2`` to them ("for
  training only ... generally an underestimate of the full softmax loss").
* ``tensorflow/python/ops/nn_impl_distribute.py``: ``compute_average_loss`` divides
  ``reduce_sum(per_example_loss)`` by ``shape(per_example_loss)[0] * num_replicas_in_sync``
  unless ``global_batch_size`` is given.
* ``keras/src/backend/tensorflow/nn.py``: ``categorical_crossentropy``,
  ``sparse_categorical_crossentropy``, ``binary_crossentropy`` call the ``tf.nn`` ops with
  ``from_logits=True``; otherwise they clip to ``[epsilon, 1 - epsilon]`` (``epsilon`` 1e-7), so a
  wrong example's loss stops at ``-log(1e-7)`` = 16.118 with zero gradient. ``_get_logits``
  first reads the logits behind the probabilities: a tensor's ``_keras_logits`` attribute (set by
  ``softmax``/``sigmoid`` there, i.e. ``keras.ops.softmax``, also eagerly) or, in a graph, the
  input of a ``Softmax``/``Sigmoid`` op.
* ``keras/src/losses/loss.py``: ``Loss.__call__`` converts ``y_true`` and ``y_pred`` to the
  loss' dtype (``keras.config.floatx()``, float32) before ``call``; ``apply_mask`` makes the
  default ``"sum_over_batch_size"`` divide by the number of unmasked entries.
* ``keras/src/losses/losses.py``: ``categorical_focal_crossentropy`` with ``from_logits=True``
  applies ``ops.softmax`` and then the same clip; ``binary_focal_crossentropy`` applies
  ``ops.sigmoid``, whose ``_keras_logits`` lets ``binary_crossentropy`` use the logits;
  ``sparse_categorical_crossentropy`` with ``ignore_class`` zeroes the ignored entries and sets
  a mask.

Measurements that touch process-wide state restore it: op determinism is pinned off (or on, for
the rows that say so) and restored; :func:`measure` sets TensorFlow's global seed
(``tf.random.set_seed``) for each section and sets the previous one again afterwards
(:mod:`xentlab.runtime`). Progress goes to the
``logging`` logger ``"xentlab.atlas"``.
"""

from __future__ import annotations

from xentlab.atlas import backends
from xentlab.atlas.guide import (
    GUIDE_ENTRIES,
    decision_guide,
    decision_table,
)
from xentlab.atlas.measure import (
    BAD_CASES,
    MODES,
    Atlas,
    bad_labels,
    extreme_rows,
    extremes,
    graphs,
    label_formats,
    measure,
    modes,
    reductions,
    sampled,
)
from xentlab.atlas.registry import (
    AVERAGE,
    DTYPES,
    ENTRY_POINTS,
    FOCAL_ALPHA,
    FOCAL_GAMMA,
    FUSED_OPS,
    GAPS,
    KERAS_BCE,
    KERAS_CCE,
    KERAS_CCE_KERAS_SOFTMAX,
    KERAS_CCE_PROBS,
    KERAS_CCE_SMOOTH,
    KERAS_EPSILON,
    KERAS_FOCAL,
    KERAS_SPARSE,
    LABEL_FORMATS,
    MANUAL,
    MATCH_TOL,
    OPS_BCE_PROBS,
    OPS_CCE_PROBS,
    SAMPLED_OP_SEED,
    SIGMOID,
    SMOOTHING,
    SOFTMAX,
    SPARSE,
    WEIGHTED,
    EntryPoint,
    Labels,
    entry,
    entry_rows,
    format_labels,
    format_target,
    make_labels,
    oracle,
    to_outputs,
)
from xentlab.atlas.render import (
    CELL_TOLERANCE,
    TABLE_COLUMNS,
    bad_label_cell,
    extremes_cell,
    fmt_small,
    fmt_value,
    graph_cell,
    label_format_cell,
    matrix,
    one,
    select,
    table,
    tables,
)

__all__ = [
    "AVERAGE",
    "Atlas",
    "BAD_CASES",
    "CELL_TOLERANCE",
    "DTYPES",
    "ENTRY_POINTS",
    "EntryPoint",
    "FOCAL_ALPHA",
    "FOCAL_GAMMA",
    "FUSED_OPS",
    "GAPS",
    "GUIDE_ENTRIES",
    "KERAS_BCE",
    "KERAS_CCE",
    "KERAS_CCE_KERAS_SOFTMAX",
    "KERAS_CCE_PROBS",
    "KERAS_CCE_SMOOTH",
    "KERAS_EPSILON",
    "KERAS_FOCAL",
    "KERAS_SPARSE",
    "LABEL_FORMATS",
    "Labels",
    "MANUAL",
    "MATCH_TOL",
    "MODES",
    "OPS_BCE_PROBS",
    "OPS_CCE_PROBS",
    "SAMPLED_OP_SEED",
    "SIGMOID",
    "SMOOTHING",
    "SOFTMAX",
    "SPARSE",
    "TABLE_COLUMNS",
    "WEIGHTED",
    "backends",
    "bad_label_cell",
    "bad_labels",
    "decision_guide",
    "decision_table",
    "entry",
    "entry_rows",
    "extreme_rows",
    "extremes",
    "extremes_cell",
    "fmt_small",
    "fmt_value",
    "label_format_cell",
    "format_labels",
    "format_target",
    "graph_cell",
    "graphs",
    "label_formats",
    "make_labels",
    "matrix",
    "measure",
    "modes",
    "one",
    "oracle",
    "reductions",
    "sampled",
    "select",
    "table",
    "tables",
    "to_outputs",
]
