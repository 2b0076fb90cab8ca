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

  Args:
    event_shape: the unsqueezed image event `(H, W, C)`; H and W must be even.
    validate_args: unused beyond TFP's own checks (the shape is checked
      statically).
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

  @classmethod
  def _parameter_properties(cls, dtype):
    return dict()

  @staticmethod
  def _apply_to_events(fn, x):
    # tf.nn.*_to_depth want rank-4 input: fold every batch axis into one.
    shape = tf.shape(x)
    batch_shape = shape[:-3]
    flat = tf.reshape(x, tf.concat([[-1], shape[-3:]], axis=0))
    out = fn(flat, 2)
    return tf.reshape(out, tf.concat([batch_shape, tf.shape(out)[1:]], axis=0))

  def _inverse_and_log_det(self, x, training=False):
    del training
    _check_event_shape(x, self._data_shape, self.name)
    y = self._apply_to_events(tf.nn.space_to_depth, x)
    return y, tf.zeros(tf.shape(x)[:-3], x.dtype)

  def _forward_and_log_det(self, y, training=False):
    del training
    _check_event_shape(y, self._latent_shape, self.name)
    x = self._apply_to_events(tf.nn.depth_to_space, y)
    return x, tf.zeros(tf.shape(y)[:-3], y.dtype)

  def _forward_event_shape(self, input_shape):
    return tf.TensorShape(self._data_shape)

  def _inverse_event_shape(self, output_shape):
    return tf.TensorShape(self._latent_shape)

  def _forward_event_shape_tensor(self, input_shape):
    return tf.constant(self._data_shape, tf.int32)

  def _inverse_event_shape_tensor(self, output_shape):
    return tf.constant(self._latent_shape, tf.int32)


def _check_event_shape(x, expected, name):
  actual = tuple(x.shape[-len(expected):]) if x.shape.rank is not None else None
  if actual is None:
    return
  if x.shape.rank < len(expected) or any(
      a is not None and a != e for a, e in zip(actual, expected)):
    raise ValueError(f'{name}: expected events of shape {tuple(expected)}, got '
                     f'an input of shape {tuple(x.shape)}.')
