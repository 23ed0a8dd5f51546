"""PyTorch versions of E_FI^v2 (optionally Gaussian-smoothed) and Integrated Gradients.

The same quantities as :func:`advpath_jax.path_attribution` (``weight="v2"``) and
:func:`advpath_jax.integrated_gradients`, computed three PyTorch ways so they can be
checked against the JAX engine and timed against it:

* ``impl="loop"``: a hand-written loop over chunks of path points; each chunk stacks
  ``chunk_size × B`` path images into one batch, one forward, one ``torch.autograd.grad``.
* ``impl="vmap"``: ``torch.func.vmap`` over the path points of a chunk of
  ``torch.func.grad(Σ_b f)`` (the structure of the JAX engine), with the same chunk loop.
* ``impl="captum"``: ``captum.attr.IntegratedGradients`` with the matching Riemann rule and
  ``internal_batch_size = chunk_size × B``. For IG this is Captum as shipped. For E_FI^v2
  Captum has no method; :class:`AbsGradientIntegratedGradients` reuses Captum's IG
  machinery (path points, internal batching, step weights) with the gradient replaced by
  its absolute value, which turns Captum's ``Δ ⊙ Σ_m w_m ∇f`` into ``Δ ⊙ Σ_m w_m |∇f|``;
  one more ``⊙ Δ`` gives E_FI^v2. The override sets Captum's ``gradient_func`` attribute
  (stable across Captum 0.6-0.9 but not a documented extension point).

Rules: any rule of :func:`advpath_jax.attribution.quadrature.quadrature_rule` for the loop
and vmap versions. Captum's grids: midpoint = ``riemann_middle`` (same alphas (m-½)/M and
weights 1/M), left/right = ``riemann_left/right``, gauss-legendre = ``gausslegendre``;
Captum's ``riemann_trapezoid`` has the textbook alphas but weights that sum to (M-1)/M,
so its result is rescaled by M/(M-1) (a constant factor: every weight differs by it).
Explicit ``(alphas, weights)`` are not available through Captum's public API.

Tensors are NCHW: images ``[B, C, H, W]``, maps ``[B, H, W]`` (channel sum) or
``[B, C, H, W]`` with ``reduce_channels=False``. Accumulation is in float32.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from advpath_jax.attribution.quadrature import Rule, quadrature_rule
from advpath_jax.attribution.smoothing import gaussian_kernel
from advpath_jax.torch_twin import require_torch
from advpath_jax.validation import (check_finite_flag, check_floating, check_optional_positive_int, check_same_shape,
                                    check_shape)

torch = require_torch()
F = torch.nn.functional

IMPLS = ("loop", "vmap", "captum")
OUTPUTS = ("prob", "logit")
CAPTUM_METHODS = {"midpoint": "riemann_middle", "left": "riemann_left", "right": "riemann_right",
                  "trapezoid": "riemann_trapezoid", "gauss-legendre": "gausslegendre"}
#: Default bound on the path images in flight per model call (as the JAX engine's).
MAX_IMAGES_IN_FLIGHT = 64

ScoreFn = Callable[["torch.Tensor"], "torch.Tensor"]


# ---------------------------------------------------------------------------- score function


def torch_score_fn(model: "torch.nn.Module", output: str = "prob") -> ScoreFn:
    """``f(x [B,C,H,W]) -> [B]``: sigmoid probability (default) or logit of ``model``.

    Puts ``model`` in eval mode and freezes its parameters (``requires_grad_(False)``), so
    that only input gradients are computed, as in the JAX engine.
    """
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    model.eval()
    model.requires_grad_(False)
    if output == "logit":
        return model

    def score(x):
        return StableSigmoid.apply(model(x))
    return score


class StableSigmoid(torch.autograd.Function):
    """``σ(z)`` with the backward ``σ(z) σ(−z)``, as the JAX engine's
    :func:`advpath_jax.models.probability.stable_sigmoid` (``torch.sigmoid``'s backward
    ``σ(1 − σ)`` is exactly 0 in float32 for z ≳ 17)."""

    generate_vmap_rule = True  # usable under torch.func.vmap / grad (the "vmap" impl)

    @staticmethod
    def forward(z):
        return torch.sigmoid(z)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, grad_out):
        (z,) = ctx.saved_tensors
        return grad_out * torch.sigmoid(z) * torch.sigmoid(-z)


# ---------------------------------------------------------------------------- validation


NCHW = "[B, C, H, W]"


def _check_images(x, name: str) -> None:
    """A floating, finite ``[B, C, H, W]`` tensor (the rules of :mod:`advpath_jax.validation`)."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor {NCHW}, got {type(x).__name__}")
    check_shape(x.shape, name=name, rank=4, layout=NCHW)
    check_floating(torch.is_floating_point(x), x.dtype, name)
    check_finite_flag(bool(torch.isfinite(x).all()), name)


def _check_pair(x_start, x_end, names=("x_start", "x_end")) -> None:
    _check_images(x_start, names[0])
    _check_images(x_end, names[1])
    check_same_shape(x_start, x_end, names)


def _check_impl(impl: str) -> None:
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")


def resolve_chunk_size(chunk_size: int | None, steps: int, batch: int) -> int:
    """Path points per chunk; default about ``MAX_IMAGES_IN_FLIGHT`` images per model call."""
    if chunk_size is None:
        return int(max(1, min(steps, MAX_IMAGES_IN_FLIGHT // max(1, batch))))
    return min(check_optional_positive_int(chunk_size, "chunk_size"), steps)


# ---------------------------------------------------------------------------- smoothing


def gaussian_smooth(maps, size: int, sigma: float):
    """Smooth ``[B, H, W]`` maps with the project's Gaussian kernel (same padding as JAX:
    zeros, ``(size-1)//2`` before and ``size//2`` after, cross-correlation)."""
    if maps.ndim != 3:
        raise ValueError(f"expected maps [B, H, W], got shape {tuple(maps.shape)}")
    kernel = torch.from_numpy(gaussian_kernel(size, sigma)).to(maps.device, maps.dtype)
    lo, hi = (size - 1) // 2, size // 2
    padded = F.pad(maps[:, None], (lo, hi, lo, hi))
    return F.conv2d(padded, kernel[None, None])[:, 0]


def _finish(per_channel, smoothing, reduce_channels: bool):
    """``[B,C,H,W]`` -> channel sum ``[B,H,W]`` then optional smoothing (the JAX order)."""
    if not reduce_channels:
        if smoothing is not None:
            raise ValueError("smoothing applies to channel-summed maps; use reduce_channels=True")
        return per_channel
    maps = per_channel.sum(dim=1)
    return maps if smoothing is None else gaussian_smooth(maps, *smoothing)


# ---------------------------------------------------------------------------- gradient sums


def _path_gradient_sum(f: ScoreFn, x_start, delta, alphas: np.ndarray, weights: np.ndarray,
                       *, absolute: bool, chunk_size: int, impl: str):
    """Σ_m w_m G(∇f(s + α_m Δ)) ``[B,C,H,W]`` (float32), G = |·| or identity."""
    batch = x_start.shape[0]
    total = torch.zeros(x_start.shape, dtype=torch.float32, device=x_start.device)
    a_all = torch.as_tensor(alphas, dtype=x_start.dtype, device=x_start.device)
    w_all = torch.as_tensor(weights, dtype=torch.float32, device=x_start.device)
    grad_at = _vmapped_gradient(f) if impl == "vmap" else None
    for lo in range(0, len(alphas), chunk_size):
        a = a_all[lo:lo + chunk_size]
        w = w_all[lo:lo + chunk_size]
        k = a.shape[0]
        points = x_start[None] + a.view(k, 1, 1, 1, 1) * delta[None]          # [k,B,C,H,W]
        if impl == "vmap":
            grads = grad_at(points)
        else:
            flat = points.reshape(k * batch, *x_start.shape[1:]).requires_grad_(True)
            with torch.enable_grad():
                (g,) = torch.autograd.grad(f(flat).sum(), flat)
            grads = g.view(k, *x_start.shape)
        grads = grads.float()
        if absolute:
            grads = grads.abs()
        total += torch.einsum("k,kbchw->bchw", w, grads)
    return total


def _vmapped_gradient(f: ScoreFn):
    """``points [k,B,C,H,W] -> ∇(Σ_b f)`` at every point, by ``vmap`` over the k path points."""
    def summed(x):
        return f(x).sum()
    return torch.func.vmap(torch.func.grad(summed))


# ---------------------------------------------------------------------------- Captum


def _captum_method(rule: Rule, steps: int) -> tuple[str, float]:
    """Captum method name and the factor that makes its weights ours."""
    if not isinstance(rule, str):
        raise ValueError("Captum takes a named rule only (midpoint, left, right, trapezoid, "
                         "gauss-legendre), not explicit (alphas, weights)")
    if rule not in CAPTUM_METHODS:
        raise ValueError(f"unknown quadrature rule {rule!r}; choose from {', '.join(CAPTUM_METHODS)}")
    quadrature_rule(rule, steps)  # validate steps
    if rule != "gauss-legendre" and steps < 2:
        raise ValueError("Captum's Riemann rules need steps >= 2")
    # riemann_trapezoid: alphas linspace(0, 1, M), weights (1/M)·[½, 1, ..., 1, ½] (sum (M-1)/M);
    # the textbook weights are (1/(M-1))·[½, 1, ..., 1, ½]: every weight is M/(M-1) times larger.
    scale = steps / (steps - 1) if rule == "trapezoid" else 1.0
    return CAPTUM_METHODS[rule], scale


def _captum_ig_class(absolute: bool):
    from captum._utils.gradient import compute_gradients
    from captum.attr import IntegratedGradients

    if not absolute:
        return IntegratedGradients

    class AbsGradientIntegratedGradients(IntegratedGradients):
        """Captum IG whose gradients are replaced by their absolute values:
        ``attribute(x_end, baselines=x_start)`` = ``Δ ⊙ Σ_m w_m |∇f(s + α_m Δ)|``."""

        def __init__(self, forward_func):
            super().__init__(forward_func, multiply_by_inputs=True)

            def abs_gradients(*args, **kwargs):
                return tuple(g.abs() for g in compute_gradients(*args, **kwargs))
            self.gradient_func = abs_gradients

    return AbsGradientIntegratedGradients


def _captum_delta_times_sum(f: ScoreFn, x_start, x_end, *, steps: int, rule: Rule,
                            chunk_size: int, absolute: bool):
    """Captum's ``Δ ⊙ Σ_m w_m G(∇f(s + α_m Δ))`` with our weights, ``[B,C,H,W]`` float32."""
    method, scale = _captum_method(rule, steps)
    explainer = _captum_ig_class(absolute)(f)
    attr = explainer.attribute(x_end, baselines=x_start, n_steps=steps, method=method,
                               internal_batch_size=chunk_size * x_start.shape[0])
    return attr.float() * scale


# ---------------------------------------------------------------------------- public methods


def efi_v2(f: ScoreFn, x_start, x_end, *, steps: int = 50, rule: Rule = "midpoint",
           smoothing: tuple[int, float] | None = None, chunk_size: int | None = None,
           impl: str = "loop", reduce_channels: bool = True):
    """E_FI^v2 = Δ² · Σ_m w_m |∇f(s + α_m Δ)|, Δ = e − s; ``smoothing=(size, sigma)`` gives
    E_FI,kσ^v2 (Gaussian applied to the channel-summed map).

    Args:
      f: ``[B,C,H,W] -> [B]`` (e.g. :func:`torch_score_fn`).
      x_start, x_end: ``[B,C,H,W]`` start s and end e (the adversary).
      chunk_size: path points per model call (``chunk_size × B`` images); default
        about 64 images.
      impl: ``"loop"``, ``"vmap"`` or ``"captum"`` (see the module docstring).
    Returns:
      ``[B, H, W]`` float32 maps (``[B, C, H, W]`` with ``reduce_channels=False``).
    """
    _check_impl(impl)
    _check_pair(x_start, x_end)
    chunk = resolve_chunk_size(chunk_size, steps, x_start.shape[0])
    delta = x_end - x_start
    if impl == "captum":
        per_channel = _captum_delta_times_sum(f, x_start, x_end, steps=steps, rule=rule,
                                              chunk_size=chunk, absolute=True) * delta.float()
    else:
        alphas, weights = quadrature_rule(rule, steps)
        chunk = min(chunk, len(alphas))
        summed = _path_gradient_sum(f, x_start, delta, alphas, weights, absolute=True,
                                    chunk_size=chunk, impl=impl)
        per_channel = summed * delta.float() * delta.float()
    return _finish(per_channel.abs(), smoothing, reduce_channels)


def integrated_gradients(f: ScoreFn, x, baseline=None, *, steps: int = 50, rule: Rule = "midpoint",
                         chunk_size: int | None = None, impl: str = "loop",
                         reduce_channels: bool = True):
    """Integrated Gradients ``(x − z) ⊙ Σ_m w_m ∇f(z + α_m (x − z))``, signed; z = zeros
    by default. Returns ``[B, H, W]`` (channel sum) or ``[B, C, H, W]``."""
    _check_impl(impl)
    _check_images(x, "x")
    baseline = torch.zeros_like(x) if baseline is None else baseline
    _check_pair(baseline, x, ("baseline", "x"))
    chunk = resolve_chunk_size(chunk_size, steps, x.shape[0])
    delta = x - baseline
    if impl == "captum":
        per_channel = _captum_delta_times_sum(f, baseline, x, steps=steps, rule=rule,
                                              chunk_size=chunk, absolute=False)
    else:
        alphas, weights = quadrature_rule(rule, steps)
        chunk = min(chunk, len(alphas))
        summed = _path_gradient_sum(f, baseline, delta, alphas, weights, absolute=False,
                                    chunk_size=chunk, impl=impl)
        per_channel = summed * delta.float()
    return _finish(per_channel, None, reduce_channels)
