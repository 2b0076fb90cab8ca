"""The affine coupling layer of Real NVP with checkerboard, channel and 1-D masks."""

import numpy as np
import tensorflow as tf

from tfp_realnvp.bijectors import keras_tracking
from tfp_realnvp.bijectors.flow_bijector import FlowBijector
from tfp_realnvp.bijectors.flow_bijector import reduce_event

__all__ = ['MaskedAffineCoupling', 'checkerboard_mask', 'half_mask']

MASK_TYPES = ('checkerboard', 'channel', 'half', 'custom')


def checkerboard_mask(height, width, parity=0):
  """`b[i, j] = 1` where `(i + j) % 2 == parity`, shape `(H, W, 1)`, float32."""
  i, j = np.meshgrid(np.arange(height), np.arange(width), indexing='ij')
  return ((i + j) % 2 == parity).astype(np.float32)[..., np.newaxis]


def half_mask(size, parity=0):
  """1-D mask with ones on the first half (`parity=0`) or the second half."""
  mask = (np.arange(size) < size // 2).astype(np.float32)
  return mask if parity == 0 else 1. - mask


class MaskedAffineCoupling(FlowBijector):
  """Real NVP's affine coupling layer, `y = b*x + (1-b)*(x*exp(s(b*x)) + t(b*x))`.

  A binary mask `b` splits the event into a conditioning part (`b = 1`), which
  passes unchanged, and a transformed part (`b = 0`), which is scaled and
  shifted by functions of the conditioning part. One Keras network emits both:
  its output is split on the last axis into `raw_s` and `t`, and

  ```none
  s = scale * tanh(raw_s)        (scale: a learned vector, one per channel)
  ```

  bounds the log-scale, as in the paper (sec. 4.1).

  Direction (TFP's convention: `forward` is latent to data, `inverse` is the
  paper's `f`, data to latent):

  ```none
  inverse(x) = b*x + (1-b) * (x * exp(s(b*x)) + t(b*x))
  forward(y) = b*y + (1-b) * (y - t(b*y)) * exp(-s(b*y))
  inverse_log_det_jacobian(x) = sum_i (1 - b_i) * s(b*x)_i
  forward_log_det_jacobian(y) = -sum_i (1 - b_i) * s(b*y)_i
  ```

  The Jacobian is triangular after a permutation of the entries, with ones on
  the conditioning entries and `exp(s)` on the transformed ones, so the sum
  runs over the transformed entries only.

  Masks (`mask_type`):
  - `'checkerboard'` (image events `(H, W, C)`): `b[i, j, c] = 1` where
    `(i + j) % 2 == parity`. The network sees `b*x` with all C channels and
    emits `2C` channels.
  - `'channel'` (image events, C even): the first half of the channels
    conditions the second (`parity=0`) or the reverse (`parity=1`). The
    network sees only the C/2 conditioning channels and emits C channels.
  - `'half'` (vector events `(D,)`): the first `D // 2` entries condition the
    rest (`parity=0`), or the reverse.
  - `'custom'`: any 0/1 `mask` of the event's shape (or broadcastable to it),
    e.g. a random mask for vectors as in Fleuret's lecture.

  The value and the log-det come from one run of the network (see
  `FlowBijector`); keyword `training` is passed on to the network's batch
  norms.

  #### Examples

  ```python
  import tensorflow_probability as tfp
  from tfp_realnvp.bijectors import MaskedAffineCoupling
  coupling = MaskedAffineCoupling((8, 8, 1), mask_type='checkerboard',
                                  hidden_channels=16, num_res_blocks=2)
  x = tf.random.uniform((4, 8, 8, 1))
  z = coupling.inverse(x)                          # data -> latent
  ildj = coupling.inverse_log_det_jacobian(x, event_ndims=3)   # shape (4,)
  ```

  #### References
  [1]: Laurent Dinh, Jascha Sohl-Dickstein, Samy Bengio. Density estimation
       using Real NVP. ICLR 2017. https://arxiv.org/abs/1605.08803
  """

  def __init__(self,
               event_shape,
               mask_type='checkerboard',
               parity=0,
               network=None,
               mask=None,
               hidden_channels=64,
               num_res_blocks=8,
               hidden_units=(256, 256),
               network_dtype=None,
               validate_args=False,
               name=None):
    """Builds the coupling.

    Args:
      event_shape: `(H, W, C)` for images or `(D,)` for vectors.
      mask_type: one of `'checkerboard'`, `'channel'`, `'half'`, `'custom'`.
      parity: 0 or 1, which half conditions (see the class docstring).
      network: optional Keras 3 or tf_keras model mapping the conditioning
        input (batch + shape below) to `2 * n` channels on the last axis, `n`
        being the transformed channels (`C` for checkerboard, `C/2` for
        channel, `D` for vector masks). Defaults to
        `resnet_shift_and_log_scale` (images) or `mlp_shift_and_log_scale`
        (vectors). Input shape: `(H, W, C)` (checkerboard), `(H, W, C/2)`
        (channel) or `(D,)` (vectors).
      mask: the 0/1 array for `mask_type='custom'`.
      hidden_channels: F of the default ResNet.
      num_res_blocks: B of the default ResNet.
      hidden_units: hidden widths of the default MLP.
      network_dtype: Keras dtype policy of the default network, e.g.
        `'mixed_bfloat16'`; coupling arithmetic and log-dets stay float32.
      validate_args: check inputs are finite at run time.
      name: name of the bijector.

    Raises:
      ValueError: for an unknown mask type, a mask that does not fit the
        event, an odd channel count with a channel mask, or a network whose
        output shape does not match.
    """
    parameters = dict(locals())
    event_shape = tuple(int(d) for d in event_shape)
    if mask_type not in MASK_TYPES:
      raise ValueError(f'mask_type must be one of {MASK_TYPES}, got '
                       f'{mask_type!r}.')
    if parity not in (0, 1):
      raise ValueError(f'parity must be 0 or 1, got {parity!r}.')
    if len(event_shape) not in (1, 3):
      raise ValueError(
          f'event_shape must be (H, W, C) for images or (D,) for vectors, got '
          f'{event_shape}.')
    is_image = len(event_shape) == 3
    if mask_type in ('checkerboard', 'channel') and not is_image:
      raise ValueError(f'mask_type {mask_type!r} needs an image event '
                       f'(H, W, C); got event_shape {event_shape}. Use '
                       f"'half' or 'custom' for vectors.")
    if mask_type == 'half' and is_image:
      raise ValueError("mask_type 'half' is for vector events (D,); use "
                       "'checkerboard' or 'channel' for images.")
    if mask_type == 'channel' and event_shape[-1] % 2:
      raise ValueError(f'a channel mask needs an even number of channels, got '
                       f'{event_shape[-1]} (event_shape {event_shape}).')
    if mask_type == 'half' and event_shape[0] < 2:
      raise ValueError(f'a vector coupling needs D >= 2, got D = '
                       f'{event_shape[0]}; for 1-D data use PiecewiseLinear.')

    with tf.name_scope(name or f'{mask_type}_coupling') as name:
      self._event_shape_tuple = event_shape
      self._mask_type = mask_type
      self._parity = parity
      channels = event_shape[-1]
      if mask_type == 'channel':
        self._mask = None
        cond_shape = event_shape[:-1] + (channels // 2,)
        num_transformed = channels // 2
      else:
        if mask_type == 'checkerboard':
          mask = checkerboard_mask(event_shape[0], event_shape[1], parity)
        elif mask_type == 'half':
          mask = half_mask(event_shape[0], parity)
        else:
          if mask is None:
            raise ValueError("mask_type 'custom' needs a mask.")
          mask = np.asarray(mask, np.float32)
          try:
            np.broadcast_to(mask, event_shape)
          except ValueError:
            raise ValueError(f'mask of shape {mask.shape} does not broadcast to '
                             f'the event shape {event_shape}.') from None
          if not np.all((mask == 0) | (mask == 1)):
            raise ValueError('mask entries must be 0 or 1.')
        self._mask = tf.constant(mask)
        cond_shape = event_shape
        num_transformed = channels
      self._cond_shape = cond_shape

      if network is None:
        network = _default_network(cond_shape, num_transformed, hidden_channels,
                                   num_res_blocks, hidden_units, network_dtype,
                                   name=f'{name.rstrip("/")}_net'.replace('/', '_'))
      out_shape = keras_tracking.output_shape(network, cond_shape)
      if tuple(out_shape) != cond_shape[:-1] + (2 * num_transformed,):
        raise ValueError(
            f'the network must map {cond_shape} to '
            f'{cond_shape[:-1] + (2 * num_transformed,)} (log-scale and shift '
            f'stacked on the last axis); it gives {tuple(out_shape)}.')
      self._network = network
      # Keras 3 models are invisible to tf.Module tracking: keep their
      # underlying tf.Variables in an attribute (DESIGN.md).
      self._network_variables = keras_tracking.underlying_variables(network)
      self._scale = tf.Variable(tf.ones([num_transformed]), name='scale')

      super().__init__(
          forward_min_event_ndims=len(event_shape),
          validate_args=validate_args,
          parameters=parameters,
          name=name)

  # -- properties -------------------------------------------------------------
  @property
  def network(self):
    """The Keras model emitting `[raw_s | t]`."""
    return self._network

  @property
  def mask(self):
    """The 0/1 mask `b` (1 = conditioning), or None for channel masks."""
    return self._mask

  @property
  def mask_type(self):
    return self._mask_type

  @property
  def parity(self):
    return self._parity

  @property
  def scale(self):
    """The learned per-channel factor of `s = scale * tanh(raw_s)`."""
    return self._scale

  @property
  def l2_regularized_variables(self):
    return (self._scale,)

  @classmethod
  def _parameter_properties(cls, dtype):
    return dict()

  # -- the math ---------------------------------------------------------------
  def _log_scale_and_shift(self, conditioning, training):
    raw = keras_tracking.call(self._network, conditioning, training)
    raw_s, t = tf.split(tf.cast(raw, conditioning.dtype), 2, axis=-1)
    return self._scale * tf.tanh(raw_s), t

  def _split_channels(self, x):
    a, b = tf.split(x, 2, axis=-1)
    return (a, b) if self._parity == 0 else (b, a)

  def _merge_channels(self, conditioning, transformed):
    parts = ((conditioning, transformed) if self._parity == 0
             else (transformed, conditioning))
    return tf.concat(parts, axis=-1)

  def _event_ndims(self):
    return len(self._event_shape_tuple)

  def _inverse_and_log_det(self, x, training=False):
    x = self._maybe_assert_finite(x)
    if self._mask is None:
      conditioning, transformed = self._split_channels(x)
      s, t = self._log_scale_and_shift(conditioning, training)
      y = self._merge_channels(conditioning, transformed * tf.exp(s) + t)
    else:
      s, t = self._log_scale_and_shift(x * self._mask, training)
      s, t = s * (1. - self._mask), t * (1. - self._mask)
      y = x * tf.exp(s) + t
    return y, reduce_event(s, self._event_ndims())

  def _forward_and_log_det(self, y, training=False):
    y = self._maybe_assert_finite(y)
    if self._mask is None:
      conditioning, transformed = self._split_channels(y)
      s, t = self._log_scale_and_shift(conditioning, training)
      x = self._merge_channels(conditioning, (transformed - t) * tf.exp(-s))
    else:
      s, t = self._log_scale_and_shift(y * self._mask, training)
      s, t = s * (1. - self._mask), t * (1. - self._mask)
      x = (y - t) * tf.exp(-s)
    return x, -reduce_event(s, self._event_ndims())


def _default_network(cond_shape, num_transformed, hidden_channels,
                     num_res_blocks, hidden_units, dtype, name):
  # Imported here so that the bijectors package does not need Keras networks
  # when the user brings their own.
  from tfp_realnvp import nets  # pylint: disable=g-import-not-at-top
  if len(cond_shape) == 3:
    return nets.resnet_shift_and_log_scale(
        cond_shape, num_transformed, hidden_channels=hidden_channels,
        num_res_blocks=num_res_blocks, dtype=dtype, name=name)
  return nets.mlp_shift_and_log_scale(
      cond_shape[0], num_transformed, hidden_units=hidden_units, dtype=dtype,
      name=name)
