"""Report profiles as data: papermill parameters per notebook.

Every notebook defaults to the full ``mnist`` set (the documents' data); ``smoke`` uses the
small ``mnist10k``. ``ci`` is the notebooks' own defaults (what the committed outputs were
produced with), so it overrides nothing. ``smoke`` shrinks every experiment to seconds for the pipeline test;
``paper`` uses the documents' own sizes (e.g. 20,000 steps of batch 128 for notebook 03).
A notebook absent from a profile runs with its defaults. ``--dataset`` overrides ``dataset``.
``TIMED`` names the notebooks whose results are wall-clock times or memory peaks: a report run with
``--jobs`` above 1 runs the others that many at a time, then each of these with the machine to itself.
"""

from __future__ import annotations

from typing import Any

Params = dict[str, Any]

TIMED: frozenset[str] = frozenset({"04_sigmoid_softmax_sparse", "06_cost_of_cross_entropy", "09_mixed_precision",
                                   "10_vocabulary_scale"})

PROFILES: dict[str, dict[str, Params]] = {
    "smoke": {
        "01_batch_mean": {"dataset": "mnist10k", "examples_per_run": 512},
        "03_log_zero_collapse": {"dataset": "mnist10k", "steps": 12, "eval_every": 4,
                                 "eval_size": 200, "sweep_steps": 8},
        "02_manual_vs_fused": {"sweep_points": 41},
        "04_sigmoid_softmax_sparse": {"sweep_points": 41},
        "05_keras_categorical_crossentropy": {"dataset": "mnist10k", "steps": 3, "batch_size": 32,
                                              "backend_steps": 3, "default_init_steps": 3, "jax": False},
        "06_cost_of_cross_entropy": {"dataset": "mnist10k", "training_steps": 4, "ce_repeats": 5,
                                     "training_repeats": 5, "classes": [10, 1000]},
        "07_multilabel_sigmoid_vs_softmax": {"dataset": "mnist10k", "train_pairs": 500, "val_pairs": 200,
                                             "test_pairs": 200, "steps": 20, "seeds": 1},
        "08_which_cross_entropy": {"classes": 3},
        "09_mixed_precision": {"dataset": "mnist10k", "steps": 5, "hidden": 8, "time_hidden": 64,
                               "time_batch": 32, "time_repeats": 3, "time_steps": 2},
        "10_vocabulary_scale": {"tokens": 64, "hidden": 16, "classes": [256, 512], "block_sizes": [128]},
    },
    "ci": {},
    "paper": {
        "01_batch_mean": {"examples_per_run": 61440},
        "03_log_zero_collapse": {"steps": 20000, "eval_every": 100, "sweep_steps": 500},
        "02_manual_vs_fused": {"sweep_points": 2001},
        "04_sigmoid_softmax_sparse": {"sweep_points": 4001},
        "05_keras_categorical_crossentropy": {"steps": 2000, "backend_steps": 20000, "default_init_steps": 2000},
        "06_cost_of_cross_entropy": {"training_steps": 60, "training_repeats": 5, "ce_repeats": 10},
        "07_multilabel_sigmoid_vs_softmax": {"train_pairs": 100000, "steps": 10000, "seeds": 5},
        "08_which_cross_entropy": {"batch": 32, "classes": 10},
        "09_mixed_precision": {"steps": 2000, "hidden": 256, "time_repeats": 10, "seeds": 3},
        "10_vocabulary_scale": {"tokens": 8192, "hidden": 1024, "classes": [32768, 131072, 262144],
                                "block_sizes": [1024, 4096], "progress": True},
    },
}

