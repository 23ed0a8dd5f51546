"""Feature relevance R (Lim et al., CVPR 2021): deletion and preservation curves.

Both curves track the predicted class's score ``s`` (``f`` for class 1, ``1 - f`` for
class 0, class from the unperturbed image) while the image's pixels are replaced by the same
pixels of the adversarial perturbation image ``x_perturbed``, in equal-size groups along a
pixel ranking of the map (as Lim et al.'s public code, JBNU-VL/RelEx ``utils/evaluations.py``,
which replaces 224 pixels a step at 224 x 224):

* deletion: most relevant pixels first (a good map makes ``s`` fall fast);
* preservation: least relevant pixels first (a good map keeps ``s`` high).

Pixels are ranked by value, ties by the lower row-major index. Group size: ``W`` pixels per
step at ``H x W`` by default (RelEx's rule at 224 x 224; ``H`` steps in all, each ``1/H`` of
the image). The curve may be evaluated after every ``stride``-th group only
(``n_steps = H / stride`` intervals) to save cost; all groups keep the same size.

The x-axis is the fraction of pixels replaced, in ``[0, 1]``; each AUC is the trapezoid rule
on that axis (``D`` deletion, ``P`` preservation). The two are combined by the harmonic mean
of ``1 - D`` and ``P`` (RelEx's ``_calc_comb_avg``)::

    R = 2 (1 - D) P / ((1 - D) + P)        (R = 0 when (1 - D) + P = 0)

R lies in [0, 1]; a random map scores above 0 (about the harmonic mean of two middling
AUCs), a good map close to 1.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from advpath_jax.validation import as_float_array, check_images, check_maps
from advpath_jax.metrics.regions import perturbation_curve, predicted_class_scores, rank_regions
from advpath_jax.metrics.stats import by_class


class RelevanceResult(NamedTuple):
    """Per-image deletion / preservation curves and their AUCs.

    fractions: ``np.ndarray [K]``, fraction of pixels replaced (0 .. 1).
    deletion, preservation: ``[B, K]`` predicted-class scores.
    auc_deletion, auc_preservation, r: ``[B]``; ``r = relevance_r(auc_deletion, auc_preservation)``.
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


def relevance_r(auc_deletion, auc_preservation):
    """``R = 2 (1 - D) P / ((1 - D) + P)`` per image (0 where the denominator is 0). ``[B]``.

    Works on numpy and JAX arrays alike (the report recomputes R with it).
    """
    xp = jnp if isinstance(auc_deletion, jax.Array) or isinstance(auc_preservation, jax.Array) else np
    kept = 1.0 - xp.asarray(auc_deletion)
    pres = xp.asarray(auc_preservation)
    denom = kept + pres
    safe = xp.where(denom > 0, denom, 1.0)
    return xp.where(denom > 0, 2.0 * kept * pres / safe, 0.0)


def replacement_counts(n_pixels: int, group_size: int, n_steps: int | None = None) -> np.ndarray:
    """Pixels replaced at each evaluated point: ``0, g*stride, 2*g*stride, ..., n_pixels``.

    ``n_pixels / group_size`` groups of ``group_size`` pixels; ``n_steps`` intervals (None:
    one per group), which must divide the number of groups so the points are equally spaced.
    """
    if group_size < 1 or n_pixels % group_size:
        raise ValueError(f"group_size={group_size} must be >= 1 and divide the {n_pixels} pixels of an image")
    n_groups = n_pixels // group_size
    n_steps = n_groups if n_steps is None else int(n_steps)
    if not (1 <= n_steps <= n_groups) or n_groups % n_steps:
        raise ValueError(
            f"n_steps={n_steps} must divide the number of pixel groups ({n_groups} groups of "
            f"{group_size} pixels), e.g. {n_groups} (every group) or None"
        )
    return (np.arange(n_steps + 1) * (n_groups // n_steps) * group_size).astype(np.int32)


def deletion_preservation(
    f,
    x: jax.Array,
    x_perturbed: jax.Array,
    maps: jax.Array,
    *,
    n_steps: int | None = None,
    group_size: int | None = None,
    chunk_size: int = 32,
    step_batch: int = 1,
) -> RelevanceResult:
    """Deletion and preservation curves of each image, their AUCs and ``R``.

    Args:
      f: pure score function ``[N, H, W, C] -> [N]`` (may be a ``jax.tree_util.Partial``).
      x: ``[B, H, W, C]`` images in [0, 1].
      x_perturbed: ``[B, H, W, C]`` adversarial perturbation images.
      maps: ``[B, H, W]`` relevance maps (ranked pixel-wise).
      n_steps: intervals of the x-axis (``n_steps + 1`` evaluations per curve); must divide
        the number of groups; None evaluates after every group (RelEx).
      group_size: pixels replaced per group; default ``W`` (224 at 224 x 224, as RelEx).
      chunk_size: images per chunk; step_batch: steps per call of ``f``.
    """
    x = check_images(as_float_array(x, "x"), name="x")
    maps = check_maps(maps)
    if maps.shape != x.shape[:3]:
        raise ValueError(f"maps: expected shape {tuple(x.shape[:3])}, got {tuple(maps.shape)}")
    xp = check_images(as_float_array(x_perturbed, "x_perturbed"), name="x_perturbed")
    if xp.shape != x.shape:
        raise ValueError(f"x_perturbed: expected shape {tuple(x.shape)}, got {tuple(xp.shape)}")
    b, h, w = maps.shape
    group = int(group_size) if group_size is not None else w
    counts = replacement_counts(h * w, group, n_steps)
    fractions = counts / (h * w)

    relevance = maps.reshape(b, h * w)  # pixel-wise ranking: every pixel is a region
    order = jnp.concatenate(
        [rank_regions(relevance, descending=True), rank_regions(relevance, descending=False)], axis=0
    )
    f0, fk = perturbation_curve(
        f, jnp.concatenate([x, x], 0), jnp.concatenate([xp, xp], 0), order, counts,
        patch_size=1, chunk_size=chunk_size, step_batch=step_batch,
    )
    pred, _, sk = predicted_class_scores(f0[:b], fk[:b])
    _, _, sk_pres = predicted_class_scores(f0[:b], fk[b:])
    auc_del = trapezoid_auc(sk, fractions)
    auc_pres = trapezoid_auc(sk_pres, fractions)
    return RelevanceResult(fractions, sk, sk_pres, auc_del, auc_pres, relevance_r(auc_del, auc_pres), pred)


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
