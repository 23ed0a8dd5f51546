"""Explorer test inputs: a tiny finished `advpath run` (the suite's shared one, with maps of all
its 24 test images) and an explorer written from FIXTURE arrays and a FIXTURE results dict (for the browser)."""

from __future__ import annotations

import numpy as np
import pytest

from tests_helpers import TINY_RUN_METHODS


@pytest.fixture(scope="session")
def tiny_methods() -> list[str]:
    return list(TINY_RUN_METHODS)


@pytest.fixture(scope="session")
def tiny_run(tiny_run_every_image):
    """Work directory of the suite's finished tiny run with maps of every test image (its explorer
    written by `advpath run` itself)."""
    return tiny_run_every_image


def fixture_per_image(results: dict, labels: np.ndarray, masks: np.ndarray, seed: int = 0) -> dict:
    """A FIXTURE ``per_image`` block (random values, the layout `advpath run` writes)."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    positives = np.flatnonzero((labels == 1) & masks.reshape(n, -1).any(axis=1))
    subset = np.arange(0, n, 2)
    methods = {}
    for name in results["methods"]:
        methods[name] = {
            "iou": {p: rng.random(len(positives)).tolist() for p in ("98", "99")},
            "fnr": {p: rng.random(len(positives)).tolist() for p in ("98", "99")},
            "R": rng.normal(size=len(subset)).tolist(),
            "auc_deletion": rng.random(len(subset)).tolist(),
            "auc_preservation": rng.random(len(subset)).tolist(),
            "aopc": rng.random((len(subset), 3)).tolist(),
        }
    return {"positives": positives.tolist(), "subset": subset.tolist(), "methods": methods}


def fixture_results(methods: list[str], labels: np.ndarray, masks: np.ndarray, seed: int = 0) -> dict:
    """A FIXTURE results dict: the report's tables made with write_report from random per-image values."""
    from advpath_jax.metrics.stats import by_class, summarize

    rng = np.random.default_rng(seed)
    per_image = fixture_per_image({"methods": methods}, labels, masks, seed)
    table1, table2 = {}, {}
    for name in methods:
        entry = per_image["methods"][name]
        table1[name] = {p: {"iou": summarize(entry["iou"][p]), "fnr": summarize(entry["fnr"][p])} for p in ("98", "99")}
        pred = rng.integers(0, 2, len(per_image["subset"]))
        parts = {k: by_class(np.asarray(entry[k]), pred) for k in ("R", "auc_deletion", "auc_preservation")}
        table2[name] = {c: {k: parts[k][c] for k in parts} for c in ("0", "1", "ALL")}
    return {"title": "fixture report", "dataset": "fixture", "methods": methods, "percentiles": [98, 99],
            "ties": "index", "table1": table1, "table2": table2, "per_image": per_image,
            "figures": {"figure1": None, "figure2": "figure2_aopc.png"}}


@pytest.fixture(scope="session")
def fixture_site(tmp_path_factory):
    """An explorer written by write_explorer from FIXTURE arrays (10 images of 16 px, three
    methods, the third missing its last 4 maps, CyCE and SyCE pairs): no training needed."""
    from PIL import Image

    from advpath_jax.view.build import PATH_LAMBDAS, SHOWN_LAMBDAS, write_explorer

    rng = np.random.default_rng(3)
    n, size = 10, 16
    images = rng.random((n, size, size, 1)).astype(np.float32)
    labels = np.array([0, 1] * (n // 2))
    masks = np.zeros((n, size, size), bool)
    masks[labels == 1, 4:10, 5:11] = True
    scores = np.clip(labels * 0.6 + rng.random(n) * 0.4, 0, 1)
    methods = ["Gradient", "CyCE:E", "SyCE:E_FI,kσ^v2"]
    maps = {name: [(0, rng.random((n, size, size)).astype(np.float32))] for name in methods[:2]}
    maps[methods[2]] = [(0, rng.random((n - 4, size, size)).astype(np.float32))]
    pairs = {}
    for kind in ("cyce", "syce"):
        x_s, x_a = rng.random((2, n, size, size, 1)).astype(np.float32)
        lam = np.asarray(SHOWN_LAMBDAS)[None, :, None, None, None]
        pairs[kind] = {"shown": x_s[:, None] + lam * (x_a - x_s)[:, None], "delta": np.abs(x_a - x_s)[..., 0],
                       "scores": np.linspace(scores, 1 - scores, len(PATH_LAMBDAS)).T}
    figure_dir = tmp_path_factory.mktemp("fixture_figures")
    Image.fromarray((rng.random((60, 90, 3)) * 255).astype(np.uint8)).save(figure_dir / "figure2_aopc.png")
    out = tmp_path_factory.mktemp("fixture_site") / "explorer"
    results = fixture_results(methods, labels, masks)
    write_explorer(str(out), images=images, labels=labels, masks=masks, ids=[f"img{i}" for i in range(n)],
                   scores=scores, maps=maps, pairs=pairs, results=results, percentiles=[98.0, 99.0],
                   ties="index", figure_dir=str(figure_dir))
    return out, results
