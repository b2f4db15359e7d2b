"""The atlas' Keras entry points on each Keras backend: the same call, measured on TensorFlow and
on JAX, each backend in a fresh process (Keras reads ``KERAS_BACKEND`` once, when it is imported:
``keras/src/backend/config.py``).

Why the backends can differ: with ``from_logits=False`` Keras' TensorFlow backend first looks
for the logits behind the probabilities (``_get_logits`` in ``keras/src/backend/tensorflow/nn.py``:
a ``_keras_logits`` attribute, or in a graph the input of a ``Softmax``/``Sigmoid`` op) and, when
it finds them, computes the exact loss from them. Keras' JAX backend has no such step: its
``categorical_crossentropy``, ``sparse_categorical_crossentropy`` and ``binary_crossentropy``
(``keras/src/backend/jax/nn.py``) always clip the probabilities to ``[1e-7, 1 - 1e-7]`` and take
the log (the categorical ones after renormalising), and its sparse loss one-hot encodes the
labels with ``jax.nn.one_hot``, which encodes a label outside ``[0, C)`` as a row of zeros.

:func:`measure` runs in the backend's process (``python -m xentlab.atlas.backends``);
:func:`compare` starts one process per backend and returns every row. Shapes: ``B`` examples,
``C`` classes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from xentlab import record, runtime

Row = dict[str, Any]

#: The backends :func:`compare` measures by default (torch: see :data:`runtime.KERAS_BACKENDS`).
BACKENDS: tuple[str, ...] = ("tensorflow", "jax")
#: The logit gaps measured: the true class trails the largest logit by this much.
GAPS: tuple[float, ...] = (10.0, 100.0, 1000.0)
#: The 16-bit dtypes measured at :data:`GAPS_16`.
DTYPES_16: tuple[str, ...] = ("float16", "bfloat16")
GAPS_16: tuple[float, ...] = (10.0, 100.0)
#: The modes a call runs in: eagerly, compiled (``tf.function`` / ``jax.jit``), in ``Model.fit``.
MODES: tuple[str, ...] = ("eager", "compiled", "Model.fit")
#: The gap of the ``Model.fit`` rows and of the bad-label rows' logits.
FIT_GAP: float = 100.0


def _entries() -> list[Any]:
    """The atlas' Keras entry points (``keras.losses`` and ``keras.ops``), the probability ones
    fed by Keras' own activations (as a ``Dense(..., activation="softmax")`` head makes them)."""
    from xentlab.atlas.registry import ENTRY_POINTS

    return [e for e in ENTRY_POINTS if e.api in ("keras.losses", "keras.ops")
            and not e.name.endswith("on keras.ops.softmax(logits)")]


def _outputs(e: Any, z: Any) -> Any:
    """The entry's input: the logits, or Keras' softmax / sigmoid activation of them."""
    import keras

    if e.expects == "logits":
        return z
    return (keras.activations.sigmoid if e.family == "sigmoid" else keras.activations.softmax)(z)


def _value_and_grad(fn: Callable[[Any], Any], z: np.ndarray, *, compiled: bool
                    ) -> tuple[np.ndarray, np.ndarray]:
    """``(fn(z), d sum(fn(z)) / dz)`` as float64 NumPy arrays, on the running Keras backend,
    eagerly or compiled (``tf.function`` on TensorFlow, ``jax.jit`` on JAX)."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        def both(x: Any) -> tuple[Any, Any]:
            with tf.GradientTape() as tape:
                tape.watch(x)
                value = fn(x)
            grad = tape.gradient(value, x)
            return value, tf.zeros_like(x) if grad is None else grad

        value, grad = (tf.function(both) if compiled else both)(tf.constant(z))
    elif backend == "jax":
        import jax
        import jax.numpy as jnp

        def both(x: Any) -> tuple[Any, Any]:
            value, pullback = jax.vjp(fn, x)
            return value, pullback(jnp.ones_like(value))[0]

        value, grad = (jax.jit(both) if compiled else both)(jnp.asarray(z))
    else:
        raise runtime.BackendError(f"no gradient for the Keras backend {backend!r} here")
    return np.asarray(value).astype(np.float64), np.asarray(grad).astype(np.float64)


def _np_dtype(name: str) -> Any:
    """NumPy's dtype of ``name`` (bfloat16 from ``ml_dtypes``, which TensorFlow and JAX share)."""
    import ml_dtypes

    return ml_dtypes.bfloat16 if name == "bfloat16" else np.dtype(name)


def _finds_logits(e: Any) -> bool:
    """Whether the entry hands probabilities to the backend's loss (so the backend may look for
    the logits behind them): the ``from_logits=False`` calls, and the focal losses, which apply a
    sigmoid or softmax themselves (``keras/src/losses/losses.py``). Only these get a
    ``Model.fit`` row."""
    return e.expects == "probabilities" or "Focal" in e.name


def _fit_value(e: Any, labels: np.ndarray, z: np.ndarray) -> float:
    """The loss ``Model.fit`` reports for one example on a model whose output layer is
    ``Dense(C, activation=...)`` with identity weights on input ``z`` (so its logits are ``z``),
    compiled with the entry's call at its default reduction; the learning rate is 0, so the
    reported loss is the loss at ``z``."""
    import keras

    classes = z.shape[-1]
    activation = None if e.expects == "logits" else ("sigmoid" if e.family == "sigmoid" else "softmax")
    model = keras.Sequential([keras.Input((classes,)), keras.layers.Dense(
        classes, activation=activation, use_bias=False, kernel_initializer="identity")])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss=e.default_call or e.fn)
    history = model.fit(z.astype(np.float32), labels, epochs=1, batch_size=len(z), verbose=0)
    return float(history.history["loss"][0])


def _attempt(fn: Callable[[], Any]) -> tuple[Any, str | None]:
    """``(fn(), None)``, or ``(None, "Error: message")`` where it raises
    (:func:`xentlab.atlas.registry._attempt`, the atlas' one way to record a failure)."""
    from xentlab.atlas.registry import _attempt as attempt

    result, info = attempt(fn)
    return result, (f"{info['error']}: {info['message']}" if info["error"] else None)


def measure(classes: int = 5) -> list[Row]:
    """Every Keras entry point on the running backend: value and gradient against the float64
    oracle eagerly at :data:`GAPS` (float32) and :data:`GAPS_16` (16-bit), compiled at
    :data:`FIT_GAP`, the loss ``Model.fit`` reports at :data:`FIT_GAP`, and for integer labels
    what a label equal to ``C`` gives. One example with logits ``[0, gap, 0, ...]`` and true class 0.

    Returns rows ``backend, entry, expects, mode, dtype, gap, value, oracle, rel_error,
    grad_abs_error, grad_max_abs, error`` (``mode`` ``"label = C"`` for the bad-label rows,
    ``value`` ``None`` where the call raised, ``error`` its exception)."""
    import keras

    from xentlab.atlas.measure import _native_labels, _rel_error
    from xentlab.atlas.registry import oracle

    backend = keras.backend.backend()
    rows: list[Row] = []
    cases = [("eager", "float32", g) for g in GAPS] + [("eager", d, g) for d in DTYPES_16 for g in GAPS_16]
    cases += [("compiled", "float32", FIT_GAP), ("Model.fit", "float32", FIT_GAP)]
    for e in _entries():
        labels = _native_labels(e, np.array([0]), classes)
        for mode, dtype, gap in cases:
            if mode == "Model.fit" and not _finds_logits(e):
                continue
            z = np.zeros((1, classes), np.float64)
            z[0, 1] = gap
            z = z.astype(_np_dtype(dtype))
            ref, ref_grad = oracle(e, np.eye(classes)[[0]], z.astype(np.float64))
            row: Row = {"backend": backend, "entry": e.name, "expects": e.expects, "mode": mode,
                        "dtype": dtype, "gap": gap, "oracle": float(np.sum(ref)), "value": None,
                        "rel_error": None, "grad_abs_error": None, "grad_max_abs": None}
            if mode == "Model.fit":
                value, row["error"] = _attempt(lambda: _fit_value(e, labels, z))  # noqa: B023 (called now)
                if value is not None:  # fit reports the mean: over the one example and, [B,C], the classes
                    row.update(value=value, rel_error=abs(value - float(np.mean(ref))) / float(np.mean(ref)))
            else:
                y = labels if labels.dtype.kind == "i" else labels.astype(z.dtype)
                result, row["error"] = _attempt(lambda: _value_and_grad(  # noqa: B023 (called now)
                    lambda x: e.fn(y, _outputs(e, x)), z, compiled=mode == "compiled"))  # noqa: B023
                if result is not None:
                    value, grad = result
                    row.update(value=float(np.sum(value)),
                               rel_error=_rel_error(value, ref) if value.shape == ref.shape else float("nan"),
                               grad_abs_error=float(np.max(np.abs(grad - ref_grad))),
                               grad_max_abs=float(np.max(np.abs(grad))))
            rows.append(record.jsonable(row))
        if e.labels.startswith("int"):
            bad = _native_labels(e, np.array([classes]), classes)
            z = np.zeros((1, classes), np.float32)
            z[0, 1] = FIT_GAP
            value, error = _attempt(lambda: float(np.sum(np.asarray(e.fn(bad, _outputs(e, z))))))  # noqa: B023
            rows.append(record.jsonable({"backend": backend, "entry": e.name, "expects": e.expects,
                                 "mode": "label = C", "dtype": "float32", "gap": FIT_GAP,
                                 "oracle": None, "value": value, "rel_error": None,
                                 "grad_abs_error": None, "grad_max_abs": None, "error": error}))
    return rows


def start(backends: Sequence[str] = BACKENDS, *, classes: int = 5, timeout: float = 600
          ) -> list[runtime.KernelRun]:
    """Start :func:`measure` on each backend, each in a fresh process, and return at once (each
    run's ``result()`` waits for its rows). Raises :class:`xentlab.runtime.BackendError` naming
    what to install if a backend is unknown or missing, before any process starts."""
    for backend in backends:
        runtime.check_keras_backend(backend)
    code = runtime.json_call("xentlab.atlas.backends", "measure", classes=int(classes))
    return [runtime.start_with_keras_backend(code, backend, timeout=timeout) for backend in backends]


def compare(backends: Sequence[str] = BACKENDS, *, classes: int = 5, timeout: float = 600) -> list[Row]:
    """:func:`start` and wait: every backend's rows."""
    return [row for run in start(backends, classes=classes, timeout=timeout) for row in run.result()]


def differences(rows: Sequence[Row], *, gap: float = FIT_GAP, tol: float = 1e-3) -> list[str]:
    """The entries whose float32 value at ``gap`` differs between the backends in ``rows`` in
    eager, compiled or ``Model.fit`` mode (by more than ``tol`` times the larger value, at least
    ``tol``; a call that raises or returns a non-finite value on one backend only differs), in
    the atlas' order. The ``label = C`` rows are not compared."""
    by: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        if r["dtype"] == "float32" and r["gap"] == gap and r["mode"] in MODES:
            by.setdefault((r["entry"], r["mode"]), {})[r["backend"]] = r["value"]
    out = []
    for (entry, _), values in by.items():
        v = list(values.values())
        numbers = [x for x in v if isinstance(x, float)]
        if len(v) > 1 and entry not in out and (len(set(map(str, v))) > 1 and len(numbers) < len(v)
                                                or numbers and max(numbers) - min(numbers) > tol * max(1.0, abs(max(numbers)))):
            out.append(entry)
    return out


def cell(r: Row) -> str:
    """One backend row as a table cell: the value (``grad 0`` where its gradient is exactly 0),
    or the error class."""
    if r["value"] is None:
        return (r.get("error") or "raises").split(":")[0]
    if isinstance(r["value"], str):
        return r["value"]
    return f"{r['value']:.3f}" + (" (grad 0)" if r.get("grad_max_abs") == 0.0 else "")


def table(rows: Sequence[Row], *, gap: float = FIT_GAP) -> str:
    """Two Markdown tables: the float32 values of ``rows`` at ``gap`` (one line per entry, one
    column per mode and backend, and the exact value: the sum over an element-wise loss' classes
    where ``Model.fit`` reports their mean), then what a label equal to ``C`` gives."""
    from xentlab.atlas.render import matrix

    picked = [{**r, "column": f"{r['mode']}, {r['backend']}"} for r in rows
              if r["dtype"] == "float32" and r["gap"] == gap and r["mode"] in MODES]
    exact = {r["entry"]: r for r in picked if r["mode"] == "eager"}
    picked += [{**r, "column": "exact", "value": r["oracle"], "grad_max_abs": None} for r in exact.values()]
    bad = [{**r, "column": r["backend"]} for r in rows if r["mode"] == "label = C"]
    return matrix(picked, "entry", "column", cell) + (
        "\n\n**A label equal to C**\n\n" + matrix(bad, "entry", "column", cell) if bad else "")

