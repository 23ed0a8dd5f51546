"""The authors' generator update scheme: one update of G0 and G1 per half, in sequence."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from advpath_jax.config_utils import load_config
from advpath_jax.generators.spec import build_generators, loss_weights
from advpath_jax.training.generator_losses import half_loss, syce_loss
from advpath_jax.training.generators import generator_train_step, generator_updates_per_step
from advpath_jax.training.trainer import param_state

SETTINGS = ["data.image_size=16", "generators.unet_base_channels=4", "generators.unet_depth=2",
            "generators.d_base_channels=4", "generators.d_layers=2", "generators.head_channels=(4, 4)"]


def _setup():
    config = load_config("synth_brain", SETTINGS)
    modules = build_generators(config, "syce")
    for m in modules.values():
        m.train()
    graphdefs = {n: nnx.split(m)[0] for n, m in modules.items()}
    states = {n: nnx.state(m) for n, m in modules.items()}
    rng = np.random.default_rng(0)
    x0 = jnp.asarray(rng.uniform(size=(3, 16, 16, 1)), jnp.float32)
    x1 = jnp.asarray(rng.uniform(size=(3, 16, 16, 1)), jnp.float32)
    f = lambda x: jnp.mean(x, axis=(1, 2, 3)) * 8.0 - 4.0  # a fixed differentiable "classifier" logit
    return config, graphdefs, states, x0, x1, f


def test_half_losses_sum_to_the_joint_loss():
    config, graphdefs, states, x0, x1, f = _setup()
    w = loss_weights(config, "syce")
    models = {n: nnx.merge(graphdefs[n], states[n], copy=True) for n in graphdefs}
    joint, _, _, _ = syce_loss(models, f, x0, x1, w)
    h0, t0 = half_loss("syce", models, f, x0, 0, w)
    h1, _ = half_loss("syce", models, f, x1, 1, w)
    np.testing.assert_allclose(float(h0 + h1), float(joint), rtol=1e-5)
    assert set(t0) == {"adv", "gan", "rec", "cls", "rec_self", "cls_self"}


def test_authors_scheme_equals_two_plain_sgd_steps_by_hand():
    """With SGD (lr 0.1) the authors' step equals: a step of G0 and G1 on half 0's loss, then one on
    half 1's loss at the updated generators, computed here independently with jax.grad. Both sides run
    eagerly: a jitted step differs from eager code by ~0.5% in these gradients (BatchNorm over 3
    tiny images is ill-conditioned), which would hide nothing but blur the comparison."""
    config, graphdefs, states, x0, x1, f = _setup()
    w = {**loss_weights(config, "syce"), "gan": 0.0}  # keep the critics out of the reference
    tx = optax.sgd(0.1)
    names = list(graphdefs)
    step = generator_train_step("syce", {n: tx for n in names}, graphdefs, f, w, 1.0, None, scheme="authors")
    start = jax.tree.map(jnp.array, states)
    state = {"models": start, "opt": {n: tx.init(param_state(graphdefs[n], start[n])) for n in names}}
    new_state, _ = step(state, {"x0": x0, "x1": x1}, jax.random.key(0))

    parts = {n: nnx.split(nnx.merge(graphdefs[n], states[n], copy=True), nnx.Param, ...) for n in names}

    def loss_of(gen_params, k, x):
        models = {n: nnx.merge(parts[n][0], gen_params.get(n, parts[n][1]), parts[n][2], copy=True) for n in names}
        return half_loss("syce", models, f, x, k, w)[0]

    ref = {n: parts[n][1] for n in ("G0", "G1")}
    for k, x in ((0, x0), (1, x1)):
        grads = jax.grad(loss_of)(ref, k, x)
        ref = jax.tree.map(lambda p, d: p - 0.1 * d, ref, grads)
    moved = 0.0
    for n in ("G0", "G1"):
        got = nnx.state(nnx.merge(graphdefs[n], new_state["models"][n], copy=True), nnx.Param)
        for a, b, a0 in zip(jax.tree.leaves(got), jax.tree.leaves(ref[n]), jax.tree.leaves(parts[n][1])):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)
            moved = max(moved, float(np.abs(np.asarray(b) - np.asarray(a0)).max()))
    assert moved > 0.1  # the reference really moved the parameters


def test_updates_per_step_and_unknown_scheme():
    assert generator_updates_per_step("syce", "authors") == 2
    assert generator_updates_per_step("cyce", "joint") == 1
    assert generator_updates_per_step("sagen", "authors") == 1
    with pytest.raises(ValueError, match="update_scheme"):
        generator_updates_per_step("syce", "both")
