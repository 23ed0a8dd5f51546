"""The authors' validation criterion: the method's own total generator loss on the validation images."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from advpath_jax.config_utils import load_config
from advpath_jax.generators.spec import build_generators, loss_weights
from advpath_jax.training.generator_losses import cyce_loss, sagen_loss, syce_loss
from advpath_jax.training.generators import check_val_criterion, own_loss_program, own_loss_statistic

SETTINGS = ["data.image_size=16", "generators.unet_base_channels=4", "generators.unet_depth=2",
            "generators.d_base_channels=4", "generators.d_layers=2", "generators.head_channels=(4, 4)"]


def _eval_models(kind):
    config = load_config("synth_brain", SETTINGS)
    modules = build_generators(config, kind)
    for m in modules.values():
        m.eval()  # validation: BatchNorm on running statistics, so batch means combine exactly
    return config, {n: nnx.split(m)[0] for n, m in modules.items()}, {n: nnx.state(m) for n, m in modules.items()}


def _images(n0, n1):
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(n0 + n1, 16, 16, 1)).astype(np.float32)
    pred = np.array([0] * n0 + [1] * n1)
    perm = rng.permutation(n0 + n1)  # classes interleaved, as in a real split
    return x[perm], pred[perm]


def _logit(x):  # a fixed differentiable stand-in classifier
    return jnp.mean(x, axis=(1, 2, 3)) * 8.0 - 4.0


@pytest.mark.parametrize("kind,joint", [("syce", syce_loss), ("cyce", cyce_loss)])
def test_own_loss_is_the_joint_training_loss_over_all_validation_images(kind, joint):
    """Six images of each class in batches of 4 (4 + 2, weighted by size): the statistic equals the
    training loss of one step whose halves hold all six images of each class, GAN term included."""
    config, graphdefs, states = _eval_models(kind)
    w = loss_weights(config, kind)
    assert w["gan"] > 0
    x, pred = _images(6, 6)
    value = own_loss_statistic(own_loss_program(kind, graphdefs, _logit, w), states, x, pred, batch_size=4)
    models = {n: nnx.merge(graphdefs[n], states[n], copy=True) for n in graphdefs}
    reference = float(joint(models, _logit, jnp.asarray(x[pred == 0]), jnp.asarray(x[pred == 1]), w)[0])
    np.testing.assert_allclose(value, reference, rtol=1e-5)
    without_gan = float(joint(models, _logit, jnp.asarray(x[pred == 0]), jnp.asarray(x[pred == 1]),
                              {**w, "gan": 0.0})[0])
    assert abs(reference - without_gan) > 1e-3  # the GAN term is part of it


def test_own_loss_of_sagen_is_its_mean_loss_over_all_images():
    config, graphdefs, states = _eval_models("sagen")
    w = loss_weights(config, "sagen")
    x, pred = _images(5, 3)
    value = own_loss_statistic(own_loss_program("sagen", graphdefs, _logit, w), states, x, pred, batch_size=3)
    G = nnx.merge(graphdefs["G"], states["G"], copy=True)
    reference = float(sagen_loss(G, _logit, jnp.asarray(x), jnp.asarray(pred, jnp.float32), w)[0])
    np.testing.assert_allclose(value, reference, rtol=1e-5)


def test_unknown_criterion_is_an_error():
    assert check_val_criterion("fixed") == "fixed"
    with pytest.raises(ValueError, match="val_criterion"):
        check_val_criterion("total")


def test_quality_criterion_adds_the_shortfall_of_the_worse_rate_to_the_fixed_objective():
    from advpath_jax.training.generators import quality_objective

    assert check_val_criterion("quality") == "quality"
    stats = {"flip_rate": 0.95, "keep_rate": 0.80, "fixed_objective": 0.2}
    assert quality_objective(stats) == pytest.approx(0.2 + 0.2)
    assert quality_objective({**stats, "keep_rate": 0.99}) == pytest.approx(0.2 + 0.05)
    # a checkpoint that flips and keeps by rewriting the image loses to a faithful one
    rewritten = {"flip_rate": 0.98, "keep_rate": 0.99, "fixed_objective": 0.94}
    faithful = {"flip_rate": 0.97, "keep_rate": 0.88, "fixed_objective": 0.19}
    assert quality_objective(faithful) < quality_objective(rewritten)
    # among checkpoints of equal fixed objective, the one whose worse rate is higher wins
    assert quality_objective({**faithful, "keep_rate": 0.90}) < quality_objective(faithful)
