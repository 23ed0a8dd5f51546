"""Multi-process (multi-host) start-up with ``jax.distributed.initialize``.

The coordinator comes from arguments or, when they are absent, from the environment:
``ADVPATH_COORDINATOR`` (``host:port``), ``ADVPATH_NUM_PROCESSES``, ``ADVPATH_PROCESS_ID``.
Each process then attributes its own shards of a split
(:func:`advpath_jax.pipeline.attribute.my_shards`) on its local devices; the shards land in
one shared directory.
"""

from __future__ import annotations

import os

import jax

ENV_COORDINATOR = "ADVPATH_COORDINATOR"
ENV_NUM_PROCESSES = "ADVPATH_NUM_PROCESSES"
ENV_PROCESS_ID = "ADVPATH_PROCESS_ID"


def distributed_settings(coordinator: str | None = None, num_processes: int | None = None,
                         process_id: int | None = None) -> dict | None:
    """The settings to start with, or None for a single process."""
    coordinator = coordinator or os.environ.get(ENV_COORDINATOR)
    if num_processes is None and os.environ.get(ENV_NUM_PROCESSES):
        num_processes = int(os.environ[ENV_NUM_PROCESSES])
    if process_id is None and os.environ.get(ENV_PROCESS_ID):
        process_id = int(os.environ[ENV_PROCESS_ID])
    if coordinator is None and num_processes in (None, 1):
        return None
    missing = [n for n, v in (("coordinator", coordinator), ("num_processes", num_processes),
                              ("process_id", process_id)) if v is None]
    if missing:
        raise ValueError(f"multi-process start needs {', '.join(missing)} (flags or "
                         f"{ENV_COORDINATOR}/{ENV_NUM_PROCESSES}/{ENV_PROCESS_ID})")
    if not 0 <= process_id < num_processes:
        raise ValueError(f"process_id {process_id} outside [0, {num_processes})")
    return {"coordinator_address": coordinator, "num_processes": int(num_processes),
            "process_id": int(process_id)}


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> bool:
    """Start ``jax.distributed`` when settings are given; returns whether it did."""
    settings = distributed_settings(coordinator, num_processes, process_id)
    if settings is None:
        return False
    jax.distributed.initialize(**settings)
    return True
