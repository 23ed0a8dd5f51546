"""advpath_jax.training: the shared trainer and the training of every model (classifier, generators, MGen, translator).

Checkpoints and loading trained models are :mod:`advpath_jax.store`; generator inference is
:mod:`advpath_jax.generators`.

The public functions live in :mod:`advpath_jax.training.api` and are importable from
here lazily (importing this package does not import JAX models).
"""

from __future__ import annotations

import importlib

_API = ("CheckpointStore", "FitOptions", "NonFiniteLossError", "Task", "classifier_scores", "cyce_pair",
        "evaluate_generators", "fit", "generator_pair", "load_classifier", "load_generators", "load_models",
        "model_dir", "roc_auc", "sagen_pair", "syce_pair", "train_classifier", "train_generators")

__all__ = list(_API)


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module("advpath_jax.training.api"), name)
    raise AttributeError(f"module 'advpath_jax.training' has no attribute {name!r}")
