"""xentlab.train: determinism, one trace, eager and compiled, label kinds, divergence recorded,
argument checks."""

from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf

from xentlab import data, losses, models, runtime, train

RNG = np.random.default_rng(0)
DATA = SimpleNamespace(
    x_train=RNG.integers(0, 256, size=(96, 28, 28), dtype=np.uint8),
    y_train=RNG.integers(0, 10, size=96),
    x_test=RNG.integers(0, 256, size=(40, 28, 28), dtype=np.uint8),
    y_test=RNG.integers(0, 10, size=40),
)


fused_mean = losses.reduced(losses.softmax_cross_entropy, "mean")


def manual_sum_eps0(labels, logits):
    """Document 002's method (1) without its 1e-10: log(0) -> -inf, 0 * -inf -> NaN."""
    return tf.reduce_sum(-labels * tf.math.log(tf.nn.softmax(logits)))


def run(**kw):
    kw = {"loss": fused_mean, "steps": 6, "batch_size": 16, "eval_every": 3, "eval_size": 20,
          "progress": False, **kw}
    model = kw.pop("model", None) or models.RawCNN(init_stddev=0.05, seed=0)
    return train.train(model, DATA, **kw)


def test_history_layout():
    h = run()
    assert h.step == [0, 3]
    for name in ("loss", "grad_norm", "train_accuracy", "test_accuracy", "zero_fraction"):
        assert len(getattr(h, name)) == 2, name
    assert h.steps_run == 6 and h.diverged_at is None and h.zero_grad_steps == 0
    assert 0.0 <= h.final_test_accuracy <= 1.0 and 0.0 <= h.final_eval_accuracy <= 1.0
    assert np.isfinite(h.final_loss) and h.final_grad_norm > 0
    d = h.as_dict()
    assert d["config"]["steps"] == 6 and d["step"] == [0, 3]


def measured(h):
    """History without its wall-clock field (the only one allowed to differ between runs)."""
    d = h.as_dict()
    d.pop("step_seconds")
    return d


def test_same_seed_same_history():
    a, b = measured(run(seed=5)), measured(run(seed=5))
    assert a == b
    c = measured(run(seed=6))
    assert c["loss"] != a["loss"]


def test_keras_model_trains_deterministically():
    a = run(model=models.layers_cnn(seed=1), steps=4, eval_every=2)
    b = run(model=models.layers_cnn(seed=1), steps=4, eval_every=2)
    assert measured(a) == measured(b)


def test_step_is_traced_once():
    short = run(steps=2, eval_every=1)
    long = run(steps=12, eval_every=4)
    assert short.traces == 1
    assert long.traces == 1


def test_batches_identical_across_runs_and_cover_each_epoch():
    t1 = data.batch_table(96, 16, 12, seed=0)
    t2 = data.batch_table(96, 16, 12, seed=0)
    np.testing.assert_array_equal(t1, t2)
    assert t1.shape == (12, 16) and t1.dtype == np.int32
    first_epoch = t1[:6].ravel()
    assert sorted(first_epoch) == list(range(96))


def test_divergence_is_recorded_not_raised():
    h = run(model=models.RawCNN(init_stddev=1.0, seed=0), loss=manual_sum_eps0, steps=9)
    assert h.diverged_at == 0
    assert h.steps_run == 0
    assert h.step == [0]  # stopped at the first evaluation boundary
    assert np.isnan(h.final_loss)
    assert 0.0 <= h.final_test_accuracy <= 1.0  # weights untouched by the NaN update


def test_saturated_network_has_exactly_zero_softmax_outputs():
    h = run(model=models.RawCNN(init_stddev=1.0, seed=0), steps=3)
    assert h.zero_fraction[0] > 0.5


def test_zero_gradient_steps_counted():
    def zero_loss(labels, logits):
        return 0.0 * tf.reduce_sum(logits)

    h = run(loss=zero_loss, steps=5, eval_every=5)
    assert h.zero_grad_steps == 5 and h.final_grad_norm == 0.0


def test_sgd_by_name():
    h = run(optimizer="sgd", learning_rate=0.01)
    assert h.config["optimizer"] == "sgd" and h.steps_run == 6


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"steps": 0}, "steps must be a positive integer"),
        ({"steps": -3}, "steps must be a positive integer"),
        ({"batch_size": 97}, r"batch_size must be an integer in \[1, 96\]"),
        ({"batch_size": 0}, "batch_size"),
        ({"eval_every": 0}, "eval_every"),
        ({"loss": "nope"}, "unknown loss method 'nope'"),
        ({"eval_size": 0}, "eval_size must be a positive integer"),
        ({"steps": True}, "steps must be a positive integer"),
        ({"loss": 3}, "loss must be a callable"),
        ({"optimizer": "rmsprop"}, "unknown optimizer 'rmsprop'"),
    ],
)
def test_bad_arguments(kw, message):
    with pytest.raises(ValueError, match=message):
        run(**kw)


def test_loss_by_name_is_the_batch_mean():
    h = run(loss="fused", steps=1, eval_every=1)
    assert h.config["loss"] == "softmax_cross_entropy_fused_mean"


def test_sparse_labels_reach_the_loss_as_integers():
    seen = []

    def sparse_mean(labels, logits):
        seen.append(labels.dtype)
        return tf.reduce_mean(losses.sparse_softmax_cross_entropy(labels, logits))

    h = run(loss=sparse_mean, sparse=True, steps=3)
    assert seen and all(d.is_integer for d in seen) and h.steps_run == 3


def test_sparse_and_one_hot_fused_train_identically():
    a = run(loss=losses.reduced(losses.sparse_softmax_cross_entropy), sparse=True, seed=2)
    b = run(loss="fused", seed=2)
    np.testing.assert_allclose(a.loss, b.loss, rtol=1e-5)


def test_eager_and_compiled_steps_agree():
    runtime.seed(0)
    a = run(compiled=True)
    runtime.seed(0)
    b = run(compiled=False)
    np.testing.assert_allclose(a.loss, b.loss, rtol=1e-4)
    assert b.traces == 6 and a.traces == 1  # eager: the Python step runs every time


def test_multi_hot_labels_and_logit_gradient_statistics():
    rng = np.random.default_rng(1)
    y = (rng.random((64, 10)) < 0.2).astype(np.float32)
    y[np.arange(64), rng.integers(0, 10, 64)] = 1.0
    arrays = train.Arrays(DATA.x_train[:64], y, DATA.x_test[:20], y[:20])
    h = train.train(models.RawCNN(init_stddev=0.05, seed=0), arrays, steps=4, batch_size=16,
                    eval_every=2, progress=False,
                    loss=losses.reduced(lambda t, z: tf.reduce_sum(
                        losses.sigmoid_cross_entropy(t, z), -1)))
    assert h.steps_run == 4 and len(h.zero_grad_fraction) == 2
    assert h.zero_grad_fraction == [0.0, 0.0]  # sigmoid CE never has an exactly-0 logit gradient


def test_clipped_loss_has_zero_gradient_on_wrong_examples():
    """Document 002's saturated network: log(softmax + 1e-10) ignores what it gets wrong."""
    loss = losses.reduced(losses.softmax_cross_entropy, "sum", method="manual", epsilon=1e-10)
    h = run(model=models.RawCNN(init_stddev=1.0, seed=0), loss=loss, steps=3, eval_every=3)
    assert h.zero_grad_wrong_fraction[0] > 0.9 and h.grad_norm[0] == 0.0


def test_accuracy_helper_int_and_multi_hot():
    class Fixed:
        def __call__(self, x, training=False):
            return tf.one_hot(tf.zeros([tf.shape(x)[0]], tf.int32), 3)

    x = np.zeros((4, 2), np.float32)
    assert train.accuracy(Fixed(), x, np.array([0, 1, 0, 2])) == 0.5
    multi = np.array([[1, 1, 0], [0, 1, 1], [1, 0, 0], [0, 0, 1]], np.float32)
    assert train.accuracy(Fixed(), x, multi) == 0.5
    with pytest.raises(ValueError, match="len"):
        train.accuracy(Fixed(), x, np.array([0]))




def test_step_seconds_excludes_the_traced_first_step(monkeypatch):
    """With a clock that ticks once per update, step_seconds counts every update but the first."""
    ticks = [0]
    init = train._Step.__init__

    def counting_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        update = self.update

        def counted():
            ticks[0] += 1
            return update()

        self.update = counted

    monkeypatch.setattr(train._Step, "__init__", counting_init)
    monkeypatch.setattr(train.time, "perf_counter", lambda: float(ticks[0]))
    h = run(steps=5, eval_every=2)
    assert (h.steps_run, ticks[0], h.step_seconds) == (5, 5, 4.0)


def test_outcome_is_a_sweep_row():
    h = run(steps=6, eval_every=3)
    assert h.outcome() == {"accuracy": h.final_eval_accuracy, "zero_fraction_init": h.zero_fraction[0],
                           "grad_norm_init": h.grad_norm[0], "diverged_at": None}


def test_loss_and_grad_norm_matches_the_tape_and_is_nan_for_a_nan_gradient():
    net = models.RawCNN(init_stddev=0.05, seed=0)
    x, y = DATA.x_train[:8], DATA.y_train[:8]
    value, norm = train.loss_and_grad_norm(net, fused_mean, x, y)
    assert value == pytest.approx(float(fused_mean(tf.one_hot(y, 10), net(x))), rel=1e-6)
    assert norm > 0
    saturated = models.RawCNN(init_stddev=1.0, seed=0)
    assert np.isnan(train.loss_and_grad_norm(saturated, manual_sum_eps0, x, y)[1])


def test_saturation_of_the_documents_init_and_of_a_small_one():
    x, y = DATA.x_train[:16], DATA.y_train[:16]
    saturated = train.saturation(models.RawCNN(init_stddev=1.0, seed=0), fused_mean, x, y)
    small = train.saturation(models.RawCNN(init_stddev=0.01, seed=0), fused_mean, x, y)
    assert set(saturated) == {"one_hot_rows", "largest_below_1", "zero_outputs", "grad_norm"}
    assert saturated["zero_outputs"] > 0.5 and small["zero_outputs"] == 0.0 and small["one_hot_rows"] == 0.0
    assert 0 < small["largest_below_1"] < 1 and small["grad_norm"] > 0


def test_loss_scale_optimizer_scales_the_loss_and_skips_overflow():
    """With a LossScaleOptimizer the loop differentiates the scaled loss (its ``apply`` divides
    the scale out); the logged gradient norm is the unscaled one, and an overflowing scale is
    skipped by the optimizer (it halves the scale), not counted as divergence."""
    import keras

    from xentlab import mixed_precision

    def run(opt):
        model = mixed_precision.mlp("float32", hidden=16)
        return model, train.train(model, DATA, loss="fused", steps=4, batch_size=8, optimizer=opt,
                                  eval_every=2, eval_size=8, progress=False)

    _, plain = run(keras.optimizers.SGD(0.1))
    _, scaled = run(keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1), initial_scale=2.0**10))
    np.testing.assert_allclose(scaled.grad_norm, plain.grad_norm, rtol=1e-4)
    opt = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1), initial_scale=2.0**24)
    model = mixed_precision.mlp("mixed_float16", hidden=16)  # float16 gradients overflow at 65,504
    h = train.train(model, DATA, loss="fused", steps=4, batch_size=8, optimizer=opt, eval_every=2,
                    eval_size=8, progress=False)
    assert h.diverged_at is None and float(opt.dynamic_scale.numpy()) < 2.0**24
    assert h.skipped_steps >= 1 and h.steps_run == 4 - h.skipped_steps


def test_a_non_finite_loss_is_skipped_under_loss_scaling_and_diverges_without():
    import keras

    from xentlab import mixed_precision

    def inf_loss(labels, logits):
        return tf.reduce_mean(logits) + np.float32(np.inf)

    runs = {}
    for name, opt in (("scaled", keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1))),
                      ("plain", keras.optimizers.SGD(0.1))):
        runs[name] = train.train(mixed_precision.mlp("float32", hidden=8), DATA, loss=inf_loss, steps=3,
                                 batch_size=8, optimizer=opt, eval_every=3, eval_size=8, progress=False)
    assert (runs["scaled"].diverged_at, runs["scaled"].skipped_steps, runs["scaled"].steps_run) == (None, 3, 0)
    assert (runs["plain"].diverged_at, runs["plain"].skipped_steps, runs["plain"].steps_run) == (0, 0, 0)


def test_history_counts_the_final_networks_predictions_per_class():
    from xentlab import data, models

    ds = data.load("mnist10k")
    net = models.RawCNN(init_stddev=1.0, seed=0)
    h = train.train(net, ds, loss="fused", steps=2, batch_size=8, eval_every=2, eval_size=20,
                    progress=False)
    counts = np.array(h.test_prediction_counts)
    assert counts.shape == (10,) and counts.sum() == len(ds.y_test)
    picked = np.argmax(train.predict_logits(net, ds.x_test), -1)
    assert h.final_test_accuracy == np.mean(picked == ds.y_test)
    assert np.array_equal(counts, np.bincount(picked, minlength=10))
