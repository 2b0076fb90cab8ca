"""The paper's preprocessing: pixels in [0, 1] to logit space, with its log-det."""

import tensorflow as tf

from tfp_realnvp.bijectors.flow_bijector import assert_finite
from tfp_realnvp.bijectors.flow_bijector import FlowBijector
from tfp_realnvp.bijectors.flow_bijector import reduce_event

__all__ = ['LogitTransform']


class LogitTransform(FlowBijector):
  """`y = logit(a + (1 - 2a) x)`: dequantized pixels to an unbounded space.

  Real NVP (sec. 4.1) models `logit(a + (1 - 2a) x)` of the pixels `x` in
  [0, 1], with `a = 0.05`. Counting this map's log-det makes `log_prob` the
  density of the dequantized pixels themselves, so bits/dim can be compared
  with the papers. With `p = a + (1 - 2a) x`:

  ```none
  inverse(x) = log(p) - log(1 - p)                       (pixels -> logits)
  inverse_log_det_jacobian(x) = sum [log(1 - 2a) - log(p) - log(1 - p)]
  forward(y) = clip((sigmoid(y) - a) / (1 - 2a), 0, 1)    (logits -> pixels)
  forward_log_det_jacobian(y) = sum [log sigmoid(y) + log sigmoid(-y)
                                     - log(1 - 2a)]
  ```

  The logit maps [0, 1] onto `[logit(a), logit(1 - a)]` (about +-2.94 for
  a = 0.05). `forward` clips to [0, 1] so that samples are valid pixels: it is
  exact for logits inside that interval (which is where data live) and maps a
  logit outside it to the nearest valid pixel, 0 or 1. Its log-det is that of
  the unclipped sigmoid map. With `validate_args=True`, `inverse` checks that
  the pixels are finite and in [0, 1] and raises `InvalidArgumentError`
  naming the problem.

  Args:
    event_ndims: rank of the event whose log-det is summed (3 for images).
    alpha: `a`, in (0, 0.5).
    validate_args: check the input's range and finiteness at run time.
    name: name of the bijector.

  #### Examples

  ```python
  logit = LogitTransform(event_ndims=3)
  y = logit.inverse(pixels)            # pixels in [0, 1] -> R
  pixels_back = logit.forward(y)
  ```

  #### References
  [1]: Laurent Dinh, Jascha Sohl-Dickstein, Samy Bengio. Density estimation
       using Real NVP. ICLR 2017, sec. 4.1.
  """

  def __init__(self, event_ndims=3, alpha=0.05, validate_args=False,
               name='logit_transform'):
    parameters = dict(locals())
    if not 0. < alpha < 0.5:
      raise ValueError(f'alpha must be in (0, 0.5), got {alpha}.')
    with tf.name_scope(name) as name:
      self._alpha = float(alpha)
      self._event_ndims = int(event_ndims)
      super().__init__(
          forward_min_event_ndims=self._event_ndims,
          validate_args=validate_args,
          parameters=parameters,
          name=name)

  @property
  def alpha(self):
    return self._alpha

  @classmethod
  def _parameter_properties(cls, dtype):
    return dict()

  def _inverse_and_log_det(self, x, training=False):
    del training
    if self.validate_args:
      x = _assert_pixels(x, self.name)
    a = self._alpha
    p = a + (1. - 2. * a) * x
    y = tf.math.log(p) - tf.math.log1p(-p)
    ildj = reduce_event(
        tf.math.log(1. - 2. * a) - tf.math.log(p) - tf.math.log1p(-p),
        self._event_ndims)
    return y, ildj

  def _forward_and_log_det(self, y, training=False):
    del training
    if self.validate_args:
      y = assert_finite(y, self.name)
    a = self._alpha
    x = tf.clip_by_value((tf.sigmoid(y) - a) / (1. - 2. * a), 0., 1.)
    fldj = reduce_event(
        tf.math.log_sigmoid(y) + tf.math.log_sigmoid(-y)
        - tf.math.log(1. - 2. * a), self._event_ndims)
    return x, fldj


def _assert_pixels(x, name):
  x = assert_finite(x, name)
  with tf.control_dependencies([
      tf.debugging.assert_greater_equal(
          x, tf.zeros([], x.dtype),
          message=f'{name}: pixels must lie in [0, 1]; found a value below 0 '
                  f'(scale 8-bit images by 1/256 after dequantizing)'),
      tf.debugging.assert_less_equal(
          x, tf.ones([], x.dtype),
          message=f'{name}: pixels must lie in [0, 1]; found a value above 1 '
                  f'(scale 8-bit images by 1/256 after dequantizing)')]):
    return tf.identity(x)
