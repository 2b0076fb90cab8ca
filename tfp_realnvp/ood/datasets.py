"""Out-of-distribution image sets, brought to the shape and levels of a trained flow.

Every set is an integer array `(N, H, W, C)` with values in `[0, num_levels - 1]`,
the image shape and number of grey levels of the flow's training data:

- `digits`: scikit-learn's 1797 handwritten digits (8x8, 17 levels), rescaled to
  the flow's levels and resized to its image shape (`adapt_images`): smooth,
  MNIST-like strokes, the case where raw likelihood is known to fail.
- `noise`: independent uniform levels in every sub-pixel.
- `constant`: one level per image (uniform over the levels), the same in every
  sub-pixel.
- `vflip`: the in-distribution test images flipped upside down (same pixel
  statistics, other semantics).
- `mnist`, `kmnist`: the test split from tensorflow-datasets (downloaded unless
  already prepared; unavailable offline).
- local files (`local_images`): the test split of a folder of MNIST-layout IDX
  files or of a `.npz` with `x_test` (see `tfp_realnvp.data.load_images`).

`adapt_images` rescales levels with `round(k * (L_to - 1) / (L_from - 1))`,
resizes with `tfp_realnvp.data.resize_images` (area when shrinking, antialiased
bilinear when growing; rescaling first when the levels grow, so no precision is
lost), and turns 1 channel into C by repeating it, or C into 1 by the rounded
mean of the channels.
"""

import os

import numpy as np

from tfp_realnvp.data import load_images
from tfp_realnvp.data import resize_images

__all__ = ['GENERATED_SETS', 'TFDS_SETS', 'OOD_SET_NAMES', 'adapt_images',
           'digits_images', 'noise_images', 'constant_images', 'vflip_images',
           'tfds_images', 'local_images']

GENERATED_SETS = ('digits', 'noise', 'constant', 'vflip')
TFDS_SETS = ('mnist', 'kmnist')
OOD_SET_NAMES = GENERATED_SETS + TFDS_SETS


def _check_shape(image_shape):
  image_shape = tuple(int(d) for d in image_shape)
  if len(image_shape) != 3 or min(image_shape) < 1:
    raise ValueError(f'image_shape must be (H, W, C) with positive sizes; got {image_shape}.')
  return image_shape


def _rescale_levels(images, from_levels, to_levels):
  if from_levels == to_levels:
    return images.astype(np.uint8)
  scaled = np.rint(images.astype(np.float64) * (to_levels - 1) / (from_levels - 1))
  return np.clip(scaled, 0, to_levels - 1).astype(np.uint8)


def adapt_images(images, num_levels, image_shape, target_levels):
  """Rescales, resizes and adapts the channels of integer images.

  Args:
    images: integer array `(N, h, w, c)`, values in `[0, num_levels - 1]`.
    num_levels: Python `int`, the levels of `images`.
    image_shape: the target `(H, W, C)`.
    target_levels: Python `int`, the target number of levels.

  Returns:
    A `uint8` array `(N, H, W, C)` with values in `[0, target_levels - 1]`.

  Raises:
    ValueError: for images that are not integer `(N, h, w, c)` in their levels, or
      channels that cannot be adapted (only 1 -> C and C -> 1 are).
  """
  height, width, channels = _check_shape(image_shape)
  images = np.asarray(images)
  if images.ndim != 4 or not np.issubdtype(images.dtype, np.integer):
    raise ValueError(f'images must be integers of shape (N, H, W, C); got '
                     f'{images.dtype} {images.shape}.')
  if images.size and (images.min() < 0 or images.max() >= num_levels):
    raise ValueError(f'images must have values in [0, {num_levels - 1}]; got '
                     f'[{images.min()}, {images.max()}].')
  source_channels = images.shape[-1]
  if source_channels != channels:
    if source_channels == 1:
      images = np.repeat(images, channels, axis=-1)
    elif channels == 1:
      images = np.rint(images.mean(axis=-1, keepdims=True)).astype(images.dtype)
    else:
      raise ValueError(f'Cannot turn {source_channels} channels into {channels}.')
  if target_levels >= num_levels:
    images = _rescale_levels(images, num_levels, target_levels)
    levels = target_levels
  else:
    levels = num_levels
  if images.shape[1:3] != (height, width):
    images = resize_images(images, (height, width), levels)
  return _rescale_levels(images, levels, target_levels)


def digits_images(image_shape, num_levels=256):
  """scikit-learn's 1797 digits (train and test splits of `load_images('digits')`)."""
  digits = load_images('digits')
  images = np.concatenate([digits.train, digits.test])
  return adapt_images(images, digits.num_levels, image_shape, num_levels)


def noise_images(num_images, image_shape, num_levels=256, seed=0):
  """`num_images` images of independent uniform levels."""
  image_shape = _check_shape(image_shape)
  rng = np.random.default_rng(seed)
  return rng.integers(0, num_levels, size=(num_images,) + image_shape).astype(np.uint8)


def constant_images(num_images, image_shape, num_levels=256, seed=0):
  """`num_images` images, each of one uniformly drawn level everywhere."""
  image_shape = _check_shape(image_shape)
  rng = np.random.default_rng(seed)
  levels = rng.integers(0, num_levels, size=(num_images, 1, 1, 1)).astype(np.uint8)
  return np.broadcast_to(levels, (num_images,) + image_shape).copy()


def vflip_images(images):
  """The images `(N, H, W, C)` flipped upside down (rows reversed)."""
  images = np.asarray(images)
  if images.ndim != 4:
    raise ValueError(f'images must have shape (N, H, W, C); got {images.shape}.')
  return images[:, ::-1].copy()


def tfds_images(name, image_shape, num_levels=256, max_examples=None):
  """The test split of `name` (`mnist`, `kmnist`) from tensorflow-datasets.

  Raises:
    ValueError: for a name not in `TFDS_SETS`.
    RuntimeError: if tensorflow-datasets cannot load it (e.g. no network).
  """
  if name not in TFDS_SETS:
    raise ValueError(f'{name!r} is not one of the tensorflow-datasets sets {TFDS_SETS}.')
  data = load_images(name, max_examples=max_examples)
  return adapt_images(data.test, data.num_levels, image_shape, num_levels)


def local_images(path, image_shape, num_levels=256, max_examples=None):
  """The test split of local files: an IDX folder or a `.npz` with `x_test`.

  The files are read by `tfp_realnvp.data.load_images` (256 levels); the train
  split they must also hold is read and ignored.

  Raises:
    FileNotFoundError: if `path` does not exist or lacks the IDX files.
    ValueError: for files holding arrays of the wrong rank, dtype or range.
  """
  path = os.fspath(path)
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path} does not exist.')
  # The name only selects the loader's layout checks; the files come from `path`.
  data = load_images('mnist', data_dir=path, max_examples=max_examples)
  return adapt_images(data.test, data.num_levels, image_shape, num_levels)
