"""A plain folder format for a user's own data.

::

    ROOT/
      labels.csv            header "id,label" plus optional "split" and "patient" columns
      images/<id>.png       or images/<id>.npy
      masks/<id>.png        optional folder; or masks/<id>.npy

* ``label`` is 0 (normal) or 1 (pathological).
* ``split`` (optional) is train, val or test. Without it, patients (the ``patient``
  column, else each id) are split deterministically by ``split_fractions``.
* Images: PNG (8- or 16-bit greyscale; colour is converted to luminance) scaled by the
  bit depth, or NPY [H, W] / [H, W, 1] as float in [0, 1], uint8 (/255), uint16 (/65535)
  or bool. Images are resized to ``image_size`` x ``image_size`` (bilinear; a non-square
  image is stretched).
* Masks: same formats, nonzero = lesion, same [H, W] as the image. When ``masks/``
  exists every label-1 image needs a mask; a label-0 image without one gets an empty
  mask. Without ``masks/`` all masks are empty (localisation metrics are then
  meaningless).

Every problem raises FileNotFoundError/ValueError naming the file.
:func:`write_folder` writes arrays in this format (for export and round trips).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import pathlib
from typing import Iterator, Sequence

import numpy as np
from PIL import Image

from advpath_jax.data import preprocess
from advpath_jax.data.imageio import read_grey
from advpath_jax.io_utils import write_bytes_atomic as _atomic_write_bytes
from advpath_jax.validation import check_shape, check_values

DEFAULT_SPLIT_FRACTIONS = (0.80, 0.10, 0.10)
SUFFIXES = (".png", ".npy")


@dataclasses.dataclass(frozen=True)
class FolderRecord:
    id: str
    label: int
    split: str | None
    patient: str
    image_path: pathlib.Path
    mask_path: pathlib.Path | None


def _find_file(folder: pathlib.Path, ident: str) -> pathlib.Path | None:
    found = [folder / f"{ident}{s}" for s in SUFFIXES if (folder / f"{ident}{s}").exists()]
    if len(found) > 1:
        raise ValueError(f"both {found[0]} and {found[1]} exist; keep one")
    return found[0] if found else None


def read_index(root: str | pathlib.Path) -> list[FolderRecord]:
    """Parse ROOT/labels.csv and locate every image and mask file."""
    root = pathlib.Path(root).expanduser()
    labels_csv = root / "labels.csv"
    if not labels_csv.exists():
        raise FileNotFoundError(f"folder data set has no labels.csv: {labels_csv}")
    try:
        with open(labels_csv, newline="") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ValueError(f"cannot read {labels_csv}: {err}") from err
    if "id" not in header or "label" not in header:
        raise ValueError(f"{labels_csv} must have the columns id,label (found {header})")
    image_dir, mask_dir = root / "images", root / "masks"
    has_masks = mask_dir.is_dir()
    records, seen = [], set()
    for line, row in enumerate(rows, start=2):
        ident = (row["id"] or "").strip()
        if not ident or "/" in ident or ident.startswith("."):
            raise ValueError(f"{labels_csv} line {line}: invalid id {row['id']!r}")
        if ident in seen:
            raise ValueError(f"{labels_csv} line {line}: duplicate id {ident!r}")
        seen.add(ident)
        if (row["label"] or "").strip() not in ("0", "1"):
            raise ValueError(f"{labels_csv} line {line}: label must be 0 or 1, got {row['label']!r}")
        label = int(row["label"])
        split = (row.get("split") or "").strip() or None
        if split is not None and split not in preprocess.SPLITS:
            raise ValueError(f"{labels_csv} line {line}: split must be one of {preprocess.SPLITS}, got {split!r}")
        image_path = _find_file(image_dir, ident)
        if image_path is None:
            raise FileNotFoundError(f"image file missing for id {ident!r} ({labels_csv} line {line}): "
                                    f"expected {image_dir / ident}.png or .npy")
        mask_path = _find_file(mask_dir, ident) if has_masks else None
        if has_masks and mask_path is None and label == 1:
            raise FileNotFoundError(f"image {image_path} (label 1) has no mask: expected "
                                    f"{mask_dir / ident}.png or .npy")
        patient = (row.get("patient") or "").strip() or ident
        records.append(FolderRecord(ident, label, split, patient, image_path, mask_path))
    if not records:
        raise ValueError(f"{labels_csv} lists no images")
    return records


def _read_array(path: pathlib.Path, what: str) -> np.ndarray:
    """A 2-D float array in [0, 1] from PNG or NPY (see the module docstring)."""
    arr = read_grey(path, what=what)  # PNG already scaled by its bit depth; NPY as stored
    if arr.dtype == np.uint8:
        arr = arr / 255.0
    elif arr.dtype == np.uint16:
        arr = arr / 65535.0
    elif arr.dtype == bool:
        arr = arr.astype(np.float64)
    elif not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{what} file {path} has dtype {arr.dtype}; use float in [0, 1], uint8, uint16 or bool")
    check_values(arr, name=f"{what} file {path}")
    return arr.astype(np.float32)


def load_record(record: FolderRecord, image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(image [S, S] float32 in [0, 1], mask [S, S] bool) of one record."""
    image = _read_array(record.image_path, "image")
    if record.mask_path is None:
        mask = np.zeros(image.shape, bool)
    else:
        mask = _read_array(record.mask_path, "mask") > 0
        if mask.shape != image.shape:
            raise ValueError(f"mask file {record.mask_path} has shape {mask.shape}, but image "
                             f"{record.image_path} has {image.shape}")
    image = np.clip(preprocess.resize_image(image, image_size), 0.0, 1.0)
    return image, preprocess.resize_mask(mask, image_size)


def assign_splits(records: Sequence[FolderRecord], seed: int,
                  split_fractions: Sequence[float] = DEFAULT_SPLIT_FRACTIONS) -> list[str]:
    """The split of each record: its ``split`` column, else by patient (deterministic)."""
    free = [r.patient for r in records if r.split is None]
    assignment = preprocess.split_groups(free, split_fractions, seed) if free else {}
    return [r.split if r.split is not None else assignment[r.patient] for r in records]


def split_examples(root: str | pathlib.Path, *, image_size: int, seed: int = 0,
                   split_fractions: Sequence[float] = DEFAULT_SPLIT_FRACTIONS
                   ) -> dict[str, Iterator[tuple[str, dict]]]:
    """Per split, a generator of (key, example): image [S,S,1] float32, mask, label, id."""
    records = read_index(root)
    splits = assign_splits(records, seed, split_fractions)

    def generate(split: str) -> Iterator[tuple[str, dict]]:
        for record, s in zip(records, splits):
            if s == split:
                image, mask = load_record(record, image_size)
                yield record.id, {"image": image[..., None], "mask": mask,
                                  "label": record.label, "id": record.id}

    return {split: generate(split) for split in preprocess.SPLITS}


def load_folder(root: str | pathlib.Path, split: str | None = None, *, image_size: int,
                seed: int = 0, split_fractions: Sequence[float] = DEFAULT_SPLIT_FRACTIONS
                ) -> dict[str, np.ndarray]:
    """Read a folder (one split, or all images when split is None) into memory.

    Returns image float32 [N, S, S, 1], label int32 [N], mask bool [N, S, S], id str [N].
    """
    records = read_index(root)
    if split is not None:
        if split not in preprocess.SPLITS:
            raise ValueError(f"unknown split {split!r}; choose from {preprocess.SPLITS}")
        splits = assign_splits(records, seed, split_fractions)
        records = [r for r, s in zip(records, splits) if s == split]
    images, masks = [], []
    for record in records:
        image, mask = load_record(record, image_size)
        images.append(image)
        masks.append(mask)
    n = len(records)
    return {
        "image": np.stack(images)[..., None] if n else np.zeros((0, image_size, image_size, 1), np.float32),
        "label": np.array([r.label for r in records], np.int32),
        "mask": np.stack(masks) if n else np.zeros((0, image_size, image_size), bool),
        "id": np.array([r.id for r in records], dtype=str),
    }


# --------------------------------------------------------------------------- writing
def _encode(arr: np.ndarray, fmt: str, is_mask: bool) -> bytes:
    buf = io.BytesIO()
    if fmt == "npy":
        np.save(buf, arr.astype(bool) if is_mask else arr.astype(np.float32))
    else:
        pixels = (arr.astype(np.uint8) * 255) if is_mask else preprocess.to_unit_uint16(arr)
        Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def write_folder(root: str | pathlib.Path, data: dict, *, splits: Sequence[str] | None = None,
                 image_format: str = "png", write_masks: bool = True) -> pathlib.Path:
    """Write ``data`` (image [N,H,W,1] in [0,1], label [N], mask [N,H,W], id [N]) as ROOT.

    PNG images are 16-bit (quantisation step 1/65535), NPY images exact float32.
    ``splits`` (optional, [N]) fills the split column. Files are written atomically.
    """
    if image_format not in ("png", "npy"):
        raise ValueError(f"image_format must be 'png' or 'npy', got {image_format!r}")
    root = pathlib.Path(root).expanduser()
    image = np.asarray(data["image"])
    check_shape(image.shape, name="image", rank=4, layout="[N, H, W, 1]", channels=1, allow_empty=True)
    check_values(image, name="image")
    n = image.shape[0]
    labels, ids = np.asarray(data["label"]), [str(i) for i in data["id"]]
    masks = np.asarray(data["mask"]) if write_masks else None
    if len(labels) != n or len(ids) != n or (masks is not None and masks.shape != image.shape[:3]):
        raise ValueError("image, label, mask and id must describe the same N examples")
    if splits is not None and len(splits) != n:
        raise ValueError(f"splits has {len(splits)} entries for {n} examples")
    (root / "images").mkdir(parents=True, exist_ok=True)
    if masks is not None:
        (root / "masks").mkdir(exist_ok=True)
    for i in range(n):
        image_bytes = _encode(image[i, ..., 0], image_format, False)
        _atomic_write_bytes(root / "images" / f"{ids[i]}.{image_format}", image_bytes)
        if masks is not None:
            _atomic_write_bytes(root / "masks" / f"{ids[i]}.{image_format}", _encode(masks[i], image_format, True))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "label"] + (["split"] if splits is not None else []))
    for i in range(n):
        writer.writerow([ids[i], int(labels[i])] + ([splits[i]] if splits is not None else []))
    _atomic_write_bytes(root / "labels.csv", out.getvalue().encode())
    return root
