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
  Each image's path runs through its own class's U-Net only: the images are taken by class,
  in groups of a fixed size (one compiled program for any class balance).
  (CyCE has no generator that maps a code back to x itself, so it has no such path.)
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
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
from advpath_jax.validation import check_images, check_optional_positive_int


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

#: images per program call of SyCE's manifold path: a fixed size (the last group of a class is
#: padded), so one compiled program serves every shard whatever its class balance
GROUPS_PER_BATCH = 8


@functools.lru_cache(maxsize=16)
def _decoder(graphdef: nnx.GraphDef) -> Callable:
    """``decode(state, z)``: the U-Net's decoder and head."""

    def decode(state, z):
        g = nnx.merge(graphdef, state)
        return g.head(g.decode(*z))

    return decode


@functools.lru_cache(maxsize=16)
def _encoder(graphdef: nnx.GraphDef) -> Callable:
    @jax.jit
    def encode(state, x):
        return nnx.merge(graphdef, state).encode(x)

    return encode


def syce_latents(generators: dict, x_adv: jax.Array, x: jax.Array, cls: int):
    """``(decode, z_start, z_end)`` of SyCE's manifold path for images predicted ``cls`` (0 or 1):
    G_cls's decoder, its codes (bottleneck and every skip) of ``x_adv`` and of ``x``.

    The residual form of the U-Net head (an input skip) is not supported on this path.
    """
    decode, encode, state = _class_unet(generators, cls)
    return decode, encode(state, x_adv), encode(state, x)


def _class_unet(generators: dict, cls: int) -> tuple[Partial, Callable, Any]:
    """``(decode, encode, state)`` of G_cls in eval mode: ``decode(z)`` keeps the parameters traced,
    ``encode(state, x)`` is jitted."""
    if cls not in (0, 1):
        raise ValueError(f"cls must be 0 or 1, got {cls!r}")
    g = generators[f"G{cls}"]
    if g.spec.residual:
        raise ValueError("the manifold path needs U-Nets without the residual input skip")
    graphdef, state = eval_split(g)
    return Partial(_decoder(graphdef), state), _encoder(graphdef), state


def class_groups(c: np.ndarray, group_size: int) -> list[tuple[int, np.ndarray, int]]:
    """``(class, indices [group_size], n_real)`` covering every image once: the images of each
    class in order, ``group_size`` at a time, the last group of a class padded with its last index."""
    groups = []
    for cls in (0, 1):
        idx = np.flatnonzero(c == cls)
        for lo in range(0, len(idx), group_size):
            part = idx[lo:lo + group_size]
            groups.append((cls, np.concatenate([part, np.full(group_size - len(part), part[-1])]), len(part)))
    return groups


def default_group_size(batch: int, n_devices: int | None = None) -> int:
    """``ceil(batch / GROUPS_PER_BATCH)`` rounded up to a multiple of the devices."""
    n = jax.device_count() if n_devices is None else n_devices
    size = -(-batch // GROUPS_PER_BATCH)
    return -(-size // n) * n


def syce_manifold_path_attribution(f: Callable, generators: dict, x: jax.Array, x_adv: jax.Array,
                                   c: jax.Array, *, multi: bool = False, group_size: int | None = None,
                                   **kwargs):
    """SyCE's map on the generator manifold from x_s = G_c(x_a) to x_a = G_c(x). ``[B,H,W]``.

    ``c [B]`` is the predicted class of each image (0 or 1); each image's path runs through its
    own class's U-Net only (z_start = enc_c(x_a), z_end = enc_c(x), so γ(0) = G_c(x_a) = x_s and
    γ(1) = G_c(x) = x_a: the end points of SyCE's linear path). The images are taken by class in
    groups of ``group_size`` (default :func:`default_group_size`). Keyword arguments as
    :func:`manifold_path_attribution` (or, with ``multi=True``,
    :func:`manifold_path_attribution_multi`, returning a dict of maps).
    """
    check_images(x, name="x", value_range=None)
    check_images(x_adv, name="x_adv", value_range=None)
    classes = np.asarray(c)
    if classes.shape != (x.shape[0],) or not np.all((classes == 0) | (classes == 1)):
        raise ValueError(f"c must hold the predicted class (0 or 1) of each of the {x.shape[0]} images, "
                         f"got shape {classes.shape}")
    size = check_optional_positive_int(group_size, "group_size") or default_group_size(x.shape[0])
    run = manifold_path_attribution_multi if multi else manifold_path_attribution
    unets = {cls: _class_unet(generators, cls) for cls in np.unique(classes).astype(int).tolist()}
    out = None
    for cls, idx, n_real in class_groups(classes.astype(int), size):
        decode, encode, state = unets[cls]
        maps = run(f, decode, encode(state, x_adv[idx]), encode(state, x[idx]), **kwargs)
        maps = maps if multi else {"": maps}
        if out is None:
            out = {k: jnp.zeros((x.shape[0],) + v.shape[1:], v.dtype) for k, v in maps.items()}
        out = {k: out[k].at[idx[:n_real]].set(v[:n_real]) for k, v in maps.items()}
    return out if multi else out[""]
