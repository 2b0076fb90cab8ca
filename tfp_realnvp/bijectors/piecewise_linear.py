"""A learned increasing piecewise-linear bijection of R (Fleuret's 1-D flow)."""

import math

import numpy as np
import tensorflow as tf

from tfp_realnvp.bijectors.flow_bijector import FlowBijector

__all__ = ['PiecewiseLinear']


class PiecewiseLinear(FlowBijector):
  """Increasing piecewise-linear flow with learned knots, identity outside.

  The one-dimensional normalizing flow of Fleuret's lecture 10.3: an
  increasing piecewise-linear function with parameters `alpha, xi_1..xi_Q`
  and knots `v = alpha + cumsum(exp(xi))`. It acts elementwise
  (`forward_min_event_ndims=0`); every element shares the same knots.

  **Direction.** As everywhere in this package (TFP's convention), `forward`
  maps latent to data: in
  `tfd.TransformedDistribution(tfd.Normal(0., 1.), PiecewiseLinear(...))`
  samples are `forward(z)`, `z ~ N(0, 1)`, and the density is

  ```none
  log_prob(x) = base.log_prob(inverse(x)) + inverse_log_det_jacobian(x).
  ```

  The lecture's `f` (data to latent, trained so that `f(X) ~ N(0, 1)`) is this
  bijector's `inverse`. So, as in the lecture, the equal bins lie on the *data*
  side: `[range_min, range_max]` is a range of `x`, split into `Q = num_bins`
  bins of width `w = (range_max - range_min) / Q` with edges
  `x_k = range_min + k w`, `k = 0..Q`, and the learned knots are the latent
  values of those edges. The variables are the shift `alpha` (a scalar) and the
  log-widths `xi` (shape `[Q]`):

  ```none
  v_0 = alpha,   v_k = alpha + exp(xi_1) + ... + exp(xi_k)    (k = 1..Q)
  s_k = (v_k - v_{k-1}) / w = exp(xi_k) / w       (slope of f on bin k)
  ```

  The knots are strictly increasing whatever `xi` is. At initialisation
  `alpha = range_min` and `xi_k = log w`, so `v_k = x_k` and the bijector is
  the identity.

  Inverse, the lecture's `f` (bin `k` is the one with `x_{k-1} <= x < x_k`):

  ```none
  inverse(x) = v_0 + (x - x_0)                    if x < range_min
             = v_{k-1} + s_k (x - x_{k-1})        if x in bin k
             = v_Q + (x - x_Q)                    if x > range_max
  inverse_log_det_jacobian(x) = log s_k = xi_k - log w   in bin k,
                                0                        outside the range.
  ```

  Forward, exact: the segment of `z` among the knots is found with
  `tf.searchsorted`,

  ```none
  forward(z) = x_0 + (z - v_0)                    if z < v_0
             = x_{k-1} + (z - v_{k-1}) / s_k      if v_{k-1} <= z < v_k
             = x_Q + (z - v_Q)                    if z > v_Q
  forward_log_det_jacobian(z) = -log s_k   (0 outside [v_0, v_Q])
                              = -inverse_log_det_jacobian(forward(z)).
  ```

  Outside its range the map continues with slope 1, so it is a continuous,
  strictly increasing bijection of R onto R. The log-det is piecewise
  constant; autodiff of `forward` and `inverse` gives exactly the slope used
  here (at a knot, the slope of the segment on its right; at the right end,
  the last bin's).

  Putting the fixed bins on the data side matters for training: the bin of
  each data point, hence `log s_k` in `log_prob`, does not depend on the
  variables, so the negative log-likelihood is a smooth function of `alpha`
  and `xi` and its gradient is exact. (With fixed bins on the latent side, a
  data point would jump between segments as the knots move; autodiff misses
  those jumps and maximum likelihood stalls.) Unlike the lecture's version, which
  clamps its input to the range (constant outside, so not invertible) and uses
  `Q + 1` log-widths whose first is a second shift, the first knot here is
  `alpha` itself and the map has slope 1 outside its range.

  Values and log-dets follow `FlowBijector`'s cache contract (never stale after a
  variable update). Like every bijector of the package it accepts the keyword
  `training`, and ignores it: it has no batch statistics.

  With `validate_args=True`, every method checks at run time that its input
  and the variables are finite (`InvalidArgumentError` naming the problem).

  Args:
    num_bins: `Q`, the number of equal bins of `[range_min, range_max]`, an
      integer >= 1.
    range_min: left end of the data range `[range_min, range_max]` (the
      input of `inverse`, the output of `forward`) where the map is learned.
    range_max: right end, `> range_min`.
    validate_args: check inputs and variables for NaN/Inf at run time.
    name: name of the bijector; its variables are created under this scope.

  Raises:
    ValueError: if `num_bins < 1`, `range_min >= range_max` or the range is
      not finite.

  #### Examples

  Fit 1-D data by maximum likelihood:

  ```python
  import keras
  import tensorflow as tf
    from tfp_realnvp.bijectors import PiecewiseLinear
  tfd = tfp.distributions

  flow = PiecewiseLinear(num_bins=32, range_min=-4., range_max=4.)
  dist = tfd.TransformedDistribution(tfd.Normal(0., 1.), flow)
  optimizer = keras.optimizers.Adam(1e-2)

  @tf.function
  def train_step(x):
    with tf.GradientTape() as tape:
      nll = -tf.reduce_mean(dist.log_prob(x))   # uses inverse + ildj
    grads = tape.gradient(nll, dist.trainable_variables)
    optimizer.apply_gradients(zip(grads, dist.trainable_variables))
    return nll

  for _ in range(300):
    train_step(data)                 # data: float32 tensor of shape [N]
  samples = dist.sample(1000)       # forward of N(0, 1) draws
  latent = flow.inverse(data)       # the lecture's f(x), ~ N(0, 1) once fitted
  ```

  #### References

  [1]: Francois Fleuret. Deep learning, lecture 10.3: Non-volume preserving
       networks. https://fleuret.org/dlc/
  [2]: Laurent Dinh, Jascha Sohl-Dickstein, Samy Bengio. Density estimation
       using Real NVP. ICLR 2017. (Context: the coupling flows of this
       package; this bijector is the 1-D warm-up of [1].)
  """

  def __init__(self, num_bins, range_min, range_max, validate_args=False,
               name='piecewise_linear'):
    parameters = dict(locals())
    if (isinstance(num_bins, bool)
        or not isinstance(num_bins, (int, np.integer))):
      raise ValueError(
          f'num_bins must be an integer >= 1, got {num_bins!r}.')
    if num_bins < 1:
      raise ValueError(f'num_bins must be an integer >= 1, got {num_bins}.')
    range_min = float(range_min)
    range_max = float(range_max)
    if not (math.isfinite(range_min) and math.isfinite(range_max)):
      raise ValueError(
          f'range_min and range_max must be finite, got [{range_min}, '
          f'{range_max}].')
    if range_min >= range_max:
      raise ValueError(
          f'range_min must be < range_max, got range_min={range_min} >= '
          f'range_max={range_max}.')
    with tf.name_scope(name) as name:
      self._num_bins = int(num_bins)
      self._range_min = range_min
      self._range_max = range_max
      self._bin_width = (range_max - range_min) / self._num_bins
      self._log_bin_width = math.log(self._bin_width)
      # Identity at initialisation: v_k = range_min + k w.
      self._alpha = tf.Variable(range_min, dtype=tf.float32, name='alpha')
      self._log_widths = tf.Variable(
          tf.fill([self._num_bins], tf.constant(self._log_bin_width,
                                                tf.float32)),
          name='log_widths')
      super().__init__(
          forward_min_event_ndims=0,
          validate_args=validate_args,
          parameters=parameters,
          name=name)

  # -- properties --------------------------------------------------------------
  @property
  def num_bins(self):
    return self._num_bins

  @property
  def range_min(self):
    return self._range_min

  @property
  def range_max(self):
    return self._range_max

  @property
  def alpha(self):
    """The shift `alpha = v_0`, a scalar `tf.Variable`."""
    return self._alpha

  @property
  def log_widths(self):
    """`xi`, shape `[num_bins]`: `exp(xi_k) = v_k - v_{k-1}`."""
    return self._log_widths

  def knots(self):
    """The knots `v_0..v_Q = inverse(x_0..x_Q)`, shape `[num_bins + 1]`."""
    alpha = tf.convert_to_tensor(self._alpha)
    widths = tf.exp(tf.convert_to_tensor(self._log_widths))
    return alpha + tf.concat([tf.zeros([1], widths.dtype),
                              tf.cumsum(widths)], axis=0)

  def edges(self):
    """The bin edges `x_0..x_Q` of `[range_min, range_max]` (data side)."""
    return tf.constant(
        [self._range_min + k * self._bin_width
         for k in range(self._num_bins)] + [self._range_max], tf.float32)

  @classmethod
  def _is_increasing(cls, **kwargs):
    return True

  # -- the map -----------------------------------------------------------------
  def _data_segment(self, x):
    """Bin of data `x` among the equal bins (clipped to [0, Q-1]); outside."""
    u = (x - self._range_min) / self._bin_width
    u = tf.where(tf.math.is_finite(u), u, tf.zeros_like(u))
    k = tf.cast(tf.clip_by_value(tf.floor(u), 0., self._num_bins - 1.),
                tf.int32)
    return k, x < self._range_min, x > self._range_max

  def _latent_segment(self, z, knots):
    """Segment of latent `z` among `knots` (in [0, Q-1]); outside masks."""
    flat = tf.reshape(z, [-1])
    k = tf.searchsorted(knots[1:-1], flat, side='right', out_type=tf.int32)
    k = tf.reshape(tf.clip_by_value(k, 0, self._num_bins - 1), tf.shape(z))
    return k, z < knots[0], z > knots[-1]

  def _log_slope(self, k):
    # Gather from a tensor, not the variable: `tf.vectorized_map` has no rule for
    # ResourceGather.
    return tf.gather(tf.convert_to_tensor(self._log_widths), k) - self._log_bin_width

  def _forward_and_log_det(self, z, **kwargs):
    del kwargs
    knots = self.knots()
    k, below, above = self._latent_segment(z, knots)
    log_slope = self._log_slope(k)
    left_edge = self._range_min + tf.cast(k, z.dtype) * self._bin_width
    inside = left_edge + (z - tf.gather(knots, k)) * tf.exp(-log_slope)
    x = tf.where(below, self._range_min + (z - knots[0]),
                 tf.where(above, self._range_max + (z - knots[-1]), inside))
    return x, tf.where(below | above, tf.zeros_like(log_slope), -log_slope)

  def _inverse_and_log_det(self, x, **kwargs):
    del kwargs
    knots = self.knots()
    k, below, above = self._data_segment(x)
    log_slope = self._log_slope(k)
    left_edge = self._range_min + tf.cast(k, x.dtype) * self._bin_width
    inside = tf.gather(knots, k) + tf.exp(log_slope) * (x - left_edge)
    z = tf.where(below, knots[0] + (x - self._range_min),
                 tf.where(above, knots[-1] + (x - self._range_max), inside))
    return z, tf.where(below | above, tf.zeros_like(log_slope), log_slope)

  # -- checks ------------------------------------------------------------------
  def _parameter_control_dependencies(self, is_init):
    if is_init or not self.validate_args:
      return []
    return [
        tf.debugging.assert_all_finite(
            self._alpha, f'{self.name}: variable alpha is NaN or Inf'),
        tf.debugging.assert_all_finite(
            self._log_widths,
            f'{self.name}: variable log_widths contains NaN or Inf'),
    ]
