"""Generator inference: one jitted forward program per kind gives ``(x_s, x_a, c)``.

For images ``x [B, H, W, 1]`` in [0, 1] the predicted class is ``c = 1[f(x) >= 0.5]``
(:func:`advpath_jax.models.probability.predicted_class`, never the label) and

* CyCE: ``x_a = G_c(x)``, start point ``x_s = x`` (two U-Net passes: G0 and G1 on the batch);
* SyCE: ``x_a = G_c(x)``, ``x_s = G_c(x_a)``, the stable image (four passes);
* SAGen: both heads ``(x_s, x_a)`` of its one U-Net (one pass; with two input channels it
  gets ``[x, c]``).

:func:`generator_outputs` returns ``(x_s, x_a, c)``; :func:`generator_pair` and
``cyce_pair`` / ``syce_pair`` / ``sagen_pair`` the pair ``(x_s, x_a)``. The explainers
(:mod:`advpath_jax.explain.registry`) and the pipeline use these; the trained modules come
from :func:`advpath_jax.store.models.load_generators`.

:func:`class_quality_program` is the per-image evaluation program of the generators'
training and evaluation (:mod:`advpath_jax.training.generators`): the classifier's
probabilities of x_a, x_s and the cycle reconstruction, and the per-image changes.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import nnx

from advpath_jax.generators.spec import check_kind
from advpath_jax.models.probability import predicted_class, stable_sigmoid
from advpath_jax.validation import check_images


def sagen_heads(G: nnx.Module, x: jax.Array, c: jax.Array) -> tuple[jax.Array, jax.Array]:
    """SAGen's ``(x_s, x_a)`` for images ``x`` ``[B, H, W, 1]`` of predicted classes ``c`` ``[B]``;
    a U-Net with two input channels gets ``[x, c]`` (c as a constant image)."""
    if G.spec.in_channels == 2:
        c_map = jnp.broadcast_to(jnp.asarray(c, x.dtype)[:, None, None, None], x.shape)
        return G(jnp.concatenate([x, c_map], axis=-1))
    return G(x)


def _by_class(c: jax.Array, for0: jax.Array, for1: jax.Array) -> jax.Array:
    """Per image: ``for1`` where ``c == 1``, else ``for0`` (``[B, H, W, C]``)."""
    return jnp.where((c == 1)[:, None, None, None], for1, for0)


def forward(kind: str, generators: dict[str, nnx.Module], f: Callable[[jax.Array], jax.Array],
            x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(x_s, x_a, c)`` of ``kind`` (traceable): ``f`` is the classifier's logit ``[B,H,W,1] -> [B]``."""
    c = predicted_class(stable_sigmoid(f(x)))
    if kind == "sagen":
        x_s, x_a = sagen_heads(generators["G"], x, c)
        return x_s, x_a, c
    G0, G1 = generators["G0"], generators["G1"]
    x_a = _by_class(c, G0(x), G1(x))
    x_s = _by_class(c, G0(x_a), G1(x_a)) if kind == "syce" else x
    return x_s, x_a, c


def _merge_eval(graphdef: Any, state: Any) -> nnx.Module:
    module = nnx.merge(graphdef, state, copy=True)
    module.eval()
    return module


@functools.lru_cache(maxsize=16)
def _forward_program(kind: str, gen_graphdefs: tuple[tuple[str, Any], ...], f_graphdef: Any) -> Callable:
    """Jitted ``(gen_states, f_state, x) -> (x_s, x_a, c)`` for one kind and architecture (cached)."""

    @jax.jit
    def run(gen_states, f_state, x):
        gens = {name: _merge_eval(gd, gen_states[name]) for name, gd in gen_graphdefs}
        return forward(kind, gens, _merge_eval(f_graphdef, f_state), x)
    return run


def generator_outputs(kind: str, generators: dict[str, nnx.Module], classifier: nnx.Module, x: Any
                      ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(x_s, x_a, c)``: start point and adversary ``[B, H, W, 1]`` and predicted class ``[B]``
    (int32) for images ``x`` ``[B, H, W, 1]`` in [0, 1], from one compiled program.

    ``generators``: ``{"G0", "G1"}`` (CyCE/SyCE; critics may be present and are unused) or
    ``{"G"}`` (SAGen); ``classifier``: logits ``[B]``. Modules run in eval mode (copies).
    """
    check_kind(kind)
    x = check_images(x, name="images", channels=1)
    splits = {n: nnx.split(m) for n, m in sorted(generators.items()) if n.startswith("G")}
    f_gd, f_state = nnx.split(classifier)
    run = _forward_program(kind, tuple((n, s[0]) for n, s in splits.items()), f_gd)
    return run({n: s[1] for n, s in splits.items()}, f_state, x)


def generator_pair(kind: str, generators: dict[str, nnx.Module], classifier: nnx.Module, x: Any
                   ) -> tuple[jax.Array, jax.Array]:
    """``(x_start, x_adv)`` ``[B, H, W, 1]`` for images ``x`` ``[B, H, W, 1]`` in [0, 1].

    The class of each image is the classifier's prediction c = 1[f(x) >= 0.5];
    ``x_adv = G_c(x)``; ``x_start`` is ``x`` (CyCE), ``G_c(x_adv)`` (SyCE) or the stable
    head (SAGen).
    """
    x_s, x_a, _ = generator_outputs(kind, generators, classifier, x)
    return x_s, x_a


def cyce_pair(generators: dict[str, nnx.Module], classifier: nnx.Module, x: Any) -> tuple[jax.Array, jax.Array]:
    """CyCE: ``(x, G_c(x))``."""
    return generator_pair("cyce", generators, classifier, x)


def syce_pair(generators: dict[str, nnx.Module], classifier: nnx.Module, x: Any) -> tuple[jax.Array, jax.Array]:
    """SyCE: ``(G_c(G_c(x)), G_c(x))``."""
    return generator_pair("syce", generators, classifier, x)


def sagen_pair(generators: dict[str, nnx.Module], classifier: nnx.Module, x: Any) -> tuple[jax.Array, jax.Array]:
    """SAGen: the two heads ``(x_s, x_a)``."""
    return generator_pair("sagen", generators, classifier, x)


# ----------------------------------------------------------------------------- evaluation

def _mean_abs(u: jax.Array, v: jax.Array) -> jax.Array:
    return jnp.mean(jnp.abs(u - v), axis=(1, 2, 3))


def _mean_sq(u: jax.Array, v: jax.Array) -> jax.Array:
    return jnp.mean((u - v) ** 2, axis=(1, 2, 3))


@functools.lru_cache(maxsize=16)
def class_quality_program(kind: str, gen_graphdef: Any, f_graphdef: Any) -> Callable:
    """Jitted ``(g_same, g_other, f_state, x, cls) -> {name: [B]}`` for images of ONE predicted class.

    ``cls`` (int32 scalar) is that class; ``g_same`` the state of its generator (SAGen: its
    only one), ``g_other`` the other generator's (CyCE/SyCE: the cycle reconstruction
    ``G_{1-c}(x_a)``; ignored for SAGen). Graphdefs are in eval mode. G0 and G1 share one
    architecture, so one compiled program serves both classes, and each image goes only
    through the generators it needs.

    Outputs: ``p_adv`` = f(x_a), ``p_start`` = f(x_s), ``abs_adv`` = mean|x_a − x|,
    ``abs_start`` = mean|x_s − x|, ``rec_start`` = mean|x_s − x| + mean (x_s − x)²; CyCE/SyCE
    also ``p_cycle`` and ``rec_cycle`` of the cycle reconstruction.
    """

    @jax.jit
    def run(g_same, g_other, f_state, x, cls):
        G = nnx.merge(gen_graphdef, g_same, copy=True)
        f = nnx.merge(f_graphdef, f_state, copy=True)
        cycle = None
        if kind == "sagen":
            x_s, x_a = sagen_heads(G, x, jnp.full((x.shape[0],), cls))
        else:
            x_a = G(x)
            x_s = G(x_a) if kind == "syce" else x
            cycle = nnx.merge(gen_graphdef, g_other, copy=True)(x_a)
        scored = [x_a, x_s] + ([cycle] if cycle is not None else [])
        p = jnp.split(jax.nn.sigmoid(f(jnp.concatenate(scored, axis=0))), len(scored))
        out = {"p_adv": p[0], "p_start": p[1], "abs_adv": _mean_abs(x_a, x), "abs_start": _mean_abs(x_s, x),
               "rec_start": _mean_abs(x_s, x) + _mean_sq(x_s, x)}
        if cycle is not None:
            out["p_cycle"] = p[2]
            out["rec_cycle"] = _mean_abs(cycle, x) + _mean_sq(cycle, x)
        return out
    return run
