"""Cross-entropy at vocabulary scale: :func:`xentlab.losses.linear_cross_entropy` (chunked, the
logits never held) against the materialised fused op and ``tf.nn.sampled_softmax_loss``.

One forward + backward of the output layer and its loss: from hidden states ``h [N, H]``, the
kernel ``W [H, C]``, a bias ``b [C]`` and integer labels ``[N]``, the summed loss and the
gradients ``dh [N, H]`` and ``dW [H, C]``. Each configuration runs in a fresh process
(:func:`measure`), so that its peak resident memory above what it holds before the timed calls
(``VmHWM`` after a reset, ``/proc/self/clear_refs``) is that configuration's alone: TensorFlow keeps no CPU allocator statistics with
oneDNN's kernels (:func:`xentlab.bench.peak_bytes`).

Methods (:data:`METHODS`):

- ``materialised``: ``sparse_softmax_cross_entropy_with_logits(labels, h @ W + b)``, the fused
  kernel (``tf.raw_ops``, :func:`xentlab.losses.sparse_softmax_cross_entropy`), in ``tf.function``;
- ``materialised XLA``: the same, ``jit_compile=True``;
- ``chunked``: :func:`xentlab.losses.linear_cross_entropy` with a ``block_size``, in ``tf.function``;
- ``chunked XLA``: the same, ``jit_compile=True``;
- ``sampled``: ``tf.nn.sampled_softmax_loss`` with ``num_sampled`` classes (a biased estimate of
  the loss, for its cost only; its ``dW`` is ``IndexedSlices``: rows of ``W``'s transpose).

Shapes throughout: ``N`` tokens, ``H`` hidden units, ``C`` classes; float32.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from xentlab import runtime

METHODS: tuple[str, ...] = ("materialised", "materialised XLA", "chunked", "chunked XLA", "sampled")
#: Timed calls per configuration, after one warm-up call (medians of at least three).
MIN_REPEATS = 3
#: Gradient entries compared between methods (:func:`compare`), drawn once per size.
PROBES = 512
#: ``tf.nn.sampled_softmax_loss``'s ``num_sampled`` (its default sampler: log-uniform).
NUM_SAMPLED = 1024
#: A materialised configuration is skipped (its size reported) when it would need more than this
#: fraction of the memory available when the grid starts.
MEMORY_FRACTION = 0.8


def matmul_flops(method: str, n: int, h: int, c: int, num_sampled: int = NUM_SAMPLED) -> float:
    """FLOPs of the matrix products one forward + backward needs: the logits (``2NHC``), ``dh`` and
    ``dW`` (``2NHC`` each); the chunked form computes the logits twice (forward, and again in
    the backward pass); sampled softmax multiplies by its ``num_sampled`` columns and the true
    one."""
    if method.startswith("materialised"):
        return 6.0 * n * h * c
    if method.startswith("chunked"):
        return 8.0 * n * h * c
    if method == "sampled":
        return 6.0 * n * h * (num_sampled + 1)
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def must_exist_bytes(n: int, h: int, c: int) -> int:
    """Bytes any method must hold in float32: ``h``, ``W``, ``b`` and their gradients."""
    return 4 * 2 * (n * h + h * c + c)


def materialised_bytes(n: int, c: int) -> int:
    """Bytes of the ``[N, C]`` float32 arrays the materialised op holds at once: the logits and
    the kernel's backprop (its gradient with respect to the logits)."""
    return 4 * 2 * n * c


def _inputs(n: int, h: int, c: int, seed: int) -> tuple[Any, Any, Any, Any]:
    import tensorflow as tf

    hidden = tf.random.stateless_normal([n, h], seed=[seed, 1])
    weights = tf.random.stateless_normal([h, c], seed=[seed, 2]) * (4.0 / h**0.5)  # logits ~ N(0, 16)
    bias = tf.random.stateless_normal([c], seed=[seed, 3])
    labels = tf.random.stateless_uniform([n], seed=[seed, 4], maxval=c, dtype=tf.int32)
    return hidden, weights, bias, labels


def _step(method: str, block_size: int, num_sampled: int) -> Any:
    """``step(hidden, weights, bias, labels) -> (loss sum, dh, dW)``, compiled as the method says."""
    import tensorflow as tf

    from xentlab import losses

    def loss_fn(hidden: Any, weights: Any, bias: Any, labels: Any) -> Any:
        if method.startswith("materialised"):
            return losses.sparse_softmax_cross_entropy(labels, tf.matmul(hidden, weights) + bias)
        if method.startswith("chunked"):
            return losses.linear_cross_entropy(labels, hidden, weights, bias, block_size=block_size)
        return tf.nn.sampled_softmax_loss(tf.transpose(weights), bias, labels[:, None], hidden,
                                          num_sampled, weights.shape[1])

    def step(hidden: Any, weights: Any, bias: Any, labels: Any) -> Any:
        with tf.GradientTape() as tape:
            tape.watch([hidden, weights])
            loss = tf.reduce_sum(loss_fn(hidden, weights, bias, labels))
        dh, dw = tape.gradient(loss, [hidden, weights])
        return loss, dh, tf.convert_to_tensor(dw)

    return tf.function(step, jit_compile=method.endswith("XLA"))


def _memory(field: str) -> int:
    """``VmRSS`` (resident now) or ``VmHWM`` (its peak) of ``/proc/self/status``, in bytes."""
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024


def run_one(method: str, n: int, h: int, c: int, *, block_size: int = 4096, repeats: int = MIN_REPEATS,
            num_sampled: int = NUM_SAMPLED, seed: int = 0) -> dict[str, Any]:
    """Measure one configuration in this process (meant for a fresh one: :func:`measure`).

    One warm-up call traces (and with XLA compiles) the step; its outputs are dropped and the
    process' peak resident memory is reset (``/proc/self/clear_refs``); then ``repeats`` timed
    calls, each call's outputs dropped before the next. Returns the milliseconds of each call and
    their median, ``extra_peak_bytes`` (the peak above what the process held before the timed
    calls: the outputs ``dh`` and ``dW`` included), the loss, and :data:`PROBES` entries of ``dh``
    and ``dW`` at fixed positions (for :func:`compare`)."""
    import time

    import tensorflow as tf

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if repeats < MIN_REPEATS:
        raise ValueError(f"repeats must be at least {MIN_REPEATS}, got {repeats}")
    hidden, weights, bias, labels = _inputs(n, h, c, seed)
    step = _step(method, block_size, num_sampled)
    out = step(hidden, weights, bias, labels)
    float(out[0])
    out = None
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current VmRSS
    held = _memory("VmRSS")
    times = []
    for _ in range(repeats):
        out = None
        start = time.perf_counter()
        out = step(hidden, weights, bias, labels)
        loss = float(out[0])  # waits for the result
        times.append(1e3 * (time.perf_counter() - start))
    extra = _memory("VmHWM") - held
    rng = np.random.default_rng(seed)
    at_h = (rng.integers(0, n, PROBES), rng.integers(0, h, PROBES))
    at_w = (rng.integers(0, h, PROBES), rng.integers(0, c, PROBES))
    return {"method": method, "n": n, "h": h, "c": c,
            "block_size": block_size if method.startswith("chunked") else None,
            "ms": float(np.median(times)), "ms_all": times, "extra_peak_bytes": extra, "loss": loss,
            "dh_probe": out[1].numpy()[at_h].tolist(), "dw_probe": out[2].numpy()[at_w].tolist(),
            "tensorflow": tf.__version__}


def measure(method: str, n: int, h: int, c: int, **kwargs: Any) -> dict[str, Any]:
    """:func:`run_one` in a fresh process (TensorFlow's environment: the project's; glibc's
    ``MALLOC_MMAP_THRESHOLD_`` fixed at 64 KiB)."""
    args = json.dumps({"method": method, "n": n, "h": h, "c": c, **kwargs})
    code = f"import json; from xentlab import vocab; print(json.dumps(vocab.run_one(**json.loads({args!r}))))"
    # a fixed mmap threshold: glibc then maps every large array on its own and unmaps it when
    # freed, so resident memory follows what is live (with its default, adaptive threshold, freed
    # arrays stay in the heap and a later one reuses them unseen)
    return runtime.KernelRun(code, timeout=4 * 3600, MALLOC_MMAP_THRESHOLD_="65536").result()


def available_bytes() -> int:
    """``MemAvailable`` of ``/proc/meminfo``: what a new process can use without swapping."""
    with open("/proc/meminfo") as f:
        fields = dict(line.split(":", 1) for line in f)
    return int(fields["MemAvailable"].split()[0]) * 1024


def grid(sizes: list[tuple[int, int, int]], *, block_sizes: tuple[int, ...], repeats: int = MIN_REPEATS,
         progress: bool = False) -> list[dict[str, Any]]:
    """Every method at every ``(N, H, C)`` of ``sizes`` (``chunked`` at each block size,
    ``chunked XLA`` at the largest), each in a fresh process. A materialised configuration whose
    ``[N, C]`` arrays and must-exist bytes exceed :data:`MEMORY_FRACTION` of the memory available
    now is not run: its row has ``skipped`` and the bytes it would need."""
    limit = MEMORY_FRACTION * available_bytes()
    plan = []
    for n, h, c in sizes:
        plan += [("materialised", n, h, c, None), ("materialised XLA", n, h, c, None)]
        plan += [("chunked", n, h, c, b) for b in block_sizes]
        plan += [("chunked XLA", n, h, c, max(block_sizes)), ("sampled", n, h, c, None)]
    rows = []
    for k, (method, n, h, c, block) in enumerate(plan, 1):
        need = materialised_bytes(n, c) + must_exist_bytes(n, h, c)
        if method.startswith("materialised") and need > limit:
            rows.append({"method": method, "n": n, "h": h, "c": c, "block_size": None, "skipped": True,
                         "needs_bytes": need, "limit_bytes": limit})
            continue
        kwargs = {"repeats": repeats} | ({"block_size": block} if block else {})
        rows.append(measure(method, n, h, c, **kwargs))
        if progress:
            import sys

            r = rows[-1]
            print(f"[{k}/{len(plan)}] {method} N={n} H={h} C={c} block={block}: {r['ms']:.0f} ms, "
                  f"extra peak {r['extra_peak_bytes'] / 2**20:.0f} MiB", file=sys.stderr, flush=True)
    return rows
