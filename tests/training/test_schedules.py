"""Learning-rate schedules as optax state: the rates the optimizer applies, against hand-computed ones."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advpath_jax.errors import AdvpathError
from advpath_jax.training.schedules import (LearningRate, last_learning_rate, learning_rate_schedule,
                                            make_optimizer, observe_validation, plateau_states)


def applied_rate(tx, state, params):
    """One update with a constant gradient 1: Adam's step is then lr (up to eps), so the step measures the rate."""
    grads = jax.tree.map(jnp.ones_like, params)
    updates, state = tx.update(grads, state, params)
    return -float(updates["w"][0]) * (1.0 + 1e-8), state


def test_plateau_rates_match_reduce_lr_on_plateau_by_hand():
    # The trainer's historical rule: strict improvement resets the count; 4 bad epochs -> x0.3, floor min_lr.
    settings = LearningRate(lr=1.0, factor=0.3, patience=4, min_lr=0.1)
    tx = make_optimizer(settings, total_steps=100)
    params = {"w": jnp.zeros(3)}
    state = tx.init(params)
    values = [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.96, 0.97, 0.98, 0.99, 0.5, 0.6, 0.6, 0.6, 0.6]
    # Epoch e trains at the rate fixed after the values of epochs < e.
    expected = [1, 1, 1, 1, 1, 1, 0.3, 0.3, 0.3, 0.3, 0.1, 0.1, 0.1, 0.1, 0.1]
    rates = []
    for v in values:
        for _ in range(2):  # two steps per epoch, both at the epoch's rate
            rate, state = applied_rate(tx, state, params)
        rates.append(round(rate, 4))
        state = observe_validation(state, v, settings, mode="min")
    assert rates == expected
    assert float(plateau_states(state)[0].scale) == pytest.approx(0.1)


def test_plateau_in_max_mode_follows_the_larger_is_better_values():
    settings = LearningRate(lr=1.0, factor=0.5, patience=2, min_lr=0.0)
    tx = make_optimizer(settings, total_steps=10)
    state = tx.init({"w": jnp.zeros(2)})
    scales = []
    for auc in [0.6, 0.7, 0.7, 0.65, 0.8, 0.8, 0.8, 0.79]:
        state = observe_validation(state, auc, settings, mode="max")
        scales.append(float(plateau_states(state)[0].scale))
    assert scales == [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25]


def test_cosine_rates_are_the_closed_form_with_the_floor():
    settings = LearningRate(lr=0.05, schedule="cosine", min_lr=0.001)
    tx = make_optimizer(settings, total_steps=8)
    params = {"w": jnp.zeros(1)}
    state = tx.init(params)
    for step in range(10):
        rate, state = applied_rate(tx, state, params)
        expected = max(0.001, 0.05 * 0.5 * (1 + math.cos(math.pi * min(step, 8) / 8)))
        assert rate == pytest.approx(expected, rel=1e-4), step  # Adam in float32: ~1e-5
        assert last_learning_rate(state) == pytest.approx(expected, rel=1e-5)  # float32 cosine


def test_cosine_times_plateau_scale():
    settings = LearningRate(lr=1.0, schedule="cosine", min_lr=0.0, factor=0.3, patience=1)
    tx = make_optimizer(settings, total_steps=4)
    params = {"w": jnp.zeros(1)}
    state = tx.init(params)
    _, state = applied_rate(tx, state, params)
    state = observe_validation(state, 1.0, settings, mode="min")
    state = observe_validation(state, 2.0, settings, mode="min")  # worse: x0.3
    rate, state = applied_rate(tx, state, params)
    assert rate == pytest.approx(0.3 * 0.5 * (1 + math.cos(math.pi / 4)), rel=1e-4)


def test_warmup_and_several_updates_per_step():
    settings = LearningRate(lr=1.0, schedule="cosine", warmup_steps=2, min_lr=0.01)
    fn = learning_rate_schedule(settings, total_steps=10)
    assert float(fn(0)) == pytest.approx(0.01)  # warmup from 0, floored at min_lr
    assert float(fn(1)) == pytest.approx(0.5)
    assert float(fn(2)) == pytest.approx(1.0)
    critic = learning_rate_schedule(LearningRate(lr=1.0, schedule="cosine", min_lr=0.0), 4, updates_per_step=3)
    second = 0.5 * (1 + math.cos(math.pi / 4))  # training step 1 of 4
    assert [float(critic(c)) for c in range(6)] == pytest.approx([1, 1, 1, second, second, second], rel=1e-6)


def test_bad_settings_are_refused_with_the_field_name():
    for kwargs, field in [({"schedule": "step"}, "lr_schedule"), ({"factor": 1.0}, "lr_factor"),
                          ({"patience": 0}, "lr_patience"), ({"warmup_steps": -1}, "lr_warmup_steps")]:
        with pytest.raises(AdvpathError, match=field):
            LearningRate(**kwargs)
    with pytest.raises(ValueError, match="no reduce-on-plateau state"):
        observe_validation({"opt": np.zeros(1)}, 1.0, LearningRate(), mode="min")


def test_from_config_reads_the_section():
    section = {"lr": 3e-3, "lr_schedule": "cosine", "lr_patience": 1, "epochs": 4}
    s = LearningRate.from_config(section)
    assert (s.lr, s.schedule, s.patience, s.factor, s.min_lr, s.warmup_steps) == (3e-3, "cosine", 1, 0.3, 1e-5, 0)
    assert s.min_scale == pytest.approx(1e-5 / 3e-3)
