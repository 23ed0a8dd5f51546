"""A tiny end-to-end `advpath run`: data -> models -> maps -> metrics -> a complete report."""

import json
import os

import pytest

from advpath_jax.cli import main as cli_main

TINY = [
    "data.image_size=32", "data.num_train=96", "data.num_val=32", "data.num_test=24",
    "classifier.epochs=1", "generators.epochs=1", "translator.epochs=1", "translator.steps_per_epoch=2",
    "eval.steps=3", "eval.shard_size=16", "eval.subset_size=8", "eval.aopc_steps=4",
    "eval.relevance_steps=3", "eval.random_repeats=1", "eval.figure_examples=2",
]
METHODS = ["Gradient", "CyCE:E", "CyCE:E_FI^v2", "CyCE:E_FI,kσ^v2", "Random"]


@pytest.mark.slow
def test_tiny_run_produces_a_complete_report_and_resumes(tmp_path, capsys):
    workdir = tmp_path / "run"
    argv = ["run", "--workdir", str(workdir), "--methods", ",".join(METHODS)]
    for item in TINY:
        argv += ["--set", item]
    assert cli_main(argv) == 0
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
    for model in ("classifier", "cyce", "translator"):
        assert (workdir / model / "DONE.json").exists()
    assert not (workdir / "syce").exists()  # not needed by these methods
    # a second run reuses models and map shards: nothing is trained or recomputed
    capsys.readouterr()
    assert cli_main(argv) == 0
    out = capsys.readouterr().out
    assert "training" not in out and "finished earlier" in out
    assert "[attribution] 0 maps computed" in out
