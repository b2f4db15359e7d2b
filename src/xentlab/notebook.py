"""What every notebook does first: :func:`setup`, then :func:`check_params` on its parameters.

``setup`` must run before TensorFlow is imported (it sets TensorFlow's environment,
:data:`xentlab.config.TF_ENVIRONMENT`), so a notebook's Setup cell starts with it::

    from xentlab import notebook
    notebook.setup("03_log_zero_collapse")

and its validation cell declares each parameter's rule::

    notebook.check_params(globals(), dataset=notebook.choice(*data.DATASETS),
                          steps=notebook.integer(1), progress=notebook.BOOLEAN)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from typing import Any

from xentlab import config

__all__ = ["BOOLEAN", "Rule", "check_params", "choice", "error_line", "integer", "integers", "number",
           "run_with_kernels", "setup"]

#: A parameter rule: returns what the value must be when it is wrong, None when it is right.
Rule = Callable[[Any], str | None]


def setup(name: str) -> None:
    """Set TensorFlow's environment, import it quietly, start the notebook's record
    (:func:`xentlab.record.start`) with the kernel set that runs (:func:`xentlab.config.kernel_set`)
    and print the versions line."""
    config.set_tensorflow_environment()
    import keras
    import numpy as np
    import tensorflow as tf

    from xentlab import record

    tf.get_logger().setLevel("ERROR")  # every training run traces its own step: no notices
    record.start(name)
    record.metric("kernels", config.kernel_set())  # oneDNN or Eigen, for the report's provenance
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, NumPy {np.__version__}")


def _is_int(v: Any) -> bool:
    import numpy as np

    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def integer(low: int | None = None, high: int | None = None) -> Rule:
    """An integer (not a bool) in ``[low, high]`` (either bound optional)."""
    if low is not None and high is not None:
        what = f"an integer in [{low}, {high}]"
    else:
        what = "an integer" + (f" >= {low}" if low is not None else "") + (
            f" <= {high}" if high is not None else "")
    return lambda v: None if _is_int(v) and (low is None or v >= low) and (
        high is None or v <= high) else what


def number(low: float, high: float) -> Rule:
    """A real number (int or float, not a bool) in ``(low, high]``."""
    def rule(v: Any) -> str | None:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and low < v <= high
        return None if ok else f"a number in ({low:g}, {high:g}]"
    return rule


def integers(low: int) -> Rule:
    """A non-empty list of integers, each >= ``low``."""
    return lambda v: None if isinstance(v, list) and v and all(
        _is_int(x) and x >= low for x in v) else f"a non-empty list of integers >= {low}"


def choice(*options: Any) -> Rule:
    """One of ``options``."""
    return lambda v: None if v in options else f"one of {options}"


#: ``True`` or ``False``.
BOOLEAN: Rule = lambda v: None if isinstance(v, bool) else "True or False"  # noqa: E731


def check_params(params: Mapping[str, Any], **rules: Rule) -> None:
    """Check each named parameter in ``params`` (a notebook passes ``globals()``) against its
    rule; raise one ``ValueError`` listing every wrong or missing parameter."""
    problems = []
    for name, rule in rules.items():
        if name not in params:
            problems.append(f"parameter {name} is missing")
        elif (what := rule(params[name])) is not None:
            problems.append(f"parameter {name} must be {what}, got {params[name]!r}")
    if problems:
        raise ValueError("; ".join(problems))


def error_line(fn: Callable[[], Any]) -> str | None:
    """Call ``fn()``; return None if it succeeds, else ``"ErrorClass: first line of the message"``
    with TensorFlow's ``{{function_node …}}`` device prefix removed (what a notebook prints to
    show which error an op raises)."""
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - the point is to show whichever error TF raises
        first = (str(e).splitlines() or [""])[0]
        if first.startswith("{{"):
            first = first.split("}}", 1)[1].strip()
        return f"{type(e).__name__}: {first}"
    return None


def run_with_kernels(code: str, *, onednn: bool, timeout: float = 300) -> Any:
    """Run ``code`` in a fresh Python process with TensorFlow's oneDNN CPU kernels on
    (``TF_ENABLE_ONEDNN_OPTS=1``, the project's setting) or off (Eigen's kernels), and return
    the JSON value it prints last. The variable is read once, when TensorFlow loads, so a
    notebook compares kernel sets only this way. Raises ``RuntimeError`` with the process'
    stderr if it fails."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "1" if onednn else "0"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"the subprocess failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads(lines[-1])
