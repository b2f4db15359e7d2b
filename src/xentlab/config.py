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
