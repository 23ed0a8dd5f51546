import numpy as np
import pytest

from advpath_jax.attribution.quadrature import quadrature_rule


@pytest.mark.parametrize("rule", ["midpoint", "left", "right", "trapezoid", "gauss-legendre"])
def test_weights_sum_to_one_and_nodes_in_unit_interval(rule):
    alphas, weights = quadrature_rule(rule, 7)
    assert alphas.shape == weights.shape == (7,)
    assert np.isclose(weights.sum(), 1.0)
    assert np.all((alphas >= 0) & (alphas <= 1))


def test_midpoint_nodes_are_the_papers_eq6():
    alphas, weights = quadrature_rule("midpoint", 4)
    np.testing.assert_allclose(alphas, [1 / 8, 3 / 8, 5 / 8, 7 / 8])
    np.testing.assert_allclose(weights, 0.25)


def test_trapezoid_is_the_textbook_rule():
    alphas, weights = quadrature_rule("trapezoid", 5)
    np.testing.assert_allclose(alphas, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(weights, [0.125, 0.25, 0.25, 0.25, 0.125])


def test_gauss_legendre_integrates_polynomials_of_degree_2m_minus_1_exactly():
    alphas, weights = quadrature_rule("gauss-legendre", 3)
    for degree in range(6):
        assert np.isclose(np.sum(weights * alphas ** degree), 1.0 / (degree + 1))


def test_explicit_rule_passes_through():
    alphas, weights = quadrature_rule(([0.0, 0.5, 1.0], [0.2, 0.3, 0.5]), 99)
    np.testing.assert_allclose(alphas, [0.0, 0.5, 1.0])
    np.testing.assert_allclose(weights, [0.2, 0.3, 0.5])


@pytest.mark.parametrize("bad, message", [
    (("midpoint", 0), "steps"), (("midpoint", 2.5), "steps"), (("simpson", 4), "unknown quadrature"),
    (("trapezoid", 1), "trapezoid"), ((([0.1, 0.2], [1.0]), 3), "equal"),
    ((([0.1, np.nan], [0.5, 0.5]), 3), "finite"),
])
def test_bad_rules_raise(bad, message):
    with pytest.raises(ValueError, match=message):
        quadrature_rule(*bad)
