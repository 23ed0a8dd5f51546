"""The input pipeline: shuffled, batched, deterministic by seed, sharded over 'data'.

The order of epoch ``e`` is a permutation drawn from ``(seed, e)`` alone, so every
process computes the same global batches. With several processes
(``jax.process_count() > 1``) each one reads only its contiguous share of every global
batch and the shares are assembled into one global ``jax.Array`` sharded over the
mesh's 'data' axis (``jax.make_array_from_process_local_data``); with one process the
whole batch is placed with ``NamedSharding(mesh, P('data'))``.
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Mapping

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from advpath_jax.data.datasets import ArraySource

DATA_AXIS = "data"
DEVICE_KEYS = ("image", "label", "mask", "valid", "index")


def as_source(data: Any):
    """A random-access source (``len`` + ``read_batch(indices)``) from arrays or a source."""
    if isinstance(data, Mapping):
        return ArraySource(data)
    if hasattr(data, "read_batch") and hasattr(data, "__len__"):
        return data
    raise ValueError(f"expected a dict of arrays or a source with read_batch(), got {type(data).__name__}")


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
    """Example order of one epoch: a permutation drawn from (seed, epoch). [n] int64."""
    if not shuffle:
        return np.arange(n)
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch)])).permutation(n)


def batches_per_epoch(n: int, batch_size: int, drop_remainder: bool = True) -> int:
    return n // batch_size if drop_remainder else math.ceil(n / batch_size)


def _place(batch: dict[str, np.ndarray], mesh: Mesh | None, process_count: int, global_batch: int) -> dict:
    out: dict[str, Any] = {}
    sharding = NamedSharding(mesh, P(DATA_AXIS)) if mesh is not None else None
    for key, value in batch.items():
        if key not in DEVICE_KEYS:
            out[key] = value  # strings (ids) stay on the host, process-local
        elif sharding is None:
            out[key] = jax.device_put(value)
        elif process_count == 1:
            out[key] = jax.device_put(value, sharding)
        else:
            out[key] = jax.make_array_from_process_local_data(
                sharding, value, (global_batch,) + value.shape[1:])
    return out


def batch_iterator(data: Any, batch_size: int, *, seed: int, shuffle: bool = True,
                   drop_remainder: bool = True, mesh: Mesh | None = None, epochs: int | None = None,
                   process_index: int | None = None, process_count: int | None = None
                   ) -> Iterator[dict[str, Any]]:
    """Yield batches of ``data`` (a :func:`load_split` dict or a source from :func:`get_source`).

    Each batch holds ``image`` [B,H,W,1] float32, ``label`` [B] int32, ``mask`` [B,H,W]
    bool, ``valid`` [B] bool and ``index`` [B] int32 (position in ``data``) as jax arrays
    (sharded over the mesh's 'data' axis when ``mesh`` is given; B is the global batch),
    plus ``id`` [B / processes] str as numpy (this process's rows only).

    Args:
      batch_size: global batch size B; divisible by the process count and by the size of
        the mesh's 'data' axis.
      seed: fixes the order of every epoch.
      shuffle: False keeps the stored order.
      drop_remainder: True drops the last partial batch; False pads it to B by repeating
        its first example, with ``valid`` False on the padding rows (static shapes for jit).
      epochs: number of passes; None loops forever.
      process_index, process_count: override ``jax.process_index()/process_count()`` (tests).
    """
    source = as_source(data)
    n = len(source)
    pc = jax.process_count() if process_count is None else int(process_count)
    pi = jax.process_index() if process_index is None else int(process_index)
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not 0 <= pi < pc:
        raise ValueError(f"process_index {pi} outside [0, {pc})")
    if batch_size % pc:
        raise ValueError(f"batch_size {batch_size} is not divisible by the process count {pc}")
    if mesh is not None:
        if DATA_AXIS not in mesh.axis_names:
            raise ValueError(f"mesh has no '{DATA_AXIS}' axis (axes: {mesh.axis_names})")
        if batch_size % mesh.shape[DATA_AXIS]:
            raise ValueError(f"batch_size {batch_size} is not divisible by the 'data' axis size "
                             f"{mesh.shape[DATA_AXIS]}")
    if n == 0:
        raise ValueError("cannot batch an empty data set")
    if drop_remainder and n < batch_size:
        raise ValueError(f"only {n} examples for batch_size {batch_size} with drop_remainder=True")
    if epochs is not None and epochs < 0:
        raise ValueError(f"epochs must be >= 0 or None, got {epochs}")
    local = batch_size // pc
    nb = batches_per_epoch(n, batch_size, drop_remainder)
    epoch = 0
    while epochs is None or epoch < epochs:
        order = epoch_order(n, seed, epoch, shuffle)
        for b in range(nb):
            idx = order[b * batch_size:(b + 1) * batch_size]
            valid = np.ones(batch_size, bool)
            if len(idx) < batch_size:
                valid[len(idx):] = False
                idx = np.concatenate([idx, np.full(batch_size - len(idx), idx[0])])
            mine = slice(pi * local, (pi + 1) * local)
            batch = dict(source.read_batch(idx[mine]))
            batch["valid"] = valid[mine]
            batch["index"] = idx[mine].astype(np.int32)
            yield _place(batch, mesh, pc, batch_size)
        epoch += 1
