"""Localisation metrics: percentile thresholding of maps, IoU and FNR against lesion masks.

Thresholding (``percentile_threshold_masks``, the one place of the project that turns a
relevance map into a binary region):

* A map of ``N = H*W`` pixels at percentile ``p`` (``0 <= p < 100``) keeps
  ``n_keep(N, p) = max(1, ceil(N * (100 - p) / 100))`` pixels: the top ``(100 - p)%``.
* Pixels are ranked by value, largest first. ``ties="index"`` (default): equal values are
  ranked by row-major pixel index, lower index first, and exactly ``n_keep`` pixels are
  kept, so every method is scored with the same area. ``ties="include"``: every pixel whose
  value is ``>=`` the ``n_keep``-th largest value is kept (so a tie at the boundary can keep
  more than ``n_keep`` pixels; a constant map keeps all pixels).
* ``-0.0`` and ``0.0`` are the same value. NaN maps are rejected.

Scores, on positive images only (every ground-truth mask must be non-empty):
``IoU = |GT ∩ B| / |GT ∪ B|`` and ``FNR = 1 - |GT ∩ B| / |GT|`` (the fraction of the
lesion the thresholded map misses), with ``B`` the kept pixels.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from advpath_jax.metrics._checks import check_maps, check_masks, check_nonempty_masks

TIES = ("index", "include")


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


@partial(jax.jit, static_argnames=("percentiles", "ties"))
def _threshold(maps: jax.Array, percentiles: tuple[float, ...], ties: str) -> jax.Array:
    b, h, w = maps.shape
    n = h * w
    flat = maps.reshape(b, n)
    values, order = _sorted_desc(flat)
    keeps = np.array([n_keep(n, p) for p in percentiles], dtype=np.int32)  # [P]
    if ties == "index":
        # rank[b, i] = position of pixel i in the descending order
        rank = jnp.zeros((b, n), jnp.int32).at[jnp.arange(b)[:, None], order].set(
            jnp.broadcast_to(jnp.arange(n, dtype=jnp.int32), (b, n))
        )
        keep = rank[None, :, :] < keeps[:, None, None]  # [P, B, N]
    else:
        thresholds = values[:, keeps - 1].T  # [P, B]
        keep = flat[None, :, :] >= thresholds[:, :, None]
    return keep.reshape(len(percentiles), b, h, w)


def percentile_threshold_masks(
    maps: jax.Array, percentiles: float | Sequence[float], *, ties: str = "index"
) -> jax.Array:
    """Binary regions of the top ``(100 - p)%`` pixels of each map.

    Args:
      maps: ``[B, H, W]`` relevance maps (larger = more relevant).
      percentiles: one percentile or a sequence of ``P`` percentiles in ``[0, 100)``.
      ties: ``"index"`` (exact pixel count, ties by row-major index) or ``"include"``
        (all pixels ``>=`` the boundary value); see the module docstring.

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
    area = jnp.sum(masks, axis=(1, 2)).astype(jnp.float32)[None]
    return inter / union, 1.0 - inter / area


def iou_fnr(
    maps: jax.Array,
    masks: jax.Array,
    percentiles: float | Sequence[float],
    *,
    ties: str = "index",
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
    ties: str = "index",
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
