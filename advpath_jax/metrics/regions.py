"""Patch regions and region-perturbation curves (shared by AOPC and feature relevance).

Regions are non-overlapping ``s x s`` patches tiling the image; ``s`` must divide both
``H`` and ``W``, so every region has the same ``s * s`` pixels (no partial border strips,
which a random ordering would otherwise remove as cheaply as full patches). Regions are
numbered in row-major order. A region's relevance is the sum of the map over its pixels.
``s = 1`` makes every pixel a region (the pixel ranking of the deletion / preservation
curves).

Ordering: regions sorted by relevance, most relevant first (or least relevant first);
equal relevance is broken by the lower region number first.

A perturbation curve evaluates ``f`` on ``x_k``: ``x`` whose first ``k`` regions (in the
given order) are replaced by the same pixels of ``x_perturbed``, for a list of counts ``k``.
It is one jitted program: ``lax.map`` over chunks of images, ``lax.scan`` over groups of
counts, so peak memory is about ``chunk_size * step_batch`` images whatever ``B`` and the
number of steps.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from advpath_jax.attribution.core import as_partial
from advpath_jax.models.probability import predicted_class
from advpath_jax.validation import as_float_array, check_images, check_maps, is_concrete

REFERENCE_PATCH = 9  # patch side at 224 x 224 (paper)
REFERENCE_SIZE = 224


def default_patch_size(height: int, width: int | None = None) -> int:
    """Patch side for AOPC: the divisor of ``gcd(H, W)`` nearest to ``9 * min(H, W) / 224``.

    The paper uses 9 x 9 patches at 224 x 224, which do not tile 224; the nearest side that
    tiles the image exactly is taken instead (8 at 224, 2 at 64, 1 at 32; on a tie the
    larger side).
    """
    width = height if width is None else width
    target = REFERENCE_PATCH * min(height, width) / REFERENCE_SIZE
    common = math.gcd(int(height), int(width))
    divisors = [d for d in range(1, common + 1) if common % d == 0]
    return min(divisors, key=lambda d: (abs(d - target), -d))


def region_grid(height: int, width: int, patch_size: int) -> tuple[np.ndarray, int]:
    """Region number of every pixel, ``int32 [H, W]``, and the number of regions.

    Raises:
      ValueError: ``patch_size`` < 1 or not a divisor of both ``H`` and ``W``.
    """
    if patch_size < 1:
        raise ValueError(f"patch_size must be >= 1, got {patch_size}")
    if height % patch_size or width % patch_size:
        raise ValueError(
            f"patch_size={patch_size} does not tile a {height}x{width} image into equal regions; "
            f"use a divisor of {math.gcd(height, width)} (default_patch_size gives "
            f"{default_patch_size(height, width)})"
        )
    n_rows, n_cols = height // patch_size, width // patch_size
    rows = np.arange(height) // patch_size
    cols = np.arange(width) // patch_size
    ids = (rows[:, None] * n_cols + cols[None, :]).astype(np.int32)
    return ids, n_rows * n_cols


@partial(jax.jit, static_argnames=("patch_size",))
def _region_relevance(maps, patch_size):
    b, h, w = maps.shape
    s = patch_size
    n_rows, n_cols = h // s, w // s
    return maps.reshape(b, n_rows, s, n_cols, s).sum(axis=(2, 4)).reshape(b, n_rows * n_cols)


def region_relevance(maps: jax.Array, patch_size: int) -> jax.Array:
    """Summed relevance of every region: ``[B, H, W] -> [B, R]``."""
    maps = check_maps(maps)
    region_grid(maps.shape[1], maps.shape[2], int(patch_size))  # tiling check
    return _region_relevance(maps, int(patch_size))


def order_to_rank(order: jax.Array) -> jax.Array:
    """Inverse permutation per row: ``rank[b, order[b, j]] = j``. ``[B, R] -> [B, R]``."""
    b, r = order.shape
    return jnp.zeros((b, r), jnp.int32).at[jnp.arange(b)[:, None], order].set(
        jnp.broadcast_to(jnp.arange(r, dtype=jnp.int32), (b, r))
    )


@partial(jax.jit, static_argnames=("descending",))
def rank_regions(scores: jax.Array, descending: bool = True) -> jax.Array:
    """Order of regions by score: ``order[b, j]`` = region at position ``j``. ``[B, R]``.

    ``descending=True`` puts the largest score first (MoRF); ties go to the lower region
    number first in both directions.
    """
    b, r = scores.shape
    keys = scores + 0.0
    keys = -keys if descending else keys
    idx = jnp.broadcast_to(jnp.arange(r, dtype=jnp.int32), (b, r))
    _, order = lax.sort((keys, idx), dimension=1, num_keys=2)
    return order


def random_region_order(key: jax.Array, batch: int, n_regions: int) -> jax.Array:
    """Independent uniform random orders of the regions: ``int32 [B, R]``."""
    keys = jax.random.split(key, batch)
    return jax.vmap(lambda k: jax.random.permutation(k, n_regions))(keys).astype(jnp.int32)


def _pad_rows(a: jax.Array, multiple: int) -> jax.Array:
    pad = (-a.shape[0]) % multiple
    if pad == 0:
        return a
    return jnp.concatenate([a, jnp.repeat(a[-1:], pad, axis=0)], axis=0)


@partial(jax.jit, static_argnames=("patch_size", "chunk_size", "step_batch"))
def _curve(f, x, x_perturbed, region_rank, counts, patch_size, chunk_size, step_batch):
    b, h, w, c = x.shape
    n_counts = counts.shape[0]
    ids, _ = region_grid(h, w, patch_size)
    # position, in the replacement order, of the region of each pixel: [B, H, W]
    pixel_rank = region_rank[:, jnp.asarray(ids)]

    chunk = min(chunk_size, b)
    n_chunks = -(-b // chunk)
    xs = _pad_rows(x, chunk).reshape(n_chunks, chunk, h, w, c)
    xps = _pad_rows(x_perturbed, chunk).reshape(n_chunks, chunk, h, w, c)
    prs = _pad_rows(pixel_rank, chunk).reshape(n_chunks, chunk, h, w)
    groups = _pad_rows(counts, step_batch).reshape(-1, step_batch)  # [G, S]

    def call_f(images):
        out = f(images)
        if out.shape != (images.shape[0],):
            raise ValueError(
                f"f must map [N, H, W, C] -> [N]; got output shape {out.shape} for input {images.shape}"
            )
        return out.astype(jnp.float32)

    def per_chunk(args):
        xc, xpc, prc = args
        f0 = call_f(xc)

        def step(carry, ks):  # ks: [S]
            replace = prc[None] < ks[:, None, None, None]  # [S, chunk, H, W]
            images = jnp.where(replace[..., None], xpc[None], xc[None])
            scores = call_f(images.reshape(step_batch * chunk, h, w, c))
            return carry, scores.reshape(step_batch, chunk)

        _, scores = lax.scan(step, None, groups)  # [G, S, chunk]
        scores = scores.reshape(-1, chunk)[:n_counts]  # [K, chunk]
        return f0, scores.T

    f0, scores = lax.map(per_chunk, (xs, xps, prs))
    return f0.reshape(-1)[:b], scores.reshape(-1, n_counts)[:b]


def perturbation_curve(
    f,
    x: jax.Array,
    x_perturbed: jax.Array,
    order: jax.Array,
    counts,
    *,
    patch_size: int,
    chunk_size: int = 32,
    step_batch: int = 1,
) -> tuple[jax.Array, jax.Array]:
    """Scores of ``f`` while regions are replaced in the given order.

    Args:
      f: pure score function ``[N, H, W, C] -> [N]`` (probability of class 1).
      x: ``[B, H, W, C]`` images in [0, 1].
      x_perturbed: ``[B, H, W, C]`` replacement images (same shape).
      order: ``int [B, R]`` region order (``order[b, 0]`` replaced first).
      counts: ``int [K]`` numbers of replaced regions at which to evaluate ``f``.
      patch_size: region side in pixels.
      chunk_size: images evaluated together; bounds memory.
      step_batch: counts evaluated in one call of ``f`` (``chunk_size * step_batch`` images).

    Returns:
      ``(f(x) [B], f(x_k) [B, K])`` float32 (raw class-1 probabilities).
    """
    x = check_images(as_float_array(x, "x"), name="x")
    x_perturbed = check_images(as_float_array(x_perturbed, "x_perturbed"), name="x_perturbed")
    if x_perturbed.shape != x.shape:
        raise ValueError(f"x_perturbed: expected shape {tuple(x.shape)}, got {tuple(x_perturbed.shape)}")
    _, n_regions = region_grid(x.shape[1], x.shape[2], patch_size)
    order = jnp.asarray(order, jnp.int32)
    if order.shape != (x.shape[0], n_regions):
        raise ValueError(f"order: expected shape {(x.shape[0], n_regions)}, got {tuple(order.shape)}")
    counts = jnp.asarray(counts, jnp.int32).reshape(-1)
    if counts.size == 0:
        raise ValueError("counts: expected at least one count")
    if is_concrete(counts) and (int(jnp.min(counts)) < 0 or int(jnp.max(counts)) > n_regions):
        raise ValueError(f"counts must lie in [0, {n_regions}] (number of regions)")
    if chunk_size < 1 or step_batch < 1:
        raise ValueError("chunk_size and step_batch must be >= 1")
    return _curve(
        as_partial(f), x, x_perturbed, order_to_rank(order), counts,
        int(patch_size), int(chunk_size), int(step_batch),
    )


def predicted_class_scores(f0: jax.Array, fk: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Scores of the predicted class ``c = 1[f(x) >= 0.5]``: ``f`` for 1, ``1 - f`` for 0.

    Args: ``f0 [B]``, ``fk [B, K]``. Returns ``(pred int32 [B], s0 [B], sk [B, K])``.
    """
    pred = predicted_class(f0)
    s0 = jnp.where(pred == 1, f0, 1.0 - f0)
    sk = jnp.where(pred[:, None] == 1, fk, 1.0 - fk)
    return pred, s0, sk
