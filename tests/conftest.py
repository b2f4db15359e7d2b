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
    """Yield a setter for TF's op determinism (:func:`xentlab.runtime.set_op_determinism`); the
    previous state is restored afterwards, so tests stay independent of their order (graphs
    traced while it was on keep what they traced)."""
    from xentlab import runtime

    before = runtime.op_determinism_enabled()
    yield runtime.set_op_determinism
    runtime.set_op_determinism(before)
