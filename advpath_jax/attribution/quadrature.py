"""Quadrature rules on [0, 1]: where to evaluate the path and with which weights.

A rule is a pair ``(alphas [M], weights [M])`` with ``∫₀¹ g(u) du ≈ Σ_m weights[m] g(alphas[m])``.

========================  ==================================  =====================
rule                      alphas                              weights
========================  ==================================  =====================
``"midpoint"`` (paper)    (m - ½)/M, m = 1..M                 1/M
``"left"``                (m - 1)/M                           1/M
``"right"``               m/M                                 1/M
``"trapezoid"``           (m - 1)/(M - 1), M >= 2             1/(M-1), halved at ends
``"gauss-legendre"``      Legendre nodes mapped to [0, 1]     Legendre weights / 2
``(alphas, weights)``     explicit, e.g. an external grid     as given
========================  ==================================  =====================

The textbook trapezoid weights sum to 1 (Captum's ``riemann_trapezoid`` sums to
(n-1)/n; pass explicit ``(alphas, weights)`` to reproduce another library's grid).
"""

from __future__ import annotations

from typing import Sequence, Union

import numpy as np

NAMED_RULES = ("midpoint", "left", "right", "trapezoid", "gauss-legendre")
Rule = Union[str, tuple[Sequence[float], Sequence[float]]]


def quadrature_rule(rule: Rule, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(alphas [M], weights [M])`` as float64 numpy arrays for a named or explicit rule.

    For an explicit ``(alphas, weights)`` pair ``steps`` is ignored.
    """
    if isinstance(rule, str):
        return _named_rule(rule, steps)
    return _explicit_rule(rule)


def _named_rule(rule: str, steps: int) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    m = np.arange(1, steps + 1, dtype=np.float64)
    uniform = np.full(steps, 1.0 / steps)
    if rule == "midpoint":
        return (m - 0.5) / steps, uniform
    if rule == "left":
        return (m - 1.0) / steps, uniform
    if rule == "right":
        return m / steps, uniform
    if rule == "trapezoid":
        if steps < 2:
            raise ValueError("the trapezoid rule needs steps >= 2 (both end points)")
        alphas = np.linspace(0.0, 1.0, steps)
        weights = np.full(steps, 1.0 / (steps - 1))
        weights[[0, -1]] *= 0.5
        return alphas, weights
    if rule == "gauss-legendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return (nodes + 1.0) / 2.0, weights / 2.0
    raise ValueError(f"unknown quadrature rule {rule!r}; choose from {', '.join(NAMED_RULES)} "
                     "or pass explicit (alphas, weights)")


def _explicit_rule(rule) -> tuple[np.ndarray, np.ndarray]:
    try:
        alphas, weights = rule
        alphas = np.asarray(alphas, dtype=np.float64)
        weights = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"a rule must be a name or a pair (alphas, weights); got {rule!r}") from err
    if alphas.ndim != 1 or alphas.shape != weights.shape or alphas.size == 0:
        raise ValueError("explicit rule: alphas and weights must be non-empty 1-D arrays of equal "
                         f"length, got shapes {alphas.shape} and {weights.shape}")
    if not (np.all(np.isfinite(alphas)) and np.all(np.isfinite(weights))):
        raise ValueError("explicit rule: alphas and weights must be finite")
    return alphas, weights
