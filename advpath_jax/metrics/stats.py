"""Summaries of per-image metric values (host side, numpy).

``summarize`` is the one definition of "mean ± std" in reports: arithmetic mean and the
population standard deviation (``ddof = 0``) over the images, with their count; NaN values
are rejected. An empty set gives ``{"mean": None, "std": None, "n": 0}``.
"""

from __future__ import annotations

import numpy as np

CLASSES = ("0", "1", "ALL")


def summarize(values) -> dict:
    """``{"mean": float|None, "std": float|None, "n": int}`` of a 1-D array of values."""
    v = np.asarray(values, np.float64).reshape(-1)
    if v.size == 0:
        return {"mean": None, "std": None, "n": 0}
    if not np.all(np.isfinite(v)):
        raise ValueError("summarize: values contain NaN or infinite entries")
    return {"mean": float(v.mean()), "std": float(v.std()), "n": int(v.size)}


def _check_pred(pred, n: int) -> np.ndarray:
    pred = np.asarray(pred)
    if pred.shape != (n,):
        raise ValueError(f"pred: expected shape ({n},), got {pred.shape}")
    if not np.all((pred == 0) | (pred == 1)):
        raise ValueError("pred: predicted classes must be 0 or 1")
    return pred.astype(np.int64)


def by_class(values, pred) -> dict:
    """``summarize`` per predicted class: ``{"0": ..., "1": ..., "ALL": ...}`` of ``values [N]``."""
    v = np.asarray(values, np.float64).reshape(-1)
    pred = _check_pred(pred, v.size)
    return {"0": summarize(v[pred == 0]), "1": summarize(v[pred == 1]), "ALL": summarize(v)}


def mean_curves_by_class(curves, pred) -> dict:
    """Mean curve per predicted class of per-image curves ``[N, K]``: ``{"0", "1", "ALL"} -> [K] or None``."""
    c = np.asarray(curves, np.float64)
    if c.ndim != 2:
        raise ValueError(f"curves: expected [N, K], got shape {c.shape}")
    pred = _check_pred(pred, c.shape[0])
    mean = lambda rows: rows.mean(axis=0).tolist() if rows.shape[0] else None
    return {"0": mean(c[pred == 0]), "1": mean(c[pred == 1]), "ALL": mean(c)}
