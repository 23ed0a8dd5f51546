"""Feature relevance R: deletion (MoRF) and preservation (LeRF) curves.

Both curves track the predicted class's score ``s`` (``f`` for class 1, ``1 - f`` for
class 0, class from the unperturbed image) while regions (patches, see
``advpath_jax.metrics.regions``) are replaced by the same pixels of the adversarial
perturbation image ``x_perturbed``:

* deletion: most relevant region first (a good map makes ``s`` fall fast);
* preservation: least relevant region first (a good map keeps ``s`` high).

The x-axis is the fraction of regions replaced, ``k / R`` in ``[0, 1]``; each AUC is the
trapezoid rule on that axis. The way the published metric combines the two curves is not
public; this project uses ``R = AUC_preservation - AUC_deletion`` (inferred) and always
reports both AUCs beside ``R``. A random map gives ``R ≈ 0`` in expectation.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from advpath_jax.metrics._checks import check_images, check_maps
from advpath_jax.metrics.regions import (
    default_patch_size,
    perturbation_curve,
    predicted_class_scores,
    rank_regions,
    region_grid,
    region_relevance,
)
from advpath_jax.metrics.stats import by_class


class RelevanceResult(NamedTuple):
    """Per-image deletion / preservation curves and their AUCs.

    fractions: ``np.ndarray [K]``, fraction of regions replaced (0 .. 1).
    deletion, preservation: ``[B, K]`` predicted-class scores.
    auc_deletion, auc_preservation, r: ``[B]``; ``r = auc_preservation - auc_deletion``.
    pred: ``int32 [B]`` predicted class.
    """

    fractions: np.ndarray
    deletion: jax.Array
    preservation: jax.Array
    auc_deletion: jax.Array
    auc_preservation: jax.Array
    r: jax.Array
    pred: jax.Array


def trapezoid_auc(curves, fractions) -> jax.Array:
    """Trapezoid-rule area under ``curves [B, K]`` over the x-axis ``fractions [K]``."""
    curves = jnp.asarray(curves)
    x = jnp.asarray(fractions, curves.dtype)
    if curves.ndim != 2 or x.shape != (curves.shape[1],):
        raise ValueError(f"curves [B, K] and fractions [K] expected, got {curves.shape} and {x.shape}")
    widths = jnp.diff(x)
    return jnp.sum(widths * (curves[:, 1:] + curves[:, :-1]) * 0.5, axis=1)


def replacement_counts(n_regions: int, n_steps: int | None) -> np.ndarray:
    """Region counts ``round(linspace(0, R, n_steps + 1))`` (all of ``0..R`` when None)."""
    if n_steps is None:
        n_steps = n_regions
    if not (1 <= n_steps <= n_regions):
        raise ValueError(f"n_steps must lie in [1, {n_regions}] (the number of regions), got {n_steps}")
    return np.round(np.linspace(0.0, n_regions, n_steps + 1)).astype(np.int32)


def deletion_preservation(
    f,
    x: jax.Array,
    x_perturbed: jax.Array,
    maps: jax.Array,
    *,
    n_steps: int | None = None,
    patch_size: int | None = None,
    chunk_size: int = 32,
    step_batch: int = 1,
) -> RelevanceResult:
    """Deletion and preservation curves of each image, their AUCs and ``R``.

    Args:
      f: pure score function ``[N, H, W, C] -> [N]`` (may be a ``jax.tree_util.Partial``).
      x: ``[B, H, W, C]`` images in [0, 1].
      x_perturbed: ``[B, H, W, C]`` adversarial perturbation images.
      maps: ``[B, H, W]`` relevance maps.
      n_steps: number of intervals of the x-axis (``n_steps + 1`` evaluations per curve);
        None evaluates after every region.
      patch_size: region side; default ``default_patch_size(H, W)`` (9 at 224).
      chunk_size: images per chunk; step_batch: steps per call of ``f``.
    """
    x = check_images(x, "x")
    maps = check_maps(maps)
    if maps.shape != x.shape[:3]:
        raise ValueError(f"maps: expected shape {tuple(x.shape[:3])}, got {tuple(maps.shape)}")
    xp = check_images(x_perturbed, "x_perturbed")
    if xp.shape != x.shape:
        raise ValueError(f"x_perturbed: expected shape {tuple(x.shape)}, got {tuple(xp.shape)}")
    ps = int(patch_size) if patch_size is not None else default_patch_size(x.shape[1], x.shape[2])
    _, n_regions = region_grid(x.shape[1], x.shape[2], ps)
    counts = replacement_counts(n_regions, n_steps)
    fractions = counts / n_regions

    relevance = region_relevance(maps, ps)
    order = jnp.concatenate(
        [rank_regions(relevance, descending=True), rank_regions(relevance, descending=False)], axis=0
    )
    b = x.shape[0]
    f0, fk = perturbation_curve(
        f, jnp.concatenate([x, x], 0), jnp.concatenate([xp, xp], 0), order, counts,
        patch_size=ps, chunk_size=chunk_size, step_batch=step_batch,
    )
    pred, _, sk = predicted_class_scores(f0[:b], fk[:b])
    _, _, sk_pres = predicted_class_scores(f0[:b], fk[b:])
    auc_del = trapezoid_auc(sk, fractions)
    auc_pres = trapezoid_auc(sk_pres, fractions)
    return RelevanceResult(fractions, sk, sk_pres, auc_del, auc_pres, auc_pres - auc_del, pred)


def relevance_summary(result: RelevanceResult) -> dict:
    """Mean/std/n of ``R`` and both AUCs per predicted class ``"0"``, ``"1"`` and ``"ALL"``.

    Returns ``{"0": {"R": {...}, "auc_deletion": {...}, "auc_preservation": {...}}, "1": ..., "ALL": ...}``
    with each leaf ``{"mean", "std", "n"}`` (see ``advpath_jax.metrics.stats.summarize``).
    """
    pred = np.asarray(result.pred)
    out: dict = {}
    for name, values in (
        ("R", result.r), ("auc_deletion", result.auc_deletion), ("auc_preservation", result.auc_preservation)
    ):
        for cls, stats in by_class(np.asarray(values), pred).items():
            out.setdefault(cls, {})[name] = stats
    return out
