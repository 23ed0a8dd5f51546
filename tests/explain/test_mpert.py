"""MPert: regulariser values, border-normalised blur, localisation on a toy classifier,
batch (vmap) equals one image at a time, input validation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage
from jax.tree_util import Partial

from advpath_jax.attribution.smoothing import gaussian_kernel, kernel_size, normalized_blur
from advpath_jax.explain import mpert
from advpath_jax.metrics.deletion import deletion_flips

H = 32
STEPS = 60


def _toy_score(weights, sign, x):
    """Logit sign · 20 · (Σ_region checker · x − 0.1): only the checker pattern inside the region matters."""
    s = jnp.sum(x[..., 0] * weights, axis=(1, 2))
    return sign * 20.0 * (s - 0.1)


@pytest.fixture(scope="module")
def toy():
    yy, xx = np.mgrid[:H, :H]
    checker = ((yy + xx) % 2).astype(np.float32) * 2 - 1
    region = np.zeros((H, H), bool)
    region[18:26, 4:12] = True
    weights = jnp.asarray(checker * region / region.sum())
    rng = np.random.default_rng(0)
    images = np.zeros((3, H, H, 1), np.float32)
    ring = np.abs(np.hypot(yy - 10, xx - 22) - 5) < 1.5  # bright structure the score ignores
    images[..., 0] += 0.9 * ring
    images[..., 0] += np.where(region, 0.5 + 0.4 * checker, 0.0)
    images[..., 0] += rng.uniform(0, 0.05, (3, H, H))
    images = np.clip(images, 0, 1).astype(np.float32)
    f_pos = Partial(_toy_score, weights, 1.0)   # predicts class 1 on these images
    f_neg = Partial(_toy_score, weights, -1.0)  # predicts class 0: the score of class 0 (-z) must be used
    return images, region, f_pos, f_neg


@pytest.fixture(scope="module")
def maps(toy):
    images, _, f_pos, f_neg = toy
    return (np.asarray(mpert.mpert_maps(f_pos, images, steps=STEPS)),
            np.asarray(mpert.mpert_maps(f_neg, images, steps=STEPS)))


def test_total_variation_beta_hand_computed():
    m = jnp.asarray([[0.0, 1.0, 1.0], [0.5, 0.0, 1.0], [1.0, 1.0, 1.0]])
    # interior pixels (u, v) in {0,1}²: du = m[u+1,v]-m[u,v], dv = m[u,v+1]-m[u,v]
    terms = [(0.5 ** 2 + 1.0 ** 2), (1.0 ** 2 + 0.0 ** 2), (0.5 ** 2 + 0.5 ** 2), (1.0 ** 2 + 1.0 ** 2)]
    expected = np.mean([t ** 1.5 for t in terms])
    assert float(mpert.total_variation_beta(m, 3.0)) == pytest.approx(expected, rel=1e-5)
    assert float(mpert.total_variation_beta(jnp.ones((4, 4)), 3.0)) == pytest.approx(0.0, abs=1e-9)


def test_normalized_blur_matches_scipy_and_keeps_constants():
    sigma = 1.3
    size = kernel_size(sigma)
    assert size == 2 * 4 + 1
    rng = np.random.default_rng(1)
    img = rng.uniform(size=(2, 20, 24)).astype(np.float32)
    k = gaussian_kernel(size, sigma).astype(np.float64)
    ref = np.stack([scipy.ndimage.correlate(im.astype(np.float64), k, mode="constant") for im in img])
    ref /= scipy.ndimage.correlate(np.ones((20, 24)), k, mode="constant")
    out = np.asarray(normalized_blur(jnp.asarray(img), sigma))
    np.testing.assert_allclose(out, ref, atol=1e-5)
    const = np.asarray(normalized_blur(jnp.full((1, 20, 24, 1), 0.7), sigma))
    np.testing.assert_allclose(const, 0.7, atol=1e-5)


@pytest.mark.parametrize("objective, class0, class1", [
    ("probability", 1 / (1 + np.exp(0.25)), 1 / (1 + np.exp(-0.25))),     # σ(∓z)
    ("log_complement", np.log1p(np.exp(-0.25)), np.log1p(np.exp(0.25))),  # softplus(∓z) = −log(1 − p_c)
    ("logit", -0.25, 0.25),
])
def test_objective_hand_computed(objective, class0, class1):
    """With a full mask (m = 1) nothing is perturbed: objective = λ2·0 + λ1·0 + score_c(z(x))."""
    s = mpert.mpert_settings((H, H), lambda1=0.3, lambda2=0.7, objective=objective)
    x = jnp.full((H, H, 1), 0.25)
    z = lambda b: jnp.mean(b, axis=(1, 2, 3))  # noqa: E731  logit z(x) = 0.25
    blurred = normalized_blur(x[None], s.blur_sigma)[0]
    val = mpert.mpert_objective(jnp.ones(s.mask_hw), x, blurred, jnp.int32(0), jnp.zeros_like(x), z, s)
    assert float(val) == pytest.approx(class0, abs=1e-5)
    m = jnp.zeros(s.mask_hw)  # everything blurred (a constant image stays 0.25): λ1 · 1
    val = mpert.mpert_objective(m, x, blurred, jnp.int32(1), jnp.zeros_like(x), z, s)
    assert float(val) == pytest.approx(0.3 + class1, abs=1e-5)


def test_log_complement_gradient_does_not_vanish_on_confident_logits():
    z = jnp.asarray([30.0, -30.0])
    c = jnp.asarray([1, 0])
    g = np.asarray(jax.grad(lambda zz: jnp.sum(mpert.class_score(zz, c)))(z))
    np.testing.assert_allclose(g, [1.0, -1.0], rtol=1e-6)          # s · p_c, p_c ≈ 1
    g_prob = np.asarray(jax.grad(lambda zz: jnp.sum(mpert.class_score(zz, c, "probability")))(z))
    np.testing.assert_allclose(g_prob, [np.exp(-30.0), -np.exp(-30.0)], rtol=1e-5)  # tiny but not 0


def test_default_sizes_scale_with_image():
    s = mpert.mpert_settings((224, 224))
    assert s.mask_hw == (56, 56) and s.mask_sigma == 3.0 and s.blur_sigma == 5.0
    s = mpert.mpert_settings((64, 64))
    assert s.mask_hw == (16, 16)
    assert s.mask_sigma == pytest.approx(3 * 64 / 224) and s.blur_sigma == pytest.approx(5 * 64 / 224)


def _inside_fraction_of_top(map_, region):
    k = int(region.sum())
    top = np.argsort(map_.ravel())[::-1][:k]
    return region.ravel()[top].mean()


def test_mask_finds_the_relevant_region_for_both_classes(toy, maps):
    images, region, f_pos, f_neg = toy
    assert np.all(np.asarray(f_pos(jnp.asarray(images))) > 0)
    assert np.all(np.asarray(f_neg(jnp.asarray(images))) < 0)
    rng = np.random.default_rng(2)
    random_fraction = np.mean([_inside_fraction_of_top(rng.uniform(size=(H, H)), region) for _ in range(20)])
    for out in maps:
        assert out.shape == (3, H, H)
        assert out.min() >= 0.0 and out.max() <= 1.0
        for m in out:
            assert m[region].mean() > 3 * m[~region].mean()
            assert _inside_fraction_of_top(m, region) > 0.5 > 5 * random_fraction


def test_mask_removes_the_evidence(toy, maps):
    """Perturbing with the optimised mask drops the predicted class's score."""
    images, _, f_pos, _ = toy
    s = mpert.mpert_settings((H, H))
    keep = 1.0 - maps[0][..., None]
    blurred = np.asarray(normalized_blur(jnp.asarray(images), s.blur_sigma))
    after = np.asarray(f_pos(jnp.asarray(images * keep + blurred * (1 - keep))))
    assert np.all(after < 0)
    np.testing.assert_array_equal(deletion_flips(f_pos, images, maps[0], s.blur_sigma), True)


def test_batch_equals_one_image_at_a_time(toy, maps):
    images, _, f_pos, _ = toy
    for i in (0, 2):
        alone = np.asarray(mpert.mpert_maps(f_pos, images[i:i + 1], steps=STEPS))
        np.testing.assert_allclose(alone[0], maps[0][i], atol=1e-4)


def test_vmapped_loop_with_noise_equals_single_loop(toy):
    images, _, f_pos, _ = toy
    s = mpert.mpert_settings((H, H), steps=10, noise_std=0.05)
    keys = jax.random.split(jax.random.key(3), 2)
    batched = np.asarray(mpert._mpert_batch(f_pos, jnp.asarray(images[:2]), keys, s))
    for i in range(2):
        single = np.asarray(jax.jit(lambda x, k: mpert.optimise_one(f_pos, x, k, s))(images[i], keys[i]))
        np.testing.assert_allclose(batched[i], single, atol=1e-4)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((H, H, 1), np.float32), "shape"),
    (np.full((1, H, H, 1), 1.5, np.float32), "[0, 1]"),
    (np.full((1, H, H, 1), np.nan, np.float32), "NaN"),
    (np.zeros((1, H, H, 1), np.int32), "dtype"),
])
def test_bad_images_are_refused(toy, bad, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        mpert.mpert_maps(toy[2], bad)


def test_bad_settings_are_refused(toy):
    images, _, f_pos, _ = toy
    with pytest.raises(ValueError, match="steps"):
        mpert.mpert_maps(f_pos, images, steps=0)
    with pytest.raises(ValueError, match="lambda1"):
        mpert.mpert_maps(f_pos, images, lambda1=-1.0)
    with pytest.raises(ValueError, match="PRNG key"):
        mpert.mpert_maps(f_pos, images, noise_std=0.1)
    with pytest.raises(ValueError, match="objective"):
        mpert.mpert_maps(f_pos, images, objective="softmax")
    with pytest.raises(ValueError, match="lambda_grid"):
        mpert.select_lambdas(f_pos, images, [])


def test_deletion_flips_and_lambda_selection_on_the_toy(toy):
    """Deleting the region flips the class, deleting elsewhere does not; the selection takes the
    largest area weight whose deletions still flip, and falls back to the best flip rate."""
    images, region, f_pos, _ = toy
    sigma = mpert.mpert_settings((H, H)).blur_sigma
    elsewhere = np.zeros((H, H), np.float32)
    elsewhere[:8, :8] = 1.0
    maps = np.stack([region.astype(np.float32), elsewhere, np.zeros((H, H), np.float32)])
    np.testing.assert_array_equal(deletion_flips(f_pos, images, maps, sigma), [True, False, False])
    assert mpert.constant_share(maps) == pytest.approx(1 / 3)
    # λ1 = 50: deleting costs more than the score can gain (softplus(z) <= z + 1 ≈ 7 here)
    out = mpert.select_lambdas(f_pos, images[:2], [(0.05, 0.2), (50.0, 0.2)], min_flip=1.0, steps=STEPS)
    by_l1 = {row["lambda1"]: row for row in out["grid"]}
    assert by_l1[0.05]["flip_rate"] == 1.0 and by_l1[50.0]["flip_rate"] == 0.0
    assert (out["lambda1"], out["lambda2"], out["met_target"]) == (0.05, 0.2, True)


@pytest.mark.parametrize("objective, constant", [("log_complement", False), ("probability", True)])
def test_confident_resnet_gets_a_non_constant_mpert_map(objective, constant):
    """Output bias 30 (p = 1 in float32): the probability objective's gradient (≈ e^-30) loses to
    the area term and the map stays constant; −log(1 − p_c) still deletes evidence."""
    from flax import nnx

    import advpath_jax as ap
    from advpath_jax.models import make_resnet

    model = make_resnet(18, width=0.125, seed=1)
    graphdef, state = nnx.split(model)
    model = nnx.merge(graphdef, state)
    model.fc2.bias[...] = jnp.full_like(model.fc2.bias[...], 30.0)
    logit = ap.score_fn(model, output="logit")
    x = np.asarray(jax.random.uniform(jax.random.key(0), (1, H, H, 1)), np.float32)
    assert float(ap.score_fn(model)(jnp.asarray(x))[0]) == 1.0
    maps = np.asarray(mpert.mpert_maps(logit, x, steps=20, objective=objective))
    assert (mpert.constant_share(maps) == 1.0) is constant
    if not constant:
        assert np.ptp(maps[0]) > 0.05



def test_config_section_defaults_are_the_paper_settings():
    from advpath_jax.config_utils import load_config
    section = load_config("synth_brain").mpert
    s = mpert.mpert_settings((64, 64), steps=section.steps, lr=section.lr, mask_size=section.mask_size,
                             lambda1=section.lambda1, lambda2=section.lambda2, beta=section.beta)
    assert (s.steps, s.lr, s.beta, s.mask_hw) == (150, 0.1, 3.0, (16, 16))
