"""Paths on a generator's manifold, with dγ/dλ by forward-mode differentiation.

The paper (footnote 3) considers the "real-image" path γ(λ) = G(z_x + λ(z_{x_a} − z_x))
and leaves it aside because dγ/dλ is an n×k Jacobian times a vector. ``jax.jvp`` gives
that product directly, at about the cost of one more forward pass of the decoder:

    γ(λ), γ'(λ) = jax.jvp(decode, (z(λ),), (z_end − z_start,))

and eq. 3 becomes  E_w = | ∫₀¹ F(∇f(γ(λ)), γ'(λ)) · γ'(λ) dλ |  (pixel-wise products),
computed by the same core as the linear path.

* :func:`latent_path` — any decoder ``decode(z) -> [B,H,W,C]`` and latents (pytrees whose
  leaves have the batch as leading axis).
* :func:`manifold_path_attribution` — the map for such a path.
* :func:`syce_manifold_path_attribution` — SyCE's U-Nets: with G = G_c (c the predicted
  class), z_start = enc(x_a) and z_end = enc(x) (bottleneck and every skip), so that
  γ(0) = G_c(x_a) = x_s and γ(1) = G_c(x) = x_a: the same end points as SyCE's linear path.
  (CyCE has no generator that maps a code back to x itself, so it has no such path.)
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import nnx
from jax.sharding import Mesh
from jax.tree_util import Partial

from advpath_jax import parallel
from advpath_jax.attribution import core
from advpath_jax.attribution.adapters import eval_split
from advpath_jax.attribution.methods import (FinishMap, FinishStacked, StackedIntegrand, Weight,
                                             WeightedIntegrand, check_smoothing)
from advpath_jax.attribution.quadrature import Rule, quadrature_rule
from advpath_jax.attribution.weights import parse_weight, weight_name
from advpath_jax.validation import check_images


def _latent_point(decode, z_start, z_end, alpha):
    direction = jax.tree.map(jnp.subtract, z_end, z_start)
    z = jax.tree.map(lambda a, d: a + alpha * d, z_start, direction)
    return jax.jvp(decode, (z,), (direction,))


def latent_path(decode: Callable, z_start: Any, z_end: Any) -> Partial:
    """``alpha -> (γ(α), γ'(α))`` for γ(α) = decode(z_start + α (z_end − z_start))."""
    return Partial(_latent_point, core.as_partial(decode, "decode"), z_start, z_end)


def manifold_path_attribution(f: Callable, decode: Callable, z_start: Any, z_end: Any, *,
                              weight: Weight = "v2", steps: int = 50, rule: Rule = "midpoint",
                              smoothing: tuple[int, float] | None = None,
                              chunk_size: int | None = None, reduce_channels: bool = True,
                              mesh: Mesh | None = None) -> jax.Array:
    """``|Σ_m w_m F(∇f(γ_m), γ'_m) · γ'_m|`` on γ(α) = decode(z_start + α(z_end − z_start)).

    ``decode`` maps latents (a pytree, batch-leading leaves) to ``[B,H,W,C]``; pass a
    ``Partial`` to keep its parameters traced. Returns ``[B,H,W]`` (or ``[B,H,W,C]``).
    """
    weight_fn = _gradient_weight(weight)
    finish = FinishMap(times_delta=False, absolute=True, smoothing=check_smoothing(smoothing),
                       reduce_channels=reduce_channels)
    return _run_latent(f, decode, z_start, z_end, WeightedIntegrand(weight_fn), finish, steps=steps,
                       rule=rule, chunk_size=chunk_size, mesh=mesh)


def manifold_path_attribution_multi(f: Callable, decode: Callable, z_start: Any, z_end: Any, *,
                                    weights: tuple[Weight, ...] = ("v1", "v2"), steps: int = 50,
                                    rule: Rule = "midpoint", chunk_size: int | None = None,
                                    reduce_channels: bool = True, mesh: Mesh | None = None
                                    ) -> dict[str, jax.Array]:
    """Several weighted maps on the same latent path from one pass of gradients and jvps."""
    fns = tuple(_gradient_weight(w) for w in weights)
    stacked = _run_latent(f, decode, z_start, z_end, StackedIntegrand(fns), FinishStacked(reduce_channels),
                          steps=steps, rule=rule, chunk_size=chunk_size, mesh=mesh, batch_axis=1)
    return {weight_name(w): stacked[i] for i, w in enumerate(weights)}


def _gradient_weight(weight: Weight):
    weight_fn = parse_weight(weight)
    if weight_fn is None:
        raise ValueError("weight 'delta' has no meaning on a curved path; use a gradient weight")
    return weight_fn


def _check_latents(z_start, z_end) -> list:
    leaves = jax.tree.leaves(z_start)
    if not leaves or jax.tree.structure(z_start) != jax.tree.structure(z_end):
        raise ValueError("z_start and z_end must be non-empty pytrees of the same structure")
    for a, b in zip(leaves, jax.tree.leaves(z_end)):
        if a.shape != b.shape:
            raise ValueError(f"latent shapes differ: {a.shape} vs {b.shape}")
        if not bool(jnp.all(jnp.isfinite(a)) & jnp.all(jnp.isfinite(b))):
            raise ValueError("latents contain NaN or Inf values")
    return leaves


def prepare_latent_program(f, decode, z_start, z_end, integrand, finish, *, steps, rule, chunk_size,
                           mesh) -> tuple[tuple, dict, int]:
    """Pad/shard the latents over the 'data' axis; ``(args, static_kwargs, batch)`` for
    :func:`core.run_path_program` (also usable with ``.lower()`` by the benchmark)."""
    _check_latents(z_start, z_end)
    alphas, weights = quadrature_rule(rule, steps)
    chunk_size = core.check_chunk_size(chunk_size, len(alphas))
    (z_start, z_end), (f, decode), batch, mesh = parallel.pad_and_shard(
        (z_start, z_end), mesh, replicated=(core.as_partial(f), core.as_partial(decode, "decode")))
    if chunk_size is None:
        chunk_size = core.default_chunk_size(len(alphas), jax.tree.leaves(z_start)[0].shape[0] // mesh.devices.size)
    static = dict(integrand=integrand, alphas=tuple(float(a) for a in alphas),
                  weights=tuple(float(w) for w in weights), chunk_size=int(chunk_size), finish=finish)
    return (f, latent_path(decode, z_start, z_end)), static, batch


def _run_latent(f, decode, z_start, z_end, integrand, finish, *, batch_axis: int = 0, **kwargs):
    args, static, batch = prepare_latent_program(f, decode, z_start, z_end, integrand, finish, **kwargs)
    out = core.run_path_program(*args, **static)
    return out[:batch] if batch_axis == 0 else out[:, :batch]


# ---------------------------------------------------------------------------- SyCE's U-Nets


@functools.lru_cache(maxsize=16)
def _class_decoder(graphdef0: nnx.GraphDef, graphdef1: nnx.GraphDef) -> Callable:
    """``decode(states, (c, (z0, z1)))``: G_{c_b}'s decoder and head for each image b.

    The class ``c`` (float 0/1, ``[B]``) is a leaf of the latent so that it is padded and
    sharded with the batch; it is equal at both ends, so its tangent is zero.
    """

    def decode(states, z):
        c, (z0, z1) = z
        g0, g1 = nnx.merge(graphdef0, states[0]), nnx.merge(graphdef1, states[1])
        out0 = g0.head(g0.decode(*z0))
        out1 = g1.head(g1.decode(*z1))
        return jnp.where((c > 0.5)[:, None, None, None], out1, out0)

    return decode


@functools.lru_cache(maxsize=16)
def _class_encoder(graphdef0: nnx.GraphDef, graphdef1: nnx.GraphDef) -> Callable:
    @jax.jit
    def encode(states, x):
        g0, g1 = nnx.merge(graphdef0, states[0]), nnx.merge(graphdef1, states[1])
        return (g0.encode(x), g1.encode(x))

    return encode


def syce_latents(generators: dict, x_adv: jax.Array, x: jax.Array, c: jax.Array):
    """``(decode, z_start, z_end)`` of SyCE's manifold path for predicted classes ``c [B]``.

    Both generators' codes are kept (each image uses the one of its class); the residual
    form of the U-Net head (an input skip) is not supported on this path.
    """
    g0, g1 = generators["G0"], generators["G1"]
    if g0.spec.residual or g1.spec.residual:
        raise ValueError("the manifold path needs U-Nets without the residual input skip")
    (gd0, s0), (gd1, s1) = eval_split(g0), eval_split(g1)
    encode = _class_encoder(gd0, gd1)
    states = (s0, s1)
    decode = Partial(_class_decoder(gd0, gd1), states)
    cf = jnp.asarray(c, jnp.float32)
    return decode, (cf, encode(states, x_adv)), (cf, encode(states, x))


def syce_manifold_path_attribution(f: Callable, generators: dict, x: jax.Array, x_adv: jax.Array,
                                   c: jax.Array, *, multi: bool = False, **kwargs):
    """SyCE's map on the generator manifold from x_s = G_c(x_a) to x_a = G_c(x). ``[B,H,W]``.

    ``c`` is the predicted class of each image; keyword arguments as
    :func:`manifold_path_attribution` (or, with ``multi=True``,
    :func:`manifold_path_attribution_multi`, returning a dict of maps).
    """
    check_images(x, name="x", value_range=None)
    check_images(x_adv, name="x_adv", value_range=None)
    decode, z_start, z_end = syce_latents(generators, x_adv, x, c)
    if multi:  # several weights from one pass: returns {name: [B,H,W]}
        return manifold_path_attribution_multi(f, decode, z_start, z_end, **kwargs)
    return manifold_path_attribution(f, decode, z_start, z_end, **kwargs)
