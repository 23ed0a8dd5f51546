"""Data parallelism with ``jax.sharding``: one 'data' mesh axis over the local devices.

Arrays whose leading axis is the batch are placed with ``NamedSharding(mesh, P('data'))``;
parameters are replicated. ``jax.jit`` then runs the same program on every device
(computation follows data). A batch not divisible by the device count is padded with
copies of its last element and the padding is cut off the result.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def data_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh over ``devices`` (default: all local devices) with axis ``'data'``."""
    devices = list(jax.local_devices() if devices is None else devices)
    return Mesh(np.array(devices), (DATA_AXIS,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Sharding of arrays whose leading axis is the batch."""
    return NamedSharding(mesh, P(DATA_AXIS))


def replicated_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def shard_batch(tree: Any, mesh: Mesh) -> Any:
    """Place every array of ``tree`` with its leading axis split over the 'data' axis."""
    sharding = batch_sharding(mesh)
    return jax.tree.map(lambda a: jax.device_put(a, sharding), tree)


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Place every array of ``tree`` whole on every device of ``mesh``."""
    sharding = replicated_sharding(mesh)
    return jax.tree.map(lambda a: jax.device_put(a, sharding), tree)


def balanced_bounds(n_items: int, max_size: int) -> list[tuple[int, int]]:
    """``[(first, end), ...]`` of ``ceil(n_items / max_size)`` consecutive batches whose sizes
    differ by at most one (the longer ones first), none above ``max_size``.

    Padded to the longest (:func:`pad_batch`), every batch runs one compiled program: 126 items
    with ``max_size`` 100 are 63 + 63, the shape the attribution shards already compiled for,
    not 100 + 26 (a second program).
    """
    if max_size < 1:
        raise ValueError(f"batch size must be >= 1, got {max_size}")
    total = -(-int(n_items) // int(max_size))
    if total == 0:
        return []
    small, extra = divmod(int(n_items), total)
    sizes = [small + 1] * extra + [small] * (total - extra)
    ends = np.cumsum(sizes).tolist()
    return [(end - size, end) for end, size in zip(ends, sizes)]


def padded_batches(items: np.ndarray, max_size: int) -> Iterator[tuple[int, int, np.ndarray]]:
    """``(first, end, batch)`` over :func:`balanced_bounds` of ``items [N, ...]``, each ``batch``
    padded to the longest (:func:`pad_batch`): one shape, so one compiled program for all; the
    caller keeps the first ``end - first`` rows of each result."""
    bounds = balanced_bounds(len(items), max_size)
    width = bounds[0][1] - bounds[0][0] if bounds else 0  # the longest batch comes first
    for lo, hi in bounds:
        yield lo, hi, pad_batch(items[lo:hi], width)[0]


def pad_batch(x: jax.Array | np.ndarray, multiple: int) -> tuple[jax.Array, int]:
    """Pad the leading axis up to a multiple of ``multiple`` by repeating the last element.

    Returns ``(padded, n)`` where ``n`` is the original batch size.
    """
    n = x.shape[0]
    extra = (-n) % multiple
    if extra == 0:
        return x, n
    xp = jnp if isinstance(x, jax.Array) else np
    tail = xp.repeat(x[-1:], extra, axis=0)
    return xp.concatenate([x, tail], axis=0), n


def pad_and_shard(batch: Any, mesh: Mesh | None = None, *, replicated: Any = None,
                  dtype: Any = None) -> tuple[Any, Any, int, Mesh]:
    """The set-up of a data-parallel ``jax.jit`` call, in one place.

    Every leaf of ``batch`` (a pytree of arrays with a common leading batch axis ``[B, ...]``)
    is converted to a JAX array (of ``dtype`` if given), padded along axis 0 to a multiple of
    the mesh's device count (:func:`pad_batch`) and, on more than one device, split over the
    'data' axis; ``replicated`` (e.g. a model or a ``Partial`` with its parameters) is then
    placed whole on every device. ``mesh`` defaults to :func:`data_mesh`.

    Returns ``(batch, replicated, n, mesh)``; ``n`` is the original batch size: keep
    ``result[:n]`` of the program's output.
    """
    mesh = data_mesh() if mesh is None else mesh
    n_dev = mesh.devices.size
    leaves = jax.tree.leaves(batch)
    if not leaves:
        raise ValueError("pad_and_shard: the batch has no arrays")
    n = int(leaves[0].shape[0])
    padded = jax.tree.map(lambda a: pad_batch(jnp.asarray(a, dtype), n_dev)[0], batch)
    if n_dev > 1:
        padded = shard_batch(padded, mesh)
        if replicated is not None:
            replicated = replicate(replicated, mesh)
    return padded, replicated, n, mesh

