"""The fused batch norm of the ResNets against Keras's `BatchNormalization`."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfp_realnvp.nets import resnet
from tfp_realnvp.train import pick_strategy


def twin_layers(channels=3, momentum=0.9, dtype=None, rank=4, synchronized=False):
  """A fused batch norm and a Keras one with the same (non-trivial) weights."""
  fused = resnet._FusedBatchNormalization(momentum=momentum, dtype=dtype,
                                          synchronized=synchronized)
  plain = keras.layers.BatchNormalization(momentum=momentum, dtype=dtype)
  rng = np.random.default_rng(0)
  for layer in (fused, plain):
    layer.build((None,) * (rank - 1) + (channels,))
  values = {'gamma': rng.uniform(0.5, 2., channels), 'beta': rng.normal(size=channels),
            'moving_mean': rng.normal(size=channels),
            'moving_variance': rng.uniform(0.5, 2., channels)}
  for layer in (fused, plain):
    for name, value in values.items():
      getattr(layer, name).assign(value)
  return fused, plain


def batches(count, shape, seed=1):
  rng = np.random.default_rng(seed)
  # Channels with different means and spreads, so each statistic matters.
  return [(rng.normal(size=shape) * [1., 3., 0.2] + [0., -2., 5.]).astype(np.float32)
          for _ in range(count)]


@pytest.mark.parametrize('shape', [(2, 2, 3, 3), (8, 5, 4, 3)])
def test_outputs_and_running_statistics_equal_keras(shape):
  fused, plain = twin_layers()
  assert fused._fusable(tf.zeros(shape), training=True)   # the fused kernel is what runs
  for x in batches(4, shape):
    np.testing.assert_allclose(fused(x, training=True).numpy(),
                               plain(x, training=True).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fused.moving_mean.numpy(), plain.moving_mean.numpy(),
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fused.moving_variance.numpy(), plain.moving_variance.numpy(),
                               rtol=1e-6)
  x = batches(1, shape, seed=2)[0]
  np.testing.assert_allclose(fused(x, training=False).numpy(),
                             plain(x, training=False).numpy(), rtol=1e-5, atol=1e-5)


def test_the_variance_correction_is_needed():
  # TensorFlow's fused kernel returns the unbiased batch variance; with 2 * 2 * 3 = 12
  # values per channel, averaging it unconverted would be off by a factor 12 / 11 in the
  # update, far beyond the tolerance above.
  fused, plain = twin_layers()
  x = batches(1, (2, 2, 3, 3))[0]
  before = plain.moving_variance.numpy().copy()
  plain(x, training=True)
  fused(x, training=True)
  unbiased = 0.9 * before + 0.1 * x.var(axis=(0, 1, 2), ddof=1)
  assert np.abs(unbiased - plain.moving_variance.numpy()).max() > 100 * 1e-6 * before.max()
  np.testing.assert_allclose(fused.moving_variance.numpy(), plain.moving_variance.numpy(),
                             rtol=1e-6)


def test_gradients_equal_keras():
  fused, plain = twin_layers()
  x = tf.constant(batches(1, (4, 3, 3, 3))[0])
  upstream = tf.constant(np.random.default_rng(3).normal(size=x.shape).astype(np.float32))
  grads = []
  for layer in (fused, plain):
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = layer(x, training=True)
    grads.append(tape.gradient(y, [x, layer.gamma, layer.beta], output_gradients=upstream))
  for mine, keras_grad in zip(*grads):
    np.testing.assert_allclose(mine.numpy(), keras_grad.numpy(), rtol=1e-4, atol=1e-5)


def test_mixed_precision_and_non_image_inputs_follow_keras():
  fused, plain = twin_layers(dtype='mixed_bfloat16')
  x = batches(1, (4, 3, 3, 3))[0]
  out = fused(x, training=True)
  assert out.dtype == tf.bfloat16
  np.testing.assert_allclose(out.numpy().astype(np.float32),
                             plain(x, training=True).numpy().astype(np.float32),
                             rtol=2e-2, atol=2e-2)
  np.testing.assert_allclose(fused.moving_variance.numpy(), plain.moving_variance.numpy(),
                             rtol=1e-5)
  flat_fused, flat_plain = twin_layers(rank=2)
  vectors = batches(1, (6, 3))[0]
  assert not flat_fused._fusable(tf.constant(vectors), training=True)
  np.testing.assert_allclose(flat_fused(vectors, training=True).numpy(),
                             flat_plain(vectors, training=True).numpy(), rtol=1e-6, atol=1e-6)


def test_replicas_take_keras_synchronised_path():
  # Two replicas in sync: the statistics must be those of the global batch.
  strategy = pick_strategy(['/cpu:0', '/cpu:1'])
  with strategy.scope():
    fused, _ = twin_layers(synchronized=True)
  _, plain = twin_layers()
  x = batches(1, (4, 3, 3, 3))[0]
  halves = iter([x[:2], x[2:]])
  values = strategy.experimental_distribute_values_from_function(lambda _: next(halves))
  strategy.run(lambda batch: fused(batch, training=True), (values,))
  plain(x, training=True)
  np.testing.assert_allclose(fused.moving_mean.numpy(), plain.moving_mean.numpy(), rtol=1e-5)
  np.testing.assert_allclose(fused.moving_variance.numpy(), plain.moving_variance.numpy(),
                             rtol=1e-5)
