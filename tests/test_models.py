"""xentlab.models: shapes, seeded construction, init scale, document 000's dropout quirk."""

import numpy as np
import pytest
import tensorflow as tf

from xentlab import models

RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, size=(4, 28, 28), dtype=np.uint8)


@pytest.fixture(scope="module")
def raw():
    return models.RawCNN(seed=0)


@pytest.fixture(scope="module")
def keras_cnn():
    return models.layers_cnn(seed=0)


@pytest.mark.parametrize("shape", [(4, 28, 28), (4, 784), (4, 28, 28, 1)])
def test_raw_cnn_logit_shape(raw, shape):
    assert raw(IMAGES.reshape(shape)).shape == (4, 10)
    assert raw(IMAGES.reshape(shape).astype(np.float32) / 255, training=True).shape == (4, 10)


def test_uint8_and_scaled_float_agree(raw):
    a = raw(IMAGES).numpy()
    b = raw(IMAGES.astype(np.float32) / 255.0).numpy()
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-2)


def test_integer_non_uint8_images_rejected(raw):
    with pytest.raises(ValueError, match="uint8 or floating"):
        raw(IMAGES.astype(np.int32))


@pytest.mark.parametrize("shape", [(4, 28, 28), (4, 784)])
def test_layers_cnn_logit_shape(keras_cnn, shape):
    assert keras_cnn(IMAGES.reshape(shape)).shape == (4, 10)


def test_raw_cnn_variables_match_the_document(raw):
    shapes = {v.name.split(":")[0]: tuple(v.shape) for v in raw.trainable_variables}
    assert shapes == {
        "W_conv1": (5, 5, 1, 32), "b_conv1": (32,), "W_conv2": (5, 5, 32, 64), "b_conv2": (64,),
        "W_full": (3136, 1024), "b_full": (1024,), "W_softmax": (1024, 10), "b_softmax": (10,),
    }


@pytest.mark.parametrize("stddev", [1.0, 0.1, 0.01])
def test_init_stddev_scales_every_layer(stddev):
    m = models.RawCNN(init_stddev=stddev, seed=1)
    # random_normal layers: sample std within 2% of stddev (3.2M samples for W_full)
    assert np.std(m.W_full.numpy()) == pytest.approx(stddev, rel=0.02)
    assert np.std(m.W_conv2.numpy()) == pytest.approx(stddev, rel=0.03)
    # truncated_normal at 2 stddev: |w| <= 2 stddev, std = 0.8796 stddev
    w = m.W_softmax.numpy()
    assert np.abs(w).max() <= 2 * stddev
    assert np.std(w) == pytest.approx(0.8796 * stddev, rel=0.05)


def test_bad_init_stddev():
    with pytest.raises(ValueError, match="init_stddev"):
        models.RawCNN(init_stddev=0.0)
    with pytest.raises(ValueError, match="dropout_rate"):
        models.RawCNN(dropout_rate=1.0)


def test_stddev_one_saturates_the_softmax(raw):
    """The document's init: logits so large that float32 softmax is exactly one-hot."""
    p = tf.nn.softmax(raw(IMAGES)).numpy()
    assert np.all(np.sort(p, axis=1)[:, -1] == 1.0)
    assert np.mean(p == 0.0) >= 0.8


def test_seeded_construction():
    a, b, c = models.RawCNN(seed=3), models.RawCNN(seed=3), models.RawCNN(seed=4)
    for va, vb in zip(a.trainable_variables, b.trainable_variables, strict=True):
        np.testing.assert_array_equal(va.numpy(), vb.numpy())
    assert not np.array_equal(a.W_full.numpy(), c.W_full.numpy())
    k1, k2 = models.layers_cnn(seed=3), models.layers_cnn(seed=3)
    for va, vb in zip(k1.trainable_variables, k2.trainable_variables, strict=True):
        np.testing.assert_array_equal(va.numpy(), vb.numpy())


def test_raw_dropout_only_in_training():
    m = models.RawCNN(init_stddev=0.1, seed=0)
    np.testing.assert_array_equal(m(IMAGES).numpy(), m(IMAGES).numpy())
    assert not np.array_equal(m(IMAGES, training=True).numpy(), m(IMAGES, training=True).numpy())


def test_always_dropout_quirk():
    normal = models.layers_cnn(seed=0)
    quirk = models.layers_cnn(seed=0, always_dropout=True)
    # usual behaviour: evaluation is deterministic, training is not
    np.testing.assert_array_equal(normal(IMAGES).numpy(), normal(IMAGES).numpy())
    assert not np.array_equal(normal(IMAGES, training=True).numpy(),
                              normal(IMAGES, training=True).numpy())
    # document 000: dropout 0.5 even when evaluating
    assert not np.array_equal(quirk(IMAGES).numpy(), quirk(IMAGES).numpy())
    assert quirk.always_dropout and not normal.always_dropout


def test_layers_cnn_initial_loss_near_ln10(keras_cnn):
    """Glorot init and zero biases: near-uniform softmax, CE close to ln 10 (document: 2.2959)."""
    labels = np.arange(4) % 10
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, keras_cnn(IMAGES)).numpy()
    assert ce.shape == (4,)
    assert abs(ce.mean() - np.log(10)) < 0.3


def test_layers_cnn_widths():
    small = models.layers_cnn(seed=0, conv_filters=(4, 8), hidden_units=16)
    assert small(IMAGES).shape == (4, 10)
    shapes = sorted(tuple(v.shape) for v in small.trainable_variables)
    assert (5, 5, 1, 4) in shapes and (5, 5, 4, 8) in shapes and (392, 16) in shapes
    full = models.layers_cnn(seed=0)
    assert (3136, 1024) in [tuple(v.shape) for v in full.trainable_variables]
    with pytest.raises(ValueError, match="conv_filters"):
        models.layers_cnn(conv_filters=(4,))
