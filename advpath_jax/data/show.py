"""A grid of examples with their mask contours (matplotlib, written atomically)."""

from __future__ import annotations

import os
import pathlib
from typing import Any, Mapping

import numpy as np

from advpath_jax.io_utils import atomic_write


def pick_examples(labels: np.ndarray, num: int) -> np.ndarray:
    """Indices of up to ``num`` examples: the first positives (half) then the first negatives."""
    labels = np.asarray(labels)
    pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    n_pos = min(len(pos), max(num - min(len(neg), num // 2), 0))
    n_neg = min(len(neg), num - n_pos)
    return np.concatenate([pos[:n_pos], neg[:n_neg]]).astype(int)


def save_example_grid(data: Mapping[str, Any], out: str | os.PathLike, *, title: str = "",
                      columns: int = 4) -> pathlib.Path:
    """Draw image [N,H,W,1] with red mask contours, one panel per example; save to ``out``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    images, masks = np.asarray(data["image"]), np.asarray(data["mask"])
    labels, ids = np.asarray(data["label"]), [str(i) for i in data["id"]]
    n = len(labels)
    if n == 0:
        raise ValueError("no examples to show")
    cols = min(columns, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 3.0 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, ax in enumerate(axes.flat[:n]):
        ax.imshow(images[i, ..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        if masks[i].any():
            ax.contour(masks[i].astype(float), levels=[0.5], colors="red", linewidths=1.0)
        ax.set_title(f"{ids[i]}\nlabel {int(labels[i])}", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    out = pathlib.Path(out)
    fmt = out.suffix.lstrip(".").lower() or "png"
    try:
        with atomic_write(out) as tmp:
            fig.savefig(tmp, format=fmt, dpi=110)
    finally:
        plt.close(fig)
    return out
