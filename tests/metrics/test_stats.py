"""Paired bootstrap intervals and the constant-map share against independent references."""

from __future__ import annotations

import numpy as np
import pytest

from advpath_jax.metrics import constant_map_share, paired_bootstrap


def _loop_bootstrap(d, n_resamples, level, seed):
    """The same resampling written as a plain loop, one resample at a time."""
    rng = np.random.default_rng(seed)
    means = []
    for _ in range(n_resamples):
        idx = rng.integers(0, d.size, size=d.size)
        means.append(sum(d[i] for i in idx) / d.size)
    tail = 100 * (1 - level) / 2
    return np.percentile(means, [tail, 100 - tail])


def test_interval_matches_a_direct_resampling_loop():
    d = np.random.default_rng(1).normal(0.02, 0.1, size=37)
    got = paired_bootstrap(d, n_resamples=300, seed=7)
    low, high = _loop_bootstrap(d, 300, 0.95, 7)
    np.testing.assert_allclose([got["low"], got["high"]], [low, high], rtol=1e-12)
    assert got["n"] == 37 and got["n_resamples"] == 300 and got["level"] == 0.95


def test_known_difference_is_covered_and_matches_the_normal_approximation():
    rng = np.random.default_rng(0)
    d = 0.1 + rng.normal(0.0, 0.05, size=400)  # a true paired difference of 0.1
    got = paired_bootstrap(d, n_resamples=2000, seed=0)
    assert got["low"] < 0.1 < got["high"]
    assert got["verdict"] == "holds"
    # closed form: mean ± 1.96 s / sqrt(n)
    half = 1.96 * d.std(ddof=1) / np.sqrt(d.size)
    np.testing.assert_allclose([got["low"], got["high"]], [d.mean() - half, d.mean() + half], atol=0.15 * half)
    neg = paired_bootstrap(-d, seed=0)
    assert neg["verdict"] == "does not hold" and neg["high"] < 0


def test_zero_difference_is_inconclusive():
    e = np.random.default_rng(2).normal(0.0, 0.2, size=100)
    sym = paired_bootstrap(np.concatenate([e, -e]), seed=3)  # sample mean exactly 0
    assert sym["low"] < 0 < sym["high"] and sym["verdict"] == "inconclusive"
    ties = paired_bootstrap(np.zeros(50))
    assert ties["low"] == ties["high"] == 0.0 and ties["verdict"] == "inconclusive"
    one = paired_bootstrap([0.3])
    assert one["low"] is None and one["verdict"] == "inconclusive"
    assert paired_bootstrap(d := np.arange(5.0), seed=4) == paired_bootstrap(d, seed=4)  # seeded


def test_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        paired_bootstrap([0.1, np.nan])
    with pytest.raises(ValueError, match="level"):
        paired_bootstrap([0.1, 0.2], level=1.5)


def test_constant_map_share():
    rng = np.random.default_rng(0)
    maps = rng.random((4, 5, 5))
    maps[1] = 0.0                       # all zero
    maps[2] = 3.0                       # constant
    maps[3] = 1.0
    maps[3, 0, 0] = 1.0 + 1e-7          # spread 1e-7 <= 1e-6 * 1.0000001: constant
    assert constant_map_share(maps) == 0.75
    maps[3, 0, 0] = 1.01                # a real spread
    assert constant_map_share(maps) == 0.5
    with pytest.raises(ValueError, match="maps"):
        constant_map_share(np.zeros((0, 3, 3)))
