"""U-Net and discriminator shapes, ranges and exposed pieces."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from advpath_jax.models.discriminator import DiscriminatorSpec, make_discriminator
from advpath_jax.models import unet as unet_module
from advpath_jax.models.unet import UNetSpec, fan_in_normal, make_unet

SPEC = UNetSpec(base_channels=4, depth=2)


@pytest.fixture(scope="module")
def x():
    return jax.random.uniform(jax.random.key(0), (2, 32, 32, 1))


def test_output_shape_and_range(x):
    net = make_unet(SPEC)
    net.eval()
    y = net(3.0 * x - 1.0)  # inputs outside [0, 1] still give a clipped output
    assert y.shape == x.shape
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


def test_encode_decode_head_compose(x):
    net = make_unet(SPEC)
    net.eval()
    bottleneck, skips = net.encode(x)
    assert bottleneck.shape == (2, 8, 8, 16)
    assert [s.shape[1:] for s in skips] == [(32, 32, 4), (16, 16, 8)]
    np.testing.assert_allclose(net.head(net.decode(bottleneck, skips), x), net(x), atol=1e-6)


def test_two_heads_differ_and_are_clipped(x):
    net = make_unet(SPEC, two_heads=True)
    net.eval()
    x_s, x_a = net(x)
    assert x_s.shape == x_a.shape == x.shape
    assert float(jnp.abs(x_s - x_a).max()) > 0
    for y in (x_s, x_a):
        assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    head = net.stable_head
    assert [c.out_features for c in head.convs] == [32, 16] and head.out.out_features == 1


def test_residual_unet_starts_near_identity(x):
    net = make_unet(UNetSpec(base_channels=4, depth=2, residual=True))
    net.eval()
    # with zero head weights the residual U-Net is exactly the (clipped) identity
    net.head_conv.kernel[...] = jnp.zeros_like(net.head_conv.kernel[...])
    net.head_conv.bias[...] = jnp.zeros_like(net.head_conv.bias[...])
    np.testing.assert_allclose(net(x), x, atol=1e-6)


def test_dropout_is_active_in_train_mode_only(x):
    net = make_unet(UNetSpec(base_channels=4, depth=1))
    net.train()
    a, b = net(x), net(x)
    assert float(jnp.abs(a - b).max()) > 0
    net.eval()
    np.testing.assert_array_equal(net(x), net(x))


def test_bad_inputs_are_refused():
    net = make_unet(SPEC)
    with pytest.raises(ValueError, match="divisible by 4"):
        net(jnp.zeros((1, 30, 32, 1)))
    with pytest.raises(ValueError, match=r"\[B, H, W, 1\]"):
        net(jnp.zeros((1, 32, 32, 3)))


def test_discriminator_logits():
    d = make_discriminator(DiscriminatorSpec(image_size=32, base_channels=4, layers=3))
    out = d(jnp.zeros((3, 32, 32, 1)))
    assert out.shape == (3,)
    assert len(d.convs) == 3 and d.dense.in_features == 16 * 4 * 4
    with pytest.raises(ValueError, match="discriminator expects"):
        d(jnp.zeros((3, 64, 64, 1)))


def test_fan_in_normal_matches_he_truncated_normal():
    shape = (3, 3, 16, 256)  # fan_in 144
    w = np.asarray(fan_in_normal(2.0)(jax.random.key(3), shape))
    assert w.shape == shape and w.dtype == np.float32
    std = np.sqrt(2.0 / 144)  # He: Var = 2 / fan_in, kept after truncation
    assert abs(w.std() / std - 1.0) < 0.03 and abs(w.mean()) < 0.02 * std
    assert np.abs(w).max() <= 2.0 * std / 0.87962566103423978 + 1e-6  # cut at 2 raw std
    np.testing.assert_array_equal(w, np.asarray(fan_in_normal(2.0)(jax.random.key(3), shape)))
    assert not np.array_equal(w, np.asarray(fan_in_normal(2.0)(jax.random.key(4), shape)))
    traced = jax.eval_shape(lambda k: fan_in_normal(2.0)(k, shape), jax.random.key(0))
    assert traced.shape == shape


def test_gradient_has_no_scatter_and_equals_xla_max_pool(x, monkeypatch):
    """The down-sampling pool's derivative is elementwise: the optimised gradient program has no
    scatter (``nnx.max_pool``'s has: select-and-scatter), and the gradient is the same."""
    net = make_unet(SPEC)
    net.eval()
    graphdef, params, rest = nnx.split(net, nnx.Param, ...)

    def gradient_program():
        def loss(p, v):
            return jnp.sum(nnx.merge(graphdef, p, rest)(v) ** 2)
        program = jax.jit(jax.grad(loss, argnums=(0, 1)))
        return program, program.lower(params, x).compile().as_text()

    def has_scatter(hlo):
        return "select-and-scatter(" in hlo or " scatter(" in hlo

    ours, ours_hlo = gradient_program()
    monkeypatch.setattr(unet_module, "max_pool", lambda y, window, strides, padding: nnx.max_pool(
        y, window, strides=strides, padding=padding))
    reference, reference_hlo = gradient_program()
    assert not has_scatter(ours_hlo)
    assert has_scatter(reference_hlo)
    for a, b in zip(jax.tree.leaves(ours(params, x)), jax.tree.leaves(reference(params, x))):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
