"""The project's one Gaussian kernel and the smoothing applied with ``jax.lax.conv``.

Kernel: ``k[i, j] ∝ exp(-((i - c)² + (j - c)²) / (2σ²))`` with ``c = (size - 1) / 2`` and
``Σ k = 1``. It is applied as a cross-correlation with zero padding that keeps the
image size: ``(size - 1) // 2`` pixels before and ``size // 2`` after (so an even
kernel, like the paper's 28×28, is centred half a pixel up-left of a pixel, exactly as
``scipy.ndimage.correlate(..., mode="constant", origin=-1)`` for even sizes).

:func:`normalized_blur` is the border-normalised blur ``smooth(v) / smooth(1)`` with an odd
kernel covering ±3σ (:func:`kernel_size`): the perturbation of MPert, MGen and the
deletion check (a constant image stays constant up to its border).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

PAPER_KERNEL_SIZE = 28
PAPER_SIGMA = 2.0
PAPER_IMAGE_SIZE = 224


def gaussian_kernel(size: int, sigma: float) -> np.ndarray:
    """Normalised 2-D Gaussian kernel ``[size, size]`` (float32)."""
    if int(size) != size or size < 1:
        raise ValueError(f"kernel size must be a positive integer, got {size!r}")
    if not np.isfinite(sigma) or sigma <= 0:
        raise ValueError(f"sigma must be a positive number, got {sigma!r}")
    coords = np.arange(int(size), dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(coords ** 2) / (2.0 * float(sigma) ** 2))
    k = np.outer(g, g)
    return (k / k.sum()).astype(np.float32)


def paper_smoothing(image_size: int) -> tuple[int, float]:
    """The paper's kernel (28×28, σ = 2 at 224 px) scaled to ``image_size``: ``(size, sigma)``."""
    scale = image_size / PAPER_IMAGE_SIZE
    size = max(1, int(round(PAPER_KERNEL_SIZE * scale)))
    return size, PAPER_SIGMA * scale


def gaussian_smooth(images: jax.Array, size: int, sigma: float) -> jax.Array:
    """Smooth ``[B, H, W]`` maps or ``[B, H, W, C]`` images channel by channel.

    Uses ``jax.lax.conv_general_dilated`` (a depth-wise convolution); zero padding, same size.
    """
    kernel = jnp.asarray(gaussian_kernel(size, sigma), dtype=images.dtype)
    squeeze = images.ndim == 3
    x = images[..., None] if squeeze else images
    if x.ndim != 4:
        raise ValueError(f"expected [B, H, W] or [B, H, W, C], got shape {tuple(images.shape)}")
    channels = x.shape[-1]
    rhs = jnp.tile(kernel[:, :, None, None], (1, 1, 1, channels))  # HWIO, I = 1 per group
    pad = ((size - 1) // 2, size // 2)
    out = jax.lax.conv_general_dilated(
        x, rhs, window_strides=(1, 1), padding=(pad, pad),
        dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=channels,
        precision=jax.lax.Precision.HIGHEST,
    )
    return out[..., 0] if squeeze else out


def kernel_size(sigma: float) -> int:
    """Odd Gaussian support covering ±3σ: ``2⌈3σ⌉ + 1``."""
    return 2 * int(math.ceil(3.0 * sigma)) + 1


def _border_norm(h: int, w: int, size: int, sigma: float) -> np.ndarray:
    """``smooth(1)`` for an ``[h, w]`` image (zero padding as in ``gaussian_smooth``), in numpy.

    The kernel is separable, so this is the outer product of two 1-D sums; computing it
    here keeps it out of the compiled program.
    """
    g = gaussian_kernel(size, sigma).astype(np.float64).sum(axis=1)  # the 1-D factor (sums to 1)
    before, after = (size - 1) // 2, size // 2

    def one_axis(n: int) -> np.ndarray:
        inside = np.pad(np.ones(n), (before, after))
        return np.correlate(inside, g, mode="valid")

    return np.outer(one_axis(h), one_axis(w)).astype(np.float32)


def normalized_blur(images: jax.Array, sigma: float) -> jax.Array:
    """Gaussian blur of ``[B, H, W]`` or ``[B, H, W, C]`` that ignores pixels outside the image.

    ``smooth(v) / smooth(1)`` with the project's kernel of size :func:`kernel_size`: a
    constant image stays constant up to its border.
    """
    size = kernel_size(sigma)
    norm = jnp.asarray(_border_norm(images.shape[1], images.shape[2], size, sigma), images.dtype)
    if images.ndim == 4:
        norm = norm[..., None]
    return gaussian_smooth(images, size, sigma) / norm
