"""Two local CPU processes started with jax.distributed attribute disjoint shards whose union
equals a single-process run, map for map."""

import os
import socket
import subprocess
import sys
import textwrap

import numpy as np

from advpath_jax.pipeline import attribute

SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import jax
    from advpath_jax import distributed
    distributed.initialize()            # from ADVPATH_* environment variables (or single process)
    import advpath_jax as ap
    from advpath_jax.data import synth_brain
    from advpath_jax.explain.registry import Explainers
    from advpath_jax.models import make_resnet
    from advpath_jax.pipeline.attribute import attribute_split
    out = sys.argv[1]
    model = make_resnet(18, width=0.125, seed=5)
    ex = Explainers(f=ap.score_fn(model), classifier=model, steps=2)
    images = synth_brain(10, image_size=32, seed=3)["image"]
    stats = attribute_split(ex.explain, images, ["Gradient", "IG", "Random"], out,
                            shard_size=3, seed=7)
    print("PROCESS", jax.process_index(), jax.process_count(), stats["maps_computed"])
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADVPATH_")}
    env.pop("XLA_FLAGS", None)
    env.update(JAX_PLATFORMS="cpu", **extra)
    return env


def test_two_processes_union_equals_single_process(tmp_path):
    single, multi = tmp_path / "single", tmp_path / "multi"
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(single)], env=_env(), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    port = _free_port()
    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT, str(multi)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              env=_env(ADVPATH_COORDINATOR=f"localhost:{port}", ADVPATH_NUM_PROCESSES="2",
                                       ADVPATH_PROCESS_ID=str(i)))
             for i in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    computed = sorted(int(o.split()[-1]) for o, _ in outs)
    assert "PROCESS 0 2" in outs[0][0] and "PROCESS 1 2" in outs[1][0]
    # 4 shards of 10 images, at most 3 each (3, 3, 2, 2): process 0 owns shards 0, 2 (5 images),
    # process 1 shards 1, 3 (5 images)
    assert computed == [5 * 3, 5 * 3]
    for name in ["Gradient", "IG", "Random"]:
        for shard in range(4):
            a = np.load(attribute.shard_path(str(single), name, shard))
            b = np.load(attribute.shard_path(str(multi), name, shard))
            np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-9, err_msg=f"{name} shard {shard}")


def test_settings_from_environment_and_errors(monkeypatch):
    import pytest

    from advpath_jax import distributed

    for key in (distributed.ENV_COORDINATOR, distributed.ENV_NUM_PROCESSES, distributed.ENV_PROCESS_ID):
        monkeypatch.delenv(key, raising=False)
    assert distributed.distributed_settings() is None
    monkeypatch.setenv(distributed.ENV_COORDINATOR, "host:1234")
    monkeypatch.setenv(distributed.ENV_NUM_PROCESSES, "4")
    monkeypatch.setenv(distributed.ENV_PROCESS_ID, "3")
    assert distributed.distributed_settings() == {"coordinator_address": "host:1234", "num_processes": 4,
                                                  "process_id": 3}
    with pytest.raises(ValueError, match="outside"):
        distributed.distributed_settings(process_id=4)
    monkeypatch.delenv(distributed.ENV_PROCESS_ID)
    with pytest.raises(ValueError, match="process_id"):
        distributed.distributed_settings()
