"""The documents' MNIST networks, rebuilt for TensorFlow 2 / Keras 3.

Two networks, both mapping images ``[B, 28, 28]``, ``[B, 28, 28, 1]`` or ``[B, 784]`` to logits
``[B, 10]``. ``uint8`` images are scaled to ``[0, 1]`` (``x / 255``); float images are taken as
already scaled (like ``input_data.read_data_sets`` in the documents).

- :class:`RawCNN` — document 002 (``002_ca8a58ff690c3f70.txt``): the raw-``tf.Variable`` CNN,
  conv 5x5x32 -> relu -> max-pool 2 -> conv 5x5x64 -> relu -> max-pool 2 -> dense 1024 relu ->
  dropout -> dense 10. Its weights *and* biases are ``random_normal`` (stddev 1 in the document),
  the softmax layer's are ``truncated_normal`` (stddev 1, cut at 2 stddev). Here one
  ``init_stddev`` scales every layer (default 1.0 = the document), so an init-scale sweep changes
  the whole network's scale; at 1.0 the logits are in the thousands and the softmax saturates.
- :func:`layers_cnn` — document 000 (``000_0c37df1317e85c45.txt``): its ``tf.layers`` CNN as Keras
  3 layers (conv 32 5x5 same relu, max-pool 2 same, conv 64 5x5 same relu, max-pool 2 same,
  dense 1024 relu, dropout 0.5, dense 10), Keras/``tf.layers`` default initialisers
  (Glorot-uniform kernels, zero biases); the widths are parameters (default: the document's).

Both constructions are seeded: the same ``seed`` gives the same weights (and the same dropout
masks, given the same sequence of calls), independent of any global seed.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from xentlab.data import NUM_CLASSES

__all__ = ["RawCNN", "LayersCNN", "layers_cnn", "to_images"]


def to_images(x: tf.Tensor) -> tf.Tensor:
    """Images ``[B, 28, 28]``, ``[B, 28, 28, 1]`` or ``[B, 784]`` -> float32 ``[B, 28, 28, 1]``.

    ``uint8`` input is divided by 255; float input is cast to float32 unchanged.
    """
    x = tf.convert_to_tensor(x)
    if x.dtype == tf.uint8:
        x = tf.cast(x, tf.float32) / 255.0
    elif x.dtype.is_floating:
        x = tf.cast(x, tf.float32)
    else:
        raise ValueError(f"images must be uint8 or floating point, got dtype {x.dtype.name}")
    return tf.reshape(x, [-1, 28, 28, 1])


class RawCNN(tf.Module):
    """Document 002's CNN with explicit ``tf.Variable`` weights.

    Args:
        init_stddev: standard deviation of every initial weight and bias (document: 1.0). The conv
            and hidden dense layers draw ``random_normal(stddev=init_stddev)``, the softmax layer
            ``truncated_normal(stddev=init_stddev)`` (TF's truncation at two standard deviations).
        dropout_rate: fraction of the 1024 hidden units dropped in training (document:
            ``keep_prob = 0.75`` -> ``dropout_rate = 0.25``); no dropout when ``training=False``.
        seed: seeds the initial weights and the dropout masks.

    Call: ``model(x, training=False)`` with images (see :func:`to_images`) -> logits ``[B, 10]``.
    """

    def __init__(self, *, init_stddev: float = 1.0, dropout_rate: float = 0.25, seed: int = 0):
        super().__init__(name="raw_cnn")
        if not init_stddev > 0:
            raise ValueError(f"init_stddev must be > 0, got {init_stddev!r}")
        if not 0.0 <= dropout_rate < 1.0:
            raise ValueError(f"dropout_rate must be in [0, 1), got {dropout_rate!r}")
        self.init_stddev = float(init_stddev)
        self.dropout_rate = float(dropout_rate)
        self.seed = int(seed)
        s = self.init_stddev

        def normal(shape: list[int], k: int, name: str) -> tf.Variable:
            value = tf.random.stateless_normal(shape, seed=[self.seed, k], stddev=s)
            return tf.Variable(value, name=name)

        def truncated(shape: list[int], k: int, name: str) -> tf.Variable:
            value = tf.random.stateless_truncated_normal(shape, seed=[self.seed, k], stddev=s)
            return tf.Variable(value, name=name)

        self.W_conv1 = normal([5, 5, 1, 32], 1, "W_conv1")
        self.b_conv1 = normal([32], 2, "b_conv1")
        self.W_conv2 = normal([5, 5, 32, 64], 3, "W_conv2")
        self.b_conv2 = normal([64], 4, "b_conv2")
        self.W_full = normal([7 * 7 * 64, 1024], 5, "W_full")
        self.b_full = normal([1024], 6, "b_full")
        self.W_softmax = truncated([1024, NUM_CLASSES], 7, "W_softmax")
        self.b_softmax = truncated([NUM_CLASSES], 8, "b_softmax")
        # Dropout masks come from this generator (its state is a variable, so a compiled step
        # draws a fresh mask each call without retracing).
        self._dropout_rng = tf.random.Generator.from_seed(self.seed + 1_000_003)

    def __call__(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        """Images -> logits ``[B, 10]``; dropout only when ``training``."""
        h = to_images(x)
        pool = dict(ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="SAME")
        h = tf.nn.conv2d(h, self.W_conv1, strides=1, padding="SAME")
        h = tf.nn.max_pool(tf.nn.relu(h + self.b_conv1), **pool)
        h = tf.nn.conv2d(h, self.W_conv2, strides=1, padding="SAME")
        h = tf.nn.max_pool(tf.nn.relu(h + self.b_conv2), **pool)
        h = tf.reshape(h, [-1, 7 * 7 * 64])
        h = tf.nn.relu(tf.matmul(h, self.W_full) + self.b_full)
        if training and self.dropout_rate > 0:
            seed = self._dropout_rng.make_seeds(1)[:, 0]
            h = tf.nn.experimental.stateless_dropout(h, rate=self.dropout_rate, seed=seed)
        return tf.matmul(h, self.W_softmax) + self.b_softmax


class LayersCNN(keras.Model):
    """Document 000's ``tf.layers`` CNN as a Keras 3 model (build it with :func:`layers_cnn`).

    ``always_dropout=True`` reproduces the document's quirk: it calls
    ``tf.nn.dropout(h_fc1, 0.5)`` with a literal 0.5 (its ``keep_prob`` placeholder is never
    used), so dropout is applied in evaluation too. ``False`` (the usual behaviour) drops units
    only when ``training=True``.
    """

    def __init__(self, *, dropout_rate: float = 0.5, always_dropout: bool = False, seed: int = 0,
                 conv_filters: tuple[int, int] = (32, 64), hidden_units: int = 1024):
        super().__init__(name="layers_cnn")
        if not 0.0 <= dropout_rate < 1.0:
            raise ValueError(f"dropout_rate must be in [0, 1), got {dropout_rate!r}")
        if len(conv_filters) != 2 or min(conv_filters) < 1 or hidden_units < 1:
            raise ValueError(f"conv_filters must be two positive ints and hidden_units positive, "
                             f"got {conv_filters!r}, {hidden_units!r}")
        self.always_dropout = bool(always_dropout)
        self.seed = int(seed)
        init = keras.initializers

        def glorot(k: int) -> keras.initializers.Initializer:
            return init.GlorotUniform(seed=self.seed * 100 + k)

        self.conv1 = keras.layers.Conv2D(conv_filters[0], 5, padding="same", activation="relu",
                                         kernel_initializer=glorot(1), name="conv1")
        self.pool1 = keras.layers.MaxPooling2D(2, strides=2, padding="same", name="pool1")
        self.conv2 = keras.layers.Conv2D(conv_filters[1], 5, padding="same", activation="relu",
                                         kernel_initializer=glorot(2), name="conv2")
        self.pool2 = keras.layers.MaxPooling2D(2, strides=2, padding="same", name="pool2")
        self.flatten = keras.layers.Flatten()
        self.fc1 = keras.layers.Dense(hidden_units, activation="relu", kernel_initializer=glorot(3),
                                      name="fc1")
        self.dropout = keras.layers.Dropout(dropout_rate, seed=self.seed * 100 + 4)
        self.fc2 = keras.layers.Dense(NUM_CLASSES, kernel_initializer=glorot(5), name="fc2")

    def call(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        """Images -> logits ``[B, 10]``."""
        h = self.pool1(self.conv1(to_images(x)))
        h = self.flatten(self.pool2(self.conv2(h)))
        h = self.dropout(self.fc1(h), training=bool(training) or self.always_dropout)
        return self.fc2(h)


def layers_cnn(*, dropout_rate: float = 0.5, always_dropout: bool = False, seed: int = 0,
               conv_filters: tuple[int, int] = (32, 64), hidden_units: int = 1024) -> LayersCNN:
    """Build (weights created, seeded) document 000's CNN; see :class:`LayersCNN`.

    ``conv_filters`` and ``hidden_units`` default to the document's (32, 64) and 1024; smaller
    values give a cheaper network of the same shape for sweeps.
    """
    model = LayersCNN(dropout_rate=dropout_rate, always_dropout=always_dropout, seed=seed,
                      conv_filters=conv_filters, hidden_units=hidden_units)
    model(tf.zeros([1, 28, 28], tf.float32))  # create the weights now, from the seeds
    return model
