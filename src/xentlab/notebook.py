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

from collections.abc import Callable, Mapping
from typing import Any

from xentlab import config

__all__ = ["BOOLEAN", "Rule", "check_params", "choice", "integer", "integers", "number", "setup"]

#: A parameter rule: returns what the value must be when it is wrong, None when it is right.
Rule = Callable[[Any], str | None]


def setup(name: str) -> None:
    """Set TensorFlow's environment, import it quietly, start the notebook's record
    (:func:`xentlab.record.start`) and print the versions line."""
    config.set_tensorflow_environment()
    import keras
    import numpy as np
    import tensorflow as tf

    from xentlab import record

    tf.get_logger().setLevel("ERROR")  # every training run traces its own step: no notices
    record.start(name)
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
