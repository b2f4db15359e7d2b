"""xentlab.mixed_precision: policies, loss scaling, underflow, loss errors, timing, CPU flags."""

from types import SimpleNamespace

import keras
import numpy as np
import pytest

from xentlab import config, mixed_precision

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
