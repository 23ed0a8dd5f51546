"""The bench's contention measure: other processes' CPU time between two snapshots."""

import os
import subprocess
import sys
import time

import pytest

from advpath_jax.bench import common


def test_other_cpu_share_closed_form():
    # 2 s of wall on 2 cores; the machine was busy 3 core-s, of which 1 was ours: 2 / 4.
    assert common.other_cpu_share((0.0, 10.0, 1.0), (2.0, 13.0, 2.0), cores=2) == pytest.approx(0.5)
    # our own time exceeding the machine's (accounting granularity) reads as idle, not negative
    assert common.other_cpu_share((0.0, 10.0, 1.0), (2.0, 10.5, 2.0), cores=2) == 0.0
    assert common.other_cpu_share(None, (2.0, 13.0, 2.0)) is None
    assert common.other_cpu_share((2.0, 10.0, 1.0), (2.0, 13.0, 2.0)) is None


def test_other_cpu_warning_threshold():
    assert common.other_cpu_warning(None) is None
    assert common.other_cpu_warning(0.04) is None
    assert "other processes used 30% of the machine" in common.other_cpu_warning(0.3)


def _busy(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def _other_core_seconds(start, end) -> float:
    return common.other_cpu_share(start, end) * (end[0] - start[0]) * (os.cpu_count() or 1)


@pytest.mark.skipif(common.cpu_snapshot() is None, reason="needs /proc/stat (Linux)")
def test_snapshot_counts_another_process_but_not_this_one():
    idle_start = common.cpu_snapshot()
    time.sleep(1.0)  # what other jobs on this machine use in a second, if any (0 on an idle machine)
    start = common.cpu_snapshot()
    baseline = _other_core_seconds(idle_start, start)
    _busy(1.0)  # this process's own work
    mid = common.cpu_snapshot()
    own_other = _other_core_seconds(start, mid)
    assert mid[2] - start[2] >= 0.9
    assert own_other < baseline + 0.5, (f"this process's own CPU time was counted as other processes' "
                                        f"({own_other:.2f} s against {baseline:.2f} s while idle)")
    # A process not yet waited for is another process: its CPU time shows as foreign.
    child = subprocess.Popen([sys.executable, "-c",
                              "import time\nend = time.process_time() + 1.5\n"
                              "while time.process_time() < end: pass"])
    try:
        before = common.cpu_snapshot()
        time.sleep(1.0)
        after = common.cpu_snapshot()
    finally:
        child.wait()
    foreign = _other_core_seconds(before, after)
    assert foreign >= 0.6, f"a busy child process used {foreign:.2f} core-s by the snapshots"
