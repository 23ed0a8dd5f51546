"""RSNA Pneumonia Detection Challenge: DICOM radiographs with opacity boxes.

Reads a local copy (the TFDS ``manual_dir``) with pydicom::

    MANUAL_DIR/
      stage_2_train_labels.csv          patientId,x,y,width,height,Target (one row per box)
      stage_2_detailed_class_info.csv   patientId,class
      stage_2_train_images/<patientId>.dcm

(the ``stage_1_*`` names are accepted too). Preprocessing (paper section 4.1; docs/data.md): keep the
classes "Normal" (label 0) and "Lung Opacity" (label 1), drop "No Lung Opacity / Not
Normal"; each image is min-max normalised to [0, 1] and resized to ``image_size``
(bilinear, antialiased); the boxes, given in native pixels, are scaled and rasterised
into the mask (every pixel a box overlaps). Each patientId is one image; patients are
split deterministically (see ``preprocess.split_groups``).
"""

from __future__ import annotations

import csv
import pathlib
from typing import Iterator, Sequence

import numpy as np

from advpath_jax.data import preprocess
from advpath_jax.validation import check_values

DEFAULT_SPLIT_FRACTIONS = (0.80, 0.10, 0.10)
CLASS_LABELS = {"Normal": 0, "Lung Opacity": 1}
DROPPED_CLASS = "No Lung Opacity / Not Normal"


def _find_one(root: pathlib.Path, pattern: str, what: str, want_dir: bool = False) -> pathlib.Path:
    matches = sorted((p for p in root.glob(pattern) if p.is_dir() == want_dir), reverse=True)
    if not matches:
        raise FileNotFoundError(f"no {what} ({pattern}) in {root}")
    return matches[0]  # stage_2 sorts before stage_1 in reverse order


def find_files(manual_dir: str | pathlib.Path) -> tuple[pathlib.Path, pathlib.Path, pathlib.Path]:
    """(box CSV, class-info CSV, image folder) of a local RSNA copy."""
    if manual_dir is None:
        raise FileNotFoundError(
            "rsna_pneumonia needs a local copy of the RSNA data: pass data.manual_dir "
            "(advpath data prepare rsna_pneumonia --manual-dir PATH)")
    root = pathlib.Path(manual_dir).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"RSNA manual_dir does not exist: {root}")
    return (_find_one(root, "*train_labels*.csv", "box CSV"),
            _find_one(root, "*detailed_class_info*.csv", "class-info CSV"),
            _find_one(root, "*train_images*", "DICOM image folder", want_dir=True))


def _read_csv(path: pathlib.Path, columns: Sequence[str]) -> list[dict[str, str]]:
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
            header = rows[0].keys() if rows else []
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ValueError(f"cannot read CSV file {path}: {err}") from err
    missing = [c for c in columns if c not in header]
    if missing:
        raise ValueError(f"CSV file {path} lacks column(s) {missing} (or has no rows)")
    return rows


def read_tables(box_csv: pathlib.Path, class_csv: pathlib.Path
                ) -> dict[str, tuple[int, list[tuple[float, float, float, float]]]]:
    """patientId -> (label, boxes (x, y, width, height) in native pixels), sorted by id.

    Keeps Normal and Lung Opacity, drops "No Lung Opacity / Not Normal". A patient whose
    class and boxes disagree raises ValueError naming the CSV file and the patient.
    """
    classes: dict[str, str] = {}
    for i, row in enumerate(_read_csv(class_csv, ("patientId", "class")), start=2):
        pid, cls = row["patientId"].strip(), row["class"].strip()
        if cls not in CLASS_LABELS and cls != DROPPED_CLASS:
            raise ValueError(f"{class_csv} line {i}: unknown class {cls!r} for patient {pid}")
        if classes.setdefault(pid, cls) != cls:
            raise ValueError(f"{class_csv}: patient {pid} has two classes, {classes[pid]!r} and {cls!r}")
    boxes: dict[str, list[tuple[float, float, float, float]]] = {}
    for i, row in enumerate(_read_csv(box_csv, ("patientId", "x", "y", "width", "height", "Target")), start=2):
        pid = row["patientId"].strip()
        if row["Target"].strip() not in ("0", "1"):
            raise ValueError(f"{box_csv} line {i}: Target must be 0 or 1, got {row['Target']!r}")
        entry = boxes.setdefault(pid, [])
        if row["Target"].strip() == "1":
            try:
                box = tuple(float(row[k]) for k in ("x", "y", "width", "height"))
            except ValueError:
                raise ValueError(f"{box_csv} line {i}: patient {pid} has a non-numeric box") from None
            if not (box[2] > 0 and box[3] > 0):
                raise ValueError(f"{box_csv} line {i}: patient {pid} has a box of non-positive size {box}")
            entry.append(box)
    table = {}
    for pid in sorted(classes):
        cls = classes[pid]
        if cls == DROPPED_CLASS:
            continue
        pid_boxes = boxes.get(pid, [])
        if cls == "Lung Opacity" and not pid_boxes:
            raise ValueError(f"{box_csv}: patient {pid} is 'Lung Opacity' in {class_csv} but has no box")
        if cls == "Normal" and pid_boxes:
            raise ValueError(f"{box_csv}: patient {pid} is 'Normal' in {class_csv} but has boxes")
        table[pid] = (CLASS_LABELS[cls], pid_boxes)
    return table


def load_dicom(path: str | pathlib.Path) -> np.ndarray:
    """Pixel data of a DICOM file as a 2-D float32 array (MONOCHROME1 inverted)."""
    import pydicom

    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"DICOM file missing: {path}")
    try:
        ds = pydicom.dcmread(str(path))
        pixels = np.asarray(ds.pixel_array, np.float32)
    except Exception as err:  # pydicom raises many kinds for a damaged file
        raise ValueError(f"cannot read DICOM file {path}: {err}") from err
    if pixels.ndim == 3 and pixels.shape[-1] in (3, 4):
        pixels = pixels[..., :3].mean(axis=-1)
    if pixels.ndim != 2:
        raise ValueError(f"DICOM file {path} holds pixel data of shape {pixels.shape}, expected 2-D")
    check_values(pixels, name=f"DICOM file {path}", value_range=None)
    if str(getattr(ds, "PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        pixels = pixels.max() - pixels
    return pixels


def load_example(path: pathlib.Path, boxes, image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(image [S, S] in [0, 1], mask [S, S] bool) for one radiograph and its boxes."""
    pixels = load_dicom(path)
    image = preprocess.resize_image(preprocess.minmax_normalise(pixels), image_size)
    mask = preprocess.boxes_to_mask(boxes, pixels.shape, image_size)
    return np.clip(image, 0.0, 1.0), mask


def split_examples(manual_dir: str | pathlib.Path, *, image_size: int, seed: int = 0,
                   split_fractions: Sequence[float] = DEFAULT_SPLIT_FRACTIONS
                   ) -> dict[str, Iterator[tuple[str, dict]]]:
    """Per split, a generator of (key, example) with example = image [S,S,1] uint16,
    mask [S,S] bool, label int, id patientId."""
    box_csv, class_csv, image_dir = find_files(manual_dir)
    table = read_tables(box_csv, class_csv)
    if not table:
        raise ValueError(f"no Normal or Lung Opacity patients in {class_csv}")
    assignment = preprocess.split_groups(list(table), split_fractions, seed)

    def generate(split: str) -> Iterator[tuple[str, dict]]:
        for pid, (label, boxes) in table.items():
            if assignment[pid] != split:
                continue
            image, mask = load_example(image_dir / f"{pid}.dcm", boxes, image_size)
            yield pid, {"image": preprocess.to_unit_uint16(image)[..., None], "mask": mask,
                        "label": label, "id": pid}

    return {split: generate(split) for split in preprocess.SPLITS}
