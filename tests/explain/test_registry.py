"""The explainer registry: the built-in lists, and a new explainer added from outside the module."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advpath_jax.explain import registry
from advpath_jax.explain.registry import (Explainers, check_method_names, register_explainer,
                                          registered_explainers, required_models, unregister_explainer)

PAPER = ("Gradient", "IG", "GradCAM", "MPert", "MGen", "SAGen",
         "CyCE:E", "CyCE:E_FI^v1", "CyCE:E_FI^v2", "CyCE:E_FI,kσ^v2",
         "SyCE:E", "SyCE:E_FI^v1", "SyCE:E_FI^v2", "SyCE:E_FI,kσ^v2", "Random")
MANIFOLD = ("SyCE:M_FI^v1", "SyCE:M_FI^v2", "SyCE:M_FI,kσ^v2")


def test_the_builtin_lists():
    assert registry.PAPER_METHODS == PAPER
    assert registry.DEFAULT_METHODS == PAPER[:-1] + MANIFOLD + ("Random",)
    assert required_models("CyCE:E_FI,kσ^v2") == ("cyce",)
    assert required_models("SAGen") == ("sagen",)
    assert required_models("IG") == ()


def test_a_new_explainer_is_one_function_and_one_decorator():
    calls = []

    @register_explainer("Toy:brightness", models=("mgen",), default=False)
    def brightness(batch):
        calls.append(batch.x.shape)
        return jnp.sum(batch.x, axis=-1) * batch.shared("scale", lambda: 2.0)

    try:
        assert "Toy:brightness" in registered_explainers()
        assert required_models("Toy:brightness") == ("mgen",)
        assert check_method_names(["Toy:brightness"]) == ["Toy:brightness"]
        assert "Toy:brightness" not in registry.DEFAULT_METHODS  # default=False
        x = np.random.default_rng(0).uniform(size=(2, 8, 8, 1)).astype(np.float32)
        ex = Explainers(f=lambda v: v.sum((1, 2, 3)), classifier=None)
        maps = ex.explain(x, ["Toy:brightness", "Random", "Toy:brightness"], jax.random.key(0))
        assert list(maps) == ["Toy:brightness", "Random"]
        np.testing.assert_allclose(maps["Toy:brightness"], 2.0 * x[..., 0], rtol=1e-6)
        assert maps["Toy:brightness"].dtype == np.float32 and calls == [(2, 8, 8, 1)]  # once per name
        with pytest.raises(ValueError, match="already registered"):
            register_explainer("Toy:brightness", lambda batch: batch.x[..., 0])
    finally:
        unregister_explainer("Toy:brightness")
    assert "Toy:brightness" not in registered_explainers()
    with pytest.raises(ValueError, match="unknown explainer"):
        check_method_names(["Toy:brightness"])


def test_generator_maps_share_one_pair_per_batch(monkeypatch):
    calls = []

    def fake_outputs(self, kind, x):
        calls.append(kind)
        return x * 0.0, x, jnp.zeros(x.shape[0], jnp.int32)

    monkeypatch.setattr(Explainers, "generator_outputs", fake_outputs)
    x = np.random.default_rng(1).uniform(size=(2, 8, 8, 1)).astype(np.float32)
    ex = Explainers(f=lambda v: jnp.mean(v ** 2, axis=(1, 2, 3)), classifier=None, generators={"cyce": {}},
                    steps=4, smoothing=(3, 1.0))
    maps = ex.explain(x, ["CyCE:E", "CyCE:E_FI^v1", "CyCE:E_FI^v2", "CyCE:E_FI,kσ^v2"], jax.random.key(0))
    assert calls == ["cyce"]
    assert all(m.shape == (2, 8, 8) for m in maps.values())
