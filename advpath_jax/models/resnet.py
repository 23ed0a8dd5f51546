"""Flax NNX ResNet family (18/34 basic blocks, 50 bottleneck) with the paper's head.

NNX is used because models are plain Python objects (easy to inspect in a notebook)
while still splitting into a static ``GraphDef`` and an array ``State`` for ``jax.jit``.

Layout is NHWC: images ``[B, H, W, C]`` with C = 1 or 3. Padding is explicit and
symmetric (as in the PyTorch reference architecture), so the PyTorch twin in
``advpath_jax.torch_twin`` reproduces the numbers exactly.

* ``model.features(x, stage=None)``: the feature map ``[B, h, w, K]`` after stage 1-4
  (default the last; GradCAM's A). ``model.head(a, stage=None)`` runs the rest.
* ``model.head(a)``: global average pool -> dropout 0.3 -> Dense 128 -> ReLU -> Dense 1,
  the classifier logit ``[B]``. (The ReLU after Dense 128 is inferred: the paper names
  the layer sizes only.)
* ``model(x)`` = ``model.head(model.features(x))``.

``model.train()`` / ``model.eval()`` switch BatchNorm statistics and dropout.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from advpath_jax.models.conv import conv_layer
from advpath_jax.models.norm import BatchNorm
from advpath_jax.models.pooling import max_pool
from advpath_jax.validation import check_min_size, check_shape

STAGE_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3)}
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


@dataclasses.dataclass(frozen=True)
class ResNetSpec:
    """Everything that fixes the parameter shapes of a ResNet (used to check checkpoints)."""

    depth: int = 18
    width: float = 1.0
    in_channels: int = 1
    head_units: int = 128
    dropout: float = 0.3

    @property
    def bottleneck(self) -> bool:
        return self.depth >= 50

    @property
    def stage_channels(self) -> tuple[int, ...]:
        return tuple(max(4, int(round(c * self.width))) for c in (64, 128, 256, 512))

    @property
    def stem_channels(self) -> int:
        return max(4, int(round(64 * self.width)))


def _conv(cin: int, cout: int, k: int, stride: int, rngs: nnx.Rngs) -> nnx.Conv:
    pad = k // 2
    return conv_layer(cin, cout, k, strides=stride, padding=((pad, pad), (pad, pad)), use_bias=False,
                      kernel_init=nnx.initializers.kaiming_normal(), rngs=rngs)


def _bn(c: int, rngs: nnx.Rngs, zero_init: bool = False) -> BatchNorm:
    return BatchNorm(
        c, momentum=BN_MOMENTUM, epsilon=BN_EPSILON, rngs=rngs,
        scale_init=nnx.initializers.zeros if zero_init else nnx.initializers.ones,
    )


class BasicBlock(nnx.Module):
    expansion = 1

    def __init__(self, cin: int, c: int, stride: int, *, rngs: nnx.Rngs):
        self.conv1, self.bn1 = _conv(cin, c, 3, stride, rngs), _bn(c, rngs)
        self.conv2, self.bn2 = _conv(c, c, 3, 1, rngs), _bn(c, rngs)
        needs_projection = stride != 1 or cin != c
        self.shortcut = (nnx.Sequential(_conv(cin, c, 1, stride, rngs), _bn(c, rngs))
                         if needs_projection else None)

    def __call__(self, x: jax.Array) -> jax.Array:
        y = jax.nn.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        skip = x if self.shortcut is None else self.shortcut(x)
        return jax.nn.relu(y + skip)


class Bottleneck(nnx.Module):
    expansion = 4

    def __init__(self, cin: int, c: int, stride: int, *, rngs: nnx.Rngs):
        cout = c * self.expansion
        self.conv1, self.bn1 = _conv(cin, c, 1, 1, rngs), _bn(c, rngs)
        self.conv2, self.bn2 = _conv(c, c, 3, stride, rngs), _bn(c, rngs)
        self.conv3, self.bn3 = _conv(c, cout, 1, 1, rngs), _bn(cout, rngs)
        needs_projection = stride != 1 or cin != cout
        self.shortcut = (nnx.Sequential(_conv(cin, cout, 1, stride, rngs), _bn(cout, rngs))
                         if needs_projection else None)

    def __call__(self, x: jax.Array) -> jax.Array:
        y = jax.nn.relu(self.bn1(self.conv1(x)))
        y = jax.nn.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        skip = x if self.shortcut is None else self.shortcut(x)
        return jax.nn.relu(y + skip)


class ResNet(nnx.Module):
    """ResNet-{18,34,50} with the paper's binary head. Input ``[B, H, W, C]``, H, W >= 32."""

    def __init__(self, spec: ResNetSpec = ResNetSpec(), *, rngs: nnx.Rngs):
        if spec.depth not in STAGE_BLOCKS:
            raise ValueError(f"ResNet depth must be one of {sorted(STAGE_BLOCKS)}, got {spec.depth}")
        if spec.in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 or 3, got {spec.in_channels}")
        self.spec = spec
        block_cls = Bottleneck if spec.bottleneck else BasicBlock
        self.stem_conv = _conv(spec.in_channels, spec.stem_channels, 7, 2, rngs)
        self.stem_bn = _bn(spec.stem_channels, rngs)
        blocks = []
        cin = spec.stem_channels
        for stage, (n, c) in enumerate(zip(STAGE_BLOCKS[spec.depth], spec.stage_channels)):
            for i in range(n):
                stride = 2 if (i == 0 and stage > 0) else 1
                blocks.append(block_cls(cin, c, stride, rngs=rngs))
                cin = c * block_cls.expansion
        self.blocks = nnx.List(blocks) if hasattr(nnx, "List") else blocks
        self.feature_channels = cin
        self.dropout = nnx.Dropout(spec.dropout, rngs=rngs)
        self.fc1 = nnx.Linear(cin, spec.head_units, rngs=rngs)
        self.fc2 = nnx.Linear(spec.head_units, 1, rngs=rngs)

    def features(self, x: jax.Array, stage: int | None = None) -> jax.Array:
        """``[B, H, W, C]`` -> feature map after ``stage`` (1-4; None: the last, ``[B, H/32, W/32, K]``).

        Stage k's map is ``stage_hw((H, W))[k - 1]`` pixels (stage 1: H/4, each later one half).
        """
        _check_image_batch(x, self.spec.in_channels)
        y = jax.nn.relu(self.stem_bn(self.stem_conv(x)))
        y = max_pool(y, (3, 3), (2, 2), ((1, 1), (1, 1)))  # gradient without select-and-scatter
        for block in self.blocks[:self._blocks_through(stage)]:
            y = block(y)
        return y

    def head(self, a: jax.Array, stage: int | None = None) -> jax.Array:
        """Feature map of ``stage`` ``[B, h, w, K]`` -> logit ``[B]`` (the later stages, then the
        pooled head: global average pool -> dropout -> Dense -> ReLU -> Dense 1)."""
        for block in self.blocks[self._blocks_through(stage):]:
            a = block(a)
        pooled = a.mean(axis=(1, 2))
        hidden = jax.nn.relu(self.fc1(self.dropout(pooled)))
        return self.fc2(hidden)[:, 0]

    def _blocks_through(self, stage: int | None) -> int:
        """Number of residual blocks in stages 1..``stage`` (None: all)."""
        counts = STAGE_BLOCKS[self.spec.depth]
        if stage is None:
            return sum(counts)
        if isinstance(stage, bool) or int(stage) != stage or not 1 <= stage <= len(counts):
            raise ValueError(f"ResNet stage must be an integer in 1..{len(counts)} or None, got {stage!r}")
        return sum(counts[:int(stage)])

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.head(self.features(x))


def _check_image_batch(x: jax.Array, channels: int) -> None:
    """Static checks only: the model also runs on traced inputs."""
    check_shape(x.shape, name="images", rank=4, channels=channels, allow_empty=True)
    check_min_size(x.shape[1:3], 32, "images")


def stage_hw(image_hw: tuple[int, int], n_stages: int = len(STAGE_BLOCKS[18])) -> list[tuple[int, int]]:
    """Spatial size ``(h, w)`` of each stage's feature map (1..n) for images ``image_hw``.

    The stride-2 stem conv (7×7, pad 3), the max pool (3×3, pad 1) and the stride-2 first
    convolution of stages 2-4 (3×3, pad 1) each map a side n to ⌈n/2⌉.
    """
    def halve(n: int) -> int:
        return -(-int(n) // 2)

    h, w = halve(halve(image_hw[0])), halve(halve(image_hw[1]))
    sizes = [(h, w)]
    for _ in range(n_stages - 1):
        h, w = halve(h), halve(w)
        sizes.append((h, w))
    return sizes


def make_resnet(depth: int = 18, *, width: float = 1.0, in_channels: int = 1,
                dropout: float = 0.3, head_units: int = 128, seed: int = 0) -> ResNet:
    """Build a freshly initialised ResNet (in train mode)."""
    spec = ResNetSpec(depth=depth, width=width, in_channels=in_channels,
                      head_units=head_units, dropout=dropout)
    return ResNet(spec, rngs=nnx.Rngs(params=seed, dropout=seed + 1))
