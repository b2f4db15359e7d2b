"""What every notebook does first: :func:`setup`, with its parameters' rules.

A notebook's parameters cell comes first (papermill injects its overrides after it); the Setup
cell then checks every parameter, sets TensorFlow's environment and starts the record, in that
order, so a bad parameter fails at once, before TensorFlow loads and before anything is
written::

    from xentlab import data, notebook
    notebook.setup("03_log_zero_collapse", globals(), dataset=notebook.choice(*data.DATASETS),
                   steps=notebook.integer(1), progress=notebook.BOOLEAN)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from xentlab import config, runtime

__all__ = ["BOOLEAN", "ParameterError", "Rule", "check_params", "choice", "error_line", "integer", "integers", "number",
           "setup"]

class ParameterError(ValueError):
    """Wrong or missing notebook parameters. IPython (and so a notebook run by papermill) shows
    it as its one line instead of a traceback: IPython renders an exception with a
    ``_render_traceback_`` method by that method's lines."""

    def _render_traceback_(self) -> list[str]:
        return [f"ParameterError: {self}"]


#: A parameter rule: returns what the value must be when it is wrong, None when it is right.
Rule = Callable[[Any], str | None]


def setup(name: str, params: Mapping[str, Any] | None = None, **rules: Rule) -> None:
    """Check ``params`` (a notebook passes ``globals()``) against ``rules``
    (:func:`check_params`), then set TensorFlow's environment
    (:func:`xentlab.runtime.set_tensorflow_environment`), import it, set its Python logger to
    ERROR for the notebook's process (every training run traces its own step), start the
    notebook's record (:func:`xentlab.record.start`: its previous records are replaced) with the
    kernel set that runs (:func:`xentlab.config.kernel_set`) and print the versions line."""
    if rules:
        if params is None:
            raise ValueError("setup got parameter rules but no parameters (pass globals())")
        check_params(params, **rules)
    runtime.set_tensorflow_environment()
    import keras
    import numpy as np
    import tensorflow as tf

    from xentlab import record

    runtime.silence_tensorflow_logger()
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
    rule; raise one :class:`ParameterError` (a ``ValueError``) listing every wrong or missing
    parameter."""
    problems = []
    for name, rule in rules.items():
        if name not in params:
            problems.append(f"parameter {name} is missing")
        elif (what := rule(params[name])) is not None:
            problems.append(f"parameter {name} must be {what}, got {params[name]!r}")
    if problems:
        raise ParameterError("; ".join(problems))


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
