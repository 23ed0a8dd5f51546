"""The data-set registry and the two ways to read a split.

* :func:`load_split` - a whole split in memory as numpy arrays (``image`` float32
  [N, H, W, 1] in [0, 1], ``label`` int32 [N], ``mask`` bool [N, H, W], ``id`` str [N]).
  Meant for sets that fit in memory (the synthetic defaults: 2000 images of 64x64 take
  about 40 MB with their masks). Synthetic splits are read from a prepared TFDS copy when one exists for the
  same options, otherwise generated directly (same arrays, a few seconds).
* :func:`get_source` - random access to a prepared TFDS ``array_record`` copy
  (``len(src)``, ``src[i]`` -> example dict, ``src.read_batch(indices)``): for the big
  real sets (MSD at 224 px is ~6 GB on disk). The copy is prepared on first use.

Data sets (``data_config.name``): ``synth_brain``, ``synth_chest``, ``msd_brain``,
``rsna_pneumonia`` and ``folder:PATH``. A data config is an ml_collections ConfigDict
(``c.data`` of a config file), a dict, or just the name; missing fields take the values
of :func:`default_data_config`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import pathlib
from typing import Any, Iterator, Mapping, Sequence

import ml_collections
import numpy as np

from advpath_jax.data import folder, msd, preprocess, rsna, synthetic
from advpath_jax.validation import check_values

DEFAULT_DATA_DIR = "~/.cache/advpath_jax/data"

# Fields of ``c.data``; None means "the data set's own default" (see DATASETS).
DATA_DEFAULTS: dict[str, Any] = {
    "name": "synth_brain",
    "image_size": 64,
    "seed": 0,
    "num_train": 2000,
    "num_val": 300,
    "num_test": 300,
    "positive_fraction": None,
    "lesion_contrast": None,
    "lesion_size": None,
    "noise": None,
    "data_dir": None,
    "manual_dir": None,
    "split_fractions": None,
    "min_lesion_pixels": 10,
    "body_min_fraction": 0.01,
    "aug_flip": True,
    "aug_rotation": 10.0,
    "aug_zoom": 0.1,
    "aug_translation": 0.1,
}


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    name: str
    kind: str  # synthetic | msd | rsna | folder
    description: str
    defaults: Mapping[str, Any]


DATASETS: dict[str, DatasetSpec] = {
    "synth_brain": DatasetSpec("synth_brain", "synthetic",
                               "synthetic brain-MR-like slices with tumour blobs (exact masks)",
                               dict(synthetic.BRAIN_DEFAULTS)),
    "synth_chest": DatasetSpec("synth_chest", "synthetic",
                               "synthetic chest radiographs with opacities annotated as boxes",
                               dict(synthetic.CHEST_DEFAULTS)),
    "msd_brain": DatasetSpec("msd_brain", "msd",
                             "MSD Task01_BrainTumour T1gd slices (local copy in manual_dir)",
                             {"split_fractions": msd.DEFAULT_SPLIT_FRACTIONS}),
    "rsna_pneumonia": DatasetSpec("rsna_pneumonia", "rsna",
                                  "RSNA pneumonia DICOMs with opacity boxes (local copy in manual_dir)",
                                  {"split_fractions": rsna.DEFAULT_SPLIT_FRACTIONS}),
    "folder": DatasetSpec("folder", "folder", "a plain folder: images/, optional masks/, labels.csv "
                          "(name it folder:PATH)", {"split_fractions": folder.DEFAULT_SPLIT_FRACTIONS}),
}


# ------------------------------------------------------------------------ configuration
def resolve_name(name: str) -> tuple[DatasetSpec, pathlib.Path | None]:
    """(spec, folder path or None) of a data-set name such as 'synth_brain' or 'folder:/data/x'."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"data set name must be a non-empty string, got {name!r}")
    if name.startswith("folder:"):
        path = name[len("folder:"):]
        if not path:
            raise ValueError("folder data sets are named folder:PATH")
        return DATASETS["folder"], pathlib.Path(path).expanduser().resolve()
    if name not in DATASETS or name == "folder":
        choices = ", ".join([n for n in DATASETS if n != "folder"] + ["folder:PATH"])
        raise ValueError(f"unknown data set {name!r}; choose from {choices}")
    return DATASETS[name], None


def default_data_config(name: str = "synth_brain", **overrides: Any) -> ml_collections.ConfigDict:
    """A complete ``c.data`` for one data set, with its own defaults filled in."""
    spec, _ = resolve_name(name)
    values = dict(DATA_DEFAULTS, name=name)
    values.update(spec.defaults)
    unknown = set(overrides) - set(values)
    if unknown:
        raise ValueError(f"unknown data config field(s) {sorted(unknown)}; known: {sorted(values)}")
    values.update(overrides)
    return ml_collections.ConfigDict(values)


def resolve_config(data_config: Any) -> dict[str, Any]:
    """A plain dict of every field: the given ones, then the set's defaults, then globals."""
    if isinstance(data_config, str):
        given = {"name": data_config}
    elif isinstance(data_config, ml_collections.ConfigDict):
        given = data_config.to_dict()
    elif isinstance(data_config, Mapping):
        given = dict(data_config)
    else:
        raise ValueError(f"data config must be a ConfigDict, a dict or a name, got {type(data_config).__name__}")
    spec, _ = resolve_name(given.get("name", DATA_DEFAULTS["name"]))
    values = dict(DATA_DEFAULTS)
    values.update(spec.defaults)
    values.update({k: v for k, v in given.items() if v is not None})
    if int(values["image_size"]) != values["image_size"] or not 16 <= values["image_size"] <= 1024:
        raise ValueError(f"data.image_size must be an integer in [16, 1024], got {values['image_size']!r}")
    if values["split_fractions"] is not None:
        values["split_fractions"] = tuple(float(f) for f in values["split_fractions"])
    return values


def data_dir(data_config: Any) -> pathlib.Path:
    """Where prepared copies live: data.data_dir, else $ADVPATH_DATA_DIR, else ~/.cache/advpath_jax/data."""
    cfg = resolve_config(data_config)
    root = cfg["data_dir"] or os.environ.get("ADVPATH_DATA_DIR") or DEFAULT_DATA_DIR
    return pathlib.Path(root).expanduser()


def _folder_fingerprint(path: pathlib.Path) -> str:
    """Hash of labels.csv and of the names, sizes and times of the image/mask files."""
    if not (path / "labels.csv").exists():
        raise FileNotFoundError(f"folder data set has no labels.csv: {path / 'labels.csv'}")
    h = hashlib.sha256((path / "labels.csv").read_bytes())
    for sub in ("images", "masks"):
        if (path / sub).is_dir():
            with os.scandir(path / sub) as it:
                for entry in sorted(it, key=lambda e: e.name):
                    st = entry.stat()
                    h.update(f"{sub}/{entry.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()[:16]


def content_options(data_config: Any) -> tuple[str, int, dict[str, Any]]:
    """(builder kind, image size, the options that define the prepared content)."""
    cfg = resolve_config(data_config)
    spec, path = resolve_name(cfg["name"])
    if spec.kind == "synthetic":
        opts = {k: cfg[k] for k in ("seed", "num_train", "num_val", "num_test", "positive_fraction",
                                    "lesion_contrast", "lesion_size", "noise")}
        opts = {k: (int(v) if k in ("seed", "num_train", "num_val", "num_test") else float(v))
                for k, v in opts.items()}
        opts["generator_version"] = synthetic.GENERATOR_VERSION
        return f"synthetic:{spec.name}", cfg["image_size"], opts
    opts = {"seed": int(cfg["seed"]), "split_fractions": cfg["split_fractions"]}
    if spec.kind == "msd":
        opts.update(min_lesion_pixels=int(cfg["min_lesion_pixels"]),
                    body_min_fraction=float(cfg["body_min_fraction"]))
    if spec.kind == "folder":
        opts.update(path=str(path), fingerprint=_folder_fingerprint(path))
    return spec.kind, cfg["image_size"], opts


@contextlib.contextmanager
def _quiet_absl():
    """Hide TFDS's 'Using custom data configuration' notices (absl WARNING)."""
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _builder(data_config: Any):
    from advpath_jax.data import tfds_builders  # tensorflow_datasets: loaded only to prepare or read

    kind, size, opts = content_options(data_config)
    with _quiet_absl():
        return tfds_builders.make_builder(kind, size, opts, data_dir(data_config))


# ------------------------------------------------------------------------------ sources
def _check_split(split: str) -> None:
    if split not in preprocess.SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {preprocess.SPLITS}")


def validate_arrays(data: Mapping[str, Any], where: str = "data") -> dict[str, np.ndarray]:
    """Check the array convention; returns the arrays as numpy (ValueError otherwise)."""
    missing = [k for k in ("image", "label", "mask") if k not in data]
    if missing:
        raise ValueError(f"{where} lacks key(s) {missing}")
    image, label, mask = (np.asarray(data[k]) for k in ("image", "label", "mask"))
    if image.ndim != 4 or image.shape[-1] != 1 or image.dtype != np.float32:
        raise ValueError(f"{where}: image must be float32 [N, H, W, 1], got {image.dtype} {image.shape}")
    n, h, w = image.shape[:3]
    if label.shape != (n,) or not np.issubdtype(label.dtype, np.integer):
        raise ValueError(f"{where}: label must be int [N={n}], got {label.dtype} {label.shape}")
    if mask.shape != (n, h, w) or mask.dtype != bool:
        raise ValueError(f"{where}: mask must be bool [N, H, W] = {(n, h, w)}, got {mask.dtype} {mask.shape}")
    check_values(image, name=f"{where}: image")
    if n and not np.isin(label, (0, 1)).all():
        raise ValueError(f"{where}: labels must be 0 or 1")
    ids = np.asarray(data["id"]) if "id" in data else np.array([f"{i:06d}" for i in range(n)])
    if ids.shape != (n,):
        raise ValueError(f"{where}: id must have shape [N={n}], got {ids.shape}")
    return {"image": image, "label": label.astype(np.int32), "mask": mask, "id": ids.astype(str)}


class ArraySource:
    """Random access over in-memory arrays (the dict returned by :func:`load_split`)."""

    def __init__(self, data: Mapping[str, Any]):
        self.arrays = validate_arrays(data)

    def __len__(self) -> int:
        return len(self.arrays["label"])

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {k: v[index] for k, v in self.arrays.items()}

    def read_batch(self, indices: Sequence[int]) -> dict[str, np.ndarray]:
        idx = np.asarray(indices, np.int64)
        return {k: v[idx] for k, v in self.arrays.items()}


class ExampleSource:
    """Random access to one split of a prepared TFDS copy (a ``tfds.data_source``).

    ``src[i]`` -> {"image": float32 [S,S,1] in [0,1], "label": int32, "mask": bool [S,S], "id": str};
    ``src.read_batch(indices)`` -> the same keys stacked along a leading axis.
    """

    def __init__(self, source: Any, description: str = ""):
        self.source = source
        self.description = description

    def __len__(self) -> int:
        return len(self.source)

    def __repr__(self) -> str:
        return f"ExampleSource({self.description}, {len(self)} examples)"

    @staticmethod
    def _decode(ex: Mapping[str, Any]) -> dict[str, Any]:
        image = np.asarray(ex["image"])
        image = image.astype(np.float32) / 65535.0 if image.dtype == np.uint16 else image.astype(np.float32)
        ident = ex["id"]
        return {"image": image, "label": np.int32(ex["label"]), "mask": np.asarray(ex["mask"], bool),
                "id": ident.decode() if isinstance(ident, bytes) else str(ident)}

    def __getitem__(self, index: int) -> dict[str, Any]:
        n = len(self)
        if not -n <= int(index) < n:
            raise IndexError(f"index {index} out of range for {n} examples")
        return self._decode(self.source[int(index) % n])

    def read_batch(self, indices: Sequence[int]) -> dict[str, np.ndarray]:
        idx = [int(i) for i in indices]
        raw = self.source.__getitems__(idx) if hasattr(self.source, "__getitems__") else [self.source[i] for i in idx]
        examples = [self._decode(ex) for ex in raw]
        if not examples:
            raise ValueError("read_batch needs at least one index")
        return {
            "image": np.stack([e["image"] for e in examples]),
            "label": np.array([e["label"] for e in examples], np.int32),
            "mask": np.stack([e["mask"] for e in examples]),
            "id": np.array([e["id"] for e in examples], dtype=str),
        }


# ----------------------------------------------------------------------------- public API
def prepare(data_config: Any, *, progress: bool = False) -> pathlib.Path:
    """Write the TFDS array_record copy of every split (no-op when present). -> its folder.

    ``progress`` shows a tqdm bar per split.
    """
    cfg = resolve_config(data_config)
    spec, _ = resolve_name(cfg["name"])
    builder = _builder(cfg)
    manual_dir = None
    if spec.kind == "msd":
        manual_dir = msd.find_task_dir(cfg["manual_dir"])
    elif spec.kind == "rsna":
        manual_dir = pathlib.Path(cfg["manual_dir"]).expanduser() if cfg["manual_dir"] else None
        rsna.find_files(manual_dir)  # fail early, naming what is missing
    from advpath_jax.data import tfds_builders  # tensorflow_datasets: loaded only to prepare or read

    target = pathlib.Path(str(builder.data_path))
    downloads = data_dir(cfg) / "downloads"  # TFDS's scratch folder in the data dir
    created = [p for p in (_first_missing_folder(data_dir(cfg), target), downloads)
               if p is not None and not p.exists()]
    try:
        with _quiet_absl():
            tfds_builders.prepare(builder, manual_dir, progress=progress)
    except BaseException:
        _remove_created(created)
        raise
    return target


def _first_missing_folder(root: pathlib.Path, target: pathlib.Path) -> pathlib.Path | None:
    """The outermost folder on the way from ``root`` (included) to ``target`` that does not
    exist yet: what a failed preparation must remove to leave the data dir as it was."""
    root, target = root.resolve(), target.resolve()
    chain = [target, *target.parents]
    if root not in chain:
        return None if target.exists() else target
    for folder_ in reversed(chain[: chain.index(root) + 1]):
        if not folder_.exists():
            return folder_
    return None


def _remove_created(created: Sequence[pathlib.Path]) -> None:
    """After a failed preparation: remove the folders it created (see
    :func:`_first_missing_folder`), so the data dir is left as it was."""
    import shutil

    for path in created:
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)


def is_prepared(data_config: Any) -> bool:
    """Whether a TFDS copy with exactly these content options exists under the data dir."""
    builder = _builder(data_config)
    with _quiet_absl():
        return bool(builder.is_prepared())


def get_source(data_config: Any, split: str, *, progress: bool = False) -> ExampleSource:
    """Random access to one split (prepares the TFDS copy on first use)."""
    _check_split(split)
    cfg = resolve_config(data_config)
    prepare(cfg, progress=progress)
    from advpath_jax.data import tfds_builders  # tensorflow_datasets: loaded only to prepare or read

    builder = _builder(cfg)
    with _quiet_absl():
        src = tfds_builders.data_source(builder, split, data_dir(cfg))
    return ExampleSource(src, f"{cfg['name']}/{split} at {builder.data_path}")


def load_split(data_config: Any, split: str) -> dict[str, np.ndarray]:
    """One split in memory: image float32 [N,H,W,1] in [0,1], label int32 [N], mask bool
    [N,H,W], id str [N]. Deterministic for a given config."""
    _check_split(split)
    cfg = resolve_config(data_config)
    spec, _ = resolve_name(cfg["name"])
    if spec.kind == "synthetic" and not is_prepared(cfg):
        from advpath_jax.data import tfds_builders  # tensorflow_datasets: loaded only to prepare or read

        _, size, opts = content_options(cfg)
        return tfds_builders.generate_synthetic_split(spec.name, size, opts, split)
    source = get_source(cfg, split)
    if len(source) == 0:
        size = cfg["image_size"]
        return {"image": np.zeros((0, size, size, 1), np.float32), "label": np.zeros(0, np.int32),
                "mask": np.zeros((0, size, size), bool), "id": np.zeros(0, str)}
    return source.read_batch(range(len(source)))


def iterate_examples(data_config: Any, split: str) -> Iterator[dict[str, Any]]:
    """Examples of one split one by one (no whole-split memory)."""
    source = get_source(data_config, split)
    for i in range(len(source)):
        yield source[i]
