"""The ResNet's biases that training-mode batch norms cancel: their gradient is returned as
the exact zero that autodiff computes up to rounding, and everything else is unchanged.

Each check compares the network against itself with the shortcut switched off
(`bias_cancelled_in_training = None` on every convolution), which is plain autodiff.
"""

import contextlib

import numpy as np
import pytest
import tensorflow as tf

from tfp_realnvp import _compat
from tfp_realnvp import nets
from tfp_realnvp.nets.weight_norm import WeightNormConv2D
from tfp_realnvp.train import pick_strategy

SHAPE = (6, 5, 4, 3)   # batch, height, width, channels
HIDDEN = 8


def perturbed_resnet(num_res_blocks=2):
  """A ResNet whose zero-initialised output layer is not zero (so gradients flow)."""
  net = nets.resnet_shift_and_log_scale(SHAPE[1:], 2, hidden_channels=HIDDEN,
                                        num_res_blocks=num_res_blocks)
  rng = np.random.default_rng(0)
  for weight in net.trainable_weights:
    weight.assign(weight.numpy() + 0.3 * rng.standard_normal(weight.shape))
  return net


def convolutions(net):
  return [layer for layer in _compat.keras_sublayers(net)
          if isinstance(layer, WeightNormConv2D)]


def shortcut_biases(net):
  """The biases whose convolution has the shortcut set, by variable path."""
  return {conv.bias.path for conv in convolutions(net)
          if conv.bias_cancelled_in_training is not None}


@contextlib.contextmanager
def switched_off(net):
  """Context: the same network with every shortcut unset (plain autodiff)."""
  saved = [(conv, conv.bias_cancelled_in_training) for conv in convolutions(net)]
  for conv, _ in saved:
    conv.bias_cancelled_in_training = None
  try:
    yield
  finally:
    for conv, hook in saved:
      conv.bias_cancelled_in_training = hook


def loss_and_gradients(net, x, weights, graph=False):
  def compute():
    with tf.GradientTape() as tape:
      loss = tf.reduce_sum(net(x, training=True) * weights)
    return loss, dict(zip([v.path for v in net.trainable_variables],
                          tape.gradient(loss, net.trainable_variables)))
  return tf.function(compute)() if graph else compute()


def assert_shortcut_matches_autodiff(net, grads, plain, rtol):
  """Shortcut biases: exactly zero, and plain autodiff's zero up to rounding (so the
  cancellation holds); every other gradient: plain autodiff's. Returns the largest."""
  largest = max(float(tf.reduce_max(tf.abs(g))) for g in plain.values())
  cancelled = shortcut_biases(net)
  for path, grad in grads.items():
    if path in cancelled:
      np.testing.assert_array_equal(grad.numpy(), 0.)
      assert float(tf.reduce_max(tf.abs(plain[path]))) < 1e-5 * largest, path
    else:
      np.testing.assert_allclose(grad.numpy(), plain[path].numpy(), rtol=rtol,
                                 atol=rtol * 0.1 * largest)
  return largest


def inputs(seed=1):
  rng = np.random.default_rng(seed)
  x = (rng.standard_normal(SHAPE) * [1., 3., .2] + [0., -2., 5.]).astype(np.float32)
  weights = rng.standard_normal(SHAPE[:3] + (4,)).astype(np.float32)
  return x, weights


def test_every_convolution_but_the_output_one_has_the_shortcut():
  net = perturbed_resnet(num_res_blocks=2)
  # The stem, and per block its two convolutions; not the output convolution.
  assert len(shortcut_biases(net)) == 1 + 2 * 2
  assert len(convolutions(net)) == 1 + 2 * 2 + 1


@pytest.mark.parametrize('graph', [False, True])
def test_gradients_equal_plain_autodiff(graph):
  net = perturbed_resnet()
  x, weights = inputs()
  loss, grads = loss_and_gradients(net, x, weights, graph)
  with switched_off(net):
    plain_loss, plain = loss_and_gradients(net, x, weights, graph)
  assert float(loss) == float(plain_loss)
  largest = assert_shortcut_matches_autodiff(net, grads, plain, rtol=1e-5)
  # The output convolution's bias is not cancelled, and its gradient is not zero.
  output_bias = net.get_layer('conv_out').bias.path
  assert float(tf.reduce_max(tf.abs(grads[output_bias]))) > 1e-2 * largest


def test_a_frozen_batch_norm_brings_back_the_bias_gradients_it_leaves():
  net = perturbed_resnet()
  x, weights = inputs()
  frozen = net.get_layer('block_1').norm_in
  frozen.trainable = False   # Keras then normalises with the running averages.
  _, grads = loss_and_gradients(net, x, weights)
  with switched_off(net):
    _, plain = loss_and_gradients(net, x, weights)
  largest = max(float(tf.reduce_max(tf.abs(g))) for g in plain.values())
  stream = [net.get_layer('conv_in'), net.get_layer('block_0').conv_out,
            net.get_layer('block_1').conv_out]
  for conv in stream:
    path = conv.bias.path
    np.testing.assert_allclose(grads[path].numpy(), plain[path].numpy(), rtol=1e-5,
                               atol=1e-6 * largest)
  # Before the frozen norm, the stream's biases now matter.
  assert float(tf.reduce_max(tf.abs(grads[stream[0].bias.path]))) > 1e-3 * largest
  # A block's first convolution is still followed by its own training-mode norm.
  np.testing.assert_array_equal(grads[net.get_layer('block_1').conv_in.bias.path], 0.)


def test_a_frozen_norm_after_a_block_convolution_brings_its_gradient_back():
  net = perturbed_resnet()
  x, weights = inputs()
  net.get_layer('block_0').norm_out.trainable = False
  _, grads = loss_and_gradients(net, x, weights)
  largest = max(float(tf.reduce_max(tf.abs(g))) for g in grads.values())
  bias = net.get_layer('block_0').conv_in.bias.path
  assert float(tf.reduce_max(tf.abs(grads[bias]))) > 1e-3 * largest


def test_a_block_alone_keeps_its_output_bias_gradient():
  block = nets.ResidualBlock(HIDDEN)
  x = np.random.default_rng(2).standard_normal((4, 5, 5, HIDDEN)).astype(np.float32)
  block.build(x.shape)
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(block(x, training=True) * x)
  grad_out, grad_in = tape.gradient(loss, [block.conv_out.bias, block.conv_in.bias])
  # Nothing after a lone block is known to cancel its output's bias.
  np.testing.assert_allclose(grad_out.numpy(), x.sum(axis=(0, 1, 2)), rtol=1e-5)
  np.testing.assert_array_equal(grad_in.numpy(), 0.)


def test_inference_mode_uses_every_bias():
  net = perturbed_resnet()
  x, _ = inputs()
  before = net(x, training=False).numpy()
  stem = net.get_layer('conv_in')
  stem.bias.assign(stem.bias.numpy() + 1.)
  assert np.abs(net(x, training=False).numpy() - before).max() > 1e-3


def test_replicas_in_sync_get_the_gradients_of_plain_autodiff():
  strategy = pick_strategy(['/cpu:0', '/cpu:1'])
  with strategy.scope():
    net = perturbed_resnet()
  x, weights = inputs()
  halves = iter([(x[:3], weights[:3]), (x[3:], weights[3:])])
  values = strategy.experimental_distribute_values_from_function(lambda _: next(halves))

  def replica_gradients(batch):
    return loss_and_gradients(net, batch[0], batch[1])[1]

  def summed():
    per_replica = strategy.run(replica_gradients, (values,))
    return {path: strategy.reduce('SUM', grad, axis=None)
            for path, grad in per_replica.items()}

  grads = summed()
  with switched_off(net):
    plain = summed()
  assert_shortcut_matches_autodiff(net, grads, plain, rtol=1e-4)
