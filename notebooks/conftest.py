"""nbval settings for the committed notebooks (``pytest --nbval --nbval-current-env notebooks``).

TensorFlow's environment (C++ logs silenced, oneDNN kernels on: ``runtime.TF_ENVIRONMENT``) is
set before any kernel starts (kernels inherit it), records go to the gitignored scratch folder,
and stderr (TF/absl logs, tqdm progress bars, warnings) is excluded from the comparison: only
what a notebook prints to stdout and its displayed results are compared against the committed
outputs. Every notebook cell is marked ``nbval`` (registered in pyproject.toml).
"""

import os

import pytest

from xentlab import runtime
from xentlab.config import RUN_DIR_ENV, SCRATCH_DIR

runtime.set_tensorflow_environment()
os.environ[RUN_DIR_ENV] = str(SCRATCH_DIR)  # this pytest process and its kernels (the default run folder)


def pytest_collectstart(collector):
    if getattr(collector, "skip_compare", None) is not None:
        collector.skip_compare = (*collector.skip_compare, "stderr")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:  # a global hook: `make test` collects tests/ in the same session
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.nbval)
