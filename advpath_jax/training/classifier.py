"""Classifier training (the paper; docs/training.md#classifier): ResNet + weighted BCE + Adam, validation ROC AUC.

``train_classifier(config, workdir)`` trains (in ``WORKDIR/classifier``) the ResNet of ``config.classifier`` on
``config.data``'s train split with the shared trainer (checkpoints, resume, JSON-lines
metrics, learning-rate schedule, early stopping), keeps the best checkpoint by the
validation metric ``classifier.monitor`` (AUC) and writes the test-split AUC and the
validation threshold report to ``WORKDIR/classifier/test_metrics.json``.

Config fields (``config.classifier``): ``depth``, ``width``, ``dropout``, ``head_units``
(architecture, part of the checkpoint fingerprint with ``data.image_size``), ``init``
(``"random"`` or ``"torchvision:PATH"``: start from a torchvision ResNet state_dict, e.g. ImageNet
weights; see ``docs/pretrained.md``), ``epochs``,
``batch_size``, ``lr`` (Adam), ``augment`` (bool), ``eval_batch_size``, ``monitor`` (``"auc"``),
``early_stop_patience`` (epochs without a better ``monitor`` before stopping; 0: off, ``epochs``
is then the count, else the maximum), the learning-rate fields of
:class:`advpath_jax.training.schedules.LearningRate` and the optional loop fields of
:class:`advpath_jax.training.trainer.FitOptions`.

The classifier's spec, fingerprint and loading for inference (``load_classifier``,
``classifier_scores``) live in :mod:`advpath_jax.store`; this module trains it.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh

from advpath_jax.data.sampler import epoch_steps, shuffled_batches
from advpath_jax.errors import AdvpathError
from advpath_jax.io_utils import write_json_atomic
from advpath_jax.metrics.classification import accuracy, balanced_accuracy, best_balanced_threshold, roc_auc
from advpath_jax.models.resnet import ResNet
from advpath_jax.models.torchvision_import import resnet_from_torchvision
from advpath_jax.parallel import data_mesh
from advpath_jax.store.checkpoint import model_dir
from advpath_jax.store.models import CLASSIFIER as MODEL
from advpath_jax.store.models import build_classifier, classifier_fingerprint, load_classifier
from advpath_jax.store.predictions import classifier_scores, make_score_fn, predict_in_batches
from advpath_jax.training import losses
from advpath_jax.training.inputs import augment_fn, load_split_data
from advpath_jax.training.schedules import LearningRate, make_optimizer
from advpath_jax.training.trainer import (FitOptions, FitResult, Task, apply_gradients, fit, param_state,
                                          replace_params, save_run_config, value_and_grad_models)


# ----------------------------------------------------------------------------- model

INIT_PREFIX = "torchvision:"
IMPORTED_MARKER = "IMPORTED.json"  # WORKDIR/classifier/IMPORTED.json: the classifier was imported, not trained


def init_weights_file(config: Any) -> str | None:
    """The torchvision ``state_dict`` file of ``classifier.init = "torchvision:PATH"``
    (None for ``"random"``, empty or absent)."""
    value = config.classifier.get("init", None)
    if value in (None, "", "random"):
        return None
    if not isinstance(value, str) or not value.startswith(INIT_PREFIX) or len(value) == len(INIT_PREFIX):
        raise ValueError(f"classifier.init must be 'random' or '{INIT_PREFIX}PATH', got {value!r}")
    return value[len(INIT_PREFIX):]


def initial_classifier(config: Any) -> ResNet:
    """The classifier training starts from (train mode): random, or a torchvision backbone
    (``classifier.init``; head fresh, stem filters summed for the 1-channel images)."""
    path = init_weights_file(config)
    if path is None:
        return build_classifier(config)
    c = config.classifier
    model = resnet_from_torchvision(path, depth=int(c.depth), in_channels=1, first_conv="sum",
                                    dropout=float(c.dropout), head_units=int(c.head_units), seed=int(config.seed))
    if model.spec.width != float(c.width):
        raise ValueError(f"{path}: the file's ResNet has width {model.spec.width:g}, the config asks "
                         f"classifier.width={float(c.width):g} (set classifier.width={model.spec.width:g})")
    model.train()
    return model


# ----------------------------------------------------------------------------- task

MONITORS = ("auc", "balanced_accuracy", "accuracy")  # validation metrics the classifier can monitor (larger is better)


def classifier_monitor(section: Any) -> str:
    """``classifier.monitor`` (default ``"auc"``): the validation metric of the best checkpoint and early stopping."""
    monitor = str(section.get("monitor", "auc"))
    if monitor not in MONITORS:
        raise AdvpathError(f"classifier.monitor must be one of {MONITORS}, got {monitor!r}")
    return monitor


def validation_figures(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """The classifier's validation metrics from its probabilities ``[N]``: ``auc``, and at the
    decision threshold 0.5 ``accuracy`` and ``balanced_accuracy``."""
    return {"auc": roc_auc(probs, labels), "accuracy": accuracy(probs, labels),
            "balanced_accuracy": balanced_accuracy(probs, labels)}


def threshold_report(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """What the decision threshold does on the validation split (reported, not applied):
    accuracy and balanced accuracy at 0.5, and the threshold maximising balanced accuracy."""
    threshold, best = best_balanced_threshold(probs, labels)
    return {"val_accuracy": accuracy(probs, labels), "val_balanced_accuracy": balanced_accuracy(probs, labels),
            "val_best_threshold": threshold, "val_best_balanced_accuracy": best}


def classifier_task(config: Any, train: dict[str, np.ndarray], val: dict[str, np.ndarray],
                    mesh: Mesh | None = None) -> Task:
    """The classifier as a :class:`Task` for the shared trainer."""
    c = config.classifier
    model = build_classifier(config)
    model.train()
    graphdef, _ = nnx.split(model)
    model.eval()
    eval_graphdef, _ = nnx.split(model)
    score = make_score_fn(eval_graphdef)
    labels = np.asarray(train["label"])
    n_pos = int((labels == 1).sum())
    if n_pos == 0 or n_pos == len(labels):
        raise ValueError(f"training split of {config.data.name!r} has only one class ({n_pos} of {len(labels)} positive)")
    pos_weight = float(len(labels) - n_pos) / n_pos
    augment = augment_fn(config)
    batch_size = int(c.batch_size)
    images = np.asarray(train["image"], np.float32)
    ys = labels.astype(np.float32)
    steps = epoch_steps(len(images), batch_size)
    seed = int(config.seed)
    learning_rate = LearningRate.from_config(c)
    tx = make_optimizer(learning_rate, int(c.epochs) * steps)
    monitor = classifier_monitor(c)

    def init_state():
        m = initial_classifier(config)
        return {"models": {MODEL: nnx.state(m)}, "opt": {MODEL: tx.init(nnx.state(m, nnx.Param))}}

    def train_step(state, batch, key):
        x = batch["image"]
        if augment is not None:
            x = augment(jax.random.fold_in(key, 1), x)

        def loss_fn(models):
            logits = models[MODEL](x)
            return losses.weighted_bce(logits, batch["label"], pos_weight), {}

        loss, _, grads, new = value_and_grad_models(loss_fn, {MODEL: graphdef}, state["models"], [MODEL])
        params = param_state(graphdef, new[MODEL])
        params, opt = apply_gradients(tx, grads[MODEL], state["opt"][MODEL], params)
        return ({"models": {MODEL: replace_params(graphdef, new[MODEL], params)}, "opt": {MODEL: opt}},
                {"loss": loss})

    def train_batches(epoch):
        for idx in shuffled_batches(len(images), batch_size, steps, seed=seed, epoch=epoch, sort=True):
            yield {"image": images[idx], "label": ys[idx]}

    def evaluate(state):
        probs = predict_in_batches(score, state["models"][MODEL], val["image"],
                                   int(c.get("eval_batch_size", 256)), mesh)
        return validation_figures(probs, np.asarray(val["label"]))

    return Task(name=MODEL, init_state=init_state, train_step=train_step, train_batches=train_batches,
                steps_per_epoch=steps, evaluate=evaluate, monitor=monitor, mode="max",
                fingerprint=classifier_fingerprint(config), learning_rate=learning_rate)


def train_classifier(config: Any, workdir: str, *, mesh: Mesh | None = None,
                     max_steps: int | None = None) -> dict[str, Any]:
    """Train (or resume) the classifier in ``WORKDIR/classifier``; returns the best checkpoint's test metrics.

    ``workdir`` is the run directory. Writes ``config.json``, ``metrics.jsonl``,
    ``checkpoints/{latest,best}`` and ``test_metrics.json`` in ``WORKDIR/classifier``: test
    ``auc``, ``accuracy`` (at 0.5), ``n``; ``best_val_<monitor>``, ``best_epoch``,
    ``early_stop_epoch`` (None: ran all ``classifier.epochs``); and the validation threshold
    report of :func:`threshold_report` (``val_accuracy``, ``val_balanced_accuracy``,
    ``val_best_threshold``, ``val_best_balanced_accuracy``; the predicted class stays f(x) >= 0.5).
    """
    mesh = data_mesh() if mesh is None else mesh
    out_dir = model_dir(workdir, MODEL)
    if os.path.exists(os.path.join(out_dir, IMPORTED_MARKER)):
        raise ValueError(f"{out_dir} holds an imported classifier ({IMPORTED_MARKER}); it is not "
                         f"retrained. Train in another --workdir.")
    save_run_config(out_dir, config)
    train, val = load_split_data(config, "train"), load_split_data(config, "val")
    task = classifier_task(config, train, val, mesh)
    options = FitOptions.from_config(config.classifier, int(config.seed), max_steps=max_steps)
    result: FitResult = fit(task, out_dir, options, mesh=mesh)
    best_key = f"best_val_{task.monitor}"
    if result.stopped_early:
        return {"stopped_early": True, best_key: result.best_value}
    test = load_split_data(config, "test")
    model = load_classifier(workdir, config)
    probs = classifier_scores(model, test["image"], mesh=mesh)
    y = np.asarray(test["label"])
    report = threshold_report(classifier_scores(model, val["image"], mesh=mesh), np.asarray(val["label"]))
    metrics = {"auc": roc_auc(probs, y), "accuracy": accuracy(probs, y), "n": int(len(y)),
               best_key: result.best_value, "best_epoch": result.best_epoch,
               "early_stop_epoch": result.early_stop_epoch, **report}
    write_json_atomic(os.path.join(out_dir, "test_metrics.json"), metrics)
    print(f"[classifier] test AUC {metrics['auc']:.4f}, accuracy {metrics['accuracy']:.4f} (n={metrics['n']}); "
          f"validation accuracy {report['val_accuracy']:.3f}, balanced {report['val_balanced_accuracy']:.3f} at 0.5, "
          f"best balanced {report['val_best_balanced_accuracy']:.3f} at threshold {report['val_best_threshold']:.3f} "
          f"(reported, not applied)")
    return metrics
