"""xentlab.mixed_precision: policies, loss scaling, underflow, loss errors, timing, CPU flags."""

from types import SimpleNamespace

import keras
import numpy as np
import pytest

from xentlab import config, mixed_precision, runtime

RNG = np.random.default_rng(0)
X = RNG.integers(0, 256, size=(32, 28, 28), dtype=np.uint8)
Y = RNG.integers(0, 10, size=32)


@pytest.mark.parametrize("policy, output, dtype", [
    ("float32", "float32", "float32"), ("mixed_float16", "16-bit", "float16"),
    ("mixed_float16", "float32", "float32"), ("mixed_bfloat16", "16-bit", "bfloat16"),
    ("mixed_bfloat16", "float32", "float32")])
def test_mlp_output_dtype_and_float32_weights(policy, output, dtype):
    model = mixed_precision.mlp(policy, output=output, hidden=8)
    assert model(X[:2]).dtype.name == dtype
    assert all(w.dtype == np.float32 for w in model.get_weights())
    same = mixed_precision.mlp("float32", hidden=8)  # the same seed gives the same weights
    np.testing.assert_array_equal(model.get_weights()[0], same.get_weights()[0])


def test_mlp_rejects_unknown_settings():
    with pytest.raises(ValueError, match="unknown policy"):
        mixed_precision.mlp("float16")
    with pytest.raises(ValueError, match="unknown output"):
        mixed_precision.mlp("float32", output="half")


def test_optimizer_scales_float16_only():
    assert isinstance(mixed_precision.optimizer("mixed_float16"), keras.optimizers.LossScaleOptimizer)
    assert not isinstance(mixed_precision.optimizer("mixed_float16", loss_scaling=False),
                          keras.optimizers.LossScaleOptimizer)
    assert not isinstance(mixed_precision.optimizer("mixed_bfloat16"), keras.optimizers.LossScaleOptimizer)


def test_underflow_float32_loses_nothing_and_scaling_recovers_float16():
    w = mixed_precision.mlp("float32", hidden=16).get_weights()
    same = mixed_precision.underflow(w, X, Y, policy="float32", hidden=16)
    assert same["lost"] == same["recovered"] == 0.0 and same["finite"] and 0 < same["zero_float32"] < 1
    w[-2] = w[-2] * 1e-6  # a tiny last layer: its backpropagated gradients underflow in float16
    low = mixed_precision.underflow(w, X, Y, policy="mixed_float16", hidden=16)
    assert low["lost"] > 0.1 and low["recovered"] > 0.1 and low["lost_scaled"] < low["lost"]
    assert mixed_precision.underflow(w, X, Y, policy="mixed_bfloat16", hidden=16)["recovered"] == 0.0


def test_loss_errors_float16_manual_fails_past_a_gap_of_17_and_fused_does_not():
    gaps = np.array([5.0, 20.0])
    logits = np.stack([np.stack([-gaps, np.zeros(2)], 1)], 0)[0]  # true class 0 trails by the gap
    err = mixed_precision.loss_errors(logits, np.zeros(2, dtype=int), "float16")
    assert err["manual"]["nonfinite"] == 0.5  # the gap-20 row: p underflows, log(0)
    assert err["fused"]["nonfinite"] == 0.0 and err["fused"]["max_error"] < 1e-3
    assert mixed_precision.loss_errors(logits, np.zeros(2, dtype=int), "float32")["manual"]["nonfinite"] == 0.0


def test_step_time_fields_and_repeats():
    t = mixed_precision.step_time("float32", X, Y, hidden=8, repeats=3, steps=2)
    assert t["ms_min"] <= t["ms"] <= t["ms_max"] and t["ms"] > 0
    with pytest.raises(ValueError, match="repeats"):
        mixed_precision.step_time("float32", X, Y, repeats=2)


def test_cpu_features_reads_the_flags(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor : 0\nflags : fpu avx2 avx512f amx_bf16\n\nflags : sse\n")
    f = config.cpu_features(info)
    assert f["avx2"] and f["amx_bf16"] and not f["avx512_bf16"]
    assert mixed_precision.bf16_supported(f) and not mixed_precision.bf16_supported(config.cpu_features(tmp_path / "no"))
    assert not mixed_precision.bf16_supported({"avx512_bf16": True, "amx_bf16": False})


def test_train_grid_one_row_per_setting():
    data = SimpleNamespace(x_train=X, y_train=Y, x_test=X[:8], y_test=Y[:8])
    rows = mixed_precision.train_grid(data, steps=2, hidden=8, methods=("fused",), batch_size=8, seeds=(0,))
    settings = [(r["policy"], r["output"], r["loss_scaling"], r["grid"]) for r in rows]
    assert settings == [("float32", "float32", False, True), ("mixed_float16", "16-bit", True, True),
                        ("mixed_float16", "float32", True, True), ("mixed_bfloat16", "16-bit", False, True),
                        ("mixed_bfloat16", "float32", False, True), ("mixed_float16", "float32", False, False)]
    assert all(0.0 <= r["test_accuracy"] <= 1.0 and r["seconds"] > 0 for r in rows)


def test_train_grid_repeats_the_grid_per_seed_and_the_unscaled_run_once():
    data = SimpleNamespace(x_train=X, y_train=Y, x_test=X[:8], y_test=Y[:8])
    rows = mixed_precision.train_grid(data, steps=2, hidden=8, methods=("fused",), batch_size=8, seeds=(0, 3))
    assert [r["seed"] for r in rows] == [0] * 5 + [3] * 5 + [0]
    assert sum(not r["grid"] for r in rows) == 1 and all(r["skipped_steps"] == 0 for r in rows)


def test_gap_grid_and_the_first_float16_failure():
    gaps = np.array([5.0, 20.0])
    logits, labels = mixed_precision.gap_grid(gaps)
    np.testing.assert_array_equal(logits, [[-5.0, 0.0], [-20.0, 0.0], [5.0, 0.0], [20.0, 0.0]])
    assert labels.tolist() == [0, 0, 0, 0]
    assert mixed_precision.first_nonfinite_gap(gaps, "float16") == 20.0  # e^-20 rounds to 0 in float16
    assert mixed_precision.first_nonfinite_gap(gaps, "float32") is None
    assert mixed_precision.first_nonfinite_gap(gaps, "float16", method="fused") is None


def test_format_loss_errors_one_line_per_dtype_and_method():
    errors = {"float16": {"manual": {"nonfinite": 0.4, "max_error": 0.021}, "fused": {"nonfinite": 0.0,
                                                                                       "max_error": 2.2e-4}}}
    lines = mixed_precision.format_loss_errors(errors).splitlines()
    assert lines[0].split() == ["dtype", "method", "rows", "inf/NaN", "largest", "error", "(finite", "rows)"]
    assert lines[1].split() == ["float16", "manual", "40%", "2.1e-02"]
    assert lines[2].split() == ["float16", "fused", "0%", "2.2e-04"] and len(lines) == 3


def _row(seed, policy, output, method, acc, *, grid=True, skipped=0, diverged=None):
    return {"seed": seed, "policy": policy, "output": output, "method": method, "grid": grid,
            "loss_scaling": policy == "mixed_float16" and grid, "test_accuracy": acc,
            "diverged_at": diverged, "skipped_steps": skipped, "seconds": 1.0}


ROWS = [_row(0, "float32", "float32", "manual", 0.90), _row(1, "float32", "float32", "manual", 0.80),
        _row(0, "mixed_float16", "16-bit", "manual", 0.70, skipped=3, diverged=5),
        _row(0, "mixed_float16", "float32", "manual", 0.88),
        _row(0, "mixed_bfloat16", "16-bit", "manual", 0.85), _row(0, "mixed_bfloat16", "float32", "manual", 0.85),
        _row(0, "mixed_float16", "float32", "fused", 0.87), _row(0, "mixed_float16", "float32", "fused", 0.5,
                                                                  grid=False)]


def test_format_training_one_line_per_run():
    lines = mixed_precision.format_training(ROWS[:1]).splitlines()
    assert lines[0].split()[:3] == ["seed", "policy", "output"] and len(lines) == 2
    assert lines[1].split() == ["0", "float32", "float32", "manual", "False", "0.9000", "None", "0", "1.0"]


def test_format_training_labels_the_extra_run():
    lines = mixed_precision.format_training(ROWS).splitlines()
    assert len(lines) == len(ROWS) + 2 and lines[-2].startswith("extra run, not in the grid")
    assert lines[-1].split()[:5] == ["0", "mixed_float16", "float32", "fused", "False"]


def test_mean_accuracy_averages_the_seeds_per_setting():
    acc = mixed_precision.mean_accuracy([r for r in ROWS if r["grid"]])
    assert acc["float32", "float32", "manual"] == pytest.approx(0.85)
    assert acc["mixed_float16", "float32", "fused"] == pytest.approx(0.87)  # the unscaled run left out
    assert list(acc)[0] == ("float32", "float32", "manual") and len(acc) == 6


def test_training_budget_reasons():
    assert "below 0.8" in mixed_precision.training_budget(0.5, steps=10, seeds=3, trained=0.8, min_seeds=3)
    assert mixed_precision.training_budget(0.9, steps=10, seeds=1, trained=0.8, min_seeds=3) == (
        "budget: 1 seed(s); a difference in accuracy is judged over at least 3")
    assert mixed_precision.training_budget(0.9, steps=10, seeds=3, trained=0.8, min_seeds=3) is None


def test_float32_output_text_and_markdown_name_the_worse_settings():
    drops = {("mixed_float16", "manual"): 0.18, ("mixed_bfloat16", "manual"): 0.0}
    worse = [("mixed_float16", "manual")]
    text = mixed_precision.float32_output_text(ROWS, drops, worse, tolerance=0.01, steps=40, seeds=2)
    assert text == ("mean accuracy lost with a 16-bit output (beyond 0.01) in 1 of 2 settings: manual under "
                    "mixed_float16 (+0.180; a 16-bit run diverged); 2 seed(s), every run drawing the same 40 "
                    "batches (updates skipped under loss scaling: manual 16-bit seed 0: 3 of 40)")
    md = mixed_precision.output_dtype_text(ROWS, drops, worse, tolerance=0.01, budget="budget: x")
    assert md.startswith("Untested: budget: x. What this run measured: with a 16-bit output, 1 of 2 settings")
    assert "manual under mixed_bfloat16 trained as well" in md and "step 5)." in md
    assert "(skipped steps: manual (mixed_float16, 16-bit, seed 0): 3)" in md
    md = mixed_precision.output_dtype_text(ROWS[:2], drops, [], tolerance=0.5, budget=None)
    assert md.startswith("with a 16-bit output, 0 of 2 settings") and md.endswith("No run diverged.")


def test_a_loss_that_the_float32_output_shares_is_reported_not_dropped():
    drops = {("mixed_float16", "manual"): 0.18, ("mixed_bfloat16", "manual"): 0.0}  # lost, but not in worse
    text = mixed_precision.float32_output_text(ROWS, drops, [], tolerance=0.01, steps=40, seeds=3)
    assert text.startswith("mean accuracy lost with a 16-bit output (beyond 0.01) in 0 of 2 settings; 1 more lost it "
                           "with the float32 output under the same policy too, so not to the output alone: manual "
                           "under mixed_float16 (+0.180; a 16-bit run diverged); 3 seed(s)")
    md = mixed_precision.output_dtype_text(ROWS, drops, [], tolerance=0.01, budget=None)
    assert md.startswith("with a 16-bit output, 1 of 2 settings lost more than 0.01 mean accuracy (manual under "
                         "mixed_float16 (+0.180; a 16-bit run diverged)); with manual under mixed_float16 the float32 "
                         "output also trained more than 0.01 below the float32 policy")
    assert "; manual under mixed_bfloat16 trained as well as with a float32 output." in md


def test_scaling_accuracies_pairs_the_unscaled_run_with_its_scaled_twin():
    assert mixed_precision.scaling_accuracies(ROWS) == (0.5, 0.87)


def test_format_underflow_lines():
    z = {"lost": 0.00025, "lost_scaled": 0.0, "recovered": 0.00025, "zero_float32": 0.382, "finite": True}
    lines = mixed_precision.format_underflow({"float16": z, "bfloat16": {**z, "zero_float32": 0.1}}).splitlines()
    assert lines[0] == ("float16   lost 0.025% of float32's non-zero elements, 0.000% with the scale 2^15; "
                        "lost to range (kept by the scale): 0.025%; finite: True")
    assert lines[2] == "(exactly 0 in float32 too, and not counted above: 38.2%)" and len(lines) == 3


def test_time_policies_format_and_speed_text():
    times = mixed_precision.time_policies(X, Y, hidden=8, repeats=3, steps=1, float16_steps=1)
    assert list(times) == [*mixed_precision.POLICIES, "mixed_float16, eager"]
    assert mixed_precision.format_step_times(times).splitlines()[3].startswith("mixed_float16, eager  ")
    fake = {"float32": {"ms_min": 10.0}, "mixed_float16": {"ms_min": 20.0}, "mixed_bfloat16": {"ms_min": 5.0},
            "mixed_float16, eager": {"ms_min": 40.0}}
    text = mixed_precision.speed_text(fake, flags="avx2", amx=False, onednn=True)
    assert text.startswith("On this CPU (avx2) a bfloat16 step took 0.50× float32's time (the CPU has no AMX). "
                           "The compiled float16 step took 2× float32's time, and the same step run eagerly 4.0×")
    assert "kernels: oneDNN;" in text and "bought no speed" in text
    fake["mixed_float16, eager"] = {"ms_min": 5.0}
    assert "at best 2.0× faster" in mixed_precision.speed_text(fake, flags="x", amx=True, onednn=False)


def test_trained_weights_are_the_float32_mlp_s():
    data = SimpleNamespace(x_train=X, y_train=Y, x_test=X[:8], y_test=Y[:8])
    w = mixed_precision.trained_weights(data, steps=2, hidden=8, batch_size=8)
    assert [a.shape for a in w] == [(784, 8), (8,), (8, 10), (10,)]


def test_sections_3_and_4_do_not_depend_on_op_determinism():
    data = SimpleNamespace(x_train=X, y_train=Y, x_test=X[:8], y_test=Y[:8])
    runs = []
    for on in (False, True):
        with runtime.op_determinism(on):
            w = mixed_precision.trained_weights(data, steps=4, hidden=16, batch_size=8)
            runs.append((w, mixed_precision.underflow(w, X, Y, policy="mixed_float16", hidden=16)))
    (w_off, lost_off), (w_on, lost_on) = runs
    assert all(np.array_equal(a, b) for a, b in zip(w_off, w_on, strict=True)) and lost_off == lost_on


def test_time_policies_gives_every_policy_the_same_repeats(monkeypatch):
    calls = []
    monkeypatch.setattr(mixed_precision, "step_time", lambda p, x, y, **kw: calls.append((p, kw)) or {"ms_min": 1.0})
    mixed_precision.time_policies(X, Y, hidden=8, repeats=7, steps=5, float16_steps=1)
    assert [(p, kw["repeats"], kw["steps"], kw.get("compiled", True)) for p, kw in calls] == [
        ("float32", 7, 5, True), ("mixed_float16", 7, 1, True), ("mixed_bfloat16", 7, 5, True),
        ("mixed_float16", 7, 5, False)]
