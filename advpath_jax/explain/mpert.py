"""MPert: meaningful-perturbation masks (Fong & Vedaldi, 2017), every image optimised at once.

For each image ``x`` with classifier logit ``z(x)``, predicted class
``c = 1[σ(z(x)) >= 0.5]`` and ``s = 2c − 1``, a low-resolution mask ``m`` (1 = keep,
0 = blur) is optimised with Adam to minimise

    λ1 · mean(1 − m) + λ2 · TV_β(m) + score_c(Φ(x, M))

where ``M = smooth(upsample(m))`` is the mask at image resolution (bilinear upsampling,
then the project's Gaussian filter) and ``Φ(x, M) = x · M + blur(x) · (1 − M)``. After
each step ``m`` is clamped to ``[0, 1]``. The explanation is ``1 − M``.

The class score (``objective``) is, with ``p_c = σ(s·z)`` the predicted class's probability:

* ``"log_complement"`` (default): ``−log(1 − p_c) = softplus(s·z)``. An adaptation of
  Fong & Vedaldi, who minimise ``p_c`` itself: ``∂p_c/∂z = p_c (1 − p_c)`` vanishes on a
  confidently classified image, so the area term holds the mask at 1 and the map is
  constant; ``∂softplus(s·z)/∂z = s·p_c`` does not vanish while the class is still
  predicted, and decays once it is removed (the same minimiser order as ``p_c``).
* ``"probability"``: ``p_c`` (the original; its gradient is the stable ``σ(z)σ(−z)``).
* ``"logit"``: ``s·z``, the predicted class's logit (unbounded below).

``TV_β(m) = mean_{u,v} ((m[u+1,v] − m[u,v])² + (m[u,v+1] − m[u,v])²)^{β/2}`` (the
isotropic form of the original paper). Both regularisers are means over mask pixels
(the original used sums), so λ1 and λ2 do not depend on the mask size.

Sizes follow the paper's 224-px settings scaled with the image: a 56×56 mask, smoothing
σ = 3, perturbation blur σ = 5. Gaussian filtering uses
``advpath_jax.attribution.smoothing`` with kernel ``2⌈3σ⌉ + 1`` and is renormalised at
the borders (``smooth(v) / smooth(1)``), so that the zero padding of the convolution
neither darkens the image's edge in ``blur(x)`` nor marks the edge as relevant in ``M``.

Implementation: one image's whole Adam loop is a ``jax.lax.scan``; ``jax.vmap`` runs it
for every image of the batch together and ``jax.jit`` compiles the lot, so there is no
Python loop over steps or images. ``f`` crosses ``jit`` as a ``jax.tree_util.Partial``
(its arrays traced, its code static): keep the same ``f`` between calls to reuse the
compiled program.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.tree_util import Partial

from advpath_jax.attribution.core import as_partial
from advpath_jax.attribution.smoothing import normalized_blur
from advpath_jax.metrics.deletion import deletion_flips
from advpath_jax.models.probability import predicted_class, signed_class, stable_sigmoid
from advpath_jax.validation import check_images

REFERENCE_IMAGE_SIZE = 224
REFERENCE_MASK_SIZE = 56
REFERENCE_MASK_SIGMA = 3.0
REFERENCE_BLUR_SIGMA = 5.0


@dataclasses.dataclass(frozen=True)
class MPertSettings:
    """Static settings of one compiled MPert program."""

    steps: int
    lr: float
    mask_hw: tuple[int, int]
    mask_sigma: float
    blur_sigma: float
    lambda1: float
    lambda2: float
    beta: float
    noise_std: float
    objective: str = "log_complement"


#: class scores MPert can minimise (see the module docstring)
OBJECTIVES = ("log_complement", "probability", "logit")


def total_variation_beta(m: jax.Array, beta: float, eps: float = 1e-12) -> jax.Array:
    """``mean((Δ_u m)² + (Δ_v m)²)^{β/2}`` over the ``(h−1)×(w−1)`` interior of an ``[h, w]`` mask."""
    du = m[1:, :-1] - m[:-1, :-1]
    dv = m[:-1, 1:] - m[:-1, :-1]
    return jnp.mean(jnp.power(du ** 2 + dv ** 2 + eps, beta / 2.0))


def upsample_mask(m: jax.Array, image_hw: tuple[int, int], sigma: float) -> jax.Array:
    """Low-resolution mask ``[h, w]`` -> bilinear ``[H, W]`` -> Gaussian filter (border-normalised)."""
    up = jax.image.resize(m, image_hw, method="bilinear")
    return normalized_blur(up[None], sigma)[0]


def class_score(z: jax.Array, c: jax.Array, objective: str = "log_complement") -> jax.Array:
    """Score of class ``c`` for a logit ``z`` (class 1's): ``softplus(s·z)``, ``σ(s·z)`` or ``s·z``."""
    signed = signed_class(c, z.dtype) * z
    if objective == "log_complement":
        return jax.nn.softplus(signed)
    if objective == "probability":
        return stable_sigmoid(signed)
    if objective == "logit":
        return signed
    raise ValueError(f"mpert objective must be one of {OBJECTIVES}, got {objective!r}")


def mpert_objective(m: jax.Array, x: jax.Array, blurred: jax.Array, c: jax.Array, noise: jax.Array,
                    logit_fn: Callable, s: MPertSettings, lambdas: jax.Array | None = None) -> jax.Array:
    """The scalar MPert objective for one image ``x [H, W, C]`` and its mask ``m [h, w]``.

    ``lambdas``: ``[2]`` traced (λ1, λ2) replacing the settings' (one compiled program for a grid).
    """
    lambda1, lambda2 = (s.lambda1, s.lambda2) if lambdas is None else (lambdas[0], lambdas[1])
    big = upsample_mask(m, x.shape[:2], s.mask_sigma)[..., None]
    perturbed = jnp.clip(x * big + blurred * (1.0 - big) + noise, 0.0, 1.0)
    score = class_score(logit_fn(perturbed[None])[0], c, s.objective)
    return lambda1 * jnp.mean(1.0 - m) + lambda2 * total_variation_beta(m, s.beta) + score


def optimise_one(logit_fn: Callable, x: jax.Array, key: jax.Array, s: MPertSettings,
                 lambdas: jax.Array | None = None) -> jax.Array:
    """Adam on one image's mask (``jax.lax.scan`` over the steps). ``x [H,W,C]`` -> map ``[H,W]``."""
    blurred = normalized_blur(x[None], s.blur_sigma)[0]
    c = predicted_class(stable_sigmoid(logit_fn(x[None])))[0]
    opt = optax.adam(s.lr)
    m0 = jnp.ones(s.mask_hw, x.dtype)
    grad_fn = jax.grad(mpert_objective)

    def step(carry, step_key):
        m, opt_state = carry
        if s.noise_std > 0:  # static: no random numbers are drawn when there is no noise
            noise = s.noise_std * jax.random.normal(step_key, x.shape, x.dtype)
        else:
            noise = jnp.zeros((), x.dtype)
        g = grad_fn(m, x, blurred, c, noise, logit_fn, s, lambdas)
        updates, opt_state = opt.update(g, opt_state, m)
        m = jnp.clip(optax.apply_updates(m, updates), 0.0, 1.0)
        return (m, opt_state), None

    (m, _), _ = jax.lax.scan(step, (m0, opt.init(m0)), jax.random.split(key, s.steps))
    return jnp.clip(1.0 - upsample_mask(m, x.shape[:2], s.mask_sigma), 0.0, 1.0)


def _mpert_batch(logit_fn: Partial, x: jax.Array, keys: jax.Array, settings: MPertSettings) -> jax.Array:
    """Every image's map; λ1, λ2 enter as traced values, so a λ grid reuses one compiled program."""
    lambdas = jnp.asarray([settings.lambda1, settings.lambda2], jnp.float32)
    static = dataclasses.replace(settings, lambda1=0.0, lambda2=0.0)
    return _mpert_batch_program(logit_fn, x, keys, lambdas, static)


@functools.partial(jax.jit, static_argnames=("settings",))
def _mpert_batch_program(logit_fn: Partial, x: jax.Array, keys: jax.Array, lambdas: jax.Array,
                         settings: MPertSettings) -> jax.Array:
    return jax.vmap(lambda xi, ki: optimise_one(logit_fn, xi, ki, settings, lambdas))(x, keys)


def mpert_settings(image_hw: tuple[int, int], *, steps: int = 150, lr: float = 0.1,
                   mask_size: int | None = None, mask_sigma: float | None = None,
                   blur_sigma: float | None = None, lambda1: float = 0.05, lambda2: float = 0.2,
                   beta: float = 3.0, noise_std: float = 0.0,
                   objective: str = "log_complement") -> MPertSettings:
    """Resolve defaults scaled from the 224-px reference and validate them."""
    h, w = image_hw
    scale_h, scale_w = h / REFERENCE_IMAGE_SIZE, w / REFERENCE_IMAGE_SIZE
    if mask_size is None:
        mask_hw = (max(2, round(REFERENCE_MASK_SIZE * scale_h)), max(2, round(REFERENCE_MASK_SIZE * scale_w)))
    else:
        if int(mask_size) != mask_size or mask_size < 2:
            raise ValueError(f"mpert mask_size must be an integer >= 2, got {mask_size!r}")
        # mask_size is given for the image's height; the width keeps the aspect ratio.
        mask_hw = (int(mask_size), max(2, round(int(mask_size) * w / h)))
    mask_sigma = REFERENCE_MASK_SIGMA * scale_h if mask_sigma is None else mask_sigma
    blur_sigma = REFERENCE_BLUR_SIGMA * scale_h if blur_sigma is None else blur_sigma
    if int(steps) != steps or steps < 1:
        raise ValueError(f"mpert steps must be a positive integer, got {steps!r}")
    for name, value in (("lr", lr), ("mask_sigma", mask_sigma), ("blur_sigma", blur_sigma), ("beta", beta)):
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"mpert {name} must be a positive number, got {value!r}")
    for name, value in (("lambda1", lambda1), ("lambda2", lambda2), ("noise_std", noise_std)):
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"mpert {name} must be a non-negative number, got {value!r}")
    if objective not in OBJECTIVES:
        raise ValueError(f"mpert objective must be one of {OBJECTIVES}, got {objective!r}")
    return MPertSettings(objective=str(objective), steps=int(steps), lr=float(lr), mask_hw=tuple(int(v) for v in mask_hw),
                         mask_sigma=float(mask_sigma), blur_sigma=float(blur_sigma),
                         lambda1=float(lambda1), lambda2=float(lambda2), beta=float(beta),
                         noise_std=float(noise_std))


def mpert_maps(logit_fn: Callable, x, *, steps: int = 150, lr: float = 0.1, mask_size: int | None = None,
               mask_sigma: float | None = None, blur_sigma: float | None = None,
               lambda1: float = 0.05, lambda2: float = 0.2, beta: float = 3.0,
               noise_std: float = 0.0, objective: str = "log_complement",
               key: jax.Array | None = None) -> jax.Array:
    """MPert maps ``[B, H, W]`` (``1 − M``, in [0, 1]) for images ``x [B, H, W, C]``.

    Args:
      logit_fn: ``[B, H, W, C] -> [B]`` the classifier's logit of class 1 (samples
        independent, e.g. ``advpath_jax.score_fn(model, output="logit")``); the predicted
        class of each image is ``σ(z) >= 0.5``.
      steps, lr: Adam iterations and learning rate.
      mask_size: mask height (default 56 · H / 224; width keeps the aspect ratio).
      mask_sigma: Gaussian filter of the upsampled mask (default 3 · H / 224).
      blur_sigma: the perturbation's Gaussian blur (default 5 · H / 224).
      lambda1, lambda2, beta: weights of mean(1 − m) and TV_β(m), and the TV exponent.
      noise_std: std of Gaussian noise added to the perturbed image at each step (0: none).
      objective: the class score minimised, one of :data:`OBJECTIVES` (module docstring).
      key: PRNG key, required when ``noise_std > 0``; image ``i`` uses ``fold_in(key, i)``.
    """
    x = check_images(x, name="images")
    settings = mpert_settings(x.shape[1:3], steps=steps, lr=lr, mask_size=mask_size,
                              mask_sigma=mask_sigma, blur_sigma=blur_sigma, lambda1=lambda1,
                              lambda2=lambda2, beta=beta, noise_std=noise_std, objective=objective)
    if key is None:
        if noise_std > 0:
            raise ValueError("mpert_maps needs a PRNG key when noise_std > 0")
        key = jax.random.key(0)
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(x.shape[0]))
    return _mpert_batch(as_partial(logit_fn), x, keys, settings)


# ---------------------------------------------------------------------------- choosing λ1, λ2


def constant_share(maps, tol: float = 1e-6) -> float:
    """Share of maps ``[B, H, W]`` whose range (max − min) is at most ``tol`` (no explanation)."""
    arr = np.asarray(maps, np.float64).reshape(len(maps), -1)
    return float(np.mean(arr.max(axis=1) - arr.min(axis=1) <= tol))


def check_lambda_grid(grid) -> tuple[tuple[float, float], ...]:
    """``((λ1, λ2), ...)`` non-negative finite pairs, at least one."""
    try:
        pairs = tuple((float(a), float(b)) for a, b in grid)
    except (TypeError, ValueError) as err:
        raise ValueError(f"mpert lambda_grid must be a sequence of (lambda1, lambda2) pairs, got {grid!r}") from err
    if not pairs or not all(np.isfinite(v) and v >= 0 for pair in pairs for v in pair):
        raise ValueError(f"mpert lambda_grid needs at least one pair of non-negative numbers, got {grid!r}")
    return pairs


def select_lambdas(logit_fn: Callable, x, grid, *, min_flip: float = 0.9, **mpert_kwargs) -> dict:
    """Choose MPert's ``(λ1, λ2)`` on (validation) images ``x [B, H, W, C]`` without looking at
    the masks' placement: the grid point with the largest area weight λ1 (the smallest
    deletions) whose deletion still changes the predicted class for at least ``min_flip`` of
    the images (:func:`deletion_flips`); if none does, the point with the highest flip rate.

    ``mpert_kwargs``: the other arguments of :func:`mpert_maps`. Returns
    ``{"lambda1", "lambda2", "met_target", "min_flip", "n_images", "grid": [{lambda1, lambda2,
    flip_rate, mean_area, constant_share}, ...]}``.
    """
    pairs = check_lambda_grid(grid)
    if not 0.0 < float(min_flip) <= 1.0:
        raise ValueError(f"mpert select_min_flip must be in (0, 1], got {min_flip!r}")
    x = check_images(x, name="images")
    settings = mpert_settings(x.shape[1:3], **{k: v for k, v in mpert_kwargs.items()
                                               if k not in ("lambda1", "lambda2", "key")})
    rows = []
    for lambda1, lambda2 in pairs:
        maps = mpert_maps(logit_fn, x, **{**mpert_kwargs, "lambda1": lambda1, "lambda2": lambda2})
        flips = deletion_flips(logit_fn, x, maps, settings.blur_sigma)
        rows.append({"lambda1": lambda1, "lambda2": lambda2, "flip_rate": float(flips.mean()),
                     "mean_area": float(np.mean(np.asarray(maps))), "constant_share": constant_share(maps)})
    meeting = [r for r in rows if r["flip_rate"] >= min_flip]
    best = (max(meeting, key=lambda r: (r["lambda1"], r["lambda2"])) if meeting
            else max(rows, key=lambda r: (r["flip_rate"], r["lambda1"])))
    return {"lambda1": best["lambda1"], "lambda2": best["lambda2"], "met_target": bool(meeting),
            "min_flip": float(min_flip), "n_images": int(x.shape[0]), "grid": rows}
