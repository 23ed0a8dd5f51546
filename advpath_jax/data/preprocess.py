"""Small preprocessing pieces shared by the real-data loaders (MSD, RSNA, folder)."""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np
from PIL import Image

from advpath_jax.validation import check_values

SPLITS = ("train", "val", "test")
#: A resized mask pixel is foreground when at least this share of it was (not a class decision).
MASK_AREA_THRESHOLD = 0.5


def minmax_normalise(image: np.ndarray) -> np.ndarray:
    """Rescale one image to [0, 1] (a constant image becomes all zeros). float32."""
    image = np.asarray(image, np.float32)
    check_values(image, name="image", value_range=None)
    lo, hi = float(image.min()), float(image.max())
    if hi <= lo:
        return np.zeros_like(image)
    return (image - lo) / (hi - lo)


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """Bilinear (antialiased when shrinking) resize of a 2-D float image to [size, size]."""
    image = np.asarray(image, np.float32)
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {image.shape}")
    if image.shape == (size, size):
        return image.copy()
    out = Image.fromarray(np.ascontiguousarray(image)).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(out, np.float32)


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """Resize a 2-D boolean mask: bilinear area fraction >= ``MASK_AREA_THRESHOLD``. [size, size] bool."""
    return resize_image(np.asarray(mask, np.float32), size) >= MASK_AREA_THRESHOLD


def to_unit_uint16(image: np.ndarray) -> np.ndarray:
    """[0, 1] float -> uint16 (the storage form of real data sets; step 1/65535)."""
    return np.round(np.clip(image, 0.0, 1.0) * 65535.0).astype(np.uint16)


def scaled_pixel_threshold(pixels: int, native_size: Sequence[int], size: int) -> int:
    """A pixel-count threshold at native resolution scaled to a size x size image.

    The area scales with (size / H) * (size / W); the result is rounded and at least 1.
    """
    h, w = native_size
    return max(1, int(round(pixels * (size / h) * (size / w))))


def split_groups(groups: Sequence[str], fractions: Sequence[float], seed: int) -> dict[str, str]:
    """Assign each distinct group (patient) to train/val/test, deterministically.

    Groups are ordered by a seeded hash of their name (independent of listing order),
    then cut by ``fractions`` (train, val, test). With at least 3 groups, val and test
    each get at least one group when their fraction is positive.
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"split fractions must be 3 non-negative numbers summing to 1, got {tuple(fractions)}")
    unique = sorted(set(groups))
    order = sorted(unique, key=lambda g: hashlib.sha256(f"{seed}:{g}".encode()).hexdigest())
    n = len(order)
    n_val = int(round(fractions[1] * n))
    n_test = int(round(fractions[2] * n))
    if n >= 3:
        n_val = max(n_val, 1 if fractions[1] > 0 else 0)
        n_test = max(n_test, 1 if fractions[2] > 0 else 0)
    n_train = max(0, n - n_val - n_test)
    assignment = {}
    for i, g in enumerate(order):
        assignment[g] = "train" if i < n_train else ("val" if i < n_train + n_val else "test")
    return assignment


def boxes_to_mask(boxes: Sequence[Sequence[float]], native_shape: Sequence[int], size: int) -> np.ndarray:
    """Rasterise (x, y, width, height) boxes given in native pixels onto a size x size grid.

    A pixel is inside when it overlaps the scaled box (covering rasterisation), so every
    box of positive area marks at least one pixel. [size, size] bool.
    """
    h, w = native_shape
    sy, sx = size / h, size / w
    mask = np.zeros((size, size), bool)
    for box in boxes:
        x, y, bw, bh = (float(v) for v in box)
        if not (bw > 0 and bh > 0) or not all(np.isfinite([x, y, bw, bh])):
            raise ValueError(f"box {tuple(box)} must have finite coordinates and positive width and height")
        r0, r1 = int(np.floor(y * sy)), int(np.ceil((y + bh) * sy))
        c0, c1 = int(np.floor(x * sx)), int(np.ceil((x + bw) * sx))
        mask[max(r0, 0): min(r1, size), max(c0, 0): min(c1, size)] = True
    return mask
