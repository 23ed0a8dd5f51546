"""The explorer's files: colour rule, contours, regions, paths, per-image metrics, bad input."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from advpath_jax.cli import main as cli_main
from advpath_jax.view import build, tiles


def _png(path) -> np.ndarray:
    return np.asarray(Image.open(path))


# ----------------------------------------------------------------------------- pure parts


def test_colour_rule_divides_by_the_maps_own_99th_percentile():
    rng = np.random.default_rng(0)
    m = rng.gamma(2.0, size=(16, 16))
    expected = np.minimum(m / np.percentile(m, 99), 1.0)
    np.testing.assert_allclose(tiles.normalise_map(m), expected)
    np.testing.assert_allclose(tiles.normalise_map(5.0 * m), expected)  # scale-free: same picture
    assert not tiles.normalise_map(np.zeros((4, 4))).any()
    rgb = tiles.colour_map(m)
    assert rgb.shape == (16, 16, 3) and rgb.dtype == np.uint8
    top = np.unravel_index(np.argmax(m), m.shape)
    low = np.unravel_index(np.argmin(np.where(m > 0, m, np.inf)), m.shape)
    assert rgb[top].sum() > rgb[low].sum()  # brighter where the map is larger


def test_boundary_of_a_square_is_its_perimeter():
    mask = np.zeros((12, 12), bool)
    mask[3:8, 2:7] = True  # 5 x 5
    edge = tiles.boundary(mask)
    assert edge.sum() == 4 * 5 - 4
    assert not edge[4:7, 3:6].any()  # the interior 3 x 3
    rgba = tiles.contour_overlay(mask)
    assert (rgba[..., 3] > 0).sum() == 16 and (rgba[~edge][..., 3] == 0).all()
    assert tiles.boundary(np.ones((3, 3), bool)).sum() == 8  # the image border counts as outside


def test_path_images_are_the_straight_line_between_the_pair():
    rng = np.random.default_rng(1)
    s, e = rng.random((2, 4, 4, 1)), rng.random((2, 4, 4, 1))
    path = build.path_images(s, e, (0.0, 0.25, 1.0))
    assert path.shape == (2, 3, 4, 4, 1)
    np.testing.assert_allclose(path[:, 0], s, atol=1e-6)
    np.testing.assert_allclose(path[:, 2], e, atol=1e-6)
    np.testing.assert_allclose(path[:, 1], 0.75 * s + 0.25 * e, atol=1e-6)


def test_pair_paths_run_the_generators_at_the_attribution_shards_batch(monkeypatch):
    class Explainers:  # stand-in generator pair x_s = x, x_a = 1 - x; records each batch's shape
        classifier = None
        shapes = []

        def pair(self, kind, x):
            self.shapes.append(x.shape[0])
            return x, 1.0 - x

    monkeypatch.setattr(build, "classifier_scores", lambda _, imgs: imgs.mean(axis=(1, 2, 3)))
    images = np.random.default_rng(2).random((126, 4, 4, 1)).astype(np.float32)
    out = build.pair_paths(Explainers(), "cyce", images, batch=100)
    # the shards' layout for 126 images of at most 100: 63 + 63, not 100 + 26 (a second program)
    assert Explainers.shapes == [63, 63]
    lam = np.asarray(build.PATH_LAMBDAS)
    means = images.mean(axis=(1, 2, 3))
    np.testing.assert_allclose(out["scores"], means[:, None] + lam * (1 - 2 * means[:, None]), atol=1e-5)
    np.testing.assert_allclose(out["delta"], np.abs(1 - 2 * images[..., 0]), atol=1e-6)
    Explainers.shapes = []
    short = build.pair_paths(Explainers(), "cyce", images[:7], batch=3)  # 3 + 2 + 2, padded to 3
    assert Explainers.shapes == [3, 3, 3] and short["scores"].shape == (7, len(lam))
    np.testing.assert_allclose(short["scores"], out["scores"][:7], atol=1e-6)


def test_per_image_metrics_are_spread_to_test_rows():
    results = {"per_image": {"positives": [1, 3], "subset": [0, 3, 4], "methods": {"A": {
        "iou": {"98": [0.5, 0.25]}, "fnr": {"98": [0.1, 0.2]}, "R": [1.0, 2.0, 3.0],
        "aopc": [[0.0, 0.1, 0.7], [0.0, 0.2, 0.3], [0.0, 0.0, 0.1]]}}}}
    table = build.per_image_metrics(results, 5, [98.0])
    assert table["A"]["IoU p98"] == [None, 0.5, None, 0.25, None]
    assert table["A"]["R"] == [1.0, None, None, 2.0, 3.0]
    assert table["A"]["AOPC"] == [0.7, None, None, 0.3, 0.1]  # AOPC(L) at the last L
    assert build.per_image_metrics({}, 5, [98.0]) is None
    results["per_image"]["methods"]["A"]["R"] = [1.0]
    with pytest.raises(build.ExplorerInputError, match=r"per_image\['A'\]\['R'\]: 1 values for 3 images"):
        build.per_image_metrics(results, 5, [98.0])
    results["per_image"]["positives"] = [1, 9]
    with pytest.raises(build.ExplorerInputError, match="positives"):
        build.per_image_metrics(results, 5, [98.0])


def test_embedded_index_cannot_close_the_script_tag():
    page = build.render_html({"title": "</script><b>x"})
    assert "</script><b>" not in page.split('id="explorer-data">', 1)[1].split("</script>", 1)[0]
    assert build.DATA_MARKER not in page


def test_report_link_is_added_once(tmp_path):
    report = tmp_path / "report.md"
    report.write_text("# t\n\nAll numbers are in [`results.json`](results.json).\n\n## Table 1\n")
    for _ in range(2):
        build.link_from_report(str(report), str(tmp_path / "explorer" / "index.html"))
    text = report.read_text()
    assert text.count("(explorer/index.html)") == 1
    assert text.index("explorer/index.html") < text.index("## Table 1")


# ----------------------------------------------------------------------------- bad input


def test_missing_report_and_missing_maps_are_named(tmp_path, capsys):
    workdir = tmp_path / "run"
    workdir.mkdir()
    assert cli_main(["view", str(workdir)]) == 2
    err = capsys.readouterr().err
    assert "results.json" in err and "no report" in err
    (workdir / "results.json").write_text(json.dumps({"methods": ["Gradient"]}))
    (workdir / "classifier").mkdir()
    (workdir / "classifier" / "config.json").write_text(json.dumps({"eval": {"shard_size": 4, "percentiles": [98]}}))
    assert cli_main(["view", str(workdir)]) == 2
    err = capsys.readouterr().err
    assert "no maps" in err and os.path.join(str(workdir), "maps") in err
    assert cli_main(["view", str(tmp_path / "absent")]) == 2
    assert "does not exist" in capsys.readouterr().err


# ----------------------------------------------------------------------------- a real run


@pytest.mark.slow
def test_run_writes_the_explorer_and_links_it(tiny_run, tiny_methods):
    METHODS = tiny_methods
    index = json.loads((tiny_run / "explorer" / "index.json").read_text())
    assert "explorer/index.html" in (tiny_run / "report.md").read_text()
    assert (tiny_run / "explorer" / "index.html").stat().st_size > 5000
    n = index["n"]
    assert n == 24 and len(index["images"]["id"]) == n
    assert [m["name"] for m in index["methods"]] == METHODS
    assert all(m["has"] == "1" * n for m in index["methods"])
    if "per_image" in json.loads((tiny_run / "results.json").read_text()):
        assert set(index["metrics"]) == set(METHODS) and "R" in index["metrics"]["CyCE:E"]
    else:
        assert index["metrics"] is None and any("per-image" in t for t in index["notices"])
    assert [p["kind"] for p in index["pairs"]] == ["cyce"]
    assert any("SyCE" in t for t in index["notices"]) and any("SAGen" in t for t in index["notices"])
    out = tiny_run / "explorer"
    for i in range(n):
        assert _png(out / "img" / f"{i}.png").shape == (32, 32)
        strip = _png(out / "path" / "cyce" / f"{i}.png")
        assert strip.shape == (32, 32 * (len(build.SHOWN_LAMBDAS) + 1), 3)
        for m in index["methods"]:
            assert _png(out / "map" / m["slug"] / f"{i}.png").shape == (32, 32, 3)
    assert index["figures"]["aopc"] and (out / index["figures"]["aopc"]).exists()


@pytest.mark.slow
def test_tiles_and_path_scores_match_independent_computations(tiny_run):
    from advpath_jax.data import load_split
    from advpath_jax.pipeline import attribute
    from advpath_jax.generators.inference import cyce_pair
    from advpath_jax.store.models import load_classifier, load_generators
    from advpath_jax.store.predictions import classifier_scores

    config = build.load_run_config(str(tiny_run))
    out = tiny_run / "explorer"
    index = json.loads((out / "index.json").read_text())
    test = load_split(config.data, "test")
    images, masks = np.asarray(test["image"], np.float32), np.asarray(test["mask"])
    # images and contours
    np.testing.assert_array_equal(_png(out / "img" / "0.png"), np.round(images[0, ..., 0] * 255).astype(np.uint8))
    for i in np.flatnonzero(masks.reshape(len(masks), -1).any(axis=1))[:2]:
        assert ((_png(out / "gt" / f"{i}.png")[..., 3] > 0) == tiles.boundary(masks[i])).all()
    # region B of CyCE:E at p98: np.percentile rule or exact count, computed here with numpy
    maps = np.load(attribute.shard_path(str(tiny_run / "maps"), "CyCE:E", 0))
    rule = index["ties"]
    for k in range(3):
        alpha = _png(out / "region" / "CyCE-E" / "p98" / f"{k}.png")[..., 3] > 0
        flat = maps[k].ravel()
        if rule == "percentile":
            expected = (maps[k] >= np.percentile(flat, 98))
        else:
            keep = max(1, int(np.ceil(flat.size * 2 / 100)))
            expected = np.zeros(flat.size, bool)
            expected[np.argsort(-flat, kind="stable")[:keep]] = True
            expected = expected.reshape(maps[k].shape)
        assert (alpha == expected).all()
    # path scores: f(γ(0)) = f(x) for CyCE; f(γ(1)) = f(x_a) with x_a from the generator
    classifier = load_classifier(str(tiny_run), config)
    f_x = classifier_scores(classifier, images)
    _, x_a = cyce_pair(load_generators(str(tiny_run), config, "cyce"), classifier, images)
    f_xa = classifier_scores(classifier, np.asarray(x_a))
    scores = np.asarray(index["pairs"][0]["scores"])
    np.testing.assert_allclose(scores[:, 0], f_x, atol=2e-4)
    np.testing.assert_allclose(scores[:, -1], f_xa, atol=2e-4)
    np.testing.assert_allclose(index["images"]["score"], f_x, atol=2e-5)
    assert index["images"]["pred"] == (f_x >= 0.5).astype(int).tolist()


@pytest.mark.slow
def test_partially_attributed_run_shows_what_exists(tiny_run, tmp_path, capsys):
    from advpath_jax.pipeline import attribute

    workdir = tmp_path / "run"
    shutil.copytree(tiny_run, workdir, ignore=shutil.ignore_patterns("explorer"))
    os.remove(attribute.shard_path(str(workdir / "maps"), "Gradient", 1))
    shutil.rmtree(workdir / "maps" / "Random")
    assert cli_main(["view", str(workdir), "--out", str(tmp_path / "site")]) == 0
    printed = capsys.readouterr().out
    assert "Gradient: shard(s) 1 of 2 missing in " + str(workdir / "maps" / "Gradient") in printed
    assert "Gradient: maps missing for 12 of 24 images" in printed  # shards of 12 and 12
    assert "Random: maps missing for 24 of 24 images" in printed
    index = json.loads((tmp_path / "site" / "index.json").read_text())
    has = {m["name"]: m["has"] for m in index["methods"]}
    assert has["Gradient"] == "1" * 12 + "0" * 12 and has["Random"] == "0" * 24 and has["CyCE:E"] == "1" * 24
    assert not (tmp_path / "site" / "map" / "Gradient" / "20.png").exists()
    assert any("Gradient: maps missing" in t for t in index["notices"])


def test_serve_binds_to_localhost_and_serves_the_page(fixture_site):
    import threading
    import urllib.request

    from advpath_jax.view.serve import address, make_server

    site, _ = fixture_site
    server = make_server(str(site), 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = address(server)
        assert url.startswith("http://127.0.0.1:") and url.endswith("/index.html")
        with urllib.request.urlopen(url, timeout=10) as reply:
            assert b'id="explorer-data"' in reply.read()
        with urllib.request.urlopen(url.replace("index.html", "img/0.png"), timeout=10) as reply:
            assert reply.read()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(FileNotFoundError, match="index.html"):
        make_server(str(site / "img"), 0)


def test_fixture_site_files(fixture_site):
    site, results = fixture_site
    index = json.loads((site / "index.json").read_text())
    assert [m["name"] for m in index["methods"]] == results["methods"]
    assert index["methods"][2]["has"] == "1" * 6 + "0" * 4
    assert (site / "map" / "SyCE-E_FI-ksigma-v2" / "5.png").exists()
    assert not (site / "map" / "SyCE-E_FI-ksigma-v2" / "6.png").exists()
    # region B at p98 with the index rule: exactly ceil(256 * 2 / 100) = 6 pixels of a 16 x 16 map
    assert ((_png(site / "region" / "Gradient" / "p98" / "0.png")[..., 3]) > 0).sum() == 6
    page = (site / "index.html").read_text()
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page  # no network
