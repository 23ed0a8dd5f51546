"""Training models in worker processes: scheduling, failures and the default worker count."""

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
