"""Decision-threshold figures, against direct counts and a brute-force threshold search."""

import numpy as np
import pytest

from advpath_jax.metrics.classification import accuracy, balanced_accuracy, best_balanced_threshold


def test_accuracy_and_balanced_accuracy_by_hand():
    scores = [0.9, 0.6, 0.4, 0.3, 0.2, 0.1, 0.55, 0.7]
    labels = [1, 1, 1, 0, 0, 0, 0, 0]
    # at 0.5: positives 0.9, 0.6 right, 0.4 wrong (TPR 2/3); negatives 0.55, 0.7 wrong (TNR 3/5)
    assert accuracy(scores, labels) == pytest.approx(5 / 8)
    assert balanced_accuracy(scores, labels) == pytest.approx((2 / 3 + 3 / 5) / 2)
    assert balanced_accuracy(scores, labels, threshold=0.35) == pytest.approx((1 + 3 / 5) / 2)


def test_a_majority_vote_has_balanced_accuracy_one_half():
    scores = np.full(10, 0.2)
    labels = np.r_[np.zeros(9), 1]
    assert accuracy(scores, labels) == pytest.approx(0.9)
    assert balanced_accuracy(scores, labels) == pytest.approx(0.5)


def test_best_threshold_matches_a_brute_force_search():
    rng = np.random.default_rng(0)
    labels = (rng.uniform(size=200) < 0.3).astype(int)
    scores = np.clip(0.25 + 0.2 * labels + 0.15 * rng.normal(size=200), 0, 1)  # shifted low: best t < 0.5
    t, bal = best_balanced_threshold(scores, labels)
    grid = np.linspace(0, 1, 20001)
    brute = max(balanced_accuracy(scores, labels, g) for g in grid)
    assert bal == pytest.approx(brute, abs=1e-12)
    assert balanced_accuracy(scores, labels, t) == pytest.approx(bal, abs=1e-12)
    assert t < 0.5 and bal > balanced_accuracy(scores, labels)


def test_best_threshold_is_the_midpoint_of_the_separating_gap():
    t, bal = best_balanced_threshold([0.1, 0.2, 0.3, 0.7, 0.8], [0, 0, 0, 1, 1])
    assert (t, bal) == (pytest.approx(0.5), 1.0)
    t, _ = best_balanced_threshold([0.1, 0.2, 0.62, 0.9], [0, 0, 1, 1])
    assert t == pytest.approx(0.41)


def test_refuses_one_class_and_bad_scores():
    with pytest.raises(ValueError, match="both classes"):
        balanced_accuracy([0.1, 0.9], [1, 1])
    with pytest.raises(ValueError, match="NaN"):
        best_balanced_threshold([np.nan, 0.2], [0, 1])


def test_roc_auc_equals_the_pairwise_definition_with_ties():
    """AUC = P(score of a positive > score of a negative) + 1/2 P(equal), counted over all pairs."""
    from advpath_jax.metrics.classification import roc_auc

    rng = np.random.default_rng(3)
    scores = np.round(rng.random(40), 1)  # many ties
    labels = (rng.random(40) < 0.4).astype(int)
    pos, neg = scores[labels == 1], scores[labels == 0]
    pairs = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    assert abs(roc_auc(scores, labels) - pairs) < 1e-12
    with pytest.raises(ValueError, match="both classes"):
        roc_auc([0.1, 0.2], [1, 1])
