"""Localisation metrics: percentile thresholding of maps, IoU and FNR against lesion masks.

Thresholding (``percentile_threshold_masks``, the one place of the project that turns a
relevance map into a binary region ``B``), for a map of ``N = H*W`` pixels at percentile
``p`` (``0 <= p < 100``):

* ``ties="percentile"`` (default, the authors' localisation code:
  ``map >= np.percentile(map, p)``): ``B`` is every pixel whose value is ``>=`` the
  p-th percentile value ``t_p`` of the map, with numpy's default ("linear") definition:
  sort the values ascending ``v_0 <= ... <= v_{N-1}``, ``i = (N - 1) p / 100``,
  ``t_p = v_floor(i) + (i - floor(i)) (v_ceil(i) - v_floor(i))``. Pixels tied at the
  threshold are all kept, so a constant map keeps every pixel.
* ``ties="index"``: exactly ``n_keep(N, p) = max(1, ceil(N (100 - p) / 100))`` pixels, the
  largest first, equal values ranked by row-major pixel index (lower index first), so every
  method is scored with the same area.
* ``-0.0`` and ``0.0`` are the same value. NaN maps are rejected.

Scores, on positive images only (every ground-truth mask must be non-empty):
``IoU = |GT ∩ B| / |GT ∪ B|`` and ``FNR = |B \\ GT| / |B| = 1 - |GT ∩ B| / |B|`` (the share
of the thresholded map that lies outside the annotation, as the paper defines it).
"""

from __future__ import annotations

import math
from functools import partial
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from advpath_jax.validation import check_maps, check_masks, is_concrete

TIES = ("percentile", "index")


def check_nonempty_masks(masks: jax.Array, name: str = "masks") -> None:
    """Raise if any mask of a concrete batch ``[B, H, W]`` has no foreground pixel."""
    if not is_concrete(masks):
        return
    counts = np.asarray(jnp.sum(masks.reshape(masks.shape[0], -1), axis=1))
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        raise ValueError(
            f"{name}: ground-truth mask is empty for {empty.size} positive image(s) "
            f"(batch indices {empty[:10].tolist()}{'...' if empty.size > 10 else ''}); "
            "IoU/FNR are defined on positives with a non-empty lesion mask"
        )


def n_keep(n_pixels: int, percentile: float) -> int:
    """Pixels kept at ``percentile``: ``max(1, ceil(N * (100 - p) / 100))``."""
    p = float(percentile)
    if not (0.0 <= p < 100.0) or math.isnan(p):
        raise ValueError(f"percentile must satisfy 0 <= p < 100, got {percentile!r}")
    # round first so that e.g. 100 * (100 - 99) / 100 does not become ceil(1.0000000001) = 2
    return max(1, math.ceil(round(n_pixels * (100.0 - p) / 100.0, 9)))


def _normalize_percentiles(percentiles) -> tuple[float, ...]:
    if isinstance(percentiles, (int, float, np.integer, np.floating)):
        percentiles = (percentiles,)
    ps = tuple(float(p) for p in percentiles)
    if not ps:
        raise ValueError("percentiles: expected at least one percentile")
    for p in ps:
        n_keep(1, p)  # range check
    return ps


def _sorted_desc(flat: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Values sorted largest first and their pixel indices; ties by lower index. [B, N]."""
    n = flat.shape[1]
    keys = -(flat + 0.0)  # + 0.0 maps -0.0 to 0.0
    idx = jnp.broadcast_to(jnp.arange(n, dtype=jnp.int32), flat.shape)
    neg_sorted, order = lax.sort((keys, idx), dimension=1, num_keys=2)
    return -neg_sorted, order


def percentile_value_weights(n_pixels: int, percentile: float) -> tuple[int, int, float]:
    """``(lo, hi, gamma)`` of numpy's linear percentile: ``t = v[lo] + gamma (v[hi] - v[lo])``.

    ``v`` is the map sorted ascending; ``i = (N - 1) * p / 100``, ``lo = floor(i)``,
    ``hi = min(lo + 1, N - 1)``, ``gamma = i - lo`` (computed as ``numpy.percentile`` does).
    """
    n_keep(n_pixels, percentile)  # range check
    virtual = (n_pixels - 1) * (float(percentile) / 100.0)
    lo = int(math.floor(virtual))
    return lo, min(lo + 1, n_pixels - 1), virtual - lo


def _percentile_values(flat: jax.Array, percentiles: tuple[float, ...]) -> jax.Array:
    """``np.percentile(map, p)`` (linear) of every row of ``flat [B, N]``: ``[P, B]``."""
    n = flat.shape[1]
    ascending = jnp.sort(flat + 0.0, axis=1)
    rows = []
    for p in percentiles:
        lo, hi, gamma = percentile_value_weights(n, p)
        a, b = ascending[:, lo], ascending[:, hi]
        diff = b - a
        # numpy's _lerp: the formula anchored at the nearer end point
        rows.append(b - diff * (1.0 - gamma) if gamma >= 0.5 else a + diff * gamma)
    # never above the maximum, so B is never empty (rounding cannot push t past v[N-1])
    return jnp.minimum(jnp.stack(rows), ascending[:, -1][None])


@partial(jax.jit, static_argnames=("percentiles", "ties"))
def _threshold(maps: jax.Array, percentiles: tuple[float, ...], ties: str) -> jax.Array:
    b, h, w = maps.shape
    n = h * w
    flat = maps.reshape(b, n) + 0.0  # + 0.0 maps -0.0 to 0.0
    if ties == "index":
        _, order = _sorted_desc(flat)
        keeps = np.array([n_keep(n, p) for p in percentiles], dtype=np.int32)  # [P]
        # rank[b, i] = position of pixel i in the descending order
        rank = jnp.zeros((b, n), jnp.int32).at[jnp.arange(b)[:, None], order].set(
            jnp.broadcast_to(jnp.arange(n, dtype=jnp.int32), (b, n))
        )
        keep = rank[None, :, :] < keeps[:, None, None]  # [P, B, N]
    else:
        thresholds = _percentile_values(flat, percentiles)  # [P, B]
        keep = flat[None, :, :] >= thresholds[:, :, None]
    return keep.reshape(len(percentiles), b, h, w)


def percentile_threshold_masks(
    maps: jax.Array, percentiles: float | Sequence[float], *, ties: str = "percentile"
) -> jax.Array:
    """Binary regions ``B`` of the top ``(100 - p)%`` pixels of each map.

    Args:
      maps: ``[B, H, W]`` relevance maps (larger = more relevant).
      percentiles: one percentile or a sequence of ``P`` percentiles in ``[0, 100)``.
      ties: ``"percentile"`` (all pixels ``>=`` ``np.percentile(map, p)``) or ``"index"``
        (exact pixel count, ties by row-major index); see the module docstring.

    Returns:
      ``bool [P, B, H, W]``.
    """
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, got {ties!r}")
    maps = check_maps(maps)
    return _threshold(maps, _normalize_percentiles(percentiles), ties)


@partial(jax.jit, static_argnames=("percentiles", "ties"))
def _iou_fnr(maps, masks, percentiles, ties):
    regions = _threshold(maps, percentiles, ties)  # [P, B, H, W]
    gt = masks[None]
    inter = jnp.sum(regions & gt, axis=(2, 3)).astype(jnp.float32)
    union = jnp.sum(regions | gt, axis=(2, 3)).astype(jnp.float32)
    kept = jnp.sum(regions, axis=(2, 3)).astype(jnp.float32)  # |B| >= 1 under both rules
    return inter / union, 1.0 - inter / kept


def iou_fnr(
    maps: jax.Array,
    masks: jax.Array,
    percentiles: float | Sequence[float],
    *,
    ties: str = "percentile",
) -> tuple[jax.Array, jax.Array]:
    """Per-image IoU and FNR of thresholded maps against ground-truth masks.

    Args:
      maps: ``[B, H, W]`` maps of positive images.
      masks: ``bool [B, H, W]`` ground-truth lesion masks, each non-empty.
      percentiles: ``P`` percentiles in ``[0, 100)``.
      ties: tie rule of ``percentile_threshold_masks``.

    Returns:
      ``(iou [P, B], fnr [P, B])`` float32.

    Raises:
      ValueError: bad shapes, NaN maps, or an empty ground-truth mask.
    """
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, got {ties!r}")
    maps = check_maps(maps)
    masks = check_masks(masks, maps.shape)
    check_nonempty_masks(masks)
    return _iou_fnr(maps, masks, _normalize_percentiles(percentiles), ties)


def localization_metrics(
    maps,
    masks,
    labels=None,
    percentiles: Sequence[float] = (98, 99),
    *,
    ties: str = "percentile",
) -> dict:
    """IoU and FNR on the positive images of a batch.

    Args:
      maps: ``[B, H, W]``.
      masks: ``bool [B, H, W]``.
      labels: optional ``int [B]``; when given only images with label 1 are scored (every
        one of them must have a non-empty mask). When omitted every image is a positive.
      percentiles: the data set's percentiles.
      ties: tie rule of ``percentile_threshold_masks``.

    Returns:
      ``{"percentiles": [P floats], "index": int [n] (positions of the scored images),
      "iou": np.ndarray [P, n], "fnr": np.ndarray [P, n]}``; ``n`` may be 0.
    """
    maps = check_maps(maps)
    masks = check_masks(masks, maps.shape)
    ps = _normalize_percentiles(percentiles)
    if labels is None:
        index = np.arange(maps.shape[0])
    else:
        labels = np.asarray(labels)
        if labels.shape != (maps.shape[0],):
            raise ValueError(f"labels: expected shape ({maps.shape[0]},), got {labels.shape}")
        index = np.flatnonzero(labels == 1)
    if index.size == 0:
        empty = np.zeros((len(ps), 0), np.float32)
        return {"percentiles": list(ps), "index": index, "iou": empty, "fnr": empty.copy()}
    iou, fnr = iou_fnr(maps[index], masks[index], ps, ties=ties)
    return {"percentiles": list(ps), "index": index, "iou": np.asarray(iou), "fnr": np.asarray(fnr)}
