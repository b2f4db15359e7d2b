"""Every path of the project, derived from the project root (never from the working directory),
and the CPU facts that decide which kernels TensorFlow runs. Nothing here changes the process:
TensorFlow's environment is :mod:`xentlab.runtime`'s."""

from __future__ import annotations

import os
from pathlib import Path

#: The repository root: the folder holding ``pyproject.toml`` (src layout: two levels up).
PROJECT_ROOT: Path = Path(
    os.environ.get("XENTLAB_ROOT", Path(__file__).resolve().parents[2])
).resolve()
DATA_DIR: Path = PROJECT_ROOT / "data"
RAW_DIR: Path = DATA_DIR / "raw"
PROCESSED_DIR: Path = DATA_DIR / "processed"
NOTEBOOKS_DIR: Path = PROJECT_ROOT / "notebooks"
REPORTS_DIR: Path = PROJECT_ROOT / "reports"
#: Where interactive and nbval runs write their records (gitignored), never into ``reports/``.
SCRATCH_DIR: Path = PROJECT_ROOT / ".scratch"

#: The least number of timed calls per timing measurement (:mod:`xentlab.bench`; notebook 06
#: checks its parameters against it before TensorFlow loads, hence here).
MIN_REPEATS = 5

#: Environment variable through which the report runner tells a notebook where to write.
RUN_DIR_ENV = "XENTLAB_RUN_DIR"

#: The CPU flags (``/proc/cpuinfo`` names) for which TensorFlow turns oneDNN on by default on
#: Linux x86: ``DefaultOneDnnPolicy`` in ``tensorflow/core/util/port.cc`` tests AVX512_VNNI,
#: AVX512_BF16, AVX_VNNI, AMX_TILE, AMX_INT8 and AMX_BF16.
ONEDNN_DEFAULT_FLAGS = ("avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")

#: CPU flags that decide which kernels TensorFlow runs (:data:`ONEDNN_DEFAULT_FLAGS`) and whether
#: 16-bit arithmetic has hardware support; reports record them per notebook.
CPU_FEATURES = ("avx2", "avx512f", *ONEDNN_DEFAULT_FLAGS, "avx512_fp16", "amx_fp16")


def cpu_features(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, bool]:
    """Which of :data:`CPU_FEATURES` the first CPU in ``cpuinfo`` lists among its flags (all
    False where the file does not exist, e.g. off Linux)."""
    flags: set[str] = set()
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    return {f: f in flags for f in CPU_FEATURES}


def onednn_default(features: dict[str, bool]) -> bool:
    """Whether TensorFlow turns oneDNN on by default (``TF_ENABLE_ONEDNN_OPTS`` unset) on Linux
    x86 with these CPU flags (:func:`cpu_features`): any of :data:`ONEDNN_DEFAULT_FLAGS`."""
    return any(features.get(f, False) for f in ONEDNN_DEFAULT_FLAGS)


def kernel_set() -> dict[str, object]:
    """Which CPU kernels this process' TensorFlow runs, for a report's provenance: ``onednn``
    (whether oneDNN is on, asked of TensorFlow itself: ``IsMklEnabled``, exported by
    ``tensorflow/python/util/port_wrapper.cc``), the ``TF_ENABLE_ONEDNN_OPTS`` it saw (None:
    unset), the CPU flags that decide the default and the default they give (Linux x86).
    Imports TensorFlow."""
    from tensorflow.python.util import _pywrap_util_port  # private: no public API tells

    features = cpu_features()
    return {"onednn": bool(_pywrap_util_port.IsMklEnabled()),
            "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
            "deciding_flags": [f for f in ONEDNN_DEFAULT_FLAGS if features[f]],
            "onednn_default": onednn_default(features)}
