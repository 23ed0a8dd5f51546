"""Wall and CPU time per stage of ``advpath run``, accumulated over resumed runs.

A :class:`RunClock` times each stage of one process (each model's training, attribution,
metrics, report) in wall seconds (``time.perf_counter``) and process CPU seconds
(``time.process_time``: all threads), with an item count (maps computed). It writes the
process's running totals to ``WORKDIR/timings/<process>.json`` at every stage boundary and
every ``interval_s`` seconds from a background thread, so a process killed even with
SIGKILL keeps all but its last few seconds. Each process writes only its own file (no
races between the processes of a multi-process run); :func:`load_timings` sums them, so a
run resumed after an interruption reports the time of every process that worked in the
directory.

CPU utilisation = CPU seconds ÷ wall seconds ÷ cores (1.0: every core busy all the time).
Models trained in worker processes (:mod:`advpath_jax.pipeline.train_pool`) are entered with
the worker's own wall and CPU seconds (:meth:`RunClock.record`); their stages overlap in wall
time, so the stage rows can sum to more than the total.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Callable, Iterator, Mapping

from advpath_jax.io_utils import read_json, write_json_atomic

TIMINGS_DIR = "timings"
#: the whole-process entry (start of ``run`` to its end)
RUN_STAGE = "run"


def _zero() -> dict:
    return {"wall_s": 0.0, "cpu_s": 0.0, "items": 0}


class RunClock:
    """Per-stage wall/CPU time of this process, saved to ``WORKDIR/timings/<id>.json``."""

    def __init__(self, workdir: str, interval_s: float = 10.0):
        self.path = os.path.join(workdir, TIMINGS_DIR,
                                 f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{os.getpid()}.json")
        self._wall0, self._cpu0 = time.perf_counter(), time.process_time()
        self._stages: dict[str, dict] = {}
        self._current: tuple[str, float, float] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._interval = float(interval_s)
        self._thread: threading.Thread | None = None
        self._child_cpu = 0.0  # CPU seconds of worker processes (record)

    def start(self) -> "RunClock":
        """Start the background saver (call once the work directory exists)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._save_periodically, daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop the saver and save the final totals."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self.save()

    def _save_periodically(self) -> None:
        while not self._stop.wait(self._interval):
            self.save()

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the ``with`` body as stage ``name`` (added to earlier time of the same name)."""
        with self._lock:
            self._current = (name, time.perf_counter(), time.process_time())
        try:
            yield
        finally:
            with self._lock:
                _, wall0, cpu0 = self._current
                entry = self._stages.setdefault(name, _zero())
                entry["wall_s"] += time.perf_counter() - wall0
                entry["cpu_s"] += time.process_time() - cpu0
                self._current = None
            if self._thread is not None:
                self.save()

    def record(self, name: str, wall_s: float, cpu_s: float) -> None:
        """Add a stage timed elsewhere (a worker process's own wall and CPU seconds). Its CPU
        seconds also count in this process's total (the ``run`` entry); its wall seconds do not
        (they overlap this process's)."""
        with self._lock:
            entry = self._stages.setdefault(name, _zero())
            entry["wall_s"] += float(wall_s)
            entry["cpu_s"] += float(cpu_s)
            self._child_cpu += float(cpu_s)
        if self._thread is not None:
            self.save()

    def add_items(self, name: str, count: int) -> None:
        with self._lock:
            self._stages.setdefault(name, _zero())["items"] += int(count)

    def counting(self, fn: Callable, name: str) -> Callable:
        """``explain(x, names, key)`` that also counts ``len(x) · len(names)`` maps for ``name``."""
        def counted(x, names, key):
            out = fn(x, names, key)
            self.add_items(name, len(x) * len(names))
            return out
        return counted

    def snapshot(self) -> dict:
        """This process's totals so far, the running stage and the whole process included."""
        with self._lock:
            stages = {k: dict(v) for k, v in self._stages.items()}
            now_wall, now_cpu = time.perf_counter(), time.process_time()
            if self._current is not None:
                name, wall0, cpu0 = self._current
                entry = stages.setdefault(name, _zero())
                entry["wall_s"] += now_wall - wall0
                entry["cpu_s"] += now_cpu - cpu0
            stages[RUN_STAGE] = {"wall_s": now_wall - self._wall0,
                                 "cpu_s": now_cpu - self._cpu0 + self._child_cpu, "items": 0}
        return stages

    def save(self) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        write_json_atomic(self.path, {"stages": self.snapshot(), "pid": os.getpid()})


def load_timings(workdir: str, exclude: str | None = None) -> dict:
    """``{stage: {"wall_s", "cpu_s", "items", "processes"}}`` summed over the saved processes.

    ``exclude``: a process file to leave out (the running process, added by the caller)."""
    folder = os.path.join(workdir, TIMINGS_DIR)
    names = sorted(n for n in os.listdir(folder) if n.endswith(".json")) if os.path.isdir(folder) else []
    total: dict[str, dict] = {}
    for name in names:
        path = os.path.join(folder, name)
        if exclude and os.path.abspath(path) == os.path.abspath(exclude):
            continue
        try:
            stages = read_json(path, "timings file")["stages"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{path}: not a readable timings file ({err}); delete it to leave "
                             f"that process out of the time table") from None
        add_stages(total, stages)
    return total


def add_stages(total: dict, stages: Mapping[str, Mapping]) -> dict:
    """Add one process's stages into ``total`` (in place), counting processes per stage."""
    for stage, entry in stages.items():
        acc = total.setdefault(stage, {**_zero(), "processes": 0})
        acc["wall_s"] += float(entry["wall_s"])
        acc["cpu_s"] += float(entry["cpu_s"])
        acc["items"] += int(entry.get("items", 0))
        acc["processes"] += 1
    return total


def _row(stage: str, entry: Mapping, cores: int) -> dict:
    wall, cpu, items = float(entry["wall_s"]), float(entry["cpu_s"]), int(entry.get("items", 0))
    return {"stage": stage, "wall_s": wall, "cpu_s": cpu,
            "cpu_utilisation": cpu / wall / cores if wall > 0 else None,
            "items": items, "items_per_s": items / wall if items and wall > 0 else None,
            "processes": int(entry.get("processes", 1))}


def time_table(stages: Mapping[str, Mapping], cores: int | None = None) -> dict:
    """Rows per stage and the total (the ``run`` entry) from :func:`load_timings`' stages.

    Returns ``{"rows": [...], "total": row, "cores": cores}``."""
    cores = int(cores or os.cpu_count() or 1)
    rows = [_row(name, entry, cores) for name, entry in stages.items() if name != RUN_STAGE]
    run_entry = stages.get(RUN_STAGE) or {**_zero(), "processes": 0}
    total = _row("total (every process, start to end)", run_entry, cores)
    total["items"], total["items_per_s"] = 0, None
    return {"rows": rows, "total": total, "cores": cores}


def current_time_table(workdir: str, clock: RunClock) -> dict:
    """The time table of the earlier processes' files plus this process's totals so far."""
    stages = load_timings(workdir, exclude=clock.path)
    return time_table(add_stages(stages, clock.snapshot()))


def _fmt(value, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def time_table_md(table: Mapping) -> list[str]:
    """The "Time" section of report.md."""
    lines = ["## Time", "",
             f"Wall and process CPU seconds per stage, summed over every process that worked in this "
             f"work directory (`{TIMINGS_DIR}/`); CPU utilisation = CPU ÷ wall ÷ {table['cores']} cores.",
             "", "| stage | wall s | CPU s | CPU utilisation | items | items/s | processes |",
             "|---|---|---|---|---|---|---|"]
    for row in [*table["rows"], table["total"]]:
        lines.append(f"| {row['stage']} | {row['wall_s']:.1f} | {row['cpu_s']:.1f} | "
                     f"{_fmt(row['cpu_utilisation'], 2)} | {row['items'] or '–'} | "
                     f"{_fmt(row['items_per_s'], 2)} | {row['processes']} |")
    return lines
