"""xentlab.bench: timing statistics, the cross-entropy cost rows, the markdown table."""

import numpy as np
import pytest
import tensorflow as tf

from xentlab import bench


def test_timing_orders_min_median_max():
    calls = []
    t = bench.timing(lambda: calls.append(1), repeats=5)
    assert len(calls) == 6  # one warm-up
    assert 0 <= t["min"] <= t["median"] <= t["max"]


def test_tf_timing_refuses_asynchronous_execution():
    # a call must return only once its result exists, for its time to include the work
    assert bench.tf_timing(lambda: tf.exp(tf.ones([4])), repeats=5)["min"] >= 0
    tf.config.experimental.set_synchronous_execution(False)
    try:
        with pytest.raises(RuntimeError, match="asynchronously"):
            bench.tf_timing(lambda: tf.exp(tf.ones([4])), repeats=5)
    finally:
        tf.config.experimental.set_synchronous_execution(True)


@pytest.mark.parametrize("compiled", [False, True])
def test_every_formulation_computes_the_same_gradient(compiled):
    logits = 3.0 * tf.random.stateless_normal([8, 50], seed=[1, 2])
    labels = tf.random.stateless_uniform([8], seed=[3, 4], maxval=50, dtype=tf.int32)
    dense = tf.one_hot(labels, 50)
    expected = tf.nn.softmax(logits) - dense
    for method in bench.CE_METHODS:
        grad = bench._ce_step(method, compiled=compiled)(
            labels if bench.sparse_labels(method) else dense, logits)
        np.testing.assert_allclose(grad.numpy(), expected.numpy(), atol=1e-5, err_msg=method)


def test_ce_cost_rows_cover_each_method_and_mode_with_the_floor():
    rows = bench.ce_cost(classes=(50,), batch=16, repeats=5, bandwidth_gbs=10.0)
    assert {(r["method"], r["compiled"]) for r in rows} == {
        (m, c) for m in bench.CE_METHODS for c in (False, True)}
    for r in rows:
        assert {"method", "classes", "compiled", "ms", "ms_min", "ms_max", "floor_ms",
                "ratio_to_floor", "bound_ms", "peak_bytes"} <= set(r)
        assert 0 < r["ms_min"] <= r["ms"] <= r["ms_max"] and r["floor_ms"] > 0
        assert r["ratio_to_floor"] == pytest.approx(r["ms"] / r["floor_ms"])
    floors = {(r["compiled"], r["floor_ms"]) for r in rows}
    assert len(floors) == 2  # one floor per compiler, shared by its rows
    dense = next(r for r in rows if r["method"] == "fused")
    assert dense["bound_ms"] == pytest.approx(1e3 * 3 * 16 * 50 * 4 / 10e9)
    assert bench.fastest(rows, 50)["ms"] == min(r["ms"] for r in rows)
    with pytest.raises(ValueError, match="no rows"):
        bench.fastest(rows, 7)


def test_peak_bytes_counts_what_a_call_allocates_or_says_none():
    from xentlab import config

    peak = bench.peak_bytes(lambda: tf.zeros([256, 1024]).numpy())
    if config.kernel_set()["onednn"]:
        assert peak is not None and peak >= 256 * 1024 * 4
    else:  # Eigen's kernels: no CPU allocator statistics on the CPUs measured so far
        assert peak is None or peak >= 256 * 1024 * 4


def test_too_few_repeats_are_refused():
    with pytest.raises(ValueError, match="at least 5"):
        bench.ce_cost(classes=(10,), repeats=2)
    with pytest.raises(ValueError, match="training_repeats >= 5"):
        bench.run(training_steps=12, training_repeats=2, ce_repeats=5)


def test_markdown_names_the_floor_and_the_fastest_row():
    rows = [{"method": m, "classes": c, "compiled": comp, "ms": 2.0 if comp else 4.0, "ms_min": 1.0,
             "ms_max": 5.0, "floor_ms": 1.0, "ratio_to_floor": 2.0 if comp else 4.0, "bound_ms": 0.5,
             "peak_bytes": 2**20} for m in bench.CE_METHODS for c in (10, 100) for comp in (False, True)]
    ms = {"min": 40.0, "median": 50.0, "max": 60.0}
    result = {"machine": {"cpus": 2, "tensorflow": "2"}, "copy_bandwidth_gbs": 10.0, "ce_cost": rows,
              "sizes": {"training_steps": 12, "training_repeats": 5, "ce_repeats": 5},
              "training": {"ms_per_step": {"runner": ms, "fit_numpy": ms, "fit_tfdata": ms},
                           "runner_over_keras_fit": 1.0, "flops_per_step": 1e10,
                           "achieved_gflops": 200.0, "fraction_of_matmul_peak": 0.5,
                           "matmul_peak_gflops": 400.0}}
    text = bench.to_markdown(result)
    assert "| classes | floor ms (graph / XLA) |" in text and "50.0 (40.0–60.0)" in text
    assert "Fastest at 100 classes: manual with XLA, 2.00 ms = 2.00× the floor." in text


def test_forward_backward_ms_times_the_loss_and_its_gradient():
    y = tf.one_hot([0, 1], 3)
    z = tf.zeros([2, 3])
    t = bench.forward_backward_ms(lambda a, b: tf.nn.softmax_cross_entropy_with_logits(a, b), y, z, 5)
    assert set(t) == {"min", "median", "max"} and 0 < t["min"] <= t["median"] <= t["max"]


def test_clearly_needs_ranges_that_do_not_overlap():
    fast, slow = {"min": 1.0, "median": 1.1, "max": 1.2}, {"min": 1.3, "median": 1.5, "max": 2.0}
    assert bench.clearly(fast, slow) == "faster" and bench.clearly(slow, fast) == "slower"
    assert bench.clearly(fast, {"min": 1.15, "median": 1.5, "max": 2.0}) == "no clear difference"


def _rows(peak=True, below=None):
    """Fake :func:`bench.ce_cost` rows at C = 10 and 1,000: manual slowest, fused with XLA fastest."""
    speed = {"manual": 5.0, "log_softmax": 4.0, "fused": 3.0, "sparse": 3.5, "logsumexp_gather": 4.5}
    arrays = {"manual": 3, "log_softmax": 2, "fused": 1, "sparse": 1, "logsumexp_gather": 3}
    rows = []
    for c in (10, 1000):
        for m in bench.CE_METHODS:
            for comp in (False, True):
                ms = speed[m] * c / 1000 * (0.5 if comp else 1.0)
                rows.append({"method": m, "classes": c, "compiled": comp, "ms": ms, "floor_ms": c / 1000,
                             "ratio_to_floor": ms * 1000 / c, "bound_ms": 0.1,
                             "peak_bytes": arrays[m] * 256 * c * 4 if peak else None})
    if below:
        next(r for r in rows if (r["method"], r["classes"], r["compiled"]) == below)["ratio_to_floor"] = 0.9
    return rows


def test_at_classes_and_below_floor():
    rows = _rows(below=("sparse", 10, True))
    at = bench.at_classes(rows, 1000)
    assert len(at) == 2 * len(bench.CE_METHODS) and at["fused", True]["ms"] == 1.5
    assert bench.below_floor(rows) == ["sparse, XLA at C = 10 (0.90×)"]
    assert bench.below_floor(_rows()) == []


def test_format_at_classes_lines():
    lines = bench.format_at_classes(_rows(), 1000).splitlines()
    assert lines[0] == "At C = 1,000 (floor 1.0 ms, with XLA 1.0 ms):"
    assert lines[1] == ("            manual:     5.0 ms ( 5.0× the floor), XLA     2.5 ms ( 2.5× XLA's floor);"
                        "    2.9 MiB (3.0× fused)")
    assert lines[-1] == "below its floor: none" and len(lines) == 2 + len(bench.CE_METHODS)
    assert bench.format_at_classes(_rows(peak=False), 1000).splitlines()[1].endswith("; memory not measured")


def test_cost_text_memory_order_and_floor():
    text = bench.cost_text(_rows(below=("sparse", 10, True)), memory=True)
    assert text.startswith("Memory at C = 1,000: every formulation must return a `[batch, C]` gradient.")
    assert "allocated 1.0× a `[256, C]` float32 array, `log_softmax` 2.0× (it keeps" in text
    assert "the manual route 3.0× (the returned gradient and its temporaries" in text
    assert "Time, on this CPU: the fastest" in text
    assert "XLA (`jit_compile=True`) was faster than `tf.function` for 10 of the 10 pairs" in text
    assert "is **fused with XLA**, 1.5 ms = 1.50× XLA's floor" in text
    assert "the order is fused (3.0×) < sparse (3.5×) < log_softmax (4.0×) < logsumexp_gather (4.5×) < manual" in text
    assert "Below their floor ran sparse, XLA at C = 10 (0.90×): all at C below 1,000" in text
    text = bench.cost_text(_rows(peak=False, below=("manual", 1000, False)), memory=False)
    assert text.startswith("Memory is not measured in this run")
    assert ": for these rows the floor is no lower bound" in text
    assert " No row ran below its floor." in bench.cost_text(_rows(), memory=True)


def _training():
    ms = {"min": 40.0, "median": 50.0, "max": 60.0}
    return {"ms_per_step": {"runner": ms, "fit_numpy": ms, "fit_tfdata": ms}, "runner_over_keras_fit": 0.92,
            "runner_over_keras_fit_numpy": 0.95, "flops_per_step": 1.069e10, "achieved_gflops": 158.0,
            "fraction_of_matmul_peak": 0.74, "matmul_peak_gflops": 213.0, "repeats": 5}


def test_format_training_lines():
    lines = bench.format_training(_training()).splitlines()
    assert lines[0] == "10.69 GFLOP per step (forward counted by TF's profiler, ×3 for backward)"
    assert lines[1] == "xentlab.train: 158 GFLOP/s = 74% of the float32 matmul peak (213 GFLOP/s)"
    assert lines[2] == "  xentlab.train  ms/step median 50.0 (min 40.0, max 60.0) over 5 repeats"
    assert lines[5] == "xentlab.train vs the faster fit feed (medians): 0.92×; vs fit on NumPy arrays: 0.95×"


def test_xla_faster_counts_pairs():
    rows = _rows()
    assert bench.xla_faster(rows) == (10, 10)
    next(r for r in rows if (r["method"], r["classes"], r["compiled"]) == ("manual", 10, True))["ms"] = 99.0
    assert bench.xla_faster(rows) == (9, 10)
    assert [bench._ordinal(k) for k in (1, 2, 3, 4, 11, 12, 13, 21)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st"]


def test_summary_text_bullets():
    result = {"ce_cost": _rows(), "training": _training()}
    lines = bench.summary_text(result, memory=True).splitlines()
    assert lines[0].startswith("- Memory at C = 1,000 and batch 256: the fused op allocated 1 MiB, `log_softmax` "
                               "2 MiB and the manual route 3 MiB")
    assert "not speed" not in lines[0]
    assert "was fused with XLA, 1.50× the measured floor" in lines[1] and "1.3×" not in lines[1]  # no threshold typed in
    assert "took 3.0× the floor inside `tf.function`, 1st of 5 formulations there by median time" in lines[1]
    assert lines[2].startswith("- The repository's training loop ran document 002's CNN at 0.92× the speed")
    assert "bound the step" not in lines[2]
    assert "at its own sizes (C = 10, 1,000, 32,000, 128,000; steps and repeats in `xentlab.bench.SIZES`)" in lines[2]
    result["ce_cost"] = _rows(peak=False)
    assert bench.summary_text(result, memory=False).startswith("- Memory was not measured in this run")
