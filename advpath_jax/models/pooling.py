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


def _window_slices(x_padded: jax.Array, window: tuple[int, int], strides: tuple[int, int],
                   out_hw: tuple[int, int]):
    """Yield the strided slice ``[B, Ho, Wo, C]`` of each window offset, row-major.

    The strided slice is written as a reshape into (block, phase) axes and a contiguous
    slice, whose transpose is a plain pad (an interior-padded scatter otherwise).
    """
    (s0, s1), (ho, wo) = strides, out_hw
    hb = max(-(-x_padded.shape[1] // s0), (window[0] - 1) // s0 + ho)
    wb = max(-(-x_padded.shape[2] // s1), (window[1] - 1) // s1 + wo)
    x_padded = lax.pad(x_padded, jnp.asarray(0, x_padded.dtype),
                       ((0, 0, 0), (0, hb * s0 - x_padded.shape[1], 0),
                        (0, wb * s1 - x_padded.shape[2], 0), (0, 0, 0)))
    blocks = x_padded.reshape(x_padded.shape[0], hb, s0, wb, s1, x_padded.shape[3])
    for di in range(window[0]):
        for dj in range(window[1]):
            yield blocks[:, di // s0: di // s0 + ho, di % s0, dj // s1: dj // s1 + wo, dj % s1, :]


def _pad(x: jax.Array, padding, value) -> jax.Array:
    return lax.pad(x, jnp.asarray(value, x.dtype), ((0, 0, 0), (*padding[0], 0), (*padding[1], 0), (0, 0, 0)))


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
    x_slices = _window_slices(_pad(x, padding, -jnp.inf), window, strides, out_hw)
    t_slices = _window_slices(_pad(t, padding, 0.0), window, strides, out_hw)
    taken = jnp.zeros(y.shape, bool)
    t_out = jnp.zeros(y.shape, t.dtype)
    for xs, ts in zip(x_slices, t_slices):
        first = (xs == y) & ~taken
        t_out = t_out + jnp.where(first, ts, jnp.zeros_like(ts))
        taken = taken | first
    return y, t_out
