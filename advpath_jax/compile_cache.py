"""A disk cache of XLA's compiled programs, shared by the ``advpath`` commands and their workers.

Compiling dominates short commands on a CPU: ``advpath explain`` of one image compiles the
classifier and a generator before it computes a single map, and a re-run of ``advpath run``
with other evaluation settings compiles every attribution program again. JAX can keep
compiled programs on disk (its persistent compilation cache, keyed by the program, the
compiler flags and the devices); :func:`enable_compile_cache` switches it on for this
process and, through the environment, for the processes it starts (training workers).

Where: ``$ADVPATH_COMPILE_CACHE`` if set (``off``, ``0`` or ``none`` switch the cache off),
else ``$XDG_CACHE_HOME/advpath_jax/xla`` (``~/.cache/advpath_jax/xla``). A directory the user
already gave JAX (``JAX_COMPILATION_CACHE_DIR``) is kept. The cache holds at most
:data:`MAX_BYTES` (least recently used entries go first, under a file lock, so concurrent
processes share it safely). Benchmarks do not use it: they report compile times.
"""

from __future__ import annotations

import os
import pathlib

ENV_VAR = "ADVPATH_COMPILE_CACHE"
OFF_VALUES = ("off", "0", "none", "false", "no")
MAX_BYTES = 2 * 1024 ** 3
MIN_COMPILE_SECONDS = 1.0  # programs that compile faster are not worth a disk read


def default_cache_dir() -> pathlib.Path:
    """``$XDG_CACHE_HOME/advpath_jax/xla``, or ``~/.cache/advpath_jax/xla``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "advpath_jax" / "xla"


def cache_dir_from_env(environ: dict[str, str] | None = None) -> pathlib.Path | None:
    """The directory :func:`enable_compile_cache` would use, or ``None`` when switched off."""
    env = os.environ if environ is None else environ
    value = env.get(ENV_VAR)
    if value is None:
        existing = env.get("JAX_COMPILATION_CACHE_DIR")
        return pathlib.Path(existing) if existing else default_cache_dir()
    if value.strip().lower() in OFF_VALUES or not value.strip():
        return None
    return pathlib.Path(value).expanduser()


def enable_compile_cache(path: str | os.PathLike | None = None) -> pathlib.Path | None:
    """Keep compiled programs in ``path`` (default: :func:`cache_dir_from_env`); the directory
    used, or ``None`` when the cache is off. Call it before the first compilation.

    The settings are also exported to the environment, so processes started afterwards
    (``spawn`` workers, subprocesses) use the same cache.
    """
    import jax  # lazily: ``advpath --help`` loads no JAX

    target = pathlib.Path(path) if path is not None else cache_dir_from_env()
    if target is None:
        return None
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        print(f"[advpath] compile cache off: cannot create {target} ({err.strerror})", flush=True)
        return None
    settings = {
        "jax_compilation_cache_dir": str(target),
        "jax_compilation_cache_max_size": MAX_BYTES,
        "jax_persistent_cache_min_compile_time_secs": MIN_COMPILE_SECONDS,
    }
    for name, value in settings.items():
        jax.config.update(name, value)
        os.environ[name.upper()] = str(value)
    return target
