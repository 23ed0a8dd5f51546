"""The pad-and-shard helper: padding by the last element, the original size, the placement."""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advpath_jax.parallel import data_mesh, pad_and_shard, padded_batches


def test_one_device_pads_nothing_and_converts():
    x = np.arange(6, dtype=np.float64).reshape(3, 2)
    (a, b), f, n, mesh = pad_and_shard((x, x + 1), data_mesh(jax.devices()[:1]), replicated="f",
                                       dtype=jnp.float32)
    assert n == 3 and f == "f" and mesh.devices.size == 1
    assert isinstance(a, jax.Array) and a.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(b), x + 1)


def test_an_empty_batch_is_refused():
    with pytest.raises(ValueError, match="no arrays"):
        pad_and_shard({}, data_mesh(jax.devices()[:1]))


SCRIPT = textwrap.dedent("""
    import jax
    jax.config.update("jax_num_cpu_devices", 8)
    import numpy as np
    from jax.sharding import PartitionSpec as P
    from advpath_jax.parallel import pad_and_shard
    x = np.arange(5 * 3, dtype=np.float32).reshape(5, 3)
    tree = {"x": x, "z": (np.arange(5), np.ones((5, 2, 2)))}
    padded, params, n, mesh = pad_and_shard(tree, replicated={"w": np.ones(4)})
    assert n == 5 and mesh.devices.size == 8
    px = np.asarray(padded["x"])
    assert px.shape == (8, 3)
    np.testing.assert_array_equal(px[:5], x)
    np.testing.assert_array_equal(px[5:], np.repeat(x[-1:], 3, axis=0))   # copies of the last row
    np.testing.assert_array_equal(np.asarray(padded["z"][0]), [0, 1, 2, 3, 4, 4, 4, 4])
    assert padded["x"].sharding.spec == P("data") and padded["z"][1].sharding.spec == P("data")
    assert len(padded["x"].addressable_shards) == 8 and padded["x"].addressable_shards[0].data.shape == (1, 3)
    assert params["w"].sharding.spec == P() and params["w"].sharding.is_fully_replicated
    print("PAD-SHARD-OK")
""")


def test_eight_simulated_devices_pad_to_a_multiple_and_shard():
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "PAD-SHARD-OK" in proc.stdout


def test_padded_batches_are_balanced_and_padded_with_the_last_row():
    items = np.arange(7)[:, None] * np.ones((1, 2))
    got = [(lo, hi, b[:, 0].tolist()) for lo, hi, b in padded_batches(items, 3)]
    assert got == [(0, 3, [0, 1, 2]), (3, 5, [3, 4, 4]), (5, 7, [5, 6, 6])]
    assert [b.shape for _, _, b in padded_batches(items[:6], 4)] == [(3, 2), (3, 2)]
    assert list(padded_batches(items[:0], 3)) == []
