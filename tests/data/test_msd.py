"""MSD Task01_BrainTumour loader on tiny NIfTI volumes written by the test."""

from __future__ import annotations

import json

import numpy as np
import pytest

from advpath_jax.data import datasets, msd, preprocess

X = Y = 16
Z = 6
CASES = ("BRATS_001", "BRATS_002", "BRATS_003")


def _case_arrays(seed: int):
    """A T1gd channel with a body disc on slices 1-4, a 1-pixel 'body' on slice 5 and
    nothing on slice 0; tumour voxels: 12 on z=2, 5 on z=3, exactly 10 on z=4."""
    rng = np.random.default_rng(seed)
    vol = np.full((X, Y, Z, 4), 7.0, np.float32)  # other channels constant
    xx, yy = np.meshgrid(np.arange(X), np.arange(Y), indexing="ij")
    disc = (xx - 8) ** 2 + (yy - 8) ** 2 <= 30
    t1gd = np.zeros((X, Y, Z), np.float32)
    for z in range(1, 5):
        t1gd[..., z] = disc * (100.0 + 10 * z + xx + rng.uniform(0, 5, (X, Y)))
    t1gd[3, 3, 5] = 50.0
    vol[..., 2] = t1gd
    lab = np.zeros((X, Y, Z), np.uint8)
    lab[5:9, 6:9, 2] = rng.integers(1, 4, (4, 3))   # 12 voxels, classes 1-3
    lab[7:9, 7:9, 3] = 1
    lab[10, 8, 3] = 2                                # 5 voxels
    lab[4:6, 5:10, 4] = 3                            # 10 voxels
    return vol, lab


@pytest.fixture
def msd_dir(tmp_path, write_nifti):
    task = tmp_path / "Task01_BrainTumour"
    truth = {}
    for i, case in enumerate(CASES):
        vol, lab = _case_arrays(i)
        write_nifti(task / "imagesTr" / f"{case}.nii.gz", vol)
        write_nifti(task / "labelsTr" / f"{case}.nii.gz", lab)
        truth[case] = (vol, lab)
    meta = {"modality": {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"},
            "training": [{"image": f"./imagesTr/{c}.nii.gz", "label": f"./labelsTr/{c}.nii.gz"} for c in CASES]}
    (task / "dataset.json").write_text(json.dumps(meta))
    return tmp_path, truth


def test_slices_labels_masks_and_normalisation(msd_dir):
    root, truth = msd_dir
    task = msd.find_task_dir(root)  # the parent of Task01_BrainTumour is accepted
    cases = msd.list_cases(task)
    assert [c[0] for c in cases] == list(CASES)
    volume, tumour = msd.load_case(cases[0][1], cases[0][2], channel=2)
    out = list(msd.case_slices(volume, tumour, image_size=16))
    vol, lab = truth["BRATS_001"]
    # z=0 (empty) and z=5 (1 body pixel = 0.4% < 1%) are outside the body.
    assert [z for z, *_ in out] == [1, 2, 3, 4]
    assert [label for *_, label in out] == [0, 1, 0, 1]  # 12 and 10 voxels >= 10; 5 < 10
    for z, image, mask, _ in out:
        raw = np.rot90(vol[:, :, z, 2])
        np.testing.assert_allclose(image, raw / raw.max(), atol=1e-6)
        np.testing.assert_array_equal(mask, np.rot90(lab[:, :, z] > 0))
    assert out[2][2].sum() == 5  # a negative slice keeps its few tumour pixels


def test_resize_scales_mask_and_threshold():
    assert preprocess.scaled_pixel_threshold(10, (240, 240), 240) == 10
    assert preprocess.scaled_pixel_threshold(10, (240, 240), 224) == 9   # 10 * (224/240)^2 = 8.7
    assert preprocess.scaled_pixel_threshold(10, (240, 240), 64) == 1    # 0.71 -> at least 1
    vol = np.zeros((16, 16, 1), np.float32)
    vol[2:14, 2:14, 0] = 1.0
    tum = np.zeros((16, 16, 1), bool)
    tum[4:12, 4:12, 0] = True  # an 8x8 block aligned to the 2x2 grid
    [(z, image, mask, label)] = list(msd.case_slices(vol, tum, image_size=8, min_tumour_pixels=10))
    expected = np.zeros((8, 8), bool)
    expected[2:6, 2:6] = True
    np.testing.assert_array_equal(mask, expected)
    assert label == 1 and image.shape == (8, 8) and image.min() >= 0 and image.max() == pytest.approx(1.0)


def test_prepared_splits_by_patient(msd_dir, tmp_path):
    root, truth = msd_dir
    cfg = datasets.default_data_config("msd_brain", image_size=16, manual_dir=str(root),
                                       data_dir=str(tmp_path / "prepared"))
    seen = {}
    for split in ("train", "val", "test"):
        d = datasets.load_split(cfg, split)
        assert d["image"].dtype == np.float32 and d["image"].shape[1:] == (16, 16, 1)
        assert d["mask"].dtype == bool and d["label"].dtype == np.int32
        patients = {i.split("_z")[0] for i in d["id"]}
        assert len(patients) == 1, f"{split} holds {patients}"  # 3 patients -> one per split
        for ident, label, mask, image in zip(d["id"], d["label"], d["mask"], d["image"]):
            case, z = ident.split("_z")
            vol, lab = truth[case]
            assert label == int((lab[:, :, int(z)] > 0).sum() >= 10)
            np.testing.assert_array_equal(mask, np.rot90(lab[:, :, int(z)] > 0))
            raw = np.rot90(vol[:, :, int(z), 2])
            np.testing.assert_allclose(image[..., 0], raw / raw.max(), atol=2e-5)  # uint16 storage
        seen[split] = patients
    assert set().union(*seen.values()) == set(CASES)


def test_missing_label_names_the_file(msd_dir):
    root, _ = msd_dir
    missing = root / "Task01_BrainTumour" / "labelsTr" / "BRATS_002.nii.gz"
    missing.unlink()
    with pytest.raises(FileNotFoundError, match="BRATS_002.nii.gz"):
        msd.list_cases(msd.find_task_dir(root))


def test_corrupt_volume_names_the_file(msd_dir):
    root, _ = msd_dir
    bad = root / "Task01_BrainTumour" / "imagesTr" / "BRATS_003.nii.gz"
    bad.write_bytes(b"\x1f\x8b this is not a NIfTI volume")
    label = root / "Task01_BrainTumour" / "labelsTr" / "BRATS_003.nii.gz"
    with pytest.raises(ValueError, match="BRATS_003.nii.gz"):
        msd.load_case(bad, label)


def test_label_shape_mismatch_and_3d_image(tmp_path, write_nifti):
    write_nifti(tmp_path / "img.nii.gz", np.zeros((8, 8, 4, 4), np.float32))
    write_nifti(tmp_path / "lab.nii.gz", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="lab.nii.gz"):
        msd.load_case(tmp_path / "img.nii.gz", tmp_path / "lab.nii.gz")
    write_nifti(tmp_path / "img3d.nii.gz", np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="img3d.nii.gz"):
        msd.load_case(tmp_path / "img3d.nii.gz", tmp_path / "lab.nii.gz")


def test_without_manual_dir_explains(tmp_path):
    cfg = datasets.default_data_config("msd_brain", data_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="manual_dir"):
        datasets.prepare(cfg)
    with pytest.raises(FileNotFoundError, match="imagesTr"):
        msd.find_task_dir(tmp_path)
