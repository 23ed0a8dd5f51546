"""The generator losses of CyCE, SyCE and SAGen (docs/training.md#generators), one named function each.

``f`` is the frozen classifier's logit ``[B,H,W,1] -> [B]``; every image a loss scores
goes through ``f`` in one call (it is frozen and in eval mode, so this equals separate
calls and compiles one program). ``x0`` / ``x1`` are images predicted 0 / 1 ``[B,H,W,1]``,
``w`` the weights of :func:`advpath_jax.generators.spec.loss_weights`. Each loss returns
the total (both halves summed) and the mean of each term over the two halves.

CyCE, for the x0 half with ``x_a = G0(x0)`` (the x1 half mirrors it with 0 <-> 1)::

    w_adv adv_cls(0, f(x_a)) + w_gan gan_g(D1(x_a)) + w_rec rec(x0, G1(x_a)) + w_cls cls(0, f(G1(x_a)))

SyCE adds the same generator's stable image ``x_s = G0(x_a)``::

    ... + w_rec_self rec(x0, G0(x_a)) + w_cls_self cls(0, f(G0(x_a)))

SAGen (inferred; its loss is not public), heads ``(x_s, x_a)`` for images ``x`` of classes ``c``::

    w_cls cls(c, f(x_s)) + w_adv adv_cls(c, f(x_a)) + w_rec_s rec(x, x_s) + w_rec_a rec(x, x_a)

The primitives (``rec``, ``cls``, ``adv_cls``, ``gan_g``) are :mod:`advpath_jax.training.losses`.
"""

from __future__ import annotations

from typing import Callable, Mapping

import jax
import jax.numpy as jnp
from flax import nnx

from advpath_jax.generators.inference import sagen_heads
from advpath_jax.training import losses

Logit = Callable[[jax.Array], jax.Array]
Terms = dict[str, jax.Array]


def _scored(f: Logit, images: list[jax.Array]) -> list[jax.Array]:
    """``f`` of every image batch in one call, split back per batch."""
    return jnp.split(f(jnp.concatenate(images, axis=0)), len(images))


def _weighted_total(halves: list[Terms], w: Mapping[str, float]) -> jax.Array:
    return sum(w[k] * h[k] for h in halves for k in h)


def _half_means(halves: list[Terms]) -> Terms:
    return {k: 0.5 * (halves[0][k] + halves[1][k]) for k in halves[0]}


def _cycle_images(models: Mapping[str, nnx.Module], x0: jax.Array, x1: jax.Array):
    """``(a0, a1, back0, back1)``: the adversaries and their cycle through the other generator."""
    a0, a1 = models["G0"](x0), models["G1"](x1)
    return a0, a1, models["G1"](a0), models["G0"](a1)


def _cyce_terms(y: jax.Array, x: jax.Array, a: jax.Array, back: jax.Array, d_opp: nnx.Module,
                logit_a: jax.Array, logit_back: jax.Array) -> Terms:
    """The CyCE terms of one half (shared by CyCE and SyCE)."""
    return {"adv": losses.adv_cls(y, logit_a), "gan": losses.gan_g(d_opp(a)),
            "rec": losses.rec(x, back), "cls": losses.cls(y, logit_back)}


def _self_terms(y: jax.Array, x: jax.Array, same: jax.Array, logit_same: jax.Array) -> Terms:
    """SyCE's terms of one half on the stable image ``G_c(x_a)``."""
    return {"rec_self": losses.rec(x, same), "cls_self": losses.cls(y, logit_same)}


def _classes(x0: jax.Array, x1: jax.Array) -> tuple[jax.Array, jax.Array]:
    return jnp.zeros((x0.shape[0],)), jnp.ones((x1.shape[0],))


def cyce_loss(models: Mapping[str, nnx.Module], f: Logit, x0: jax.Array, x1: jax.Array,
              w: Mapping[str, float]) -> tuple[jax.Array, Terms, jax.Array, jax.Array]:
    """CyCE's generator loss: ``(total, terms, a0, a1)`` with ``a0 = G0(x0)``, ``a1 = G1(x1)``.

    ``models``: ``{"G0", "G1", "D0", "D1"}`` (D1 judges G0's outputs, D0 G1's).
    """
    a0, a1, back0, back1 = _cycle_images(models, x0, x1)
    la0, la1, lb0, lb1 = _scored(f, [a0, a1, back0, back1])
    y0, y1 = _classes(x0, x1)
    halves = [_cyce_terms(y0, x0, a0, back0, models["D1"], la0, lb0),
              _cyce_terms(y1, x1, a1, back1, models["D0"], la1, lb1)]
    return _weighted_total(halves, w), _half_means(halves), a0, a1


def syce_loss(models: Mapping[str, nnx.Module], f: Logit, x0: jax.Array, x1: jax.Array,
              w: Mapping[str, float]) -> tuple[jax.Array, Terms, jax.Array, jax.Array]:
    """SyCE's generator loss: CyCE's terms plus the stable image's ``rec_self`` and ``cls_self``.

    Returns ``(total, terms, a0, a1)`` like :func:`cyce_loss`.
    """
    a0, a1, back0, back1 = _cycle_images(models, x0, x1)
    same0, same1 = models["G0"](a0), models["G1"](a1)  # the same generator: the stable image x_s
    la0, la1, lb0, lb1, ls0, ls1 = _scored(f, [a0, a1, back0, back1, same0, same1])
    y0, y1 = _classes(x0, x1)
    halves = [{**_cyce_terms(y0, x0, a0, back0, models["D1"], la0, lb0), **_self_terms(y0, x0, same0, ls0)},
              {**_cyce_terms(y1, x1, a1, back1, models["D0"], la1, lb1), **_self_terms(y1, x1, same1, ls1)}]
    return _weighted_total(halves, w), _half_means(halves), a0, a1


def sagen_loss(G: nnx.Module, f: Logit, x: jax.Array, c: jax.Array,
               w: Mapping[str, float]) -> tuple[jax.Array, Terms]:
    """SAGen's (inferred) loss for images ``x [B,H,W,1]`` of predicted classes ``c [B]``: ``(total, terms)``."""
    x_s, x_a = sagen_heads(G, x, c)
    l_s, l_a = _scored(f, [x_s, x_a])
    terms = {"cls": losses.cls(c, l_s), "adv": losses.adv_cls(c, l_a),
             "rec_s": losses.rec(x, x_s), "rec_a": losses.rec(x, x_a)}
    return sum(w[k] * v for k, v in terms.items()), terms


def half_loss(kind: str, models: Mapping[str, nnx.Module], f: Logit, x: jax.Array, k: int,
              w: Mapping[str, float]) -> tuple[jax.Array, Terms]:
    """CyCE's or SyCE's loss of the x_k half alone (images ``x`` predicted ``k``): ``(total, terms)``.

    The authors' update scheme differentiates it for G0 and G1 once per half
    (``generators.update_scheme = "authors"``); ``cyce_loss`` / ``syce_loss`` sum both halves.
    """
    own, other = models[f"G{k}"], models[f"G{1 - k}"]
    a = own(x)
    back = other(a)
    images = [a, back] + ([own(a)] if kind == "syce" else [])
    logits = _scored(f, images)
    y = jnp.full((x.shape[0],), float(k))
    terms = _cyce_terms(y, x, a, back, models[f"D{1 - k}"], logits[0], logits[1])
    if kind == "syce":
        terms.update(_self_terms(y, x, images[2], logits[2]))
    return _weighted_total([terms], w), terms


#: the CyCE/SyCE losses by kind (SAGen's has another signature)
CYCLE_LOSSES = {"cyce": cyce_loss, "syce": syce_loss}
