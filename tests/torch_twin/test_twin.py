"""The PyTorch twin reproduces the Flax ResNet: logits and input gradients to 1e-4."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from flax import nnx  # noqa: E402

from advpath_jax.models.resnet import ResNetSpec  # noqa: E402
from advpath_jax.torch_twin.convert import load_flax_state, torch_resnet_from_flax  # noqa: E402
from advpath_jax.torch_twin.resnet import TorchResNet, images_to_torch, maps_to_numpy  # noqa: E402

@pytest.fixture(scope="module", params=["resnet18_rgb", "resnet50"])
def pair(request, th, rgb_resnet18):
    if request.param == "resnet50":
        x = th.random_images(2, (2, 64, 48, 1))
        model = th.perturbed_resnet(50, channels=1, seed=50)
    else:
        model, x = rgb_resnet18
    graphdef, state = nnx.split(model)

    def reference(state, xb):  # Flax logits, input gradient of their sum, last feature map
        net = nnx.merge(graphdef, state)
        logits, grad = jax.value_and_grad(lambda v: jnp.sum(net(v)))(xb)
        return net(xb), grad, net.features(xb)

    ref = [np.asarray(a) for a in jax.jit(reference)(state, jnp.asarray(x))]
    return ref, torch_resnet_from_flax(model), x


def test_logits_agree(pair, th):
    (ref, _, _), twin, x = pair
    with torch.no_grad():
        out = twin(images_to_torch(x)).numpy()
    assert out.shape == (x.shape[0],)
    th.assert_rel_close(out, ref, 1e-4)


def test_input_gradients_agree(pair, th):
    (_, ref, _), twin, x = pair
    xt = images_to_torch(x).requires_grad_(True)
    (grad,) = torch.autograd.grad(twin(xt).sum(), xt)
    th.assert_rel_close(grad.permute(0, 2, 3, 1).numpy(), ref, 1e-4)


def test_features_layout(pair, th):
    (_, _, ref), twin, x = pair
    with torch.no_grad():
        feats = twin.features(images_to_torch(x))
    th.assert_rel_close(feats.permute(0, 2, 3, 1).numpy(), ref, 1e-4)


def test_batchnorm_statistics_are_carried_over(rgb_resnet18):
    model, _ = rgb_resnet18
    twin = torch_resnet_from_flax(model)
    np.testing.assert_array_equal(twin.blocks[2].shortcut[1].running_var.numpy(),
                                  np.asarray(model.blocks[2].shortcut.layers[1].var[...]))
    np.testing.assert_array_equal(twin.stem_bn.running_mean.numpy(), np.asarray(model.stem_bn.mean[...]))
    assert twin.stem_bn.eps == 1e-5
    assert not twin.training


def test_other_architecture_is_rejected(rgb_resnet18):
    model, _ = rgb_resnet18
    with pytest.raises(ValueError, match="shape mismatch|counterpart"):
        load_flax_state(TorchResNet(ResNetSpec(depth=34, width=0.125, in_channels=3)), nnx.state(model))
    with pytest.raises(ValueError, match="does not provide"):  # parameters without BatchNorm statistics
        load_flax_state(TorchResNet(ResNetSpec(depth=18, width=0.125, in_channels=3)),
                        nnx.state(model, nnx.Param))
    with pytest.raises(ValueError, match="shape mismatch"):
        load_flax_state(TorchResNet(ResNetSpec(depth=18, width=0.25, in_channels=3)), nnx.state(model))
    with pytest.raises(ValueError, match="shape mismatch"):
        load_flax_state(TorchResNet(ResNetSpec(depth=18, width=0.125, in_channels=1)), nnx.state(model))
    with pytest.raises(ValueError, match="ResNet"):
        torch_resnet_from_flax(object())


def test_bad_images_are_rejected():
    twin = TorchResNet(ResNetSpec(depth=18, width=0.125))
    with pytest.raises(ValueError, match="NaN"):
        images_to_torch(np.full((1, 32, 32, 1), np.nan, np.float32))
    with pytest.raises(ValueError, match=r"\[B, H, W, C\]"):
        images_to_torch(np.zeros((32, 32, 1), np.float32))
    with pytest.raises(ValueError, match="channel"):
        twin(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="at least 32"):
        twin(torch.zeros(1, 1, 16, 16))
    assert maps_to_numpy(torch.ones(2, 3, 4)).shape == (2, 3, 4)


def test_package_imports_without_torch():
    code = ("import sys; sys.modules['torch'] = None; sys.modules['captum'] = None\n"
            "import advpath_jax.torch_twin as tt, advpath_jax.bench.torch_bench as tb\n"
            "import argparse; p = argparse.ArgumentParser(); tb.add_arguments(p)\n"
            "try:\n    tt.TorchResNet\nexcept ImportError as e:\n    print('hint:', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "advpath-jax[torch]" in out.stdout
