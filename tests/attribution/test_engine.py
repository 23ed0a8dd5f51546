"""Numerics of the path engine against closed forms and independent computations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.tree_util import Partial

import advpath_jax as ap
from advpath_jax.attribution.smoothing import gaussian_kernel
from tests_helpers import numpy_gaussian_smooth  # noqa: F401  (module below, see conftest)


def _linear_f(w, b, x):
    return jnp.sum(w * x, axis=(1, 2, 3)) + b


def _poly_f(c, power, x):
    """Separable polynomial Σ c x^power / power (gradient c x^(power-1))."""
    return jnp.sum(c * x ** power, axis=(1, 2, 3)) / power


@pytest.fixture(scope="module")
def pair3():
    rng = np.random.default_rng(3)
    x = rng.uniform(size=(2, 6, 5, 3)).astype(np.float32)
    xa = rng.uniform(size=(2, 6, 5, 3)).astype(np.float32)
    return x, xa


@pytest.mark.parametrize("weight", ["v1", "v2"])
@pytest.mark.parametrize("rule", ["midpoint", "left", "trapezoid", "gauss-legendre"])
def test_linear_model_closed_form(pair3, weight, rule):
    x, xa = pair3
    w = np.random.default_rng(4).normal(size=x.shape[1:]).astype(np.float32)
    f = Partial(_linear_f, jnp.asarray(w), 0.3)
    maps = ap.path_attribution(f, x, xa, weight=weight, rule=rule, steps=7, reduce_channels=False)
    expected = (xa - x) ** 2 * np.abs(w)[None]
    np.testing.assert_allclose(np.asarray(maps), expected, rtol=1e-5, atol=1e-7)
    summed = ap.path_attribution(f, x, xa, weight=weight, rule=rule, steps=7)
    np.testing.assert_allclose(np.asarray(summed), expected.sum(-1), rtol=1e-5, atol=1e-7)


def _cubic_exact_v1(c, x, xa):
    # |Δ ∫ c (s + uΔ)^2 du · Δ| = Δ^2 |c| |(e^3 - s^3) / (3Δ)|
    delta = xa - x
    return np.abs(c * delta * (xa ** 3 - x ** 3) / 3.0)


def _rule_errors(rule, c, x, xa, steps_list):
    f = Partial(_poly_f, jnp.asarray(c), 3)
    exact = _cubic_exact_v1(c, x.astype(np.float64), xa.astype(np.float64))
    errors = []
    for steps in steps_list:
        maps = np.asarray(ap.path_attribution(f, x, xa, weight="v1", rule=rule, steps=steps,
                                              reduce_channels=False), np.float64)
        errors.append(np.max(np.abs(maps - exact)))
    return np.array(errors)


@pytest.mark.parametrize("rule, order", [("left", 1), ("right", 1), ("midpoint", 2), ("trapezoid", 2)])
def test_rule_convergence_order_on_separable_cubic(pair3, rule, order):
    x, xa = pair3
    c = np.random.default_rng(5).uniform(0.5, 2.0, size=x.shape[1:]).astype(np.float32)
    errors = _rule_errors(rule, c, x, xa, [8, 16, 32])
    observed = np.log2(errors[:-1] / errors[1:])
    assert np.all(np.abs(observed - order) < 0.25), (errors, observed)


def test_gauss_legendre_exact_on_cubic_and_midpoint_trapezoid_exact_on_quadratic(pair3):
    x, xa = pair3
    c = np.random.default_rng(6).uniform(0.5, 2.0, size=x.shape[1:]).astype(np.float32)
    assert _rule_errors("gauss-legendre", c, x, xa, [2])[0] < 1e-5
    f = Partial(_poly_f, jnp.asarray(c), 2)  # gradient linear in u: midpoint and trapezoid exact
    exact = np.abs((xa - x) ** 2 * c * (x + xa) / 2.0)
    for rule in ("midpoint", "trapezoid"):
        maps = ap.path_attribution(f, x, xa, weight="v1", rule=rule, steps=3, reduce_channels=False)
        np.testing.assert_allclose(np.asarray(maps), exact, rtol=1e-5, atol=1e-7)


def test_gauss_legendre_50_matches_midpoint_4000_on_small_cnn(cnn_f, image_pair):
    # v1 keeps the integrand smooth (v2's |∇f| has kinks where a gradient changes sign, which
    # limits every rule to low order); the CNN uses tanh so ∇f is analytic along the path.
    x, xa = image_pair
    gl = ap.path_attribution(cnn_f, x, xa, weight="v1", rule="gauss-legendre", steps=50)
    mid = ap.path_attribution(cnn_f, x, xa, weight="v1", rule="midpoint", steps=4000, chunk_size=500)
    scale = float(jnp.max(jnp.abs(mid)))
    np.testing.assert_allclose(np.asarray(gl), np.asarray(mid), atol=1e-5 * scale, rtol=0)


def test_v1_v2_and_delta_against_a_numpy_loop(cnn_f, cnn_params, image_pair):
    """Second implementation: a plain Python loop over path points with jax.grad per image."""
    from conftest import tiny_cnn_prob

    x, xa = image_pair
    steps = 6
    grad_one = jax.grad(lambda img: tiny_cnn_prob(cnn_params, img[None])[0])
    delta = np.asarray(xa - x, np.float64)
    g_sum = np.zeros_like(delta)
    g_abs = np.zeros_like(delta)
    for b in range(x.shape[0]):
        for m in range(1, steps + 1):
            point = x[b] + (m - 0.5) / steps * (xa[b] - x[b])
            g = np.asarray(grad_one(point), np.float64)
            g_sum[b] += g / steps
            g_abs[b] += np.abs(g) / steps
    v1 = (delta ** 2 * np.abs(g_sum)).sum(-1)
    v2 = (delta ** 2 * g_abs).sum(-1)
    np.testing.assert_allclose(np.asarray(ap.path_attribution(cnn_f, x, xa, weight="v1", steps=steps)),
                               v1, rtol=1e-4, atol=1e-8)
    np.testing.assert_allclose(np.asarray(ap.path_attribution(cnn_f, x, xa, weight="v2", steps=steps)),
                               v2, rtol=1e-4, atol=1e-8)
    np.testing.assert_allclose(np.asarray(ap.path_attribution(cnn_f, x, xa, weight="delta")),
                               np.abs(delta).sum(-1), rtol=1e-6)
    # a user-supplied F: F(g, d) = g^2 d  ->  Δ² Σ w g²
    custom = ap.path_attribution(cnn_f, x, xa, weight=lambda g, d: g * g * d, steps=1)
    g_mid = np.stack([np.asarray(grad_one(x[b] + 0.5 * (xa[b] - x[b]))) for b in range(2)])
    np.testing.assert_allclose(np.asarray(custom), (delta ** 2 * g_mid ** 2).sum(-1), rtol=1e-4, atol=1e-10)


def test_smoothed_v2_is_v2_convolved(cnn_f, image_pair):
    x, xa = image_pair
    v2 = np.asarray(ap.path_attribution(cnn_f, x, xa, weight="v2", steps=8))
    smooth = np.asarray(ap.path_attribution(cnn_f, x, xa, weight="v2", steps=8, smoothing=(5, 1.2)))
    ref = numpy_gaussian_smooth(v2, gaussian_kernel(5, 1.2))
    np.testing.assert_allclose(smooth, ref, rtol=1e-5, atol=1e-6 * v2.max())


@pytest.mark.parametrize("chunk", [1, 3, 4, 10])
def test_chunked_equals_unchunked(cnn_f, image_pair, chunk):
    x, xa = image_pair
    whole = ap.path_attribution(cnn_f, x, xa, steps=10, chunk_size=10)
    chunked = ap.path_attribution(cnn_f, x, xa, steps=10, chunk_size=chunk)
    np.testing.assert_allclose(np.asarray(chunked), np.asarray(whole), rtol=1e-5, atol=1e-9)


def test_integrated_gradients_completeness(cnn_f, image_pair):
    x, _ = image_pair
    ig = ap.integrated_gradients(cnn_f, x, steps=64)
    gap = np.asarray(cnn_f(x) - cnn_f(jnp.zeros_like(x)))
    np.testing.assert_allclose(np.asarray(ig).sum(axis=(1, 2)), gap, rtol=1e-3)


def test_integrated_gradients_matches_pair_saliency(cnn_params, cnn_f, image_pair):
    saliency = pytest.importorskip("saliency.core")
    from conftest import tiny_cnn_prob

    x, _ = image_pair
    n = 20
    grad_batch = jax.jit(jax.grad(lambda xb: jnp.sum(tiny_cnn_prob(cnn_params, xb))))

    def call_model(x_batch, call_model_args=None, expected_keys=None):
        return {saliency.INPUT_OUTPUT_GRADIENTS: np.asarray(grad_batch(jnp.asarray(x_batch)))}

    rule = (np.linspace(0, 1, n), np.full(n, 1.0 / n))  # PAIR's inclusive grid with 1/n weights
    ours = ap.integrated_gradients(cnn_f, x, steps=n, rule=rule, reduce_channels=False)
    for b in range(x.shape[0]):
        ref = saliency.IntegratedGradients().GetMask(np.asarray(x[b]), call_model, x_steps=n,
                                                     batch_size=7)
        np.testing.assert_allclose(np.asarray(ours[b]), ref, rtol=1e-5, atol=1e-7)


def test_gradient_saliency_is_abs_grad(cnn_params, cnn_f, image_pair):
    from conftest import tiny_cnn_prob

    x, _ = image_pair
    g = jax.grad(lambda xb: jnp.sum(tiny_cnn_prob(cnn_params, xb)))(x)
    ref = np.abs(np.asarray(g)).sum(-1)
    np.testing.assert_allclose(np.asarray(ap.gradient_saliency(cnn_f, x)), ref, rtol=1e-5,
                               atol=1e-5 * ref.max())


def test_batch_of_one_and_odd_batch(cnn_f, image_pair):
    x, xa = image_pair
    both = np.asarray(ap.path_attribution(cnn_f, x, xa, steps=4))
    first = np.asarray(ap.path_attribution(cnn_f, x[:1], xa[:1], steps=4))
    np.testing.assert_allclose(first[0], both[0], rtol=1e-5, atol=1e-9)


def test_multi_weight_pass_equals_separate_calls(cnn_f, image_pair):
    x, xa = image_pair
    both = ap.attribution.path_attribution_multi(cnn_f, x, xa, weights=("v1", "v2"), steps=6, chunk_size=4)
    for name in ("v1", "v2"):
        single = ap.path_attribution(cnn_f, x, xa, weight=name, steps=6, chunk_size=4)
        np.testing.assert_allclose(np.asarray(both[name]), np.asarray(single), rtol=1e-5, atol=1e-12)
    with pytest.raises(ValueError, match="delta"):
        ap.attribution.path_attribution_multi(cnn_f, x, xa, weights=("delta",))
