"""Classifier training (the paper; docs/training.md#classifier): ResNet + weighted BCE + Adam, validation ROC AUC.

``train_classifier(config, workdir)`` trains (in ``WORKDIR/classifier``) the ResNet of ``config.classifier`` on
``config.data``'s train split with the shared trainer (checkpoints, resume, JSON-lines
metrics, plateau decay), keeps the best checkpoint by validation AUC and writes the
test-split AUC to ``WORKDIR/test_metrics.json``.

Config fields (``config.classifier``): ``depth``, ``width``, ``dropout``, ``head_units``
(architecture, part of the checkpoint fingerprint with ``data.image_size``), ``init``
(``"random"`` or ``"torchvision:PATH"``: start from a torchvision ResNet state_dict, e.g. ImageNet
weights; see ``docs/pretrained.md``), ``epochs``,
``batch_size``, ``lr`` (Adam), ``augment`` (bool), ``eval_batch_size`` and the optional
loop fields of :class:`advpath_jax.training.trainer.FitOptions`.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh

from advpath_jax.models.resnet import ResNet, make_resnet
from advpath_jax.parallel import batch_sharding, data_mesh, pad_batch, replicate
from advpath_jax.training import losses
from advpath_jax.training.checkpoint import fingerprint_of, load_models, model_dir, write_json_atomic
from advpath_jax.training.trainer import (FitOptions, FitResult, Task, apply_gradients, epoch_rng, fit,
                                          param_state, replace_params, save_run_config,
                                          value_and_grad_models)

ARCH_FIELDS = ("depth", "width", "dropout", "head_units")
MODEL = "classifier"


# ----------------------------------------------------------------------------- AUC

def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve by the trapezoid rule over all distinct thresholds.

    Ties in ``scores`` count one half (the ROC takes one diagonal step through them).
    ``scores`` and ``labels`` are ``[N]``; labels 0/1 with both classes present.
    """
    scores = np.asarray(scores, np.float64).ravel()
    labels = np.asarray(labels).ravel()
    if scores.shape != labels.shape:
        raise ValueError(f"roc_auc: scores {scores.shape} and labels {labels.shape} differ")
    if not np.all(np.isfinite(scores)):
        raise ValueError("roc_auc: scores contain NaN or inf")
    pos = labels == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"roc_auc needs both classes, got {n_pos} positives and {n_neg} negatives")
    order = np.argsort(-scores, kind="stable")
    s, p = scores[order], pos[order]
    last_of_group = np.r_[s[1:] != s[:-1], True]
    tp = np.cumsum(p)[last_of_group] / n_pos
    fp = np.cumsum(~p)[last_of_group] / n_neg
    tp, fp = np.r_[0.0, tp], np.r_[0.0, fp]
    return float(np.sum((fp[1:] - fp[:-1]) * (tp[1:] + tp[:-1]) / 2.0))


# ----------------------------------------------------------------------------- model

def classifier_fingerprint(config: Any) -> dict[str, Any]:
    fp = fingerprint_of(config.classifier, ARCH_FIELDS)
    fp["image_size"] = int(config.data.image_size)
    fp["model"] = "resnet"
    return fp


def build_classifier(config: Any) -> ResNet:
    """A freshly initialised ResNet of ``config.classifier`` (train mode)."""
    c = config.classifier
    return make_resnet(int(c.depth), width=float(c.width), in_channels=1, dropout=float(c.dropout),
                       head_units=int(c.head_units), seed=int(config.seed))


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
    from advpath_jax.models.torchvision_import import resnet_from_torchvision

    c = config.classifier
    model = resnet_from_torchvision(path, depth=int(c.depth), in_channels=1, first_conv="sum",
                                    dropout=float(c.dropout), head_units=int(c.head_units), seed=int(config.seed))
    if model.spec.width != float(c.width):
        raise ValueError(f"{path}: the file's ResNet has width {model.spec.width:g}, the config asks "
                         f"classifier.width={float(c.width):g} (set classifier.width={model.spec.width:g})")
    model.train()
    return model


@functools.lru_cache(maxsize=32)
def make_score_fn(graphdef: Any) -> Callable[[Any, jax.Array], jax.Array]:
    """Jitted ``(state, images [B,H,W,1]) -> probabilities [B]`` for a model split in eval mode (cached)."""
    @jax.jit
    def score(state, x):
        return jax.nn.sigmoid(nnx.merge(graphdef, state, copy=True)(x))
    return score


def predict_in_batches(fn: Callable[[Any, jax.Array], jax.Array], state: Any, images: np.ndarray,
                       batch_size: int = 256, mesh: Mesh | None = None) -> np.ndarray:
    """Apply a jitted ``fn(state, x [B,...]) -> [B, ...]`` over ``images`` in fixed-size sharded batches.

    The last batch is padded (so one compiled shape serves all) and the padding dropped.
    """
    mesh = data_mesh() if mesh is None else mesh
    n_dev = mesh.devices.size
    batch_size = max(n_dev, (batch_size // n_dev) * n_dev)
    sharding = batch_sharding(mesh)
    state = replicate(state, mesh)
    outs = []
    for start in range(0, len(images), batch_size):
        chunk = np.asarray(images[start:start + batch_size])
        padded, n = pad_batch(chunk, batch_size) if len(chunk) < batch_size else (chunk, len(chunk))
        out = fn(state, jax.device_put(padded, sharding))
        outs.append(jax.tree.map(lambda a: np.asarray(a)[:n], out))
    if not outs:
        raise ValueError("predict_in_batches: no images")
    return jax.tree.map(lambda *a: np.concatenate(a, axis=0), *outs)


def _augment_fn(config: Any, section: str = "classifier", scale: float = 1.0
                ) -> Callable[[jax.Array, jax.Array], jax.Array] | None:
    """``(key, images) -> images`` from ``advpath_jax.data.augment`` with the ``data.aug_*`` ranges
    (rotation, zoom, translation multiplied by ``scale``), or None when ``<section>.augment`` is off."""
    if not bool(config[section].get("augment", True)):
        return None
    from advpath_jax.data import AugmentConfig, augment
    base = AugmentConfig.from_config(config.data)
    aug_config = AugmentConfig(flip=base.flip, rotation=base.rotation * scale, zoom=base.zoom * scale,
                               translation=base.translation * scale)
    return lambda key, x: augment(key, x, None, config=aug_config)


def _load(config: Any, split: str) -> dict[str, np.ndarray]:
    try:
        from advpath_jax.data import load_split
    except ImportError:  # the package namespace does not re-export it (yet)
        from advpath_jax.data.datasets import load_split
    data = load_split(config.data, split)
    if len(data["image"]) == 0:
        raise ValueError(f"split {split!r} of data set {config.data.name!r} is empty")
    return data


# ----------------------------------------------------------------------------- task

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
    tx = optax.adam(float(c.lr))
    labels = np.asarray(train["label"])
    n_pos = int((labels == 1).sum())
    if n_pos == 0 or n_pos == len(labels):
        raise ValueError(f"training split of {config.data.name!r} has only one class ({n_pos} of {len(labels)} positive)")
    pos_weight = float(len(labels) - n_pos) / n_pos
    augment = _augment_fn(config)
    batch_size = int(c.batch_size)
    images = np.asarray(train["image"], np.float32)
    ys = labels.astype(np.float32)
    steps = len(images) // batch_size
    seed = int(config.seed)

    def init_state():
        m = initial_classifier(config)
        return {"models": {MODEL: nnx.state(m)}, "opt": {MODEL: tx.init(nnx.state(m, nnx.Param))}}

    def train_step(state, batch, key, lr_scale):
        x = batch["image"]
        if augment is not None:
            x = augment(jax.random.fold_in(key, 1), x)

        def loss_fn(models):
            logits = models[MODEL](x)
            return losses.weighted_bce(logits, batch["label"], pos_weight), {}

        loss, _, grads, new = value_and_grad_models(loss_fn, {MODEL: graphdef}, state["models"], [MODEL])
        params = param_state(graphdef, new[MODEL])
        params, opt = apply_gradients(tx, grads[MODEL], state["opt"][MODEL], params, lr_scale)
        return ({"models": {MODEL: replace_params(graphdef, new[MODEL], params)}, "opt": {MODEL: opt}},
                {"loss": loss})

    def train_batches(epoch):
        order = epoch_rng(seed, epoch).permutation(len(images))
        for i in range(steps):
            idx = np.sort(order[i * batch_size:(i + 1) * batch_size])
            yield {"image": images[idx], "label": ys[idx]}

    def evaluate(state):
        probs = predict_in_batches(score, state["models"][MODEL], val["image"],
                                   int(c.get("eval_batch_size", 256)), mesh)
        y = np.asarray(val["label"])
        return {"auc": roc_auc(probs, y), "accuracy": float(np.mean((probs >= 0.5) == (y == 1)))}

    return Task(name=MODEL, init_state=init_state, train_step=train_step, train_batches=train_batches,
                steps_per_epoch=steps, evaluate=evaluate, monitor="auc", mode="max",
                fingerprint=classifier_fingerprint(config))


def train_classifier(config: Any, workdir: str, *, mesh: Mesh | None = None,
                     max_steps: int | None = None) -> dict[str, Any]:
    """Train (or resume) the classifier in ``WORKDIR/classifier``; returns the best checkpoint's test metrics.

    ``workdir`` is the run directory. Writes ``config.json``, ``metrics.jsonl``,
    ``checkpoints/{latest,best}`` and ``test_metrics.json`` (``auc``, ``accuracy``, ``n``)
    in ``WORKDIR/classifier``.
    """
    mesh = data_mesh() if mesh is None else mesh
    out_dir = model_dir(workdir, MODEL)
    if os.path.exists(os.path.join(out_dir, IMPORTED_MARKER)):
        raise ValueError(f"{out_dir} holds an imported classifier ({IMPORTED_MARKER}); it is not "
                         f"retrained. Train in another --workdir.")
    save_run_config(out_dir, config)
    train, val = _load(config, "train"), _load(config, "val")
    task = classifier_task(config, train, val, mesh)
    options = FitOptions.from_config(config.classifier, int(config.seed), max_steps=max_steps)
    result: FitResult = fit(task, out_dir, options, mesh=mesh)
    if result.stopped_early:
        return {"stopped_early": True, "best_val_auc": result.best_value}
    test = _load(config, "test")
    model = load_classifier(workdir, config)
    probs = classifier_scores(model, test["image"], mesh=mesh)
    y = np.asarray(test["label"])
    metrics = {"auc": roc_auc(probs, y), "accuracy": float(np.mean((probs >= 0.5) == (y == 1))),
               "n": int(len(y)), "best_val_auc": result.best_value, "best_epoch": result.best_epoch}
    write_json_atomic(os.path.join(out_dir, "test_metrics.json"), metrics)
    print(f"[classifier] test AUC {metrics['auc']:.4f}, accuracy {metrics['accuracy']:.4f} (n={metrics['n']})")
    return metrics


def load_classifier(workdir: str, config: Any, *, which: str = "best") -> ResNet:
    """The trained classifier of run directory ``workdir`` (eval mode; from ``WORKDIR/classifier``).

    Raises FileNotFoundError when it was not trained, ValueError for another config's checkpoint.
    """
    # Built abstractly (shapes only): the checkpoint supplies every array, and an eager
    # initialisation of the ResNet would cost seconds of op dispatch.
    build = lambda: nnx.eval_shape(lambda: {MODEL: build_classifier(config)})
    return load_models(model_dir(workdir, MODEL), build, classifier_fingerprint(config), which=which)[MODEL]


def classifier_scores(model: ResNet, images: np.ndarray, *, batch_size: int = 256,
                      mesh: Mesh | None = None) -> np.ndarray:
    """Probabilities f(x) = sigmoid(logit) ``[N]`` of a classifier (put in eval mode) on ``images [N,H,W,1]``."""
    model.eval()
    graphdef, state = nnx.split(model)
    return predict_in_batches(make_score_fn(graphdef), state, images, batch_size, mesh)
