"""The max pool with elementwise derivatives against XLA's and PyTorch's max pooling."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from advpath_jax.models.pooling import max_pool

CASES = [  # (shape [B,H,W,C], window, strides, padding)
    ((2, 8, 8, 3), (3, 3), (2, 2), ((1, 1), (1, 1))),     # the ResNet stem
    ((1, 7, 9, 2), (3, 3), (2, 2), ((1, 1), (1, 1))),     # odd sizes
    ((2, 6, 6, 1), (2, 2), (2, 2), ((0, 0), (0, 0))),     # non-overlapping windows
    ((1, 9, 8, 2), (3, 2), (1, 3), ((1, 0), (0, 1))),     # asymmetric window, strides, padding
]


def _inputs(shape, kind, seed=0):
    rng = np.random.default_rng(seed)
    if kind == "continuous":
        x = rng.normal(size=shape)
    elif kind == "ties":                   # few distinct values: many tied maxima per window
        x = rng.integers(0, 3, size=shape).astype(np.float64)
    elif kind == "constant":               # every window entirely tied
        x = np.full(shape, 0.5)
    else:                                  # all negative: zero padding would win, -inf must not
        x = -1.0 - rng.integers(0, 2, size=shape)
    return jnp.asarray(x, jnp.float32)


def _vjp(pool, x, seed=1):
    y, back = jax.vjp(pool, x)
    g = jnp.asarray(np.random.default_rng(seed).normal(size=y.shape), jnp.float32)
    return y, back(g)[0], g


KINDS = ("continuous", "ties", "constant", "negative")


@pytest.mark.parametrize("shape,window,strides,padding", CASES)
def test_value_and_gradient_equal_xla_select_and_scatter(shape, window, strides, padding):
    ours = jax.jit(lambda v: _vjp(lambda u: max_pool(u, window, strides, padding), v))
    xla = jax.jit(lambda v: _vjp(lambda u: nnx.max_pool(u, window, strides=strides, padding=padding), v))
    for kind in KINDS:
        x = _inputs(shape, kind)
        (y, g, _), (y_ref, g_ref, _) = ours(x), xla(x)
        np.testing.assert_array_equal(np.asarray(y), np.asarray(y_ref), err_msg=kind)
        np.testing.assert_array_equal(np.asarray(g), np.asarray(g_ref), err_msg=kind)


@pytest.mark.parametrize("shape,window,strides,padding", CASES)
def test_gradient_equals_pytorch_max_pool2d_backward(shape, window, strides, padding):
    torch = pytest.importorskip("torch")
    ours = jax.jit(lambda v: _vjp(lambda u: max_pool(u, window, strides, padding), v))
    # PyTorch pads symmetrically: add any extra bottom/right padding as -inf by hand.
    (t, b), (l, r) = padding
    sym = (min(t, b), min(l, r))
    for kind in KINDS:
        x = _inputs(shape, kind)
        y, g, cot = ours(x)
        xt = torch.tensor(np.asarray(x)).permute(0, 3, 1, 2)
        xt = torch.nn.functional.pad(xt, (l - sym[1], r - sym[1], t - sym[0], b - sym[0]),
                                     value=float("-inf")).requires_grad_(True)
        yt = torch.nn.functional.max_pool2d(xt, window, strides, padding=sym)
        yt.backward(torch.tensor(np.asarray(cot)).permute(0, 3, 1, 2))
        gt = xt.grad[:, :, t - sym[0]: xt.shape[2] - (b - sym[0]), l - sym[1]: xt.shape[3] - (r - sym[1])]
        np.testing.assert_array_equal(np.asarray(y), yt.detach().permute(0, 2, 3, 1).numpy(), err_msg=kind)
        np.testing.assert_allclose(np.asarray(g), gt.permute(0, 2, 3, 1).numpy(), rtol=1e-6, atol=1e-6,
                                   err_msg=kind)


def test_forward_mode_and_jit_agree_with_reverse_mode():
    shape, window, strides, padding = CASES[0]
    x = _inputs(shape, "ties")
    pool = jax.jit(lambda v: max_pool(v, window, strides, padding))
    tangent = jnp.asarray(np.random.default_rng(3).normal(size=shape), jnp.float32)
    y, g, cot = _vjp(pool, x)
    _, jvp_out = jax.jvp(pool, (x,), (tangent,))
    # <J t, g> == <t, J^T g>: forward and reverse mode are transposes of each other
    np.testing.assert_allclose(float(jnp.vdot(jvp_out, cot)), float(jnp.vdot(tangent, g)), rtol=1e-5)
