"""One forward program per kind: (x_s, x_a, c) against the modules composed by hand."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from advpath_jax.generators.inference import generator_outputs, generator_pair, syce_pair
from advpath_jax.generators.spec import build_generators, generator_names
from tests.tests_helpers import TinyLogit

SIZE = 16



def config(**extra):
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.data = ml_collections.ConfigDict({"image_size": SIZE})
    c.generators = ml_collections.ConfigDict(dict(
        unet_base_channels=4, unet_depth=2, dropout=0.0, residual=False, head_channels=(4, 4),
        d_base_channels=4, d_layers=2, **extra))
    return c


@pytest.fixture(scope="module")
def images_and_classifier():
    x = np.random.default_rng(0).uniform(size=(6, SIZE, SIZE, 1)).astype(np.float32)
    f = TinyLogit(nnx.Rngs(0))
    logits = np.asarray(f(jnp.asarray(x)))
    f.fc.bias[...] = f.fc.bias[...] - np.median(logits)  # both classes in the batch
    c = (np.asarray(jax.nn.sigmoid(f(jnp.asarray(x)))) >= 0.5).astype(np.int32)
    assert 0 < c.sum() < len(c)
    return x, f, c


def _eval(modules):
    for m in modules.values():
        m.eval()
    return modules


@pytest.mark.parametrize("kind", ["cyce", "syce"])
def test_cycle_kinds_against_the_generators_by_hand(images_and_classifier, kind):
    x, f, c = images_and_classifier
    gens = _eval(build_generators(config(), kind))  # critics included: they are not used
    x_s, x_a, got_c = generator_outputs(kind, gens, f, x)
    np.testing.assert_array_equal(np.asarray(got_c), c)
    sel = c[:, None, None, None] == 1
    xj = jnp.asarray(x)
    want_a = np.where(sel, np.asarray(gens["G1"](xj)), np.asarray(gens["G0"](xj)))
    np.testing.assert_allclose(np.asarray(x_a), want_a, atol=1e-5)
    if kind == "cyce":
        np.testing.assert_array_equal(np.asarray(x_s), x)
    else:
        aj = jnp.asarray(want_a)
        want_s = np.where(sel, np.asarray(gens["G1"](aj)), np.asarray(gens["G0"](aj)))
        np.testing.assert_allclose(np.asarray(x_s), want_s, atol=1e-5)
        pair = syce_pair(gens, f, x)
        np.testing.assert_allclose(np.asarray(pair[0]), np.asarray(x_s), atol=1e-6)


def test_sagen_heads_and_names(images_and_classifier):
    x, f, c = images_and_classifier
    gens = _eval(build_generators(config(), "sagen"))
    x_s, x_a = generator_pair("sagen", gens, f, x)
    want_s, want_a = gens["G"](jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(x_s), np.asarray(want_s), atol=1e-5)
    np.testing.assert_allclose(np.asarray(x_a), np.asarray(want_a), atol=1e-5)
    assert generator_names("sagen") == ("G",) and generator_names("syce") == ("G0", "G1")


def test_inputs_are_checked(images_and_classifier):
    x, f, _ = images_and_classifier
    gens = _eval(build_generators(config(), "cyce"))
    with pytest.raises(ValueError, match=r"within \[0, 1\]"):
        generator_pair("cyce", gens, f, x + 2.0)
    with pytest.raises(ValueError, match="channel"):
        generator_pair("cyce", gens, f, np.repeat(x, 3, axis=-1))
    with pytest.raises(ValueError, match="generator kind"):
        generator_pair("stargan", gens, f, x)
