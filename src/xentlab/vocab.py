"""Cross-entropy at vocabulary scale: :func:`xentlab.losses.linear_cross_entropy` (chunked, the
logits never held) against the materialised fused op and ``tf.nn.sampled_softmax_loss``.

One forward + backward of the output layer and its loss: from hidden states ``h [N, H]``, the
kernel ``W [H, C]``, a bias ``b [C]`` and integer labels ``[N]``, the summed loss and the
gradients ``dh [N, H]`` and ``dW [H, C]``. Each configuration runs in a fresh process
(:func:`measure`), so that its peak resident memory during its first call (``VmHWM`` after a
reset, ``/proc/self/clear_refs``) is that configuration's alone: TensorFlow keeps no CPU allocator statistics with
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
#: ``tf.nn.sampled_softmax_loss``'s ``num_sampled`` (its default sampler: log-uniform; at most C / 2).
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


def gradient_bytes(n: int, h: int, c: int) -> int:
    """Bytes of the float32 gradients ``dh``, ``dW`` and ``db``: the outputs of every method."""
    return 4 * (n * h + h * c + c)


def must_exist_bytes(n: int, h: int, c: int) -> int:
    """Bytes any method must hold in float32: ``h``, ``W``, ``b`` and their gradients."""
    return 2 * gradient_bytes(n, h, c)


def beyond_must_exist(row: dict[str, Any]) -> int:
    """A measured row's ``extra_peak_bytes`` less its outputs (:func:`gradient_bytes`): the
    temporaries' peak, beyond the bytes that must exist."""
    return row["extra_peak_bytes"] - gradient_bytes(row["n"], row["h"], row["c"])


def materialised_bytes(n: int, c: int) -> int:
    """Bytes of the ``[N, C]`` float32 arrays the materialised op holds at once: the logits and
    the kernel's backprop (its gradient with respect to the logits)."""
    return 4 * 2 * n * c


def _inputs(n: int, h: int, c: int, seed: int) -> tuple[Any, Any, Any, Any]:
    """``hidden [N, H]``, ``weights [H, C]`` (logits about N(0, 16)), ``bias [C]``, ``labels [N]``:
    drawn by NumPy and handed to TensorFlow, so that TensorFlow's allocator holds the inputs and
    nothing else (with oneDNN's kernels it keeps what it frees, and :func:`run_one` measures
    memory by the process' growth)."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    hidden = tf.constant(rng.standard_normal((n, h), dtype=np.float32))
    weights = tf.constant(rng.standard_normal((h, c), dtype=np.float32) * np.float32(4.0 / h**0.5))
    bias = tf.constant(rng.standard_normal(c, dtype=np.float32))
    labels = tf.constant(rng.integers(0, c, n, dtype=np.int32))
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

    The process' peak resident memory is reset (``/proc/self/clear_refs``) once the inputs exist;
    the first call traces (and with XLA compiles) the step, and ``extra_peak_bytes`` is the peak
    during it above what the process held before it: the outputs ``dh`` and ``dW`` and every
    temporary, tracing included (tens of MB; with oneDNN's kernels TensorFlow's CPU allocator
    keeps freed memory for reuse, so a later call's peak would not show). Then ``repeats`` timed
    calls, each call's outputs dropped before the next. Also returns the loss and
    :data:`PROBES` entries of ``dh`` and ``dW`` at fixed positions (for :func:`compare`)."""
    import time

    import tensorflow as tf

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if repeats < MIN_REPEATS:
        raise ValueError(f"repeats must be at least {MIN_REPEATS}, got {repeats}")
    num_sampled = min(num_sampled, c // 2)  # the sampler draws distinct classes
    hidden, weights, bias, labels = _inputs(n, h, c, seed)
    step = _step(method, block_size, num_sampled)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current VmRSS
    held = _memory("VmRSS")
    out = step(hidden, weights, bias, labels)
    float(out[0])
    extra = _memory("VmHWM") - held
    times = []
    for _ in range(repeats):
        out = None
        start = time.perf_counter()
        out = step(hidden, weights, bias, labels)
        loss = float(out[0])  # waits for the result
        times.append(1e3 * (time.perf_counter() - start))
    rng = np.random.default_rng(seed)
    at_h = (rng.integers(0, n, PROBES), rng.integers(0, h, PROBES))
    at_w = (rng.integers(0, h, PROBES), rng.integers(0, c, PROBES))
    return {"method": method, "n": n, "h": h, "c": c,
            "block_size": block_size if method.startswith("chunked") else None,
            "num_sampled": num_sampled if method == "sampled" else None,
            "ms": float(np.median(times)), "ms_all": times, "extra_peak_bytes": extra, "loss": loss,
            "dh_probe": out[1].numpy()[at_h].tolist(), "dw_probe": out[2].numpy()[at_w].tolist(),
            "tensorflow": tf.__version__}


def measure(method: str, n: int, h: int, c: int, **kwargs: Any) -> dict[str, Any]:
    """:func:`run_one` in a fresh process (TensorFlow's environment: the project's)."""
    args = json.dumps({"method": method, "n": n, "h": h, "c": c, **kwargs})
    code = f"import json; from xentlab import vocab; print(json.dumps(vocab.run_one(**json.loads({args!r}))))"
    return runtime.KernelRun(code, timeout=4 * 3600).result()


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


def _reference(rows: list[dict[str, Any]], row: dict[str, Any]) -> dict[str, Any] | None:
    """The measured ``materialised`` row of ``row``'s size, if any."""
    return next((r for r in rows if r["method"] == "materialised" and not r.get("skipped")
                 and (r["n"], r["h"], r["c"]) == (row["n"], row["h"], row["c"])), None)


def _relative(a: Any, b: Any) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def compare(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For every measured exact method (materialised XLA, chunked, chunked XLA) beside a measured
    ``materialised`` row of its size: the largest relative difference of the loss and of the
    probed ``dh`` and ``dW`` entries (relative to the largest of each)."""
    out = []
    for r in rows:
        ref = _reference(rows, r)
        if r.get("skipped") or r["method"] in ("materialised", "sampled") or ref is None:
            continue
        out.append({"method": r["method"], "block_size": r["block_size"], "n": r["n"], "h": r["h"], "c": r["c"],
                    "loss": _relative([r["loss"]], [ref["loss"]]), "dh": _relative(r["dh_probe"], ref["dh_probe"]),
                    "dw": _relative(r["dw_probe"], ref["dw_probe"])})
    return out


def label(row: dict[str, Any]) -> str:
    """``"chunked (block 4,096)"``, ``"materialised XLA"``, ..."""
    block = row.get("block_size")
    return f"{row['method']} (block {block:,})" if block else row["method"]


def _ms(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def table(rows: list[dict[str, Any]], peak_gflops: float) -> str:
    """A Markdown table: size, method, median milliseconds, its matmul floor (:func:`matmul_flops`
    at ``peak_gflops``) and the ratio, the peak extra memory beyond the must-exist bytes
    (:func:`must_exist_bytes`: ``h``, ``W``, ``b``, ``dh``, ``dW``), or the bytes a skipped
    configuration would need."""
    lines = ["| N | H | C | method | ms (median) | matmul floor, ms | × floor | extra memory beyond the must-exist bytes |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        size = f"| {r['n']:,} | {r['h']:,} | {r['c']:,} | {label(r)} |"
        if r.get("skipped"):
            lines.append(f"{size} not run | | | would need {r['needs_bytes'] / 2**30:.1f} GiB "
                         f"(limit {r['limit_bytes'] / 2**30:.1f} GiB) |")
            continue
        floor = matmul_flops(r["method"], r["n"], r["h"], r["c"], r.get("num_sampled") or NUM_SAMPLED) / (peak_gflops * 1e6)
        lines.append(f"{size} {_ms(r['ms'])} | {_ms(floor)} | {r['ms'] / floor:.2f} | "
                     f"{beyond_must_exist(r) / 2**20:,.0f} MiB |")
    return "\n".join(lines)


def finding(rows: list[dict[str, Any]], peak_gflops: float) -> dict[str, Any]:
    """At the largest C with a measured ``materialised`` row: the fastest chunked configuration,
    the materialised op's best (graph or XLA), their time ratio, the chunked form's time against
    its matmul floor, and both memories beyond the must-exist bytes and their ratio. Also the
    largest skipped size and the bytes it would need. Raises ``ValueError`` without such a size."""
    sizes = [(r["n"], r["h"], r["c"]) for r in rows if r["method"] == "materialised" and not r.get("skipped")]
    if not sizes:
        raise ValueError("no size has a measured materialised row")
    size = max(sizes, key=lambda s: s[2])
    here = [r for r in rows if (r["n"], r["h"], r["c"]) == size and not r.get("skipped")]
    chunked = min((r for r in here if r["method"].startswith("chunked")), key=lambda r: r["ms"])
    best = min((r for r in here if r["method"].startswith("materialised")), key=lambda r: r["ms"])
    lean = min((r for r in here if r["method"].startswith("chunked")), key=beyond_must_exist)
    fat = max((r for r in here if r["method"].startswith("materialised")), key=beyond_must_exist)
    skipped = {(r["n"], r["h"], r["c"]): r["needs_bytes"] for r in rows if r.get("skipped")}
    n, h, c = size
    return {"n": n, "h": h, "c": c, "chunked": label(chunked), "chunked_ms": chunked["ms"],
            "materialised": label(best), "materialised_ms": best["ms"], "time_ratio": chunked["ms"] / best["ms"],
            "floor_ratio": chunked["ms"] / (matmul_flops(chunked["method"], n, h, c) / (peak_gflops * 1e6)),
            "lean": label(lean), "lean_bytes": beyond_must_exist(lean),
            "materialised_bytes": beyond_must_exist(fat), "memory_ratio": beyond_must_exist(lean) / beyond_must_exist(fat),
            "skipped": [{"n": n_, "h": h_, "c": c_, "needs_bytes": b} for (n_, h_, c_), b in skipped.items()]}


def finding_text(f: dict[str, Any]) -> str:
    """:func:`finding` as sentences."""
    text = (f"At N = {f['n']:,} tokens, H = {f['h']:,}, C = {f['c']:,}: the fastest chunked configuration, "
            f"{f['chunked']}, took {_ms(f['chunked_ms'])} ms per forward + backward, {f['time_ratio']:.2f}× the "
            f"materialised op's best ({f['materialised']}, {_ms(f['materialised_ms'])} ms) and {f['floor_ratio']:.2f}× "
            f"its own matmul floor. Beyond the bytes that must exist, the leanest chunked configuration "
            f"({f['lean']}) held {f['lean_bytes'] / 2**20:,.0f} MiB at its peak, against "
            f"{f['materialised_bytes'] / 2**20:,.0f} MiB for the materialised op: {f['memory_ratio']:.1%} of it.")
    for s in f["skipped"]:
        text += (f" At C = {s['c']:,} the materialised op was not run: it would need "
                 f"{s['needs_bytes'] / 2**30:.1f} GiB.")
    return text


def guidance(f: dict[str, Any]) -> str:
    """The decision guide's bullet for large vocabularies, from :func:`finding`."""
    faster = "faster" if f["time_ratio"] < 1 else "slower"
    return (f"- **C in the tens of thousands or more, integer labels, logits from a hidden state `h @ W + b`**: "
            f"`xentlab.losses.linear_cross_entropy(labels, h, W, b)` gives the exact loss and gradients without "
            f"holding the `[N, C]` logits. Measured here at N = {f['n']:,}, H = {f['h']:,}, C = {f['c']:,}: "
            f"{f['time_ratio']:.2f}× the materialised op's time ({faster}), {f['memory_ratio']:.1%} of its "
            f"memory beyond the bytes that must exist. Use it when the materialised op's two `[N, C]` float32 "
            f"arrays (8·N·C bytes) would not fit beside the model, or crowd it out; otherwise the fused "
            f"`sparse_softmax_cross_entropy_with_logits` on materialised logits is the simpler call.")


def main(*, quick: bool, json_path: Any = None) -> list[dict[str, Any]]:
    """``python -m xentlab bench --vocab [--quick]``: the grid at notebook 10's ``ci`` sizes
    (``quick``) or its ``paper`` sizes, with progress on stderr; prints the table and the finding,
    and writes the rows as JSON to ``json_path`` if given."""
    from xentlab import bench
    from xentlab.profiles import PROFILES

    sizes = {"tokens": 1024, "hidden": 256, "classes": [4096, 16384], "block_sizes": [1024]}
    if not quick:
        sizes |= PROFILES["paper"]["10_vocabulary_scale"]
    peak = bench.matmul_peak_gflops()
    rows = grid([(sizes["tokens"], sizes["hidden"], c) for c in sizes["classes"]],
                block_sizes=tuple(sizes["block_sizes"]), progress=True)
    print(table(rows, peak) + "\n\n" + finding_text(finding(rows, peak)))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps({"matmul_peak_gflops": peak, "rows": rows}, indent=2) + "\n")
    return rows
