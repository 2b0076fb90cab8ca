"""Tests of tfp_realnvp/data/toy.py."""

import numpy as np
import pytest

from tfp_realnvp.data import toy

NAMES = ('moons', 'circles', 'blobs', 'checkerboard', '8gaussians', 'spirals')


def test_names():
  assert toy.TOY_2D_NAMES == NAMES


@pytest.mark.parametrize('name', NAMES)
def test_samples_are_standardised_float32_points(name):
  points = toy.make_toy_2d(name, 20000, seed=1)
  assert points.shape == (20000, 2) and points.dtype == np.float32
  assert np.all(np.isfinite(points))
  np.testing.assert_allclose(points.mean(axis=0), 0., atol=0.05)
  np.testing.assert_allclose(points.std(axis=0), 1., atol=0.05)
  assert toy.make_toy_2d(name, 1).shape == (1, 2)


@pytest.mark.parametrize('name', NAMES)
def test_samples_are_reproducible_from_the_seed(name):
  np.testing.assert_array_equal(toy.make_toy_2d(name, 500, seed=3),
                                toy.make_toy_2d(name, 500, seed=3))
  assert not np.array_equal(toy.make_toy_2d(name, 500, seed=3),
                            toy.make_toy_2d(name, 500, seed=4))


def test_checkerboard_points_lie_on_dark_squares_only():
  points = toy.make_toy_2d('checkerboard', 5000) * (4 / np.sqrt(12))
  parity = (np.floor(points[:, 0]) + np.floor(points[:, 1])) % 2
  assert len(set(parity)) == 1
  assert np.all(np.abs(points) <= 2)


def test_circles_have_two_radii_and_mixed_rows():
  points = toy.make_toy_2d('circles', 4000) * 0.5612
  radius = np.linalg.norm(points, axis=1)
  outer = radius > 0.75
  assert outer.sum() == 2000
  np.testing.assert_allclose(np.median(radius[outer]), 1., atol=0.02)
  np.testing.assert_allclose(np.median(radius[~outer]), 0.5, atol=0.02)
  assert 350 < outer[:1000].sum() < 650


def test_unknown_name_lists_the_valid_names():
  with pytest.raises(ValueError, match="Unknown 2-D toy dataset 'swiss'.*moons.*spirals"):
    toy.make_toy_2d('swiss', 10)


@pytest.mark.parametrize('num_samples', [0, -3, 2.5, True])
def test_bad_num_samples(num_samples):
  with pytest.raises(ValueError, match='num_samples'):
    toy.make_toy_2d('moons', num_samples)


def test_toy_pipeline_gives_endless_reproducible_batches_of_the_points():
  points = toy.make_toy_2d('moons', 100, seed=0)
  batches = [b.numpy() for b in toy.toy_pipeline(points, 32, seed=1).take(10)]
  assert len(batches) == 10
  assert all(b.shape == (32, 2) and b.dtype == np.float32 for b in batches)
  rows = {tuple(p) for p in points}
  assert all(tuple(p) in rows for b in batches for p in b)
  first_pass = np.concatenate(batches[:3])
  assert len({tuple(p) for p in first_pass}) == 96
  again = next(iter(toy.toy_pipeline(points, 32, seed=1))).numpy()
  np.testing.assert_array_equal(again, batches[0])
  other = next(iter(toy.toy_pipeline(points, 32, seed=2))).numpy()
  assert not np.array_equal(other, batches[0])
  with pytest.raises(ValueError, match='rank 2'):
    toy.toy_pipeline(points[:, 0], 32)
