"""`ResidualBlock`: its inference path, with the batch norm folded into the convolution,
equals the unfolded computation."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfp_realnvp import nets

EPSILON = 1e-3   # keras.layers.BatchNormalization's default, which the block's norms keep


def perturbed_block(features=8, channels=8, seed=0):
  block = nets.ResidualBlock(features)
  block.build((None, 5, 5, channels))
  rng = np.random.default_rng(seed)
  for weight in block.weights:
    if 'variance' in weight.path:
      weight.assign(rng.uniform(0.3, 3.0, weight.shape))
    else:
      weight.assign(weight.numpy() + 0.5 * rng.standard_normal(weight.shape))
  return block


def batch_norm(x, layer, mean=None, variance=None):
  """Keras's batch norm written out: `(x - mean) / sqrt(variance + eps) * gamma + beta`."""
  mean = layer.moving_mean.numpy() if mean is None else mean
  variance = layer.moving_variance.numpy() if variance is None else variance
  assert layer.epsilon == EPSILON
  return (x - mean) / np.sqrt(variance + layer.epsilon) * layer.gamma.numpy() + layer.beta.numpy()


def conv(x, layer):
  """The weight-normed convolution written out: kernel `g * v / ||v||`, SAME padding."""
  direction = layer.direction.numpy().astype(np.float64)
  kernel = direction * layer.gain.numpy() / np.sqrt((direction**2).sum(axis=(0, 1, 2)))
  y = tf.nn.conv2d(x.astype(np.float64), kernel, strides=1, padding='SAME').numpy()
  return y + layer.bias.numpy()


def unfolded(block, x, training):
  """The block's math, one operation at a time, in float64."""
  x = x.astype(np.float64)

  def norm(h, layer):
    if training:
      return batch_norm(h, layer, h.mean(axis=(0, 1, 2)), h.var(axis=(0, 1, 2)))
    return batch_norm(h, layer)

  h = np.maximum(norm(x, block.norm_in), 0.)
  h = np.maximum(norm(conv(h, block.conv_in), block.norm_out), 0.)
  return x + conv(h, block.conv_out)


def test_weight_norm_conv_is_the_normalised_kernel():
  layer = nets.WeightNormConv2D(6, 3)
  x = np.random.default_rng(1).standard_normal((2, 5, 5, 4)).astype(np.float32)
  layer.build(x.shape)
  layer.gain.assign(np.linspace(0.5, 2., 6))
  layer.bias.assign(np.linspace(-1., 1., 6))
  np.testing.assert_allclose(layer(x).numpy(), conv(x, layer), atol=1e-5)


def test_folded_inference_path_equals_the_unfolded_computation():
  block = perturbed_block()
  x = np.random.default_rng(2).standard_normal((3, 5, 5, 8)).astype(np.float32)
  expected = unfolded(block, x, training=False)
  folded = block(x, training=False).numpy()
  scale = np.abs(expected).max()
  np.testing.assert_allclose(folded, expected, atol=2e-5 * scale)
  # A fold that forgot the batch norm's shift (or used the batch statistics) is caught:
  # both are far outside that tolerance.
  wrong_shift = block.norm_out.beta.numpy().copy()
  block.norm_out.beta.assign(np.zeros_like(wrong_shift))
  without_shift = unfolded(block, x, training=False)
  block.norm_out.beta.assign(wrong_shift)
  assert np.abs(without_shift - expected).max() > 100 * 2e-5 * scale
  with_batch_stats = unfolded(block, x, training=True)
  assert np.abs(with_batch_stats - expected).max() > 100 * 2e-5 * scale


def test_inference_path_in_a_graph_and_in_mixed_precision():
  block = perturbed_block(seed=3)
  x = np.random.default_rng(4).standard_normal((2, 5, 5, 8)).astype(np.float32)
  expected = unfolded(block, x, training=False)
  graph = tf.function(lambda inputs: block(inputs, training=False))
  np.testing.assert_allclose(graph(x).numpy(), expected, atol=2e-5 * np.abs(expected).max())
  mixed = nets.ResidualBlock(8, dtype='mixed_bfloat16')
  mixed.build((None, 5, 5, 8))
  for source, target in zip(block.weights, mixed.weights):
    target.assign(source)
  low = mixed(x, training=False).numpy().astype(np.float64)
  # bfloat16 keeps 8 bits of mantissa: agreement to a few percent of the output's scale.
  assert np.abs(low - expected).max() < 0.05 * np.abs(expected).max()


def test_training_path_uses_batch_statistics():
  block = perturbed_block(seed=5)
  x = np.random.default_rng(6).standard_normal((4, 5, 5, 8)).astype(np.float32)
  expected = unfolded(block, x, training=True)
  np.testing.assert_allclose(block(x, training=True).numpy(), expected,
                             atol=2e-5 * np.abs(expected).max())


def test_residual_block_config_round_trips():
  block = nets.ResidualBlock(12, name='b', dtype='mixed_bfloat16')
  clone = nets.ResidualBlock.from_config(block.get_config())
  assert clone.features == 12 and clone.name == 'b'
  assert clone.dtype_policy.name == 'mixed_bfloat16'
  assert isinstance(clone, keras.layers.Layer)


def test_dropout_acts_in_training_only_and_keeps_the_mean():
  rate = 0.5
  block = nets.ResidualBlock(8, dropout_rate=rate)
  block.build((None, 5, 5, 8))
  plain = perturbed_block()
  for source, target in zip(plain.weights, block.weights):
    target.assign(source)
  x = np.random.default_rng(7).standard_normal((3, 5, 5, 8)).astype(np.float32)
  scale = np.abs(unfolded(plain, x, training=False)).max()
  # Inference never drops: the folded path of the block without dropout.
  np.testing.assert_allclose(block(x, training=False).numpy(),
                             unfolded(plain, x, training=False), atol=2e-5 * scale)
  # Training drops (each call its own mask) and rescales by 1 / (1 - rate): the last
  # convolution is linear, so the mean over masks is the computation without dropout.
  without = unfolded(plain, x, training=True)
  draws = np.stack([block(x, training=True).numpy() for _ in range(400)])
  assert np.abs(draws[0] - draws[1]).max() > 0.1 * scale
  assert np.abs(draws[0] - without).max() > 0.1 * scale
  spread = draws.std(axis=0) / np.sqrt(len(draws))
  assert np.all(np.abs(draws.mean(axis=0) - without) < 5 * spread + 1e-4 * scale)


@pytest.mark.parametrize('rate', [-0.1, 1.0, 1.5])
def test_dropout_rate_outside_zero_one_is_refused(rate):
  with pytest.raises(ValueError, match=r'dropout_rate must be in \[0, 1\)'):
    nets.ResidualBlock(8, dropout_rate=rate)


def test_resnet_passes_its_dropout_rate_to_every_block():
  net = nets.resnet_shift_and_log_scale((4, 4, 2), 2, hidden_channels=4, num_res_blocks=2,
                                        dropout_rate=0.3)
  blocks = [layer for layer in net.layers if isinstance(layer, nets.ResidualBlock)]
  assert len(blocks) == 2 and {block.dropout_rate for block in blocks} == {0.3}
  clone = nets.ResidualBlock.from_config(blocks[0].get_config())
  assert clone.dropout_rate == 0.3
