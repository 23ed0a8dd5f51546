"""Medical Segmentation Decathlon Task01_BrainTumour (BraTS) as 2-D axial slices.

Reads a local copy (the TFDS ``manual_dir``) with nibabel::

    MANUAL_DIR/                      (or MANUAL_DIR/Task01_BrainTumour/)
      dataset.json                   optional; its "training" list and "modality" names are used
      imagesTr/BRATS_001.nii.gz      [X, Y, Z, 4] (FLAIR, T1w, T1gd, T2w)
      labelsTr/BRATS_001.nii.gz      [X, Y, Z] (0 background, 1-3 tumour classes)

Preprocessing (paper section 4.1; docs/data.md): the T1gd channel only; label > 0 is tumour; each axial
slice is resized to ``image_size`` (bilinear, antialiased; the mask by area >= ``preprocess.MASK_AREA_THRESHOLD``);
slices whose body covers less than ``body_min_fraction`` of the pixels (intensity above
the volume's background minimum) are dropped; each slice is min-max normalised to
[0, 1]; a slice is positive when its resized mask has at least ``min_tumour_pixels``
pixels, the paper's 10-pixel rule scaled by the area ratio (image_size / X) * (image_size / Y)
(rounded, at least 1): 10 at 240 px, 9 at 224 px, 1 at 64 px. Positive and negative
slices keep their true masks (a negative may hold a few tumour pixels below the
threshold). Patients are split deterministically (see ``preprocess.split_groups``).
Slices are shown in radiological orientation (``np.rot90`` of the [X, Y] array).
"""

from __future__ import annotations

import pathlib
from typing import Iterator, Sequence

import numpy as np

from advpath_jax.data import preprocess
from advpath_jax.io_utils import read_json
from advpath_jax.validation import check_values

DEFAULT_SPLIT_FRACTIONS = (0.75, 0.10, 0.15)
T1GD_CHANNEL = 2
TASK_DIR = "Task01_BrainTumour"


def find_task_dir(manual_dir: str | pathlib.Path) -> pathlib.Path:
    """The folder holding imagesTr/ and labelsTr/ (the manual dir or its Task01 subfolder)."""
    if manual_dir is None:
        raise FileNotFoundError(
            "msd_brain needs a local copy of Task01_BrainTumour: pass data.manual_dir "
            "(advpath data prepare msd_brain --manual-dir PATH)")
    root = pathlib.Path(manual_dir).expanduser()
    for candidate in (root, root / TASK_DIR):
        if (candidate / "imagesTr").is_dir():
            return candidate
    if (root / f"{TASK_DIR}.tar").exists():
        raise FileNotFoundError(f"{root / (TASK_DIR + '.tar')} must be extracted first (tar xf)")
    raise FileNotFoundError(f"no imagesTr/ folder in {root} or {root / TASK_DIR}")


def _t1gd_channel(task_dir: pathlib.Path) -> int:
    meta = task_dir / "dataset.json"
    if not meta.exists():
        return T1GD_CHANNEL
    modality = read_json(meta, "MSD data set description").get("modality", {})
    for key, name in modality.items():
        if str(name).lower().replace("-", "").replace("_", "") in ("t1gd", "t1ce", "t1c"):
            return int(key)
    return T1GD_CHANNEL


def _case_name(path: pathlib.Path) -> str:
    name = path.name
    for suffix in (".nii.gz", ".nii"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def list_cases(task_dir: pathlib.Path) -> list[tuple[str, pathlib.Path, pathlib.Path]]:
    """(case id, image path, label path) of every training case, sorted by id.

    Every listed image must exist and have its label file; a missing one raises
    FileNotFoundError naming it.
    """
    meta = task_dir / "dataset.json"
    if meta.exists() and "training" in (content := read_json(meta, "MSD data set description")):
        pairs = [(task_dir / e["image"], task_dir / e["label"]) for e in content["training"]]
    else:
        images = sorted(p for p in (task_dir / "imagesTr").glob("*.nii*") if not p.name.startswith("."))
        pairs = [(p, task_dir / "labelsTr" / p.name) for p in images]
    cases = []
    for image, label in pairs:
        if not image.exists():
            raise FileNotFoundError(f"MSD image file missing: {image}")
        if not label.exists():
            raise FileNotFoundError(f"MSD label file missing for {image}: {label}")
        cases.append((_case_name(image), image, label))
    if not cases:
        raise FileNotFoundError(f"no NIfTI training cases found in {task_dir / 'imagesTr'}")
    return sorted(cases)


def _load_nifti(path: pathlib.Path, channel: int | None) -> np.ndarray:
    import nibabel as nib

    try:
        img = nib.load(str(path))
        if channel is None:
            data = np.asanyarray(img.dataobj)
        else:
            if len(img.shape) != 4 or img.shape[3] <= channel:
                raise ValueError(f"expected a 4-D [X, Y, Z, C>{channel}] volume, got shape {img.shape}")
            data = np.asanyarray(img.dataobj[..., channel])
    except FileNotFoundError:
        raise FileNotFoundError(f"NIfTI file missing: {path}") from None
    except Exception as err:  # nibabel/gzip raise many kinds for a damaged file
        raise ValueError(f"cannot read NIfTI file {path}: {err}") from err
    data = np.asarray(data, np.float32)
    check_values(data, name=f"NIfTI file {path}", value_range=None)
    return data


def load_case(image_path: pathlib.Path, label_path: pathlib.Path,
              channel: int = T1GD_CHANNEL) -> tuple[np.ndarray, np.ndarray]:
    """One case: (T1gd volume [X, Y, Z] float32, tumour [X, Y, Z] bool)."""
    volume = _load_nifti(pathlib.Path(image_path), channel)
    labels = _load_nifti(pathlib.Path(label_path), None)
    if labels.shape != volume.shape:
        raise ValueError(f"label volume {label_path} has shape {labels.shape}, "
                         f"but image {image_path} has {volume.shape}")
    return volume, labels > 0


def case_slices(volume: np.ndarray, tumour: np.ndarray, *, image_size: int,
                min_tumour_pixels: int = 10, body_min_fraction: float = 0.01
                ) -> Iterator[tuple[int, np.ndarray, np.ndarray, int]]:
    """Preprocessed axial slices of one case: (z, image [S, S] in [0,1], mask [S, S], label)."""
    threshold = preprocess.scaled_pixel_threshold(min_tumour_pixels, volume.shape[:2], image_size)
    background = float(volume.min())
    for z in range(volume.shape[2]):
        raw = np.rot90(volume[:, :, z])
        if float(np.mean(raw > background)) < body_min_fraction:
            continue  # outside the body
        image = preprocess.minmax_normalise(preprocess.resize_image(raw, image_size))
        mask = preprocess.resize_mask(np.rot90(tumour[:, :, z]), image_size)
        yield z, image, mask, int(mask.sum() >= threshold)


def split_examples(manual_dir: str | pathlib.Path, *, image_size: int, seed: int = 0,
                   split_fractions: Sequence[float] = DEFAULT_SPLIT_FRACTIONS,
                   min_tumour_pixels: int = 10, body_min_fraction: float = 0.01
                   ) -> dict[str, Iterator[tuple[str, dict]]]:
    """Per split, a generator of (key, example) with example = image [S,S,1] uint16,
    mask [S,S] bool, label int, id "CASE_zNNN"; patients never straddle splits."""
    task_dir = find_task_dir(manual_dir)
    cases = list_cases(task_dir)
    channel = _t1gd_channel(task_dir)
    assignment = preprocess.split_groups([c[0] for c in cases], split_fractions, seed)

    def generate(split: str) -> Iterator[tuple[str, dict]]:
        for case_id, image_path, label_path in cases:
            if assignment[case_id] != split:
                continue
            volume, tumour = load_case(image_path, label_path, channel)
            for z, image, mask, label in case_slices(
                    volume, tumour, image_size=image_size, min_tumour_pixels=min_tumour_pixels,
                    body_min_fraction=body_min_fraction):
                key = f"{case_id}_z{z:03d}"
                yield key, {"image": preprocess.to_unit_uint16(image)[..., None], "mask": mask,
                            "label": label, "id": key}

    return {split: generate(split) for split in preprocess.SPLITS}
