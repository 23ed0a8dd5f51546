"""Read a torchvision ResNet ``state_dict`` into the project's Flax ResNet.

Two uses:

* :func:`resnet_from_torchvision`: start from ImageNet (or any torchvision) weights. The
  backbone (stem, the four stages, every BatchNorm's statistics) is converted exactly; the
  paper's head (dropout, Dense 128, Dense 1) is freshly initialised. ``model.features(x)``
  equals torchvision's output before ``avgpool`` (NHWC here, NCHW there).
* :func:`classifier_from_torchvision`: a complete *binary* classifier trained elsewhere,
  whose ``fc`` is either the paper's head written as
  ``nn.Sequential(nn.Dropout(p), nn.Linear(K, H), nn.ReLU(), nn.Linear(H, 1))``
  (keys ``fc.1.*``, ``fc.3.*``) or a single-logit ``nn.Linear(K, 1)``. A single logit
  ``z = w·p + b`` is carried into the two-layer head exactly, through
  ``z = relu(z) - relu(-z)`` (two hidden units; the others are zero).

Layouts: a PyTorch conv weight ``[cout, cin, kh, kw]`` becomes Flax's ``[kh, kw, cin, cout]``,
a Linear weight ``[out, in]`` becomes ``[in, out]``; BatchNorm ``weight/bias/running_mean/
running_var`` become ``scale/bias/mean/var``. The architectures agree: 7x7/2 stem with padding
3, 3x3/2 max pool with padding 1, the stride of a bottleneck on its 3x3 convolution
(torchvision's "v1.5"), BatchNorm epsilon 1e-5.

1-channel images (the project's data): ``first_conv="sum"`` sums the stem's RGB filters, so
the 1-channel model on a grey image equals torchvision on that image copied into the three
channels (convolution is linear in its input channels). ``first_conv="replicate"`` keeps the
RGB filters and builds a 3-channel model; the caller copies the grey channel three times
(``np.repeat(x, 3, axis=-1)``). Both give the same numbers; ``"sum"`` is the one the pipeline
uses (its images have one channel). ImageNet's mean/std normalisation is *not* part of the
model: see ``docs/pretrained.md``.

Files are read with ``torch.load(path, weights_only=True)`` only (no arbitrary pickle);
torch is imported on first use, torchvision is never needed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from advpath_jax.models.resnet import STAGE_BLOCKS, ResNet, ResNetSpec

FIRST_CONV_RULES = ("sum", "replicate")
StateDictLike = Mapping[str, Any] | str | os.PathLike

_BN_LEAVES = {"scale": "weight", "bias": "bias", "mean": "running_mean", "var": "running_var"}


# ----------------------------------------------------------------------------- reading

def load_state_dict_file(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A ``.pth`` state_dict file -> ``{key: float32 array}`` (``num_batches_tracked`` dropped).

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file when it
    is not a PyTorch file, or holds something other than a mapping of names to tensors.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no state_dict file {path}")
    try:
        import torch
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("reading a PyTorch state_dict needs torch: pip install 'advpath-jax[torch]'") from err
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # not a torch file, or a pickle that weights_only refuses
        raise ValueError(f"{path} is not a PyTorch state_dict file readable with "
                         f"torch.load(weights_only=True): {exc}") from exc
    return state_dict_arrays(obj, source=path)


def state_dict_arrays(obj: Any, *, source: str = "state_dict") -> dict[str, np.ndarray]:
    """A mapping of names to tensors/arrays -> ``{key: float32 numpy array}``.

    ``num_batches_tracked`` counters are dropped (Flax has no counterpart). ``ValueError``
    names ``source`` and the first entry that is not a tensor.
    """
    if not isinstance(obj, Mapping):
        raise ValueError(f"{source} holds a {type(obj).__name__}, not a state_dict "
                         f"(a mapping of parameter names to tensors); save model.state_dict()")
    if not obj:
        raise ValueError(f"{source}: the state_dict is empty")
    out = {}
    for key, value in obj.items():
        if not isinstance(key, str) or not hasattr(value, "shape"):
            raise ValueError(f"{source} is not a state_dict: entry {key!r} is a "
                             f"{type(value).__name__}, not a tensor")
        if key.endswith("num_batches_tracked"):
            continue
        if hasattr(value, "detach"):  # torch tensor
            value = value.detach().cpu().float().numpy()
        out[key] = np.asarray(value, np.float32)
    return out


def _as_arrays(state_dict_or_path: StateDictLike) -> tuple[dict[str, np.ndarray], str]:
    if isinstance(state_dict_or_path, (str, os.PathLike)):
        path = os.fspath(state_dict_or_path)
        return load_state_dict_file(path), path
    return state_dict_arrays(state_dict_or_path), "the state_dict"


# ----------------------------------------------------------------------------- architecture

def infer_depth(sd: Mapping[str, np.ndarray], source: str = "the state_dict") -> int:
    """ResNet depth (18, 34 or 50) from the block counts of ``layer1..layer4``."""
    counts = []
    for stage in range(1, 5):
        blocks = {int(m.group(1)) for k in sd if (m := re.match(rf"layer{stage}\.(\d+)\.", k))}
        counts.append(len(blocks))
    bottleneck = "layer1.0.conv3.weight" in sd
    for depth, blocks in STAGE_BLOCKS.items():
        if tuple(counts) == blocks and (depth >= 50) == bottleneck:
            return depth
    kind = "bottleneck" if bottleneck else "basic"
    raise ValueError(f"{source}: not a torchvision ResNet-18/34/50 ({kind} blocks per stage "
                     f"{tuple(counts)}; first key {next(iter(sd))!r})")


def infer_width(sd: Mapping[str, np.ndarray], source: str = "the state_dict") -> float:
    """Width multiplier from the stem's output channels (1.0 for torchvision's ResNets)."""
    if "conv1.weight" not in sd:
        raise ValueError(f"{source}: missing key 'conv1.weight' (not a torchvision ResNet state_dict; "
                         f"first key {next(iter(sd))!r})")
    return sd["conv1.weight"].shape[0] / 64.0


def torchvision_names(spec: ResNetSpec) -> dict[tuple, str]:
    """Flax state path of every backbone tensor -> its torchvision ``state_dict`` key."""
    names: dict[tuple, str] = {("stem_conv", "kernel"): "conv1.weight"}
    names.update({("stem_bn", leaf): f"bn1.{t}" for leaf, t in _BN_LEAVES.items()})
    convs = ("conv1", "conv2", "conv3") if spec.bottleneck else ("conv1", "conv2")
    expansion = 4 if spec.bottleneck else 1
    index, cin = 0, spec.stem_channels
    for stage, (n, c) in enumerate(zip(STAGE_BLOCKS[spec.depth], spec.stage_channels)):
        for i in range(n):
            prefix = f"layer{stage + 1}.{i}"
            for j, conv in enumerate(convs, start=1):
                names[("blocks", index, conv, "kernel")] = f"{prefix}.{conv}.weight"
                names.update({("blocks", index, f"bn{j}", leaf): f"{prefix}.bn{j}.{t}"
                              for leaf, t in _BN_LEAVES.items()})
            stride = 2 if (i == 0 and stage > 0) else 1
            if stride != 1 or cin != c * expansion:  # the block has a projection shortcut
                names[("blocks", index, "shortcut", "layers", 0, "kernel")] = f"{prefix}.downsample.0.weight"
                names.update({("blocks", index, "shortcut", "layers", 1, leaf): f"{prefix}.downsample.1.{t}"
                              for leaf, t in _BN_LEAVES.items()})
            index, cin = index + 1, c * expansion
    return names


def _flax_layout(value: np.ndarray) -> np.ndarray:
    if value.ndim == 4:  # [cout, cin, kh, kw] -> [kh, kw, cin, cout]
        return value.transpose(2, 3, 1, 0)
    if value.ndim == 2:  # [out, in] -> [in, out]
        return value.T
    return value


def _first_conv(kernel: np.ndarray, in_channels: int, source: str) -> np.ndarray:
    """The stem kernel ``[64w, c, 7, 7]`` adapted to ``in_channels`` (PyTorch layout)."""
    have = kernel.shape[1]
    if have == in_channels:
        return kernel
    if have == 3 and in_channels == 1:
        return kernel.sum(axis=1, keepdims=True)
    raise ValueError(f"{source}: 'conv1.weight' takes {have} input channel(s); cannot build a "
                     f"{in_channels}-channel model from it")


def fill_model(model: ResNet, sd: Mapping[str, np.ndarray], names: Mapping[tuple, str], *,
               source: str, in_channels: int, head: bool = False) -> ResNet:
    """Copy ``sd[names[path]]`` into every state entry of ``model`` that ``names`` lists (in place).

    The model must have exactly the entries ``names`` maps (the head ``fc1``/``fc2`` may be
    left out unless ``head``);
    the state_dict must hold exactly the keys ``names`` uses: otherwise ``ValueError`` names
    ``source`` and the first missing, extra or mis-shaped key.
    """
    wanted = list(names.values())
    missing = [k for k in wanted if k not in sd]
    if missing:
        raise ValueError(f"{source}: missing key {missing[0]!r} ({len(missing)} missing; "
                         f"expected a ResNet-{model.spec.depth}{_depth_hint(sd)})")
    extra = [k for k in sd if k not in set(wanted)]
    if extra:
        raise ValueError(f"{source}: unexpected key {extra[0]!r} ({len(extra)} extra; "
                         f"expected a ResNet-{model.spec.depth}{_depth_hint(sd)})")
    state = nnx.state(model, (nnx.Param, nnx.BatchStat))
    flat = dict(nnx.to_flat_state(state))
    unknown = [p for p in names if p not in flat]
    unfilled = [p for p in flat if p not in names and (head or p[0] not in ("fc1", "fc2"))]
    if unknown or unfilled:  # a programming error rather than a bad file
        raise ValueError(f"torchvision names and the Flax model disagree: "
                         f"{'/'.join(map(str, (unknown or unfilled)[0]))}")
    for path, key in names.items():
        value = sd[key]
        if key == "conv1.weight":
            value = _first_conv(value, in_channels, source)
        _set_param(flat[path], _flax_layout(value), key, tuple(sd[key].shape), path, source)
    nnx.update(model, state)
    return model


def _set_param(var, value: np.ndarray, key: str, file_shape: tuple, path: tuple, source: str) -> None:
    """Write ``value`` (already in Flax layout) into ``var``, refusing a shape that does not fit."""
    expected = tuple(np.shape(var.get_value()))
    if tuple(value.shape) != expected:
        raise ValueError(f"{source}: key {key!r} has shape {file_shape}, which does not fit "
                         f"the model's {'/'.join(map(str, path))} {expected} (Flax layout)")
    var.set_value(jnp.asarray(value, jnp.float32))


def _depth_hint(sd: Mapping[str, np.ndarray]) -> str:
    """``", the file holds a ResNet-D"`` when the file's torchvision names tell D, else ``""``."""
    try:
        return f", the file holds a ResNet-{infer_depth(sd)}"
    except ValueError:
        return ""


def _check_first_conv(first_conv: str, in_channels: int) -> int:
    """Channels of the model to build for ``first_conv`` and the images' ``in_channels``."""
    if first_conv not in FIRST_CONV_RULES:
        raise ValueError(f"first_conv must be one of {FIRST_CONV_RULES}, got {first_conv!r}")
    if in_channels not in (1, 3):
        raise ValueError(f"in_channels must be 1 or 3, got {in_channels}")
    return 3 if first_conv == "replicate" else in_channels


def abstract_resnet(spec: ResNetSpec, seed: int) -> ResNet:
    """A ResNet of ``spec`` in eval mode whose backbone is abstract (shapes only: the state_dict
    fills it, and an eager initialisation of a ResNet-50 costs a minute of op dispatch on a CPU)
    and whose head (dropout, ``fc1``, ``fc2``) is freshly initialised from ``seed``."""
    model = nnx.eval_shape(lambda: ResNet(spec, rngs=nnx.Rngs(params=seed, dropout=seed + 1)))
    rngs = nnx.Rngs(params=seed, dropout=seed + 1)
    model.dropout = nnx.Dropout(spec.dropout, rngs=rngs)
    model.fc1 = nnx.Linear(model.feature_channels, spec.head_units, rngs=rngs)
    model.fc2 = nnx.Linear(spec.head_units, 1, rngs=rngs)
    model.eval()
    return model


def check_filled(model: ResNet, source: str) -> ResNet:
    """``model`` once every entry of :func:`abstract_resnet`'s backbone holds an array; else a
    ``ValueError`` naming ``source`` and the first entry still abstract."""
    abstract = [p for p, v in nnx.to_flat_state(nnx.state(model))
                if isinstance(v.get_value(), jax.ShapeDtypeStruct)]
    if abstract:  # a programming error: some entry was neither converted nor initialised
        raise ValueError(f"{source}: model entry {'/'.join(map(str, abstract[0]))} was not filled")
    return model


# ----------------------------------------------------------------------------- public API

def resnet_from_torchvision(state_dict_or_path: StateDictLike, *, depth: int | None = None,
                            in_channels: int = 1, first_conv: str = "sum", dropout: float = 0.3,
                            head_units: int = 128, seed: int = 0) -> ResNet:
    """A project ResNet whose backbone is a torchvision ResNet-18/34/50 ``state_dict``.

    Args:
      state_dict_or_path: the ``state_dict`` (names -> tensors) or a ``.pth`` file of it.
        Its ``fc.*`` entries (ImageNet's 1000-way layer, or anything else) are ignored.
      depth: 18, 34 or 50; inferred from the block counts when None. A file of another
        depth is refused with the first missing or extra key.
      in_channels: channels of the images the model will see (1 or 3).
      first_conv: ``"sum"`` (1-channel model, RGB filters summed) or ``"replicate"``
        (3-channel model with the RGB filters unchanged; feed the grey image copied to
        three channels).
      dropout, head_units, seed: the freshly initialised head.

    Returns the model in eval mode; ``model.features(x [B, H, W, C])`` equals torchvision's
    ``layer4`` output, ``[B, H/32, W/32, 512 or 2048]``.
    """
    channels = _check_first_conv(first_conv, in_channels)
    sd, source = _as_arrays(state_dict_or_path)
    backbone = {k: v for k, v in sd.items() if not k.startswith("fc.")}
    depth = infer_depth(backbone, source) if depth is None else int(depth)
    spec = _spec_for(backbone, depth, channels, dropout, head_units, source)
    model = abstract_resnet(spec, seed)
    fill_model(model, backbone, torchvision_names(spec), source=source, in_channels=channels)
    return check_filled(model, source)


def classifier_from_torchvision(state_dict_or_path: StateDictLike, *, depth: int | None = None,
                                in_channels: int = 1, first_conv: str = "sum", dropout: float = 0.3,
                                head_units: int = 128, seed: int = 0) -> ResNet:
    """A trained torchvision-style *binary* classifier (backbone and head) as a project ResNet.

    The head is the paper's (``fc.1`` Linear K->H, ``fc.3`` Linear H->1; H must equal
    ``head_units``) or a single-logit ``fc`` (carried over exactly with two hidden units,
    ``head_units >= 2``). A 1000-way ImageNet ``fc`` (or any other width) is refused: it is
    not a binary classifier; use :func:`resnet_from_torchvision` to start training from it.
    Returns the model in eval mode; its logit equals the PyTorch model's logit.
    """
    channels = _check_first_conv(first_conv, in_channels)
    sd, source = _as_arrays(state_dict_or_path)
    backbone = {k: v for k, v in sd.items() if not k.startswith("fc.")}
    infer_width(backbone, source)  # a file without torchvision's stem is refused before its head
    depth = infer_depth(backbone, source) if depth is None else int(depth)
    head = _head_kind(sd, source)
    if head == "paper":
        hidden = sd["fc.1.weight"].shape[0]
        if hidden != head_units:
            raise ValueError(f"{source}: key 'fc.1.weight' has {hidden} hidden units, the config asks "
                             f"head_units={head_units}")
    elif head_units < 2:
        raise ValueError(f"a single-logit fc needs head_units >= 2 to be carried over exactly, got {head_units}")
    spec = _spec_for(backbone, depth, channels, dropout, head_units, source)
    model = abstract_resnet(spec, seed)
    fill_model(model, backbone, torchvision_names(spec), source=source, in_channels=channels)
    if head == "paper":
        names = {("fc1", "kernel"): "fc.1.weight", ("fc1", "bias"): "fc.1.bias",
                 ("fc2", "kernel"): "fc.3.weight", ("fc2", "bias"): "fc.3.bias"}
        fc = {k: v for k, v in sd.items() if k.startswith("fc.")}
    else:
        names, fc = _single_logit_as_head(sd, model.feature_channels, head_units, source)
    _fill_head(model, fc, names, source)
    return check_filled(model, source)


# ----------------------------------------------------------------------------- helpers

def _spec_for(backbone: Mapping[str, np.ndarray], depth: int, channels: int, dropout: float,
              head_units: int, source: str) -> ResNetSpec:
    if depth not in STAGE_BLOCKS:
        raise ValueError(f"ResNet depth must be one of {sorted(STAGE_BLOCKS)}, got {depth}")
    width = infer_width(backbone, source)
    spec = ResNetSpec(depth=depth, width=width, in_channels=channels, head_units=int(head_units),
                      dropout=float(dropout))
    if spec.stem_channels != backbone["conv1.weight"].shape[0]:
        raise ValueError(f"{source}: key 'conv1.weight' has {backbone['conv1.weight'].shape[0]} output "
                         f"channels, not a width the project's ResNet can take")
    return spec


def _head_kind(sd: Mapping[str, np.ndarray], source: str) -> str:
    """``"paper"`` (fc.1/fc.3) or ``"linear"`` (fc), after checking it has one output."""
    fc_keys = sorted(k for k in sd if k.startswith("fc."))
    if {"fc.1.weight", "fc.1.bias", "fc.3.weight", "fc.3.bias"} == set(fc_keys):
        out_key, kind = "fc.3.weight", "paper"
    elif {"fc.weight", "fc.bias"} == set(fc_keys):
        out_key, kind = "fc.weight", "linear"
    elif not fc_keys:
        raise ValueError(f"{source}: missing key 'fc.weight' (a trained classifier needs its head: "
                         f"nn.Linear(K, 1) or the paper's Sequential(Dropout, Linear(K, 128), ReLU, "
                         f"Linear(128, 1)))")
    else:
        raise ValueError(f"{source}: unexpected key {fc_keys[0]!r} in the head (expected 'fc.weight'/'fc.bias' "
                         f"or the paper's 'fc.1.*'/'fc.3.*'; found {fc_keys})")
    outputs = sd[out_key].shape[0]
    if outputs != 1:
        raise ValueError(f"{source}: key {out_key!r} has {outputs} outputs; a trained binary classifier "
                         f"has 1 logit. To start training from these (e.g. ImageNet) weights, use "
                         f"classifier.init='torchvision:{source}' instead")
    return kind


def _single_logit_as_head(sd: Mapping[str, np.ndarray], features: int, head_units: int, source: str
                          ) -> tuple[dict[tuple, str], dict[str, np.ndarray]]:
    """``z = w·p + b`` as ``fc2(relu(fc1 p))`` with ``fc1 = [w; -w; 0]``, ``fc2 = [1, -1, 0]``."""
    w, b = sd["fc.weight"], sd["fc.bias"]
    if w.shape != (1, features) or b.shape != (1,):
        raise ValueError(f"{source}: key 'fc.weight' has shape {w.shape}, expected (1, {features})")
    w1 = np.zeros((head_units, features), np.float32)
    b1 = np.zeros((head_units,), np.float32)
    w1[0], w1[1], b1[0], b1[1] = w[0], -w[0], b[0], -b[0]
    w2 = np.zeros((1, head_units), np.float32)
    w2[0, 0], w2[0, 1] = 1.0, -1.0
    fc = {"fc1.weight": w1, "fc1.bias": b1, "fc2.weight": w2, "fc2.bias": np.zeros((1,), np.float32)}
    names = {("fc1", "kernel"): "fc1.weight", ("fc1", "bias"): "fc1.bias",
             ("fc2", "kernel"): "fc2.weight", ("fc2", "bias"): "fc2.bias"}
    return names, fc


def _fill_head(model: ResNet, fc: Mapping[str, np.ndarray], names: Mapping[tuple, str], source: str) -> None:
    state = nnx.state(model, nnx.Param)
    flat = dict(nnx.to_flat_state(state))
    for path, key in names.items():
        _set_param(flat[path], _flax_layout(fc[key]), key, tuple(fc[key].shape), path, source)
    nnx.update(model, state)
