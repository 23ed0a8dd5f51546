"""The model store: generators saved by a checkpoint come back through load_generators; the
predicted-class cache is reused only for the same classifier checkpoint and config."""

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from advpath_jax.generators.spec import build_generators, generator_fingerprint
from advpath_jax.store.checkpoint import CheckpointStore, model_dir
from advpath_jax.store.models import classifier_fingerprint, load_generators
from advpath_jax.store.predictions import predicted_classes

SIZE = 16


class TinyLogit(nnx.Module):
    def __init__(self, bias, rngs):
        self.fc = nnx.Linear(1, 1, rngs=rngs)
        self.fc.bias[...] = jnp.full((1,), bias)

    def __call__(self, x):
        return self.fc(jnp.mean(x, axis=(1, 2)))[:, 0]


def config():
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.data = ml_collections.ConfigDict({"name": "toy", "image_size": SIZE})
    c.classifier = ml_collections.ConfigDict(dict(depth=18, width=0.0625, dropout=0.0, head_units=8))
    c.generators = ml_collections.ConfigDict(dict(
        unet_base_channels=4, unet_depth=2, dropout=0.0, residual=False, head_channels=(4, 4),
        d_base_channels=4, d_layers=2))
    return c


def test_load_generators_restores_only_the_generators(tmp_path):
    c = config()
    modules = build_generators(c, "syce", seed=7)
    with CheckpointStore(model_dir(str(tmp_path), "syce"), generator_fingerprint(c, "syce")) as store:
        store.save("best", 3, {"models": {n: nnx.state(m) for n, m in modules.items()}}, {})
    gens = load_generators(str(tmp_path), c, "syce")
    assert sorted(gens) == ["G0", "G1"]
    x = jnp.asarray(np.random.default_rng(0).uniform(size=(2, SIZE, SIZE, 1)), jnp.float32)
    modules["G1"].eval()
    np.testing.assert_allclose(np.asarray(gens["G1"](x)), np.asarray(modules["G1"](x)), atol=1e-6)
    with pytest.raises(FileNotFoundError, match="cyce"):
        load_generators(str(tmp_path), c, "cyce")


def test_predicted_classes_cache(tmp_path):
    c = config()
    workdir = str(tmp_path)
    images = np.random.default_rng(1).uniform(size=(5, SIZE, SIZE, 1)).astype(np.float32)
    always1, always0 = TinyLogit(50.0, nnx.Rngs(0)), TinyLogit(-50.0, nnx.Rngs(0))
    # no best checkpoint: computed, not cached
    np.testing.assert_array_equal(predicted_classes(c, workdir, "val", always1, images), np.ones(5))
    np.testing.assert_array_equal(predicted_classes(c, workdir, "val", always0, images), np.zeros(5))
    with CheckpointStore(model_dir(workdir, "classifier"), classifier_fingerprint(c)) as store:
        store.save("best", 1, {"models": {"classifier": nnx.state(always1)}}, {})
    np.testing.assert_array_equal(predicted_classes(c, workdir, "val", always1, images), np.ones(5))
    # same checkpoint and config: the cached classes come back (whatever model is passed)
    cached = predicted_classes(c, workdir, "val", always0, images)
    assert cached.dtype == np.int32
    np.testing.assert_array_equal(cached, np.ones(5))
    # another split, another config or another step: recomputed
    np.testing.assert_array_equal(predicted_classes(c, workdir, "test", always0, images), np.zeros(5))
    c.data.image_size = SIZE  # unchanged value: still cached
    np.testing.assert_array_equal(predicted_classes(c, workdir, "val", always0, images), np.ones(5))
    c.classifier.lr = 1e-3  # a training field: not in the fingerprint, but in the cache key
    np.testing.assert_array_equal(predicted_classes(c, workdir, "val", always0, images), np.zeros(5))
