"""Data: synthetic lesion benchmarks, MSD/RSNA/folder loaders, augmentation, the trainers' batch sampler.

Arrays follow one convention: image float32 [N, H, W, 1] in [0, 1], label int32 [N]
(1 = pathological), mask bool [N, H, W], id str [N]. See docs/data.md.
"""

from advpath_jax.data.augment import AugmentConfig, augment, sample_params, warp
from advpath_jax.data.datasets import (
    DATA_DEFAULTS,
    DATASETS,
    ArraySource,
    ExampleSource,
    data_dir,
    default_data_config,
    get_source,
    is_prepared,
    iterate_examples,
    load_split,
    prepare,
    resolve_config,
    validate_arrays,
)
from advpath_jax.data.folder import load_folder, write_folder
from advpath_jax.data.synthetic import synth_brain, synth_chest

__all__ = [
    "AugmentConfig", "augment", "sample_params", "warp",
    "DATA_DEFAULTS", "DATASETS", "ArraySource", "ExampleSource", "data_dir", "default_data_config",
    "get_source", "is_prepared", "iterate_examples", "load_split", "prepare", "resolve_config",
    "validate_arrays", "load_folder", "write_folder", "synth_brain", "synth_chest",
]
