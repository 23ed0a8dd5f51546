import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.tree_util import Partial

import advpath_jax as ap
from advpath_jax.attribution.adapters import features_and_head
from advpath_jax.models import make_resnet
from tests_helpers import numpy_bilinear_resize


def _features(w, x):
    dn = ("NHWC", "HWIO", "NHWC")
    return jnp.tanh(jax.lax.conv_general_dilated(x, w, (4, 4), "SAME", dimension_numbers=dn))


def _head(v, b, a):
    return jax.nn.sigmoid(jnp.einsum("bhwk,k->b", a, v) / (a.shape[1] * a.shape[2]) + b)


def test_gradcam_equals_closed_form_on_small_cnn():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 3, 1, 5)).astype(np.float32)
    v = rng.normal(size=(5,)).astype(np.float32)
    x = rng.uniform(size=(3, 16, 16, 1)).astype(np.float32)
    feats = np.asarray(_features(w, x), np.float64)                       # [B,4,4,5]
    cam = ap.gradcam(Partial(_head, jnp.asarray(v), 0.1), jnp.asarray(feats, jnp.float32), (16, 16))
    # by hand: f = σ(z), z = Σ_k v_k mean_hw A_k + b  ->  ∂f/∂A_hwk = σ'(z) v_k / (h w)
    z = np.einsum("bhwk,k->b", feats, v) / 16 + 0.1
    sig = 1 / (1 + np.exp(-z))
    alpha = (sig * (1 - sig))[:, None] * v[None, :] / 16                    # spatial mean of the grad
    small = np.maximum(np.einsum("bhwk,bk->bhw", feats, alpha), 0)
    expected = np.stack([numpy_bilinear_resize(m, 16, 16) for m in small])
    np.testing.assert_allclose(np.asarray(cam), expected, rtol=1e-4, atol=1e-7 * expected.max())


@pytest.fixture(scope="module")
def tiny_resnet():
    model = make_resnet(18, width=0.125, seed=3)
    # non-trivial BatchNorm statistics, so that eval mode differs from train mode
    model.train()
    model(jax.random.uniform(jax.random.key(9), (8, 32, 32, 1)))
    return model


def test_score_fn_is_eval_mode_sigmoid_and_leaves_model_untouched(tiny_resnet):
    x = jax.random.uniform(jax.random.key(1), (2, 32, 32, 1))
    f = ap.score_fn(tiny_resnet)
    logit_f = ap.score_fn(tiny_resnet, output="logit")
    np.testing.assert_allclose(np.asarray(f(x)), np.asarray(jax.nn.sigmoid(logit_f(x))), rtol=1e-6)
    # eval mode: each sample's score is independent of the rest of the batch
    np.testing.assert_allclose(np.asarray(f(x[:1])), np.asarray(f(x)[:1]), rtol=1e-5)
    assert tiny_resnet.stem_bn.use_running_average in (False, None)  # caller's model still in train mode
    with pytest.raises(ValueError, match="output"):
        ap.score_fn(tiny_resnet, output="softmax")


def test_resnet_gradcam_matches_manual_composition(tiny_resnet):
    x = jax.random.uniform(jax.random.key(2), (2, 64, 64, 1))
    features, head = features_and_head(tiny_resnet)
    a = np.asarray(features(x), np.float64)
    g = np.asarray(jax.grad(lambda aa: jnp.sum(head(aa)))(jnp.asarray(a, jnp.float32)), np.float64)
    small = np.maximum(np.einsum("bhwk,bk->bhw", a, g.mean(axis=(1, 2))), 0)
    expected = np.stack([numpy_bilinear_resize(m, 64, 64) for m in small])
    cam = np.asarray(ap.resnet_gradcam(tiny_resnet, x))
    assert cam.shape == (2, 64, 64)
    np.testing.assert_allclose(cam, expected, rtol=1e-4, atol=1e-6 * max(expected.max(), 1e-12))


def test_resnet_family_shapes():
    for depth, width, channels in [(18, 0.125, 1), (34, 0.0625, 3), (50, 0.0625, 1)]:
        model = make_resnet(depth, width=width, in_channels=channels)
        model.eval()
        x = jnp.ones((1, 48, 40, channels))
        assert model(x).shape == (1,)
        feats = model.features(x)
        assert feats.shape[0] == 1 and feats.shape[-1] == model.feature_channels
    with pytest.raises(ValueError, match="depth"):
        make_resnet(20)
    with pytest.raises(ValueError, match="32x32"):
        make_resnet(18, width=0.125)(jnp.ones((1, 16, 16, 1)))
    with pytest.raises(ValueError, match="channel"):
        make_resnet(18, width=0.125)(jnp.ones((1, 32, 32, 3)))


def test_path_attribution_on_resnet_runs_and_v2_bounds_v1(tiny_resnet):
    x = jax.random.uniform(jax.random.key(4), (3, 32, 32, 1))
    xa = jax.random.uniform(jax.random.key(5), (3, 32, 32, 1))
    f = ap.score_fn(tiny_resnet)
    v1 = np.asarray(ap.path_attribution(f, x, xa, weight="v1", steps=5, reduce_channels=False))
    v2 = np.asarray(ap.path_attribution(f, x, xa, weight="v2", steps=5, reduce_channels=False))
    assert np.all(np.isfinite(v2)) and v2.shape == (3, 32, 32, 1)
    # |∫ g| <= ∫ |g| pixel by pixel
    assert np.all(v1 <= v2 * (1 + 1e-5) + 1e-12)
