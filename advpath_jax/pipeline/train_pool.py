"""Training independent models at the same time, one process each (``advpath run --train-workers``).

On a CPU, one model's training keeps about one core busy: its programs are many small
operations that XLA runs one after the other. The models trained against the classifier
(CyCE, SyCE, SAGen, MGen, the translator) do not depend on each other, so ``advpath run``
trains up to ``workers`` of them at once, each in a fresh process (``spawn``: no JAX state
is shared). A model starts once every model it depends on
(:data:`advpath_jax.training.stage_record.DEPENDS_ON`) has finished. Each worker writes its
console output to ``WORKDIR/<model>/train.log``; the parent prints each model's epoch lines
as they appear and records the worker's own wall and CPU seconds in the run's time table.
A failed worker stops the others and is reported with the end of its log.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
import traceback
from typing import Any, Callable, Mapping, Sequence

from advpath_jax.errors import AdvpathError
from advpath_jax.io_utils import read_json, to_jsonable, write_json_atomic

LOG_NAME = "train.log"
RESULT_NAME = "worker_result.json"


def default_workers(backend: str, cores: int | None = None) -> int:
    """2 on a CPU with at least 2 cores (one model keeps about one core busy), else 1 (an
    accelerator is shared by one process at a time: each would reserve most of its memory)."""
    cores = os.cpu_count() if cores is None else cores
    return 2 if backend == "cpu" and (cores or 1) >= 2 else 1


def check_workers(workers: Any) -> int:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"train workers must be a positive integer, got {workers!r}")
    return workers


def _exit_with_parent(parent_pid: int, poll_s: float = 2.0) -> None:
    """Leave at once when the parent run is gone (killed): an orphaned worker would go on
    writing checkpoints that a re-run's worker for the same model also writes."""
    def watch():
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _worker(model: str, config: Any, workdir: str, parent_pid: int) -> None:
    """Child process: train ``model`` with its output in ``train.log``; write the result file."""
    _exit_with_parent(parent_pid)
    out_dir = os.path.join(workdir, model)
    os.makedirs(out_dir, exist_ok=True)
    log = open(os.path.join(out_dir, LOG_NAME), "a", buffering=1)
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = log
    wall0, cpu0 = time.perf_counter(), time.process_time()
    result: dict[str, Any]
    try:
        from advpath_jax.training.cli import train  # imported in the child: its own JAX runtime

        result = {"metrics": to_jsonable(dict(train(model, config, workdir) or {}))}
    except BaseException as err:  # reported by the parent with the log
        traceback.print_exc()
        result = {"error": f"{type(err).__name__}: {err}"}
    result.update(wall_s=time.perf_counter() - wall0, cpu_s=time.process_time() - cpu0)
    write_json_atomic(os.path.join(out_dir, RESULT_NAME), result)
    log.flush()


def _last_status_line(path: str, model: str) -> str | None:
    """The last ``[model] ...`` line of a worker's log (its epoch and result lines)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, os.path.getsize(path) - 65536))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return None
    lines = [ln.strip() for ln in text.replace("\r", "\n").split("\n") if ln.strip().startswith(f"[{model}]")]
    return lines[-1] if lines else None


def _log_tail(path: str, n: int = 15) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = [ln for ln in fh.read().replace("\r", "\n").split("\n") if ln.strip()]
    except OSError:
        return "(no log)"
    return "\n".join(lines[-n:])


def train_in_workers(models: Sequence[str], depends_on: Mapping[str, Sequence[str]], config: Any, workdir: str,
                     workers: int, on_done: Callable[[str, dict, float, float], None],
                     done: Sequence[str] = (), poll_s: float = 1.0,
                     on_start: Callable[[str], None] | None = None) -> None:
    """Train ``models`` (in order of preference) in up to ``workers`` child processes.

    ``depends_on[m]``: models that must finish first (those in ``done`` already have).
    ``on_start(model)`` is called in this process just before a model's worker starts.
    ``on_done(model, metrics, wall_s, cpu_s)`` is called in this process as each finishes (it may
    raise, e.g. a quality gate: the running workers are then stopped). A worker's failure is
    raised as :class:`AdvpathError` with the end of its log.
    """
    check_workers(workers)
    ctx = multiprocessing.get_context("spawn")
    pending, finished = list(models), set(done)
    running: dict[str, Any] = {}
    shown: dict[str, str | None] = {}
    try:
        while pending or running:
            for model in [m for m in pending if all(d in finished for d in depends_on.get(m, ()))]:
                if len(running) >= workers:
                    break
                result_path = os.path.join(workdir, model, RESULT_NAME)
                if os.path.exists(result_path):
                    os.remove(result_path)
                if on_start is not None:
                    on_start(model)
                proc = ctx.Process(target=_worker, args=(model, config, workdir, os.getpid()),
                                   name=f"advpath-train-{model}")
                proc.start()
                running[model] = proc
                pending.remove(model)
                print(f"[run] training {model} in a worker process (log: {os.path.join(workdir, model, LOG_NAME)})",
                      flush=True)
            if not running:
                raise AdvpathError(f"cannot train {', '.join(pending)}: what they depend on was not trained")
            time.sleep(poll_s)
            for model, proc in list(running.items()):
                log = os.path.join(workdir, model, LOG_NAME)
                line = _last_status_line(log, model)
                if line and line != shown.get(model):
                    print(line, flush=True)
                    shown[model] = line
                if proc.is_alive():
                    continue
                proc.join()
                del running[model]
                result_path = os.path.join(workdir, model, RESULT_NAME)
                result = read_json(result_path, "training worker result") if os.path.exists(result_path) else {}
                if "metrics" not in result:
                    why = result.get("error") or f"the worker exited with status {proc.exitcode} without a result"
                    raise AdvpathError(f"training of {model} failed: {why}\n--- end of {log} ---\n{_log_tail(log)}")
                os.remove(result_path)
                finished.add(model)
                on_done(model, result["metrics"], float(result["wall_s"]), float(result["cpu_s"]))
    finally:
        for proc in running.values():
            proc.terminate()
            proc.join()
