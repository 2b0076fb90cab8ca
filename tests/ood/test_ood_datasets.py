"""The OOD image sets: levels, shapes and channels brought to those of a flow."""

import numpy as np
import pytest

from tfp_realnvp.ood import datasets


def test_adapt_images_rescales_levels_exactly():
  images = np.arange(17, dtype=np.uint8).reshape(1, 1, 17, 1)
  adapted = datasets.adapt_images(images, 17, (1, 17, 1), 256)
  np.testing.assert_array_equal(adapted[0, 0, :, 0], np.rint(np.arange(17) * 255 / 16))
  back = datasets.adapt_images(adapted, 256, (1, 17, 1), 17)
  np.testing.assert_array_equal(back, images)


def test_adapt_images_resizes_and_changes_channels():
  rng = np.random.default_rng(0)
  images = rng.integers(0, 17, (5, 8, 8, 1)).astype(np.uint8)
  adapted = datasets.adapt_images(images, 17, (28, 28, 3), 256)
  assert adapted.shape == (5, 28, 28, 3) and adapted.dtype == np.uint8
  np.testing.assert_array_equal(adapted[..., 0], adapted[..., 2])
  # Area-style averages of an all-16 image stay at the top level.
  full = datasets.adapt_images(np.full((1, 8, 8, 1), 16), 17, (28, 28, 1), 256)
  assert (full == 255).all()
  colour = rng.integers(0, 256, (2, 4, 4, 3))
  grey = datasets.adapt_images(colour, 256, (4, 4, 1), 256)
  np.testing.assert_array_equal(grey[..., 0], np.rint(colour.mean(axis=-1)))
  with pytest.raises(ValueError, match='Cannot turn 2 channels into 3'):
    datasets.adapt_images(np.zeros((1, 4, 4, 2), np.uint8), 256, (4, 4, 3), 256)
  with pytest.raises(ValueError, match=r'values in \[0, 16\]'):
    datasets.adapt_images(np.full((1, 4, 4, 1), 17), 17, (4, 4, 1), 256)


def test_digits_set():
  digits = datasets.digits_images((28, 28, 1), 256)
  assert digits.shape == (1797, 28, 28, 1) and digits.dtype == np.uint8
  assert digits.max() == 255 and digits.min() == 0


def test_generated_sets():
  noise = datasets.noise_images(300, (6, 5, 1), 256, seed=1)
  assert noise.shape == (300, 6, 5, 1) and noise.dtype == np.uint8
  assert abs(noise.mean() - 127.5) < 3. and noise.max() > 250 and noise.min() < 5
  np.testing.assert_array_equal(noise, datasets.noise_images(300, (6, 5, 1), 256, seed=1))
  constant = datasets.constant_images(50, (4, 4, 3), 17, seed=2)
  assert constant.shape == (50, 4, 4, 3) and constant.max() <= 16
  per_image = constant.reshape(50, -1)
  assert (per_image == per_image[:, :1]).all()
  assert len(np.unique(per_image[:, 0])) > 5
  images = np.random.default_rng(3).integers(0, 256, (3, 5, 4, 1)).astype(np.uint8)
  flipped = datasets.vflip_images(images)
  np.testing.assert_array_equal(flipped[:, 0], images[:, -1])
  np.testing.assert_array_equal(datasets.vflip_images(flipped), images)


def test_local_images(tmp_path):
  rng = np.random.default_rng(4)
  path = tmp_path / 'other.npz'
  x_test = rng.integers(0, 256, (7, 28, 28)).astype(np.uint8)
  np.savez(path, x_train=x_test[:2], x_test=x_test)
  images = datasets.local_images(path, (14, 14, 1), 256)
  assert images.shape == (7, 14, 14, 1)
  same = datasets.local_images(path, (28, 28, 1), 256)
  np.testing.assert_array_equal(same[..., 0], x_test)
  with pytest.raises(FileNotFoundError, match='does not exist'):
    datasets.local_images(tmp_path / 'missing.npz', (14, 14, 1))
  np.savez(tmp_path / 'bad.npz', x_train=x_test)
  with pytest.raises(ValueError, match='x_test'):
    datasets.local_images(tmp_path / 'bad.npz', (14, 14, 1))


def test_tfds_names():
  with pytest.raises(ValueError, match='not one of the tensorflow-datasets sets'):
    datasets.tfds_images('noise', (28, 28, 1))
