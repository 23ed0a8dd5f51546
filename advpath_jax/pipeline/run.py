"""``advpath run``: data -> classifier -> generators -> maps of the test split -> metrics -> report.

Every stage is resumable: a model whose stage finished (``WORKDIR/<model>/DONE.json``) is
reused and an interrupted training resumes from its latest checkpoint, both only when the
model's settings record (``WORKDIR/<model>/fingerprint.json``: data, its own section, the
models it was trained against) matches the config; map shards already on disk are not
recomputed when their manifest matches. Anything else is refused before a file is written
(``--retrain MODEL`` trains a model again). See docs/reliability.md. The report lands in ``WORKDIR/report.md`` with
``results.json`` and the figures beside it.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import time
from typing import Callable, Sequence

import jax
import numpy as np
from tqdm.auto import tqdm

import advpath_jax as ap
from advpath_jax import metrics as M
from advpath_jax.data import load_split
from advpath_jax.errors import AdvpathError
from advpath_jax.explain.mpert import check_lambda_grid, mpert_maps, select_lambdas
from advpath_jax.explain.registry import (FIGURE_METHODS, Explainers, check_method_names, default_methods,
                                          required_models)
from advpath_jax.generators.translator import translate_to_opposite
from advpath_jax.io_utils import read_json, to_jsonable, write_bytes_atomic, write_json_atomic
from advpath_jax.models.probability import predicted_class
from advpath_jax.pipeline import attribute, quality, timings, train_pool
from advpath_jax.pipeline.claims import claim_evidence
from advpath_jax.pipeline.eval_config import check_eval_section
from advpath_jax.pipeline.report import percentile_key, write_report
from advpath_jax.store.models import load_classifier, load_generators, load_mgen, load_translator
from advpath_jax.store.predictions import classifier_scores
from advpath_jax.training import stage_record as sr
from advpath_jax.training.cli import MODELS, train
from advpath_jax.training.stage_record import DEPENDS_ON, digest, read_record
from advpath_jax.view.build import build_explorer, link_from_report

PERTURBATION = "_perturbation"   # stored next to the maps: translator output per test image


# ---------------------------------------------------------------------------- training


def stage_marker(workdir: str, model: str) -> str:
    return os.path.join(workdir, model, "DONE.json")


def models_needed(methods: Sequence[str]) -> list[str]:
    """Models to train for ``methods`` (the classifier and the AOPC translator always)."""
    needed = {"classifier", "translator"}
    for name in methods:
        needed.update(required_models(name))
    return [m for m in MODELS if m in needed]


def retrain_closure(retrain: Sequence[str], models: Sequence[str]) -> list[str]:
    """``retrain`` plus every model of ``models`` trained against one of them."""
    unknown = [m for m in retrain if m not in MODELS]
    if unknown:
        raise AdvpathError(f"--retrain {','.join(unknown)}: unknown model; choose from {', '.join(MODELS)}")
    unused = [m for m in retrain if m not in models]
    if unused:
        raise AdvpathError(f"--retrain {','.join(unused)}: not used by these methods (they need {', '.join(models)})")
    chosen = set(retrain)
    for model in models:  # training order: dependencies come first
        if chosen & set(DEPENDS_ON[model]):
            chosen.add(model)
    return [m for m in models if m in chosen]


def plan_training(config, workdir: str, models: Sequence[str], retrain: Sequence[str] = ()
                  ) -> tuple[dict[str, str], dict[str, dict]]:
    """Decide each model's stage before anything is written: ``reuse`` (finished under the
    same settings), ``resume`` (started under the same settings), ``train`` (new) or
    ``retrain`` (asked for, or trained against a retrained model). Returns ``(plan,
    records)``, the records being the stored or new settings records
    (:mod:`advpath_jax.training.stage_record`). A model recorded under other settings, or
    trained without a record, is refused (AdvpathError naming the fields and the ways out)."""
    again = retrain_closure(retrain, models)
    plan: dict[str, str] = {}
    records: dict[str, dict] = {}
    for model in models:
        expected = sr.model_fingerprint(config, model, {d: records[d] for d in sr.DEPENDS_ON[model]})
        if model in again:
            plan[model], records[model] = "retrain", sr.new_record(expected)
            continue
        stored = sr.read_record(workdir, model)
        done = os.path.exists(stage_marker(workdir, model))
        trained = done or os.path.isdir(os.path.join(workdir, model, "checkpoints"))
        if stored is None and trained:  # trained by an older version: its saved config tells
            stored = sr.legacy_record(workdir, model, {d: records[d] for d in sr.DEPENDS_ON[model]})
            if stored is None:
                raise AdvpathError(
                    f"{os.path.join(workdir, model)} holds a trained model without a settings record "
                    f"({sr.RECORD}) or saved config (config.json), so its data and settings cannot be "
                    f"checked; use another --workdir, or `advpath run --retrain {model}`")
        if stored is None:
            plan[model], records[model] = "train", sr.new_record(expected)
            continue
        sr.check_record(stored, expected, workdir, model)
        plan[model], records[model] = ("reuse" if done else "resume"), stored
    return plan, records


def check_maps_reusable(config, workdir: str, plan: dict[str, str], records: dict[str, dict],
                        retrain: Sequence[str]) -> None:
    """Refuse maps on disk that the models of this run would not reproduce (checked before
    anything is written; with ``retrain`` they are removed by :func:`apply_retrain`)."""
    maps_dir = os.path.join(workdir, "maps")
    if retrain or not os.path.exists(os.path.join(maps_dir, attribute.MANIFEST)):
        return
    fresh = [m for m, stage in plan.items() if stage != "reuse"]
    if fresh:
        raise AdvpathError(
            f"the maps in {maps_dir} were computed with earlier models, but {', '.join(fresh)} "
            f"would be trained now; use another --workdir, or --retrain {fresh[0]} (recomputes the maps)")
    attribute.check_manifest(maps_dir, maps_fingerprint(config, records), write=False)


def apply_retrain(workdir: str, plan: dict[str, str]) -> None:
    """Remove the directories of the models to retrain and the maps computed with them."""
    import shutil

    again = [m for m, stage in plan.items() if stage == "retrain"]
    if not again:
        return
    for path in [os.path.join(workdir, m) for m in again] + [os.path.join(workdir, "maps")]:
        if os.path.exists(path):
            print(f"[run] --retrain: removing {path}")
            shutil.rmtree(path)


def train_all(config, workdir: str, models: Sequence[str], *, retrain: Sequence[str] = (),
              plan: tuple[dict[str, str], dict[str, dict]] | None = None,
              clock: "timings.RunClock | None" = None,
              after_model: Callable[[str, dict], None] | None = None, workers: int = 1) -> dict[str, dict]:
    """Train every model of ``models`` whose stage is not finished under the same settings.

    A finished model is reused only when its settings record matches the config (data,
    its own section, the models it was trained against); see :func:`plan_training`.
    ``retrain``: models to train again (with the models trained against them and the maps).
    ``plan``: a plan made earlier by :func:`plan_training` (else made here).
    ``clock``: times each model's training as stage ``train <model>`` (the run's time table).
    ``after_model(model, metrics)``: called once each model is known (reused or trained), before
    the models trained against it (the quality gates).
    ``workers``: models trained at the same time, each in its own process
    (:mod:`advpath_jax.pipeline.train_pool`); 1 trains them one after the other in this process."""
    stages, records = plan if plan is not None else plan_training(config, workdir, models, retrain)
    apply_retrain(workdir, stages)
    summary: dict[str, dict] = {}
    to_train = []
    for model in models:
        if "rebuilt_from" in records[model]:  # an older version's model, checked: record it now
            print(f"[run] {model}: settings checked against {records[model]['rebuilt_from']} "
                  f"(trained by an older version); recording them in {sr.RECORD}")
            sr.write_record(workdir, model, {k: records[model][k] for k in ("fingerprint", "instance")})
        if stages[model] == "reuse":
            marker = stage_marker(workdir, model)
            summary[model] = read_json(marker, "stage marker")
            print(f"[run] {model}: finished earlier under the same settings, reusing {os.path.dirname(marker)}")
            if after_model is not None:
                after_model(model, summary[model])
            continue
        to_train.append(model)

    def starting(model: str) -> None:  # the settings record, written when the model's training starts
        if stages[model] in ("train", "retrain"):
            sr.write_record(workdir, model, records[model])

    def finished(model: str, metrics: dict, seconds: float) -> None:
        if metrics.get("stopped_early"):
            raise AdvpathError(f"training of {model} stopped early (non-finite loss); see "
                               f"{os.path.join(workdir, model, 'metrics.jsonl')}")
        metrics["train_seconds"] = seconds
        metrics.update(fingerprint_digest=sr.digest(records[model]["fingerprint"]),
                       instance=records[model]["instance"])  # the full record: fingerprint.json
        write_json_atomic(stage_marker(workdir, model), to_jsonable(metrics))
        summary[model] = metrics
        if after_model is not None:
            after_model(model, metrics)

    if workers > 1 and len(to_train) > 1:
        def worker_done(model: str, metrics: dict, wall_s: float, cpu_s: float) -> None:
            if clock is not None:
                clock.record(f"train {model}", wall_s, cpu_s)
            finished(model, dict(metrics), wall_s)

        print(f"[run] training {', '.join(to_train)} with up to {workers} at a time (--train-workers)")
        train_pool.train_in_workers(to_train, DEPENDS_ON, config, workdir, workers, worker_done,
                                    done=[m for m in models if m not in to_train], on_start=starting)
        return {m: summary[m] for m in models}
    for model in to_train:
        starting(model)
        start = time.perf_counter()
        print(f"[run] training {model} ...")
        with (clock.stage(f"train {model}") if clock else contextlib.nullcontext()):
            metrics = dict(train(model, config, workdir) or {})
        finished(model, metrics, time.perf_counter() - start)
    return summary


def write_time_table(workdir: str, results: dict, examples: dict, clock: "timings.RunClock",
                     paths: dict) -> None:
    """Rewrite report.md/results.json with the time table including the report stage itself
    (every process of this work directory; total = the accumulated ``total_seconds``)."""
    table = timings.current_time_table(workdir, clock)
    results["meta"].update(time_table=table, total_seconds=table["total"]["wall_s"])
    written = write_report(workdir, results, examples)
    if paths.get("explorer"):
        link_from_report(written["report"], paths["explorer"])


# ---------------------------------------------------------------------------- explainers


def build_explainers(config, workdir: str, methods: Sequence[str]) -> Explainers:
    """Load the trained models ``methods`` need into an :class:`Explainers`."""
    classifier = load_classifier(workdir, config)
    needed = {m for name in methods for m in required_models(name)}
    generators = {k: load_generators(workdir, config, k) for k in ("cyce", "syce", "sagen") if k in needed}
    mgen = None
    if "mgen" in needed:
        mgen = load_mgen(workdir, config)
    ev = config.eval
    smoothing = tuple(ev.smoothing) if ev.get("smoothing") else None
    mpert_kwargs = mpert_kwargs_from_config(config)
    selection = None
    if "MPert" in methods and "mpert" in config and config.mpert.get("lambda_grid"):
        selection = mpert_lambda_selection(config, workdir, classifier, mpert_kwargs)
        mpert_kwargs.update(lambda1=selection["lambda1"], lambda2=selection["lambda2"])
    image_size = int(config.data.image_size)
    return Explainers(f=ap.score_fn(classifier), classifier=classifier, generators=generators,
                      mgen=mgen, steps=int(ev.steps), rule=ev.get("rule", "midpoint"),
                      chunk_size=ev.get("chunk_size"), smoothing=smoothing,
                      mpert_kwargs=mpert_kwargs, mpert_selection=selection,
                      gradcam_stage=ev.get("gradcam_stage"), image_hw=(image_size, image_size))


MPERT_SELECTION = "mpert_selection.json"


def mpert_lambda_selection(config, workdir: str, classifier, mpert_kwargs: dict) -> dict:
    """MPert's λ1/λ2 chosen on the validation split (:func:`advpath_jax.explain.mpert.select_lambdas`)
    on ``c.mpert.select_images`` images balanced by predicted class; stored in
    ``WORKDIR/mpert_selection.json`` and reused while the settings are the same."""
    sec = config.mpert
    settings = {"grid": [list(p) for p in check_lambda_grid(sec.lambda_grid)],
                "n_images": int(sec.get("select_images", 32)), "min_flip": float(sec.get("select_min_flip", 0.8)),
                "mpert": to_jsonable({k: v for k, v in mpert_kwargs.items() if k not in ("lambda1", "lambda2")}),
                "seed": int(config.seed)}
    path = os.path.join(workdir, MPERT_SELECTION)
    if os.path.exists(path):
        stored = read_json(path, "MPert selection")
        if stored.get("settings") == settings:
            return stored["selection"]
    images = np.asarray(load_split(config.data, "val")["image"], np.float32)
    pred = predicted_class(classifier_scores(classifier, images))
    rows = M.balanced_subset(pred, settings["n_images"], seed=settings["seed"], on_shortage="shrink")
    start = time.perf_counter()
    selection = select_lambdas(ap.score_fn(classifier, output="logit"), images[rows], settings["grid"],
                               min_flip=settings["min_flip"],
                               **{k: v for k, v in mpert_kwargs.items() if k not in ("lambda1", "lambda2")})
    selection["seconds"] = time.perf_counter() - start
    print(f"[run] MPert: lambda1={selection['lambda1']}, lambda2={selection['lambda2']} chosen on "
          f"{selection['n_images']} validation images ({selection['seconds']:.0f} s)")
    write_json_atomic(path, {"settings": settings, "selection": to_jsonable(selection)})
    return selection


def mpert_kwargs_from_config(config) -> dict:
    """The ``c.mpert`` fields that are arguments of :func:`mpert_maps` (the rest, e.g. the
    batch size, are for the job); :func:`advpath_jax.explain.mpert.mpert_settings` resolves
    them at an image size."""
    if "mpert" not in config:
        return {}
    accepted = set(inspect.signature(mpert_maps).parameters) - {"logit_fn", "x", "key"}
    return {k: v for k, v in config.mpert.items() if k in accepted}


def maps_fingerprint(config, records: dict[str, dict] | None = None) -> dict:
    """The settings every stored map depends on (data, path quadrature, MPert, the models:
    their sections and, from ``records`` (``{model: settings record}``), which training of
    each model the maps were computed with)."""
    ev = config.eval
    sections = {name: config[name].to_dict() for name in ("data", "classifier", "generators", "mgen",
                                                          "translator", "mpert") if name in config}
    models = {m: {"digest": digest(r["fingerprint"]), "instance": r["instance"]}
              for m, r in (records or {}).items()}
    stage = {"gradcam_stage": ev.gradcam_stage} if ev.get("gradcam_stage") is not None else {}
    return {**sections, "steps": int(ev.steps), "rule": str(ev.get("rule", "midpoint")),
            "smoothing": ev.get("smoothing"), "models": models, **stage}


def model_records(workdir: str, models: Sequence[str]) -> dict[str, dict]:
    """The settings records of ``models`` (written by :func:`train_all`)."""
    records = {m: read_record(workdir, m) for m in models}
    missing = [m for m, r in records.items() if r is None]
    if missing:
        raise AdvpathError(f"no settings record for {', '.join(missing)} in {workdir}; run `advpath run` first")
    return records


def perturbation_fn(config, workdir: str, explainers: Explainers):
    """``fn(x, shard) -> x'``: each image translated to the opposite of its predicted class."""
    translator = load_translator(workdir, config)
    return lambda x, shard: translate_to_opposite(translator, explainers.f, x)


# ---------------------------------------------------------------------------- metrics


def evaluation_rows(config, test: dict, classifier) -> dict[str, np.ndarray]:
    """The test rows the metrics read, from the classifier's predicted classes ``pred [N]``:
    ``positives`` (label 1 with a non-empty mask: Table 1), ``subset`` (``eval.subset_size``
    images balanced by predicted class: AOPC and R) and ``scored``, their union (sorted)."""
    images, labels, masks = test["image"], np.asarray(test["label"]), np.asarray(test["mask"])
    n = len(images)
    pred = predicted_class(classifier_scores(classifier, images))
    positives = np.flatnonzero((labels == 1) & masks.reshape(n, -1).any(axis=1))
    subset = M.balanced_subset(pred, int(config.eval.subset_size), seed=int(config.seed), on_shortage="shrink")
    return {"pred": np.asarray(pred), "positives": positives, "subset": np.asarray(subset),
            "scored": np.union1d(positives, subset)}


def rows_to_attribute(config, rows: dict[str, np.ndarray], n_test: int) -> np.ndarray:
    """The test rows to compute maps of: ``eval.attribute_images`` ``"scored"`` (the default: the
    rows the metrics read, ``rows["scored"]``) or ``"all"`` (every test image, for the explorer)."""
    choice = check_eval_section(config.eval).attribute_images
    return np.arange(n_test) if choice == "all" else np.asarray(rows["scored"], np.int64)


def attribute_test_rows(config, workdir: str, test: dict, rows: dict[str, np.ndarray], names: Sequence[str],
                        explain: Callable, *, extra: dict, models: Sequence[str], desc: str = "attribution"
                        ) -> tuple[attribute.StoredMaps, dict]:
    """Write the maps of ``names`` for the test rows :func:`rows_to_attribute` picks into
    ``WORKDIR/maps`` (:func:`advpath_jax.pipeline.attribute.attribute_split`; the rows are recorded
    in its manifest). ``explain(x, names, key)``; ``extra``: more arrays stored per shard;
    ``models``: the models the maps depend on. Returns the stored maps and the job's counts."""
    attributed = rows_to_attribute(config, rows, len(test["image"]))
    maps_dir, shard_size = os.path.join(workdir, "maps"), int(config.eval.shard_size)
    summary = attribute.attribute_split(
        explain, np.asarray(test["image"], np.float32)[attributed], names, maps_dir, shard_size=shard_size,
        seed=int(config.seed), desc=desc, extra=extra,
        fingerprint={**maps_fingerprint(config, model_records(workdir, models)), "rows": attributed.tolist()})
    return attribute.StoredMaps(maps_dir, attributed, shard_size), summary


def evaluate_maps(config, maps: attribute.StoredMaps, test: dict, explainers: Explainers,
                  methods: Sequence[str], rows: dict[str, np.ndarray]) -> dict:
    """Table 1 (IoU/FNR on positives), AOPC and R (balanced subset) for every method, the
    per-image values (``results["per_image"]``), the share of constant maps and the paired
    bootstrap evidence of the paper's findings (``results["claims"]``).

    ``maps``: the stored maps (of at least ``rows["scored"]``); ``rows``: :func:`evaluation_rows`."""
    ev = config.eval
    images, labels, masks = test["image"], np.asarray(test["label"]), np.asarray(test["mask"])
    n = len(images)
    f = explainers.f
    pred, positives, subset, scored = rows["pred"], rows["positives"], rows["subset"], rows["scored"]
    x_sub = images[subset]
    x_pert = maps.gather(PERTURBATION, subset).reshape(x_sub.shape)
    percentiles = tuple(float(p) for p in ev.percentiles)
    ties = str(ev.get("ties", "percentile"))
    patch = ev.get("patch_size")
    patch = int(patch) if patch is not None else M.default_patch_size(x_sub.shape[1], x_sub.shape[2])
    chunk = int(ev.get("metric_chunk", 32))
    group = ev.get("relevance_group")
    aopc_steps = int(ev.aopc_steps)
    h, w = x_sub.shape[1:3]
    try:  # settings checked before any curve is computed
        M.replacement_counts(h * w, int(group) if group is not None else w, ev.get("relevance_steps"))
        M.region_grid(h, w, patch)
    except ValueError as err:
        raise ValueError(f"config eval.relevance_steps / relevance_group / patch_size at {h}x{w} px: {err}") from None
    results = {"methods": {}, "percentiles": list(percentiles), "ties": ties}
    per_image = {"positives": positives.tolist(), "subset": subset.tolist(), "methods": {}}
    constant = {}  # share of constant maps among the scored images (positives and subset)
    at_pos, at_sub = np.searchsorted(scored, positives), np.searchsorted(scored, subset)  # both lie in scored
    for name in tqdm(methods, desc="metrics", unit="method"):
        entry = {}
        maps_scored = maps.gather(name, scored)  # each method's shards read once
        maps_pos = maps_scored[at_pos]
        loc = M.localization_metrics(maps_pos, masks[positives], None, percentiles, ties=ties)
        entry["iou"], entry["fnr"] = loc["iou"], loc["fnr"]
        maps_sub = maps_scored[at_sub]
        entry["aopc"] = M.aopc_curves(f, x_sub, x_pert, maps_sub, steps=aopc_steps, patch_size=patch,
                                      chunk_size=chunk)
        rel = M.deletion_preservation(f, x_sub, x_pert, maps_sub, n_steps=ev.get("relevance_steps"),
                                      group_size=group, chunk_size=chunk)
        entry["relevance"] = rel
        results["methods"][name] = entry
        constant[name] = M.constant_map_share(maps_scored)
        per_image["methods"][name] = {
            "iou": {percentile_key(p): np.asarray(row).tolist() for p, row in zip(percentiles, loc["iou"])},
            "fnr": {percentile_key(p): np.asarray(row).tolist() for p, row in zip(percentiles, loc["fnr"])},
            "R": np.asarray(rel.r).tolist(),
            "auc_deletion": np.asarray(rel.auc_deletion).tolist(),
            "auc_preservation": np.asarray(rel.auc_preservation).tolist(),
            "aopc": np.asarray(entry["aopc"].aopc[:, aopc_steps]).tolist(),
        }
    results["aopc_random"] = M.aopc_random(f, x_sub, x_pert, jax.random.key(int(config.seed)),
                                           steps=aopc_steps, n_repeats=int(ev.get("random_repeats", 1)),
                                           patch_size=patch, chunk_size=chunk)
    results["per_image"] = per_image
    results["constant_maps"] = constant
    results["claims"] = claim_evidence(per_image, methods, aopc_label=f"AOPC L={aopc_steps}",
                                       n_resamples=int(ev.get("bootstrap_resamples", 2000)),
                                       seed=int(config.seed))
    group_px = int(group) if group is not None else int(w)
    results["metric_settings"] = {
        "ties": ties, "aopc_patch": patch, "aopc_regions": int((h // patch) * (w // patch)),
        "aopc_steps": aopc_steps, "relevance_group_pixels": group_px,
        "relevance_groups": int(h * w // group_px), "relevance_steps": ev.get("relevance_steps"),
        "bootstrap_resamples": int(ev.get("bootstrap_resamples", 2000)),
    }
    results["meta_eval"] = {"n_test": int(n), "n_positives_scored": int(len(positives)),
                            "subset_size": int(len(subset)), "n_attributed": int(len(maps.rows)),
                            "subset_by_predicted_class": {"0": int((pred[subset] == 0).sum()),
                                                          "1": int((pred[subset] == 1).sum())},
                            "test_accuracy": float(np.mean(pred == labels))}
    return results


def figure_examples(config, maps: attribute.StoredMaps, test: dict, methods: Sequence[str],
                    positives: np.ndarray) -> dict:
    """A few positive test images (the first of ``positives``) with their masks and the maps of the main methods."""
    rows = np.asarray(positives)[: int(config.eval.get("figure_examples", 4))]
    shown = [m for m in FIGURE_METHODS if m in methods] or list(methods)[:8]
    return {"images": test["image"][rows], "masks": np.asarray(test["mask"])[rows],
            "ids": [str(i) for i in np.asarray(test["id"])[rows]],
            "maps": {m: maps.gather(m, rows) for m in shown}}


# ---------------------------------------------------------------------------- the job


def run(config, workdir: str, *, methods: Sequence[str] | None = None, retrain: Sequence[str] = (),
        strict: bool = False, train_workers: int | None = None) -> dict:
    """The whole pipeline; returns the paths written by the report.

    ``retrain``: models to train again although finished (see :func:`train_all`). Every
    reuse decision is checked before anything is written, ``config.txt`` included.
    ``strict``: a model under its quality bar (:mod:`advpath_jax.pipeline.quality`) is an
    error, raised before anything is trained against it.
    ``train_workers``: models trained at the same time (:func:`train_all`); None: 2 on a CPU
    with 2 or more cores, else 1 (:func:`advpath_jax.pipeline.train_pool.default_workers`)."""
    started = time.perf_counter()
    check_eval_section(config.eval)  # unknown fields are an error; missing ones get the package's defaults
    clock = timings.RunClock(workdir)  # the time table, summed over resumed runs
    methods = check_method_names(methods or config.eval.get("methods") or default_methods())
    print(f"[run] config {config.name}, work directory {workdir}")
    needed = models_needed(methods)
    plan = plan_training(config, workdir, needed, retrain)
    check_maps_reusable(config, workdir, *plan, retrain)
    multi_process = jax.process_count() > 1
    if multi_process:
        missing = [m for m in needed if plan[0][m] != "reuse"]
        if missing:
            raise AdvpathError(f"multi-process runs attribute only: train {', '.join(missing)} first "
                               f"with a single process (advpath run) in {workdir}")
    print("[run] loading data ...")
    test = load_split(config.data, "test")
    # the record of the settings, written only once every check above has passed
    write_bytes_atomic(os.path.join(workdir, "config.txt"), str(config).encode("utf-8"))
    write_json_atomic(os.path.join(workdir, "config.json"), config.to_dict())  # read by `advpath view`
    clock.start()  # saves this process's stage times under WORKDIR/timings/
    gates = quality.gates_for(config.eval.get("quality_bars"))
    gate_rows: list[dict] = []

    def check_quality(model: str, metrics: dict) -> None:
        gate_rows.extend(quality.check(model, metrics, gates, strict=strict, where=stage_marker(workdir, model)))

    workers = (train_pool.default_workers(jax.default_backend()) if train_workers is None
               else train_pool.check_workers(train_workers))
    model_metrics = train_all(config, workdir, needed, plan=plan, clock=clock, after_model=check_quality,
                              workers=workers)
    quality_summary = quality.summary(gate_rows, gates)
    explainers = build_explainers(config, workdir, methods)
    with clock.stage("attribution"):
        rows = evaluation_rows(config, test, explainers.classifier)
        maps, attribution = attribute_test_rows(
            config, workdir, test, rows, methods, clock.counting(explainers.explain, "attribution"),
            extra={PERTURBATION: perturbation_fn(config, workdir, explainers)}, models=needed)
    if multi_process:
        if jax.process_index() != 0:
            print(f"[run] process {jax.process_index()}: its shards are written; process 0 writes the report")
            return {}
        attribute.wait_for_shards(maps.out_dir, [*methods, PERTURBATION], len(maps.rows), maps.shard_size,
                                  timeout_s=float(config.eval.get("wait_timeout_s", 3600)))
    with clock.stage("metrics"):
        results = evaluate_maps(config, maps, test, explainers, methods, rows)
    meta_eval = results.pop("meta_eval")
    results.update(title=f"advpath-jax report: {config.name}", dataset=config.data.name, quality=quality_summary,
                   meta={"models": to_jsonable(model_metrics), "evaluation": meta_eval,
                         "attribution": attribution, "steps": int(config.eval.steps),
                         "explainers": to_jsonable(explainers.describe()),
                         "total_seconds": time.perf_counter() - started,
                         "devices": f"{jax.device_count()} x {jax.devices()[0].device_kind}"})
    examples = figure_examples(config, maps, test, methods, rows["positives"])
    with clock.stage("report"):
        results["meta"]["time_table"] = timings.current_time_table(workdir, clock)
        paths = write_report(workdir, results, examples)
        if config.eval.get("explorer", True):
            paths["explorer"] = build_explorer(workdir, config=config)["index"]
            link_from_report(paths["report"], paths["explorer"])
            print(f"[run] explorer: {paths['explorer']} (open it in a browser, or `advpath view {workdir} --serve`)")
    write_time_table(workdir, results, examples, clock, paths)
    clock.close()
    print(f"[run] report: {paths['report']} ({time.perf_counter() - started:.0f} s in all)")
    return paths
