"""Real NVP's factor-out: half of the channels leave for the latent at each scale."""

import tensorflow as tf

from tfp_realnvp.bijectors.flow_bijector import FlowBijector
from tfp_realnvp.bijectors.flow_bijector import as_flow_bijector

__all__ = ['FactorOut']


class FactorOut(FlowBijector):
  """Sends the first channels straight to the latent; the rest go on.

  At the end of every scale but the last, Real NVP (sec. 3.6, eq. 17) factors
  out half of the dimensions: they are modelled directly by the Gaussian base,
  while the other half goes through the next scale. For an image event
  `(H, W, C)` split into the first `k` channels and the remaining `C - k`:

  ```none
  inverse([x_out, x_on]) = [x_out, g.inverse(x_on)]
  forward([z_out, z_on]) = [z_out, g.forward(z_on)]
  inverse_log_det_jacobian(x) = g.inverse_log_det_jacobian(x_on)
  ```

  where `g` (`bijector`, e.g. the next scale) maps `(H, W, C - k)` to itself.

  Args:
    bijector: the bijector applied to the channels that stay, shape
      preserving on `(H, W, C - k)`; typically a `FlowBijector`.
    event_shape: `(H, W, C)` of the input.
    num_factored_channels: `k`; defaults to `C // 2`.
    validate_args: passed to TFP.
    name: name of the bijector.

  Raises:
    ValueError: if `k` is not in [1, C - 1].

  #### References
  [1]: Laurent Dinh, Jascha Sohl-Dickstein, Samy Bengio. Density estimation
       using Real NVP. ICLR 2017, sec. 3.6 and figure 4(b).
       https://arxiv.org/abs/1605.08803
  """

  def __init__(self, bijector, event_shape, num_factored_channels=None,
               validate_args=False, name='factor_out'):
    parameters = dict(locals())
    event_shape = tuple(int(d) for d in event_shape)
    channels = event_shape[-1]
    if num_factored_channels is None:
      num_factored_channels = channels // 2
    if not 1 <= num_factored_channels <= channels - 1:
      raise ValueError(
          f'num_factored_channels must be in [1, {channels - 1}] for '
          f'{channels} channels, got {num_factored_channels}.')
    with tf.name_scope(name) as name:
      self._bijector = as_flow_bijector(bijector, len(event_shape))
      self._event_shape_tuple = event_shape
      self._num_factored = int(num_factored_channels)
      super().__init__(
          forward_min_event_ndims=len(event_shape),
          validate_args=validate_args,
          parameters=parameters,
          name=name)

  @property
  def bijector(self):
    """The bijector applied to the channels that are not factored out."""
    return self._bijector

  @property
  def num_factored_channels(self):
    return self._num_factored

  @property
  def l2_regularized_variables(self):
    return self._bijector.l2_regularized_variables

  def _split(self, x):
    channels = self._event_shape_tuple[-1]
    return tf.split(x, [self._num_factored, channels - self._num_factored],
                    axis=-1)

  def _inverse_and_log_det(self, x, **kwargs):
    factored, rest = self._split(x)
    rest, ildj = self._bijector._call_pass('inverse', rest, kwargs)  # pylint: disable=protected-access
    return tf.concat([factored, rest], axis=-1), ildj

  def _forward_and_log_det(self, z, **kwargs):
    factored, rest = self._split(z)
    rest, fldj = self._bijector._call_pass('forward', rest, kwargs)  # pylint: disable=protected-access
    return tf.concat([factored, rest], axis=-1), fldj
