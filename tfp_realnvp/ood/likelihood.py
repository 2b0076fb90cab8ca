"""Log-likelihoods of integer images under a flow, and the raw bits/dim score.

Every score of `tfp_realnvp.ood` starts from `log p(x)`, the log-density (nats)
of the dequantized image `x = (k + u) / num_levels`, `u ~ U[0, 1)`, under the
flow. `image_log_probs` computes it for integer images through any callable
`log_prob(x)`: a SavedModel's (`saved_model_log_prob`, so exported models are
scored without tfp_realnvp's classes), a `TransformedDistribution`'s `log_prob`,
or a plain function.

The raw score is the bits per dimension,

```none
bpd(x) = (-log p(x) / D + log(num_levels)) / log(2),   D = H * W * C,
```

an upper bound on the bits per dimension of the discrete image `k` under the
model (see `tfp_realnvp.bits_per_dim`). Large `bpd` (low likelihood) is taken as
evidence of OOD. Nalisnick et al. [1] showed that this fails for flows, VAEs and
PixelCNNs: a model of Fashion-MNIST gives MNIST digits *higher* likelihood than
its own test images, because simple inputs are likely under any image model.

#### References

[1]: Eric Nalisnick, Akihiro Matsukawa, Yee Whye Teh, Dilan Gorur, Balaji
     Lakshminarayanan. Do Deep Generative Models Know What They Don't Know? In
     _ICLR_, 2019. https://arxiv.org/abs/1810.09136
"""

import os

import numpy as np
import tensorflow as tf

from tfp_realnvp import bits
from tfp_realnvp.data import dequantize

__all__ = ['DEQUANTIZATION_SEED', 'image_log_probs', 'saved_model_log_prob',
           'bits_per_dim_scores']

# Seed of the dequantization noise of every scored set, so that runs compare.
DEQUANTIZATION_SEED = 1234


def saved_model_log_prob(path, event_shape=None):
  """The `log_prob` function of a SavedModel exported by `tfp_realnvp.train`.

  Args:
    path: folder of the SavedModel (e.g. `RUN/saved_model`).
    event_shape: optional expected image shape `(H, W, C)`, checked against the
      SavedModel's `event_shape` variable when it has one.

  Returns:
    `log_prob(x)`: float32 images `(N, H, W, C)` in [0, 1] to log-densities `(N,)`;
    its attribute `saved_model` is the loaded object.

  Raises:
    FileNotFoundError: if `path` holds no `saved_model.pb`.
    ValueError: if the SavedModel has no `log_prob` function, or is for images of
      another shape than `event_shape`.
  """
  path = os.fspath(path)
  if not os.path.isfile(os.path.join(path, 'saved_model.pb')):
    raise FileNotFoundError(f'{path} is not a SavedModel folder (no saved_model.pb).')
  model = tf.saved_model.load(path)
  if not hasattr(model, 'log_prob'):
    raise ValueError(f'The SavedModel at {path} has no log_prob function; export it '
                     'with tfp_realnvp.train.export_saved_model.')
  if event_shape is not None and hasattr(model, 'event_shape'):
    saved_shape = tuple(int(d) for d in np.asarray(model.event_shape.numpy()))
    if saved_shape != tuple(int(d) for d in event_shape):
      raise ValueError(f'The SavedModel at {path} is for images {saved_shape}, not '
                       f'{tuple(event_shape)}.')

  def log_prob(x):
    return model.log_prob(x)

  # The loaded object owns the variables: keep it alive with the function.
  log_prob.saved_model = model
  return log_prob


def image_log_probs(log_prob_fn, images, num_levels, batch_size=500,
                    seed=DEQUANTIZATION_SEED):
  """`log p(x)` of dequantized integer images, batch by batch, in nats.

  The images are dequantized as `x = (k + u) / num_levels` by
  `tfp_realnvp.data.dequantize`, with noise drawn from `seed` for the whole array
  at once: an image's noise depends only on `seed` and its position in
  `images`, not on `batch_size`, so the same call gives the same numbers and two
  models scored on the same images see the same inputs.

  Args:
    log_prob_fn: callable from float32 images `(n, H, W, C)` in [0, 1] to `(n,)`
      log-densities (a `Tensor` or array).
    images: integer array `(N, H, W, C)` with values in `[0, num_levels - 1]`.
    num_levels: Python `int`, the number of grey levels of `images`.
    batch_size: Python `int`, images per call of `log_prob_fn`.
    seed: Python `int`, seed of the dequantization noise.

  Returns:
    A float64 numpy array of shape `(N,)`.

  Raises:
    ValueError: for images that are not integer `(N, H, W, C)` in the levels, a
      bad `batch_size`, or if `log_prob_fn` returns the wrong shape.
  """
  images = np.asarray(images)
  if images.ndim != 4:
    raise ValueError(f'images must have shape (N, H, W, C); got {images.shape}.')
  if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
    raise ValueError(f'batch_size must be a positive int; got {batch_size!r}.')
  pixels = dequantize(images, num_levels, seed)
  results = [np.zeros((0,), np.float64)]
  for start in range(0, len(pixels), batch_size):
    x = pixels[start:start + batch_size]
    log_prob = np.asarray(log_prob_fn(tf.constant(x)), dtype=np.float64)
    if log_prob.shape != (len(x),):
      raise ValueError(f'log_prob_fn returned shape {log_prob.shape} for a batch of '
                       f'{len(x)} images; it must return one value per image.')
    results.append(log_prob)
  return np.concatenate(results)


def bits_per_dim_scores(log_probs, event_shape, num_levels=256):
  """The raw anomaly score: bits per dimension, `(-log p(x) / D + log L) / log 2`.

  Args:
    log_probs: array of `log p(x)` in nats (e.g. from `image_log_probs`).
    event_shape: the image shape `(H, W, C)` (its product is D) or D itself.
    num_levels: Python `int`, grey levels of the data (256 for 8-bit images).

  Returns:
    A float64 numpy array of the shape of `log_probs`: larger is more anomalous.
  """
  log_probs = np.asarray(log_probs, dtype=np.float64)
  return np.asarray(bits.bits_per_dim(log_probs, event_shape, num_levels))
