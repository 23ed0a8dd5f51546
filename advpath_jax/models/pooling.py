"""Max pooling whose derivative is built from elementwise ops instead of select-and-scatter.

XLA:CPU lowers the gradient of ``lax.reduce_window(max)`` to ``select-and-scatter``, which is
about 15x slower than the forward pass on a ResNet stem ([10, 112, 112, 64], 3x3 stride 2).
:func:`max_pool` has the same value and the same derivative as ``flax.nnx.max_pool``, but
defines its tangent (``jax.custom_jvp``) as: for each window offset in row-major order, the
tangent of the input element at that offset where it is the window's FIRST maximum. That
rule is linear in the tangent and made of strided slices and selects, so JAX transposes it
to interior-padded adds (no scatter) for reverse mode, and forward mode keeps working.

Ties go to the first maximum of the window in row-major order, which is the convention of
XLA's select-and-scatter (select ``>=`` keeps the earlier element) and of PyTorch's
``max_pool2d``; padding never wins (it is ``-inf``). NaNs are not handled specially.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from advpath_jax.models.windows import pad_spatial, window_slices


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2, 3))
def max_pool(x: jax.Array, window: tuple[int, int], strides: tuple[int, int],
             padding: tuple[tuple[int, int], tuple[int, int]]) -> jax.Array:
    """2-D max pooling of ``[B, H, W, C]`` -> ``[B, Ho, Wo, C]`` (padding with ``-inf``).

    Same value as ``nnx.max_pool(x, window, strides, padding)``; the derivative routes each
    output's tangent/cotangent to the first maximum of its window (see the module docstring).
    """
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, *window, 1), (1, *strides, 1),
                             ((0, 0), *padding, (0, 0)))


@max_pool.defjvp
def _max_pool_jvp(window, strides, padding, primals, tangents):
    (x,), (t,) = primals, tangents
    y = max_pool(x, window, strides, padding)
    out_hw = y.shape[1:3]
    x_slices = window_slices(pad_spatial(x, padding, -jnp.inf), window, strides, out_hw)
    t_slices = window_slices(pad_spatial(t, padding, 0.0), window, strides, out_hw)
    taken = jnp.zeros(y.shape, bool)
    t_out = jnp.zeros(y.shape, t.dtype)
    for xs, ts in zip(x_slices, t_slices):
        first = (xs == y) & ~taken
        t_out = t_out + jnp.where(first, ts, jnp.zeros_like(ts))
        taken = taken | first
    return y, t_out
