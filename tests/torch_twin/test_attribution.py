"""PyTorch maps (loop, torch.func.vmap, Captum) equal the JAX engine's maps to 1e-4, and
match closed forms on a linear score."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("captum")

import jax.numpy as jnp  # noqa: E402

import advpath_jax  # noqa: E402
from advpath_jax.attribution.smoothing import gaussian_smooth as jax_smooth  # noqa: E402
from advpath_jax.torch_twin import attribution as ta  # noqa: E402
from advpath_jax.torch_twin.convert import torch_resnet_from_flax  # noqa: E402
from advpath_jax.torch_twin.resnet import images_to_torch, maps_to_numpy  # noqa: E402

STEPS, CHUNK = 8, 3  # 8 points in chunks of 3, 3, 2
SMOOTHING = (6, 1.0)  # even size: asymmetric padding, as the paper's 28x28


@pytest.fixture(scope="module")
def setup(rgb_resnet18):
    model, x = rgb_resnet18
    rng = np.random.default_rng(5)
    x_adv = np.clip(x + rng.normal(0.0, 0.3, x.shape), 0.0, 1.0).astype(np.float32)
    f_jax = advpath_jax.score_fn(model, "prob")
    f_torch = ta.torch_score_fn(torch_resnet_from_flax(model), "prob")
    probs = f_torch(images_to_torch(x)).detach().numpy()
    assert np.all((probs > 0.05) & (probs < 0.95)), f"saturated scores {probs}: gradients too small to test"
    return f_jax, f_torch, x, x_adv


@pytest.fixture(scope="module")
def jax_maps(setup):
    f, _, x, x_adv = setup
    xs, xe = jnp.asarray(x), jnp.asarray(x_adv)
    return {
        "efi_v2": np.asarray(advpath_jax.path_attribution(f, xs, xe, weight="v2", steps=STEPS, chunk_size=CHUNK)),
        "efi_v2_smooth": np.asarray(advpath_jax.path_attribution(
            f, xs, xe, weight="v2", steps=STEPS, chunk_size=CHUNK, smoothing=SMOOTHING)),
        "ig": np.asarray(advpath_jax.integrated_gradients(f, xs, steps=STEPS, chunk_size=CHUNK)),
    }


@pytest.mark.parametrize("impl", ta.IMPLS)
@pytest.mark.parametrize("method", ["efi_v2", "efi_v2_smooth", "ig"])
def test_torch_map_equals_jax_map(setup, jax_maps, th, method, impl):
    _, f, x, x_adv = setup
    xs, xe = images_to_torch(x), images_to_torch(x_adv)
    if method == "ig":
        out = ta.integrated_gradients(f, xs, steps=STEPS, chunk_size=CHUNK, impl=impl)
    else:
        smoothing = SMOOTHING if method == "efi_v2_smooth" else None
        out = ta.efi_v2(f, xs, xe, steps=STEPS, chunk_size=CHUNK, smoothing=smoothing, impl=impl)
    out = maps_to_numpy(out)
    assert out.shape == x.shape[:3]
    th.assert_rel_close(out, jax_maps[method], 1e-4)


def test_captum_trapezoid_weights_are_rescaled(setup, th):
    """Captum's riemann_trapezoid weights sum to (M-1)/M: raw Captum IG is (M-1)/M times the
    textbook trapezoid IG of the JAX engine; the wrapper undoes exactly that factor."""
    from captum.attr import IntegratedGradients

    f_jax, f, x, _ = setup
    ref = np.asarray(advpath_jax.integrated_gradients(f_jax, jnp.asarray(x), steps=STEPS, rule="trapezoid",
                                                      chunk_size=CHUNK))
    xt = images_to_torch(x)
    raw = IntegratedGradients(f).attribute(xt, baselines=torch.zeros_like(xt), n_steps=STEPS,
                                           method="riemann_trapezoid").sum(dim=1)
    th.assert_rel_close(maps_to_numpy(raw), ref * (STEPS - 1) / STEPS, 1e-4)
    with pytest.raises(AssertionError):
        th.assert_rel_close(maps_to_numpy(raw), ref, 1e-4)
    wrapped = ta.integrated_gradients(f, xt, steps=STEPS, rule="trapezoid", chunk_size=CHUNK, impl="captum")
    th.assert_rel_close(maps_to_numpy(wrapped), ref, 1e-4)


@pytest.mark.parametrize("impl", ta.IMPLS)
def test_linear_score_closed_forms(impl, th):
    """f(x) = Σ a ⊙ x: ∇f = a, so E_FI^v2 = Σ_c Δ_c² |a_c| and IG = Σ_c x_c a_c exactly."""
    rng = np.random.default_rng(0)
    a = torch.from_numpy(rng.normal(size=(1, 2, 5, 6)).astype(np.float32))

    def f(x):
        return (x * a).sum(dim=(1, 2, 3))

    s = torch.from_numpy(rng.uniform(size=(3, 2, 5, 6)).astype(np.float32))
    e = torch.from_numpy(rng.uniform(size=(3, 2, 5, 6)).astype(np.float32))
    efi = ta.efi_v2(f, s, e, steps=5, chunk_size=2, impl=impl)
    th.assert_rel_close(efi.numpy(), ((e - s) ** 2 * a.abs()).sum(dim=1).numpy(), 1e-5)
    ig = ta.integrated_gradients(f, e, steps=5, chunk_size=2, impl=impl, reduce_channels=False)
    th.assert_rel_close(ig.numpy(), (e * a).numpy(), 1e-5)


def test_torch_smoothing_equals_jax_smoothing(th):
    rng = np.random.default_rng(3)
    maps = rng.uniform(size=(2, 20, 17)).astype(np.float32)
    for size, sigma in [(6, 1.0), (5, 0.8), (1, 0.5)]:
        out = ta.gaussian_smooth(torch.from_numpy(maps), size, sigma).numpy()
        th.assert_rel_close(out, np.asarray(jax_smooth(jnp.asarray(maps), size, sigma)), 1e-5)


def test_bad_arguments_are_rejected(setup):
    _, f, x, x_adv = setup
    xs, xe = images_to_torch(x), images_to_torch(x_adv)
    with pytest.raises(ValueError, match="impl"):
        ta.efi_v2(f, xs, xe, impl="jit")
    with pytest.raises(ValueError, match="shapes differ"):
        ta.efi_v2(f, xs, xe[:1])
    with pytest.raises(ValueError, match="NaN"):
        ta.integrated_gradients(f, xs * float("nan"))
    with pytest.raises(ValueError, match="explicit"):
        ta.integrated_gradients(f, xs, rule=(np.array([0.5]), np.array([1.0])), impl="captum")
    with pytest.raises(ValueError, match="chunk_size"):
        ta.efi_v2(f, xs, xe, chunk_size=0)
    with pytest.raises(ValueError, match="output"):
        ta.torch_score_fn(torch.nn.Identity(), output="probability")


@pytest.mark.parametrize("impl", ["loop", "vmap"])
def test_confident_model_maps_match_and_do_not_underflow(rgb_resnet18, th, impl):
    """Output bias 30 (σ(z) = 1 in float32): both engines differentiate σ as σ(z)σ(−z), so the
    maps are nonzero and equal (torch.sigmoid's own backward σ(1 − σ) would give 0)."""
    from flax import nnx

    model, x = rgb_resnet18
    graphdef, state = nnx.split(model)
    confident = nnx.merge(graphdef, state)
    confident.fc2.bias[...] = jnp.full_like(confident.fc2.bias[...], 30.0)
    x_adv = np.clip(x[::-1] * 0.5 + 0.25, 0.0, 1.0).astype(np.float32)
    f_jax = advpath_jax.score_fn(confident, "prob")
    assert np.all(np.asarray(f_jax(jnp.asarray(x))) == 1.0)
    ref = np.asarray(advpath_jax.path_attribution(f_jax, jnp.asarray(x), jnp.asarray(x_adv), weight="v2",
                                                  steps=STEPS, chunk_size=CHUNK))
    f_torch = ta.torch_score_fn(torch_resnet_from_flax(confident), "prob")
    out = maps_to_numpy(ta.efi_v2(f_torch, images_to_torch(x), images_to_torch(x_adv), steps=STEPS,
                                  chunk_size=CHUNK, impl=impl))
    assert ref.max() > 0
    th.assert_rel_close(out, ref, 1e-4)
