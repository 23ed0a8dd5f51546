"""Training models in worker processes: scheduling, failures and the default worker count."""

import multiprocessing
import os
import signal
import time

import pytest

from advpath_jax.config_utils import load_config
from advpath_jax.errors import AdvpathError
from advpath_jax.pipeline.train_pool import check_workers, default_workers, train_in_workers
from advpath_jax.training.stage_record import DEPENDS_ON


def test_default_workers():
    assert default_workers("cpu", cores=2) == 2 and default_workers("cpu", cores=16) == 2
    assert default_workers("cpu", cores=1) == 1
    assert default_workers("gpu", cores=16) == 1 and default_workers("tpu", cores=8) == 1
    assert check_workers(3) == 3
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="workers"):
            check_workers(bad)


def test_a_model_whose_dependency_is_missing_is_refused_before_any_process_starts(tmp_path):
    config = load_config("synth_brain")
    with pytest.raises(AdvpathError, match="cannot train cyce"):
        train_in_workers(["cyce"], DEPENDS_ON, config, str(tmp_path), 2, lambda *a: None)
    assert not (tmp_path / "cyce").exists()


@pytest.mark.slow
def test_a_failing_worker_is_reported_with_its_log(tmp_path):
    """SyCE without a trained classifier: the worker process fails; the error names the model and
    quotes the end of its log; nothing is reported as done."""
    config = load_config("synth_brain", ["data.image_size=32", "data.num_train=16", "data.num_val=8",
                                         "data.num_test=8"])
    finished = []
    with pytest.raises(AdvpathError, match="training of syce failed") as err:
        train_in_workers(["syce"], DEPENDS_ON, config, str(tmp_path), 2, lambda *a: finished.append(a),
                         done=["classifier"])
    assert "end of" in str(err.value) and "train.log" in str(err.value)
    assert (tmp_path / "syce" / "train.log").stat().st_size > 0
    assert finished == []


def _sleeping_child(parent_pid):
    from advpath_jax.pipeline.train_pool import _exit_with_parent
    _exit_with_parent(parent_pid, poll_s=0.2)
    time.sleep(120)


def _parent_of_a_child(pid_file):
    ctx = multiprocessing.get_context("spawn")
    child = ctx.Process(target=_sleeping_child, args=(os.getpid(),))
    child.start()
    with open(pid_file, "w") as fh:
        fh.write(str(child.pid))
    time.sleep(120)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie (exited, not yet reaped) counts as gone
        return fh.read().split(")")[-1].split()[0] != "Z"


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc")
def test_a_worker_leaves_when_its_parent_is_killed(tmp_path):
    pid_file = tmp_path / "child.pid"
    parent = multiprocessing.get_context("spawn").Process(target=_parent_of_a_child, args=(str(pid_file),))
    parent.start()
    deadline = time.monotonic() + 60
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the child did not start"
        time.sleep(0.1)
    child_pid = int(pid_file.read_text())
    assert _alive(child_pid)
    os.kill(parent.pid, signal.SIGKILL)  # no clean-up code of the parent runs
    parent.join()
    deadline = time.monotonic() + 20
    while _alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child_pid)
