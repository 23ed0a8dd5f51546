"""MPert: regulariser values, border-normalised blur, localisation on a toy classifier,
batch (vmap) equals one image at a time, input validation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage
from jax.tree_util import Partial

from advpath_jax.attribution.smoothing import gaussian_kernel
from advpath_jax.explain import mpert

H = 32
STEPS = 60


def _toy_score(weights, sign, x):
    """sigmoid(sign · 20 · (Σ_region checker · x − 0.1)): only the checker pattern inside the region matters."""
    s = jnp.sum(x[..., 0] * weights, axis=(1, 2))
    return jax.nn.sigmoid(sign * 20.0 * (s - 0.1))


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
    f_neg = Partial(_toy_score, weights, -1.0)  # predicts class 0: f_c = 1 - f must be used
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
    size = mpert.kernel_size(sigma)
    assert size == 2 * 4 + 1
    rng = np.random.default_rng(1)
    img = rng.uniform(size=(2, 20, 24)).astype(np.float32)
    k = gaussian_kernel(size, sigma).astype(np.float64)
    ref = np.stack([scipy.ndimage.correlate(im.astype(np.float64), k, mode="constant") for im in img])
    ref /= scipy.ndimage.correlate(np.ones((20, 24)), k, mode="constant")
    out = np.asarray(mpert.normalized_blur(jnp.asarray(img), sigma))
    np.testing.assert_allclose(out, ref, atol=1e-5)
    const = np.asarray(mpert.normalized_blur(jnp.full((1, 20, 24, 1), 0.7), sigma))
    np.testing.assert_allclose(const, 0.7, atol=1e-5)


def test_objective_hand_computed():
    """With a full mask (m = 1) nothing is perturbed: objective = λ2·0 + λ1·0 + f_c(x)."""
    s = mpert.mpert_settings((H, H), lambda1=0.3, lambda2=0.7)
    x = jnp.full((H, H, 1), 0.25)
    f = lambda b: jnp.mean(b, axis=(1, 2, 3))  # noqa: E731  f(x) = 0.25, class 0 -> f_c = 0.75
    blurred = mpert.normalized_blur(x[None], s.blur_sigma)[0]
    val = mpert.mpert_objective(jnp.ones(s.mask_hw), x, blurred, jnp.int32(0), jnp.zeros_like(x), f, s)
    assert float(val) == pytest.approx(0.75, abs=1e-5)
    m = jnp.zeros(s.mask_hw)  # everything blurred (a constant image stays 0.25): λ1 · 1
    val = mpert.mpert_objective(m, x, blurred, jnp.int32(1), jnp.zeros_like(x), f, s)
    assert float(val) == pytest.approx(0.3 + 0.25, abs=1e-5)


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
    assert np.all(np.asarray(f_pos(jnp.asarray(images))) > 0.5)
    assert np.all(np.asarray(f_neg(jnp.asarray(images))) < 0.5)
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
    blurred = np.asarray(mpert.normalized_blur(jnp.asarray(images), s.blur_sigma))
    after = np.asarray(f_pos(jnp.asarray(images * keep + blurred * (1 - keep))))
    assert np.all(after < 0.5)


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



def test_config_section_defaults_are_the_paper_settings():
    from advpath_jax.config_utils import load_config
    section = load_config("synth_brain").mpert
    s = mpert.mpert_settings((64, 64), steps=section.steps, lr=section.lr, mask_size=section.mask_size,
                             lambda1=section.lambda1, lambda2=section.lambda2, beta=section.beta)
    assert (s.steps, s.lr, s.beta, s.mask_hw) == (150, 0.1, 3.0, (16, 16))
