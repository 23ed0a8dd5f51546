"""Convolutional discriminator / critic for the GAN generators (docs/training.md#generators), Flax NNX.

``layers`` stride-2 conv4x4 + LeakyReLU(0.2) stages (channels ``base_channels * 2**i``),
then a dense layer to one logit per image. No normalisation layers, as is usual
for a critic trained with a gradient penalty (the penalty is per sample).
"""

from __future__ import annotations

import dataclasses

import jax
from flax import nnx

from advpath_jax.models.conv import conv_layer
from advpath_jax.models.unet import fan_in_normal


@dataclasses.dataclass(frozen=True)
class DiscriminatorSpec:
    """Everything that fixes a discriminator's parameter shapes."""

    image_size: int = 64
    in_channels: int = 1
    base_channels: int = 16
    layers: int = 4
    extra_inputs: int = 0  # e.g. a class channel for conditional critics

    @property
    def final_size(self) -> int:
        return max(1, self.image_size // 2 ** self.layers)


class Discriminator(nnx.Module):
    """``[B, S, S, C]`` (``S = image_size``) -> logit ``[B]``."""

    def __init__(self, spec: DiscriminatorSpec = DiscriminatorSpec(), *, rngs: nnx.Rngs):
        if spec.image_size % 2 ** spec.layers:
            raise ValueError(f"image_size {spec.image_size} must be divisible by 2**layers = {2 ** spec.layers}")
        self.spec = spec
        convs, c = [], spec.in_channels + spec.extra_inputs
        for i in range(spec.layers):
            cout = spec.base_channels * 2 ** i
            convs.append(conv_layer(c, cout, 4, strides=2, padding="SAME",
                                    kernel_init=fan_in_normal(1.0), rngs=rngs))
            c = cout
        self.convs = nnx.List(convs)
        self.dense = nnx.Linear(c * spec.final_size ** 2, 1, kernel_init=fan_in_normal(1.0), rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        s = self.spec
        expected = (s.image_size, s.image_size, s.in_channels + s.extra_inputs)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"discriminator expects [B, {expected[0]}, {expected[1]}, {expected[2]}], "
                             f"got shape {tuple(x.shape)}")
        y = x
        for conv in self.convs:
            y = jax.nn.leaky_relu(conv(y), 0.2)
        return self.dense(y.reshape(y.shape[0], -1))[:, 0]


def make_discriminator(spec: DiscriminatorSpec = DiscriminatorSpec(), *, seed: int = 0) -> Discriminator:
    return Discriminator(spec, rngs=nnx.Rngs(params=seed))
