"""Balanced subset by predicted class."""

from __future__ import annotations

import numpy as np
import pytest

from advpath_jax.metrics import balanced_subset


def test_balanced_and_deterministic():
    pred = (np.random.default_rng(0).random(200) < 0.25).astype(np.int32)
    idx = balanced_subset(pred, 40, seed=3)
    assert idx.shape == (40,) and np.all(np.diff(idx) > 0)
    assert (pred[idx] == 1).sum() == 20 and (pred[idx] == 0).sum() == 20
    np.testing.assert_array_equal(idx, balanced_subset(pred, 40, seed=3))
    assert not np.array_equal(idx, balanced_subset(pred, 40, seed=4))
    np.testing.assert_array_equal(balanced_subset(pred.astype(bool), 40, seed=3), idx)


def test_shortage_and_bad_input():
    pred = np.array([0, 0, 0, 0, 1, 1])
    with pytest.raises(ValueError, match="per predicted class"):
        balanced_subset(pred, 6)
    idx = balanced_subset(pred, 6, on_shortage="shrink")
    assert sorted(pred[idx].tolist()) == [0, 0, 1, 1]
    with pytest.raises(ValueError, match="even"):
        balanced_subset(pred, 3)
    with pytest.raises(ValueError, match="floating"):
        balanced_subset(pred.astype(float), 2)
    with pytest.raises(ValueError, match="0 or 1"):
        balanced_subset(np.array([0, 2]), 2)
