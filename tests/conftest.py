"""Fixtures shared by the test modules."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest
import tensorflow as tf


@pytest.fixture
def rng() -> np.random.Generator:
    """A NumPy generator with a fixed seed, fresh for every test."""
    return np.random.default_rng(0)


@pytest.fixture(params=["eager", "function"])
def run_mode(request) -> Callable[[Callable], Callable]:
    """Run a function eagerly or as a ``tf.function`` graph: ``run_mode(f)(*args)``."""
    if request.param == "eager":
        return lambda f: f
    return tf.function


@pytest.fixture
def op_determinism() -> Iterator[Callable[[bool], None]]:
    """Yield a setter for TF's op determinism; the previous state is restored afterwards.

    The public ``tf.config.experimental.enable_op_determinism()`` is process-wide and one-way
    (``xentlab.train.seed_everything`` turns it on for the rest of the process, as the training
    tests do); the undo used here, ``disable_op_determinism``, is TF-internal
    (``tensorflow.python.framework.config``). Restoring it keeps the tests independent of their
    order: ``tf.nn``'s cross-entropy ops and anything else that branches on
    ``is_op_determinism_enabled()`` behave in later tests as they would have without this one.
    Graphs traced while it was on keep what they traced.
    """
    from tensorflow.python.framework import config as tf_config

    before = tf_config.is_op_determinism_enabled()

    def set_state(on: bool) -> None:
        if on:
            tf_config.enable_op_determinism()
        else:
            tf_config.disable_op_determinism()
        assert tf_config.is_op_determinism_enabled() == on

    yield set_state
    set_state(before)
