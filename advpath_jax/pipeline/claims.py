"""The paper's findings as paired comparisons, with bootstrap evidence from per-image metrics.

Findings (paper, Table 1 and Table 2), and the same for SyCE's manifold-path maps:

* ``a``: E_FI (each of v1, v2, kσ) >= E of the same generator (CyCE, SyCE; SyCE:M_FI^* >= SyCE:E);
* ``b``: E_FI,kσ^v2 is the best localiser (compared with every other method but Random);
* ``c``: the adversarial-path maps beat Gradient, IG and GradCAM.

Each comparison ``A vs B`` is the per-image difference ``metric(A) - metric(B)`` on the same
images (IoU at each percentile on the scored positives; R and AOPC at L on the balanced
subset), summarised by :func:`advpath_jax.metrics.stats.paired_bootstrap` (mean, 95%
percentile-bootstrap interval, verdict holds / does not hold / inconclusive). Higher is better
for all these metrics.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from advpath_jax.explain.registry import GENERATOR_LABELS, MANIFOLD_METHODS, MAP_KINDS
from advpath_jax.metrics.stats import paired_bootstrap

BASELINES = ("Gradient", "IG", "GradCAM")
RANDOM = "Random"
FI_KINDS = tuple(k for k in MAP_KINDS if k != "E")
BEST = "E_FI,kσ^v2"
TITLES = {
    "a": "E_FI (v1, v2, kσ) >= E of the same generator",
    "b": "E_FI,kσ^v2 is the best localiser",
    "c": "the adversarial-path maps beat Gradient, IG and GradCAM",
}


def claim_pairs(methods: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
    """``{claim: [(A, B), ...]}`` for the methods present in ``methods`` (A should win)."""
    present = set(methods)
    gens = [GENERATOR_LABELS[g] for g in ("cyce", "syce")]
    manifold = [m for m in MANIFOLD_METHODS if m in present]
    pairs: dict[str, list[tuple[str, str]]] = {"a": [], "b": [], "c": []}
    for g in gens:
        pairs["a"] += [(f"{g}:{k}", f"{g}:E") for k in FI_KINDS]
    pairs["a"] += [(m, "SyCE:E") for m in manifold]
    for g in gens:
        best = f"{g}:{BEST}"
        pairs["b"] += [(best, other) for other in methods if other not in (best, RANDOM)]
    path_maps = [f"{g}:{k}" for g in gens for k in MAP_KINDS] + manifold
    pairs["c"] += [(m, b) for m in path_maps for b in BASELINES]
    return {c: [(a, b) for a, b in ps if a in present and b in present] for c, ps in pairs.items()}


def per_image_scores(per_image: Mapping, aopc_label: str) -> dict[str, dict[str, np.ndarray]]:
    """``{method: {metric label: [n]}}`` from the ``per_image`` block of the results."""
    out = {}
    for name, entry in per_image["methods"].items():
        scores = {f"IoU p{p}": np.asarray(v, np.float64) for p, v in entry.get("iou", {}).items()}
        if entry.get("R") is not None:
            scores["R"] = np.asarray(entry["R"], np.float64)
        if entry.get("aopc") is not None:
            scores[aopc_label] = np.asarray(entry["aopc"], np.float64)
        out[name] = scores
    return out


def claim_evidence(per_image: Mapping, methods: Sequence[str], *, aopc_label: str = "AOPC",
                   n_resamples: int = 2000, seed: int = 0) -> dict:
    """Bootstrap evidence of every comparison of :func:`claim_pairs`.

    Returns ``{claim: {"title", "comparisons": [{"method", "versus", "metrics": {label:
    paired_bootstrap(...)}}], "tally": {label: {"holds": n, "does not hold": n,
    "inconclusive": n}}}}``.
    """
    scores = per_image_scores(per_image, aopc_label)
    out = {}
    for claim, pairs in claim_pairs(methods).items():
        comparisons, tally = [], {}
        for a, b in pairs:
            metrics = {}
            for label in scores[a]:
                if label not in scores[b]:
                    continue
                diff = scores[a][label] - scores[b][label]
                metrics[label] = paired_bootstrap(diff, n_resamples=n_resamples, seed=seed)
                counts = tally.setdefault(label, {"holds": 0, "does not hold": 0, "inconclusive": 0})
                counts[metrics[label]["verdict"]] += 1
            comparisons.append({"method": a, "versus": b, "metrics": metrics})
        out[claim] = {"title": TITLES[claim], "comparisons": comparisons, "tally": tally}
    return out
