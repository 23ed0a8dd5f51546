"""Model quality gates: figures against bars, warnings in the console and report, ``--strict``."""

import json
import re

import pytest

from advpath_jax.cli import main as cli_main
from advpath_jax.errors import AdvpathError
from advpath_jax.pipeline import quality
from tests.tests_helpers import TINY_RUN_SETTINGS


def test_rows_compare_each_figure_with_its_bar():
    rows = quality.gate_rows("syce", {"flip_rate": 0.98, "keep_rate": 0.61})
    assert [(r["figure"], r["bar"], r["ok"]) for r in rows] == [("flip_rate", 0.90, True), ("keep_rate", 0.90, False)]
    assert quality.gate_rows("cyce", {"flip_rate": 0.90})[0]["ok"]  # the bar itself passes
    assert quality.gate_rows("classifier", {"accuracy": 0.9})[0] == {
        "model": "classifier", "figure": "auc", "label": "test AUC", "value": None, "bar": 0.90, "ok": False}
    assert quality.gate_rows("random_model", {"flip_rate": 0.0}) == []


def test_warning_names_the_figure_the_value_and_the_bar():
    s = quality.summary(quality.all_rows({"classifier": {"auc": 0.72}, "translator": {"flip_rate": 1.0}}))
    assert not s["passed"]
    assert s["warnings"] == ["the classifier's test AUC is 0.72 < 0.90: the explanations below describe a weak "
                             "classifier"]
    md = "\n".join(quality.table_md(s))
    assert "| classifier | test AUC | 0.720 | 0.90 | **below the bar** |" in md
    assert "| AOPC translator | flip rate | 1.000 | 0.90 | ok |" in md
    assert quality.summary(quality.all_rows({"translator": {"flip_rate": 1.0}}))["passed"]


def test_table_rows_keep_five_cells_when_a_label_holds_a_pipe():
    s = quality.summary(quality.all_rows({"syce": {"flip_rate": 0.99, "keep_rate": 0.5, "mean_abs_adv": 0.03}}))
    rows = [ln for ln in quality.table_md(s) if ln.startswith("| SyCE")]
    assert any("mean \\|x\\_a - x\\|" in ln for ln in rows)
    for ln in rows:  # unescaped pipes: 6 separators of 5 cells
        assert len(re.findall(r"(?<!\\)\|", ln)) == 6, ln


def test_bars_can_be_overridden_and_unknown_ones_are_refused():
    gates = quality.gates_for({"classifier.auc": 0.95})
    assert not quality.gate_rows("classifier", {"auc": 0.93}, gates)[0]["ok"]
    with pytest.raises(AdvpathError, match="classifier.accuracy"):
        quality.gates_for({"classifier.accuracy": 0.9})


def test_strict_check_raises_and_names_the_file(capsys):
    with pytest.raises(AdvpathError, match=r"--strict: the SyCE's keep rate is 0.61 < 0.90.*DONE.json"):
        quality.check("syce", {"flip_rate": 0.98, "keep_rate": 0.61}, quality.DEFAULT_GATES, strict=True,
                      where="runs/x/syce/DONE.json")
    quality.check("syce", {"flip_rate": 0.98, "keep_rate": 0.61}, quality.DEFAULT_GATES, strict=False)
    assert "WARNING: the SyCE's keep rate is 0.61 < 0.90" in capsys.readouterr().out


def _weak_argv(workdir, methods, *extra):
    """A tiny run whose lesions are invisible (contrast 0.001 under noise 0.03): the classifier
    it trains cannot separate the classes, whatever it does."""
    argv = ["run", "--workdir", str(workdir), "--methods", methods, *extra]
    for item in TINY_RUN_SETTINGS + ["data.lesion_contrast=0.001"]:
        argv += ["--set", item]
    return argv


def test_weak_classifier_is_reported_and_strict_fails(tmp_path, capsys):
    work = tmp_path / "weak"
    assert cli_main(_weak_argv(work, "Gradient")) == 0
    out = capsys.readouterr().out
    assert "WARNING: the classifier's test AUC is" in out
    results = json.loads((work / "results.json").read_text())
    q = results["quality"]
    auc = next(r for r in q["rows"] if r["model"] == "classifier")
    assert auc["value"] < 0.90 and not auc["ok"] and not q["passed"]
    report = (work / "report.md").read_text()
    assert report.index("## Model quality") < report.index("## Table 1")  # at the top
    assert f"> **Warning:** the classifier's test AUC is {auc['value']:.2f} < 0.90" in report

    # the same finished work directory with --strict: an error, exit status 2
    assert cli_main(_weak_argv(work, "Gradient", "--strict")) == 2
    err = capsys.readouterr().err
    assert "--strict" in err and "test AUC" in err and "DONE.json" in err


def test_strict_stops_before_training_against_a_weak_classifier(tmp_path, capsys):
    work = tmp_path / "weak_strict"
    assert cli_main(_weak_argv(work, "CyCE:E", "--strict")) == 2
    assert "test AUC" in capsys.readouterr().err
    assert (work / "classifier" / "DONE.json").exists()
    assert not (work / "cyce").exists()  # nothing was trained against it
