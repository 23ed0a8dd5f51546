"""Summaries of per-image metric values (host side, numpy).

``summarize`` is the one definition of "mean ± std" in reports: arithmetic mean and the
population standard deviation (``ddof = 0``) over the images, with their count; NaN values
are rejected. An empty set gives ``{"mean": None, "std": None, "n": 0}``.

``paired_bootstrap`` gives the evidence of a comparison of two methods on the same images
(mean per-image difference with a seeded percentile-bootstrap interval and a verdict);
``constant_map_share`` the share of degenerate (constant) maps of a method.
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


# ----------------------------------------------------------------------------- paired evidence

VERDICTS = ("holds", "does not hold", "inconclusive")


def paired_bootstrap(differences, *, n_resamples: int = 2000, level: float = 0.95, seed: int = 0) -> dict:
    """Percentile bootstrap interval of the mean of paired per-image differences.

    Args:
      differences: ``[n]`` per-image ``metric(A) - metric(B)`` on the same images.
      n_resamples: bootstrap resamples (images drawn with replacement, ``n`` per resample).
      level: two-sided confidence level of the interval.
      seed: ``numpy.random.default_rng`` seed (the result depends only on the inputs).

    Returns:
      ``{"mean", "low", "high", "n", "level", "n_resamples", "verdict"}``; ``verdict`` is
      ``"holds"`` when ``low > 0``, ``"does not hold"`` when ``high < 0``, otherwise
      ``"inconclusive"`` (also for ``n < 2``, where no interval exists: ``low``/``high`` None).
    """
    d = np.asarray(differences, np.float64).reshape(-1)
    if not np.all(np.isfinite(d)):
        raise ValueError("paired_bootstrap: differences contain NaN or infinite entries")
    if not (0.0 < level < 1.0) or n_resamples < 1:
        raise ValueError(f"paired_bootstrap: need 0 < level < 1 and n_resamples >= 1, got {level}, {n_resamples}")
    out = {"mean": float(d.mean()) if d.size else None, "low": None, "high": None, "n": int(d.size),
           "level": float(level), "n_resamples": int(n_resamples), "verdict": "inconclusive"}
    if d.size < 2:
        return out
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(n_resamples, d.size))].mean(axis=1)  # [n_resamples]
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    out.update(low=float(low), high=float(high))
    out["verdict"] = "holds" if low > 0 else ("does not hold" if high < 0 else "inconclusive")
    return out


def constant_map_share(maps, rel_tol: float = 1e-6) -> float:
    """Share of maps ``[B, H, W]`` that are constant: ``max - min <= rel_tol * max|map|``.

    An all-zero map counts as constant.
    """
    m = np.asarray(maps, np.float64)
    if m.ndim != 3 or m.shape[0] == 0:
        raise ValueError(f"constant_map_share: expected maps [B, H, W] with B > 0, got shape {m.shape}")
    flat = m.reshape(m.shape[0], -1)
    spread = flat.max(axis=1) - flat.min(axis=1)
    return float(np.mean(spread <= rel_tol * np.abs(flat).max(axis=1)))
