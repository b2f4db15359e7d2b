"""nbval settings for the committed notebooks (``pytest --nbval --nbval-current-env notebooks``).

TensorFlow's C++ logs are silenced and its oneDNN kernels switched on before any kernel starts
(kernels inherit this environment),
records go to the gitignored scratch folder, and stderr (TF/absl logs, tqdm progress bars,
warnings) is excluded from the comparison: only what a notebook prints to stdout and its
displayed results are compared against the committed outputs.
"""

import os

from xentlab.config import RUN_DIR_ENV, SCRATCH_DIR

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ[RUN_DIR_ENV] = str(SCRATCH_DIR)


def pytest_collectstart(collector):
    if getattr(collector, "skip_compare", None) is not None:
        collector.skip_compare = (*collector.skip_compare, "stderr")
