"""Cross-entropy at vocabulary scale: :func:`xentlab.losses.linear_cross_entropy` (chunked, the
logits never held) against the materialised fused op and ``tf.nn.sampled_softmax_loss``.

One forward + backward of the output layer and its loss: from hidden states ``h [N, H]``, the
kernel ``W [H, C]``, a bias ``b [C]`` and integer labels ``[N]``, the summed loss and the
gradients ``dh [N, H]`` and ``dW [H, C]``. Each configuration runs in a fresh process
(:func:`measure`, the project's kernel set) with TensorFlow's BFC allocator on the CPU, whose
statistics give the peak of the tensors a call holds at once.

Methods (:data:`METHODS`):

- ``materialised``: ``sparse_softmax_cross_entropy_with_logits(labels, h @ W + b)``, the fused
  kernel (``tf.raw_ops``, :func:`xentlab.losses.sparse_softmax_cross_entropy`), in ``tf.function``;
- ``materialised XLA``: the same, ``jit_compile=True``;
- ``chunked``: :func:`xentlab.losses.linear_cross_entropy` with a ``block_size``, in ``tf.function``;
- ``chunked XLA``: the same, ``jit_compile=True``;
- ``sampled``: ``tf.nn.sampled_softmax_loss`` with ``num_sampled`` classes (a biased estimate of
  the loss, for its cost only; converted to a dense ``dW``).

Shapes throughout: ``N`` tokens, ``H`` hidden units, ``C`` classes; float32.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
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
#: This repository's target for the chunked loss' memory beyond the must-exist bytes, as a fraction
#: of the materialised op's.
MEMORY_TARGET = 0.05


def matmul_flops(method: str, n: int, h: int, c: int, num_sampled: int = NUM_SAMPLED) -> float:
    """FLOPs of the matrix products one forward + backward needs: the logits (``2NHC``), ``dh`` and
    ``dW`` (``2NHC`` each); the chunked form computes the logits twice (forward, and again in
    the backward pass), counted once under XLA, whose time and memory suggest that its
    common-subexpression elimination merges the two (the HLO was not inspected); sampled softmax
    multiplies by its ``num_sampled`` columns and the true one."""
    if method.startswith("materialised") or method == "chunked XLA":  # XLA appears to merge the recomputation
        return 6.0 * n * h * c
    if method == "chunked":
        return 8.0 * n * h * c
    if method == "sampled":
        return 6.0 * n * h * (num_sampled + 1)
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def floor_ms(method: str, n: int, h: int, c: int, peak_gflops: float, num_sampled: int = NUM_SAMPLED) -> float:
    """:func:`matmul_flops` at ``peak_gflops``, in milliseconds: the method's matmul floor."""
    return matmul_flops(method, n, h, c, num_sampled) / (peak_gflops * 1e6)


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


def materialised_bytes(n: int, c: int, xla: bool = False) -> int:
    """Bytes of the ``[N, C]`` float32 arrays the materialised op holds at once: in a
    ``tf.function`` one, the logits, into whose buffer the fused kernel writes its backprop
    (``forward_input_or_allocate_output`` in ``tensorflow/core/kernels/sparse_xent_op.cc``);
    with XLA, an estimate of two (the ``ci`` report measures it)."""
    return 4 * n * c * (2 if xla else 1)


def _inputs(n: int, h: int, c: int, seed: int) -> tuple[Any, Any, Any, Any]:
    """``hidden [N, H]``, ``weights [H, C]`` (logits about N(0, 16)), ``bias [C]``, ``labels [N]``:
    drawn by NumPy and handed to TensorFlow, so that no temporary of their making passes through
    TensorFlow's allocator."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    hidden = tf.constant(rng.standard_normal((n, h), dtype=np.float32))
    weights = tf.constant(rng.standard_normal((h, c), dtype=np.float32) * np.float32(4.0 / h**0.5))
    bias = tf.constant(rng.standard_normal(c, dtype=np.float32))
    labels = tf.constant(rng.integers(0, c, n, dtype=np.int32))
    return hidden, weights, bias, labels


def _step(method: str, block_size: int, num_sampled: int) -> Any:
    """``step(hidden, weights, bias, labels) -> (per-token loss, dh, dW, db)``, compiled as the
    method says."""
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
            tape.watch([hidden, weights, bias])
            per_token = loss_fn(hidden, weights, bias, labels)
            loss = tf.reduce_sum(per_token)
        dh, dw, db = tape.gradient(loss, [hidden, weights, bias])
        return per_token, dh, tf.convert_to_tensor(dw), tf.convert_to_tensor(db)

    return tf.function(step, jit_compile=method.endswith("XLA"))


def run_one(method: str, n: int, h: int, c: int, *, block_size: int = 4096, repeats: int = MIN_REPEATS,
            num_sampled: int = NUM_SAMPLED, seed: int = 0) -> dict[str, Any]:
    """Measure one configuration in this process (meant for a fresh one: :func:`measure`): one
    untimed call (tracing, and with XLA compiling), then ``repeats`` timed calls, each call's
    outputs dropped before the next. Returns their milliseconds and median; ``extra_peak_bytes``,
    the CPU allocator's peak over the timed calls above what it held before them (the inputs
    excluded; the outputs ``dh``, ``dW``, ``db`` and every temporary included), which TensorFlow
    reports only with its BFC allocator on the CPU (``TF_CPU_ALLOCATOR_USE_BFC=true``, as
    :func:`measure` sets); the loss; and :data:`PROBES` entries of ``dh`` and ``dW`` at fixed
    positions (for :func:`compare`)."""
    import time

    import tensorflow as tf

    from xentlab import bench

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if repeats < MIN_REPEATS:
        raise ValueError(f"repeats must be at least {MIN_REPEATS}, got {repeats}")
    num_sampled = min(num_sampled, c // 2)  # the sampler draws distinct classes
    hidden, weights, bias, labels = _inputs(n, h, c, seed)
    step = _step(method, block_size, num_sampled)
    step(hidden, weights, bias, labels)  # traced (and with XLA compiled) here, untimed
    times: list[float] = []
    out: Any = None

    def timed() -> None:
        nonlocal out
        for _ in range(repeats):
            out = None
            start = time.perf_counter()
            out = step(hidden, weights, bias, labels)
            float(tf.reduce_sum(out[0]))  # waits for the result
            times.append(1e3 * (time.perf_counter() - start))

    extra = bench.peak_bytes(timed)
    if extra is None:
        raise RuntimeError("TensorFlow keeps CPU allocator statistics only with TF_CPU_ALLOCATOR_USE_BFC=true; "
                           "run this through vocab.measure")
    loss = float(tf.reduce_sum(out[0]))
    rng = np.random.default_rng(seed)
    at_h = (rng.integers(0, n, PROBES), rng.integers(0, h, PROBES))
    at_w = (rng.integers(0, h, PROBES), rng.integers(0, c, PROBES))
    return {"method": method, "n": n, "h": h, "c": c,
            "block_size": block_size if method.startswith("chunked") else None,
            "num_sampled": num_sampled if method == "sampled" else None,
            "ms": float(np.median(times)), "ms_all": times, "extra_peak_bytes": int(extra), "loss": loss,
            "loss_probe": out[0].numpy()[at_h[0]].tolist(),
            "dh_probe": out[1].numpy()[at_h].tolist(), "dw_probe": out[2].numpy()[at_w].tolist(),
            "tensorflow": tf.__version__}


def measure(method: str, n: int, h: int, c: int, **kwargs: Any) -> dict[str, Any]:
    """:func:`run_one` in a fresh process: TensorFlow's environment is the project's, and its CPU
    allocator TensorFlow's BFC allocator (``TF_CPU_ALLOCATOR_USE_BFC=true``), which keeps the
    statistics the default one does not."""
    code = runtime.json_call("xentlab.vocab", "run_one", method=method, n=n, h=h, c=c, **kwargs)
    return runtime.KernelRun(code, timeout=4 * 3600, TF_CPU_ALLOCATOR_USE_BFC="true").result()


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
    now is not run: its row has ``skipped`` and the bytes it would need. A configuration whose
    process fails (e.g. ``std::bad_alloc``) or times out is recorded as ``skipped`` with ``failed``,
    the last line of its error (and, if materialised, the bytes it would need), and the grid goes on."""
    limit = MEMORY_FRACTION * available_bytes()
    plan = []
    for n, h, c in sizes:
        plan += [("materialised", n, h, c, None), ("materialised XLA", n, h, c, None)]
        plan += [("chunked", n, h, c, b) for b in block_sizes]
        plan += [("chunked XLA", n, h, c, max(block_sizes)), ("sampled", n, h, c, None)]
    rows = []
    for k, (method, n, h, c, block) in enumerate(plan, 1):
        need = (materialised_bytes(n, c, xla=method.endswith("XLA")) + must_exist_bytes(n, h, c)
                if method.startswith("materialised") else None)
        gone = {"method": method, "n": n, "h": h, "c": c, "block_size": block, "skipped": True,
                "needs_bytes": need, "limit_bytes": limit}  # the row of a configuration not run, or failed
        if need is not None and need > limit:
            rows.append(gone)
            continue
        kwargs = {"repeats": repeats} | ({"block_size": block} if block else {})
        try:
            rows.append(measure(method, n, h, c, **kwargs))
            done = f"{rows[-1]['ms']:.0f} ms, peak {rows[-1]['extra_peak_bytes'] / 2**20:.0f} MiB"
        except (RuntimeError, subprocess.TimeoutExpired) as err:  # e.g. std::bad_alloc: the grid goes on
            reason = str(err).strip().splitlines()[-1].strip()
            rows.append(gone | {"failed": reason})
            done = f"failed: {reason}"
        if progress:
            print(f"[{k}/{len(plan)}] {method} N={n} H={h} C={c} block={block}: {done}", file=sys.stderr, flush=True)
    return rows


def load_grid(path: str | Path, sizes: list[tuple[int, int, int]], block_sizes: tuple[int, ...]
              ) -> tuple[list[dict[str, Any]], float, dict[str, Any]]:
    """The ``grid`` rows and ``matmul_peak_gflops`` an earlier run of notebook 10 recorded (its
    metrics JSON), so that the analysis can be re-run on measurements already made, and its
    ``grid_measured`` (where the grid was measured: commit, date, seconds) when that run had read
    the grid in turn, else ``{}``. Raises ``ValueError`` unless the rows cover exactly ``sizes`` and,
    for the chunked rows, ``block_sizes``."""
    metrics = json.loads(Path(path).read_text())
    rows, peak = metrics["grid"], metrics["matmul_peak_gflops"]
    measured = {(r["n"], r["h"], r["c"]) for r in rows}
    blocks = {r["block_size"] for r in rows if r["method"] == "chunked"}
    if measured != set(sizes) or blocks != set(block_sizes):
        raise ValueError(f"{path} holds sizes {sorted(measured)} and blocks {sorted(blocks)}, "
                         f"not {sorted(sizes)} and {sorted(block_sizes)}")
    return rows, peak, metrics.get("grid_measured", {})


def _reference(rows: list[dict[str, Any]], row: dict[str, Any]) -> dict[str, Any] | None:
    """The measured ``materialised`` row of ``row``'s size, if any."""
    return next((r for r in rows if r["method"] == "materialised" and not r.get("skipped")
                 and (r["n"], r["h"], r["c"]) == (row["n"], row["h"], row["c"])), None)


def _relative(a: Any, b: Any) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def compare(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For every measured exact method (materialised XLA, chunked, chunked XLA) beside a measured
    ``materialised`` row of its size: the largest relative difference of the summed loss, and of
    the probed per-token losses, ``dh`` and ``dW`` entries (each relative to the largest of its
    kind)."""
    out = []
    for r in rows:
        ref = _reference(rows, r)
        if r.get("skipped") or r["method"] in ("materialised", "sampled") or ref is None:
            continue
        out.append({"method": r["method"], "block_size": r["block_size"], "n": r["n"], "h": r["h"], "c": r["c"],
                    "loss": max(_relative([r["loss"]], [ref["loss"]]), _relative(r["loss_probe"], ref["loss_probe"])),
                    "dh": _relative(r["dh_probe"], ref["dh_probe"]),
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
    configuration would need, or the error a failed one ended with."""
    lines = ["| N | H | C | method | ms (median) | matmul floor, ms | × floor | extra memory beyond the must-exist bytes |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        size = f"| {r['n']:,} | {r['h']:,} | {r['c']:,} | {label(r)} |"
        if r.get("failed"):
            need = f"; would need {r['needs_bytes'] / 2**30:.1f} GiB in all by the count" if r.get("needs_bytes") else ""
            lines.append(f"{size} failed | | | `{r['failed']}`{need} |")
            continue
        if r.get("skipped"):
            lines.append(f"{size} not run | | | would need {r['needs_bytes'] / 2**30:.1f} GiB in all "
                         f"(limit {r['limit_bytes'] / 2**30:.1f} GiB) |")
            continue
        floor = floor_ms(r["method"], r["n"], r["h"], r["c"], peak_gflops, r.get("num_sampled") or NUM_SAMPLED)
        lines.append(f"{size} {_ms(r['ms'])} | {_ms(floor)} | {r['ms'] / floor:.2f} | "
                     f"{beyond_must_exist(r) / 2**20:,.0f} MiB |")
    return "\n".join(lines)


#: Cut Cross-Entropy's reported ratios for Gemma 2 (2B): the loss computation's memory (24 GB to
#: 1 MB) and the classifier head's training memory (28 GB to 1 GB).
PAPER_RATIOS: dict[str, float] = {"loss computation": 1e6 / 24e9, "classifier head": 1e9 / 28e9}


def _compare_times(a: dict[str, Any], b: dict[str, Any]) -> str:
    """"faster" or "slower" when every timed call of ``a`` beat, or lost to, every call of ``b``;
    else "calls overlap" (neither always faster nor always slower)."""
    if max(a["ms_all"]) < min(b["ms_all"]):
        return "faster"
    if min(a["ms_all"]) > max(b["ms_all"]):
        return "slower"
    return "calls overlap"


def finding(rows: list[dict[str, Any]], peak_gflops: float) -> dict[str, Any]:
    """What the grid says, size by size where the materialised op ran, comparing like with like
    in a ``tf.function``: the fastest chunked block size against the materialised op (time ratio,
    and whether every timed call was faster or slower), the chunked form against its matmul floor,
    and the leanest chunked block size's memory beyond the must-exist bytes against the
    materialised op's and against the must-exist bytes themselves. ``largest`` is the entry at the
    largest such C; ``xla`` the XLA rows' memory there; ``skipped`` the sizes the materialised op
    was not run at or failed at (``failed``: its error), with the bytes it would need. Raises
    ``ValueError`` without a size where both the materialised op and the chunked loss were measured."""
    sizes = sorted({(r["n"], r["h"], r["c"]) for r in rows if r["method"] == "materialised" and not r.get("skipped")},
                   key=lambda s: s[2])
    per_size = []
    for n, h, c in sizes:
        here = [r for r in rows if (r["n"], r["h"], r["c"]) == (n, h, c) and not r.get("skipped")]
        chunked = [r for r in here if r["method"] == "chunked"]
        if not chunked:
            continue
        ref = next(r for r in here if r["method"] == "materialised")
        best = min((r for r in here if r["method"].startswith("materialised")), key=lambda r: r["ms"])  # tf.function or XLA
        fast = min(chunked, key=lambda r: r["ms"])
        lean = min(chunked, key=beyond_must_exist)
        per_size.append({
            "n": n, "h": h, "c": c, "chunked": label(fast), "block": fast["block_size"], "lean_block": lean["block_size"],
            "chunked_ms": fast["ms"], "materialised_ms": ref["ms"],
            "time_ratio": fast["ms"] / ref["ms"], "speed": _compare_times(fast, ref), "best_ratio": fast["ms"] / best["ms"], "best": label(best),
            "floor_ratio": fast["ms"] / floor_ms("chunked", n, h, c, peak_gflops),
            "lean": label(lean), "lean_bytes": beyond_must_exist(lean), "materialised_bytes": beyond_must_exist(ref),
            "memory_ratio": beyond_must_exist(lean) / beyond_must_exist(ref),
            "of_must_exist": beyond_must_exist(lean) / must_exist_bytes(n, h, c),
            "xla": {label(r): beyond_must_exist(r) for r in here if r["method"].endswith("XLA")}})
    if not per_size:
        raise ValueError("no size has measured materialised and chunked rows")
    skipped = [{"n": r["n"], "h": r["h"], "c": r["c"], "needs_bytes": r["needs_bytes"], "failed": r.get("failed"),
                "limit_bytes": r["limit_bytes"]}
               for r in rows if r.get("skipped") and r["method"] == "materialised"]
    return {"per_size": per_size, "largest": per_size[-1], "skipped": skipped}


def finding_text(f: dict[str, Any]) -> str:
    """:func:`finding` as Markdown: a table by size, then sentences on the largest size, the
    skipped sizes, this repository's targets and the paper's ratios."""
    lines = ["| N | H | C | fastest chunked / materialised time (tf.function; slower or faster: every timed call) | "
             "fastest chunked / its matmul floor | "
             "leanest chunked: memory beyond the must-exist bytes | / materialised op's | / the must-exist bytes |",
             "|---|---|---|---|---|---|---|---|"]
    for s in f["per_size"]:
        lines.append(f"| {s['n']:,} | {s['h']:,} | {s['c']:,} | {s['time_ratio']:.2f}× ({s['speed']}; block {s['block']:,}) | "
                     f"{s['floor_ratio']:.2f}× | {s['lean_bytes'] / 2**20:,.0f} MiB (block {s['lean_block']:,}) | "
                     f"{s['memory_ratio']:.1%} | {s['of_must_exist']:.1%} |")
    big = f["largest"]
    xla = "; ".join(f"{name} {b / 2**20:,.0f} MiB" for name, b in big["xla"].items())
    one = big["block"] == big["lean_block"]  # the fastest block size is also the leanest
    leanest = "" if one else f"the leanest (block {big['lean_block']:,}) "
    text = ("\n".join(lines) + "\n\n"
            f"{'At the largest size with both,' if len(f['per_size']) + len(f['skipped']) > 1 else 'At'} C = {big['c']:,}, "
            f"{'the' if one else 'the fastest'} chunked form ({big['chunked']}) was "
            f"{ {'faster': 'faster than', 'slower': 'slower than'}.get(big['speed'], 'neither always faster nor always slower than')} "
            f"the materialised fused op in a tf.function, {big['time_ratio']:.2f}× its time, and "
            f"{leanest}held "
            f"{big['memory_ratio']:.1%} of its memory beyond the bytes that must exist. Under XLA: {xla}.")
    for s in f["skipped"]:
        need = f"{s['needs_bytes'] / 2**30:.1f} GiB in all"
        past_int32 = (f"; N·C = {s['n'] * s['c']:,} elements there, more than the largest signed 32-bit integer"
                      if s["n"] * s["c"] > 2**31 - 1 else "")
        text += (f" At C = {s['c']:,} the materialised op's process failed (`{s['failed']}`), for a cause not "
                 f"established here: by the count it needs {need}, under this grid's limit of "
                 f"{s['limit_bytes'] / 2**30:.1f} GiB{past_int32}." if s.get("failed")
                 else f" At C = {s['c']:,} the materialised op was not run: it would need {need}.")
    goals = [(f"time at most 1.5× the materialised op's best, in a tf.function or with XLA (fastest chunked / "
               f"{big['best']}: {big['best_ratio']:.2f}×)",
              big["best_ratio"] <= 1.5),
             (f"within 2× its matmul floor ({big['floor_ratio']:.2f}×)", big["floor_ratio"] <= 2),
             (f"memory at most {MEMORY_TARGET:.0%} of the materialised op's ({big['memory_ratio']:.1%})",
              big["memory_ratio"] <= MEMORY_TARGET)]
    text += (" This repository's targets for the chunked loss, at this size: " + "; ".join(f"{g}: {'met' if ok else 'not met'}" for g, ok in goals)
             + ". Cut Cross-Entropy reports " + " and ".join(f"{100 * v:.2g}% for the {k}" for k, v in PAPER_RATIOS.items())
             + " (Gemma 2 (2B), a fused GPU kernel).")
    if big["h"] / big["n"] > MEMORY_TARGET:
        text += (f" With its second copy of `dW`, this implementation's ratio cannot fall below H/N = "
                 f"{big['h'] / big['n']:.1%} at this size, so its {MEMORY_TARGET:.0%} target is out of reach here.")
    return text


def guidance(f: dict[str, Any]) -> str:
    """The decision guide's bullet for large vocabularies, from :func:`finding`."""
    big = f["largest"]
    held = {name.split(" (")[0]: b for name, b in big["xla"].items()}
    xla = (f" (compiled with XLA it held {held['chunked XLA'] / 2**20:,.0f} MiB beyond the must-exist bytes, the "
           f"materialised op {held['materialised XLA'] / 2**20:,.0f} MiB)" if len(held) == 2 else "")
    return (f"- **A large vocabulary, integer labels, logits from a hidden state `h @ W + b`**: "
            f"`xentlab.losses.linear_cross_entropy(labels, h, W, b)` gives the exact loss and gradients without "
            f"holding the `[N, C]` logits. Measured here at N = {big['n']:,}, H = {big['h']:,}, C = {big['c']:,} in a "
            f"tf.function: {big['time_ratio']:.2f}× the materialised op's time ({big['speed']}; blocks of "
            f"{big['block']:,} columns), {big['memory_ratio']:.1%} of its memory beyond the bytes that must exist "
            f"(blocks of {big['lean_block']:,}). Its saving is the "
            f"materialised op's `[N, C]` float32 array (4·N·C bytes) less a second copy of `dW` (4·H·C) and a few "
            f"`[N, block]` temporaries, so by this count it grows with the tokens per hidden unit, N / H (not varied "
            f"here). Use it where that "
            f"array would not fit beside the model, or crowds it out, and not under XLA{xla}; otherwise the fused "
            f"`sparse_softmax_cross_entropy_with_logits` on materialised logits is the simpler call.")


def decision_row(f: dict[str, Any]) -> str:
    """The README decision table's row for large vocabularies, from :func:`finding` (the columns
    of :data:`xentlab.atlas.guide_text.TABLE_ROW`)."""
    from xentlab.atlas.guide_text import TABLE_ROW

    big = f["largest"]
    return TABLE_ROW.format(
        labels="integer `[N]`", outputs="a hidden state `h [N, H]` and the output layer `W [H, C]`, C large",
        call="`xentlab.losses.linear_cross_entropy(labels, h, W, b)` in a `tf.function` (not XLA)",
        why=(f"exact, never holds the `[N, C]` logits; at N = {big['n']:,}, H = {big['h']:,}, C = {big['c']:,}: "
             f"{big['time_ratio']:.2f}× the materialised op's time (blocks of {big['block']:,}), "
             f"{big['memory_ratio']:.0%} of its memory beyond the bytes that must exist (blocks of {big['lean_block']:,})"))


def main(*, quick: bool, json_path: Any = None) -> list[dict[str, Any]]:
    """``python -m xentlab bench --vocab [--quick]``: a small grid (``quick``: notebook 10's ``ci``
    size and a four times smaller vocabulary) or notebook 10's ``paper`` sizes, with progress on
    stderr; prints the table and the finding, and writes the rows as JSON to ``json_path`` if given."""
    from xentlab import bench
    from xentlab.profiles import PROFILES

    sizes = {"tokens": 4096, "hidden": 256, "classes": [4096, 16384], "block_sizes": [512, 2048]}
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
