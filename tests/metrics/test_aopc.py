"""AOPC against closed forms with toy linear score functions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.tree_util import Partial

from advpath_jax.metrics import (
    aopc_curves,
    aopc_from_scores,
    aopc_random,
    aopc_relative,
    default_patch_size,
    rank_regions,
    region_grid,
    region_relevance,
)

# 4x4 image, 2x2 patches -> regions 0 (top-left), 1 (top-right), 2 (bottom-left), 3 (bottom-right)
REGION_WEIGHT = np.array([0.1, 0.2, 0.3, 0.2])  # total weight of each region in f
PIXEL_W = np.kron(REGION_WEIGHT.reshape(2, 2), np.ones((2, 2))) / 4.0  # [4, 4]
REGION_MAP = np.kron(np.array([[1.0, 4.0], [3.0, 2.0]]), np.ones((2, 2))) / 4.0  # relevance 1,4,3,2


def linear_f(w, x):
    """f(x) = 0.1 + sum(w * x): the drop of replacing a region is its weight times the change."""
    return 0.1 + jnp.sum(x[..., 0] * w, axis=(1, 2))


F = Partial(linear_f, jnp.asarray(PIXEL_W, jnp.float32))


def test_patch_geometry():
    # the divisor of gcd(H, W) nearest to 9 * min(H, W) / 224 (2.57 at 64, 9 at 224, 1.29 at 32)
    assert default_patch_size(224) == 8 and default_patch_size(64) == 2 and default_patch_size(32) == 1
    assert default_patch_size(128) == 4 and default_patch_size(96, 64) == 2
    ids, n = region_grid(4, 6, 2)
    assert n == 6
    np.testing.assert_array_equal(ids, [[0, 0, 1, 1, 2, 2], [0, 0, 1, 1, 2, 2], [3, 3, 4, 4, 5, 5],
                                        [3, 3, 4, 4, 5, 5]])
    # equal-size regions only: a side that leaves border strips is refused
    for h, w, s in ((5, 5, 2), (64, 64, 3), (224, 224, 9)):
        with pytest.raises(ValueError, match="does not tile"):
            region_grid(h, w, s)
    with pytest.raises(ValueError, match="does not tile"):
        region_relevance(np.zeros((1, 64, 64), np.float32), 3)
    for side in (32, 64, 128, 224):
        ids, n = region_grid(side, side, default_patch_size(side))
        np.testing.assert_array_equal(np.bincount(ids.reshape(-1)), default_patch_size(side) ** 2)
    maps = np.random.default_rng(0).random((2, 6, 9)).astype(np.float32)
    ids, n = region_grid(6, 9, 3)
    ref = np.zeros((2, n))
    for b in range(2):
        np.add.at(ref[b], ids.reshape(-1), maps[b].reshape(-1))
    np.testing.assert_allclose(np.asarray(region_relevance(maps, 3)), ref, rtol=1e-6)
    order = rank_regions(jnp.array([[1.0, 3.0, 3.0, 0.0]]), descending=True)
    np.testing.assert_array_equal(np.asarray(order), [[1, 2, 0, 3]])
    order = rank_regions(jnp.array([[1.0, 3.0, 3.0, 1.0]]), descending=False)
    np.testing.assert_array_equal(np.asarray(order), [[0, 3, 1, 2]])


def test_hand_case_class1_and_class0():
    # class 1: x = 1, x_perturbed = 0, f(x0) = 0.9; order by relevance = [1, 2, 3, 0]
    # s_k = 0.9, 0.7, 0.4, 0.2, 0.1; drops 0, .2, .5, .7, .8
    # AOPC(L) = 0, .2/2, .7/3, 1.4/4, 2.2/5
    expected = [0.0, 0.1, 0.7 / 3, 0.35, 0.44]
    ones = np.ones((1, 4, 4, 1), np.float32)
    res = aopc_curves(F, ones, 0 * ones, REGION_MAP[None], steps=4, patch_size=2)
    np.testing.assert_allclose(np.asarray(res.scores[0]), [0.9, 0.7, 0.4, 0.2, 0.1], atol=1e-6)
    np.testing.assert_allclose(np.asarray(res.aopc[0]), expected, atol=1e-6)
    assert int(res.pred[0]) == 1
    # class 0: x = 0, x_perturbed = 1, f(x0) = 0.1, s = 1 - f drops by the same amounts
    res0 = aopc_curves(F, 0 * ones, ones, REGION_MAP[None], steps=4, patch_size=2)
    assert int(res0.pred[0]) == 0
    np.testing.assert_allclose(np.asarray(res0.aopc[0]), expected, atol=1e-6)


def test_equal_regions_closed_form():
    # 6x6, patch 2: nine regions of 4 px; f = 0.05 + 0.9 * mean(x); map = region number + 1,
    # so the order is 8, 7, ..., 0 and every step removes exactly 4/36 of the mean
    f = lambda x: 0.05 + 0.9 * jnp.mean(x, axis=(1, 2, 3))
    x = np.ones((1, 6, 6, 1), np.float32)
    ids, _ = region_grid(6, 6, 2)
    res = aopc_curves(f, x, 0 * x, (ids + 1.0)[None].astype(np.float32), steps=9, patch_size=2)
    s = 0.95 - 0.9 * 4 * np.arange(10) / 36
    np.testing.assert_allclose(np.asarray(res.scores[0]), s, atol=1e-6)
    np.testing.assert_allclose(np.asarray(res.aopc[0]), np.cumsum(s[0] - s) / np.arange(1, 11), atol=1e-6)
    assert abs(float(res.scores[0, -1]) - 0.05) < 1e-6  # everything replaced -> f(x_perturbed)


def test_aopc_from_scores_and_relative():
    s = np.array([[1.0, 0.5, 0.5, 0.0]])
    np.testing.assert_allclose(np.asarray(aopc_from_scores(s))[0], [0, 0.25, 1 / 3, 0.5], atol=1e-7)
    rel = aopc_relative(np.array([[0, 0.4], [0, 0.2]]), np.array([0, 0.1]))
    np.testing.assert_allclose(rel, [0, 0.2])
    with pytest.raises(ValueError, match="lengths"):
        aopc_relative(np.zeros(3), np.zeros(4))


def _nonlinear_f(params, x):
    return jax.nn.sigmoid(jnp.sum(x[..., 0] * params, axis=(1, 2)) - 0.5 * params.sum())


def test_chunking_and_jit_invariance():
    rng = np.random.default_rng(2)
    x = rng.random((5, 9, 9, 1)).astype(np.float32)
    xp = rng.random((5, 9, 9, 1)).astype(np.float32)
    maps = rng.random((5, 9, 9)).astype(np.float32)
    f = Partial(_nonlinear_f, jnp.asarray(rng.normal(size=(9, 9)), jnp.float32))
    a = aopc_curves(f, x, xp, maps, steps=7, patch_size=3, chunk_size=5, step_batch=1)
    b = aopc_curves(f, x, xp, maps, steps=7, patch_size=3, chunk_size=2, step_batch=3)
    np.testing.assert_allclose(np.asarray(a.aopc), np.asarray(b.aopc), atol=1e-6)
    c = jax.jit(lambda x, xp, m: aopc_curves(f, x, xp, m, steps=7, patch_size=3).aopc)(x, xp, maps)
    np.testing.assert_allclose(np.asarray(a.aopc), np.asarray(c), atol=1e-6)
    # independent per-image numpy evaluation of the same definition
    ids, n = region_grid(9, 9, 3)
    rel = np.zeros((5, n))
    for i in range(5):
        np.add.at(rel[i], ids.reshape(-1), maps[i].reshape(-1))
        order = np.argsort(-rel[i], kind="stable")
        img = x[i:i + 1].copy()
        s = []
        for k in range(8):
            if k:
                img[0][ids == order[k - 1]] = xp[i][ids == order[k - 1]]
            s.append(float(f(jnp.asarray(img))[0]))
        s = np.array(s)
        s = s if s[0] >= 0.5 else 1 - s
        np.testing.assert_allclose(np.asarray(a.aopc[i]), np.cumsum(s[0] - s) / np.arange(1, 9), atol=1e-5)


def test_random_baseline():
    ones = np.ones((2, 4, 4, 1), np.float32)
    key = jax.random.key(0)
    r = aopc_random(F, ones, 0 * ones, key, steps=4, patch_size=2, n_repeats=400)
    # every order ends with all regions replaced: s_4 = f(0) = 0.1 exactly
    np.testing.assert_allclose(np.asarray(r.scores[:, -1]), 0.1, atol=1e-6)
    # E[s_k] = 0.9 - k/4 * 0.8 for a uniformly random order (4 regions, total weight 0.8)
    np.testing.assert_allclose(np.asarray(r.scores), np.tile(0.9 - 0.2 * np.arange(5), (2, 1)), atol=0.03)
    again = aopc_random(F, ones, 0 * ones, key, steps=4, patch_size=2, n_repeats=400)
    np.testing.assert_array_equal(np.asarray(r.aopc), np.asarray(again.aopc))
    one = aopc_random(F, ones, 0 * ones, key, steps=4, patch_size=2, n_repeats=1)
    assert one.aopc.shape == (2, 5)


def test_random_baseline_is_the_mean_of_one_curve_per_repeat_and_shares_the_maps_program():
    from advpath_jax.metrics import regions

    rng = np.random.default_rng(3)
    x = rng.uniform(size=(3, 4, 4, 1)).astype(np.float32)
    xp = rng.uniform(size=(3, 4, 4, 1)).astype(np.float32)
    key = jax.random.key(5)
    before = regions._curve._cache_size()
    r = aopc_random(F, x, xp, key, steps=4, patch_size=2, n_repeats=3)
    # the same orders drawn here, each scored as a map would be: the curve of a map that ranks
    # the regions in that order (relevance 4, 3, 2, 1 by rank) is that order's curve
    order = np.asarray(regions.random_region_order(key, 9, 4))
    curves = []
    for rep in range(3):
        maps = np.zeros((3, 4, 4), np.float32)
        for i in range(3):
            for rank, region in enumerate(order[rep * 3 + i]):
                r0, c0 = divmod(int(region), 2)
                maps[i, 2 * r0:2 * r0 + 2, 2 * c0:2 * c0 + 2] = 4 - rank
        curves.append(np.asarray(aopc_curves(F, x, xp, maps, steps=4, patch_size=2).aopc))
    np.testing.assert_allclose(np.asarray(r.aopc), np.mean(curves, axis=0), atol=1e-6)
    # the random orders and the maps ran one compiled curve program (B images), not two
    assert regions._curve._cache_size() - before == 1


def test_bad_input():
    ones = np.ones((1, 4, 4, 1), np.float32)
    with pytest.raises(ValueError, match="steps"):
        aopc_curves(F, ones, 0 * ones, REGION_MAP[None], steps=5, patch_size=2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        aopc_curves(F, 2 * ones, 0 * ones, REGION_MAP[None], steps=2, patch_size=2)
    with pytest.raises(ValueError, match="x_perturbed"):
        aopc_curves(F, ones, ones[:, :3], REGION_MAP[None], steps=2, patch_size=2)
    with pytest.raises(ValueError, match="maps"):
        aopc_curves(F, ones, ones, REGION_MAP[None, :3], steps=2, patch_size=2)
    with pytest.raises(ValueError, match="output shape"):
        aopc_curves(lambda x: x[:, 0, 0, :], ones, ones, REGION_MAP[None], steps=2, patch_size=2)
