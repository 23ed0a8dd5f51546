"""MGen training: loss terms against hand-computed values, a few steps lower the loss,
train / checkpoint / load round trip on tiny random data."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advpath_jax.config_utils import load_config
from advpath_jax.generators.mgen import mgen_maps
from advpath_jax.store.models import load_mgen, mgen_spec
from flax import nnx
from advpath_jax.training import mgen as M
from advpath_jax.training import trainer

H = 32


def tiny_config():
    c = load_config("synth_brain")
    c.data.image_size = H
    c.classifier.width = 0.0625
    c.mgen.base_channels = 4
    c.mgen.depth = 2
    c.mgen.batch_size = 8
    c.mgen.epochs = 1
    c.mgen.steps_per_epoch = 2
    c.mgen.lr = 1e-2
    c.mgen.progress = False
    return c


def test_area_and_smoothness_hand_computed():
    m = jnp.asarray([[[0.0, 1.0], [0.25, 0.5]]])
    expected_area = np.mean([(0.0005) ** 0.3, (1.0005) ** 0.3, (0.2505) ** 0.3, (0.5005) ** 0.3])
    assert float(M.area_loss(m)) == pytest.approx(expected_area, rel=1e-5)
    # vertical differences: 0.25, -0.5; horizontal: 1.0, 0.25
    expected_tv = np.mean([0.25 ** 2, 0.5 ** 2]) + np.mean([1.0, 0.25 ** 2])
    assert float(M.smoothness_loss(m)) == pytest.approx(expected_tv, rel=1e-6)


def test_hinges_hand_computed():
    z = jnp.asarray([2.0, -0.5, 0.3, -3.0])
    c = jnp.asarray([1, 1, 0, 0])
    # destroyer: max(0, s z + 1) with s = (+1, +1, -1, -1): (3, 0.5, 0.7, 4)
    assert float(M.destroyer_loss(z, c, 1.0)) == pytest.approx(np.mean([3.0, 0.5, 0.7, 4.0]))
    # preserver: max(0, 1 - s z): (0, 1.5, 1.3, 0)
    assert float(M.preserver_loss(z, c, 1.0)) == pytest.approx(np.mean([0.0, 1.5, 1.3, 0.0]))
    assert float(M.destroyer_loss(z, c, 0.0)) == pytest.approx(np.mean([2.0, 0.0, 0.0, 3.0]))


def test_perturb_hand_computed():
    x = jnp.full((1, 2, 2, 1), 0.8)
    blurred = jnp.full((1, 2, 2, 1), 0.2)
    m = jnp.asarray([[[0.0, 1.0], [0.5, 0.25]]])
    out = np.asarray(M.perturb(x, blurred, m))[0, ..., 0]
    np.testing.assert_allclose(out, [[0.8, 0.2], [0.5, 0.65]], atol=1e-6)


class TinyClassifier(nnx.Module):
    """A small stand-in for the ResNet: conv -> ReLU -> spatial mean -> logit (fast to compile)."""

    def __init__(self, seed: int = 3):
        rngs = nnx.Rngs(seed)
        self.conv = nnx.Conv(1, 4, (5, 5), strides=(2, 2), rngs=rngs)
        self.out = nnx.Linear(4, 1, rngs=rngs)

    def __call__(self, x):
        return self.out(jax.nn.relu(self.conv(x)).mean(axis=(1, 2)))[:, 0] * 4.0


@pytest.fixture(scope="module")
def setup():
    c = tiny_config()
    classifier = TinyClassifier()
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(24, H, H, 1)).astype(np.float32)
    return c, classifier, images


def test_a_few_steps_lower_the_loss(setup):
    c, classifier, images = setup
    task = M.make_mgen_task(c, classifier, images, images[:8])
    step = jax.jit(task.train_step)
    state = task.init_state()
    batch = {"image": jnp.asarray(images[:8])}
    key = jax.random.key(0)
    first = None
    for _ in range(8):
        state, metrics = step(state, batch, key)
        first = float(metrics["loss"]) if first is None else first
    _, metrics = step(state, batch, key)  # its loss is measured before its update
    assert float(metrics["loss"]) < first - 0.05
    assert np.isfinite(float(metrics["area"]))


def test_train_save_load_and_maps(setup, tmp_path):
    c, classifier, images = setup
    task = M.make_mgen_task(c, classifier, images, images[:8])
    out_dir = tmp_path / "mgen"
    result = trainer.fit(task, str(out_dir), trainer.FitOptions.from_config(c.mgen, 0))
    assert result.best_epoch == 1 and (out_dir / "metrics.jsonl").exists()
    model = load_mgen(str(tmp_path), c)
    from advpath_jax.attribution.adapters import score_fn
    maps = np.asarray(mgen_maps(model, score_fn(classifier), images[:3]))
    assert maps.shape == (3, H, H) and maps.min() >= 0 and maps.max() <= 1
    other = tiny_config()
    other.mgen.base_channels = 8
    with pytest.raises(ValueError, match="another configuration"):
        load_mgen(str(tmp_path), other)
    with pytest.raises(FileNotFoundError):
        load_mgen(str(tmp_path / "nowhere"), c)


def _checker_logit(weights, x):
    """Logit 20 · (Σ_region checker · x − 0.1): blurring the checker pattern removes class 1."""
    return 20.0 * (jnp.sum(x[..., 0] * weights, axis=(1, 2)) - 0.1)


def test_destruction_figures_known_answer():
    from jax.tree_util import Partial

    yy, xx = np.mgrid[:H, :H]
    checker = ((yy + xx) % 2).astype(np.float32) * 2 - 1
    region = np.zeros((H, H), bool)
    region[18:26, 4:12] = True
    logit = Partial(_checker_logit, jnp.asarray(checker * region / region.sum()))
    images = np.repeat(np.clip(np.where(region, 0.5 + 0.4 * checker, 0.1), 0, 1)[None, ..., None], 4, 0)
    images = images.astype(np.float32)
    assert np.all(np.asarray(logit(jnp.asarray(images))) > 0)
    corner = np.zeros((H, H), np.float32)
    corner[:8, :8] = 1.0
    # masks: the region (flips), a corner (keeps), nothing (keeps), 0.9 x the region (flips: the
    # checker sum 0.4 keeps 10%, 0.04 < 0.1, plus the blurred checker's ~0)
    masks = np.stack([region.astype(np.float32), corner, np.zeros((H, H), np.float32), 0.9 * region])
    out = M.destruction_figures(logit, images, masks, blur_sigma=3.0)
    assert out["flip_rate"] == pytest.approx(2 / 4)
    assert out["mean_mask_area"] == pytest.approx(masks.mean(), rel=1e-6)


def test_mgen_quality_is_the_figure_of_its_masks(setup):
    from advpath_jax.attribution.adapters import score_fn

    c, classifier, images = setup
    model = M.make_mgen(mgen_spec(c), seed=0)
    q = M.mgen_quality(model, classifier, images[:5], blur_sigma=2.0, batch_size=2)
    masks = np.asarray(mgen_maps(model, score_fn(classifier), images[:5]))
    ref = M.destruction_figures(score_fn(classifier, output="logit"), images[:5], masks, 2.0)
    assert q == pytest.approx(ref, abs=1e-6)


def test_mgen_quality_runs_one_batch_shape(setup):
    from advpath_jax.metrics import deletion

    c, classifier, images = setup
    model = M.make_mgen(mgen_spec(c), seed=0)
    before = deletion._deletion_flips._cache_size()
    q = M.mgen_quality(model, classifier, images[:5], blur_sigma=2.0, batch_size=4)  # 3 + 2, padded to 3
    assert deletion._deletion_flips._cache_size() - before == 1
    assert q == pytest.approx(M.mgen_quality(model, classifier, images[:5], blur_sigma=2.0, batch_size=5), abs=1e-6)


def test_bad_training_images_are_refused(setup):
    c, classifier, images = setup
    with pytest.raises(ValueError, match="training images"):
        M.make_mgen_task(c, classifier, images * 2.0, images[:8])
    with pytest.raises(ValueError, match="validation images"):
        M.make_mgen_task(c, classifier, images, images[:8, ..., 0])
