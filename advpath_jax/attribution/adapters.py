"""Adapters from Flax NNX models to the pure score functions the engine takes.

The returned functions are :class:`jax.tree_util.Partial` objects: the model's parameters
are leaves (traced by ``jax.jit``, never baked in as constants) and the function is
cached per (architecture, output) so repeated calls reuse the compiled program.
The model is copied into eval mode (BatchNorm running statistics, no dropout); the
caller's model is left as it was.
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
from flax import nnx
from jax.tree_util import Partial

from advpath_jax.attribution.methods import gradcam
from advpath_jax.models.probability import predicted_class, signed_class, stable_sigmoid
from advpath_jax.models.resnet import stage_hw
from advpath_jax.validation import check_images

OUTPUTS = ("prob", "logit")


def eval_split(model: nnx.Module) -> tuple[nnx.GraphDef, nnx.State]:
    """``(graphdef, state)`` of an eval-mode copy of ``model``."""
    graphdef, state = nnx.split(model)
    copy = nnx.merge(graphdef, state)
    copy.eval()
    return nnx.split(copy)


def _check_output(output: str) -> None:
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")


def _to_output(logit: jax.Array, output: str) -> jax.Array:
    return stable_sigmoid(logit) if output == "prob" else logit


@functools.lru_cache(maxsize=64)
def _score_program(graphdef: nnx.GraphDef, output: str) -> Callable:
    def score(state, x):
        return _to_output(nnx.merge(graphdef, state)(x), output)
    return jax.jit(score)  # one compiled program where it is called outside a jit (not op by op)


@functools.lru_cache(maxsize=64)
def _features_program(graphdef: nnx.GraphDef, stage: int | None = None) -> Callable:
    def features(state, x):
        return nnx.merge(graphdef, state).features(x, stage)
    return jax.jit(features)


@functools.lru_cache(maxsize=64)
def _head_program(graphdef: nnx.GraphDef, output: str, stage: int | None = None) -> Callable:
    def head(state, a):
        return _to_output(nnx.merge(graphdef, state).head(a, stage), output)
    return jax.jit(head)


def score_fn(model: nnx.Module, output: str = "prob") -> Partial:
    """``f(x [B,H,W,C]) -> [B]``: sigmoid probability of class 1 (default) or the logit.

    The probability is :func:`advpath_jax.models.probability.stable_sigmoid` of the logit:
    the values of ``jax.nn.sigmoid``, a gradient that does not underflow for confident images.
    """
    _check_output(output)
    graphdef, state = eval_split(model)
    return Partial(_score_program(graphdef, output), state)


def features_and_head(model: nnx.Module, output: str = "prob",
                      stage: int | None = None) -> tuple[Partial, Partial]:
    """``(features: x -> A [B,h,w,K], head: A -> [B])`` of a ResNet in eval mode, split after
    ``stage`` (1-4; None: the last stage)."""
    _check_output(output)
    graphdef, state = eval_split(model)
    return (Partial(_features_program(graphdef, stage), state),
            Partial(_head_program(graphdef, output, stage), state))


#: GradCAM's default: the deepest stage whose feature map is at least this many pixels a side
#: (the paper's 7×7 last stage at 224 px; at 64 px stage 2, 8×8).
GRADCAM_MIN_SIDE = 7


def default_gradcam_stage(image_hw: tuple[int, int], min_side: int = GRADCAM_MIN_SIDE) -> int:
    """The deepest ResNet stage (1-4) whose map is at least ``min_side`` a side (stage 1 if none)."""
    sizes = stage_hw(image_hw)
    fitting = [k for k, hw in enumerate(sizes, start=1) if min(hw) >= min_side]
    return max(fitting) if fitting else 1


def resnet_gradcam(model: nnx.Module, x: jax.Array, stage: int | None = None, **kwargs) -> jax.Array:
    """GradCAM of a ResNet for images ``[B,H,W,C]`` -> ``[B,H,W]``.

    The map is taken at the feature map after ``stage`` (default
    :func:`default_gradcam_stage`) for the predicted class's pre-sigmoid score
    ``(2c − 1)·z`` (Selvaraju et al. use the class score before the softmax), with
    ``c = 1[σ(z) >= 0.5]`` from :func:`advpath_jax.models.probability.predicted_class`.
    """
    check_images(x, name="x", value_range=None)
    stage = default_gradcam_stage(x.shape[1:3]) if stage is None else stage
    features, head = features_and_head(model, "logit", stage)
    feats = features(x)
    sign = signed_class(predicted_class(stable_sigmoid(head(feats))))
    return gradcam(head, feats, x.shape[1:3], class_sign=sign, **kwargs)
