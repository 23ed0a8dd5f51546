"""Learning-rate schedules as optax transformations, their state inside the optimizer state.

A config section's learning-rate recipe (:class:`LearningRate`) builds one optimizer per
model (:func:`make_optimizer`; Adam unless another optax optimizer is named)::

    optax.chain(
        optax.inject_hyperparams(optax.adam)(learning_rate=schedule),  # lr(step), recorded in the state
        plateau_scale(),                                               # x the plateau scale in the state
    )

* ``schedule``: ``"plateau"``: the constant ``lr``; ``"cosine"``:
  ``optax.cosine_decay_schedule(lr, total_steps)`` (``optax.warmup_cosine_decay_schedule``
  when ``lr_warmup_steps > 0``), never below ``min_lr``.
* the plateau scale: the state of ``optax.contrib.reduce_on_plateau`` (scale, best value,
  epochs without improvement). Train steps only apply its scale; the trainer feeds it the
  validation value once per epoch (:func:`observe_validation`): after ``lr_patience``
  epochs in a row without a strictly better value the scale is multiplied by
  ``lr_factor`` (never below ``min_lr / lr``). Both kinds decay on plateau.

Since both live in the optimizer state they are checkpointed (and resumed) with it.
Config fields (all optional): ``lr`` (1e-4), ``lr_schedule`` (``"plateau"``),
``lr_warmup_steps`` (0), ``min_lr`` (1e-5), ``lr_factor`` (0.3), ``lr_patience`` (4).
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from optax.contrib import ReduceLROnPlateauState, reduce_on_plateau

from advpath_jax.errors import AdvpathError

LR_SCHEDULES = ("plateau", "cosine")
MODES = ("min", "max")
# optax's plateau test is ``value < (1 - rtol) * best - atol`` and needs a tolerance > 0:
# the smallest normal float32 makes it "strictly better" for every value in range.
_STRICT_ATOL = float(np.finfo(np.float32).tiny)


@dataclasses.dataclass(frozen=True)
class LearningRate:
    """The learning-rate recipe of a config section (see the module docstring)."""

    lr: float = 1e-4
    schedule: str = "plateau"
    warmup_steps: int = 0
    min_lr: float = 1e-5
    factor: float = 0.3
    patience: int = 4

    def __post_init__(self) -> None:
        if self.schedule not in LR_SCHEDULES:
            raise AdvpathError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.schedule!r}")
        if not 0.0 < self.factor < 1.0:
            raise AdvpathError(f"lr_factor must lie in (0, 1), got {self.factor}")
        if self.patience < 1:
            raise AdvpathError(f"lr_patience must be >= 1 epoch, got {self.patience}")
        if self.warmup_steps < 0:
            raise AdvpathError(f"lr_warmup_steps must be >= 0, got {self.warmup_steps}")

    @classmethod
    def from_config(cls, section: Any) -> "LearningRate":
        """Read ``lr``, ``lr_schedule``, ``lr_warmup_steps``, ``min_lr``, ``lr_factor``, ``lr_patience``."""
        get = section.get if hasattr(section, "get") else lambda k, d=None: getattr(section, k, d)
        return cls(lr=float(get("lr", 1e-4)), schedule=str(get("lr_schedule", "plateau")),
                   warmup_steps=int(get("lr_warmup_steps", 0) or 0), min_lr=float(get("min_lr", 1e-5)),
                   factor=float(get("lr_factor", 0.3)), patience=int(get("lr_patience", 4)))

    @property
    def min_scale(self) -> float:
        """The floor of the plateau scale, ``min_lr / lr``."""
        return self.min_lr / self.lr if self.lr > 0 else 0.0


def learning_rate_schedule(settings: LearningRate, total_steps: int, updates_per_step: int = 1) -> optax.Schedule:
    """``count -> lr`` of the ``count``-th optimizer update (0-based).

    ``updates_per_step``: optimizer updates per training step (a critic updated
    ``n_critic`` times a step); the schedule advances once per training step.
    """
    total_steps = max(int(total_steps), 1)
    if settings.schedule == "plateau":
        constant = optax.constant_schedule(settings.lr)
        return lambda count: constant(count // updates_per_step)
    if settings.warmup_steps:
        cosine = optax.warmup_cosine_decay_schedule(0.0, settings.lr, settings.warmup_steps, total_steps)
    else:
        cosine = optax.cosine_decay_schedule(settings.lr, total_steps)
    return lambda count: jnp.maximum(cosine(count // updates_per_step), settings.min_lr)


def plateau_scale() -> optax.GradientTransformation:
    """Multiply updates by the scale of a ``reduce_on_plateau`` state (which it only reads).

    The state is ``optax.contrib.ReduceLROnPlateauState`` (scale 1 at the start); the
    trainer advances it with :func:`observe_validation`.
    """
    # The statistics' hyperparameters do not matter here: only ``init`` is used.
    plateau = reduce_on_plateau(factor=0.5, patience=1)

    def init(params):
        return plateau.init(params)

    def update(updates, state, params=None):
        del params
        return jax.tree.map(lambda u: (u * state.scale).astype(u.dtype), updates), state

    return optax.GradientTransformation(init, update)


def make_optimizer(settings: LearningRate, total_steps: int, *, updates_per_step: int = 1,
                   optimizer: Callable[..., optax.GradientTransformation] = optax.adam,
                   **constants: Any) -> optax.GradientTransformation:
    """``optimizer`` (Adam) at ``learning_rate_schedule(settings, total_steps)`` times the plateau scale.

    ``total_steps``: training steps of the whole run (the cosine decay's length);
    ``constants``: the optimizer's other arguments (``b1``, ``b2``; SGD's ``momentum``),
    kept as Python constants (only the learning rate is injected into the state).
    """
    schedule = learning_rate_schedule(settings, total_steps, updates_per_step)
    static = tuple(name for name in inspect.signature(optimizer).parameters if name != "learning_rate")
    inner = optax.inject_hyperparams(optimizer, static_args=static)(learning_rate=schedule, **constants)
    return optax.chain(inner, plateau_scale())


def _is_plateau(x: Any) -> bool:
    return isinstance(x, ReduceLROnPlateauState)


def plateau_states(opt_state: Any) -> list[ReduceLROnPlateauState]:
    """Every ``reduce_on_plateau`` state inside ``opt_state`` (any pytree of optimizer states)."""
    return [x for x in jax.tree.leaves(opt_state, is_leaf=_is_plateau) if _is_plateau(x)]


def observe_validation(opt_state: Any, value: float, settings: LearningRate, *, mode: str) -> Any:
    """``opt_state`` with each plateau state fed one epoch's validation ``value``.

    ``mode``: ``"min"`` (smaller is better) or ``"max"``. Raises ``ValueError`` when
    ``opt_state`` holds no plateau state (an optimizer not made by :func:`make_optimizer`).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not plateau_states(opt_state):
        raise ValueError("the optimizer state holds no reduce-on-plateau state; build optimizers "
                         "with advpath_jax.training.schedules.make_optimizer")
    plateau = reduce_on_plateau(factor=settings.factor, patience=settings.patience, rtol=0.0,
                                atol=_STRICT_ATOL, min_scale=settings.min_scale, accumulation_size=1)
    loss = float(value) if mode == "min" else -float(value)  # optax minimises
    advance = lambda s: plateau.update((), s, value=loss)[1] if _is_plateau(s) else s  # noqa: E731
    return jax.tree.map(advance, opt_state, is_leaf=_is_plateau)


def last_learning_rate(opt_state: Any) -> float:
    """The learning rate of the last update: the first optimizer's ``lr(step) x plateau scale``.

    (Every optimizer of a task follows the same recipe, so the first one speaks for all.)
    """
    injected = lambda x: isinstance(x, optax.InjectStatefulHyperparamsState)  # noqa: E731
    found = [x for x in jax.tree.leaves(opt_state, is_leaf=injected) if injected(x)]
    scales = plateau_states(opt_state)
    if not found or not scales:
        raise ValueError("the optimizer state holds no learning-rate schedule state")
    return float(found[0].hyperparams["learning_rate"]) * float(scales[0].scale)
