"""Figures drawn by more than one notebook cell, or too long to sit in one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf

from xentlab.sweeps import nonfinite_edges
from xentlab.train import History

__all__ = ["COLORS", "keras_backends", "MULTILABEL_TICKS", "STYLES", "accuracy_grid", "epsilon_weight",
           "gradient_vs_gap", "keras_clip", "keras_training", "logit_sigmoid_softmax", "loss_vs_gap",
           "multilabel_results", "sigmoid_sweep", "step_times", "sum_vs_mean", "ce_cost",
           "training_curves", "vocab_cost"]

#: One colour and line style per loss formulation of documents 001/002.
COLORS = {"manual": "tab:red", "log_softmax": "tab:blue", "fused": "tab:green"}
STYLES = {"manual": "-", "log_softmax": "--", "fused": ":"}


def training_curves(histories: Mapping[str, History],
                    document: Mapping[str, list[tuple[int, float]]] | None = None) -> plt.Figure:
    """Three panels over training steps, one line per run (colour and style by the loss named
    first in its key, see :data:`COLORS`; a key ending in ``(Eigen)`` is drawn thinner):
    training-batch accuracy, gradient global norm (log axis; evaluations where it is exactly 0
    are ticks below the smallest positive norm, one row of ticks per run so none hides another)
    and, among each batch's misclassified examples, the fraction whose logit gradient is exactly
    0 (gaps: no misclassified example). ``document``: printed training logs, label -> ``[(step,
    accuracy)]``, drawn as small black markers on the accuracy panel up to the last step trained.
    On the third panel runs with identical series share one line (labelled ``"a = b"``)."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.6))
    last = max((max(h.step) for h in histories.values() if h.step), default=0)
    for (label, log), marker in zip((document or {}).items(), ("o", "x", "+"), strict=False):
        shown = [(s, a) for s, a in log if s <= last]
        axes[0].plot([s for s, _ in shown], [a for _, a in shown], marker, color="black", ms=3,
                     alpha=0.5, ls="none", label=label)
    positive = [g for h in histories.values() for g in h.grad_norm if g > 0]
    floor = min(positive) / 10 if positive else 1e-3
    zero_runs = [n for n, h in histories.items() if np.any(np.array(h.grad_norm) == 0)]
    for name, h in histories.items():
        base = name.split()[0]
        eigen = name.endswith("(Eigen)")
        steps, norm = np.array(h.step), np.array(h.grad_norm)
        style = dict(label=name, color=COLORS.get(base), ls=STYLES.get(base, "-"),
                     lw=1.0 if eigen else 1.8, alpha=0.8 if eigen else 1.0)
        axes[0].plot(steps, h.train_accuracy, **style)
        if np.any(norm > 0):
            axes[1].plot(steps[norm > 0], norm[norm > 0], marker=".", ms=4, **style)
        if name in zero_runs:
            row = floor / 10 ** (0.6 * zero_runs.index(name))
            axes[1].plot(steps[norm == 0], np.full(np.sum(norm == 0), row), "|",
                         color=COLORS.get(base), ms=7,
                         label=f"{name}: exactly 0 at {int(np.sum(norm == 0))} of {len(norm)}")
    # identical series share one line, labelled with every run it stands for (none hides another)
    shared: dict[tuple[float, ...], list[str]] = {}
    for name, h in histories.items():
        shared.setdefault(tuple(np.nan_to_num(h.zero_grad_wrong_fraction, nan=-1.0)), []).append(name)
    for names in shared.values():
        first = names[0]
        base = first.split()[0]
        h = histories[first]
        axes[2].plot(h.step, h.zero_grad_wrong_fraction, marker=".", ms=3, color=COLORS.get(base),
                     ls=STYLES.get(base, "-"), label=" = ".join(names))
    axes[0].axhline(0.1, color="grey", ls=":", lw=1, label="chance (0.1)")
    axes[0].set_title("training-batch accuracy (no dropout)", fontsize=10)
    axes[0].set(xlabel="step", ylabel="accuracy (fraction)", ylim=(0, 1.02))
    axes[1].set_title("gradient global norm\n(ticks at the bottom: exactly 0, which has no log)",
                      fontsize=10)
    axes[1].set(xlabel="step", ylabel="‖∇θ L‖ (loss units)", yscale="log")
    axes[2].set_title("misclassified examples whose logit\ngradient is exactly 0 (gaps: none misclassified)",
                      fontsize=10)
    axes[2].set(xlabel="step", ylabel="fraction of misclassified examples", ylim=(-0.02, 1.02))
    for ax in axes:  # legends below the panels: none covers a line
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def sum_vs_mean(sweep: Mapping[tuple[str, int, str], History], lrs: Mapping[str, float],
                names: Mapping[str, str]) -> plt.Figure:
    """Notebook 01's grid: one panel per (optimizer, batch size), the training loss per example
    (a sum's loss divided by the batch size) over the examples seen, one line per reduction
    (``"mean"``, ``"sum"``, ``"sum/B"``: the sum at the learning rate divided by the batch size);
    a diverged run is marked with an ×. ``sweep`` is keyed ``(optimizer, batch size, reduction)``,
    ``lrs`` gives each optimizer's learning rate and ``names`` its panel title."""
    optimizers = list(dict.fromkeys(k[0] for k in sweep))
    batch_sizes = sorted({k[1] for k in sweep})
    fig, axes = plt.subplots(len(optimizers), len(batch_sizes), sharey=True, squeeze=False,
                             figsize=(4.5 * len(batch_sizes), 3.4 * len(optimizers)))
    for r, opt in enumerate(optimizers):
        for c, b in enumerate(batch_sizes):
            ax = axes[r, c]
            for reduction, style, lw in (("mean", "-", 3.5), ("sum", "--", 1.5), ("sum/B", ":", 1.5)):
                h = sweep.get((opt, b, reduction))
                if h is None:
                    continue
                lr = lrs[opt] / (b if reduction == "sum/B" else 1)
                per_example = np.array(h.loss) / (1 if reduction == "mean" else b)
                off = np.nanmax(per_example) > 3 if per_example.size else False
                # the mean is drawn wide and pale so that a sum curve on top of it stays visible
                ax.plot(np.array(h.step) * b, per_example, style, marker=".", lw=lw,
                        alpha=0.45 if reduction == "mean" else 1.0, label=f"{reduction} (lr {lr:.3g})"
                        + (f", up to {np.nanmax(per_example):.3g}: off the scale" if off else ""))
                if h.diverged_at is not None:
                    ax.plot(h.diverged_at * b, 2.5, "x", color="black", ms=10,
                            label=f"{reduction}: diverged at step {h.diverged_at}")
            ax.set(title=f"{names[opt]}, batch {b}", xlabel="training examples seen",
                   ylabel="training loss per example (nats)" if c == 0 else None, ylim=(0, 3))
            ax.legend(fontsize=8)
            ax.grid(alpha=0.3)
    fig.suptitle(_sum_against_mean(sweep, names, batch_sizes))
    fig.tight_layout()
    return fig


def _sum_against_mean(sweep: Mapping[tuple[str, int, str], History], names: Mapping[str, str],
                      batch_sizes: list[int], tol: float = 0.05) -> str:
    """One line per optimizer: at how many batch sizes the sum's last loss per example ends
    above ("worse"), within ``tol`` nats of ("same") or below ("better") the mean's; a run that
    diverged or ended non-finite counts as worse."""
    parts = []
    for opt in dict.fromkeys(k[0] for k in sweep):
        counts = {"worse": 0, "same": 0, "better": 0}
        for b in batch_sizes:
            mean, total = sweep.get((opt, b, "mean")), sweep.get((opt, b, "sum"))
            if mean is None or total is None or not mean.loss or not total.loss:
                continue
            diff = total.loss[-1] / b - mean.loss[-1]
            worse = total.diverged_at is not None or not np.isfinite(diff) or diff > tol
            counts["worse" if worse else "better" if diff < -tol else "same"] += 1
        parts.append(f"{names[opt]}: " + ", ".join(f"{k} at {v} of {len(batch_sizes)}" for k, v in counts.items() if v))
    return (f"Does the sum end worse than the mean? Last logged training loss per example, by batch size "
            f"(same: within {tol} nats)\n" + "; ".join(parts))


def logit_sigmoid_softmax() -> plt.Figure:
    """Notebook 04's three curves: logit(p), its inverse sigmoid(x), and the softmax of
    ``[x, 0, 1]`` with its row sum (computed with TensorFlow)."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    pp = np.linspace(0.001, 0.999, 400)
    axes[0].plot(pp, np.log(pp / (1 - pp)))
    axes[0].axhline(0, color="gray", lw=0.5)
    axes[0].axvline(0.5, color="gray", lw=0.5)
    axes[0].set(xlabel="probability p", ylabel="logit(p) = log(p/(1-p))",
                title="logit maps (0, 1) onto all real numbers")
    xx = np.linspace(-8, 8, 400)
    axes[1].plot(xx, tf.sigmoid(xx).numpy())
    axes[1].set(xlabel="logit x", ylabel="sigmoid(x)", title="sigmoid, logit's inverse, maps back")
    sm = tf.nn.softmax(np.stack([xx, np.zeros_like(xx), np.ones_like(xx)], axis=1)).numpy()
    for i, lab in enumerate(["z = [x, 0, 1]: class 0", "class 1", "class 2"]):
        axes[2].plot(xx, sm[:, i], label=lab)
    axes[2].plot(xx, sm.sum(1), "k:", label="sum")
    axes[2].set(xlabel="logit x of class 0", ylabel="softmax probability",
                title=f"softmax: the row sums to 1 (largest error {np.abs(sm.sum(1) - 1).max():.0e})")
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    return fig


def sigmoid_sweep(xs: np.ndarray, sweep: Mapping[tuple[str, float], Mapping[str, np.ndarray]],
                  xlim: tuple[float, float] = (-110.0, 50.0)) -> plt.Figure:
    """Notebook 04's manual vs fused binary cross-entropy over the logits ``xs``, one panel per
    dtype: ``sweep[(dtype, label)]`` from :func:`xentlab.sweeps.sigmoid_sweep`. The manual form's
    inf/NaN values leave gaps; a dotted line marks each x where it stops being finite
    (:func:`xentlab.sweeps.nonfinite_edges`), annotated with what each label's loss becomes
    there, and the title states the finding. ``xlim`` clips the axis (not the sweep)."""
    dtypes = list(dict.fromkeys(k[0] for k in sweep))
    fig, axes = plt.subplots(1, len(dtypes), figsize=(6.5 * len(dtypes), 4.2), sharey=True)
    for ax, dt in zip(np.atleast_1d(axes), dtypes, strict=True):
        edges: dict[float, list[str]] = {}
        fused_finite = True
        for (d, z), r in sweep.items():
            if d != dt:
                continue
            color = f"C{int(z)}"
            fused_finite &= bool(np.all(np.isfinite(r["fused"])))
            ax.plot(xs, r["fused"], color=color, lw=3, alpha=0.35, label=f"fused, label {z:.0f}")
            ax.plot(xs, np.where(np.isfinite(r["manual"]), r["manual"], np.nan), color=color,
                    ls="--", label=f"manual, label {z:.0f}")
            for edge, kind in nonfinite_edges(xs, r["manual"]):
                edges.setdefault(edge, []).append(f"label {z:.0f}: {kind}")
        for k, (edge, what) in enumerate(sorted(edges.items())):
            ax.axvline(edge, color="black", ls=":", lw=1,
                       label="manual stops being finite" if k == 0 else None)
            ax.annotate(f"x = {edge:.1f}\n" + "\n".join(what), (edge, 1.0), xycoords=("data", "axes fraction"),
                        xytext=(4 if edge < np.mean(xlim) else -4, -4), textcoords="offset points",
                        ha="left" if edge < np.mean(xlim) else "right", va="top", fontsize=7)
        where = " and ".join(f"x {'≤' if e < 0 else '≥'} {e:.1f}" for e in sorted(edges))
        ax.set(xlabel=f"logit x (axis clipped to [{xlim[0]:g}, {xlim[1]:g}] of the sweep's "
                      f"[{xs.min():g}, {xs.max():g}])",
               ylabel="binary cross-entropy (nats)", yscale="symlog", xlim=xlim,
               title=f"{dt}: fused {'finite everywhere' if fused_finite else 'NOT finite'}; "
                     + (f"manual inf/NaN at {where}" if where else "manual finite too"))
    handles = {h.get_label(): h for h in np.atleast_1d(axes)[0].get_lines()
               if not h.get_label().startswith("_")}
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=len(handles), fontsize=8)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


#: Tick labels of notebook 07's multi-label losses.
MULTILABEL_TICKS = {"sigmoid": "(a) sigmoid", "softmax_normalised": "(b) softmax,\nnormalised",
                    "softmax_multihot": "(c) softmax,\nmulti-hot",
                    "softmax_multihot_autodiff": "(d) softmax,\nmulti-hot, autodiff"}


def multilabel_results(summary: Mapping[tuple[str, str], Mapping[str, float]],
                       histories: Mapping[tuple[str, int], History]) -> plt.Figure:
    """Notebook 07's multi-label study: test exact-set accuracy and macro F1 per loss and rule
    (bars: the mean over seeds, whiskers: the smallest to the largest seed, from
    :func:`xentlab.multilabel.summarise`), and seed 0's training curves (``histories`` keyed
    ``(loss, seed)``). A loss has one colour in every panel; a rule one hatching. Legends sit
    outside the axes; titles state what the bars and curves show."""
    names = list(dict.fromkeys(k[0] for k in summary))
    rules = list(dict.fromkeys(k[1] for k in summary))
    hatches = ["", "///", "..", "xx"]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    width = 0.8 / len(rules)
    for j, rule in enumerate(rules):
        xs = np.arange(len(names)) + (j - (len(rules) - 1) / 2) * width
        for ax, key in zip(axes[:2], ("exact", "macro_f1"), strict=True):
            e = [summary[(n, rule)] for n in names]
            mean = np.array([v[key] for v in e])
            spread = [mean - [v.get(f"{key}_min", v[key]) for v in e],
                      np.array([v.get(f"{key}_max", v[key]) for v in e]) - mean]
            ax.bar(xs, mean, width, color=[f"C{i}" for i in range(len(names))], hatch=hatches[j % 4],
                   edgecolor="white", yerr=spread, capsize=2, error_kw={"lw": 0.8})
    for ax, what in zip(axes[:2], ("exact-set accuracy", "macro F1"), strict=True):
        ax.set_xticks(range(len(names)), [MULTILABEL_TICKS.get(n, n) for n in names], fontsize=8)
        ax.set(ylabel=f"test {what}", ylim=(0.0, 1.0),
               title=f"test {what}, every decision rule\n(thresholds chosen on the validation pairs)")
    patches = [plt.Rectangle((0, 0), 1, 1, facecolor="0.6", edgecolor="white", hatch=hatches[j % 4])
               for j in range(len(rules))]
    fig.legend(patches, [f"rule: {r}" for r in rules], loc="lower center", ncol=len(rules),
               fontsize=8, bbox_to_anchor=(0.34, 0.02), title="bars: mean over seeds; whiskers: seed range",
               title_fontsize=8)
    falls = {}
    for i, n in enumerate(names):
        h = histories[(n, 0)]
        axes[2].plot(h.step, h.train_accuracy, color=f"C{i}", ls=("-", "--", ":", "-.")[i % 4],
                     lw=2.2 - 0.4 * (i % 4), label=MULTILABEL_TICKS.get(n, n).replace("\n", " "))
        acc = np.asarray(h.train_accuracy, dtype=float)
        falls[n] = (float(acc.max()), float(acc[-1])) if acc.size else (np.nan, np.nan)
    drop = max(falls, key=lambda n: falls[n][0] - falls[n][1])
    axes[2].set(xlabel="training step", ylabel="top-1 in the label set (training batch)",
                ylim=(0, 1), title=f"training, seed 0: {MULTILABEL_TICKS.get(drop, drop).split()[0]} "
                                   f"peaks at {falls[drop][0]:.2f}, ends at {falls[drop][1]:.2f}")
    axes[2].legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def accuracy_grid(grid: np.ndarray, rows: list[str], columns: list[str], *, title: str,
                  ylabel: str, colorbar: str) -> plt.Figure:
    """A heat map of accuracies in [0, 1] (``grid [len(rows), len(columns)]``), each cell
    labelled with its value to two decimals (notebook 03's init-scale sweep)."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(len(columns)), columns)
    ax.set_yticks(range(len(rows)), rows)
    ax.set(xlabel="loss", ylabel=ylabel, title=title)
    for (r, c), v in np.ndenumerate(grid):
        ax.text(c, r, f"{v:.2f}", ha="center", va="center", color="white" if v < 0.6 else "black")
    fig.colorbar(im, ax=ax, label=colorbar)
    return fig


def epsilon_weight(epsilons: list[float]) -> plt.Figure:
    """The manual loss' gradient weight ``p_t / (p_t + ε)`` over the true-class probability
    ``p_t`` (log axis), one line per ε (notebook 03 §7)."""
    p_t = np.logspace(-14, 0, 400)
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for eps in epsilons:
        ax.plot(p_t, p_t / (p_t + eps), label=f"ε = {eps:g}")
    ax.set(xscale="log", xlabel="true-class probability p_t",
           ylabel="gradient weight w = p_t/(p_t+ε)", title="manual loss: gradient = w · (p − y)")
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


def loss_vs_gap(deltas: np.ndarray, exact: np.ndarray,
                curves: Mapping[str, Mapping[str, np.ndarray | None]]) -> plt.Figure:
    """Notebook 02's loss of one example over the logit gap Δ, one panel per dtype
    (``curves[dtype][route]``, None where the dtype has no kernel), the float64 ``exact`` loss
    behind them and a red line at the first Δ of the grid where a route returns inf (named in
    the panel's title). One legend, below the panels, covers no data."""
    fig, axes = plt.subplots(1, len(curves), figsize=(4 * len(curves), 4.2), sharey=True)
    for ax, (dtype, routes) in zip(np.atleast_1d(axes), curves.items(), strict=True):
        ax.plot(deltas, exact, color="black", lw=4, alpha=0.25, label="exact (float64)")
        first_inf = []
        for (name, values), style in zip(routes.items(), ["-", "--", ":"], strict=False):
            if values is None:
                continue
            ax.plot(deltas, np.where(np.isfinite(values), values, np.nan), style, label=name)
            if np.isinf(values).any():
                first_inf.append(float(deltas[np.argmax(np.isinf(values))]))
                ax.axvline(first_inf[-1], color="red", lw=0.8, label="first inf on the grid")
        ax.set(title=f"{dtype}: first inf on the grid at Δ = {min(first_inf):.3g}" if first_inf else
               f"{dtype}: no inf up to Δ = {float(deltas.max()):.3g}",
               xlabel="logit gap Δ (nats)", xscale="log", yscale="log",
               ylim=(0.1, float(deltas.max()) * 2), xlim=(1, float(deltas.max())))
    axes[0].set_ylabel("loss of one example (nats)")
    handles = {h.get_label(): h for ax in np.atleast_1d(axes) for h in ax.get_lines()}
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=len(handles), fontsize=8,
               title="manual lies on exact until it fails", title_fontsize=8)
    fig.tight_layout(rect=(0, 0.14, 1, 0.95))
    return fig


def gradient_vs_gap(deltas: np.ndarray, exact: np.ndarray, grads: Mapping[str, np.ndarray], *,
                    title: str = "Gradient w.r.t. the true class' logit") -> plt.Figure:
    """Notebook 02's gradient with respect to the true class' logit over the gap Δ: the exact
    ``p₀ − 1`` behind one line per route (``grads[route] [n, 2]``). NaN gradients cannot be
    drawn as values: they are marked in a band above the data (at +0.2), apart from true zeros."""
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(deltas, exact, color="black", lw=4, alpha=0.25, label="exact  p₀ − 1 (the others lie on it until they part)")
    for (name, g), style in zip(grads.items(), ["-", "--", ":"], strict=False):
        line, = ax.plot(deltas, g[:, 0], style, label=name)
        nan = np.isnan(g[:, 0])
        if nan.any():
            ax.plot(deltas[nan], np.full(nan.sum(), 0.2), "x", ms=3, color=line.get_color(),
                    label=f"{name}: NaN (drawn at +0.2)")
    ax.set(xlabel="logit gap Δ (nats)", ylabel="∂ loss / ∂ z₀ (float32)", xscale="symlog",
           ylim=(-1.2, 0.3), xlim=(0, float(deltas.max())), title=title)
    ax.legend(fontsize=8, loc="center right")
    return fig


def keras_clip(margins: np.ndarray, exact: np.ndarray, fused: np.ndarray, clipped: np.ndarray,
               grad_fused: np.ndarray, grad_clipped: np.ndarray, ceiling: float) -> plt.Figure:
    """Notebook 05's loss and gradient of one example over the margin ``m`` of the wrong class:
    ``from_logits=True`` (fused) against Keras' clipped probabilities, the loss capped at
    ``ceiling`` = −log ε and its gradient exactly 0 past it (arrays ``[n]``)."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    ax1.plot(margins, exact, "k-", lw=3, alpha=0.3, label="exact: softplus(m)")
    ax1.plot(margins, fused, "C0-", label="from_logits=True (fused)")
    ax1.plot(margins, clipped, "C3--", label="probabilities (clipped)")
    ax1.axhline(ceiling, color="gray", ls=":", lw=1)
    ax1.text(float(margins.min()) + 1, ceiling + 1, f"-log ε = {ceiling:.3f}", color="gray")
    ax1.set(xlabel="margin m of the wrong class over the true class (logit units)",
            ylabel="loss (nats)", title="Loss of one example")
    ax1.legend()
    ax2.plot(margins, -grad_fused, "C0-", label="from_logits=True")
    ax2.plot(margins, -grad_clipped, "C3--", label="probabilities (clipped)")
    ax2.set(xlabel="margin m (logit units)", ylabel="-d loss / d z_true",
            title="Gradient pushing the true logit up")
    ax2.legend()
    fig.tight_layout()
    return fig


def ce_cost(rows: list[Mapping[str, float | str]], methods: tuple[str, ...]) -> plt.Figure:
    """Notebook 06's cost of one cross-entropy call over the class count C (``rows`` as in
    ``xentlab.bench``'s ``ce_cost``): the median time as a multiple of the floor measured in the
    same run (one ``exp`` pass), inside ``tf.function`` (solid) and with XLA (dashed), with the
    floor (1×) marked; and the extra peak memory of the ``tf.function`` calls beside one
    ``[256, C]`` float32 array. Methods whose memory series are identical share one line
    (labelled ``"fused = sparse"``). TF's allocator statistics leave out the smallest allocations
    (0 bytes), which are not drawn. Both titles state what the largest C measured."""
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(13, 4.6))
    markers = "osD^vP"
    memory: dict[tuple[tuple[float, float], ...], list[int]] = {}
    for i, method in enumerate(methods):
        for compiled, style in ((False, f"{markers[i % 6]}-"), (True, f"{markers[i % 6]}--")):
            mine = sorted((r for r in rows if r["method"] == method and r["compiled"] == compiled),
                          key=lambda r: r["classes"])
            ax_t.plot([r["classes"] for r in mine], [r["ratio_to_floor"] for r in mine], style,
                      color=f"C{i}", ms=5 if compiled else 4, mfc="white" if compiled else f"C{i}",
                      lw=1.0 if compiled else 1.6, label=f"{method}{', XLA (hollow, dashed)' if compiled else ''}")
            if not compiled:
                series = tuple((r["classes"], r["peak_bytes"]) for r in mine if r["peak_bytes"])
                if series:
                    memory.setdefault(series, []).append(i)
    for k, (series, idx) in enumerate(memory.items()):  # later lines thinner, so that none hides another
        ax_m.plot([c for c, _ in series], [b / 2**20 for _, b in series], f"{markers[idx[0] % 6]}-",
                  color=f"C{idx[0]}", ms=max(3.0, 9 - 1.5 * k), lw=max(0.8, 3.0 - 0.5 * k),
                  label=" = ".join(methods[i] for i in idx))
    ax_t.axhline(1.0, color="black", lw=2, alpha=0.4, label="floor: one exp pass (same compiler)")
    cs = sorted({r["classes"] for r in rows})
    ax_m.plot(cs, [256 * c * 4 / 2**20 for c in cs], "k--", lw=1, label="one [256, C] float32 array")
    big = [r for r in rows if r["classes"] == cs[-1]]
    best = min(big, key=lambda r: r["ratio_to_floor"])
    near = [f"{r['method']}{', XLA' if r['compiled'] else ''}" for r in big
            if r is not best and r["ratio_to_floor"] <= 1.05 * best["ratio_to_floor"]]
    measured = [r for r in big if not r["compiled"] and r["peak_bytes"] is not None]
    least = min(measured, key=lambda r: r["peak_bytes"]) if measured else None
    lowest = [str(r["method"]) for r in measured if r["peak_bytes"] == least["peak_bytes"]] if least else []
    ax_t.set(xscale="log", xlabel="classes C", ylabel="median time / floor time", ylim=(0, None),
             title=f"Time per call as a multiple of the floor\nat C = {cs[-1]:,}: fastest "
                   f"{best['method']}{', XLA' if best['compiled'] else ''} "
                   f"({best['ratio_to_floor']:.2f}×)" + (f"; within 5%: {', '.join(near)}" if near else ""))
    ax_m.set(xscale="log", yscale="log", xlabel="classes C", ylabel="extra peak memory (MiB)",
             title=(f"Extra memory per call (tf.function)\nat C = {cs[-1]:,}: least "
                    f"{' and '.join(lowest)} ({least['peak_bytes'] / 2**20:.3g} MiB); 0-byte counts not drawn"
                    if least else "Extra memory per call: not measured\n(this process keeps no CPU "
                    "allocator statistics)"))
    ax_t.legend(fontsize=7, ncol=2, loc="upper left")
    ax_m.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def keras_training(histories: Mapping[str, History], ceiling: float) -> plt.Figure:
    """Notebook 05's training runs, one line per run: batch-mean loss (log axis, dotted line at
    Keras' clip ``ceiling`` = −log ε), training-batch accuracy, and the gradient global norm (log
    axis; exact zeros as markers a decade below the smallest positive norm). Identical runs draw
    with different dashes; the titles state the last accuracies and the count of exact zeros."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.9))
    positive_norms = [g for h in histories.values() for g in h.grad_norm if g > 0]
    floor = min(positive_norms) / 10 if positive_norms else 1e-3
    for i, (name, h) in enumerate(histories.items()):
        style = dict(label=name, color=f"C{i}", ls=(0, (4, 2 + i)) if i else "-", lw=2.5 - 0.4 * i,
                     marker=".", ms=4)
        axes[0].plot(h.step, h.loss, **style)
        axes[1].plot(h.step, h.train_accuracy, **style)
        positive = np.array(h.grad_norm) > 0
        axes[2].plot(np.array(h.step)[positive], np.array(h.grad_norm)[positive], **style)
        if not positive.all():
            axes[2].plot(np.array(h.step)[~positive], np.full((~positive).sum(), floor), "|",
                         color=f"C{i}", ms=8, label=f"{name}: exactly 0 (drawn at {floor:.0e})")
    axes[0].set(xlabel="training step", ylabel="CategoricalCrossentropy (nats, batch mean)", yscale="log")
    axes[0].axhline(ceiling, color="gray", ls=":", lw=1, label=f"clip ceiling −log ε = {ceiling:.3f}")
    axes[0].legend(fontsize=7)
    finals = {n: h.train_accuracy[-1] for n, h in histories.items() if h.train_accuracy}
    low, high = min(finals, key=finals.get), max(finals, key=finals.get)
    zeros = "\n".join(f"{n}: {int(np.sum(np.array(h.grad_norm) == 0))} of {len(h.grad_norm)} evaluations"
                       for n, h in histories.items() if np.any(np.array(h.grad_norm) == 0))
    axes[1].set(xlabel="training step", ylabel="training-batch accuracy (no dropout)", ylim=(0, 1))
    axes[1].set_title(f"Accuracy, last: highest {finals[high]:.2f} ({high}),\nlowest {finals[low]:.2f} ({low})",
                      fontsize=9)
    axes[2].set(xlabel="training step", ylabel="‖∇θ L‖ (loss units)", yscale="log")
    axes[2].set_title("Gradient global norm, exactly 0:\n" + (zeros or "never"), fontsize=9)
    axes[0].set_title("Loss (the clipped run's cannot exceed the ceiling)", fontsize=9)
    axes[1].legend(fontsize=8)
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    return fig


def step_times(spread: Mapping[str, Mapping[str, float]], labels: Mapping[str, str]) -> plt.Figure:
    """Notebook 06's milliseconds per training step: one bar per loop at its median, with a line
    from the fastest to the slowest repeat (``spread[key] = {"min", "median", "max"}``); the
    title names the fastest median and its ratio to the slowest."""
    keys = list(labels)
    med = [spread[k]["median"] for k in keys]
    err = [[spread[k]["median"] - spread[k]["min"] for k in keys],
           [spread[k]["max"] - spread[k]["median"] for k in keys]]
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.barh([labels[k] for k in keys], med, xerr=err, color=[f"C{i}" for i in range(len(keys))],
            capsize=4)
    fast, slow = keys[int(np.argmin(med))], keys[int(np.argmax(med))]
    spread_ratio = max(med) / min(med)
    ax.set(xlabel="milliseconds per training step (batch 128): median, min–max over repeats",
           title="Document 002's CNN, Adam, fused loss: " + (
               f"medians within {spread_ratio - 1:.0%} of each other, a tie" if spread_ratio < 1.05 else
               f"fastest median {labels[fast]}, {spread_ratio:.2f}× faster than {labels[slow]}"))
    ax.invert_yaxis()
    fig.tight_layout()
    return fig


def mixed_precision(rows: list[Mapping[str, object]], lost: Mapping[str, Mapping[str, float]]) -> plt.Figure:
    """Notebook 09: test accuracy after training, one marker per loss formulation (the mean over
    seeds) and one column per (policy, output dtype) (``rows`` from
    :func:`xentlab.mixed_precision.train_grid`, its ``grid`` runs), and per 16-bit dtype the fraction of
    float32's non-zero gradient elements that are exactly 0, split into those lost to the dtype's
    range (a loss scale keeps them) and those lost otherwise (rounding, or a ReLU switched off by
    it: no scale keeps them) (``lost[label]`` from :func:`xentlab.mixed_precision.underflow`)."""
    grid = [r for r in rows if r["grid"]]
    methods = list(dict.fromkeys(str(r["method"]) for r in grid))
    configs = list(dict.fromkeys((str(r["policy"]), str(r["output"])) for r in grid))
    fig, (ax_a, ax_g) = plt.subplots(1, 2, figsize=(13, 5.0), gridspec_kw={"width_ratios": [3, 2]})
    means = {}
    for i, method in enumerate(methods):
        for policy, output in configs:
            accs = [float(r["test_accuracy"]) for r in grid if (r["policy"], r["output"], r["method"])
                    == (policy, output, method)]
            means[(policy, output, method)] = float(np.mean(accs)) if accs else np.nan
        ax_a.plot(np.arange(len(configs)) + (i - 1) * 0.12,
                  [means[(p, o, method)] for p, o in configs], "os^D"[i % 4], color=f"C{i}",
                  ms=8, ls="none", label=method)
    seeds = len({r.get("seed", 0) for r in grid})
    ax_a.set_xticks(range(len(configs)), [f"{p}\noutput {o}" for p, o in configs], fontsize=8)
    ax_a.set(ylabel="test accuracy (axis does not start at 0)",
             title=f"test accuracy after training ({'mean of ' + str(seeds) + ' seeds' if seeds > 1 else 'one seed'})")
    ax_a.grid(axis="y", alpha=0.3)
    ax_a.legend(fontsize=8, loc="lower left")
    names = list(lost)
    to_range = np.array([100 * lost[k]["recovered"] for k in names])
    other = np.array([100 * (lost[k]["lost"] - lost[k]["recovered"]) for k in names])
    ax_g.barh(names, to_range, color="0.35", label="to range (the 2^15 loss scale keeps them)")
    ax_g.barh(names, other, left=to_range, color="0.75", label="to rounding (no scale keeps them)")
    for y, (a, b) in enumerate(zip(to_range, other, strict=True)):
        ax_g.text(a + b, y, f" {a:.3f}% + {b:.3f}%", va="center", fontsize=8)
    ax_g.set(xlabel="exactly 0 here, non-zero in float32 (% of float32's non-zero elements)",
             xlim=(0, max(float(np.max(to_range + other)), 1e-3) * 1.6),
             title="gradient elements lost without a loss scale")
    ax_g.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2))  # below: covers no bar
    ax_g.invert_yaxis()
    fig.tight_layout()
    return fig


def keras_backends(results: Mapping[tuple[str, str], Mapping[str, Any]]) -> plt.Figure:
    """Notebook 05's ``Model.fit`` runs (section 6), one panel per message, the step axis
    log-scaled (symlog: step 0 included): the N(0, 1) network's accuracy on the probe digits by
    backend; its fraction of probe digits whose true-class probability is below Keras' clip (the
    runs' ``epsilon``); the Keras-default network's accuracy by backend. TensorFlow solid, JAX
    dashed."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    eps = next(iter(results.values()))["epsilon"]
    steps = {init: r["steps"] for (_, init), r in results.items()}  # the same on every backend
    panels = [("stddev 1", "accuracy", axes[0], "N(0, 1) weights: accuracy"),
              ("stddev 1", "clipped", axes[1], rf"N(0, 1) weights: true-class $p < 10^{{{round(np.log10(eps))}}}$"),
              ("keras default", "accuracy", axes[2], "Keras' default weights: accuracy")]
    for init, key, ax, title in panels:
        title = f"{title} ({steps[init]:,} steps)"
        for (backend, run_init), r in results.items():
            if run_init != init:
                continue
            probes = r["probes"]
            ax.plot([p["step"] for p in probes], [p[key] for p in probes], label=backend,
                    color="C0" if backend == "tensorflow" else "C3", ls="-" if backend == "tensorflow" else "--",
                    marker="." if backend == "tensorflow" else "x")
        ax.set_xscale("symlog", linthresh=1)
        ax.set(xlabel="training step (log scale; linear from 0 to 1)", ylim=(-0.02, 1.02))
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("accuracy, first 1,000 test digits")
    axes[1].set_ylabel("fraction of the first 1,000 test digits")
    axes[2].set_ylabel("accuracy, first 1,000 test digits")
    fig.tight_layout()
    return fig

def vocab_cost(rows: list[dict[str, Any]], peak_gflops: float) -> plt.Figure:
    """Notebook 10's grid (:func:`xentlab.vocab.grid`), one line per method against the number of
    classes C, log-log: forward + backward milliseconds, with the matmul floors of the
    materialised and chunked forms at ``peak_gflops`` (dashed); and the peak memory beyond the
    bytes that must exist (:func:`xentlab.vocab.beyond_must_exist`), with the materialised op's
    computed need (hollow markers; crosses where its process failed) where it was not run. XLA rows dashed, with square markers. A
    grid of one size is drawn as bars instead (:func:`_vocab_bars`)."""
    from xentlab import vocab

    sizes = sorted({(r["n"], r["h"], r["c"]) for r in rows}, key=lambda s: s[2])
    if len(sizes) == 1:
        return _vocab_bars(rows, peak_gflops)
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(12, 4.4))
    labels = list(dict.fromkeys(vocab.label(r) for r in rows))
    for i, name in enumerate(labels):
        mine = [r for r in rows if vocab.label(r) == name and not r.get("skipped")]
        xla = "XLA" in name
        style = dict(color=f"C{i}", marker="s" if xla else "o", ls="--" if xla else "-", label=name)
        if mine:
            ax_t.plot([r["c"] for r in mine], [r["ms"] for r in mine], **style)
            ax_m.plot([r["c"] for r in mine], [max(vocab.beyond_must_exist(r), 1) / 2**20 for r in mine], **style)
        for failed in (False, True):  # the computed need of a materialised configuration not run, or failed
            gone = [r for r in rows if vocab.label(r) == name and r.get("needs_bytes") and bool(r.get("failed")) == failed]
            if gone:
                ax_m.plot([r["c"] for r in gone], [(r["needs_bytes"] - vocab.must_exist_bytes(r["n"], r["h"], r["c"])) / 2**20
                                                   for r in gone], ls="none", marker="X" if failed else "s" if xla else "o",
                          mfc="none", color=f"C{i}", label=f"{name}: {'failed' if failed else 'not run'}, computed need")
    for method, color in (("materialised", "k"), ("chunked", "0.5")):
        ax_t.plot([c for _, _, c in sizes], [vocab.floor_ms(method, n, h, c, peak_gflops) for n, h, c in sizes],
                  color=color, ls=":", lw=1,
                  label=f"matmul floor, {method}")
    for ax in (ax_t, ax_m):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("classes C (log scale)")
        ax.legend(fontsize=7)
    ax_t.set_ylabel("ms per forward + backward (median)")
    ax_t.set_title("Time of one forward + backward", fontsize=9)
    ax_m.set_ylabel("MiB at the peak, beyond h, W, b and their gradients")
    ax_m.set_title("Memory beyond the bytes that must exist", fontsize=9)
    fig.tight_layout()
    return fig


def _vocab_bars(rows: list[dict[str, Any]], peak_gflops: float) -> plt.Figure:
    """:func:`vocab_cost` for a grid of one size: a horizontal bar per method (a hollow, hatched
    bar for a materialised configuration's computed need where it was not run), each with a tick
    at its own matmul floor."""
    from xentlab import vocab

    n, h, c = rows[0]["n"], rows[0]["h"], rows[0]["c"]
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(12, 0.9 + 0.45 * len(rows)), sharey=True)
    for i, r in enumerate(rows):
        if r.get("skipped"):
            if r.get("needs_bytes"):
                ax_m.barh(i, (r["needs_bytes"] - vocab.must_exist_bytes(n, h, c)) / 2**20, color="none",
                          edgecolor=f"C{i}", hatch="//")
            ax_t.text(0, i, f" failed: {r['failed']}" if r.get("failed") else " not run: over the memory limit",
                      va="center", fontsize=8)
        else:
            ax_t.barh(i, r["ms"], color=f"C{i}")
            ax_m.barh(i, vocab.beyond_must_exist(r) / 2**20, color=f"C{i}")
    floors = [vocab.floor_ms(r["method"], n, h, c, peak_gflops, r.get("num_sampled") or vocab.NUM_SAMPLED) for r in rows]
    ax_t.plot(floors, range(len(rows)), ls="none", marker="|", markersize=16, mew=2, color="k",
              label="its matmul floor")
    ax_t.set_yticks(range(len(rows)), [vocab.label(r) for r in rows])
    ax_t.invert_yaxis()
    ax_t.legend(fontsize=7, loc="lower right")
    ax_t.set_xlabel("ms per forward + backward (median)")
    ax_m.set_xlabel("MiB at the peak, beyond h, W, b and their gradients"
                    + ("\n(hatched: computed need, not run or failed)" if any(r.get("needs_bytes") for r in rows) else ""))
    ax_t.set_title(f"Time of one forward + backward, N = {n:,}, H = {h:,}, C = {c:,}", fontsize=9)
    ax_m.set_title("Memory beyond the bytes that must exist", fontsize=9)
    fig.tight_layout()
    return fig
