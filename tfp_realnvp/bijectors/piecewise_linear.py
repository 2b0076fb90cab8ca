"""A learned increasing piecewise-linear map of R onto R (a 1-D flow)."""

import math

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

tfb = tfp.bijectors

__all__ = ['PiecewiseLinear']


class PiecewiseLinear(tfb.Bijector):
  """Increasing piecewise-linear map with learned knots, identity-like outside.

  The one-dimensional normalizing flow of Fleuret's lecture 10.3: an
  increasing piecewise-linear function with parameters `alpha, xi_1..xi_Q`,
  whose knots are `v = alpha + cumsum(exp(xi))`. It acts elementwise
  (`forward_min_event_ndims=0`); every element shares the same knots.

  `[range_min, range_max]` is split into `Q = num_bins` equal bins of width
  `w = (range_max - range_min) / Q` with edges `x_k = range_min + k w`,
  `k = 0..Q`. The learned variables are the shift `alpha` (a scalar) and the
  log-widths `xi` (shape `[Q]`); the knots and slopes are

  ```none
  v_0 = alpha,   v_k = alpha + exp(xi_1) + ... + exp(xi_k)    (k = 1..Q)
  s_k = (v_k - v_{k-1}) / w = exp(xi_k) / w                   (slope of bin k)
  ```

  so the knots are strictly increasing whatever the value of `xi`. At
  initialisation `alpha = range_min` and `xi_k = log w`, hence `v_k = x_k`
  and the bijector is the identity.

  Forward (bin `k` is the one with `x_{k-1} <= x <= x_k`):

  ```none
  forward(x) = v_0 + (x - x_0)                    if x < range_min
             = v_{k-1} + s_k (x - x_{k-1})        if x in bin k
             = v_Q + (x - x_Q)                    if x > range_max
  forward_log_det_jacobian(x) = log s_k = xi_k - log w   in bin k,
                                0                        outside the range.
  ```

  Outside its range the map continues with slope 1, so it is a continuous,
  strictly increasing bijection of R onto R. The inverse is exact: the
  segment of `y` is found among the knots with `tf.searchsorted`,

  ```none
  inverse(y) = x_0 + (y - v_0)                    if y < v_0
             = x_{k-1} + (y - v_{k-1}) / s_k      if v_{k-1} <= y <= v_k
             = x_Q + (y - v_Q)                    if y > v_Q
  inverse_log_det_jacobian(y) = -log s_k   (0 outside [v_0, v_Q])
                              = -forward_log_det_jacobian(inverse(y)).
  ```

  The log-det of a piecewise-linear map is piecewise constant; autodiff of
  `forward` and `inverse` gives exactly the slope used here (at a knot, the
  slope of the bin on its right, except at `range_max`, where it is the last
  bin's).

  **Direction.** As everywhere in this package (TFP's convention), `forward`
  maps latent to data: in
  `tfd.TransformedDistribution(tfd.Normal(0., 1.), PiecewiseLinear(...))`
  samples are `forward(z)`, `z ~ N(0, 1)`, and the density is

  ```none
  log_prob(x) = base.log_prob(inverse(x)) + inverse_log_det_jacobian(x).
  ```

  The seed's `f` (data to latent, trained so that `f(X) ~ N(0, 1)`) is this
  bijector's `inverse`. The seed code also clamps its input to the range
  (constant outside it, so not invertible) and uses `Q + 1` log-widths, the
  first acting as a second shift; here the first knot is `alpha` itself and
  the map has slope 1 outside its range.

  With `validate_args=True`, every method checks at run time that its input
  and the variables are finite (`InvalidArgumentError` naming the problem).

  Args:
    num_bins: `Q`, the number of equal bins of `[range_min, range_max]`, an
      integer >= 1.
    range_min: left end of the range of `forward`'s input (the latent).
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
  import tensorflow_probability as tfp
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
  latent = flow.inverse(data)       # the seed's f(x), ~ N(0, 1) once fitted
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
          dtype=tf.float32,
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
    """The knots `v_0..v_Q` (shape `[num_bins + 1]`), strictly increasing."""
    alpha = tf.convert_to_tensor(self._alpha)
    widths = tf.exp(tf.convert_to_tensor(self._log_widths))
    return alpha + tf.concat([tf.zeros([1], widths.dtype),
                              tf.cumsum(widths)], axis=0)

  def edges(self):
    """The bin edges `x_0..x_Q` of `[range_min, range_max]` (input side)."""
    return tf.constant(
        [self._range_min + k * self._bin_width
         for k in range(self._num_bins)] + [self._range_max], tf.float32)

  @classmethod
  def _parameter_properties(cls, dtype):
    return dict()

  @classmethod
  def _is_increasing(cls, **kwargs):
    return True

  # -- the map -----------------------------------------------------------------
  def _forward_segment(self, x):
    """Bin index (clipped to [0, Q-1]) of `x`, and masks for outside."""
    u = (x - self._range_min) / self._bin_width
    u = tf.where(tf.math.is_finite(u), u, tf.zeros_like(u))
    k = tf.cast(tf.clip_by_value(tf.floor(u), 0., self._num_bins - 1.),
                tf.int32)
    return k, x < self._range_min, x > self._range_max

  def _inverse_segment(self, y, knots):
    """Segment index (in [0, Q-1]) of `y` among `knots`, masks for outside."""
    interior = knots[1:-1]
    flat = tf.reshape(y, [-1])
    k = tf.searchsorted(interior, flat, side='right', out_type=tf.int32)
    k = tf.reshape(tf.clip_by_value(k, 0, self._num_bins - 1), tf.shape(y))
    return k, y < knots[0], y > knots[-1]

  def _forward(self, x):
    x = self._maybe_assert_finite(x, 'forward')
    knots = self.knots()
    k, below, above = self._forward_segment(x)
    slope = tf.exp(tf.gather(self._log_widths, k) - self._log_bin_width)
    left_edge = self._range_min + tf.cast(k, x.dtype) * self._bin_width
    inside = tf.gather(knots, k) + slope * (x - left_edge)
    return tf.where(below, knots[0] + (x - self._range_min),
                    tf.where(above, knots[-1] + (x - self._range_max),
                             inside))

  def _inverse(self, y):
    y = self._maybe_assert_finite(y, 'inverse')
    knots = self.knots()
    k, below, above = self._inverse_segment(y, knots)
    slope = tf.exp(tf.gather(self._log_widths, k) - self._log_bin_width)
    left_edge = self._range_min + tf.cast(k, y.dtype) * self._bin_width
    inside = left_edge + (y - tf.gather(knots, k)) / slope
    return tf.where(below, self._range_min + (y - knots[0]),
                    tf.where(above, self._range_max + (y - knots[-1]),
                             inside))

  def _forward_log_det_jacobian(self, x):
    x = self._maybe_assert_finite(x, 'forward_log_det_jacobian')
    k, below, above = self._forward_segment(x)
    log_slope = tf.gather(self._log_widths, k) - self._log_bin_width
    return tf.where(below | above, tf.zeros_like(log_slope), log_slope)

  def _inverse_log_det_jacobian(self, y):
    y = self._maybe_assert_finite(y, 'inverse_log_det_jacobian')
    k, below, above = self._inverse_segment(y, self.knots())
    log_slope = tf.gather(self._log_widths, k) - self._log_bin_width
    return tf.where(below | above, tf.zeros_like(log_slope), -log_slope)

  # -- checks ------------------------------------------------------------------
  def _maybe_assert_finite(self, t, method):
    if not self.validate_args:
      return t
    return tf.debugging.assert_all_finite(
        t, f'{self.name}.{method}: input contains NaN or Inf')

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
