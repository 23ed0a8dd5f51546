"""Plain data shared by the configs of this folder (imports only the standard library and ml_collections).

A config file here imports ``ml_collections`` and this module, nothing else: reading a
config never loads JAX or the package. The package checks what it reads and keeps its own
defaults for missing fields (``advpath_jax.generators.spec.DEFAULT_WEIGHTS``,
``advpath_jax.pipeline.eval_config.EVAL_DEFAULTS``); ``tests/test_configs.py`` checks that the
values written here equal those defaults.

* :data:`CYCE_WEIGHTS`, :data:`SYCE_WEIGHTS`, :data:`SAGEN_WEIGHTS`: the authors' loss weights.
* :func:`eval_section`: the ``c.eval`` section (Table 1, AOPC and relevance settings).
* :func:`derive`: another config of this folder, to derive from.
* :func:`paper_size`: a CPU-sized config at the paper's size (224 px, ResNet-50, full epochs).
"""

from __future__ import annotations

import importlib.util
import pathlib

import ml_collections

HERE = pathlib.Path(__file__).resolve().parent

# --- loss weights: the authors' code (docs/training.md) ---
CYCE_WEIGHTS = {"adv": 0.2, "gan": 0.25, "rec": 10.0, "cls": 0.005}
SYCE_WEIGHTS = {"adv": 0.2, "gan": 0.25, "rec_self": 10.0, "cls_self": 0.01, "rec": 2.0, "cls": 0.005}
SAGEN_WEIGHTS = {"cls": 0.005, "adv": 0.2, "rec_s": 10.0, "rec_a": 10.0}  # inferred: the CyCE-like weights

# --- evaluation (advpath_jax.metrics / pipeline), sized for the 2-core CPU default ---
EVAL = {
    "methods": None,         # None: every method of Table 1, the manifold-path variants and Random; or a tuple
    "percentiles": (98, 99),  # Table 1 thresholds (paper: brain 98/99, pneumonia 90/95/98)
    "ties": "percentile",    # "percentile": B = pixels >= np.percentile(map, p), ties kept (the authors' code);
                             # "index": exactly the top ceil(N (100 - p) / 100) pixels
    "steps": 50,             # M, path points (paper: 50)
    "rule": "midpoint",      # quadrature rule (paper: midpoint, eq. 6)
    "chunk_size": None,      # path points per vmap chunk (None: automatic)
    "smoothing": None,       # (size, sigma) of E_FI,ksigma^v2; None: 28 px, sigma 2 at 224 px, scaled
    "gradcam_stage": None,   # ResNet stage (1-4) of GradCAM's map; None: the deepest at least 7x7
    "shard_size": 100,       # images per attribution shard on disk
    "attribute_images": "scored",  # maps of the images the metrics read (positives, subset); "all": every test image
    "subset_size": 100,      # balanced subset (by predicted class) for AOPC and R (paper: 1000)
    "aopc_steps": 50,        # L, regions replaced in the AOPC curve (paper's Figure 2: about 100)
    "patch_size": None,      # AOPC region side, a divisor of the image side; None: nearest to 9 px at 224, scaled
    "relevance_group": None,  # pixels replaced per step of the deletion / preservation curves (None: W)
    "relevance_steps": 16,   # intervals of those curves (must divide the groups); None: every group
    "random_repeats": 2,     # random orderings averaged for the AOPC reference
    "metric_chunk": 32,      # images per chunk in the metric programs
    "figure_examples": 4,    # positives shown in Figure 1
    "bootstrap_resamples": 2000,  # resamples of the paired bootstrap of the findings
    "explorer": True,        # write the browser explorer (WORKDIR/explorer/index.html, docs/explorer.md)
}

# --- the paper's size (docs/training.md: ResNet-50, 224 px, Adam 1e-4; the authors' generator code) ---
PAPER_SIZE = {
    "data": {"image_size": 224},
    "classifier": {"depth": 50, "width": 1.0, "epochs": 30, "batch_size": 64, "lr": 1e-4,
                   "lr_schedule": "plateau"},
    "generators": {"unet_base_channels": 32, "unet_depth": 4, "dropout": 0.2, "residual": False,
                   "sagen_class_input": False, "d_base_channels": 32, "d_layers": 5, "epochs": 40,
                   "batch_size": 16, "lr": 1e-4, "lr_schedule": "plateau",  # x0.3, patience 4, floor 1e-5
                   "augment": True, "eval_batch_size": 128, "sagen_weights": SAGEN_WEIGHTS,
                   "cyce_weights": CYCE_WEIGHTS, "syce_weights": SYCE_WEIGHTS,  # the paper's, whatever the base
                   "update_scheme": "authors",  # the authors' code: one generator update per half
                   "val_criterion": "own_loss"},  # the authors': the method's own total generator loss
    "mgen": {"base_channels": 32, "depth": 4, "epochs": 20, "lr": 1e-4, "steps_per_epoch": None},
    "translator": {"base_channels": 32, "depth": 4, "critic_channels": 32, "critic_layers": 5, "epochs": 40,
                   "lr": 1e-4, "steps_per_epoch": None},
    "eval": {"subset_size": 1000, "aopc_steps": 100, "shard_size": 256, "relevance_steps": 56,
             "random_repeats": 5, "figure_examples": 6},
}
# Fields the paper-size configs leave out (the package's defaults apply): the synthetic generator's
# settings, and fields they have never had (adding them would change the settings fingerprint of
# existing paper-size runs, and so retrain them).
PAPER_OMITS = {
    "data": ("seed", "num_train", "num_val", "num_test", "positive_fraction", "lesion_contrast", "lesion_size",
             "noise", "data_dir", "split_fractions", "min_lesion_pixels", "body_min_fraction", "aug_flip",
             "aug_rotation", "aug_zoom", "aug_translation"),
    "classifier": ("monitor", "early_stop_patience"),  # the paper's fixed epoch count, no early stopping
    "generators": ("steps_per_epoch", "lr_patience", "cyce_epochs", "syce_epochs", "sagen_epochs"),  # every kind: epochs
}


def eval_section(**overrides) -> ml_collections.ConfigDict:
    """The ``c.eval`` section: :data:`EVAL` with ``overrides`` (unknown names are an error)."""
    unknown = sorted(set(overrides) - set(EVAL))
    if unknown:
        raise ValueError(f"unknown eval setting(s) {unknown}; known: {sorted(EVAL)}")
    return ml_collections.ConfigDict({**EVAL, **overrides})


def derive(name: str) -> ml_collections.ConfigDict:
    """``get_config()`` of the config ``name`` of this folder (e.g. ``"synth_brain"``), to change."""
    path = HERE / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"advpath_config_base_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def _replace(section: ml_collections.ConfigDict, key: str, value) -> None:
    """``section[key] = value``, also where the type changes (e.g. a tuple of kinds -> ``False``)."""
    try:
        section[key] = value
    except TypeError:
        del section[key]
        section[key] = value


def paper_size(c: ml_collections.ConfigDict, *, name: str, data_name: str) -> ml_collections.ConfigDict:
    """``c`` (a CPU-sized config) at the paper's size: :data:`PAPER_SIZE` set, :data:`PAPER_OMITS`
    removed, the data read from ``data.manual_dir`` (a local copy of ``data_name``). In place."""
    c.name = name
    c.data.name = data_name
    for section, fields in PAPER_SIZE.items():
        for key, value in fields.items():
            _replace(c[section], key, ml_collections.ConfigDict(value) if isinstance(value, dict) else value)
    for section, fields in PAPER_OMITS.items():
        for key in fields:
            del c[section][key]
    c.data.manual_dir = ml_collections.config_dict.placeholder(str)
    return c
