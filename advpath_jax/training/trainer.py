"""The one training loop of the project, shared by every model kind.

A model kind (classifier, CyCE, SyCE, SAGen, MGen, translator) describes itself as a
:class:`Task`; :func:`fit` does the rest:

* a jitted data-parallel train step: the batch is sharded over the ``'data'`` axis of
  a device mesh, the state replicated, and the state argument donated;
* epochs with a tqdm progress bar, the step's scalars averaged per epoch;
* validation after every epoch; ``metrics.jsonl`` in the work directory, one JSON
  object per epoch;
* checkpoints through :class:`advpath_jax.training.checkpoint.CheckpointStore`: the
  latest (every epoch, and every ``checkpoint_every_steps`` steps if set) and the best
  by the task's monitored validation metric;
* resume: a work directory that already holds a ``latest`` checkpoint continues from
  it (same data order and random keys as an uninterrupted run);
* a non-finite loss (or non-finite parameters) stops training with
  :class:`NonFiniteLossError` before anything is saved, so the last good checkpoint
  stays intact;
* learning-rate decay on plateau of the monitored metric (factor 0.3, patience 4,
  floor 1e-5 by default): the trainer keeps a scale ``lr_scale`` (1.0 at the start)
  and hands it to the step, which multiplies its optimizer updates by it (see
  :func:`apply_gradients`; for Adam this is exactly a learning-rate change);
  ``lr_schedule = "cosine"`` also multiplies it by a cosine decay over all the steps
  of the run (:func:`schedule_factor`);
* determinism: the batch order of epoch ``e`` and the key of step ``i`` derive only
  from ``(seed, e, i)``.

Writing a task
--------------
``init_state()`` returns the state pytree ``{"models": {name: nnx.State},
"opt": {name: optax state}}`` (more top-level keys are allowed and are checkpointed
with it). ``train_step(state, batch, key, lr_scale) -> (state, metrics)`` is a pure,
jittable function; ``metrics`` is a dict of scalar arrays that must contain ``"loss"``.
``train_batches(epoch)`` yields dicts of numpy arrays with a leading global batch
dimension (a multiple of the device count), ``steps_per_epoch`` of them.
``evaluate(state)`` returns a dict of floats containing ``monitor``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from typing import Any, Callable, Iterable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from tqdm.auto import tqdm

from advpath_jax.training.checkpoint import CheckpointStore, write_json_atomic

METRICS_FILE = "metrics.jsonl"


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN/inf loss or parameters; the last good checkpoint is kept."""


@dataclasses.dataclass
class Task:
    """A trainable model kind, as :func:`fit` sees it.

    Attributes:
      name: short name used in progress bars and messages (``"classifier"``, ``"cyce"``).
      init_state: ``() -> state`` (``{"models": {...}, "opt": {...}}``, arrays only).
      train_step: pure ``(state, batch, key, lr_scale) -> (state, metrics)``.
      train_batches: ``epoch -> iterable of batch dicts`` (numpy, global batch first).
      steps_per_epoch: number of batches ``train_batches`` yields per epoch.
      evaluate: ``state -> {name: float}`` validation metrics, including ``monitor``.
      monitor: validation metric for the best checkpoint and the learning-rate decay.
      mode: ``"max"`` or ``"min"`` (whether a larger ``monitor`` is better).
      fingerprint: architecture fields stored with and checked against checkpoints.
    """

    name: str
    init_state: Callable[[], Any]
    train_step: Callable[[Any, Mapping[str, jax.Array], jax.Array, jax.Array], tuple[Any, dict]]
    train_batches: Callable[[int], Iterable[Mapping[str, np.ndarray]]]
    steps_per_epoch: int
    evaluate: Callable[[Any], Mapping[str, float]]
    monitor: str
    mode: str
    fingerprint: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class FitOptions:
    """Loop settings (not part of the fingerprint: changing them does not invalidate a checkpoint)."""

    epochs: int
    seed: int = 0
    base_lr: float = 1e-4
    lr_factor: float = 0.3
    lr_patience: int = 4
    min_lr: float = 1e-5
    lr_schedule: str = "plateau"  # "plateau" | "cosine" (cosine decay times the plateau scale)
    checkpoint_every_steps: int = 0  # 0: only at the end of each epoch
    progress: bool = True
    max_steps: int | None = None  # stop after this many global steps (tests / debugging)

    def __post_init__(self) -> None:
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")

    @classmethod
    def from_config(cls, section: Any, seed: int, **overrides: Any) -> "FitOptions":
        """Read ``epochs``, ``lr`` and the optional loop fields of a config section."""
        get = section.get if hasattr(section, "get") else lambda k, d=None: getattr(section, k, d)
        kwargs = dict(
            epochs=int(get("epochs")), seed=int(seed), base_lr=float(get("lr", 1e-4)),
            lr_factor=float(get("lr_factor", 0.3)), lr_patience=int(get("lr_patience", 4)),
            min_lr=float(get("min_lr", 1e-5)), lr_schedule=str(get("lr_schedule", "plateau")),
            checkpoint_every_steps=int(get("checkpoint_every_steps", 0) or 0),
            progress=bool(get("progress", True)))
        kwargs.update(overrides)
        return cls(**kwargs)


@dataclasses.dataclass
class FitResult:
    state: Any
    history: list[dict[str, Any]]
    best_value: float | None
    best_epoch: int | None
    stopped_early: bool = False


# ----------------------------------------------------------------------------- helpers

def default_mesh(devices: list | None = None) -> Mesh:
    """A 1-D mesh over ``devices`` (default: all) with axis ``'data'``."""
    try:
        from advpath_jax.parallel import data_mesh
    except ImportError:
        devices = jax.devices() if devices is None else devices
        return Mesh(np.asarray(devices), ("data",))
    return data_mesh(devices)


def apply_gradients(tx: optax.GradientTransformation, grads: Any, opt_state: Any, params: Any,
                    lr_scale: jax.Array) -> tuple[Any, Any]:
    """One optimizer update with the trainer's learning-rate scale.

    ``tx`` should end with the base learning rate (e.g. ``optax.adam(lr)``); the updates
    are multiplied by ``lr_scale``, which for Adam/SGD equals training at ``lr * lr_scale``.
    Returns ``(new_params, new_opt_state)``.
    """
    updates, opt_state = tx.update(grads, opt_state, params)
    updates = jax.tree.map(lambda u: (u * lr_scale).astype(u.dtype), updates)
    return optax.apply_updates(params, updates), opt_state


def param_state(graphdef: Any, state: Any) -> Any:
    """The ``nnx.Param`` part of a model state (what optimizers update)."""
    return nnx.state(nnx.merge(graphdef, state, copy=True), nnx.Param)


def replace_params(graphdef: Any, state: Any, params: Any) -> Any:
    """``state`` with its ``nnx.Param`` entries replaced by ``params``."""
    model = nnx.merge(graphdef, state, copy=True)
    nnx.update(model, params)
    return nnx.state(model)


def value_and_grad_models(loss_fn: Callable[[dict[str, nnx.Module]], tuple[jax.Array, Any]],
                          graphdefs: Mapping[str, Any], states: Mapping[str, Any],
                          wrt: Iterable[str]) -> tuple[jax.Array, Any, dict[str, Any], dict[str, Any]]:
    """Differentiate a loss of several NNX models with respect to some of them.

    Args:
      loss_fn: ``models -> (loss, aux)`` where ``models`` maps names to modules rebuilt
        from ``graphdefs``/``states`` (modules may update BatchNorm statistics, dropout
        RNG counts, ... while the loss runs).
      graphdefs, states: ``{name: GraphDef}``, ``{name: nnx.State}``; the train/eval mode
        of each model is the one its graphdef was split in.
      wrt: names of the models whose ``nnx.Param`` entries get gradients; the others
        are constants (a frozen classifier, the discriminators during a G step, ...).

    Returns ``(loss, aux, grads, new_states)``: ``grads[name]`` has the structure of the
    model's ``nnx.Param`` state, ``new_states[name]`` is the full state after the call
    (updated statistics, parameters unchanged).
    """
    wrt = list(wrt)
    unknown = [n for n in wrt if n not in states]
    if unknown:
        raise ValueError(f"cannot differentiate unknown models {unknown}; known: {sorted(states)}")
    gds, params, rests = {}, {}, {}
    for name in states:
        gds[name], params[name], rests[name] = nnx.split(nnx.merge(graphdefs[name], states[name], copy=True), nnx.Param, ...)

    def inner(p_wrt, p_const, rest):
        merged = {**p_wrt, **p_const}
        models = {n: nnx.merge(gds[n], merged[n], rest[n], copy=True) for n in states}
        loss, aux = loss_fn(models)
        return loss, (aux, {n: nnx.state(m) for n, m in models.items()})

    p_const = {n: jax.lax.stop_gradient(params[n]) for n in states if n not in wrt}
    (loss, (aux, new_states)), grads = jax.value_and_grad(inner, has_aux=True)(
        {n: params[n] for n in wrt}, p_const, rests)
    return loss, aux, grads, new_states


def plateau_update(scale: float, best: float | None, bad_epochs: int, value: float, *,
                   mode: str, factor: float, patience: int, min_scale: float
                   ) -> tuple[float, float, int]:
    """ReduceLROnPlateau on epoch values: returns ``(scale, best, bad_epochs)``.

    An epoch improves when ``value`` beats ``best`` (strictly). After ``patience``
    epochs in a row without improvement the scale is multiplied by ``factor`` (never
    below ``min_scale``) and the counter restarts.
    """
    improved = best is None or (value > best if mode == "max" else value < best)
    if improved:
        return scale, value, 0
    bad_epochs += 1
    if bad_epochs >= patience:
        return max(scale * factor, min_scale), best, 0
    return scale, best, bad_epochs


LR_SCHEDULES = ("plateau", "cosine")


def schedule_factor(schedule: str, step: int, total_steps: int, min_factor: float = 0.0) -> float:
    """Learning-rate factor of global ``step`` (0-based) in a run of ``total_steps`` steps.

    ``"plateau"``: 1 (only the plateau decay acts). ``"cosine"``:
    ``max(min_factor, (1 + cos(pi * step / total_steps)) / 2)``, from 1 down to about 0.
    """
    if schedule == "plateau":
        return 1.0
    if schedule == "cosine":
        t = min(max(step, 0), total_steps) / max(total_steps, 1)
        return max(min_factor, 0.5 * (1.0 + math.cos(math.pi * t)))
    raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {schedule!r}")


def step_key(seed: int, epoch: int, index: int) -> jax.Array:
    """The PRNG key of step ``index`` of ``epoch`` (independent of resumes and devices)."""
    return jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), epoch), index)


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    """Numpy generator for the data order of ``epoch``."""
    return np.random.default_rng([int(seed), int(epoch), 7919])


def all_finite(tree: Any) -> bool:
    leaves = [x for x in jax.tree.leaves(tree)
              if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.inexact)]
    if not leaves:
        return True
    return bool(jax.device_get(jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))))


def _read_history(path: str) -> list[dict[str, Any]]:
    if not os.path.exists(path):
        return []
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _write_history(path: str, history: list[dict[str, Any]]) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as fh:
        for row in history:
            fh.write(json.dumps(row, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _mean_metrics(sums: dict[str, float], n: int) -> dict[str, float]:
    return {f"train_{k}": v / max(n, 1) for k, v in sums.items()}


# ----------------------------------------------------------------------------- the loop

def fit(task: Task, workdir: str, options: FitOptions, *, mesh: Mesh | None = None) -> FitResult:
    """Train ``task`` in ``workdir`` (resuming from its latest checkpoint if there is one).

    Returns the final state and the per-epoch history. Raises
    :class:`NonFiniteLossError` when the loss or the parameters stop being finite, and
    ``ValueError`` when ``workdir`` holds a checkpoint from another configuration.
    """
    if task.mode not in ("max", "min"):
        raise ValueError(f"task.mode must be 'max' or 'min', got {task.mode!r}")
    if task.steps_per_epoch < 1:
        raise ValueError(f"{task.name}: no training step per epoch (too few training images for the batch size)")
    os.makedirs(workdir, exist_ok=True)
    mesh = default_mesh() if mesh is None else mesh
    replicated = NamedSharding(mesh, P())
    batch_sharding = NamedSharding(mesh, P("data"))
    store = CheckpointStore(workdir, task.fingerprint)
    metrics_path = os.path.join(workdir, METRICS_FILE)

    state = jax.device_put(task.init_state(), replicated)
    meta: dict[str, Any] = {"epoch": 0, "batch": 0, "global_step": 0, "lr_scale": 1.0,
                            "plateau_best": None, "bad_epochs": 0,
                            "best_value": None, "best_epoch": None}
    restored = store.restore("latest", state)
    if restored is not None:
        state, saved = restored
        meta.update({k: saved[k] for k in meta if k in saved})
        print(f"[{task.name}] resuming from {store.directory('latest')} "
              f"(epoch {meta['epoch']}, batch {meta['batch']}, step {meta['global_step']})")
    history = [row for row in _read_history(metrics_path) if row.get("epoch", 0) <= meta["epoch"]]
    _write_history(metrics_path, history)

    step_fn = jax.jit(task.train_step, donate_argnums=(0,),
                      in_shardings=(replicated, batch_sharding, replicated, replicated),
                      out_shardings=(replicated, replicated))
    min_scale = options.min_lr / options.base_lr if options.base_lr > 0 else 0.0
    total_steps = options.epochs * task.steps_per_epoch
    n_dev = mesh.devices.size

    def save(kind: str, current_state: Any) -> None:
        if not all_finite(current_state):
            raise NonFiniteLossError(
                f"[{task.name}] parameters became non-finite at step {meta['global_step']}; "
                f"not saved. Last good checkpoint: {_last_good(store)}")
        store.save(kind, meta["global_step"], current_state, meta)

    stopped = False
    try:
        for epoch in range(meta["epoch"], options.epochs):
            skip = meta["batch"]
            sums: dict[str, float] = dict(meta.get("partial_sums") or {}) if skip else {}
            t0 = time.time()
            bar = tqdm(total=task.steps_per_epoch, initial=skip, disable=not options.progress,
                       desc=f"{task.name} {epoch + 1}/{options.epochs}", leave=False, dynamic_ncols=True)
            for index, batch in enumerate(task.train_batches(epoch)):
                if index >= task.steps_per_epoch:
                    break
                if index < skip:
                    continue
                lead = next(iter(jax.tree.leaves(batch))).shape[0]
                if lead % n_dev:
                    raise ValueError(f"{task.name}: global batch {lead} is not a multiple of the {n_dev} devices")
                batch = jax.device_put(dict(batch), batch_sharding)
                lr_scale = jnp.float32(meta["lr_scale"] * schedule_factor(
                    options.lr_schedule, meta["global_step"], total_steps, min_scale))
                state, metrics = step_fn(state, batch, step_key(options.seed, epoch, index), lr_scale)
                metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
                if not math.isfinite(metrics["loss"]):
                    bar.close()
                    raise NonFiniteLossError(
                        f"[{task.name}] loss is {metrics['loss']} at epoch {epoch + 1}, batch {index}; "
                        f"training stopped. Last good checkpoint: {_last_good(store)}")
                for k, v in metrics.items():
                    sums[k] = sums.get(k, 0.0) + v
                meta["global_step"] += 1
                meta["batch"] = index + 1
                bar.update(1)
                bar.set_postfix(loss=f"{metrics['loss']:.4f}")
                if (options.checkpoint_every_steps and meta["global_step"] % options.checkpoint_every_steps == 0
                        and index + 1 < task.steps_per_epoch):
                    meta["partial_sums"] = sums
                    save("latest", state)
                if options.max_steps is not None and meta["global_step"] >= options.max_steps:
                    stopped = True
                    break
            bar.close()
            if stopped and meta["batch"] < task.steps_per_epoch:
                meta["partial_sums"] = sums
                save("latest", state)
                break
            n_steps = meta["batch"]
            val = {f"val_{k}": float(v) for k, v in task.evaluate(state).items()}
            value = val[f"val_{task.monitor}"]
            if not math.isfinite(value):
                raise NonFiniteLossError(
                    f"[{task.name}] validation {task.monitor} is {value} after epoch {epoch + 1}; "
                    f"training stopped. Last good checkpoint: {_last_good(store)}")
            better = meta["best_value"] is None or (
                value > meta["best_value"] if task.mode == "max" else value < meta["best_value"])
            row = {"epoch": epoch + 1, "step": meta["global_step"],
                   "lr": options.base_lr * meta["lr_scale"] * schedule_factor(
                       options.lr_schedule, meta["global_step"] - 1, total_steps, min_scale),
                   "time_s": round(time.time() - t0, 3),
                   **_mean_metrics(sums, n_steps), **val, "best": bool(better)}
            meta["lr_scale"], meta["plateau_best"], meta["bad_epochs"] = plateau_update(
                meta["lr_scale"], meta["plateau_best"], meta["bad_epochs"], value, mode=task.mode,
                factor=options.lr_factor, patience=options.lr_patience, min_scale=min_scale)
            meta.update(epoch=epoch + 1, batch=0, partial_sums=None)
            if better:
                meta["best_value"], meta["best_epoch"] = value, epoch + 1
                save("best", state)
            save("latest", state)
            history.append(row)
            _write_history(metrics_path, history)
            if options.progress:
                shown = ", ".join(f"{k}={v:.4g}" for k, v in row.items()
                                  if isinstance(v, float) and k not in ("time_s",))
                print(f"[{task.name}] epoch {epoch + 1}/{options.epochs}: {shown}{' *' if better else ''}")
            if stopped:
                break
    finally:
        store.close()
    return FitResult(state=state, history=history, best_value=meta["best_value"],
                     best_epoch=meta["best_epoch"], stopped_early=stopped)


def _last_good(store: CheckpointStore) -> str:
    step = store.latest_step("latest")
    if step is None:
        return "none (no checkpoint was written yet)"
    return f"{os.path.join(store.directory('latest'), str(step))}"


def save_run_config(workdir: str, config: Any, name: str = "config.json") -> str:
    """Store the config used for a run as JSON in ``workdir`` (atomically); returns the path."""
    os.makedirs(workdir, exist_ok=True)
    data = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    path = os.path.join(workdir, name)
    write_json_atomic(path, json.loads(json.dumps(data, default=str)))
    return path
