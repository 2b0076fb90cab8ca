"""Tests of tfp_realnvp/data/dequantization.py."""

import numpy as np
import pytest
import tensorflow as tf

from tfp_realnvp.data import dequantize
from tfp_realnvp.data import dequantize_tf


@pytest.mark.parametrize('num_levels', [2, 17, 256])
def test_dequantize_stays_in_the_pixel_bin(num_levels):
  levels = np.repeat(np.arange(num_levels), 40000 // num_levels).astype(np.uint8)
  x = dequantize(levels, num_levels, 0)
  assert x.dtype == np.float32 and x.shape == levels.shape
  assert x.min() >= 0 and x.max() < 1
  np.testing.assert_array_equal(np.floor(x * np.float32(num_levels)), levels)
  noise = x * num_levels - levels
  assert noise.min() < 0.01 and noise.max() > 0.99 and abs(noise.mean() - 0.5) < 0.01


def test_dequantize_is_reproducible_from_the_seed():
  images = np.random.default_rng(6).integers(0, 256, (4, 5, 5, 1)).astype(np.uint8)
  np.testing.assert_array_equal(dequantize(images, 256, 1), dequantize(images, 256, 1))
  assert not np.array_equal(dequantize(images, 256, 1), dequantize(images, 256, 2))
  generator = np.random.default_rng(1)
  np.testing.assert_array_equal(dequantize(images, 256, generator), dequantize(images, 256, 1))


def test_dequantize_rejects_values_outside_the_levels():
  with pytest.raises(ValueError, match=r'values in \[0, 16\]'):
    dequantize(np.array([3, 17]), 17, 0)
  with pytest.raises(ValueError, match='integers'):
    dequantize(np.array([0.5]), 17, 0)


def test_dequantize_tf_stays_in_the_pixel_bin():
  levels = tf.constant(np.repeat(np.arange(256), 200), tf.uint8)
  x = dequantize_tf(levels, 256, tf.constant([3, 4], tf.int64)).numpy()
  assert x.dtype == np.float32 and x.min() >= 0 and x.max() < 1
  np.testing.assert_array_equal(np.floor(x * np.float32(256)), levels.numpy())
  again = dequantize_tf(levels, 256, tf.constant([3, 4], tf.int64)).numpy()
  np.testing.assert_array_equal(x, again)
