"""Latents of a flow at a temperature, drawn reproducibly from a seed.

The one way this package draws the latents it turns into samples: the trainer's sample grids,
the SavedModel's `sample` signature and `tfp_realnvp.viz` all call `sample_latents`, so one
seed gives the same images everywhere (eager, `tf.function`, a loaded SavedModel).

#### References
[1]: Diederik P. Kingma, Prafulla Dhariwal. Glow: Generative Flow with Invertible 1x1
     Convolutions. NeurIPS 2018. https://arxiv.org/abs/1807.03039 (sampling at a reduced
     temperature).
"""

import math

import numpy as np
import tensorflow as tf

__all__ = ['sample_latents']


def sample_latents(event_shape, num_samples, temperature=1.0, seed=None):
  """Draws `z = T * eps`, `eps ~ N(0, I)`, of shape `(num_samples,) + event_shape`, float32.

  The base distribution of the flows here is a standard normal over the whole event; scaling
  its standard deviation by the temperature `T` is Glow's reduced-temperature sampling (`T = 1`
  samples the model, `T < 1` trades diversity for quality, `T = 0` gives `z = 0`). For a given
  seed the noise `eps` is the same for every `T`, so latents at different temperatures are the
  same directions rescaled.

  The noise is `tf.random.stateless_normal(shape, seed=[seed, 0])` with `seed` reduced modulo
  2**31, so the same integer seed gives the same latents from Python, inside a `tf.function`,
  and in a SavedModel.

  Args:
    event_shape: the flow's event shape, e.g. `(28, 28, 1)` or `(2,)`.
    num_samples: N >= 0, a Python int or an int32 scalar tensor.
    temperature: T >= 0, a Python float or a float32 scalar tensor.
    seed: a Python int, an integer scalar tensor, or None for fresh non-deterministic noise.

  Returns:
    A float32 `tf.Tensor` of shape `(num_samples,) + event_shape`.

  Raises:
    ValueError: for a negative or non-finite Python `temperature` or a negative Python
      `num_samples`.
  """
  event_shape = [int(d) for d in event_shape]
  if isinstance(temperature, (int, float, np.floating, np.integer)):
    if not math.isfinite(float(temperature)) or float(temperature) < 0.:
      raise ValueError(f'temperature must be a finite number >= 0, got {temperature}.')
  if isinstance(num_samples, (int, np.integer)) and num_samples < 0:
    raise ValueError(f'num_samples must be >= 0, got {num_samples}.')
  num_samples = tf.cast(num_samples, tf.int32)
  shape = tf.concat([tf.reshape(num_samples, [1]), tf.constant(event_shape, tf.int32)], 0)
  if seed is None:
    eps = tf.random.Generator.from_non_deterministic_state().normal(shape, dtype=tf.float32)
  else:
    seed = tf.math.floormod(tf.cast(seed, tf.int64), 2**31)
    eps = tf.random.stateless_normal(shape, seed=tf.stack([seed, tf.constant(0, tf.int64)]),
                                     dtype=tf.float32)
  return tf.cast(temperature, tf.float32) * eps
