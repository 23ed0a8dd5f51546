"""The AOPC translator's inference: each image to the opposite of its predicted class.

The translator ``G(x, c)`` (:mod:`advpath_jax.models.translator`, trained by
:mod:`advpath_jax.training.translator`) maps an image to class ``c``. For AOPC every
image goes to ``1 − c`` with ``c = 1[f(x) >= 0.5]`` its predicted class
(:func:`translate_to_opposite`); :func:`flip_statistics` measures how often that changes
the prediction (the translator's quality figure, also its validation metric).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.tree_util import Partial

from advpath_jax.attribution.adapters import eval_split
from advpath_jax.attribution.core import as_partial
from advpath_jax.models.probability import predicted_class
from advpath_jax.models.translator import Translator
from advpath_jax.parallel import data_mesh, pad_batch, replicate
from advpath_jax.validation import check_images


@functools.lru_cache(maxsize=16)
def translate_program(graphdef: Any) -> Callable:
    """Jitted ``(state, f, x) -> (x', f(x), f(x'))`` translating each image to its opposite class.

    ``graphdef``: an eval-mode translator; ``f``: a ``Partial`` probability of class 1 ``[B]``.
    """
    @jax.jit
    def run(state, f, x):
        p = f(x)
        out = nnx.merge(graphdef, state)(x, 1 - predicted_class(p))
        return out, p, f(out)
    return run


def eval_translator_split(translator: Translator) -> tuple[Any, Any]:
    """``(graphdef, state)`` of an eval-mode copy of ``translator`` (type checked)."""
    if not isinstance(translator, Translator):
        raise ValueError(f"expected an advpath_jax.models.translator.Translator, got {type(translator).__name__}")
    return eval_split(translator)


def translate_to_opposite(translator: Translator, classifier_f: Callable, x) -> jax.Array:
    """Translate each image ``x [B,H,W,C]`` to the opposite of its predicted class.

    ``classifier_f``: ``[B,H,W,C] -> [B]`` probability of class 1 (e.g.
    ``advpath_jax.score_fn(model)``); predicted class ``c = 1[f(x) >= 0.5]``, target ``1 − c``.
    Returns ``x' [B,H,W,C]`` in [0, 1]. The translator is used in eval mode.
    """
    x = check_images(x, name="images")
    graphdef, state = eval_translator_split(translator)
    out, _, _ = translate_program(graphdef)(state, as_partial(classifier_f), x)
    return out


def flip_statistics(program: Callable, state: Any, f: Partial, images: np.ndarray,
                    batch_size: int) -> dict[str, float]:
    """Flip rate (overall and per predicted class) and mean |x' − x| over ``images [N,H,W,C]``.

    ``program``: :func:`translate_program` of the translator's graphdef, ``state`` its state.
    Keys: ``flip_rate``, ``flip_rate_pred0`` / ``flip_rate_pred1`` (NaN when no image has that
    class), ``n_pred0`` / ``n_pred1``, ``mean_abs_change``, ``n``.
    """
    flips, preds, change = [], [], []
    if len(images) == 0:
        raise ValueError("flip_statistics: no images")
    # Replicated over the data mesh, as the trainer holds the translator: the validation during
    # training and the test evaluation after it then run one compiled program, not two.
    state, f = replicate((state, as_partial(f)), data_mesh())
    for i in range(0, len(images), batch_size):
        chunk, k = pad_batch(np.asarray(images[i:i + batch_size]), batch_size)  # one shape; padding dropped
        x = jnp.asarray(chunk)
        out, p, p_out = program(state, f, x)
        pred = np.asarray(predicted_class(p))[:k]
        preds.append(pred)
        flips.append(np.asarray(predicted_class(p_out))[:k] != pred)
        change.append(np.asarray(jnp.mean(jnp.abs(out - x), axis=(1, 2, 3)))[:k])
    flips, preds, change = np.concatenate(flips), np.concatenate(preds), np.concatenate(change)
    stats = {"flip_rate": float(flips.mean()), "mean_abs_change": float(change.mean()), "n": int(len(flips))}
    for c in (0, 1):
        sel = preds == c
        stats[f"flip_rate_pred{c}"] = float(flips[sel].mean()) if sel.any() else float("nan")
        stats[f"n_pred{c}"] = int(sel.sum())
    return stats
