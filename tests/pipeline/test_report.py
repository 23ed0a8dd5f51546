"""The report writer: both tables, both figures and results.json from a small fake results dict."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from advpath_jax.pipeline.report import write_report

METHODS = ["Gradient", "CyCE:E", "SyCE:E_FI,kσ^v2", "Manifold path", "Random"]
PERCENTILES = [98, 99.5]


def _fake(seed: int = 0):
    rng = np.random.default_rng(seed)
    methods = {}
    pred = np.array([0, 0, 0, 1, 1, 1, 1, 0])
    for j, name in enumerate(METHODS):
        methods[name] = {
            "iou": rng.random((2, 5)) * (j + 1) / 10,
            "fnr": rng.random((2, 5)),
            "relevance": {"pred": pred, "auc_deletion": rng.random(8) * 0.5,
                          "auc_preservation": 0.5 + rng.random(8) * 0.5},
            "aopc": np.cumsum(rng.random((8, 11)) * (j + 1), axis=1) / 50,
        }
    results = {"title": "Synthetic brain", "dataset": "synth_brain (64 px)", "percentiles": PERCENTILES,
               "methods": methods, "meta": {"n_test": 8, "steps": 10}}
    images = rng.random((3, 16, 16)).astype(np.float32)
    masks = np.zeros((3, 16, 16), bool)
    masks[:, 4:9, 5:11] = True
    examples = {"images": images, "masks": masks, "ids": ["a", "b", "c"],
                "maps": {m: rng.random((3, 16, 16)) for m in METHODS[:3]}}
    return results, examples


def _harmonic(d, p):
    """Lim et al.'s R written out: the harmonic mean of 1 - D and P."""
    return 2.0 / (1.0 / (1.0 - d) + 1.0 / p)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    results, examples = _fake()
    paths = write_report(out, results, examples)
    return out, paths, results


def test_files(written):
    out, paths, _ = written
    assert sorted(os.listdir(out)) == sorted(["report.md", "results.json", "figure1_examples.png", "figure2_aopc.png"])
    for key in ("figure1", "figure2"):
        with Image.open(paths[key]) as im:
            assert im.format == "PNG" and im.size[0] > 200 and im.size[1] > 100
    with Image.open(paths["figure1"]) as im:
        assert im.size[1] > im.size[0] * 0.4  # three rows of images


def test_markdown(written):
    out, _, results = written
    md = (out / "report.md").read_text()
    assert "## Table 1" in md and "## Table 2" in md
    assert "![Figure 1](figure1_examples.png)" in md and "![Figure 2](figure2_aopc.png)" in md
    assert "IoU p98" in md and "FNR p99.5" in md
    for name in METHODS:  # Markdown-escaped in table cells
        assert f"| {name.replace('_', chr(92) + '_')} |" in md
    assert "np.percentile(map, p)" in md and "ties broken" not in md  # the default rule is named
    assert "|B \\ GT| / |B|" in md and "2(1 − D)P / ((1 − D) + P)" in md
    m = results["methods"]["CyCE:E"]
    iou = np.asarray(m["iou"][1])
    assert f"{iou.mean():.3f} ± {iou.std():.3f}" in md
    rel = m["relevance"]
    r1 = _harmonic(rel["auc_deletion"], rel["auc_preservation"])[rel["pred"] == 1]
    assert f"{r1.mean():.3f} ± {r1.std():.3f}" in md
    # best IoU at p98 is the last method (largest scale), shown in bold
    best = np.asarray(results["methods"]["Random"]["iou"][0])
    assert f"**{best.mean():.3f} ± {best.std():.3f}**" in md


def test_results_json(written):
    out, _, results = written
    doc = json.loads((out / "results.json").read_text())
    assert doc["methods"] == METHODS and doc["percentiles"] == [98.0, 99.5]
    for name in METHODS:
        m = results["methods"][name]
        for j, key in enumerate(["98", "99.5"]):
            for metric in ("iou", "fnr"):
                s = doc["table1"][name][key][metric]
                vals = np.asarray(m[metric][j])
                assert s["n"] == 5
                np.testing.assert_allclose([s["mean"], s["std"]], [vals.mean(), vals.std()], rtol=1e-12)
        rel = m["relevance"]
        r = _harmonic(rel["auc_deletion"], rel["auc_preservation"])
        for cls, sel in (("0", rel["pred"] == 0), ("1", rel["pred"] == 1), ("ALL", np.ones(8, bool))):
            np.testing.assert_allclose(doc["table2"][name][cls]["R"]["mean"], r[sel].mean(), rtol=1e-12)
            np.testing.assert_allclose(doc["table2"][name][cls]["auc_deletion"]["std"],
                                       rel["auc_deletion"][sel].std(), rtol=1e-12)
    aopc = doc["aopc"]
    assert aopc["reference"] == "Random" and aopc["L"] == list(range(11))
    assert set(aopc["relative"]) == set(METHODS) - {"Random"}
    expected = results["methods"]["Gradient"]["aopc"].mean(0) - results["methods"]["Random"]["aopc"].mean(0)
    np.testing.assert_allclose(aopc["relative"]["Gradient"], expected, rtol=1e-12, atol=1e-15)
    assert doc["figures"] == {"figure1": "figure1_examples.png", "figure2": "figure2_aopc.png"}
    assert doc["meta"] == {"n_test": 8, "steps": 10}


def test_optional_sections_and_explicit_reference(tmp_path):
    results, _ = _fake(1)
    for m in results["methods"].values():
        del m["relevance"]
    results["aopc_random"] = np.zeros(11)
    paths = write_report(tmp_path, results)
    md = (tmp_path / "report.md").read_text()
    assert "## Table 1" in md and "## Table 2" not in md and "Figure 1" not in md
    assert paths["figure1"] is None and os.path.exists(paths["figure2"])
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["aopc"]["reference"] == "aopc_random" and "Random" in doc["aopc"]["relative"]


def test_bad_input(tmp_path):
    results, examples = _fake(2)
    with pytest.raises(ValueError, match="methods"):
        write_report(tmp_path, {"methods": {}})
    bad = {**results, "percentiles": []}
    with pytest.raises(ValueError, match="percentiles"):
        write_report(tmp_path, bad)
    bad = {**results, "percentiles": [98]}
    with pytest.raises(ValueError, match="1 percentiles"):
        write_report(tmp_path, bad)
    nan = {k: dict(v) for k, v in results["methods"].items()}
    nan["Gradient"]["iou"] = np.full((2, 5), np.nan)
    with pytest.raises(ValueError, match="Gradient.*NaN"):
        write_report(tmp_path, {**results, "methods": nan})
    no_ref = {k: v for k, v in results["methods"].items() if k != "Random"}
    with pytest.raises(ValueError, match="random reference"):
        write_report(tmp_path, {**results, "methods": no_ref})
    with pytest.raises(ValueError, match="masks"):
        write_report(tmp_path, results, {**examples, "masks": examples["masks"][:2]})
    assert os.listdir(tmp_path) == [] or not any(p.startswith(".tmp") for p in os.listdir(tmp_path))


def test_tie_rule_named(tmp_path):
    results, _ = _fake(3)
    write_report(tmp_path, {**results, "ties": "index"})
    assert "ties broken by row-major pixel index" in (tmp_path / "report.md").read_text()
    assert json.loads((tmp_path / "results.json").read_text())["ties"] == "index"
    with pytest.raises(ValueError, match="ties"):
        write_report(tmp_path, {**results, "ties": "include"})


def test_evidence_constant_maps_settings_and_per_image(tmp_path):
    from advpath_jax.pipeline import quality
    from advpath_jax.pipeline.claims import claim_evidence

    results, _ = _fake(4)
    rng = np.random.default_rng(4)
    names = ["Gradient", "IG", "GradCAM", "CyCE:E", "CyCE:E_FI,kσ^v2"]
    base = rng.random(30)
    per_image = {"positives": list(range(30)), "subset": list(range(30)), "methods": {
        n: {"iou": {"98": (base + 0.2 * (n == "CyCE:E_FI,kσ^v2") + 0.01 * rng.standard_normal(30)).tolist()},
            "R": rng.random(30).tolist(), "aopc": base.tolist()} for n in names}}
    claims = claim_evidence(per_image, names, aopc_label="AOPC L=10", n_resamples=500)
    meta = {"explainers": {"GradCAM": {"stage": 2, "map": "8x8"}}}
    gates = quality.summary(quality.all_rows({"mgen": {"flip_rate": 0.85, "mean_mask_area": 0.12, "epochs": 3}}))
    write_report(tmp_path, {**results, "per_image": per_image, "claims": claims, "meta": meta, "quality": gates,
                            "constant_maps": {"Gradient": 0.0, "CyCE:E": 0.25}})
    md = (tmp_path / "report.md").read_text()
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["per_image"] == per_image and doc["constant_maps"]["CyCE:E"] == 0.25
    comp = next(c for c in doc["claims"]["a"]["comparisons"] if c["method"] == "CyCE:E_FI,kσ^v2")
    assert comp["versus"] == "CyCE:E" and comp["metrics"]["IoU p98"]["verdict"] == "holds"
    assert comp["metrics"]["IoU p98"]["low"] > 0.15
    # identical AOPC values: difference 0 -> inconclusive
    assert comp["metrics"]["AOPC L=10"]["verdict"] == "inconclusive"
    assert "## Evidence for the paper's findings" in md and "### (a)" in md and "### (c)" in md
    assert "| CyCE:E | 25.0% |" in md
    assert "## Settings" in md and '"stage": 2' in md
    assert "| MGen | flip rate of the destroyed image | 0.850 | 0.80 | ok |" in md
    assert "| MGen | mean mask area | 0.120 |  |  |" in md
    assert doc["quality"]["passed"] and doc["quality"]["rows"][1]["figure"] == "mean_mask_area"
