"""Training the AOPC perturbation translator (Fixed-Point GAN style) against the frozen classifier.

The translator ``G(x, c)`` (:mod:`advpath_jax.models.translator`) maps an image to
class ``c`` through a residual, ``x' = clip(x + G(x, c), 0, 1)``. For an image with
predicted class ``c`` (``1[f(x) >= 0.5]``) and the opposite class ``c̄ = 1 − c``:

    critic:    E[D(x')] − E[D(x)] + λ_gp · GP             x' = G(x, c̄)   (WGAN-GP, λ_gp = 10)
    generator: −E[D(x')]                                   adversarial
               + λ_cls · BCE(c̄, f(x'))                     domain classification (λ_cls = 1)
               + λ_rec · mean|x − G(x', c)|                cycle reconstruction (λ_rec = 10)
               + λ_id  · mean|x − G(x, c)|                 identity for the same domain (λ_id = 0.1)

Domain classifier: the frozen classifier ``f`` itself, not an auxiliary head of the
critic. The translator exists to move images across *this classifier's* decision
boundary (AOPC scores ``f``), domains are defined by ``f``'s prediction everywhere in the
project, and an auxiliary head would learn the label boundary instead (which differs
from ``f``'s on misclassified images) at the price of a second classification task to
train on two CPU cores. The critic ``D`` (:mod:`advpath_jax.models.discriminator`) is
unconditional: it judges realism of both classes.

Batches are balanced: half images predicted 0, half predicted 1 (the rarer class is
cycled). ``n_critic`` critic updates precede each generator update, on the same batch.

Where things live: the translator's spec, fingerprint and loading (``load_translator``) in
:mod:`advpath_jax.store.models`; its inference (:func:`~advpath_jax.generators.translator.translate_to_opposite`,
the flip statistics) in :mod:`advpath_jax.generators.translator`. This module trains it and
writes its evaluation (:func:`evaluate_translator`: flip rate on a split, as JSON).
"""

from __future__ import annotations

import os
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.tree_util import Partial

from advpath_jax.attribution.adapters import score_fn
from advpath_jax.data.sampler import balanced_batches, epoch_steps
from advpath_jax.generators.translator import eval_translator_split, flip_statistics, translate_program
from advpath_jax.io_utils import write_json_atomic
from advpath_jax.models.probability import predicted_class
from advpath_jax.models.translator import Translator
from advpath_jax.store.checkpoint import model_dir
from advpath_jax.store.models import TRANSLATOR as MODEL_NAME
from advpath_jax.store.models import build_translator_models, load_classifier, load_translator, translator_fingerprint
from advpath_jax.store.predictions import make_score_fn, predict_in_batches, predicted_classes
from advpath_jax.training import losses, trainer
from advpath_jax.training.schedules import LearningRate, make_optimizer
from advpath_jax.training.inputs import check_training_images, load_split_images
from advpath_jax.training.mgen import eval_graphdef

G, D = "G", "D"
EVAL_FILE = "test_metrics.json"


# ----------------------------------------------------------------------------- losses

def l1(a: jax.Array, b: jax.Array) -> jax.Array:
    return jnp.mean(jnp.abs(a - b))


def generator_loss(g: Translator, d: Callable, logit_fn: Callable, x: jax.Array, c: jax.Array,
                   w: dict[str, float]) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Generator objective for images ``x`` with predicted classes ``c`` ``[B]`` (0/1)."""
    target = 1 - c
    fake = g(x, target)
    adv = losses.wgan_g(d(fake))
    cls = losses.cls(target.astype(x.dtype), logit_fn(fake))
    cycle = l1(x, g(fake, c))
    identity = l1(x, g(x, c))
    total = adv + w["cls"] * cls + w["rec"] * cycle + w["id"] * identity
    return total, {"g_adv": adv, "g_cls": cls, "g_cycle": cycle, "g_identity": identity}


def critic_loss(d: Callable, real: jax.Array, fake: jax.Array, key: jax.Array,
                gp_weight: float) -> tuple[jax.Array, dict[str, jax.Array]]:
    """WGAN-GP critic objective."""
    wasserstein = losses.wgan_d(d(real), d(fake))
    gp = losses.gradient_penalty(d, real, fake, key)
    return wasserstein + gp_weight * gp, {"d_wgan": wasserstein, "d_gp": gp}


# ----------------------------------------------------------------------------- the task

def _loss_weights(section: Any) -> dict[str, float]:
    return {"cls": float(section.cls_weight), "rec": float(section.rec_weight), "id": float(section.id_weight)}


def make_translator_task(config: Any, classifier: nnx.Module, train_images: np.ndarray,
                         val_images: np.ndarray, *, train_pred: np.ndarray | None = None) -> trainer.Task:
    """The translator as a :class:`trainer.Task` on given image arrays ``[N, H, W, C]`` in [0, 1].

    ``train_pred``: the classifier's predicted classes ``[N]`` of ``train_images`` when already
    known (the run's cache, :func:`predicted_classes`); computed here otherwise.
    """
    s = config.translator
    train_images = check_training_images(train_images, "translator training images")
    val_images = check_training_images(val_images, "translator validation images")
    w = _loss_weights(s)
    gp_weight = float(s.gp_weight)
    n_critic = int(s.n_critic)
    batch_size = int(s.batch_size)
    if batch_size < 2 or batch_size % 2:
        raise ValueError(f"translator.batch_size must be an even number >= 2, got {batch_size}")
    half = batch_size // 2
    seed = int(config.seed)

    models0 = build_translator_models(config)
    gds, states0 = {}, {}
    for name, module in models0.items():
        gds[name], states0[name] = nnx.split(module)
    g_eval_gd = eval_graphdef(gds[G], states0[G])
    clf_gd, clf_state = nnx.split(classifier)
    clf_gd = eval_graphdef(clf_gd, clf_state)

    score = make_score_fn(clf_gd)
    if train_pred is None:
        train_pred = predicted_class(predict_in_batches(score, clf_state, train_images, batch_size))
    train_pred = np.asarray(train_pred, np.int32)
    if train_pred.shape != (len(train_images),):
        raise ValueError(f"train_pred has shape {train_pred.shape}, expected ({len(train_images)},)")
    idx0, idx1 = np.flatnonzero(train_pred == 0), np.flatnonzero(train_pred == 1)
    if len(idx0) == 0 or len(idx1) == 0:
        raise ValueError(f"the classifier predicts a single class on all translator training images "
                         f"({len(idx0)} predicted 0, {len(idx1)} predicted 1); train it further")
    steps = epoch_steps(len(train_images), batch_size, s.get("steps_per_epoch"))
    learning_rate = LearningRate.from_config(s)
    adam = dict(b1=float(s.beta1), b2=float(s.beta2))
    total = int(s.epochs) * steps
    tx = {G: make_optimizer(learning_rate, total, **adam),
          D: make_optimizer(learning_rate, total, updates_per_step=n_critic, **adam)}  # n_critic updates a step

    def init_state():
        state = jax.tree.map(jnp.copy, {"models": dict(states0), "frozen": {"classifier": clf_state}})
        state["opt"] = {n: tx[n].init(trainer.param_state(gds[n], state["models"][n])) for n in (G, D)}
        return state

    def update(state, name, grads, new_state):
        params = trainer.param_state(gds[name], new_state)
        params, opt = trainer.apply_gradients(tx[name], grads, state["opt"][name], params)
        models = {**state["models"], name: trainer.replace_params(gds[name], new_state, params)}
        return {"models": models, "opt": {**state["opt"], name: opt}, "frozen": state["frozen"]}

    def train_step(state, batch, key):
        x = jnp.concatenate([batch["x0"], batch["x1"]], axis=0)
        c = jnp.concatenate([jnp.zeros(half, jnp.int32), jnp.ones(half, jnp.int32)])
        frozen = {"classifier": state["frozen"]["classifier"]}
        all_gds = {**gds, "classifier": clf_gd}
        d_metrics = {}
        for i in range(n_critic):
            g_model = nnx.merge(gds[G], state["models"][G], copy=True)
            fake = jax.lax.stop_gradient(g_model(x, 1 - c))
            k = jax.random.fold_in(key, i)
            _, d_metrics, grads, new = trainer.value_and_grad_models(
                lambda m: critic_loss(m[D], x, fake, k, gp_weight), gds, state["models"], [D])
            state = update(state, D, grads[D], new[D])

        def g_loss(m):
            return generator_loss(m[G], m[D], m["classifier"], x, c, w)

        loss, g_metrics, grads, new = trainer.value_and_grad_models(
            g_loss, all_gds, {**state["models"], **frozen}, [G])
        state = update(state, G, grads[G], new[G])
        return state, {"loss": loss, **g_metrics, **d_metrics}

    def train_batches(epoch):  # half predicted 0, half predicted 1 (the rarer class cycled)
        for i0, i1 in balanced_batches(idx0, idx1, half, steps, seed=seed, epoch=epoch):
            yield {"x0": train_images[i0], "x1": train_images[i1]}

    program = translate_program(g_eval_gd)
    f_val = Partial(score, clf_state)

    def evaluate(state):
        return flip_statistics(program, state["models"][G], f_val, val_images, batch_size)

    return trainer.Task(name=MODEL_NAME, init_state=init_state, train_step=train_step,
                        train_batches=train_batches, steps_per_epoch=steps, evaluate=evaluate,
                        monitor="flip_rate", mode="max", fingerprint=translator_fingerprint(config),
                        learning_rate=learning_rate)


# ----------------------------------------------------------------------------- public API

def train_translator(config: Any, workdir: str, *, max_steps: int | None = None) -> dict[str, Any]:
    """Train (or resume) the translator in ``WORKDIR/translator`` against ``WORKDIR/classifier``.

    ``workdir`` is the run directory. Returns the test-split evaluation of the best
    checkpoint (see :func:`evaluate_translator`).
    """
    out_dir = model_dir(workdir, MODEL_NAME)
    trainer.save_run_config(out_dir, config)
    classifier = load_classifier(workdir, config)
    train_images = load_split_images(config, "train")
    task = make_translator_task(config, classifier, train_images, load_split_images(config, "val"),
                                train_pred=predicted_classes(config, workdir, "train", classifier, train_images))
    options = trainer.FitOptions.from_config(config.translator, int(config.seed), max_steps=max_steps)
    result = trainer.fit(task, out_dir, options)
    if result.stopped_early:
        return {"stopped_early": True}
    return evaluate_translator(config, workdir, classifier=classifier)


def evaluate_translator(config: Any, workdir: str, *, split: str = "test", translator: Translator | None = None,
                        classifier: nnx.Module | None = None) -> dict[str, Any]:
    """Flip rate of the translator on ``split``; written to ``WORKDIR/translator/test_metrics.json``.

    Keys: ``flip_rate`` (fraction of images whose predicted class changes when translated
    to the opposite class; target >= 0.9), ``flip_rate_pred0`` / ``flip_rate_pred1``,
    ``n_pred0`` / ``n_pred1``, ``mean_abs_change`` (mean |x' − x|), ``n``, ``split``.
    """
    classifier = load_classifier(workdir, config) if classifier is None else classifier
    translator = load_translator(workdir, config) if translator is None else translator
    images = load_split_images(config, split)
    graphdef, state = eval_translator_split(translator)
    stats = flip_statistics(translate_program(graphdef), state, score_fn(classifier), images,
                            int(config.translator.batch_size))
    stats["split"] = split
    name = EVAL_FILE if split == "test" else f"{split}_metrics.json"
    out_dir = model_dir(workdir, MODEL_NAME)
    os.makedirs(out_dir, exist_ok=True)
    write_json_atomic(os.path.join(out_dir, name), stats)
    print(f"[translator] {split} flip rate {stats['flip_rate']:.3f} "
          f"(pred 0: {stats['flip_rate_pred0']:.3f}, pred 1: {stats['flip_rate_pred1']:.3f}), "
          f"mean |x' - x| {stats['mean_abs_change']:.4f}")
    return stats
