"""What every trainer reads from a config: a split's data, its images and the augmentation.

* :func:`load_split_data`: ``{"image", "label", ...}`` of one split of ``config.data`` (never empty);
* :func:`load_split_images`: only its images ``[N, H, W, C]`` (float32);
* :func:`check_training_images`: image arrays handed to a trainer directly;
* :func:`augment_fn`: the random geometric augmentation of a model section (``<section>.augment``)
  with the ``data.aug_*`` ranges.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import numpy as np

from advpath_jax.data import AugmentConfig, augment, load_split
from advpath_jax.validation import check_host_images


def load_split_data(config: Any, split: str) -> dict[str, np.ndarray]:
    """One split of ``config.data`` (:func:`advpath_jax.data.load_split`); ``ValueError`` when it is empty."""
    data = load_split(config.data, split)
    if len(data["image"]) == 0:
        raise ValueError(f"split {split!r} of data set {config.data.name!r} is empty")
    return data


def load_split_images(config: Any, split: str) -> np.ndarray:
    """The images ``[N, H, W, C]`` (float32) of one split of ``config.data`` (never empty)."""
    return np.asarray(load_split_data(config, split)["image"], np.float32)


def check_training_images(images: Any, what: str) -> np.ndarray:
    """Float images ``[N, H, W, C]`` in [0, 1] as a host float32 array (``what`` names them in errors)."""
    return check_host_images(images, name=what)


def augment_fn(config: Any, section: str = "classifier", scale: float = 1.0
               ) -> Callable[[jax.Array, jax.Array], jax.Array] | None:
    """``(key, images) -> images`` from ``advpath_jax.data.augment`` with the ``data.aug_*`` ranges
    (rotation, zoom, translation multiplied by ``scale``), or None when ``<section>.augment`` is off."""
    if not bool(config[section].get("augment", True)):
        return None
    base = AugmentConfig.from_config(config.data)
    aug_config = AugmentConfig(flip=base.flip, rotation=base.rotation * scale, zoom=base.zoom * scale,
                               translation=base.translation * scale)
    return lambda key, x: augment(key, x, None, config=aug_config)
