"""Training MGen (Dabkowski & Gal, 2017) against the frozen classifier.

For an image ``x`` with classifier logit ``z(x)``, predicted class ``c = 1[σ(z(x)) >= 0.5]``
and ``s = +1`` (``c = 1``) or ``−1`` (``c = 0``), MGen gives a mask ``m`` (1 = salient).
With ``Φ(x, m) = x (1 − m) + blur(x) m``:

    destroyer = mean max(0, s · z(Φ(x, m))     + κ_d)     blurring the salient region
                                                           flips the decision (by κ_d)
    preserver = mean max(0, κ_p − s · z(Φ(x, 1 − m)))     blurring everything else keeps it
    area      = mean (m + 5e-4)^0.3
    smooth    = mean (Δ_u m)² + mean (Δ_v m)²              (squared total variation)

    loss = destroyer + 8 · area + w_s · smooth + 0.3 · preserver

Margins: ``κ_d = κ_p = 1`` logit by default (``destroyer_margin``, ``preserver_margin``
in the config): the hinges are Carlini–Wagner margins on the binary logit, which for
two classes is the difference of the two class logits. Area and smoothness are taken
on the network's half-resolution mask (the full-resolution mask is its bilinear
upsampling). The blur is the project's Gaussian (border-normalised, see
:func:`advpath_jax.attribution.smoothing.normalized_blur`) with σ = 10 px at 224 px, scaled.

MGen's spec, fingerprint and loading (``load_mgen``) live in :mod:`advpath_jax.store.models`;
its masks (inference) in :mod:`advpath_jax.generators.mgen`; this module trains it and measures its quality.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from advpath_jax.attribution.adapters import score_fn
from advpath_jax.attribution.smoothing import normalized_blur
from advpath_jax.data.sampler import epoch_steps, shuffled_batches
from advpath_jax.generators.mgen import mgen_maps
from advpath_jax.metrics.deletion import deletion_flips
from advpath_jax.models.mgen import MGen, make_mgen, upsample_half_mask
from advpath_jax.models.probability import predicted_class, signed_class
from advpath_jax.parallel import padded_batches
from advpath_jax.store.checkpoint import model_dir
from advpath_jax.store.models import MGEN as MODEL_NAME
from advpath_jax.store.models import load_classifier, load_mgen, mgen_fingerprint, mgen_spec
from advpath_jax.training import trainer
from advpath_jax.training.inputs import check_training_images, load_split_images
from advpath_jax.training.schedules import LearningRate, make_optimizer

REFERENCE_IMAGE_SIZE = 224


# ----------------------------------------------------------------------------- loss terms

def area_loss(m: jax.Array, power: float = 0.3, eps: float = 5e-4) -> jax.Array:
    """``mean((m + eps)^power)`` over all mask pixels."""
    return jnp.mean(jnp.power(m + eps, power))


def smoothness_loss(m: jax.Array) -> jax.Array:
    """Squared total variation of masks ``[B, h, w]``: ``mean (Δ_u m)² + mean (Δ_v m)²``."""
    return jnp.mean((m[:, 1:, :] - m[:, :-1, :]) ** 2) + jnp.mean((m[:, :, 1:] - m[:, :, :-1]) ** 2)


def destroyer_loss(logit_destroyed: jax.Array, c: jax.Array, margin: float) -> jax.Array:
    """``mean max(0, s·z + margin)``: zero once the logit is ``margin`` past the boundary, on the other side."""
    return jnp.mean(jax.nn.relu(signed_class(c, logit_destroyed.dtype) * logit_destroyed + margin))


def preserver_loss(logit_preserved: jax.Array, c: jax.Array, margin: float) -> jax.Array:
    """``mean max(0, margin − s·z)``: zero while class ``c`` is kept with a ``margin`` logit."""
    return jnp.mean(jax.nn.relu(margin - signed_class(c, logit_preserved.dtype) * logit_preserved))


def perturb(x: jax.Array, blurred: jax.Array, m: jax.Array) -> jax.Array:
    """``x (1 − m) + blur(x) m`` for images ``[B,H,W,C]`` and masks ``[B,H,W]``."""
    m = m[..., None]
    return x * (1.0 - m) + blurred * m


@dataclasses.dataclass(frozen=True)
class MGenLossSettings:
    blur_sigma: float
    area_weight: float = 8.0
    area_power: float = 0.3
    smooth_weight: float = 0.5
    preserver_weight: float = 0.3
    destroyer_margin: float = 1.0
    preserver_margin: float = 1.0

    @classmethod
    def from_config(cls, section: Any, image_size: int) -> "MGenLossSettings":
        sigma = section.get("blur_sigma") or 10.0 * image_size / REFERENCE_IMAGE_SIZE
        return cls(blur_sigma=float(sigma), area_weight=float(section.area_weight),
                   area_power=float(section.area_power), smooth_weight=float(section.smooth_weight),
                   preserver_weight=float(section.preserver_weight),
                   destroyer_margin=float(section.destroyer_margin),
                   preserver_margin=float(section.preserver_margin))


def mgen_loss(mgen: MGen, logit_fn: Callable[[jax.Array], jax.Array], x: jax.Array,
              s: MGenLossSettings) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The MGen objective for images ``x [B,H,W,C]``; returns ``(loss, terms)``.

    ``logit_fn`` is the frozen classifier's logit ``[B,H,W,C] -> [B]``.
    """
    logit = jax.lax.stop_gradient(logit_fn(x))
    p = jax.nn.sigmoid(logit)
    c = predicted_class(p)
    half = mgen.half_mask(x, p)
    m = upsample_half_mask(half, x.shape[1:3])
    blurred = normalized_blur(x, s.blur_sigma)
    destroyer = destroyer_loss(logit_fn(perturb(x, blurred, m)), c, s.destroyer_margin)
    preserver = preserver_loss(logit_fn(perturb(x, blurred, 1.0 - m)), c, s.preserver_margin)
    area = area_loss(half, s.area_power)
    smooth = smoothness_loss(half)
    loss = destroyer + s.area_weight * area + s.smooth_weight * smooth + s.preserver_weight * preserver
    return loss, {"destroyer": destroyer, "preserver": preserver, "area": area, "smooth": smooth,
                  "mask_mean": jnp.mean(m)}


# ----------------------------------------------------------------------------- shared helpers

def eval_graphdef(graphdef: Any, state: Any) -> Any:
    """The graphdef of an eval-mode copy (running BatchNorm statistics, no dropout)."""
    model = nnx.merge(graphdef, state)
    model.eval()
    return nnx.split(model)[0]


def batched_mean(fn: Callable[[jax.Array], Mapping[str, jax.Array]], images: np.ndarray,
                 batch_size: int) -> dict[str, float]:
    """Mean of ``fn``'s scalars over the full batches of ``images`` (a remainder smaller than
    ``batch_size`` is left out, so every batch has one shape; all images when fewer than a batch)."""
    n = len(images)
    size = min(batch_size, n)
    totals: dict[str, float] = {}
    batches = max(1, n // size) if n else 0
    for i in range(batches):
        out = jax.device_get(fn(jnp.asarray(images[i * size:(i + 1) * size])))
        for name, value in out.items():
            totals[name] = totals.get(name, 0.0) + float(value)
    return {name: v / batches for name, v in totals.items()}


# ----------------------------------------------------------------------------- the task

def make_mgen_task(config: Any, classifier: nnx.Module, train_images: np.ndarray,
                   val_images: np.ndarray) -> trainer.Task:
    """MGen as a :class:`trainer.Task` on given image arrays ``[N, H, W, C]`` in [0, 1]."""
    section = config.mgen
    train_images = check_training_images(train_images, "mgen training images")
    val_images = check_training_images(val_images, "mgen validation images")
    image_size = int(train_images.shape[1])
    settings = MGenLossSettings.from_config(section, image_size)
    batch_size = int(section.batch_size)
    steps = epoch_steps(len(train_images), batch_size, section.get("steps_per_epoch"))
    learning_rate = LearningRate.from_config(section)
    tx = make_optimizer(learning_rate, int(section.epochs) * steps)
    seed = int(config.seed)

    mgen_gd, mgen_state0 = nnx.split(make_mgen(mgen_spec(config), seed=int(config.seed)))
    mgen_eval_gd = eval_graphdef(mgen_gd, mgen_state0)
    clf_gd, clf_state = nnx.split(classifier)
    clf_gd = eval_graphdef(clf_gd, clf_state)

    def init_state():
        # Copies: the trainer donates its state, which must not delete the caller's arrays.
        state = jax.tree.map(jnp.copy, {"models": {MODEL_NAME: mgen_state0},
                                        "frozen": {"classifier": clf_state}})
        state["opt"] = {MODEL_NAME: tx.init(trainer.param_state(mgen_gd, state["models"][MODEL_NAME]))}
        return state

    def train_step(state, batch, key):
        del key

        def loss_fn(models):
            return mgen_loss(models[MODEL_NAME], models["classifier"], batch["image"], settings)

        loss, terms, grads, new_states = trainer.value_and_grad_models(
            loss_fn, {MODEL_NAME: mgen_gd, "classifier": clf_gd},
            {MODEL_NAME: state["models"][MODEL_NAME], "classifier": state["frozen"]["classifier"]},
            wrt=[MODEL_NAME])
        params = trainer.param_state(mgen_gd, new_states[MODEL_NAME])
        params, opt_state = trainer.apply_gradients(tx, grads[MODEL_NAME], state["opt"][MODEL_NAME], params)
        new_model_state = trainer.replace_params(mgen_gd, new_states[MODEL_NAME], params)
        new_state = {"models": {MODEL_NAME: new_model_state}, "opt": {MODEL_NAME: opt_state},
                     "frozen": state["frozen"]}
        return new_state, {"loss": loss, **terms}

    @jax.jit
    def eval_batch(model_state, clf_state_, x):
        mgen = nnx.merge(mgen_eval_gd, model_state)
        clf = nnx.merge(clf_gd, clf_state_)
        loss, terms = mgen_loss(mgen, clf, x, settings)
        return {"loss": loss, **terms}

    def evaluate(state):
        return batched_mean(lambda x: eval_batch(state["models"][MODEL_NAME],
                                                 state["frozen"]["classifier"], x),
                            val_images, batch_size)

    def train_batches(epoch):
        for idx in shuffled_batches(len(train_images), batch_size, steps, seed=seed, epoch=epoch):
            yield {"image": train_images[idx]}

    return trainer.Task(
        name=MODEL_NAME, init_state=init_state, train_step=train_step, train_batches=train_batches,
        steps_per_epoch=steps, evaluate=evaluate, monitor="loss", mode="min",
        fingerprint=mgen_fingerprint(config), learning_rate=learning_rate)


# ----------------------------------------------------------------------------- quality figure

def destruction_figures(logit_fn: Callable, images: np.ndarray, masks: np.ndarray,
                        blur_sigma: float) -> dict[str, float]:
    """MGen's quality figure, as the generators' flip rate: the share of images ``[N,H,W,C]``
    whose destroyed image ``Φ(x, m) = x (1 − m) + blur(x) m`` (masks ``[N,H,W]``, 1 = salient)
    is given another predicted class than ``x``, and the mean mask area ``mean(m)``."""
    flips = deletion_flips(logit_fn, images, masks, blur_sigma)
    return {"flip_rate": float(np.mean(flips)), "mean_mask_area": float(np.mean(np.asarray(masks)))}


def mgen_quality(mgen: MGen, classifier: nnx.Module, images: np.ndarray, blur_sigma: float,
                 batch_size: int = 64) -> dict[str, float]:
    """:func:`destruction_figures` of a trained MGen's masks on ``images [N,H,W,C]``, in batches of
    one size (at most ``batch_size``, the last padded and the padding dropped: one compiled program
    for every batch, and for the validation and test splits when they have the same size)."""
    f, logit_fn = score_fn(classifier), score_fn(classifier, output="logit")
    flips, areas = [], []
    for lo, hi, x in padded_batches(np.asarray(images), batch_size):
        n = hi - lo
        masks = np.asarray(mgen_maps(mgen, f, x))
        flips.append(deletion_flips(logit_fn, x, masks, blur_sigma)[:n])
        areas.append(masks[:n].mean(axis=(1, 2)))
    return {"flip_rate": float(np.mean(np.concatenate(flips))),
            "mean_mask_area": float(np.mean(np.concatenate(areas)))}


def quality_report(config: Any, workdir: str) -> dict[str, float]:
    """``flip_rate_val``, ``flip_rate`` (test), ``mean_mask_area`` (test), ``mean_mask_area_val``
    of the trained MGen of ``workdir`` (stored with its model metrics)."""
    classifier = load_classifier(workdir, config)
    model = load_mgen(workdir, config)
    sigma = MGenLossSettings.from_config(config.mgen, int(config.data.image_size)).blur_sigma
    val = mgen_quality(model, classifier, load_split_images(config, "val"), sigma)
    test = mgen_quality(model, classifier, load_split_images(config, "test"), sigma)
    print(f"[mgen] flip rate val {val['flip_rate']:.3f}, test {test['flip_rate']:.3f}; "
          f"mean mask area test {test['mean_mask_area']:.3f}")
    return {"flip_rate_val": val["flip_rate"], "flip_rate": test["flip_rate"],
            "mean_mask_area": test["mean_mask_area"], "mean_mask_area_val": val["mean_mask_area"]}


def train_mgen(config: Any, workdir: str, *, max_steps: int | None = None) -> dict[str, Any]:
    """Train (or resume) MGen in ``WORKDIR/mgen`` against the classifier of ``WORKDIR/classifier``.

    ``workdir`` is the run directory. Returns the validation terms of the best checkpoint
    (also in ``WORKDIR/mgen/metrics.jsonl``).
    """
    out_dir = model_dir(workdir, MODEL_NAME)
    trainer.save_run_config(out_dir, config)
    classifier = load_classifier(workdir, config)
    task = make_mgen_task(config, classifier, load_split_images(config, "train"),
                          load_split_images(config, "val"))
    options = trainer.FitOptions.from_config(config.mgen, int(config.seed), max_steps=max_steps)
    result = trainer.fit(task, out_dir, options)
    best = [row for row in result.history if row.get("epoch") == result.best_epoch]
    quality = {} if result.stopped_early else quality_report(config, workdir)
    return {"stopped_early": result.stopped_early, "best_epoch": result.best_epoch,
            "best_val_loss": result.best_value, **({k: v for k, v in best[0].items() if k.startswith("val_")}
                                                   if best else {}), **quality}
