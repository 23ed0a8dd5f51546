"""Synthetic generators: determinism, class balance, exact masks, intensity != lesion."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from advpath_jax.data import synth_brain, synth_chest
from advpath_jax.data.synthetic import split_seed

GENERATORS = {"brain": synth_brain, "chest": synth_chest}


@pytest.fixture(scope="module")
def sets():
    return {name: fn(240, 64, seed=7) for name, fn in GENERATORS.items()}


@pytest.mark.parametrize("name", GENERATORS)
def test_deterministic_by_seed(name):
    fn = GENERATORS[name]
    a, b, c = fn(24, 64, seed=3), fn(24, 64, seed=3), fn(24, 64, seed=4)
    for key in ("image", "label", "mask", "id"):
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["image"], c["image"])


@pytest.mark.parametrize("name,fraction", [("brain", 0.25), ("chest", 0.40)])
def test_layout_and_class_balance(sets, name, fraction):
    d = sets[name]
    assert d["image"].shape == (240, 64, 64, 1) and d["image"].dtype == np.float32
    assert d["label"].dtype == np.int32 and d["mask"].dtype == bool and d["mask"].shape == (240, 64, 64)
    assert d["image"].min() >= 0.0 and d["image"].max() <= 1.0
    assert d["label"].sum() == round(240 * fraction)
    assert len(set(d["id"])) == 240
    # Labels are shuffled, not a leading block of positives.
    assert np.flatnonzero(d["label"] == 1).max() >= d["label"].sum()
    odd = GENERATORS[name](50, 64, seed=1, positive_fraction=0.5)
    assert odd["label"].sum() == 25


@pytest.mark.parametrize("name", GENERATORS)
def test_masks_exact_and_large_enough(sets, name):
    d = sets[name]
    neg, pos = d["label"] == 0, d["label"] == 1
    assert not d["mask"][neg].any()
    rect = 0
    for m in d["mask"][pos]:
        comps, n = ndimage.label(m)
        sizes = np.bincount(comps.ravel())[1:]
        assert 1 <= n <= (3 if name == "brain" else 2)
        assert sizes.min() >= 10
        ys, xs = np.nonzero(m)
        rect += m.sum() == (np.ptp(ys) + 1) * (np.ptp(xs) + 1)
    if name == "chest":  # boxes: most positives (one box, or disjoint-free) are rectangles
        assert rect >= 0.5 * pos.sum()


@pytest.mark.parametrize("name", GENERATORS)
def test_lesion_signal_lies_inside_the_mask(name):
    # Only the lesion intensity depends on lesion_contrast (same random draws), so the
    # difference of two contrasts shows exactly where lesion signal was painted.
    fn = GENERATORS[name]
    faint = fn(30, 64, seed=9, lesion_contrast=0.1, noise=0.0)
    strong = fn(30, 64, seed=9, lesion_contrast=0.5, noise=0.0)
    np.testing.assert_array_equal(faint["mask"], strong["mask"])
    diff = np.abs(strong["image"] - faint["image"])[..., 0]
    assert diff[~strong["mask"]].max() == 0.0
    assert diff[strong["mask"]].mean() > 0.05


@pytest.mark.parametrize("name", GENERATORS)
def test_lesions_visible_but_not_the_brightest(sets, name):
    d = sets[name]
    pos = np.flatnonzero(d["label"] == 1)
    contrast, brighter_outside, top_in_mask = [], 0, []
    for i in pos:
        img, m = d["image"][i, ..., 0], d["mask"][i]
        ring = ndimage.binary_dilation(m, iterations=3) & ~ndimage.binary_dilation(m, iterations=1)
        contrast.append(img[m].mean() - img[ring].mean())
        brighter_outside += img[~m].max() > img[m].mean()
        top = np.argsort(img.ravel())[-int(0.02 * img.size):]
        top_in_mask.append(m.ravel()[top].mean())
    # Clearly visible (a box mask also holds lung around the haze, hence the lower bar).
    assert np.mean(contrast) > (0.15 if name == "brain" else 0.04)
    assert brighter_outside >= 0.9 * len(pos)        # skull/ribs outshine the lesion
    assert np.mean(top_in_mask) < 0.3                # intensity does not localise lesions


@pytest.mark.parametrize("name", GENERATORS)
def test_knobs_change_difficulty(name):
    fn = GENERATORS[name]

    def stats(**kw):
        d = fn(40, 64, seed=2, positive_fraction=1.0, **kw)
        img, m = d["image"][..., 0], d["mask"]
        ring = np.stack([ndimage.binary_dilation(x, iterations=3) & ~ndimage.binary_dilation(x, iterations=1)
                         for x in m])
        return img[m].mean() - img[ring].mean(), m.sum() / len(m), img

    low_c, _, _ = stats(lesion_contrast=0.1)
    high_c, _, _ = stats(lesion_contrast=0.5)
    assert high_c > low_c + 0.1
    _, small, _ = stats(lesion_size=0.04)
    _, big, _ = stats(lesion_size=0.10)
    assert big > 2 * small
    # noise is the std of additive Gaussian noise (same scene for the same seed).
    _, _, quiet = stats(noise=0.0)
    _, _, loud = stats(noise=0.1)
    mid = (quiet > 0.35) & (quiet < 0.65)  # away from the [0, 1] clipping
    assert np.std((loud - quiet)[mid]) == pytest.approx(0.1, rel=0.05)


@pytest.mark.parametrize("name", GENERATORS)
def test_any_resolution(name):
    for size in (64, 96, 224):
        d = GENERATORS[name](4, size, seed=0, positive_fraction=0.5)
        assert d["image"].shape == (4, size, size, 1) and d["mask"].shape == (4, size, size)
        assert d["mask"][d["label"] == 1].reshape(2, -1).sum(1).min() >= 10


def test_bad_arguments():
    with pytest.raises(ValueError, match="positive_fraction"):
        synth_brain(4, 64, positive_fraction=1.5)
    with pytest.raises(ValueError, match="image_size"):
        synth_chest(4, 8)
    with pytest.raises(ValueError, match="split"):
        split_seed(0, "validation")
    assert len({split_seed(0, s) for s in ("train", "val", "test")}) == 3
