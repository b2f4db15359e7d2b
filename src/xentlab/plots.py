"""Figures drawn by more than one notebook cell, or too long to sit in one."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np

from xentlab.train import History

__all__ = ["COLORS", "STYLES", "training_curves"]

#: One colour and line style per loss formulation of documents 001/002.
COLORS = {"manual": "tab:red", "log_softmax": "tab:blue", "fused": "tab:green"}
STYLES = {"manual": "-", "log_softmax": "--", "fused": ":"}


def training_curves(histories: Mapping[str, History]) -> plt.Figure:
    """Three panels over training steps, one line per loss (keys of :data:`COLORS`):
    training-batch accuracy, gradient global norm (log axis; steps where it is exactly 0 are
    drawn as markers at a floor below the smallest positive norm) and the fraction of softmax
    outputs that are exactly 0."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    positive = [g for h in histories.values() for g in h.grad_norm if g > 0]
    floor = min(positive) / 10 if positive else 1e-3
    for name, h in histories.items():
        steps, norm = np.array(h.step), np.array(h.grad_norm)
        style = dict(label=name, color=COLORS.get(name), ls=STYLES.get(name, "-"))
        axes[0].plot(steps, h.train_accuracy, **style)
        axes[1].plot(steps[norm > 0], norm[norm > 0], **style)
        axes[2].plot(steps, h.zero_fraction, **style)
        if np.any(norm == 0):
            axes[1].plot(steps[norm == 0], np.full(np.sum(norm == 0), floor), "v",
                         color=COLORS.get(name), ms=5, label=f"{name}: exactly 0 (drawn at the floor)")
    axes[0].axhline(0.1, color="grey", ls=":", lw=1)
    axes[0].set(title="training-batch accuracy (no dropout)", xlabel="step",
                ylabel="accuracy (fraction)", ylim=(0, 1.02))
    axes[1].set(title="gradient global norm", xlabel="step", ylabel="‖∇θ L‖ (loss units)",
                yscale="log")
    axes[2].set(title="softmax outputs exactly 0", xlabel="step", ylabel="fraction of outputs",
                ylim=(-0.02, 1.02))
    for ax in axes:
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
