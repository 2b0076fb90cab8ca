"""InvertibleBatchNorm: the paper's running averages, modes, log-det, replicas."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from flowtest import fresh

from tfp_realnvp.bijectors import InvertibleBatchNorm
from tfp_realnvp.train import pick_strategy

tfd = tfp.distributions


def test_training_mode_uses_running_average_that_absorbs_the_batch():
  bn = InvertibleBatchNorm((3, 2, 2), momentum=0.9, epsilon=1e-4)
  x = np.random.default_rng(0).normal(3., 2., (5, 3, 2, 2)).astype(np.float32)
  x_tensor = tf.constant(x)   # one tensor: the cache pairs value and log-det
  y = bn.inverse(x_tensor, training=True).numpy()
  mean = 0.9 * 0. + 0.1 * x.mean(axis=(0, 1, 2))
  var = 0.9 * 1. + 0.1 * x.var(axis=(0, 1, 2))
  np.testing.assert_allclose(bn.moving_mean.numpy(), mean, rtol=1e-5)
  np.testing.assert_allclose(bn.moving_variance.numpy(), var, rtol=1e-5)
  np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-4), rtol=1e-4,
                             atol=1e-5)
  # The log-det counts every element: H * W terms per channel.
  ildj = bn.inverse_log_det_jacobian(x_tensor, event_ndims=3,
                                     training=True).numpy()
  np.testing.assert_allclose(ildj, -0.5 * 6 * np.sum(np.log(var + 1e-4)),
                             rtol=1e-5)


def test_statistics_update_once_per_log_prob():
  bn = InvertibleBatchNorm((2, 2, 1), momentum=0.5)
  dist = tfd.TransformedDistribution(tfd.Sample(tfd.Normal(0., 1.), (2, 2, 1)),
                                     bn)
  x = tf.fill((4, 2, 2, 1), 3.)
  dist.log_prob(x, bijector_kwargs={'training': True})
  # One update: 0.5 * 0 + 0.5 * 3. Two updates would give 2.25.
  np.testing.assert_allclose(bn.moving_mean.numpy(), [1.5])


def test_inference_mode_leaves_statistics_and_is_exactly_invertible():
  bn = InvertibleBatchNorm((4,))
  bn.moving_mean.assign([1., 2., 3., 4.])
  bn.moving_variance.assign([0.5, 1., 2., 4.])
  bn.log_gamma.assign([0.1, -0.2, 0.3, 0.])
  bn.beta.assign([0., 1., -1., 0.5])
  x = tf.random.normal((6, 4))
  z = bn.inverse(x)
  np.testing.assert_allclose(bn.moving_mean.numpy(), [1., 2., 3., 4.])
  np.testing.assert_allclose(bn.forward(fresh(z)).numpy(), x.numpy(),
                             atol=1e-5)
  # Forward ignores `training`: there is no batch of data to measure.
  np.testing.assert_allclose(bn.forward(fresh(z), training=True).numpy(),
                             x.numpy(), atol=1e-5)
  np.testing.assert_allclose(bn.moving_mean.numpy(), [1., 2., 3., 4.])


def test_gradient_flows_through_the_batch_share():
  bn = InvertibleBatchNorm((3,), momentum=0.5)
  x = tf.random.normal((8, 3))
  with tf.GradientTape() as tape:
    tape.watch(x)
    y = bn.inverse(x, training=True)
    loss = tf.reduce_sum(y[0])
  grad = tape.gradient(loss, x).numpy()
  # Other examples influence example 0 through the batch statistics.
  assert np.abs(grad[1:]).max() > 1e-4


def test_global_batch_statistics_under_two_replicas():
  devices = ['/cpu:0', '/cpu:1']
  # pick_strategy gives each MirroredStrategy collective keys of its own.
  strategy = pick_strategy(devices)
  x = np.random.default_rng(1).normal(2., 3., (8, 2, 2, 3)).astype(np.float32)
  reference = InvertibleBatchNorm((2, 2, 3), momentum=0.5)
  expected = reference.inverse(x, training=True).numpy()
  with strategy.scope():
    bn = InvertibleBatchNorm((2, 2, 3), momentum=0.5)
  dataset = strategy.experimental_distribute_dataset(
      tf.data.Dataset.from_tensor_slices(x).batch(8))

  @tf.function
  def step(batch):
    return strategy.run(lambda b: bn.inverse(b, training=True), (batch,))

  per_replica = step(next(iter(dataset)))
  outputs = np.concatenate(
      [t.numpy() for t in strategy.experimental_local_results(per_replica)])
  np.testing.assert_allclose(outputs, expected, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(bn.moving_mean.numpy(),
                             reference.moving_mean.numpy(), rtol=1e-5)
  np.testing.assert_allclose(bn.moving_variance.numpy(),
                             reference.moving_variance.numpy(), rtol=1e-5)


def test_empty_and_non_finite_batches_leave_the_statistics():
  bn = InvertibleBatchNorm((3,), momentum=0.5)
  bn.inverse(tf.zeros((0, 3)), training=True)
  np.testing.assert_array_equal(bn.moving_mean.numpy(), [0., 0., 0.])
  np.testing.assert_array_equal(bn.moving_variance.numpy(), [1., 1., 1.])
  with pytest.raises(tf.errors.InvalidArgumentError, match='NaN or Inf'):
    bn.inverse(tf.constant([[1., np.inf, 0.]]), training=True)
  # Inside a composite the public check does not run: the guard in the layer does.
  _, stats = bn._statistics(tf.constant([[1., np.nan, 0.]]), training=True)  # pylint: disable=protected-access
  del stats
  np.testing.assert_array_equal(bn.moving_mean.numpy(), [0., 0., 0.])
  np.testing.assert_array_equal(bn.moving_variance.numpy(), [1., 1., 1.])


def test_bad_arguments():
  with pytest.raises(ValueError, match='momentum'):
    InvertibleBatchNorm((3,), momentum=1.)
  with pytest.raises(ValueError, match='epsilon'):
    InvertibleBatchNorm((3,), epsilon=0.)
  with pytest.raises(ValueError, match=r'\(H, W, C\) or \(D,\)'):
    InvertibleBatchNorm((3, 3))
