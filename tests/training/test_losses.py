"""Loss primitives against closed forms and numpy references; AUC against a rank formula."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import rankdata

from advpath_jax.training import losses
from advpath_jax.training.classifier import roc_auc


def _bce(t, p):
    return -(t * np.log(p) + (1 - t) * np.log(1 - p))


def test_rec_is_mse_plus_mae():
    a = np.array([[0.0, 1.0], [0.5, 0.25]], np.float32)
    b = np.array([[1.0, 1.0], [0.0, 0.75]], np.float32)
    # differences -1, 0, 0.5, -0.5: MSE = 1.5/4, MAE = 2/4
    assert float(losses.rec(a, b)) == pytest.approx(0.375 + 0.5)


def test_cls_adv_cls_gan_against_probability_bce():
    logits = np.array([-2.0, 0.3, 1.5], np.float32)
    y = np.array([0.0, 1.0, 1.0], np.float32)
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    assert float(losses.cls(y, logits)) == pytest.approx(_bce(y, p).mean(), rel=1e-5)
    assert float(losses.adv_cls(y, logits)) == pytest.approx(_bce(1 - y, p).mean(), rel=1e-5)
    assert float(losses.gan_g(logits)) == pytest.approx(_bce(1.0, p).mean(), rel=1e-5)
    assert float(losses.gan_d(logits, -logits)) == pytest.approx(
        _bce(1.0, p).mean() + _bce(0.0, 1 / (1 + np.exp(logits))).mean(), rel=1e-5)


def test_weighted_bce_balances_classes():
    logits = np.array([0.2, -1.0, 2.0, 0.5], np.float32)
    y = np.array([1, 0, 0, 0], np.float32)
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    per = _bce(y, p)
    expected = (3 * per[0] + per[1:].sum()) / 6
    assert float(losses.weighted_bce(logits, y, 3.0)) == pytest.approx(expected, rel=1e-5)


def test_gradient_penalty_of_linear_critic():
    # D(x) = <w, x>: the gradient is w everywhere, so the penalty is (|w| - 1)^2 exactly.
    w = jax.random.normal(jax.random.key(1), (4, 4, 1))
    d = lambda x: jnp.sum(x * w, axis=(1, 2, 3))
    real = jnp.ones((3, 4, 4, 1))
    fake = jnp.zeros((3, 4, 4, 1))
    gp = losses.gradient_penalty(d, real, fake, jax.random.key(0))
    assert float(gp) == pytest.approx((float(jnp.linalg.norm(w)) - 1) ** 2, rel=1e-5)


def _rank_auc(scores, labels):
    ranks = rankdata(scores)  # average ranks for ties
    pos = labels == 1
    n1, n0 = pos.sum(), (~pos).sum()
    return (ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_matches_mann_whitney(seed):
    rng = np.random.default_rng(seed)
    labels = (rng.random(200) < 0.3).astype(int)
    scores = np.round(rng.normal(labels * 0.8, 1.0), 1)  # rounding makes many ties
    assert roc_auc(scores, labels) == pytest.approx(_rank_auc(scores, labels), abs=1e-12)


def test_auc_edge_cases():
    assert roc_auc([0.1, 0.2, 0.9], [0, 0, 1]) == 1.0
    assert roc_auc([0.9, 0.2, 0.1], [0, 0, 1]) == 0.0
    assert roc_auc([0.5, 0.5], [0, 1]) == 0.5
    with pytest.raises(ValueError, match="both classes"):
        roc_auc([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="NaN"):
        roc_auc([np.nan, 0.2], [0, 1])
