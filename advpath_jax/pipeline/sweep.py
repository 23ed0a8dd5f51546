"""``advpath sweep --weights v1,v2,...``: score several weight functions F on the paper's metrics.

For one generator (SyCE by default) every F is computed on the same path from ONE pass
of gradients (:func:`advpath_jax.attribution.path_attribution_multi`), optionally also
smoothed (``--smooth``: the kσ variant of each F). The maps are stored and scored like
``advpath run``'s (IoU/FNR, AOPC relative to random orderings, R), and the sweep writes
its own ``report.md`` (one table of localisation, one of R, one AOPC figure) and
``results.json`` under ``WORKDIR/sweep``. Trained models are reused from ``WORKDIR``
(trained first when missing).
"""

from __future__ import annotations

import os
from typing import Sequence

import jax
import numpy as np

import advpath_jax as ap
from advpath_jax.attribution.methods import path_attribution_multi
from advpath_jax.attribution.weights import parse_weight, weight_name
from advpath_jax.data import load_split
from advpath_jax.explain.registry import GENERATOR_LABELS, Explainers
from advpath_jax.pipeline.eval_config import check_eval_section
from advpath_jax.pipeline.report import write_report
from advpath_jax.pipeline.run import (PERTURBATION, attribute_test_rows, build_explainers, evaluate_maps,
                                      evaluation_rows, models_needed, perturbation_fn, train_all)

SWEEP_DIR = "sweep"


def sweep_method_names(kind: str, weights: Sequence[str], smooth: bool) -> list[str]:
    label = GENERATOR_LABELS[kind]
    names = [f"{label}:F={w}" for w in weights]
    if smooth:
        names += [f"{label}:F={w}*kσ" for w in weights]
    return names


def sweep_explain_fn(explainers: Explainers, kind: str, weights: Sequence[str], smooth: bool,
                     smoothing: tuple[int, float]):
    """``explain(x, names, key)`` computing every F of the sweep from one gradient pass."""
    fns = [parse_weight(w) for w in weights]
    if any(fn is None for fn in fns):
        raise ValueError("'delta' is not a weight function F; it is the plain map E")
    label = GENERATOR_LABELS[kind]

    def explain(x, names, key):
        x = jax.numpy.asarray(x, jax.numpy.float32)
        x_start, x_adv = explainers.pair(kind, x)
        maps = path_attribution_multi(explainers.f, x_start, x_adv, weights=tuple(fns),
                                      steps=explainers.steps, rule=explainers.rule,
                                      chunk_size=explainers.chunk_size)
        out = {}
        for spec, fn in zip(weights, fns):
            plain = maps[weight_name(fn)]
            out[f"{label}:F={spec}"] = np.asarray(plain)
            if smooth:
                out[f"{label}:F={spec}*kσ"] = np.asarray(ap.gaussian_smooth(plain, *smoothing))
        return {n: out[n] for n in names}

    return explain


def run_sweep(config, workdir: str, weights: Sequence[str], *, kind: str = "syce",
              smooth: bool = True) -> dict:
    if kind not in GENERATOR_LABELS:
        raise ValueError(f"generator must be one of {sorted(GENERATOR_LABELS)}, got {kind!r}")
    weights = list(weights)
    if not weights:
        raise ValueError("give at least one weight function (--weights v1,v2,...)")
    for w in weights:
        parse_weight(w)  # fail early on a bad spec
    check_eval_section(config.eval)  # and on a bad eval setting, before anything is trained
    anchor = f"{GENERATOR_LABELS[kind]}:E"
    train_all(config, workdir, models_needed([anchor]))
    explainers = build_explainers(config, workdir, [anchor])
    test = load_split(config.data, "test")
    smoothing = tuple(config.eval.smoothing) if config.eval.get("smoothing") else \
        ap.paper_smoothing(np.asarray(test["image"]).shape[1])
    names = sweep_method_names(kind, weights, smooth)
    rows = evaluation_rows(config, test, explainers.classifier)  # the same rows as `advpath run` (shared maps)
    maps, _ = attribute_test_rows(config, workdir, test, rows, names,
                                  sweep_explain_fn(explainers, kind, weights, smooth, smoothing),
                                  extra={PERTURBATION: perturbation_fn(config, workdir, explainers)},
                                  models=models_needed([anchor]), desc="sweep")
    results = evaluate_maps(config, maps, test, explainers, names, rows)
    meta = results.pop("meta_eval")
    results.update(title=f"advpath-jax weight sweep: {config.name}, {GENERATOR_LABELS[kind]} path",
                   dataset=config.data.name, meta={"evaluation": meta, "weights": weights,
                                                   "smoothing": list(smoothing)})
    paths = write_report(os.path.join(workdir, SWEEP_DIR), results)
    print(f"[sweep] report: {paths['report']}")
    return paths
