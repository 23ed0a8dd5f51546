"""Deletion / preservation curves, trapezoid AUCs and R against hand-computed cases."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from jax.tree_util import Partial

from advpath_jax.metrics import deletion_preservation, relevance_summary, replacement_counts, trapezoid_auc

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


def test_counts():
    np.testing.assert_array_equal(replacement_counts(4, None), [0, 1, 2, 3, 4])
    c = replacement_counts(625, 50)
    assert c[0] == 0 and c[-1] == 625 and len(c) == 51 and np.all(np.diff(c) > 0)
    with pytest.raises(ValueError):
        replacement_counts(4, 5)


def test_hand_case():
    # x = 1, x_perturbed = 0, f(x0) = 0.9 (class 1). Regions: weights .1 .2 .3 .2, relevance 1 4 3 2.
    # deletion order [1,2,3,0]: s = .9 .7 .4 .2 .1 -> AUC = .25 * (.8 + .55 + .3 + .15) = 0.45
    # preservation order [0,3,2,1]: s = .9 .8 .6 .3 .1 -> AUC = .25 * (.85 + .7 + .45 + .2) = 0.55
    ones = np.ones((1, 4, 4, 1), np.float32)
    res = deletion_preservation(F, ones, 0 * ones, REGION_MAP[None], patch_size=2)
    np.testing.assert_allclose(res.fractions, [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(np.asarray(res.deletion[0]), [0.9, 0.7, 0.4, 0.2, 0.1], atol=1e-6)
    np.testing.assert_allclose(np.asarray(res.preservation[0]), [0.9, 0.8, 0.6, 0.3, 0.1], atol=1e-6)
    np.testing.assert_allclose(float(res.auc_deletion[0]), 0.45, atol=1e-6)
    np.testing.assert_allclose(float(res.auc_preservation[0]), 0.55, atol=1e-6)
    np.testing.assert_allclose(float(res.r[0]), 0.10, atol=1e-6)
    # coarser axis: counts 0, 2, 4 -> del .9 .4 .1 (AUC .45), pres .9 .6 .1 (AUC .55)
    coarse = deletion_preservation(F, ones, 0 * ones, REGION_MAP[None], patch_size=2, n_steps=2)
    np.testing.assert_allclose(coarse.fractions, [0, 0.5, 1.0])
    np.testing.assert_allclose(float(coarse.r[0]), 0.10, atol=1e-6)


def test_per_class_summary():
    ones = np.ones((1, 4, 4, 1), np.float32)
    x = np.concatenate([ones, 0 * ones, ones])       # classes 1, 0, 1
    xp = 1.0 - x                                     # the opposite extreme
    maps = np.stack([REGION_MAP, REGION_MAP, REGION_MAP[::-1, ::-1]])
    res = deletion_preservation(F, x, xp, maps, patch_size=2)
    np.testing.assert_array_equal(np.asarray(res.pred), [1, 0, 1])
    # image 1 (class 0): s = 1 - f falls by the same region weights -> same R = 0.1
    # image 2: reversed map -> region relevance 2, 3, 4, 1
    #   deletion order [2, 1, 0, 3] (weights .3 .2 .1 .2):     s = .9 .6 .4 .3 .1
    #   preservation order [3, 0, 1, 2] (weights .2 .1 .2 .3): s = .9 .7 .6 .4 .1
    s_del = np.array([0.9, 0.6, 0.4, 0.3, 0.1])
    s_pres = np.array([0.9, 0.7, 0.6, 0.4, 0.1])
    r2 = np.trapezoid(s_pres, dx=0.25) - np.trapezoid(s_del, dx=0.25)
    np.testing.assert_allclose(np.asarray(res.r), [0.1, 0.1, r2], atol=1e-6)
    summary = relevance_summary(res)
    assert summary["0"]["R"]["n"] == 1 and summary["1"]["R"]["n"] == 2 and summary["ALL"]["R"]["n"] == 3
    np.testing.assert_allclose(summary["1"]["R"]["mean"], (0.1 + r2) / 2, atol=1e-6)
    np.testing.assert_allclose(summary["ALL"]["auc_deletion"]["mean"],
                               (0.45 + 0.45 + np.trapezoid(s_del, dx=0.25)) / 3, atol=1e-6)
