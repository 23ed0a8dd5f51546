"""`advpath import-classifier`: a classifier trained in PyTorch becomes the run's classifier,
which `advpath run` reuses (it trains only what is missing) and `advpath train` refuses to retrain."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from advpath_jax.cli import main as cli_main  # noqa: E402
from advpath_jax.config_utils import load_config  # noqa: E402
from advpath_jax.models.resnet import ResNetSpec  # noqa: E402
from advpath_jax.torch_twin.resnet import TorchResNet, images_to_torch  # noqa: E402

TINY = ["data.image_size=32", "data.num_train=96", "data.num_val=32", "data.num_test=24",
        "classifier.width=0.125"]


def _twin_file(tmp_path, depth=18, width=0.125, name="twin.pth"):
    torch.manual_seed(1)
    twin = TorchResNet(ResNetSpec(depth=depth, width=width, in_channels=1)).eval()
    with torch.no_grad():
        for m in twin.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0.0, 0.3)
                m.running_var.uniform_(0.3, 3.0)
    path = tmp_path / name
    torch.save(twin.state_dict(), path)
    return twin, str(path)


def _argv(*items):
    out = []
    for item in TINY + list(items):
        out += ["--set", item]
    return out


def test_imported_classifier_is_the_runs_classifier(tmp_path, capsys):
    from advpath_jax.pipeline.run import train_all
    from advpath_jax.store.models import load_classifier
    from advpath_jax.training.classifier import train_classifier

    twin, path = _twin_file(tmp_path)
    workdir = tmp_path / "run"
    assert cli_main(["import-classifier", f"twin:{path}", "--workdir", str(workdir), *_argv()]) == 0
    done = json.loads((workdir / "classifier" / "DONE.json").read_text())
    assert done["format"] == "twin" and done["imported_from"] == path and 0.0 <= done["auc"] <= 1.0
    config = load_config("synth_brain", TINY)
    x = np.random.default_rng(0).uniform(size=(3, 32, 32, 1)).astype(np.float32)
    with torch.no_grad():
        ref = twin(images_to_torch(x)).numpy()
    got = np.asarray(load_classifier(str(workdir), config)(x))
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    capsys.readouterr()
    train_all(config, str(workdir), ["classifier"])  # what `advpath run` does first
    assert "classifier: finished earlier" in capsys.readouterr().out
    with pytest.raises(ValueError, match="imported classifier"):
        train_classifier(config, str(workdir))
    assert cli_main(["import-classifier", f"twin:{path}", "--workdir", str(workdir), *_argv()]) == 2
    assert "already holds a classifier" in capsys.readouterr().err


def test_bad_sources_are_refused_with_the_file_and_key(tmp_path, capsys):
    _, path = _twin_file(tmp_path)
    workdir = str(tmp_path / "bad")
    cases = [
        (f"twin:{path}", ["classifier.depth=34"], r"\.pth: missing key 'blocks\.3\.shortcut\.0\.weight' \(95 missing; expected a ResNet-34\)"),
        (f"twin:{path}", ["classifier.width=0.25"], r"\.pth: key '\S+' has shape"),
        (f"onnx:{path}", [], "must be 'torchvision:PATH' or 'twin:PATH'"),
        (f"torchvision:{path}", [], r"\.pth: missing key 'conv1\.weight'"),
    ]
    for source, extra, message in cases:
        assert cli_main(["import-classifier", source, "--workdir", workdir, "--no-eval", *_argv(*extra)]) == 2
        err = capsys.readouterr().err
        assert __import__("re").search(message, err), (source, err)
    assert not (tmp_path / "bad" / "classifier" / "checkpoints").exists()


def test_classifier_init_from_torchvision_weights(tmp_path):
    """`classifier.init = "torchvision:PATH"`: training starts from the file's backbone."""
    from flax import nnx

    from advpath_jax.training.classifier import init_weights_file, initial_classifier

    config = load_config("synth_brain", TINY)
    assert init_weights_file(config) is None
    _, path = _twin_file(tmp_path)  # twin names: not a torchvision file
    config.classifier.init = f"torchvision:{path}"
    with pytest.raises(ValueError, match=r"twin\.pth: missing key 'conv1\.weight'"):
        initial_classifier(config)
    config.classifier.init = "imagenet"
    with pytest.raises(ValueError, match="classifier.init must be"):
        init_weights_file(config)
    # a torchvision-named state_dict of the tiny width: the backbone is the file's
    torch.manual_seed(2)
    import advpath_jax.models.torchvision_import as tvi
    twin = TorchResNet(ResNetSpec(depth=18, width=0.125, in_channels=3))
    model_names = tvi.torchvision_names(ResNetSpec(depth=18, width=0.125, in_channels=3))
    from advpath_jax.torch_twin.convert import twin_names
    from advpath_jax.models.resnet import make_resnet
    flax_to_twin = twin_names(make_resnet(18, width=0.125, in_channels=3))
    tv_sd = {model_names[p]: twin.state_dict()[flax_to_twin[p]] for p in model_names}
    torch.save(tv_sd, tmp_path / "tv.pth")
    config.classifier.init = f"torchvision:{tmp_path / 'tv.pth'}"
    from advpath_jax.data import load_split
    from advpath_jax.training.classifier import MODEL, classifier_task

    task = classifier_task(config, load_split(config.data, "train"), load_split(config.data, "val"))
    model = nnx.merge(nnx.graphdef(initial_classifier(config)), task.init_state()["models"][MODEL])
    stem = np.asarray(model.stem_conv.kernel[...])
    expected = twin.stem_conv.weight.detach().numpy().sum(axis=1, keepdims=True).transpose(2, 3, 1, 0)
    np.testing.assert_allclose(stem, expected, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(model.blocks[3].bn1.var[...]),
                                  twin.blocks[3].bn1.running_var.numpy())
    assert isinstance(model, nnx.Module)


def test_flax_resnet_is_imported_as_is(tmp_path):
    from advpath_jax.models.resnet import make_resnet
    from advpath_jax.pipeline.import_classifier import import_classifier
    from advpath_jax.store.models import load_classifier

    config = load_config("synth_brain", TINY)
    with pytest.raises(ValueError, match="width: model 0.25, config 0.125"):
        import_classifier(config, str(tmp_path / "w"), make_resnet(18, width=0.25), evaluate=False)
    model = make_resnet(18, width=0.125, seed=4)
    summary = import_classifier(config, str(tmp_path / "run"), model, evaluate=False)
    assert summary["format"] == "flax"
    x = np.random.default_rng(5).uniform(size=(2, 32, 32, 1)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(load_classifier(str(tmp_path / "run"), config)(x)),
                                  np.asarray(model(x)))
