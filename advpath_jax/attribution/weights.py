"""Weight functions F(grad, delta) of eq. 3 and their registry.

``E_w = |∫₀¹ F(∇f(γ(u)), γ'(u)) · γ'(u) du|``; F returns an array like its arguments
``[B, H, W, C]``. Built in:

=========  ===================  ===============================================
name       F(g, d)              map on a linear path
=========  ===================  ===============================================
``v1``     g · d                Δ² |∫ ∇f du|          (E_FI^v1)
``v2``     |g| · d              Δ² ∫ |∇f| du          (E_FI^v2)
``grad``   g                    |Δ ⊙ ∫ ∇f du|         (IG along the adversarial path)
``sq``     g² · d               Δ² ∫ (∇f)² du
``relu``   max(g·sign(d), 0)·d  Δ ⊙ ∫ gradient pushing toward the adversary
=========  ===================  ===============================================

A user adds an F with :func:`register_weight` (a decorator), or names one in a config
or on the command line as

* a registered name: ``"v2"``;
* an expression in ``g``, ``d`` and ``jnp``: ``"expr:jnp.abs(g) * d ** 2"``;
* an importable function: ``"my_package.my_module:my_weight"``.
"""

from __future__ import annotations

import importlib
from typing import Callable, Union

import jax
import jax.numpy as jnp

WeightFn = Callable[[jax.Array, jax.Array], jax.Array]
Weight = Union[str, WeightFn]
DELTA_WEIGHT = "delta"

_REGISTRY: dict[str, WeightFn] = {}


def register_weight(name: str, fn: WeightFn | None = None, *, overwrite: bool = False):
    """Register ``fn`` under ``name`` (usable as ``@register_weight("name")``)."""
    if not name or not isinstance(name, str) or ":" in name or name == DELTA_WEIGHT:
        raise ValueError(f"invalid weight name {name!r}")

    def add(f: WeightFn) -> WeightFn:
        if not callable(f):
            raise ValueError(f"weight {name!r} must be callable F(grad, delta)")
        if name in _REGISTRY and not overwrite and _REGISTRY[name] is not f:
            raise ValueError(f"a weight named {name!r} is already registered (pass overwrite=True)")
        _REGISTRY[name] = f
        return f

    return add if fn is None else add(fn)


def registered_weights() -> dict[str, WeightFn]:
    """``{name: F}`` of every weight registered so far (read now, so it includes later registrations; a copy)."""
    return dict(_REGISTRY)


@register_weight("v1")
def weight_v1(grad: jax.Array, delta: jax.Array) -> jax.Array:
    """E_FI^v1: F(g, d) = g · d."""
    return grad * delta


@register_weight("v2")
def weight_v2(grad: jax.Array, delta: jax.Array) -> jax.Array:
    """E_FI^v2: F(g, d) = |g| · d."""
    return jnp.abs(grad) * delta


@register_weight("grad")
def weight_grad(grad: jax.Array, delta: jax.Array) -> jax.Array:
    """F(g, d) = g: Integrated Gradients along the adversarial path."""
    return grad


@register_weight("sq")
def weight_sq(grad: jax.Array, delta: jax.Array) -> jax.Array:
    """F(g, d) = g² · d."""
    return grad * grad * delta


@register_weight("relu")
def weight_relu(grad: jax.Array, delta: jax.Array) -> jax.Array:
    """F(g, d) = max(g · sign(d), 0) · d: only gradient that agrees with the move."""
    return jnp.maximum(grad * jnp.sign(delta), 0.0) * delta


class ExpressionWeight:
    """F from an expression in ``g``, ``d`` and ``jnp`` (hashable by its text)."""

    def __init__(self, text: str):
        self.text = text.strip()
        self.__name__ = f"expr:{self.text}"
        try:
            self._code = compile(self.text, "<weight expression>", "eval")
        except SyntaxError as err:
            raise ValueError(f"cannot parse weight expression {self.text!r}: {err.msg}") from err
        probe = self(jnp.ones((1, 2, 2, 1)), jnp.full((1, 2, 2, 1), 0.5))
        if jnp.shape(probe) != (1, 2, 2, 1):
            raise ValueError(f"weight expression {self.text!r} must return an array shaped like g")

    def __call__(self, g, d):
        try:
            return eval(self._code, {"__builtins__": {}}, {"g": g, "d": d, "jnp": jnp})  # noqa: S307
        except Exception as err:  # surface any error of the user's expression
            raise ValueError(f"weight expression {self.text!r} failed: {err}") from err

    def __eq__(self, other):
        return isinstance(other, ExpressionWeight) and other.text == self.text

    def __hash__(self):
        return hash(("ExpressionWeight", self.text))


def parse_weight(spec: Weight) -> WeightFn | None:
    """A weight from a name, ``expr:...``, ``module:function`` or a callable; None for ``"delta"``."""
    if callable(spec):
        return spec
    if not isinstance(spec, str):
        raise ValueError(f"weight must be a name or a callable F(grad, delta), got {type(spec).__name__}")
    if spec == DELTA_WEIGHT:
        return None
    if spec in _REGISTRY:
        return _REGISTRY[spec]
    if spec.startswith("expr:"):
        return ExpressionWeight(spec[len("expr:"):])
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        try:
            fn = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as err:
            raise ValueError(f"cannot import weight function {spec!r}: {err}") from err
        if not callable(fn):
            raise ValueError(f"{spec!r} is not callable")
        return fn
    raise ValueError(f"unknown weight {spec!r}; choose from {', '.join([DELTA_WEIGHT, *_REGISTRY])}, "
                     "'expr:<expression in g, d, jnp>', 'module:function', or pass a callable F(grad, delta)")


def weight_name(spec: Weight) -> str:
    if isinstance(spec, str):
        return spec
    return getattr(spec, "__name__", repr(spec))
