"""Decision-threshold figures of a binary classifier: accuracy, balanced accuracy, the best threshold.

Scores are probabilities f(x) ``[N]``, labels 0/1 ``[N]`` with both classes present; the
predicted class at threshold ``t`` is ``1[f(x) >= t]`` (the project's rule at
``t = DECISION_THRESHOLD = 0.5``). Balanced accuracy is ``(TPR + TNR) / 2``, the mean of
the two classes' accuracies, so it does not reward predicting the majority class.
"""

from __future__ import annotations

import numpy as np

from advpath_jax.models.probability import DECISION_THRESHOLD


def _check(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, np.float64).ravel()
    y = np.asarray(labels).ravel()
    if s.shape != y.shape:
        raise ValueError(f"scores {s.shape} and labels {y.shape} differ")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores contain NaN or inf")
    pos = y == 1
    if pos.all() or not pos.any():
        raise ValueError(f"both classes are needed, got {int(pos.sum())} positives of {len(y)}")
    return s, pos


def roc_auc(scores, labels) -> float:
    """Area under the ROC curve of ``[N]`` scores against 0/1 labels (both classes present), by the
    trapezoid rule over all distinct thresholds; tied scores count one half (one diagonal step)."""
    s, pos = _check(scores, labels)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    order = np.argsort(-s, kind="stable")
    s, p = s[order], pos[order]
    last_of_group = np.r_[s[1:] != s[:-1], True]
    tp = np.r_[0.0, np.cumsum(p)[last_of_group] / n_pos]
    fp = np.r_[0.0, np.cumsum(~p)[last_of_group] / n_neg]
    return float(np.sum((fp[1:] - fp[:-1]) * (tp[1:] + tp[:-1]) / 2.0))


def accuracy(scores, labels, threshold: float = DECISION_THRESHOLD) -> float:
    """Share of ``[N]`` items whose predicted class ``1[score >= threshold]`` is the label."""
    s, pos = _check(scores, labels)
    return float(np.mean((s >= threshold) == pos))


def balanced_accuracy(scores, labels, threshold: float = DECISION_THRESHOLD) -> float:
    """``(TPR + TNR) / 2`` of the predicted classes ``1[score >= threshold]`` of ``[N]`` items."""
    s, pos = _check(scores, labels)
    predicted = s >= threshold
    return float((predicted[pos].mean() + (~predicted[~pos]).mean()) / 2.0)


def best_balanced_threshold(scores, labels) -> tuple[float, float]:
    """``(threshold, balanced accuracy)`` of the threshold that maximises balanced accuracy.

    Every cut between two consecutive distinct scores is tried; the threshold reported is
    the midpoint of the best cut (the lowest score when everything is predicted 1, just
    above the highest when nothing is). Among equally good cuts the one nearest
    ``DECISION_THRESHOLD`` is taken.
    """
    s, pos = _check(scores, labels)
    values = np.unique(s)  # ascending; cut j predicts 1 for s >= values[j] (j = len: nothing)
    n_pos, n_neg = pos.sum(), (~pos).sum()
    below = np.searchsorted(np.sort(s[pos]), values, side="left")  # positives under each cut
    neg_below = np.searchsorted(np.sort(s[~pos]), values, side="left")
    tpr = np.r_[1.0 - below / n_pos, 0.0]
    tnr = np.r_[neg_below / n_neg, 1.0]
    balanced = (tpr + tnr) / 2.0
    cuts = np.r_[values[0], (values[1:] + values[:-1]) / 2.0, np.nextafter(values[-1], np.inf)]
    best = np.flatnonzero(np.isclose(balanced, balanced.max(), rtol=0.0, atol=1e-12))
    j = best[np.argmin(np.abs(cuts[best] - DECISION_THRESHOLD))]
    return float(cuts[j]), float(balanced[j])
