"""Report profiles as data: papermill parameters per notebook.

``ci`` is the notebooks' own defaults (what the committed outputs were produced with), so it
overrides nothing. ``smoke`` shrinks every experiment to seconds for the pipeline test;
``paper`` uses the documents' own sizes (e.g. 20,000 steps of batch 128 for notebook 03).
A notebook absent from a profile runs with its defaults. ``--dataset`` overrides ``dataset``.
"""

from __future__ import annotations

from typing import Any

Params = dict[str, Any]

PROFILES: dict[str, dict[str, Params]] = {
    "smoke": {
        "03_log_zero_collapse": {"steps": 12, "eval_every": 4, "eval_size": 200, "sweep_steps": 8},
        "02_manual_vs_fused": {"sweep_points": 41},
        "05_keras_categorical_crossentropy": {"steps": 3, "batch_size": 32},
    },
    "ci": {},
    "paper": {
        "03_log_zero_collapse": {"dataset": "mnist", "steps": 20000, "eval_every": 100,
                                 "sweep_steps": 1000},
        "02_manual_vs_fused": {"sweep_points": 2001},
        "05_keras_categorical_crossentropy": {"steps": 2000},
    },
}


def parameters(profile: str, notebook: str) -> Params:
    """The papermill parameters of ``notebook`` under ``profile`` (a copy)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    return dict(PROFILES[profile].get(notebook, {}))
