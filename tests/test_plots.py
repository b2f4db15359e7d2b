"""xentlab.plots: the shared training figure."""

import matplotlib

matplotlib.use("Agg")

from xentlab import plots, train  # noqa: E402


def test_training_curves_marks_exact_zero_gradients():
    h = train.History(step=[0, 10, 20], grad_norm=[1.0, 0.0, 0.5], train_accuracy=[0.1, 0.5, 0.9],
                      zero_fraction=[0.9, 0.5, 0.1], zero_grad_wrong_fraction=[1.0, 1.0, 0.0])
    fig = plots.training_curves({"manual": h, "fused": h})
    acc, norm, zero = fig.axes
    assert len(acc.lines) == 3  # two losses and the chance line
    labels = [line.get_label() for line in norm.lines]
    assert "manual: exactly 0 (at the floor)" in labels
    marker = next(line for line in norm.lines if line.get_label().startswith("manual: exactly"))
    assert list(marker.get_xdata()) == [10] and marker.get_ydata()[0] == 0.05  # floor = 0.5 / 10
    assert norm.get_yscale() == "log" and list(zero.lines[0].get_ydata()) == [1.0, 1.0, 0.0]


def _h(**kw):
    base = dict(step=[0, 2, 4], loss=[2.3, 1.0, 0.5], train_accuracy=[0.1, 0.5, 0.9],
                grad_norm=[1.0, 0.5, 0.0])
    return train.History(**{**base, **kw})


def test_sum_vs_mean_one_panel_per_optimizer_and_batch_and_marks_divergence():
    sweep = {("sgd", 16, "mean"): _h(), ("sgd", 16, "sum"): _h(diverged_at=2),
             ("sgd", 64, "mean"): _h(), ("adam", 16, "mean"): _h(), ("adam", 64, "mean"): _h()}
    fig = plots.sum_vs_mean(sweep, {"sgd": 0.1, "adam": 1e-3}, {"sgd": "SGD", "adam": "Adam"})
    assert len(fig.axes) == 4 and fig.axes[0].get_title() == "SGD, batch 16"
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert labels == ["mean (lr 0.1)", "sum (lr 0.1)", "sum: diverged at step 2"]
    loss_line = fig.axes[0].lines[1]
    assert list(loss_line.get_xdata()) == [0, 32, 64] and loss_line.get_ydata()[0] == 2.3 / 16


def test_logit_sigmoid_softmax_rows_sum_to_one():
    fig = plots.logit_sigmoid_softmax()
    total = fig.axes[2].lines[-1]
    assert total.get_label() == "sum" and abs(max(total.get_ydata()) - 1) < 1e-6


def test_sigmoid_sweep_draws_gaps_and_edges():
    import numpy as np

    xs = np.array([-1.0, 0.0, 1.0])
    r = {"fused": np.ones(3), "manual": np.array([np.nan, 1.0, 1.0])}
    fig = plots.sigmoid_sweep(xs, {("float32", 0.0): r, ("float64", 0.0): r}, {("float32", 0.0): [-1.0]})
    assert len(fig.axes) == 2
    assert np.isnan(fig.axes[0].lines[1].get_ydata()[0]) and len(fig.axes[0].lines) == 3
    assert len(fig.axes[1].lines) == 2


def test_multilabel_results_bars_per_rule_and_curves():
    summary = {(n, r): {"exact": 0.5, "macro_f1": 0.7} for n in ("sigmoid", "x") for r in ("a", "b")}
    fig = plots.multilabel_results(summary, {("sigmoid", 0): _h(), ("x", 0): _h()})
    assert len(fig.axes[0].patches) == 4 and len(fig.axes[2].lines) == 2


def test_accuracy_grid_labels_every_cell():
    import numpy as np

    fig = plots.accuracy_grid(np.array([[0.1, 0.9]]), ["1"], ["a", "b"], title="t", ylabel="y",
                              colorbar="c")
    assert [t.get_text() for t in fig.axes[0].texts] == ["0.10", "0.90"]


def test_epsilon_weight_is_a_half_at_p_equal_eps():
    import numpy as np

    fig = plots.epsilon_weight([1e-6])
    line = fig.axes[0].lines[0]
    x, y = line.get_xdata(), line.get_ydata()
    assert abs(np.interp(-6, np.log10(x), y) - 0.5) < 0.02


def test_loss_vs_gap_marks_the_first_inf_and_skips_missing_kernels():
    import numpy as np

    d = np.array([0.0, 1.0, 2.0])
    curves = {"float32": {"manual": np.array([1.0, 2.0, np.inf]), "fused": None},
              "float64": {"manual": np.ones(3), "fused": np.ones(3)}}
    fig = plots.loss_vs_gap(d, d + 1, curves)
    ax32, ax64 = fig.axes
    assert [line.get_label() for line in ax32.lines][:2] == ["exact (float64)", "manual"]
    assert any(list(line.get_xdata()) == [2.0, 2.0] for line in ax32.lines)  # the red line
    assert len(ax64.lines) == 3


def test_gradient_vs_gap_draws_nan_apart_from_zero():
    import numpy as np

    d = np.array([0.0, 1.0, 2.0])
    g = np.array([[-0.5, 0.5], [0.0, 0.0], [np.nan, np.nan]])
    fig = plots.gradient_vs_gap(d, -np.ones(3), {"manual": g})
    marker = next(line for line in fig.axes[0].lines if "NaN" in str(line.get_label()))
    assert list(marker.get_xdata()) == [2.0] and list(marker.get_ydata()) == [0.2]


def test_keras_clip_two_panels():
    import numpy as np

    m = np.linspace(-1, 1, 5)
    fig = plots.keras_clip(m, m, m, m, m, m, 16.118)
    assert len(fig.axes) == 2 and "16.118" in fig.axes[0].texts[0].get_text()


def test_ce_cost_draws_both_modes_the_floor_and_leaves_out_untracked_memory():
    rows = [{"method": m, "classes": c, "compiled": comp, "ms": 1.0, "floor_ms": 0.4, "bound_ms": 0.5,
             "ratio_to_floor": 2.5, "peak_bytes": 0 if c == 10 else 2**20}
            for m in ("fused", "manual") for c in (10, 1000) for comp in (False, True)]
    fig = plots.ce_cost(rows, ("fused", "manual"))
    ax_t, ax_m = fig.axes
    assert len(ax_t.lines) == 4 + 2  # two methods x two modes, the floor and 1.3x
    assert "floor: one exp pass" in [line.get_label() for line in ax_t.lines]
    assert list(ax_t.lines[0].get_ydata()) == [2.5, 2.5]
    assert list(ax_m.lines[0].get_xdata()) == [1000] and len(ax_m.lines) == 3


def test_keras_training_one_line_per_run_and_the_ceiling():
    fig = plots.keras_training({"a": _h(zero_grad_wrong_fraction=[0, 1, 1]),
                                "b": _h(zero_grad_wrong_fraction=[0, 0, 0])}, 16.118)
    loss_ax, acc_ax, norm_ax = fig.axes
    assert len(loss_ax.lines) == 3  # two runs and the ceiling
    assert list(norm_ax.lines[0].get_ydata()) == [1.0, 0.5]  # positive norms; the 0 as a marker
    assert "a: exactly 0 (drawn at 1e-3)" in [line.get_label() for line in norm_ax.lines]


def test_training_curves_overlays_the_document_log_up_to_the_last_step():
    h = train.History(step=[0, 100], grad_norm=[1.0, 1.0], train_accuracy=[0.1, 0.8],
                      zero_fraction=[0.0, 0.0], zero_grad_wrong_fraction=[0.0, 0.0])
    fig = plots.training_curves({"fused": h}, document={"document": [(0, 0.1), (100, 0.7), (200, 0.9)]})
    doc = next(line for line in fig.axes[0].lines if line.get_label() == "document")
    assert list(doc.get_xdata()) == [0, 100] and list(doc.get_ydata()) == [0.1, 0.7]


def test_step_times_bars_with_the_spread():
    spread = {"a": {"min": 1.0, "median": 2.0, "max": 4.0}, "b": {"min": 2.0, "median": 2.5, "max": 3.0}}
    fig = plots.step_times(spread, {"a": "loop a", "b": "loop b"})
    ax = fig.axes[0]
    assert [p.get_width() for p in ax.patches] == [2.0, 2.5]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["loop a", "loop b"]


def test_sum_vs_mean_notes_a_curve_off_the_scale():
    sweep = {("sgd", 16, "mean"): _h(loss=[2.3, 1.0, 0.5]), ("sgd", 16, "sum"): _h(loss=[37.0, 80.0, 70.0])}
    fig = plots.sum_vs_mean(sweep, {"sgd": 0.1}, {"sgd": "SGD"})
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert labels[1] == "sum (lr 0.1), up to 5: off the scale"
