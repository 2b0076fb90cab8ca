"""The paper's ResNet for the shift and log-scale of image couplings."""

import keras

from tfp_realnvp.nets.weight_norm import WeightNormConv2D

__all__ = ['resnet_shift_and_log_scale', 'ResidualBlock']

# Keras's default (0.99) lets the inference statistics lag far behind the
# training batches early in training; 0.9 is PyTorch's default, which the
# reference reimplementations use.
BATCH_NORM_MOMENTUM = 0.9


def _batch_norm(name, dtype=None):
  return keras.layers.BatchNormalization(
      momentum=BATCH_NORM_MOMENTUM, synchronized=True, name=name, dtype=dtype)


class ResidualBlock(keras.layers.Layer):
  """Pre-activation residual block: `h + conv(relu(bn(conv(relu(bn(h))))))`.

  Both convolutions are 3x3 and weight-normalised; the batch norms are
  synchronised across replicas so that a step under `tf.distribute` sees the
  statistics of the global batch.
  """

  def __init__(self, features, **kwargs):
    super().__init__(**kwargs)
    self.features = int(features)
    self.norm_in = _batch_norm('bn_in')
    self.conv_in = WeightNormConv2D(self.features, 3, name='conv_in')
    self.norm_out = _batch_norm('bn_out')
    self.conv_out = WeightNormConv2D(self.features, 3, name='conv_out')

  def build(self, input_shape):
    self.norm_in.build(input_shape)
    self.conv_in.build(input_shape)
    hidden_shape = tuple(input_shape[:-1]) + (self.features,)
    self.norm_out.build(hidden_shape)
    self.conv_out.build(hidden_shape)

  def call(self, inputs, training=False):
    h = keras.ops.relu(self.norm_in(inputs, training=training))
    h = self.conv_in(h)
    h = keras.ops.relu(self.norm_out(h, training=training))
    return inputs + self.conv_out(h)

  def get_config(self):
    return dict(super().get_config(), features=self.features)


def resnet_shift_and_log_scale(input_shape, output_channels,
                               hidden_channels=64, num_res_blocks=8,
                               dtype=None, name='resnet'):
  """Builds the s/t network of an image coupling (Dinh et al., 2017, sec. 4.1).

  ```none
  input (H, W, C_in)
    -> weight-normed 3x3 conv to F features
    -> B x [BN, ReLU, conv3x3, BN, ReLU, conv3x3] + skip      (ResidualBlock)
    -> BN, ReLU
    -> weight-normed 3x3 conv to 2 * output_channels, zero-initialised
  output (H, W, 2 * output_channels): [raw log-scale | shift] on the last axis
  ```

  The zero-initialised output makes every coupling start as the identity.

  Args:
    input_shape: `(H, W, C_in)` of the conditioning input.
    output_channels: channels of the transformed part; the network emits twice
      as many (raw log-scale, then shift).
    hidden_channels: F, features of the residual blocks.
    num_res_blocks: B, number of residual blocks.
    dtype: Keras dtype policy, e.g. `'mixed_bfloat16'` for mixed precision
      (the coupling casts the output back to float32).
    name: model name.

  Returns:
    A built `keras.Model` mapping `(batch, H, W, C_in)` to
    `(batch, H, W, 2 * output_channels)`, called with `training=...`.
  """
  if num_res_blocks < 0 or hidden_channels < 1:
    raise ValueError(
        f'hidden_channels must be >= 1 and num_res_blocks >= 0, got '
        f'{hidden_channels} and {num_res_blocks}.')
  inputs = keras.Input(shape=tuple(input_shape), name=f'{name}_input')
  h = WeightNormConv2D(hidden_channels, 3, name='conv_in', dtype=dtype)(inputs)
  for i in range(num_res_blocks):
    h = ResidualBlock(hidden_channels, name=f'block_{i}', dtype=dtype)(h)
  h = _batch_norm('bn_out', dtype=dtype)(h)
  h = keras.layers.ReLU(dtype=dtype)(h)
  outputs = WeightNormConv2D(2 * output_channels, 3, zero_init=True,
                             name='conv_out', dtype=dtype)(h)
  return keras.Model(inputs, outputs, name=name)
