"""Bits per dimension, the unit of the papers' likelihood tables."""

import math

import numpy as np
import tensorflow as tf

__all__ = ['bits_per_dim']


def bits_per_dim(log_prob, event_shape, num_levels=256):
  """Converts `log_prob` of dequantized pixels in [0, 1] to bits per dimension.

  A discrete image with `num_levels` levels per sub-pixel, dequantized as
  `x = (k + u) / num_levels` with `u ~ U[0, 1)`, has probability
  `P(k) >= p(x) * num_levels**(-D)` (Jensen), so the papers' bits/dim are

  ```none
  bpd = (-log_prob / D + log(num_levels)) / log(2),    D = H * W * C
  ```

  with `log_prob` the density (in nats) of the pixels scaled to [0, 1], as
  `RealNVPChain`'s `log_prob` is: its logit preprocessing is inside the chain
  and counted. A model that is uniform on [0, 1]^D scores exactly
  `log2(num_levels)` = 8 bits/dim for 8-bit data.

  Args:
    log_prob: `Tensor` or array of log-densities, any shape.
    event_shape: the event shape (its product is D) or D itself.
    num_levels: levels per sub-pixel of the quantized data (256 for 8 bits).

  Returns:
    Bits per dimension, the shape of `log_prob`.
  """
  num_dims = int(np.prod(event_shape))
  if num_dims < 1:
    raise ValueError(f'event_shape must have at least one element, got '
                     f'{event_shape}.')
  if num_levels < 2:
    raise ValueError(f'num_levels must be >= 2, got {num_levels}.')
  log_prob = tf.convert_to_tensor(log_prob)
  return ((-log_prob / num_dims + math.log(num_levels)) / math.log(2.))
