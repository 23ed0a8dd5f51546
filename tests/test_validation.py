"""The package's one set of input checks (advpath_jax.validation): each check refuses its case."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advpath_jax import validation as V
from advpath_jax.errors import AdvpathError

GOOD = np.full((2, 8, 8, 1), 0.5, np.float32)


def test_good_images_come_back_as_float32_jax_arrays():
    out = V.check_images(GOOD.astype(np.float64))
    assert isinstance(out, jax.Array) and out.dtype == jnp.float32 and out.shape == GOOD.shape
    np.testing.assert_array_equal(np.asarray(out), GOOD)
    host = V.check_host_images(GOOD)
    assert isinstance(host, np.ndarray) and host.dtype == np.float32


@pytest.mark.parametrize("bad, kwargs, message", [
    ([[0.5]], {}, r"x: expected an array \[B, H, W, C\], got list"),
    (GOOD[0], {}, r"x: expected rank 4 \[B, H, W, C\], got shape \(8, 8, 1\)"),
    (GOOD, {"channels": 3}, r"x: expected 3 channel\(s\)"),
    (GOOD.astype(np.int32), {}, r"x: expected a floating-point dtype, got dtype int32"),
    (GOOD[:0], {}, "x: empty batch"),
    (np.where(np.arange(2)[:, None, None, None] == 1, np.nan, GOOD), {}, "x: contains NaN or Inf values"),
    (GOOD + np.inf, {"value_range": None}, "x: contains NaN or Inf values"),
    (GOOD * 3.0, {}, r"x: values must lie within \[0, 1\], but some lie outside \(found range \[1.5, 1.5\]\)"),
    (GOOD - 1.0, {"value_range": (-0.25, 0.25)}, r"within \[-0.25, 0.25\], .*\(found range \[-0.5, -0.5\]\)"),
])
@pytest.mark.parametrize("check", [V.check_images, V.check_host_images])
def test_each_image_check_fails_with_its_message(check, bad, kwargs, message):
    with pytest.raises(AdvpathError, match=message):
        check(bad, name="x", **kwargs)


def test_value_range_none_accepts_any_finite_values_and_rank_is_configurable():
    assert V.check_images(GOOD * 7.0 - 100.0, value_range=None).shape == GOOD.shape
    assert V.check_images(GOOD[..., 0], rank=3).shape == (2, 8, 8)
    with pytest.raises(ValueError, match="rank 3"):   # AdvpathError is a ValueError
        V.check_images(GOOD, rank=3)
    assert V.check_host_images(GOOD[:0], allow_empty=True).shape == (0, 8, 8, 1)


def test_traced_images_skip_value_checks_but_not_static_ones():
    seen = []

    @jax.jit
    def f(x):
        seen.append(V.check_images(x, name="x").dtype)   # 3.0 is outside [0, 1]: not seen here
        return x.sum()

    assert float(f(jnp.full((1, 4, 4, 1), 3.0))) == 48.0
    assert seen == [jnp.float32]
    with pytest.raises(AdvpathError, match="rank 4"):
        jax.jit(lambda x: V.check_images(x, name="x"))(jnp.zeros((4, 4, 1)))
    with pytest.raises(AdvpathError, match="x: needs concrete values"):
        jax.jit(lambda x: V.check_images(x, name="x", allow_traced=False))(jnp.zeros((1, 4, 4, 1)))


def test_image_pairs_must_match():
    a, b = V.check_image_pair(GOOD, GOOD * 4.0)        # paths need no range by default
    assert a.shape == b.shape
    with pytest.raises(AdvpathError, match=r"x_start and x_end shapes differ: \(2, 8, 8, 1\) vs \(1, 8, 8, 1\)"):
        V.check_image_pair(GOOD, GOOD[:1])


def test_maps_check():
    maps = V.check_maps(np.ones((2, 4, 4), np.int32))
    assert maps.dtype == jnp.float32
    with pytest.raises(AdvpathError, match=r"maps: expected rank 3 \[B, H, W\], got shape \(4, 4\)"):
        V.check_maps(np.ones((4, 4)))
    with pytest.raises(AdvpathError, match="maps: empty batch"):
        V.check_maps(np.ones((0, 4, 4)))
    with pytest.raises(AdvpathError, match="maps: contains NaN"):
        V.check_maps(np.array([[[0.0, np.nan]]]))
    with pytest.raises(AdvpathError, match=r"saliency: expected shape \(2, 4, 4\), got \(2, 4, 5\)"):
        V.check_maps(np.ones((2, 4, 5)), name="saliency", shape=(2, 4, 4))
    with pytest.raises(AdvpathError, match="real-valued"):
        V.check_maps(np.ones((1, 2, 2), np.complex64))


def test_masks_check():
    m = V.check_masks(np.array([[[0, 1]]]), (1, 1, 2))
    assert m.dtype == jnp.bool_ and m.tolist() == [[[False, True]]]
    with pytest.raises(AdvpathError, match=r"masks: expected shape \(1, 1, 3\)"):
        V.check_masks(np.zeros((1, 1, 2), bool), (1, 1, 3))
    with pytest.raises(AdvpathError, match="boolean mask"):
        V.check_masks(np.array([[[0.0, 0.5]]]), (1, 1, 2))


def test_pieces_for_other_frameworks():
    V.check_shape((2, 1, 8, 8), name="x", rank=4, layout="[B, C, H, W]", channels=1, channel_axis=1)
    with pytest.raises(AdvpathError, match=r"x: expected 3 channel\(s\) \[B, C, H, W\], got shape \(2, 1, 8, 8\)"):
        V.check_shape((2, 1, 8, 8), name="x", rank=4, layout="[B, C, H, W]", channels=3, channel_axis=1)
    with pytest.raises(AdvpathError, match="x: contains NaN"):
        V.check_finite_flag(False, "x")
    with pytest.raises(AdvpathError, match="floating-point"):
        V.check_floating(False, "int64", "x")


def test_optional_positive_int():
    assert V.check_optional_positive_int(None, "n") is None
    assert V.check_optional_positive_int(3, "n") == 3 and type(V.check_optional_positive_int(3.0, "n")) is int
    for bad in (0, -2, 2.5, True):
        with pytest.raises(ValueError, match=r"group_size must be a positive integer or None, got"):
            V.check_optional_positive_int(bad, "group_size")
