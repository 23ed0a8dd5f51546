"""The shared trainer and checkpoint helper, on a tiny regression task."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

sys.path.insert(0, os.path.dirname(__file__))
from _toy import Toy, toy_task  # noqa: E402

from advpath_jax.errors import AdvpathError  # noqa: E402
from advpath_jax.store.checkpoint import CheckpointStore, check_fingerprint  # noqa: E402
from advpath_jax.training.schedules import (LearningRate, learning_rate_schedule,  # noqa: E402
                                            make_optimizer, observe_validation, plateau_states)
from advpath_jax.training.trainer import FitOptions, NonFiniteLossError, all_finite, fit  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _leaves(state):
    return [np.asarray(jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x)
            for x in jax.tree.leaves(state)]


def _assert_same(a, b, **tol):
    la, lb = _leaves(a), _leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        if tol:
            np.testing.assert_allclose(x, y, **tol)
        else:
            np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    d = tmp_path_factory.mktemp("full")
    return d, fit(toy_task(), str(d), FitOptions(epochs=3, progress=False))


def test_training_lowers_loss_and_logs(uninterrupted):
    d, res = uninterrupted
    rows = [json.loads(l) for l in open(d / "metrics.jsonl")]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[-1]["val_mse"] < 0.5 * rows[0]["train_loss"]
    assert res.best_value == min(r["val_mse"] for r in rows)
    assert sorted(os.listdir(d / "checkpoints")) == ["best", "latest"]


def test_checkpoint_round_trip(uninterrupted, tmp_path):
    _, res = uninterrupted
    store = CheckpointStore(str(tmp_path), {"hidden": 8})
    store.save("latest", 5, res.state, {"note": "x"})
    abstract = jax.eval_shape(toy_task().init_state)
    state, meta = store.restore("latest", abstract)
    store.close()
    assert meta["note"] == "x" and meta["step"] == 5 and meta["fingerprint"] == {"hidden": 8}
    _assert_same(state, res.state)


def test_resume_mid_epoch_equals_uninterrupted(uninterrupted, tmp_path):
    _, full = uninterrupted
    opts = FitOptions(epochs=3, progress=False)
    first = fit(toy_task(), str(tmp_path), FitOptions(**{**opts.__dict__, "max_steps": 11}))
    assert first.stopped_early
    resumed = fit(toy_task(), str(tmp_path), opts)  # fresh task object, as after a restart
    _assert_same(resumed.state, full.state)
    rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
    assert [r["epoch"] for r in rows] == [1, 2, 3]


def test_checkpoint_from_other_config_is_refused(uninterrupted):
    d, _ = uninterrupted
    with pytest.raises(ValueError) as err:
        fit(toy_task(hidden=16), str(d), FitOptions(epochs=4, progress=False))
    msg = str(err.value)
    assert str(d) in msg and "hidden" in msg and "8" in msg and "16" in msg


def test_check_fingerprint_lists_all_fields():
    with pytest.raises(ValueError, match=r"depth.*width"):
        check_fingerprint({"depth": 18, "width": 0.5}, {"depth": 50, "width": 1.0}, "/x")
    check_fingerprint({"a": (1, 2)}, {"a": [1, 2]}, "/x")  # tuples and lists are the same JSON


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    opts = FitOptions(epochs=4, progress=False)
    with pytest.raises(NonFiniteLossError, match="loss is nan") as err:
        fit(toy_task(poison_after=20), str(tmp_path), opts)   # epoch 3, batch 4
    assert "checkpoints/latest/16" in str(err.value)
    store = CheckpointStore(str(tmp_path), {"hidden": 8})
    state, meta = store.restore("latest", jax.eval_shape(toy_task().init_state))
    store.close()
    assert meta["epoch"] == 2 and meta["global_step"] == 16
    assert all(np.all(np.isfinite(x)) for x in _leaves(state) if x.dtype.kind == "f")
    clean = fit(toy_task(), str(tmp_path / "clean"), FitOptions(epochs=2, progress=False))
    _assert_same(state, clean.state)


def test_plateau_decay_matches_reduce_lr_on_plateau():
    settings = LearningRate(lr=1.0, factor=0.3, patience=4, min_lr=0.1)  # floor: min_lr / lr = 0.1
    opt = make_optimizer(settings, total_steps=10).init({"w": np.zeros(2, np.float32)})
    scales = []
    for v in [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.96, 0.97, 0.98, 0.99, 0.5, 0.6, 0.6, 0.6, 0.6]:
        opt = observe_validation(opt, v, settings, mode="min")
        scales.append(round(float(plateau_states(opt)[0].scale), 6))
    # 4 bad epochs after 0.9 -> x0.3; 4 more -> floor 0.1 (not 0.09); improvement at 0.5; 4 bad -> floor.
    assert scales == [1, 1, 1, 1, 1, 0.3, 0.3, 0.3, 0.3, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]


def test_cosine_schedule_factor_closed_form():
    factor = lambda kind, step, total, min_factor=0.0: float(  # noqa: E731
        learning_rate_schedule(LearningRate(lr=1.0, schedule=kind, min_lr=min_factor), total)(step))
    assert factor("plateau", 7, 10) == 1.0
    assert factor("cosine", 0, 10) == 1.0
    assert factor("cosine", 5, 10) == pytest.approx(0.5)
    assert factor("cosine", 10, 10) == pytest.approx(0.0, abs=1e-7)
    assert factor("cosine", 10, 10, min_factor=0.01) == pytest.approx(0.01)
    assert factor("cosine", 2, 8) == pytest.approx((1 + np.cos(np.pi / 4)) / 2)
    with pytest.raises(ValueError, match="lr_schedule"):
        factor("linear", 0, 10)


def test_cosine_schedule_reaches_the_step_and_resumes(tmp_path):
    opts = FitOptions(epochs=2, progress=False)
    cosine = lambda: toy_task(schedule="cosine", epochs=2)  # noqa: E731
    full = fit(cosine(), str(tmp_path / "full"), opts)
    plain = fit(toy_task(), str(tmp_path / "plain"), FitOptions(epochs=2, progress=False))
    rows = [json.loads(l) for l in open(tmp_path / "full" / "metrics.jsonl")]
    # logged rate: that of the last step of each epoch (8 steps per epoch, 16 in all); the
    # optimizer computes it in float32 (1 + cos cancels near the end: ~1e-6 relative)
    assert rows[0]["lr"] == pytest.approx(0.05 * (1 + np.cos(np.pi * 7 / 16)) / 2, rel=1e-5)
    assert rows[1]["lr"] == pytest.approx(0.05 * (1 + np.cos(np.pi * 15 / 16)) / 2, rel=1e-5)
    assert any(not np.allclose(a, b) for a, b in zip(_leaves(full.state), _leaves(plain.state)))
    first = fit(cosine(), str(tmp_path / "resumed"), FitOptions(**{**opts.__dict__, "max_steps": 11}))
    assert first.stopped_early
    resumed = fit(cosine(), str(tmp_path / "resumed"), opts)
    _assert_same(resumed.state, full.state)
    with pytest.raises(ValueError, match="lr_schedule"):
        toy_task(schedule="step")


def test_plateau_follows_the_validation_values_and_is_checkpointed(tmp_path):
    # Scripted validation values: better, better, worse, worse (patience 2 -> x0.3), better, worse.
    script = [1.0, 0.8, 0.9, 0.85, 0.7, 0.75]
    res = fit(toy_task(script=script, lr_patience=2), str(tmp_path), FitOptions(epochs=6, progress=False))
    rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
    # the rate each epoch trained at, by hand: the decay after epoch 4 acts from epoch 5 on
    assert [r["lr"] for r in rows] == pytest.approx([0.05, 0.05, 0.05, 0.05, 0.015, 0.015])
    assert [r["best"] for r in rows] == [True, True, False, False, True, False]
    assert float(plateau_states(res.state["opt"])[0].scale) == pytest.approx(0.3)
    store = CheckpointStore(str(tmp_path), {"hidden": 8})
    state, _ = store.restore("latest", jax.eval_shape(toy_task().init_state))
    store.close()
    (saved,) = plateau_states(state["opt"])
    assert float(saved.scale) == pytest.approx(0.3) and int(saved.plateau_count) == 1
    assert float(saved.best_value) == pytest.approx(0.7)


def test_plateau_decay_can_follow_another_metric_than_the_checkpoint_choice(tmp_path):
    # The checkpoint follows ``mse`` (better, better, worse, worse, better, worse); the decay follows
    # ``decay``. Patience 2, factor 0.3, as above.
    mse = [1.0, 0.8, 0.9, 0.85, 0.7, 0.75]
    improving, stalled = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5], [1.0, 0.8, 0.8, 0.8, 0.8, 0.8]
    for decay, rates in ((improving, [0.05] * 6), (stalled, [0.05, 0.05, 0.05, 0.05, 0.015, 0.015])):
        out = tmp_path / str(len(rates)) / ("improving" if decay is improving else "stalled")
        fit(toy_task(script=mse, decay_script=decay, lr_patience=2), str(out), FitOptions(epochs=6, progress=False))
        rows = [json.loads(l) for l in open(out / "metrics.jsonl")]
        assert [r["lr"] for r in rows] == pytest.approx(rates)
        assert [r["best"] for r in rows] == [True, True, False, False, True, False]


def test_early_stopping_on_a_scripted_validation_sequence(tmp_path):
    script = [1.0, 0.8, 0.9, 0.85, 0.81, 0.5, 0.4, 0.3]  # best at epoch 2, then 3 epochs without a better one
    opts = FitOptions(epochs=8, progress=False, early_stop_patience=3)
    res = fit(toy_task(script=script), str(tmp_path), opts)
    rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5]
    assert res.early_stop_epoch == 5 and not res.stopped_early
    assert (res.best_epoch, res.best_value) == (2, 0.8)
    again = fit(toy_task(script=script), str(tmp_path), opts)  # a rerun trains no further
    assert again.early_stop_epoch == 5 and [r["epoch"] for r in again.history] == [1, 2, 3, 4, 5]
    never = fit(toy_task(script=script), str(tmp_path / "off"), FitOptions(epochs=8, progress=False))
    assert never.early_stop_epoch is None and len(never.history) == 8 and never.best_epoch == 8
    with pytest.raises(ValueError, match="early_stop_patience"):
        FitOptions(epochs=2, early_stop_patience=-1)


def test_training_stops_once_the_learning_rate_is_below_min_lr(tmp_path):
    # Cosine over 6 epochs of 8 steps from 0.05 (floored at min_lr 1e-3), times a plateau scale that
    # falls x0.3 after every epoch (patience 1, validation always worse; floor min_lr / lr = 0.02).
    # By hand: the rate of epoch e's last update (step 8e - 1) times the scale after epoch e.
    lr, min_lr, steps, epochs = 0.05, 1e-3, 8, 6
    script = [1.0 + 0.1 * e for e in range(epochs)]
    cosine = lambda t: max(lr * (1 + np.cos(np.pi * t / (steps * epochs))) / 2, min_lr)  # noqa: E731
    rates = [cosine(steps * e - 1) * max(0.3 ** (e - 1), min_lr / lr) for e in range(1, epochs + 1)]
    expected = next(e for e, r in enumerate(rates, start=1) if r < min_lr)
    assert 1 < expected < epochs  # the case is one where the rule acts before the last epoch
    task = lambda: toy_task(schedule="cosine", epochs=epochs, lr=lr, min_lr=min_lr, lr_patience=1,  # noqa: E731
                            script=script)
    res = fit(task(), str(tmp_path / "on"), FitOptions(epochs=epochs, progress=False))
    assert res.early_stop_epoch == expected and len(res.history) == expected and not res.stopped_early
    again = fit(task(), str(tmp_path / "on"), FitOptions(epochs=epochs, progress=False))  # a rerun trains no further
    assert again.early_stop_epoch == expected and len(again.history) == expected
    off = fit(task(), str(tmp_path / "off"), FitOptions(epochs=epochs, progress=False, stop_below_min_lr=False))
    assert off.early_stop_epoch is None and len(off.history) == epochs
    # a constant rate times the plateau scale never goes below min_lr (the scale's floor is min_lr / lr)
    plateau = fit(toy_task(epochs=epochs, lr=lr, min_lr=min_lr, lr_patience=1, script=script),
                  str(tmp_path / "plateau"), FitOptions(epochs=epochs, progress=False))
    assert plateau.early_stop_epoch is None and len(plateau.history) == epochs
    assert FitOptions.from_config({"epochs": 3}, 0).stop_below_min_lr
    assert not FitOptions.from_config({"epochs": 3, "stop_below_min_lr": False}, 0).stop_below_min_lr


def test_checkpoint_of_an_older_version_is_refused_by_name(tmp_path):
    # The old format: no schedule state in the optimizer state, a learning-rate scale in the metadata.
    model = Toy(8, nnx.Rngs(0))
    old_state = {"models": {"toy": nnx.state(model)}, "opt": {"toy": optax.adam(0.05).init(nnx.state(model, nnx.Param))},
                 "step": np.zeros((), np.int32)}
    store = CheckpointStore(str(tmp_path), {"hidden": 8})
    store.save("latest", 8, old_state, {"epoch": 1, "batch": 0, "global_step": 8, "lr_scale": 1.0})
    store.close()
    with pytest.raises(AdvpathError) as err:
        fit(toy_task(), str(tmp_path), FitOptions(epochs=2, progress=False))
    assert os.path.join(str(tmp_path), "checkpoints", "latest", "8") in str(err.value)
    assert "older advpath_jax" in str(err.value)


def test_sharded_step_on_8_devices_equals_1_device():
    script = textwrap.dedent(f"""
        import sys, tempfile
        sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
        import jax, numpy as np
        assert jax.device_count() == 8, jax.devices()
        from _toy import toy_task
        from advpath_jax.training.trainer import FitOptions, default_mesh, fit
        opts = FitOptions(epochs=2, progress=False)
        a = fit(toy_task(optimizer="sgd"), tempfile.mkdtemp(), opts, mesh=default_mesh(jax.devices()))
        b = fit(toy_task(optimizer="sgd"), tempfile.mkdtemp(), opts, mesh=default_mesh(jax.devices()[:1]))
        leaf = jax.tree.leaves(a.state["models"])[0]
        assert len(leaf.sharding.device_set) == 8
        for x, y in zip(jax.tree.leaves(a.state["models"]), jax.tree.leaves(b.state["models"])):
            if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
                x, y = jax.random.key_data(x), jax.random.key_data(y)
            np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=2e-5, atol=2e-6)
        print("SAME")
    """)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0 and "SAME" in out.stdout, out.stdout + out.stderr[-3000:]


def test_all_finite_flags_any_nan_or_inf_leaf_and_ignores_integer_leaves():
    tree = {"w": jnp.ones((3, 2)), "b": jnp.zeros(2), "step": jnp.int32(7), "mu": {"w": jnp.ones(4, jnp.bfloat16)}}
    assert all_finite(tree)
    assert all_finite({"count": jnp.arange(3)})  # no float leaf
    for bad in (jnp.nan, jnp.inf, -jnp.inf):
        assert not all_finite({**tree, "b": jnp.asarray([0.0, bad])})
        assert not all_finite({**tree, "mu": {"w": jnp.asarray([1.0, bad, 2.0, 3.0], jnp.bfloat16)}})
