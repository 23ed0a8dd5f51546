"""The named generator losses: SyCE = CyCE + the stable image's two terms, by hand."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from advpath_jax.generators.spec import DEFAULT_WEIGHTS
from advpath_jax.models.discriminator import DiscriminatorSpec, make_discriminator
from advpath_jax.models.unet import UNetSpec, make_unet
from advpath_jax.training.generator_losses import cyce_loss, sagen_loss, syce_loss
from tests.tests_helpers import TinyLogit

SIZE = 16



@pytest.fixture(scope="module")
def setup():
    spec = UNetSpec(base_channels=4, depth=2, in_channels=1, out_channels=1, dropout=0.0, residual=False,
                    head_channels=(4, 4))
    dspec = DiscriminatorSpec(image_size=SIZE, in_channels=1, base_channels=4, layers=2)
    models = {"G0": make_unet(spec, seed=1), "G1": make_unet(spec, seed=2),
              "D0": make_discriminator(dspec, seed=3), "D1": make_discriminator(dspec, seed=4)}
    for m in models.values():
        m.eval()
    f = TinyLogit(nnx.Rngs(0))
    rng = np.random.default_rng(0)
    x0 = jnp.asarray(rng.uniform(size=(3, SIZE, SIZE, 1)), jnp.float32)
    x1 = jnp.asarray(rng.uniform(size=(3, SIZE, SIZE, 1)), jnp.float32)
    return models, f, x0, x1


def _bce(target, logit):
    p = 1.0 / (1.0 + np.exp(-np.asarray(logit, np.float64)))
    return float(np.mean(-(target * np.log(p) + (1 - target) * np.log(1 - p))))


def _rec(a, b):
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    return float(np.mean(d * d) + np.mean(np.abs(d)))


def test_syce_minus_cyce_is_the_two_self_terms(setup):
    models, f, x0, x1 = setup
    w = DEFAULT_WEIGHTS["syce"]
    cyce_total, cyce_terms, a0, a1 = cyce_loss(models, f, x0, x1, w)
    syce_total, syce_terms, b0, b1 = syce_loss(models, f, x0, x1, w)
    np.testing.assert_allclose(np.asarray(a0), np.asarray(b0))  # the same adversaries
    # by hand: the same generator applied again, scored by f, per half
    by_hand = 0.0
    for x, G, y in ((x0, models["G0"], 0.0), (x1, models["G1"], 1.0)):
        same = np.asarray(G(G(x)))
        by_hand += w["rec_self"] * _rec(x, same) + w["cls_self"] * _bce(y, f(jnp.asarray(same)))
    assert float(syce_total) - float(cyce_total) == pytest.approx(by_hand, rel=1e-4, abs=1e-6)
    assert set(syce_terms) == set(cyce_terms) | {"rec_self", "cls_self"}
    for k in cyce_terms:
        assert float(syce_terms[k]) == pytest.approx(float(cyce_terms[k]), rel=1e-5)


def test_cyce_total_is_the_weighted_terms_by_hand(setup):
    models, f, x0, x1 = setup
    w = DEFAULT_WEIGHTS["cyce"]
    total, terms, _, _ = cyce_loss(models, f, x0, x1, w)
    want = 0.0
    for x, G, G_other, D_opp, y in ((x0, models["G0"], models["G1"], models["D1"], 0.0),
                                    (x1, models["G1"], models["G0"], models["D0"], 1.0)):
        a = G(x)
        back = G_other(a)
        want += (w["adv"] * _bce(1 - y, f(a)) + w["gan"] * _bce(1.0, D_opp(a))
                 + w["rec"] * _rec(x, back) + w["cls"] * _bce(y, f(back)))
    assert float(total) == pytest.approx(want, rel=1e-4)
    assert set(terms) == {"adv", "gan", "rec", "cls"}


def test_sagen_loss_by_hand():
    spec = UNetSpec(base_channels=4, depth=2, in_channels=1, out_channels=1, dropout=0.0, residual=False,
                    head_channels=(4, 4))
    G = make_unet(spec, two_heads=True, seed=5)
    G.eval()
    f = TinyLogit(nnx.Rngs(1))
    x = jnp.asarray(np.random.default_rng(1).uniform(size=(4, SIZE, SIZE, 1)), jnp.float32)
    c = jnp.asarray([0.0, 1.0, 0.0, 1.0])
    w = DEFAULT_WEIGHTS["sagen"]
    total, terms = sagen_loss(G, f, x, c, w)
    x_s, x_a = G(x)
    cn = np.asarray(c)
    bce_vec = lambda t, z: float(np.mean(-(t * np.log(jax.nn.sigmoid(np.asarray(z, np.float64)))
                                           + (1 - t) * np.log(1 - jax.nn.sigmoid(np.asarray(z, np.float64))))))
    want = (w["cls"] * bce_vec(cn, f(x_s)) + w["adv"] * bce_vec(1 - cn, f(x_a))
            + w["rec_s"] * _rec(x, x_s) + w["rec_a"] * _rec(x, x_a))
    assert float(total) == pytest.approx(want, rel=1e-4)
    assert set(terms) == {"cls", "adv", "rec_s", "rec_a"}
