"""The paper's ResNet for the shift and log-scale of image couplings."""

import keras
import tensorflow as tf

from tfp_realnvp.nets.weight_norm import WeightNormConv2D

__all__ = ['resnet_shift_and_log_scale', 'ResidualBlock']

# Keras's default (0.99) lets the inference statistics lag far behind the
# training batches early in training; 0.9 is PyTorch's default, which the
# reference reimplementations use.
BATCH_NORM_MOMENTUM = 0.9


@keras.saving.register_keras_serializable(package='tfp_realnvp',
                                          name='FusedBatchNormalization')
class _FusedBatchNormalization(keras.layers.BatchNormalization):
  """Keras's `BatchNormalization`, computed with TF's fused kernel when it can.

  Same weights, statistics and math as the Keras layer (biased batch
  variance, `moving = momentum * moving + (1 - momentum) * batch`), but on
  NHWC images outside a multi-replica step it runs `FusedBatchNormV3`: one
  kernel (and one for the gradient) instead of about ten element-wise passes
  and reductions over the activations. Under `tf.distribute` with several
  replicas in sync, training steps take Keras's synchronised path, so the
  statistics stay those of the global batch.
  """

  def _fusable(self, inputs, training):
    if (len(inputs.shape) != 4 or self.axis not in (-1, 3) or self.renorm
        or not self.scale or not self.center):
      return False
    if training and self.trainable:
      context = tf.distribute.get_replica_context()
      if context is not None and context.num_replicas_in_sync > 1:
        return False
    return True

  def affine(self):
    """Inference mode as `x * scale + shift`, per channel (float32)."""
    inv = tf.math.rsqrt(tf.cast(self.moving_variance, tf.float32)
                        + self.epsilon) * tf.cast(self.gamma, tf.float32)
    shift = (tf.cast(self.beta, tf.float32)
             - tf.cast(self.moving_mean, tf.float32) * inv)
    return inv, shift

  def call(self, inputs, training=None, mask=None):
    if mask is not None or not self._fusable(inputs, training):
      return super().call(inputs, training=training, mask=mask)
    # As Keras does, normalise in float32 whatever the compute dtype.
    x = tf.cast(inputs, tf.float32)
    gamma = tf.cast(self.gamma, tf.float32)
    beta = tf.cast(self.beta, tf.float32)
    if training and self.trainable:
      outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
          x, gamma, beta, epsilon=self.epsilon, data_format='NHWC',
          is_training=True)
      # FusedBatchNormV3 returns the unbiased batch variance; Keras averages
      # the biased one.
      count = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), tf.float32)
      variance = variance * ((count - 1.) / count)
      momentum = self.momentum
      self.moving_mean.assign(
          tf.cast(self.moving_mean, tf.float32) * momentum
          + tf.stop_gradient(mean) * (1. - momentum))
      self.moving_variance.assign(
          tf.cast(self.moving_variance, tf.float32) * momentum
          + tf.stop_gradient(variance) * (1. - momentum))
    else:
      outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
          x, gamma, beta, mean=tf.cast(self.moving_mean, tf.float32),
          variance=tf.cast(self.moving_variance, tf.float32),
          epsilon=self.epsilon, data_format='NHWC', is_training=False)
    return tf.cast(outputs, self.compute_dtype)


def _checked_dropout_rate(rate):
  rate = float(rate)
  if not 0. <= rate < 1.:
    raise ValueError(f'dropout_rate must be in [0, 1), got {rate}.')
  return rate


def _philox_dropout(x, rate, seed_generator):
  """Inverted dropout of `x` (training mode), its mask drawn with Philox.

  The random state is the `keras.random.SeedGenerator` of the block's Keras `Dropout`
  layer, tracked and checkpointed with the block. Keras's own dropout lets TensorFlow
  pick the algorithm, which XLA compiles on CPU into a training step about 5x slower
  than without dropout; with Philox a step costs the same under XLA as in graph mode.
  """
  seed = tf.cast(tf.math.floormod(seed_generator.next(), tf.int32.max - 1), tf.int32)
  keep = tf.random.stateless_uniform(tf.shape(x), seed=seed, alg='philox') >= rate
  return tf.where(keep, x / tf.cast(1. - rate, x.dtype), tf.zeros_like(x))


class _BatchStatistics:
  """Whether all of some batch norms normalise with batch statistics in training mode.

  A Keras batch norm does unless it is frozen (`trainable=False`: it then uses its
  running averages). A plain object, so that Keras does not track the layers it holds.
  """

  def __init__(self, norms):
    self._norms = tuple(norms)

  def __call__(self):
    return all(norm.trainable for norm in self._norms)


def _batch_norm(name, dtype=None):
  return _FusedBatchNormalization(
      momentum=BATCH_NORM_MOMENTUM, synchronized=True, name=name, dtype=dtype)


@keras.saving.register_keras_serializable(package='tfp_realnvp')
class ResidualBlock(keras.layers.Layer):
  """Pre-activation residual block: `h + conv(dropout(relu(bn(conv(relu(bn(h)))))))`.

  Both convolutions are 3x3 and weight-normalised; the batch norms are
  synchronised across replicas so that a step under `tf.distribute` sees the
  statistics of the global batch. The sub-layers share the block's dtype
  policy (e.g. `'mixed_bfloat16'`). With `dropout_rate > 0`, dropout between
  the two convolutions in training mode, as in wide residual networks
  (Zagoruyko & Komodakis, 2016, https://arxiv.org/abs/1605.07146); inference
  mode never drops.

  Speed: the batch norms use TensorFlow's fused kernel (outside multi-replica
  steps), and in inference mode the second batch norm, a fixed per-channel
  affine map, is folded into the first convolution's kernel and bias, so
  that convolution, bias and ReLU run as one fused operation. In training
  mode the second batch norm cancels the first convolution's bias, whose
  gradient is then the exact zero it is (`WeightNormConv2D`'s
  `bias_cancelled_in_training`); unless that norm is frozen.
  """

  def __init__(self, features, dropout_rate=0., **kwargs):
    super().__init__(**kwargs)
    self.features = int(features)
    self.dropout_rate = _checked_dropout_rate(dropout_rate)
    dtype = self.dtype_policy
    self.norm_in = _batch_norm('bn_in', dtype=dtype)
    self.conv_in = WeightNormConv2D(self.features, 3, name='conv_in',
                                    dtype=dtype)
    self.norm_out = _batch_norm('bn_out', dtype=dtype)
    self.conv_out = WeightNormConv2D(self.features, 3, name='conv_out',
                                     dtype=dtype)
    self.dropout = (keras.layers.Dropout(self.dropout_rate, name='dropout', dtype=dtype)
                    if self.dropout_rate else None)
    # The batch norm right after conv_in cancels its bias in training mode.
    self.conv_in.bias_cancelled_in_training = _BatchStatistics((self.norm_out,))

  def build(self, input_shape):
    self.norm_in.build(input_shape)
    self.conv_in.build(input_shape)
    hidden_shape = tuple(input_shape[:-1]) + (self.features,)
    self.norm_out.build(hidden_shape)
    self.conv_out.build(hidden_shape)

  def call(self, inputs, training=False):
    h = keras.ops.relu(self.norm_in(inputs, training=training))
    if training:
      h = self.conv_in(h, training=training)
      h = keras.ops.relu(self.norm_out(h, training=training))
      if self.dropout_rate:
        h = _philox_dropout(h, self.dropout_rate, self.dropout.seed_generator)
    else:
      # relu(bn(conv(h) + b)) with bn(u) = u * scale + shift (running stats).
      scale, shift = self.norm_out.affine()
      conv = self.conv_in
      dtype = conv.compute_dtype
      kernel, bias = conv._kernel_and_bias(  # pylint: disable=protected-access
          tf.cast(scale, dtype), tf.cast(shift, dtype))
      h = conv._convolve(tf.cast(h, dtype), kernel, bias)  # pylint: disable=protected-access
      h = tf.nn.relu(h)
    return inputs + self.conv_out(h, training=training)

  def get_config(self):
    return dict(super().get_config(), features=self.features,
                dropout_rate=self.dropout_rate)


def resnet_shift_and_log_scale(input_shape, output_channels,
                               hidden_channels=64, num_res_blocks=8,
                               dropout_rate=0., dtype=None, name='resnet'):
  """Builds the s/t network of an image coupling (Dinh et al., 2017, sec. 4.1).

  ```none
  input (H, W, C_in)
    -> weight-normed 3x3 conv to F features
    -> B x [BN, ReLU, conv3x3, BN, ReLU, (dropout), conv3x3] + skip
                                                              (ResidualBlock)
    -> BN, ReLU
    -> weight-normed 3x3 conv to 2 * output_channels, zero-initialised
  output (H, W, 2 * output_channels): [raw log-scale | shift] on the last axis
  ```

  The zero-initialised output makes every coupling start as the identity.

  In training mode every use of the residual stream goes through a batch norm
  with batch statistics (the next block's first one, or the last one), which
  cancels the biases of the convolutions that write to the stream (the first
  one and each block's second one): their gradient is exactly zero, and the
  network returns it as such instead of reducing the output's gradient over
  the batch (see `WeightNormConv2D`). Freezing any of those batch norms
  (`trainable=False`) brings back plain autodiff for them. A network rebuilt
  from its Keras config computes the same gradients by plain autodiff.

  Args:
    input_shape: `(H, W, C_in)` of the conditioning input.
    output_channels: channels of the transformed part; the network emits twice
      as many (raw log-scale, then shift).
    hidden_channels: F, features of the residual blocks.
    num_res_blocks: B, number of residual blocks.
    dropout_rate: dropout inside every residual block in training mode
      (default 0: none).
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
  # Checked here too: with no residual block nothing else would see the rate.
  dropout_rate = _checked_dropout_rate(dropout_rate)
  inputs = keras.Input(shape=tuple(input_shape), name=f'{name}_input')
  stem = WeightNormConv2D(hidden_channels, 3, name='conv_in', dtype=dtype)
  blocks = [ResidualBlock(hidden_channels, dropout_rate=dropout_rate,
                          name=f'block_{i}', dtype=dtype)
            for i in range(num_res_blocks)]
  norm_out = _batch_norm('bn_out', dtype=dtype)
  # Every use of the residual stream (the stem's output plus the blocks') passes
  # through a later block's input batch norm or through bn_out: in training mode the
  # biases of the convolutions that write to the stream are cancelled.
  stream_norms = _BatchStatistics([norm_out] + [block.norm_in for block in blocks])
  for conv in [stem] + [block.conv_out for block in blocks]:
    conv.bias_cancelled_in_training = stream_norms
  h = stem(inputs)
  for block in blocks:
    h = block(h)
  h = norm_out(h)
  h = keras.layers.ReLU(dtype=dtype)(h)
  outputs = WeightNormConv2D(2 * output_channels, 3, zero_init=True,
                             name='conv_out', dtype=dtype)(h)
  return keras.Model(inputs, outputs, name=name)
