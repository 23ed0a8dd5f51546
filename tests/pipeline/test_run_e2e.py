"""A tiny end-to-end `advpath run`: data -> models -> maps -> metrics -> a complete report."""

import json
import os

import pytest

from advpath_jax.cli import main as cli_main

from tests_helpers import TINY_RUN_METHODS as METHODS, tiny_run_argv


@pytest.mark.slow
def test_tiny_run_produces_a_complete_report_and_resumes(tiny_finished_run, capsys):
    workdir = tiny_finished_run
    argv = tiny_run_argv(workdir)
    report = (workdir / "report.md").read_text()
    assert "Table 1" in report and "Table 2" in report
    assert "figure1_examples.png" in report and "figure2_aopc.png" in report
    for name in ("figure1_examples.png", "figure2_aopc.png"):
        assert (workdir / name).stat().st_size > 1000
    results = json.loads((workdir / "results.json").read_text())
    assert results["methods"] == METHODS
    for name in METHODS:
        assert set(results["table1"][name]) == {"98", "99"}
        assert set(results["table2"][name]) == {"0", "1", "ALL"} or set(results["table2"][name]) >= {"ALL"}
    assert len(results["aopc"]["curves"]) >= len(METHODS) - 1
    # per-image metrics (the explorer's input) and the findings' evidence
    per = results["per_image"]
    n_pos, n_sub = len(per["positives"]), len(per["subset"])
    for name in METHODS:
        entry = per["methods"][name]
        assert set(entry["iou"]) == set(entry["fnr"]) == {"98", "99"}
        assert len(entry["iou"]["98"]) == n_pos and len(entry["fnr"]["99"]) == n_pos
        for key in ("R", "auc_deletion", "auc_preservation", "aopc"):
            assert len(entry[key]) == n_sub
    assert results["ties"] == "percentile" and set(results["constant_maps"]) == set(METHODS)
    a = results["claims"]["a"]["comparisons"]
    assert {(c["method"], c["versus"]) for c in a} == {("CyCE:E_FI^v2", "CyCE:E"), ("CyCE:E_FI,kσ^v2", "CyCE:E")}
    assert "Evidence for the paper's findings" in report
    for model in ("classifier", "cyce", "translator"):
        assert (workdir / model / "DONE.json").exists()
    assert not (workdir / "syce").exists()  # not needed by these methods
    # on a CPU with 2 cores the run trains CyCE and the translator at the same time, each in a worker
    # process whose output goes to its train.log and whose own CPU time enters the time table
    first_rows = {r["stage"]: r for r in results["meta"]["time_table"]["rows"]}
    if (os.cpu_count() or 1) >= 2:
        for model in ("classifier", "cyce", "translator"):
            log = (workdir / model / "train.log").read_text()
            assert f"[{model}]" in log
            assert first_rows[f"train {model}"]["cpu_s"] > 0.2 * first_rows[f"train {model}"]["wall_s"]
            assert not (workdir / model / "worker_result.json").exists()
    # a second run reuses models and map shards: nothing is trained or recomputed
    capsys.readouterr()
    assert cli_main(argv) == 0
    out = capsys.readouterr().out
    assert "training" not in out and "finished earlier" in out
    assert "[attribution] 0 maps computed" in out
    # the time table sums both processes: the first one's stages are kept, the run total grows
    first = results["meta"]["time_table"]
    again = json.loads((workdir / "results.json").read_text())["meta"]["time_table"]
    stages = {r["stage"]: r for r in again["rows"]}
    assert {"train classifier", "train cyce", "train translator", "attribution", "metrics", "report"} <= set(stages)
    first_att = next(r for r in first["rows"] if r["stage"] == "attribution")
    assert stages["attribution"]["processes"] == 2 and stages["attribution"]["items"] == first_att["items"] > 0
    assert stages["attribution"]["wall_s"] >= first_att["wall_s"]
    assert again["total"]["processes"] == 2 and again["total"]["wall_s"] > first["total"]["wall_s"]
    assert "## Time" in (workdir / "report.md").read_text()


@pytest.mark.slow
def test_maps_of_the_scored_images_only_give_the_tables_of_every_image(tiny_finished_run, tiny_run_every_image):
    """The default attributes the test images the metrics read (the positives of Table 1 and the
    balanced subset); attributing every test image gives the same per-image values."""
    import numpy as np

    from advpath_jax.errors import AdvpathError
    from advpath_jax.pipeline import attribute

    workdir, every = tiny_finished_run, tiny_run_every_image
    scored = json.loads((workdir / "results.json").read_text())
    per = scored["per_image"]
    rows = sorted(set(per["positives"]) | set(per["subset"]))
    manifest = json.loads((workdir / "maps" / attribute.MANIFEST).read_text())
    assert manifest["rows"] == rows and manifest["n_images"] == len(rows) < 24
    stored = sum(len(np.load(p)) for p in (workdir / "maps" / "Gradient").glob("shard_*.npy"))
    assert stored == len(rows) and scored["meta"]["evaluation"]["n_attributed"] == len(rows)
    # the same models, every test image attributed
    assert json.loads((every / "maps" / attribute.MANIFEST).read_text())["rows"] == list(range(24))
    full = json.loads((every / "results.json").read_text())
    assert full["per_image"]["positives"] == per["positives"] and full["per_image"]["subset"] == per["subset"]
    for name in METHODS:
        if name == "Random":  # its maps are drawn per shard, and the shards hold other images
            continue
        a, b = per["methods"][name], full["per_image"]["methods"][name]
        for key in ("R", "auc_deletion", "auc_preservation", "aopc"):
            np.testing.assert_allclose(b[key], a[key], rtol=1e-5, atol=1e-6, err_msg=f"{name} {key}")
        for p in ("98", "99"):
            np.testing.assert_allclose(b["iou"][p], a["iou"][p], rtol=1e-5, atol=1e-6, err_msg=f"{name} IoU p{p}")
    # the explorer shows the attributed images, each with its own per-image values
    shown = json.loads((workdir / "explorer" / "index.json").read_text())
    all_shown = json.loads((every / "explorer" / "index.json").read_text())
    assert shown["n"] == len(rows) and all_shown["n"] == 24
    assert shown["images"]["id"] == [all_shown["images"]["id"][r] for r in rows]
    at = rows.index(per["positives"][0])
    assert shown["metrics"]["Gradient"]["IoU p98"][at] == pytest.approx(per["methods"]["Gradient"]["iou"]["98"][0],
                                                                        abs=1e-5)
    maps = attribute.StoredMaps(str(workdir / "maps"), np.asarray(rows), 16)
    missing = [r for r in range(24) if r not in rows][:1]
    with pytest.raises(AdvpathError, match="no maps of split row"):
        maps.gather("Gradient", np.asarray(missing))
