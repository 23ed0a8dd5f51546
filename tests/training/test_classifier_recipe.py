"""The classifier recipe's settings: the monitored metric, early stopping, the threshold report."""

import ml_collections
import numpy as np
import pytest

from advpath_jax.errors import AdvpathError
from advpath_jax.training.classifier import classifier_monitor, threshold_report, validation_figures
from advpath_jax.training.trainer import FitOptions


def test_monitor_defaults_to_auc_and_refuses_unknown_metrics():
    assert classifier_monitor(ml_collections.ConfigDict({"epochs": 3})) == "auc"
    assert classifier_monitor(ml_collections.ConfigDict({"monitor": "balanced_accuracy"})) == "balanced_accuracy"
    with pytest.raises(AdvpathError, match="classifier.monitor"):
        classifier_monitor(ml_collections.ConfigDict({"monitor": "loss"}))


def test_early_stop_patience_is_read_from_the_section():
    section = ml_collections.ConfigDict({"epochs": 30, "early_stop_patience": 4, "progress": False})
    opts = FitOptions.from_config(section, seed=1)
    assert (opts.epochs, opts.early_stop_patience, opts.seed) == (30, 4, 1)
    assert FitOptions.from_config(ml_collections.ConfigDict({"epochs": 3}), seed=0).early_stop_patience == 0


def test_threshold_report_of_a_shifted_classifier():
    # A perfect ranking whose logit offset is shifted: everything scores below 0.5.
    probs = np.array([0.05, 0.1, 0.15, 0.2, 0.3, 0.35, 0.4, 0.45])
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    report = threshold_report(probs, labels)
    assert report["val_accuracy"] == pytest.approx(0.5)  # all predicted 0 at 0.5
    assert report["val_balanced_accuracy"] == pytest.approx(0.5)
    assert report["val_best_threshold"] == pytest.approx(0.25)  # midway between 0.2 and 0.3
    assert report["val_best_balanced_accuracy"] == pytest.approx(1.0)
    figures = validation_figures(probs, labels)
    assert figures == pytest.approx({"auc": 1.0, "accuracy": 0.5, "balanced_accuracy": 0.5})
