"""Resizing and center-cropping integer images, as numpy arrays or inside `tf.data`."""

import numpy as np
import tensorflow as tf

from tfp_realnvp.data import _checks

__all__ = ['center_crop_tensor', 'resize_images', 'resize_tensor']

_RESIZE_CHUNK = 4096


def center_crop_tensor(images, height, width):
  """The central `height x width` window of images `(..., H, W, C)` (a `Tensor`).

  The window starts at row `(H - height) // 2` and column `(W - width) // 2`; `height`
  and `width` (ints or int32 scalar `Tensor`s) must not exceed `H` and `W`.
  """
  shape = tf.shape(images)
  top = (shape[-3] - height) // 2
  left = (shape[-2] - width) // 2
  return images[..., top:top + height, left:left + width, :]


def resize_tensor(images, image_size, num_levels=256, crop_to_aspect_ratio=False):
  """`resize_images` on a `Tensor` `(H, W, C)` or `(N, H, W, C)` of any static shape.

  Works inside a `tf.data` map on images whose sizes are known only when it runs.

  Args:
    images: Integer `Tensor` of rank 3 or 4 with values in `[0, num_levels - 1]`.
    image_size: `(height, width)` of the result, Python ints.
    num_levels: Python `int`, the number of grey levels of `images`.
    crop_to_aspect_ratio: Python `bool`, see `resize_images`.

  Returns:
    A `uint8` `Tensor` of the rank of `images` with `height` rows and `width` columns.
  """
  height, width = image_size
  shape = tf.shape(images)
  if crop_to_aspect_ratio:
    # The rule of keras.preprocessing.image.smart_resize.
    image_height = tf.cast(shape[-3], tf.float64)
    image_width = tf.cast(shape[-2], tf.float64)
    crop_height = tf.minimum(shape[-3], tf.cast(image_width * height / width, tf.int32))
    crop_width = tf.minimum(shape[-2], tf.cast(image_height * width / height, tf.int32))
    images = center_crop_tensor(images, tf.maximum(crop_height, 1), tf.maximum(crop_width, 1))
    shape = tf.shape(images)
  pixels = tf.cast(images, tf.float32)
  shrinks = tf.logical_and(height <= shape[-3], width <= shape[-2])
  resized = tf.cond(
      shrinks,
      lambda: tf.image.resize(pixels, (height, width), method='area'),
      lambda: tf.image.resize(pixels, (height, width), method='bilinear', antialias=True))
  return tf.cast(tf.clip_by_value(tf.round(resized), 0., num_levels - 1.), tf.uint8)


def resize_images(images, image_size, num_levels=256, crop_to_aspect_ratio=False):
  """Resizes integer images, keeping them integers in `[0, num_levels - 1]`.

  Uses area interpolation when both sides shrink or stay, bilinear interpolation with
  antialiasing otherwise; the results are rounded to the nearest integer (halves to
  even) and clipped. With `crop_to_aspect_ratio`, each image is first center-cropped to
  the largest window of the aspect ratio of `image_size` (the rule of
  `keras.preprocessing.image.smart_resize`: `min(H, int(W * height / width))` rows and
  `min(W, int(H * width / height))` columns), so that nothing is stretched; otherwise
  the whole image is resized, and stretched if the aspect ratios differ.

  Args:
    images: Integer array of shape `(N, H, W, C)`.
    image_size: `(height, width)` of the result.
    num_levels: Python `int`, the number of grey levels of `images`.
    crop_to_aspect_ratio: Python `bool`, see above.

  Returns:
    A `uint8` array of shape `(N, height, width, C)`.

  Raises:
    ValueError: if `images` is not an integer array of rank 4 with values in
      `[0, num_levels - 1]`, or `image_size` is not two positive ints.
  """
  image_size = _checks.check_image_size(image_size)
  images = _checks.check_integer_images(images, 'images')
  _checks.check_levels(images, num_levels, 'images')
  if not len(images):
    return np.zeros((0,) + image_size + images.shape[3:], np.uint8)
  return np.concatenate([
      resize_tensor(images[start:start + _RESIZE_CHUNK], image_size, num_levels,
                    crop_to_aspect_ratio).numpy()
      for start in range(0, len(images), _RESIZE_CHUNK)])
