"""MGen maps: one forward pass of the trained mask generator (Dabkowski & Gal, 2017)."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from advpath_jax.explain.mpert import check_images
from advpath_jax.models.mgen import MGen


@jax.jit
def _masks(graphdef, state, scores, x):
    return nnx.merge(graphdef, state)(x, scores)


def mgen_maps(mgen_model: MGen, f: Callable, x) -> jax.Array:
    """Saliency masks ``[B, H, W]`` in [0, 1] (1 = salient) for images ``x [B, H, W, C]``.

    ``f`` is the classifier's ``[B, H, W, C] -> [B]`` probability of class 1, whose value
    is MGen's second input; the model is used in eval mode (the caller's copy is untouched).
    """
    x = check_images(x)
    if not isinstance(mgen_model, MGen):
        raise ValueError(f"mgen_maps expects an advpath_jax.models.mgen.MGen, got {type(mgen_model).__name__}")
    graphdef, state = nnx.split(mgen_model)
    model = nnx.merge(graphdef, state)
    model.eval()
    graphdef, state = nnx.split(model)
    scores = jnp.asarray(f(x), jnp.float32)
    if scores.shape != (x.shape[0],):
        raise ValueError(f"f must return one score per image, got shape {tuple(scores.shape)}")
    return _masks(graphdef, state, scores, x)
