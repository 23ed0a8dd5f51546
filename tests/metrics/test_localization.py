"""Percentile thresholding, IoU and FNR against hand-computed cases and a numpy reference."""

from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advpath_jax.metrics import iou_fnr, localization_metrics, n_keep, percentile_threshold_masks

# 4x4 map and a 2x2 lesion at rows 0-1, cols 1-2 (worked out by hand below)
MAP = np.array(
    [[0.1, 0.9, 0.3, 0.0],
     [0.8, 0.7, 0.2, 0.0],
     [0.6, 0.5, 0.4, 0.0],
     [0.0, 0.0, 0.0, 0.0]], np.float32)
GT = np.zeros((4, 4), bool)
GT[0:2, 1:3] = True


def test_n_keep():
    assert n_keep(16, 75) == 4
    assert n_keep(16, 90) == 2          # ceil(1.6)
    assert n_keep(100, 99) == 1         # exactly 1, no float round-up to 2
    assert n_keep(50176, 98) == 1004    # ceil(1003.52) at 224 x 224
    assert n_keep(10, 99.9) == 1        # never zero pixels
    for bad in (100, -1, float("nan")):
        with pytest.raises(ValueError, match="percentile"):
            n_keep(16, bad)


def test_hand_case_threshold_iou_fnr():
    masks = percentile_threshold_masks(MAP[None], [75, 90, 50])
    assert masks.shape == (3, 1, 4, 4) and masks.dtype == jnp.bool_
    expected75 = np.zeros((4, 4), bool)
    expected75[[0, 1, 1, 2], [1, 0, 1, 0]] = True  # 0.9, 0.8, 0.7, 0.6
    np.testing.assert_array_equal(np.asarray(masks[0, 0]), expected75)

    iou, fnr = iou_fnr(MAP[None], GT[None], [75, 90, 50])
    # sorted ascending: seven 0.0, then 0.1 .. 0.9 (indices 7 .. 15); numpy's linear
    # percentile index (N - 1) p / 100 = 11.25, 13.5, 7.5 falls strictly between two values
    # p75: B = {0.9, 0.8, 0.7, 0.6}, |GT∩B| = 2 -> IoU 2/6, FNR |B \ GT|/|B| = 2/4
    # p90: B = {0.9, 0.8}, |GT∩B| = 1 -> IoU 1/5, FNR 1/2 (1 - recall would be 3/4)
    # p50: B = {0.2 .. 0.9} (8 px) holds the whole lesion -> IoU 4/8, FNR 4/8 (1 - recall: 0)
    np.testing.assert_allclose(np.asarray(iou[:, 0]), [1 / 3, 1 / 5, 1 / 2], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(fnr[:, 0]), [1 / 2, 1 / 2, 1 / 2], atol=1e-7)
    # the same regions under the exact-count rule (no ties here): the same scores
    iou_i, fnr_i = iou_fnr(MAP[None], GT[None], [75, 90, 50], ties="index")
    np.testing.assert_allclose(np.asarray(fnr_i), np.asarray(fnr), atol=1e-7)


def test_fnr_is_share_of_map_outside_annotation_not_miss_rate():
    # GT = one row of 4 px; B at p75 = the 4 largest values: 1 inside GT, 3 outside
    m = np.array([[[9, 1, 1, 1], [8, 7, 6, 0], [0, 0, 0, 0], [0, 0, 0, 0]]], np.float32)
    gt = np.zeros((1, 4, 4), bool)
    gt[0, 0, :] = True
    iou, fnr = iou_fnr(m, gt, [75])
    # B = {9, 8, 7, 6}: |B ∩ GT| = 1, |B| = 4, |GT| = 4 -> 1 - precision = 3/4
    np.testing.assert_allclose(float(fnr[0, 0]), 3 / 4, atol=1e-7)
    np.testing.assert_allclose(float(iou[0, 0]), 1 / 7, rtol=1e-6)
    # a lesion of 1 px fully covered by B: 1 - recall = 0, but 3 of B's 4 px lie outside
    gt1 = np.zeros((1, 4, 4), bool)
    gt1[0, 0, 0] = True
    _, fnr1 = iou_fnr(m, gt1, [75])
    np.testing.assert_allclose(float(fnr1[0, 0]), 3 / 4, atol=1e-7)
    # B shrinks as p rises (B_99 ⊂ B_98), so FNR can fall: the paper's Table 1 pattern
    big = np.zeros((1, 20, 20), np.float32)
    big[0, :2, :2] = 10.0  # the 4 largest pixels are the lesion
    big[0, 10:, 10:] = np.arange(100, dtype=np.float32).reshape(10, 10) / 100
    gtb = np.zeros((1, 20, 20), bool)
    gtb[0, :2, :2] = True
    _, fnrb = iou_fnr(big, gtb, [95, 99])
    assert float(fnrb[1, 0]) < float(fnrb[0, 0])


def test_tie_rules():
    m = np.zeros((1, 4, 4), np.float32)
    m[0, 3, 3] = 1.0
    idx = np.asarray(percentile_threshold_masks(m, 75, ties="index"))[0, 0]
    expected = np.zeros((4, 4), bool)
    expected[3, 3] = True
    expected[0, :3] = True  # the three zero-valued pixels with the lowest row-major index
    np.testing.assert_array_equal(idx, expected)
    inc = np.asarray(percentile_threshold_masks(m, 75))[0, 0]
    assert inc.all()  # the 75th percentile value is 0: every pixel is >= it (tie at the threshold)
    assert np.percentile(m[0], 75) == 0.0

    m2 = np.array([[[3.0, 5.0], [3.0, 3.0]]], np.float32)  # keep 2 of 4 at p = 50
    np.testing.assert_array_equal(
        np.asarray(percentile_threshold_masks(m2, 50, ties="index"))[0, 0], [[True, True], [False, False]])
    np.testing.assert_array_equal(
        np.asarray(percentile_threshold_masks(m2, 50, ties="percentile"))[0, 0], [[True, True], [True, True]])

    # -0.0 and 0.0 are one value: the lower index wins whichever sign it carries
    m3 = np.array([[[-1.0, 0.0], [-0.0, -2.0]]], np.float32)
    m4 = np.array([[[-1.0, -0.0], [0.0, -2.0]]], np.float32)
    for mm in (m3, m4):
        np.testing.assert_array_equal(
            np.asarray(percentile_threshold_masks(mm, 75, ties="index"))[0, 0], [[False, True], [False, False]])
        # the percentile rule keeps both zeros whatever their sign (np.percentile = 0 here)
        np.testing.assert_array_equal(
            np.asarray(percentile_threshold_masks(mm, 75))[0, 0], [[False, True], [True, False]])


def _reference_threshold(maps, p, ties):
    b, h, w = maps.shape
    k = n_keep(h * w, p)
    out = np.zeros((b, h * w), bool)
    for i in range(b):
        flat = maps[i].reshape(-1).astype(np.float64)
        if ties == "index":
            out[i, np.argsort(-flat, kind="stable")[:k]] = True
        else:  # the authors' rule, with numpy's own percentile as the reference
            out[i] = maps[i].reshape(-1) >= np.percentile(maps[i], p)
    return out.reshape(b, h, w)


@pytest.mark.parametrize("ties", ["index", "percentile"])
@pytest.mark.parametrize("rounded", [True, False])
def test_matches_numpy_reference_with_ties(ties, rounded):
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(5, 13, 11)).astype(np.float32)
    if rounded:
        maps = np.round(maps * 2).astype(np.float32)  # many ties
    ps = (50, 90, 95, 98, 99, 37.3)
    got = np.asarray(percentile_threshold_masks(maps, ps, ties=ties))
    for j, p in enumerate(ps):
        np.testing.assert_array_equal(got[j], _reference_threshold(maps, p, ties))
    if ties == "index":
        np.testing.assert_array_equal(got.sum(axis=(2, 3)), [[n_keep(13 * 11, p)] * 5 for p in ps])


def test_iou_fnr_random_against_numpy():
    rng = np.random.default_rng(1)
    maps = rng.random((6, 10, 10)).astype(np.float32)
    masks = rng.random((6, 10, 10)) < 0.2
    masks[:, 0, 0] = True
    iou, fnr = iou_fnr(maps, masks, (80, 95))
    for j, p in enumerate((80, 95)):
        b = _reference_threshold(maps, p, "percentile")
        inter = (b & masks).sum(axis=(1, 2))
        np.testing.assert_allclose(np.asarray(iou[j]), inter / (b | masks).sum(axis=(1, 2)), rtol=1e-6)
        outside = (b & ~masks).sum(axis=(1, 2))
        np.testing.assert_allclose(np.asarray(fnr[j]), outside / b.sum(axis=(1, 2)), rtol=1e-6, atol=1e-7)


def test_jit_friendly():
    fn = jax.jit(lambda m, g: iou_fnr(m, g, (75, 90)))
    iou, _ = fn(jnp.asarray(MAP[None]), jnp.asarray(GT[None]))
    np.testing.assert_allclose(np.asarray(iou[:, 0]), [1 / 3, 1 / 5], rtol=1e-6)


def test_bad_input():
    with pytest.raises(ValueError, match="empty"):
        iou_fnr(np.stack([MAP, MAP]), np.stack([GT, np.zeros_like(GT)]), 75)
    bad = MAP.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        iou_fnr(bad[None], GT[None], 75)
    with pytest.raises(ValueError, match="shape"):
        iou_fnr(MAP, GT, 75)
    with pytest.raises(ValueError, match="shape"):
        iou_fnr(MAP[None], GT[None, :3], 75)
    with pytest.raises(ValueError, match="ties"):
        percentile_threshold_masks(MAP[None], 75, ties="random")
    with pytest.raises(ValueError, match="percentile"):
        percentile_threshold_masks(MAP[None], [100])


def test_localization_metrics_positives_only():
    maps = np.stack([MAP, MAP, MAP])
    masks = np.stack([GT, np.zeros_like(GT), GT])  # the negative may have an empty mask
    out = localization_metrics(maps, masks, labels=[1, 0, 1], percentiles=(75, 90))
    np.testing.assert_array_equal(out["index"], [0, 2])
    assert out["iou"].shape == (2, 2) and out["percentiles"] == [75.0, 90.0]
    np.testing.assert_allclose(out["iou"][:, 1], [1 / 3, 1 / 5], rtol=1e-6)
    with pytest.raises(ValueError, match="empty"):
        localization_metrics(maps, masks, labels=[1, 1, 1], percentiles=(75,))
    none = localization_metrics(maps, masks, labels=[0, 0, 0], percentiles=(75,))
    assert none["iou"].shape == (1, 0)
