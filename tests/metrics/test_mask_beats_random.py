"""The true lesion mask used as a map beats a Random map on IoU, AOPC and R.

Toy set, no trained model: 32x32 images with textured tissue, a bright ring near the border
(label-irrelevant) and, for positives, a bright disc inside a fixed central window. The
toy classifier looks at that window only: f = sigmoid(k * (mean intensity in window) - b).
The perturbation image is constant tissue intensity (the "healthy" translation).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.tree_util import Partial

from advpath_jax.metrics import aopc_curves, aopc_random, deletion_preservation, localization_metrics

SIZE, TISSUE = 32, 0.3


def _toy_set(n_pos: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE] + 0.5
    r = np.hypot(yy - SIZE / 2, xx - SIZE / 2)
    images, masks = [], []
    for _ in range(n_pos):
        img = TISSUE + 0.05 * rng.standard_normal((SIZE, SIZE))
        img[(r > 13) & (r < 15.5)] = 0.95  # skull-like ring: bright but irrelevant
        cy, cx = rng.uniform(12, 20, size=2)
        rad = rng.uniform(3.0, 4.5)
        m = np.hypot(yy - cy, xx - cx) < rad
        img[m] += 0.45
        images.append(np.clip(img, 0, 1))
        masks.append(m)
    return np.stack(images)[..., None].astype(np.float32), np.stack(masks)


def _toy_f(window, x):
    mean = jnp.sum(x[..., 0] * window, axis=(1, 2)) / jnp.sum(window)
    return jax.nn.sigmoid(100.0 * (mean - TISSUE - 0.02))


@pytest.fixture(scope="module")
def setup():
    x, masks = _toy_set()
    window = np.zeros((SIZE, SIZE), np.float32)
    window[8:24, 8:24] = 1.0
    f = Partial(_toy_f, jnp.asarray(window))
    xp = np.full_like(x, TISSUE)
    random_maps = np.asarray(jax.random.uniform(jax.random.key(1), masks.shape))
    return f, x, xp, masks.astype(np.float32), random_maps, masks


def test_classifier_sees_the_lesions(setup):
    f, x, xp, *_ = setup
    assert np.all(np.asarray(f(jnp.asarray(x))) > 0.9)
    assert np.all(np.asarray(f(jnp.asarray(xp))) < 0.3)


def test_iou(setup):
    _, _, _, mask_maps, random_maps, masks = setup
    # a binary map ties every background pixel at the threshold (ties are kept): break them
    good = localization_metrics(mask_maps + 1e-3 * random_maps, masks, percentiles=(90, 95))
    rand = localization_metrics(random_maps, masks, percentiles=(90, 95))
    assert np.all(good["iou"].mean(axis=1) > rand["iou"].mean(axis=1) + 0.2)
    assert np.all(good["fnr"].mean(axis=1) < rand["fnr"].mean(axis=1) - 0.2)


def test_aopc(setup):
    f, x, xp, mask_maps, random_maps, _ = setup
    good = aopc_curves(f, x, xp, mask_maps, steps=24, patch_size=2)
    rand_map = aopc_curves(f, x, xp, random_maps, steps=24, patch_size=2)
    rand_order = aopc_random(f, x, xp, jax.random.key(2), steps=24, patch_size=2)
    g = np.asarray(good.aopc).mean(axis=0)
    for other in (rand_map, rand_order):
        o = np.asarray(other.aopc).mean(axis=0)
        assert g[-1] > o[-1] + 0.2
        assert np.all(g[1:] >= o[1:])


def test_relevance(setup):
    f, x, xp, mask_maps, random_maps, _ = setup
    good = deletion_preservation(f, x, xp, mask_maps)   # 32 groups of 32 px
    rand = deletion_preservation(f, x, xp, random_maps)
    # the harmonic combination: a random map scores above 0, well below the true mask
    assert float(jnp.min(rand.r)) > 0.0
    assert float(jnp.mean(good.r)) > float(jnp.mean(rand.r)) + 0.3
    assert float(jnp.mean(good.auc_deletion)) < float(jnp.mean(rand.auc_deletion))
    assert float(jnp.mean(good.auc_preservation)) > float(jnp.mean(rand.auc_preservation))
