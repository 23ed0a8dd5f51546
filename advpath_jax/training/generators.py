"""Training the adversarial generators CyCE, SyCE and SAGen against a frozen classifier (docs/training.md#generators).

The classifier f (sigmoid of the ResNet logit) is loaded from ``WORKDIR/classifier`` and
frozen (eval mode). Each image's class is the classifier's *prediction*
c = 1[f(x) >= 0.5], never the label. Every training step sees a batch ``x0`` of images
predicted 0 and a batch ``x1`` of images predicted 1 (``generators.batch_size`` each).

Where things live:

* the kinds, specs, fingerprints, fresh modules and loss weights: :mod:`advpath_jax.generators.spec`;
* the losses (``cyce_loss``, ``syce_loss``, ``sagen_loss``): :mod:`advpath_jax.training.generator_losses`;
* inference (``x_s``, ``x_a``, ``c``) and the per-image quality program:
  :mod:`advpath_jax.generators.inference`;
* loading trained generators and the predicted-class cache: :mod:`advpath_jax.store`.

This module holds the training task (:func:`generator_task`), :func:`train_generators` and
:func:`evaluate_generators`. CyCE / SyCE: U-Nets G0, G1 and critics D0 (real predicted-0
images vs G1's outputs), D1 (real predicted-1 vs G0's outputs). Critic loss:
``gan_d(D(real), D(fake)) + gp_weight * gradient_penalty`` (weight 1), one critic step per
generator step (both in the same jitted step: the generators are updated first, then the
critics on the generators' detached outputs of that step). SAGen: one U-Net with two heads,
with random geometric augmentation of the inputs as regulariser.

Validation, every epoch: the flip/keep rates and mean absolute changes
(:func:`quality_statistics`) and the objective that picks the best checkpoint and drives
the learning-rate decay (lower is better), chosen by ``generators.val_criterion``:
``"own_loss"`` (the authors' code) is the method's own total generator loss with its own
weights, GAN term included (the critics in eval mode), on the validation images
(:func:`own_loss_statistic`); ``"fixed"`` is the classification and reconstruction terms at
fixed weights, without the GAN term (``0.2 adv + 2 rec_start + 0.01 cls_start [+ 2 rec_cycle]``).
"""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import Mesh

from advpath_jax.data.sampler import balanced_batches, epoch_steps
from advpath_jax.generators.inference import class_quality_program
from advpath_jax.generators.spec import (GAN_KINDS, build_generators, check_kind, generator_epochs, generator_fingerprint,
                                         loss_weights)
from advpath_jax.io_utils import write_json_atomic
from advpath_jax.models.probability import predicted_class
from advpath_jax.models.resnet import ResNet
from advpath_jax.parallel import data_mesh
from advpath_jax.store.checkpoint import model_dir
from advpath_jax.store.models import load_classifier, load_generators
from advpath_jax.store.predictions import predict_classes, predict_in_batches, predicted_classes
from advpath_jax.training import losses
from advpath_jax.training.generator_losses import CYCLE_LOSSES, half_loss, sagen_loss
from advpath_jax.training.inputs import augment_fn, load_split_data
from advpath_jax.training.schedules import LearningRate, make_optimizer
from advpath_jax.training.trainer import (FitOptions, Task, apply_gradients, fit, param_state, replace_params,
                                          save_run_config, value_and_grad_models)


# ----------------------------------------------------------------------------- the train step

def _apply_updates(txs: dict[str, Any], graphdefs: dict[str, Any], state: dict[str, Any], names: list[str],
                   grads: dict[str, Any], new_states: dict[str, Any]) -> dict[str, Any]:
    """``state`` with models ``names`` moved one optimizer step along ``grads`` (from their ``new_states``);
    ``txs``: each model's optimizer."""
    models, opts = dict(state["models"]), dict(state["opt"])
    for n in names:
        params = param_state(graphdefs[n], new_states[n])
        params, opts[n] = apply_gradients(txs[n], grads[n], state["opt"][n], params)
        models[n] = replace_params(graphdefs[n], new_states[n], params)
    return {"models": models, "opt": opts}


def _reseeded(graphdefs: dict[str, Any], states: dict[str, Any], names: list[str], key: jax.Array) -> dict[str, Any]:
    """``states`` with fresh dropout masks for models ``names``, drawn from ``key`` (one per step)."""
    states = dict(states)
    for i, n in enumerate(names):
        m = nnx.merge(graphdefs[n], states[n], copy=True)
        nnx.reseed(m, dropout=jax.random.fold_in(key, i))
        states[n] = nnx.state(m)
    return states


def _critic_loss(models: dict[str, nnx.Module], x0: jax.Array, x1: jax.Array, a0: jax.Array, a1: jax.Array,
                 keys: tuple[jax.Array, jax.Array], gp_weight: float) -> tuple[jax.Array, dict[str, jax.Array]]:
    """D1 judges real predicted-1 images against G0's outputs ``a0``, D0 real predicted-0 against ``a1``."""
    d0, d1 = models["D0"], models["D1"]
    r1, f1 = jnp.split(d1(jnp.concatenate([x1, a0], axis=0)), 2)  # critics: no batch statistics
    r0, f0 = jnp.split(d0(jnp.concatenate([x0, a1], axis=0)), 2)
    gan = losses.gan_d(r1, f1) + losses.gan_d(r0, f0)
    gp = losses.gradient_penalty(d1, x1, a0, keys[1]) + losses.gradient_penalty(d0, x0, a1, keys[0])
    return gan + gp_weight * gp, {"d_gan": gan, "d_gp": gp}


UPDATE_SCHEMES = ("authors", "joint")
#: ``generators.val_criterion``: the validation objective (see the module docstring)
VAL_CRITERIA = ("own_loss", "fixed", "quality")


def quality_objective(stats: dict[str, float]) -> float:
    """The ``"quality"`` criterion (lower is better): the fixed objective plus
    ``1 - min(flip_rate, keep_rate)`` of the validation statistics.

    The rates alone would prefer a generator that flips and keeps by rewriting the whole
    image (measured: an early SyCE checkpoint with flip 0.98, keep 0.99 and mean |x_a - x| 0.22);
    the fixed objective's reconstruction terms rule that out.
    """
    return stats["fixed_objective"] + 1.0 - min(stats["flip_rate"], stats["keep_rate"])


def generator_updates_per_step(kind: str, scheme: str) -> int:
    """Generator optimizer updates per training step: 2 for CyCE/SyCE under the authors' scheme."""
    if scheme not in UPDATE_SCHEMES:
        raise ValueError(f"generators.update_scheme must be one of {UPDATE_SCHEMES}, got {scheme!r}")
    return 2 if scheme == "authors" and kind in GAN_KINDS else 1


def generator_train_step(kind: str, txs: dict[str, Any], graphdefs: dict[str, Any], f_logit: Any,
                         w: dict[str, float], gp_weight: float, augment: Any, scheme: str = "joint") -> Any:
    """The pure ``(state, batch, key) -> (state, metrics)`` step of ``kind`` for the trainer.

    ``batch``: ``{"x0": [b,H,W,C], "x1": [b,H,W,C]}`` images predicted 0 and 1;
    ``graphdefs``: the train-mode graphdefs of the generators (``G*``) and critics (``D*``);
    ``f_logit``: the frozen classifier's logit; ``augment``: ``(key, x) -> x`` or None.
    ``txs``: each model's optimizer. CyCE / SyCE, ``scheme="joint"``: one update of G0 and G1 on
    the loss of both halves; ``"authors"`` (the authors' code): one update of G0 and G1 on the x0
    half's loss, then one on the x1 half's with the updated generators. Then the critics' update
    on the (updated) generators' detached outputs.
    """
    generator_updates_per_step(kind, scheme)  # checks the scheme
    names = list(graphdefs)
    gen_names = [n for n in names if n.startswith("G")]
    disc_names = [n for n in names if n.startswith("D")]
    cycle_loss = CYCLE_LOSSES.get(kind)  # CyCE / SyCE (SAGen: sagen_loss)

    def train_step(state, batch, key):
        k_aug, k_gp0, k_gp1, k_drop = jax.random.split(key, 4)
        x0, x1 = batch["x0"], batch["x1"]
        if augment is not None:
            both = augment(k_aug, jnp.concatenate([x0, x1], axis=0))
            x0, x1 = both[: x0.shape[0]], both[x0.shape[0]:]
        states = _reseeded(graphdefs, {n: state["models"][n] for n in names}, gen_names, k_drop)

        if kind == "sagen":
            x = jnp.concatenate([x0, x1], axis=0)
            c = jnp.concatenate([jnp.zeros(x0.shape[0]), jnp.ones(x1.shape[0])])
            loss, terms, grads, new = value_and_grad_models(
                lambda models: sagen_loss(models["G"], f_logit, x, c, w), graphdefs, states, ["G"])
            return (_apply_updates(txs, graphdefs, {"models": states, "opt": state["opt"]}, ["G"], grads, new),
                    {"loss": loss, **terms})

        if scheme == "authors":
            state, loss, terms = _half_updates(state["opt"], states, x0, x1)
            gens = {n: nnx.merge(graphdefs[n], state["models"][n], copy=True) for n in gen_names}
            a0, a1 = jax.lax.stop_gradient(gens["G0"](x0)), jax.lax.stop_gradient(gens["G1"](x1))
        else:
            def g_loss(models):
                total, terms, a0, a1 = cycle_loss(models, f_logit, x0, x1, w)
                return total, (terms, a0, a1)

            loss, (terms, a0, a1), grads, new = value_and_grad_models(g_loss, graphdefs, states, gen_names)
            state = _apply_updates(txs, graphdefs, {"models": {**states, **new}, "opt": state["opt"]},
                                   gen_names, grads, new)
            a0, a1 = jax.lax.stop_gradient(a0), jax.lax.stop_gradient(a1)
        d_total, d_terms, d_grads, d_new = value_and_grad_models(
            lambda models: _critic_loss(models, x0, x1, a0, a1, (k_gp0, k_gp1), gp_weight),
            graphdefs, state["models"], disc_names)
        state = _apply_updates(txs, graphdefs, state, disc_names, d_grads, d_new)
        return state, {"loss": loss, "d_loss": d_total, **terms, **d_terms}

    def _half_updates(opt, states, x0, x1):
        """The authors' two generator updates (x0 half, then x1 half); loss and terms summed/averaged."""
        state = {"models": states, "opt": opt}
        totals, halves = [], []
        for k, x in ((0, x0), (1, x1)):
            total, terms, grads, new = value_and_grad_models(
                lambda models, k=k, x=x: half_loss(kind, models, f_logit, x, k, w), graphdefs, state["models"],
                gen_names)
            state = _apply_updates(txs, graphdefs, {"models": {**state["models"], **new}, "opt": state["opt"]},
                                   gen_names, grads, new)
            totals.append(total)
            halves.append(terms)
        return state, totals[0] + totals[1], {k: 0.5 * (halves[0][k] + halves[1][k]) for k in halves[0]}

    return train_step


def check_val_criterion(criterion: str) -> str:
    if criterion not in VAL_CRITERIA:
        raise ValueError(f"generators.val_criterion must be one of {VAL_CRITERIA}, got {criterion!r}")
    return criterion


def own_loss_program(kind: str, graphdefs: dict[str, Any], f_logit: Any, w: dict[str, float]) -> Any:
    """Jitted ``(states, x, k) -> loss``: ``kind``'s own generator loss (weights ``w``, GAN term
    included) of images ``x [b,H,W,C]`` all predicted ``k`` (a Python int: static).

    CyCE / SyCE: the loss of the x_k half (:func:`half_loss`); SAGen: :func:`sagen_loss` with
    c = k. ``graphdefs``: eval-mode graphdefs of the generators and critics; ``states`` theirs.
    """
    def loss(states, x, k):
        models = {n: nnx.merge(graphdefs[n], states[n], copy=True) for n in graphdefs}
        if kind == "sagen":
            return sagen_loss(models["G"], f_logit, x, jnp.full((x.shape[0],), float(k)), w)[0]
        return half_loss(kind, models, f_logit, x, k, w)[0]

    return jax.jit(loss, static_argnums=2)


def own_loss_statistic(program: Any, states: dict[str, Any], images: np.ndarray, pred: np.ndarray,
                       batch_size: int) -> float:
    """The authors' validation criterion over ``images [N,H,W,C]`` of predicted classes ``pred [N]``.

    CyCE / SyCE: the sum over the two classes of the mean half loss (a training step's joint
    loss sums its two halves); SAGen: the mean loss over all images. ``program``:
    :func:`own_loss_program`. Batches of ``batch_size`` (the last one shorter), weighted by size.
    """
    c = np.asarray(pred).astype(np.int32)
    means = []
    for k in (0, 1):
        idx = np.flatnonzero(c == k)
        if len(idx) == 0:
            continue
        total = 0.0
        for lo in range(0, len(idx), batch_size):
            x = jnp.asarray(images[idx[lo:lo + batch_size]], jnp.float32)
            total += float(program(states, x, k)) * x.shape[0]
        means.append((total / len(idx), len(idx)))
    if "G" in states:  # SAGen: one mean over every image
        return sum(m * n for m, n in means) / sum(n for _, n in means)
    return sum(m for m, _ in means)


# ----------------------------------------------------------------------------- the task

def generator_task(config: Any, kind: str, classifier: ResNet, train: dict[str, np.ndarray],
                   val: dict[str, np.ndarray], mesh: Mesh | None = None, *,
                   train_pred: np.ndarray | None = None, val_pred: np.ndarray | None = None) -> Task:
    """CyCE / SyCE / SAGen as a :class:`Task` for the shared trainer (classifier frozen).

    ``train_pred`` / ``val_pred``: the classifier's predicted classes ``[N]`` of the two
    splits when already known (they are computed otherwise).
    """
    check_kind(kind)
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

    augment = augment_fn(config, "generators", scale=0.5)  # light augmentation
    names = list(modules)
    gen_names = [n for n in names if n.startswith("G")]

    images = np.asarray(train["image"], np.float32)
    pred = predict_classes(classifier, images, mesh) if train_pred is None else np.asarray(train_pred)
    if pred.shape != (len(images),):
        raise ValueError(f"train_pred has shape {pred.shape}, expected ({len(images)},)")
    idx0, idx1 = np.flatnonzero(pred == 0), np.flatnonzero(pred == 1)
    if len(idx0) == 0 or len(idx1) == 0:
        raise ValueError(f"the classifier predicts a single class on the whole training split "
                         f"({len(idx0)} predicted 0, {len(idx1)} predicted 1); train it further")
    b = int(g.batch_size)
    steps = epoch_steps(len(images), 2 * b, g.get("steps_per_epoch"))
    seed = int(config.seed)
    learning_rate = LearningRate.from_config(g)
    scheme = str(g.get("update_scheme", "joint"))
    per_step = generator_updates_per_step(kind, scheme)
    epochs = generator_epochs(config, kind)
    tx = make_optimizer(learning_rate, epochs * steps)  # critics (and SAGen): one update a step
    gen_tx = make_optimizer(learning_rate, epochs * steps, updates_per_step=per_step) if per_step > 1 else tx
    txs = {n: gen_tx if n.startswith("G") else tx for n in names}

    def init_state():  # copies of the modules built above (the trainer donates its state)
        states = jax.tree.map(jnp.array, init_states)
        return {"models": states,
                "opt": {n: txs[n].init(param_state(train_gd[n], states[n])) for n in names}}

    train_step = generator_train_step(kind, txs, train_gd, f_logit, w, gp_weight, augment, scheme)
    criterion = check_val_criterion(str(g.get("val_criterion", "own_loss")))
    # one more pass over the validation images per epoch: only when it is the criterion
    own_loss = own_loss_program(kind, eval_gd, f_logit, w) if criterion == "own_loss" else None

    def train_batches(epoch):  # b images predicted 0 and b predicted 1 a step (the smaller class cycled)
        for i0, i1 in balanced_batches(idx0, idx1, b, steps, seed=seed, epoch=epoch):
            yield {"x0": images[i0], "x1": images[i1]}

    eval_fn = class_quality_program(kind, eval_gd[gen_names[0]], f_gd)
    val_images = np.asarray(val["image"], np.float32)
    val_pred = predict_classes(classifier, val_images, mesh) if val_pred is None else np.asarray(val_pred)

    def evaluate(state):
        batch = int(g.get("eval_batch_size", 128))
        stats = quality_statistics(eval_fn, {n: state["models"][n] for n in gen_names}, f_state, val_images,
                                   val_pred, mesh, batch)
        stats["fixed_objective"] = stats["objective"]
        if own_loss is not None:
            stats["own_loss"] = own_loss_statistic(own_loss, {n: state["models"][n] for n in names}, val_images,
                                                   val_pred, batch)
            stats["objective"] = stats["own_loss"]
        if criterion == "quality":
            stats["objective"] = quality_objective(stats)
        return stats

    return Task(name=kind, init_state=init_state, train_step=train_step, train_batches=train_batches,
                steps_per_epoch=steps, evaluate=evaluate, monitor="objective", mode="min",
                fingerprint=generator_fingerprint(config, kind), learning_rate=learning_rate,
                schedule_monitor="fixed_objective" if criterion == "quality" else None)


# ----------------------------------------------------------------------------- evaluation

def _bce_np(target: np.ndarray, p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return -(target * np.log(p) + (1 - target) * np.log(1 - p))


def quality_statistics(program, gen_states: dict[str, Any], f_state: Any, images: np.ndarray,
                       pred: np.ndarray, mesh: Mesh, batch_size: int) -> dict[str, float]:
    """Flip/keep rates, mean absolute changes and the validation objective over ``images [N,H,W,1]``.

    ``program``: :func:`~advpath_jax.generators.inference.class_quality_program` of the
    generators' (eval-mode) graphdef; ``gen_states``: ``{"G0","G1"}`` or ``{"G"}`` states;
    ``pred``: the images' predicted classes ``[N]``.
    """
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
        fn = lambda st, x: program(st[0], st[1], st[2], x, st[3])
        parts[cls] = (idx, predict_in_batches(fn, (same, other, f_state, jnp.int32(cls)), images[idx],
                                              batch_size, mesh))
    keys = next(iter(parts.values()))[1].keys()
    out = {k: np.zeros(len(c), np.float64) for k in keys}
    for idx, o in parts.values():
        for k in keys:
            out[k][idx] = o[k]
    predicted = lambda p: np.asarray(predicted_class(p), np.int32)
    flipped = predicted(out["p_adv"]) != c
    kept = predicted(out["p_start"]) == c
    stats = {"flip_rate": float(flipped.mean()), "keep_rate": float(kept.mean()),
             "mean_abs_adv": float(out["abs_adv"].mean()), "mean_abs_start": float(out["abs_start"].mean())}
    # Validation objective (lower is better): the classification and reconstruction terms
    # of the losses at fixed weights, without the GAN term.
    objective = 0.2 * _bce_np(1 - c, out["p_adv"]).mean()
    objective += 2.0 * out["rec_start"].mean() + 0.01 * _bce_np(c, out["p_start"]).mean()
    if "p_cycle" in out:
        stats["cycle_keep_rate"] = float((predicted(out["p_cycle"]) == c).mean())
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
    check_kind(kind)
    mesh = data_mesh() if mesh is None else mesh
    out_dir = model_dir(workdir, kind)
    save_run_config(out_dir, config)
    classifier = load_classifier(workdir, config)
    train, val = load_split_data(config, "train"), load_split_data(config, "val")
    task = generator_task(config, kind, classifier, train, val, mesh,
                          train_pred=predicted_classes(config, workdir, "train", classifier, train["image"], mesh),
                          val_pred=predicted_classes(config, workdir, "val", classifier, val["image"], mesh))
    options = FitOptions.from_config(config.generators, int(config.seed), max_steps=max_steps,
                                     epochs=generator_epochs(config, kind))
    result = fit(task, out_dir, options, mesh=mesh)
    if result.stopped_early:
        return {"stopped_early": True}
    return evaluate_generators(config, workdir, kind, split="test", mesh=mesh, classifier=classifier)


def evaluate_generators(config: Any, workdir: str, kind: str, *, split: str = "test",
                        mesh: Mesh | None = None, classifier: ResNet | None = None) -> dict[str, Any]:
    """Quality of generator ``kind`` on ``split``; written to ``WORKDIR/<kind>/eval_<split>.json``.

    ``flip_rate``: fraction of images whose adversary's predicted class differs from the
    image's; ``keep_rate``: fraction whose start point x_s keeps it (1 for CyCE, whose
    start point is x itself); ``mean_abs_adv`` / ``mean_abs_start``: mean |x_a - x| and
    |x_s - x| over pixels and images; CyCE/SyCE also report ``cycle_keep_rate`` and
    ``mean_rec_cycle`` for the other generator's reconstruction G_{1-c}(x_a).
    """
    check_kind(kind)
    mesh = data_mesh() if mesh is None else mesh
    data = load_split_data(config, split)
    classifier = load_classifier(workdir, config) if classifier is None else classifier
    classifier.eval()
    gens = load_generators(workdir, config, kind)
    images = np.asarray(data["image"], np.float32)
    pred = predicted_classes(config, workdir, split, classifier, images, mesh)
    splits = {n: nnx.split(m) for n, m in sorted(gens.items())}
    f_gd, f_state = nnx.split(classifier)
    program = class_quality_program(kind, next(iter(splits.values()))[0], f_gd)
    stats = quality_statistics(program, {n: s[1] for n, s in splits.items()}, f_state, images, pred, mesh,
                               int(config.generators.get("eval_batch_size", 128)))
    stats.update(kind=kind, split=split, n=int(len(images)), predicted_positive=int(pred.sum()))
    write_json_atomic(os.path.join(model_dir(workdir, kind), f"eval_{split}.json"), stats)
    print(f"[{kind}] {split}: flip {stats['flip_rate']:.3f}, keep {stats['keep_rate']:.3f}, "
          f"|x_a-x| {stats['mean_abs_adv']:.4f}, |x_s-x| {stats['mean_abs_start']:.4f}")
    return stats
