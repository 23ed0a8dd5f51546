"""U-Net generators (docs/training.md#generators), Flax NNX, layout NHWC.

* Pre-activation conv blocks: BatchNorm -> ReLU -> conv3x3 -> dropout (0.2), two per level.
* ``depth`` max-pool down-samplings; channels ``base_channels * 2**level``.
* Nearest-neighbour up-sampling, concatenation with the skip of the same level.
* 1x1 conv head, output clipped to [0, 1].

``UNet`` is the one-output generator (CyCE/SyCE's G0, G1; MGen-style nets may use
``out_channels=2``); ``TwoHeadUNet`` (SAGen) shares the trunk and has two heads
(conv3x3 32 -> ReLU -> conv3x3 16 -> ReLU -> conv1x1 1) giving ``(x_s, x_a)``.

The pieces are exposed for latent-space work: ``encode(x) -> (bottleneck, skips)``,
``decode(bottleneck, skips) -> features [B, H, W, base_channels]`` and ``head(features)``,
with ``model(x) == model.head(model.decode(*model.encode(x)))``.

``residual=True`` (an option, not the paper's default) adds the input to the head's
output before clipping, so a freshly initialised generator starts near the identity.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from advpath_jax.models.conv import conv_layer
from advpath_jax.models.norm import BatchNorm
from advpath_jax.models.pooling import max_pool

BN_MOMENTUM = 0.9


@dataclasses.dataclass(frozen=True)
class UNetSpec:
    """Everything that fixes a U-Net's parameter shapes and outputs (used to check checkpoints)."""

    base_channels: int = 16
    depth: int = 3
    in_channels: int = 1
    out_channels: int = 1
    dropout: float = 0.2
    residual: bool = False
    head_channels: tuple[int, ...] = (32, 16)  # TwoHeadUNet only

    def channels(self, level: int) -> int:
        return self.base_channels * 2 ** level


def fan_in_normal(scale: float = 2.0):
    """Variance-scaling initializer (fan in, normal truncated at 2 std): ``scale=2`` is He, 1 LeCun.

    Same distribution as ``jax.nn.initializers.variance_scaling(scale, "fan_in",
    "truncated_normal")``, but drawn with numpy from a seed taken from the key: eager
    JAX initialisation compiles one random program per distinct kernel shape, which
    costs seconds per model on a CPU. Under tracing (``nnx.eval_shape``, ``jax.jit``)
    the JAX initializer is used.
    """
    jax_init = nnx.initializers.variance_scaling(scale, "fan_in", "truncated_normal")

    def init(key, shape, dtype=jnp.float32):
        if isinstance(key, jax.core.Tracer):
            return jax_init(key, shape, dtype)
        data = jax.random.key_data(key) if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) else key
        rng = np.random.default_rng(np.asarray(data, np.uint32).ravel().tolist())
        z = rng.standard_normal(shape)
        bad = np.abs(z) > 2.0
        while bad.any():
            z[bad] = rng.standard_normal(int(bad.sum()))
            bad = np.abs(z) > 2.0
        fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else int(shape[0])
        std = np.sqrt(scale / max(fan_in, 1)) / 0.87962566103423978  # std of N(0,1) truncated at +-2
        return jnp.asarray(z * std, dtype)
    return init


def _conv(cin: int, cout: int, k: int, rngs: nnx.Rngs) -> nnx.Conv:
    return conv_layer(cin, cout, k, padding="SAME", kernel_init=fan_in_normal(2.0), rngs=rngs,
                      patches_on_cpu=False)  # measured slower at full resolution (models/conv.py)


class PreActConv(nnx.Module):
    """BatchNorm -> ReLU -> conv3x3 -> dropout."""

    def __init__(self, cin: int, cout: int, dropout: float, *, rngs: nnx.Rngs):
        self.bn = BatchNorm(cin, momentum=BN_MOMENTUM, rngs=rngs)
        self.conv = _conv(cin, cout, 3, rngs)
        self.drop = nnx.Dropout(dropout, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.drop(self.conv(jax.nn.relu(self.bn(x))))


class Level(nnx.Module):
    """Two pre-activation conv blocks."""

    def __init__(self, cin: int, cout: int, dropout: float, *, rngs: nnx.Rngs):
        self.a = PreActConv(cin, cout, dropout, rngs=rngs)
        self.b = PreActConv(cout, cout, dropout, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.b(self.a(x))


def _upsample(x: jax.Array) -> jax.Array:
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


class _Trunk(nnx.Module):
    """Encoder + decoder shared by both U-Net variants."""

    def __init__(self, spec: UNetSpec, *, rngs: nnx.Rngs):
        if spec.depth < 1 or spec.base_channels < 1:
            raise ValueError(f"U-Net needs depth >= 1 and base_channels >= 1, got {spec}")
        self.spec = spec
        self.stem = _conv(spec.in_channels, spec.base_channels, 3, rngs)
        self.down = nnx.List([Level(spec.channels(i - 1) if i else spec.base_channels,
                                    spec.channels(i), spec.dropout, rngs=rngs) for i in range(spec.depth)])
        self.bottom = Level(spec.channels(spec.depth - 1), spec.channels(spec.depth), spec.dropout, rngs=rngs)
        self.up = nnx.List([Level(spec.channels(i + 1) + spec.channels(i), spec.channels(i), spec.dropout,
                                  rngs=rngs) for i in reversed(range(spec.depth))])
        self.out_bn = BatchNorm(spec.base_channels, momentum=BN_MOMENTUM, rngs=rngs)

    def encode(self, x: jax.Array) -> tuple[jax.Array, tuple[jax.Array, ...]]:
        """``[B, H, W, C_in]`` -> bottleneck ``[B, H/2^d, W/2^d, base*2^d]`` and the skips (fine to coarse)."""
        _check_input(x, self.spec)
        y = self.stem(x)
        skips = []
        for level in self.down:
            y = level(y)
            skips.append(y)
            y = max_pool(y, (2, 2), (2, 2), ((0, 0), (0, 0)))  # gradient without select-and-scatter
        return self.bottom(y), tuple(skips)

    def decode(self, bottleneck: jax.Array, skips: tuple[jax.Array, ...]) -> jax.Array:
        """Bottleneck + skips -> features ``[B, H, W, base_channels]`` (pre-activated, ready for a head)."""
        y = bottleneck
        for level, skip in zip(self.up, reversed(skips)):
            y = level(jnp.concatenate([_upsample(y), skip], axis=-1))
        return jax.nn.relu(self.out_bn(y))


class UNet(_Trunk):
    """One-output U-Net: ``[B, H, W, C_in]`` -> ``[B, H, W, out_channels]`` in [0, 1]."""

    def __init__(self, spec: UNetSpec = UNetSpec(), *, rngs: nnx.Rngs):
        super().__init__(spec, rngs=rngs)
        self.head_conv = _conv(spec.base_channels, spec.out_channels, 1, rngs)

    def head(self, features: jax.Array, x: jax.Array | None = None) -> jax.Array:
        """Features -> clipped output; ``x`` (the input) is needed when ``spec.residual``."""
        y = self.head_conv(features)
        if self.spec.residual:
            if x is None:
                raise ValueError("a residual U-Net head needs the input image x")
            y = y + x[..., : self.spec.out_channels]
        return jnp.clip(y, 0.0, 1.0)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.head(self.decode(*self.encode(x)), x)


class _TwoLayerHead(nnx.Module):
    def __init__(self, cin: int, widths: tuple[int, ...], cout: int, *, rngs: nnx.Rngs):
        convs, c = [], cin
        for w in widths:
            convs.append(_conv(c, w, 3, rngs))
            c = w
        self.convs = nnx.List(convs)
        self.out = _conv(c, cout, 1, rngs)

    def __call__(self, y: jax.Array) -> jax.Array:
        for conv in self.convs:
            y = jax.nn.relu(conv(y))
        return self.out(y)


class TwoHeadUNet(_Trunk):
    """SAGen's U-Net: one trunk, two heads -> ``(x_s, x_a)``, each ``[B, H, W, out_channels]`` in [0, 1]."""

    def __init__(self, spec: UNetSpec = UNetSpec(), *, rngs: nnx.Rngs):
        super().__init__(spec, rngs=rngs)
        self.stable_head = _TwoLayerHead(spec.base_channels, spec.head_channels, spec.out_channels, rngs=rngs)
        self.adv_head = _TwoLayerHead(spec.base_channels, spec.head_channels, spec.out_channels, rngs=rngs)

    def head(self, features: jax.Array, x: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        outs = []
        for h in (self.stable_head, self.adv_head):
            y = h(features)
            if self.spec.residual:
                if x is None:
                    raise ValueError("a residual U-Net head needs the input image x")
                y = y + x[..., : self.spec.out_channels]
            outs.append(jnp.clip(y, 0.0, 1.0))
        return outs[0], outs[1]

    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        return self.head(self.decode(*self.encode(x)), x)


def _check_input(x: jax.Array, spec: UNetSpec) -> None:
    if x.ndim != 4 or x.shape[-1] != spec.in_channels:
        raise ValueError(f"U-Net expects [B, H, W, {spec.in_channels}], got shape {tuple(x.shape)}")
    m = 2 ** spec.depth
    if x.shape[1] % m or x.shape[2] % m:
        raise ValueError(f"U-Net of depth {spec.depth} needs H and W divisible by {m}, got {tuple(x.shape[1:3])}")


def make_unet(spec: UNetSpec = UNetSpec(), *, two_heads: bool = False, seed: int = 0) -> UNet | TwoHeadUNet:
    """A freshly initialised U-Net (train mode); ``two_heads=True`` gives SAGen's variant."""
    cls = TwoHeadUNet if two_heads else UNet
    return cls(spec, rngs=nnx.Rngs(params=seed, dropout=seed + 1))
