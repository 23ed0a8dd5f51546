import numpy as np
import pytest
import scipy.ndimage

from advpath_jax.attribution.smoothing import gaussian_kernel, gaussian_smooth, paper_smoothing


def test_kernel_is_normalised_symmetric_gaussian():
    k = gaussian_kernel(7, 1.5)
    assert k.shape == (7, 7) and np.isclose(k.sum(), 1.0)
    np.testing.assert_allclose(k, k.T, rtol=1e-6)
    # ratio of centre to a neighbour is exp(1 / (2 σ²))
    assert np.isclose(k[3, 3] / k[3, 4], np.exp(1 / (2 * 1.5 ** 2)), rtol=1e-5)


def test_paper_kernel_at_224_and_scaling():
    assert paper_smoothing(224) == (28, 2.0)
    size, sigma = paper_smoothing(112)
    assert size == 14 and np.isclose(sigma, 1.0)


@pytest.mark.parametrize("size, sigma", [(5, 1.0), (28, 2.0), (8, 0.6)])
def test_smoothing_equals_scipy_correlate(size, sigma):
    rng = np.random.default_rng(1)
    maps = rng.uniform(size=(2, 40, 36)).astype(np.float32)
    ours = np.asarray(gaussian_smooth(maps, size, sigma))
    # independent reference: scipy with zero padding; even kernels are shifted by origin=-1
    k = gaussian_kernel(size, sigma).astype(np.float64)
    origin = -1 if size % 2 == 0 else 0
    ref = np.stack([scipy.ndimage.correlate(m.astype(np.float64), k, mode="constant", cval=0.0,
                                            origin=origin) for m in maps])
    np.testing.assert_allclose(ours, ref, atol=1e-6)


def test_smoothing_multichannel_is_per_channel():
    rng = np.random.default_rng(2)
    images = rng.uniform(size=(1, 16, 16, 3)).astype(np.float32)
    out = np.asarray(gaussian_smooth(images, 5, 1.0))
    for c in range(3):
        np.testing.assert_allclose(out[..., c], np.asarray(gaussian_smooth(images[..., c], 5, 1.0)),
                                   atol=1e-7)


@pytest.mark.parametrize("size, sigma", [(0, 1.0), (3, 0.0), (3, -1.0), (2.5, 1.0)])
def test_bad_kernel_arguments(size, sigma):
    with pytest.raises(ValueError):
        gaussian_kernel(size, sigma)
