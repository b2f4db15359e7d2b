"""Every path of the project, derived from the project root (never from the working directory)."""

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

#: Environment variable through which the report runner tells a notebook where to write.
RUN_DIR_ENV = "XENTLAB_RUN_DIR"

#: The environment every TensorFlow process of the project starts with (a user's own setting
#: wins): C++ logs silenced, and TensorFlow's oneDNN CPU kernels on every x86 CPU. TensorFlow
#: enables oneDNN by default only on CPUs with AVX-512 and uses Eigen's kernels elsewhere, which
#: print different digits (a saturated softmax row tops out at 0.99999994, not 1.0) and keep no
#: allocator statistics; see the README's Guarantees. Notebooks set the same two variables in
#: their Setup cell, before importing TensorFlow.
TF_ENVIRONMENT: dict[str, str] = {"TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "1"}


def set_tensorflow_environment() -> None:
    """Apply :data:`TF_ENVIRONMENT` (``setdefault``); call before TensorFlow is loaded."""
    for name, value in TF_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


#: CPU flags (``/proc/cpuinfo``) that decide which kernels TensorFlow runs and whether 16-bit
#: arithmetic has hardware support; reports record them per notebook.
CPU_FEATURES = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "avx512_fp16", "amx_fp16")


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
