"""Batch normalisation whose train-mode update traces in constant time (Flax NNX, layout ``[..., C]``).

``flax.nnx.BatchNorm`` (flax 0.12) stores its new running statistics with
``self.mean[...] = new``. That indexed assignment compares the shardings of the old and the
new value; under ``jax.jit`` both are tracers, whose ``sharding`` raises an
``AttributeError`` and JAX builds the message by walking the whole trace recorded so far
(``find_progenitors``). Each train-mode normalisation therefore costs time proportional to the
size of the program traced before it, and a training step with hundreds of them is quadratic:
tracing CyCE's step (two U-Nets called six times, two critics, the classifier) took 157 s of
Python, 114 s of it in that message (``cProfile``; docs/performance.md, "Tracing time").

:class:`BatchNorm` is ``nnx.BatchNorm`` with the train-mode branch written out: the batch
statistics (mean and ``E[x^2] - E[x]^2`` clipped at 0, as flax's fast variance), the running
average ``momentum * old + (1 - momentum) * batch`` stored with a whole-value ``set_value``
(no sharding comparison), and ``(x - mean) * rsqrt(var + epsilon) * scale + bias``. The
parameters and statistics are flax's own variables (``scale``, ``bias``, ``mean``, ``var``),
so checkpoints are unchanged. Eval mode, masks and named-axis statistics use flax's code.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


class BatchNorm(nnx.BatchNorm):
    """``nnx.BatchNorm`` over the last axis; see the module docstring for why it exists."""

    def __call__(self, x: jax.Array, use_running_average: bool | None = None, *,
                 mask: jax.Array | None = None) -> jax.Array:
        """``[..., C]`` -> ``[..., C]``; in train mode also updates the running statistics."""
        running = self.use_running_average if use_running_average is None else use_running_average
        if running is None or running or mask is not None or self.axis_name is not None \
                or self.axis not in (-1, x.ndim - 1) or self.dtype not in (None, jnp.float32):
            return super().__call__(x, use_running_average, mask=mask)
        axes = tuple(range(x.ndim - 1))
        x32 = jnp.asarray(x, jnp.promote_types(x.dtype, jnp.float32))
        mean = jnp.mean(x32, axis=axes)
        var = jnp.maximum(jnp.mean(jnp.square(x32), axis=axes) - jnp.square(mean), 0.0)
        keep = self.momentum
        self.mean.set_value(jax.lax.stop_gradient(keep * self.mean.get_value() + (1.0 - keep) * mean))
        self.var.set_value(jax.lax.stop_gradient(keep * self.var.get_value() + (1.0 - keep) * var))
        factor = jax.lax.rsqrt(var + self.epsilon)
        if self.scale is not None:
            factor = factor * self.scale.get_value()
        y = (x32 - mean) * factor
        if self.bias is not None:
            y = y + self.bias.get_value()
        return y.astype(x.dtype)
