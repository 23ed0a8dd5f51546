"""PyTorch twin of ``advpath_jax.models.resnet`` (ResNet-18/34/50 with the paper's head).

Same layers, same explicit symmetric padding, BatchNorm epsilon 1e-5, same head
(global average pool -> dropout -> Linear 128 -> ReLU -> Linear 1). The twin works in
PyTorch's NCHW layout; ``images_to_torch`` / ``maps_to_numpy`` convert from and to the
project's NHWC numpy convention. Module attribute names follow the Flax model so that
``advpath_jax.torch_twin.convert`` can map parameters name by name.
"""

from __future__ import annotations

import numpy as np

from advpath_jax.models.resnet import BN_EPSILON, BN_MOMENTUM, STAGE_BLOCKS, ResNetSpec
from advpath_jax.torch_twin import require_torch
from advpath_jax.validation import check_host_images, check_min_size, check_shape

torch = require_torch()
nn = torch.nn
F = torch.nn.functional


def _conv(cin: int, cout: int, k: int, stride: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False)


def _bn(c: int) -> nn.BatchNorm2d:
    # PyTorch's momentum weighs the new batch; Flax's weighs the running average.
    return nn.BatchNorm2d(c, eps=BN_EPSILON, momentum=1.0 - BN_MOMENTUM)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, c: int, stride: int):
        super().__init__()
        self.conv1, self.bn1 = _conv(cin, c, 3, stride), _bn(c)
        self.conv2, self.bn2 = _conv(c, c, 3, 1), _bn(c)
        needs_projection = stride != 1 or cin != c
        self.shortcut = nn.Sequential(_conv(cin, c, 1, stride), _bn(c)) if needs_projection else None

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        skip = x if self.shortcut is None else self.shortcut(x)
        return F.relu(y + skip)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, c: int, stride: int):
        super().__init__()
        cout = c * self.expansion
        self.conv1, self.bn1 = _conv(cin, c, 1, 1), _bn(c)
        self.conv2, self.bn2 = _conv(c, c, 3, stride), _bn(c)
        self.conv3, self.bn3 = _conv(c, cout, 1, 1), _bn(cout)
        needs_projection = stride != 1 or cin != cout
        self.shortcut = nn.Sequential(_conv(cin, cout, 1, stride), _bn(cout)) if needs_projection else None

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        skip = x if self.shortcut is None else self.shortcut(x)
        return F.relu(y + skip)


class TorchResNet(nn.Module):
    """ResNet with the paper's binary head. Input ``[B, C, H, W]`` (NCHW), output logit ``[B]``."""

    def __init__(self, spec: ResNetSpec = ResNetSpec()):
        super().__init__()
        if spec.depth not in STAGE_BLOCKS:
            raise ValueError(f"ResNet depth must be one of {sorted(STAGE_BLOCKS)}, got {spec.depth}")
        if spec.in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 or 3, got {spec.in_channels}")
        self.spec = spec
        block_cls = Bottleneck if spec.bottleneck else BasicBlock
        self.stem_conv = _conv(spec.in_channels, spec.stem_channels, 7, 2)
        self.stem_bn = _bn(spec.stem_channels)
        blocks = []
        cin = spec.stem_channels
        for stage, (n, c) in enumerate(zip(STAGE_BLOCKS[spec.depth], spec.stage_channels)):
            for i in range(n):
                stride = 2 if (i == 0 and stage > 0) else 1
                blocks.append(block_cls(cin, c, stride))
                cin = c * block_cls.expansion
        self.blocks = nn.ModuleList(blocks)
        self.feature_channels = cin
        self.dropout = nn.Dropout(spec.dropout)
        self.fc1 = nn.Linear(cin, spec.head_units)
        self.fc2 = nn.Linear(spec.head_units, 1)

    def features(self, x):
        """``[B, C, H, W]`` -> last-stage feature map ``[B, K, H/32, W/32]``."""
        _check_nchw(x, self.spec.in_channels)
        y = F.relu(self.stem_bn(self.stem_conv(x)))
        y = F.max_pool2d(y, 3, stride=2, padding=1)
        for block in self.blocks:
            y = block(y)
        return y

    def head(self, a):
        """Feature map ``[B, K, h, w]`` -> logit ``[B]``."""
        pooled = a.mean(dim=(2, 3))
        hidden = F.relu(self.fc1(self.dropout(pooled)))
        return self.fc2(hidden)[:, 0]

    def forward(self, x):
        return self.head(self.features(x))


def _check_nchw(x, channels: int) -> None:
    check_shape(x.shape, name="images", rank=4, layout="[B, C, H, W]", channels=channels,
                channel_axis=1, allow_empty=True)
    check_min_size(x.shape[2:], 32, "images")


def images_to_torch(x: np.ndarray, *, device: str | None = None, dtype=None):
    """NHWC numpy images ``[B, H, W, C]`` (floating, finite) -> contiguous NCHW tensor ``[B, C, H, W]``."""
    arr = check_host_images(x, name="images", value_range=None, allow_empty=True)
    t = torch.from_numpy(np.ascontiguousarray(arr.transpose(0, 3, 1, 2)))
    return t.to(device=device, dtype=dtype or torch.float32)


def maps_to_numpy(maps) -> np.ndarray:
    """Attribution maps ``[B, H, W]`` (tensor) -> float32 numpy ``[B, H, W]``."""
    return maps.detach().to("cpu", torch.float32).numpy()
