"""Classifier and generator training on tiny models: losses fall, the API round-trips."""

import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from advpath_jax.data.synthetic import synth_brain
from advpath_jax.training import classifier as clf_mod
from advpath_jax.generators import inference, spec
from advpath_jax.store import models as store_models
from advpath_jax.store.checkpoint import CheckpointStore
from advpath_jax.training import generators as gen_mod

SIZE = 32


def tiny_config():
    c = ml_collections.ConfigDict()
    c.name = "tiny"
    c.seed = 0
    c.data = ml_collections.ConfigDict({"name": "synth_brain", "image_size": SIZE})
    c.classifier = ml_collections.ConfigDict(dict(
        depth=18, width=0.0625, dropout=0.3, head_units=8, epochs=1, batch_size=8, lr=1e-3,
        augment=False, eval_batch_size=32, progress=False))
    c.generators = ml_collections.ConfigDict(dict(
        unet_base_channels=4, unet_depth=2, dropout=0.0, residual=False, head_channels=(8, 4),
        d_base_channels=4, d_layers=2, epochs=1, batch_size=4, lr=1e-3, gp_weight=1.0,
        augment=False, eval_batch_size=32, progress=False))
    return c


SPLITS = {"train": (48, 1), "val": (24, 2), "test": (24, 3)}


@pytest.fixture(scope="module")
def data():
    return {s: synth_brain(n, SIZE, seed, positive_fraction=0.5) for s, (n, seed) in SPLITS.items()}


@pytest.fixture(scope="module", autouse=True)
def fake_loader(data):
    original = clf_mod.load_split_data
    clf_mod.load_split_data = lambda config, split: data[split]
    gen_mod.load_split_data = clf_mod.load_split_data
    yield
    clf_mod.load_split_data = original
    gen_mod.load_split_data = original


class TinyClassifier(nnx.Module):
    """A stand-in for the frozen ResNet in the generator-step tests (any module mapping
    ``[B, H, W, 1]`` to logits ``[B]`` serves; a small one keeps the compiled steps small)."""

    def __init__(self, rngs):
        self.conv = nnx.Conv(1, 4, (3, 3), strides=(2, 2), rngs=rngs)
        self.bn = nnx.BatchNorm(4, rngs=rngs)
        self.fc = nnx.Linear(4, 1, rngs=rngs)

    def __call__(self, x):
        h = jax.nn.relu(self.bn(self.conv(x)))
        return self.fc(jnp.mean(h, axis=(1, 2)))[:, 0]


@pytest.fixture(scope="module")
def balanced_classifier(data):
    """A classifier whose threshold splits the training images into two halves."""
    model = TinyClassifier(nnx.Rngs(0))
    model.eval()
    logits = np.asarray(model(jnp.asarray(data["train"]["image"])))
    model.fc.bias[...] = model.fc.bias[...] - np.median(logits)
    return model


def _loss_drop(task, batch, steps=6):
    step = jax.jit(task.train_step)
    state = task.init_state()
    key = jax.random.key(0)
    first = None
    for _ in range(steps):
        state, metrics = step(state, batch, key)
        first = float(metrics["loss"]) if first is None else first
    _, metrics = step(state, batch, key)  # its loss is measured before its update
    return first, float(metrics["loss"]), metrics


def test_classifier_steps_lower_loss(data):
    config = tiny_config()
    task = clf_mod.classifier_task(config, data["train"], data["val"])
    batch = next(iter(task.train_batches(0)))
    first, last, _ = _loss_drop(task, batch)
    assert last < 0.8 * first


@pytest.mark.parametrize("kind", ["cyce", "syce", "sagen"])
def test_generator_steps_lower_loss(data, balanced_classifier, kind):
    config = tiny_config()
    f = balanced_classifier
    task = gen_mod.generator_task(config, kind, f, data["train"], data["val"])
    batch = next(iter(task.train_batches(0)))
    assert batch["x0"].shape == batch["x1"].shape == (4, SIZE, SIZE, 1)
    first, last, metrics = _loss_drop(task, batch, steps=5)
    assert last < first
    if kind != "sagen":
        assert {"d_loss", "d_gp", "adv", "gan", "rec", "cls"} <= set(metrics)
    if kind == "syce":
        assert {"rec_self", "cls_self"} <= set(metrics)


@pytest.mark.slow
def test_end_to_end_api(tmp_path, data):
    config = tiny_config()
    config.generators.steps_per_epoch = 2
    workdir = str(tmp_path)
    metrics = clf_mod.train_classifier(config, workdir)
    assert 0.0 <= metrics["auc"] <= 1.0
    assert os.path.exists(tmp_path / "classifier" / "test_metrics.json")
    f = store_models.load_classifier(workdir, config)
    # A one-epoch tiny classifier may predict a single class; shift its threshold to the
    # median logit and store it as the best checkpoint so that the generators see both.
    logits = np.asarray(f(jnp.asarray(data["train"]["image"])))
    f.fc2.bias[...] = f.fc2.bias[...] - np.median(logits)
    store = CheckpointStore(str(tmp_path / "classifier"), store_models.classifier_fingerprint(config))
    store.save("best", store.latest_step("best") + 1, {"models": {"classifier": nnx.state(f)}}, {})
    store.close()
    f = store_models.load_classifier(workdir, config)
    pred_train = np.asarray(f(jnp.asarray(data["train"]["image"]))) >= 0
    assert 0 < pred_train.sum() < len(pred_train)
    stats = gen_mod.train_generators(config, workdir, "cyce")
    saved = json.load(open(tmp_path / "cyce" / "eval_test.json"))
    assert saved["flip_rate"] == pytest.approx(stats["flip_rate"]) and saved["keep_rate"] == 1.0
    gens = store_models.load_generators(workdir, config, "cyce")
    assert sorted(gens) == ["G0", "G1"]
    x = data["test"]["image"][:5]
    x_s, x_a = inference.cyce_pair(gens, f, x)
    np.testing.assert_array_equal(np.asarray(x_s), x)
    pred = np.asarray(jax.nn.sigmoid(f(jnp.asarray(x)))) >= 0.5
    expect = np.where(pred[:, None, None, None], np.asarray(gens["G1"](jnp.asarray(x))),
                      np.asarray(gens["G0"](jnp.asarray(x))))
    np.testing.assert_allclose(np.asarray(x_a), expect, atol=1e-5)
    # a checkpoint from another architecture is refused, naming the field
    other = tiny_config()
    other.generators.unet_base_channels = 8
    with pytest.raises(ValueError, match="unet_base_channels"):
        store_models.load_generators(workdir, other, "cyce")
    with pytest.raises(FileNotFoundError, match="syce"):
        store_models.load_generators(workdir, config, "syce")
    with pytest.raises(ValueError, match=r"within \[0, 1\]"):
        inference.cyce_pair(gens, f, x * 3.0)


def test_residual_option_per_kind():
    config = tiny_config()
    config.generators = ml_collections.ConfigDict({**config.generators.to_dict(), "residual": ("cyce", "sagen")})
    assert [spec.residual_for(config, k) for k in spec.KINDS] == [True, False, True]
    assert spec.generator_fingerprint(config, "syce")["residual"] is False
    assert spec.build_generators(config, "sagen")["G"].spec.residual
    config.generators.residual = ("cyce", "bogus")
    with pytest.raises(ValueError, match="bogus"):
        spec.residual_for(config, "cyce")


def test_sagen_class_input_feeds_each_images_predicted_class(data, balanced_classifier):
    config = tiny_config()
    config.generators = ml_collections.ConfigDict({**config.generators.to_dict(), "sagen_class_input": True})
    assert spec.generator_fingerprint(config, "sagen")["class_input"] is True
    G = spec.build_generators(config, "sagen")["G"]
    assert G.spec.in_channels == 2
    G.eval()
    f = balanced_classifier
    x = data["train"]["image"][:16]
    c = np.asarray(jax.nn.sigmoid(f(jnp.asarray(x)))) >= 0.5
    assert 0 < c.sum() < len(c)  # both classes in the batch
    x_s, x_a = inference.sagen_pair({"G": G}, f, x)
    c_map = np.broadcast_to(c[:, None, None, None], x.shape).astype(np.float32)
    want_s, want_a = G(jnp.asarray(np.concatenate([x, c_map], axis=-1)))
    np.testing.assert_allclose(np.asarray(x_s), np.asarray(want_s), atol=1e-5)
    np.testing.assert_allclose(np.asarray(x_a), np.asarray(want_a), atol=1e-5)
    _, other_a = G(jnp.asarray(np.concatenate([x, 1.0 - c_map], axis=-1)))
    assert not np.allclose(np.asarray(other_a), np.asarray(x_a), atol=1e-4)  # the channel matters
    task = gen_mod.generator_task(config, "sagen", f, data["train"], data["val"])
    first, last, _ = _loss_drop(task, next(iter(task.train_batches(0))), steps=5)
    assert last < first
    stats = task.evaluate(task.init_state())  # the per-class evaluation path
    assert 0.0 <= stats["flip_rate"] <= 1.0 and np.isfinite(stats["objective"])


@pytest.mark.parametrize("criterion", ["own_loss", "fixed", "quality"])
def test_validation_objective_follows_the_criterion(data, balanced_classifier, criterion):
    """"own_loss": the objective is the method's own loss (also logged); "fixed": the fixed-weight
    objective, and the own loss is not computed (one validation pass less per epoch); "quality":
    the fixed objective plus the shortfall of the worse rate, the plateau decay on the fixed one."""
    config = tiny_config()
    config.generators.val_criterion = criterion
    task = gen_mod.generator_task(config, "cyce", balanced_classifier, data["train"], data["val"])
    stats = task.evaluate(task.init_state())
    assert task.schedule_monitor == ("fixed_objective" if criterion == "quality" else None)
    if criterion == "own_loss":
        assert stats["objective"] == stats["own_loss"] and stats["own_loss"] > 0
        assert stats["own_loss"] != stats["fixed_objective"]
    elif criterion == "quality":
        worse = min(stats["flip_rate"], stats["keep_rate"])
        assert stats["objective"] == pytest.approx(stats["fixed_objective"] + 1.0 - worse)
        assert "own_loss" not in stats
    else:
        assert stats["objective"] == stats["fixed_objective"] and "own_loss" not in stats
