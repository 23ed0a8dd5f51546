"""Deterministic class-balanced subset by predicted class.

``balanced_subset(pred, size, seed)`` takes ``size // 2`` images predicted 0 and
``size // 2`` predicted 1 (``size`` must be even). Within each class the images are drawn
without replacement by ``numpy.random.default_rng(seed).permutation`` of that class's
positions (class 0 drawn first from the same generator), so the subset depends only on
``pred``, ``size`` and ``seed``. The returned indices are sorted.
"""

from __future__ import annotations

import numpy as np

SHORTAGE = ("raise", "shrink")


def balanced_subset(pred, size: int, *, seed: int = 0, on_shortage: str = "raise") -> np.ndarray:
    """Indices of a balanced subset.

    Args:
      pred: ``int/bool [N]`` predicted classes (0/1), e.g. ``f(x) >= 0.5``.
      size: even number of images wanted.
      seed: selection seed.
      on_shortage: ``"raise"`` (ValueError when a class has fewer than ``size // 2``
        images) or ``"shrink"`` (use ``min(size // 2, n_0, n_1)`` per class).

    Returns:
      ``int64 [M]`` sorted indices into ``pred`` (``M = size`` unless shrunk).
    """
    if on_shortage not in SHORTAGE:
        raise ValueError(f"on_shortage must be one of {SHORTAGE}, got {on_shortage!r}")
    pred = np.asarray(pred)
    if pred.ndim != 1:
        raise ValueError(f"pred: expected shape [N], got {pred.shape}")
    if pred.dtype.kind == "f":
        raise ValueError("pred: expected predicted classes (int or bool), got floating scores; use f(x) >= 0.5")
    if not np.all((pred == 0) | (pred == 1)):
        raise ValueError("pred: predicted classes must be 0 or 1")
    size = int(size)
    if size < 2 or size % 2:
        raise ValueError(f"size must be a positive even number, got {size}")
    half = size // 2
    pos = [np.flatnonzero(pred == c) for c in (0, 1)]
    short = [c for c in (0, 1) if pos[c].size < half]
    if short and on_shortage == "raise":
        counts = ", ".join(f"class {c}: {pos[c].size}" for c in (0, 1))
        raise ValueError(f"balanced subset of {size} needs {half} images per predicted class ({counts})")
    half = min(half, pos[0].size, pos[1].size)
    rng = np.random.default_rng(seed)
    chosen = [p[rng.permutation(p.size)[:half]] for p in pos]
    return np.sort(np.concatenate(chosen)).astype(np.int64)
