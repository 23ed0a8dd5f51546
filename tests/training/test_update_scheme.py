"""The authors' generator update scheme: one update of G0 and G1 per half, in sequence."""

import jax
import jax.numpy as jnp
import numpy as np
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


def test_updates_per_step_and_unknown_scheme():
    assert generator_updates_per_step("syce", "authors") == 2
    assert generator_updates_per_step("cyce", "joint") == 1
    assert generator_updates_per_step("sagen", "authors") == 1
    with pytest.raises(ValueError, match="update_scheme"):
        generator_updates_per_step("syce", "both")
