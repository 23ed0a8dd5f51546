"""2-D convolution as one matrix product of image patches, for XLA:CPU.

On XLA:CPU (jax 0.10) the ResNet classifiers' convolutions run far below the machine's
matmul rate where the attribution engine needs them most:

* a 3x3 convolution whose output is smaller than its kernel (ResNet stage 4 at 64 px: 2x2)
  is rewritten with swapped operands and takes 8.5 ms where the same product as a matrix
  multiply takes 0.6 ms;
* inside the engine's ``lax.scan`` the input-gradient convolutions keep their kernels in
  ``01oi`` order and run in a generic kernel several times slower than the same
  convolutions in a plain ``jit(grad(f))``.

Written as ``concat(window slices) @ kernel.reshape(kh*kw*C_in, C_out)`` a convolution is a
dot that XLA:CPU runs near its matmul rate. The result equals ``lax.conv_general_dilated``
up to float rounding; its derivatives (any order) are those of slices, a concatenation and
a dot. Measured (docs/performance.md, "Convolution as a matrix product"): the E_FI^v2
engine 3.9x faster at ResNet-18 x0.25 / 64 px and 2.1x at ResNet-50 / 224 px; the critics'
gradient-penalty step 2.7x faster. It is slower where the patches are large and the
channels few (a U-Net's full-resolution levels: a U-Net training step 2x slower), so the
U-Nets keep XLA's convolution.

Each layer is built by :func:`conv_layer` with ``patches_on_cpu`` (ResNet, critics: True;
U-Nets: False). Which implementation runs is decided when a program is traced, from
``ADVPATH_CONV``:

* ``auto`` (default): the patch product for ``patches_on_cpu`` layers on the CPU backend,
  XLA's convolution otherwise (GPU convolutions are cuDNN's, and the patches cost
  kh*kw times the memory of the input);
* ``matmul``: the patch product for every layer; ``xla``: ``lax.conv_general_dilated``.

Set it before the first call: JAX reuses a traced program. Cases the patch product does not
cover (dilation, feature groups, negative padding, layouts other than NHWC/HWIO) always
use ``lax.conv_general_dilated``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

from advpath_jax.models.windows import pad_spatial, window_slices

CONV_ENV = "ADVPATH_CONV"
CONV_CHOICES = ("auto", "matmul", "xla")


def conv_impl(patches_on_cpu: bool = True) -> str:
    """The implementation a layer uses now: ``"matmul"`` (patch product) or ``"xla"``."""
    choice = os.environ.get(CONV_ENV, "auto").strip().lower() or "auto"
    if choice not in CONV_CHOICES:
        raise ValueError(f"{CONV_ENV}={os.environ[CONV_ENV]!r}: expected one of {', '.join(CONV_CHOICES)}")
    if choice == "auto":
        return "matmul" if patches_on_cpu and jax.default_backend() == "cpu" else "xla"
    return choice


def _is_nhwc_hwio(lhs, rhs, dimension_numbers) -> bool:
    if lhs.ndim != 4 or rhs.ndim != 4:
        return False
    expected = lax.conv_dimension_numbers(lhs.shape, rhs.shape, ("NHWC", "HWIO", "NHWC"))
    given = lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
    return given == expected


def _ones(value) -> bool:
    return value is None or all(int(v) == 1 for v in value)


def patch_matmul_conv(lhs: jax.Array, rhs: jax.Array, window_strides: Sequence[int],
                      padding: Sequence[tuple[int, int]], precision=None,
                      preferred_element_type=None) -> jax.Array:
    """``[B, H, W, C_in]`` * ``[kh, kw, C_in, C_out]`` -> ``[B, Ho, Wo, C_out]`` as a patch product.

    ``padding``: ``((top, bottom), (left, right))``, non-negative.
    """
    kh, kw, c_in, c_out = rhs.shape
    (s0, s1), pads = tuple(window_strides), tuple(tuple(p) for p in padding)
    x = pad_spatial(lhs, pads, 0.0) if any(any(p) for p in pads) else lhs
    out_hw = ((x.shape[1] - kh) // s0 + 1, (x.shape[2] - kw) // s1 + 1)
    slices = list(window_slices(x, (kh, kw), (s0, s1), out_hw))
    patches = slices[0] if len(slices) == 1 else jnp.concatenate(slices, axis=-1)
    return lax.dot_general(patches, rhs.reshape(kh * kw * c_in, c_out), (((3,), (0,)), ((), ())),
                           precision=precision, preferred_element_type=preferred_element_type)


def _convolve(patches_on_cpu: bool, lhs, rhs, window_strides, padding, lhs_dilation=None,
              rhs_dilation=None, dimension_numbers=None, feature_group_count=1, batch_group_count=1,
              precision=None, preferred_element_type=None, **kwargs) -> jax.Array:
    def xla():
        return lax.conv_general_dilated(
            lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation,
            dimension_numbers=dimension_numbers, feature_group_count=feature_group_count,
            batch_group_count=batch_group_count, precision=precision,
            preferred_element_type=preferred_element_type, **kwargs)

    if (conv_impl(patches_on_cpu) != "matmul" or kwargs.get("out_sharding") is not None
            or feature_group_count != 1 or batch_group_count != 1
            or not _ones(lhs_dilation) or not _ones(rhs_dilation)
            or not _is_nhwc_hwio(lhs, rhs, dimension_numbers)):
        return xla()
    if isinstance(padding, str):
        padding = lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], tuple(window_strides), padding)
    if any(p < 0 for pair in padding for p in pair):
        return xla()
    return patch_matmul_conv(lhs, rhs, window_strides, padding, precision, preferred_element_type)


def conv_general_dilated(lhs: jax.Array, rhs: jax.Array, window_strides: Sequence[int], padding,
                         *args, **kwargs) -> jax.Array:
    """``lax.conv_general_dilated``'s signature; the patch product on CPU (``patches_on_cpu``)."""
    return _convolve(True, lhs, rhs, window_strides, padding, *args, **kwargs)


def xla_first_conv_general_dilated(lhs: jax.Array, rhs: jax.Array, window_strides: Sequence[int],
                                   padding, *args, **kwargs) -> jax.Array:
    """The same, but XLA's convolution unless ``ADVPATH_CONV=matmul``."""
    return _convolve(False, lhs, rhs, window_strides, padding, *args, **kwargs)


def conv_layer(in_features: int, out_features: int, kernel_size: int, *, rngs: nnx.Rngs,
               strides: int = 1, padding="SAME", use_bias: bool = True,
               kernel_init=None, patches_on_cpu: bool = True) -> nnx.Conv:
    """``nnx.Conv`` (square kernel, NHWC) whose convolution follows the module's policy.

    ``patches_on_cpu``: use the patch product on the CPU backend under ``ADVPATH_CONV=auto``
    (module docstring; module-level functions, so two models built alike share a graph).

    The parameters (``kernel [k, k, C_in, C_out]``, ``bias [C_out]``) are those of any
    ``nnx.Conv``, so checkpoints and weight converters do not depend on the implementation.
    """
    extra = {} if kernel_init is None else {"kernel_init": kernel_init}
    return nnx.Conv(in_features, out_features, (kernel_size, kernel_size),
                    strides=(strides, strides), padding=padding, use_bias=use_bias,
                    conv_general_dilated=(conv_general_dilated if patches_on_cpu
                                          else xla_first_conv_general_dilated),
                    rngs=rngs, **extra)
