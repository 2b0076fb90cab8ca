"""The paper's preprocessing: pixels to logit space, with its log-det."""

import tensorflow as tf

from tfp_realnvp.bijectors.flow_bijector import FlowBijector
from tfp_realnvp.bijectors.flow_bijector import assert_finite
from tfp_realnvp.bijectors.flow_bijector import reduce_event

__all__ = ['LogitTransform']


class LogitTransform(FlowBijector):
  """`y = logit(a + (1 - 2a) x)`: dequantized pixels to an unbounded space.

  Real NVP (sec. 4.1) models `logit(a + (1 - 2a) x)` of the pixels `x` in [0, 1], with
  `a = 0.05`. Counting this map's log-det makes `log_prob` the density of the dequantized
  pixels themselves, so bits/dim can be compared with the papers. With `p = a + (1 - 2a) x`:

  ```none
  inverse(x) = log(p) - log(1 - p)                         (pixels -> logits)
  inverse_log_det_jacobian(x) = sum [log(1 - 2a) - log(p) - log(1 - p)]
  forward(y) = (sigmoid(y) - a) / (1 - 2a)                  (logits -> pixels)
  forward_log_det_jacobian(y) = sum [log sigmoid(y) + log sigmoid(-y) - log(1 - 2a)]
  ```

  The map is an exact bijection between R and the open interval
  `(-a / (1 - 2a), 1 + a / (1 - 2a))`, about (-0.0556, 1.0556) for `a = 0.05`, which holds
  the pixel range [0, 1] (its image is `[logit(a), logit(1 - a)]`, about +-2.94). So a flow
  that ends with it is a density on that slightly larger box: a sample can have pixels a
  little below 0 or above 1, where the model puts some of its mass. Those samples are exact
  (`inverse(forward(z)) == z`, and `log_prob(sample)` is the density the flow sampled from);
  to show or save them as images, clip to [0, 1] (as `tfp_realnvp.viz` does). Data, which
  lie in [0, 1], never reach the extra margin, so that mass is lost to the data's density:
  bits/dim count it as a (small) cost, as in the paper.

  With `validate_args=True`, `inverse` checks that the pixels are finite and inside the
  support, and `forward` that the logits are finite, with an `InvalidArgumentError` naming
  the problem (e.g. 8-bit pixel values 0..255 that were not scaled to [0, 1]). Checking that
  data lie in [0, 1] belongs to the data's entry points (the trainer and the SavedModel do).

  Args:
    event_ndims: rank of the event whose log-det is summed (3 for images).
    alpha: `a`, in (0, 0.5).
    validate_args: check the input's range and finiteness at run time.
    name: name of the bijector.

  #### Examples

  ```python
  logit = LogitTransform(event_ndims=3)
  y = logit.inverse(pixels)            # pixels in [0, 1] -> R
  pixels_back = logit.forward(y)       # exact: equals `pixels`
  ```

  #### References
  [1]: Laurent Dinh, Jascha Sohl-Dickstein, Samy Bengio. Density estimation using Real NVP.
       ICLR 2017, sec. 4.1. https://arxiv.org/abs/1605.08803
  """

  def __init__(self, event_ndims=3, alpha=0.05, validate_args=False, name='logit_transform'):
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

  @property
  def support(self):
    """The open interval `(low, high)` of pixel values the map is defined on."""
    margin = self._alpha / (1. - 2. * self._alpha)
    return -margin, 1. + margin

  def _inverse_and_log_det(self, x, **kwargs):
    del kwargs
    if self.validate_args:
      x = self._assert_in_support(x)
    a = self._alpha
    p = a + (1. - 2. * a) * x
    y = tf.math.log(p) - tf.math.log1p(-p)
    ildj = reduce_event(tf.math.log(1. - 2. * a) - tf.math.log(p) - tf.math.log1p(-p),
                        self._event_ndims)
    return y, ildj

  def _forward_and_log_det(self, y, **kwargs):
    del kwargs
    if self.validate_args:
      y = assert_finite(y, self.name)
    a = self._alpha
    x = (tf.sigmoid(y) - a) / (1. - 2. * a)
    fldj = reduce_event(tf.math.log_sigmoid(y) + tf.math.log_sigmoid(-y)
                        - tf.math.log(1. - 2. * a), self._event_ndims)
    return x, fldj

  def _assert_in_support(self, x):
    low, high = self.support
    x = assert_finite(x, self.name)
    hint = ('pixels must be in [0, 1] (scale 8-bit images by 1/256 after dequantizing); the '
            f'flow is defined on ({low:.4g}, {high:.4g})')
    with tf.control_dependencies([
        tf.debugging.assert_greater(x, tf.constant(low, x.dtype),
                                    message=f'{self.name}: found a pixel value below {low:.4g}: '
                                            f'{hint}'),
        tf.debugging.assert_less(x, tf.constant(high, x.dtype),
                                 message=f'{self.name}: found a pixel value above {high:.4g}: '
                                         f'{hint}')]):
      return tf.identity(x)
