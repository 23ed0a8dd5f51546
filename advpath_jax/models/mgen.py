"""MGen: the real-time saliency mask generator of Dabkowski & Gal (2017), Flax NNX, NHWC.

The network sees the image and the classifier's score ``f(x)`` broadcast as an extra
channel, ``[x, f(x)]``; a U-Net trunk (the project's encoder/decoder of
:mod:`advpath_jax.models.unet`) followed by 2×2 average pooling and a 1×1 conv gives two
maps ``a, b`` at half resolution; the mask is ``m = |a| / (|a| + |b|)`` (in [0, 1]),
bilinearly upsampled to the image size. ``m = 1`` marks the salient region.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from advpath_jax.models.conv import conv_layer
from advpath_jax.models.unet import UNetSpec, _Trunk

MASK_EPS = 1e-6


@dataclasses.dataclass(frozen=True)
class MGenSpec:
    """Everything that fixes MGen's parameter shapes (used to check checkpoints)."""

    base_channels: int = 16
    depth: int = 3
    in_channels: int = 1
    dropout: float = 0.0

    def trunk_spec(self) -> UNetSpec:
        return UNetSpec(base_channels=self.base_channels, depth=self.depth,
                        in_channels=self.in_channels + 1, out_channels=2, dropout=self.dropout)


class MGen(nnx.Module):
    """``(x [B,H,W,C], score [B]) -> mask [B,H,W]`` in [0, 1] (1 = salient)."""

    def __init__(self, spec: MGenSpec = MGenSpec(), *, rngs: nnx.Rngs):
        self.spec = spec
        self.trunk = _Trunk(spec.trunk_spec(), rngs=rngs)
        self.head_conv = conv_layer(spec.base_channels, 2, 1, rngs=rngs, patches_on_cpu=False)

    def half_mask(self, x: jax.Array, score: jax.Array) -> jax.Array:
        """The mask at half resolution ``[B, H/2, W/2]``."""
        if score.shape != (x.shape[0],):
            raise ValueError(f"MGen expects one score per image, got scores {tuple(score.shape)} "
                             f"for images {tuple(x.shape)}")
        inp = jnp.concatenate([x, jnp.broadcast_to(score[:, None, None, None].astype(x.dtype),
                                                   x.shape[:3] + (1,))], axis=-1)
        features = self.trunk.decode(*self.trunk.encode(inp))
        pooled = nnx.avg_pool(features, (2, 2), strides=(2, 2))
        ab = jnp.abs(self.head_conv(pooled))
        return ab[..., 0] / (ab[..., 0] + ab[..., 1] + MASK_EPS)

    def __call__(self, x: jax.Array, score: jax.Array) -> jax.Array:
        return upsample_half_mask(self.half_mask(x, score), x.shape[1:3])


def upsample_half_mask(m: jax.Array, image_hw: tuple[int, int]) -> jax.Array:
    """Bilinear upsampling ``[B, h, w] -> [B, H, W]``."""
    return jax.image.resize(m, (m.shape[0],) + tuple(image_hw), method="bilinear")


def make_mgen(spec: MGenSpec = MGenSpec(), *, seed: int = 0) -> MGen:
    """A freshly initialised MGen (train mode)."""
    return MGen(spec, rngs=nnx.Rngs(params=seed, dropout=seed + 1))
