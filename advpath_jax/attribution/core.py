"""The one integration core behind every gradient-based map of the project.

A *path* is a function ``path(alpha) -> (point [B,H,W,C], velocity [B,H,W,C])`` giving
γ(α) and dγ/dα; an *integrand* maps ``(grad ∇f(γ(α)), velocity) -> [B,H,W,C]``. The core
returns the quadrature sum

    Σ_m  w_m · integrand(∇f(γ(α_m)), γ'(α_m))              [B, H, W, C]

computed chunk by chunk inside ``jax.lax.scan``, so peak memory depends on the chunk size,
not on M. The K path points of a chunk are folded into the batch dimension: f and its
gradient see ONE batch of ``B·K`` images (``[B·K, H, W, C]``, batch-major so a batch
sharded over devices stays sharded). XLA:CPU compiles this to faster code than
``jax.vmap`` of ``jax.grad`` over the K points (measured in docs/performance.md); the maps
are the same. A last, shorter chunk takes the remainder (no wasted gradient evaluations).

``f`` maps ``[N, H, W, C] -> [N]`` for any N and must treat samples independently (a model
in eval mode, no arrays of batch size closed over): per-sample gradients are obtained as
the gradient of ``Σ_n f(x)_n``.

``f`` and ``path`` are passed through ``jax.jit`` as pytrees (``jax.tree_util.Partial``):
their arrays (model parameters, images) are traced arguments, their functions static.
Keep the same function objects between calls to reuse the compiled program.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.tree_util import Partial

from advpath_jax.validation import check_optional_positive_int

#: Default bound on the path images in flight per call of the model: chunk = max(1, 64 // B).
MAX_IMAGES_IN_FLIGHT = 64

Integrand = Callable[[jax.Array, jax.Array], jax.Array]


def as_partial(fn: Callable, name: str = "f") -> Partial:
    """Wrap a callable (a score function, a decoder) so it can be passed through ``jax.jit``
    as an argument: a ``jax.tree_util.Partial`` is kept as is (its bound arguments, e.g.
    parameters, stay traced leaves); any other callable becomes ``Partial(fn)`` (hashed by
    identity; arrays it closes over become constants). ``name`` names it in the error."""
    if isinstance(fn, Partial):
        return fn
    if not callable(fn):
        raise ValueError(f"{name}: expected a callable, got {type(fn).__name__}")
    return Partial(fn)


def default_chunk_size(steps: int, batch_per_device: int) -> int:
    """Path points per chunk so that about ``MAX_IMAGES_IN_FLIGHT`` images go through f at once."""
    return int(max(1, min(steps, MAX_IMAGES_IN_FLIGHT // max(1, batch_per_device))))


def check_chunk_size(chunk_size: int | None, steps: int) -> int | None:
    chunk_size = check_optional_positive_int(chunk_size, "chunk_size")
    return None if chunk_size is None else min(chunk_size, steps)


def linear_path(x_start: jax.Array, x_end: jax.Array) -> Partial:
    """γ(α) = s + α (e − s), γ' = e − s."""
    return Partial(_linear_point, x_start, x_end)


def _linear_point(x_start, x_end, alpha):
    delta = x_end - x_start
    return x_start + alpha * delta, delta


def path_integral(f: Callable, path: Callable, alphas: np.ndarray, weights: np.ndarray,
                  integrand: Integrand, chunk_size: int) -> jax.Array:
    """Σ_m w_m · integrand(∇f(γ(α_m)), γ'(α_m)). Traceable; call it inside ``jax.jit``.

    Args:
      f: ``[B,H,W,C] -> [B]`` scores.
      path: ``alpha -> (point, velocity)``, both ``[B,H,W,C]``.
      alphas, weights: ``[M]`` quadrature nodes and weights (static numpy arrays).
      integrand: ``(grad, velocity) -> [B,H,W,C]``.
      chunk_size: path points evaluated together, as one batch of ``chunk_size · B`` images.
    Returns:
      ``[B, H, W, C]`` (float32).
    """
    grad_f = jax.grad(lambda x: jnp.sum(f(x)))

    def chunk_sum(alpha_chunk, weight_chunk):
        return _chunk_sum(grad_f, path, integrand, alpha_chunk, weight_chunk)

    def term_shape(alpha, weight):  # only traced by eval_shape: ∇f(γ) has the shape of γ
        point, velocity = path(alpha)
        return weight * integrand(point, velocity)

    alphas = np.asarray(alphas, np.float32)
    weights = np.asarray(weights, np.float32)
    steps = alphas.shape[0]
    n_full = steps // chunk_size
    remainder = steps - n_full * chunk_size
    out_shape = jax.eval_shape(term_shape, jnp.float32(0.0), jnp.float32(0.0))
    total = jnp.zeros(out_shape.shape, out_shape.dtype)
    if n_full > 0:
        full_a = jnp.asarray(alphas[: n_full * chunk_size].reshape(n_full, chunk_size))
        full_w = jnp.asarray(weights[: n_full * chunk_size].reshape(n_full, chunk_size))

        def body(acc, aw):
            return acc + chunk_sum(*aw), None

        total, _ = jax.lax.scan(body, total, (full_a, full_w))
    if remainder > 0:
        rest = chunk_sum(jnp.asarray(alphas[n_full * chunk_size:]),
                         jnp.asarray(weights[n_full * chunk_size:]))
        total = total + rest
    return total


def _chunk_sum(grad_f: Callable, path: Callable, integrand: Integrand, alpha_chunk: jax.Array,
               weight_chunk: jax.Array) -> jax.Array:
    """Σ_k w_k · integrand(∇f(γ(α_k)), γ'(α_k)) with one gradient over a ``[B·K, ...]`` batch.

    ``alpha_chunk``, ``weight_chunk``: ``[K]``. The path points are stacked batch-major
    (``[B, K, ...]`` -> ``[B·K, ...]``) so that a batch sharded over devices stays sharded.
    """
    points, velocities = jax.vmap(path, out_axes=1)(alpha_chunk)          # [B, K, H, W, C]
    batch, k = points.shape[:2]
    grads = grad_f(points.reshape((batch * k,) + points.shape[2:])).reshape(points.shape)
    terms = jax.vmap(integrand, in_axes=1)(grads, velocities)              # [K, ...out]
    weights = weight_chunk.reshape((k,) + (1,) * (terms.ndim - 1)).astype(terms.dtype)
    return jnp.sum(weights * terms, axis=0)


@functools.partial(jax.jit, static_argnames=("integrand", "alphas", "weights", "chunk_size", "finish"))
def run_path_program(f: Partial, path: Partial, *, integrand: Integrand, alphas: tuple,
                     weights: tuple, chunk_size: int, finish: Callable) -> Any:
    """Jitted ``finish(path_integral(...), path)``; ``alphas``/``weights`` are static tuples."""
    total = path_integral(f, path, np.asarray(alphas), np.asarray(weights), integrand, chunk_size)
    return finish(total, path)
