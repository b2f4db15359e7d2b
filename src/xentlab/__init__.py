"""xentlab: reproducible experiments on TensorFlow's cross-entropy losses.

Modules: ``config`` (paths), ``losses`` (the formulations the documents compare),
``data`` (MNIST sources), ``models`` and ``train`` (the documents' networks and one loop),
``record`` (claims, metrics, figures for the reports), ``reports`` (the papermill runner).
"""

__version__ = "0.1.0"
