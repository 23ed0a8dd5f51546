"""Deletion / preservation curves, trapezoid AUCs and R against hand-computed cases."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from jax.tree_util import Partial

from advpath_jax.metrics import (deletion_preservation, relevance_r, relevance_summary, replacement_counts,
                                 trapezoid_auc)

PIXEL_W = np.kron(np.array([[0.1, 0.2], [0.3, 0.2]]), np.ones((2, 2))) / 4.0
REGION_MAP = np.kron(np.array([[1.0, 4.0], [3.0, 2.0]]), np.ones((2, 2)))  # region relevance 1,4,3,2
F = Partial(lambda w, x: 0.1 + jnp.sum(x[..., 0] * w, axis=(1, 2)), jnp.asarray(PIXEL_W, jnp.float32))


def test_trapezoid_against_numpy():
    rng = np.random.default_rng(0)
    curves = rng.random((3, 6))
    xs = np.sort(rng.random(6))
    np.testing.assert_allclose(np.asarray(trapezoid_auc(curves, xs)), np.trapezoid(curves, xs, axis=1), rtol=1e-6)
    with pytest.raises(ValueError):
        trapezoid_auc(curves, xs[:5])


def harmonic_r(d, p):
    """Lim et al.'s combination, written out: the harmonic mean of 1 - D and P."""
    return 2.0 / (1.0 / (1.0 - d) + 1.0 / p)


def test_counts():
    np.testing.assert_array_equal(replacement_counts(16, 4), [0, 4, 8, 12, 16])
    c = replacement_counts(64 * 64, 64, 16)  # 64 groups of 64 px, every 4th group evaluated
    np.testing.assert_array_equal(c, np.arange(17) * 256)
    assert len(replacement_counts(224 * 224, 224)) == 225  # RelEx: 224 steps of 224 px
    with pytest.raises(ValueError, match="n_steps"):
        replacement_counts(16, 4, 3)   # 4 groups cannot be split into 3 equal intervals
    with pytest.raises(ValueError, match="group_size"):
        replacement_counts(16, 5)      # groups of unequal size


def test_r_is_the_harmonic_mean():
    rng = np.random.default_rng(3)
    d, p = rng.uniform(0.01, 0.99, 50), rng.uniform(0.01, 0.99, 50)
    np.testing.assert_allclose(relevance_r(d, p), harmonic_r(d, p), rtol=1e-12)
    assert float(relevance_r(1.0, 0.0)) == 0.0  # worst case, no division by zero
    np.testing.assert_allclose(float(relevance_r(0.0, 1.0)), 1.0)


def test_hand_case():
    # x = 1, x_perturbed = 0, f(x0) = 0.9 (class 1). Regions: weights .1 .2 .3 .2, relevance 1 4 3 2.
    # Pixel-wise ranking, groups of W = 4 px; the map is constant on 2x2 blocks and ties go to the
    # lower pixel index, so each group is one block.
    # deletion order [1,2,3,0]: s = .9 .7 .4 .2 .1 -> AUC = .25 * (.8 + .55 + .3 + .15) = 0.45
    # preservation order [0,3,2,1]: s = .9 .8 .6 .3 .1 -> AUC = .25 * (.85 + .7 + .45 + .2) = 0.55
    ones = np.ones((1, 4, 4, 1), np.float32)
    res = deletion_preservation(F, ones, 0 * ones, REGION_MAP[None])
    np.testing.assert_allclose(res.fractions, [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(np.asarray(res.deletion[0]), [0.9, 0.7, 0.4, 0.2, 0.1], atol=1e-6)
    np.testing.assert_allclose(np.asarray(res.preservation[0]), [0.9, 0.8, 0.6, 0.3, 0.1], atol=1e-6)
    np.testing.assert_allclose(float(res.auc_deletion[0]), 0.45, atol=1e-6)
    np.testing.assert_allclose(float(res.auc_preservation[0]), 0.55, atol=1e-6)
    # R = 2 (1 - .45) .55 / ((1 - .45) + .55) = .55
    np.testing.assert_allclose(float(res.r[0]), 0.55, atol=1e-6)
    # coarser axis: counts 0, 8, 16 -> del .9 .4 .1 (AUC .45), pres .9 .6 .1 (AUC .55)
    coarse = deletion_preservation(F, ones, 0 * ones, REGION_MAP[None], n_steps=2)
    np.testing.assert_allclose(coarse.fractions, [0, 0.5, 1.0])
    np.testing.assert_allclose(float(coarse.r[0]), 0.55, atol=1e-6)
    # groups of 2 px (8 steps): one block takes two groups, the AUCs are the finer trapezoids
    fine = deletion_preservation(F, ones, 0 * ones, REGION_MAP[None], group_size=2)
    s_del = [0.9, 0.8, 0.7, 0.55, 0.4, 0.3, 0.2, 0.15, 0.1]
    np.testing.assert_allclose(np.asarray(fine.deletion[0]), s_del, atol=1e-6)


def test_groups_are_equal_size_pixel_sets():
    # f counts replaced pixels: the score falls by exactly group_size / N per step
    f = lambda x: 0.05 + 0.9 * jnp.mean(x, axis=(1, 2, 3))
    rng = np.random.default_rng(5)
    x = np.ones((2, 8, 6, 1), np.float32)
    maps = rng.random((2, 8, 6)).astype(np.float32)
    res = deletion_preservation(f, x, 0 * x, maps)  # 8 groups of W = 6 px
    np.testing.assert_allclose(res.fractions, np.arange(9) / 8)
    expected = 0.95 - 0.9 * np.arange(9) / 8
    np.testing.assert_allclose(np.asarray(res.deletion), np.tile(expected, (2, 1)), atol=1e-6)
    np.testing.assert_allclose(np.asarray(res.preservation), np.tile(expected, (2, 1)), atol=1e-6)


def test_per_class_summary():
    ones = np.ones((1, 4, 4, 1), np.float32)
    x = np.concatenate([ones, 0 * ones, ones])       # classes 1, 0, 1
    xp = 1.0 - x                                     # the opposite extreme
    maps = np.stack([REGION_MAP, REGION_MAP, REGION_MAP[::-1, ::-1]])
    res = deletion_preservation(F, x, xp, maps)
    np.testing.assert_array_equal(np.asarray(res.pred), [1, 0, 1])
    # image 1 (class 0): s = 1 - f falls by the same region weights -> same R = 0.55
    # image 2: reversed map -> region relevance 2, 3, 4, 1
    #   deletion order [2, 1, 0, 3] (weights .3 .2 .1 .2):     s = .9 .6 .4 .3 .1
    #   preservation order [3, 0, 1, 2] (weights .2 .1 .2 .3): s = .9 .7 .6 .4 .1
    s_del = np.array([0.9, 0.6, 0.4, 0.3, 0.1])
    s_pres = np.array([0.9, 0.7, 0.6, 0.4, 0.1])
    r2 = harmonic_r(np.trapezoid(s_del, dx=0.25), np.trapezoid(s_pres, dx=0.25))
    np.testing.assert_allclose(np.asarray(res.r), [0.55, 0.55, r2], atol=1e-6)
    summary = relevance_summary(res)
    assert summary["0"]["R"]["n"] == 1 and summary["1"]["R"]["n"] == 2 and summary["ALL"]["R"]["n"] == 3
    np.testing.assert_allclose(summary["1"]["R"]["mean"], (0.55 + r2) / 2, atol=1e-6)
    np.testing.assert_allclose(summary["ALL"]["auc_deletion"]["mean"],
                               (0.45 + 0.45 + np.trapezoid(s_del, dx=0.25)) / 3, atol=1e-6)
