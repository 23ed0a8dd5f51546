"""The one training loop of the project, shared by every model kind.

A model kind (classifier, CyCE, SyCE, SAGen, MGen, translator) describes itself as a
:class:`Task`; :func:`fit` does the rest:

* a jitted data-parallel train step: the batch is sharded over the ``'data'`` axis of
  a device mesh, the state replicated, and the state argument donated;
* epochs with a tqdm progress bar, the step's scalars averaged per epoch;
* validation after every epoch; ``metrics.jsonl`` in the work directory, one JSON
  object per epoch;
* checkpoints through :class:`advpath_jax.store.checkpoint.CheckpointStore`: the
  latest (every epoch, and every ``checkpoint_every_steps`` steps if set) and the best
  by the task's monitored validation metric;
* resume: a work directory that already holds a ``latest`` checkpoint continues from
  it (same data order and random keys as an uninterrupted run);
* early stopping (``early_stop_patience`` > 0): training ends once that many epochs in
  a row brought no better monitored value; ``epochs`` is then the maximum, and a rerun
  in the same directory trains no further;
* a spent learning rate (``stop_below_min_lr``, on by default): training ends once the
  rate of the last update times the plateau scale has fallen below ``min_lr``. Neither the
  cosine decay nor the plateau scale ever rises again, so every later epoch would train
  below the rate the config names as the least worth training at; a rerun trains no further;
* a non-finite loss (or non-finite parameters) stops training with
  :class:`NonFiniteLossError` before anything is saved, so the last good checkpoint
  stays intact;
* learning rates are optax state: every optimizer of a task comes from
  :func:`advpath_jax.training.schedules.make_optimizer` (constant or cosine rate, times a
  reduce-on-plateau scale), and after each validation the trainer feeds the monitored
  value to the plateau state (factor 0.3, patience 4, floor ``min_lr`` by default). The
  logged ``lr`` is that of the epoch's last step;
* determinism: the batch order of epoch ``e`` and the key of step ``i`` derive only
  from ``(seed, e, i)`` (:mod:`advpath_jax.data.sampler`, :func:`step_key`).

Writing a task
--------------
``init_state()`` returns the state pytree ``{"models": {name: nnx.State},
"opt": {name: optax state}}`` (more top-level keys are allowed and are checkpointed
with it); the optax states come from ``make_optimizer(task.learning_rate, ...)``.
``train_step(state, batch, key) -> (state, metrics)`` is a pure, jittable function;
``metrics`` is a dict of scalar arrays that must contain ``"loss"``.
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

from advpath_jax.errors import AdvpathError
from advpath_jax.io_utils import write_bytes_atomic, write_json_atomic
from advpath_jax.parallel import data_mesh
from advpath_jax.store.checkpoint import CheckpointStore
from advpath_jax.training.schedules import LearningRate, last_learning_rate, observe_validation

METRICS_FILE = "metrics.jsonl"
# Written into every checkpoint's metadata: the learning-rate schedule lives in the
# optimizer state. Checkpoints without it (older versions kept a scale in the metadata)
# cannot be resumed.
SCHEDULE_STATE = "optax-v1"


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN/inf loss or parameters; the last good checkpoint is kept."""


@dataclasses.dataclass
class Task:
    """A trainable model kind, as :func:`fit` sees it.

    Attributes:
      name: short name used in progress bars and messages (``"classifier"``, ``"cyce"``).
      init_state: ``() -> state`` (``{"models": {...}, "opt": {...}}``, arrays only).
      train_step: pure ``(state, batch, key) -> (state, metrics)``.
      train_batches: ``epoch -> iterable of batch dicts`` (numpy, global batch first).
      steps_per_epoch: number of batches ``train_batches`` yields per epoch.
      evaluate: ``state -> {name: float}`` validation metrics, including ``monitor``.
      monitor: validation metric for the best checkpoint, early stopping and the plateau decay.
      mode: ``"max"`` or ``"min"`` (whether a larger ``monitor`` is better).
      fingerprint: architecture fields stored with and checked against checkpoints.
      learning_rate: the recipe the task's optimizers were made from (its plateau
        settings are applied by the trainer after each validation).
      schedule_monitor: the validation metric the plateau decay follows instead of
        ``monitor`` (same ``mode``); None: ``monitor``.
    """

    name: str
    init_state: Callable[[], Any]
    train_step: Callable[[Any, Mapping[str, jax.Array], jax.Array], tuple[Any, dict]]
    train_batches: Callable[[int], Iterable[Mapping[str, np.ndarray]]]
    steps_per_epoch: int
    evaluate: Callable[[Any], Mapping[str, float]]
    monitor: str
    mode: str
    fingerprint: Mapping[str, Any]
    learning_rate: LearningRate
    schedule_monitor: str | None = None


@dataclasses.dataclass(frozen=True)
class FitOptions:
    """Loop settings (not part of the fingerprint: changing them does not invalidate a checkpoint)."""

    epochs: int  # the maximum when early stopping is on
    seed: int = 0
    early_stop_patience: int = 0  # 0: off; else stop after this many epochs without a better monitored value
    stop_below_min_lr: bool = True  # stop once the learning rate has fallen below the section's min_lr
    checkpoint_every_steps: int = 0  # 0: only at the end of each epoch
    progress: bool = True
    max_steps: int | None = None  # stop after this many global steps (tests / debugging)

    def __post_init__(self) -> None:
        if self.early_stop_patience < 0:
            raise AdvpathError(f"early_stop_patience must be >= 0 (0: off), got {self.early_stop_patience}")

    @classmethod
    def from_config(cls, section: Any, seed: int, **overrides: Any) -> "FitOptions":
        """Read ``epochs`` and the optional loop fields of a config section."""
        get = section.get if hasattr(section, "get") else lambda k, d=None: getattr(section, k, d)
        kwargs = dict(epochs=int(get("epochs")), seed=int(seed),
                      early_stop_patience=int(get("early_stop_patience", 0) or 0),
                      stop_below_min_lr=bool(get("stop_below_min_lr", True)),
                      checkpoint_every_steps=int(get("checkpoint_every_steps", 0) or 0),
                      progress=bool(get("progress", True)))
        kwargs.update(overrides)
        return cls(**kwargs)


@dataclasses.dataclass
class FitResult:
    """What :func:`fit` ends with.

    ``stopped_early``: ``max_steps`` interrupted training (the run is not finished);
    ``early_stop_epoch``: the last epoch trained when early stopping or a spent learning rate
    ended the run (None otherwise).
    """

    state: Any
    history: list[dict[str, Any]]
    best_value: float | None
    best_epoch: int | None
    stopped_early: bool = False
    early_stop_epoch: int | None = None


# ----------------------------------------------------------------------------- helpers for tasks

def default_mesh(devices: list | None = None) -> Mesh:
    """A 1-D mesh over ``devices`` (default: all local devices) with axis ``'data'``."""
    return data_mesh(devices)


def apply_gradients(tx: optax.GradientTransformation, grads: Any, opt_state: Any, params: Any
                    ) -> tuple[Any, Any]:
    """One optimizer update; returns ``(new_params, new_opt_state)``."""
    updates, opt_state = tx.update(grads, opt_state, params)
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


def step_key(seed: int, epoch: int, index: int) -> jax.Array:
    """The PRNG key of step ``index`` of ``epoch`` (independent of resumes and devices)."""
    return jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), epoch), index)


@jax.jit
def _all_finite_program(leaves: list[jax.Array]) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def all_finite(tree: Any) -> bool:
    """Whether every float leaf of ``tree`` is finite (one compiled reduction, not one op per leaf)."""
    leaves = [x for x in jax.tree.leaves(tree)
              if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.inexact)]
    if not leaves:
        return True
    return bool(jax.device_get(_all_finite_program(leaves)))


def is_better(value: float, best: float | None, mode: str) -> bool:
    """Whether ``value`` strictly beats ``best`` (None: nothing to beat) in ``mode`` ``"max"``/``"min"``."""
    return best is None or (value > best if mode == "max" else value < best)


def patience_spent(epoch: int, best_epoch: int | None, patience: int) -> bool:
    """Early stopping: ``patience`` (> 0) epochs since the best one (``epoch`` = last completed)."""
    return patience > 0 and best_epoch is not None and epoch - best_epoch >= patience


def _read_history(path: str) -> list[dict[str, Any]]:
    if not os.path.exists(path):
        return []
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _write_history(path: str, history: list[dict[str, Any]]) -> None:
    text = "".join(json.dumps(row, sort_keys=True) + "\n" for row in history)
    write_bytes_atomic(path, text.encode("utf-8"))


def _mean_metrics(sums: dict[str, float], n: int) -> dict[str, float]:
    return {f"train_{k}": v / max(n, 1) for k, v in sums.items()}


# ----------------------------------------------------------------------------- the loop

@dataclasses.dataclass
class _Loop:
    """What one call of :func:`fit` works with; ``meta`` is checkpointed with the state."""

    task: Task
    options: FitOptions
    store: CheckpointStore
    replicated: NamedSharding
    batch_sharding: NamedSharding
    n_devices: int
    step_fn: Callable
    metrics_path: str
    meta: dict[str, Any]
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    interrupted: bool = False  # max_steps reached
    early_stop_epoch: int | None = None


def fit(task: Task, workdir: str, options: FitOptions, *, mesh: Mesh | None = None) -> FitResult:
    """Train ``task`` in ``workdir`` (resuming from its latest checkpoint if there is one).

    Returns the final state and the per-epoch history. Raises
    :class:`NonFiniteLossError` when the loss or the parameters stop being finite,
    ``ValueError`` when ``workdir`` holds a checkpoint from another configuration and
    :class:`~advpath_jax.errors.AdvpathError` for one of an older format.
    """
    loop = _open_loop(task, workdir, options, default_mesh() if mesh is None else mesh)
    try:
        state = _resume(loop)
        for epoch in range(loop.meta["epoch"], options.epochs):
            if _early_stop(loop) or _rate_spent(loop, state):
                break
            started = time.time()
            state, sums = _run_epoch(loop, state, epoch)
            if loop.interrupted and loop.meta["batch"] < task.steps_per_epoch:
                break  # max_steps inside the epoch: saved, not validated
            state = _validate_and_checkpoint(loop, state, epoch, sums, started)
            if loop.interrupted:
                break
    finally:
        loop.store.close()
    return FitResult(state=state, history=loop.history, best_value=loop.meta["best_value"],
                     best_epoch=loop.meta["best_epoch"], stopped_early=loop.interrupted,
                     early_stop_epoch=loop.early_stop_epoch)


def _open_loop(task: Task, workdir: str, options: FitOptions, mesh: Mesh) -> _Loop:
    """Check the task, create ``workdir``, wrap the step in ``jax.jit`` (compiled at its first call)."""
    if task.mode not in ("max", "min"):
        raise ValueError(f"task.mode must be 'max' or 'min', got {task.mode!r}")
    if task.steps_per_epoch < 1:
        raise ValueError(f"{task.name}: no training step per epoch (too few training images for the batch size)")
    os.makedirs(workdir, exist_ok=True)
    replicated, batch_sharding = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    step_fn = jax.jit(task.train_step, donate_argnums=(0,),
                      in_shardings=(replicated, batch_sharding, replicated),
                      out_shardings=(replicated, replicated))
    meta = {"epoch": 0, "batch": 0, "global_step": 0, "best_value": None, "best_epoch": None,
            "partial_sums": None, "schedule_state": SCHEDULE_STATE}
    return _Loop(task=task, options=options, store=CheckpointStore(workdir, task.fingerprint),
                 replicated=replicated, batch_sharding=batch_sharding, n_devices=mesh.devices.size,
                 step_fn=step_fn, metrics_path=os.path.join(workdir, METRICS_FILE), meta=meta)


def _resume(loop: _Loop) -> Any:
    """The initial state, or the latest checkpoint's (its bookkeeping into ``loop.meta``);
    the history is cut back to the checkpoint's epoch."""
    state = jax.device_put(loop.task.init_state(), loop.replicated)
    saved_meta = loop.store.read_meta("latest")
    if saved_meta is not None:
        _check_schedule_state(loop.store, saved_meta)
        state, saved = loop.store.restore("latest", state)
        loop.meta.update({k: saved[k] for k in loop.meta if k in saved})
        print(f"[{loop.task.name}] resuming from {loop.store.directory('latest')} (epoch {loop.meta['epoch']}, "
              f"batch {loop.meta['batch']}, step {loop.meta['global_step']})")
    loop.history = [row for row in _read_history(loop.metrics_path) if row.get("epoch", 0) <= loop.meta["epoch"]]
    _write_history(loop.metrics_path, loop.history)
    return state


def _check_schedule_state(store: CheckpointStore, meta: Mapping[str, Any]) -> None:
    if meta.get("schedule_state") != SCHEDULE_STATE:
        where = os.path.join(store.directory("latest"), str(meta.get("step")))
        raise AdvpathError(
            f"checkpoint {where} was written by an older advpath_jax (its learning-rate schedule lived "
            f"outside the optimizer state) and cannot be resumed; delete {store.directory('latest')} "
            f"to train afresh, or use another --workdir")


def _early_stop(loop: _Loop) -> bool:
    """True (and said once) when the early-stopping patience is spent."""
    meta, patience = loop.meta, loop.options.early_stop_patience
    if not patience_spent(meta["epoch"], meta["best_epoch"], patience):
        return False
    loop.early_stop_epoch = meta["epoch"]
    print(f"[{loop.task.name}] early stop after epoch {meta['epoch']}: no better val_{loop.task.monitor} in "
          f"{patience} epochs (best {meta['best_value']:.4g} at epoch {meta['best_epoch']})")
    return True


_FLOAT32_ROUNDING = 1e-5


def _rate_spent(loop: _Loop, state: Any) -> bool:
    """True (and said once) when ``stop_below_min_lr`` is on and every later update would run
    below ``min_lr``: the last update's rate times the current plateau scale is under it and
    the warm-up (the only rising part of a schedule) is over."""
    settings, meta = loop.task.learning_rate, loop.meta
    if not loop.options.stop_below_min_lr or meta["epoch"] == 0 or meta["global_step"] < settings.warmup_steps:
        return False
    rate = last_learning_rate(state["opt"])
    if rate >= settings.min_lr * (1 - _FLOAT32_ROUNDING):  # at the plateau floor, lr x (min_lr / lr) in float32
        return False
    loop.early_stop_epoch = meta["epoch"]
    print(f"[{loop.task.name}] stop after epoch {meta['epoch']}: the learning rate {rate:.3g} is below "
          f"min_lr {settings.min_lr:.3g} and would stay below it in every later epoch "
          f"(best {meta['best_value']:.4g} at epoch {meta['best_epoch']})")
    return True


def _run_epoch(loop: _Loop, state: Any, epoch: int) -> tuple[Any, dict[str, float]]:
    """Train the rest of ``epoch`` (from ``meta["batch"]``); returns the state and the summed step scalars.

    Saves ``latest`` every ``checkpoint_every_steps`` steps and when ``max_steps`` ends
    training inside the epoch (``loop.interrupted``).
    """
    task, options, meta = loop.task, loop.options, loop.meta
    skip = meta["batch"]
    sums: dict[str, float] = dict(meta.get("partial_sums") or {}) if skip else {}
    bar = tqdm(total=task.steps_per_epoch, initial=skip, disable=not options.progress,
               desc=f"{task.name} {epoch + 1}/{options.epochs}", leave=False, dynamic_ncols=True)
    try:
        for index, batch in enumerate(task.train_batches(epoch)):
            if index >= task.steps_per_epoch:
                break
            if index < skip:
                continue
            state, metrics = _train_step(loop, state, batch, epoch, index)
            for k, v in metrics.items():
                sums[k] = sums.get(k, 0.0) + v
            meta["global_step"] += 1
            meta["batch"] = index + 1
            bar.update(1)
            bar.set_postfix(loss=f"{metrics['loss']:.4f}")
            inside = index + 1 < task.steps_per_epoch
            if options.checkpoint_every_steps and meta["global_step"] % options.checkpoint_every_steps == 0 and inside:
                _save(loop, "latest", state, partial_sums=sums)
            if options.max_steps is not None and meta["global_step"] >= options.max_steps:
                loop.interrupted = True
                if inside:
                    _save(loop, "latest", state, partial_sums=sums)
                break
    finally:
        bar.close()
    return state, sums


def _train_step(loop: _Loop, state: Any, batch: Mapping[str, np.ndarray], epoch: int, index: int
                ) -> tuple[Any, dict[str, float]]:
    """One sharded step; its scalars as floats. Raises :class:`NonFiniteLossError` on a NaN/inf loss."""
    lead = next(iter(jax.tree.leaves(batch))).shape[0]
    if lead % loop.n_devices:
        raise ValueError(f"{loop.task.name}: global batch {lead} is not a multiple of the {loop.n_devices} devices")
    batch = jax.device_put(dict(batch), loop.batch_sharding)
    state, metrics = loop.step_fn(state, batch, step_key(loop.options.seed, epoch, index))
    metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
    if not math.isfinite(metrics["loss"]):
        raise NonFiniteLossError(
            f"[{loop.task.name}] loss is {metrics['loss']} at epoch {epoch + 1}, batch {index}; "
            f"training stopped. Last good checkpoint: {_last_good(loop.store)}")
    return state, metrics


def _validate_and_checkpoint(loop: _Loop, state: Any, epoch: int, sums: dict[str, float],
                             started: float) -> Any:
    """Validate after ``epoch``, feed the plateau schedule, save ``best`` (if better) and
    ``latest``, append the epoch's row to ``metrics.jsonl``; returns the state."""
    task, meta = loop.task, loop.meta
    val = {f"val_{k}": float(v) for k, v in task.evaluate(state).items()}
    value = val[f"val_{task.monitor}"]
    if not math.isfinite(value):
        raise NonFiniteLossError(
            f"[{task.name}] validation {task.monitor} is {value} after epoch {epoch + 1}; "
            f"training stopped. Last good checkpoint: {_last_good(loop.store)}")
    better = is_better(value, meta["best_value"], task.mode)
    row = {"epoch": epoch + 1, "step": meta["global_step"], "lr": last_learning_rate(state["opt"]),
           "time_s": round(time.time() - started, 3), **_mean_metrics(sums, meta["batch"]), **val,
           "best": bool(better)}
    decay_value = value if task.schedule_monitor is None else val[f"val_{task.schedule_monitor}"]
    opt = observe_validation(state["opt"], decay_value, task.learning_rate, mode=task.mode)
    state = {**state, "opt": jax.device_put(opt, loop.replicated)}
    meta.update(epoch=epoch + 1, batch=0, partial_sums=None)
    if better:
        meta["best_value"], meta["best_epoch"] = value, epoch + 1
        _save(loop, "best", state)
    _save(loop, "latest", state)
    loop.history.append(row)
    _write_history(loop.metrics_path, loop.history)
    if loop.options.progress:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in row.items() if isinstance(v, float) and k != "time_s")
        print(f"[{task.name}] epoch {epoch + 1}/{loop.options.epochs}: {shown}{' *' if better else ''}")
    return state


def _save(loop: _Loop, kind: str, state: Any, *, partial_sums: dict[str, float] | None = None) -> None:
    """Checkpoint ``state`` with ``loop.meta`` (and the sums of a partial epoch); refuses non-finite parameters."""
    if partial_sums is not None:
        loop.meta["partial_sums"] = dict(partial_sums)
    if not all_finite(state):
        raise NonFiniteLossError(
            f"[{loop.task.name}] parameters became non-finite at step {loop.meta['global_step']}; "
            f"not saved. Last good checkpoint: {_last_good(loop.store)}")
    loop.store.save(kind, loop.meta["global_step"], state, loop.meta)


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
