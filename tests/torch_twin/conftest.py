"""Shared tiny models for the PyTorch-twin tests (skipped without torch)."""

from __future__ import annotations

import types

import numpy as np
import pytest


def perturbed_resnet(depth: int, *, width: float = 0.125, channels: int = 1, seed: int = 0):
    """A tiny Flax ResNet in eval mode with random (non-trivial) BatchNorm statistics and
    BatchNorm affine parameters."""
    import jax.numpy as jnp
    from flax import nnx

    from advpath_jax.models.resnet import make_resnet

    model = make_resnet(depth, width=width, in_channels=channels, seed=seed)
    model.eval()
    rng = np.random.default_rng(seed + 100)
    state = nnx.state(model, (nnx.Param, nnx.BatchStat))
    for path, var in nnx.to_flat_state(state):
        shape = np.shape(var.get_value())
        leaf, owner = path[-1], str(path[-2])
        is_bn = "bn" in owner or (path[-3:-2] == ("layers",) and owner == "1")
        if leaf == "mean":
            var.set_value(jnp.asarray(rng.normal(0.0, 0.3, shape), jnp.float32))
        elif leaf == "var":
            var.set_value(jnp.asarray(rng.uniform(0.3, 3.0, shape), jnp.float32))
        elif leaf == "scale":
            var.set_value(jnp.asarray(rng.uniform(0.5, 1.5, shape), jnp.float32))
        elif leaf == "bias" and is_bn:
            var.set_value(jnp.asarray(rng.normal(0.0, 0.2, shape), jnp.float32))
    nnx.update(model, state)
    return model


def random_images(seed: int, shape) -> np.ndarray:
    return np.random.default_rng(seed).uniform(size=shape).astype(np.float32)


def assert_rel_close(actual, reference, tol: float = 1e-4) -> None:
    """``max |actual - reference| <= tol · max |reference|`` (and the same shape)."""
    actual, reference = np.asarray(actual, np.float64), np.asarray(reference, np.float64)
    assert actual.shape == reference.shape, (actual.shape, reference.shape)
    scale = np.max(np.abs(reference))
    assert scale > 0, "reference is identically zero: the comparison would be vacuous"
    err = np.max(np.abs(actual - reference)) / scale
    assert err <= tol, f"max relative difference {err:.3e} > {tol:.0e}"


@pytest.fixture(scope="session")
def th():
    """The helpers above (test modules cannot import this conftest by name)."""
    return types.SimpleNamespace(perturbed_resnet=perturbed_resnet, random_images=random_images,
                                 assert_rel_close=assert_rel_close)


@pytest.fixture(scope="session")
def rgb_resnet18():
    """(model, images): a perturbed 3-channel ResNet-18 (width 1/8) and 2 images 32x40.
    Seed 19 gives logits near 0.8 on them: sigmoid gradients are far from saturation."""
    x = random_images(1, (2, 32, 40, 3))
    return perturbed_resnet(18, channels=3, seed=19), x
