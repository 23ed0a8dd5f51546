"""The classifier's probability, its gradient and the predicted-class rule, in one place.

``f = σ(z)`` is the probability of class 1 for a logit ``z``. Its derivative is written
``σ'(z) = σ(z) σ(−z)`` rather than ``σ(z)(1 − σ(z))``: in float32 ``1 − σ(z)`` is exactly 0
for ``z ≳ 17`` (and ``σ(z)`` is 0 for ``z ≲ −88``), so the textbook form makes every
gradient of a confident classifier vanish, whereas ``σ(−z)`` keeps its value down to about
``1e-38`` (``z ≈ 87``). The values of ``σ`` are unchanged (``jax.nn.sigmoid``).

Use :func:`stable_sigmoid` wherever a probability is differentiated, and
:func:`predicted_class` wherever a class is predicted from it.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


@jax.custom_jvp
def stable_sigmoid(z: jax.Array) -> jax.Array:
    """``σ(z)`` elementwise, whose derivative is ``σ(z) σ(−z)`` (never 0 in float32 for |z| < 87)."""
    return jax.nn.sigmoid(z)


@stable_sigmoid.defjvp
def _stable_sigmoid_jvp(primals, tangents):
    (z,), (dz,) = primals, tangents
    p = jax.nn.sigmoid(z)
    return p, jax.nn.sigmoid(-z) * p * dz

#: The project's decision threshold on the probability f(x): class 1 iff f(x) >= DECISION_THRESHOLD.
DECISION_THRESHOLD = 0.5


def predicted_class(p: Any, threshold: float = DECISION_THRESHOLD) -> Any:
    """The project's one predicted-class rule: ``c = 1[p >= threshold]`` (int32), ``p`` = f(x) ``[B]``.

    A JAX array (also traced) gives a JAX array; a numpy array or anything else gives numpy.
    """
    xp = jnp if isinstance(p, jax.Array) else np
    return (xp.asarray(p) >= threshold).astype(xp.int32)


def signed_class(c: jax.Array, dtype=jnp.float32) -> jax.Array:
    """``2c − 1``: ``+1`` for class 1, ``−1`` for class 0 (``[B]``); ``(2c − 1)·z`` is class c's logit."""
    return 2.0 * jnp.asarray(c, dtype) - 1.0
