"""Tests for xentlab.sweeps (logit-gap and sigmoid sweeps of notebooks 02 and 04)."""

import numpy as np
import pytest
import tensorflow as tf

from xentlab import sweeps


def test_gap_losses_manual_turns_inf_where_fused_stays_exact():
    deltas = np.array([0.0, 10.0, 200.0])
    exact = sweeps.exact_gap_loss(deltas)
    fused = sweeps.gap_losses(deltas, "float32", "fused")
    manual = sweeps.gap_losses(deltas, "float32", "manual")
    np.testing.assert_allclose(fused, exact, rtol=1e-6)
    assert np.isfinite(manual[:2]).all() and np.isinf(manual[2])


def test_gap_gradients_shape_and_value():
    g = sweeps.gap_gradients(np.array([0.0, 5.0]), "float32", "fused")
    assert g.shape == (2, 2)
    np.testing.assert_allclose(g[:, 0], -1 / (1 + np.exp(-np.array([0.0, 5.0]))), rtol=1e-6)


def test_first_inf_gap_between_the_float32_underflow_bounds():
    gap = sweeps.first_inf_gap("float32", "manual")
    # e^-Δ is 0 at the latest below the smallest subnormal (149 ln 2 ≈ 103.3) and no earlier than
    # where flush-to-zero would start (125 ln 2 ≈ 86.6)
    assert 125 * np.log(2) - 0.01 <= gap <= 149 * np.log(2) + 0.01
    assert sweeps.first_inf_gap("float32", "fused") is None


def test_ulp_distance_counts_representable_floats():
    one = np.float32(1.0)
    assert sweeps.ulp_distance(np.array([one]), np.array([np.nextafter(one, np.float32(2))]))[0] == 1
    assert sweeps.ulp_distance(np.array([-0.0], np.float32), np.array([0.0], np.float32))[0] == 0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_sweep_fused_is_exact_and_manual_fails_far_out(dtype):
    xs = np.linspace(-200.0, 200.0, 41)
    for label in (0.0, 1.0):
        r = sweeps.sigmoid_sweep(xs, label, dtype)
        assert set(r) == {"exact", "fused", "stable", "manual"}
        np.testing.assert_allclose(r["fused"], r["exact"], rtol=1e-6, atol=1e-30)
        assert not np.isfinite(r["manual"]).all()


def test_nonfinite_edges_reports_each_side_and_kind():
    xs = np.array([-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0])
    values = np.array([np.nan, np.nan, 1.0, 0.0, 1.0, np.inf, np.nan])
    assert sweeps.nonfinite_edges(xs, values) == [(-2.0, "NaN"), (2.0, "inf")]
    assert sweeps.nonfinite_edges(xs, np.zeros(7)) == []


def test_gap_losses_or_none_and_first_where(monkeypatch):
    d = np.array([0.0, 100.0])
    np.testing.assert_array_equal(sweeps.gap_losses_or_none(d, "float32", "fused"),
                                  sweeps.gap_losses(d, "float32", "fused"))

    def no_kernel(*args, **kwargs):
        raise tf.errors.NotFoundError(None, None, "no kernel registered")

    monkeypatch.setattr(sweeps, "gap_losses", no_kernel)
    assert sweeps.gap_losses_or_none(d, "float16", "fused") is None
    assert sweeps.first_where(np.array([1.0, 2.0, 3.0]), [False, True, True]) == 2.0
    assert sweeps.first_where(np.array([1.0, 2.0]), [False, False]) is None


def test_sigmoid_table_rows_and_edges():
    xs = np.linspace(-200.0, 200.0, 41)
    sweep = {(dt, z): sweeps.sigmoid_sweep(xs, z, dt) for dt in ("float32", "float64") for z in (0.0, 1.0)}
    lines = sweeps.sigmoid_table(xs, sweep).splitlines()
    assert lines[0].split() == ["dtype", "label", "fused", "finite", "rel", "err", "<", "1e-6", "fused", "==",
                                "formula", "manual", "non-finite", "where"]
    assert len(lines) == 5 and all(line.split()[2:5] == ["True", "True", "True"] for line in lines[1:])
    assert lines[1].startswith("float32      0") and lines[1].endswith("(inf)")
    assert "x >= 40.0 (NaN)" in lines[4]  # float64, label 1: 0 * log(0) past sigmoid(x) == 1
    r = {k: v.copy() for k, v in sweep[("float64", 1.0)].items()}
    r["manual"] = r["exact"]
    assert sweeps.sigmoid_table(xs, {("float64", 1.0): r}).endswith("nowhere in [-200, 200]")


# notebook 02's helpers


def test_printed_differing_and_its_lines():
    doc = np.array([[9.0030573e-02, 1.0], [0.5, 6.6396770e-36]])
    ours = doc.astype(np.float32)
    ours[0, 0] = np.nextafter(ours[0, 0], np.float32(0))  # one float32 ulp down: prints differently
    differing = sweeps.printed_differing(ours, doc)
    assert [(r, c) for r, c, _, _ in differing] == [(0, 0)] and differing[0][3] == "9.0030573e-02"
    ulps = sweeps.ulp_distance(ours, doc.astype(np.float32))
    lines = sweeps.differing_lines(differing, ulps, "Eigen").splitlines()
    assert lines[0] == "1 of 4 printed values differ from the post's (this process: Eigen's kernels):"
    assert lines[1].startswith("  [0,0] ours ") and lines[1].endswith("  post 9.0030573e-02")
    assert lines[2:] == ["distance in float32 ulps:", "[[1 0]", " [0 0]]"]


def test_run_without_constant_folding_runs_the_fetch():
    graph = tf.Graph()
    with graph.as_default():
        out = tf.nn.softmax(tf.constant([[0.0, 0.0]]))
    np.testing.assert_allclose(sweeps.run_without_constant_folding(graph, out), [[0.5, 0.5]])


def test_subprocess_helpers_ask_each_kernel_set(monkeypatch):
    calls = []

    def fake(code, *, onednn):
        calls.append((code, onednn))
        return 87.0

    def fake_both(code):
        calls.append((code, "both"))
        return {"oneDNN": [[0.5, 0.5]], "Eigen": [[0.25, 0.75]]}

    monkeypatch.setattr(sweeps.runtime, "run_with_kernels", fake)
    monkeypatch.setattr(sweeps.runtime, "run_with_each_kernel_set", fake_both)
    got = sweeps.eager_softmax_by_kernels(np.zeros((1, 2)))
    assert list(got) == ["oneDNN", "Eigen"] and got["Eigen"].dtype == np.float32
    assert got["Eigen"].tolist() == [[0.25, 0.75]] and "[[0.0, 0.0]]" in calls[0][0] and "softmax" in calls[0][0]
    assert sweeps.first_inf_gap_with_kernels("float32", onednn=False) == 87.0
    assert '"first_inf_gap"' in calls[-1][0].replace("'", '"') and calls[-1][1] is False
    assert '{"dtype": "float32", "method": "manual", "hi": 1000.0}' in calls[-1][0]
    sweeps.first_inf_gap_with_kernels("float16", "fused", onednn=True, hi=2500)
    assert '{"dtype": "float16", "method": "fused", "hi": 2500.0}' in calls[-1][0] and calls[-1][1] is True


def test_gap_curves_errors_and_table():
    deltas = np.array([0.0, 50.0, 200.0])
    curves = sweeps.gap_curves(deltas, 1e-10, dtypes=("float32", "float64"))
    assert list(curves["float32"]) == ["manual", "manual, ε=1e-10", "fused"]
    assert np.isinf(curves["float32"]["manual"][2]) and np.isfinite(curves["float32"]["manual, ε=1e-10"]).all()
    err = sweeps.fused_max_rel_error(curves, sweeps.exact_gap_loss(deltas))
    assert err["float32"] < 1e-6 and err["float64"] < 1e-12
    table = sweeps.first_inf_table({"float32": 86.64, "float64": None}, {"float32": 4.5e-8, "float64": None}, 1000.0)
    assert table.splitlines() == [
        "    dtype | first Δ where manual = inf | fused max rel. error",
        "  float32 |                      86.64 |              4.5e-08",
        "  float64 |             never (≤ 1000) |            no kernel",
    ]


def test_gap_gradient_curves_and_lines():
    grads = sweeps.gap_gradient_curves(np.array([0.0, 200.0]), "float32", 1e-10)
    assert list(grads) == ["manual (ε = 0)", "manual (ε = 1e-10)", "fused"]
    assert np.isnan(grads["manual (ε = 0)"][1, 0]) and grads["manual (ε = 1e-10)"][1, 0] == 0.0
    assert grads["fused"].shape == (2, 2)
    assert sweeps.gradient_gap_lines(87.0, 87.0, 24.0, 3e-8, 1e-10).splitlines() == [
        "manual, ε = 0:      gradient NaN from Δ = 87 on",
        "manual, ε = 1e-10: gradient exactly 0 from Δ = 87 on",
        "manual, ε = 1e-10: gradient below half the exact one from Δ = 24 on (-log ε = 23.0)",
        "fused: max |error| of the gradient over the sweep = 3e-08",
    ]
    lines = sweeps.gradient_gap_lines(None, 87.0, None, 3e-8, 1e-10).splitlines()
    assert lines[0] == "manual, ε = 0:      gradient NaN nowhere in the sweep"
    assert lines[2].startswith("manual, ε = 1e-10: gradient below half the exact one nowhere in the sweep (")


def test_claim_sentences_and_summary():
    assert sweeps.printout_text(0, {"oneDNN": 8, "Eigen": 0}, {"oneDNN": 2, "Eigen": 0}) == (
        "graph mode: identical to all 15 printed values; eager with oneDNN: 8 of 15 differ, by up to 2 ulp; "
        "eager with Eigen: within 0 ulp")
    assert sweeps.printout_text(3, {"oneDNN": 8}, {"oneDNN": 2, "Eigen": 1}).startswith(
        "graph mode: within 3 ulp of the 15 printed values;")
    first_inf = {"float16": 17.34, "bfloat16": 87.0, "float32": 125 * np.log(2), "float64": 708.4}
    agree = {"float16": True, "float32": True}
    assert sweeps.fused_composite_text(first_inf, agree, rtol=2e-2, gap_max=10.0, compared=11) == (
        "equal within 2% at the 11 swept gaps up to 10 in float16, float32; the manual route returns inf from "
        "a gap of 86.64 (float32), 17.3 (float16), 708 (float64); the fused op stays finite at every swept gap")
    text = sweeps.fused_composite_text({**first_inf, "float64": None}, {**agree, "float16": False}, rtol=0.05,
                                       gap_max=10.0, compared=1)
    assert text.startswith("equal within 5% at the 1 swept gap up to 10 in float32 but not in float16;")
    assert "never (float64)" in text
    verdicts = {"001.same-value": "reproduced", "001.softmax-printout": "partly",
                "001.fused-equals-composite": "partly"}
    md = sweeps.summary_markdown(verdicts, first_inf, 126 * np.log(2), 1e-10, 0, {"oneDNN": 8},
                                 {"oneDNN": 2, "Eigen": 0})
    assert md.count("\n- ") == 2 and "$125 \\ln 2$; 87.34 with Eigen's" in md
    assert md.startswith("- **Reproduced**: ") and "\n- **Partly true**: the printed softmax" in md
    assert "as the post ran it, to the last digit (" in md and "\n- **Partly true**: \"the same loss\"" in md
    md3 = sweeps.summary_markdown({**verdicts, "001.softmax-printout": "refuted"}, first_inf, 87.3, 1e-10, 3,
                                  {"oneDNN": 8}, {"oneDNN": 2, "Eigen": 0})
    assert "\n- **Refuted**: the printed softmax, in graph mode as the post ran it, within 3 float32 ulp(s)" in md3
    assert "$\\mathrm{logsumexp}(z) - z_y$" in md and "in float16 $\\varepsilon =$ 1e-10 is 0)" in md
