"""The trainers' batch sampler: which training images each step of an epoch sees.

Every order derives from ``(seed, epoch)`` alone (:func:`epoch_rng`), so a resumed run
sees the same batches as an uninterrupted one and every process computes the same
global batches. Two ways to draw an epoch:

* :func:`shuffled_batches`: a permutation of ``range(n)`` cut into ``steps`` batches of
  ``batch_size`` (each index at most once per epoch; the remainder is left out).
  Used by the classifier and MGen.
* :func:`balanced_batches`: class-balanced pairs ``(idx0, idx1)`` of ``per_class``
  indices each, one permutation per class from the same generator (class 0 first). A
  class with fewer than ``steps * per_class`` members is cycled (its permutation
  repeated), so every member of it appears in the epoch; a larger one is cut (a fresh
  subset every epoch). Used by the generators (x0/x1 halves) and the translator.

Indices are yielded; the trainers index their own arrays with them.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

# Mixed into every epoch's seed: the trainers' data order is its own stream, apart from
# other generators seeded by the same config seed.
_STREAM = 7919


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    """The numpy generator of the data order of ``epoch`` (a function of ``(seed, epoch)`` only)."""
    return np.random.default_rng([int(seed), int(epoch), _STREAM])


def epoch_steps(n: int, batch_size: int, cap: int | None = None) -> int:
    """Full batches of ``batch_size`` in ``n`` items (``n // batch_size``), at most ``cap`` when it is set."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    steps = int(n) // int(batch_size)
    return min(steps, int(cap)) if cap else steps


def shuffled_batches(n: int, batch_size: int, steps: int, *, seed: int, epoch: int,
                     sort: bool = False) -> Iterator[np.ndarray]:
    """``steps`` batches ``int64 [batch_size]`` of one permutation of ``range(n)``.

    ``sort``: each batch's indices in increasing order (reads from memory-mapped arrays
    stay sequential); the batch's members are the same.
    """
    if steps * batch_size > n:
        raise ValueError(f"{steps} batches of {batch_size} need {steps * batch_size} items, only {n} given")
    order = epoch_rng(seed, epoch).permutation(int(n))
    for i in range(steps):
        idx = order[i * batch_size:(i + 1) * batch_size]
        yield np.sort(idx) if sort else idx


def balanced_batches(members0: np.ndarray, members1: np.ndarray, per_class: int, steps: int, *,
                     seed: int, epoch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``steps`` pairs ``(idx0 [per_class], idx1 [per_class])`` drawn from the two classes' members.

    ``members0`` / ``members1``: the indices ``[n_c]`` of each class's items (e.g.
    ``np.flatnonzero(pred == 0)``); both must be non-empty.
    """
    members0, members1 = np.asarray(members0), np.asarray(members1)
    if len(members0) == 0 or len(members1) == 0:
        raise ValueError(f"balanced batches need both classes, got {len(members0)} and {len(members1)} members")
    rng = epoch_rng(seed, epoch)
    need = steps * per_class
    order0 = np.resize(rng.permutation(members0), need)  # np.resize repeats: the smaller class cycles
    order1 = np.resize(rng.permutation(members1), need)
    for i in range(steps):
        part = slice(i * per_class, (i + 1) * per_class)
        yield order0[part], order1[part]
