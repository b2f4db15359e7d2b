"""Document 002's experiment (notebook 03): its CNN trained with its three costs, as it ran them.

- :data:`METHODS` and :func:`document_loss`: method (1) ``reduce_sum(-y * log(softmax + 1e-10))``,
  (2) ``reduce_sum(-y * log_softmax)``, (3) ``reduce_mean(softmax_cross_entropy_with_logits)``
  (document 002, lines 2-10), built from :mod:`xentlab.losses`.
- :func:`tf1_adam`: the document's ``tf.train.AdamOptimizer(learning_rate=0.001)``. TensorFlow 1's
  Adam has ``epsilon=1e-8`` (``tensorflow/python/training/adam.py``), Keras 3's ``1e-7``
  (``keras/src/optimizers/adam.py``); both add epsilon to ``sqrt(v)`` after bias-correcting the
  learning rate, so Keras' Adam with ``epsilon=1e-8`` is the document's update. Epsilon matters
  exactly where gradients are tiny, as the manual loss' are.
- :func:`run`: one training run of the document's network (:class:`xentlab.models.RawCNN`, seeded
  weights and dropout masks), and :func:`run_with_kernels`: the same run in a fresh process
  under oneDNN's or Eigen's CPU kernels (:func:`xentlab.runtime.run_with_kernels`). The network,
  the batches and the dropout masks depend only on ``seed``, so runs in two processes differ
  only by the kernels.
"""

from __future__ import annotations

import json
from typing import Any

import keras

from xentlab import data, losses, models, runtime, train

__all__ = ["ADAM_EPSILON", "DROPOUT_RATE", "LEARNING_RATE", "METHODS", "document_loss", "run",
           "run_with_kernels", "tf1_adam"]

#: The document's three methods, in its order: (1), (2), (3).
METHODS = losses.METHODS
LEARNING_RATE = 1e-3  # AdamOptimizer(learning_rate=0.001)
ADAM_EPSILON = 1e-8  # TensorFlow 1's AdamOptimizer default
DROPOUT_RATE = 0.25  # keep_prob 0.75 in training, 1.0 when evaluating


def document_loss(method: str, epsilon: float = 1e-10) -> train.LossFn:
    """The document's cost for ``method`` (:data:`METHODS`): ``(labels [B, C] one-hot, logits
    [B, C]) -> scalar``; (1) and (2) SUM over the batch, (3) takes the MEAN. ``epsilon`` is
    method (1)'s ``1e-10`` (ignored by the others)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    if method == "manual":
        return losses.reduced(losses.softmax_cross_entropy, "sum", method="manual", epsilon=epsilon)
    return losses.reduced(losses.softmax_cross_entropy, "sum" if method == "log_softmax" else "mean",
                          method=method)


def tf1_adam(learning_rate: float = LEARNING_RATE) -> keras.optimizers.Adam:
    """A fresh Keras Adam with TensorFlow 1's epsilon (:data:`ADAM_EPSILON`)."""
    return keras.optimizers.Adam(learning_rate, epsilon=ADAM_EPSILON)


def run(method: str, ds: Any, *, steps: int, batch_size: int = 128, eval_every: int = 100,
        eval_size: int | None = 1000, seed: int = 0, init_stddev: float = 1.0,
        epsilon: float = 1e-10, progress: bool = False) -> train.History:
    """Train the document's CNN (``init_stddev`` 1.0 is its ``random_normal``) for ``steps``
    steps with ``method``'s cost and TensorFlow 1's Adam on ``ds`` (a loaded dataset); see
    :func:`xentlab.train.train` for the other arguments and the returned history."""
    net = models.RawCNN(init_stddev=init_stddev, dropout_rate=DROPOUT_RATE, seed=seed)
    return train.train(net, ds, loss=document_loss(method, epsilon), steps=steps,
                       batch_size=batch_size, optimizer=tf1_adam(), eval_every=eval_every,
                       eval_size=eval_size, seed=seed, progress=progress)


def run_with_kernels(method: str, dataset: str, *, onednn: bool, timeout: float = 7200,
                     **kwargs: Any) -> dict[str, Any]:
    """:func:`run` on the dataset named ``dataset`` (:data:`xentlab.data.DATASETS`) in a fresh
    process with oneDNN's (``onednn=True``) or Eigen's CPU kernels, op determinism on as in
    the notebook; returns the run's :meth:`~xentlab.train.History.as_dict`. ``kwargs`` are
    :func:`run`'s (JSON values)."""
    if dataset not in data.DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {data.DATASETS}")
    args = json.dumps({"method": method, **kwargs})
    code = ("import json; from xentlab import collapse, data, runtime, train; "
            f"kw = json.loads({args!r}); runtime.seed(kw.get('seed', 0)); "
            "runtime.set_op_determinism(True); "
            f"h = collapse.run(kw.pop('method'), data.load({dataset!r}), **kw); "
            "print(json.dumps(h.as_dict(), allow_nan=True))")
    return runtime.run_with_kernels(code, onednn=onednn, timeout=timeout)
