"""Public attribution methods, all computed by :mod:`advpath_jax.attribution.core`.

Maps are returned as ``[B, H, W]`` (sum over channels of the per-channel map) or, with
``reduce_channels=False``, as the per-channel ``[B, H, W, C]`` form.

* :func:`path_attribution`: the paper's weighted path explanations (eq. 3–6),
  ``E_w = | Σ_m w_m F(∇f(γ_m), Δ) · Δ |`` on the linear path from ``x_start`` to ``x_end``.
* :func:`integrated_gradients`: ``(x − z) ⊙ Σ_m w_m ∇f(z + α_m (x − z))`` (signed).
* :func:`gradient_saliency`: ``|∇f(x)|``.
* :func:`gradcam`: ``ReLU(s · Σ_k α_k A_k)`` upsampled bilinearly, α_k = spatial mean of ∂f/∂A_k,
  s = ±1 per image (the predicted class's sign for a logit head).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from advpath_jax import parallel
from advpath_jax.attribution import core
from advpath_jax.attribution.quadrature import Rule, quadrature_rule
from advpath_jax.attribution.smoothing import gaussian_smooth
from advpath_jax.attribution.weights import Weight, WeightFn, parse_weight, weight_name
from advpath_jax.validation import check_image_pair, check_images


# ---------------------------------------------------------------------------- finishing steps
# Frozen dataclasses: hashable, so they can be static arguments of the jitted program.


@dataclasses.dataclass(frozen=True)
class WeightedIntegrand:
    """integrand(g, v) = F(g, v) · v (eq. 3 before the absolute value)."""

    weight_fn: WeightFn

    def __call__(self, grad, velocity):
        return self.weight_fn(grad, velocity) * velocity


@dataclasses.dataclass(frozen=True)
class GradientIntegrand:
    """integrand(g, v) = g (the plain gradient, for saliency and IG)."""

    def __call__(self, grad, velocity):
        return grad


@dataclasses.dataclass(frozen=True)
class FinishMap:
    """Post-processing of the integral: optional ×Δ, |·|, Gaussian smoothing, channel sum."""

    times_delta: bool = False
    absolute: bool = True
    smoothing: tuple[int, float] | None = None
    reduce_channels: bool = True

    def __call__(self, total, path):
        out = total
        if self.times_delta:
            out = out * path(0.0)[1]
        if self.absolute:
            out = jnp.abs(out)
        return finish_channels(out, self.smoothing, self.reduce_channels)


def finish_channels(maps: jax.Array, smoothing: tuple[int, float] | None,
                    reduce_channels: bool) -> jax.Array:
    """``[B,H,W,C]`` -> channel sum ``[B,H,W]`` (if ``reduce_channels``), then smoothing."""
    if reduce_channels:
        maps = jnp.sum(maps, axis=-1)
    if smoothing is not None:
        maps = gaussian_smooth(maps, *smoothing)
    return maps


# ---------------------------------------------------------------------------- validation


def check_smoothing(smoothing) -> tuple[int, float] | None:
    if smoothing is None:
        return None
    try:
        size, sigma = smoothing
    except (TypeError, ValueError) as err:
        raise ValueError(f"smoothing must be None or (size, sigma), got {smoothing!r}") from err
    if int(size) != size or size < 1 or not float(sigma) > 0:
        raise ValueError(f"smoothing needs a positive integer size and sigma > 0, got {smoothing!r}")
    return int(size), float(sigma)


# ---------------------------------------------------------------------------- running


def prepare_program(f, make_path, arrays, *, integrand, alphas, weights, chunk_size, finish,
                    mesh) -> tuple[tuple, dict, int]:
    """Pad and shard ``arrays`` over the 'data' axis and build the path.

    Returns ``(args, static_kwargs, batch)`` for :func:`core.run_path_program`, so that callers
    (the benchmark) can also ``.lower(*args, **static_kwargs)`` it ahead of time.
    """
    padded, f, batch, mesh = parallel.pad_and_shard(list(arrays), mesh, replicated=core.as_partial(f),
                                                    dtype=jnp.float32)
    if chunk_size is None:
        chunk_size = core.default_chunk_size(len(alphas), padded[0].shape[0] // mesh.devices.size)
    static = dict(integrand=integrand, alphas=tuple(float(a) for a in alphas),
                  weights=tuple(float(w) for w in weights), chunk_size=int(chunk_size),
                  finish=finish)
    return (f, make_path(*padded)), static, batch


def _run(f, make_path, arrays, **kwargs):
    args, static, batch = prepare_program(f, make_path, arrays, **kwargs)
    return core.run_path_program(*args, **static)[:batch]


def path_attribution(f: Callable, x_start: jax.Array, x_end: jax.Array, *, weight: Weight = "v2",
                     steps: int = 50, rule: Rule = "midpoint",
                     smoothing: tuple[int, float] | None = None, chunk_size: int | None = None,
                     reduce_channels: bool = True, mesh: Mesh | None = None) -> jax.Array:
    """Weighted path explanation ``|∫₀¹ F(∇f(γ(u)), Δ) · Δ du|`` on γ(u) = s + uΔ, Δ = e − s.

    Args:
      f: ``[B,H,W,C] -> [B]`` scores (e.g. :func:`advpath_jax.score_fn` of a classifier).
      x_start: ``[B,H,W,C]`` start s (x for CyCE, x_s for SyCE).
      x_end: ``[B,H,W,C]`` end e (the adversary x_a).
      weight: ``"v2"`` (E_FI^v2), ``"v1"`` (E_FI^v1), ``"delta"`` (the map |Δ|, no gradient),
        any registered name or ``"expr:..."`` string (:mod:`advpath_jax.attribution.weights`)
        or a callable ``F(grad, delta) -> [B,H,W,C]``.
      steps: M, number of path points.
      rule: quadrature rule name or explicit ``(alphas, weights)``
        (see :mod:`advpath_jax.attribution.quadrature`).
      smoothing: ``(size, sigma)`` Gaussian applied to the final map with ``jax.lax.conv``;
        ``weight="v2", smoothing=paper_smoothing(224)`` is E_FI,kσ^v2.
      chunk_size: path points per ``vmap`` chunk (default: about 64 images in flight).
      reduce_channels: return the channel sum ``[B,H,W]`` (default) or ``[B,H,W,C]``.
      mesh: a 1-D mesh with axis 'data' (default: all local devices).
    Returns:
      ``[B, H, W]`` maps (or ``[B, H, W, C]``).
    """
    request = path_attribution_request(f, x_start, x_end, weight=weight, steps=steps, rule=rule,
                                       smoothing=smoothing, chunk_size=chunk_size,
                                       reduce_channels=reduce_channels, mesh=mesh)
    if request is None:  # plain |Δ|: no gradients
        finish = FinishMap(absolute=True, smoothing=check_smoothing(smoothing),
                           reduce_channels=reduce_channels)
        delta = jnp.asarray(x_end, jnp.float32) - jnp.asarray(x_start, jnp.float32)
        return _finish_delta(delta, finish)
    return _run(**request)


def path_attribution_request(f, x_start, x_end, *, weight="v2", steps=50, rule="midpoint",
                             smoothing=None, chunk_size=None, reduce_channels=True,
                             mesh=None) -> dict | None:
    """Validated arguments of :func:`prepare_program` for a path map (None for ``"delta"``)."""
    check_image_pair(x_start, x_end, value_range=None)
    smoothing = check_smoothing(smoothing)
    weight_fn = parse_weight(weight)
    alphas, weights = quadrature_rule(rule, steps)
    chunk_size = core.check_chunk_size(chunk_size, len(alphas))
    if weight_fn is None:
        return None
    finish = FinishMap(times_delta=False, absolute=True, smoothing=smoothing,
                       reduce_channels=reduce_channels)
    return dict(f=f, make_path=core.linear_path, arrays=[x_start, x_end],
                integrand=WeightedIntegrand(weight_fn), alphas=alphas, weights=weights,
                chunk_size=chunk_size, finish=finish, mesh=mesh)


@jax.jit
def _abs_delta(delta):
    return jnp.abs(delta)


def _finish_delta(delta, finish: FinishMap):
    return jax.jit(finish_channels, static_argnums=(1, 2))(
        _abs_delta(delta), finish.smoothing, finish.reduce_channels)


def integrated_gradients(f: Callable, x: jax.Array, baseline: jax.Array | None = None, *,
                         steps: int = 50, rule: Rule = "midpoint", chunk_size: int | None = None,
                         reduce_channels: bool = True, mesh: Mesh | None = None) -> jax.Array:
    """Integrated Gradients ``(x − z) ⊙ Σ_m w_m ∇f(z + α_m (x − z))``, signed.

    ``baseline`` z defaults to zeros. Completeness: ``Σ map ≈ f(x) − f(z)``.
    Returns ``[B,H,W]`` (channel sum) or ``[B,H,W,C]``.
    """
    return _run(**integrated_gradients_request(f, x, baseline, steps=steps, rule=rule,
                                               chunk_size=chunk_size,
                                               reduce_channels=reduce_channels, mesh=mesh))


def integrated_gradients_request(f, x, baseline=None, *, steps=50, rule="midpoint",
                                 chunk_size=None, reduce_channels=True, mesh=None) -> dict:
    """Validated arguments of :func:`prepare_program` for Integrated Gradients."""
    check_images(x, name="x", value_range=None)
    baseline = jnp.zeros_like(x) if baseline is None else baseline
    check_image_pair(baseline, x, ("baseline", "x"), value_range=None)
    alphas, weights = quadrature_rule(rule, steps)
    chunk_size = core.check_chunk_size(chunk_size, len(alphas))
    finish = FinishMap(times_delta=True, absolute=False, reduce_channels=reduce_channels)
    return dict(f=f, make_path=core.linear_path, arrays=[baseline, x], integrand=GradientIntegrand(),
                alphas=alphas, weights=weights, chunk_size=chunk_size, finish=finish, mesh=mesh)


def gradient_saliency(f: Callable, x: jax.Array, *, reduce_channels: bool = True,
                      mesh: Mesh | None = None) -> jax.Array:
    """Gradient saliency ``|∇f(x)|`` (channel sum of absolute values). ``[B,H,W]``."""
    check_images(x, name="x", value_range=None)
    finish = FinishMap(times_delta=False, absolute=True, reduce_channels=reduce_channels)
    return _run(f, core.linear_path, [x, x], integrand=GradientIntegrand(),
                alphas=np.zeros(1), weights=np.ones(1), chunk_size=1, finish=finish, mesh=mesh)


@dataclasses.dataclass(frozen=True)
class GradCamFinish:
    """From ``∂f/∂A`` (the integral) and A (the path point) to ``Σ_k α_k A_k`` ``[B,h,w]``
    (before the ReLU and the upsampling)."""

    def __call__(self, grad_a, path):
        feats = path(0.0)[0]
        alpha = jnp.mean(grad_a, axis=(1, 2), keepdims=True)            # [B,1,1,K]
        return jnp.sum(alpha * feats, axis=-1)                          # [B,h,w]


@functools.partial(jax.jit, static_argnums=(2,))
def _rectify_and_upsample(cam: jax.Array, sign: jax.Array, out_hw: tuple[int, int]) -> jax.Array:
    """``ReLU(sign · cam)`` for ``cam [B,h,w]``, ``sign [B]``, upsampled bilinearly to ``out_hw``."""
    cam = jax.nn.relu(sign[:, None, None] * cam)
    return jax.image.resize(cam, (cam.shape[0], *out_hw), method="bilinear")


def gradcam(head: Callable, features: jax.Array, image_hw: tuple[int, int], *,
            class_sign: jax.Array | None = None, mesh: Mesh | None = None) -> jax.Array:
    """GradCAM from a feature map A ``[B,h,w,K]`` and a head ``A -> [B]`` scores.

    ``map = upsample(ReLU(s · Σ_k α_k A_k))``, α_k the spatial mean of ∂head/∂A_k, with
    ``s = class_sign`` ``[B]`` (default +1): the gradient of ``s · head`` is ``s`` times that
    of ``head``, so ``s = 2c − 1`` with a logit head explains the predicted class c's score.
    The gradient is taken by the same core (a one-point path at A). For a ResNet use
    :func:`advpath_jax.attribution.adapters.resnet_gradcam`. Returns ``[B, H, W]``.
    """
    check_images(features, name="features", value_range=None)
    batch = features.shape[0]
    sign = jnp.ones((batch,), jnp.float32) if class_sign is None else jnp.asarray(class_sign, jnp.float32)
    if sign.shape != (batch,):
        raise ValueError(f"class_sign must have shape ({batch},), got {tuple(sign.shape)}")
    cam = _run(head, core.linear_path, [features, features], integrand=GradientIntegrand(),
               alphas=np.zeros(1), weights=np.ones(1), chunk_size=1, finish=GradCamFinish(), mesh=mesh)
    return _rectify_and_upsample(cam, sign, (int(image_hw[0]), int(image_hw[1])))


@dataclasses.dataclass(frozen=True)
class StackedIntegrand:
    """Several weighted integrands from one gradient: ``[K, B, H, W, C]``."""

    weight_fns: tuple

    def __call__(self, grad, velocity):
        return jnp.stack([F(grad, velocity) * velocity for F in self.weight_fns])


@dataclasses.dataclass(frozen=True)
class FinishStacked:
    """``|·|`` and channel sum of each of the K stacked integrals: ``[K, B, H, W]``."""

    reduce_channels: bool = True

    def __call__(self, total, path):
        return jax.vmap(lambda t: finish_channels(jnp.abs(t), None, self.reduce_channels))(total)


def path_attribution_multi(f: Callable, x_start: jax.Array, x_end: jax.Array, *,
                           weights: tuple[Weight, ...] = ("v1", "v2"), steps: int = 50,
                           rule: Rule = "midpoint", chunk_size: int | None = None,
                           reduce_channels: bool = True, mesh: Mesh | None = None
                           ) -> dict[str, jax.Array]:
    """Several weighted path maps (e.g. E_FI^v1 and E_FI^v2) from ONE pass of gradients.

    Each entry equals ``path_attribution(f, x_start, x_end, weight=w, ...)``; the gradients
    ∇f(γ_m) are computed once and shared. Keys are the weight names (callables: their
    ``__name__``). Smoothing is linear, so apply :func:`gaussian_smooth` afterwards for kσ.
    """
    check_image_pair(x_start, x_end, value_range=None)
    fns = []
    for w in weights:
        fn = parse_weight(w)
        if fn is None:
            raise ValueError("path_attribution_multi takes gradient weights only (not 'delta')")
        fns.append(fn)
    alphas, quad_w = quadrature_rule(rule, steps)
    chunk_size = core.check_chunk_size(chunk_size, len(alphas))
    stacked = _run_stacked(f, [x_start, x_end], integrand=StackedIntegrand(tuple(fns)),
                           alphas=alphas, weights=quad_w, chunk_size=chunk_size,
                           finish=FinishStacked(reduce_channels), mesh=mesh)
    names = [weight_name(w) for w in weights]
    return {name: stacked[i] for i, name in enumerate(names)}


def _run_stacked(f, arrays, **kwargs):
    args, static, batch = prepare_program(f, core.linear_path, arrays, **kwargs)
    return core.run_path_program(*args, **static)[:, :batch]
