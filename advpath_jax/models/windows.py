"""Strided window slices of an NHWC image, written so that their transpose is a plain pad.

Shared by :mod:`advpath_jax.models.pooling` (the max-pool derivative) and
:mod:`advpath_jax.models.conv` (convolution as patches x kernel matrix).
"""

from __future__ import annotations

from collections.abc import Iterator

import jax
import jax.numpy as jnp
from jax import lax

Padding2D = tuple[tuple[int, int], tuple[int, int]]


def pad_spatial(x: jax.Array, padding: Padding2D, value: float) -> jax.Array:
    """Pad the two spatial axes of ``[B, H, W, C]`` with ``value``."""
    return lax.pad(x, jnp.asarray(value, x.dtype),
                   ((0, 0, 0), (*padding[0], 0), (*padding[1], 0), (0, 0, 0)))


def window_slices(x_padded: jax.Array, window: tuple[int, int], strides: tuple[int, int],
                  out_hw: tuple[int, int]) -> Iterator[jax.Array]:
    """Yield, for each window offset ``(i, j)`` in row-major order, ``x[:, i::s0, j::s1, :]``
    cut to ``[B, Ho, Wo, C]``.

    The strided slice is written as a reshape into (block, phase) axes and a contiguous
    slice, whose transpose is a plain pad (XLA makes an interior-padded scatter otherwise).
    """
    (s0, s1), (ho, wo) = strides, out_hw
    hb = max(-(-x_padded.shape[1] // s0), (window[0] - 1) // s0 + ho)
    wb = max(-(-x_padded.shape[2] // s1), (window[1] - 1) // s1 + wo)
    x_padded = pad_spatial(x_padded, ((0, hb * s0 - x_padded.shape[1]), (0, wb * s1 - x_padded.shape[2])), 0.0)
    blocks = x_padded.reshape(x_padded.shape[0], hb, s0, wb, s1, x_padded.shape[3])
    for di in range(window[0]):
        for dj in range(window[1]):
            yield blocks[:, di // s0: di // s0 + ho, di % s0, dj // s1: dj // s1 + wo, dj % s1, :]
