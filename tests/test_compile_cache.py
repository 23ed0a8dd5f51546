"""The disk cache of compiled programs (advpath_jax/compile_cache.py).

The hits are counted by JAX's own monitoring events in fresh processes: a program compiled
by one process is loaded, not compiled, by the next one that uses the same directory.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

from advpath_jax import cli
from advpath_jax.compile_cache import ENV_VAR, cache_dir_from_env, default_cache_dir

# Compile a small program in a process of its own and print JAX's cache events as JSON.
_CHILD = textwrap.dedent("""
    import json, sys
    import jax, jax.numpy as jnp
    from advpath_jax.compile_cache import enable_compile_cache
    events = []
    jax.monitoring.register_event_listener(lambda name, **kw: events.append(name))
    used = enable_compile_cache()
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)  # this tiny program too
    value = float(jax.jit(lambda x: jnp.tanh(x @ x.T).sum() * 3.0)(jnp.ones((8, 8))))
    print(json.dumps({"dir": None if used is None else str(used), "value": value,
                      "hits": events.count("/jax/compilation_cache/cache_hits"),
                      "misses": events.count("/jax/compilation_cache/cache_misses")}))
""")


def _child(env_value: str | None, xdg_cache: pathlib.Path) -> dict:
    """Run :data:`_CHILD` with ``$ADVPATH_COMPILE_CACHE`` = ``env_value`` (``None``: unset)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_") and k != ENV_VAR}
    if env_value is not None:
        env[ENV_VAR] = env_value
    env["XDG_CACHE_HOME"] = str(xdg_cache)  # where the default cache would go
    out = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_second_process_loads_the_program_the_first_compiled(tmp_path):
    cache = tmp_path / "xla"
    first = _child(str(cache), tmp_path / "xdg")
    assert first["dir"] == str(cache)
    assert first["hits"] == 0 and first["misses"] >= 1
    assert any(p.name.endswith("-cache") for p in cache.iterdir())
    second = _child(str(cache), tmp_path / "xdg")
    assert second["hits"] >= 1 and second["misses"] == 0
    assert second["value"] == first["value"]


def test_off_compiles_and_writes_nothing(tmp_path):
    result = _child("off", tmp_path)
    assert result["dir"] is None and result["hits"] == 0
    assert not (tmp_path / "advpath_jax").exists()


def test_by_default_the_cache_is_under_the_user_cache_directory(tmp_path):
    result = _child(None, tmp_path)
    assert result["dir"] == str(tmp_path / "advpath_jax" / "xla")
    assert any(p.name.endswith("-cache") for p in (tmp_path / "advpath_jax" / "xla").iterdir())


@pytest.mark.parametrize("value", ["off", "OFF", "0", "none", " "])
def test_off_values(value):
    assert cache_dir_from_env({ENV_VAR: value}) is None


def test_where_the_cache_goes(tmp_path):
    assert cache_dir_from_env({ENV_VAR: str(tmp_path)}) == tmp_path
    assert cache_dir_from_env({"JAX_COMPILATION_CACHE_DIR": "/elsewhere"}) == pathlib.Path("/elsewhere")
    assert cache_dir_from_env({}) == default_cache_dir()
    assert default_cache_dir().parts[-2:] == ("advpath_jax", "xla")


@pytest.mark.parametrize("argv, enabled", [
    (["explain", "--no-such-flag"], True),      # the cache is set before the command parses
    (["train", "--no-such-flag"], True),
    (["bench", "torch", "--help"], False),      # benchmarks report compile times
    (["view", "--no-such-flag"], False),
    (["run", "--help"], False),                 # help compiles nothing
])
def test_which_commands_use_the_cache(monkeypatch, argv, enabled):
    calls = []
    monkeypatch.setattr(cli, "enable_compile_cache", lambda: calls.append(1))
    cli.main(argv)
    assert bool(calls) == enabled
