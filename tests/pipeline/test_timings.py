"""The run's time table: per-stage wall/CPU time, summed over the processes of a work directory."""

from __future__ import annotations

import json
import os
import time

import pytest

from advpath_jax.pipeline import timings
from advpath_jax.pipeline.report import write_report


def _busy(cpu_seconds: float) -> None:
    """Spin until this process has used ``cpu_seconds`` more CPU time."""
    end = time.process_time() + cpu_seconds
    while time.process_time() < end:
        pass


def test_stage_wall_cpu_and_items_of_one_process(tmp_path):
    clock = timings.RunClock(str(tmp_path), interval_s=60).start()
    with clock.stage("attribution"):
        _busy(0.2)
        clock.add_items("attribution", 12)
    with clock.stage("metrics"):
        time.sleep(0.3)                          # wall without CPU
    clock.close()
    stages = timings.load_timings(str(tmp_path))
    att, met = stages["attribution"], stages["metrics"]
    assert att["items"] == 12 and att["processes"] == 1
    assert 0.2 <= att["cpu_s"] <= att["wall_s"] * os.cpu_count() + 0.01   # 0.2 s of spinning
    assert 0.3 <= met["wall_s"] < 1.5 and met["cpu_s"] < 0.1
    assert stages["run"]["wall_s"] >= att["wall_s"] + met["wall_s"]


def test_a_killed_process_keeps_its_periodic_save_and_is_summed_with_the_resumed_one(tmp_path):
    killed = timings.RunClock(str(tmp_path), interval_s=0.05).start()
    with pytest.raises(KeyboardInterrupt):
        with killed.stage("attribution"):
            killed.add_items("attribution", 5)
            time.sleep(0.4)
            killed._stop.set()                   # the process dies: no final save after this
            killed._thread.join()
            raise KeyboardInterrupt
    saved = json.loads(open(killed.path).read())["stages"]["attribution"]
    assert 0.25 < saved["wall_s"] <= 0.45 and saved["items"] == 5   # a save from inside the stage
    time.sleep(1.1)                                                  # another second: another file name
    resumed = timings.RunClock(str(tmp_path), interval_s=60).start()
    with resumed.stage("attribution"):
        resumed.add_items("attribution", 7)
        time.sleep(0.2)
    table = timings.current_time_table(str(tmp_path), resumed)   # before close: running process included
    row = next(r for r in table["rows"] if r["stage"] == "attribution")
    assert row["items"] == 12 and row["processes"] == 2
    assert row["wall_s"] == pytest.approx(saved["wall_s"] + resumed.snapshot()["attribution"]["wall_s"], abs=1e-6)
    assert row["items_per_s"] == pytest.approx(12 / row["wall_s"])
    resumed.close()
    assert len(os.listdir(tmp_path / "timings")) == 2


def test_table_arithmetic_and_report_section(tmp_path):
    stages = {"train classifier": {"wall_s": 100.0, "cpu_s": 150.0, "items": 0, "processes": 2},
              "attribution": {"wall_s": 50.0, "cpu_s": 90.0, "items": 400, "processes": 1},
              "run": {"wall_s": 160.0, "cpu_s": 250.0, "items": 0, "processes": 2}}
    table = timings.time_table(stages, cores=2)
    rows = {r["stage"]: r for r in table["rows"]}
    assert rows["train classifier"]["cpu_utilisation"] == pytest.approx(0.75)
    assert rows["attribution"]["items_per_s"] == pytest.approx(8.0)
    assert table["total"]["wall_s"] == 160.0 and table["total"]["cpu_utilisation"] == pytest.approx(250 / 160 / 2)
    results = {"methods": {"A": {"R": 0.5}}, "meta": {"time_table": table, "steps": 3}}
    paths = write_report(tmp_path, results)
    report = open(paths["report"]).read()
    assert "## Time" in report
    assert "| attribution | 50.0 | 90.0 | 0.90 | 400 | 8.00 | 1 |" in report
    assert "| total (every process, start to end) | 160.0 | 250.0 | 0.78 |" in report
    assert "- time_table:" not in report          # not dumped a second time under Run information
    assert json.loads(open(paths["results"]).read())["meta"]["time_table"]["total"]["wall_s"] == 160.0


def test_unreadable_timings_file_is_named(tmp_path):
    (tmp_path / "timings").mkdir()
    (tmp_path / "timings" / "x.json").write_text("{not json")
    with pytest.raises(ValueError, match="x.json"):
        timings.load_timings(str(tmp_path))
