"""Stage reuse is decided by settings records: a model (or the maps) trained under other
settings is refused or retrained, never reused; a refusal writes nothing.

The decision logic is tested with a stand-in trainer (fast); the end-to-end refusal and
the 16-bit round trip through ``advpath explain`` with a real tiny run are in
tests/pipeline/test_reliability_e2e.py.
"""

import json
import os

import pytest

from advpath_jax.cli import main as cli_main
from advpath_jax.config_utils import load_config
from advpath_jax.errors import AdvpathError
from advpath_jax.pipeline import attribute, run as run_mod
from advpath_jax.training import stage_record as sr

MODELS = ["classifier", "cyce", "translator"]


@pytest.fixture
def fake_train(monkeypatch):
    """Replace the real trainers: each call leaves a checkpoint folder and is counted."""
    calls = []

    def train(model, config, workdir):
        folder = os.path.join(workdir, model, "checkpoints")
        assert not os.path.exists(folder), f"{model} trained over an earlier checkpoint"
        os.makedirs(folder)
        calls.append(model)
        return {"loss": 1.0}

    monkeypatch.setattr(run_mod, "train", train)
    return calls


def _config(*overrides):
    return load_config("synth_brain", list(overrides))


def test_same_settings_reuse_and_other_data_is_refused(tmp_path, fake_train, capsys):
    work = str(tmp_path)
    run_mod.train_all(_config(), work, MODELS)
    assert fake_train == MODELS
    done = json.load(open(run_mod.stage_marker(work, "cyce")))
    record = sr.read_record(work, "cyce")
    assert done["instance"] == record["instance"] and done["fingerprint_digest"] == sr.digest(record["fingerprint"])
    assert record["fingerprint"]["trained_against"]["classifier"]["instance"] == \
        sr.read_record(work, "classifier")["instance"]

    run_mod.train_all(_config(), work, MODELS)           # same settings: nothing trained
    assert fake_train == MODELS

    with pytest.raises(AdvpathError, match=r"classifier was trained under other settings.*data\.noise: 0\.03 -> 0\.05"
                                           r".*--workdir.*--retrain classifier"):
        run_mod.train_all(_config("data.noise=0.05"), work, MODELS)
    with pytest.raises(AdvpathError, match=r"classifier\.epochs: 10 -> 3"):
        run_mod.train_all(_config("classifier.epochs=3"), work, MODELS)
    with pytest.raises(AdvpathError, match=r"cyce was trained under other settings.*generators\.epochs"):
        run_mod.train_all(_config("generators.epochs=1"), work, MODELS)
    # a field added by a newer version (absent from the record) is named, not refused
    original = sr.read_record(work, "classifier")
    older = json.loads(json.dumps(original))
    del older["fingerprint"]["classifier"]["lr_schedule"]
    sr.write_record(work, "classifier", older)
    capsys.readouterr()
    run_mod.train_all(_config(), work, ["classifier"])
    assert "taken as unchanged: classifier.lr_schedule" in capsys.readouterr().err
    assert fake_train == MODELS
    sr.write_record(work, "classifier", original)
    # settings that cannot change a model are not part of its record
    run_mod.train_all(_config("classifier.progress=False", "eval.steps=7"), work, MODELS)
    assert fake_train == MODELS


def test_retrain_redoes_the_dependents_and_removes_the_maps(tmp_path, fake_train, capsys):
    work = str(tmp_path)
    run_mod.train_all(_config(), work, MODELS)
    before = {m: sr.read_record(work, m)["instance"] for m in MODELS}
    os.makedirs(os.path.join(work, "maps"))
    open(os.path.join(work, "maps", attribute.MANIFEST), "w").write("{}")
    fake_train.clear()
    run_mod.train_all(_config("data.noise=0.05"), work, MODELS, retrain=["classifier"])
    assert fake_train == MODELS                           # cyce and translator were trained against it
    assert not os.path.exists(os.path.join(work, "maps"))
    assert "--retrain: removing" in capsys.readouterr().out
    after = {m: sr.read_record(work, m) for m in MODELS}
    assert all(after[m]["instance"] != before[m] for m in MODELS)
    assert after["cyce"]["fingerprint"]["data"]["noise"] == 0.05
    run_mod.train_all(_config("data.noise=0.05"), work, MODELS)   # now reused
    assert fake_train == MODELS

    fake_train.clear()                                   # a leaf model alone
    run_mod.train_all(_config("data.noise=0.05"), work, MODELS, retrain=["cyce"])
    assert fake_train == ["cyce"]
    with pytest.raises(AdvpathError, match="unknown model"):
        run_mod.train_all(_config(), work, MODELS, retrain=["resnet"])
    with pytest.raises(AdvpathError, match="not used by these methods"):
        run_mod.train_all(_config(), work, MODELS, retrain=["mgen"])


def test_unrecorded_and_half_trained_models_are_refused(tmp_path, fake_train):
    work = str(tmp_path)
    os.makedirs(os.path.join(work, "classifier"))           # finished by an older version: no record
    open(run_mod.stage_marker(work, "classifier"), "w").write("{}")
    with pytest.raises(AdvpathError, match="without a settings record.*--retrain classifier"):
        run_mod.train_all(_config(), work, MODELS)
    assert fake_train == []

    # trained by an older version that saved its config: checked against it, then recorded
    legacy = tmp_path / "legacy"
    for model in ("classifier", "translator"):
        (legacy / model / "checkpoints").mkdir(parents=True)
        (legacy / model / "DONE.json").write_text("{}")
        (legacy / model / "config.json").write_text(json.dumps(_config().to_dict()))
    with pytest.raises(AdvpathError, match=r"legacy/classifier was trained under other settings.*data\.noise"):
        run_mod.train_all(_config("data.noise=0.05"), str(legacy), ["classifier", "translator"])
    assert not (legacy / "classifier" / sr.RECORD).exists()
    run_mod.train_all(_config(), str(legacy), ["classifier", "translator"])
    assert fake_train == []
    assert sr.read_record(str(legacy), "translator")["fingerprint"]["trained_against"]["classifier"]["instance"] \
        == sr.read_record(str(legacy), "classifier")["instance"]
    run_mod.train_all(_config(), str(legacy), ["classifier", "translator"])   # now from the records
    assert fake_train == []

    other = str(tmp_path / "other")                          # started (record + checkpoint), not finished
    record = sr.new_record(sr.model_fingerprint(_config("classifier.lr=0.01"), "classifier", {}))
    sr.write_record(other, "classifier", record)
    os.makedirs(os.path.join(other, "classifier", "checkpoints"))
    with pytest.raises(AdvpathError, match=r"classifier\.lr: 0\.01 -> 0\.001"):
        run_mod.train_all(_config(), other, MODELS)
    assert fake_train == []


def test_maps_of_other_models_are_refused_before_anything_is_written(tmp_path, fake_train):
    work = str(tmp_path)
    config = _config()
    run_mod.train_all(config, work, MODELS)
    records = run_mod.model_records(work, MODELS)
    maps_dir = os.path.join(work, "maps")
    attribute.check_manifest(maps_dir, run_mod.maps_fingerprint(config, records))
    run_mod.check_maps_reusable(config, work, {m: "reuse" for m in MODELS}, records, ())   # same models: fine
    other = {**records, "cyce": sr.new_record(records["cyce"]["fingerprint"])}       # cyce trained again
    with pytest.raises(AdvpathError, match=r"models\.cyce\.instance"):
        run_mod.check_maps_reusable(config, work, {m: "reuse" for m in MODELS}, other, ())
    with pytest.raises(AdvpathError, match="cyce would be trained now"):
        run_mod.check_maps_reusable(config, work, {"classifier": "reuse", "cyce": "train"}, records, ())
    # a method added later brings a model the manifest does not have: recorded, not refused
    mgen = sr.new_record(sr.model_fingerprint(config, "mgen", records))
    attribute.check_manifest(maps_dir, run_mod.maps_fingerprint(config, {**records, "mgen": mgen}))
    stored = json.load(open(os.path.join(maps_dir, attribute.MANIFEST)))
    assert set(stored["models"]) == {*MODELS, "mgen"}


def test_refused_run_leaves_the_record_unchanged(tmp_path, fake_train, capsys):
    work = tmp_path / "w"
    run_mod.train_all(_config(), str(work), ["classifier", "translator"])
    (work / "config.txt").write_text("the settings of the trained models\n")
    code = cli_main(["run", "--workdir", str(work), "--methods", "Gradient", "--set", "data.noise=0.05"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert "data.noise" in err and str(work / "classifier") in err
    assert (work / "config.txt").read_text() == "the settings of the trained models\n"
    assert not (work / "config.json").exists()
