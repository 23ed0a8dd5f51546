"""TFDS builders of every data set, written as ``array_record`` and read with
``tfds.data_source`` (random access, no TensorFlow needed).

Each builder config is named after the options that change the content (image size,
seed, split sizes or fractions, generator knobs, the folder path), e.g.
``advpath_synth_brain/s64_3f9a0c12d4:1.0.0``, so a prepared copy is reused only for the
same options. Examples are stored in generation order (no shuffling at write time):

* ``image``: [S, S, 1], float32 for synthetic/folder sets; uint16 (value * 65535) for MSD
  and RSNA, which halves the disk footprint of the large real sets.
* ``mask``: [S, S] bool (zlib-compressed), ``label``: ClassLabel normal/pathological,
  ``id``: text.

The builders are not added to the global TFDS registry; construct them with
:func:`make_builder` (``advpath_jax.data.datasets`` does this from a data config).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import pathlib
import tempfile
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from advpath_jax.data import folder, msd, rsna, synthetic

VERSION = "1.0.0"
LABEL_NAMES = ("normal", "pathological")
# Our own per-split tqdm bar (TFDS's nested bars are switched off while it is on).
PROGRESS = {"enabled": False}


@dataclasses.dataclass(eq=False)
class AdvpathConfig(tfds.core.BuilderConfig):
    """A builder config: image size plus the content-defining options (sorted pairs)."""

    image_size: int = 64
    options: tuple = ()

    def option(self, key: str) -> Any:
        return dict(self.options)[key]


def config_name(image_size: int, options: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(options, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return f"s{int(image_size)}_{digest}"


class _AdvpathBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    VERSION = tfds.core.Version(VERSION)
    BUILDER_CONFIGS = [AdvpathConfig(name="default")]
    IMAGE_DTYPE: Any = np.float32
    DESCRIPTION = ""

    def _info(self) -> tfds.core.DatasetInfo:
        s = self.builder_config.image_size
        return tfds.core.DatasetInfo(
            builder=self,
            description=self.DESCRIPTION,
            disable_shuffling=True,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Tensor(shape=(s, s, 1), dtype=self.IMAGE_DTYPE),
                "mask": tfds.features.Tensor(shape=(s, s), dtype=np.bool_,
                                             encoding=tfds.features.Encoding.ZLIB),
                "label": tfds.features.ClassLabel(names=LABEL_NAMES),
                "id": tfds.features.Text(),
            }),
            supervised_keys=("image", "label"),
        )

    def _generate_examples(self, examples, split: str = "", total: int | None = None):
        if not PROGRESS["enabled"]:
            yield from examples
            return
        from tqdm.auto import tqdm

        desc = f"{self.name.removeprefix('advpath_')} {split}"
        yield from tqdm(examples, total=total, desc=desc, unit=" examples", leave=True)


class _SyntheticBuilder(_AdvpathBuilder):
    GENERATOR = ""

    def _split_generators(self, dl_manager):
        opts = dict(self.builder_config.options)
        return {split: self._generate_examples(self._split_iter(split), split, int(opts[f"num_{split}"]))
                for split in ("train", "val", "test")}

    def _split_iter(self, split: str):
        cfg = self.builder_config
        data = generate_synthetic_split(self.GENERATOR, cfg.image_size, dict(cfg.options), split)
        for i in range(len(data["label"])):
            ident = str(data["id"][i])
            yield ident, {"image": data["image"][i], "mask": data["mask"][i],
                          "label": int(data["label"][i]), "id": ident}


def generate_synthetic_split(generator: str, image_size: int, options: dict[str, Any], split: str
                             ) -> dict[str, np.ndarray]:
    """One split of a synthetic set from its options (the single place that maps the
    data config's knobs and split sizes onto the generator call)."""
    fn = synthetic.GENERATORS[generator]
    return fn(int(options[f"num_{split}"]), int(image_size), synthetic.split_seed(options["seed"], split),
              positive_fraction=options["positive_fraction"], lesion_contrast=options["lesion_contrast"],
              lesion_size=options["lesion_size"], noise=options["noise"], id_prefix=f"{generator}-{split}")


class SynthBrain(_SyntheticBuilder):
    """Synthetic brain-MR-like slices with tumour blobs (exact masks)."""

    name = "advpath_synth_brain"
    GENERATOR = "synth_brain"
    DESCRIPTION = "Synthetic axial brain slices with tumour blobs and exact masks."


class SynthChest(_SyntheticBuilder):
    """Synthetic chest-radiograph-like images with opacity boxes."""

    name = "advpath_synth_chest"
    GENERATOR = "synth_chest"
    DESCRIPTION = "Synthetic chest radiographs with lung opacities annotated as boxes."


class _ManualBuilder(_AdvpathBuilder):
    """Reads a user's local copy from ``manual_dir`` (passed through DownloadConfig)."""

    MANUAL_DOWNLOAD_INSTRUCTIONS = "See docs/data.md."
    IMAGE_DTYPE = np.uint16

    def _split_generators(self, dl_manager):
        per_split = self._examples(pathlib.Path(dl_manager.manual_dir))
        return {split: self._generate_examples(it, split) for split, it in per_split.items()}


class MsdBrain(_ManualBuilder):
    """MSD Task01_BrainTumour, T1gd axial slices (see ``advpath_jax.data.msd``)."""

    name = "advpath_msd_brain"
    DESCRIPTION = "MSD Task01_BrainTumour: T1gd axial slices, tumour masks, split by patient."
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Download Task01_BrainTumour.tar from the Medical Segmentation Decathlon, extract it and "
        "pass the folder holding imagesTr/ and labelsTr/ as manual_dir.")

    def _examples(self, manual_dir):
        cfg = self.builder_config
        return msd.split_examples(
            manual_dir, image_size=cfg.image_size, seed=cfg.option("seed"),
            split_fractions=cfg.option("split_fractions"), min_tumour_pixels=cfg.option("min_lesion_pixels"),
            body_min_fraction=cfg.option("body_min_fraction"))


class RsnaPneumonia(_ManualBuilder):
    """RSNA Pneumonia Detection (see ``advpath_jax.data.rsna``)."""

    name = "advpath_rsna_pneumonia"
    DESCRIPTION = "RSNA Pneumonia Detection: Normal vs Lung Opacity, box masks, split by patient."
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Download the RSNA Pneumonia Detection Challenge data and pass the folder holding "
        "stage_2_train_labels.csv, stage_2_detailed_class_info.csv and stage_2_train_images/ as manual_dir.")

    def _examples(self, manual_dir):
        cfg = self.builder_config
        return rsna.split_examples(manual_dir, image_size=cfg.image_size, seed=cfg.option("seed"),
                                   split_fractions=cfg.option("split_fractions"))


class FolderDataset(_AdvpathBuilder):
    """A plain folder (see ``advpath_jax.data.folder``); the folder path is a config option."""

    name = "advpath_folder"
    DESCRIPTION = "A user's folder of PNG/NPY images, optional masks and labels.csv."

    def _split_generators(self, dl_manager):
        cfg = self.builder_config
        per_split = folder.split_examples(cfg.option("path"), image_size=cfg.image_size,
                                          seed=cfg.option("seed"), split_fractions=cfg.option("split_fractions"))
        return {split: self._generate_examples(it, split) for split, it in per_split.items()}


BUILDERS: dict[str, type[_AdvpathBuilder]] = {
    "synthetic:synth_brain": SynthBrain,
    "synthetic:synth_chest": SynthChest,
    "msd": MsdBrain,
    "rsna": RsnaPneumonia,
    "folder": FolderDataset,
}


@contextlib.contextmanager
def _no_stray_tfds_temp_dirs():
    """Remove the empty ``<temp dir>/tmp*tfds`` directories made inside the block.

    TFDS's ``DatasetInfo.initialize_from_bucket`` makes one each time a builder whose info is not
    on disk yet is constructed (to copy metadata from GCS, of which these data sets have none)
    and never removes it; the builder's constructor is its only caller, so :func:`make_builder`
    is the one place to wrap. Only empty directories go (``rmdir``), so nothing written is lost.
    """
    root = pathlib.Path(tempfile.gettempdir())
    before = set(root.glob("tmp*tfds"))
    try:
        yield
    finally:
        for path in set(root.glob("tmp*tfds")) - before:
            with contextlib.suppress(OSError):
                path.rmdir()


def make_builder(kind: str, image_size: int, options: dict[str, Any], data_dir: str | pathlib.Path
                 ) -> _AdvpathBuilder:
    """A builder of ``kind`` (a key of BUILDERS) for one set of options."""
    cls = BUILDERS[kind]
    cfg = AdvpathConfig(name=config_name(image_size, options), image_size=int(image_size),
                        options=tuple(sorted(options.items())),
                        description=json.dumps(options, sort_keys=True, default=str))
    with _no_stray_tfds_temp_dirs():
        return cls(data_dir=str(data_dir), config=cfg, file_format="array_record")


def prepare(builder: _AdvpathBuilder, manual_dir: str | pathlib.Path | None = None,
            progress: bool = False) -> None:
    """Generate the array_record files unless this exact config is prepared already."""
    if builder.is_prepared():
        return
    download_config = tfds.download.DownloadConfig(manual_dir=str(manual_dir) if manual_dir else None)
    tfds_bars = tfds.core.utils.tqdm_utils._active  # noqa: SLF001  restore TFDS's own setting
    PROGRESS["enabled"] = progress
    tfds.disable_progress_bar()
    try:
        builder.download_and_prepare(download_config=download_config)
    finally:
        PROGRESS["enabled"] = False
        if tfds_bars:
            tfds.enable_progress_bar()


def data_source(builder: _AdvpathBuilder, split: str, data_dir: str | pathlib.Path):
    """``tfds.data_source`` of one split of a prepared builder (reads the files only)."""
    return tfds.data_source(f"{builder.name}/{builder.builder_config.name}:{VERSION}",
                            split=split, data_dir=str(data_dir))
