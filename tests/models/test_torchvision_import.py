"""torchvision ResNet state_dicts -> the project's Flax ResNet: exact backbones, exact trained
classifiers, and a clear error for every bad file (torchvision builds the references with random
weights and perturbed BatchNorm statistics; nothing is downloaded)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import jax  # noqa: E402
from flax import nnx  # noqa: E402

from advpath_jax.models import classifier_from_torchvision, resnet_from_torchvision  # noqa: E402


def _perturb_batchnorm(net, seed: int):
    """Random BatchNorm statistics and affine parameters (the defaults 0/1 would hide layout bugs)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                c = module.num_features
                module.running_mean.copy_(0.3 * torch.randn(c, generator=g))
                module.running_var.copy_(0.3 + 2.7 * torch.rand(c, generator=g))
                module.weight.copy_(0.5 + torch.rand(c, generator=g))
                module.bias.copy_(0.2 * torch.randn(c, generator=g))
    return net.eval()


def _tv_resnet(models, depth: int, seed: int, head=None):
    torch.manual_seed(seed)
    net = getattr(models, f"resnet{depth}")(weights=None)
    if head == "paper":
        net.fc = torch.nn.Sequential(torch.nn.Dropout(0.3), torch.nn.Linear(net.fc.in_features, 128),
                                     torch.nn.ReLU(), torch.nn.Linear(128, 1))
    elif head == "linear":
        net.fc = torch.nn.Linear(net.fc.in_features, 1)
    return _perturb_batchnorm(net, seed + 1)


def _tv_features(net, x_nhwc: np.ndarray) -> np.ndarray:
    """torchvision's output before ``avgpool``, as NHWC."""
    trunk = torch.nn.Sequential(*list(net.children())[:-2])
    with torch.no_grad():
        out = trunk(torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2))))
    return out.permute(0, 2, 3, 1).numpy()


def _tv_logits(net, x_nhwc: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net(torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2))))[:, 0].numpy()


def _jitted(model, method: str, x: np.ndarray) -> np.ndarray:
    """``model.<method>(x)`` compiled once (op-by-op dispatch of a ResNet-50 is slow on a CPU)."""
    graphdef, state = nnx.split(model)
    return np.asarray(jax.jit(lambda s, v: getattr(nnx.merge(graphdef, s), method)(v))(state, x))


def _rel_err(actual, reference) -> float:
    actual, reference = np.asarray(actual, np.float64), np.asarray(reference, np.float64)
    assert actual.shape == reference.shape, (actual.shape, reference.shape)
    scale = np.max(np.abs(reference))
    assert scale > 0, "vacuous comparison: the reference is zero"
    return float(np.max(np.abs(actual - reference)) / scale)


def _save(net_or_dict, path) -> str:
    sd = net_or_dict.state_dict() if hasattr(net_or_dict, "state_dict") else net_or_dict
    torch.save(sd, path)
    return str(path)


@pytest.fixture(scope="module")
def r18_state(torchvision_models):
    return _tv_resnet(torchvision_models, 18, seed=3).state_dict()


@pytest.fixture(scope="module", params=[18, 50])
def tv_backbone(request, torchvision_models, tmp_path_factory):
    depth = request.param
    net = _tv_resnet(torchvision_models, depth, seed=depth)
    path = _save(net, tmp_path_factory.mktemp("tv") / f"resnet{depth}.pth")
    return depth, net, path


def test_pooled_features_equal_torchvision_on_rgb(tv_backbone):
    depth, net, path = tv_backbone
    x = np.random.default_rng(0).uniform(size=(2, 64, 48, 3)).astype(np.float32)
    model = resnet_from_torchvision(path, in_channels=3)  # depth inferred from the file
    assert model.spec.depth == depth and model.spec.in_channels == 3
    ours = _jitted(model, "features", x)
    ref = _tv_features(net, x)
    assert _rel_err(ours, ref) <= 1e-4
    assert _rel_err(ours.mean(axis=(1, 2)), ref.mean(axis=(1, 2))) <= 1e-4  # what avgpool gives


def test_grey_model_sums_the_filters_and_equals_torchvision_on_replicated_grey(tv_backbone):
    depth, net, path = tv_backbone
    grey = np.random.default_rng(1).uniform(size=(2, 64, 64, 1)).astype(np.float32)
    rgb = np.repeat(grey, 3, axis=-1)
    ref = _tv_features(net, rgb)
    summed = resnet_from_torchvision(path, depth=depth, in_channels=1)
    assert summed.spec.in_channels == 1
    np.testing.assert_allclose(np.asarray(summed.stem_conv.kernel[...])[..., 0, :],
                               net.conv1.weight.detach().numpy().sum(axis=1).transpose(1, 2, 0), rtol=1e-6)
    assert _rel_err(_jitted(summed, "features", grey), ref) <= 1e-4
    if depth == 18:  # the other rule: a 3-channel model fed the grey channel three times
        replicated = resnet_from_torchvision(path, in_channels=1, first_conv="replicate")
        assert replicated.spec.in_channels == 3
        assert _rel_err(_jitted(replicated, "features", rgb), ref) <= 1e-4


def test_head_is_fresh_and_the_model_runs(r18_state):
    model = resnet_from_torchvision(r18_state)
    assert model.fc1.kernel.shape == (model.feature_channels, 128) and model.fc2.kernel.shape == (128, 1)
    assert not np.allclose(np.asarray(model.fc1.kernel[...]), 0.0)
    logits = _jitted(model, "__call__", np.zeros((1, 32, 32, 1), np.float32))
    assert logits.shape == (1,) and np.isfinite(logits).all()


@pytest.mark.parametrize("head", ["paper", "linear"])
def test_trained_classifier_gives_the_same_logits(torchvision_models, tmp_path, head):
    net = _tv_resnet(torchvision_models, 18, seed=7, head=head)
    path = _save(net, tmp_path / "clf.pth")
    x = np.random.default_rng(2).uniform(size=(3, 64, 64, 1)).astype(np.float32)
    model = classifier_from_torchvision(path)
    ref = _tv_logits(net, np.repeat(x, 3, axis=-1))
    assert np.std(ref) > 0
    assert _rel_err(_jitted(model, "__call__", x), ref) <= 1e-4


# ----------------------------------------------------------------------------- bad input

def test_state_dict_of_another_depth(r18_state, tmp_path):
    path = _save(r18_state, tmp_path / "r18.pth")
    with pytest.raises(ValueError, match=r"r18\.pth: missing key 'layer1\.0\.conv3\.weight'.*expected a ResNet-50, the file holds a ResNet-18"):
        resnet_from_torchvision(path, depth=50)
    with pytest.raises(ValueError, match=r"r18\.pth: missing key 'layer1\.2\.conv1\.weight'.*ResNet-34"):
        resnet_from_torchvision(path, depth=34)


def test_missing_and_extra_keys(r18_state, tmp_path):
    missing = {k: v for k, v in r18_state.items() if k != "layer2.0.bn1.running_var"}
    path = _save(missing, tmp_path / "missing.pth")
    with pytest.raises(ValueError, match=r"missing\.pth: missing key 'layer2\.0\.bn1\.running_var'"):
        resnet_from_torchvision(path)
    extra = dict(r18_state, **{"layer3.0.conv9.weight": torch.zeros(1)})
    path = _save(extra, tmp_path / "extra.pth")
    with pytest.raises(ValueError, match=r"extra\.pth: unexpected key 'layer3\.0\.conv9\.weight'"):
        resnet_from_torchvision(path)
    wrong = dict(r18_state, **{"layer1.1.conv2.weight": torch.zeros(64, 64, 1, 1)})
    path = _save(wrong, tmp_path / "shape.pth")
    with pytest.raises(ValueError, match=r"shape\.pth: key 'layer1\.1\.conv2\.weight' has shape \(64, 64, 1, 1\)"):
        resnet_from_torchvision(path)


def test_imagenet_head_is_not_a_binary_classifier(r18_state, tmp_path):
    path = _save(r18_state, tmp_path / "imagenet.pth")  # fc: Linear(512, 1000)
    with pytest.raises(ValueError, match=r"imagenet\.pth: key 'fc\.weight' has 1000 outputs.*classifier\.init"):
        classifier_from_torchvision(path)
    backbone_only = {k: v for k, v in r18_state.items() if not k.startswith("fc.")}
    path = _save(backbone_only, tmp_path / "nohead.pth")
    with pytest.raises(ValueError, match=r"nohead\.pth: missing key 'fc\.weight'"):
        classifier_from_torchvision(path)


def test_files_that_are_not_state_dicts(r18_state, tmp_path):
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    with pytest.raises(ValueError, match=r"notes\.pth is not a PyTorch state_dict file"):
        resnet_from_torchvision(str(text))
    listed = _save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(ValueError, match=r"list\.pth holds a list, not a state_dict"):
        resnet_from_torchvision(listed)
    whole = tmp_path / "module.pth"
    torch.save(torch.nn.Linear(2, 1), whole)  # a pickled module: weights_only refuses to run its code
    with pytest.raises(ValueError, match=r"module\.pth is not a PyTorch state_dict file"):
        resnet_from_torchvision(str(whole))
    with pytest.raises(FileNotFoundError, match="absent.pth"):
        resnet_from_torchvision(str(tmp_path / "absent.pth"))
    with pytest.raises(ValueError, match="first_conv"):
        resnet_from_torchvision(r18_state, first_conv="mean")
