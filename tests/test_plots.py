"""xentlab.plots: the notebooks' figures."""

import matplotlib
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from xentlab import plots, train  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_training_curves_marks_exact_zero_gradients_one_row_per_run():
    h = train.History(step=[0, 10, 20], grad_norm=[1.0, 0.0, 0.5], train_accuracy=[0.1, 0.5, 0.9],
                      zero_fraction=[0.9, 0.5, 0.1], zero_grad_wrong_fraction=[1.0, 1.0, float("nan")])
    fig = plots.training_curves({"manual (oneDNN)": h, "manual (Eigen)": h, "fused": h})
    acc, norm, zero = fig.axes
    assert len(acc.lines) == 4  # three runs and the chance line
    ticks = {line.get_label(): line for line in norm.lines if ": exactly 0" in line.get_label()}
    assert set(ticks) == {"manual (oneDNN): exactly 0 at 1 of 3", "manual (Eigen): exactly 0 at 1 of 3",
                          "fused: exactly 0 at 1 of 3"}
    rows = [t.get_ydata()[0] for t in ticks.values()]
    assert rows[0] == 0.05 and len(set(rows)) == 3  # floor = 0.5 / 10, then one row per run
    assert all(list(t.get_xdata()) == [10] for t in ticks.values())
    assert norm.get_yscale() == "log"
    assert list(zero.lines[0].get_ydata())[:2] == [1.0, 1.0]  # the NaN (none wrong) is a gap
    assert [line.get_label() for line in zero.lines] == ["manual (oneDNN) = manual (Eigen) = fused"]
    eigen = next(line for line in acc.lines if line.get_label() == "manual (Eigen)")
    assert eigen.get_color() == plots.COLORS["manual"] and eigen.get_linewidth() < acc.lines[0].get_linewidth()


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
    ok = {"fused": np.ones(3), "manual": np.ones(3)}
    fig = plots.sigmoid_sweep(xs, {("float32", 0.0): r, ("float32", 1.0): r, ("float64", 0.0): ok})
    ax32, ax64 = fig.axes[:2]
    assert np.isnan(ax32.lines[1].get_ydata()[0]) and len(ax32.lines) == 4 + 1  # one shared edge
    assert ax32.get_title() == "float32: fused finite everywhere; manual inf/NaN at x ≤ -1.0"
    assert "label 0: NaN" in ax32.texts[0].get_text() and "label 1: NaN" in ax32.texts[0].get_text()
    assert len(ax64.lines) == 2 and ax64.get_title().endswith("manual finite too")
    assert all(not t.get_text().startswith("_") for t in fig.legends[0].get_texts())


def test_multilabel_results_bars_per_rule_and_curves():
    summary = {(n, r): {"exact": 0.5 if n == "sigmoid" else 0.1, "exact_min": 0.05, "exact_max": 0.6,
                        "macro_f1": 0.7} for n in ("sigmoid", "x") for r in ("a", "b")}
    fig = plots.multilabel_results(summary, {("sigmoid", 0): _h(), ("x", 0): _h(train_accuracy=[0.1, 0.8, 0.3])})
    exact, f1, curves = fig.axes
    assert len(exact.patches) == 4 and len(curves.lines) == 2
    assert exact.patches[0].get_facecolor() == exact.patches[2].get_facecolor()  # colour = loss
    assert exact.patches[0].get_hatch() != exact.patches[2].get_hatch()  # hatching = rule
    assert exact.get_title() == "test exact-set accuracy, every decision rule\n(thresholds chosen on the validation pairs)"
    assert len({line.get_linestyle() for line in curves.lines}) == len(curves.lines)  # overlapping curves stay apart
    assert curves.get_title() == "training, seed 0: x peaks at 0.80, ends at 0.30"
    assert [type(c).__name__ for c in exact.containers] == ["ErrorbarContainer", "BarContainer"] * 2


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
    assert ax32.get_title() == "float32: first inf on the grid at Δ = 2" and ax64.get_title() == "float64: no inf up to Δ = 2"
    assert "first inf on the grid" in [t.get_text() for t in fig.legends[0].get_texts()]


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
    assert len(ax_t.lines) == 4 + 1  # two methods x two modes, and the floor
    assert "floor: one exp pass (same compiler)" in [line.get_label() for line in ax_t.lines]
    xla = next(line for line in ax_t.lines if line.get_label().endswith("XLA (hollow, dashed)"))
    assert xla.get_markerfacecolor() == "white" and xla.get_linestyle() == "--"
    assert list(ax_t.lines[0].get_ydata()) == [2.5, 2.5]
    assert list(ax_m.lines[0].get_xdata()) == [1000]
    assert [line.get_label() for line in ax_m.lines] == ["fused = manual", "one [256, C] float32 array"]
    assert "fused and manual (1 MiB)" in ax_m.get_title()  # identical series share a line


def test_ce_cost_titles_state_the_largest_c():
    rows = [{"method": m, "classes": c, "compiled": comp, "ms": 1.0, "floor_ms": 0.4, "bound_ms": 0.5,
             "ratio_to_floor": r + (0.5 if comp else 0), "peak_bytes": p * 2**20}
            for m, r, p in (("fused", 1.2, 2), ("manual", 2.0, 5)) for c in (10, 1000)
            for comp in (False, True)]
    ax_t, ax_m = plots.ce_cost(rows, ("fused", "manual")).axes
    assert "at C = 1,000: fastest fused (1.20×)" in ax_t.get_title()
    assert "least fused (2 MiB)" in ax_m.get_title()
    assert [line.get_label() for line in ax_m.lines][:2] == ["fused", "manual"]


def test_ce_cost_says_when_memory_was_not_measured():
    rows = [{"method": m, "classes": c, "compiled": comp, "ms": 1.0, "floor_ms": 0.4, "bound_ms": 0.5,
             "ratio_to_floor": 2.5, "peak_bytes": None}
            for m in ("fused", "manual") for c in (10, 1000) for comp in (False, True)]
    ax_t, ax_m = plots.ce_cost(rows, ("fused", "manual")).axes
    assert ax_m.get_title().startswith("Extra memory per call: not measured")
    assert [line.get_label() for line in ax_m.lines] == ["one [256, C] float32 array"]


def test_keras_training_one_line_per_run_and_the_ceiling():
    fig = plots.keras_training({"a": _h(zero_grad_wrong_fraction=[0, 1, 1]),
                                "b": _h(zero_grad_wrong_fraction=[0, 0, 0])}, 16.118)
    loss_ax, acc_ax, norm_ax = fig.axes
    assert len(loss_ax.lines) == 3  # two runs and the ceiling
    assert list(norm_ax.lines[0].get_ydata()) == [1.0, 0.5]  # positive norms; the 0 as a marker
    assert "a: exactly 0 (drawn at 5e-02)" in [line.get_label() for line in norm_ax.lines]  # 0.5 / 10
    assert norm_ax.get_title().endswith("a: 1 of 3 evaluations\nb: 1 of 3 evaluations")
    assert acc_ax.get_title() == "Accuracy, last: highest 0.90 (a),\nlowest 0.90 (a)"


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
    assert ax.get_title().endswith("fastest median loop a, 1.25× faster than loop b")
    tie = plots.step_times({"a": {"min": 1.0, "median": 2.0, "max": 3.0}, "b": {"min": 1.0, "median": 2.04, "max": 3.0}},
                           {"a": "loop a", "b": "loop b"})
    assert tie.axes[0].get_title().endswith("medians within 2% of each other, a tie")


def test_sum_vs_mean_notes_a_curve_off_the_scale():
    sweep = {("sgd", 16, "mean"): _h(loss=[2.3, 1.0, 0.5]), ("sgd", 16, "sum"): _h(loss=[37.0, 80.0, 70.0])}
    fig = plots.sum_vs_mean(sweep, {"sgd": 0.1}, {"sgd": "SGD"})
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert labels[1] == "sum (lr 0.1), up to 5: off the scale"


def test_sum_vs_mean_title_counts_sum_against_mean():
    sweep = {("sgd", 16, "mean"): _h(), ("sgd", 16, "sum"): _h(diverged_at=2),
             ("adam", 16, "mean"): _h(), ("adam", 16, "sum"): _h(loss=[2.3, 1.0, 0.5 * 16 + 0.01])}
    fig = plots.sum_vs_mean(sweep, {"sgd": 0.1, "adam": 0.001}, {"sgd": "SGD", "adam": "Adam"})
    assert fig._suptitle.get_text().endswith("SGD: worse at 1 of 1; Adam: same at 1 of 1")
    assert fig._suptitle.get_text().startswith("Does the sum end worse than the mean?")


def test_mixed_precision_averages_seeds_and_splits_range_from_rounding():
    rows = [{"policy": p, "output": o, "method": m, "grid": True, "seed": seed,
             "test_accuracy": (0.5 if (p, m) == ("f16", "manual") else 0.9) + 0.1 * seed}
            for p, o in (("f32", "f32"), ("f16", "16-bit")) for m in ("manual", "fused") for seed in (0, 1)]
    rows.append({"policy": "f16", "output": "f32", "method": "fused", "grid": False, "test_accuracy": 0.1})
    lost = {"float16": {"lost": 0.01, "recovered": 0.0075}, "bfloat16": {"lost": 0.0002, "recovered": 0.0}}
    fig = plots.mixed_precision(rows, lost)
    ax_a, ax_g = fig.axes
    assert [line.get_label() for line in ax_a.lines] == ["manual", "fused"]  # the extra run is left out
    assert list(ax_a.lines[0].get_ydata()) == [0.95, 0.55]  # means over the two seeds
    assert ax_a.get_title() == "test accuracy after training (mean of 2 seeds)"
    assert ax_g.get_title() == "gradient elements lost without a loss scale" and len(ax_g.patches) == 4
    assert [t.get_text() for t in ax_g.texts] == [" 0.750% + 0.250%", " 0.000% + 0.020%"]


def _vocab_row(method, c, ms=10.0, block=None):
    return {"method": method, "n": 64, "h": 8, "c": c, "block_size": block, "ms": ms, "extra_peak_bytes": 2**22}


def test_vocab_cost_draws_one_line_per_method_over_several_sizes():
    rows = [_vocab_row(m, c, block=32 if m == "chunked" else None) for c in (256, 1024) for m in ("materialised", "chunked")]
    rows.append({"method": "materialised XLA", "n": 64, "h": 8, "c": 1024, "block_size": None, "skipped": True,
                 "needs_bytes": 2**30, "limit_bytes": 2**29})
    ax_t, ax_m = plots.vocab_cost(rows, peak_gflops=100.0).axes
    assert ax_t.get_xscale() == "log" and [line.get_label() for line in ax_t.lines][:2] == [
        "materialised", "chunked (block 32)"]
    assert "materialised XLA: not run, computed need" in [line.get_label() for line in ax_m.lines]
    rows.append({"method": "materialised", "n": 64, "h": 8, "c": 4096, "block_size": None, "skipped": True,
                 "failed": "std::bad_alloc", "needs_bytes": 2**31, "limit_bytes": 2**32})
    rows.append({"method": "chunked", "n": 64, "h": 8, "c": 4096, "block_size": 32, "skipped": True,
                 "failed": "std::bad_alloc", "needs_bytes": None, "limit_bytes": 2**32})
    ax_t, ax_m = plots.vocab_cost(rows, peak_gflops=100.0).axes
    assert "materialised: failed, computed need" in [line.get_label() for line in ax_m.lines]


def test_vocab_cost_at_one_size_draws_bars_and_a_hatched_computed_need():
    rows = [_vocab_row("materialised", 512, ms=30.0), _vocab_row("chunked", 512, ms=40.0, block=64),
            {"method": "materialised XLA", "n": 64, "h": 8, "c": 512, "block_size": None, "skipped": True,
             "needs_bytes": 2**30, "limit_bytes": 2**29}]
    ax_t, ax_m = plots.vocab_cost(rows, peak_gflops=100.0).axes
    assert [t.get_text() for t in ax_t.get_yticklabels()] == ["materialised", "chunked (block 64)", "materialised XLA"]
    assert [p.get_width() for p in ax_t.patches] == [30.0, 40.0]  # the skipped one has no time
    assert len(ax_m.patches) == 3 and ax_m.patches[2].get_hatch() == "//"
    floor = ax_t.lines[0]
    assert floor.get_label() == "its matmul floor" and list(floor.get_ydata()) == [0, 1, 2]
    assert floor.get_xdata()[1] == pytest.approx(8 / 6 * floor.get_xdata()[0])  # chunked: the logits twice
    assert "C = 512" in ax_t.get_title()
    rows.append({"method": "chunked XLA", "n": 64, "h": 8, "c": 512, "block_size": 64, "skipped": True,
                 "failed": "std::bad_alloc", "needs_bytes": None, "limit_bytes": 2**29})
    ax_t, ax_m = plots.vocab_cost(rows, peak_gflops=100.0).axes
    assert len(ax_m.patches) == 3 and " failed: std::bad_alloc" in [t.get_text() for t in ax_t.texts]


def test_keras_backends_titles_give_each_initialisation_its_steps():
    def run(steps, accuracy):
        return {"steps": steps, "epsilon": 1e-7, "probes": [{"step": s, "accuracy": accuracy, "clipped": 0.5}
                                                            for s in (0, 1, steps)]}
    results = {("tensorflow", "stddev 1"): run(200, 0.9), ("jax", "stddev 1"): run(200, 0.1),
               ("tensorflow", "keras default"): run(20, 0.95), ("jax", "keras default"): run(20, 0.95)}
    axes = plots.keras_backends(results).axes
    assert [ax.get_title() for ax in axes] == [
        "N(0, 1) weights: accuracy (200 steps)", r"N(0, 1) weights: true-class $p < 10^{-7}$ (200 steps)",
        "Keras' default weights: accuracy (20 steps)"]
    assert all(ax.get_ylabel() and ax.get_xscale() == "symlog" for ax in axes)
    assert [line.get_label() for line in axes[0].lines] == ["tensorflow", "jax"]
