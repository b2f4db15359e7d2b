"""Benchmarks: ``python -m xentlab bench [--quick] [--json PATH]``.

Two measurements, in one process, side by side:

1. **Training throughput** of document 002's CNN architecture (conv 5×5×32 → pool → conv 5×5×64 →
   pool → dense 1024 → dropout → dense 10; built with Keras layers so that the identical model
   class runs in both loops), batch 128, Adam 1e-3, fused softmax cross-entropy: steps/s of
   :func:`xentlab.train.train` against ``keras.Model.fit`` fed NumPy arrays and a cached
   ``tf.data`` pipeline, alternating, several repeats, medians; the FLOP rate this achieves
   against a float32 matmul peak measured in the same run.
2. **Cost of each cross-entropy formulation** (forward + backward, float32, batch 256) as the
   number of classes grows to language-model vocabularies, inside ``tf.function`` and compiled
   with XLA (``jit_compile=True``), against a floor measured in the same run (one ``exp`` pass
   over ``[B, C]`` writing its result: what any forward + backward must at least do) and the
   memory-bandwidth bound.

Every timing is min / median / max over the repeats after a warm-up call, wall clock on this
machine; they are results, not tests (the notebooks only assert that they are positive and
finite).
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
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from xentlab import config, losses, models, runtime, train

BATCH = 128
CE_BATCH = 256
CE_CLASSES = (10, 1_000, 32_000, 128_000)
#: The formulations timed: the three of documents 001/002, the sparse kernel, and
#: ``logsumexp(z) - z[y]`` (integer labels, no dense one-hot).
CE_METHODS = ("manual", "log_softmax", "fused", "sparse", "logsumexp_gather")
#: At least this many timed calls per measurement.
MIN_REPEATS = config.MIN_REPEATS


def timing(fn: Callable[[], Any], repeats: int) -> dict[str, float]:
    """Wall time of ``fn()`` in seconds over ``repeats`` calls after one warm-up call:
    ``{"min", "median", "max"}``."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"min": min(times), "median": statistics.median(times), "max": max(times)}


def tf_timing(fn: Callable[[], Any], repeats: int) -> dict[str, float]:
    """:func:`timing` of a TensorFlow call, its result dropped: TensorFlow executes synchronously
    (its default, checked here), so ``fn()`` returns once its result exists; reading the result
    back with ``Tensor.numpy()``, which copies it, would add that copy to every time."""
    if not tf.config.experimental.get_synchronous_execution():
        raise RuntimeError("TensorFlow executes asynchronously here: a call returns before its result exists")
    return timing(fn, repeats)


def matmul_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Float32 ``[n, n] @ [n, n]`` rate in GFLOP/s (``2 n³`` FLOPs per product)."""
    a = tf.random.stateless_normal([n, n], seed=[1, 2])
    b = tf.random.stateless_normal([n, n], seed=[3, 4])
    seconds = tf_timing(lambda: tf.matmul(a, b), repeats)["median"]
    return 2 * n**3 / seconds / 1e9


def copy_bandwidth_gbs(megabytes: int = 256, repeats: int = 5) -> float:
    """Memory copy bandwidth in GB/s (bytes read + bytes written per second)."""
    src = np.ones(megabytes * 2**20 // 4, np.float32)
    dst = np.empty_like(src)
    seconds = timing(lambda: np.copyto(dst, src), repeats)["median"]
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
    with runtime.quiet_tensorflow_logger():  # the v1 profiler logs a deprecation notice
        return int(tf.compat.v1.profiler.profile(graph=graph, options=options).total_float_ops)


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
    runtime.seed(seed)
    model = models.layers_cnn(dropout_rate=0.25, seed=seed)
    hist = train.train(model, data, loss="fused", steps=steps, batch_size=BATCH,
                       eval_every=steps, eval_size=BATCH, progress=False, seed=seed)
    return hist.step_seconds / (hist.steps_run - 1)


def training_throughput(data: Any, *, steps: int, repeats: int) -> dict[str, float]:
    """Steps/s of the xentlab loop and of ``Model.fit`` (two feeds), and the FLOP rates; each
    run seeds the process (:func:`xentlab.runtime.seed`, seeds ``0..repeats-1``) and runs
    without op determinism, as ``Model.fit`` does by default (the previous state is restored)."""
    n = steps * BATCH
    x, y = np.asarray(data.x_train[:n]), np.asarray(data.y_train[:n]).astype(np.int32)
    sub = train.Arrays(x, y, data.x_test[:BATCH], data.y_test[:BATCH])
    runs: dict[str, list[float]] = {"runner": [], "fit_numpy": [], "fit_tfdata": []}
    with runtime.op_determinism(False):
        for r in range(repeats):  # alternate, so drifts of the machine hit all three alike
            runs["runner"].append(_runner_seconds_per_step(sub, steps, seed=r))
            runs["fit_numpy"].append(_fit_seconds_per_step(x, y, "numpy", seed=r))
            runs["fit_tfdata"].append(_fit_seconds_per_step(x, y, "tfdata", seed=r))
    rate = {k: 1.0 / statistics.median(v) for k, v in runs.items()}
    spread_ms = {k: {"min": 1e3 * min(v), "median": 1e3 * statistics.median(v), "max": 1e3 * max(v)}
                 for k, v in runs.items()}
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
        "ms_per_step": spread_ms,
        "steps_timed": steps - 1,
        "repeats": repeats,
    }


def _ce_loss(method: str) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """The summed loss of one of :data:`CE_METHODS` (all from :mod:`xentlab.losses`)."""
    if sparse_labels(method):
        return losses.reduced(losses.sparse_softmax_cross_entropy, "sum",
                              method="fused" if method == "sparse" else method)
    return losses.reduced(losses.softmax_cross_entropy, "sum", method=method)


def sparse_labels(method: str) -> bool:
    """Whether ``method`` takes integer labels ``[B]`` (else one-hot ``[B, C]``)."""
    return method in ("sparse", "logsumexp_gather")


def _grad_step(loss: Callable[[tf.Tensor, tf.Tensor], tf.Tensor], *,
               compiled: bool = False) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """Forward + backward of ``loss(labels, logits)`` (any shape; summed) inside ``tf.function``
    (with XLA if ``compiled``): the gradient with respect to the logits, as a training step
    needs it."""

    @tf.function(autograph=False, jit_compile=compiled)
    def step(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            tape.watch(logits)
            value = tf.reduce_sum(loss(labels, logits))
        return tape.gradient(value, logits)

    return step


def _ce_step(method: str, *, compiled: bool = False) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """:func:`_grad_step` of one formulation of :data:`CE_METHODS`."""
    return _grad_step(_ce_loss(method), compiled=compiled)


def forward_backward_ms(loss: Callable[[tf.Tensor, tf.Tensor], tf.Tensor], labels: tf.Tensor,
                        logits: tf.Tensor, repeats: int) -> dict[str, float]:
    """Milliseconds (min / median / max over ``repeats``) of one :func:`_grad_step` call of
    ``loss`` (inside ``tf.function``, no XLA)."""
    step = _grad_step(loss)
    return {k: 1e3 * v for k, v in tf_timing(lambda: step(labels, logits), repeats).items()}


def clearly(a: dict[str, float], b: dict[str, float]) -> str:
    """Compare two :func:`timing`-style results: ``"faster"`` if every repeat of ``a`` beat
    every repeat of ``b`` (``a["max"] < b["min"]``), ``"slower"`` the other way round, else
    ``"no clear difference"`` (the ranges overlap)."""
    if a["max"] < b["min"]:
        return "faster"
    return "slower" if a["min"] > b["max"] else "no clear difference"


def floor_ms(logits: tf.Tensor, repeats: int, *, compiled: bool = False) -> dict[str, float]:
    """The floor of a cross-entropy's forward + backward over ``logits [B, C]``: one ``exp`` pass
    that reads the logits and writes a ``[B, C]`` result (a softmax-based loss must exponentiate
    every logit, and its gradient is a ``[B, C]`` write), inside ``tf.function`` — with XLA
    (``jit_compile=True``) when ``compiled``, so that each row is compared with the same
    compiler's ``exp`` (TensorFlow's ``Exp`` kernel and XLA's differ in speed); milliseconds,
    min / median / max."""
    exp = tf.function(tf.exp, autograph=False, jit_compile=compiled)
    return {k: 1e3 * v for k, v in tf_timing(lambda: exp(logits), repeats).items()}


def peak_bytes(fn: Callable[[], Any]) -> int | None:
    """The CPU allocator's peak during ``fn()`` minus what was allocated before it (inputs
    excluded, outputs included), or None where this process' TensorFlow keeps no CPU allocator
    statistics (``tf.config.experimental.reset_memory_stats`` raises ``ValueError``: measured
    here with Eigen's kernels, ``TF_ENABLE_ONEDNN_OPTS=0``)."""
    try:
        tf.config.experimental.reset_memory_stats("CPU:0")
    except ValueError:
        return None
    before = tf.config.experimental.get_memory_info("CPU:0")["current"]
    fn()
    return int(tf.config.experimental.get_memory_info("CPU:0")["peak"] - before)


def ce_cost(
    *, classes: tuple[int, ...] = CE_CLASSES, batch: int = CE_BATCH, repeats: int = MIN_REPEATS,
    bandwidth_gbs: float | None = None,
) -> list[dict[str, Any]]:
    """Forward + backward time and extra peak memory of each formulation, per class count, in
    ``tf.function`` (``compiled=False``) and with XLA (``compiled=True``).

    One row per (method, classes, compiled): ``ms`` (median), ``ms_min``, ``ms_max``;
    ``floor_ms`` (:func:`floor_ms` by the same compiler, median) and ``ratio_to_floor`` =
    ``ms / floor_ms``;
    ``bound_ms``: the bytes the op must move at the measured copy bandwidth (read logits and
    dense labels, write the gradient ``[batch, C]``); ``peak_bytes``: :func:`peak_bytes` of one
    call (None where the process keeps no allocator statistics).
    Op determinism does not matter here: ``xentlab.losses`` calls the fused kernels through
    ``tf.raw_ops`` either way.
    """
    if repeats < MIN_REPEATS:
        raise ValueError(f"repeats must be at least {MIN_REPEATS}, got {repeats}")
    bandwidth_gbs = bandwidth_gbs or copy_bandwidth_gbs()
    rows = []
    for c in classes:
        logits = 3.0 * tf.random.stateless_normal([batch, c], seed=[c, 0])
        sparse = tf.random.stateless_uniform([batch], seed=[c, 1], maxval=c, dtype=tf.int32)
        dense = tf.one_hot(sparse, c)
        floors = {compiled: floor_ms(logits, repeats, compiled=compiled)["median"] for compiled in (False, True)}
        for method in CE_METHODS:
            labels = sparse if sparse_labels(method) else dense
            arrays = 2 if sparse_labels(method) else 3  # logits (+ dense labels) in, gradient out
            for compiled in (False, True):
                call = functools.partial(_ce_step(method, compiled=compiled), labels, logits)
                t = tf_timing(call, repeats)
                peak = peak_bytes(call)
                rows.append({
                    "method": method, "classes": c, "compiled": compiled,
                    "ms": 1e3 * t["median"], "ms_min": 1e3 * t["min"], "ms_max": 1e3 * t["max"],
                    "floor_ms": floors[compiled], "ratio_to_floor": 1e3 * t["median"] / floors[compiled],
                    "bound_ms": 1e3 * arrays * batch * c * 4 / (bandwidth_gbs * 1e9),
                    "peak_bytes": peak})
    return rows


def fastest(rows: list[dict[str, Any]], classes: int) -> dict[str, Any]:
    """The row with the smallest median time at ``classes``."""
    mine = [r for r in rows if r["classes"] == classes]
    if not mine:
        raise ValueError(f"no rows at {classes} classes")
    return min(mine, key=lambda r: r["ms"])


#: Sizes of a run: ``quick`` (under two minutes here), ``full`` (the default of the CLI).
SIZES: dict[str, dict[str, Any]] = {
    "quick": {"training_steps": 12, "training_repeats": MIN_REPEATS, "ce_repeats": MIN_REPEATS},
    "full": {"training_steps": 60, "training_repeats": 5, "ce_repeats": 10},
}


def run(
    *, training_steps: int, training_repeats: int, ce_repeats: int,
    classes: tuple[int, ...] = CE_CLASSES, data: Any = None,
) -> dict[str, Any]:
    """All benchmarks (``data`` defaults to the full ``mnist``); see :data:`SIZES`."""
    if training_steps < 3 or training_repeats < MIN_REPEATS or ce_repeats < MIN_REPEATS:
        raise ValueError(f"need training_steps >= 3, training_repeats >= {MIN_REPEATS}, "
                         f"ce_repeats >= {MIN_REPEATS}")
    if data is None:
        from xentlab.data import load

        data = load("mnist")
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
        "| loop | steps/s (median) | ms/step: median (min–max) |",
        "|---|---|---|",
    ]
    for key, name in (("runner", "xentlab.train"), ("fit_numpy", "Model.fit, NumPy arrays"),
                      ("fit_tfdata", "Model.fit, cached tf.data")):
        ms = t["ms_per_step"][key]
        lines.append(f"| {name} | {1e3 / ms['median']:.2f} | {ms['median']:.1f} "
                     f"({ms['min']:.1f}–{ms['max']:.1f}) |")
    lines += [
        "",
        f"xentlab.train / fastest fit: {t['runner_over_keras_fit']:.2f}×. "
        f"{t['flops_per_step'] / 1e9:.2f} GFLOP per step → {t['achieved_gflops']:.0f} GFLOP/s, "
        f"{100 * t['fraction_of_matmul_peak']:.0f}% of the measured float32 matmul peak "
        f"({t['matmul_peak_gflops']:.0f} GFLOP/s).",
        "",
        f"## Cross-entropy forward + backward (float32, batch {CE_BATCH}; copy bandwidth "
        f"{result['copy_bandwidth_gbs']:.1f} GB/s; fused and sparse run TensorFlow's fused kernels in `tf.function`, "
        "and tf2xla's lowering of the same ops with XLA)",
        "",
        "Median ms inside `tf.function` / with XLA (`jit_compile=True`), and in brackets the "
        "ratio to the floor of the same compiler (one `exp` pass writing `[B, C]`, measured in the same run).",
        "",
        "| classes | floor ms (graph / XLA) | " + " | ".join(CE_METHODS) + " | bound ms |",
        "|---|---|" + "---|" * (len(CE_METHODS) + 1),
    ]
    rows = result["ce_cost"]
    for c in sorted({r["classes"] for r in rows}):
        at = {(r["method"], r["compiled"]): r for r in rows if r["classes"] == c}
        cells = [f"{at[m, False]['ms']:.2f} ({at[m, False]['ratio_to_floor']:.1f}×) / "
                 f"{at[m, True]['ms']:.2f} ({at[m, True]['ratio_to_floor']:.1f}×)" for m in CE_METHODS]
        lines.append(f"| {c:,} | {at['fused', False]['floor_ms']:.2f} / {at['fused', True]['floor_ms']:.2f} | "
                     + " | ".join(cells)
                     + f" | {at['fused', False]['bound_ms']:.2f} |")
    lines += ["", "Extra peak memory (MiB) inside `tf.function`:", "",
              "| classes | " + " | ".join(CE_METHODS) + " |", "|---|" + "---|" * len(CE_METHODS)]
    for c in sorted({r["classes"] for r in rows}):
        at = {r["method"]: r for r in rows if r["classes"] == c and not r["compiled"]}
        lines.append(f"| {c:,} | " + " | ".join("—" if at[m]["peak_bytes"] is None else
                                               f"{at[m]['peak_bytes'] / 2**20:.1f}" for m in CE_METHODS)
                     + " |")
    best = fastest(rows, max(r["classes"] for r in rows))
    lines += ["", f"Fastest at {best['classes']:,} classes: {best['method']}"
              f"{' with XLA' if best['compiled'] else ''}, {best['ms']:.2f} ms = "
              f"{best['ratio_to_floor']:.2f}× the floor."]
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


# --- notebook 06's reading of a run: lines it prints and markdown written from the measurements ---

def at_classes(rows: list[dict[str, Any]], classes: int) -> dict[tuple[str, bool], dict[str, Any]]:
    """:func:`ce_cost`'s rows at ``classes``, keyed ``(method, compiled)``."""
    return {(r["method"], r["compiled"]): r for r in rows if r["classes"] == classes}


def below_floor(rows: list[dict[str, Any]]) -> list[str]:
    """``"method[, XLA] at C = c (ratio×)"`` for each of :func:`ce_cost`'s rows that ran faster
    than its floor (``ratio_to_floor < 1``)."""
    return [f"{r['method']}{', XLA' if r['compiled'] else ''} at C = {r['classes']:,} ({r['ratio_to_floor']:.2f}×)"
            for r in rows if r["ratio_to_floor"] < 1]


def format_at_classes(rows: list[dict[str, Any]], classes: int) -> str:
    """Lines on :func:`ce_cost`'s rows at ``classes``: both floors; per formulation its median ms
    and ratio to the floor in ``tf.function`` and with XLA, and its extra peak memory (MiB and a
    multiple of the fused kernel's); then every row, at any C, that ran below its floor."""
    at = at_classes(rows, classes)

    def mib(r: dict[str, Any]) -> str:
        return "memory not measured" if r["peak_bytes"] is None else (
            f"{r['peak_bytes'] / 2**20:6.1f} MiB ({r['peak_bytes'] / at['fused', False]['peak_bytes']:.1f}× fused)")

    lines = [f"At C = {classes:,} (floor {at['fused', False]['floor_ms']:.1f} ms, "
             f"with XLA {at['fused', True]['floor_ms']:.1f} ms):"]
    lines += [f"  {m:>16}: {at[m, False]['ms']:7.1f} ms ({at[m, False]['ratio_to_floor']:4.1f}× the floor), "
              f"XLA {at[m, True]['ms']:7.1f} ms ({at[m, True]['ratio_to_floor']:4.1f}× XLA's floor); "
              f"{mib(at[m, False])}" for m in CE_METHODS]
    lines.append("below its floor: " + (", ".join(below_floor(rows)) or "none"))
    return "\n".join(lines)


def xla_faster(rows: list[dict[str, Any]]) -> tuple[int, int]:
    """How many (method, classes) pairs of :func:`ce_cost`'s rows ran faster with XLA than inside
    ``tf.function`` (medians), and how many pairs there are."""
    ms = {(r["method"], r["classes"], r["compiled"]): r["ms"] for r in rows}
    pairs = [(m, c) for m, c, compiled in ms if not compiled and (m, c, True) in ms]
    return sum(ms[m, c, True] < ms[m, c, False] for m, c in pairs), len(pairs)


def cost_text(rows: list[dict[str, Any]], *, memory: bool) -> str:
    """Markdown on :func:`ce_cost`'s rows at their largest C (batch :data:`CE_BATCH`): the memory
    each formulation allocated there (``memory``: whether this process measured it), the order of
    the formulations' times against the floor, the rows below their floor, how often XLA was
    faster, and what to do on a CPU; every comparison is read from the rows."""
    big = max(r["classes"] for r in rows)
    at = at_classes(rows, big)
    plain = sorted((at[m, False] for m in CE_METHODS), key=lambda r: r["ms"])
    fused_plain, best = at["fused", False], fastest(rows, big)
    below = below_floor(rows)
    faster, pairs = xla_faster(rows)
    best_floor = "XLA's floor" if best["compiled"] else "the floor"

    def arrays(m: str) -> str:  # a formulation's extra peak memory, in [batch, C] float32 arrays
        return f"{at[m, False]['peak_bytes'] / (CE_BATCH * big * 4):.1f}×"

    return " ".join([
        (f"Memory at C = {big:,}: every formulation must return a `[batch, C]` gradient. The fused kernel computes "
         f"the loss and that gradient together and allocated {arrays('fused')} a `[{CE_BATCH}, C]` float32 array, "
         f"`log_softmax` {arrays('log_softmax')} (it keeps its log-probabilities for the backward pass) and the "
         f"manual route {arrays('manual')} (the returned gradient and its temporaries; which ones is not isolated here); the "
         "order fused ≤ log_softmax ≤ manual is asserted above on every run that measures memory."
         if memory else
         "Memory is not measured in this run: this process' TensorFlow keeps no CPU allocator statistics "
         "(Eigen's kernels)."),
        f"Time, on this CPU: the fastest formulation at C = {big:,} is **{best['method']}"
        f"{' with XLA' if best['compiled'] else ''}**, {best['ms']:.1f} ms = {best['ratio_to_floor']:.2f}× {best_floor}; "
        "inside `tf.function` the order is " + " < ".join(f"{r['method']} ({r['ratio_to_floor']:.1f}×)" for r in plain)
        + ", and TensorFlow's fused kernel, the one the documents recommend for stability, takes "
        f"{fused_plain['ms']:.0f} ms ({fused_plain['ratio_to_floor']:.1f}× the floor; "
        f"{at['fused', True]['ratio_to_floor']:.1f}× XLA's floor with XLA)."
        + (f" Below their floor ran {', '.join(below)}"
           + (": all at C below 1,000, where fixed per-call overheads dominate both and the ratio means little."
              if all(r["classes"] < 1000 for r in rows if r["ratio_to_floor"] < 1) else
              ": for these rows the floor is no lower bound (why is not isolated here).") if below else
           " No row ran below its floor."),
        f"XLA (`jit_compile=True`) was faster than `tf.function` for {faster} of the {pairs} pairs of formulation "
        "and C. What sets a formulation's time is not isolated here; a model of it: `exp` throughput and the "
        "number of passes over `[B, C]` it makes, which a compiler can fuse. What to do on a CPU: keep a stable "
        "formulation (fused, sparse, `log_softmax` or `logsumexp − gather`), and measure on the machine that trains which "
        "of them is fastest and whether `jit_compile=True` helps: these numbers are one machine's. GPUs differ "
        "(other kernels, other limits) and are not measured here.",
    ])


def format_training(t: dict[str, Any]) -> str:
    """Lines on :func:`training_throughput`'s result ``t``: FLOP per step, the FLOP rate against
    the matmul peak, each loop's ms per step (median, min, max) and the loops' speed ratios."""
    spread = t["ms_per_step"]
    lines = [f"{t['flops_per_step'] / 1e9:.2f} GFLOP per step (forward counted by TF's profiler, ×3 for backward)",
             f"xentlab.train: {t['achieved_gflops']:.0f} GFLOP/s = {100 * t['fraction_of_matmul_peak']:.0f}% of "
             f"the float32 matmul peak ({t['matmul_peak_gflops']:.0f} GFLOP/s)"]
    lines += [f"  {name:14s} ms/step median {spread[key]['median']:.1f} (min {spread[key]['min']:.1f}, "
              f"max {spread[key]['max']:.1f}) over {t['repeats']} repeats"
              for key, name in (("runner", "xentlab.train"), ("fit_numpy", "fit, NumPy"), ("fit_tfdata", "fit, tf.data"))]
    lines.append(f"xentlab.train vs the faster fit feed (medians): {t['runner_over_keras_fit']:.2f}×; "
                 f"vs fit on NumPy arrays: {t['runner_over_keras_fit_numpy']:.2f}×")
    return "\n".join(lines)


def _ordinal(k: int) -> str:
    return f"{k}{'th' if 10 <= k % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(k % 10, 'th')}"


def summary_text(result: dict[str, Any], *, memory: bool) -> str:
    """Markdown bullets summing up :func:`run`'s ``result``, every statement read from it: the
    memory each formulation allocated at the largest C (``memory``: whether this process measured
    it), the fastest formulation against the floor and the fused kernel's place by time, the
    training loop against ``Model.fit``, and what ``python -m xentlab bench`` runs instead."""
    rows, t = result["ce_cost"], result["training"]
    big = max(r["classes"] for r in rows)
    at, best = at_classes(rows, big), fastest(rows, big)
    by_time = sorted(CE_METHODS, key=lambda m: at[m, False]["ms"])
    return "\n".join([
        (f"- Memory at C = {big:,} and batch {CE_BATCH}: the fused op allocated "
         f"{at['fused', False]['peak_bytes'] / 2**20:.0f} MiB, `log_softmax` "
         f"{at['log_softmax', False]['peak_bytes'] / 2**20:.0f} MiB and the manual route "
         f"{at['manual', False]['peak_bytes'] / 2**20:.0f} MiB (fused ≤ `log_softmax` ≤ manual is asserted on every "
         "run where memory is measured)." if memory else "- Memory was not measured in this run (no CPU allocator "
         "statistics with Eigen's kernels); the committed run, with oneDNN's, measures it."),
        f"- On this CPU the fastest formulation at C = {big:,} was {best['method']}"
        f"{' with XLA' if best['compiled'] else ''}, {best['ratio_to_floor']:.2f}× the measured floor (one `exp` "
        f"pass by the same compiler); the fused kernel took {at['fused', False]['ratio_to_floor']:.1f}× the floor "
        f"inside `tf.function`, {_ordinal(by_time.index('fused') + 1)} of {len(CE_METHODS)} formulations there by "
        "median time.",
        f"- The repository's training loop ran document 002's CNN at {t['runner_over_keras_fit']:.2f}× the speed of "
        f"the faster `Model.fit` feed (medians of {t['repeats']} repeats; spreads above). `python -m xentlab bench` "
        "runs the same measurements (`xentlab.bench.run`) at its own sizes (C = "
        + ", ".join(f"{c:,}" for c in CE_CLASSES) + "; steps and repeats in `xentlab.bench.SIZES`); "
        "`reports/<profile>/bench.md` holds this notebook's table from a report's run.",
    ])
