"""Build the static explorer of a finished ``advpath run`` work directory.

``build_explorer(workdir, out_dir=None)`` writes into ``out_dir`` (default
``WORKDIR/explorer``), every file atomically:

* ``index.html``: the page (template ``template.html``), with the JSON index embedded, so it
  opens from the file system without a server, network or CDN;
* ``index.json``: the same index, for other tools;
* ``img/<i>.png`` (the test image), ``gt/<i>.png`` (ground-truth contour, transparent
  elsewhere), ``map/<method-slug>/<i>.png`` (the map under :data:`tiles.COLOR_RULE`),
  ``region/<method-slug>/p<p>/<i>.png`` (region B at each percentile of the run, with the
  report's thresholding rule), ``path/<kind>/<i>.png`` (CyCE/SyCE/SAGen: γ(λ) at
  :data:`SHOWN_LAMBDAS`, then |Δ|), and the report's figures.

Inputs read: ``results.json`` (tables, ``per_image`` metrics when present), ``maps/``
shards, the run's config (``WORKDIR/config.json``, else ``WORKDIR/classifier/config.json``),
the test split, and the trained classifier and generators (the pairs and the path scores
f(γ(λ)) are computed here, batched and jitted).
"""

from __future__ import annotations

import os
import time
from importlib import resources
from typing import Any, Iterable, Iterator, Mapping, Sequence

import ml_collections
import numpy as np

import advpath_jax as ap
from advpath_jax.data import load_split
from advpath_jax.errors import AdvpathError
from advpath_jax.explain.registry import GENERATOR_LABELS, Explainers, default_methods
from advpath_jax.io_utils import dumps_json, read_json, write_bytes_atomic, write_json_atomic
from advpath_jax.metrics.localization import TIES, percentile_threshold_masks
from advpath_jax.models.probability import predicted_class
from advpath_jax.parallel import padded_batches
from advpath_jax.pipeline import attribute
from advpath_jax.store.models import load_classifier, load_generators
from advpath_jax.store.predictions import classifier_scores
from advpath_jax.view import tiles

RESULTS = "results.json"
REPORT = "report.md"
MAPS = "maps"
DEFAULT_OUT = "explorer"
PAIR_KINDS = ("cyce", "syce", "sagen")
PAIR_LABELS = {**GENERATOR_LABELS, "sagen": "SAGen"}
#: λ of the path score curve f(γ(λ)) and of the path images shown (a subset of the grid)
PATH_LAMBDAS = tuple(float(v) for v in np.linspace(0.0, 1.0, 9))
SHOWN_LAMBDAS = (0.0, 0.25, 0.5, 0.75, 1.0)
DATA_MARKER = "/*__EXPLORER_DATA__*/"


class ExplorerInputError(AdvpathError):
    """The work directory lacks something the explorer needs (the message names it)."""


# ----------------------------------------------------------------------------- inputs


def _pkey(p: float) -> str:
    return f"{float(p):g}"


def read_results(workdir: str) -> dict:
    """``WORKDIR/results.json``; a missing or unreadable report is an :class:`ExplorerInputError`."""
    path = os.path.join(workdir, RESULTS)
    if not os.path.isfile(path):
        raise ExplorerInputError(
            f"no report in {workdir}: {path} is missing (and with it {REPORT}); finish `advpath run` "
            "first (the report is written after the maps and the metrics)")
    try:
        results = read_json(path, "report")
    except AdvpathError as err:
        raise ExplorerInputError(str(err)) from err
    if not isinstance(results, dict) or not isinstance(results.get("methods"), list):
        raise ExplorerInputError(f"{path} is not an advpath report (no 'methods' list)")
    return results


def load_run_config(workdir: str) -> ml_collections.ConfigDict:
    """The config a run used: ``WORKDIR/config.json``, else the classifier's ``config.json``."""
    for path in (os.path.join(workdir, "config.json"), os.path.join(workdir, "classifier", "config.json")):
        if os.path.isfile(path):
            return ml_collections.ConfigDict(read_json(path, "run config"))
    raise ExplorerInputError(f"no config in {workdir}: neither config.json nor classifier/config.json exists")


def method_inventory(maps_dir: str, names: Sequence[str], n_images: int, shard_size: int) -> dict[str, list[int]]:
    """``{name: [present shard numbers]}`` for ``names`` and for any other known method on disk."""
    if not os.path.isdir(maps_dir):
        raise ExplorerInputError(f"no maps: {maps_dir} does not exist (run the attribution stage of "
                                 "`advpath run` first)")
    candidates = list(dict.fromkeys([*names, *default_methods()]))
    on_disk = set(os.listdir(maps_dir))
    total = attribute.n_shards(n_images, shard_size)
    found = {}
    for name in candidates:
        if name not in names and attribute.method_slug(name) not in on_disk:
            continue
        found[name] = [s for s in range(total) if os.path.exists(attribute.shard_path(maps_dir, name, s))]
    if not any(found.values()):
        raise ExplorerInputError(f"no maps: {maps_dir} holds no map shard of {', '.join(names) or 'any method'}")
    return found


def results_at_rows(results: Mapping, stored: attribute.StoredMaps) -> Mapping:
    """``results`` with its per-image rows (test-split indices) turned into positions among the
    attributed rows ``stored.rows``, the explorer's image order."""
    block = results.get("per_image")
    if block is None or not isinstance(block, Mapping) or "positives" not in block or "subset" not in block:
        return results  # per_image_metrics names what is missing
    try:
        moved = {key: stored.positions(np.asarray(block[key], np.int64)).tolist() for key in ("positives", "subset")}
    except AdvpathError as err:
        raise ExplorerInputError(f"results.json per_image: {err}") from err
    return {**results, "per_image": {**block, **moved}}


def per_image_metrics(results: Mapping, n: int, percentiles: Sequence[float]) -> dict | None:
    """``{method: {metric: [n] value or None}}`` from ``results["per_image"]`` (None when absent).

    ``iou``/``fnr`` are aligned with ``per_image["positives"]``, the others with
    ``per_image["subset"]``; a per-image AOPC curve is reduced to its last value AOPC(L).
    """
    block = results.get("per_image")
    if block is None:
        return None
    where = "results.json per_image"
    try:
        positives = np.asarray(block["positives"], np.int64)
        subset = np.asarray(block["subset"], np.int64)
        methods = dict(block["methods"])
    except (KeyError, TypeError, ValueError) as err:
        raise ExplorerInputError(f"{where}: expected 'positives', 'subset' and 'methods' ({err})") from err
    for label, rows in (("positives", positives), ("subset", subset)):
        if rows.ndim != 1 or (rows.size and (rows.min() < 0 or rows.max() >= n)):
            raise ExplorerInputError(f"{where}[{label!r}]: expected test-split row indices in [0, {n})")

    def spread(values, rows, what):
        a = np.asarray(values, np.float64)
        if a.ndim == 2:  # a curve per image: AOPC(L) at the last L
            a = a[:, -1]
        if a.shape != rows.shape:
            raise ExplorerInputError(f"{where}[{what}]: {a.shape[0] if a.ndim else 0} values for {rows.size} images")
        out: list[float | None] = [None] * n
        for r, v in zip(rows.tolist(), a.tolist()):
            out[r] = round(v, 5) if np.isfinite(v) else None
        return out

    table = {}
    for name, entry in methods.items():
        metrics = {}
        for metric, label in (("iou", "IoU"), ("fnr", "FNR")):
            for p in percentiles:
                values = (entry.get(metric) or {}).get(_pkey(p))
                if values is not None:
                    metrics[f"{label} p{_pkey(p)}"] = spread(values, positives, f"{name!r}][{metric!r}][{_pkey(p)!r}")
        for metric, label in (("R", "R"), ("aopc", "AOPC"), ("auc_deletion", "AUC deletion"),
                              ("auc_preservation", "AUC preservation")):
            if entry.get(metric) is not None:
                metrics[label] = spread(entry[metric], subset, f"{name!r}][{metric!r}")
        table[name] = metrics
    return table


# ----------------------------------------------------------------------------- models


def _trained(workdir: str, model: str) -> bool:
    return os.path.isfile(os.path.join(workdir, model, "DONE.json"))


def load_models(config, workdir: str) -> tuple[Any, dict]:
    """The classifier and every trained CyCE/SyCE/SAGen generator, loaded as ``advpath run`` does."""
    if not _trained(workdir, "classifier"):
        raise ExplorerInputError(f"no trained classifier in {os.path.join(workdir, 'classifier')}")
    classifier = load_classifier(workdir, config)
    generators = {k: load_generators(workdir, config, k) for k in PAIR_KINDS if _trained(workdir, k)}
    return classifier, generators


def path_images(x_start: np.ndarray, x_adv: np.ndarray, lambdas: Sequence[float]) -> np.ndarray:
    """γ(λ) = s + λ (e − s) for every λ: ``[B, L, H, W, C]`` from ``[B, H, W, C]`` pairs."""
    lam = np.asarray(lambdas, np.float32)[None, :, None, None, None]
    s, e = x_start[:, None], x_adv[:, None]
    return s + lam * (e - s)


def pair_paths(explainers, kind: str, images: np.ndarray, batch: int) -> dict[str, np.ndarray]:
    """For every image: the pair, γ(λ) at :data:`SHOWN_LAMBDAS` and f(γ(λ)) on :data:`PATH_LAMBDAS`.

    Returns ``{"shown": [N, S, H, W, C], "delta": [N, H, W], "scores": [N, L]}``. The images go in
    batches of one size, at most ``batch`` (:func:`padded_batches`), as the
    attribution shards do, so the generators' programs compiled there serve here too.
    """
    shown_at = [PATH_LAMBDAS.index(v) for v in SHOWN_LAMBDAS]
    shown, delta, scores = [], [], []
    for lo, hi, padded in padded_batches(images, batch):  # the attribution shards' batch: their programs
        x = images[lo:hi]
        x_s, x_a = (np.asarray(a, np.float32)[: hi - lo] for a in explainers.pair(kind, padded))
        path = path_images(x_s, x_a, PATH_LAMBDAS)
        f_path = classifier_scores(explainers.classifier, path.reshape(-1, *path.shape[2:]))
        scores.append(np.asarray(f_path, np.float64).reshape(len(x), len(PATH_LAMBDAS)))
        shown.append(path[:, shown_at])
        delta.append(np.abs(x_a - x_s).sum(axis=-1))
    return {"shown": np.concatenate(shown), "delta": np.concatenate(delta), "scores": np.concatenate(scores)}


# ----------------------------------------------------------------------------- writing


def _write_png(out_dir: str, rel: str, pixels: np.ndarray) -> None:
    write_bytes_atomic(os.path.join(out_dir, rel), tiles.png_bytes(pixels))


def region_tie_rule(results: Mapping) -> str:
    """The tie rule of region B: the report's when it names one of the thresholding rules,
    else the default of :func:`percentile_threshold_masks` (the one ``advpath run`` scores with)."""
    import inspect

    stated = results.get("ties")
    if stated in TIES:
        return stated
    return inspect.signature(percentile_threshold_masks).parameters["ties"].default


def _region_masks(maps: np.ndarray, percentiles: Sequence[float], ties: str | None) -> np.ndarray:
    """Region B ``bool [P, B, H, W]`` with the thresholding rule of the report."""
    return np.asarray(percentile_threshold_masks(maps, tuple(percentiles), ties=ties))


def write_method_tiles(out_dir: str, slug: str, chunks: Iterable[tuple[int, np.ndarray]], n: int,
                       percentiles: Sequence[float], ties: str) -> np.ndarray:
    """Map and region tiles of one method from ``(first row, maps [b, H, W])`` chunks;
    returns ``bool [n]``: the images that have a tile."""
    has = np.zeros(n, bool)
    for first, maps in chunks:
        regions = _region_masks(maps, percentiles, ties)
        for k, m in enumerate(maps):
            i = first + k
            _write_png(out_dir, f"map/{slug}/{i}.png", tiles.colour_map(m))
            for p, region in zip(percentiles, regions[:, k]):
                _write_png(out_dir, f"region/{slug}/p{_pkey(p)}/{i}.png", tiles.region_overlay(region))
            has[i] = True
    return has


def shard_chunks(maps_dir: str, name: str, shards: Sequence[int], n_images: int,
                 shard_size: int) -> Iterator[tuple[int, np.ndarray]]:
    """``(first row, maps)`` of the stored shards ``shards`` of method ``name`` (of ``n_images``
    attributed), read one at a time."""
    bounds = attribute.shard_bounds(n_images, shard_size)
    for shard in shards:
        yield bounds[shard][0], attribute.load_npy(attribute.shard_path(maps_dir, name, shard))


def write_image_tiles(out_dir: str, images: np.ndarray, masks: np.ndarray) -> None:
    for i, (image, mask) in enumerate(zip(images, masks)):
        _write_png(out_dir, f"img/{i}.png", tiles.grey_image(image))
        _write_png(out_dir, f"gt/{i}.png", tiles.contour_overlay(mask))


def write_path_tiles(out_dir: str, kind: str, paths: Mapping[str, np.ndarray]) -> None:
    for i, (shown, delta) in enumerate(zip(paths["shown"], paths["delta"])):
        cells = [tiles.grey_image(g) for g in shown] + [tiles.colour_map(delta)]
        _write_png(out_dir, f"path/{kind}/{i}.png", tiles.strip(cells))


def _copy_figure(source_dir: str | None, out_dir: str, name: str | None) -> str | None:
    if not source_dir or not name or not os.path.isfile(os.path.join(source_dir, name)):
        return None
    with open(os.path.join(source_dir, name), "rb") as fh:
        write_bytes_atomic(os.path.join(out_dir, name), fh.read())
    return name


def template_text() -> str:
    return resources.files("advpath_jax.view").joinpath("template.html").read_text(encoding="utf-8")


def render_html(index: Mapping) -> str:
    """The page with ``index`` embedded as JSON (``</`` escaped so it cannot end the script)."""
    payload = dumps_json(index, indent=None, allow_nan=False, separators=(",", ":")).replace("</", "<\\/")
    page = template_text()
    if DATA_MARKER not in page:
        raise RuntimeError("advpath_jax/view/template.html lacks the data marker")
    return page.replace(DATA_MARKER, payload)


# ----------------------------------------------------------------------------- entry points


def write_explorer(out_dir: str, *, images: np.ndarray, labels: np.ndarray, masks: np.ndarray,
                   ids: Sequence[str], scores: np.ndarray,
                   maps: Mapping[str, Iterable[tuple[int, np.ndarray]]],
                   pairs: Mapping[str, Mapping[str, np.ndarray]], results: Mapping,
                   percentiles: Sequence[float], ties: str, figure_dir: str | None = None,
                   notices: Sequence[str] = ()) -> dict:
    """Write the explorer's files into ``out_dir`` from arrays (the part of
    :func:`build_explorer` after the run's files and models are read).

    Args:
      images ``[N, H, W, C]`` in [0, 1], labels ``[N]``, masks ``bool [N, H, W]``, ids ``[N]``,
      scores: the classifier's f(x) ``[N]`` (the prediction is ``f >= 0.5``).
      maps: ``{method: iterable of (first row, maps [b, H, W])}`` (rows not covered are
        shown as missing and listed in the notices).
      pairs: ``{"cyce"|"syce"|"sagen": {"shown": [N, S, H, W, C] (γ at SHOWN_LAMBDAS),
        "delta": [N, H, W], "scores": [N, L] (f(γ) at PATH_LAMBDAS)}}``.
      results: the report's results dict (``methods``, ``table1``, ``table2``, ``figures``,
        optional ``per_image``).
      percentiles, ties: region B's thresholds and tie rule.
      figure_dir: folder holding the report's figures (copied), or None.
      notices: what the caller found missing (shown at the top of the page).

    Returns ``{"index": path of index.html, "n_images", "methods", "missing"}``.
    """
    images = np.asarray(images, np.float32)
    labels, masks = np.asarray(labels, np.int64), np.asarray(masks, bool)
    scores = np.asarray(scores, np.float64)
    n = len(images)
    if not (len(labels) == len(masks) == len(ids) == len(scores) == n):
        raise ValueError(f"write_explorer: {n} images but {len(labels)} labels, {len(masks)} masks, "
                         f"{len(ids)} ids and {len(scores)} scores")
    notices = list(notices)
    write_image_tiles(out_dir, images, masks)
    methods = []
    for name, chunks in maps.items():
        slug = attribute.method_slug(name)
        has = write_method_tiles(out_dir, slug, chunks, n, percentiles, ties)
        if not has.all():
            notices.append(f"{name}: maps missing for {int((~has).sum())} of {n} images")
        methods.append({"name": name, "slug": slug, "has": "".join("1" if h else "0" for h in has)})
    pair_index = []
    for kind in PAIR_KINDS:
        if kind not in pairs:
            continue
        write_path_tiles(out_dir, kind, pairs[kind])
        pair_index.append({"kind": kind, "label": PAIR_LABELS[kind], "start": "x" if kind == "cyce" else "x_s",
                           "lambdas": list(PATH_LAMBDAS), "shown": list(SHOWN_LAMBDAS),
                           "scores": np.round(np.asarray(pairs[kind]["scores"], np.float64), 5).tolist()})
    metrics = per_image_metrics(results, n, percentiles)
    if metrics is None:
        notices.append("results.json has no per-image metrics ('per_image'): the gallery sorts by index or "
                       "classifier score only and the detail view shows no per-image metrics")
    figures = results.get("figures") or {}
    index = {
        "title": str(results.get("title") or "advpath-jax report"),
        "dataset": results.get("dataset"),
        "n": n, "size": list(images.shape[1:3]),
        "percentiles": [_pkey(p) for p in percentiles], "ties": ties, "color_rule": tiles.COLOR_RULE,
        "images": {"id": [str(v) for v in ids], "label": labels.tolist(),
                   "pred": predicted_class(scores).tolist(), "score": np.round(scores, 5).tolist(),
                   "has_mask": masks.reshape(n, -1).any(axis=1).tolist()},
        "methods": methods,
        "metrics": metrics,
        "pairs": pair_index,
        "tables": {"methods": list(results.get("methods") or []), "table1": results.get("table1") or {},
                   "table2": results.get("table2") or {}},
        "figures": {"aopc": _copy_figure(figure_dir, out_dir, figures.get("figure2")),
                    "examples": _copy_figure(figure_dir, out_dir, figures.get("figure1"))},
        "notices": notices,
    }
    write_json_atomic(os.path.join(out_dir, "index.json"), index, indent=1, allow_nan=False)
    html_path = os.path.join(out_dir, "index.html")
    write_bytes_atomic(html_path, render_html(index).encode("utf-8"))
    return {"index": html_path, "n_images": n, "methods": [m["name"] for m in methods], "missing": notices}


def build_explorer(workdir: str, out_dir: str | None = None, *, config=None, batch: int | None = None) -> dict:
    """Write the explorer of run ``workdir`` into ``out_dir`` (default ``WORKDIR/explorer``).

    Raises :class:`ExplorerInputError` (naming the path) when the report, the maps, the
    config or the classifier is missing. Missing methods, shards or generators are listed
    in the page's notices and in the returned ``"missing"``.
    Returns ``{"index": path of index.html, "n_images", "methods", "missing", "seconds"}``.
    """
    started = time.perf_counter()
    workdir = os.fspath(workdir)
    if not os.path.isdir(workdir):
        raise ExplorerInputError(f"work directory {workdir} does not exist")
    out_dir = os.fspath(out_dir) if out_dir else os.path.join(workdir, DEFAULT_OUT)
    results = read_results(workdir)
    config = config if config is not None else load_run_config(workdir)
    shard_size = int(config.eval.shard_size)
    percentiles = [float(p) for p in (results.get("percentiles") or config.eval.percentiles)]
    maps_dir = os.path.join(workdir, MAPS)
    if not os.path.isdir(maps_dir):  # before the data and the models are loaded
        raise ExplorerInputError(f"no maps: {maps_dir} does not exist (run the attribution stage of "
                                 "`advpath run` first)")
    test = load_split(config.data, "test")
    stored = attribute.StoredMaps(maps_dir, attribute.stored_rows(maps_dir, len(test["image"])), shard_size)
    images = np.asarray(test["image"], np.float32)[stored.rows]  # the attributed test images, in shard order
    n = len(images)
    inventory = method_inventory(maps_dir, list(results["methods"]), n, shard_size)
    total = attribute.n_shards(n, shard_size)
    notices = [f"{name}: shard(s) {', '.join(str(s) for s in range(total) if s not in shards)} of {total} "
               f"missing in {os.path.join(maps_dir, attribute.method_slug(name))}"
               for name, shards in inventory.items() if len(shards) < total]
    classifier, generators = load_models(config, workdir)
    pairs = {}
    if generators:
        explainers = Explainers(f=ap.score_fn(classifier), classifier=classifier, generators=generators)
        pairs = {kind: pair_paths(explainers, kind, images, batch or shard_size) for kind in generators}
    notices += [f"{PAIR_LABELS[k]}: no trained generator in {os.path.join(workdir, k)}, so no pair or path"
                for k in PAIR_KINDS if k not in generators]
    summary = write_explorer(
        out_dir, images=images, labels=np.asarray(test["label"])[stored.rows],
        masks=np.asarray(test["mask"])[stored.rows], ids=np.asarray(test["id"])[stored.rows],
        scores=classifier_scores(classifier, images),
        maps={name: shard_chunks(maps_dir, name, shards, n, shard_size) for name, shards in inventory.items()},
        pairs=pairs, results=results_at_rows(results, stored), percentiles=percentiles,
        ties=region_tie_rule(results), figure_dir=workdir, notices=notices)
    return {**summary, "seconds": time.perf_counter() - started}


def link_from_report(report_path: str, index_path: str) -> None:
    """Add a link to the explorer below the first paragraph of ``report.md`` (rewritten atomically)."""
    rel = os.path.relpath(index_path, os.path.dirname(os.path.abspath(report_path))).replace(os.sep, "/")
    line = (f"Every test image with every method's map, the adversaries and the paths: "
            f"[the explorer]({rel}) (opens from the file system; `advpath view WORKDIR --serve` serves it).")
    with open(report_path, encoding="utf-8") as fh:
        text = fh.read()
    if f"]({rel})" in text:
        return
    lines = text.split("\n")
    at = next((k + 1 for k, t in enumerate(lines) if t.startswith("All numbers are in")), min(2, len(lines)))
    lines[at:at] = ["", line]
    write_bytes_atomic(report_path, "\n".join(lines).encode("utf-8"))
