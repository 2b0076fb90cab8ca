"""Composites of `FlowBijector`s: a sequence in the paper's order, and inversion."""

import tensorflow as tf

from tfp_realnvp.bijectors.flow_bijector import FlowBijector

__all__ = ['FlowSequence', 'Inverted', 'inverse_and_log_det',
           'forward_and_log_det']


def inverse_and_log_det(bijector, y, event_ndims, training=False):
  """`(inverse(y), ildj(y))` of any bijector, in one pass for a FlowBijector."""
  if isinstance(bijector, FlowBijector):
    return bijector.inverse_and_log_det(y, training=training)
  x = bijector.inverse(y)
  return x, bijector.inverse_log_det_jacobian(y, event_ndims=event_ndims)


def forward_and_log_det(bijector, x, event_ndims, training=False):
  """`(forward(x), fldj(x))` of any bijector, in one pass for a FlowBijector."""
  if isinstance(bijector, FlowBijector):
    return bijector.forward_and_log_det(x, training=training)
  y = bijector.forward(x)
  return y, bijector.forward_log_det_jacobian(x, event_ndims=event_ndims)


class FlowSequence(FlowBijector):
  """Bijectors applied one after the other, listed in the paper's order.

  `steps[0]` is the step nearest the data. `inverse` (data to latent, the
  paper's `f`) applies `steps[0].inverse`, then `steps[1].inverse`, ...;
  `forward` (sampling) applies the forwards in reverse order. Log-dets add
  up. Unlike `tfb.Chain`, whose order is the forward composition and which
  routes keyword arguments by sub-bijector name, this passes `training` to
  every step, which is what batch-normalized flows need.
  """

  def __init__(self, steps, event_ndims, validate_args=False,
               name='flow_sequence'):
    parameters = dict(locals())
    with tf.name_scope(name) as name:
      self._steps = list(steps)
      self._event_ndims = int(event_ndims)
      super().__init__(
          forward_min_event_ndims=self._event_ndims,
          validate_args=validate_args,
          parameters=parameters,
          name=name)

  @property
  def steps(self):
    """The steps, nearest the data first."""
    return tuple(self._steps)

  @classmethod
  def _parameter_properties(cls, dtype):
    return dict()

  def _inverse_and_log_det(self, x, training=False):
    total = tf.zeros([], x.dtype)
    for step in self._steps:
      x, ildj = inverse_and_log_det(step, x, self._event_ndims, training)
      total = total + ildj
    return x, total

  def _forward_and_log_det(self, z, training=False):
    total = tf.zeros([], z.dtype)
    for step in reversed(self._steps):
      z, fldj = forward_and_log_det(step, z, self._event_ndims, training)
      total = total + fldj
    return z, total

  @property
  def l2_regularized_variables(self):
    return tuple(v for step in self._steps
                 for v in getattr(step, 'l2_regularized_variables', ()))


class Inverted(FlowBijector):
  """The inverse of a `FlowBijector` (used for the un-squeeze of each scale)."""

  def __init__(self, bijector, name=None):
    parameters = dict(locals())
    with tf.name_scope(name or f'invert_{bijector.name}') as name:
      self._bijector = bijector
      super().__init__(
          forward_min_event_ndims=bijector.inverse_min_event_ndims,
          inverse_min_event_ndims=bijector.forward_min_event_ndims,
          is_constant_jacobian=bijector.is_constant_jacobian,
          validate_args=bijector.validate_args,
          parameters=parameters,
          name=name)

  @property
  def bijector(self):
    return self._bijector

  @classmethod
  def _parameter_properties(cls, dtype):
    return dict()

  def _inverse_and_log_det(self, y, training=False):
    return self._bijector.forward_and_log_det(y, training=training)

  def _forward_and_log_det(self, x, training=False):
    return self._bijector.inverse_and_log_det(x, training=training)

  def _forward_event_shape(self, input_shape):
    return self._bijector.inverse_event_shape(input_shape)

  def _inverse_event_shape(self, output_shape):
    return self._bijector.forward_event_shape(output_shape)

  def _forward_event_shape_tensor(self, input_shape):
    return self._bijector.inverse_event_shape_tensor(input_shape)

  def _inverse_event_shape_tensor(self, output_shape):
    return self._bijector.forward_event_shape_tensor(output_shape)
