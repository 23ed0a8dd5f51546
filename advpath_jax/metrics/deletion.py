"""The deletion check: does blurring a map's region change the predicted class?

``Φ(x, 1 − m) = x (1 − m) + blur(x) m`` with ``m`` the map (1 = deleted) and ``blur`` the
border-normalised Gaussian (:func:`advpath_jax.attribution.smoothing.normalized_blur`).
MPert chooses its λ's by the share of flipped images (:mod:`advpath_jax.explain.mpert`),
and it is MGen's quality figure (:mod:`advpath_jax.training.mgen`).
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.tree_util import Partial

from advpath_jax.attribution.core import as_partial
from advpath_jax.attribution.smoothing import normalized_blur
from advpath_jax.models.probability import predicted_class, stable_sigmoid
from advpath_jax.validation import check_images, check_maps


@functools.partial(jax.jit, static_argnames=("blur_sigma",))
def _deletion_flips(logit_fn: Partial, x: jax.Array, maps: jax.Array, blur_sigma: float) -> jax.Array:
    keep = 1.0 - maps[..., None]
    deleted = x * keep + normalized_blur(x, blur_sigma) * (1.0 - keep)
    before = predicted_class(stable_sigmoid(logit_fn(x)))
    return predicted_class(stable_sigmoid(logit_fn(deleted))) != before


def deletion_flips(logit_fn: Callable, x, maps, blur_sigma: float) -> np.ndarray:
    """``[B]`` bool: does blurring the map's region (``Φ(x, 1 − map)``) change the predicted class?

    ``logit_fn``: the classifier's logit ``[B, H, W, C] -> [B]``; ``x [B, H, W, C]`` images in
    [0, 1]; ``maps [B, H, W]`` in [0, 1] (1 = deleted); ``blur_sigma`` the blur's σ in pixels.
    """
    x = check_images(x, name="images")
    maps = check_maps(maps, name="maps", shape=x.shape[:3]).astype(jnp.float32)
    return np.asarray(_deletion_flips(as_partial(logit_fn), x, maps, float(blur_sigma)))
