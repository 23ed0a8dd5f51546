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

Inference helpers: :func:`translate_to_opposite` (each image to the opposite of its
predicted class) and :func:`evaluate_translator` (flip rate on a split, written as
JSON).
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
from jax.tree_util import Partial

from advpath_jax.attribution.core import as_partial
from advpath_jax.explain.mpert import check_images
from advpath_jax.models.discriminator import DiscriminatorSpec, make_discriminator
from advpath_jax.models.translator import Translator, TranslatorSpec, make_translator
from advpath_jax.training import losses, trainer
from advpath_jax.training.checkpoint import load_models, model_dir, write_json_atomic
from advpath_jax.training.mgen import check_training_images, eval_graphdef, load_split_images

MODEL_NAME = "translator"
G, D = "G", "D"
EVAL_FILE = "test_metrics.json"


# ----------------------------------------------------------------------------- specs

def translator_spec(config: Any) -> TranslatorSpec:
    s = config.translator
    return TranslatorSpec(base_channels=int(s.base_channels), depth=int(s.depth),
                          in_channels=int(config.data.get("channels", 1)), dropout=float(s.dropout))


def critic_spec(config: Any) -> DiscriminatorSpec:
    s = config.translator
    return DiscriminatorSpec(image_size=int(config.data.image_size), in_channels=int(config.data.get("channels", 1)),
                             base_channels=int(s.critic_channels), layers=int(s.critic_layers))


def translator_fingerprint(config: Any) -> dict[str, Any]:
    g, d = translator_spec(config), critic_spec(config)
    return {"model": "translator", "base_channels": g.base_channels, "depth": g.depth, "dropout": g.dropout,
            "in_channels": g.in_channels, "image_size": d.image_size, "critic_channels": d.base_channels,
            "critic_layers": d.layers}


def build_translator_models(config: Any, seed: int | None = None) -> dict[str, nnx.Module]:
    seed = int(config.seed) if seed is None else seed
    return {G: make_translator(translator_spec(config), seed=seed),
            D: make_discriminator(critic_spec(config), seed=seed + 100)}


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
                         val_images: np.ndarray) -> trainer.Task:
    """The translator as a :class:`trainer.Task` on given image arrays ``[N, H, W, C]`` in [0, 1]."""
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
    tx = {G: optax.adam(float(s.lr), b1=float(s.beta1), b2=float(s.beta2)),
          D: optax.adam(float(s.lr), b1=float(s.beta1), b2=float(s.beta2))}

    models0 = build_translator_models(config)
    gds, states0 = {}, {}
    for name, module in models0.items():
        gds[name], states0[name] = nnx.split(module)
    g_eval_gd = eval_graphdef(gds[G], states0[G])
    clf_gd, clf_state = nnx.split(classifier)
    clf_gd = eval_graphdef(clf_gd, clf_state)

    score = _score_program(clf_gd)
    train_pred = _predict(score, clf_state, train_images, batch_size)
    idx0, idx1 = np.flatnonzero(train_pred == 0), np.flatnonzero(train_pred == 1)
    if len(idx0) == 0 or len(idx1) == 0:
        raise ValueError(f"the classifier predicts a single class on all translator training images "
                         f"({len(idx0)} predicted 0, {len(idx1)} predicted 1); train it further")
    steps = len(train_images) // batch_size
    if s.get("steps_per_epoch"):
        steps = min(steps, int(s.steps_per_epoch))

    def init_state():
        state = jax.tree.map(jnp.copy, {"models": dict(states0), "frozen": {"classifier": clf_state}})
        state["opt"] = {n: tx[n].init(trainer.param_state(gds[n], state["models"][n])) for n in (G, D)}
        return state

    def update(state, name, grads, new_state, lr_scale):
        params = trainer.param_state(gds[name], new_state)
        params, opt = trainer.apply_gradients(tx[name], grads, state["opt"][name], params, lr_scale)
        models = {**state["models"], name: trainer.replace_params(gds[name], new_state, params)}
        return {"models": models, "opt": {**state["opt"], name: opt}, "frozen": state["frozen"]}

    def train_step(state, batch, key, lr_scale):
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
            state = update(state, D, grads[D], new[D], lr_scale)

        def g_loss(m):
            return generator_loss(m[G], m[D], m["classifier"], x, c, w)

        loss, g_metrics, grads, new = trainer.value_and_grad_models(
            g_loss, all_gds, {**state["models"], **frozen}, [G])
        state = update(state, G, grads[G], new[G], lr_scale)
        return state, {"loss": loss, **g_metrics, **d_metrics}

    def train_batches(epoch):
        rng = trainer.epoch_rng(seed, epoch)
        need = steps * half
        o0 = np.resize(rng.permutation(idx0), need)  # the rarer class is cycled
        o1 = np.resize(rng.permutation(idx1), need)
        for i in range(steps):
            yield {"x0": train_images[o0[i * half:(i + 1) * half]], "x1": train_images[o1[i * half:(i + 1) * half]]}

    program = _translate_program(g_eval_gd)
    f_val = Partial(score, clf_state)

    def evaluate(state):
        return flip_statistics(program, state["models"][G], f_val, val_images, batch_size)

    return trainer.Task(name=MODEL_NAME, init_state=init_state, train_step=train_step,
                        train_batches=train_batches, steps_per_epoch=steps, evaluate=evaluate,
                        monitor="flip_rate", mode="max", fingerprint=translator_fingerprint(config))


# ----------------------------------------------------------------------------- inference

@functools.lru_cache(maxsize=16)
def _score_program(graphdef: Any) -> Callable:
    def score(state, x):
        return jax.nn.sigmoid(nnx.merge(graphdef, state)(x))
    return score


def _predict(score: Callable, state: Any, images: np.ndarray, batch_size: int) -> np.ndarray:
    fn = jax.jit(score)
    out = [np.asarray(fn(state, jnp.asarray(images[i:i + batch_size]))) for i in range(0, len(images), batch_size)]
    return (np.concatenate(out) >= 0.5).astype(np.int32)


@functools.lru_cache(maxsize=16)
def _translate_program(graphdef: Any) -> Callable:
    """Jitted ``(state, f, x) -> (x', p(x), p(x'))`` translating each image to its opposite class."""
    @jax.jit
    def run(state, f, x):
        p = f(x)
        target = (p < 0.5).astype(jnp.int32)
        out = nnx.merge(graphdef, state)(x, target)
        return out, p, f(out)
    return run


def _eval_split(translator: Translator) -> tuple[Any, Any]:
    if not isinstance(translator, Translator):
        raise ValueError(f"expected an advpath_jax.models.translator.Translator, got {type(translator).__name__}")
    graphdef, state = nnx.split(translator)
    return eval_graphdef(graphdef, state), state


def translate_to_opposite(translator: Translator, classifier_f: Callable, x) -> jax.Array:
    """Translate each image ``x [B,H,W,C]`` to the opposite of its predicted class.

    ``classifier_f``: ``[B,H,W,C] -> [B]`` probability of class 1 (e.g.
    ``advpath_jax.score_fn(model)``); predicted class ``c = 1[f(x) >= 0.5]``, target ``1 − c``.
    Returns ``x' [B,H,W,C]`` in [0, 1]. The translator is used in eval mode.
    """
    x = check_images(x)
    graphdef, state = _eval_split(translator)
    out, _, _ = _translate_program(graphdef)(state, as_partial(classifier_f), x)
    return out


def flip_statistics(program: Callable, state: Any, f: Partial, images: np.ndarray,
                    batch_size: int) -> dict[str, float]:
    """Flip rate (overall and per predicted class) and mean |x' − x| over ``images``."""
    flips, preds, change = [], [], []
    if len(images) == 0:
        raise ValueError("flip_statistics: no images")
    for i in range(0, len(images), batch_size):
        chunk = images[i:i + batch_size]
        k = len(chunk)
        if k < batch_size:  # pad to one compiled shape; the padding is dropped below
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch_size - k, axis=0)])
        x = jnp.asarray(chunk)
        out, p, p_out = program(state, f, x)
        pred = np.asarray(p)[:k] >= 0.5
        preds.append(pred)
        flips.append((np.asarray(p_out)[:k] >= 0.5) != pred)
        change.append(np.asarray(jnp.mean(jnp.abs(out - x), axis=(1, 2, 3)))[:k])
    flips, preds, change = np.concatenate(flips), np.concatenate(preds), np.concatenate(change)
    stats = {"flip_rate": float(flips.mean()), "mean_abs_change": float(change.mean()), "n": int(len(flips))}
    for c in (0, 1):
        sel = preds == bool(c)
        stats[f"flip_rate_pred{c}"] = float(flips[sel].mean()) if sel.any() else float("nan")
        stats[f"n_pred{c}"] = int(sel.sum())
    return stats


# ----------------------------------------------------------------------------- public API

def train_translator(config: Any, workdir: str, *, max_steps: int | None = None) -> dict[str, Any]:
    """Train (or resume) the translator in ``WORKDIR/translator`` against ``WORKDIR/classifier``.

    ``workdir`` is the run directory. Returns the test-split evaluation of the best
    checkpoint (see :func:`evaluate_translator`).
    """
    from advpath_jax.training.classifier import load_classifier

    out_dir = model_dir(workdir, MODEL_NAME)
    trainer.save_run_config(out_dir, config)
    classifier = load_classifier(workdir, config)
    task = make_translator_task(config, classifier, load_split_images(config, "train"),
                                load_split_images(config, "val"))
    options = trainer.FitOptions.from_config(config.translator, int(config.seed), max_steps=max_steps)
    result = trainer.fit(task, out_dir, options)
    if result.stopped_early:
        return {"stopped_early": True}
    return evaluate_translator(config, workdir, classifier=classifier)


def load_translator(workdir: str, config: Any, *, which: str = "best") -> Translator:
    """The trained translator of run directory ``workdir`` (``WORKDIR/translator``, eval mode).

    Raises FileNotFoundError when it was not trained, ValueError for another config's checkpoint.
    """
    models = load_models(model_dir(workdir, MODEL_NAME), lambda: build_translator_models(config),
                         translator_fingerprint(config), which=which)
    return models[G]


def evaluate_translator(config: Any, workdir: str, *, split: str = "test", translator: Translator | None = None,
                        classifier: nnx.Module | None = None) -> dict[str, Any]:
    """Flip rate of the translator on ``split``; written to ``WORKDIR/translator/test_metrics.json``.

    Keys: ``flip_rate`` (fraction of images whose predicted class changes when translated
    to the opposite class; target >= 0.9), ``flip_rate_pred0`` / ``flip_rate_pred1``,
    ``n_pred0`` / ``n_pred1``, ``mean_abs_change`` (mean |x' − x|), ``n``, ``split``.
    """
    from advpath_jax.attribution.adapters import score_fn
    from advpath_jax.training.classifier import load_classifier

    classifier = load_classifier(workdir, config) if classifier is None else classifier
    translator = load_translator(workdir, config) if translator is None else translator
    images = load_split_images(config, split)
    graphdef, state = _eval_split(translator)
    stats = flip_statistics(_translate_program(graphdef), state, score_fn(classifier), images,
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
