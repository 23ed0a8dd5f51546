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
    return jax.nn.sigmoid(logit) if output == "prob" else logit


@functools.lru_cache(maxsize=64)
def _score_program(graphdef: nnx.GraphDef, output: str) -> Callable:
    def score(state, x):
        return _to_output(nnx.merge(graphdef, state)(x), output)
    return score


@functools.lru_cache(maxsize=64)
def _features_program(graphdef: nnx.GraphDef) -> Callable:
    def features(state, x):
        return nnx.merge(graphdef, state).features(x)
    return features


@functools.lru_cache(maxsize=64)
def _head_program(graphdef: nnx.GraphDef, output: str) -> Callable:
    def head(state, a):
        return _to_output(nnx.merge(graphdef, state).head(a), output)
    return head


def score_fn(model: nnx.Module, output: str = "prob") -> Partial:
    """``f(x [B,H,W,C]) -> [B]``: sigmoid probability of class 1 (default) or the logit."""
    _check_output(output)
    graphdef, state = eval_split(model)
    return Partial(_score_program(graphdef, output), state)


def features_and_head(model: nnx.Module, output: str = "prob") -> tuple[Partial, Partial]:
    """``(features: x -> A [B,h,w,K], head: A -> [B])`` of a ResNet in eval mode."""
    _check_output(output)
    graphdef, state = eval_split(model)
    return (Partial(_features_program(graphdef), state),
            Partial(_head_program(graphdef, output), state))


@functools.lru_cache(maxsize=64)
def _jitted_features(graphdef: nnx.GraphDef):
    return jax.jit(_features_program(graphdef))


def resnet_gradcam(model: nnx.Module, x: jax.Array, output: str = "prob", **kwargs) -> jax.Array:
    """GradCAM of a ResNet (last stage) for images ``[B,H,W,C]`` -> ``[B,H,W]``."""
    from advpath_jax.attribution.methods import check_image_batch, gradcam

    check_image_batch(x, "x")
    features, head = features_and_head(model, output)
    feats = features(x)
    return gradcam(head, feats, x.shape[1:3], **kwargs)
