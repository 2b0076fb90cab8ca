"""Composites of bijectors: a sequence in the paper's order, and inversion."""

import tensorflow as tf

from tfp_realnvp.bijectors.flow_bijector import FlowBijector
from tfp_realnvp.bijectors.flow_bijector import as_flow_bijector

__all__ = ['FlowSequence', 'Inverted']


class FlowSequence(FlowBijector):
  """Bijectors applied one after the other, listed in the paper's order (data first).

  `steps[0]` is the step nearest the data. `inverse` (data to latent, the paper's `f`)
  applies `steps[0].inverse`, then `steps[1].inverse`, ...; `forward` (sampling) applies the
  forwards in reverse order:

  ```none
  inverse(x) = f_K^-1 o ... o f_1^-1 (x)          (f_k = steps[k - 1].forward)
  forward(z) = f_1 o ... o f_K (z)
  inverse_log_det_jacobian(x) = sum_k ildj_k(x_k),  x_1 = x, x_{k+1} = f_k^-1(x_k)
  ```

  Unlike `tfb.Chain`, whose list is in forward-composition order and which routes keyword
  arguments by sub-bijector name, this passes the keyword arguments (`training`,
  `conditional_input`) to every step, which is what batch-normalised and class-conditional
  flows need. Steps that are TFP bijectors but not `FlowBijector`s are wrapped once, here.

  Args:
    steps: the bijectors, nearest the data first; all with the same event rank.
    event_ndims: that event rank (3 for images, 1 for vectors).
    validate_args: check inputs are finite at run time.
    name: name of the bijector.
  """

  def __init__(self, steps, event_ndims, validate_args=False, name='flow_sequence'):
    parameters = dict(locals())
    with tf.name_scope(name) as name:
      self._event_ndims = int(event_ndims)
      self._steps = [as_flow_bijector(step, self._event_ndims) for step in steps]
      if not self._steps:
        raise ValueError('a FlowSequence needs at least one step.')
      super().__init__(
          forward_min_event_ndims=self._event_ndims,
          validate_args=validate_args,
          parameters=parameters,
          name=name)

  @property
  def steps(self):
    """The steps, nearest the data first."""
    return tuple(self._steps)

  def _inverse_and_log_det(self, x, **kwargs):
    total = tf.zeros(tf.shape(x)[:1], x.dtype)
    for step in self._steps:
      x, ildj = step._call_pass('inverse', x, kwargs)  # pylint: disable=protected-access
      total = total + ildj
    return x, total

  def _forward_and_log_det(self, z, **kwargs):
    total = tf.zeros(tf.shape(z)[:1], z.dtype)
    for step in reversed(self._steps):
      z, fldj = step._call_pass('forward', z, kwargs)  # pylint: disable=protected-access
      total = total + fldj
    return z, total

  @property
  def _data_event_shape(self):
    """The first event shape a step declares, walking from the data (elementwise steps
    such as the logit preprocessing declare none and keep the shape)."""
    for step in self._steps:
      if step._data_event_shape is not None:  # pylint: disable=protected-access
        return step._data_event_shape  # pylint: disable=protected-access
    return None

  @property
  def _latent_event_shape(self):
    shape = self._data_event_shape
    for step in self._steps:
      if step._latent_event_shape is not None:  # pylint: disable=protected-access
        shape = step._latent_event_shape  # pylint: disable=protected-access
    return shape

  def _forward_event_shape(self, input_shape):
    for step in reversed(self._steps):
      input_shape = step._forward_event_shape(input_shape)  # pylint: disable=protected-access
    return input_shape

  def _inverse_event_shape(self, output_shape):
    for step in self._steps:
      output_shape = step._inverse_event_shape(output_shape)  # pylint: disable=protected-access
    return output_shape

  def _forward_event_shape_tensor(self, input_shape):
    for step in reversed(self._steps):
      input_shape = step._forward_event_shape_tensor(input_shape)  # pylint: disable=protected-access
    return input_shape

  def _inverse_event_shape_tensor(self, output_shape):
    for step in self._steps:
      output_shape = step._inverse_event_shape_tensor(output_shape)  # pylint: disable=protected-access
    return output_shape

  @property
  def l2_regularized_variables(self):
    return tuple(v for step in self._steps for v in step.l2_regularized_variables)


class Inverted(FlowBijector):
  """The inverse of a `FlowBijector`: `forward` is its `inverse` and vice versa.

  ```none
  Inverted(b).forward(x) = b.inverse(x),   Inverted(b).inverse(y) = b.forward(y)
  fldj = b's ildj,                           ildj = b's fldj
  ```

  Used for the un-squeeze at the end of each scale. (For a TFP bijector, `tfb.Invert` works
  as well: these bijectors follow TFP's public contract.)
  """

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

  @property
  def _data_event_shape(self):
    return self._bijector._latent_event_shape  # pylint: disable=protected-access

  @property
  def _latent_event_shape(self):
    return self._bijector._data_event_shape  # pylint: disable=protected-access

  def _inverse_and_log_det(self, y, **kwargs):
    return self._bijector._call_pass('forward', y, kwargs)  # pylint: disable=protected-access

  def _forward_and_log_det(self, x, **kwargs):
    return self._bijector._call_pass('inverse', x, kwargs)  # pylint: disable=protected-access

  def _forward_event_shape(self, input_shape):
    return self._bijector._inverse_event_shape(input_shape)  # pylint: disable=protected-access

  def _inverse_event_shape(self, output_shape):
    return self._bijector._forward_event_shape(output_shape)  # pylint: disable=protected-access

  def _forward_event_shape_tensor(self, input_shape):
    return self._bijector._inverse_event_shape_tensor(input_shape)  # pylint: disable=protected-access

  def _inverse_event_shape_tensor(self, output_shape):
    return self._bijector._forward_event_shape_tensor(output_shape)  # pylint: disable=protected-access

  @property
  def l2_regularized_variables(self):
    return self._bijector.l2_regularized_variables
