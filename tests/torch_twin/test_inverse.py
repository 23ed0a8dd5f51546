"""PyTorch twin -> Flax (the inverse of torch_resnet_from_flax): exact round trips, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from flax import nnx  # noqa: E402

from advpath_jax.models.resnet import ResNetSpec  # noqa: E402
from advpath_jax.torch_twin.convert import flax_resnet_from_torch, torch_resnet_from_flax  # noqa: E402
from advpath_jax.torch_twin.resnet import TorchResNet, images_to_torch  # noqa: E402


def _arrays(model):
    return {p: np.asarray(v.get_value()) for p, v in nnx.to_flat_state(nnx.state(model, (nnx.Param, nnx.BatchStat)))}


def test_flax_to_twin_to_flax_is_exact(rgb_resnet18):
    model, x = rgb_resnet18
    back = flax_resnet_from_torch(torch_resnet_from_flax(model))
    before, after = _arrays(model), _arrays(back)
    assert before.keys() == after.keys()
    for path in before:
        np.testing.assert_array_equal(after[path], before[path], err_msg=str(path))
    np.testing.assert_array_equal(np.asarray(back(x)), np.asarray(model(x)))


def test_twin_to_flax_gives_the_twins_logits(th):
    torch.manual_seed(0)
    spec = ResNetSpec(depth=50, width=0.125, in_channels=1)
    twin = TorchResNet(spec).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics
        for m in twin.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0.0, 0.3)
                m.running_var.uniform_(0.3, 3.0)
    x = th.random_images(3, (2, 64, 32, 1))
    with torch.no_grad():
        ref = twin(images_to_torch(x)).numpy()
    th.assert_rel_close(flax_resnet_from_torch(twin)(x), ref, 1e-4)


def test_bad_twin_state_dicts_name_the_key():
    spec = ResNetSpec(depth=18, width=0.125, in_channels=1)
    sd = TorchResNet(spec).state_dict()
    missing = {k: v for k, v in sd.items() if k != "blocks.3.bn2.running_mean"}
    with pytest.raises(ValueError, match=r"twin\.pt: missing key 'blocks\.3\.bn2\.running_mean'"):
        flax_resnet_from_torch(missing, spec, source="twin.pt")
    with pytest.raises(ValueError, match=r"twin\.pt: unexpected key 'blocks\.9\.conv1\.weight'"):
        flax_resnet_from_torch(dict(sd, **{"blocks.9.conv1.weight": torch.zeros(1)}), spec, source="twin.pt")
    with pytest.raises(ValueError, match=r"key 'fc2\.weight' has shape \(2, 128\)"):
        flax_resnet_from_torch(dict(sd, **{"fc2.weight": torch.zeros(2, 128)}), spec)
