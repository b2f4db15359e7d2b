"""Cross-entropy under Keras mixed precision (notebook 09).

The TensorFlow mixed precision guide (https://www.tensorflow.org/guide/mixed_precision) advises:
keep the model's output (its softmax) in float32 "for numeric stability"; use loss scaling with
``mixed_float16`` because small float16 gradients underflow to 0; ``mixed_bfloat16`` needs none
(bfloat16 has float32's exponent range); bfloat16 is faster on recent Intel CPUs (AMX). This
module measures each on a small MLP:

- :func:`mlp`: a Keras MLP under a dtype policy, its logits in the policy's compute dtype or cast
  to float32 by the guide's last layer.
- :func:`train_grid`: test accuracy after training under each policy and output dtype with each
  loss formulation (:func:`xentlab.train.train`, stepping eagerly: see its docstring).
- :func:`underflow`: the fraction of weight-gradient elements that are exactly 0 under a policy
  although they are not 0 in float32, with and without a loss scale, and how many the scale keeps.
- :func:`loss_errors`: the error of each loss formulation against float64 on the same logits.
- :func:`step_time`: the median, fastest and slowest time of one training step under a policy.
- :func:`xentlab.config.cpu_features` tells which CPU flags :func:`bf16_supported` reads.

Keras sources: a layer built with ``dtype="mixed_float16"`` keeps float32 variables and computes
in float16 (``keras/src/dtype_policies/dtype_policy.py``, ``DTypePolicy``);
``LossScaleOptimizer.scale_loss`` multiplies the loss by ``dynamic_scale`` (initially 2**15) and
its ``apply`` divides the gradients by it before the inner optimizer runs
(``keras/src/optimizers/loss_scale_optimizer.py``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from xentlab import bench, losses, runtime, train

__all__ = ["POLICIES", "OUTPUTS", "mlp", "optimizer", "train_grid", "underflow", "loss_errors",
           "step_time", "bf16_supported"]

#: The Keras dtype policies compared.
POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
#: Where the last (logit) layer computes: in the policy's 16-bit dtype, or in float32.
OUTPUTS = ("16-bit", "float32")


def mlp(policy: str, *, output: str = "float32", hidden: int = 256, seed: int = 0,
        input_shape: tuple[int, ...] = (28, 28)) -> keras.Model:
    """uint8 images ``[B, *input_shape]`` -> logits ``[B, 10]``: ``x / 255`` -> dense ``hidden``
    ReLU -> dense 10, every layer under ``policy`` (one of :data:`POLICIES`). ``output="float32"``
    adds the guide's last layer, ``Activation("linear", dtype="float32")``, so the logits (and any
    softmax of them) are float32; ``output="16-bit"`` leaves them in the policy's compute dtype.
    Glorot-uniform kernels seeded by ``seed``: the same seed gives the same float32 weights under
    every policy and output."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; choose one of {POLICIES}")
    if output not in OUTPUTS:
        raise ValueError(f"unknown output {output!r}; choose one of {OUTPUTS}")
    init = keras.initializers.GlorotUniform
    layers = [
        keras.Input(input_shape, dtype="uint8"),
        keras.layers.Flatten(dtype=policy),
        keras.layers.Rescaling(1 / 255, dtype=policy),
        keras.layers.Dense(hidden, activation="relu", kernel_initializer=init(seed), dtype=policy),
        keras.layers.Dense(10, kernel_initializer=init(seed + 1), dtype=policy),
    ]
    if output == "float32":
        layers.append(keras.layers.Activation("linear", dtype="float32"))
    return keras.Sequential(layers)


def optimizer(policy: str, *, loss_scaling: bool = True, learning_rate: float = 1e-3) -> keras.optimizers.Optimizer:
    """Adam, wrapped in a dynamic :class:`keras.optimizers.LossScaleOptimizer` under
    ``mixed_float16`` when ``loss_scaling`` (what ``Model.compile`` does by itself for that
    policy: ``keras/src/trainers/trainer.py``, ``compile``)."""
    opt: keras.optimizers.Optimizer = keras.optimizers.Adam(learning_rate)
    if policy == "mixed_float16" and loss_scaling:
        opt = keras.optimizers.LossScaleOptimizer(opt)
    return opt


def train_grid(data: Any, *, steps: int, hidden: int, methods: tuple[str, ...] = losses.METHODS,
               seeds: Sequence[int], batch_size: int = 128, progress: bool = False) -> list[dict[str, Any]]:
    """Train :func:`mlp` once per (seed, policy, output, method) — float32 has one output —
    each seeded with :func:`xentlab.runtime.seed` (so the process' seeds change) under op
    determinism (restored afterwards), with the batch-mean
    loss of ``xentlab.losses.softmax_cross_entropy(method=...)`` computed in the output's dtype,
    plus ``mixed_float16`` without loss scaling (``"fused"``, float32 output, first seed).

    Steps run eagerly (``compiled=False``): with oneDNN's kernels on, a ``tf.function`` of the
    float16 model is tens of times slower than eager execution on the CPUs measured here
    (notebook 09 times both). Every run has ``steps`` steps: under loss scaling a non-finite
    step is skipped, as Keras does, and counted. Returns rows with ``seed``, ``policy``,
    ``output``, ``method``, ``loss_scaling`` (a ``LossScaleOptimizer`` ran), ``grid`` (False for
    the extra unscaled run), ``test_accuracy``, ``diverged_at``, ``skipped_steps``,
    ``final_loss``, ``seconds``."""
    configs = [(s, p, o, m, True) for s in seeds for p in POLICIES
               for o in (OUTPUTS if p != "float32" else ("float32",)) for m in methods]
    configs.append((seeds[0], "mixed_float16", "float32", "fused", False))
    rows = []
    for seed, policy, output, method, scaling in configs:
        runtime.seed(seed)
        model = mlp(policy, output=output, hidden=hidden, seed=seed)
        tic = time.perf_counter()
        with runtime.op_determinism(True):
            h = train.train(model, data, loss=method, steps=steps, batch_size=batch_size,
                            optimizer=optimizer(policy, loss_scaling=scaling), eval_every=steps,
                            eval_size=1000, seed=seed, compiled=False, progress=progress)
        rows.append({"seed": seed, "policy": policy, "output": output, "method": method,
                     "loss_scaling": scaling and policy == "mixed_float16", "grid": scaling,
                     "test_accuracy": h.final_test_accuracy, "diverged_at": h.diverged_at,
                     "skipped_steps": h.skipped_steps, "final_loss": h.final_loss,
                     "seconds": time.perf_counter() - tic})
    return rows


def _gradients(model: keras.Model, x: np.ndarray, y: np.ndarray, method: str,
               scale: float) -> list[np.ndarray]:
    """Gradients of ``scale`` × the batch-mean loss, divided by ``scale`` in float32 (what a
    :class:`keras.optimizers.LossScaleOptimizer` at that scale hands its inner optimizer)."""
    with tf.GradientTape() as tape:
        logits = model(x, training=False)
        labels = tf.one_hot(y, 10, dtype=logits.dtype)
        value = losses.reduced(losses.softmax_cross_entropy, "mean", method=method)(labels, logits)
        scaled = value * tf.cast(scale, value.dtype)
    grads = tape.gradient(scaled, model.trainable_variables)
    return [tf.cast(g, tf.float32).numpy() / np.float32(scale) for g in grads]


def underflow(weights: list[np.ndarray], x: np.ndarray, y: np.ndarray, *, policy: str,
              scale: float = 2.0**15, method: str = "fused", hidden: int = 256) -> dict[str, float]:
    """Weight-gradient elements lost under ``policy`` at the float32 ``weights`` (from
    ``mlp(...).get_weights()``), batch ``x [B, 28, 28]``, labels ``y [B]``; fractions of the
    elements that are non-zero in float32 at the same weights:

    - ``lost``: exactly 0 under ``policy`` without a loss scale;
    - ``lost_scaled``: exactly 0 with the loss multiplied by ``scale`` (and the gradient divided
      by it in float32, as a ``LossScaleOptimizer`` does);
    - ``recovered``: 0 without the scale but not with it: lost to the dtype's *range*, which
      scaling fixes (a zero from rounding or from a ReLU flipped by 16-bit rounding stays 0);

    plus ``zero_float32``, the fraction that is 0 in float32 too (dead ReLUs, black pixels), and
    ``finite``, whether every scaled gradient is finite (a too-large scale overflows float16)."""
    grads = {}
    for name, pol, s in (("ref", "float32", 1.0), ("low", policy, 1.0), ("scaled", policy, scale)):
        model = mlp(pol, hidden=hidden)
        model.set_weights(weights)
        grads[name] = np.concatenate([g.ravel() for g in _gradients(model, x, y, method, s)])
    nonzero = grads["ref"] != 0
    n = max(int(nonzero.sum()), 1)
    low, scaled = (grads["low"] == 0) & nonzero, (grads["scaled"] == 0) & nonzero
    return {"lost": float(low.sum() / n), "lost_scaled": float(scaled.sum() / n),
            "recovered": float((low & ~scaled).sum() / n), "zero_float32": float(np.mean(~nonzero)),
            "finite": bool(np.isfinite(grads["scaled"]).all())}


def loss_errors(logits64: np.ndarray, y: np.ndarray, dtype: str,
                methods: tuple[str, ...] = losses.METHODS) -> dict[str, dict[str, float]]:
    """Each method's per-example loss on ``logits64 [B, C]`` cast to ``dtype``, against the
    float64 log-sum-exp loss: ``{method: {"max_error", "nonfinite"}}``. ``max_error`` is the
    largest ``|loss - exact| / max(1, exact)`` over the finite rows (absolute in nats below a
    loss of 1, relative above); ``nonfinite`` the fraction of rows that are inf or NaN."""
    exact = losses.reference_softmax_cross_entropy(np.eye(logits64.shape[1])[y], logits64)
    z = tf.constant(logits64, dtype=dtype)
    labels = tf.one_hot(y, logits64.shape[1], dtype=dtype)
    out = {}
    for method in methods:
        got = tf.cast(losses.softmax_cross_entropy(labels, z, method=method), tf.float64).numpy()
        finite = np.isfinite(got)
        err = np.abs(got[finite] - exact[finite]) / np.maximum(np.abs(exact[finite]), 1.0)
        out[method] = {"max_error": float(err.max()) if err.size else float("nan"),
                       "nonfinite": float(np.mean(~finite))}
    return out


def step_time(policy: str, x: np.ndarray, y: np.ndarray, *, hidden: int = 1024,
              repeats: int = 5, steps: int = 20, compiled: bool = True) -> dict[str, float]:
    """Median, min and max milliseconds of one compiled training step (forward, fused loss,
    backward, Adam; a ``LossScaleOptimizer`` under ``mixed_float16``, as ``Model.fit`` would
    wrap it) of :func:`mlp` under ``policy`` on the batch ``x [B, 28, 28]``, ``y [B]``, over
    ``repeats`` timings of ``steps`` steps each (:func:`xentlab.bench.timing`, after its untimed
    warm-up; ``compiled=False``: the same step run eagerly)."""
    if repeats < 3:
        raise ValueError(f"repeats must be >= 3 for a median and a spread, got {repeats}")
    model = mlp(policy, hidden=hidden)
    opt = optimizer(policy)
    xs, labels = tf.constant(x), tf.one_hot(y, 10)

    def step() -> tf.Tensor:
        with tf.GradientTape() as tape:
            value = losses.reduced(losses.softmax_cross_entropy)(labels, model(xs, training=True))
            scaled = opt.scale_loss(value)
        opt.apply(tape.gradient(scaled, model.trainable_variables), model.trainable_variables)
        return value

    if compiled:
        step = tf.function(step)
    step().numpy()  # traces a compiled step outside the timings

    def run_steps() -> None:
        for _ in range(steps):
            value = step()
        value.numpy()

    t = bench.timing(run_steps, repeats)
    return {"ms": t["median"] / steps * 1e3, "ms_min": t["min"] / steps * 1e3, "ms_max": t["max"] / steps * 1e3}


def bf16_supported(features: dict[str, bool]) -> bool:
    """Whether the CPU is one the guide means by "CPUs that support" bfloat16: AMX
    (``amx_bf16``, 4th-generation Xeon and later). AVX-512 BF16 alone is not counted."""
    return bool(features.get("amx_bf16", False))
