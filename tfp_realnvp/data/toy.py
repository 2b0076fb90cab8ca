"""Two-dimensional toy densities for flows on vector events."""

import numpy as np
import tensorflow as tf

from tfp_realnvp.data import _batching

__all__ = ['TOY_2D_NAMES', 'make_toy_2d', 'toy_pipeline']


def _moons(rng, n):
  n_upper = n // 2
  angle = rng.uniform(0., np.pi, n)
  upper = np.arange(n) < n_upper
  x = np.where(upper, np.cos(angle), 1. - np.cos(angle))
  y = np.where(upper, np.sin(angle), 0.5 - np.sin(angle))
  return np.stack([x, y], axis=1) + rng.normal(0., 0.1, (n, 2))


def _circles(rng, n):
  radius = np.where(np.arange(n) < n // 2, 1., 0.5)
  angle = rng.uniform(0., 2 * np.pi, n)
  points = radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
  return points + rng.normal(0., 0.05, (n, 2))


def _blobs(rng, n):
  angles = np.pi / 2 + 2 * np.pi / 3 * np.arange(3)
  centres = 2. * np.stack([np.cos(angles), np.sin(angles)], axis=1)
  return centres[rng.integers(0, 3, n)] + rng.normal(0., 0.5, (n, 2))


def _checkerboard(rng, n):
  x = rng.uniform(-2., 2., n)
  y = rng.uniform(0., 1., n) - 2. * rng.integers(0, 2, n) + np.floor(x) % 2
  return np.stack([x, y], axis=1)


def _eight_gaussians(rng, n):
  angles = np.pi / 4 * np.arange(8)
  centres = 2. * np.stack([np.cos(angles), np.sin(angles)], axis=1)
  return centres[rng.integers(0, 8, n)] + rng.normal(0., 0.2, (n, 2))


def _spirals(rng, n):
  turn = np.sqrt(rng.uniform(0., 1., n)) * 3 * np.pi
  arm = np.stack([-np.cos(turn) * turn, np.sin(turn) * turn], axis=1)
  sign = np.where(np.arange(n) < n // 2, 1., -1.)[:, None]
  return sign * arm / 3. + rng.normal(0., 0.1, (n, 2))


# name: (sampler, mean, std), the mean and std per coordinate of the sampler's density
# (estimated once from 10**7 points) used to standardise every sample identically.
_TOY_2D = {
    'moons': (_moons, (0.5, 0.25), (0.8717, 0.5042)),
    'circles': (_circles, (0., 0.), (0.5612, 0.5612)),
    'blobs': (_blobs, (0., 0.), (1.5000, 1.5000)),
    'checkerboard': (_checkerboard, (0., 0.), (1.1547, 1.1547)),
    '8gaussians': (_eight_gaussians, (0., 0.), (1.4283, 1.4283)),
    'spirals': (_spirals, (0., 0.), (1.6000, 1.5473)),
}
TOY_2D_NAMES = tuple(_TOY_2D)


def make_toy_2d(name, num_samples, seed=0):
  """Samples a 2-D toy density, standardised to roughly unit scale.

  The densities, before standardisation:

  * `'moons'`: two interleaving half circles (as scikit-learn's `make_moons`), noise
    std 0.1, half the points on each.
  * `'circles'`: concentric circles of radii 1 and 0.5, noise std 0.05, half on each.
  * `'blobs'`: three Gaussians of std 0.5 at distance 2 from the origin, 120 degrees
    apart, equally likely.
  * `'checkerboard'`: uniform on the 8 dark squares of a 4x4 checkerboard over
    `[-2, 2]^2`.
  * `'8gaussians'`: eight Gaussians of std 0.2 on the circle of radius 2, equally likely.
  * `'spirals'`: two interleaved spirals of 1.5 turns, noise std 0.1, half on each.

  Each coordinate is then shifted and scaled by fixed constants (the mean and standard
  deviation of the density, not of the sample), so every sample of a density is
  standardised the same way. The rows are shuffled, so any prefix mixes the components.

  Args:
    name: One of `TOY_2D_NAMES`.
    num_samples: Python `int`, at least 1.
    seed: Anything `np.random.default_rng` accepts, e.g. an `int`; the same seed gives
      the same points.

  Returns:
    A float32 numpy array of shape `(num_samples, 2)`.

  Raises:
    ValueError: if `name` is unknown (the message lists the valid names) or
      `num_samples` is not a positive int.
  """
  if name not in _TOY_2D:
    raise ValueError(f'Unknown 2-D toy dataset {name!r}; '
                     f'valid names are {", ".join(TOY_2D_NAMES)}.')
  if (not isinstance(num_samples, (int, np.integer)) or isinstance(num_samples, bool) or
      num_samples < 1):
    raise ValueError(f'num_samples must be a positive int; got {num_samples!r}.')
  sampler, mean, std = _TOY_2D[name]
  rng = np.random.default_rng(seed)
  points = rng.permutation(sampler(rng, int(num_samples)))
  return ((points - np.asarray(mean)) / np.asarray(std)).astype(np.float32)


def toy_pipeline(points, batch_size, seed=0):
  """An endless `tf.data.Dataset` of shuffled batches of `points`.

  Each pass over the points visits them in a fresh order that depends only on
  `(seed, pass number)`; batches may straddle two passes.

  Args:
    points: Float array of shape `(N, D)`, e.g. from `make_toy_2d`.
    batch_size: Python `int`.
    seed: Python `int`.

  Returns:
    A `tf.data.Dataset` of float32 `Tensor`s of shape `(batch_size, D)`.

  Raises:
    ValueError: if `points` is not of rank 2, or `batch_size` or `seed` is invalid.
  """
  points = np.asarray(points, dtype=np.float32)
  if points.ndim != 2:
    raise ValueError(f'points must have rank 2, (N, D); got shape {points.shape}.')
  _batching.check_pipeline_args(len(points), batch_size, seed, None, True)
  points = tf.constant(points)
  dataset = _batching.index_batches(
      len(points), batch_size, seed=seed, shuffle=True, num_passes=None,
      drop_remainder=True)
  dataset = dataset.map(lambda _, indices: tf.gather(points, indices),
                        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  return dataset.prefetch(tf.data.AUTOTUNE)
