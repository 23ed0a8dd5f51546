"""The plain folder format: round trips and errors that name the file."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from advpath_jax.data import datasets, folder, synth_chest


@pytest.fixture(scope="module")
def small_set():
    return synth_chest(10, 32, seed=5, positive_fraction=0.5)


@pytest.mark.parametrize("fmt,atol", [("npy", 0.0), ("png", 0.5 / 65535 + 1e-7)])
def test_round_trip(tmp_path, small_set, fmt, atol):
    root = folder.write_folder(tmp_path / "set", small_set, image_format=fmt)
    back = folder.load_folder(root, image_size=32)
    np.testing.assert_array_equal(back["id"], small_set["id"])
    np.testing.assert_array_equal(back["label"], small_set["label"])
    np.testing.assert_array_equal(back["mask"], small_set["mask"])
    np.testing.assert_allclose(back["image"], small_set["image"], atol=atol, rtol=0)


def test_round_trip_through_tfds_with_split_column(tmp_path, small_set):
    splits = ["train"] * 6 + ["val"] * 2 + ["test"] * 2
    root = folder.write_folder(tmp_path / "set", small_set, splits=splits, image_format="npy")
    cfg = datasets.default_data_config(f"folder:{root}", image_size=32, data_dir=str(tmp_path / "prepared"))
    for split, sl in (("train", slice(0, 6)), ("val", slice(6, 8)), ("test", slice(8, 10))):
        d = datasets.load_split(cfg, split)
        np.testing.assert_array_equal(d["id"], small_set["id"][sl])
        np.testing.assert_array_equal(d["mask"], small_set["mask"][sl])
        np.testing.assert_array_equal(d["label"], small_set["label"][sl])
        np.testing.assert_array_equal(d["image"], small_set["image"][sl])


def test_resize_and_default_split(tmp_path, small_set):
    root = folder.write_folder(tmp_path / "set", small_set, image_format="png")
    d = folder.load_folder(root, "train", image_size=16)
    assert d["image"].shape[1:] == (16, 16, 1) and d["mask"].shape[1:] == (16, 16)
    parts = [folder.load_folder(root, s, image_size=16)["id"] for s in ("train", "val", "test")]
    assert sorted(np.concatenate(parts)) == sorted(small_set["id"])
    assert all(len(p) for p in parts)


def test_image_without_mask_names_the_file(tmp_path, small_set):
    root = folder.write_folder(tmp_path / "set", small_set, image_format="png")
    positive = str(small_set["id"][np.flatnonzero(small_set["label"] == 1)[0]])
    negative = str(small_set["id"][np.flatnonzero(small_set["label"] == 0)[0]])
    (root / "masks" / f"{negative}.png").unlink()  # allowed: empty mask
    assert not folder.load_folder(root, image_size=32)["mask"][list(small_set["id"]).index(negative)].any()
    (root / "masks" / f"{positive}.png").unlink()
    with pytest.raises(FileNotFoundError, match=f"images/{positive}.png.*has no mask"):
        folder.read_index(root)


def test_mask_of_wrong_shape_names_the_file(tmp_path, small_set):
    root = folder.write_folder(tmp_path / "set", small_set, image_format="npy")
    ident = str(small_set["id"][3])
    np.save(root / "masks" / f"{ident}.npy", np.zeros((20, 32), bool))
    with pytest.raises(ValueError, match=f"masks/{ident}.npy.*shape"):
        folder.load_folder(root, image_size=32)


def test_missing_and_corrupt_files_name_the_file(tmp_path, small_set):
    root = folder.write_folder(tmp_path / "set", small_set, image_format="png")
    ident = str(small_set["id"][2])
    (root / "images" / f"{ident}.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(ValueError, match=f"images/{ident}.png"):
        folder.load_folder(root, image_size=32)
    (root / "images" / f"{ident}.png").unlink()
    with pytest.raises(FileNotFoundError, match=f"images/{ident}"):
        folder.read_index(root)
    (root / "labels.csv").unlink()
    with pytest.raises(FileNotFoundError, match="labels.csv"):
        folder.read_index(root)


def test_bad_values_and_labels(tmp_path, small_set):
    root = folder.write_folder(tmp_path / "set", small_set, image_format="npy")
    ident = str(small_set["id"][0])
    np.save(root / "images" / f"{ident}.npy", np.full((32, 32), 1.5, np.float32))
    with pytest.raises(ValueError, match=f"{ident}.npy.*outside"):
        folder.load_folder(root, image_size=32)
    np.save(root / "images" / f"{ident}.npy", np.full((32, 32), np.nan, np.float32))
    with pytest.raises(ValueError, match=f"{ident}.npy.*NaN"):
        folder.load_folder(root, image_size=32)
    (root / "labels.csv").write_text("id,label\nx,2\n")
    with pytest.raises(ValueError, match="labels.csv line 2"):
        folder.read_index(root)


def test_png_8bit_and_rgb_are_read(tmp_path):
    root = tmp_path / "set"
    (root / "images").mkdir(parents=True)
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    Image.fromarray(grey).save(root / "images" / "a.png")
    Image.fromarray(np.stack([grey] * 3, -1)).save(root / "images" / "b.png")
    (root / "labels.csv").write_text("id,label,split\na,0,train\nb,0,train\n")
    d = folder.load_folder(root, "train", image_size=8)
    np.testing.assert_allclose(d["image"][0, ..., 0], grey / 255.0, atol=1e-6)
    np.testing.assert_allclose(d["image"][1, ..., 0], grey / 255.0, atol=1 / 255)
    assert not d["mask"].any()  # no masks/ folder
