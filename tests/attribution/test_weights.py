import jax.numpy as jnp
import numpy as np
import pytest
from jax.tree_util import Partial

import advpath_jax as ap
from advpath_jax.attribution.weights import parse_weight, register_weight, registered_weights


def _linear_f(w, x):
    return jnp.sum(w * x, axis=(1, 2, 3))


@pytest.fixture(scope="module")
def linear_case():
    rng = np.random.default_rng(0)
    x, xa = (rng.uniform(size=(2, 5, 5, 1)).astype(np.float32) for _ in range(2))
    w = rng.normal(size=(5, 5, 1)).astype(np.float32)
    return Partial(_linear_f, jnp.asarray(w)), x, xa, w


def test_builtin_weights_closed_forms_on_a_linear_model(linear_case):
    f, x, xa, w = linear_case
    d = xa - x
    expected = {"v1": d ** 2 * np.abs(w), "v2": d ** 2 * np.abs(w), "grad": np.abs(d * w),
                "sq": d ** 2 * w ** 2, "relu": d ** 2 * np.maximum(w * np.sign(d), 0)}
    for name, ref in expected.items():
        got = ap.path_attribution(f, x, xa, weight=name, steps=3)
        np.testing.assert_allclose(np.asarray(got), ref[..., 0], rtol=1e-5, atol=1e-7, err_msg=name)


def test_expression_and_import_strings(linear_case):
    f, x, xa, w = linear_case
    from_expr = ap.path_attribution(f, x, xa, weight="expr:g * g * d", steps=3)
    from_name = ap.path_attribution(f, x, xa, weight="sq", steps=3)
    np.testing.assert_allclose(np.asarray(from_expr), np.asarray(from_name), rtol=1e-6)
    imported = ap.path_attribution(f, x, xa, weight="advpath_jax.attribution.weights:weight_v2", steps=3)
    np.testing.assert_allclose(np.asarray(imported),
                               np.asarray(ap.path_attribution(f, x, xa, weight="v2", steps=3)), rtol=1e-6)
    assert parse_weight("expr:jnp.abs(g)*d") == parse_weight("expr: jnp.abs(g)*d ")


def test_register_a_new_weight(linear_case):
    f, x, xa, w = linear_case

    @register_weight("test_half_v2", overwrite=True)
    def half_v2(g, d):
        return 0.5 * jnp.abs(g) * d

    assert "test_half_v2" in registered_weights()
    np.testing.assert_allclose(np.asarray(ap.path_attribution(f, x, xa, weight="test_half_v2", steps=2)),
                               0.5 * np.asarray(ap.path_attribution(f, x, xa, weight="v2", steps=2)), rtol=1e-6)
    with pytest.raises(ValueError, match="already registered"):
        register_weight("test_half_v2", lambda g, d: g)


@pytest.mark.parametrize("spec, message", [
    ("expr:g +* d", "cannot parse"), ("expr:jnp.sum(g)", "shaped like g"), ("nosuch.module:fn", "cannot import"),
    ("v9", "unknown weight"), ("expr:undefined_name * g", "failed"),
])
def test_bad_weight_specs(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_weight(spec)


def test_the_listing_reads_the_live_registry():
    import advpath_jax.attribution as attribution

    before = attribution.registered_weights()
    assert {"v1", "v2", "grad", "sq", "relu"} <= set(before)
    assert "test_later_weight" not in before
    register_weight("test_later_weight", lambda g, d: 2.0 * g * d, overwrite=True)
    assert "test_later_weight" in attribution.registered_weights()  # registered after import: listed
    assert "test_later_weight" not in before  # a copy: the caller's dict is not the registry
    before["v1"] = None
    assert attribution.registered_weights()["v1"] is not None
    assert not hasattr(attribution, "NAMED_WEIGHTS") and not hasattr(attribution, "resolve_weight")
