"""Convolution as a patch product (advpath_jax.models.conv) against XLA's convolution."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax import lax

from advpath_jax.models import conv as conv_mod

DN = ("NHWC", "HWIO", "NHWC")

CASES = [  # (batch, H, W, C_in, C_out, kernel, stride, padding)
    (2, 9, 7, 3, 5, 3, 1, ((1, 1), (1, 1))),
    (2, 9, 8, 3, 4, 3, 2, ((1, 1), (1, 1))),
    (1, 11, 11, 1, 6, 7, 2, ((3, 3), (3, 3))),   # a ResNet stem, odd size
    (3, 6, 5, 4, 7, 1, 2, ((0, 0), (0, 0))),     # strided 1x1 (ResNet downsample)
    (2, 2, 2, 8, 8, 3, 1, ((1, 1), (1, 1))),     # output smaller than the kernel
    (2, 1, 1, 8, 8, 3, 1, ((1, 1), (1, 1))),
    (2, 8, 8, 3, 6, 4, 2, "SAME"),               # the critics' 4x4/2
    (2, 7, 9, 2, 3, 3, 1, "SAME"),
    (2, 7, 9, 2, 3, 3, 2, "VALID"),
    (1, 6, 6, 2, 2, 3, 1, ((2, 0), (0, 1))),     # asymmetric padding
]


def _arrays(case, seed=0):
    b, h, w, cin, cout, k, _, _ = case
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(b, h, w, cin)), jnp.float32)
    kernel = jnp.asarray(rng.normal(size=(k, k, cin, cout)) / np.sqrt(k * k * cin), jnp.float32)
    return x, kernel


def _xla(x, kernel, stride, padding):
    return lax.conv_general_dilated(x, kernel, (stride, stride), padding, dimension_numbers=DN,
                                    precision=lax.Precision.HIGHEST)


def _ours(x, kernel, stride, padding):
    return conv_mod.conv_general_dilated(x, kernel, (stride, stride), padding, dimension_numbers=DN,
                                         precision=lax.Precision.HIGHEST)


@pytest.fixture(autouse=True)
def _matmul(monkeypatch):
    monkeypatch.setenv(conv_mod.CONV_ENV, "matmul")


@pytest.mark.parametrize("case", CASES, ids=[f"k{c[5]}s{c[6]}-{c[1]}x{c[2]}-{c[7]}" for c in CASES])
def test_value_and_both_gradients_equal_xla(case):
    x, kernel = _arrays(case)
    stride, padding = case[6], case[7]
    np.testing.assert_allclose(_ours(x, kernel, stride, padding), _xla(x, kernel, stride, padding),
                               rtol=1e-5, atol=1e-5)
    cot = jnp.asarray(np.random.default_rng(1).normal(size=_xla(x, kernel, stride, padding).shape),
                      jnp.float32)

    def loss(fn):
        return lambda a, b: jnp.sum(fn(a, b, stride, padding) * cot)

    gx, gk = jax.grad(loss(_ours), argnums=(0, 1))(x, kernel)
    rx, rk = jax.grad(loss(_xla), argnums=(0, 1))(x, kernel)
    np.testing.assert_allclose(gx, rx, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gk, rk, rtol=1e-5, atol=1e-5)


def test_second_order_derivative_equals_xla():
    """The critics' gradient penalty differentiates a gradient norm w.r.t. the weights."""
    x, kernel = _arrays((2, 8, 8, 3, 4, 4, 2, "SAME"))

    def penalty(fn):
        def inner(k, a):
            return jnp.sum(jnp.tanh(fn(a, k, 2, "SAME")))
        return lambda k, a: jnp.sum(jax.grad(inner, argnums=1)(k, a) ** 2)

    np.testing.assert_allclose(jax.grad(penalty(_ours))(kernel, x), jax.grad(penalty(_xla))(kernel, x),
                               rtol=1e-4, atol=1e-5)


def _primitives(fn, *args):
    return {eqn.primitive.name for eqn in jax.make_jaxpr(fn)(*args).jaxpr.eqns}


def test_env_selects_the_implementation(monkeypatch):
    x, kernel = _arrays(CASES[0])

    def traced():  # a new function each time: JAX caches traces by function
        return _primitives(lambda a, b: _ours(a, b, 1, ((1, 1), (1, 1))), x, kernel)

    assert "conv_general_dilated" not in traced()
    assert "dot_general" in traced()
    monkeypatch.setenv(conv_mod.CONV_ENV, "xla")
    assert "conv_general_dilated" in traced()
    monkeypatch.setenv(conv_mod.CONV_ENV, "auto")
    expected = "matmul" if jax.default_backend() == "cpu" else "xla"
    assert conv_mod.conv_impl() == expected
    assert conv_mod.conv_impl(patches_on_cpu=False) == "xla"
    monkeypatch.setenv(conv_mod.CONV_ENV, "matmul")
    assert conv_mod.conv_impl(patches_on_cpu=False) == "matmul"
    monkeypatch.setenv(conv_mod.CONV_ENV, "fast")
    with pytest.raises(ValueError, match="ADVPATH_CONV='fast'"):
        conv_mod.conv_impl()


def test_uncovered_cases_use_xla_and_stay_exact():
    x, kernel = _arrays((1, 9, 9, 4, 4, 3, 1, None))
    dilated = conv_mod.conv_general_dilated(x, kernel, (1, 1), ((2, 2), (2, 2)), rhs_dilation=(2, 2),
                                            dimension_numbers=DN)
    ref = lax.conv_general_dilated(x, kernel, (1, 1), ((2, 2), (2, 2)), rhs_dilation=(2, 2),
                                   dimension_numbers=DN)
    np.testing.assert_array_equal(dilated, ref)
    grouped_kernel = kernel[:, :, :2, :]
    grouped = conv_mod.conv_general_dilated(x, grouped_kernel, (1, 1), "SAME", dimension_numbers=DN,
                                            feature_group_count=2)
    assert "conv_general_dilated" in _primitives(
        lambda a: conv_mod.conv_general_dilated(a, grouped_kernel, (1, 1), "SAME", dimension_numbers=DN,
                                                feature_group_count=2), x)
    np.testing.assert_array_equal(grouped, lax.conv_general_dilated(
        x, grouped_kernel, (1, 1), "SAME", dimension_numbers=DN, feature_group_count=2))


def test_layers_built_alike_share_one_graph():
    """The convolution function is part of a module's static graph: it must not differ
    between two models built alike, or every new model would be traced again."""
    a = nnx.graphdef(conv_mod.conv_layer(3, 5, 3, rngs=nnx.Rngs(0)))
    b = nnx.graphdef(conv_mod.conv_layer(3, 5, 3, rngs=nnx.Rngs(1)))
    assert a == b and hash(a) == hash(b)


@pytest.mark.parametrize("patches_on_cpu", [True, False])
def test_conv_layer_matches_a_plain_nnx_conv_with_the_same_parameters(patches_on_cpu):
    ours = conv_mod.conv_layer(3, 5, 3, strides=2, padding="SAME", rngs=nnx.Rngs(0),
                               patches_on_cpu=patches_on_cpu)
    plain = nnx.Conv(3, 5, (3, 3), strides=(2, 2), padding="SAME", rngs=nnx.Rngs(0))
    assert jax.tree.map(jnp.shape, nnx.state(ours, nnx.Param)) == jax.tree.map(jnp.shape, nnx.state(plain, nnx.Param))
    nnx.update(plain, nnx.state(ours, nnx.Param))
    plain.bias[...] = jnp.arange(5.0)
    ours.bias[...] = jnp.arange(5.0)
    x = jnp.asarray(np.random.default_rng(2).uniform(size=(2, 9, 9, 3)), jnp.float32)
    np.testing.assert_allclose(ours(x), plain(x), rtol=1e-5, atol=1e-5)
