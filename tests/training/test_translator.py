"""Translator training: loss terms against hand values, a few steps lower the losses,
flip bookkeeping, translate_to_opposite's targets, train / load round trip."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from advpath_jax.attribution.adapters import score_fn
from advpath_jax.config_utils import load_config
from advpath_jax.generators.translator import flip_statistics, translate_to_opposite
from advpath_jax.models.discriminator import DiscriminatorSpec, make_discriminator
from advpath_jax.models.translator import TranslatorSpec, make_translator
from advpath_jax.store.models import load_translator
from advpath_jax.training import translator as T
from advpath_jax.training import trainer

H = 32


class TinyClassifier(nnx.Module):
    """A stand-in for the ResNet: logit = 20 · (mean intensity − threshold) (fast to compile)."""

    def __init__(self, threshold: float = 0.375):
        self.out = nnx.Linear(1, 1, rngs=nnx.Rngs(0))
        self.out.kernel[...] = jnp.full((1, 1), 20.0)
        self.out.bias[...] = jnp.full((1,), -20.0 * threshold)

    def __call__(self, x):
        return self.out(x.mean(axis=(1, 2)))[:, 0]


def tiny_config():
    c = load_config("synth_brain")
    c.data.image_size = H
    t = c.translator
    t.base_channels, t.depth, t.critic_channels, t.critic_layers = 4, 2, 4, 2
    t.batch_size, t.epochs, t.steps_per_epoch, t.lr, t.progress = 8, 1, 2, 1e-2, False
    return c


@pytest.fixture(scope="module")
def setup():
    c = tiny_config()
    classifier = TinyClassifier()
    images = np.random.default_rng(0).uniform(size=(32, H, H, 1)).astype(np.float32)
    images[::2] *= 0.5  # both classes predicted: mean intensity about 0.25 or 0.5
    pred = np.asarray(classifier(jnp.asarray(images))) >= 0
    assert 0 < pred.sum() < len(pred)
    return c, classifier, images


def test_generator_loss_terms_for_the_identity_translator(setup):
    c, classifier, images = setup
    g = make_translator(TranslatorSpec(base_channels=4, depth=2))  # untrained: exactly the identity
    d = make_discriminator(DiscriminatorSpec(image_size=H, base_channels=4, layers=2))
    x = jnp.asarray(images[:6])
    cls_ = jnp.asarray([0, 1, 0, 1, 1, 0])
    w = {"cls": 1.0, "rec": 10.0, "id": 0.1}
    (gg, gs), (dg, ds), (cg, cs) = nnx.split(g), nnx.split(d), nnx.split(classifier)
    total, terms = jax.jit(lambda gs, ds, cs: T.generator_loss(
        nnx.merge(gg, gs), nnx.merge(dg, ds), nnx.merge(cg, cs), x, cls_, w))(gs, ds, cs)
    assert float(terms["g_cycle"]) == 0.0 and float(terms["g_identity"]) == 0.0
    z = np.asarray(classifier(x), np.float64)
    target = 1 - np.asarray(cls_)
    p = 1 / (1 + np.exp(-z))
    bce = -np.mean(target * np.log(p) + (1 - target) * np.log(1 - p))
    assert float(terms["g_cls"]) == pytest.approx(bce, rel=1e-4)
    assert float(terms["g_adv"]) == pytest.approx(-float(np.mean(np.asarray(d(x)))), rel=1e-5)
    assert float(total) == pytest.approx(float(terms["g_adv"]) + bce, rel=1e-4)


def test_critic_loss_gradient_penalty_of_a_linear_critic():
    w = jnp.asarray(np.random.default_rng(1).normal(size=(4, 4, 1)).astype(np.float32))

    def d(x):  # D(x) = <w, x>: gradient w everywhere, GP = (||w|| - 1)^2
        return jnp.sum(x * w, axis=(1, 2, 3))

    real = jnp.ones((3, 4, 4, 1))
    fake = jnp.zeros((3, 4, 4, 1))
    total, terms = T.critic_loss(d, real, fake, jax.random.key(0), 10.0)
    norm = float(jnp.sqrt(jnp.sum(w ** 2)))
    assert float(terms["d_gp"]) == pytest.approx((norm - 1) ** 2, rel=1e-4)
    assert float(terms["d_wgan"]) == pytest.approx(-float(jnp.sum(w)), rel=1e-5)
    assert float(total) == pytest.approx(-float(jnp.sum(w)) + 10 * (norm - 1) ** 2, rel=1e-4)


def test_critic_steps_lower_the_critic_loss(setup):
    _, _, images = setup
    d = make_discriminator(DiscriminatorSpec(image_size=H, base_channels=4, layers=2))
    gd, params = nnx.split(d)
    real = jnp.asarray(images[:8])
    fake = jnp.clip(real + 0.3, 0, 1)
    tx = optax.adam(1e-3)
    opt = tx.init(params)

    @jax.jit
    def step(params, opt, key):
        loss, grads = jax.value_and_grad(lambda p: T.critic_loss(nnx.merge(gd, p), real, fake, key, 10.0)[0])(params)
        updates, opt = tx.update(grads, opt, params)
        return optax.apply_updates(params, updates), opt, loss

    losses = []
    for i in range(15):
        params, opt, loss = step(params, opt, jax.random.key(i))
        losses.append(float(loss))
    assert np.mean(losses[-3:]) < losses[0] - 0.1


def test_generator_steps_lower_the_domain_loss(setup):
    c, classifier, images = setup
    task = T.make_translator_task(c, classifier, images, images[:8])
    step = jax.jit(task.train_step)
    state = task.init_state()
    batch = next(iter(task.train_batches(0)))
    batch = {k: jnp.asarray(v) for k, v in batch.items()}
    first = None
    for i in range(10):
        state, metrics = step(state, batch, jax.random.key(i))
        first = float(metrics["g_cls"]) if first is None else first
    _, metrics = step(state, batch, jax.random.key(99))  # measured before its update
    assert float(metrics["g_cls"]) < first - 0.05
    assert np.isfinite(float(metrics["loss"]))


def test_flip_statistics_bookkeeping():
    def program(state, f, x):  # stand-in translator: x' = 1 - x
        out = 1.0 - x
        return out, f(x), f(out)

    def f(x):
        return jnp.mean(x, axis=(1, 2, 3))

    # means 0.9, 0.8, 0.45, 0.3, 0.52 -> preds 1,1,0,0,1; after: 0.1,0.2,0.55,0.7,0.48 -> all flip but 0.45?
    means = np.asarray([0.9, 0.8, 0.45, 0.3, 0.52], np.float32)
    images = np.broadcast_to(means[:, None, None, None], (5, 2, 2, 1)).copy()
    stats = flip_statistics(program, None, f, images, batch_size=2)  # 3 batches, the last padded
    # after translation: 0.1 (0), 0.2 (0), 0.55 (1), 0.7 (1), 0.48 (0): every prediction flips
    assert stats["flip_rate"] == 1.0 and stats["n"] == 5
    assert stats["n_pred1"] == 3 and stats["n_pred0"] == 2
    np.testing.assert_allclose(stats["mean_abs_change"], np.mean(np.abs(1 - 2 * means)), rtol=1e-6)
    images[4] = 0.5  # 0.5 -> predicted 1, translated 0.5 -> still 1: no flip
    stats = flip_statistics(program, None, f, images, batch_size=2)
    assert stats["flip_rate"] == pytest.approx(4 / 5)
    assert stats["flip_rate_pred1"] == pytest.approx(2 / 3) and stats["flip_rate_pred0"] == 1.0


def test_validation_and_test_evaluations_share_one_compiled_program(setup):
    from advpath_jax.generators.translator import eval_translator_split, translate_program
    from advpath_jax.parallel import data_mesh, replicate

    c, classifier, images = setup
    graphdef, state = eval_translator_split(T.build_translator_models(c)[T.G])
    program = translate_program(graphdef)
    f = score_fn(classifier)
    before = program._cache_size()
    # as the trainer holds it (replicated over the mesh), then as loaded from a checkpoint
    on_mesh = flip_statistics(program, replicate(state, data_mesh()), f, images[:6], batch_size=4)
    loaded = flip_statistics(program, state, f, images[:6], batch_size=4)
    assert on_mesh == loaded
    assert program._cache_size() - before == 1


def test_train_load_and_translate_to_opposite(setup, tmp_path):
    c, classifier, images = setup
    task = T.make_translator_task(c, classifier, images, images[:8])
    result = trainer.fit(task, str(tmp_path / "translator"), trainer.FitOptions.from_config(c.translator, 0))
    assert result.best_epoch == 1
    tr = load_translator(str(tmp_path), c)
    # make the output depend on the target class, then check the targets are 1 - predicted class
    tr.head_conv.kernel[...] = jnp.full(tr.head_conv.kernel.shape, 0.5)
    f = score_fn(classifier)
    x = jnp.asarray(images[:8])
    out = np.asarray(translate_to_opposite(tr, f, x))
    target = (np.asarray(f(x)) < 0.5).astype(np.int32)
    assert 0 < target.sum() < len(target)
    expected = np.asarray(tr(x, jnp.asarray(target)))
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert np.abs(out - np.asarray(tr(x, jnp.asarray(1 - target)))).max() > 1e-3
    assert out.min() >= 0 and out.max() <= 1
    other = tiny_config()
    other.translator.critic_layers = 3
    with pytest.raises(ValueError, match="another configuration"):
        load_translator(str(tmp_path), other)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        translate_to_opposite(tr, f, images[:2] + 2.0)


def test_single_class_predictions_are_refused(setup):
    c, classifier, images = setup
    bright = np.ones_like(images)
    with pytest.raises(ValueError, match="single class"):
        T.make_translator_task(c, classifier, bright, images[:8])


def test_given_predicted_classes_are_used_and_checked(setup):
    c, classifier, images = setup
    # the run passes its cached predictions; all of one class is refused like the classifier's own
    with pytest.raises(ValueError, match="single class"):
        T.make_translator_task(c, classifier, images, images[:8], train_pred=np.zeros(len(images), np.int32))
    with pytest.raises(ValueError, match="train_pred has shape"):
        T.make_translator_task(c, classifier, images, images[:8], train_pred=np.zeros(3, np.int32))
    own = T.make_translator_task(c, classifier, images, images[:8])
    given = T.make_translator_task(c, classifier, images, images[:8],
                                   train_pred=(np.asarray(score_fn(classifier)(images)) >= 0.5).astype(np.int32))
    batches = lambda task: [np.concatenate([b["x0"], b["x1"]]) for b in task.train_batches(1)]
    for a, b in zip(batches(own), batches(given), strict=True):
        np.testing.assert_array_equal(a, b)
