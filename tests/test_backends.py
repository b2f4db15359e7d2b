"""Keras' entry points on each Keras backend (xentlab.atlas.backends) and the backend checks
of xentlab.runtime."""

import importlib.util
import math

import pytest

from xentlab import runtime
from xentlab.atlas import backends
from xentlab.atlas.registry import KERAS_CCE, KERAS_CCE_PROBS, KERAS_SPARSE


def test_an_unknown_backend_names_the_known_ones():
    with pytest.raises(runtime.BackendError, match="unknown Keras backend 'mxnet'.*jax"):
        runtime.check_keras_backend("mxnet")


def test_a_missing_backend_names_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "jax" else real(name, *a))
    with pytest.raises(runtime.BackendError, match=r"jax==0\.10\.2 and jaxlib==0\.10\.2.*make setup"):
        runtime.check_keras_backend("jax")
    with pytest.raises(runtime.BackendError):  # before any process starts
        backends.start(("tensorflow", "jax"))


def _row(backend, entry, value, mode="eager", grad=1.0):
    return {"backend": backend, "entry": entry, "mode": mode, "dtype": "float32", "gap": 100.0,
            "value": value, "oracle": 100.0, "grad_max_abs": grad, "error": None}


def test_differences_and_table():
    rows = [_row("tensorflow", KERAS_CCE_PROBS, 100.0), _row("jax", KERAS_CCE_PROBS, 16.118, grad=0.0),
            _row("tensorflow", KERAS_CCE, 100.0), _row("jax", KERAS_CCE, 100.00001),
            _row("tensorflow", KERAS_SPARSE, None, mode="label = C"), _row("jax", KERAS_SPARSE, 0.0, mode="label = C")]
    rows[4]["error"] = "InvalidArgumentError: label 5"
    assert backends.differences(rows) == [KERAS_CCE_PROBS]
    text = backends.table(rows)
    assert "16.118 (grad 0)" in text and "| InvalidArgumentError |" in text and "exact" in text


def test_measure_on_tensorflow_reads_the_logits_behind_a_keras_softmax():
    """In this process (Keras on TensorFlow): CategoricalCrossentropy(from_logits=False) on a
    Keras softmax is exact at a logit gap of 100 eagerly, compiled and in Model.fit."""
    rows = [r for r in backends.measure() if r["entry"] == KERAS_CCE_PROBS and r["gap"] == 100.0
            and r["dtype"] == "float32"]
    assert {r["mode"] for r in rows} == set(backends.MODES)
    assert all(math.isclose(r["value"], 100.0, rel_tol=1e-6) for r in rows)


@pytest.mark.slow
def test_jax_clips_and_ignores_a_label_equal_to_c():
    """A fresh process on Keras' JAX backend: the same call is clipped (16.118, gradient 0), and
    a label equal to C gives a silent 0 (keras/src/backend/jax/nn.py)."""
    rows = backends.compare(("jax",))
    assert {r["backend"] for r in rows} == {"jax"}
    probs = [r for r in rows if r["entry"] == KERAS_CCE_PROBS and r["gap"] == 100.0 and r["dtype"] == "float32"]
    assert all(math.isclose(r["value"], -math.log(1e-7), rel_tol=1e-4) for r in probs)
    assert [r["grad_max_abs"] for r in probs if r["mode"] != "Model.fit"] == [0.0, 0.0]
    bad = [r for r in rows if r["entry"] == KERAS_SPARSE and r["mode"] == "label = C"]
    assert bad and bad[0]["value"] == 0.0 and bad[0]["error"] is None
