"""RSNA pneumonia loader on a few DICOM files and CSV rows written by the test."""

from __future__ import annotations

import numpy as np
import pytest

from advpath_jax.data import datasets, rsna

NATIVE = 32
RAMP = np.tile(np.arange(NATIVE) * 10, (NATIVE, 1))  # increases left to right

# patientId -> (class, boxes (x, y, w, h) in native pixels, photometric)
PATIENTS = {
    "p_norm1": ("Normal", [], "MONOCHROME2"),
    "p_op1": ("Lung Opacity", [(4, 6, 10, 8), (20, 2, 6, 6)], "MONOCHROME2"),
    "p_nlo": ("No Lung Opacity / Not Normal", [], "MONOCHROME2"),
    "p_op2": ("Lung Opacity", [(0, 0, 3, 3)], "MONOCHROME1"),
    "p_norm2": ("Normal", [], "MONOCHROME2"),
}


def _expected_mask(pid: str) -> np.ndarray:
    """Boxes scaled by 16/32 and rasterised by hand (every pixel a box overlaps)."""
    m = np.zeros((16, 16), bool)
    if pid == "p_op1":
        m[3:7, 2:7] = True    # x 4..14 -> cols 2..7, y 6..14 -> rows 3..7
        m[1:4, 10:13] = True  # x 20..26 -> cols 10..13, y 2..8 -> rows 1..4
    if pid == "p_op2":
        m[0:2, 0:2] = True    # 0..3 -> 0..1.5 -> pixels 0 and 1
    return m


@pytest.fixture
def rsna_dir(tmp_path, write_dicom, write_csv):
    root = tmp_path / "rsna"
    box_rows, class_rows = [], []
    for pid, (cls, boxes, photometric) in PATIENTS.items():
        write_dicom(root / "stage_2_train_images" / f"{pid}.dcm", RAMP, photometric)
        if boxes:
            for box in boxes:
                box_rows.append([pid, *box, 1])
                class_rows.append([pid, cls])  # the real CSV repeats the class per box
        else:
            box_rows.append([pid, "", "", "", "", 0])
            class_rows.append([pid, cls])
    write_csv(root / "stage_2_train_labels.csv", ["patientId", "x", "y", "width", "height", "Target"], box_rows)
    write_csv(root / "stage_2_detailed_class_info.csv", ["patientId", "class"], class_rows)
    return root


def test_tables_filter_classes_and_keep_boxes(rsna_dir):
    box_csv, class_csv, image_dir = rsna.find_files(rsna_dir)
    table = rsna.read_tables(box_csv, class_csv)
    assert set(table) == {"p_norm1", "p_op1", "p_op2", "p_norm2"}  # p_nlo dropped
    assert table["p_op1"] == (1, [(4.0, 6.0, 10.0, 8.0), (20.0, 2.0, 6.0, 6.0)])
    assert table["p_norm1"] == (0, [])


def test_images_and_box_masks(rsna_dir):
    box_csv, class_csv, image_dir = rsna.find_files(rsna_dir)
    table = rsna.read_tables(box_csv, class_csv)
    for pid, (label, boxes) in table.items():
        image, mask = rsna.load_example(image_dir / f"{pid}.dcm", boxes, 16)
        np.testing.assert_array_equal(mask, _expected_mask(pid))
        assert image.shape == (16, 16) and 0 <= image.min() and image.max() <= 1
        # Constant down the columns (the ramp runs left to right).
        np.testing.assert_allclose(image, np.broadcast_to(image[:1], image.shape), atol=1e-6)
        step = np.diff(image[0])
        if PATIENTS[pid][2] == "MONOCHROME1":  # inverted: bright on the left
            assert np.all(step <= 1e-6) and image[0, 0] > 0.9
        else:
            assert np.all(step >= -1e-6) and image[0, -1] > 0.9


def test_prepared_splits(rsna_dir, tmp_path):
    cfg = datasets.default_data_config("rsna_pneumonia", image_size=16, manual_dir=str(rsna_dir),
                                       data_dir=str(tmp_path / "prepared"))
    ids = []
    for split in ("train", "val", "test"):
        d = datasets.load_split(cfg, split)
        assert len(d["id"]) >= 1
        for pid, label, mask in zip(d["id"], d["label"], d["mask"]):
            assert label == (1 if PATIENTS[pid][0] == "Lung Opacity" else 0)
            np.testing.assert_array_equal(mask, _expected_mask(pid))
        ids += list(d["id"])
    assert sorted(ids) == ["p_norm1", "p_norm2", "p_op1", "p_op2"]


def test_missing_and_corrupt_dicom_name_the_file(rsna_dir, tmp_path):
    (rsna_dir / "stage_2_train_images" / "p_op2.dcm").unlink()
    with pytest.raises(FileNotFoundError, match="p_op2.dcm"):
        rsna.load_dicom(rsna_dir / "stage_2_train_images" / "p_op2.dcm")
    cfg = datasets.default_data_config("rsna_pneumonia", image_size=16, manual_dir=str(rsna_dir),
                                       data_dir=str(tmp_path / "prepared"))
    with pytest.raises(FileNotFoundError, match="p_op2.dcm"):
        datasets.prepare(cfg)
    bad = rsna_dir / "stage_2_train_images" / "p_norm1.dcm"
    bad.write_bytes(b"DICM but not really" * 4)
    with pytest.raises(ValueError, match="p_norm1.dcm"):
        rsna.load_dicom(bad)


def test_inconsistent_csv_names_the_file(rsna_dir, write_csv):
    write_csv(rsna_dir / "stage_2_train_labels.csv", ["patientId", "x", "y", "width", "height", "Target"],
              [["p_op1", "", "", "", "", 0]])
    write_csv(rsna_dir / "stage_2_detailed_class_info.csv", ["patientId", "class"], [["p_op1", "Lung Opacity"]])
    box_csv, class_csv, _ = rsna.find_files(rsna_dir)
    with pytest.raises(ValueError, match="stage_2_train_labels.csv.*p_op1"):
        rsna.read_tables(box_csv, class_csv)
    (rsna_dir / "stage_2_detailed_class_info.csv").unlink()
    with pytest.raises(FileNotFoundError, match="class-info CSV"):
        rsna.find_files(rsna_dir)
