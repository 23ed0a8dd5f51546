"""Manifold path: jvp velocity against closed forms and finite differences; the map against a loop."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.tree_util import Partial

import advpath_jax as ap
from advpath_jax.attribution.manifold import (latent_path, manifold_path_attribution,
                                              syce_manifold_path_attribution)


def _linear_decode(w, z):
    """z [B, k] -> images [B, 4, 4, 1] = reshape(z @ w)."""
    return (z @ w).reshape(z.shape[0], 4, 4, 1)


@pytest.fixture(scope="module")
def linear_setup():
    rng = np.random.default_rng(0)
    w = jnp.asarray(rng.normal(size=(3, 16)).astype(np.float32))
    z0 = jnp.asarray(rng.normal(size=(2, 3)).astype(np.float32))
    z1 = jnp.asarray(rng.normal(size=(2, 3)).astype(np.float32))
    return w, z0, z1


def test_linear_decoder_velocity_is_closed_form(linear_setup):
    w, z0, z1 = linear_setup
    path = latent_path(Partial(_linear_decode, w), z0, z1)
    for alpha in (0.0, 0.3, 1.0):
        point, velocity = path(alpha)
        np.testing.assert_allclose(np.asarray(point), np.asarray(_linear_decode(w, z0 + alpha * (z1 - z0))),
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.asarray(velocity), np.asarray(_linear_decode(w, z1 - z0)),
                                   rtol=1e-5, atol=1e-6)


def test_linear_decoder_map_equals_linear_path_map(linear_setup, cnn_f):
    """A linear decoder makes the manifold path the straight line from decode(z0) to decode(z1)."""
    w, z0, z1 = linear_setup
    decode = Partial(_linear_decode, w)
    f = lambda x: cnn_f(jnp.tanh(x))  # noqa: E731  (any smooth f of a 4x4 image)
    f = Partial(f)
    for weight in ("v1", "v2"):
        curved = manifold_path_attribution(f, decode, z0, z1, weight=weight, steps=8)
        straight = ap.path_attribution(f, decode(z0), decode(z1), weight=weight, steps=8)
        np.testing.assert_allclose(np.asarray(curved), np.asarray(straight), rtol=1e-5, atol=1e-9)


def _tanh_decode(w, z):
    return jnp.tanh(z @ w).reshape(z.shape[0], 4, 4, 1)


def test_nonlinear_decoder_velocity_matches_finite_difference(linear_setup):
    w, z0, z1 = linear_setup
    with jax.enable_x64(True):
        w64, a, b = (jnp.asarray(np.asarray(t), jnp.float64) for t in (w, z0, z1))
        path = latent_path(Partial(_tanh_decode, w64), a, b)
        h = 1e-5
        for alpha in (0.2, 0.7):
            _, velocity = path(alpha)
            fd = (path(alpha + h)[0] - path(alpha - h)[0]) / (2 * h)
            np.testing.assert_allclose(np.asarray(velocity), np.asarray(fd), rtol=1e-6, atol=1e-9)


def test_nonlinear_map_equals_python_loop(linear_setup, cnn_params):
    from conftest import tiny_cnn_prob

    w, z0, z1 = linear_setup
    f = Partial(lambda p, x: tiny_cnn_prob(p, x), cnn_params)
    steps = 5
    maps = np.asarray(manifold_path_attribution(f, Partial(_tanh_decode, w), z0, z1, weight="v2",
                                                steps=steps))
    expected = np.zeros((2, 4, 4))
    for m in range(steps):
        alpha = (m + 0.5) / steps
        z = z0 + alpha * (z1 - z0)
        point = _tanh_decode(w, z)
        velocity = jax.jacfwd(lambda t: _tanh_decode(w, z0 + t * (z1 - z0)))(alpha)  # independent route
        g = jax.grad(lambda x: jnp.sum(tiny_cnn_prob(cnn_params, x)))(point)
        expected += np.asarray(jnp.abs(g) * velocity * velocity)[..., 0] / steps
    np.testing.assert_allclose(maps, np.abs(expected), rtol=1e-4, atol=1e-10)


def _syce_pair(seed_offset: int = 0):
    from advpath_jax.models.unet import UNetSpec, make_unet

    spec = UNetSpec(base_channels=4, depth=2)
    gens = {"G0": make_unet(spec, seed=1 + seed_offset), "G1": make_unet(spec, seed=2 + seed_offset)}
    for g in gens.values():
        g.eval()
    return gens


def _by_class(gens, x, c):
    """G_{c_b}(x_b) for each image b (both U-Nets run; the class picks)."""
    return jnp.where((c == 1)[:, None, None, None], gens["G1"](x), gens["G0"](x))


def test_syce_unet_path_ends_at_syce_points():
    from advpath_jax.attribution.manifold import syce_latents

    gens = _syce_pair()
    x = jax.random.uniform(jax.random.key(0), (3, 16, 16, 1))
    c = jnp.array([0, 1, 1])
    x_a = _by_class(gens, x, c)
    x_s = _by_class(gens, x_a, c)
    for cls in (0, 1):
        rows = np.flatnonzero(np.asarray(c) == cls)
        decode, z_start, z_end = syce_latents(gens, x_a[rows], x[rows], cls)
        path = latent_path(decode, z_start, z_end)
        np.testing.assert_allclose(np.asarray(path(0.0)[0]), np.asarray(x_s[rows]), atol=1e-5)
        np.testing.assert_allclose(np.asarray(path(1.0)[0]), np.asarray(x_a[rows]), atol=1e-5)
    f = Partial(lambda x: jax.nn.sigmoid(jnp.mean(x, axis=(1, 2, 3)) * 4 - 2))
    maps = syce_manifold_path_attribution(f, gens, x, x_a, c, steps=4)
    assert maps.shape == (3, 16, 16) and bool(jnp.all(jnp.isfinite(maps)))
    with pytest.raises(ValueError, match="delta"):
        manifold_path_attribution(f, decode, z_start, z_end, weight="delta")
    with pytest.raises(ValueError, match="predicted class"):
        syce_manifold_path_attribution(f, gens, x, x_a, jnp.array([0, 2, 1]), steps=4)
    with pytest.raises(ValueError, match="group_size"):
        syce_manifold_path_attribution(f, gens, x, x_a, c, steps=4, group_size=0)


@pytest.mark.parametrize("group_size", [None, 2, 7])
def test_syce_map_by_class_groups_equals_each_image_alone(group_size):
    """Grouped by class (with padded groups) = each image's path computed alone on its class's U-Net."""
    from advpath_jax.attribution.manifold import syce_latents

    gens = _syce_pair(seed_offset=10)
    x = jax.random.uniform(jax.random.key(3), (5, 16, 16, 1))
    c = jnp.array([1, 0, 0, 1, 0])
    x_a = _by_class(gens, x, c)
    f = Partial(lambda x: jax.nn.sigmoid(jnp.sum(jnp.tanh(3 * x - 1.5), axis=(1, 2, 3)) / 40))
    both = syce_manifold_path_attribution(f, gens, x, x_a, c, multi=True, weights=("v1", "v2"), steps=5,
                                          group_size=group_size)
    single = syce_manifold_path_attribution(f, gens, x, x_a, c, weight="v2", steps=5, group_size=group_size)
    for b in range(5):
        decode, z_start, z_end = syce_latents(gens, x_a[b:b + 1], x[b:b + 1], int(c[b]))
        for name in ("v1", "v2"):
            alone = manifold_path_attribution(f, decode, z_start, z_end, weight=name, steps=5)
            np.testing.assert_allclose(np.asarray(both[name][b]), np.asarray(alone[0]), rtol=1e-5, atol=1e-9)
        np.testing.assert_allclose(np.asarray(single[b]), np.asarray(both["v2"][b]), rtol=1e-5, atol=1e-9)
    assert float(jnp.max(both["v2"])) > 0


def test_class_groups_cover_every_image_once():
    from advpath_jax.attribution.manifold import class_groups, default_group_size

    c = np.array([1, 0, 0, 1, 0, 0, 0])
    groups = class_groups(c, 2)
    assert [(cls, n) for cls, _, n in groups] == [(0, 2), (0, 2), (0, 1), (1, 2)]
    assert all(len(idx) == 2 and np.all(c[idx] == cls) for cls, idx, _ in groups)
    real = np.concatenate([idx[:n] for _, idx, n in groups])
    assert sorted(real.tolist()) == list(range(7))
    assert default_group_size(100, 1) == 13 and default_group_size(100, 4) == 16 and default_group_size(1, 1) == 1


def test_multi_equals_single_on_latent_path(linear_setup, cnn_f):
    from advpath_jax.attribution.manifold import manifold_path_attribution_multi

    w, z0, z1 = linear_setup
    decode = Partial(_tanh_decode, w)
    f = Partial(lambda x: cnn_f(x))
    both = manifold_path_attribution_multi(f, decode, z0, z1, weights=("v1", "v2"), steps=4)
    for name in ("v1", "v2"):
        single = manifold_path_attribution(f, decode, z0, z1, weight=name, steps=4)
        np.testing.assert_allclose(np.asarray(both[name]), np.asarray(single), rtol=1e-5, atol=1e-12)
