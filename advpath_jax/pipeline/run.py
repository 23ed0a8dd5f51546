"""``advpath run``: data -> classifier -> generators -> maps of the test split -> metrics -> report.

Every stage is resumable: a model whose stage finished (``WORKDIR/<model>/DONE.json``) is
reused, an interrupted training resumes from its latest checkpoint, and map shards
already on disk are not recomputed. The report lands in ``WORKDIR/report.md`` with
``results.json`` and the figures beside it.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Sequence

import jax
import numpy as np
from tqdm.auto import tqdm

import advpath_jax as ap
from advpath_jax.explain.registry import (DEFAULT_METHODS, FIGURE_METHODS, Explainers,
                                          check_method_names, required_models)
from advpath_jax.pipeline import attribute
from advpath_jax.training.cli import MODELS, train
from advpath_jax.io_utils import write_json_atomic

PERTURBATION = "_perturbation"   # stored next to the maps: translator output per test image
MODEL_ORDER = MODELS  # classifier, cyce, syce, sagen, mgen, translator: training order


# ---------------------------------------------------------------------------- training


def stage_marker(workdir: str, model: str) -> str:
    return os.path.join(workdir, model, "DONE.json")


def models_needed(methods: Sequence[str]) -> list[str]:
    """Models to train for ``methods`` (the classifier and the AOPC translator always)."""
    needed = {"classifier", "translator"}
    for name in methods:
        needed.update(required_models(name))
    return [m for m in MODEL_ORDER if m in needed]


def train_all(config, workdir: str, models: Sequence[str]) -> dict[str, dict]:
    """Train every model in ``models`` whose stage is not finished yet."""
    summary = {}
    for model in models:
        marker = stage_marker(workdir, model)
        if os.path.exists(marker):
            with open(marker) as fh:
                summary[model] = json.load(fh)
            print(f"[run] {model}: finished earlier, reusing {os.path.dirname(marker)}")
            continue
        start = time.perf_counter()
        print(f"[run] training {model} ...")
        metrics = dict(train(model, config, workdir) or {})
        if metrics.get("stopped_early"):
            raise RuntimeError(f"training of {model} stopped early (non-finite loss); see "
                               f"{os.path.join(workdir, model, 'metrics.jsonl')}")
        metrics["train_seconds"] = time.perf_counter() - start
        write_json_atomic(marker, _jsonable(metrics))
        summary[model] = metrics
    return summary


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


# ---------------------------------------------------------------------------- explainers


def build_explainers(config, workdir: str, methods: Sequence[str]) -> Explainers:
    """Load the trained models ``methods`` need into an :class:`Explainers`."""
    from advpath_jax.training.classifier import load_classifier
    from advpath_jax.training.generators import load_generator

    classifier = load_classifier(workdir, config)
    needed = {m for name in methods for m in required_models(name)}
    generators = {k: load_generator(workdir, config, k) for k in ("cyce", "syce", "sagen") if k in needed}
    mgen = None
    if "mgen" in needed:
        from advpath_jax.training.mgen import load_mgen

        mgen = load_mgen(workdir, config)
    ev = config.eval
    smoothing = tuple(ev.smoothing) if ev.get("smoothing") else None
    mpert_kwargs = mpert_settings(config)
    return Explainers(f=ap.score_fn(classifier), classifier=classifier, generators=generators,
                      mgen=mgen, steps=int(ev.steps), rule=ev.get("rule", "midpoint"),
                      chunk_size=ev.get("chunk_size"), smoothing=smoothing,
                      mpert_kwargs=mpert_kwargs)


def mpert_settings(config) -> dict:
    """The ``c.mpert`` fields that are arguments of :func:`mpert_maps` (the rest, e.g. the
    batch size, are for the job)."""
    import inspect

    from advpath_jax.explain.mpert import mpert_maps

    if "mpert" not in config:
        return {}
    accepted = set(inspect.signature(mpert_maps).parameters) - {"f", "x", "key"}
    return {k: v for k, v in config.mpert.items() if k in accepted}


def maps_fingerprint(config) -> dict:
    """The settings every stored map depends on (data, path quadrature, MPert, the models)."""
    ev = config.eval
    sections = {name: config[name].to_dict() for name in ("data", "classifier", "generators", "mgen",
                                                          "translator", "mpert") if name in config}
    return {**sections, "steps": int(ev.steps), "rule": str(ev.get("rule", "midpoint")),
            "smoothing": ev.get("smoothing")}


def perturbation_fn(config, workdir: str, explainers: Explainers):
    """``fn(x, shard) -> x'``: each image translated to the opposite of its predicted class."""
    from advpath_jax.training.translator import load_translator, translate_to_opposite

    translator = load_translator(workdir, config)
    return lambda x, shard: translate_to_opposite(translator, explainers.f, x)


# ---------------------------------------------------------------------------- metrics


def evaluate_maps(config, maps_dir: str, test: dict, explainers: Explainers,
                  methods: Sequence[str]) -> dict:
    """Table 1 (IoU/FNR on positives), AOPC and R (balanced subset) for every method."""
    from advpath_jax import metrics as M
    from advpath_jax.training.classifier import classifier_scores

    ev = config.eval
    shard_size = int(ev.shard_size)
    images, labels, masks = test["image"], np.asarray(test["label"]), np.asarray(test["mask"])
    n = len(images)
    f = explainers.f
    scores = classifier_scores(explainers.classifier, images)
    pred = (scores >= 0.5).astype(np.int32)
    positives = np.flatnonzero((labels == 1) & masks.reshape(n, -1).any(axis=1))
    subset = M.balanced_subset(pred, int(ev.subset_size), seed=int(config.seed), on_shortage="shrink")
    x_sub = images[subset]
    x_pert = attribute.gather_rows(maps_dir, PERTURBATION, subset, n, shard_size)[..., None] \
        if images.shape[-1] == 1 else attribute.gather_rows(maps_dir, PERTURBATION, subset, n, shard_size)
    x_pert = x_pert.reshape(x_sub.shape)
    percentiles = tuple(float(p) for p in ev.percentiles)
    patch = ev.get("patch_size")
    common = dict(patch_size=patch, chunk_size=int(ev.get("metric_chunk", 32)))
    results = {"methods": {}, "percentiles": list(percentiles)}
    for name in tqdm(methods, desc="metrics", unit="method"):
        entry = {}
        maps_pos = attribute.gather_rows(maps_dir, name, positives, n, shard_size)
        loc = M.localization_metrics(maps_pos, masks[positives], None, percentiles)
        entry["iou"], entry["fnr"] = loc["iou"], loc["fnr"]
        maps_sub = attribute.gather_rows(maps_dir, name, subset, n, shard_size)
        entry["aopc"] = M.aopc_curves(f, x_sub, x_pert, maps_sub, steps=int(ev.aopc_steps), **common)
        entry["relevance"] = M.deletion_preservation(f, x_sub, x_pert, maps_sub,
                                                     n_steps=ev.get("relevance_steps"), **common)
        results["methods"][name] = entry
    results["aopc_random"] = M.aopc_random(f, x_sub, x_pert, jax.random.key(int(config.seed)),
                                           steps=int(ev.aopc_steps),
                                           n_repeats=int(ev.get("random_repeats", 1)), **common)
    results["meta_eval"] = {"n_test": int(n), "n_positives_scored": int(len(positives)),
                            "subset_size": int(len(subset)),
                            "subset_by_predicted_class": {"0": int((pred[subset] == 0).sum()),
                                                          "1": int((pred[subset] == 1).sum())},
                            "test_accuracy": float(np.mean(pred == labels))}
    return results


def figure_examples(config, maps_dir: str, test: dict, methods: Sequence[str]) -> dict:
    """A few positive test images with their masks and the maps of the main methods."""
    n = len(test["image"])
    labels, masks = np.asarray(test["label"]), np.asarray(test["mask"])
    positives = np.flatnonzero((labels == 1) & masks.reshape(n, -1).any(axis=1))
    rows = positives[: int(config.eval.get("figure_examples", 4))]
    shown = [m for m in FIGURE_METHODS if m in methods] or list(methods)[:8]
    shard_size = int(config.eval.shard_size)
    return {"images": test["image"][rows], "masks": masks[rows],
            "ids": [str(i) for i in np.asarray(test["id"])[rows]],
            "maps": {m: attribute.gather_rows(maps_dir, m, rows, n, shard_size) for m in shown}}


# ---------------------------------------------------------------------------- the job


def run(config, workdir: str, *, methods: Sequence[str] | None = None) -> dict:
    """The whole pipeline; returns the paths written by the report."""
    from advpath_jax.data import load_split
    from advpath_jax.pipeline.report import write_report

    started = time.perf_counter()
    methods = check_method_names(methods or config.eval.get("methods") or DEFAULT_METHODS)
    os.makedirs(workdir, exist_ok=True)
    print(f"[run] config {config.name}, work directory {workdir}")
    with open(os.path.join(workdir, "config.txt"), "w") as fh:
        fh.write(str(config))
    print("[run] loading data ...")
    test = load_split(config.data, "test")
    needed = models_needed(methods)
    multi_process = jax.process_count() > 1
    if multi_process:
        missing = [m for m in needed if not os.path.exists(stage_marker(workdir, m))]
        if missing:
            raise RuntimeError(f"multi-process runs attribute only: train {', '.join(missing)} first "
                               f"with a single process (advpath run or advpath train) in {workdir}")
    model_metrics = train_all(config, workdir, needed)
    explainers = build_explainers(config, workdir, methods)
    maps_dir = os.path.join(workdir, "maps")
    shard_size = int(config.eval.shard_size)
    attribution = attribute.attribute_split(
        explainers.explain, np.asarray(test["image"], np.float32), methods, maps_dir,
        shard_size=shard_size, seed=int(config.seed),
        extra={PERTURBATION: perturbation_fn(config, workdir, explainers)},
        fingerprint=maps_fingerprint(config))
    if multi_process:
        if jax.process_index() != 0:
            print(f"[run] process {jax.process_index()}: its shards are written; process 0 writes the report")
            return {}
        attribute.wait_for_shards(maps_dir, [*methods, PERTURBATION], len(test["image"]), shard_size,
                                  timeout_s=float(config.eval.get("wait_timeout_s", 3600)))
    results = evaluate_maps(config, maps_dir, test, explainers, methods)
    meta_eval = results.pop("meta_eval")
    results.update(title=f"advpath-jax report: {config.name}", dataset=config.data.name,
                   meta={"models": _jsonable(model_metrics), "evaluation": meta_eval,
                         "attribution": attribution, "steps": int(config.eval.steps),
                         "total_seconds": time.perf_counter() - started,
                         "devices": f"{jax.device_count()} x {jax.devices()[0].device_kind}"})
    paths = write_report(workdir, results, figure_examples(config, maps_dir, test, methods))
    print(f"[run] report: {paths['report']} ({time.perf_counter() - started:.0f} s in all)")
    return paths
