"""Input checks shared by the metric functions.

Shape and dtype checks are static and always run. Checks on values (NaN, range, empty
masks) need concrete arrays: they run when the inputs are concrete and are skipped when a
metric is itself traced inside a caller's ``jax.jit``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.tree_util import Partial


def is_concrete(*arrays) -> bool:
    """True when none of ``arrays`` is a tracer (values can be inspected)."""
    return not any(isinstance(a, jax.core.Tracer) for a in arrays)


def as_float_array(a, name: str):
    """Return ``a`` as a floating JAX array; reject non-numeric and complex input."""
    if isinstance(a, jax.core.Tracer):
        arr = a
    else:
        arr = jnp.asarray(a)
    if arr.dtype == jnp.bool_ or jnp.issubdtype(arr.dtype, jnp.integer):
        arr = arr.astype(jnp.float32)
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        raise ValueError(f"{name}: expected a real-valued array, got dtype {arr.dtype}")
    return arr


def check_maps(maps, name: str = "maps"):
    """Relevance maps ``[B, H, W]``: floating, finite."""
    maps = as_float_array(maps, name)
    if maps.ndim != 3:
        raise ValueError(f"{name}: expected shape [B, H, W], got {tuple(maps.shape)}")
    if maps.shape[0] == 0:
        raise ValueError(f"{name}: empty batch")
    if is_concrete(maps) and not bool(jnp.all(jnp.isfinite(maps))):
        raise ValueError(f"{name}: contains NaN or infinite values")
    return maps


def check_images(x, name: str = "x"):
    """Images ``[B, H, W, C]`` in [0, 1], finite."""
    x = as_float_array(x, name)
    if x.ndim != 4:
        raise ValueError(f"{name}: expected shape [B, H, W, C], got {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{name}: empty batch")
    if is_concrete(x):
        if not bool(jnp.all(jnp.isfinite(x))):
            raise ValueError(f"{name}: contains NaN or infinite values")
        lo, hi = float(jnp.min(x)), float(jnp.max(x))
        if lo < 0.0 or hi > 1.0:
            raise ValueError(f"{name}: values must lie in [0, 1], found range [{lo:.4g}, {hi:.4g}]")
    return x


def check_masks(masks, shape: tuple[int, ...], name: str = "masks"):
    """Ground-truth masks ``[B, H, W]`` (bool, or 0/1 numbers) matching ``shape``."""
    if isinstance(masks, jax.core.Tracer):
        m = masks
    else:
        m = jnp.asarray(masks)
    if tuple(m.shape) != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)} to match the maps, got {tuple(m.shape)}")
    if m.dtype != jnp.bool_:
        if is_concrete(m) and not bool(jnp.all((m == 0) | (m == 1))):
            raise ValueError(f"{name}: expected a boolean mask (or 0/1 values)")
        m = m != 0
    return m


def check_nonempty_masks(masks, name: str = "masks") -> None:
    """Raise if any mask of a concrete batch has no foreground pixel."""
    if not is_concrete(masks):
        return
    counts = np.asarray(jnp.sum(masks.reshape(masks.shape[0], -1), axis=1))
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        raise ValueError(
            f"{name}: ground-truth mask is empty for {empty.size} positive image(s) "
            f"(batch indices {empty[:10].tolist()}{'...' if empty.size > 10 else ''}); "
            "IoU/FNR are defined on positives with a non-empty lesion mask"
        )


def as_partial(f) -> Partial:
    """Wrap a score function so it can be passed through ``jax.jit`` as an argument.

    A ``jax.tree_util.Partial`` is kept as is (its bound arguments, e.g. parameters, stay
    traced leaves); any other callable becomes ``Partial(f)`` (hashed by identity).
    """
    if isinstance(f, Partial):
        return f
    if not callable(f):
        raise ValueError(f"f: expected a callable score function [B,H,W,C] -> [B], got {type(f).__name__}")
    return Partial(f)
