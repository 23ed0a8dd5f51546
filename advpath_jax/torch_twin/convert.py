"""Load a Flax NNX ResNet's parameters and BatchNorm statistics into the PyTorch twin.

Names match one to one (``blocks.3.conv1``, ``stem_bn``, ``fc2`` ...); only the layouts
differ: a Flax conv kernel ``[kh, kw, cin, cout]`` becomes PyTorch's ``[cout, cin, kh, kw]``,
a Dense kernel ``[in, out]`` becomes ``[out, in]``; BatchNorm ``scale/bias/mean/var`` become
``weight/bias/running_mean/running_var``. Every tensor of the twin must be filled exactly
once, with the right shape, or a ``ValueError`` names the offending entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from flax import nnx

from advpath_jax.models.resnet import ResNet, ResNetSpec
from advpath_jax.models.torchvision_import import abstract_resnet, check_filled, fill_model, state_dict_arrays
from advpath_jax.torch_twin import require_torch
from advpath_jax.torch_twin.resnet import TorchResNet

torch = require_torch()

_LEAF_NAMES = {"kernel": "weight", "scale": "weight", "bias": "bias",
               "mean": "running_mean", "var": "running_var"}
_IGNORED_LEAVES = {"key", "count"}  # dropout RNG state: nothing to carry over


def _leaf_value(v: Any) -> np.ndarray:
    if isinstance(v, nnx.Variable):
        v = v.get_value()
    return np.asarray(v, dtype=np.float32)


def _flatten(tree: Any, prefix: tuple = ()) -> list[tuple[tuple, Any]]:
    if isinstance(tree, nnx.State):
        tree = dict(tree.items())
    if isinstance(tree, Mapping):
        out = []
        for k, v in tree.items():
            out.extend(_flatten(v, prefix + (k,)))
        return out
    if isinstance(tree, (list, tuple)) and not hasattr(tree, "shape"):
        out = []
        for i, v in enumerate(tree):
            out.extend(_flatten(v, prefix + (i,)))
        return out
    return [(prefix, tree)]


def _torch_name(path: tuple) -> str | None:
    """Flax state path -> PyTorch state_dict key (None for entries with no tensor)."""
    *modules, leaf = (str(p) for p in path)
    if leaf in _IGNORED_LEAVES:
        return None
    if leaf not in _LEAF_NAMES:
        raise ValueError(f"unexpected Flax state entry {'/'.join(map(str, path))!r}")
    modules = [m for m in modules if m != "layers"]  # nnx.Sequential keeps its layers under 'layers'
    return ".".join(modules + [_LEAF_NAMES[leaf]])


def _to_torch_layout(value: np.ndarray) -> np.ndarray:
    if value.ndim == 4:  # conv kernel [kh, kw, cin, cout] -> [cout, cin, kh, kw]
        return value.transpose(3, 2, 0, 1)
    if value.ndim == 2:  # dense kernel [in, out] -> [out, in]
        return value.T
    return value


def load_flax_state(twin: TorchResNet, state: Any) -> TorchResNet:
    """Copy a Flax ResNet's state (an ``nnx.Module``, ``nnx.state(model)`` or its pure
    dict) into ``twin`` in place; returns ``twin``. Raises ``ValueError`` on any
    missing, unexpected or mis-shaped entry."""
    if isinstance(state, nnx.Module):
        state = nnx.state(state)
    targets = {k: v for k, v in twin.state_dict().items() if not k.endswith("num_batches_tracked")}
    filled: set[str] = set()
    for path, leaf in _flatten(state):
        name = _torch_name(path)
        if name is None:
            continue
        if name not in targets:
            raise ValueError(f"Flax entry {'/'.join(map(str, path))!r} has no counterpart "
                             f"{name!r} in the PyTorch twin (different architecture?)")
        if name in filled:
            raise ValueError(f"PyTorch tensor {name!r} would be filled twice")
        value = _to_torch_layout(_leaf_value(leaf))
        target = targets[name]
        if tuple(value.shape) != tuple(target.shape):
            raise ValueError(f"shape mismatch for {name!r}: Flax gives {value.shape}, "
                             f"the twin expects {tuple(target.shape)}")
        with torch.no_grad():
            target.copy_(torch.from_numpy(np.array(value, dtype=np.float32, copy=True)))
        filled.add(name)
    missing = sorted(set(targets) - filled)
    if missing:
        raise ValueError(f"the Flax state does not provide {len(missing)} twin tensor(s), "
                         f"e.g. {missing[:3]}")
    return twin


def torch_resnet_from_flax(model: ResNet, *, device: str | None = None) -> TorchResNet:
    """A ``TorchResNet`` with ``model``'s spec, weights and BatchNorm statistics, in eval mode."""
    if not isinstance(model, ResNet):
        raise ValueError(f"expected an advpath_jax ResNet, got {type(model).__name__}")
    twin = TorchResNet(model.spec)
    load_flax_state(twin, nnx.state(model))
    return twin.to(device).eval()


# ----------------------------------------------------------------------------- the inverse

def twin_names(model: ResNet) -> dict[tuple, str]:
    """Flax state path of every parameter and statistic of ``model`` -> the twin's key."""
    state = nnx.state(model, (nnx.Param, nnx.BatchStat))
    return {tuple(path): name for path, _ in nnx.to_flat_state(state)
            if (name := _torch_name(tuple(path))) is not None}


def flax_resnet_from_torch(twin_or_state_dict: Any, spec: ResNetSpec | None = None, *,
                           source: str = "the PyTorch twin") -> ResNet:
    """The inverse of :func:`torch_resnet_from_flax`: a ``TorchResNet`` (or its ``state_dict``)
    -> a Flax ResNet in eval mode with the same parameters and BatchNorm statistics.

    ``spec`` defaults to the twin's. A state_dict with missing, extra or mis-shaped entries
    raises ``ValueError`` naming ``source`` and the first offending key.
    """
    if isinstance(twin_or_state_dict, TorchResNet):
        spec = twin_or_state_dict.spec if spec is None else spec
        twin_or_state_dict = twin_or_state_dict.state_dict()
    if spec is None:
        raise ValueError("flax_resnet_from_torch: give the ResNetSpec of a bare state_dict")
    sd = state_dict_arrays(twin_or_state_dict, source=source)
    model = abstract_resnet(spec, seed=0)
    fill_model(model, sd, twin_names(model), source=source, in_channels=spec.in_channels, head=True)
    return check_filled(model, source)
