"""MGen's inference: one forward pass of the trained mask generator (Dabkowski & Gal, 2017).

The masks are the ``MGen`` explainer's maps (:mod:`advpath_jax.explain.registry`) and MGen's
quality figure (:mod:`advpath_jax.training.mgen`). The model is trained by
:mod:`advpath_jax.training.mgen` and loaded by :func:`advpath_jax.store.models.load_mgen`.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from advpath_jax.models.mgen import MGen
from advpath_jax.validation import check_images


@jax.jit
def _masks(graphdef, state, scores, x):
    return nnx.merge(graphdef, state)(x, scores)


def mgen_maps(mgen_model: MGen, f: Callable, x) -> jax.Array:
    """Saliency masks ``[B, H, W]`` in [0, 1] (1 = salient) for images ``x [B, H, W, C]``.

    ``f`` is the classifier's ``[B, H, W, C] -> [B]`` probability of class 1, whose value
    is MGen's second input; the model is used in eval mode (the caller's copy is untouched).
    """
    x = check_images(x, name="images")
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
