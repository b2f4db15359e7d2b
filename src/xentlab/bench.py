"""Benchmarks: ``python -m xentlab bench [--quick] [--json PATH]``.

Two measurements, in one process, side by side:

1. **Training throughput** of document 002's CNN architecture (conv 5×5×32 → pool → conv 5×5×64 →
   pool → dense 1024 → dropout → dense 10; built with Keras layers so that the identical model
   class runs in both loops), batch 128, Adam 1e-3, fused softmax cross-entropy: steps/s of
   :func:`xentlab.train.train` against ``keras.Model.fit`` fed NumPy arrays and a cached
   ``tf.data`` pipeline, alternating, several repeats, medians; the FLOP rate this achieves
   against a float32 matmul peak measured in the same run.
2. **Cost of each cross-entropy formulation** (forward + backward, float32, batch 256) as the
   number of classes grows to language-model vocabularies, with the memory-bandwidth bound.

Timings are wall-clock medians on this machine; they are results, not tests (the notebooks only
assert that they are positive and finite).
"""

from __future__ import annotations

import functools
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from xentlab import losses, models, train

BATCH = 128
CE_BATCH = 256
CE_CLASSES = (10, 1_000, 32_000, 128_000)
CE_METHODS = ("manual", "log_softmax", "fused", "sparse")


def _median_seconds(fn: Callable[[], Any], repeats: int) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Float32 ``[n, n] @ [n, n]`` rate in GFLOP/s (``2 n³`` FLOPs per product)."""
    a = tf.random.stateless_normal([n, n], seed=[1, 2])
    b = tf.random.stateless_normal([n, n], seed=[3, 4])
    seconds = _median_seconds(lambda: tf.matmul(a, b).numpy(), repeats)
    return 2 * n**3 / seconds / 1e9


def copy_bandwidth_gbs(megabytes: int = 256, repeats: int = 5) -> float:
    """Memory copy bandwidth in GB/s (bytes read + bytes written per second)."""
    src = np.ones(megabytes * 2**20 // 4, np.float32)
    dst = np.empty_like(src)
    seconds = _median_seconds(lambda: np.copyto(dst, src), repeats)
    return 2 * src.nbytes / seconds / 1e9


def forward_flops(model: Callable[..., tf.Tensor], example_shape: tuple[int, ...]) -> int:
    """FLOPs of one forward pass for one example, counted by TensorFlow's graph profiler."""
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    fn = tf.function(lambda x: model(x, training=False))
    graph = convert_variables_to_constants_v2(
        fn.get_concrete_function(tf.TensorSpec((1, *example_shape), tf.float32))
    ).graph
    builder = tf.compat.v1.profiler.ProfileOptionBuilder
    options = builder(builder.float_operation()).with_empty_output().build()
    level = tf.get_logger().level
    tf.get_logger().setLevel("ERROR")  # the v1 profiler logs a deprecation notice
    try:
        return int(tf.compat.v1.profiler.profile(graph=graph, options=options).total_float_ops)
    finally:
        tf.get_logger().setLevel(level)


class _StepTimer(keras.callbacks.Callback):
    """Wall time from the end of the first batch (which includes tracing) to the last."""

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.ends: list[float] = []

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.ends.append(time.perf_counter())

    def seconds_per_step(self) -> float:
        return (self.ends[-1] - self.ends[0]) / (len(self.ends) - 1)


def _fit_seconds_per_step(x: np.ndarray, y: np.ndarray, feed: str, seed: int) -> float:
    model = models.layers_cnn(dropout_rate=0.25, seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    timer = _StepTimer()
    if feed == "numpy":
        model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=[timer])
    else:
        ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH).cache()
        model.fit(ds.prefetch(tf.data.AUTOTUNE), epochs=1, shuffle=False, verbose=0,
                  callbacks=[timer])
    return timer.seconds_per_step()


def _runner_seconds_per_step(data: Any, steps: int, seed: int) -> float:
    train.seed_everything(seed, deterministic=False)  # as Model.fit runs: no op determinism
    model = models.layers_cnn(dropout_rate=0.25, seed=seed)
    hist = train.train(model, data, loss="fused", steps=steps, batch_size=BATCH,
                       eval_every=steps, eval_size=BATCH, progress=False, seed=seed)
    return hist.step_seconds / (hist.steps_run - 1)


def training_throughput(data: Any, *, steps: int, repeats: int) -> dict[str, float]:
    """Steps/s of the xentlab loop and of ``Model.fit`` (two feeds), and the FLOP rates."""
    n = steps * BATCH
    x, y = np.asarray(data.x_train[:n]), np.asarray(data.y_train[:n]).astype(np.int32)
    sub = SimpleNamespace(x_train=x, y_train=y, x_test=data.x_test[:BATCH],
                          y_test=data.y_test[:BATCH])
    runs: dict[str, list[float]] = {"runner": [], "fit_numpy": [], "fit_tfdata": []}
    for r in range(repeats):  # alternate, so drifts of the machine hit all three alike
        runs["runner"].append(_runner_seconds_per_step(sub, steps, seed=r))
        runs["fit_numpy"].append(_fit_seconds_per_step(x, y, "numpy", seed=r))
        runs["fit_tfdata"].append(_fit_seconds_per_step(x, y, "tfdata", seed=r))
    rate = {k: 1.0 / statistics.median(v) for k, v in runs.items()}
    flops_step = 3 * BATCH * forward_flops(models.layers_cnn(), (28, 28))
    peak = matmul_peak_gflops()
    achieved = rate["runner"] * flops_step / 1e9
    return {
        "runner_steps_per_s": rate["runner"],
        "keras_fit_numpy_steps_per_s": rate["fit_numpy"],
        "keras_fit_tfdata_steps_per_s": rate["fit_tfdata"],
        "keras_fit_steps_per_s": max(rate["fit_numpy"], rate["fit_tfdata"]),
        "runner_over_keras_fit": rate["runner"] / max(rate["fit_numpy"], rate["fit_tfdata"]),
        "runner_over_keras_fit_numpy": rate["runner"] / rate["fit_numpy"],
        "flops_per_step": flops_step,
        "achieved_gflops": achieved,
        "matmul_peak_gflops": peak,
        "fraction_of_matmul_peak": achieved / peak,
        "steps_timed": steps - 1,
        "repeats": repeats,
    }


def _ce_step(method: str) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """Compiled forward + backward of one formulation: gradient of the summed loss w.r.t. logits."""

    loss = (losses.reduced(losses.sparse_softmax_cross_entropy, "sum") if method == "sparse"
            else losses.reduced(losses.softmax_cross_entropy, "sum", method=method))

    @tf.function(autograph=False)
    def step(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            tape.watch(logits)
            value = loss(labels, logits)
        return tape.gradient(value, logits)

    return step


def ce_cost(
    *, classes: tuple[int, ...] = CE_CLASSES, batch: int = CE_BATCH, repeats: int = 5,
    bandwidth_gbs: float | None = None,
) -> list[dict[str, Any]]:
    """Forward + backward time and extra peak memory of each formulation, per class count.

    ``peak_bytes``: the CPU allocator's peak during one call minus what was allocated before it
    (inputs excluded, output gradient included). ``bound_ms``: the bytes the op must move at the
    measured copy bandwidth: read logits (and dense labels), write the gradient ``[batch, C]``.
    """
    bandwidth_gbs = bandwidth_gbs or copy_bandwidth_gbs()
    rows = []
    for c in classes:
        logits = 3.0 * tf.random.stateless_normal([batch, c], seed=[c, 0])
        sparse = tf.random.stateless_uniform([batch], seed=[c, 1], maxval=c, dtype=tf.int32)
        dense = tf.one_hot(sparse, c)
        for method in CE_METHODS:
            call = functools.partial(_ce_step(method), sparse if method == "sparse" else dense,
                                     logits)
            ms = 1e3 * _median_seconds(lambda: call().numpy(), repeats)  # noqa: B023 (used now)
            tf.config.experimental.reset_memory_stats("CPU:0")
            before = tf.config.experimental.get_memory_info("CPU:0")["current"]
            call().numpy()
            peak = tf.config.experimental.get_memory_info("CPU:0")["peak"] - before
            arrays = 2 if method == "sparse" else 3  # logits (+ dense labels) in, gradient out
            bound_ms = 1e3 * arrays * batch * c * 4 / (bandwidth_gbs * 1e9)
            rows.append({"method": method, "classes": c, "ms": ms, "peak_bytes": int(peak),
                         "bound_ms": bound_ms})
    return rows


#: Sizes of a run: ``quick`` (under two minutes here), ``full`` (the default of the CLI).
SIZES: dict[str, dict[str, Any]] = {
    "quick": {"training_steps": 25, "training_repeats": 2, "ce_repeats": 3},
    "full": {"training_steps": 60, "training_repeats": 5, "ce_repeats": 10},
}


def run(
    *, training_steps: int, training_repeats: int, ce_repeats: int,
    classes: tuple[int, ...] = CE_CLASSES, data: Any = None,
) -> dict[str, Any]:
    """All benchmarks (``data`` defaults to ``mnist10k``); see :data:`SIZES`."""
    if training_steps < 3 or training_repeats < 1 or ce_repeats < 1:
        raise ValueError("need training_steps >= 3, training_repeats >= 1, ce_repeats >= 1")
    if data is None:
        from xentlab.data import load

        data = load("mnist10k")
    started = time.perf_counter()
    bandwidth = copy_bandwidth_gbs()
    ce = ce_cost(classes=classes, repeats=ce_repeats, bandwidth_gbs=bandwidth)
    result = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "tensorflow": tf.__version__, "keras": keras.__version__},
        "sizes": {"training_steps": training_steps, "training_repeats": training_repeats,
                  "ce_repeats": ce_repeats, "classes": list(classes)},
        "copy_bandwidth_gbs": bandwidth,
        "ce_cost": ce,
        "training": training_throughput(data, steps=training_steps, repeats=training_repeats),
    }
    result["seconds"] = time.perf_counter() - started
    return result


def to_markdown(result: dict[str, Any]) -> str:
    """A short markdown summary of :func:`run`'s result."""
    t = result["training"]
    sizes = result["sizes"]
    lines = [
        f"# Benchmarks ({result['machine']['cpus']} CPUs, TensorFlow "
        f"{result['machine']['tensorflow']}; {sizes['training_steps']} steps × "
        f"{sizes['training_repeats']} repeats, {sizes['ce_repeats']} repeats per loss)",
        "",
        "## Training throughput (document 002's CNN, batch 128, Adam)",
        "",
        "| loop | steps/s | ms/step |",
        "|---|---|---|",
        f"| xentlab.train | {t['runner_steps_per_s']:.2f} | {1e3 / t['runner_steps_per_s']:.1f} |",
        f"| Model.fit, NumPy arrays | {t['keras_fit_numpy_steps_per_s']:.2f} | "
        f"{1e3 / t['keras_fit_numpy_steps_per_s']:.1f} |",
        f"| Model.fit, cached tf.data | {t['keras_fit_tfdata_steps_per_s']:.2f} | "
        f"{1e3 / t['keras_fit_tfdata_steps_per_s']:.1f} |",
        "",
        f"xentlab.train / fastest fit: {t['runner_over_keras_fit']:.2f}×. "
        f"{t['flops_per_step'] / 1e9:.2f} GFLOP per step → {t['achieved_gflops']:.0f} GFLOP/s, "
        f"{100 * t['fraction_of_matmul_peak']:.0f}% of the measured float32 matmul peak "
        f"({t['matmul_peak_gflops']:.0f} GFLOP/s).",
        "",
        f"## Cross-entropy forward + backward (float32, batch {CE_BATCH}; copy bandwidth "
        f"{result['copy_bandwidth_gbs']:.1f} GB/s; fused and sparse are TensorFlow's fused kernels)",
        "",
        "| classes | " + " | ".join(f"{m} ms (MiB)" for m in CE_METHODS) + " | bound ms |",
        "|---|" + "---|" * (len(CE_METHODS) + 1),
    ]
    for c in sorted({r["classes"] for r in result["ce_cost"]}):
        rows = {r["method"]: r for r in result["ce_cost"] if r["classes"] == c}
        cells = [f"{rows[m]['ms']:.2f} ({rows[m]['peak_bytes'] / 2**20:.1f})" for m in CE_METHODS]
        lines.append(f"| {c:,} | " + " | ".join(cells) + f" | {rows['fused']['bound_ms']:.2f} |")
    return "\n".join(lines) + "\n"


def main(*, quick: bool, json_path: Path | None) -> dict[str, Any]:
    """Run, print the markdown table, optionally write the JSON."""
    result = run(**SIZES["quick" if quick else "full"])
    print(to_markdown(result))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {json_path}")
    return result
