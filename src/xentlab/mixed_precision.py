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
- :func:`step_time`: the median, fastest and slowest time of one training step under a policy;
  :func:`time_policies`: it under each policy, compiled, and the float16 step run eagerly.
- :func:`xentlab.config.cpu_features` tells which CPU flags :func:`bf16_supported` reads.
- notebook 09's bookkeeping: the tables it prints (``format_*``), the grid's mean accuracies and
  budget, and the sentences and markdown it writes from a run's measurements (``*_text``).

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
           "step_time", "bf16_supported", "gap_grid", "first_nonfinite_gap", "format_loss_errors",
           "format_training", "mean_accuracy", "training_budget", "float32_output_text", "output_dtype_text",
           "trained_weights", "format_underflow", "scaling_accuracies", "time_policies", "format_step_times",
           "speed_text"]

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

    Steps run eagerly (``compiled=False``) under every policy: on some CPUs a ``tf.function`` of
    the float16 step is tens of times slower than the same step run eagerly (the paper report's
    run, ``reports/paper``: an Intel Xeon with AMX and AVX512-FP16), while on others it is the
    faster of the two (``reports/ci``: an AMD EPYC without AVX512-FP16, where oneDNN leaves
    float16 to Eigen's kernels); section 4 of notebook 09 times both on the CPU that runs it.
    Every run has ``steps`` steps: under loss scaling a non-finite step is skipped, as Keras
    does, and counted. Returns rows with ``seed``, ``policy``,
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


# --- notebook 09's bookkeeping: grids, tables and the prose written from a run's measurements ---

def gap_grid(gaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two-class float64 logits ``[2G, 2]`` and labels ``[2G]`` (all class 0) for ``gaps [G]``:
    first the true class trailing by each gap (``[-gap, 0]``, a confident mistake), then leading
    by it (``[gap, 0]``, a confident success)."""
    gaps = np.asarray(gaps, dtype=np.float64)
    zeros = np.zeros_like(gaps)
    logits = np.concatenate([np.stack([-gaps, zeros], 1), np.stack([gaps, zeros], 1)])
    return logits, np.zeros(len(logits), dtype=int)


def first_nonfinite_gap(gaps: np.ndarray, dtype: str = "float16", method: str = "manual") -> float | None:
    """The first of ``gaps`` whose confident mistake (true class trailing by the gap, one row
    evaluated alone by :func:`loss_errors`) gives ``method`` an inf or NaN loss in ``dtype``;
    None if none does. Softmax then log (``"manual"``) fails once ``e^-gap`` rounds to 0."""
    logits, labels = gap_grid(gaps)
    for i, gap in enumerate(gaps):
        if loss_errors(logits[i:i + 1], labels[:1], dtype, (method,))[method]["nonfinite"] > 0:
            return float(gap)
    return None


def format_loss_errors(errors: dict[str, dict[str, dict[str, float]]]) -> str:
    """The table of ``{dtype: loss_errors(...)}``: per dtype and method, the share of rows that
    are inf or NaN and the largest error over the finite rows."""
    lines = [f"{'dtype':9s} {'method':12s} {'rows inf/NaN':>12s} {'largest error (finite rows)':>28s}"]
    lines += [f"{dt:9s} {method:12s} {e['nonfinite']:12.0%} {e['max_error']:28.1e}"
              for dt, by_method in errors.items() for method, e in by_method.items()]
    return "\n".join(lines)


def format_training(rows: list[dict[str, Any]]) -> str:
    """The table of :func:`train_grid`'s rows, one line per run: the grid's rows, then, under a
    line naming them, the extra runs (``grid`` False: ``mixed_float16`` without loss scaling)."""
    def line(r: dict[str, Any]) -> str:
        return (f"{r['seed']:4d} {r['policy']:15s} {r['output']:8s} {r['method']:12s} {str(r['loss_scaling']):>12s} "
                f"{r['test_accuracy']:9.4f} {str(r['diverged_at']):>8s} {r['skipped_steps']:7d} {r['seconds']:7.1f}")

    lines = [f"{'seed':>4s} {'policy':15s} {'output':8s} {'method':12s} {'loss scaling':>12s} {'test acc.':>9s} "
             f"{'diverged':>8s} {'skipped':>7s} {'seconds':>7s}"]
    lines += [line(r) for r in rows if r["grid"]]
    extra = [line(r) for r in rows if not r["grid"]]
    if extra:
        lines += ["extra run, not in the grid (section 3 compares it with its loss-scaled twin):", *extra]
    return "\n".join(lines)


def mean_accuracy(rows: list[dict[str, Any]]) -> dict[tuple[str, str, str], float]:
    """``{(policy, output, method): mean test accuracy over the seeds}`` of :func:`train_grid`'s
    rows (pass the grid rows, ``r["grid"]``, to leave out the unscaled extra run)."""
    keys = dict.fromkeys((r["policy"], r["output"], r["method"]) for r in rows)
    return {k: float(np.mean([r["test_accuracy"] for r in rows if (r["policy"], r["output"], r["method"]) == k]))
            for k in keys}


def training_budget(baseline: float, *, steps: int, seeds: int, trained: float, min_seeds: int) -> str | None:
    """Why the run cannot judge the output dtype, or None: the float32 baseline's test accuracy
    ``baseline`` is below ``trained`` after ``steps`` steps, or fewer than ``min_seeds`` seeds ran."""
    if baseline < trained:
        return f"budget: after {steps} steps the float32 baseline reached {baseline:.2f} test accuracy, below {trained}"
    if seeds < min_seeds:
        return f"budget: {seeds} seed(s); a difference in accuracy is judged over at least {min_seeds}"
    return None


def _worse_labels(rows: list[dict[str, Any]], drops: dict[tuple[str, str], float],
                  worse: list[tuple[str, str]]) -> list[str]:
    """``"method under policy (+drop)"`` for each (policy, method) of ``worse`` (any list of
    ``drops``' keys), sorted, noting where a grid run with a 16-bit output diverged."""
    stopped = {(r["policy"], r["method"]) for r in rows
               if r["grid"] and r["output"] == "16-bit" and r["diverged_at"] is not None}
    return sorted(f"{m} under {p} ({drops[p, m]:+.3f}" + ("; a 16-bit run diverged" if (p, m) in stopped else "")
                  + ")" for p, m in worse)


def _not_counted(drops: dict[tuple[str, str], float], worse: list[tuple[str, str]],
                 tolerance: float) -> list[tuple[str, str]]:
    """The settings of ``drops`` that lost more than ``tolerance`` with a 16-bit output but are
    not in ``worse`` (the notebook's condition: the float32 output of the same policy trained
    more than ``tolerance`` below the float32 policy too, so the output dtype alone does not
    explain the loss). With ``worse`` and the settings within ``tolerance``, every setting."""
    return [k for k, d in drops.items() if not d <= tolerance and k not in worse]


def float32_output_text(rows: list[dict[str, Any]], drops: dict[tuple[str, str], float],
                        worse: list[tuple[str, str]], *, tolerance: float, steps: int, seeds: int) -> str:
    """The measured sentence of claim ``guide.float32-output``: how many of the ``drops``
    settings (``{(policy, method): accuracy with a float32 output - with a 16-bit one}``) lost more
    than ``tolerance`` (``worse``), those that lost it but not to the output alone
    (:func:`_not_counted`), and the updates loss scaling skipped in :func:`train_grid`'s ``rows``."""
    labels = _worse_labels(rows, drops, worse)
    other = _worse_labels(rows, drops, _not_counted(drops, worse, tolerance))
    skipped = ", ".join(f"{r['method']} {r['output']} seed {r['seed']}: {r['skipped_steps']} of {steps}"
                        for r in rows if r["grid"] and r["skipped_steps"])
    return (f"mean accuracy lost with a 16-bit output (beyond {tolerance}) in {len(labels)} of "
            f"{len(drops)} settings" + (": " + ", ".join(labels) if labels else "")
            + (f"; {len(other)} more lost it with the float32 output under the same policy too, so not to the "
               f"output alone: {', '.join(other)}" if other else "")
            + f"; {seeds} seed(s), every run drawing the same {steps} batches"
            + (f" (updates skipped under loss scaling: {skipped})" if skipped else ""))


def output_dtype_text(rows: list[dict[str, Any]], drops: dict[tuple[str, str], float],
                      worse: list[tuple[str, str]], *, tolerance: float, budget: str | None) -> str:
    """Markdown on section 2 of notebook 09 from its measurements: every setting of ``drops``,
    as one that lost accuracy with a 16-bit output (``worse``, as in :func:`float32_output_text`),
    one that lost it with a float32 output too (:func:`_not_counted`) or one that did not; what
    the formulations round, the steps loss scaling skipped and the runs that diverged (all of
    :func:`train_grid`'s ``rows``); prefixed by the ``budget`` reason if any."""
    labels = _worse_labels(rows, drops, worse)
    other = _not_counted(drops, worse, tolerance)
    labels += _worse_labels(rows, drops, other)
    fine = [f"{m} under {p}" for (p, m), d in drops.items() if d <= tolerance]
    diverged = [f"{r['method']} ({r['policy']}, {r['output']}, seed {r['seed']}, step {r['diverged_at']})"
                for r in rows if r["diverged_at"] is not None]
    skipped = [f"{r['method']} ({r['policy']}, {r['output']}, seed {r['seed']}): {r['skipped_steps']}"
               for r in rows if r["skipped_steps"]]
    return ("Untested: " + budget + ". What this run measured: " if budget else "") + (
        f"with a 16-bit output, {len(labels)} of {len(drops)} settings lost more than {tolerance} mean accuracy"
        + (f" ({', '.join(labels)})" if labels else "") + "; "
        + (f"with {', '.join(f'{m} under {p}' for p, m in other)} the float32 output also trained more than "
           f"{tolerance} below the float32 policy, so the output dtype alone does not explain the loss (not counted "
           "for the claim); " if other else "")
        + (f"{', '.join(fine)} trained as well as with a float32 output. " if fine else "none trained as well. ")
        + "The formulations differ in what they round: softmax then $\\log$ rounds $p$ to the output's dtype "
        "before taking its logarithm, while `log_softmax` and the fused op compute $z_y - \\mathrm{logsumexp}(z)$ "
        "from the logits. "
        + (f"Under loss scaling the optimizer skipped non-finite steps, as Keras' `LossScaleOptimizer` does "
           f"(skipped steps: {'; '.join(skipped)}). " if skipped else "No loss-scaled run had a non-finite step. ")
        + (f"Training diverged without loss scaling (a non-finite loss; the loop applies no update after it) for "
           f"{', '.join(diverged)}." if diverged else "No run diverged."))


def trained_weights(data: Any, *, steps: int, hidden: int, batch_size: int) -> list[np.ndarray]:
    """The weights of a float32 :func:`mlp` (seed 0, after :func:`xentlab.runtime.seed` ``(0)``)
    trained for ``steps`` compiled steps with the fused loss: where :func:`underflow` compares
    gradients. Seeds only; op determinism stays as the caller has it (off in notebook 09's
    sections 3 and 4). Neither this nor :func:`underflow` calls an op that changes with it: the
    loss is :func:`xentlab.losses.softmax_cross_entropy`'s fused kernel, called through
    ``tf.raw_ops`` in either mode, and a test checks that both give bitwise the same result with
    op determinism on and off."""
    runtime.seed(0)
    model = mlp("float32", hidden=hidden)
    train.train(model, data, loss="fused", steps=steps, batch_size=batch_size, eval_every=steps, progress=False)
    return model.get_weights()


def format_underflow(lost: dict[str, dict[str, float]]) -> str:
    """Lines on ``{dtype name: underflow(...)}``: lost elements without and with the scale, those
    lost to range, and (from the first entry) the share that is 0 in float32 too."""
    lines = [f"{name:9s} lost {z['lost']:.3%} of float32's non-zero elements, {z['lost_scaled']:.3%} with the "
             f"scale 2^15; lost to range (kept by the scale): {z['recovered']:.3%}; finite: {z['finite']}"
             for name, z in lost.items()]
    first = next(iter(lost.values()))
    lines.append(f"(exactly 0 in float32 too, and not counted above: {first['zero_float32']:.1%})")
    return "\n".join(lines)


def scaling_accuracies(rows: list[dict[str, Any]]) -> tuple[float, float]:
    """Test accuracies of :func:`train_grid`'s ``mixed_float16`` run without loss scaling and of
    the grid run with it (same seed, float32 output, fused loss): ``(unscaled, scaled)``."""
    unscaled = next(r for r in rows if not r["grid"])
    scaled = next(r["test_accuracy"] for r in rows if r["grid"] and (r["seed"], r["policy"], r["output"], r["method"])
                  == (unscaled["seed"], "mixed_float16", "float32", "fused"))
    return unscaled["test_accuracy"], scaled


def time_policies(x: np.ndarray, y: np.ndarray, *, hidden: int, repeats: int, steps: int,
                  float16_steps: int) -> dict[str, dict[str, float]]:
    """:func:`step_time` of each of :data:`POLICIES` compiled and of the ``mixed_float16`` step
    run eagerly (key ``"mixed_float16, eager"``), each over ``repeats`` timings of ``steps``
    steps, except the compiled ``mixed_float16`` step: ``float16_steps`` steps per timing (on
    some CPUs it is tens of times slower than eager: see :func:`train_grid`); batch
    ``x [B, 28, 28]``, ``y [B]``. Op determinism stays as the caller has it."""
    times = {p: step_time(p, x, y, hidden=hidden, repeats=repeats,
                          steps=float16_steps if p == "mixed_float16" else steps)
             for p in POLICIES}
    times["mixed_float16, eager"] = step_time("mixed_float16", x, y, hidden=hidden, repeats=repeats,
                                              steps=steps, compiled=False)
    return times


def format_step_times(times: dict[str, dict[str, float]]) -> str:
    """One line per entry of :func:`time_policies`: median, min and max milliseconds per step."""
    return "\n".join(f"{name:22s} {t['ms']:9.1f} ms per step (min {t['ms_min']:.1f}, max {t['ms_max']:.1f})"
                     for name, t in times.items())


def speed_text(times: dict[str, dict[str, float]], *, flags: str, amx: bool, onednn: bool) -> str:
    """Markdown on section 4 of notebook 09 from :func:`time_policies`: the bfloat16, compiled
    float16 and eager float16 steps against float32's (fastest timings), with the CPU's
    ``flags``, whether it has AMX and which kernel set (oneDNN or Eigen) ran."""
    fastest = {name: t["ms_min"] / times["float32"]["ms_min"] for name, t in times.items()}
    ratio, f16_ratio, eager_ratio = fastest["mixed_bfloat16"], fastest["mixed_float16"], fastest["mixed_float16, eager"]
    return (f"On this CPU ({flags}) a bfloat16 step took {ratio:.2f}× float32's time "
            + ("(the CPU has AMX). " if amx else "(the CPU has no AMX). ")
            + f"The compiled float16 step took {f16_ratio:.3g}× float32's time, and the same step run eagerly "
            f"{eager_ratio:.1f}× (this run's CPU kernels: "
            f"{'oneDNN' if onednn else 'Eigen'}; which kernel sets the compiled float16 time is not "
            "isolated here). "
            + ("On this CPU `mixed_float16` bought no speed, " if min(f16_ratio, eager_ratio) >= 1 else
               f"On this CPU `mixed_float16` was at best {1 / min(f16_ratio, eager_ratio):.1f}× faster than float32, ")
            + "and section 1 shows what it costs in range.")
