"""Glow's activation normalisation: a per-channel affine map with data-dependent start."""

import tensorflow as tf

from tfp_realnvp.bijectors.flow_bijector import FlowBijector

__all__ = ['ActNorm', 'initialize_act_norms']


class ActNorm(FlowBijector):
  """`z = (x - loc) * exp(-log_scale)` per channel, started from the first batch's moments.

  Glow's alternative to batch normalisation (Kingma & Dhariwal, 2018, sec. 3.1): a learned
  per-channel affine map whose parameters are initialised so that the first batch it sees in
  training mode comes out with zero mean and unit variance per channel, then trained like any
  other weight. It has no batch statistics: inference and training compute the same map, and
  nothing is synchronised across replicas after the start.

  In the paper's direction (our `inverse`, data to latent), for an event `(H, W, C)` or
  `(D,)` with `N` positions per channel (`H * W`, or 1):

  ```none
  inverse(x) = (x - loc) * exp(-log_scale)
  forward(z) = z * exp(log_scale) + loc
  inverse_log_det_jacobian(x) = -N * sum_c log_scale_c
  ```

  Data-dependent start: `loc` is set to the per-channel mean of the input and `log_scale` to
  the log of its standard deviation (plus `epsilon` on the variance), once; `initialized` then
  stays True (it is saved in checkpoints). Before that the map is the identity. It happens
  either explicitly, with `initialize_act_norms(flow, x)` on a first batch (the way under a
  multi-replica `tf.distribute` strategy: call it outside `strategy.run` with the global
  batch), or by itself at the first call with `training=True` in the inverse direction on one
  replica. (A start inside a replica would need a cross-replica reduction inside a
  conditional, which `tf.distribute` does not support; there the layers wait for the explicit
  call.)

  Args:
    event_shape: `(H, W, C)` or `(D,)`; the parameters are per channel (last axis).
    epsilon: added to the variance of the first batch.
    validate_args: check inputs are finite at run time.
    name: name of the bijector.

  #### References
  [1]: Diederik P. Kingma, Prafulla Dhariwal. Glow: Generative Flow with Invertible 1x1
       Convolutions. NeurIPS 2018. https://arxiv.org/abs/1807.03039
  """

  def __init__(self, event_shape, epsilon=1e-6, validate_args=False, name='act_norm'):
    parameters = dict(locals())
    event_shape = tuple(int(d) for d in event_shape)
    if len(event_shape) not in (1, 3):
      raise ValueError(f'event_shape must be (H, W, C) or (D,), got {event_shape}.')
    with tf.name_scope(name) as name:
      self._event_shape_tuple = event_shape
      self._epsilon = float(epsilon)
      self._positions_per_channel = 1
      for d in event_shape[:-1]:
        self._positions_per_channel *= d
      channels = event_shape[-1]
      self._loc = tf.Variable(tf.zeros([channels]), name='loc')
      self._log_scale = tf.Variable(tf.zeros([channels]), name='log_scale')
      self._initialized = tf.Variable(
          False, trainable=False, name='initialized',
          aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
      self._start_on_next_pass = False
      super().__init__(forward_min_event_ndims=len(event_shape), validate_args=validate_args,
                       parameters=parameters, name=name)

  @property
  def loc(self):
    return self._loc

  @property
  def log_scale(self):
    return self._log_scale

  @property
  def initialized(self):
    """A boolean variable: the data-dependent start has happened."""
    return self._initialized

  def _initialize_from(self, x):
    """Sets `loc` and `log_scale` from the per-channel moments of `x`."""
    axes = list(range(x.shape.rank - 1))
    total, squares, count = (tf.reduce_sum(x, axes), tf.reduce_sum(tf.square(x), axes),
                             tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), x.dtype))
    count = tf.maximum(count, 1.)
    mean = total / count
    variance = tf.maximum(squares / count - tf.square(mean), 0.)
    with tf.control_dependencies([
        self._loc.assign(tf.stop_gradient(mean)),
        self._log_scale.assign(tf.stop_gradient(0.5 * tf.math.log(variance + self._epsilon))),
        self._initialized.assign(True)]):
      return tf.constant(True)

  def _inverse_and_log_det(self, x, training=False, **kwargs):
    del kwargs
    context = tf.distribute.get_replica_context()
    one_replica = context is None or context.num_replicas_in_sync == 1
    if self._start_on_next_pass:
      done = self._initialize_from(x)
    elif training and one_replica:
      done = tf.cond(tf.convert_to_tensor(self._initialized),
                     lambda: tf.constant(True), lambda: self._initialize_from(x))
    else:
      done = None
    if done is not None:
      with tf.control_dependencies([done]):
        x = tf.identity(x)
    log_scale = tf.convert_to_tensor(self._log_scale)
    z = (x - self._loc) * tf.exp(-log_scale)
    ildj = -self._positions_per_channel * tf.reduce_sum(log_scale)
    return z, tf.fill(tf.shape(x)[:1], ildj)

  def _forward_and_log_det(self, z, **kwargs):
    del kwargs
    log_scale = tf.convert_to_tensor(self._log_scale)
    x = z * tf.exp(log_scale) + self._loc
    fldj = self._positions_per_channel * tf.reduce_sum(log_scale)
    return x, tf.fill(tf.shape(z)[:1], fldj)


def initialize_act_norms(flow, x, **kwargs):
  """Gives every `ActNorm` of `flow` its data-dependent start from the batch `x`.

  Runs `flow.inverse(x)` once in inference mode, each `ActNorm` taking the moments of its own
  input (the layers nearest the data first, so later ones see normalised activations), even
  those already started. Under a multi-replica strategy, call it in cross-replica context
  (outside `strategy.run`) with the global batch. Returns the number of layers started.

  Args:
    flow: a bijector holding `ActNorm` layers (e.g. `RealNVPChain(..., act_norm=True)`).
    x: a batch of data, as for `flow.inverse`.
    **kwargs: per-call keyword arguments of the flow (e.g. `conditional_input`).
  """
  layers = [m for m in flow.submodules if isinstance(m, ActNorm)]
  if isinstance(flow, ActNorm):
    layers.append(flow)
  for layer in layers:
    layer._start_on_next_pass = True  # pylint: disable=protected-access
  try:
    flow.inverse(tf.identity(x), **kwargs)
  finally:
    for layer in layers:
      layer._start_on_next_pass = False  # pylint: disable=protected-access
  return len(layers)
