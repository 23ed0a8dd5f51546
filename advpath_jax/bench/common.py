"""Small helpers shared by the benchmarks: list parsing, tables, JSON, timing."""

from __future__ import annotations

import os
import platform
import time
from typing import Callable, Sequence

import jax

from advpath_jax.io_utils import write_json_atomic  # noqa: F401  (re-exported for the benchmarks)


def int_list(text: str) -> list[int]:
    """``"10,50,200"`` -> ``[10, 50, 200]``."""
    try:
        values = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError as err:
        raise ValueError(f"expected a comma-separated list of integers, got {text!r}") from err
    if not values or any(v < 1 for v in values):
        raise ValueError(f"expected positive integers, got {text!r}")
    return values


def str_list(text: str) -> list[str]:
    return [v.strip() for v in str(text).split(",") if v.strip()]


def time_call(fn: Callable[[], object], repeats: int) -> float:
    """Median seconds of ``repeats`` calls of ``fn`` (results blocked on)."""
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def machine_description() -> dict:
    devices = jax.devices()
    return {
        "platform": devices[0].platform, "device_kind": devices[0].device_kind,
        "device_count": len(devices), "cpu_count": os.cpu_count(),
        "python": platform.python_version(), "jax": jax.__version__, "machine": platform.machine(),
    }


def markdown_table(rows: Sequence[dict], columns: Sequence[str]) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)
