"""On-device augmentation against scipy.ndimage references."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from advpath_jax.data import AugmentConfig, augment, default_data_config, sample_params, warp


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    images = ndimage.gaussian_filter(rng.random((3, 20, 24, 1)), sigma=(0, 1.5, 1.5, 0)).astype(np.float32)
    masks = np.zeros((3, 20, 24), bool)
    masks[:, 5:11, 6:15] = True
    return images, masks


def _scipy_reference(img: np.ndarray, angle: float, scale: float, shift, order: int, mode: str):
    """The documented warp with scipy: source = R(-a) (o - c) / s + c - shift."""
    h, w = img.shape
    c = np.array([(h - 1) / 2, (w - 1) / 2])
    cos, sin = np.cos(angle), np.sin(angle)
    matrix = np.array([[cos, -sin], [sin, cos]]) / scale
    offset = c - matrix @ c - np.asarray(shift)
    return ndimage.affine_transform(img, matrix, offset=offset, order=order, mode=mode, cval=0.0)


@pytest.mark.parametrize("order,mode", [(1, "nearest"), (0, "nearest")])
def test_warp_matches_scipy(batch, order, mode):
    images, masks = batch
    params = {"flip": jnp.array([False, True, False]), "angle": jnp.array([0.2, -0.15, 0.0]),
              "scale": jnp.array([1.1, 0.92, 1.0]), "shift": jnp.array([[1.5, -2.0], [0.0, 3.0], [-2.5, 0.5]])}
    out = np.asarray(warp(jnp.asarray(images), params, order=order, mode=mode))
    for i in range(3):
        ref = _scipy_reference(images[i, ..., 0], float(params["angle"][i]), float(params["scale"][i]),
                               np.asarray(params["shift"][i]), order, mode)
        if bool(params["flip"][i]):  # a flip mirrors the output grid
            ref = ref[:, ::-1]
        if order == 1:
            np.testing.assert_allclose(out[i, ..., 0], ref, atol=2e-5)
        else:  # nearest: rounding ties may differ on a few pixels
            assert np.mean(np.abs(out[i, ..., 0] - ref) > 1e-6) < 0.02


def test_identity_and_pure_flip(batch):
    images, masks = batch
    key = jax.random.key(0)
    off = AugmentConfig(flip=False, rotation=0.0, zoom=0.0, translation=0.0)
    out, m = augment(key, jnp.asarray(images), jnp.asarray(masks), config=off)
    np.testing.assert_allclose(np.asarray(out), images, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(m), masks)
    flip_only = AugmentConfig(flip=True, rotation=0.0, zoom=0.0, translation=0.0)
    fn = jax.jit(functools.partial(augment, config=flip_only))
    outs = [np.asarray(fn(jax.random.key(s), jnp.asarray(images))) for s in range(6)]
    for out in outs:
        for i in range(3):
            same = np.allclose(out[i], images[i], atol=1e-6)
            mirrored = np.allclose(out[i], images[i][:, ::-1], atol=1e-6)
            assert same or mirrored
    flipped_any = any(not np.allclose(o[i], images[i], atol=1e-6) for o in outs for i in range(3))
    assert flipped_any


def test_masks_follow_images(batch):
    images, masks = batch
    # An image equal to its mask: after augmentation, thresholded image == augmented mask
    # (bilinear vs nearest can differ only on boundary pixels).
    as_image = masks[..., None].astype(np.float32)
    cfg = default_data_config("synth_brain", aug_rotation=15.0, aug_zoom=0.15, aug_translation=0.1)
    fn = jax.jit(functools.partial(augment, config=cfg))
    out, m = fn(jax.random.key(3), jnp.asarray(as_image), jnp.asarray(masks))
    out, m = np.asarray(out)[..., 0], np.asarray(m)
    boundary = ndimage.binary_dilation(m) & ~ndimage.binary_erosion(m)
    assert np.array_equal((out > 0.5)[~boundary], m[~boundary])
    assert m.any() and m.dtype == bool
    # Deterministic for a key, different for another.
    out2, m2 = fn(jax.random.key(3), jnp.asarray(as_image), jnp.asarray(masks))
    np.testing.assert_array_equal(m, np.asarray(m2))


def test_parameter_ranges():
    cfg = AugmentConfig(flip=True, rotation=10.0, zoom=0.1, translation=0.05)
    p = sample_params(jax.random.key(1), 4096, (64, 64), cfg)
    assert np.abs(np.asarray(p["angle"])).max() <= np.radians(10.0) + 1e-6
    assert np.abs(np.asarray(p["scale"]) - 1).max() <= 0.1 + 1e-6
    assert np.abs(np.asarray(p["shift"])).max() <= 0.05 * 64 + 1e-4
    assert 0.45 < np.asarray(p["flip"]).mean() < 0.55
    with pytest.raises(ValueError, match="zoom"):
        AugmentConfig(zoom=1.5)
