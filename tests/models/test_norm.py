"""advpath_jax.models.norm.BatchNorm against flax's nnx.BatchNorm, the reference it rewrites."""

from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from advpath_jax.models.norm import BatchNorm


def _pair(channels=5, momentum=0.9, epsilon=1e-5, seed=0):
    """Ours and flax's, with the same (non-trivial) scale, bias and running statistics."""
    ours = BatchNorm(channels, momentum=momentum, epsilon=epsilon, rngs=nnx.Rngs(0))
    ref = nnx.BatchNorm(channels, momentum=momentum, epsilon=epsilon, rngs=nnx.Rngs(0))
    rng = np.random.default_rng(seed)
    for name, low in (("scale", 0.5), ("bias", -1.0), ("mean", -1.0), ("var", 0.5)):
        value = jnp.asarray(rng.uniform(low, 2.0, size=(channels,)), jnp.float32)
        getattr(ours, name).set_value(value)
        getattr(ref, name).set_value(value)
    return ours, ref


def _image(shape=(3, 6, 4, 5), seed=1):
    return jnp.asarray(np.random.default_rng(seed).normal(2.0, 3.0, size=shape), jnp.float32)


@pytest.mark.parametrize("shape", [(3, 6, 4, 5), (7, 5)])
def test_train_mode_output_and_running_statistics_equal_flax(shape):
    ours, ref = _pair(channels=shape[-1])
    x = _image(shape)

    @nnx.jit
    def call(m, x):
        return m(x, use_running_average=False)

    np.testing.assert_allclose(call(ours, x), call(ref, x), rtol=1e-5, atol=1e-5)
    for name in ("mean", "var"):  # updated in place, the same way
        np.testing.assert_allclose(getattr(ours, name).get_value(), getattr(ref, name).get_value(), rtol=1e-6)
    batch_mean = np.mean(np.asarray(x).reshape(-1, shape[-1]), axis=0)
    assert not np.allclose(ours.mean.get_value(), batch_mean)  # a running average, not the batch mean


def test_gradients_equal_flax():
    ours, ref = _pair()
    x = _image()
    target = _image(seed=2)

    def grads(model):
        def loss(m, x):
            return jnp.sum(jnp.tanh(m(x, use_running_average=False)) * target)
        return nnx.grad(loss, argnums=(0, 1))(model, x)

    (g_ours, gx_ours), (g_ref, gx_ref) = grads(ours), grads(ref)
    np.testing.assert_allclose(gx_ours, gx_ref, rtol=1e-4, atol=1e-5)
    for name in ("scale", "bias"):
        np.testing.assert_allclose(getattr(g_ours, name).get_value(), getattr(g_ref, name).get_value(),
                                   rtol=1e-4, atol=1e-5)


def test_eval_mode_uses_running_statistics_like_flax():
    ours, ref = _pair()
    ours.eval()
    ref.eval()
    x = _image()
    np.testing.assert_allclose(ours(x), ref(x), rtol=1e-6, atol=1e-6)
    manual = (x - ours.mean.get_value()) / jnp.sqrt(ours.var.get_value() + 1e-5) * ours.scale.get_value() \
        + ours.bias.get_value()
    np.testing.assert_allclose(ours(x), manual, rtol=1e-5, atol=1e-5)


def test_state_has_flax_names_so_checkpoints_are_unchanged():
    ours, ref = _pair()
    flat = lambda m: sorted(str(p) for p, _ in nnx.to_flat_state(nnx.state(m)))
    assert flat(ours) == flat(ref)


def test_train_mode_tracing_never_builds_a_tracer_error_message():
    """flax's indexed update asks a tracer for its sharding; JAX then walks the whole trace to
    word the error (the cost this class removes). Ours must not ask at all."""
    from jax._src.interpreters import partial_eval as pe

    def forbidden(self):
        raise AssertionError("a tracer error message was built while tracing")

    def trace(model):  # as the trainer traces a step: merge the module inside the program
        graphdef, state = nnx.split(model)

        def step(state, x):
            return nnx.merge(graphdef, state)(x, use_running_average=False)

        jax.jit(step).lower(state, _image())

    with mock.patch.object(pe.DynamicJaxprTracer, "_origin_msg", forbidden):
        trace(_pair()[0])  # ours: passes
        with pytest.raises(AssertionError, match="tracer error message"):
            trace(_pair()[1])  # flax's: this is what the class is for
