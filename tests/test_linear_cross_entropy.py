"""xentlab.losses.linear_cross_entropy: the chunked loss equals the materialised fused op, in
value and both gradients, eagerly, in tf.function and with XLA, at any block size."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from xentlab import losses

N, H, C = 24, 16, 50


def _inputs(scale: float = 1.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    h = tf.constant(rng.normal(size=(N, H)).astype(np.float32))
    w = tf.constant((scale * rng.normal(size=(H, C)) / np.sqrt(H)).astype(np.float32))
    b = tf.constant(rng.normal(size=(C,)).astype(np.float32))
    y = tf.constant(rng.integers(0, C, N).astype(np.int32))
    return h, w, b, y


def _value_and_grads(loss_fn, h, w, b):
    weights = tf.range(1.0, N + 1.0)  # a different upstream gradient for every token
    with tf.GradientTape() as tape:
        tape.watch([h, w, b])
        per_token = loss_fn(h, w, b)
        total = tf.reduce_sum(per_token * weights)
    return (per_token, *tape.gradient(total, [h, w, b]))


def _materialised(y):
    return lambda h, w, b: tf.nn.sparse_softmax_cross_entropy_with_logits(y, h @ w + b)


def _close(a, b, rtol=1e-5):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(np.max(np.abs(b)), 1e-30)
    return np.max(np.abs(a - b)) <= rtol * scale


@pytest.mark.parametrize("block_size", [1, 7, C, 4096])
@pytest.mark.parametrize("mode", ["eager", "function", "xla"])
def test_value_and_gradients_equal_the_materialised_op(block_size, mode):
    h, w, b, y = _inputs(scale=10.0)
    chunked = lambda h, w, b: losses.linear_cross_entropy(y, h, w, b, block_size=block_size)  # noqa: E731
    run = _value_and_grads
    if mode != "eager":
        run = tf.function(_value_and_grads, jit_compile=mode == "xla")
    got = run(chunked, h, w, b)
    want = _value_and_grads(_materialised(y), h, w, b)
    for g, m in zip(got, want, strict=True):
        assert _close(g, m)


def test_exact_where_softmax_then_log_fails():
    # logit gaps near 1000: softmax underflows to 0 and log(softmax) is -inf; the chunked loss is exact
    h, w, b, y = _inputs(scale=600.0, seed=1)
    logits = h @ w + b
    assert float(tf.reduce_max(logits) - tf.reduce_min(logits)) > 1000
    manual = -tf.math.log(tf.gather(tf.nn.softmax(logits), y, batch_dims=1))
    assert not np.all(np.isfinite(manual.numpy()))
    got = _value_and_grads(lambda h, w, b: losses.linear_cross_entropy(y, h, w, b, block_size=8), h, w, b)
    want = _value_and_grads(_materialised(y), h, w, b)
    assert all(np.all(np.isfinite(g.numpy())) for g in got)
    for g, m in zip(got, want, strict=True):
        assert _close(g, m)


def test_without_bias_and_with_a_variable_kernel():
    h, w, _, y = _inputs()
    kernel = tf.Variable(w)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(losses.linear_cross_entropy(y, h, kernel, block_size=9))
    grad = tape.gradient(loss, kernel)
    with tf.GradientTape() as tape:
        ref = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, h @ kernel))
    assert _close(loss, ref) and _close(grad, tape.gradient(ref, kernel))


def test_label_smoothing_equals_keras():
    h, w, b, y = _inputs(scale=5.0)
    keras_loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.2, reduction=None)
    got = _value_and_grads(lambda h, w, b: losses.linear_cross_entropy(
        y, h, w, b, block_size=11, label_smoothing=0.2), h, w, b)
    want = _value_and_grads(lambda h, w, b: keras_loss(tf.one_hot(y, C), h @ w + b), h, w, b)
    for g, m in zip(got, want, strict=True):
        assert _close(g, m)


def test_ignored_tokens_cost_nothing_and_pass_no_gradient():
    h, w, b, y = _inputs()
    padded = tf.tensor_scatter_nd_update(y, [[0], [5]], [-100, -100])
    loss, dh, dw, db = _value_and_grads(
        lambda h, w, b: losses.linear_cross_entropy(padded, h, w, b, block_size=6, ignore_index=-100), h, w, b)
    assert loss.numpy()[[0, 5]].tolist() == [0.0, 0.0]
    assert np.all(dh.numpy()[[0, 5]] == 0.0)
    keep = np.ones(N, bool)
    keep[[0, 5]] = False
    _, _, dw_ref, _ = _value_and_grads(
        lambda h, w, b: tf.nn.sparse_softmax_cross_entropy_with_logits(y, h @ w + b) * keep, h, w, b)
    assert _close(loss.numpy()[keep], tf.nn.sparse_softmax_cross_entropy_with_logits(y, h @ w + b).numpy()[keep])
    assert _close(dw, dw_ref)


def test_bfloat16_inputs_accumulate_in_float32():
    h, w, b, y = _inputs(scale=5.0)
    loss = losses.linear_cross_entropy(y, tf.cast(h, tf.bfloat16), tf.cast(w, tf.bfloat16),
                                       tf.cast(b, tf.bfloat16), block_size=8)
    assert loss.dtype == tf.float32
    ref = tf.nn.sparse_softmax_cross_entropy_with_logits(y, h @ w + b)
    assert np.max(np.abs(loss.numpy() - ref.numpy())) < 0.1 * max(1.0, float(tf.reduce_max(ref)))
    with tf.GradientTape() as tape:
        hb = tf.cast(h, tf.bfloat16)
        tape.watch(hb)
        dh = tape.gradient(tf.reduce_sum(losses.linear_cross_entropy(y, hb, tf.cast(w, tf.bfloat16), block_size=8)), hb)
    assert dh.dtype == tf.bfloat16 and np.all(np.isfinite(tf.cast(dh, tf.float32).numpy()))


@pytest.mark.parametrize("kwargs, message", [
    ({"block_size": 0}, "block_size must be an integer of at least 1"),
    ({"labels": [C] + [0] * (N - 1)}, r"label value 50 is outside the valid range \[0, 50\)"),
    ({"labels": [-1] + [0] * (N - 1)}, "label value -1 is outside"),
    ({"labels": np.zeros(N, np.float32)}, "labels must be integer token ids"),
    ({"labels": np.zeros(N + 1, np.int32)}, r"labels must be integer token ids of shape \[N\] = \[24\]"),
    ({"weights": np.zeros((H + 1, C), np.float32)}, "hidden's H = 16 must equal weights' H = 17"),
    ({"bias": np.zeros(C + 1, np.float32)}, r"bias must be \[C\] = \[50\]"),
    ({"label_smoothing": 1.5}, r"label_smoothing must be in \[0, 1\]"),
])
def test_bad_input_raises_a_clear_error(kwargs, message):
    h, w, b, y = _inputs()
    args = {"labels": y, "hidden": h, "weights": w, "bias": b, "block_size": 8} | kwargs
    with pytest.raises(ValueError, match=message):
        losses.linear_cross_entropy(**args)


def test_out_of_range_labels_in_a_graph():
    h, w, b, _ = _inputs()
    bad = tf.function(lambda y: losses.linear_cross_entropy(y, h, w, b, block_size=8))
    with pytest.raises(tf.errors.InvalidArgumentError):  # TensorFlow's CPU gather checks its indices
        bad(tf.constant([C] + [0] * (N - 1), tf.int32)).numpy()
    xla = tf.function(lambda y: losses.linear_cross_entropy(y, h, w, b, block_size=8), jit_compile=True)
    loss = xla(tf.constant([C] + [0] * (N - 1), tf.int32)).numpy()  # XLA's gather clamps: NaN marks it
    assert np.isnan(loss[0]) and np.all(np.isfinite(loss[1:]))


def test_training_with_a_large_output_layer_follows_the_materialised_loss():
    rng = np.random.default_rng(3)
    n, h_dim, c = 256, 32, 3000
    x = tf.constant(rng.normal(size=(n, 20)).astype(np.float32))
    y = tf.constant(rng.integers(0, c, n).astype(np.int32))

    def curve(loss_fn):
        tf.keras.utils.set_random_seed(0)
        hidden = keras.layers.Dense(h_dim, activation="tanh")
        hidden.build((None, 20))
        kernel = tf.Variable(tf.random.stateless_normal([h_dim, c], seed=[0, 1]) * 0.1)
        bias = tf.Variable(tf.zeros([c]))
        opt = keras.optimizers.Adam(1e-2)
        variables = [*hidden.trainable_variables, kernel, bias]
        losses_seen = []
        for _ in range(15):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(loss_fn(hidden(x), kernel, bias))
            opt.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
            losses_seen.append(float(loss))
        return np.array(losses_seen)

    chunked = curve(lambda h, w, b: losses.linear_cross_entropy(y, h, w, b, block_size=512))
    materialised = curve(lambda h, w, b: tf.nn.sparse_softmax_cross_entropy_with_logits(y, h @ w + b))
    assert chunked[-1] < chunked[0] - 1.0  # it learns
    assert np.max(np.abs(chunked - materialised)) < 1e-4 * np.max(materialised)
