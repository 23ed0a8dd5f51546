"""A tiny deterministic regression task for the trainer tests (no image models)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from advpath_jax.data.sampler import shuffled_batches
from advpath_jax.training.schedules import LearningRate, make_optimizer
from advpath_jax.training.trainer import Task, apply_gradients, param_state, replace_params, value_and_grad_models

N, D, BATCH = 64, 6, 8


def toy_data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, D)).astype(np.float32)
    w = rng.normal(size=(D, 1)).astype(np.float32)
    y = (x @ w + 0.1 * rng.normal(size=(N, 1))).astype(np.float32)
    return x, y


class Toy(nnx.Module):
    def __init__(self, hidden, rngs):
        self.l1 = nnx.Linear(D, hidden, rngs=rngs)
        self.bn = nnx.BatchNorm(hidden, rngs=rngs)
        self.drop = nnx.Dropout(0.1, rngs=rngs)
        self.l2 = nnx.Linear(hidden, 1, rngs=rngs)

    def __call__(self, x):
        return self.l2(self.drop(jax.nn.relu(self.bn(self.l1(x)))))


def toy_task(hidden=8, lr=0.05, poison_after=None, seed=0, optimizer="adam", schedule="plateau", epochs=3,
             lr_patience=4, script=None, decay_script=None, min_lr=1e-5):
    """``poison_after``: from that global step on, the loss becomes NaN.

    ``optimizer="sgd"`` (momentum 0.9) for comparisons across device counts: Adam turns
    rounding-level gradient differences of near-zero gradients into full-size steps.
    ``schedule``, ``epochs``: the learning-rate schedule and the run length it spans.
    ``script``: validation values by epoch (``script[e]`` after epoch e + 1) instead of the real MSE.
    ``decay_script``: values of a second metric, ``decay``, that the plateau decay follows
    (``Task.schedule_monitor``); the checkpoint choice still follows ``mse``.
    ``min_lr``: the floor of the recipe (``LearningRate.min_lr``).
    """
    x, y = toy_data()
    model0 = Toy(hidden, nnx.Rngs(seed))
    model0.train()
    graphdef, _ = nnx.split(model0)
    model0.eval()
    eval_graphdef, _ = nnx.split(model0)
    settings = LearningRate(lr=lr, schedule=schedule, patience=lr_patience, min_lr=min_lr)
    total = epochs * (N // BATCH)
    tx = (make_optimizer(settings, total) if optimizer == "adam"
          else make_optimizer(settings, total, optimizer=optax.sgd, momentum=0.9))

    def init_state():
        model = Toy(hidden, nnx.Rngs(seed))
        return {"models": {"toy": nnx.state(model)},
                "opt": {"toy": tx.init(nnx.state(model, nnx.Param))},
                "step": jnp.zeros((), jnp.int32)}

    def train_step(state, batch, key):
        def loss_fn(models):
            noise = 0.01 * jax.random.normal(key, batch["x"].shape)
            loss = jnp.mean((models["toy"](batch["x"] + noise) - batch["y"]) ** 2)
            if poison_after is not None:
                loss = loss + jnp.where(state["step"] >= poison_after, jnp.nan, 0.0)
            return loss, {}

        loss, _, grads, new = value_and_grad_models(loss_fn, {"toy": graphdef}, state["models"], ["toy"])
        params = param_state(graphdef, new["toy"])
        params, opt = apply_gradients(tx, grads["toy"], state["opt"]["toy"], params)
        return ({"models": {"toy": replace_params(graphdef, new["toy"], params)}, "opt": {"toy": opt},
                 "step": state["step"] + 1}, {"loss": loss})

    def train_batches(epoch):
        for idx in shuffled_batches(N, BATCH, N // BATCH, seed=seed, epoch=epoch):
            yield {"x": x[idx], "y": y[idx]}

    def evaluate(state):
        epoch = int(state["step"]) // (N // BATCH) - 1
        if script is not None:
            return {"mse": float(script[epoch]),
                    **({"decay": float(decay_script[epoch])} if decay_script is not None else {})}
        model = nnx.merge(eval_graphdef, state["models"]["toy"])
        return {"mse": float(jnp.mean((model(x) - y) ** 2))}

    return Task(name="toy", init_state=init_state, train_step=train_step,
                train_batches=train_batches, steps_per_epoch=N // BATCH, evaluate=evaluate,
                monitor="mse", mode="min", fingerprint={"hidden": hidden}, learning_rate=settings,
                schedule_monitor=None if decay_script is None else "decay")
