"""Public training API (re-exported by ``advpath_jax.training``).

All functions take the run directory ``workdir``; model NAME lives in ``WORKDIR/NAME``.

* ``train_classifier(config, workdir) -> dict`` (test AUC of the best checkpoint)
* ``train_generators(config, workdir, kind) -> dict`` (kind: cyce | syce | sagen; test quality)
* ``evaluate_generators(config, workdir, kind, split="test") -> dict`` (also JSON in WORKDIR/kind)

Re-exported from the layers below, for convenience: loading trained models
(``load_classifier``, ``load_generators``, ``classifier_scores``, ``CheckpointStore``,
``load_models``, ``model_dir``: :mod:`advpath_jax.store`) and generator inference
(``generator_pair``, ``cyce_pair / syce_pair / sagen_pair(generators, classifier, x) ->
(x_start, x_adv)``: :mod:`advpath_jax.generators.inference`).
"""

from advpath_jax.generators.inference import cyce_pair, generator_pair, sagen_pair, syce_pair
from advpath_jax.store.checkpoint import CheckpointStore, load_models, model_dir
from advpath_jax.store.models import load_classifier, load_generators
from advpath_jax.store.predictions import classifier_scores
from advpath_jax.training.classifier import roc_auc, train_classifier
from advpath_jax.training.generators import evaluate_generators, train_generators
from advpath_jax.training.trainer import FitOptions, NonFiniteLossError, Task, fit

__all__ = [
    "CheckpointStore", "FitOptions", "NonFiniteLossError", "Task", "classifier_scores", "cyce_pair",
    "evaluate_generators", "fit", "generator_pair", "load_classifier", "load_generators", "load_models",
    "model_dir", "roc_auc", "sagen_pair", "syce_pair", "train_classifier", "train_generators",
]
