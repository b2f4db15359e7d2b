"""Where the cross-entropy formulations part: one example with a logit gap Δ, across dtypes.

The example is two classes with logits ``[0, Δ]`` and the label on class 0, so the true class'
probability is ``1 / (1 + e^Δ)`` and the exact loss is ``Δ + log(1 + e^-Δ)`` (≈ Δ). The
``manual`` route of document 001 (softmax, then ``-sum(y * log(p))``) returns ``inf`` once
``e^-Δ`` underflows in the working dtype; the fused op never does. Used by notebook 02.
:func:`sigmoid_sweep` does the same for document 003's sigmoid cross-entropy (notebook 04), and
:func:`sigmoid_table` prints where its routes agree and where the manual one stops being finite.

Notebook 02 also reruns document 001's 5×3 toy (``001_6f068e826eb9ea52.txt``, printing 16.478533):
:func:`printed_differing`, :func:`differing_lines`, :func:`run_without_constant_folding` and
:func:`eager_softmax_by_kernels` compare its softmax with the post's printout, and the remaining functions after
:func:`nonfinite_edges` build the notebook's sweeps, tables and sentences from its measurements.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from xentlab import runtime
from xentlab.losses import (
    reference_sigmoid_cross_entropy,
    reference_softmax_cross_entropy,
    sigmoid_cross_entropy,
    softmax_cross_entropy,
)

SWEEP_DTYPES: tuple[str, ...] = ("float16", "bfloat16", "float32", "float64")


def gap_logits(deltas: np.ndarray, dtype: str) -> tf.Tensor:
    """Logits ``[n, 2]`` with rows ``[0, Δ_i]`` in ``dtype``."""
    deltas = np.asarray(deltas, dtype=np.float64)
    return tf.cast(tf.stack([tf.zeros_like(deltas), deltas], axis=1), dtype)


def _labels(n: int, dtype: str) -> tf.Tensor:
    return tf.cast(tf.tile([[1.0, 0.0]], [n, 1]), dtype)


def gap_losses(
    deltas: np.ndarray, dtype: str, method: str, *, epsilon: float = 0.0
) -> np.ndarray:
    """Per-example loss ``[n]`` (as float64) of ``method`` at each gap, computed in ``dtype``."""
    logits = gap_logits(deltas, dtype)
    loss = softmax_cross_entropy(_labels(len(deltas), dtype), logits, method=method,
                                 epsilon=epsilon)
    return tf.cast(loss, tf.float64).numpy()


def gap_losses_or_none(
    deltas: np.ndarray, dtype: str, method: str, *, epsilon: float = 0.0
) -> np.ndarray | None:
    """:func:`gap_losses`, or None where TensorFlow has no kernel for this op and dtype on this
    device (it raises ``NotFoundError`` or ``InvalidArgumentError`` then)."""
    try:
        return gap_losses(deltas, dtype, method, epsilon=epsilon)
    except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError):
        return None


def first_where(xs: np.ndarray, mask: np.ndarray) -> float | None:
    """The first ``xs[i]`` where ``mask[i]`` holds (``xs`` increasing), None if nowhere."""
    mask = np.asarray(mask, dtype=bool)
    return float(np.asarray(xs)[np.argmax(mask)]) if mask.any() else None


def gap_gradients(
    deltas: np.ndarray, dtype: str, method: str, *, epsilon: float = 0.0
) -> np.ndarray:
    """Gradient ``[n, 2]`` (as float64) of each example's loss w.r.t. its logits, in ``dtype``.

    The exact gradient is ``softmax(z) - y`` = ``[p0 - 1, 1 - p0]`` ≈ ``[-1, 1]`` for large Δ.
    """
    logits = gap_logits(deltas, dtype)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        loss = softmax_cross_entropy(_labels(len(deltas), dtype), logits, method=method,
                                     epsilon=epsilon)
    return tf.cast(tape.gradient(loss, logits), tf.float64).numpy()


def exact_gap_loss(deltas: np.ndarray) -> np.ndarray:
    """The float64 oracle's loss ``[n]`` at each gap (:func:`xentlab.losses.oracle`), which for
    these rows is ``Δ + log1p(e^-Δ)``."""
    deltas = np.asarray(deltas, dtype=np.float64)
    logits = np.stack([np.zeros_like(deltas), deltas], axis=1)
    return reference_softmax_cross_entropy(np.tile([1.0, 0.0], (len(deltas), 1)), logits)


def first_inf_gap(
    dtype: str, method: str = "manual", *, epsilon: float = 0.0, hi: float = 1000.0
) -> float | None:
    """The smallest gap Δ in ``[0, hi]`` (representable in ``dtype``) where the loss of
    ``method`` (:func:`gap_losses`) is ``inf``.

    Bisection on Δ; assumes the loss is finite below the threshold and ``inf`` above it (true for
    the manual route, whose only failure is the underflow of ``e^-Δ``). ``None`` if the loss at
    ``hi`` is finite.
    """

    def is_inf(delta: float) -> bool:
        return bool(np.isinf(gap_losses(np.array([delta]), dtype, method, epsilon=epsilon)[0]))

    if not is_inf(hi):
        return None
    lo = 0.0
    for _ in range(60):  # 60 halvings of [0, hi ≤ 1e4] reach float64 resolution near the threshold
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if is_inf(mid) else (mid, hi)
    return float(tf.cast(hi, dtype))  # the first value, in the working dtype, that is inf


def ulp_distance(measured: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Distance in units in the last place of float32 between two float32 arrays (same shape).

    Uses the ordered-integer view of IEEE 754 floats, so it counts representable values between.
    """
    def ordered(x: np.ndarray) -> np.ndarray:
        bits = np.asarray(x, dtype=np.float32).view(np.int32).astype(np.int64)
        return np.where(bits < 0, np.int64(-(2**31)) - bits, bits)

    return np.abs(ordered(measured) - ordered(reference))


def sigmoid_sweep(xs: np.ndarray, label: float, dtype: str) -> dict[str, np.ndarray]:
    """Binary cross-entropy of one label ``z`` at each logit ``xs [n]``, computed in ``dtype``.

    Returns arrays ``[n]``: ``exact`` (the float64 reference
    ``max(x, 0) - x z + log1p(e^-|x|)``), ``fused`` (:func:`sigmoid_cross_entropy`, TF's op),
    ``stable`` (the docstring's formula in NumPy, in ``dtype``) and ``manual`` (sigmoid, then the
    two logs: inf or NaN once ``sigmoid(x)`` rounds to 0 or 1).
    """
    x = np.asarray(xs, dtype=np.float64).astype(dtype)
    z = np.full_like(x, label)
    return {
        "exact": reference_sigmoid_cross_entropy(np.full(len(x), label), xs),
        "fused": sigmoid_cross_entropy(z, x).numpy(),
        "stable": reference_sigmoid_cross_entropy(z, x, dtype),
        "manual": sigmoid_cross_entropy(z, x, method="manual").numpy(),
    }


def nonfinite_edges(xs: np.ndarray, values: np.ndarray) -> list[tuple[float, str]]:
    """Where ``values [n]`` (sampled at increasing ``xs [n]``) stop being finite on each side
    of 0: ``[(edge, kind)]`` with the largest non-finite ``x < 0`` and the smallest non-finite
    ``x > 0`` (those that exist), ``kind`` ``"NaN"`` if every value beyond the edge is NaN,
    else ``"inf"``."""
    xs, values = np.asarray(xs), np.asarray(values)
    bad = ~np.isfinite(values)
    edges = []
    for side, pick in ((xs < 0, np.max), (xs > 0, np.min)):
        if (bad & side).any():
            edge = float(pick(xs[bad & side]))
            beyond = values[xs <= edge] if edge < 0 else values[xs >= edge]
            edges.append((edge, "NaN" if np.isnan(beyond).all() else "inf"))
    return edges


def sigmoid_table(xs: np.ndarray, sweep: dict[tuple[str, float], dict[str, np.ndarray]]) -> str:
    """Notebook 04's table of :func:`sigmoid_sweep` results ``sweep[(dtype, label)]`` at logits
    ``xs [n]``, one row per (dtype, label): ``True`` or ``False`` for is the fused op finite
    everywhere, is its relative error to the float64 reference below 1e-6, and does it equal the
    docstring's stable formula (within 4 eps of the dtype times the largest loss); then where the
    manual form stops being finite (:func:`nonfinite_edges`)."""
    nowhere = f"nowhere in [{np.min(xs):g}, {np.max(xs):g}]"
    rows = [f"{'dtype':8s} {'label':>5s} {'fused finite':>12s} {'rel err < 1e-6':>14s} "
            f"{'fused == formula':>16s} {'manual non-finite where':>34s}"]
    for (dt, z), r in sweep.items():
        edges = nonfinite_edges(xs, r["manual"])
        rel = np.max(np.abs(r["fused"] - r["exact"]) / np.maximum(r["exact"], 1e-30))
        same = np.max(np.abs(r["fused"] - r["stable"])) <= 4 * np.finfo(dt).eps * np.max(r["exact"])
        desc = ", ".join(f"x {'<=' if e < 0 else '>='} {e:.1f} ({kind})" for e, kind in edges)
        finite = bool(np.all(np.isfinite(r["fused"])))
        rows.append(f"{dt:8s} {z:5.0f} {finite!s:>12} {bool(rel < 1e-6)!s:>14} "
                    f"{bool(same)!s:>16} {desc or nowhere:>34s}")
    return "\n".join(rows)


# Notebook 02's helpers: the post's toy (document 001) and the logit-gap sweeps around it.

def printed_differing(values: np.ndarray, doc: np.ndarray) -> list[tuple[int, int, str, str]]:
    """``[(row, col, ours, post)]`` where ``values [r, c]`` printed as document 001 printed its
    softmax (``%.7e``, 8 significant digits) differ from ``doc [r, c]`` (the post's decimals,
    formatted from float64 so that they read as printed)."""
    values, doc = np.asarray(values), np.asarray(doc, dtype=np.float64)
    cols = values.shape[1]
    return [(i // cols, i % cols, ours, post) for i, (ours, post) in enumerate(
        zip([f"{v:.7e}" for v in values.ravel()], [f"{v:.7e}" for v in doc.ravel()], strict=True))
        if ours != post]


def differing_lines(differing: list[tuple[int, int, str, str]], ulps: np.ndarray, kernels: str) -> str:
    """Printed lines: how many of the ``ulps.size`` printed values differ from the post's (with
    this process' ``kernels``, e.g. ``"oneDNN"``), each one (:func:`printed_differing`), and the
    distance ``ulps [r, c]`` in float32 ulps (:func:`ulp_distance`)."""
    return "\n".join([f"{len(differing)} of {ulps.size} printed values differ from the post's "
                      f"(this process: {kernels}'s kernels):"]
                     + [f"  [{row},{col}] ours {ours}  post {doc}" for row, col, ours, doc in differing]
                     + ["distance in float32 ulps:", str(ulps)])


def run_without_constant_folding(graph: tf.Graph, fetch: Any) -> Any:
    """``tf.compat.v1.Session(graph).run(fetch)`` with Grappler's constant folding switched off
    (``rewrite_options.constant_folding = OFF``), so constant subgraphs run the process' kernels."""
    config_v1 = tf.compat.v1.ConfigProto()
    rewrite = config_v1.graph_options.rewrite_options
    rewrite.constant_folding = rewrite.OFF
    with tf.compat.v1.Session(graph=graph, config=config_v1) as sess:
        return sess.run(fetch)


def eager_softmax_by_kernels(logits: np.ndarray) -> dict[str, np.ndarray]:
    """``{"oneDNN": softmax, "Eigen": softmax}``: eager ``tf.nn.softmax(logits [r, c])`` as float32
    ``[r, c]``, each computed in a fresh process with that kernel set, the two started together
    (:func:`xentlab.runtime.run_with_each_kernel_set`)."""
    code = ("import json, tensorflow as tf; "
            f"print(json.dumps(tf.nn.softmax(tf.constant({np.asarray(logits).tolist()})).numpy().tolist()))")
    return {name: np.array(v, np.float32) for name, v in runtime.run_with_each_kernel_set(code).items()}


def gap_curves(deltas: np.ndarray, epsilon: float,
               dtypes: tuple[str, ...] = SWEEP_DTYPES) -> dict[str, dict[str, np.ndarray | None]]:
    """``{dtype: {"manual", "manual, ε=<epsilon>", "fused": loss [n] or None}}``: the loss at each
    gap ``deltas [n]`` of the manual route, of document 002's ``log(p + ε)`` and of the fused op
    (:func:`gap_losses_or_none`: None where the dtype has no kernel)."""
    return {dtype: {"manual": gap_losses_or_none(deltas, dtype, "manual"),
                    f"manual, ε={epsilon:g}": gap_losses_or_none(deltas, dtype, "manual", epsilon=epsilon),
                    "fused": gap_losses_or_none(deltas, dtype, "fused")} for dtype in dtypes}


def fused_max_rel_error(curves: dict[str, dict[str, np.ndarray | None]],
                        exact: np.ndarray) -> dict[str, float | None]:
    """Per dtype, the fused op's largest error against ``exact [n]`` (:func:`exact_gap_loss`),
    relative where the loss exceeds 1 and absolute below (``|fused - exact| / max(exact, 1)``);
    None without a kernel."""
    return {dtype: None if c["fused"] is None else float(np.max(np.abs(c["fused"] - exact) / exact.clip(min=1)))
            for dtype, c in curves.items()}


def first_inf_table(first_inf: dict[str, float | None], fused_err: dict[str, float | None],
                    sweep_max: float) -> str:
    """Notebook 02's table: per dtype, the first gap where the manual loss is inf
    (:func:`first_inf_gap`; ``never (≤ sweep_max)``) and the fused op's largest error
    (:func:`fused_max_rel_error`; ``no kernel``)."""
    rows = [f"{'dtype':>9} | {'first Δ where manual = inf':>26} | {'fused max rel. error':>20}"]
    for dtype in first_inf:
        gap = f"never (≤ {sweep_max:g})" if first_inf[dtype] is None else f"{first_inf[dtype]:.4g}"
        err = "no kernel" if fused_err[dtype] is None else f"{fused_err[dtype]:.1e}"
        rows.append(f"{dtype:>9} | {gap:>26} | {err:>20}")
    return "\n".join(rows)


def first_inf_gap_with_kernels(dtype: str, method: str = "manual", *, onednn: bool,
                               hi: float = 1000.0) -> float | None:
    """:func:`first_inf_gap` of ``method`` in ``dtype`` on ``[0, hi]``, computed in a fresh
    process with oneDNN's kernels on or off (:func:`xentlab.runtime.run_with_kernels`)."""
    code = runtime.json_call("xentlab.sweeps", "first_inf_gap", dtype=dtype, method=method, hi=float(hi))
    return runtime.run_with_kernels(code, onednn=onednn)


def gap_gradient_curves(deltas: np.ndarray, dtype: str, epsilon: float) -> dict[str, np.ndarray]:
    """``{"manual (ε = 0)", "manual (ε = <epsilon>)", "fused": gradient [n, 2]}``: each route's
    gradient w.r.t. the logits at each gap ``deltas [n]`` (:func:`gap_gradients`)."""
    return {"manual (ε = 0)": gap_gradients(deltas, dtype, "manual"),
            f"manual (ε = {epsilon:g})": gap_gradients(deltas, dtype, "manual", epsilon=epsilon),
            "fused": gap_gradients(deltas, dtype, "fused")}


def gradient_gap_lines(nan_gap: float | None, zero_gap: float | None, half_gap: float | None,
                       fused_grad_err: float, epsilon: float) -> str:
    """Printed lines: the gap from which the manual gradient is NaN (ε = 0), exactly 0 and below
    half the exact one (ε = ``epsilon``, beside ``-log ε``), each from :func:`first_where` (None:
    nowhere in the sweep), and the fused gradient's largest error."""
    def since(gap: float | None) -> str:
        return "nowhere in the sweep" if gap is None else f"from Δ = {gap:.0f} on"

    return "\n".join([
        f"manual, ε = 0:      gradient NaN {since(nan_gap)}",
        f"manual, ε = {epsilon:g}: gradient exactly 0 {since(zero_gap)}",
        f"manual, ε = {epsilon:g}: gradient below half the exact one {since(half_gap)} "
        f"(-log ε = {-np.log(epsilon):.1f})",
        f"fused: max |error| of the gradient over the sweep = {fused_grad_err:.0e}",
    ])


def printout_text(graph_max_ulps: int, differing: dict[str, int], max_ulps: dict[str, int]) -> str:
    """The ``001.softmax-printout`` claim's measured sentence: graph mode's largest distance from
    the post's printed softmax (ulps), and per eager kernel set (``"oneDNN"``, ``"Eigen"``) how
    many of the 15 printed values differ and by how many ulps at most."""
    graph = ("graph mode: identical to all 15 printed values" if graph_max_ulps == 0 else
             f"graph mode: within {graph_max_ulps} ulp of the 15 printed values")
    return (f"{graph}; eager with oneDNN: {differing['oneDNN']} of 15 differ, by up to {max_ulps['oneDNN']} ulp; "
            f"eager with Eigen: within {max_ulps['Eigen']} ulp")


def _gap(value: float | None, decimals: int) -> str:
    return "never" if value is None else f"{value:.{decimals}f}"


def fused_composite_text(first_inf: dict[str, float | None], agree: dict[str, bool], *, rtol: float,
                         gap_max: float, compared: int) -> str:
    """The ``001.fused-equals-composite`` claim's measured sentence: in which dtypes the manual
    route and the fused op agreed within ``rtol`` (``agree[dtype]``, ``np.allclose``) at the
    ``compared`` swept gaps up to ``gap_max``, and the first gaps where the manual route returns
    inf (:func:`first_inf_gap`; None: never) in float32, float16 and float64; the fused op stays
    finite at every swept gap (notebook 02 asserts it before recording the claim)."""
    def listed(dtypes: list[str]) -> str:
        return ", ".join(dtypes) or "no dtype"

    same = [d for d, ok in agree.items() if ok]
    differ = [d for d, ok in agree.items() if not ok]
    return (f"equal within {rtol:.0%} at the {compared} swept gap{'' if compared == 1 else 's'} up to "
            f"{gap_max:g} in {listed(same)}" + (f" but not in {listed(differ)}" if differ else "")
            + f"; the manual route returns inf from a gap of {_gap(first_inf['float32'], 2)} (float32), "
            f"{_gap(first_inf['float16'], 1)} (float16), {_gap(first_inf['float64'], 0)} (float64); "
            "the fused op stays finite at every swept gap")


#: The word a summary bullet opens with, per recorded verdict (:func:`xentlab.record.summary`).
VERDICT_WORDS: dict[str, str] = {"reproduced": "Reproduced", "partly": "Partly true", "refuted": "Refuted",
                                 "untested": "Untested"}


def summary_markdown(verdicts: dict[str, str], first_inf: dict[str, float], first_inf_eigen: float,
                     epsilon: float, graph_max_ulps: int, differing: dict[str, int],
                     max_ulps: dict[str, int]) -> str:
    """Notebook 02's summary (markdown bullets) from its recorded verdicts (``{id: verdict}``,
    :func:`xentlab.record.summary`; each bullet opens with :data:`VERDICT_WORDS`) and its
    measurements: the gaps where the manual route returns inf per dtype (float32 also as a
    multiple of ln 2, and with Eigen's kernels), the softmax printout's ulps (graph mode, eager
    per kernel set) and ``epsilon``."""
    word = {claim: VERDICT_WORDS[v] for claim, v in verdicts.items()}
    k32 = round(first_inf["float32"] / float(np.log(2.0)))
    graph = "to the last digit" if graph_max_ulps == 0 else f"within {graph_max_ulps} float32 ulp(s)"
    return "\n".join([
        f"- **{word['001.same-value']}**: on the post's toy both routes print exactly **16.478533**, eagerly "
        "and in `tf.compat.v1` graph mode.",
        f"- **{word['001.softmax-printout']}**: the printed softmax, in graph mode as the post ran it, {graph} "
        "(Grappler folds the constant softmax with Eigen's kernel). Eager mode "
        f"with oneDNN's kernels is up to {max_ulps['oneDNN']} float32 ulp(s) off in "
        f"{differing['oneDNN']} of 15 values; eager mode with Eigen's kernels is within "
        f"{max_ulps['Eigen']} ulp, and graph mode with constant folding off prints what eager mode prints. "
        "None of this changes the loss's printed value.",
        f"- **{word['001.fused-equals-composite']}**: \"the same loss\" holds only while the true class' "
        "probability is representable. "
        f"The largest gap in the toy is 81, just inside float32's range; beyond a gap of {first_inf['float32']:.2f} "
        f"(float32 here, ${k32} \\ln 2$; {first_inf_eigen:.2f} with Eigen's softmax: TensorFlow's CPU kernels flush "
        f"subnormals to zero), {first_inf['float16']:.1f} (float16), {first_inf['bfloat16']:.0f} (bfloat16) or "
        f"{first_inf['float64']:.0f} (float64) the manual route returns `inf`, and its gradient becomes NaN "
        f"($\\varepsilon = 0$) or exactly 0 ($\\varepsilon =$ {epsilon:g}; it already fades from "
        f"$\\Delta \\approx -\\log \\varepsilon \\approx {-np.log(epsilon):.0f}$, and in "
        f"float16 $\\varepsilon =$ {epsilon:g} is {float(np.float16(epsilon)):g}). The fused op computes "
        "$\\mathrm{logsumexp}(z) - z_y$ and stays "
        "exact across the whole sweep in every dtype it supports — that, not convenience, is why it exists.",
    ])
