import jax.numpy as jnp
import numpy as np
import pytest

import advpath_jax as ap


def _f(x):
    return jnp.sum(x, axis=(1, 2, 3))


GOOD = np.zeros((2, 8, 8, 1), np.float32)


@pytest.mark.parametrize("start, end, kwargs, message", [
    (GOOD, np.zeros((2, 8, 9, 1), np.float32), {}, "shapes differ"),
    (GOOD[0], GOOD[0], {}, "rank 4"),
    (np.where(np.eye(8)[None, :, :, None] > 0, np.nan, 0).astype(np.float32), GOOD, {}, "NaN or Inf"),
    (GOOD, np.full_like(GOOD, np.inf), {}, "NaN or Inf"),
    (GOOD.astype(np.int32), GOOD.astype(np.int32), {}, "floating-point"),
    (GOOD, GOOD, {"steps": 0}, "steps"),
    (GOOD, GOOD, {"steps": 0, "weight": "delta"}, "steps"),
    (GOOD, GOOD, {"rule": "simpson"}, "unknown quadrature rule"),
    (GOOD, GOOD, {"weight": "v3"}, "unknown weight"),
    (GOOD, GOOD, {"weight": 3}, "weight must be"),
    (GOOD, GOOD, {"smoothing": (0, 1.0)}, "smoothing"),
    (GOOD, GOOD, {"smoothing": 5}, "smoothing"),
    (GOOD, GOOD, {"chunk_size": 0}, "chunk_size"),
    (GOOD[:0], GOOD[:0], {}, "empty"),
])
def test_bad_input_raises_value_error(start, end, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ap.path_attribution(_f, start, end, **kwargs)


def test_ig_and_saliency_validate_too():
    with pytest.raises(ValueError, match="rank 4"):
        ap.integrated_gradients(_f, GOOD[0])
    with pytest.raises(ValueError, match="shapes differ"):
        ap.integrated_gradients(_f, GOOD, baseline=np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        ap.gradient_saliency(_f, np.full_like(GOOD, np.nan))
