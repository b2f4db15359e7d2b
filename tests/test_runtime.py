"""xentlab.runtime: every change of process state, and that each can be undone."""

import logging
import os
import subprocess
import textwrap
import time

import numpy as np
import pytest
import tensorflow as tf

from xentlab import runtime


def test_tensorflow_environment_pins_onednn_and_respects_the_user(monkeypatch):
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")  # the user's own choice wins
    assert runtime.tensorflow_environment() == {"TF_CPP_MIN_LOG_LEVEL": "0", "TF_ENABLE_ONEDNN_OPTS": "1"}
    runtime.set_tensorflow_environment()
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "1"
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"


def test_environment_sets_then_restores_or_removes(monkeypatch):
    monkeypatch.setenv("XENTLAB_TEST_A", "before")
    monkeypatch.delenv("XENTLAB_TEST_B", raising=False)
    with runtime.environment(XENTLAB_TEST_A="in", XENTLAB_TEST_B="in"):
        assert (os.environ["XENTLAB_TEST_A"], os.environ["XENTLAB_TEST_B"]) == ("in", "in")
    assert os.environ["XENTLAB_TEST_A"] == "before" and "XENTLAB_TEST_B" not in os.environ
    with pytest.raises(KeyError), runtime.environment(XENTLAB_TEST_A="in"):
        raise KeyError  # restored on errors too
    assert os.environ["XENTLAB_TEST_A"] == "before"


def test_seed_seeds_and_leaves_op_determinism_alone():
    for state in (False, True):
        with runtime.op_determinism(state):
            runtime.seed(3)
            a = tf.random.uniform([2]).numpy(), np.random.random()
            runtime.seed(3)
            assert np.array_equal(a[0], tf.random.uniform([2]).numpy()) and a[1] == np.random.random()
            assert runtime.op_determinism_enabled() is state


def test_op_determinism_switches_tf_nn_off_its_kernel_and_restores():
    """Pins what the private ``disable_op_determinism`` must undo: under op determinism
    ``tf.nn.softmax_cross_entropy_with_logits`` composes log_softmax instead of the fused kernel."""
    spec = (tf.TensorSpec([2, 3]), tf.TensorSpec([2, 3]))

    def op_types() -> set[str]:
        fn = tf.function(lambda y, z: tf.nn.softmax_cross_entropy_with_logits(labels=y, logits=z))
        return {op.type for op in fn.get_concrete_function(*spec).graph.get_operations()}

    before = runtime.op_determinism_enabled()
    for state in (True, False):
        with runtime.op_determinism(state):
            assert runtime.op_determinism_enabled() is state
            assert ("SoftmaxCrossEntropyWithLogits" in op_types()) is not state
    assert runtime.op_determinism_enabled() is before


def test_tensorflow_seed_sets_the_previous_global_seed_again():
    from tensorflow.python.eager import context

    tf.random.set_seed(11)
    with runtime.tensorflow_seed(5):
        assert context.global_seed() == 5
        a = tf.random.uniform([3]).numpy()
    assert context.global_seed() == 11
    with runtime.tensorflow_seed(5):
        assert np.array_equal(a, tf.random.uniform([3]).numpy())


def test_quiet_tensorflow_logger_restores_the_level():
    log = logging.getLogger("tensorflow")
    log.setLevel(logging.INFO)
    with runtime.quiet_tensorflow_logger():
        assert log.level == logging.ERROR
    assert log.level == logging.INFO


@pytest.mark.slow
def test_run_with_kernels_sets_the_onednn_switch_and_reports_failures():
    code = "import json, os; print('noise'); print(json.dumps(os.environ['TF_ENABLE_ONEDNN_OPTS']))"
    assert runtime.run_with_kernels(code, onednn=True) == "1"
    assert runtime.run_with_kernels(code, onednn=False) == "0"
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        runtime.run_with_kernels("1 / 0", onednn=True)


@pytest.mark.slow
def test_run_with_each_kernel_set_runs_both_processes_together(tmp_path):
    # each process marks itself, then waits for the other's mark: run one after the other, the
    # first would wait in vain and fail
    code = textwrap.dedent(f"""
        import json, os, pathlib, sys, time
        me = os.environ["TF_ENABLE_ONEDNN_OPTS"]
        (pathlib.Path({str(tmp_path)!r}) / me).touch()
        other, deadline = pathlib.Path({str(tmp_path)!r}) / {{"1": "0", "0": "1"}}[me], time.time() + 20
        while not other.exists():
            time.sleep(0.05)
            if time.time() > deadline:
                sys.exit(3)
        print(json.dumps(me))""")
    assert runtime.run_with_each_kernel_set(code) == {"oneDNN": "1", "Eigen": "0"}
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        runtime.run_with_each_kernel_set("1 / 0")
    # when the oneDNN process fails, the Eigen one is stopped before it can mark its file
    late = tmp_path / "eigen-finished"
    code = textwrap.dedent(f"""
        import os, pathlib, time
        if os.environ["TF_ENABLE_ONEDNN_OPTS"] == "1":
            raise SystemExit("oneDNN fails")
        time.sleep(2)
        pathlib.Path({str(late)!r}).touch()""")
    with pytest.raises(RuntimeError, match="oneDNN fails"):
        runtime.run_with_each_kernel_set(code)
    time.sleep(3)
    assert not late.exists()


@pytest.mark.slow
def test_start_with_kernels_returns_at_once_and_result_waits():

    tic = time.perf_counter()
    run = runtime.start_with_kernels("import time, json; time.sleep(2); print(json.dumps([1, 2]))", onednn=False)
    started = time.perf_counter() - tic
    assert started < 1.5 and run.result() == [1, 2]
    slow = runtime.start_with_kernels("import time; time.sleep(30)", onednn=True, timeout=0.5)
    with pytest.raises(subprocess.TimeoutExpired):
        slow.result()


@pytest.mark.slow
def test_json_call_calls_the_function_with_its_arguments_and_prints_its_json():
    code = runtime.json_call("textwrap", "indent", text="a\nb", prefix="> ")
    assert runtime.KernelRun(code, timeout=60).result() == "> a\n> b"
    failing = runtime.json_call("textwrap", "indent", text="a", no_such_argument=1)
    with pytest.raises(RuntimeError, match="no_such_argument"):
        runtime.KernelRun(failing, timeout=60).result()
