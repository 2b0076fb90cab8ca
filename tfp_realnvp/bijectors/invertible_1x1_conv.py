"""Glow's invertible 1x1 convolution in its LU form, on the channels of every position."""

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_realnvp.bijectors.flow_bijector import FlowBijector

tfb = tfp.bijectors

__all__ = ['Invertible1x1Conv']


class Invertible1x1Conv(FlowBijector):
  """A learned invertible linear map of the channels, the same at every position.

  Glow's invertible 1x1 convolution (Kingma & Dhariwal, 2018, sec. 3.2) generalises a fixed
  permutation of the channels (such as the alternating masks of Real NVP) to a learned one.
  With the `C x C` matrix kept in its LU form `W = P L (U + diag(s))` (`P` a fixed
  permutation, `L` unit lower triangular, `U` strictly upper triangular), its log-determinant
  is `sum log|s|`. In the paper's direction (our `inverse`, data to latent), for an event
  `(H, W, C)` (or `(D,)`, where it is a learned `D x D` linear map with `N = 1`):

  ```none
  inverse(x)[i, j] = W^-1 x[i, j]           (per position, solved with the LU factors)
  forward(z)[i, j] = W z[i, j]
  forward_log_det_jacobian(z) = N * sum_c log|s_c|,   N = H * W
  ```

  The matrix-vector products are TFP's `tfb.ScaleMatvecLU` (Glow's `Convolution1x1`), applied
  to every position. `W` starts as a random rotation (the Q of a QR decomposition of a
  Gaussian matrix drawn from `seed`), so the layer starts volume-preserving.

  Args:
    event_shape: `(H, W, C)` or `(D,)`; the matrix acts on the last axis.
    seed: integer for NumPy's `default_rng`, which draws the starting rotation.
    validate_args: check inputs are finite at run time.
    name: name of the bijector.

  #### References
  [1]: Diederik P. Kingma, Prafulla Dhariwal. Glow: Generative Flow with Invertible 1x1
       Convolutions. NeurIPS 2018. https://arxiv.org/abs/1807.03039
  """

  def __init__(self, event_shape, seed=0, validate_args=False, name='invertible_1x1_conv'):
    parameters = dict(locals())
    event_shape = tuple(int(d) for d in event_shape)
    if len(event_shape) not in (1, 3):
      raise ValueError(f'event_shape must be (H, W, C) or (D,), got {event_shape}.')
    channels = event_shape[-1]
    rotation, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((channels, channels)))
    lower_upper, permutation = tf.linalg.lu(tf.constant(rotation, tf.float32))
    with tf.name_scope(name) as name:
      self._event_shape_tuple = event_shape
      self._positions = int(np.prod(event_shape[:-1], dtype=np.int64))
      self._lower_upper = tf.Variable(lower_upper, name='lower_upper')
      self._permutation = tf.Variable(permutation, trainable=False, name='permutation')
      self._matvec = tfb.ScaleMatvecLU(self._lower_upper, self._permutation)
      super().__init__(forward_min_event_ndims=len(event_shape), validate_args=validate_args,
                       parameters=parameters, name=name)

  @property
  def lower_upper(self):
    """The packed LU factors (`tf.linalg.lu`'s layout)."""
    return self._lower_upper

  def _log_det(self):
    log_abs_s = tf.math.log(tf.abs(tf.linalg.diag_part(tf.convert_to_tensor(self._lower_upper))))
    return self._positions * tf.reduce_sum(log_abs_s)

  def _forward_and_log_det(self, z, **kwargs):
    del kwargs
    x = self._matvec.forward(z)
    return x, tf.fill(tf.shape(z)[:1], self._log_det())

  def _inverse_and_log_det(self, x, **kwargs):
    del kwargs
    z = self._matvec.inverse(x)
    return z, tf.fill(tf.shape(x)[:1], -self._log_det())
