"""Uniform dequantization: integer pixels `k` to continuous `x = (k + u) / num_levels`.

#### References
[1]: Lucas Theis, Aaron van den Oord, Matthias Bethge. A note on the evaluation of
     generative models. ICLR 2016. https://arxiv.org/abs/1511.01844
"""

import numpy as np
import tensorflow as tf

from tfp_realnvp.data import _checks

__all__ = ['dequantize', 'dequantize_tf']

# u is kept this far from 0 and 1 so that floor(x * num_levels) == k holds in float32.
_NOISE_MARGIN = 2.0**-12


def dequantize(images, num_levels, seed_or_generator):
  """Uniform dequantization in numpy: `x = (k + u) / num_levels`, `u ~ U[0, 1)`.

  `u` is kept 2**-12 away from 0 and 1, so that `floor(x * num_levels) == k` holds
  exactly in float32 and `x` lies in `[0, 1)`.

  Args:
    images: Integer array (any shape) of values `k` in `[0, num_levels - 1]`.
    num_levels: Python `int`, the number of grey levels.
    seed_or_generator: Anything `np.random.default_rng` accepts: an `int` seed or a
      `np.random.Generator` (which is advanced).

  Returns:
    A float32 array of the shape of `images`, with values in `[0, 1)`.

  Raises:
    ValueError: if `images` is not integer or holds values outside the levels.
  """
  images = np.asarray(images)
  if not np.issubdtype(images.dtype, np.integer):
    raise ValueError(f'images must be integers; got dtype {images.dtype}.')
  _checks.check_levels(images, num_levels, 'images')
  rng = np.random.default_rng(seed_or_generator)
  noise = np.clip(rng.random(images.shape, dtype=np.float32),
                  _NOISE_MARGIN, 1 - _NOISE_MARGIN)
  return (images.astype(np.float32) + noise) / np.float32(num_levels)


def dequantize_tf(images, num_levels, seed):
  """Uniform dequantization in TensorFlow, with stateless noise; see `dequantize`.

  Args:
    images: Integer `Tensor` of values `k` in `[0, num_levels - 1]` (not checked).
    num_levels: Python `int`, the number of grey levels.
    seed: Stateless seed, an int32 or int64 `Tensor` of shape `[2]`; the same seed
      gives the same noise.

  Returns:
    A float32 `Tensor` of the shape of `images`, with values in `[0, 1)`.
  """
  noise = tf.random.stateless_uniform(
      tf.shape(images), seed=seed, minval=_NOISE_MARGIN, maxval=1 - _NOISE_MARGIN)
  return (tf.cast(images, tf.float32) + noise) / float(num_levels)
