import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
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


def test_score_features_head_run_compiled_outside_jit(tiny_resnet):
    """Called eagerly (host code: quality checks, predicted classes), each adapter compiles one
    program for a new input shape, not the ResNet's primitives one by one."""
    features, head = features_and_head(tiny_resnet, output="logit", stage=2)
    a = features(jax.random.uniform(jax.random.key(2), (2, 32, 32, 1)))
    cases = [(ap.score_fn(tiny_resnet), jax.random.uniform(jax.random.key(3), (3, 32, 32, 1))),
             (features, jax.random.uniform(jax.random.key(4), (5, 32, 32, 1))),
             (head, jnp.concatenate([a, a, a]))]
    records = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = lambda record: records.append(record.getMessage())
    logger = logging.getLogger("jax")
    logger.addHandler(handler)
    try:
        for fn, arg in cases:
            records.clear()
            with jax.log_compiles():
                jax.block_until_ready(fn(arg))
            compiled = [m for m in records if m.startswith("Compiling")]
            assert len(compiled) == 1, compiled
    finally:
        logger.removeHandler(handler)


def _manual_gradcam(model, x, stage, sign):
    """GradCAM by hand: gradient of sign · logit at the stage's map, channel weights, ReLU, resize."""
    features, head = features_and_head(model, output="logit", stage=stage)
    a = np.asarray(features(x), np.float64)
    g = np.asarray(jax.grad(lambda aa: jnp.sum(head(aa)))(jnp.asarray(a, jnp.float32)), np.float64)
    small = np.maximum(sign[:, None, None] * np.einsum("bhwk,bk->bhw", a, g.mean(axis=(1, 2))), 0)
    return np.stack([numpy_bilinear_resize(m, x.shape[1], x.shape[2]) for m in small])


def test_resnet_gradcam_matches_manual_composition(tiny_resnet):
    x = jax.random.uniform(jax.random.key(2), (2, 64, 64, 1))
    p = np.asarray(ap.score_fn(tiny_resnet)(x))
    sign = np.where(p >= 0.5, 1.0, -1.0)
    for stage in (2, 4):
        expected = _manual_gradcam(tiny_resnet, x, stage, sign)
        cam = np.asarray(ap.resnet_gradcam(tiny_resnet, x, stage=stage))
        assert cam.shape == (2, 64, 64)
        np.testing.assert_allclose(cam, expected, rtol=1e-4, atol=1e-6 * max(expected.max(), 1e-12))


def _with_output_bias(model, bias):
    graphdef, state = nnx.split(model)
    copy = nnx.merge(graphdef, state)
    copy.fc2.bias[...] = jnp.full_like(copy.fc2.bias[...], bias)
    return copy


def test_gradcam_of_class0_image_explains_minus_logit(tiny_resnet):
    x = jax.random.uniform(jax.random.key(6), (2, 64, 64, 1))
    negative = _with_output_bias(tiny_resnet, -30.0)           # every image predicted class 0
    assert np.all(np.asarray(ap.score_fn(negative)(x)) < 0.5)
    cam = np.asarray(ap.resnet_gradcam(negative, x))           # default stage at 64 px: 2
    minus = _manual_gradcam(negative, x, 2, np.array([-1.0, -1.0]))
    plus = _manual_gradcam(negative, x, 2, np.array([1.0, 1.0]))
    np.testing.assert_allclose(cam, minus, rtol=1e-4, atol=1e-6 * max(minus.max(), 1e-12))
    assert minus.max() > 0 and plus.max() > 0 and not np.allclose(minus, plus)


def test_gradcam_at_64px_is_not_an_upsampled_2x2_grid(tiny_resnet):
    x = jax.random.uniform(jax.random.key(7), (3, 64, 64, 1))
    cam = np.asarray(ap.resnet_gradcam(tiny_resnet, x))
    last = np.asarray(ap.resnet_gradcam(tiny_resnet, x, stage=4))
    for b in range(3):
        assert np.linalg.matrix_rank(cam[b], tol=1e-6 * cam[b].max()) > 2
        assert np.linalg.matrix_rank(last[b], tol=1e-6 * max(last[b].max(), 1e-12)) <= 2


def test_gradcam_stage_rule_and_stage_sizes():
    from advpath_jax.attribution.adapters import default_gradcam_stage
    from advpath_jax.models.resnet import stage_hw

    # the deepest stage at least 7x7: the paper's last stage (7x7) at 224, stage 2 (8x8) at 64
    assert default_gradcam_stage((224, 224)) == 4
    assert default_gradcam_stage((64, 64)) == 2
    assert default_gradcam_stage((128, 128)) == 3
    assert default_gradcam_stage((32, 32)) == 1
    model = make_resnet(18, width=0.125)
    model.eval()
    for hw in ((64, 64), (224, 224), (48, 40)):
        x = jnp.ones((1, *hw, 1))
        assert [tuple(model.features(x, stage=k).shape[1:3]) for k in (1, 2, 3, 4)] == stage_hw(hw)
    with pytest.raises(ValueError, match="stage"):
        model.features(jnp.ones((1, 32, 32, 1)), stage=5)


def test_stable_sigmoid_gradient_is_the_closed_form():
    from advpath_jax.models.probability import stable_sigmoid

    z = np.array([-30.0, -17.0, -2.0, 0.0, 0.5, 17.0, 30.0, 80.0], np.float32)
    got = np.asarray(jax.vmap(jax.grad(stable_sigmoid))(jnp.asarray(z)))
    zz = z.astype(np.float64)
    expected = np.exp(-np.abs(zz)) / (1.0 + np.exp(-np.abs(zz))) ** 2      # σ(z)σ(−z)
    assert np.all(np.isfinite(got)) and np.all(got > 0)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(stable_sigmoid(jnp.asarray(z))),
                                  np.asarray(jax.nn.sigmoid(jnp.asarray(z))))   # values unchanged


def test_confident_resnet_has_a_nonzero_gradient_map(tiny_resnet):
    confident = _with_output_bias(tiny_resnet, 30.0)
    x = jax.random.uniform(jax.random.key(8), (2, 32, 32, 1))
    logit = np.asarray(ap.score_fn(confident, output="logit")(x), np.float64)
    assert np.all(logit > 17) and np.all(np.asarray(ap.score_fn(confident)(x)) == 1.0)
    sal = np.asarray(ap.gradient_saliency(ap.score_fn(confident), x))
    logit_sal = np.asarray(ap.gradient_saliency(ap.score_fn(confident, output="logit"), x), np.float64)
    dsig = np.exp(-logit) / (1.0 + np.exp(-logit)) ** 2                     # σ'(z), closed form
    assert sal.max() > 0
    np.testing.assert_allclose(sal, dsig[:, None, None] * logit_sal, rtol=1e-4,
                               atol=1e-6 * float((dsig[:, None, None] * logit_sal).max()))


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
