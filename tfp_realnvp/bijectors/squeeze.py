"""Real NVP's squeeze: trade spatial size for channels, (H, W, C) <-> (H/2, W/2, 4C)."""

import tensorflow as tf

from tfp_realnvp.bijectors.flow_bijector import FlowBijector

__all__ = ['Squeeze']


class Squeeze(FlowBijector):
  """Squeezes each 2x2xC block of an image into a 1x1x4C block, and back.

  In the paper's direction (our `inverse`, data to latent) the squeeze
  divides the image into 2x2 sub-squares and stacks each one along channels
  (`tf.nn.space_to_depth` with block 2, the layout of the paper's figure 3);
  `forward` undoes it (`tf.nn.depth_to_space`):

  ```none
  inverse: (..., H, W, C)       -> (..., H/2, W/2, 4C)
  forward: (..., H/2, W/2, 4C)  -> (..., H, W, C)
  log_det_jacobian = 0           (a permutation of the entries)
  ```

  The batch dimensions (any number, none included) are kept; the event part of an input's
  shape is checked against `(H, W, C)` (inverse) or `(H/2, W/2, 4C)` (forward), statically,
  with a `ValueError` naming both.

  Args:
    event_shape: the unsqueezed image event `(H, W, C)`; H and W must be even.
    validate_args: check inputs are finite at run time.
    name: name of the bijector.

  Raises:
    ValueError: if the event is not `(H, W, C)` or H or W is odd.

  #### Examples

  ```python
  squeeze = Squeeze((4, 4, 1))
  squeeze.inverse(tf.reshape(tf.range(16.), (1, 4, 4, 1))).shape  # (1, 2, 2, 4)
  ```

  #### References
  [1]: Laurent Dinh, Jascha Sohl-Dickstein, Samy Bengio. Density estimation
       using Real NVP. ICLR 2017, sec. 3.6 and figure 3.
       https://arxiv.org/abs/1605.08803
  """

  def __init__(self, event_shape, validate_args=False, name='squeeze'):
    parameters = dict(locals())
    event_shape = tuple(int(d) for d in event_shape)
    if len(event_shape) != 3:
      raise ValueError(f'Squeeze needs an image event (H, W, C), got '
                       f'{event_shape}.')
    height, width, channels = event_shape
    if height % 2 or width % 2:
      raise ValueError(
          f'cannot squeeze an image of spatial size {height}x{width}: H and W '
          f'must be even (pad or crop the images, or use fewer scales).')
    with tf.name_scope(name) as name:
      self._data_shape = event_shape
      self._latent_shape = (height // 2, width // 2, 4 * channels)
      super().__init__(
          forward_min_event_ndims=3,
          inverse_min_event_ndims=3,
          is_constant_jacobian=True,
          validate_args=validate_args,
          parameters=parameters,
          name=name)

  @property
  def data_shape(self):
    """The unsqueezed event `(H, W, C)`."""
    return self._data_shape

  @property
  def latent_shape(self):
    """The squeezed event `(H/2, W/2, 4C)`."""
    return self._latent_shape

  @property
  def _data_event_shape(self):
    return self._data_shape

  @property
  def _latent_event_shape(self):
    return self._latent_shape

  @property
  def _is_permutation(self):
    return True

  def _inverse_and_log_det(self, x, **kwargs):
    del kwargs
    return tf.nn.space_to_depth(x, 2), tf.zeros(tf.shape(x)[:1], x.dtype)

  def _forward_and_log_det(self, y, **kwargs):
    del kwargs
    return tf.nn.depth_to_space(y, 2), tf.zeros(tf.shape(y)[:1], y.dtype)
