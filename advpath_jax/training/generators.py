"""Adversarial generators against a frozen classifier (the authors' CyCE/SyCE code; docs/training.md#generators): CyCE, SyCE, SAGen.

The classifier f (sigmoid of the ResNet logit) is loaded from ``WORKDIR/classifier`` and
frozen (eval mode). Each image's class is the classifier's *prediction*
c = 1[f(x) >= 0.5], never the label. Every training step sees a batch ``x0`` of images
predicted 0 and a batch ``x1`` of images predicted 1 (``generators.batch_size`` each).

CyCE / SyCE: U-Nets G0 (applied to images predicted 0) and G1 (predicted 1), critics
D0 (real predicted-0 images vs G1's outputs) and D1 (real predicted-1 vs G0's outputs).
Loss for the x0 half (the x1 half mirrors it with 0 <-> 1; both summed), x_a = G0(x0):

* CyCE: ``w_adv adv_cls(0, f(x_a)) + w_gan gan_g(D1(x_a)) + w_rec rec(x0, G1(x_a))
  + w_cls cls(0, f(G1(x_a)))`` with weights 0.2, 0.25, 10, 0.005.
* SyCE: ``w_adv adv_cls + w_gan gan_g + w_rec_self rec(x0, G0(x_a)) + w_cls_self cls(0, f(G0(x_a)))
  + w_rec rec(x0, G1(x_a)) + w_cls cls(0, f(G1(x_a)))`` with 0.2, 0.25, 10, 0.01, 2, 0.005.

Critic loss: ``gan_d(D(real), D(fake)) + gp_weight * gradient_penalty`` (weight 1), one
critic step per generator step (both in the same jitted step: the generators are
updated first, then the critics on the generators' detached outputs of that step).

SAGen: one U-Net trunk with two heads giving ``(x_s, x_a)``. Its training loss is not
public; the one used here is *inferred*:
``w_cls cls(c, f(x_s)) + w_adv adv_cls(c, f(x_a)) + w_rec_s rec(x, x_s) + w_rec_a rec(x, x_a)``
with random geometric augmentation of the inputs as regulariser. With
``generators.sagen_class_input`` the U-Net also receives the predicted class as a
constant second input channel (``[x, c]``), so one network knows which way to push
(CyCE/SyCE get this from having one generator per class).

Inference (``pair``): ``x_a = G_c(x)``; SyCE: ``x_s = G_c(x_a)``; CyCE: start point ``x``
itself; SAGen: both heads. Validation: the generator objective without the GAN term
(lower is better; it drives the best checkpoint and the learning-rate decay), plus the
flip/keep rates and the mean absolute changes.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh

from advpath_jax.models.discriminator import DiscriminatorSpec, make_discriminator
from advpath_jax.models.resnet import ResNet
from advpath_jax.models.unet import UNetSpec, make_unet
from advpath_jax.parallel import data_mesh
from advpath_jax.training import losses
from advpath_jax.training.checkpoint import fingerprint_of, load_models, model_dir, write_json_atomic
from advpath_jax.training.classifier import (_augment_fn, _load, classifier_fingerprint,
                                             classifier_scores, load_classifier, predict_in_batches)
from advpath_jax.training.trainer import (FitOptions, Task, apply_gradients, epoch_rng, fit,
                                          param_state, replace_params, save_run_config,
                                          value_and_grad_models)

KINDS = ("cyce", "syce", "sagen")
GAN_KINDS = ("cyce", "syce")
UNET_FIELDS = ("unet_base_channels", "unet_depth", "dropout", "residual", "head_channels")
D_FIELDS = ("d_base_channels", "d_layers")
DEFAULT_WEIGHTS = {
    "cyce": {"adv": 0.2, "gan": 0.25, "rec": 10.0, "cls": 0.005},
    "syce": {"adv": 0.2, "gan": 0.25, "rec_self": 10.0, "cls_self": 0.01, "rec": 2.0, "cls": 0.005},
    "sagen": {"cls": 0.005, "adv": 0.2, "rec_s": 10.0, "rec_a": 10.0},
}


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"generator kind must be one of {KINDS}, got {kind!r}")


def loss_weights(config: Any, kind: str) -> dict[str, float]:
    """The loss weights of ``kind`` (``config.generators.<kind>_weights`` overrides the defaults)."""
    weights = dict(DEFAULT_WEIGHTS[kind])
    section = config.generators.get(f"{kind}_weights")
    if section is not None:
        for k, v in (section.to_dict() if hasattr(section, "to_dict") else dict(section)).items():
            if k not in weights:
                raise ValueError(f"unknown {kind} loss weight {k!r}; known: {sorted(weights)}")
            weights[k] = float(v)
    return weights


def residual_for(config: Any, kind: str) -> bool:
    """Whether ``kind``'s U-Nets add the input before clipping: ``generators.residual`` is a
    bool (all kinds) or a tuple of kinds (e.g. ``("cyce", "sagen")``)."""
    r = config.generators.get("residual", False)
    if isinstance(r, (bool, int)) or r is None:
        return bool(r)
    kinds = (r,) if isinstance(r, str) else tuple(r)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"generators.residual names unknown kinds {unknown}; known: {KINDS}")
    return kind in kinds


def sagen_class_input(config: Any) -> bool:
    """Whether SAGen's U-Net takes the predicted class as a second input channel."""
    return bool(config.generators.get("sagen_class_input", False))


def unet_spec(config: Any, kind: str | None = None) -> UNetSpec:
    g = config.generators
    residual = residual_for(config, kind) if kind is not None else bool(g.get("residual", False))
    in_channels = 2 if kind == "sagen" and sagen_class_input(config) else 1
    return UNetSpec(base_channels=int(g.unet_base_channels), depth=int(g.unet_depth), in_channels=in_channels,
                    out_channels=1, dropout=float(g.dropout), residual=residual,
                    head_channels=tuple(int(c) for c in g.get("head_channels", (32, 16))))


def disc_spec(config: Any) -> DiscriminatorSpec:
    g = config.generators
    return DiscriminatorSpec(image_size=int(config.data.image_size), in_channels=1,
                             base_channels=int(g.d_base_channels), layers=int(g.d_layers))


def generator_fingerprint(config: Any, kind: str) -> dict[str, Any]:
    _check_kind(kind)
    fields = UNET_FIELDS + (D_FIELDS if kind in GAN_KINDS else ())
    fp = fingerprint_of(config.generators, fields)
    fp.update(kind=kind, image_size=int(config.data.image_size), residual=residual_for(config, kind))
    if kind == "sagen":
        fp["class_input"] = sagen_class_input(config)
    return fp


def build_generators(config: Any, kind: str, seed: int | None = None) -> dict[str, nnx.Module]:
    """Fresh modules of ``kind``: ``{"G0","G1","D0","D1"}`` (CyCE/SyCE) or ``{"G"}`` (SAGen), train mode."""
    _check_kind(kind)
    seed = int(config.seed) if seed is None else seed
    if kind == "sagen":
        return {"G": make_unet(unet_spec(config, kind), two_heads=True, seed=seed + 100)}
    return {"G0": make_unet(unet_spec(config, kind), seed=seed + 100),
            "G1": make_unet(unet_spec(config, kind), seed=seed + 200),
            "D0": make_discriminator(disc_spec(config), seed=seed + 300),
            "D1": make_discriminator(disc_spec(config), seed=seed + 400)}


# ----------------------------------------------------------------------------- the losses

def _cyce_loss(models, f, x0, x1, w, kind: str):
    """CyCE / SyCE generator loss of one step (both halves summed), the mean terms and (x_a0, x_a1).

    All images that the classifier scores in a step go through ``f`` in one call (it is
    frozen and in eval mode, so this equals separate calls and compiles one program).
    """
    G0, G1 = models["G0"], models["G1"]
    a0, a1 = G0(x0), G1(x1)
    back0, back1 = G1(a0), G0(a1)  # cycle through the other generator
    scored = [a0, a1, back0, back1]
    if kind == "syce":
        scored += [G0(a0), G1(a1)]  # the same generator: the stable image x_s
    logits = jnp.split(f(jnp.concatenate(scored, axis=0)), len(scored))
    y0, y1 = jnp.zeros((x0.shape[0],)), jnp.ones((x1.shape[0],))
    halves = []
    for y, x, a, back, d_opp, la, lb, k in ((y0, x0, a0, back0, models["D1"], logits[0], logits[2], 0),
                                            (y1, x1, a1, back1, models["D0"], logits[1], logits[3], 1)):
        terms = {"adv": losses.adv_cls(y, la), "gan": losses.gan_g(d_opp(a)),
                 "rec": losses.rec(x, back), "cls": losses.cls(y, lb)}
        if kind == "syce":
            terms["rec_self"] = losses.rec(x, scored[4 + k])
            terms["cls_self"] = losses.cls(y, logits[4 + k])
        halves.append(terms)
    total = sum(w[k] * (h[k]) for h in halves for k in h)
    terms = {k: 0.5 * (halves[0][k] + halves[1][k]) for k in halves[0]}
    return total, terms, a0, a1


def sagen_heads(G: nnx.Module, x: jax.Array, c: jax.Array) -> tuple[jax.Array, jax.Array]:
    """SAGen's ``(x_s, x_a)`` for images ``x`` ``[B, H, W, 1]`` of predicted classes ``c`` ``[B]``;
    a U-Net with two input channels gets ``[x, c]`` (c as a constant image)."""
    if G.spec.in_channels == 2:
        c_map = jnp.broadcast_to(jnp.asarray(c, x.dtype)[:, None, None, None], x.shape)
        return G(jnp.concatenate([x, c_map], axis=-1))
    return G(x)


def _sagen_loss(G, f, x, c, w):
    x_s, x_a = sagen_heads(G, x, c)
    l_s, l_a = jnp.split(f(jnp.concatenate([x_s, x_a], axis=0)), 2)
    terms = {"cls": losses.cls(c, l_s), "adv": losses.adv_cls(c, l_a),
             "rec_s": losses.rec(x, x_s), "rec_a": losses.rec(x, x_a)}
    return sum(w[k] * v for k, v in terms.items()), terms


# ----------------------------------------------------------------------------- the task

def _predicted(config: Any, classifier: ResNet, images: np.ndarray, mesh: Mesh) -> np.ndarray:
    return (classifier_scores(classifier, images, mesh=mesh) >= 0.5).astype(np.int32)


def generator_task(config: Any, kind: str, classifier: ResNet, train: dict[str, np.ndarray],
                   val: dict[str, np.ndarray], mesh: Mesh | None = None, *,
                   train_pred: np.ndarray | None = None, val_pred: np.ndarray | None = None) -> Task:
    """CyCE / SyCE / SAGen as a :class:`Task` for the shared trainer (classifier frozen).

    ``train_pred`` / ``val_pred``: the classifier's predicted classes ``[N]`` of the two
    splits when already known (they are computed otherwise).
    """
    _check_kind(kind)
    mesh = data_mesh() if mesh is None else mesh
    g = config.generators
    w = loss_weights(config, kind)
    gp_weight = float(g.get("gp_weight", 1.0))
    modules = build_generators(config, kind)
    init_states = {n: nnx.state(m) for n, m in modules.items()}
    train_gd, eval_gd = {}, {}
    for name, m in modules.items():
        m.eval()
        eval_gd[name] = nnx.split(m)[0]
        m.train()
        train_gd[name] = nnx.split(m)[0]
    classifier.eval()
    f_gd, f_state = nnx.split(classifier)
    f_state = jax.device_put(f_state, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))

    def f_logit(x):
        return nnx.merge(f_gd, f_state, copy=True)(x)

    tx = optax.adam(float(g.lr))
    augment = _augment_fn(config, "generators", scale=0.5)  # light augmentation
    names = list(modules)
    gen_names = [n for n in names if n.startswith("G")]
    disc_names = [n for n in names if n.startswith("D")]

    images = np.asarray(train["image"], np.float32)
    pred = _predicted(config, classifier, images, mesh) if train_pred is None else np.asarray(train_pred)
    if pred.shape != (len(images),):
        raise ValueError(f"train_pred has shape {pred.shape}, expected ({len(images)},)")
    idx0, idx1 = np.flatnonzero(pred == 0), np.flatnonzero(pred == 1)
    if len(idx0) == 0 or len(idx1) == 0:
        raise ValueError(f"the classifier predicts a single class on the whole training split "
                         f"({len(idx0)} predicted 0, {len(idx1)} predicted 1); train it further")
    b = int(g.batch_size)
    steps = len(images) // (2 * b)
    if g.get("steps_per_epoch"):
        steps = min(steps, int(g.steps_per_epoch))
    seed = int(config.seed)

    def init_state():  # copies of the modules built above (the trainer donates its state)
        states = jax.tree.map(jnp.array, init_states)
        return {"models": states,
                "opt": {n: tx.init(param_state(train_gd[n], states[n])) for n in names}}

    def _update(state, names_, grads, new_states, lr_scale):
        models, opts = dict(state["models"]), dict(state["opt"])
        for n in names_:
            params = param_state(train_gd[n], new_states[n])
            params, opts[n] = apply_gradients(tx, grads[n], state["opt"][n], params, lr_scale)
            models[n] = replace_params(train_gd[n], new_states[n], params)
        return {"models": models, "opt": opts}

    def train_step(state, batch, key, lr_scale):
        k_aug, k_gp0, k_gp1, k_drop = jax.random.split(key, 4)
        x0, x1 = batch["x0"], batch["x1"]
        if augment is not None:
            both = augment(k_aug, jnp.concatenate([x0, x1], axis=0))
            x0, x1 = both[: x0.shape[0]], both[x0.shape[0]:]
        states = {n: state["models"][n] for n in names}
        for i, n in enumerate(gen_names):  # fresh dropout masks per step, from the step key
            m = nnx.merge(train_gd[n], states[n], copy=True)
            nnx.reseed(m, dropout=jax.random.fold_in(k_drop, i))
            states[n] = nnx.state(m)

        if kind == "sagen":
            x = jnp.concatenate([x0, x1], axis=0)
            c = jnp.concatenate([jnp.zeros(x0.shape[0]), jnp.ones(x1.shape[0])])

            def g_loss(models):
                total, terms = _sagen_loss(models["G"], f_logit, x, c, w)
                return total, terms

            loss, terms, grads, new = value_and_grad_models(g_loss, train_gd, states, ["G"])
            return _update({"models": states, "opt": state["opt"]}, ["G"], grads, new, lr_scale), \
                {"loss": loss, **terms}

        def g_loss(models):
            total, terms, a0, a1 = _cyce_loss(models, f_logit, x0, x1, w, kind)
            return total, (terms, a0, a1)

        loss, (terms, a0, a1), grads, new = value_and_grad_models(g_loss, train_gd, states, gen_names)
        state = _update({"models": {**states, **new}, "opt": state["opt"]}, gen_names, grads, new, lr_scale)
        a0, a1 = jax.lax.stop_gradient(a0), jax.lax.stop_gradient(a1)

        def d_loss(models):
            d0, d1 = models["D0"], models["D1"]
            r1, f1 = jnp.split(d1(jnp.concatenate([x1, a0], axis=0)), 2)  # critics: no batch statistics
            r0, f0 = jnp.split(d0(jnp.concatenate([x0, a1], axis=0)), 2)
            gan = losses.gan_d(r1, f1) + losses.gan_d(r0, f0)
            gp = losses.gradient_penalty(d1, x1, a0, k_gp1) + losses.gradient_penalty(d0, x0, a1, k_gp0)
            return gan + gp_weight * gp, {"d_gan": gan, "d_gp": gp}

        d_total, d_terms, d_grads, d_new = value_and_grad_models(d_loss, train_gd, state["models"], disc_names)
        state = _update(state, disc_names, d_grads, d_new, lr_scale)
        return state, {"loss": loss, "d_loss": d_total, **terms, **d_terms}

    def train_batches(epoch):
        rng = epoch_rng(seed, epoch)
        need = steps * b
        o0 = np.resize(rng.permutation(idx0), need)  # the smaller class is cycled
        o1 = np.resize(rng.permutation(idx1), need)
        for i in range(steps):
            yield {"x0": images[o0[i * b:(i + 1) * b]], "x1": images[o1[i * b:(i + 1) * b]]}

    eval_fn = _eval_fn(kind, eval_gd[gen_names[0]], f_gd)
    val_images = np.asarray(val["image"], np.float32)
    val_pred = _predicted(config, classifier, val_images, mesh) if val_pred is None else np.asarray(val_pred)

    def evaluate(state):
        stats = _measure(eval_fn, {n: state["models"][n] for n in gen_names}, f_state, val_images,
                         val_pred, mesh, int(g.get("eval_batch_size", 128)))
        return stats

    return Task(name=kind, init_state=init_state, train_step=train_step, train_batches=train_batches,
                steps_per_epoch=steps, evaluate=evaluate, monitor="objective", mode="min",
                fingerprint=generator_fingerprint(config, kind))


# ----------------------------------------------------------------------------- inference / evaluation

def _pair_outputs(kind: str, gens: dict[str, nnx.Module], f, x: jax.Array, c: jax.Array):
    """(x_start, x_adv, extra) for predicted classes ``c`` ``[B]`` (0/1)."""
    sel = (c == 1)[:, None, None, None]
    if kind == "sagen":
        x_s, x_a = sagen_heads(gens["G"], x, c)
        return x_s, x_a, {}
    a0, a1 = gens["G0"](x), gens["G1"](x)
    x_a = jnp.where(sel, a1, a0)
    back0, back1 = gens["G1"](x_a), gens["G0"](x_a)  # the other generator: cycle reconstruction
    self0, self1 = gens["G0"](x_a), gens["G1"](x_a)  # the same generator: SyCE's stable image
    cycle = jnp.where(sel, back1, back0)
    same = jnp.where(sel, self1, self0)
    if kind == "syce":
        return same, x_a, {"cycle": cycle}
    return x, x_a, {"cycle": cycle, "same": same}


def _merge_eval(graphdefs: dict[str, Any], states: dict[str, Any]) -> dict[str, nnx.Module]:
    out = {}
    for name, gd in graphdefs.items():
        m = nnx.merge(gd, states[name], copy=True)
        m.eval()
        out[name] = m
    return out


@functools.lru_cache(maxsize=16)
def _eval_fn(kind: str, gen_graphdef: Any, f_graphdef: Any):
    """Jitted ``(g_same, g_other, f_state, x, cls) -> per-image dict`` for images of one predicted class.

    ``cls`` (int32 scalar) is that class; ``g_same`` the state of its generator (SAGen: its only one),
    ``g_other`` the other generator's (CyCE/SyCE; ignored for SAGen). Graphdefs are in
    eval mode. G0 and G1 share one architecture, so one compiled program serves both
    classes, and each image goes only through the generators it needs.
    """

    @jax.jit
    def run(g_same, g_other, f_state, x, cls):
        G = nnx.merge(gen_graphdef, g_same, copy=True)
        f = nnx.merge(f_graphdef, f_state, copy=True)
        extra = None
        if kind == "sagen":
            x_s, x_a = sagen_heads(G, x, jnp.full((x.shape[0],), cls))
        else:
            x_a = G(x)
            x_s = G(x_a) if kind == "syce" else x
            extra = nnx.merge(gen_graphdef, g_other, copy=True)(x_a)  # cycle reconstruction
        scored = [x_a, x_s] + ([extra] if extra is not None else [])
        p = jnp.split(jax.nn.sigmoid(f(jnp.concatenate(scored, axis=0))), len(scored))
        per = lambda u, v: jnp.mean(jnp.abs(u - v), axis=(1, 2, 3))
        sq = lambda u, v: jnp.mean((u - v) ** 2, axis=(1, 2, 3))
        out = {"p_adv": p[0], "p_start": p[1], "abs_adv": per(x_a, x), "abs_start": per(x_s, x),
               "rec_start": per(x_s, x) + sq(x_s, x)}
        if extra is not None:
            out["p_cycle"] = p[2]
            out["rec_cycle"] = per(extra, x) + sq(extra, x)
        return out
    return run


def _bce_np(target: np.ndarray, p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return -(target * np.log(p) + (1 - target) * np.log(1 - p))


def _measure(eval_fn, gen_states, f_state, images, pred, mesh, batch_size) -> dict[str, float]:
    """Flip/keep rates, mean absolute changes and the validation objective over ``images``."""
    c = np.asarray(pred).astype(np.int32)
    parts = {}
    for cls in (0, 1):
        idx = np.flatnonzero(c == cls)
        if len(idx) == 0:
            continue
        if "G" in gen_states:
            same = other = gen_states["G"]
        else:
            same, other = gen_states[f"G{cls}"], gen_states[f"G{1 - cls}"]
        fn = lambda st, x: eval_fn(st[0], st[1], st[2], x, st[3])
        parts[cls] = (idx, predict_in_batches(fn, (same, other, f_state, jnp.int32(cls)), images[idx],
                                              batch_size, mesh))
    keys = next(iter(parts.values()))[1].keys()
    out = {k: np.zeros(len(c), np.float64) for k in keys}
    for idx, o in parts.values():
        for k in keys:
            out[k][idx] = o[k]
    flipped = (out["p_adv"] >= 0.5).astype(np.int32) != c
    kept = (out["p_start"] >= 0.5).astype(np.int32) == c
    stats = {"flip_rate": float(flipped.mean()), "keep_rate": float(kept.mean()),
             "mean_abs_adv": float(out["abs_adv"].mean()), "mean_abs_start": float(out["abs_start"].mean())}
    # Validation objective (lower is better): the classification and reconstruction terms
    # of the losses at fixed weights, without the GAN term.
    objective = 0.2 * _bce_np(1 - c, out["p_adv"]).mean()
    objective += 2.0 * out["rec_start"].mean() + 0.01 * _bce_np(c, out["p_start"]).mean()
    if "p_cycle" in out:
        stats["cycle_keep_rate"] = float(((out["p_cycle"] >= 0.5).astype(np.int32) == c).mean())
        stats["mean_rec_cycle"] = float(out["rec_cycle"].mean())
        objective += 2.0 * out["rec_cycle"].mean()
    stats["objective"] = float(objective)
    return stats


# ----------------------------------------------------------------------------- public API

def train_generators(config: Any, workdir: str, kind: str, *, mesh: Mesh | None = None,
                     max_steps: int | None = None) -> dict[str, Any]:
    """Train (or resume) generator ``kind`` in ``WORKDIR/<kind>`` against ``WORKDIR/classifier``.

    ``workdir`` is the run directory (the one the classifier was trained in via
    ``train_classifier(config, workdir)``). Returns the test-split evaluation of the best
    checkpoint (see :func:`evaluate_generators`), also written to ``WORKDIR/<kind>/eval_test.json``.
    """
    _check_kind(kind)
    mesh = data_mesh() if mesh is None else mesh
    out_dir = model_dir(workdir, kind)
    save_run_config(out_dir, config)
    classifier = load_classifier(workdir, config)
    train, val = _load(config, "train"), _load(config, "val")
    task = generator_task(config, kind, classifier, train, val, mesh,
                          train_pred=predicted_classes(config, workdir, "train", classifier, train["image"], mesh),
                          val_pred=predicted_classes(config, workdir, "val", classifier, val["image"], mesh))
    options = FitOptions.from_config(config.generators, int(config.seed), max_steps=max_steps)
    result = fit(task, out_dir, options, mesh=mesh)
    if result.stopped_early:
        return {"stopped_early": True}
    return evaluate_generators(config, workdir, kind, split="test", mesh=mesh, classifier=classifier)


def predicted_classes(config: Any, workdir: str, split: str, classifier: ResNet, images: np.ndarray,
                      mesh: Mesh | None = None) -> np.ndarray:
    """The classifier's predicted classes ``[N]`` (int32) of ``split``, cached in ``WORKDIR/classifier``.

    The cache (``predicted_<split>.npz``) is keyed by the best classifier checkpoint's
    step and the data and classifier configs (training is deterministic given those);
    any mismatch recomputes it, so the three generators (and reruns) predict each split once.
    """
    from advpath_jax.training.checkpoint import CheckpointStore
    import json
    clf_dir = model_dir(workdir, "classifier")
    store = CheckpointStore(clf_dir, classifier_fingerprint(config))
    try:
        meta = store.read_meta("best")
    finally:
        store.close()
    as_dict = lambda section: section.to_dict() if hasattr(section, "to_dict") else dict(section)
    key = json.dumps({"step": None if meta is None else meta.get("step"), "n": int(len(images)),
                      "data": as_dict(config.data), "classifier": as_dict(config.classifier)},
                     sort_keys=True, default=str)
    path = os.path.join(clf_dir, f"predicted_{split}.npz")
    if meta is not None and os.path.exists(path):
        try:
            with np.load(path) as z:
                if str(z["key"]) == key and z["pred"].shape == (len(images),):
                    return z["pred"].astype(np.int32)
        except (OSError, ValueError, KeyError):
            pass  # unreadable cache: recompute
    pred = _predicted(config, classifier, np.asarray(images, np.float32), mesh or data_mesh())
    if meta is not None:
        tmp = f"{path}.tmp{os.getpid()}.npz"
        np.savez(tmp, pred=pred, key=np.asarray(key))
        os.replace(tmp, path)
    return pred


def load_generator(workdir: str, config: Any, kind: str, *, which: str = "best") -> dict[str, nnx.Module]:
    """Trained generators of ``WORKDIR/<kind>`` in eval mode: ``{"G0","G1"}`` or ``{"G"}`` (SAGen).

    Raises FileNotFoundError when not trained, ValueError for a checkpoint of another config.
    """
    _check_kind(kind)

    def build():  # shapes only: the checkpoint supplies every array
        return nnx.eval_shape(lambda: {n: m for n, m in build_generators(config, kind).items()
                                       if n.startswith("G")})

    # The checkpoint also holds the critics; only the generators are restored.
    return load_models(model_dir(workdir, kind), build, generator_fingerprint(config, kind), which=which)


def _check_images(x: Any) -> jax.Array:
    x = jnp.asarray(x)
    if x.ndim != 4 or x.shape[-1] != 1:
        raise ValueError(f"expected images [B, H, W, 1], got shape {tuple(x.shape)}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"expected float images in [0, 1], got dtype {x.dtype}")
    if not bool(jnp.all(jnp.isfinite(x))) or float(x.min()) < 0.0 or float(x.max()) > 1.0:
        raise ValueError("images must be finite and within [0, 1]")
    return x.astype(jnp.float32)


@functools.lru_cache(maxsize=16)
def _pair_fn(kind: str, gen_graphdefs: tuple[tuple[str, Any], ...], f_graphdef: Any):
    @jax.jit
    def run(gen_states, f_state, x):
        gens = _merge_eval(dict(gen_graphdefs), gen_states)
        f = _merge_eval({"f": f_graphdef}, {"f": f_state})["f"]
        c = (jax.nn.sigmoid(f(x)) >= 0.5).astype(jnp.int32)
        x_s, x_a, _ = _pair_outputs(kind, gens, f, x, c)
        return x_s, x_a, c
    return run


def generator_pair(kind: str, generators: dict[str, nnx.Module], classifier: ResNet, x: Any
                   ) -> tuple[jax.Array, jax.Array]:
    """``(x_start, x_adv)`` ``[B, H, W, 1]`` for images ``x`` ``[B, H, W, 1]`` in [0, 1].

    The class of each image is the classifier's prediction c = 1[f(x) >= 0.5];
    ``x_adv = G_c(x)``; ``x_start`` is ``x`` (CyCE), ``G_c(x_adv)`` (SyCE) or the stable
    head (SAGen).
    """
    _check_kind(kind)
    x = _check_images(x)
    splits = {n: nnx.split(m) for n, m in sorted(generators.items())}
    f_gd, f_state = nnx.split(classifier)
    fn = _pair_fn(kind, tuple((n, s[0]) for n, s in splits.items()), f_gd)
    x_s, x_a, _ = fn({n: s[1] for n, s in splits.items()}, f_state, x)
    return x_s, x_a


def cyce_pair(generators: dict[str, nnx.Module], classifier: ResNet, x: Any) -> tuple[jax.Array, jax.Array]:
    """CyCE: ``(x, G_c(x))``."""
    return generator_pair("cyce", generators, classifier, x)


def syce_pair(generators: dict[str, nnx.Module], classifier: ResNet, x: Any) -> tuple[jax.Array, jax.Array]:
    """SyCE: ``(G_c(G_c(x)), G_c(x))``."""
    return generator_pair("syce", generators, classifier, x)


def sagen_pair(generators: dict[str, nnx.Module], classifier: ResNet, x: Any) -> tuple[jax.Array, jax.Array]:
    """SAGen: the two heads ``(x_s, x_a)``."""
    return generator_pair("sagen", generators, classifier, x)


def evaluate_generators(config: Any, workdir: str, kind: str, *, split: str = "test",
                        mesh: Mesh | None = None, classifier: ResNet | None = None) -> dict[str, Any]:
    """Quality of generator ``kind`` on ``split``; written to ``WORKDIR/<kind>/eval_<split>.json``.

    ``flip_rate``: fraction of images whose adversary's predicted class differs from the
    image's; ``keep_rate``: fraction whose start point x_s keeps it (1 for CyCE, whose
    start point is x itself); ``mean_abs_adv`` / ``mean_abs_start``: mean |x_a - x| and
    |x_s - x| over pixels and images; CyCE/SyCE also report ``cycle_keep_rate`` and
    ``mean_rec_cycle`` for the other generator's reconstruction G_{1-c}(x_a).
    """
    _check_kind(kind)
    mesh = data_mesh() if mesh is None else mesh
    data = _load(config, split)
    classifier = load_classifier(workdir, config) if classifier is None else classifier
    classifier.eval()
    gens = load_generator(workdir, config, kind)
    images = np.asarray(data["image"], np.float32)
    pred = predicted_classes(config, workdir, split, classifier, images, mesh)
    splits = {n: nnx.split(m) for n, m in sorted(gens.items())}
    f_gd, f_state = nnx.split(classifier)
    fn = _eval_fn(kind, next(iter(splits.values()))[0], f_gd)
    stats = _measure(fn, {n: s[1] for n, s in splits.items()}, f_state, images, pred, mesh,
                     int(config.generators.get("eval_batch_size", 128)))
    stats.update(kind=kind, split=split, n=int(len(images)), predicted_positive=int(pred.sum()))
    write_json_atomic(os.path.join(model_dir(workdir, kind), f"eval_{split}.json"), stats)
    print(f"[{kind}] {split}: flip {stats['flip_rate']:.3f}, keep {stats['keep_rate']:.3f}, "
          f"|x_a-x| {stats['mean_abs_adv']:.4f}, |x_s-x| {stats['mean_abs_start']:.4f}")
    return stats
