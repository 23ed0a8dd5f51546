"""The registry, config resolution and the two read paths (load_split / get_source)."""

from __future__ import annotations

import numpy as np
import pytest

from advpath_jax.config_utils import load_config
from advpath_jax.data import (DATA_DEFAULTS, datasets, default_data_config, get_source, is_prepared,
                              load_split, prepare, synth_brain, validate_arrays)
from advpath_jax.data.synthetic import BRAIN_DEFAULTS, CHEST_DEFAULTS


def _tiny(name, tmp_path, **kw):
    return default_data_config(name, data_dir=str(tmp_path), num_train=20, num_val=8, num_test=12, **kw)


@pytest.mark.parametrize("config,defaults", [("synth_brain", BRAIN_DEFAULTS), ("synth_chest", CHEST_DEFAULTS)])
def test_config_files_match_the_library(config, defaults):
    data = load_config(config).data
    assert set(data.keys()) == set(DATA_DEFAULTS)
    assert data.name == config
    for key, value in defaults.items():
        assert data[key] == pytest.approx(value), key


def test_names_and_unknown_fields(tmp_path):
    assert datasets.resolve_name(f"folder:{tmp_path}")[1] == tmp_path.resolve()
    with pytest.raises(ValueError, match="unknown data set 'mnist'"):
        default_data_config("mnist")
    with pytest.raises(ValueError, match="unknown data config field"):
        default_data_config("synth_brain", colour=True)
    with pytest.raises(ValueError, match="split"):
        load_split("synth_brain", "validation")


def test_synthetic_splits_deterministic_and_distinct(tmp_path):
    cfg = _tiny("synth_brain", tmp_path)
    train, val = load_split(cfg, "train"), load_split(cfg, "val")
    assert train["image"].shape == (20, 64, 64, 1) and val["image"].shape == (8, 64, 64, 1)
    assert train["label"].sum() == 5 and val["label"].sum() == 2
    np.testing.assert_array_equal(load_split(cfg, "train")["image"], train["image"])
    assert not np.allclose(train["image"][:8], val["image"])
    assert train["id"][0] == "synth_brain-train-000000"
    other = load_split(_tiny("synth_brain", tmp_path, seed=1), "train")
    assert not np.allclose(other["image"], train["image"])
    validate_arrays(train)


def test_prepared_copy_equals_direct_generation(tmp_path):
    cfg = _tiny("synth_chest", tmp_path, image_size=48)
    direct = {s: load_split(cfg, s) for s in ("train", "val", "test")}
    assert not is_prepared(cfg)
    path = prepare(cfg)
    assert is_prepared(cfg) and path.exists() and str(tmp_path) in str(path)
    for split, want in direct.items():
        got = load_split(cfg, split)
        for key in ("image", "label", "mask", "id"):
            np.testing.assert_array_equal(got[key], want[key])
    src = get_source(cfg, "test")
    assert len(src) == 12
    ex = src[-1]
    np.testing.assert_array_equal(ex["image"], direct["test"]["image"][-1])
    assert ex["id"] == direct["test"]["id"][-1] and ex["label"] == direct["test"]["label"][-1]
    with pytest.raises(IndexError):
        src[12]
    batch = src.read_batch([3, 0])
    np.testing.assert_array_equal(batch["mask"], direct["test"]["mask"][[3, 0]])
    # Another option is another prepared copy.
    assert not is_prepared(_tiny("synth_chest", tmp_path, image_size=48, noise=0.05))


def test_validate_arrays_rejects_bad_input():
    good = synth_brain(4, 64, seed=0)
    with pytest.raises(ValueError, match="image must be float32"):
        validate_arrays(dict(good, image=good["image"][..., 0]))
    with pytest.raises(ValueError, match="mask must be bool"):
        validate_arrays(dict(good, mask=good["mask"][:, :10]))
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        validate_arrays(dict(good, label=good["label"] + 2))
    nan = good["image"].copy()
    nan[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        validate_arrays(dict(good, image=nan))


def test_preparing_leaves_no_empty_tfds_dirs_in_the_temp_dir(tmp_path, monkeypatch):
    """TFDS makes an empty ``tmp*tfds`` directory in the temp dir whenever it builds a data set
    whose info is not on disk yet; preparing and reading must not leave them behind."""
    temp_root = tmp_path / "tmp"
    temp_root.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(temp_root))
    cfg = _tiny("synth_brain", tmp_path / "data", image_size=32)
    prepare(cfg)
    assert len(get_source(cfg, "val")) == 8
    assert sorted(p.name for p in temp_root.iterdir()) == []
