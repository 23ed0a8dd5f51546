"""The package's one set of input checks: image batches, relevance maps and ground-truth masks.

Every public entry point (attribution methods, metrics, explainers, generator inference,
trainers, data sets, the PyTorch twin) validates its arrays here, so a bad input gets the
same message everywhere: ``"<argument>: <problem>, got <what was found>"``. Every error is
an :class:`~advpath_jax.errors.AdvpathError` (a ``ValueError``).

Two kinds of check:

* static checks on shape and dtype (rank, channel count, floating dtype, empty batch):
  always run, also on arrays traced inside a caller's ``jax.jit``;
* value checks (NaN/inf, value range, 0/1 masks): need concrete values, so they are
  skipped for traced arrays (``allow_traced=True``, the default) or refuse them
  (``allow_traced=False``).

The pieces (:func:`check_shape`, :func:`check_min_size`, :func:`check_floating`,
:func:`check_finite_flag`, :func:`check_range`) are public so that code holding other array types (PyTorch tensors)
reuses the same rules and messages.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from advpath_jax.errors import AdvpathError

# How a batch of each rank is described in messages (channels last).
LAYOUTS = {2: "[H, W]", 3: "[B, H, W]", 4: "[B, H, W, C]", 5: "[B, T, H, W, C]"}
UNIT_RANGE = (0.0, 1.0)


def is_traced(*arrays: Any) -> bool:
    """True when any of ``arrays`` is a JAX tracer (its values cannot be inspected)."""
    return any(isinstance(a, jax.core.Tracer) for a in arrays)


def is_concrete(*arrays: Any) -> bool:
    """True when none of ``arrays`` is a tracer."""
    return not is_traced(*arrays)


def layout_of(rank: int) -> str:
    """``"[B, H, W, C]"`` for rank 4 and so on (``"rank r"`` for others)."""
    return LAYOUTS.get(rank, f"rank {rank}")


# ---------------------------------------------------------------------------- static pieces


def check_optional_positive_int(value: Any, name: str) -> int | None:
    """``value`` as an ``int`` (``None`` stays ``None``); a bool, a fraction or a value below 1 is
    a ``ValueError`` naming ``name``."""
    if value is None:
        return None
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
    return int(value)


def check_array_like(x: Any, name: str, layout: str) -> None:
    """Refuse objects without ``shape`` and ``dtype`` (lists, scalars, None)."""
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise AdvpathError(f"{name}: expected an array {layout}, got {type(x).__name__}")


def check_shape(shape: Sequence[int], *, name: str, rank: int, layout: str | None = None,
                channels: int | None = None, channel_axis: int = -1, allow_empty: bool = False) -> None:
    """Rank, channel count and a non-empty batch of an array of shape ``shape``."""
    shape = tuple(int(s) for s in shape)
    layout = layout_of(rank) if layout is None else layout
    if len(shape) != rank:
        raise AdvpathError(f"{name}: expected rank {rank} {layout}, got shape {shape}")
    if channels is not None and shape[channel_axis] != channels:
        raise AdvpathError(f"{name}: expected {channels} channel(s) {layout}, got shape {shape}")
    if not allow_empty and shape[0] == 0:
        raise AdvpathError(f"{name}: empty batch, got shape {shape}")


def check_min_size(hw: Sequence[int], minimum: int, name: str) -> None:
    """Height and width ``hw`` of at least ``minimum`` pixels (e.g. a ResNet's 32)."""
    if min(hw) < minimum:
        raise AdvpathError(f"{name}: images must be at least {minimum}x{minimum}, got {tuple(int(v) for v in hw)}")


def check_floating(is_floating: bool, dtype: Any, name: str) -> None:
    """Refuse a non-floating dtype (``is_floating`` computed by the caller's framework)."""
    if not is_floating:
        raise AdvpathError(f"{name}: expected a floating-point dtype, got dtype {dtype}")


def check_same_shape(a: Any, b: Any, names: tuple[str, str]) -> None:
    """Two arrays of one shape (e.g. a path's start and end)."""
    if tuple(a.shape) != tuple(b.shape):
        raise AdvpathError(f"{names[0]} and {names[1]} shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")


# ---------------------------------------------------------------------------- value pieces


def check_finite_flag(all_finite: bool, name: str) -> None:
    """Raise when ``all_finite`` (computed by the caller) is False."""
    if not all_finite:
        raise AdvpathError(f"{name}: contains NaN or Inf values (all values must be finite)")


def check_range(lo: float, hi: float, value_range: tuple[float, float], name: str) -> None:
    """Raise when the observed ``[lo, hi]`` leaves ``value_range``."""
    low, high = value_range
    if lo < low or hi > high:
        raise AdvpathError(f"{name}: values must lie within [{low:g}, {high:g}], but some lie outside "
                           f"(found range [{lo:.4g}, {hi:.4g}])")


@jax.jit
def _device_stats(x: jax.Array) -> jax.Array:
    """``[all finite, min, max]`` of a device array in one program (one transfer)."""
    return jnp.stack([jnp.all(jnp.isfinite(x)).astype(jnp.float32),
                      jnp.min(x).astype(jnp.float32), jnp.max(x).astype(jnp.float32)])


def value_stats(x: Any) -> tuple[bool, float, float]:
    """``(all finite, min, max)`` of a concrete, non-empty numpy or JAX array."""
    if isinstance(x, jax.Array):
        finite, lo, hi = np.asarray(_device_stats(x))
        return bool(finite), float(lo), float(hi)
    arr = np.asarray(x)
    return bool(np.all(np.isfinite(arr))), float(np.min(arr)), float(np.max(arr))


def check_values(x: Any, *, name: str, value_range: tuple[float, float] | None = UNIT_RANGE,
                 allow_traced: bool = True) -> None:
    """NaN/inf and (unless ``value_range`` is None) the range of a numpy or JAX array.

    Skipped for a traced ``x`` when ``allow_traced``; refused otherwise. An empty array passes.
    """
    if is_traced(x):
        if not allow_traced:
            raise AdvpathError(f"{name}: needs concrete values, got a traced array (called inside jax.jit?)")
        return
    if x.size == 0:
        return
    finite, lo, hi = value_stats(x)
    check_finite_flag(finite, name)
    if value_range is not None:
        check_range(lo, hi, value_range, name)


# ---------------------------------------------------------------------------- whole checks


def as_float_array(a: Any, name: str) -> jax.Array:
    """``a`` as a floating JAX array; bool and integer arrays become float32, others are refused."""
    arr = a if is_traced(a) else jnp.asarray(a)
    if arr.dtype == jnp.bool_ or jnp.issubdtype(arr.dtype, jnp.integer):
        arr = arr.astype(jnp.float32)
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        raise AdvpathError(f"{name}: expected a real-valued array, got dtype {arr.dtype}")
    return arr


def _check_image_static(x: Any, name: str, channels: int | None, rank: int, allow_empty: bool) -> None:
    check_array_like(x, name, layout_of(rank))
    check_shape(x.shape, name=name, rank=rank, channels=channels, allow_empty=allow_empty)
    check_floating(bool(jnp.issubdtype(x.dtype, jnp.floating)), x.dtype, name)


def check_images(x: Any, *, name: str = "images", channels: int | None = None, rank: int = 4,
                 value_range: tuple[float, float] | None = UNIT_RANGE, allow_traced: bool = True,
                 allow_empty: bool = False) -> jax.Array:
    """A batch of images ``[B, H, W, C]`` (channels last) as a float32 JAX array.

    Checks, in this order: an array, rank ``rank``, ``channels`` channels (if given), a
    floating dtype, a non-empty batch (unless ``allow_empty``), then NaN/inf and values
    within ``value_range`` (None: any finite values). The value checks need concrete
    values: they are skipped for an ``x`` traced inside ``jax.jit`` when ``allow_traced``
    (the default), and a traced ``x`` is refused otherwise. ``name`` is the argument's
    name in messages.
    """
    _check_image_static(x, name, channels, rank, allow_empty)
    check_values(x, name=name, value_range=value_range, allow_traced=allow_traced)
    return x.astype(jnp.float32) if is_traced(x) else jnp.asarray(x, jnp.float32)


def check_host_images(x: Any, *, name: str = "images", channels: int | None = None, rank: int = 4,
                      value_range: tuple[float, float] | None = UNIT_RANGE,
                      allow_empty: bool = False) -> np.ndarray:
    """:func:`check_images` for host data (training sets, data sets): a float32 numpy array.

    Nothing is copied to an accelerator; ``x`` must be concrete.
    """
    if isinstance(x, jax.Array):
        x = np.asarray(x)
    _check_image_static(x, name, channels, rank, allow_empty)
    arr = np.asarray(x)
    check_values(arr, name=name, value_range=value_range, allow_traced=False)
    return arr.astype(np.float32, copy=False)


def check_image_pair(a: Any, b: Any, names: tuple[str, str] = ("x_start", "x_end"), *,
                     value_range: tuple[float, float] | None = None) -> tuple[jax.Array, jax.Array]:
    """Two image batches of one shape (a path's ends), each checked by :func:`check_images`."""
    xa = check_images(a, name=names[0], value_range=value_range)
    xb = check_images(b, name=names[1], value_range=value_range)
    check_same_shape(xa, xb, names)
    return xa, xb


def check_maps(maps: Any, *, name: str = "maps", shape: Sequence[int] | None = None) -> jax.Array:
    """Relevance maps ``[B, H, W]``: real-valued (bool/int become float32), a non-empty batch,
    finite (when concrete) and, if given, of shape ``shape``. Returns a floating JAX array."""
    maps = as_float_array(maps, name)
    check_shape(maps.shape, name=name, rank=3)
    if shape is not None and tuple(maps.shape) != tuple(shape):
        raise AdvpathError(f"{name}: expected shape {tuple(shape)}, got {tuple(maps.shape)}")
    check_values(maps, name=name, value_range=None)
    return maps


def check_masks(masks: Any, shape: Sequence[int], *, name: str = "masks") -> jax.Array:
    """Ground-truth masks of shape ``shape`` (bool, or 0/1 numbers) as a bool JAX array."""
    m = masks if is_traced(masks) else jnp.asarray(masks)
    if tuple(m.shape) != tuple(shape):
        raise AdvpathError(f"{name}: expected shape {tuple(shape)} to match the maps, got {tuple(m.shape)}")
    if m.dtype == jnp.bool_:
        return m
    if is_concrete(m) and not bool(jnp.all((m == 0) | (m == 1))):
        raise AdvpathError(f"{name}: expected a boolean mask (or 0/1 values)")
    return m != 0
