"""Small helpers shared by the benchmarks: list parsing, tables, timing (JSON: advpath_jax.io_utils)."""

from __future__ import annotations

import os
import platform
import time
from typing import Callable, Sequence

import jax

from advpath_jax.models.conv import conv_impl


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


#: the CPU flags that decide XLA's and oneDNN's fp32 kernels
CPU_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16", "amx_bf16", "amx_tile")
LOAD_WARNING = 0.5


def cpu_description() -> dict:
    """``{"cpu_model", "cpu_flags"}`` from ``/proc/cpuinfo`` (the flags of :data:`CPU_FLAGS` present)."""
    model, flags = None, set()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model is None:
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return {"cpu_model": model or platform.processor() or "unknown CPU",
            "cpu_flags": [f for f in CPU_FLAGS if f in flags]}


def load_average() -> float:
    """The 1-minute load average (``os.getloadavg``; NaN where the OS has none)."""
    try:
        return float(os.getloadavg()[0])
    except (OSError, AttributeError):
        return float("nan")


def load_warning(load: float, cores: int | None = None) -> str | None:
    """A warning when the machine is not idle (1-minute load above :data:`LOAD_WARNING`)."""
    if load > LOAD_WARNING:
        return (f"warning: load average {load:.2f} > {LOAD_WARNING} on {cores or os.cpu_count()} cores: "
                f"other processes are running; speed ratios measured now are not valid "
                f"(contention slows PyTorch's threads more than XLA's)")
    return None


#: other processes' share of the machine (core-seconds ÷ wall × cores) above which ratios are not valid
OTHER_CPU_WARNING = 0.05


def cpu_snapshot() -> tuple[float, float, float] | None:
    """``(wall s, machine busy core-s, this process + waited-for children core-s)``, or None.

    Busy is ``/proc/stat``'s user + nice + system + irq + softirq (Linux only); a difference of
    two snapshots minus this process's own CPU time is the work of other processes in between.
    """
    try:
        with open("/proc/stat") as fh:
            fields = fh.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in fields[1:8])
    busy = (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")
    t = os.times()
    own = t.user + t.system + t.children_user + t.children_system
    return time.monotonic(), busy, own


def other_cpu_share(start: tuple[float, float, float] | None, end: tuple[float, float, float] | None,
                    cores: int | None = None) -> float | None:
    """Share of the machine other processes used between two :func:`cpu_snapshot` readings (0 = idle)."""
    if start is None or end is None or end[0] <= start[0]:
        return None
    other = max(0.0, (end[1] - start[1]) - (end[2] - start[2]))
    return other / ((end[0] - start[0]) * (cores or os.cpu_count() or 1))


def other_cpu_warning(share: float | None) -> str | None:
    """A warning when other processes used more than :data:`OTHER_CPU_WARNING` of the machine."""
    if share is not None and share > OTHER_CPU_WARNING:
        return (f"warning: other processes used {100 * share:.0f}% of the machine during the benchmark "
                f"(> {100 * OTHER_CPU_WARNING:.0f}%); speed ratios measured under contention are not valid")
    return None


def matmul_peak_gflops(size: int = 2048, repeats: int = 5) -> float:
    """The machine's measured fp32 rate: best of ``repeats`` jitted ``[size,size] @ [size,size]``."""
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (size, size), jnp.float32)
    mm = jax.jit(lambda u, v: jnp.dot(u, v, precision="highest"))
    jax.block_until_ready(mm(a, b))
    best = float("inf")
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        jax.block_until_ready(mm(a, b))
        best = min(best, time.perf_counter() - start)
    return 2.0 * size ** 3 / best / 1e9


def compiled_flops(compiled) -> float:
    """FLOPs of a compiled XLA program from its cost analysis (NaN when unavailable)."""
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost.get("flops", float("nan"))) if cost else float("nan")


def machine_description() -> dict:
    devices = jax.devices()
    return {
        "platform": devices[0].platform, "device_kind": devices[0].device_kind,
        "device_count": len(devices), "cpu_count": os.cpu_count(),
        "python": platform.python_version(), "jax": jax.__version__, "machine": platform.machine(),
        # the ResNet's convolution (advpath_jax.models.conv) and any XLA flags of this run
        "resnet_conv": conv_impl(), "xla_flags": os.environ.get("XLA_FLAGS", ""),
        **cpu_description(),
    }


def markdown_table(rows: Sequence[dict], columns: Sequence[str]) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)
