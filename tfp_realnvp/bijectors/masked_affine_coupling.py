"""The affine coupling layer of Real NVP with checkerboard, channel and 1-D masks."""

import keras
import numpy as np
import tensorflow as tf

from tfp_realnvp import nets
from tfp_realnvp.bijectors import keras_tracking
from tfp_realnvp.bijectors import masks
from tfp_realnvp.bijectors.conditioning import one_hot_labels
from tfp_realnvp.bijectors.flow_bijector import FlowBijector
from tfp_realnvp.bijectors.flow_bijector import reduce_event

__all__ = ['MaskedAffineCoupling', 'MASK_TYPES']

MASK_TYPES = ('checkerboard', 'channel', 'half', 'custom')


class MaskedAffineCoupling(FlowBijector):
  """Real NVP's affine coupling layer, `y = b*x + (1-b)*(x*exp(s(b*x)) + t(b*x))`.

  A binary mask `b` splits the event into a conditioning part (`b = 1`), which passes
  unchanged, and a transformed part (`b = 0`), which is scaled and shifted by functions of the
  conditioning part. One Keras network emits both: its output is split on the last axis into
  `raw_s` and `t`, and

  ```none
  s = scale * tanh(raw_s)        (scale: a learned vector, one per transformed channel)
  ```

  bounds the log-scale, as in the paper (sec. 4.1).

  Direction (TFP's convention: `forward` is latent to data, `inverse` is the paper's `f`,
  data to latent):

  ```none
  inverse(x) = b*x + (1-b) * (x * exp(s(b*x)) + t(b*x))
  forward(y) = b*y + (1-b) * (y - t(b*y)) * exp(-s(b*y))
  inverse_log_det_jacobian(x) = sum_i (1 - b_i) * s(b*x)_i
  forward_log_det_jacobian(y) = -sum_i (1 - b_i) * s(b*y)_i
  ```

  The Jacobian is triangular after a permutation of the entries, with ones on the
  conditioning entries and `exp(s)` on the transformed ones, so the sum runs over the
  transformed entries only.

  Masks (`mask_type`):
  - `'checkerboard'` (image events `(H, W, C)`): `b[i, j, c] = 1` where
    `(i + j) % 2 == parity`. The network sees `b*x` with all C channels and emits `2C`.
  - `'channel'` (image events, C even): the first half of the channels conditions the second
    (`parity=0`) or the reverse (`parity=1`). The network sees the C/2 conditioning channels
    and emits C.
  - `'half'` (vector events `(D,)`): the first `D // 2` entries condition the rest
    (`parity=0`), or the reverse.
  - `'custom'`: any 0/1 `mask` of the event's shape (or broadcastable to it), e.g. a random
    mask for vectors.

  Class-conditional coupling (`num_classes=K`): the labels, passed per call as
  `conditional_input` (integers or one-hot rows, see `tfp_realnvp.bijectors.conditioning`),
  reach the network as K more input channels: one-hot rows, broadcast over the pixels of an
  image event. `s` and `t` then depend on the class, and so does the map.

  The value and the log-det come from one run of the network (see `FlowBijector`); the keyword
  `training` is passed on to the network's batch norms.

  #### Examples

  ```python
  import functools
  from tfp_realnvp import nets
  from tfp_realnvp.bijectors import MaskedAffineCoupling
  coupling = MaskedAffineCoupling(
      (8, 8, 1), mask_type='checkerboard',
      network=functools.partial(nets.resnet_shift_and_log_scale, hidden_channels=16,
                                num_res_blocks=2))
  x = tf.random.uniform((4, 8, 8, 1))
  z = coupling.inverse(x)                                       # data -> latent
  ildj = coupling.inverse_log_det_jacobian(x, event_ndims=3)    # shape (4,)
  ```

  #### References
  [1]: Laurent Dinh, Jascha Sohl-Dickstein, Samy Bengio. Density estimation using Real NVP.
       ICLR 2017. https://arxiv.org/abs/1605.08803
  """

  def __init__(self, event_shape, mask_type='checkerboard', parity=0, network=None, mask=None,
               num_classes=None, validate_args=False, name=None):
    """Builds the coupling.

    Args:
      event_shape: `(H, W, C)` for images or `(D,)` for vectors.
      mask_type: one of `'checkerboard'`, `'channel'`, `'half'`, `'custom'`.
      parity: 0 or 1, which half conditions (see the class docstring).
      network: the s/t network: a Keras 3 or tf_keras model, or a factory
        `network(input_shape, n) -> model` (the signature of the `tfp_realnvp.nets`
        builders). The model maps a batch of conditioning inputs of shape `input_shape` to
        `2 * n` channels on the last axis (`raw_s`, then `t`), `n` being the transformed
        channels (`C` for checkerboard, `C/2` for channel, `D` for vector masks).
        `input_shape` is `(H, W, C)` (checkerboard), `(H, W, C/2)` (channel) or `(D,)`
        (vectors), with `num_classes` more channels for a class-conditional coupling.
        Default: `nets.resnet_shift_and_log_scale` (images) or
        `nets.mlp_shift_and_log_scale` (vectors) with their default sizes.
      mask: the 0/1 array for `mask_type='custom'`.
      num_classes: K for a class-conditional coupling; None for an unconditional one.
      validate_args: check inputs are finite at run time.
      name: name of the bijector.

    Raises:
      ValueError: for an unknown mask type, a mask that does not fit the event, an odd
        channel count with a channel mask, or a network whose output shape does not match.
    """
    parameters = dict(locals())
    event_shape = tuple(int(d) for d in event_shape)
    cond_shape, num_transformed, mask = _mask_layout(event_shape, mask_type, parity, mask)
    if num_classes is not None and int(num_classes) < 2:
      raise ValueError(f'num_classes must be >= 2 (or None), got {num_classes}.')
    with tf.name_scope(name or f'{mask_type}_coupling') as name:
      self._event_shape_tuple = event_shape
      self._mask_type = mask_type
      self._parity = parity
      self._mask = None if mask is None else tf.constant(mask)
      self._num_classes = None if num_classes is None else int(num_classes)
      self._cond_shape = cond_shape
      net_input_shape = cond_shape[:-1] + (cond_shape[-1] + (self._num_classes or 0),)
      net_output_shape = cond_shape[:-1] + (2 * num_transformed,)
      if network is None:
        network = (nets.resnet_shift_and_log_scale if len(event_shape) == 3
                   else nets.mlp_shift_and_log_scale)
      if not _is_model(network):
        network = network(net_input_shape, num_transformed)
      out_shape = keras_tracking.output_shape(network, net_input_shape)
      if tuple(out_shape) != net_output_shape:
        raise ValueError(
            f'the network must map {net_input_shape} to {net_output_shape} (log-scale and '
            f'shift stacked on the last axis); it gives {tuple(out_shape)}.')
      self._network = network
      # Keras 3 models are invisible to tf.Module tracking: keep their tf.Variables.
      self._network_variables = keras_tracking.underlying_variables(network)
      self._scale = tf.Variable(tf.ones([num_transformed]), name='scale')
      super().__init__(
          forward_min_event_ndims=len(event_shape),
          validate_args=validate_args,
          parameters=parameters,
          name=name)

  # -- properties -------------------------------------------------------------------
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
  def num_classes(self):
    """K of a class-conditional coupling, or None."""
    return self._num_classes

  @property
  def scale(self):
    """The learned per-channel factor of `s = scale * tanh(raw_s)`."""
    return self._scale

  @property
  def l2_regularized_variables(self):
    return (self._scale,)

  # -- the math -----------------------------------------------------------------------
  def _log_scale_and_shift(self, conditioning, training, conditional_input):
    if self._num_classes is not None:
      labels = one_hot_labels(conditional_input, self._num_classes, conditioning.shape[:1],
                              self.name)
      if len(self._cond_shape) == 3:
        labels = tf.broadcast_to(labels[:, None, None, :],
                                 tf.concat([tf.shape(conditioning)[:3],
                                            [self._num_classes]], 0))
      conditioning = tf.concat([conditioning, labels], axis=-1)
    raw = keras_tracking.call(self._network, conditioning, training)
    raw_s, t = tf.split(tf.cast(raw, tf.float32), 2, axis=-1)
    return self._scale * tf.tanh(raw_s), t

  def _split_channels(self, x):
    a, b = tf.split(x, 2, axis=-1)
    return (a, b) if self._parity == 0 else (b, a)

  def _merge_channels(self, conditioning, transformed):
    parts = ((conditioning, transformed) if self._parity == 0
             else (transformed, conditioning))
    return tf.concat(parts, axis=-1)

  def _inverse_and_log_det(self, x, training=False, conditional_input=None):
    event_ndims = len(self._event_shape_tuple)
    if self._mask is None:
      conditioning, transformed = self._split_channels(x)
      s, t = self._log_scale_and_shift(conditioning, training, conditional_input)
      y = self._merge_channels(conditioning, transformed * tf.exp(s) + t)
    else:
      s, t = self._log_scale_and_shift(x * self._mask, training, conditional_input)
      s, t = s * (1. - self._mask), t * (1. - self._mask)
      y = x * tf.exp(s) + t
    return y, reduce_event(s, event_ndims)

  def _forward_and_log_det(self, y, training=False, conditional_input=None):
    event_ndims = len(self._event_shape_tuple)
    if self._mask is None:
      conditioning, transformed = self._split_channels(y)
      s, t = self._log_scale_and_shift(conditioning, training, conditional_input)
      x = self._merge_channels(conditioning, (transformed - t) * tf.exp(-s))
    else:
      s, t = self._log_scale_and_shift(y * self._mask, training, conditional_input)
      s, t = s * (1. - self._mask), t * (1. - self._mask)
      x = (y - t) * tf.exp(-s)
    return x, -reduce_event(s, event_ndims)


def _is_model(network):
  """A built model (Keras 3 layer or tf_keras model, a `tf.Module`) rather than a factory."""
  return isinstance(network, (keras.layers.Layer, tf.Module))


def _mask_layout(event_shape, mask_type, parity, mask):
  """`(conditioning shape, transformed channels, mask array or None)`, checked."""
  if mask_type not in MASK_TYPES:
    raise ValueError(f'mask_type must be one of {MASK_TYPES}, got {mask_type!r}.')
  if parity not in (0, 1):
    raise ValueError(f'parity must be 0 or 1, got {parity!r}.')
  if len(event_shape) not in (1, 3):
    raise ValueError(f'event_shape must be (H, W, C) for images or (D,) for vectors, got '
                     f'{event_shape}.')
  is_image = len(event_shape) == 3
  if mask_type in ('checkerboard', 'channel') and not is_image:
    raise ValueError(f'mask_type {mask_type!r} needs an image event (H, W, C); got '
                     f"event_shape {event_shape}. Use 'half' or 'custom' for vectors.")
  if mask_type == 'half' and is_image:
    raise ValueError("mask_type 'half' is for vector events (D,); use 'checkerboard' or "
                     "'channel' for images.")
  channels = event_shape[-1]
  if mask_type == 'channel':
    if channels % 2:
      raise ValueError(f'a channel mask needs an even number of channels, got {channels} '
                       f'(event_shape {event_shape}).')
    return event_shape[:-1] + (channels // 2,), channels // 2, None
  if mask_type == 'half' and event_shape[0] < 2:
    raise ValueError(f'a vector coupling needs D >= 2, got D = {event_shape[0]}; for 1-D '
                     f'data use PiecewiseLinear.')
  if mask_type == 'checkerboard':
    mask = masks.checkerboard_mask(event_shape[0], event_shape[1], parity)
  elif mask_type == 'half':
    mask = masks.half_mask(event_shape[0], parity)
  else:
    if mask is None:
      raise ValueError("mask_type 'custom' needs a mask.")
    mask = np.asarray(mask, np.float32)
    try:
      np.broadcast_to(mask, event_shape)
    except ValueError:
      raise ValueError(f'mask of shape {mask.shape} does not broadcast to the event shape '
                       f'{event_shape}.') from None
    if not np.all((mask == 0) | (mask == 1)):
      raise ValueError('mask entries must be 0 or 1.')
  return event_shape, channels, mask
