"""The trainers' batch sampler: determinism, coverage of an epoch, class balance."""

import numpy as np
import pytest

from advpath_jax.data.sampler import balanced_batches, epoch_steps, shuffled_batches


def test_shuffled_batches_cover_every_index_once_per_epoch():
    batches = list(shuffled_batches(24, 6, 4, seed=3, epoch=0))
    assert len(batches) == 4 and all(b.shape == (6,) for b in batches)
    assert sorted(np.concatenate(batches).tolist()) == list(range(24))


def test_shuffled_batches_leave_out_only_the_remainder():
    seen = np.concatenate(list(shuffled_batches(26, 6, 4, seed=3, epoch=0)))
    assert len(seen) == len(set(seen.tolist())) == 24 and seen.max() < 26


def test_shuffled_batches_are_deterministic_and_change_with_the_epoch():
    run = lambda seed, epoch: np.concatenate(list(shuffled_batches(30, 5, 6, seed=seed, epoch=epoch)))  # noqa: E731
    np.testing.assert_array_equal(run(1, 2), run(1, 2))
    assert not np.array_equal(run(1, 2), run(1, 3))
    assert not np.array_equal(run(1, 2), run(2, 2))


def test_shuffled_order_is_the_trainers_historical_order():
    # The order runs trained before the sampler existed used: numpy's default_rng([seed, epoch, 7919]).
    expected = np.random.default_rng([5, 1, 7919]).permutation(20)
    got = np.concatenate(list(shuffled_batches(20, 4, 5, seed=5, epoch=1)))
    np.testing.assert_array_equal(got, expected)
    sorted_batches = list(shuffled_batches(20, 4, 5, seed=5, epoch=1, sort=True))
    for b, e in zip(sorted_batches, expected.reshape(5, 4)):
        np.testing.assert_array_equal(b, np.sort(e))


def test_shuffled_batches_refuse_more_than_there_is():
    with pytest.raises(ValueError, match="need 12 items, only 10"):
        next(shuffled_batches(10, 4, 3, seed=0, epoch=0))


def test_balanced_batches_are_balanced_and_cycle_the_smaller_class():
    labels = np.array([0] * 17 + [1] * 5)
    members0, members1 = np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)
    pairs = list(balanced_batches(members0, members1, 3, 4, seed=0, epoch=0))
    assert len(pairs) == 4
    for a, b in pairs:
        assert a.shape == b.shape == (3,)
        assert np.all(labels[a] == 0) and np.all(labels[b] == 1)
    seen0 = np.concatenate([a for a, _ in pairs])
    seen1 = np.concatenate([b for _, b in pairs])
    assert len(set(seen0.tolist())) == 12  # the larger class: 12 distinct of its 17, no repeat
    counts = np.bincount(seen1, minlength=22)[members1]
    assert counts.sum() == 12 and set(counts.tolist()) <= {2, 3}  # every member of the smaller class, cycled
    # each pass of the cycle is a permutation of the smaller class
    assert sorted(seen1[:5].tolist()) == members1.tolist()


def test_balanced_batches_are_deterministic_and_refuse_an_empty_class():
    run = lambda e: [np.concatenate(p) for p in balanced_batches(np.arange(6), np.arange(6, 10), 2, 3, seed=4, epoch=e)]  # noqa: E731
    for x, y in zip(run(0), run(0)):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, y) for x, y in zip(run(0), run(1)))
    with pytest.raises(ValueError, match="both classes"):
        next(balanced_batches(np.arange(4), np.arange(0), 2, 1, seed=0, epoch=0))


def test_epoch_steps():
    assert epoch_steps(23, 5) == 4
    assert epoch_steps(23, 5, cap=3) == 3 and epoch_steps(23, 5, cap=None) == 4 and epoch_steps(23, 5, cap=0) == 4
    assert epoch_steps(3, 5) == 0
