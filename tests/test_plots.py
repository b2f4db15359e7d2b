"""xentlab.plots: the shared training figure."""

import matplotlib

matplotlib.use("Agg")

from xentlab import plots, train  # noqa: E402


def test_training_curves_marks_exact_zero_gradients():
    h = train.History(step=[0, 10, 20], grad_norm=[1.0, 0.0, 0.5], train_accuracy=[0.1, 0.5, 0.9],
                      zero_fraction=[0.9, 0.5, 0.1])
    fig = plots.training_curves({"manual": h, "fused": h})
    acc, norm, zero = fig.axes
    assert len(acc.lines) == 3  # two losses and the chance line
    labels = [line.get_label() for line in norm.lines]
    assert "manual: exactly 0 (drawn at the floor)" in labels
    marker = next(line for line in norm.lines if line.get_label().startswith("manual: exactly"))
    assert list(marker.get_xdata()) == [10] and marker.get_ydata()[0] == 0.05  # floor = 0.5 / 10
    assert norm.get_yscale() == "log" and len(zero.lines) == 2
