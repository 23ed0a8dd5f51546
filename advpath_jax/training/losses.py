"""Loss primitives of the generators and the classifier (docs/training.md: Generators, Classifier).

All take and return ``jnp`` arrays and reduce to a scalar mean. Classifier and
discriminator outputs are passed as *logits* (the BCE of a probability
``p = sigmoid(logit)`` is computed from the logit, which is the same quantity without
the overflow of ``log(p)`` near 0 or 1).

* ``rec(a, b)`` = MSE + MAE.
* ``cls(y, logit)`` = BCE(y, sigmoid(logit)).
* ``adv_cls(y, logit)`` = BCE(1 - y, sigmoid(logit)): pushes the score to the opposite class.
* ``gan_g(d_fake)`` = BCE-with-logits(1, D(fake)).
* ``gan_d(d_real, d_fake)`` = BCE-with-logits(1, D(real)) + BCE-with-logits(0, D(fake)).
* ``gradient_penalty(d, real, fake, key)`` = E[(||grad_x D(x_hat)||_2 - 1)^2] on random
  interpolates (WGAN-GP).
* ``wgan_d(d_real, d_fake)`` / ``wgan_g(d_fake)``: Wasserstein critic / generator losses.
* ``weighted_bce(logit, y, pos_weight)``: the classifier loss.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax


def rec(a: jax.Array, b: jax.Array) -> jax.Array:
    """Reconstruction: mean squared error + mean absolute error over all elements."""
    d = a - b
    return jnp.mean(d * d) + jnp.mean(jnp.abs(d))


def _bce_logits(logits: jax.Array, targets: jax.Array) -> jax.Array:
    targets = jnp.broadcast_to(jnp.asarray(targets, logits.dtype), logits.shape)
    return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, targets))


def cls(y: jax.Array, logits: jax.Array) -> jax.Array:
    """BCE(y, f) with f = sigmoid(logits); ``y`` and ``logits`` ``[B]``."""
    return _bce_logits(logits, y)


def adv_cls(y: jax.Array, logits: jax.Array) -> jax.Array:
    """BCE(1 - y, f): the adversary's target is the opposite class."""
    return _bce_logits(logits, 1.0 - jnp.asarray(y, logits.dtype))


def gan_g(d_fake: jax.Array) -> jax.Array:
    """Generator's GAN loss: BCE-with-logits(1, D(fake))."""
    return _bce_logits(d_fake, 1.0)


def gan_d(d_real: jax.Array, d_fake: jax.Array) -> jax.Array:
    """Discriminator's GAN loss: real -> 1, fake -> 0 (BCE-with-logits)."""
    return _bce_logits(d_real, 1.0) + _bce_logits(d_fake, 0.0)


def wgan_d(d_real: jax.Array, d_fake: jax.Array) -> jax.Array:
    """Wasserstein critic loss E[D(fake)] - E[D(real)]."""
    return jnp.mean(d_fake) - jnp.mean(d_real)


def wgan_g(d_fake: jax.Array) -> jax.Array:
    """Wasserstein generator loss -E[D(fake)]."""
    return -jnp.mean(d_fake)


def gradient_penalty(d: Callable[[jax.Array], jax.Array], real: jax.Array, fake: jax.Array,
                     key: jax.Array) -> jax.Array:
    """WGAN-GP penalty E[(||grad D(x_hat)||_2 - 1)^2], x_hat = e*real + (1-e)*fake.

    ``d`` maps ``[B, H, W, C]`` to logits ``[B]``; ``e ~ U(0, 1)`` per sample. The
    norm is taken per sample over all pixels and channels.
    """
    if real.shape != fake.shape:
        raise ValueError(f"gradient_penalty: real {real.shape} and fake {fake.shape} differ")
    eps = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1), real.dtype)
    x_hat = eps * real + (1.0 - eps) * jax.lax.stop_gradient(fake)
    grads = jax.grad(lambda x: jnp.sum(d(x)))(x_hat)
    norms = jnp.sqrt(jnp.sum(grads.reshape(grads.shape[0], -1) ** 2, axis=1) + 1e-12)
    return jnp.mean((norms - 1.0) ** 2)


def weighted_bce(logits: jax.Array, y: jax.Array, pos_weight: float | jax.Array) -> jax.Array:
    """Class-weighted BCE: positives weighted ``pos_weight``, negatives 1; normalised by the weight sum.

    With ``pos_weight = n_negative / n_positive`` both classes weigh the same in total.
    """
    y = jnp.asarray(y, logits.dtype)
    w = jnp.where(y > 0.5, jnp.asarray(pos_weight, logits.dtype), 1.0)
    per = optax.sigmoid_binary_cross_entropy(logits, y)
    return jnp.sum(w * per) / jnp.sum(w)
