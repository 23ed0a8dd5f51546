"""The batch iterator: determinism, coverage, per-process shares and sharding."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from advpath_jax.data import ArraySource, batch_iterator, epoch_order


def _arrays(n: int = 23, size: int = 8) -> dict:
    rng = np.random.default_rng(0)
    return {
        "image": rng.random((n, size, size, 1), dtype=np.float32),
        "label": (np.arange(n) % 3 == 0).astype(np.int32),
        "mask": rng.random((n, size, size)) > 0.8,
        "id": np.array([f"ex{i:03d}" for i in range(n)]),
    }


class CountingSource(ArraySource):
    """Records every index it is asked for."""

    def __init__(self, data):
        super().__init__(data)
        self.requested: list[int] = []

    def read_batch(self, indices):
        self.requested.extend(int(i) for i in indices)
        return super().read_batch(indices)


def test_deterministic_and_seed_dependent():
    data = _arrays()
    run = lambda seed: [np.asarray(b["index"]) for b in batch_iterator(data, 4, seed=seed, epochs=2)]  # noqa: E731
    a, b, c = run(1), run(1), run(2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    assert len(a) == 2 * (23 // 4)
    # Different epochs use different orders.
    assert not np.array_equal(epoch_order(23, 1, 0), epoch_order(23, 1, 1))


def test_batches_carry_the_right_examples():
    data = _arrays()
    for b in batch_iterator(data, 5, seed=3, epochs=1):
        idx = np.asarray(b["index"])
        np.testing.assert_array_equal(np.asarray(b["image"]), data["image"][idx])
        np.testing.assert_array_equal(np.asarray(b["label"]), data["label"][idx])
        np.testing.assert_array_equal(np.asarray(b["mask"]), data["mask"][idx])
        np.testing.assert_array_equal(b["id"], data["id"][idx])
        assert isinstance(b["image"], jax.Array) and b["image"].dtype == np.float32


def test_epoch_covers_everything_with_padding():
    data = _arrays()
    batches = list(batch_iterator(data, 5, seed=0, drop_remainder=False, shuffle=True, epochs=1))
    assert len(batches) == 5 and all(b["image"].shape[0] == 5 for b in batches)
    valid = np.concatenate([np.asarray(b["valid"]) for b in batches])
    seen = np.concatenate([np.asarray(b["index"]) for b in batches])[valid]
    assert valid.sum() == 23 and sorted(seen) == list(range(23))
    ordered = list(batch_iterator(data, 5, seed=0, shuffle=False, drop_remainder=False, epochs=1))
    assert np.asarray(ordered[0]["index"]).tolist() == [0, 1, 2, 3, 4]


def test_each_process_reads_only_its_share():
    data = _arrays(n=40)
    shares = []
    for p in range(4):
        src = CountingSource(data)
        batches = list(batch_iterator(src, 8, seed=5, epochs=1, process_index=p, process_count=4))
        local = np.concatenate([np.asarray(b["index"]) for b in batches])
        assert sorted(src.requested) == sorted(local.tolist())  # nothing else was read
        assert all(b["image"].shape[0] == 2 for b in batches)
        shares.append([np.asarray(b["index"]) for b in batches])
    whole = [np.asarray(b["index"]) for b in batch_iterator(data, 8, seed=5, epochs=1)]
    for k, global_batch in enumerate(whole):
        np.testing.assert_array_equal(np.concatenate([s[k] for s in shares]), global_batch)


def test_bad_arguments():
    data = _arrays()
    with pytest.raises(ValueError, match="process count"):
        next(batch_iterator(data, 5, seed=0, process_count=2, process_index=0))
    with pytest.raises(ValueError, match="examples for batch_size"):
        next(batch_iterator(data, 64, seed=0))
    bad = dict(data, image=data["image"] * 2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        next(batch_iterator(bad, 4, seed=0))
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("model",))
    with pytest.raises(ValueError, match="'data' axis"):
        next(batch_iterator(data, 4, seed=0, mesh=mesh))


def test_sharded_over_simulated_devices(tmp_path):
    script = textwrap.dedent("""
        import numpy as np, jax
        from advpath_jax.parallel import data_mesh
        from advpath_jax.data import batch_iterator
        assert jax.device_count() == 4, jax.devices()
        n = 20
        data = {"image": np.random.default_rng(0).random((n, 8, 8, 1), dtype=np.float32),
                "label": np.arange(n, dtype=np.int32) % 2, "mask": np.zeros((n, 8, 8), bool),
                "id": np.array([str(i) for i in range(n)])}
        mesh = data_mesh()
        with_mesh = list(batch_iterator(data, 8, seed=1, mesh=mesh, epochs=1))
        plain = list(batch_iterator(data, 8, seed=1, epochs=1))
        for a, b in zip(with_mesh, plain):
            img = a["image"]
            assert len(img.sharding.device_set) == 4
            assert img.sharding.spec == jax.sharding.PartitionSpec("data")
            shards = sorted(img.addressable_shards, key=lambda s: s.index[0].start)
            assert [s.data.shape[0] for s in shards] == [2, 2, 2, 2]
            np.testing.assert_array_equal(np.asarray(img), np.asarray(b["image"]))
            idx = np.asarray(a["index"])
            for k, s in enumerate(shards):
                np.testing.assert_array_equal(np.asarray(s.data), data["image"][idx[2 * k: 2 * k + 2]])
        try:
            next(batch_iterator(data, 6, seed=1, mesh=mesh))
        except ValueError as err:
            assert "'data' axis size 4" in str(err)
        else:
            raise AssertionError("batch 6 over 4 devices was accepted")
        print("OK")
    """)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0 and "OK" in res.stdout, res.stderr[-3000:]
