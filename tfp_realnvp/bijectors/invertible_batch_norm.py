"""Real NVP's invertible batch normalization with running averages (appendix E)."""

import tensorflow as tf

from tfp_realnvp.bijectors.flow_bijector import FlowBijector

__all__ = ['InvertibleBatchNorm']


class InvertibleBatchNorm(FlowBijector):
  """Per-channel batch normalization as a bijector, with an exact log-det.

  In the paper's direction (our `inverse`, data to latent), with per-channel
  statistics `m`, `v` and learned `log_gamma`, `beta`:

  ```none
  inverse(x) = (x - m) / sqrt(v + eps) * exp(log_gamma) + beta
  forward(y) = (y - beta) * exp(-log_gamma) * sqrt(v + eps) + m
  inverse_log_det_jacobian(x) = N * sum_c [log_gamma_c - 0.5 * log(v_c + eps)]
  ```

  where `N` is the number of positions that share a channel's statistics:
  `H * W` for an image event `(H, W, C)`, 1 for a vector event `(D,)`. Every
  element of the event is rescaled, so every element counts in the log-det
  (counting only C terms is the classic slip, [3]).

  Statistics (paper, appendix E). In inference mode (the default) `m` and `v`
  are the running averages: the map is a fixed affine bijection, exactly
  invertible. In training mode (`training=True`, asked for per call, e.g.
  `dist.log_prob(x, bijector_kwargs={'training': True})`) the running averages
  first absorb the current batch,

  ```none
  m <- momentum * m + (1 - momentum) * mean_batch(x)
  v <- momentum * v + (1 - momentum) * var_batch(x)
  ```

  and the updated values normalize the batch; the gradient flows through the
  batch's share. The log-det then treats `m` and `v` as constants, as the
  paper does. Under `tf.distribute` with several replicas the batch moments
  are those of the global batch (an all-reduce of sums), so a step on N
  replicas equals the step on one device with the same global batch.
  `forward` always uses the running averages (there is no batch of data to
  measure in the sampling direction).

  The running averages only absorb batches that can be measured: a batch of zero events, or
  one whose moments are not finite, leaves them as they were (and a training-mode call on a
  non-finite input is refused before any statistic is touched, see `FlowBijector`).

  Choices: `momentum=0.95`, `epsilon=1e-4`, biased batch variance, running
  mean 0 and variance 1 at the start, `log_gamma = beta = 0` at the start.

  #### Examples

  ```python
  bn = InvertibleBatchNorm(event_shape=(8, 8, 3))
  z = bn.inverse(x, training=True)     # updates the running averages once
  x_back = bn.forward(z)               # inference mode: exact inverse
  ```

  #### References
  [1]: Laurent Dinh, Jascha Sohl-Dickstein, Samy Bengio. Density estimation
       using Real NVP. ICLR 2017, sec. 3.7 and appendix E.
       https://arxiv.org/abs/1605.08803
  [2]: Sergey Ioffe, Christian Szegedy. Batch Normalization: Accelerating Deep Network
       Training by Reducing Internal Covariate Shift. ICML 2015.
       https://arxiv.org/abs/1502.03167
  [3]: The log-det of a batch norm over images, a thread of TensorFlow Probability's tracker.
       https://github.com/tensorflow/probability/issues/238
  """

  def __init__(self, event_shape, momentum=0.95, epsilon=1e-4,
               validate_args=False, name='invertible_batch_norm'):
    """Builds the layer.

    Args:
      event_shape: `(H, W, C)` or `(D,)`; statistics are per channel (last
        axis).
      momentum: weight of the old running average in each update.
      epsilon: added to the variance.
      validate_args: check inputs are finite at run time.
      name: name of the bijector.

    Raises:
      ValueError: for a bad event shape, momentum outside [0, 1) or a
        non-positive epsilon.
    """
    parameters = dict(locals())
    event_shape = tuple(int(d) for d in event_shape)
    if len(event_shape) not in (1, 3):
      raise ValueError(f'event_shape must be (H, W, C) or (D,), got '
                       f'{event_shape}.')
    if not 0. <= momentum < 1.:
      raise ValueError(f'momentum must be in [0, 1), got {momentum}.')
    if epsilon <= 0.:
      raise ValueError(f'epsilon must be positive, got {epsilon}.')
    with tf.name_scope(name) as name:
      self._event_shape_tuple = event_shape
      self._momentum = float(momentum)
      self._epsilon = float(epsilon)
      channels = event_shape[-1]
      self._positions_per_channel = 1
      for d in event_shape[:-1]:
        self._positions_per_channel *= d
      # Replicas all compute the same global statistics; keep the first.
      stat = dict(trainable=False,
                  aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
      self._moving_mean = tf.Variable(tf.zeros([channels]), name='moving_mean',
                                      **stat)
      self._moving_variance = tf.Variable(tf.ones([channels]),
                                          name='moving_variance', **stat)
      self._log_gamma = tf.Variable(tf.zeros([channels]), name='log_gamma')
      self._beta = tf.Variable(tf.zeros([channels]), name='beta')
      super().__init__(
          forward_min_event_ndims=len(event_shape),
          validate_args=validate_args,
          parameters=parameters,
          name=name)

  @property
  def moving_mean(self):
    return self._moving_mean

  @property
  def moving_variance(self):
    return self._moving_variance

  @property
  def log_gamma(self):
    return self._log_gamma

  @property
  def beta(self):
    return self._beta

  @property
  def momentum(self):
    return self._momentum

  def _global_moments(self, x):
    """Per-channel mean, biased variance and count of `x` over the global batch."""
    axes = list(range(x.shape.rank - 1))
    # Centre on the running mean before summing: fewer cancellation errors.
    centred = x - tf.stop_gradient(self._moving_mean)
    count = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), x.dtype)
    sums = [tf.reduce_sum(centred, axes), tf.reduce_sum(tf.square(centred), axes),
            count]
    context = tf.distribute.get_replica_context()
    if context is not None and context.num_replicas_in_sync > 1:
      sums = context.all_reduce(tf.distribute.ReduceOp.SUM, sums)
    sum_centred, sum_squares, count = sums
    safe_count = tf.maximum(count, 1.)   # an empty batch: zero moments, not NaN
    mean_centred = sum_centred / safe_count
    variance = tf.maximum(sum_squares / safe_count - tf.square(mean_centred), 0.)
    return mean_centred + tf.stop_gradient(self._moving_mean), variance, count

  def _statistics(self, x, training):
    if not training:
      return (tf.convert_to_tensor(self._moving_mean),
              tf.convert_to_tensor(self._moving_variance))
    batch_mean, batch_variance, count = self._global_moments(x)
    rho = self._momentum
    mean = rho * tf.stop_gradient(self._moving_mean) + (1. - rho) * batch_mean
    variance = (rho * tf.stop_gradient(self._moving_variance)
                + (1. - rho) * batch_variance)
    measurable = tf.logical_and(
        count > 0.,
        tf.reduce_all(tf.math.is_finite(mean)) & tf.reduce_all(tf.math.is_finite(variance)))
    self._moving_mean.assign(
        tf.where(measurable, tf.stop_gradient(mean), self._moving_mean))
    self._moving_variance.assign(
        tf.where(measurable, tf.stop_gradient(variance), self._moving_variance))
    return mean, variance

  def _log_det(self, variance):
    per_channel = self._log_gamma - 0.5 * tf.math.log(variance + self._epsilon)
    return self._positions_per_channel * tf.reduce_sum(per_channel)

  def _inverse_and_log_det(self, x, training=False, **kwargs):
    del kwargs
    mean, variance = self._statistics(x, training)
    y = ((x - mean) * tf.math.rsqrt(variance + self._epsilon)
         * tf.exp(self._log_gamma) + self._beta)
    ildj = tf.fill(tf.shape(x)[:1], self._log_det(variance))
    return y, ildj

  def _forward_and_log_det(self, y, training=False, **kwargs):
    del training, kwargs  # The sampling direction always uses the running averages.
    mean, variance = self._statistics(y, training=False)
    x = ((y - self._beta) * tf.exp(-self._log_gamma)
         * tf.sqrt(variance + self._epsilon) + mean)
    fldj = tf.fill(tf.shape(y)[:1], -self._log_det(variance))
    return x, fldj
