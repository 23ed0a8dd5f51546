"""AOPC: area over the most-relevant-first perturbation curve (Samek et al.).

For an image ``x`` with predicted class ``c = 1[f(x) >= 0.5]``, regions (patches, see
``advpath_jax.metrics.regions``) are ranked by summed relevance, most relevant first. ``x^k``
is ``x`` with its first ``k`` regions replaced by the same pixels of ``x_perturbed`` (the
translator's output for the opposite class; ``x^0 = x``). With ``s`` the score of the
predicted class (``f`` for class 1, ``1 - f`` for class 0):

    AOPC(L) = 1 / (L + 1) * sum_{k=0..L} (s(x^0) - s(x^k)),   L = 0 .. steps.

The random baseline replaces regions in a uniform random order. Figure 2 of the paper plots
AOPC *relative to random*: ``mean AOPC_method(L) - mean AOPC_random(L)`` (difference of the
curves averaged over the same images).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from advpath_jax.validation import as_float_array, check_images, check_maps
from advpath_jax.metrics.regions import (
    default_patch_size,
    perturbation_curve,
    predicted_class_scores,
    random_region_order,
    rank_regions,
    region_grid,
    region_relevance,
)


class AOPCResult(NamedTuple):
    """Per-image AOPC.

    aopc: ``[B, L+1]``, ``aopc[:, L]`` = AOPC(L) for L = 0..steps.
    scores: ``[B, L+1]``, predicted-class score after ``k`` regions were replaced.
    pred: ``int32 [B]`` predicted class of the unperturbed image.
    """

    aopc: jax.Array
    scores: jax.Array
    pred: jax.Array


def aopc_from_scores(scores: jax.Array) -> jax.Array:
    """AOPC curve from predicted-class scores ``[B, L+1]`` (column 0 = ``s(x^0)``)."""
    scores = jnp.asarray(scores)
    drops = scores[:, :1] - scores
    return jnp.cumsum(drops, axis=1) / jnp.arange(1, scores.shape[1] + 1, dtype=scores.dtype)


def _resolve(x, steps, patch_size):
    ps = int(patch_size) if patch_size is not None else default_patch_size(x.shape[1], x.shape[2])
    _, n_regions = region_grid(x.shape[1], x.shape[2], ps)
    if not (0 <= int(steps) <= n_regions):
        raise ValueError(
            f"steps={steps} must lie in [0, {n_regions}] (the number of {ps}x{ps} regions "
            f"of a {x.shape[1]}x{x.shape[2]} image)"
        )
    return ps, n_regions


def _aopc_for_order(f, x, x_perturbed, order, steps, ps, chunk_size, step_batch) -> AOPCResult:
    f0, fk = perturbation_curve(
        f, x, x_perturbed, order, np.arange(steps + 1),
        patch_size=ps, chunk_size=chunk_size, step_batch=step_batch,
    )
    pred, s0, sk = predicted_class_scores(f0, fk)
    # column 0 of fk is f(x^0) = f(x); use s0 so the k = 0 drop is exactly zero
    sk = sk.at[:, 0].set(s0)
    return AOPCResult(aopc_from_scores(sk), sk, pred)


def aopc_curves(
    f,
    x: jax.Array,
    x_perturbed: jax.Array,
    maps: jax.Array,
    *,
    steps: int = 100,
    patch_size: int | None = None,
    chunk_size: int = 32,
    step_batch: int = 1,
) -> AOPCResult:
    """AOPC(L), L = 0..steps, of each image for a map, most relevant region first.

    Args:
      f: pure score function ``[N, H, W, C] -> [N]`` (may be a ``jax.tree_util.Partial``).
      x: ``[B, H, W, C]`` images in [0, 1].
      x_perturbed: ``[B, H, W, C]`` perturbation images (translator output).
      maps: ``[B, H, W]`` relevance maps.
      steps: largest L (number of replaced regions); at most the number of regions.
      patch_size: region side; default ``default_patch_size(H, W)`` (9 at 224).
      chunk_size: images per chunk; step_batch: steps per call of ``f``.
    """
    x = check_images(as_float_array(x, "x"), name="x")
    maps = check_maps(maps)
    if maps.shape != x.shape[:3]:
        raise ValueError(f"maps: expected shape {tuple(x.shape[:3])}, got {tuple(maps.shape)}")
    ps, _ = _resolve(x, steps, patch_size)
    order = rank_regions(region_relevance(maps, ps), descending=True)
    return _aopc_for_order(f, x, x_perturbed, order, int(steps), ps, chunk_size, step_batch)


def aopc_random(
    f,
    x: jax.Array,
    x_perturbed: jax.Array,
    key: jax.Array,
    *,
    steps: int = 100,
    patch_size: int | None = None,
    n_repeats: int = 1,
    chunk_size: int = 32,
    step_batch: int = 1,
) -> AOPCResult:
    """AOPC of the random-ordering baseline, averaged over ``n_repeats`` random orders.

    Same arguments as ``aopc_curves`` with an explicit PRNG ``key`` instead of maps.
    ``pred`` is the predicted class; ``aopc`` and ``scores`` are means over repeats.
    """
    x = check_images(as_float_array(x, "x"), name="x")
    if n_repeats < 1:
        raise ValueError(f"n_repeats must be >= 1, got {n_repeats}")
    ps, n_regions = _resolve(x, steps, patch_size)
    b = x.shape[0]
    order = random_region_order(key, n_repeats * b, n_regions)
    xp = jnp.asarray(x_perturbed)
    if xp.shape != x.shape:
        raise ValueError(f"x_perturbed: expected shape {tuple(x.shape)}, got {tuple(xp.shape)}")
    # One curve per repeat on the B images, each the program ``aopc_curves`` runs on them.
    runs = [_aopc_for_order(f, x, xp, order[r * b:(r + 1) * b], int(steps), ps, chunk_size, step_batch)
            for r in range(n_repeats)]
    mean = lambda name: jnp.mean(jnp.stack([getattr(res, name) for res in runs]), axis=0)
    return AOPCResult(mean("aopc"), mean("scores"), runs[0].pred)


def aopc_relative(method_aopc, random_aopc) -> np.ndarray:
    """AOPC relative to random: ``mean_b AOPC_method - mean_b AOPC_random``, ``[L+1]``.

    Either argument may be per-image ``[B, L+1]`` (averaged over images) or already a mean
    curve ``[L+1]``; both must cover the same steps.
    """
    m = np.asarray(method_aopc, np.float64)
    r = np.asarray(random_aopc, np.float64)
    m = m.mean(axis=0) if m.ndim == 2 else m
    r = r.mean(axis=0) if r.ndim == 2 else r
    if m.ndim != 1 or m.shape != r.shape:
        raise ValueError(f"AOPC curves of different lengths: {m.shape} vs {r.shape}")
    return m - r
