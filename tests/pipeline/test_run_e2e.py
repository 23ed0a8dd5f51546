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
