"""Public training API (re-exported by ``advpath_jax.training``).

All functions take the run directory ``workdir``; model NAME lives in ``WORKDIR/NAME``.

* ``train_classifier(config, workdir) -> dict`` (test AUC of the best checkpoint)
* ``train_generators(config, workdir, kind) -> dict`` (kind: cyce | syce | sagen; test quality)
* ``load_classifier(workdir, config) -> ResNet`` (eval mode)
* ``load_generator(workdir, config, kind) -> {"G0","G1"} | {"G"}`` (eval mode)
* ``cyce_pair / syce_pair / sagen_pair(generators, classifier, x) -> (x_start, x_adv)``
* ``evaluate_generators(config, workdir, kind, split="test") -> dict`` (also JSON in WORKDIR/kind)
"""

from advpath_jax.training.checkpoint import CheckpointStore, load_models, model_dir
from advpath_jax.training.classifier import classifier_scores, load_classifier, roc_auc, train_classifier
from advpath_jax.training.generators import (cyce_pair, evaluate_generators, generator_pair, load_generator,
                                             sagen_pair, syce_pair, train_generators)
from advpath_jax.training.trainer import FitOptions, NonFiniteLossError, Task, fit

__all__ = [
    "CheckpointStore", "FitOptions", "NonFiniteLossError", "Task", "classifier_scores", "cyce_pair",
    "evaluate_generators", "fit", "generator_pair", "load_classifier", "load_generator", "load_models",
    "model_dir", "roc_auc", "sagen_pair", "syce_pair", "train_classifier", "train_generators",
]
