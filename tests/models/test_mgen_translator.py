"""MGen and translator networks: output ranges, the mask formula, the residual form."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from advpath_jax.models.mgen import MASK_EPS, MGenSpec, make_mgen, upsample_half_mask
from advpath_jax.models.translator import TranslatorSpec, make_translator

H = 32


@pytest.fixture(scope="module")
def images():
    return jnp.asarray(np.random.default_rng(0).uniform(size=(3, H, H, 1)).astype(np.float32))


def test_mgen_mask_is_abs_ratio_at_half_resolution(images):
    model = make_mgen(MGenSpec(base_channels=4, depth=2))
    model.eval()
    scores = jnp.asarray([0.1, 0.5, 0.9])
    half = model.half_mask(images, scores)
    assert half.shape == (3, H // 2, H // 2)
    # independent recomputation of a, b from the trunk features
    inp = jnp.concatenate([images, jnp.broadcast_to(scores[:, None, None, None], (3, H, H, 1))], axis=-1)
    feats = np.asarray(model.trunk.decode(*model.trunk.encode(inp)), np.float64)
    pooled = feats.reshape(3, H // 2, 2, H // 2, 2, -1).mean(axis=(2, 4))
    kernel = np.asarray(model.head_conv.kernel[...], np.float64)[0, 0]
    bias = np.asarray(model.head_conv.bias[...], np.float64)
    ab = pooled @ kernel + bias
    expected = np.abs(ab[..., 0]) / (np.abs(ab[..., 0]) + np.abs(ab[..., 1]) + MASK_EPS)  # m = |a| / (|a| + |b| + ε)
    np.testing.assert_allclose(np.asarray(half), expected, atol=1e-4)
    full = model(images, scores)
    assert full.shape == (3, H, H)
    assert float(full.min()) >= 0.0 and float(full.max()) <= 1.0
    np.testing.assert_allclose(np.asarray(full), np.asarray(upsample_half_mask(half, (H, H))), atol=1e-6)


def test_mgen_uses_the_score_channel(images):
    model = make_mgen(MGenSpec(base_channels=4, depth=2))
    model.eval()
    a = model(images, jnp.zeros(3))
    b = model(images, jnp.ones(3))
    assert float(jnp.max(jnp.abs(a - b))) > 1e-4


def test_mgen_rejects_wrong_score_shape(images):
    model = make_mgen(MGenSpec(base_channels=4, depth=2))
    with pytest.raises(ValueError, match="one score per image"):
        model(images, jnp.zeros((3, 1)))


def test_untrained_translator_is_the_identity(images):
    model = make_translator(TranslatorSpec(base_channels=4, depth=2))
    model.eval()
    out = model(images, jnp.asarray([0, 1, 0]))
    np.testing.assert_allclose(np.asarray(out), np.asarray(images), atol=0)


def test_translator_residual_form_stays_in_unit_range(images):
    model = make_translator(TranslatorSpec(base_channels=4, depth=2))
    model.eval()
    rng = np.random.default_rng(1)
    model.head_conv.kernel[...] = jnp.asarray(rng.normal(scale=5.0, size=model.head_conv.kernel.shape), jnp.float32)
    model.head_conv.bias[...] = jnp.asarray([0.3], jnp.float32)
    c = jnp.asarray([1, 0, 1])
    r = np.asarray(model.residual(images, c))
    out = np.asarray(model(images, c))
    assert np.abs(r).max() > 1.0  # large residuals: the clip matters
    np.testing.assert_allclose(out, np.clip(np.asarray(images) + r, 0.0, 1.0), atol=1e-6)
    assert out.min() >= 0.0 and out.max() <= 1.0
    # the target class is an input: another class, another image
    other = np.asarray(model(images, 1 - c))
    assert np.abs(other - out).max() > 1e-3


def test_translator_rejects_wrong_class_shape(images):
    model = make_translator(TranslatorSpec(base_channels=4, depth=2))
    with pytest.raises(ValueError, match="one target class per image"):
        model(images, jnp.zeros((2,), jnp.int32))


def test_models_split_and_merge_under_jit(images):
    model = make_translator(TranslatorSpec(base_channels=4, depth=2))
    model.eval()
    gd, state = nnx.split(model)
    out = jax.jit(lambda s, x: nnx.merge(gd, s)(x, jnp.zeros(x.shape[0], jnp.int32)))(state, images)
    assert out.shape == images.shape
