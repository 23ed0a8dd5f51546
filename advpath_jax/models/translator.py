"""The AOPC perturbation translator, Fixed-Point-GAN style (Siddiquee et al., 2019), Flax NNX.

``G(x, c)`` takes the image and the target class ``c`` (0 healthy, 1 pathological) as an
extra constant channel, and predicts a residual: ``x' = clip(x + G(x, c), 0, 1)``.
The trunk is the project's U-Net encoder/decoder (:mod:`advpath_jax.models.unet`); the
1×1 output conv starts at zero, so an untrained translator is the identity.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from advpath_jax.models.conv import conv_layer
from advpath_jax.models.unet import UNetSpec, _Trunk


@dataclasses.dataclass(frozen=True)
class TranslatorSpec:
    """Everything that fixes the translator's parameter shapes (used to check checkpoints)."""

    base_channels: int = 16
    depth: int = 3
    in_channels: int = 1
    dropout: float = 0.0

    def trunk_spec(self) -> UNetSpec:
        return UNetSpec(base_channels=self.base_channels, depth=self.depth,
                        in_channels=self.in_channels + 1, out_channels=self.in_channels,
                        dropout=self.dropout)


class Translator(nnx.Module):
    """``(x [B,H,W,C] in [0,1], c [B] target class) -> x' [B,H,W,C] in [0,1]``."""

    def __init__(self, spec: TranslatorSpec = TranslatorSpec(), *, rngs: nnx.Rngs):
        self.spec = spec
        self.trunk = _Trunk(spec.trunk_spec(), rngs=rngs)
        self.head_conv = conv_layer(spec.base_channels, spec.in_channels, 1,
                                    kernel_init=nnx.initializers.zeros, rngs=rngs,
                                    patches_on_cpu=False)

    def residual(self, x: jax.Array, c: jax.Array) -> jax.Array:
        """The unclipped residual ``G(x, c)`` ``[B, H, W, C]``."""
        if c.shape != (x.shape[0],):
            raise ValueError(f"translator expects one target class per image, got {tuple(c.shape)} "
                             f"for images {tuple(x.shape)}")
        cond = jnp.broadcast_to(c[:, None, None, None].astype(x.dtype), x.shape[:3] + (1,))
        features = self.trunk.decode(*self.trunk.encode(jnp.concatenate([x, cond], axis=-1)))
        return self.head_conv(features)

    def __call__(self, x: jax.Array, c: jax.Array) -> jax.Array:
        return jnp.clip(x + self.residual(x, c), 0.0, 1.0)


def make_translator(spec: TranslatorSpec = TranslatorSpec(), *, seed: int = 0) -> Translator:
    """A freshly initialised translator (train mode; the identity map until trained)."""
    return Translator(spec, rngs=nnx.Rngs(params=seed, dropout=seed + 1))
