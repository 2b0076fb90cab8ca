"""Tests of tfp_realnvp/data/resize.py."""

import numpy as np
import pytest
import tensorflow as tf

from tfp_realnvp.data import load_images
from tfp_realnvp.data import resize


@pytest.mark.parametrize('image_size', [(4, 4), (16, 12), (5, 8)])
def test_resize_keeps_integers_in_range(image_size):
  images = np.random.default_rng(5).integers(0, 17, (6, 8, 8, 2)).astype(np.uint8)
  images[0] = 16
  resized = resize.resize_images(images, image_size, num_levels=17)
  assert resized.shape == (6,) + image_size + (2,) and resized.dtype == np.uint8
  assert resized.max() <= 16
  assert np.all(resized[0] == 16)


def test_resize_by_half_averages_two_by_two_blocks():
  images = np.array([[0, 2], [4, 7]], np.uint8).reshape(1, 2, 2, 1)
  assert resize.resize_images(np.tile(images, (1, 2, 2, 1)), (2, 2)).ravel().tolist() == [
      3, 3, 3, 3]


def test_crop_to_aspect_ratio_keeps_the_centre():
  # 6x12 images: the central 6x6 square is 9, the columns outside it 0.
  images = np.zeros((2, 6, 12, 1), np.uint8)
  images[:, :, 3:9] = 9
  np.testing.assert_array_equal(
      resize.resize_images(images, (3, 3), crop_to_aspect_ratio=True), 9)
  stretched = resize.resize_images(images, (3, 3))
  assert stretched[:, :, 0].max() < 9
  # A 2:1 target keeps the whole width of 1:2 images and crops their height instead.
  tall = np.zeros((1, 12, 6, 1), np.uint8)
  tall[:, 4:7] = 200
  np.testing.assert_array_equal(
      resize.resize_images(tall, (1, 2), crop_to_aspect_ratio=True), 200)


def test_resize_tensor_in_a_graph_matches_resize_images_for_any_size():
  rng = np.random.default_rng(6)
  resize_one = tf.function(
      lambda image: resize.resize_tensor(image, (5, 7), crop_to_aspect_ratio=True),
      input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)])
  for shape in ((9, 9, 3), (4, 20, 3), (30, 6, 3)):
    image = rng.integers(0, 256, shape).astype(np.uint8)
    np.testing.assert_array_equal(
        resize_one(image).numpy(),
        resize.resize_images(image[None], (5, 7), crop_to_aspect_ratio=True)[0])


def test_load_images_resizes():
  data = load_images('digits', image_size=(16, 16), max_examples=50)
  assert data.train.shape == (50, 16, 16, 1) and data.train.dtype == np.uint8
  assert data.train.max() <= 16 and data.train.max() >= 15
