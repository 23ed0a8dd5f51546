"""The model store: checkpoints of every trained model and loading them for inference.

* :mod:`~advpath_jax.store.checkpoint`: the Orbax checkpoint store (latest + best,
  fingerprint-guarded) and :func:`load_models`;
* :mod:`~advpath_jax.store.models`: ``load_classifier``, ``load_generators``, ``load_mgen``,
  ``load_translator`` and the classifier's, MGen's and translator's specs and fingerprints;
* :mod:`~advpath_jax.store.predictions`: the classifier's scores in batches and the
  predicted-class cache.

Training (:mod:`advpath_jax.training`) writes through this package; the explainers,
pipeline and explorer read through it and never import training.
"""

from advpath_jax.store.checkpoint import CheckpointStore, load_models, model_dir
from advpath_jax.store.models import load_classifier, load_generators, load_mgen, load_translator
from advpath_jax.store.predictions import classifier_scores, predict_in_batches, predicted_classes

__all__ = ["CheckpointStore", "classifier_scores", "load_classifier", "load_generators", "load_mgen",
           "load_models", "load_translator", "model_dir", "predict_in_batches", "predicted_classes"]
