"""Process state, in one place: TensorFlow's environment, seeds, op determinism, TensorFlow's
Python logger, and fresh processes under a chosen CPU kernel set or Keras backend.

Every function here changes the running process (or starts another) and says so in its name;
no other module of xentlab seeds, toggles op determinism, sets environment variables or
changes TensorFlow's logger. Where a change can be undone it is also offered as a context
manager that restores the previous state, so results do not depend on what ran earlier in the
same process or test session.

TensorFlow is imported lazily: :func:`set_tensorflow_environment` must run before it loads.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["KERAS_BACKENDS", "TF_ENVIRONMENT", "BackendError", "KernelRun", "check_keras_backend", "environment", "json_call", "op_determinism", "op_determinism_enabled",
           "quiet_tensorflow_logger", "run_with_each_kernel_set", "run_with_kernels", "seed", "set_op_determinism", "start_with_kernels",
           "set_tensorflow_environment", "silence_tensorflow_logger", "start_with_keras_backend",
           "tensorflow_environment", "tensorflow_seed"]

#: The environment every TensorFlow process of the project starts with (a user's own setting
#: wins): C++ logs silenced, and TensorFlow's oneDNN CPU kernels on, so every x86 CPU runs the
#: kernels the committed outputs came from. Unset, TensorFlow decides from the CPU
#: (:func:`xentlab.config.onednn_default`); the two kernel sets print different digits where
#: the notebooks look (docs/glossary.md, "oneDNN and Eigen kernels").
TF_ENVIRONMENT: dict[str, str] = {"TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "1"}


def tensorflow_environment() -> dict[str, str]:
    """:data:`TF_ENVIRONMENT` with the user's own settings of those variables kept."""
    return {name: os.environ.get(name, value) for name, value in TF_ENVIRONMENT.items()}


def set_tensorflow_environment() -> None:
    """Apply :func:`tensorflow_environment` to ``os.environ`` for the rest of the process; call
    before TensorFlow is loaded, which reads both variables once."""
    os.environ.update(tensorflow_environment())


@contextmanager
def environment(**variables: str) -> Iterator[None]:
    """Set environment variables for the block, then restore (or remove) each."""
    before = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def seed(value: int) -> None:
    """Seed Python's ``random``, NumPy, TensorFlow and Keras (``keras.utils.set_random_seed``).
    Seeds only: op determinism is :func:`set_op_determinism`'s."""
    import keras

    keras.utils.set_random_seed(int(value))


@contextmanager
def tensorflow_seed(value: int) -> Iterator[None]:
    """``tf.random.set_seed(value)`` for the block; afterwards the previous global seed is set
    again (read through ``tensorflow/python/eager/context.py``'s ``global_seed``, no public API
    tells). Setting a seed restarts its sequence, so random ops after the block draw as after a
    fresh ``tf.random.set_seed(previous)``."""
    import tensorflow as tf
    from tensorflow.python.eager import context

    before = context.global_seed()
    tf.random.set_seed(value)
    try:
        yield
    finally:
        tf.random.set_seed(before)


def op_determinism_enabled() -> bool:
    """Whether TensorFlow's op determinism is on in this process."""
    from tensorflow.python.framework import config as tf_config

    return bool(tf_config.is_op_determinism_enabled())


def set_op_determinism(on: bool) -> None:
    """Turn TensorFlow's op determinism on or off for the rest of the process.

    On, ``tf.nn.softmax_cross_entropy_with_logits`` and its sparse twin compose ``log_softmax``
    instead of running their fused kernels (``nn_ops.py``), which is why this is never a side
    effect of seeding. The public switch, ``tf.config.experimental.enable_op_determinism``, is
    one-way; its undo, ``disable_op_determinism``, is not exported in TF 2.21 and is taken from
    ``tensorflow/python/framework/config.py`` (the one use of it; a test pins its behaviour).
    """
    from tensorflow.python.framework import config as tf_config

    (tf_config.enable_op_determinism if on else tf_config.disable_op_determinism)()


@contextmanager
def op_determinism(on: bool) -> Iterator[None]:
    """:func:`set_op_determinism` for the block, then the previous state again."""
    before = op_determinism_enabled()
    set_op_determinism(on)
    try:
        yield
    finally:
        set_op_determinism(before)


def silence_tensorflow_logger() -> None:
    """Set TensorFlow's Python logger to ERROR for the rest of the process (a notebook traces
    one training step per run on purpose: no retracing notices)."""
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


@contextmanager
def quiet_tensorflow_logger() -> Iterator[None]:
    """TensorFlow's Python logger at ERROR for the block, then its previous level."""
    tf_log = logging.getLogger("tensorflow")
    before = tf_log.level
    tf_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        tf_log.setLevel(before)


class KernelRun:
    """A fresh Python process started by :func:`start_with_kernels` or
    :func:`start_with_keras_backend`; :meth:`result` waits for it.

    Its stdout and stderr go to temporary files, not pipes, so a process that writes much while
    nobody reads never stalls."""

    def __init__(self, code: str, *, timeout: float, **variables: str) -> None:
        env = {**os.environ, **tensorflow_environment(), **variables}
        self._out, self._err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
        self._timeout = timeout
        self._process = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=self._out,
                                         stderr=self._err, text=True)

    def result(self) -> Any:
        """The JSON value the process printed last (to be asked once). Raises ``RuntimeError``
        with its stderr if it failed, ``subprocess.TimeoutExpired`` (after killing it) when it runs
        longer than its ``timeout`` seconds from :meth:`result`'s call."""
        try:
            code = self._process.wait(timeout=self._timeout)
            self._out.seek(0)
            self._err.seek(0)
            lines = self._out.read().strip().splitlines()
            if code != 0 or not lines:
                raise RuntimeError(f"the subprocess failed (exit {code}):\n{self._err.read()[-2000:]}")
            return json.loads(lines[-1])
        finally:
            self.stop()

    def stop(self) -> None:
        """Kill the process if it still runs, and close its output files."""
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._out.close()
        self._err.close()


def json_call(module: str, function: str, **kwargs: Any) -> str:
    """Python code for a fresh process (:class:`KernelRun`) that calls ``module.function(**kwargs)``
    with JSON-ready arguments and prints its JSON-ready result, which :meth:`KernelRun.result`
    reads back."""
    args = json.dumps(kwargs)
    return (f"import importlib, json; function = getattr(importlib.import_module({module!r}), {function!r}); "
            f"print(json.dumps(function(**json.loads({args!r}))))")


def start_with_kernels(code: str, *, onednn: bool, timeout: float = 300) -> KernelRun:
    """Start ``code`` in a fresh Python process with TensorFlow's oneDNN CPU kernels on
    (``TF_ENABLE_ONEDNN_OPTS=1``, the project's setting) or off (Eigen's kernels) and return at
    once; :meth:`KernelRun.result` waits for the JSON value it prints last. TensorFlow reads the
    variable once, when it loads, so a process compares kernel sets only this way; starting the
    other kernel set's run first lets it use the CPU while this process works."""
    return KernelRun(code, timeout=timeout, TF_ENABLE_ONEDNN_OPTS="1" if onednn else "0")


def run_with_kernels(code: str, *, onednn: bool, timeout: float = 300) -> Any:
    """:func:`start_with_kernels` and wait: the JSON value ``code`` prints last."""
    return start_with_kernels(code, onednn=onednn, timeout=timeout).result()


def run_with_each_kernel_set(code: str, *, timeout: float = 300) -> dict[str, Any]:
    """``{"oneDNN": value, "Eigen": value}``: ``code`` in two fresh processes started together
    (:func:`start_with_kernels`), one per CPU kernel set, each giving the JSON value it prints last.
    Started together, their TensorFlow imports and their work overlap. Each process gets
    ``timeout`` seconds from the moment it is waited for; when one fails, the other is stopped."""
    runs = {name: start_with_kernels(code, onednn=on, timeout=timeout) for name, on in (("oneDNN", True), ("Eigen", False))}
    try:
        return {name: run.result() for name, run in runs.items()}
    finally:
        for run in runs.values():
            run.stop()


#: Keras' backends and the module each needs: ``{backend: (module, what to install)}``.
KERAS_BACKENDS: dict[str, tuple[str, str]] = {
    "tensorflow": ("tensorflow", "tensorflow-cpu==2.21.0"),
    "jax": ("jax", "jax==0.10.2 and jaxlib==0.10.2"),
    "torch": ("torch", "torch (not in xentlab's lock: PyPI's Linux wheel pulls the CUDA libraries)"),
}


class BackendError(RuntimeError):
    """A Keras backend that is unknown, or whose package is not installed."""


def check_keras_backend(backend: str) -> None:
    """Raise :class:`BackendError` naming what to install unless Keras can run on ``backend``
    here (one of :data:`KERAS_BACKENDS`, its package importable)."""
    import importlib.util

    if backend not in KERAS_BACKENDS:
        raise BackendError(f"unknown Keras backend {backend!r}: choose one of {sorted(KERAS_BACKENDS)}")
    module, package = KERAS_BACKENDS[backend]
    if importlib.util.find_spec(module) is None:
        raise BackendError(f"Keras' {backend} backend needs {package}, which is not installed: "
                           "`make setup` installs xentlab's lock (jax included)")


def start_with_keras_backend(code: str, backend: str, *, timeout: float = 600) -> KernelRun:
    """Start ``code`` in a fresh Python process whose Keras runs on ``backend``
    (``KERAS_BACKEND``, read once when Keras is imported: ``keras/src/backend/config.py``) and
    return at once; :meth:`KernelRun.result` waits for the JSON value it prints last. TensorFlow's
    environment is the project's (:func:`tensorflow_environment`). Raises :class:`BackendError`
    first if the backend cannot run here (:func:`check_keras_backend`)."""
    check_keras_backend(backend)
    return KernelRun(code, timeout=timeout, KERAS_BACKEND=backend)
